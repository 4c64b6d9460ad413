"""GET /openapi.json through the real edge: Envoy serves the repository's document as JSON."""

from __future__ import annotations

import json

import httpx

from gateway.render import OPENAPI
from stack.local import LocalStack


def test_the_edge_serves_the_openapi_document(stack: LocalStack) -> None:
    # No API key: the document is public (the stack's keys would refuse other URLs).
    response = httpx.get(f"{stack.envoy.url}/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(OPENAPI.read_text())


def test_only_get_reads_the_document(stack: LocalStack) -> None:
    response = httpx.post(f"{stack.envoy.url}/openapi.json", json={}, timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"
