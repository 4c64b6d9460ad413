"""Hostile input, generated: hypothesis against the real stack through Envoy (issue 13).

Random and mutated JSON bodies, raw bytes, paths, methods, query strings, headers and MCP
messages. Invariants on every answer:
- no 5xx, except an upstream fault mapped by the service (502/503/504 with its own code);
- every non-2xx body is an OpenAI error envelope (on /mcp a JSON-RPC error is also right);
- every request is answered within its time bound;
and the service is alive and generating at the end.

`make test` runs FUZZ_EXAMPLES (default 500) per test, 2,000 requests; `make fuzz` runs
2,500 per test, 10,000 in all. Every example counted sends exactly one request (inputs no
client can send are rejected, so they do not count), and each test checks at the end that
it sent at least FUZZ_EXAMPLES; with FUZZ_LOG set it appends what it sent (requests by
status class, seconds) to that file as a JSON line.
"""

from __future__ import annotations

import json
import os
import string
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

from stack.local import LocalStack
from tests.model_ids import NOVA, SD35, TITAN_V2

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
TIME_BOUND_S = 30.0
# Codes the service gives a fault of Bedrock (or of the storage behind it): a 5xx is right.
UPSTREAM_CODES = {"upstream_error", "upstream_unreachable", "upstream_timeout", "model_error",
                  "model_timeout", "service_unavailable", "server_shutting_down"}  # fmt: skip
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

PATHS = ["/v1/images/generations", "/v1/images/edits", "/v1/images/variations", "/v1/models",
         "/v1/models/" + NOVA, "/mcp", "/openapi.json", "/", "/v1", "/v1/images"]  # fmt: skip
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
SMALL_SIZES = ["320x320", "512x512", "1024x1024", "auto", "0x0", "99999x1", "axb", ""]

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False),
    st.text(max_size=40),
)  # fmt: skip
json_value = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10),
                                                                      children, max_size=4),
    max_leaves=12,
)  # fmt: skip
# Text that is not always valid Unicode once it is JSON: lone surrogates, NUL, controls.
nasty_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["\ud800", "a\x00b", "\udfff\ud800", "\u202e", "[[x", "%ff", "\\u0000"]),
)

generation_body = st.fixed_dictionaries(
    {
        "model": st.sampled_from([NOVA, SD35, TITAN_V2, "", "nope", "us." + NOVA]) | nasty_text,
        "prompt": nasty_text,
    },
    optional={
        "n": st.integers(-2, 4) | json_value,
        "size": st.sampled_from(SMALL_SIZES) | json_value,
        "quality": st.sampled_from(["auto", "standard", "hd", "high", "x"]) | json_value,
        "response_format": st.sampled_from(["url", "b64_json", "x"]) | json_value,
        "output_format": st.sampled_from(["png", "jpeg", "webp", "gif"]) | json_value,
        "output_compression": st.integers(-5, 105) | json_value,
        "stream": st.booleans() | json_value,
        "partial_images": st.integers(-1, 4) | json_value,
        "style": nasty_text,
        "user": nasty_text,
        "background": st.sampled_from(["auto", "transparent"]) | json_value,
        "negative_prompt": nasty_text,
        "cfg_scale": json_value,
        "seed": json_value,
        "textToImageParams": json_value,
        "imageGenerationConfig": json_value,
    },
)


def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


header_name = st.sampled_from([
    "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-status", "te", "x-a-bin",
    "content-type", "x-envoy-upstream-rq-timeout-ms", "x-envoy-original-path", "x-http-status",
    "x-request-id", "x-amzn-bedrock-trace", "x-amzn-bedrock-service-tier", "cookie",
    "mcp-protocol-version", "origin", "accept", "transfer-encoding",
]) | st.text(string.ascii_lowercase + "-", min_size=1, max_size=20)  # fmt: skip
header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
) | st.sampled_from(["1n", "10m", "gzip", "foo", "!!!", "application/grpc", "trailers"])
headers = st.dictionaries(header_name, header_value, max_size=4)


@pytest.fixture(scope="module")
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.envoy.url, timeout=TIME_BOUND_S) as client:
        yield client


class Sent:
    """Requests one fuzz test sent, by status class (2xx, 4xx, 5xx)."""

    def __init__(self) -> None:
        self.by_class: Counter[str] = Counter()

    @property
    def requests(self) -> int:
        return sum(self.by_class.values())


