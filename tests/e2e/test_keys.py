"""API keys, browser origins, request ids and the JSON access log, through the real Envoy.

One stack of its own with keys configured (the shared `stack` fixture runs open); the
service's log goes to a file that the tests read back as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import httpx2
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from service.auth import hash_key
from stack.local import LocalStack, Ports

KEY = "sk-img-test-alice"
NOVA_ONLY_KEY = "sk-img-test-nova-only"
ALLOWED_ORIGIN = "https://app.example.com"
CORE = "stability.stable-image-core-v1:1"
NOVA = "amazon.nova-canvas-v1:0"
PROMPT = "a secret prompt about a lighthouse"
BEARER_TOKEN = "ABSKQmVkcm9ja0FQSUtleS1zZWNyZXQtdG9rZW4"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("keys")
    keys = folder / "keys.json"
    keys.write_text(json.dumps({"keys": [
        {"name": "nova-only", "sha256": hash_key(NOVA_ONLY_KEY), "models": [NOVA]},
    ]}))  # fmt: skip
    env = {
        "API_KEYS": f"alice={hash_key(KEY)}",
        "API_KEYS_FILE": str(keys),
        "CORS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        # botocore logs request headers at debug: the Bedrock API key must not reach the log.
        "LOG_LEVEL": "debug",
        "AWS_BEARER_TOKEN_BEDROCK": BEARER_TOKEN,
    }
    log = folder / "service.log"
    with LocalStack(
        ports=Ports.free(), service_env=env, with_s3=False, service_log=str(log)
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_keyed_emulator(keyed: LocalStack) -> Iterator[None]:
    keyed.emulator.reset()
    yield


def sdk(stack: LocalStack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=60)


def log_lines(stack: LocalStack) -> list[dict[str, Any]]:
    text = Path(stack.service_log).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def access_line(stack: LocalStack, request_id: str) -> dict[str, Any]:
    for _ in range(50):  # the line is written as the call ends, just after the answer
        found = [line for line in log_lines(stack) if line.get("request_id") == request_id]
        if found:
            return found[-1]
        asyncio.run(asyncio.sleep(0.1))
    raise AssertionError(f"no log line for request {request_id}")


@pytest.mark.parametrize("key", [None, "sk-img-wrong"])
def test_missing_or_wrong_key_is_401(keyed: LocalStack, key: str | None) -> None:
    client = sdk(keyed, key or "unused")
    # No key at all: the SDK is told to send no Authorization header.
    headers: dict[str, Any] = {"Authorization": openai.omit} if key is None else {}
    with pytest.raises(openai.AuthenticationError) as info:
        client.images.generate(model=CORE, prompt=PROMPT, extra_headers=headers)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.request_id  # errors carry the request id too
    assert len(keyed.emulator.calls) == 0
    with pytest.raises(openai.AuthenticationError):
        client.models.list(extra_headers=headers)


def test_right_key_gets_an_image_and_one_log_line(keyed: LocalStack) -> None:
    response = sdk(keyed, KEY).images.with_raw_response.generate(
        model=CORE, prompt=PROMPT, size="1024x1024"
    )
    images = response.parse()
    assert images.data and images.data[0].b64_json
    assert response.headers.get_list("x-request-id") == [response.request_id]
    line = access_line(keyed, response.request_id or "")
    assert line["key"] == "alice"
    assert (line["model"], line["n"], line["size"], line["status"]) == (CORE, 1, "1024x1024", 200)
    assert line["outcome"] == "ok" and line["images"] == 1
    assert len(line["bedrock_request_ids"]) == 1  # Bedrock's x-amzn-RequestId, next to ours


def test_the_callers_request_id_is_kept(keyed: LocalStack) -> None:
    images = sdk(keyed, KEY).images.generate(
        model=CORE, prompt=PROMPT, extra_headers={"X-Request-Id": "caller-id-42"}
    )
    assert images._request_id == "caller-id-42"
    assert access_line(keyed, "caller-id-42")["status"] == 200


def test_model_outside_the_allowlist_is_403(keyed: LocalStack) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        sdk(keyed, NOVA_ONLY_KEY).images.generate(model=CORE, prompt=PROMPT)
    assert CORE in info.value.message and info.value.code == "model_not_allowed"
    assert len(keyed.emulator.calls) == 0
    images = sdk(keyed, NOVA_ONLY_KEY).images.generate(model=NOVA, prompt=PROMPT, size="320x320")
    assert len(images.data or []) == 1


def test_grpc_needs_the_key_too(keyed: LocalStack) -> None:
    request = pb.ImageGenerationRequest(model=CORE, prompt=PROMPT)
    with grpc.insecure_channel(keyed.grpc_target) as channel:
        stub = pb_grpc.ImageGenerationStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Generate(request, timeout=30))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        failed: Any = info.value  # a grpc.Call as well as an RpcError
        assert dict(failed.trailing_metadata() or ())["x-request-id"]
        call = stub.Generate(
            request, timeout=30, metadata=(("authorization", f"Bearer {KEY}"),
                                           ("x-request-id", "grpc-caller-7")),
        )  # fmt: skip
        kinds = [event.WhichOneof("event") for event in call]
        assert kinds[-1] == "usage" and "image" in kinds
        trailers: Any = call.trailing_metadata() or ()
        assert dict(trailers)["x-request-id"] == "grpc-caller-7"
        # Health checks need no key (load balancers and Envoy call them).
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert access_line(keyed, "grpc-caller-7")["key"] == "alice"


def test_mcp_needs_the_key(keyed: LocalStack) -> None:
    url = f"{keyed.envoy.url}/mcp"
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert httpx.post(url, json=ping, timeout=10).status_code == 401

    async def generate() -> Any:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            return await client.call_tool(
                "openai_image_generation", {"prompt": PROMPT, "model": CORE}
            )

    result = asyncio.run(generate())
    assert result.is_error is False
    assert [block.type for block in result.content] == ["text", "image"]


def test_foreign_browser_origins_are_refused_before_bedrock(keyed: LocalStack) -> None:
    # A "simple" request (no preflight): a page on any site could send it from a browser.
    body = json.dumps({"model": CORE, "prompt": PROMPT})
    for path in ("/v1/images/generations", "/mcp"):
        answer = httpx.post(
            f"{keyed.envoy.url}{path}",
            content=body,
            headers={
                "Content-Type": "text/plain",
                "Origin": "https://evil.example",
                "Authorization": f"Bearer {KEY}",
            },
            timeout=10,
        )
        assert answer.status_code == 403, path
        assert answer.json()["error"]["code"] == "origin_not_allowed"
    assert len(keyed.emulator.calls) == 0
    preflight = httpx.options(
        f"{keyed.envoy.url}/v1/images/generations",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    answer = httpx.post(
        f"{keyed.base_url}/images/generations",
        json={"model": CORE, "prompt": PROMPT},
        headers={"Origin": ALLOWED_ORIGIN, "Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_log_lines_are_json_without_prompts_keys_or_images(keyed: LocalStack) -> None:
    sdk(keyed, KEY).images.generate(model=CORE, prompt=PROMPT, user="u" * 500)
    lines = log_lines(keyed)
    text = Path(keyed.service_log).read_text()
    assert not any("NO API KEYS" in line["message"] for line in lines)  # keys are configured
    secrets = (PROMPT, KEY, NOVA_ONLY_KEY, hash_key(KEY), hash_key(NOVA_ONLY_KEY), BEARER_TOKEN)
    for secret in secrets:
        assert secret not in text
    assert "iVBORw0KGgo" not in text  # the start of any base64 PNG
    users = [line["user"] for line in lines if "user" in line]
    assert users and all(len(user) <= 130 for user in users)
    assert all(len(line) < 4000 for line in text.splitlines())
