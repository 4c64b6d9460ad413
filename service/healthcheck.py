"""Container health check: exit 0 if the local gRPC service reports SERVING.

Usage: python -m service.healthcheck   (GRPC_PORT, default 50051; on 127.0.0.1)
Used by the Dockerfile's HEALTHCHECK; Kubernetes probes the same gRPC health service natively.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> None:
    target = f"127.0.0.1:{os.environ.get('GRPC_PORT') or 50051}"
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as exc:
        sys.exit(f"{target}: {exc.code().name}")
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        sys.exit(f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}")


if __name__ == "__main__":
    main()
