"""Stability's per-model rules (reference §4.3), checked in the service's adapter and, for the
same bodies, in the emulator: both must refuse what Bedrock refuses and accept what it takes."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from emulator.models import MODELS, BedrockError, validate_body
from service.errors import ApiError
from service.models.base import GenerationParams
from service.models.stability import StabilityImage
from tests.model_ids import CORE, SD35, ULTRA

CORE_V0 = "stability.stable-image-core-v1:0"
ULTRA_V0 = "stability.stable-image-ultra-v1:0"
STABILITY = (SD35, CORE, CORE_V0, ULTRA, ULTRA_V0)
NOT_ON_CORE_OR_ULTRA = {"mode": "text-to-image", "image": "aW1n", "strength": 0.5,
                        "style_preset": "anime", "width": 1024, "height": 1024}  # fmt: skip


def png_b64(size: tuple[int, int] = (64, 64)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def build(model: str, **overrides: Any) -> list[dict[str, Any]]:
    values: dict[str, Any] = {
        "model_id": model, "invoke_id": model, "prompt": "a red fox", "n": 1, "size": None,
        "quality": None, "style": None, "output_format": "png", "extras": {},
    } | overrides  # fmt: skip
    return [call.body for call in StabilityImage().build_calls(GenerationParams(**values))]


def refused(model: str, **overrides: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        build(model, **overrides)
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize("model", (CORE, CORE_V0, ULTRA, ULTRA_V0))
@pytest.mark.parametrize("key", sorted(NOT_ON_CORE_OR_ULTRA))
def test_core_and_ultra_refuse_what_they_do_not_document(model: str, key: str) -> None:
    error = refused(model, extras={key: NOT_ON_CORE_OR_ULTRA[key]})
    assert error.param == key
    assert "Accepted extra parameters: aspect_ratio, negative_prompt, seed." in error.message
    with pytest.raises(BedrockError) as bedrock:  # the emulator agrees
        validate_body(MODELS[model], {"prompt": "a red fox", key: NOT_ON_CORE_OR_ULTRA[key]})
    assert bedrock.value.code == "ValidationException"


@pytest.mark.parametrize("model", STABILITY)
def test_every_body_the_adapter_builds_passes_the_emulator(model: str) -> None:
    extras = {"negative_prompt": "blurry", "seed": 4_294_967_294, "aspect_ratio": "9:21"}
    if model == SD35:
        extras["mode"] = "text-to-image"
    for output_format in ("png", "jpeg", "webp"):
        for body in build(model, n=2, size="1536x1024", output_format=output_format,
                          extras=extras):  # fmt: skip
            generation = validate_body(MODELS[model], body)
            assert (generation.width, generation.height) == (640, 1536)
            assert set(body) <= {"prompt", "negative_prompt", "aspect_ratio", "seed",
                                 "output_format", "mode"}  # fmt: skip


@pytest.mark.parametrize("model", STABILITY)
def test_style_has_no_stability_equivalent(model: str) -> None:
    error = refused(model, style="vivid")
    assert error.param == "style"
    assert "accepted values: none" in error.message and "'vivid'" in error.message


@pytest.mark.parametrize("model", STABILITY)
def test_quality_other_than_the_default_lists_the_accepted_values(model: str) -> None:
    for quality in ("high", "hd", "premium", "low"):
        error = refused(model, quality=quality)
        assert error.param == "quality"
        assert "Accepted values: auto, standard." in error.message
    assert build(model, quality="standard")  # OpenAI's "standard" is the one level there is


@pytest.mark.parametrize(
    ("extras", "param"),
    [
        ({"mode": "image-to-image", "image": png_b64(), "strength": 0.5}, "mode"),
        ({"image": png_b64()}, "image"),
        ({"strength": 0.4}, "strength"),
    ],
)
def test_sd35_image_to_image_is_sent_to_the_edits_endpoint(
    extras: dict[str, Any], param: str
) -> None:
    error = refused(SD35, extras=extras)
    assert (error.param, error.code) == (param, "unsupported_parameter")
    assert "/v1/images/edits" in error.message and SD35 in error.message
    # The emulator, like Bedrock, refuses the aspect_ratio a generation always sends with it.
    with pytest.raises(BedrockError):
        validate_body(MODELS[SD35], {"prompt": "p", "aspect_ratio": "1:1", **extras})
