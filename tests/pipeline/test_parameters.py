"""Every model x every parameter of the product page x valid and invalid values.

Valid cases run the whole pipeline against the emulator, which enforces Bedrock's own
per-model rules: a body the service lets through but Bedrock would refuse fails here.
Invalid cases must be a 400 naming the parameter, before any Bedrock call.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from emulator.bedrock import BedrockEmulator
from service.errors import ApiError
from service.pipeline import Pipeline
from tests.model_ids import CORE, CORE_1, NOVA, SD35, TITAN_V1, TITAN_V2, ULTRA, ULTRA_1
from tests.pipeline.conftest import Outcome, generate, make_request

AMAZON = (NOVA, TITAN_V1, TITAN_V2)
STABILITY = (SD35, CORE, ULTRA, CORE_1, ULTRA_1)
ALL = AMAZON + STABILITY

# A small valid size per model keeps the suite fast (Stability sizes are fixed ~1 MP).
SMALL = {NOVA: "512x512", TITAN_V1: "512x512", TITAN_V2: "512x512"}
PROMPT_LIMIT = {NOVA: 1024, TITAN_V1: 512, TITAN_V2: 512} | dict.fromkeys(STABILITY, 10_000)

# (fields, expected size) valid for the model.
VALID: dict[str, list[dict[str, Any]]] = {
    NOVA: [
        {"size": "1280x720"}, {"size": "320x1280"}, {"size": "auto"},
        {"quality": "standard"}, {"quality": "hd"}, {"quality": "high"}, {"quality": "xhigh"},
        {"quality": "low"}, {"quality": "medium"}, {"quality": "auto"},
        {"style": "PHOTOREALISM"}, {"style": "soft_digital_painting"}, {"style": "design-sketch"},
        {"extra_params": {"textToImageParams": {"negativeText": "blurry"}}},
        {"extra_params": {"imageGenerationConfig": {"cfgScale": 7.5, "seed": 42}}},
        {"extra_params": {"taskType": "COLOR_GUIDED_GENERATION",
                          "colorGuidedGenerationParams": {"colors": ["#FF6B6B", "#6BCB77"]}}},
    ],
    TITAN_V1: [
        {"size": "1173x640"}, {"size": "384x576"}, {"quality": "hd"}, {"quality": "standard"},
        {"extra_params": {"textToImageParams": {"negativeText": "blurry"}}},
        {"extra_params": {"imageGenerationConfig": {"cfgScale": 8, "seed": 1}}},
    ],
    TITAN_V2: [
        {"size": "1408x768"}, {"quality": "high"},
        {"extra_params": {"taskType": "COLOR_GUIDED_GENERATION",
                          "colorGuidedGenerationParams": {"colors": ["#2ECC71"]}}},
    ],
    SD35: [
        {"size": "1792x1024"}, {"size": "1024x1792"}, {"quality": "standard"},
        {"extra_params": {"negative_prompt": "blurry", "seed": 4294967294}},
        {"extra_params": {"aspect_ratio": "21:9"}}, {"extra_params": {"mode": "text-to-image"}},
    ],
    CORE: [{"size": "1536x1024"}, {"extra_params": {"negative_prompt": "watermark"}}],
    ULTRA: [{"size": "1024x1536"}, {"extra_params": {"seed": 12}}],
    CORE_1: [{"size": "auto"}],
    ULTRA_1: [{"quality": "auto"}],
}  # fmt: skip

INVALID: dict[str, list[tuple[dict[str, Any], str]]] = {
    NOVA: [
        ({"size": "1000x1000"}, "size"), ({"size": "4096x4096"}, "size"),
        ({"size": "256x256"}, "size"), ({"quality": "ultra"}, "quality"),
        ({"style": "vivid"}, "style"),
        ({"extra_params": {"textToImageParams": {"negativeText": ""}}},
         "textToImageParams.negativeText"),
        ({"extra_params": {"imageGenerationConfig": {"numberOfImages": 2}}},
         "imageGenerationConfig.numberOfImages"),
        ({"extra_params": {"taskType": "INPAINTING"}}, "taskType"),
        ({"extra_params": {"taskType": "COLOR_GUIDED_GENERATION"}},
         "colorGuidedGenerationParams.colors"),
        ({"extra_params": {"negative_prompt": "x"}}, "negative_prompt"),
    ],
    TITAN_V1: [
        ({"size": "1024x768"}, "size"), ({"style": "PHOTOREALISM"}, "style"),
        ({"extra_params": {"taskType": "COLOR_GUIDED_GENERATION"}}, "taskType"),
        ({"extra_params": {"imageGenerationConfig": {"cfgScale": 11}}},
         "imageGenerationConfig.cfgScale"),
    ],
    TITAN_V2: [({"size": "2048x2048"}, "size"), ({"quality": "best"}, "quality")],
    SD35: [
        ({"quality": "hd"}, "quality"), ({"style": "anime"}, "style"),
        ({"extra_params": {"style_preset": "anime"}}, "style_preset"),
        ({"extra_params": {"cfg_scale": 7}}, "cfg_scale"),
        ({"extra_params": {"seed": 4294967295}}, "seed"),
        ({"extra_params": {"aspect_ratio": "7:3"}}, "aspect_ratio"),
    ],
    CORE: [({"extra_params": {"mode": "text-to-image"}}, "mode")],
    ULTRA: [({"extra_params": {"image": "abc"}}, "image")],
    CORE_1: [({"style": "PHOTOREALISM"}, "style")],
    ULTRA_1: [({"quality": "high"}, "quality")],
}  # fmt: skip

# Model-independent parameters: the same rules for every model.
COMMON_INVALID: list[tuple[dict[str, Any], str]] = [
    ({"prompt": ""}, "prompt"), ({"prompt": "   "}, "prompt"),
    ({"n": 0}, "n"), ({"n": 11}, "n"), ({"n": -1}, "n"),
    ({"size": "big"}, "size"), ({"size": "0x512"}, "size"), ({"size": "512"}, "size"),
    ({"response_format": "xml"}, "response_format"),
    ({"output_format": "gif"}, "output_format"), ({"output_format": "svg"}, "output_format"),
    ({"output_compression": 0}, "output_compression"),
    ({"output_compression": 101}, "output_compression"),
    ({"partial_images": 4}, "partial_images"), ({"partial_images": -1}, "partial_images"),
    ({"background": "transparent"}, "background"), ({"background": "opaque"}, "background"),
    ({"moderation": "low"}, "moderation"),
    ({"bedrock": {"trace": "verbose"}}, "X-Amzn-Bedrock-Trace"),
    ({"bedrock": {"service_tier": "gold"}}, "X-Amzn-Bedrock-Service-Tier"),
    ({"bedrock": {"performance_latency": "fast"}}, "X-Amzn-Bedrock-PerformanceConfig-Latency"),
    ({"bedrock": {"guardrail_identifier": "abc123"}}, "X-Amzn-Bedrock-GuardrailVersion"),
    ({"bedrock": {"guardrail_identifier": "abc123", "guardrail_version": "v1"}},
     "X-Amzn-Bedrock-GuardrailVersion"),
    ({"bedrock": {"guardrail_identifier": "Not Valid!", "guardrail_version": "1"}},
     "X-Amzn-Bedrock-GuardrailIdentifier"),
]  # fmt: skip

COMMON_VALID: list[dict[str, Any]] = [
    {"background": "auto", "moderation": "auto"},
    {"user": "user-1234", "safety_identifier": "hashed-id"},
    {"output_format": "jpeg", "output_compression": 40},
    {"output_format": "webp"}, {"output_format": "JPG"}, {"output_format": "png"},
    {"response_format": "url"},
    {"bedrock": {"trace": "Enabled_Full", "guardrail_identifier": "abc123",
                 "guardrail_version": "DRAFT", "service_tier": "PRIORITY",
                 "performance_latency": "optimized"}},
]  # fmt: skip


def base(model: str) -> dict[str, Any]:
    request: dict[str, Any] = {"model": model, "prompt": "a red fox", "response_format": "b64_json"}
    if model in SMALL:
        request["size"] = SMALL[model]
    return request


def check_images(outcome: Outcome, fields: dict[str, Any]) -> None:
    common = outcome.plan.common
    assert len(outcome.images) == common.n
    for image in outcome.images:
        data = httpx.get(image.url).content if common.response_format == "url" else image.data
        decoded = Image.open(io.BytesIO(data))
        assert decoded.size == outcome.plan.size
        assert decoded.format == common.output_format.upper()
    assert outcome.usage.usage.output_tokens == common.n


def rejected(pipeline: Pipeline, fields: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        pipeline.prepare(make_request(fields))
    assert info.value.status == 400, info.value.message
    return info.value


@pytest.mark.parametrize(
    ("model", "fields"), [(m, f) for m in ALL for f in VALID[m]] + [(m, f) for m in ALL
                                                                    for f in COMMON_VALID]
)  # fmt: skip
def test_valid_values_reach_bedrock_and_come_back(
    pipeline: Pipeline, emulator: BedrockEmulator, model: str, fields: dict[str, Any]
) -> None:
    request = base(model) | fields
    outcome = generate(pipeline, **request)
    check_images(outcome, request)


@pytest.mark.parametrize(
    ("model", "fields", "param"),
    [(m, f, p) for m in ALL for f, p in INVALID[m]] + [(m, f, p) for m in ALL
                                                       for f, p in COMMON_INVALID],
)  # fmt: skip
def test_invalid_values_are_400_naming_the_parameter(
    pipeline: Pipeline, model: str, fields: dict[str, Any], param: str
) -> None:
    error = rejected(pipeline, base(model) | fields)
    assert error.param == param
    assert error.error_type == "invalid_request_error"


@pytest.mark.parametrize("model", ALL)
def test_prompt_length_limit_per_model(pipeline: Pipeline, model: str) -> None:
    assert rejected(pipeline, base(model) | {"prompt": "x" * (PROMPT_LIMIT[model] + 1)}).param == (
        "prompt"
    )
    generate(pipeline, **base(model) | {"prompt": "x" * PROMPT_LIMIT[model]})


@pytest.mark.parametrize("model", ALL)
def test_every_model_rejects_unknown_extras(pipeline: Pipeline, model: str) -> None:
    error = rejected(pipeline, base(model) | {"extra_params": {"unknown_knob": 1}})
    assert (error.param, error.code) == ("unknown_knob", "unsupported_parameter")
