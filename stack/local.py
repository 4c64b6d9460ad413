"""The whole local stack: Bedrock emulator, local S3, the gRPC service and Envoy.

`make run` starts it on the default ports (`python -m stack`); the end-to-end tests start
their own copies on free ports. Every part is a real server on loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import TracebackType

from emulator.bedrock import BedrockEmulator
from emulator.s3 import LocalS3
from gateway.envoy import Envoy, terminate, wait_for_port

HOST = "127.0.0.1"
BUCKET = "generated-images"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Ports:
    http: int = 8080
    grpc: int = 50051
    envoy_admin: int = 9901
    emulator: int = 4010
    s3: int = 4566
    metrics: int = 9464

    @classmethod
    def from_env(cls) -> Ports:
        """Defaults overridden by HTTP_PORT, GRPC_PORT, ENVOY_ADMIN_PORT, EMULATOR_PORT,
        S3_PORT and METRICS_PORT."""
        names = {
            "http": "HTTP_PORT",
            "grpc": "GRPC_PORT",
            "envoy_admin": "ENVOY_ADMIN_PORT",
            "emulator": "EMULATOR_PORT",
            "s3": "S3_PORT",
            "metrics": "METRICS_PORT",
        }
        ports = {}
        for name, variable in names.items():
            raw = os.environ.get(variable, "").strip()
            if raw and not (raw.isdigit() and 0 < int(raw) < 65536):
                raise ValueError(f"{variable} must be a port number (1-65535), got {raw!r}")
            ports[name] = int(raw) if raw else getattr(cls, name)
        return cls(**ports)

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

    def __post_init__(self) -> None:
        self.emulator = BedrockEmulator(
            host=HOST, port=self.ports.emulator, latency_s=self.emulator_latency_s
        )
        self.s3 = LocalS3(host=HOST, port=self.ports.s3, bucket=BUCKET) if self.with_s3 else None
        self.envoy = Envoy(self.ports.http, self.ports.grpc, self.ports.envoy_admin, HOST)
        self.service: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"{self.envoy.url}/v1"

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.ports.grpc}"

    def service_environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "AWS_BEARER_TOKEN_BEDROCK"}
        env.update(
            {
                "IMAGES_BACKEND": "emulator",
                "GRPC_HOST": HOST,
                "GRPC_PORT": str(self.ports.grpc),
                "METRICS_PORT": str(self.ports.metrics),
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.emulator.url,
                "AWS_ENDPOINT_URL_BEDROCK": self.emulator.url,
                # Bounded, fast retries against the emulator keep tests deterministic.
                "BEDROCK_MAX_ATTEMPTS": "1",
            }
        )
        if self.s3 is not None:
            env["AWS_ENDPOINT_URL_S3"] = self.s3.url
            env["AWS_S3_BUCKET"] = BUCKET
        env.update(self.service_env)
        return env

    def start(self) -> None:
        try:
            self.emulator.start()
            if self.s3 is not None:
                self.s3.start()
            self.service = subprocess.Popen(
                [sys.executable, "-m", "service"],
                env=self.service_environment(),
                stdin=subprocess.DEVNULL,
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
                    if answer.status == 200:
                        return
            except OSError:  # URLError and HTTPError (503 until the first check) included
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
