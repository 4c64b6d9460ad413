"""`make run` settings: the user's explicit settings win, errors name their variable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.bedrock import BedrockEmulator
from gateway.render import render
from stack.__main__ import backend_from_env, banner, latency_from_env
from stack.local import LocalStack, Ports


@pytest.fixture
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(port=0) as running:
        yield running


def test_user_settings_win_over_the_local_defaults(
    monkeypatch: pytest.MonkeyPatch, emulator: BedrockEmulator
) -> None:
    monkeypatch.setenv("BEDROCK_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    stack = LocalStack(ports=Ports(emulator=emulator.port), with_s3=False)
    stack.emulator = emulator
    env = stack.service_environment()
    assert env["BEDROCK_MAX_ATTEMPTS"] == "5"
    assert env["AWS_REGION"] == "us-west-2"
    assert env["IMAGES_BACKEND"] == "emulator"
    assert env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] == emulator.url


def test_aws_backend_runs_nothing_local_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL_S3", "AWS_S3_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGES_BACKEND", "AWS")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    stack = LocalStack(ports=Ports(), backend=backend_from_env())
    env = stack.service_environment()
    assert env["IMAGES_BACKEND"] == "aws"
    assert "AWS_ENDPOINT_URL_BEDROCK_RUNTIME" not in env and "AWS_S3_BUCKET" not in env
    assert stack.s3 is None
    assert "emulator" not in stack.local_parts
    text = banner(stack)
    assert "AWS us-west-2: REAL calls" in text and "Bedrock emulator" not in text


def test_metrics_port_zero_turns_the_endpoint_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "0")
    stack = LocalStack(ports=Ports.from_env(), backend="aws")
    assert stack.service_environment()["METRICS_PORT"] == "0"
    assert "off (METRICS_PORT=0)" in banner(stack)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("HTTP_PORT", "0"), ("GRPC_PORT", "http"), ("ENVOY_STATS_PORT", "70000"),
     ("METRICS_PORT", "-1")],
)  # fmt: skip
def test_port_errors_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Ports.from_env({variable: value})


@pytest.mark.parametrize(
    ("variable", "value"),
    [("EMULATOR_LATENCY_S", "slow"), ("EMULATOR_LATENCY_S", "-1"), ("IMAGES_BACKEND", "gcp")],
)
def test_stack_setting_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        latency_from_env() if variable == "EMULATOR_LATENCY_S" else backend_from_env()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("HTTP_PORT", "80a"), ("GRPC_HOST", 'x" y'), ("BODY_LIMIT_BYTES", "1MB"),
     ("IDLE_TIMEOUT", "15m"), ("DESCRIPTOR_PATH", "/nowhere.pb")],
)  # fmt: skip
def test_envoy_render_errors_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        render({variable: value})
