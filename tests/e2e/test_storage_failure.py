"""S3 down for `response_format=url`: every image Bedrock was paid for still reaches the
client, inline as b64_json with a notice, after the bounded upload retries (issue 13:
before, the client got 502 `storage_error` and no image, and the message showed the S3
endpoint, bucket and object key)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from stack.local import HOST, LocalStack, Ports, free_port
from tests.billing import billed_images
from tests.model_ids import NOVA, SD35


@pytest.fixture(scope="module")
def s3_down() -> Iterator[LocalStack]:
    # The bucket is configured, but nothing listens where S3 should be.
    dead_s3 = {"AWS_ENDPOINT_URL_S3": f"http://{HOST}:{free_port()}"}
    with LocalStack(ports=Ports.free(), service_env=dead_s3) as running:
        yield running


@pytest.mark.parametrize(("model", "n"), [(NOVA, 1), (NOVA, 3), (SD35, 3)])
def test_every_billed_image_is_delivered_inline(s3_down: LocalStack, model: str, n: int) -> None:
    s3_down.emulator.calls.clear()
    client = openai.OpenAI(base_url=s3_down.base_url, api_key="k", max_retries=0, timeout=60)
    response = client.images.with_raw_response.generate(
        model=model, prompt="a fox", n=n, size="1024x1024", response_format="url"
    )
    assert response.status_code == 200
    body = json.loads(response.content)
    assert len(body["data"]) == n == billed_images(s3_down.emulator)
    for item in body["data"]:
        assert "url" not in item
        assert base64.b64decode(item["b64_json"]).startswith(b"\x89PNG")
    notice = body["notice"]
    assert notice["code"] == "storage_unavailable" and notice["images"] == list(range(n))
    assert "b64_json" in notice["message"]
    # What the client reads says what happened, not where things live.
    text = response.content.decode()
    assert f"{HOST}:" not in text and "generated-images" not in text and "images/20" not in text


def test_streamed_images_carry_the_notice(s3_down: LocalStack) -> None:
    s3_down.emulator.calls.clear()
    body = {"model": NOVA, "prompt": "a fox", "n": 2, "size": "512x512",
            "response_format": "url", "stream": True}  # fmt: skip
    response = httpx.post(f"{s3_down.base_url}/images/generations", json=body, timeout=60)
    assert response.status_code == 200
    completed = [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: {") and "image_generation.completed" in line
    ]
    assert len(completed) == 2 == billed_images(s3_down.emulator)
    assert all(event["b64_json"] and "url" not in event for event in completed)
    assert all(event["notice"]["code"] == "storage_unavailable" for event in completed)


def test_mcp_tool_returns_the_images(s3_down: LocalStack) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "openai_image_generation",
                          "arguments": {"prompt": "a fox", "model": NOVA, "size": "512x512",
                                        "response_format": "url"}}}  # fmt: skip
    response = httpx.post(
        f"{s3_down.envoy.url}/mcp",
        json=message,
        headers={"accept": "application/json, text/event-stream"},
        timeout=60,
    )
    content = response.json()["result"]["content"]
    assert [part["type"] for part in content].count("image") == 1
    assert any("b64_json" in part.get("text", "") for part in content)
