"""Envoy's metrics on their own listener, and every metric the dashboard and the alert
rules use exists on the running stack."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from stack.local import LocalStack
from tests.model_ids import NOVA

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("deploy_check", ROOT / "deploy" / "check.py")
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def family_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def test_envoy_stats_listener_serves_prometheus_and_ready_only(stack: LocalStack) -> None:
    stats = f"http://127.0.0.1:{stack.ports.envoy_stats}"
    answer = httpx.get(f"{stats}/stats/prometheus", timeout=5)
    assert answer.status_code == 200
    assert "envoy_cluster_membership_healthy" in answer.text
    assert httpx.get(f"{stats}/ready", timeout=5).text.strip() == "LIVE"
    # The admin interface itself is not reachable through it.
    assert httpx.post(f"{stats}/healthcheck/fail", timeout=5).status_code == 404
    assert httpx.get(f"{stats}/config_dump", timeout=5).status_code == 404


def test_every_metric_of_the_dashboard_and_alerts_exists(
    stack: LocalStack, client: openai.OpenAI
) -> None:
    client.images.generate(model=NOVA, prompt="a fox", size="320x320")  # some traffic
    service = httpx.get(f"http://127.0.0.1:{stack.ports.metrics}/metrics", timeout=5).text
    envoy = httpx.get(f"http://127.0.0.1:{stack.ports.envoy_stats}/stats/prometheus", timeout=5)
    available = family_names(service) | family_names(envoy.text)
    used = {
        (where, name)
        for where, expr in check.observability_queries(ROOT / "deploy" / "observability")
        for name in check.metric_names(expr)
    }
    assert used
    missing = sorted((where, name) for where, name in used if name not in available)
    assert not missing
