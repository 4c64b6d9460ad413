"""`make run`: the whole local stack on the default ports until Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading

from stack.local import LocalStack, Ports

CURL_EXAMPLE = """\
curl -s {base}/images/generations \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "stability.stable-image-core-v1:1", "prompt": "a red fox",
       "response_format": "url"}}'"""


def latency_from_env() -> float:
    raw = os.environ.get("EMULATOR_LATENCY_S", "").strip()
    try:
        latency_s = float(raw or 0)
    except ValueError:
        raise ValueError(f"EMULATOR_LATENCY_S must be a number of seconds, got {raw!r}") from None
    if not 0 <= latency_s <= 3600:
        raise ValueError(f"EMULATOR_LATENCY_S must be between 0 and 3600, got {latency_s}")
    return latency_s


def backend_from_env() -> str:
    backend = os.environ.get("IMAGES_BACKEND", "").strip().lower() or "emulator"
    if backend not in ("emulator", "aws"):
        raise ValueError(f"IMAGES_BACKEND must be emulator or aws, got {backend!r}")
    return backend


def banner(stack: LocalStack) -> str:
    if stack.backend == "aws":
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        bucket = os.environ.get("AWS_S3_BUCKET") or "- (response_format=url is off)"
        backend = (
            f"Bedrock:                    AWS {region}: REAL calls, billed to your account\n"
            f"S3 bucket:                  {bucket}\n"
        )
    else:
        backend = (
            f"Bedrock emulator:           {stack.emulator.url}\n"
            f"Local S3:                   {stack.s3.url if stack.s3 else '-'}\n"
        )
    port = stack.ports.metrics
    metrics = f"http://127.0.0.1:{port}/metrics" if port else "off (METRICS_PORT=0)"
    return (
        f"\nOpenAI-compatible base URL: {stack.base_url}\n"
        f"gRPC (typed API):           {stack.grpc_target}\n"
        f"{backend}"
        f"Metrics (Prometheus):       {metrics}\n\n"
        f"Try:\n{CURL_EXAMPLE.format(base=stack.base_url)}\n\nCtrl-C stops everything."
    )


def main() -> None:
    try:
        stack = LocalStack(
            ports=Ports.from_env(),
            emulator_latency_s=latency_from_env(),
            emulator_lifecycle=os.environ.get("EMULATOR_LIFECYCLE", "").strip() or "product-page",
            backend=backend_from_env(),
        )
    except ValueError as exc:
        sys.exit(f"configuration error: {exc}")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        stack.start()
    except Exception as exc:
        sys.exit(f"could not start the local stack: {exc}")
    print(banner(stack), flush=True)
    gone = None
    try:
        while not stopping.wait(0.5):
            if gone := stack.exited():
                print(f"{gone} exited; stopping the stack", file=sys.stderr)
                break
    finally:
        print("stopping: the service finishes the requests under way first", flush=True)
        stack.stop()
    if gone:
        sys.exit(1)


if __name__ == "__main__":
    main()
