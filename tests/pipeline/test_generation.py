"""Pipeline behaviour beyond single parameters: n, defaults, formats, errors, headers, URLs."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from PIL import Image

from emulator.bedrock import BedrockEmulator, Call
from imagegen.v1 import images_pb2 as pb
from service.config import ConfigError, Settings
from service.errors import ApiError
from service.pipeline import Event, ImageEvent, Pipeline
from service.storage import ImageStore
from tests.model_ids import CORE, NOVA, NOVA_ALIASES, SD35
from tests.pipeline.conftest import generate, make_request, run_async


@pytest.fixture(autouse=True)
def _fresh_emulator(emulator: BedrockEmulator) -> Iterator[None]:
    emulator.reset()
    yield
    emulator.reset()


def body_of(call: Call) -> dict[str, Any]:
    assert call.body is not None
    return call.body


def digests(images: list[bytes]) -> set[str]:
    return {hashlib.sha256(image).hexdigest() for image in images}


def test_n10_on_nova_is_ten_distinct_images_from_two_calls(
    pipeline: Pipeline, emulator: BedrockEmulator
) -> None:
    outcome = generate(pipeline, model=NOVA, prompt="a fox", n=10, size="320x320",
                       response_format="b64_json")  # fmt: skip
    assert [image.index for image in outcome.images] == list(range(10))
    assert len(digests([image.data for image in outcome.images])) == 10
    counts = [body_of(call)["imageGenerationConfig"]["numberOfImages"] for call in emulator.calls]
    assert counts == [5, 5]


def test_n3_on_stability_is_three_parallel_calls(
    pipeline: Pipeline, emulator: BedrockEmulator
) -> None:
    outcome = generate(pipeline, model=SD35, prompt="a fox", n=3, response_format="b64_json")
    assert len(outcome.images) == 3
    assert len(digests([image.data for image in outcome.images])) == 3
    assert len(emulator.calls) == 3
    assert outcome.usage.usage.output_tokens == 3


def test_default_model_params_apply_and_request_values_win(settings: Settings) -> None:
    defaults = {CORE: {"negative_prompt": "watermark", "seed": 7}}
    pipeline = Pipeline(_Recorder(), None, defaults)
    first = pipeline.prepare(_request(CORE, {}))
    assert first.calls[0].body["negative_prompt"] == "watermark"
    assert first.calls[0].body["seed"] == 7
    second = pipeline.prepare(_request(CORE, {"negative_prompt": "blurry"}))
    assert second.calls[0].body["negative_prompt"] == "blurry"
    third = pipeline.prepare(_request(CORE, {}))
    assert third.calls[0].body["negative_prompt"] == "watermark"
    assert defaults == {CORE: {"negative_prompt": "watermark", "seed": 7}}


def test_nested_defaults_merge_with_request_objects() -> None:
    defaults = {NOVA: {"imageGenerationConfig": {"cfgScale": 9.0}}}
    pipeline = Pipeline(_Recorder(), None, defaults)
    plan = pipeline.prepare(_request(NOVA, {"imageGenerationConfig": {"seed": 3}}))
    assert plan.calls[0].body["imageGenerationConfig"]["cfgScale"] == 9.0
    assert plan.calls[0].body["imageGenerationConfig"]["seed"] == 3
    assert defaults == {NOVA: {"imageGenerationConfig": {"cfgScale": 9.0}}}


def test_bedrock_options_reach_invoke_model_and_user_does_not(
    pipeline: Pipeline, emulator: BedrockEmulator
) -> None:
    generate(
        pipeline, model=NOVA, prompt="a fox", size="320x320", response_format="b64_json",
        user="alice@example.com",
        bedrock={"trace": "enabled", "guardrail_identifier": "gr1", "guardrail_version": "2",
                 "service_tier": "flex", "performance_latency": "optimized"},
    )  # fmt: skip
    [call] = emulator.calls
    assert call.headers["x-amzn-bedrock-trace"] == "ENABLED"
    assert call.headers["x-amzn-bedrock-guardrailidentifier"] == "gr1"
    assert call.headers["x-amzn-bedrock-guardrailversion"] == "2"
    assert call.headers["x-amzn-bedrock-service-tier"] == "flex"
    assert call.headers["x-amzn-bedrock-performanceconfig-latency"] == "optimized"
    assert "alice" not in repr(call.body) and "alice" not in repr(call.headers)


@pytest.mark.parametrize("name", NOVA_ALIASES)
def test_profiles_and_arns_are_invoked_as_named(
    pipeline: Pipeline, emulator: BedrockEmulator, name: str
) -> None:
    outcome = generate(pipeline, model=name, prompt="a fox", size="320x320",
                       response_format="b64_json")  # fmt: skip
    assert len(outcome.images) == 1
    assert emulator.calls[0].model_id == name


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("throttle", 429, "rate_limit_exceeded"), ("model_timeout", 504, "model_timeout"),
     ("unavailable", 503, "service_unavailable"), ("internal", 502, "upstream_error"),
     ("model_error", 502, "model_error"), ("access_denied", 403, "model_access_denied"),
     ("not_found", 404, "model_not_found"), ("filter", 400, "content_policy_violation")],
)  # fmt: skip
@pytest.mark.parametrize("model", [NOVA, SD35])
def test_bedrock_failures_map_to_openai_errors(
    pipeline: Pipeline, model: str, kind: str, status: int, code: str
) -> None:
    with pytest.raises(ApiError) as info:
        generate(pipeline, model=model, prompt=f"a fox [[fault:{kind}]]", size="1024x1024",
                 response_format="b64_json")  # fmt: skip
    assert (info.value.status, info.value.code) == (status, code), info.value.message


def test_native_format_is_not_reencoded(pipeline: Pipeline, emulator: BedrockEmulator) -> None:
    outcome = generate(pipeline, model=SD35, prompt="a fox", output_format="webp",
                       response_format="b64_json")  # fmt: skip
    assert body_of(emulator.calls[0])["output_format"] == "webp"
    assert Image.open(io.BytesIO(outcome.images[0].data)).format == "WEBP"


def test_compression_makes_jpeg_smaller(pipeline: Pipeline) -> None:
    sizes = [
        len(generate(pipeline, model=CORE, prompt="a fox", output_format="jpeg",
                     output_compression=quality, response_format="b64_json",
                     extra_params={"seed": 5}).images[0].data)
        for quality in (100, 20)
    ]  # fmt: skip
    assert sizes[1] < sizes[0]


def test_url_response_is_a_working_presigned_url(pipeline: Pipeline) -> None:
    outcome = generate(pipeline, model=SD35, prompt="a fox", output_format="jpeg",
                       response_format="url")  # fmt: skip
    url = outcome.images[0].url
    parsed = urlparse(url)
    assert parsed.path.endswith(".jpeg") and "X-Amz-Signature=" in parsed.query
    assert "a fox" not in url and "a%20fox" not in url
    download = httpx.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(download.content)).format == "JPEG"


def test_url_keys_never_collide(pipeline: Pipeline) -> None:
    outcome = generate(pipeline, model=NOVA, prompt="a fox", n=4, size="320x320",
                       response_format="url")  # fmt: skip
    assert len({urlparse(image.url).path for image in outcome.images}) == 4


def test_accelerate_and_expiry_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    accelerated = Settings(**{**settings.__dict__, "s3_accelerate": True, "s3_url_expires_s": 600})
    # S3 Transfer Acceleration exists only on AWS's own endpoint.
    with pytest.raises(ConfigError, match="AWS_S3_ACCELERATE"):
        ImageStore(accelerated)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    url = ImageStore(accelerated)._presign("k.png")
    assert urlparse(url).hostname == f"{settings.s3_bucket}.s3-accelerate.amazonaws.com"
    assert "X-Amz-Expires=600" in url


def test_url_without_bucket_is_a_400() -> None:
    pipeline = Pipeline(_Recorder(), None, {})
    with pytest.raises(ApiError) as info:
        pipeline.prepare(_request(NOVA, {}, response_format="url"))
    assert (info.value.status, info.value.param) == (400, "response_format")
    assert "AWS_S3_BUCKET" in info.value.message
    # Without a bucket the default answer is inline.
    assert pipeline.prepare(_request(NOVA, {})).common.response_format == "b64_json"


class _Recorder:
    """Stands in for Bedrock where only planning is tested (prepare() never invokes)."""

    async def invoke(self, model: str, body: object, options: object) -> dict[str, object]:
        raise AssertionError("prepare() must not call Bedrock")


def _request(model: str, extras: dict[str, object], **fields: str) -> pb.ImageGenerationRequest:
    return make_request({"model": model, "prompt": "a fox", "extra_params": extras, **fields})


def test_a_failed_call_keeps_the_images_already_paid_for(
    pipeline: Pipeline, emulator: BedrockEmulator
) -> None:
    """n=6 on SD3.5 with 4 calls at a time: the first answer fails, the 3 other calls already
    at Bedrock still deliver, the 2 calls not yet sent are never sent."""
    emulator.faults.set(SD35, kind="internal", times=1)
    emulator.faults.set(SD35, kind="latency", latency_s=0.3)
    plan = pipeline.prepare(make_request({"model": SD35, "prompt": "a fox", "n": 6,
                                          "response_format": "b64_json"}))  # fmt: skip
    events: list[Event] = []

    async def collect() -> None:
        async for event in pipeline.run(plan):
            events.append(event)

    with pytest.raises(ApiError) as info:
        run_async(collect())
    assert info.value.status == 502
    images = [event for event in events if isinstance(event, ImageEvent)]
    assert len(images) == 3
    assert len(emulator.calls) == 4
