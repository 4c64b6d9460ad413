"""Adapters: OpenAI parameters -> Bedrock bodies, per model, valid and invalid."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import ApiError
from service.models.base import GenerationParams
from service.models.registry import resolve
from service.models.stability import nearest_aspect_ratio
from tests.model_ids import CORE, NOVA, NOVA_ALIASES, SD35, TITAN_V1, TITAN_V2, ULTRA


def params(model: str, **overrides: Any) -> GenerationParams:
    values: dict[str, Any] = {
        "model_id": resolve(model).spec.model_id,
        "invoke_id": model,
        "prompt": "a red fox",
        "n": 1,
        "size": None,
        "quality": None,
        "style": None,
        "output_format": "png",
        "extras": {},
    }
    values.update(overrides)
    return GenerationParams(**values)


def bodies(model: str, **overrides: Any) -> list[dict[str, Any]]:
    return [call.body for call in resolve(model).family.build_calls(params(model, **overrides))]


def rejected(model: str, **overrides: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        bodies(model, **overrides)
    assert info.value.status == 400
    return info.value


def test_nova_text_image_body() -> None:
    [body] = bodies(NOVA, size=(1280, 720), quality="hd", style="photorealism")
    assert 0 <= body["imageGenerationConfig"].pop("seed") <= 2_147_483_646
    assert body == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a red fox", "style": "PHOTOREALISM"},
        "imageGenerationConfig": {
            "width": 1280, "height": 720, "quality": "premium", "numberOfImages": 1,
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("quality", "bedrock"),
    [("standard", "standard"), ("low", "standard"), ("medium", "standard"),
     ("high", "premium"), ("hd", "premium"), ("xhigh", "premium")],
)  # fmt: skip
def test_amazon_quality_map(quality: str, bedrock: str) -> None:
    for model in (NOVA, TITAN_V2):
        [body] = bodies(model, quality=quality)
        assert body["imageGenerationConfig"]["quality"] == bedrock


def test_nova_color_guided_generation() -> None:
    extras = {
        "taskType": "COLOR_GUIDED_GENERATION",
        "colorGuidedGenerationParams": {"colors": ["#FF6B6B", "#FFD93D"]},
    }
    [body] = bodies(NOVA, extras=extras)
    assert body["colorGuidedGenerationParams"] == {
        "text": "a red fox", "colors": ["#FF6B6B", "#FFD93D"],
    }  # fmt: skip
    assert "textToImageParams" not in body


def test_nova_negative_text_extra_merges_into_task_params() -> None:
    [body] = bodies(NOVA, extras={"textToImageParams": {"negativeText": "blurry"}})
    assert body["textToImageParams"] == {"text": "a red fox", "negativeText": "blurry"}


@pytest.mark.parametrize("size", [(1024, 1024), (320, 1280), (2048, 2048), (4096, 1024)])
def test_nova_accepts_valid_sizes(size: tuple[int, int]) -> None:
    bodies(NOVA, size=size)


@pytest.mark.parametrize(
    "size", [(256, 256), (1000, 1000), (320, 1600), (4096, 4096), (2064, 2048)]
)
def test_nova_rejects_invalid_sizes(size: tuple[int, int]) -> None:
    assert rejected(NOVA, size=size).param == "size"


def test_n_is_split_into_bedrock_sized_calls_with_distinct_seeds() -> None:
    nova = bodies(NOVA, n=10)
    assert [b["imageGenerationConfig"]["numberOfImages"] for b in nova] == [5, 5]
    assert len({b["imageGenerationConfig"]["seed"] for b in nova}) == 2
    stability = bodies(SD35, n=3, extras={"seed": 7})
    assert [b["seed"] for b in stability] == [7, 8, 9]
    assert all("numberOfImages" not in b for b in stability)


def test_without_a_seed_each_request_draws_a_new_one() -> None:
    """As OpenAI's API: the same request twice gives new images (Nova's default is fixed)."""
    seeds = {bodies(NOVA, n=5)[0]["imageGenerationConfig"]["seed"] for _ in range(5)}
    assert len(seeds) > 1
    [pinned] = bodies(NOVA, extras={"imageGenerationConfig": {"seed": 42}})
    assert pinned["imageGenerationConfig"]["seed"] == 42


def test_titan_sizes_and_tasks() -> None:
    bodies(TITAN_V1, size=(1173, 640))
    assert rejected(TITAN_V1, size=(1024, 768)).param == "size"
    error = rejected(TITAN_V1, extras={"taskType": "COLOR_GUIDED_GENERATION"})
    assert error.param == "taskType"
    assert rejected(TITAN_V2, style="PHOTOREALISM").param == "style"
    assert rejected(TITAN_V2, prompt="x" * 513).param == "prompt"


@pytest.mark.parametrize(
    ("size", "ratio"),
    [((1024, 1024), "1:1"), ((1792, 1024), "16:9"), ((1024, 1792), "9:16"),
     ((1536, 1024), "3:2"), ((1024, 1536), "2:3"), ((2560, 1080), "21:9"), ((900, 1100), "4:5")],
)  # fmt: skip
def test_stability_nearest_aspect_ratio(size: tuple[int, int], ratio: str) -> None:
    assert nearest_aspect_ratio(*size) == ratio


def test_stability_body_and_formats() -> None:
    [body] = bodies(SD35, size=(1792, 1024), output_format="webp",
                    extras={"negative_prompt": "blurry"})  # fmt: skip
    assert 0 <= body.pop("seed") <= 4_294_967_294
    assert body == {
        "prompt": "a red fox", "aspect_ratio": "16:9", "output_format": "webp",
        "negative_prompt": "blurry",
    }  # fmt: skip
    # Core cannot produce WebP: ask for PNG, the pipeline re-encodes.
    [core] = bodies(CORE, output_format="webp")
    assert core["output_format"] == "png"


def test_stability_rejects_unsupported_parameters() -> None:
    assert rejected(ULTRA, extras={"style_preset": "anime"}).param == "style_preset"
    assert rejected(CORE, extras={"mode": "text-to-image"}).param == "mode"
    assert rejected(ULTRA, quality="hd").param == "quality"
    assert rejected(ULTRA, style="vivid").param == "style"
    assert rejected(SD35, extras={"seed": -1}).param == "seed"


@pytest.mark.parametrize("model", [NOVA, TITAN_V1, TITAN_V2, SD35, CORE, ULTRA])
def test_every_model_rejects_unknown_extras(model: str) -> None:
    error = rejected(model, extras={"cfg_scale_typo": 7})
    assert error.param == "cfg_scale_typo"
    assert error.code == "unsupported_parameter"


def test_nested_extras_are_checked() -> None:
    assert rejected(NOVA, extras={"imageGenerationConfig": {"cfgScale": 50}}).param == (
        "imageGenerationConfig.cfgScale"
    )
    error = rejected(NOVA, extras={"imageGenerationConfig": {"width": 512}})
    assert error.param == "imageGenerationConfig.width"
    error = rejected(NOVA, extras={"taskType": "COLOR_GUIDED_GENERATION",
                                   "colorGuidedGenerationParams": {"colors": ["red"]}})  # fmt: skip
    assert error.param == "colorGuidedGenerationParams.colors[0]"


def test_integral_floats_from_protobuf_become_ints() -> None:
    [body] = bodies(NOVA, extras={"imageGenerationConfig": {"seed": 42.0, "cfgScale": 7}})
    assert body["imageGenerationConfig"]["seed"] == 42
    assert isinstance(body["imageGenerationConfig"]["seed"], int)
    assert body["imageGenerationConfig"]["cfgScale"] == 7.0


@pytest.mark.parametrize("name", NOVA_ALIASES)
def test_registry_resolves_profiles_and_arns(name: str) -> None:
    resolved = resolve(name)
    assert resolved.spec.model_id == NOVA
    assert resolved.invoke_id == name


def test_registry_unknown_model_is_404() -> None:
    with pytest.raises(ApiError) as info:
        resolve("midjourney-v7")
    assert (info.value.status, info.value.code, info.value.param) == (404, "model_not_found",
                                                                      "model")  # fmt: skip
    assert "midjourney-v7" in info.value.message
