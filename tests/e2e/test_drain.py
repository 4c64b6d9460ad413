"""Graceful drain as Kubernetes does it: Envoy's health check is failed (the preStop hook),
then the service gets SIGTERM with generations and streams under way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from stack.local import LocalStack, Ports
from tests.model_ids import SD35
from tests.polling import wait_until

LATENCY_S = 5.0


def generate(stack: LocalStack, stream: bool) -> httpx.Response:
    body = {"model": SD35, "prompt": "a fox", "stream": stream, "size": "1024x1024"}
    return httpx.post(f"{stack.base_url}/images/generations", json=body, timeout=60)


def sse_events(text: str) -> list[str]:
    """The event names of an SSE body, and DONE for its `data: [DONE]`."""
    names = []
    for block in text.split("\n\n"):
        if block.startswith("event: "):
            names.append(block.split("\n", 1)[0].removeprefix("event: "))
        elif block == "data: [DONE]":
            names.append("DONE")
    return names


def sse_error(text: str) -> dict[str, Any]:
    block = next(b for b in text.split("\n\n") if b.startswith("event: error"))
    payload: dict[str, Any] = json.loads(block.split("data: ", 1)[1])
    return payload


def assert_openai_503(response: httpx.Response) -> None:
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["message"] and error["type"] and "code" in error


def health(stack: LocalStack) -> int:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status)


def start_drain(stack: LocalStack) -> float:
    """What the pod's preStop hook and then the kubelet do; returns when SIGTERM was sent."""
    hook_env = {
        **os.environ,
        "ENVOY_ADMIN_PORT": str(stack.ports.envoy_admin),
        "PRESTOP_DELAY": "0",
    }
    hook = subprocess.run(
        [sys.executable, "-m", "gateway.prestop"], env=hook_env, capture_output=True, timeout=30
    )
    assert hook.returncode == 0 and b"failed on purpose (200)" in hook.stdout
    ready = httpx.get(f"http://127.0.0.1:{stack.ports.envoy_admin}/ready", timeout=5)
    assert ready.status_code == 503  # the probe takes the pod out of the Service
    assert stack.service is not None
    stack.service.send_signal(signal.SIGTERM)
    return time.monotonic()


@pytest.fixture
def slow_stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    grace = request.param
    with LocalStack(
        ports=Ports.free(),
        with_s3=False,
        emulator_latency_s=LATENCY_S,
        service_env={"DRAIN_GRACE": str(grace)},
    ) as stack:
        yield stack


@pytest.mark.parametrize("slow_stack", [60], indirect=True)
def test_sigterm_lets_streams_and_generations_finish(slow_stack: LocalStack) -> None:
    stack = slow_stack
    with ThreadPoolExecutor(10) as pool:
        streams = [pool.submit(generate, stack, True) for _ in range(5)]
        answers = [pool.submit(generate, stack, False) for _ in range(5)]
        wait_until(lambda: stack.emulator.in_flight == 10)
        sent = start_drain(stack)
        wait_until(lambda: health(stack) == health_pb2.HealthCheckResponse.NOT_SERVING)
        # The image's HEALTHCHECK says so too.
        probe = subprocess.run(
            [sys.executable, "-m", "service.healthcheck"],
            env={**os.environ, "GRPC_PORT": str(stack.ports.grpc)},
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert probe.returncode != 0 and "NOT_SERVING" in probe.stderr
        # New work is turned away with an OpenAI error while the old work finishes.
        assert_openai_503(generate(stack, False))
        late_stream = generate(stack, True)
        assert_openai_503(late_stream)
        for response in (future.result() for future in streams):
            assert response.status_code == 200
            assert sse_events(response.text)[-2:] == ["image_generation.completed", "DONE"]
        for response in (future.result() for future in answers):
            assert response.status_code == 200
            assert len(response.json()["data"]) == 1
    assert stack.service is not None
    assert stack.service.wait(timeout=30) == 0
    assert time.monotonic() - sent < 60  # it left as soon as the work was done


@pytest.mark.parametrize("slow_stack", [1], indirect=True)
def test_work_left_when_the_grace_runs_out_ends_with_an_error(slow_stack: LocalStack) -> None:
    stack = slow_stack
    with ThreadPoolExecutor(2) as pool:
        stream: Future[httpx.Response] = pool.submit(generate, stack, True)
        answer: Future[httpx.Response] = pool.submit(generate, stack, False)
        wait_until(lambda: stack.emulator.in_flight == 2)
        start_drain(stack)
        streamed = stream.result()
        assert streamed.status_code == 200
        assert sse_events(streamed.text)[-1] == "error"
        assert sse_error(streamed.text)["error"]["code"] == "server_shutting_down"
        assert_openai_503(answer.result())
        assert answer.result().json()["error"]["code"] == "server_shutting_down"
    assert stack.service is not None
    # Gone before the abandoned Bedrock calls end (their threads do not hold the exit).
    assert stack.service.wait(timeout=LATENCY_S / 2) == 0


def test_healthcheck_passes_while_serving_and_the_stack_notices_envoy_dying() -> None:
    with LocalStack(ports=Ports.free(), with_s3=False) as stack:
        probe = subprocess.run(
            [sys.executable, "-m", "service.healthcheck"],
            env={**os.environ, "GRPC_PORT": str(stack.ports.grpc)},
            capture_output=True, timeout=30,
        )  # fmt: skip
        assert probe.returncode == 0
        assert stack.exited() is None
        assert stack.envoy.process is not None
        stack.envoy.process.kill()
        wait_until(lambda: stack.exited() is not None)
        assert (stack.exited() or "").startswith("Envoy")
