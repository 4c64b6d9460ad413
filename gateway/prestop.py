"""Kubernetes preStop hook of the service container: take the pod out of traffic first.

Usage: python -m gateway.prestop   (ENVOY_ADMIN_PORT, default 9901; PRESTOP_DELAY, default 5)

POSTs Envoy's `/healthcheck/fail` on loopback (Envoy's `/ready` turns 503, so the pod stops
being ready), then waits PRESTOP_DELAY seconds while Kubernetes removes the pod from the
Service endpoints. When it returns, the kubelet sends SIGTERM to the service, which drains
(DRAIN_GRACE); Envoy, a sidecar, is stopped only after the service has exited.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request


def fail_envoy_health(admin_port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{admin_port}/healthcheck/fail", data=b"", method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return f"Envoy health check failed on purpose ({answer.status})"
    except (urllib.error.URLError, OSError) as exc:
        # The hook must not hold the pod: a missing Envoy only means less to drain.
        return f"could not reach Envoy's admin on port {admin_port}: {exc}"


def main() -> None:
    try:
        port = int(os.environ.get("ENVOY_ADMIN_PORT") or 9901)
        delay_s = float(os.environ.get("PRESTOP_DELAY") or 5)
    except ValueError as exc:
        sys.exit(f"ENVOY_ADMIN_PORT / PRESTOP_DELAY must be numbers: {exc}")
    print(fail_envoy_health(port), flush=True)
    time.sleep(delay_s)


if __name__ == "__main__":
    main()
