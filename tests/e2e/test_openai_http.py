"""The OpenAI face end to end: openai SDK -> real Envoy -> gRPC service -> boto3 -> emulator."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from gateway.envoy import Envoy
from stack.local import HOST, LocalStack, free_port

# One valid size per model (Stability sizes are those of its aspect ratios).
MODEL_SIZES = [
    ("amazon.nova-canvas-v1:0", "1280x720"),
    ("amazon.titan-image-generator-v1", "768x1152"),
    ("amazon.titan-image-generator-v2:0", "1024x1024"),
    ("stability.sd3-5-large-v1:0", "1344x768"),
    ("stability.stable-image-core-v1:0", "1024x1024"),
    ("stability.stable-image-ultra-v1:0", "832x1216"),
]


def decode(b64: str | None) -> Image.Image:
    assert b64
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


@pytest.mark.parametrize(("model", "size"), MODEL_SIZES)
def test_each_model_returns_an_image_of_the_requested_size(
    client: openai.OpenAI, model: str, size: str
) -> None:
    result = client.images.generate(
        model=model,
        prompt="a red fox",
        response_format="b64_json",
        size=size,  # type: ignore[arg-type]
    )
    assert result.data is not None and len(result.data) == 1
    image = decode(result.data[0].b64_json)
    assert f"{image.width}x{image.height}" == size
    assert image.format == "PNG"
    assert result.usage is not None
    assert result.usage.output_tokens == 1
    assert result.usage.input_tokens == 3
    assert result.usage.total_tokens == 4


def test_url_response_downloads_the_image(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="amazon.nova-canvas-v1:0", prompt="a red fox", response_format="url"
    )
    assert result.data and result.data[0].url
    download = httpx.get(result.data[0].url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(download.content)).size == (1024, 1024)


@pytest.mark.parametrize(
    ("overrides", "param"),
    [({"prompt": ""}, "prompt"), ({"n": 0}, "n"), ({"size": "big"}, "size"),
     ({"n": 11}, "n"), ({"output_format": "gif"}, "output_format")],
)  # fmt: skip
def test_invalid_requests_are_400_naming_the_parameter(
    client: openai.OpenAI, overrides: dict[str, Any], param: str
) -> None:
    request: dict[str, Any] = {"model": "amazon.nova-canvas-v1:0", "prompt": "a fox"}
    request.update(overrides)
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(**request)
    assert info.value.param == param
    assert info.value.type == "invalid_request_error"
    assert param in info.value.message


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.images.generate(model="midjourney-v7", prompt="a fox")
    assert info.value.code == "model_not_found"
    assert "midjourney-v7" in info.value.message


def test_invalid_json_body_is_400(stack: LocalStack) -> None:
    response = httpx.post(f"{stack.base_url}/images/generations", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_unknown_route_is_an_openai_404(stack: LocalStack) -> None:
    response = httpx.get(f"{stack.base_url}/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "unknown_url"


def test_no_envoy_or_grpc_headers_leak(stack: LocalStack) -> None:
    response = httpx.post(
        f"{stack.base_url}/images/generations",
        json={"model": "amazon.nova-canvas-v1:0", "prompt": "a fox", "response_format": "b64_json"},
    )
    assert response.status_code == 200
    leaked = {"grpc-accept-encoding", "x-envoy-upstream-service-time", "x-http-status"}
    assert leaked.isdisjoint(response.headers.keys())
    assert response.headers.get("server", "") != "envoy"


def test_models_endpoint(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert "amazon.nova-canvas-v1:0" in ids and "stability.sd3-5-large-v1:0" in ids
    model = client.models.retrieve("stability.stable-image-core-v1:1")
    assert model.owned_by == "Stability AI"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("midjourney-v7")


def test_largest_answer_passes_through_grpc_and_envoy(client: openai.OpenAI) -> None:
    """n=5 at Nova Canvas's largest size: many megabytes in one JSON answer."""
    result = client.images.generate(
        model="amazon.nova-canvas-v1:0", prompt="a detailed red fox", n=5,
        size="2048x2048", response_format="b64_json",  # type: ignore[arg-type]
    )  # fmt: skip
    assert result.data is not None and len(result.data) == 5
    assert all(decode(item.b64_json).size == (2048, 2048) for item in result.data)


def test_service_down_is_an_openai_503() -> None:
    with Envoy(
        http_port=free_port(), grpc_port=free_port(), admin_port=free_port(), host=HOST
    ) as envoy:
        response = httpx.post(f"{envoy.url}/v1/images/generations", json={"prompt": "x"})
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"


def test_envoy_limits_answer_in_the_openai_envelope(stack: LocalStack) -> None:
    """Body too large (413) and a silent upstream (504) come back OpenAI-shaped."""
    limits = {"BODY_LIMIT_BYTES": "4096", "IDLE_TIMEOUT": "1s"}
    with Envoy(free_port(), stack.ports.grpc, free_port(), HOST, overrides=limits) as envoy:
        url = f"{envoy.url}/v1/images/generations"
        too_large = httpx.post(url, json={"prompt": "x" * 10_000, "model": "m"}, timeout=10)
        slow = httpx.post(
            url,
            json={"model": "amazon.nova-canvas-v1:0", "prompt": "fox [[fault:latency=3]]",
                  "response_format": "b64_json", "size": "320x320"},
            timeout=10,
        )  # fmt: skip
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "request_too_large"
    assert slow.status_code == 504
    assert slow.json()["error"]["type"] == "server_error"


def test_answers_are_not_bounded_by_envoy_buffers(stack: LocalStack) -> None:
    """The JSON answer goes out in 1 MiB messages, so its total size is not limited by the
    transcoder's per-message buffer: here 5 images pass a gateway limited to 1.2 MiB."""
    limits = {"BODY_LIMIT_BYTES": str(int(1.2 * 1024 * 1024))}
    with Envoy(free_port(), stack.ports.grpc, free_port(), HOST, overrides=limits) as envoy:
        response = httpx.post(
            f"{envoy.url}/v1/images/generations",
            json={"model": "amazon.nova-canvas-v1:0", "prompt": "a fox", "n": 5,
                  "size": "2048x2048", "response_format": "b64_json"},
            timeout=60,
        )  # fmt: skip
    assert response.status_code == 200
    assert len(response.content) > 1.2 * 1024 * 1024
    assert len(response.json()["data"]) == 5


def test_partial_failure_still_delivers_the_paid_images(
    client: openai.OpenAI, stack: LocalStack
) -> None:
    """One of three Stability calls fails: the two images Bedrock produced are returned,
    with `incomplete` saying what is missing and why."""
    stack.emulator.faults.set("stability.sd3-5-large-v1:0", kind="internal", times=1)
    response = client.images.with_raw_response.generate(
        model="stability.sd3-5-large-v1:0", prompt="a fox", n=3, response_format="b64_json"
    )
    assert response.status_code == 200
    body = json.loads(response.content)
    assert len(body["data"]) == 2
    assert body["usage"]["output_tokens"] == 2
    assert body["incomplete"]["requested"] == 3
    assert body["incomplete"]["delivered"] == 2
    assert "InternalServer" in body["incomplete"]["error"]["message"]
