"""Every example request of the product page (shared/spec/images-api.md), sent as printed,
plus a representative subset of the parameter table through the openai SDK."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from stack.local import LocalStack, Ports

HEADERS = {"Authorization": "Bearer sk-anything", "Content-Type": "application/json"}

# The JSON bodies of the page's curl examples, verbatim.
PAGE_EXAMPLES: list[dict[str, Any]] = [
    {"model": "stability.stable-image-core-v1:0",
     "prompt": "A serene mountain landscape at sunset",
     "negative_prompt": "blurry, distorted, low quality, watermark"},
    {"model": "amazon.nova-canvas-v1:0", "prompt": "An abstract watercolor painting",
     "textToImageParams": {"negativeText": "blurry, distorted, low quality, watermark"}},
    {"model": "amazon.nova-canvas-v1:0", "prompt": "A futuristic cityscape at night"},
    {"model": "amazon.nova-canvas-v1:0", "prompt": "A sunset landscape",
     "taskType": "COLOR_GUIDED_GENERATION",
     "colorGuidedGenerationParams": {"colors": ["#FF6B6B", "#FFD93D", "#6BCB77"]}},
    {"model": "amazon.titan-image-generator-v2:0",
     "prompt": "A beautiful landscape with mountains"},
    {"model": "amazon.titan-image-generator-v2:0", "prompt": "Nature scene with colors",
     "taskType": "COLOR_GUIDED_GENERATION",
     "colorGuidedGenerationParams": {"colors": ["#2ECC71", "#3498DB", "#F39C12"]}},
    {"model": "stability.stable-image-ultra-v1:0",
     "prompt": "A photorealistic mountain landscape at sunset"},
    {"prompt": "A serene mountain landscape at sunset, photorealistic",
     "model": "amazon.nova-canvas-v1:0", "size": "1024x1024", "quality": "high",
     "response_format": "url"},
    {"prompt": "A futuristic cityscape with flying cars, digital art style",
     "model": "amazon.nova-canvas-v1:0", "response_format": "b64_json"},
]  # fmt: skip


def fetch_image(item: dict[str, Any]) -> Image.Image:
    if "url" in item:
        download = httpx.get(item["url"], timeout=10)
        assert download.status_code == 200
        data = download.content
    else:
        data = base64.b64decode(item["b64_json"])
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("body", PAGE_EXAMPLES, ids=lambda body: str(body["model"]))
def test_page_example_works_as_printed(stack: LocalStack, body: dict[str, Any]) -> None:
    response = httpx.post(
        f"{stack.base_url}/images/generations", headers=HEADERS, json=body, timeout=60
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["data"]) == 1
    image = fetch_image(answer["data"][0])
    assert image.format == "PNG"
    assert answer["usage"]["output_tokens"] == 1


def test_page_example_with_bedrock_headers(stack: LocalStack) -> None:
    response = httpx.post(
        f"{stack.base_url}/images/generations",
        headers={**HEADERS, "X-Amzn-Bedrock-Service-Tier": "priority",
                 "X-Amzn-Bedrock-PerformanceConfig-Latency": "optimized"},
        json={"model": "amazon.nova-canvas-v1:0",
              "prompt": "A serene mountain landscape at sunset"},
        timeout=60,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    [call] = stack.emulator.calls
    assert call.headers["x-amzn-bedrock-service-tier"] == "priority"
    assert call.headers["x-amzn-bedrock-performanceconfig-latency"] == "optimized"


def test_page_streaming_example(stack: LocalStack) -> None:
    body = {"prompt": "An abstract watercolor painting of emotions",
            "model": "amazon.nova-canvas-v1:0", "stream": True, "partial_images": 3}  # fmt: skip
    with httpx.stream("POST", f"{stack.base_url}/images/generations", headers=HEADERS,
                      json=body, timeout=60) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [
        line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event:")
    ]
    assert events == ["image_generation.partial_image"] * 3 + ["image_generation.completed"]
    assert text.rstrip().endswith("data: [DONE]")


def test_sdk_extra_body_and_headers_reach_bedrock(client: openai.OpenAI, stack: LocalStack) -> None:
    result = client.images.generate(
        model="stability.sd3-5-large-v1:0", prompt="a red fox", response_format="b64_json",
        output_format="webp", size="1792x1024",
        extra_body={"negative_prompt": "blurry", "seed": 99},
        extra_headers={"X-Amzn-Bedrock-Trace": "enabled",
                       "X-Amzn-Bedrock-GuardrailIdentifier": "gr1",
                       "X-Amzn-Bedrock-GuardrailVersion": "1"},
    )  # fmt: skip
    assert result.data is not None
    image = fetch_image({"b64_json": result.data[0].b64_json})
    assert (image.format, image.size) == ("WEBP", (1344, 768))
    assert result.size == "1344x768"
    [call] = stack.emulator.calls
    assert call.body == {"prompt": "a red fox", "aspect_ratio": "16:9", "output_format": "webp",
                         "negative_prompt": "blurry", "seed": 99}  # fmt: skip
    assert call.headers["x-amzn-bedrock-trace"] == "ENABLED"


def test_sdk_titan_jpeg_url(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="amazon.titan-image-generator-v1", prompt="a red fox", response_format="url",
        output_format="jpeg", output_compression=60, size="1152x768", n=2,
    )  # fmt: skip
    assert result.data is not None and len(result.data) == 2
    for item in result.data:
        image = fetch_image({"url": item.url})
        assert (image.format, image.size) == ("JPEG", (1152, 768))


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"extra_body": {"style_preset": "anime"}}, "style_preset"),
     ({"quality": "hd"}, "quality"),
     ({"extra_headers": {"X-Amzn-Bedrock-Service-Tier": "gold"}}, "X-Amzn-Bedrock-Service-Tier"),
     ({"background": "transparent"}, "background"), ({"moderation": "low"}, "moderation")],
)  # fmt: skip
def test_sdk_rejections_name_the_parameter(
    client: openai.OpenAI, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="stability.stable-image-ultra-v1:1", prompt="a fox", **kwargs)
    assert info.value.param == param


def test_sdk_content_filter_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="stability.stable-image-core-v1:1",
                               prompt="a fox [[fault:filter]]")  # fmt: skip
    assert info.value.code == "content_policy_violation"
    assert "content filter" in info.value.message


def test_sdk_throttling_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.images.generate(model="amazon.nova-canvas-v1:0", prompt="a fox [[fault:throttle]]",
                               size="320x320")  # fmt: skip
    assert "Throttling" in info.value.message
    assert json.dumps(info.value.body)  # an OpenAI error body, not empty


def test_page_default_model_params_example() -> None:
    """The page's DEFAULT_MODEL_PARAMS example, set in the service's environment."""
    defaults = {"stability.stable-image-core-v1:0": {
        "negative_prompt": "blurry, low quality, watermark"}}  # fmt: skip
    env = {"DEFAULT_MODEL_PARAMS": json.dumps(defaults)}
    with LocalStack(ports=Ports.free(), service_env=env, with_s3=False) as stack:
        client = openai.OpenAI(base_url=stack.base_url, api_key="x", max_retries=0)
        client.images.generate(model="stability.stable-image-core-v1:0", prompt="a fox")
        client.images.generate(model="stability.stable-image-core-v1:0", prompt="a fox",
                               extra_body={"negative_prompt": "people"})  # fmt: skip
        first, second = stack.emulator.calls
    assert first.body is not None and second.body is not None
    assert first.body["negative_prompt"] == "blurry, low quality, watermark"
    assert second.body["negative_prompt"] == "people"
