"""Every port of the stack is its own: a second stack, service or Envoy on a taken port fails at
once, naming the variable to change (no SO_REUSEPORT sharing of calls between two stacks)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from gateway.envoy import Envoy, envoy_binary
from gateway.render import render
from stack.local import HOST, PORT_VARIABLES, LocalStack, Ports, free_port


def run(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_second_stack_whose_http_port_is_taken_fails_naming_http_port(
    stack: LocalStack,
) -> None:
    ports = {variable: str(free_port()) for variable in PORT_VARIABLES.values()}
    ports["HTTP_PORT"] = str(stack.ports.http)
    second = run("stack", ports)
    assert second.returncode != 0
    assert f"HTTP_PORT={stack.ports.http}" in second.stderr
    assert "set HTTP_PORT to a free port" in second.stderr


def test_the_service_does_not_share_a_taken_grpc_port(stack: LocalStack) -> None:
    env = {"GRPC_PORT": str(stack.ports.grpc), "METRICS_PORT": "0"}
    env |= {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": stack.emulator.url}
    second = run("service", env)
    assert second.returncode != 0
    assert f"GRPC_PORT={stack.ports.grpc}" in second.stderr


def test_the_service_names_a_taken_metrics_port(stack: LocalStack) -> None:
    env = {"GRPC_PORT": str(free_port()), "METRICS_PORT": str(stack.ports.metrics)}
    env |= {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": stack.emulator.url}
    second = run("service", env)
    assert second.returncode != 0
    assert f"METRICS_PORT={stack.ports.metrics}" in second.stderr


def test_envoy_does_not_share_a_taken_listener_port(
    stack: LocalStack, tmp_path: pathlib.Path
) -> None:
    """The rendered config itself: Envoy on a taken HTTP port exits instead of sharing it."""
    overrides = {"HTTP_HOST": HOST, "HTTP_PORT": str(stack.ports.http)}
    overrides |= {"ENVOY_ADMIN_PORT": str(free_port()), "ENVOY_STATS_PORT": str(free_port())}
    config = tmp_path / "envoy.yaml"
    config.write_text(render(overrides))
    command = [envoy_binary(), "-c", str(config), "--use-dynamic-base-id"]
    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    assert f"cannot bind '{HOST}:{stack.ports.http}'" in second.stderr + second.stdout


def test_the_envoy_launcher_names_a_taken_port(stack: LocalStack) -> None:
    with pytest.raises(RuntimeError, match=f"HTTP_PORT={stack.ports.http}"):
        Envoy(stack.ports.http, stack.ports.grpc, free_port(), HOST).start()


def test_check_free_names_the_variable_of_each_taken_port(stack: LocalStack) -> None:
    taken = Ports.free()
    taken.grpc = stack.ports.grpc
    with pytest.raises(RuntimeError, match=f"GRPC_PORT={stack.ports.grpc}"):
        taken.check_free(PORT_VARIABLES)
