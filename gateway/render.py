"""Renders gateway/envoy.yaml.tmpl with ports and limits from the environment.

Usage: python -m gateway.render [OUTPUT]   (stdout when OUTPUT is omitted)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from string import Template

from service.config import DEFAULT_MAX_MESSAGE_BYTES, MAX_REQUEST_HEADER_BYTES

GATEWAY_DIR = Path(__file__).resolve().parent
TEMPLATE = GATEWAY_DIR / "envoy.yaml.tmpl"
EDGE_LUA = GATEWAY_DIR / "edge.lua"

DEFAULTS: Mapping[str, str] = {
    "HTTP_HOST": "127.0.0.1",
    "HTTP_PORT": "8080",
    "GRPC_HOST": "127.0.0.1",
    "GRPC_PORT": "50051",
    "ENVOY_ADMIN_HOST": "127.0.0.1",
    "ENVOY_ADMIN_PORT": "9901",
    "DESCRIPTOR_PATH": str(GATEWAY_DIR / "imagegen.pb"),
    # One knob for both hops: the gRPC service's message limit, unless set on its own.
    "BODY_LIMIT_BYTES": os.environ.get("GRPC_MAX_MESSAGE_BYTES", str(DEFAULT_MAX_MESSAGE_BYTES)),
    # Longest silence tolerated on a request; SSE keepalives arrive far more often.
    "IDLE_TIMEOUT": "900s",
}


def render(overrides: Mapping[str, str] | None = None) -> str:
    values = {name: os.environ.get(name, default) for name, default in DEFAULTS.items()}
    values.update(overrides or {})
    # The Lua filter's source, inlined as a JSON string (valid YAML) so the rendered config
    # stands alone.
    values["EDGE_LUA"] = json.dumps(EDGE_LUA.read_text())
    # Not a setting of its own: the gRPC server's metadata limit is derived from it.
    values["HEADER_LIMIT_KB"] = str(MAX_REQUEST_HEADER_BYTES // 1024)
    return Template(TEMPLATE.read_text()).substitute(values)


if __name__ == "__main__":
    text = render()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    else:
        sys.stdout.write(text)
