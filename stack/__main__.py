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
  -d '{{"model": "amazon.nova-canvas-v1:0", "prompt": "a red fox", "response_format": "url"}}'"""


def main() -> None:
    try:
        latency_s = float(os.environ.get("EMULATOR_LATENCY_S", "0") or 0)
        stack = LocalStack(ports=Ports.from_env(), emulator_latency_s=latency_s)
    except ValueError as exc:
        sys.exit(f"configuration error: {exc}")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        stack.start()
    except Exception as exc:
        sys.exit(f"could not start the local stack: {exc}")
    print(
        f"\nOpenAI-compatible base URL: {stack.base_url}\n"
        f"gRPC (typed API):           {stack.grpc_target}\n"
        f"Bedrock emulator:           {stack.emulator.url}\n"
        f"Local S3:                   {stack.s3.url if stack.s3 else '-'}\n"
        f"Metrics (Prometheus):       http://127.0.0.1:{stack.ports.metrics}/metrics\n\n"
        f"Try:\n{CURL_EXAMPLE.format(base=stack.base_url)}\n\nCtrl-C stops everything.",
        flush=True,
    )
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
