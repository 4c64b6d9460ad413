"""Prometheus metrics of the service, served on METRICS_HOST:METRICS_PORT (/metrics).

Labels stay bounded: the base model id (never an ARN or a caller-chosen string), the gRPC
method, the HTTP status, and an outcome: for RPCs one of `interceptors.OUTCOMES` (ok,
client_error, rate_limited, server_error, cancelled), for Bedrock calls `ok`, `cancelled` or
an error code from our own tables. No key, user or request labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# Image generation takes seconds to minutes; the buckets follow that.
_SECONDS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)

RPCS = Counter(
    "imagegen_rpcs_total",
    "Streaming RPCs handled, by the outcome and HTTP status the client got",
    ["method", "model", "outcome", "status"],
)
RPC_SECONDS = Histogram(
    "imagegen_rpc_duration_seconds",
    "Duration of streaming RPCs",
    ["method", "outcome"],
    buckets=_SECONDS,
)
RPCS_IN_FLIGHT = Gauge(
    "imagegen_rpcs_in_flight", "Streaming RPCs under way (a scaling signal)", ["method"]
)
BEDROCK_CALLS = Counter("imagegen_bedrock_calls_total", "InvokeModel calls", ["model", "outcome"])
BEDROCK_SECONDS = Histogram(
    "imagegen_bedrock_call_duration_seconds", "InvokeModel duration", ["model"], buckets=_SECONDS
)
BEDROCK_IN_FLIGHT = Gauge(
    "imagegen_bedrock_calls_in_flight",
    "InvokeModel calls under way, until their work really ends (even after a cancel)",
)
COST_USD = Counter(
    "imagegen_cost_usd_total", "Bedrock cost of the images produced, in USD", ["model"]
)
IMAGES = Counter("imagegen_images_total", "Images delivered to clients", ["model", "output_format"])
SSE_KEEPALIVES = Counter(
    "imagegen_sse_keepalives_total", "SSE keepalive comments sent while Bedrock works"
)


def serve(host: str, port: int) -> None:
    """Start the /metrics HTTP server in a background thread."""
    start_http_server(port, addr=host)