@pytest.fixture
def sent(request: pytest.FixtureRequest) -> Iterator[Sent]:
    """Set up once per test function (not per example): it counts the whole run."""
    record, started = Sent(), time.monotonic()
    yield record
    if log := os.environ.get("FUZZ_LOG"):
        line = {"test": request.node.name, "requests": record.requests,
                "by_status": dict(record.by_class),
                "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
        with open(log, "a") as out:
            out.write(json.dumps(line) + "\n")
    assert record.requests >= EXAMPLES, f"only {record.requests} requests sent"


def check(response: httpx.Response, method: str, path: str) -> None:
    """The invariants of one answer."""
    status = response.status_code
    where = f"{method} {path} -> {status}: {response.content[:300]!r}"
    body: Any = None
    if status >= 400 and method != "HEAD":
        try:
            body = json.loads(response.content)
        except ValueError:
            pytest.fail(f"non-JSON error body: {where}")
        jsonrpc = path.startswith("/mcp") and isinstance(body, dict) and body.get("jsonrpc")
        if jsonrpc:
            error = body.get("error")
            assert isinstance(error, dict) and isinstance(error.get("code"), int), where
        else:
            assert isinstance(body, dict) and isinstance(body.get("error"), dict), where
            error = body["error"]
            assert set(error) == {"message", "type", "param", "code"}, where
            assert isinstance(error["message"], str) and error["message"], where
    if status >= 500:
        code = body["error"].get("code") if isinstance(body, dict) else None
        assert status in (502, 503, 504) and code in UPSTREAM_CODES, f"5xx: {where}"
    assert "grpc-status" not in response.headers and "grpc-message" not in response.headers, where


def send(http: httpx.Client, sent: Sent, method: str, path: str, **kwargs: Any) -> None:
    if "headers" in kwargs:  # values beyond ASCII go out as raw (latin-1) bytes
        kwargs["headers"] = {k: v.encode("latin-1") for k, v in kwargs["headers"].items()}
    try:  # an absolute URL: httpx refuses a relative one that starts with "//"
        response = http.request(method, str(http.base_url).rstrip("/") + path, **kwargs)
    except httpx.TimeoutException:
        pytest.fail(f"no answer within {TIME_BOUND_S} s: {method} {path}")
    except httpx.LocalProtocolError:
        reject()  # httpx itself will not send this (e.g. a transfer-encoding it cannot do)
    sent.by_class[f"{response.status_code // 100}xx"] += 1
    check(response, method, path)


@FUZZ
@given(body=generation_body, extra_headers=headers, depth=st.sampled_from([0, 0, 0, 40, 2000]))
def test_fuzz_generation_bodies(
    http: httpx.Client, sent: Sent, body: dict[str, Any], extra_headers: dict[str, str],
    depth: int,
) -> None:  # fmt: skip
    if depth:
        body = {**body, "nested": deep(depth)}
    try:
        content = json.dumps(body).encode()
    except RecursionError:
        reject()
    send(http, sent, "POST", "/v1/images/generations", content=content,
         headers={"content-type": "application/json", **extra_headers})  # fmt: skip


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    path=st.sampled_from(PATHS) | st.text(string.printable, max_size=30).map(lambda t: "/" + t),
    suffix=st.sampled_from(
        [
            "",
            "?",
            "?model=%ff",
            "?foo=1",
            "/%00",
            "/%ed%a0%80",
            "?a=%e9",
            "/../../etc",
            "//",
            "%2F",
            "?model=" + NOVA,
        ]
    ),
    content=st.binary(max_size=200) | st.just(b""),
)
def test_fuzz_methods_paths_and_raw_bytes(
    http: httpx.Client, sent: Sent, method: str, path: str, suffix: str, content: bytes
) -> None:
    target = (path + suffix).replace(" ", "%20").replace("#", "%23")
    assume(all(ord(c) >= 0x21 for c in target))  # else no HTTP request line a client can send
    send(http, sent, method, target, content=content if method not in ("GET", "HEAD") else None)


@FUZZ
@given(extra_headers=headers, path=st.sampled_from(["/v1/models", "/v1/images/generations"]))
def test_fuzz_headers(
    http: httpx.Client, sent: Sent, extra_headers: dict[str, str], path: str
) -> None:
    body = {"model": NOVA, "prompt": "a fox", "size": "320x320", "response_format": "b64_json"}
    method = "GET" if path == "/v1/models" else "POST"
    send(http, sent, method, path, headers=extra_headers, json=body if method == "POST" else None)


mcp_message = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_value,
     "method": st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "x"])
     | json_value},
    optional={
        "id": st.integers() | st.text(max_size=5) | st.none(),
        "params": st.fixed_dictionaries(
            {"name": st.sampled_from(["openai_image_generation", "x"]) | json_value},
            optional={"arguments": generation_body | json_value},
        ) | json_value,
    },
)  # fmt: skip


@FUZZ
@given(message=mcp_message | json_value, extra_headers=headers)
def test_fuzz_mcp(
    http: httpx.Client, sent: Sent, message: Any, extra_headers: dict[str, str]
) -> None:
    send(http, sent, "POST", "/mcp", content=json.dumps(message).encode(),
         headers={"content-type": "application/json",
                  "accept": "application/json, text/event-stream", **extra_headers})  # fmt: skip


def test_service_alive_after_the_fuzz(stack: LocalStack, http: httpx.Client) -> None:
    """Runs after the fuzz tests of this module on the same worker's stack."""
    assert stack.service is not None and stack.service.poll() is None
    assert http.get("/v1/models").status_code == 200
    response = http.post(
        "/v1/images/generations",
        json={"model": NOVA, "prompt": "a fox", "size": "320x320", "response_format": "b64_json"},
    )
    assert response.status_code == 200 and response.json()["data"][0]["b64_json"]
