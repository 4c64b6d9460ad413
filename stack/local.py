"""The whole local stack: Bedrock emulator, local S3, the gRPC service and Envoy.

`make run` starts it on the default ports (`python -m stack`); the end-to-end tests start
their own copies on free ports. Every part is a real server on loopback.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import TracebackType

from emulator.bedrock import BedrockEmulator
from emulator.s3 import LocalS3
from gateway.envoy import Envoy, port_in_use, terminate, wait_for_port

HOST = "127.0.0.1"
BUCKET = "generated-images"


class PortInUse(RuntimeError):
    """A port of the stack is taken; the message names its variable."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# Each port of the stack and the variable that sets it.
PORT_VARIABLES: Mapping[str, str] = {
    "http": "HTTP_PORT",
    "grpc": "GRPC_PORT",
    "envoy_admin": "ENVOY_ADMIN_PORT",
    "envoy_stats": "ENVOY_STATS_PORT",
    "emulator": "EMULATOR_PORT",
    "s3": "S3_PORT",
    "metrics": "METRICS_PORT",
}


@dataclass
class Ports:
    http: int = 8080
    grpc: int = 50051
    envoy_admin: int = 9901
    envoy_stats: int = 9902
    emulator: int = 4010
    s3: int = 4566
    metrics: int = 9464  # 0: no metrics endpoint

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Ports:
        """Defaults overridden by the variables of PORT_VARIABLES."""
        env = os.environ if env is None else env
        ports = {}
        for name, variable in PORT_VARIABLES.items():
            raw = env.get(variable, "").strip()
            low = 0 if name == "metrics" else 1
            if raw and not (raw.isdigit() and low <= int(raw) < 65536):
                raise ValueError(f"{variable} must be a port number ({low}-65535), got {raw!r}")
            ports[name] = int(raw) if raw else getattr(cls, name)
        return cls(**ports)

    def check_free(self, names: Iterable[str]) -> None:
        """Fail at once, naming the variable, if one of these ports is taken."""
        for name in names:
            port, variable = getattr(self, name), PORT_VARIABLES[name]
            if port and port_in_use(HOST, port):
                raise PortInUse(
                    f"{variable}={port}: {HOST}:{port} is already in use (another stack?); "
                    f"set {variable} to a free port"
                )

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in fields(cls)))


@dataclass
class LocalStack:
    ports: Ports = field(default_factory=Ports)
    # Extra environment for the service process (settings under test).
    service_env: Mapping[str, str] = field(default_factory=dict)
    with_s3: bool = True
    emulator_latency_s: float = 0.0
    # EMULATOR_LIFECYCLE: "product-page" (every model served) or "aws-2026-12" (as AWS today).
    emulator_lifecycle: str = "product-page"
    # "emulator": the local emulator and S3; "aws": real Bedrock (and S3) with the user's
    # credentials, region and bucket, nothing local but the service and Envoy.
    backend: str = "emulator"
    # The service's log (JSON lines) goes to this file instead of stderr when set.
    service_log: str = ""

    def __post_init__(self) -> None:
        self.emulator = BedrockEmulator(
            host=HOST,
            port=self.ports.emulator,
            latency_s=self.emulator_latency_s,
            lifecycle=self.emulator_lifecycle,
        )
        with_s3 = self.with_s3 and self.backend == "emulator"
        self.s3 = LocalS3(host=HOST, port=self.ports.s3, bucket=BUCKET) if with_s3 else None
        self.envoy = Envoy(
            self.ports.http,
            self.ports.grpc,
            self.ports.envoy_admin,
            HOST,
            stats_port=self.ports.envoy_stats,
            overrides={"CORS_ALLOWED_ORIGINS": self.service_env.get("CORS_ALLOWED_ORIGINS", "")},
        )
        self.service: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"{self.envoy.url}/v1"

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.ports.grpc}"

    @property
    def local_parts(self) -> tuple[str, ...]:
        """The ports this stack binds."""
        if self.backend == "aws":
            return ("http", "grpc", "envoy_admin", "envoy_stats", "metrics")
        return tuple(PORT_VARIABLES)

    def service_environment(self) -> dict[str, str]:
        """Defaults, then what the user set (it wins), then the ports and the wiring to the
        stand-ins this stack started, then the settings under test."""
        env: dict[str, str] = {}
        if self.backend == "emulator":
            # Defaults the user may override.
            env |= {
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                # Bounded, fast retries against the emulator keep tests deterministic.
                "BEDROCK_MAX_ATTEMPTS": "1",
            }
        env |= os.environ
        env |= {
            "IMAGES_BACKEND": self.backend,
            "GRPC_HOST": HOST,
            "GRPC_PORT": str(self.ports.grpc),
            "METRICS_PORT": str(self.ports.metrics),
        }
        if self.backend == "emulator":
            # The wiring to the stand-ins this stack started is not a setting.
            env |= {
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.emulator.url,
                "AWS_ENDPOINT_URL_BEDROCK": self.emulator.url,
            }
            for name in ("AWS_ENDPOINT_URL_S3", "AWS_S3_BUCKET", "AWS_BEARER_TOKEN_BEDROCK"):
                env.pop(name, None)  # bearer auth (Bedrock API keys) the emulator lacks
            if self.s3 is not None:
                env |= {"AWS_ENDPOINT_URL_S3": self.s3.url, "AWS_S3_BUCKET": BUCKET}
        env |= self.service_env
        return env

    def start(self) -> None:
        self.ports.check_free(self.local_parts)
        try:
            if self.backend == "emulator":
                self.emulator.start()
                if self.s3 is not None:
                    self.s3.start()
            with contextlib.ExitStack() as files:
                log = None
                if self.service_log:
                    log = files.enter_context(open(self.service_log, "ab"))
                self.service = subprocess.Popen(
                    [sys.executable, "-m", "service"],
                    env=self.service_environment(),
                    stdin=subprocess.DEVNULL,
                    stderr=log,
                    # Its own session: Ctrl-C reaches only `make run`, which stops the parts in
                    # order (the service drains while Envoy still forwards its answers).
                    start_new_session=True,
                )
            wait_for_port(HOST, self.ports.grpc, 30, self.service)
            self.envoy.start()
            self.wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def wait_until_serving(self, timeout_s: float = 30.0) -> None:
        """Returns once a request through Envoy is answered by the service (Envoy routes
        only after its first health check of the service passed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                    answer.read()  # the whole answer: leaving early would cancel the call
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as refused:
                if refused.code == 401:  # the service itself answered: it wants an API key
                    return
            except OSError:  # URLError (and the 503 until the first check) included
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.base_url} did not answer within {timeout_s} s")
            time.sleep(0.02)

    def exited(self) -> str | None:
        """The name of a part that has stopped on its own, if any."""
        if self.service is not None and self.service.poll() is not None:
            return f"the service (exit code {self.service.returncode})"
        if self.envoy.process is not None and self.envoy.process.poll() is not None:
            return f"Envoy (exit code {self.envoy.process.returncode})"
        return None

    def stop(self) -> None:
        """The service first: it drains (up to DRAIN_GRACE) while Envoy and the emulator still
        serve the work under way; then the rest."""
        if self.service is not None:
            grace = float(self.service_environment().get("DRAIN_GRACE") or 300)
            terminate(self.service, grace_s=grace + 5)
            self.service = None
        self.envoy.stop()
        if self.s3 is not None:
            self.s3.stop()
        self.emulator.stop()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
