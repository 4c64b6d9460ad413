"""Renders gateway/envoy.yaml.tmpl with ports and limits from the environment.

Usage: python -m gateway.render [OUTPUT]       (stdout when OUTPUT is omitted)
       python -m gateway.render --bundle DIR   (DIR/envoy.yaml + DIR/imagegen.pb, for containers)
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from string import Template

from service.config import (
    DEFAULT_MAX_MESSAGE_BYTES,
    HTTP_BODY_ENVELOPE_BYTES,
    MAX_REQUEST_HEADER_BYTES,
)

GATEWAY_DIR = Path(__file__).resolve().parent
TEMPLATE = GATEWAY_DIR / "envoy.yaml.tmpl"
EDGE_LUA = GATEWAY_DIR / "edge.lua"
OPENAPI = GATEWAY_DIR / "openapi.json"

DEFAULTS: Mapping[str, str] = {
    "HTTP_HOST": "127.0.0.1",
    "HTTP_PORT": "8080",
    "GRPC_HOST": "127.0.0.1",
    "GRPC_PORT": "50051",
    "ENVOY_ADMIN_HOST": "127.0.0.1",
    "ENVOY_ADMIN_PORT": "9901",
    # The listener that serves only /stats/prometheus and /ready.
    "ENVOY_STATS_HOST": "127.0.0.1",
    "ENVOY_STATS_PORT": "9902",
    "DESCRIPTOR_PATH": str(GATEWAY_DIR / "imagegen.pb"),
    # One knob for both hops: the gRPC service's message limit, unless set on its own.
    "BODY_LIMIT_BYTES": os.environ.get("GRPC_MAX_MESSAGE_BYTES", str(DEFAULT_MAX_MESSAGE_BYTES)),
    # Longest silence tolerated on a request; SSE keepalives arrive far more often.
    "IDLE_TIMEOUT": "900s",
    # Comma-separated browser origins allowed by CORS (the service's setting of that name).
    "CORS_ALLOWED_ORIGINS": "",
    # Slow and abusive clients (docs/edge.md).
    "REQUEST_HEADERS_TIMEOUT": "10s",
    "REQUEST_TIMEOUT": "120s",
    "CONNECTION_IDLE_TIMEOUT": "300s",
    "MAX_CONNECTIONS": "10000",
    "UPSTREAM_MAX_REQUESTS": "1000",
    "ENVOY_MAX_HEAP_BYTES": str(2 << 30),
}


PORTS = ("HTTP_PORT", "GRPC_PORT", "ENVOY_ADMIN_PORT", "ENVOY_STATS_PORT")
HOSTS = ("HTTP_HOST", "GRPC_HOST", "ENVOY_ADMIN_HOST", "ENVOY_STATS_HOST")


def check(values: Mapping[str, str]) -> None:
    """Every value goes into YAML as is: check it first, naming the variable."""
    for name in PORTS:  # 0 (any free port) is for tests
        if not (values[name].isdigit() and int(values[name]) < 65536):
            raise ValueError(f"{name} must be a port number (1-65535), got {values[name]!r}")
    for name in HOSTS:
        if not re.fullmatch(r"[A-Za-z0-9.:_-]+", values[name]):
            raise ValueError(f"{name} must be a host name or IP address, got {values[name]!r}")
    if not values["BODY_LIMIT_BYTES"].isdigit():
        raise ValueError(
            f"BODY_LIMIT_BYTES must be a number of bytes, got {values['BODY_LIMIT_BYTES']!r}"
        )
    if not re.fullmatch(r"\d+s", values["IDLE_TIMEOUT"]):
        raise ValueError(f"IDLE_TIMEOUT must be seconds like 900s, got {values['IDLE_TIMEOUT']!r}")
    if not Path(values["DESCRIPTOR_PATH"]).is_file():
        raise ValueError(f"DESCRIPTOR_PATH: no descriptor set at {values['DESCRIPTOR_PATH']}")


def origin_matchers(origins: str) -> str:
    """CORS_ALLOWED_ORIGINS as the CORS policy's list of exact string matchers."""
    exact = [origin.strip().rstrip("/") for origin in origins.split(",") if origin.strip()]
    return json.dumps([{"exact": origin} for origin in exact])


def render(overrides: Mapping[str, str] | None = None) -> str:
    values = {name: os.environ.get(name, default) for name, default in DEFAULTS.items()}
    values.update(overrides or {})
    # The Lua filter's source, inlined as a JSON string (valid YAML) so the rendered config
    # stands alone.
    values["EDGE_LUA"] = json.dumps(EDGE_LUA.read_text())
    # Likewise the OpenAPI document that Envoy serves at GET /openapi.json, and its size (Envoy
    # caps a direct response's body, 4 KiB unless told).
    document = OPENAPI.read_text()
    values["OPENAPI_JSON"] = json.dumps(document)
    values["OPENAPI_BYTES"] = str(len(document.encode()))
    # Not a setting of its own: the gRPC server's metadata limit is derived from it.
    values["HEADER_LIMIT_KB"] = str(MAX_REQUEST_HEADER_BYTES // 1024)
    values["CORS_ORIGIN_MATCHERS"] = origin_matchers(values["CORS_ALLOWED_ORIGINS"])
    check(values)
    # A body of exactly the limit becomes a larger gRPC message (the HttpBody around it):
    # the hops after the buffer filter, which enforces the limit, leave room for that.
    values["GRPC_REQUEST_LIMIT_BYTES"] = str(
        int(values["BODY_LIMIT_BYTES"]) + HTTP_BODY_ENVELOPE_BYTES
    )
    return Template(TEMPLATE.read_text()).substitute(values)


def bundle(directory: Path) -> Path:
    """envoy.yaml and the descriptor set it names, together in `directory` (for an Envoy
    container that has neither Python nor this package); returns the config's path."""
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = directory / "imagegen.pb"
    descriptor.write_bytes(Path(DEFAULTS["DESCRIPTOR_PATH"]).read_bytes())
    config = directory / "envoy.yaml"
    config.write_text(render({"DESCRIPTOR_PATH": str(descriptor)}))
    return config


def main(args: list[str]) -> None:
    try:
        if args[:1] == ["--bundle"] and len(args) == 2:
            print(f"wrote {bundle(Path(args[1]))}")
        elif len(args) == 1:
            Path(args[0]).write_text(render())
        elif not args:
            sys.stdout.write(render())
        else:
            sys.exit(__doc__)
    except ValueError as exc:
        sys.exit(f"configuration error: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
