"""`make lint` validates the Kubernetes manifests; a broken one fails it."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("deploy_check", ROOT / "deploy" / "check.py")
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

DEPLOYMENT = Path("base/deployment.yaml")


def test_the_shipped_manifests_pass() -> None:
    assert check.main(ROOT / "deploy") == 0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # An unknown field (a typo) is a schema error in strict mode.
        ("      serviceAccountName:", "      serviceAcountName:", "serviceAcountName"),
        # A wrong type.
        ("  replicas: 2", "  replicas: two", "replicas"),
        # Hardening removed from the service container.
        ("""            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL] }
          resources:
            requests: { cpu: 500m""",
         """            capabilities: { drop: [ALL] }
          resources:
            requests: { cpu: 500m""", "container service: readOnlyRootFilesystem"),
        # A grace period shorter than the drain.
        ("terminationGracePeriodSeconds: 330", "terminationGracePeriodSeconds: 30",
         "terminationGracePeriodSeconds"),
        # Not YAML at all.
        ("  replicas: 2", "  replicas: [2", "kustomize failed"),
    ],
)  # fmt: skip
def test_a_broken_manifest_fails(tmp_path: Path, old: str, new: str, expected: str) -> None:
    deploy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy", deploy)
    text = (deploy / DEPLOYMENT).read_text()
    assert old in text
    (deploy / DEPLOYMENT).write_text(text.replace(old, new, 1))
    problems = [p for overlay in ("aws", "local")
                for p in check.check_overlay(deploy / "overlays" / overlay)]  # fmt: skip
    assert any(expected in problem for problem in problems), problems
    assert check.main(deploy) == 1


@pytest.mark.parametrize(
    ("document", "old", "new", "expected"),
    [
        ("alerts.yaml", "sum(envoy_cluster_membership_healthy", "sum(envoy_(", "not PromQL"),
        ("alerts.yaml", "imagegen_cost_usd_total", "imagegen_cost_dollars_total",
         "exports no imagegen_cost_dollars_total"),
        ("alerts.yaml", "labels: { severity: critical }", "labels: { severity: urgent }",
         "alerts.yaml"),
        ("grafana-dashboard.json", '"schemaVersion": 39', '"schemaVersion": "39"',
         "grafana-dashboard.json"),
        ("grafana-dashboard.json", "imagegen_sse_keepalives_total", "imagegen_keepalives_total",
         "exports no imagegen_keepalives_total"),
    ],
)  # fmt: skip
def test_a_broken_dashboard_or_alert_rule_fails(
    tmp_path: Path, document: str, old: str, new: str, expected: str
) -> None:
    observability = tmp_path / "observability"
    shutil.copytree(ROOT / "deploy" / "observability", observability)
    text = (observability / document).read_text()
    assert old in text
    (observability / document).write_text(text.replace(old, new, 1))
    problems = check.check_observability(observability)
    assert any(expected in problem for problem in problems), problems
