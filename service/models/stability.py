"""Stability AI on Bedrock (SD3.5 Large, Stable Image Core, Stable Image Ultra): text-to-image.

Only what each model documents is sent (reference §4.3): Core and Ultra take `prompt`,
`negative_prompt`, `aspect_ratio`, `seed`, `output_format`, nothing else (no `mode`,
`image`, `strength`, `style_preset`, `width`, `height`). OpenAI's `quality` and `style` have
no Stability equivalent (one quality level, no style presets on these models): a value
other than the default is a 400 listing what is accepted.

Each call returns exactly one image, so `n` becomes n parallel calls. `size` picks the
nearest supported aspect ratio; the model decides the pixel size (about 1 MP), listed in
`ASPECT_SIZES`. A content-filter outcome arrives as HTTP 200 with `finish_reasons` set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from service.errors import ApiError, invalid_param
from service.models.base import (
    BedrockCall,
    Field,
    GenerationParams,
    ModelFamily,
    ModelSpec,
    batch_seeds,
    check_object,
    split_batches,
)

# aspect_ratio -> the pixel size the models return for it.
ASPECT_SIZES: Mapping[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
SEED_MAX = 4_294_967_294
ULTRA = "stability.stable-image-ultra-v1:1"
# Stability models have one quality level; these OpenAI values honestly mean "the default".
QUALITIES = ("auto", "standard")

_COMMON_EXTRAS: dict[str, Field] = {
    "negative_prompt": Field(str, max_length=10_000),
    "seed": Field(int, low=0, high=SEED_MAX),
    "aspect_ratio": Field(str, choices=tuple(ASPECT_SIZES)),
}
# SD3.5 Large also does image-to-image (`mode`, `image`, `strength`), but that is an edit:
# /v1/images/edits serves it with the image uploaded, checked and sized off the event loop.
_SD35_EXTRAS: dict[str, Field] = {
    **_COMMON_EXTRAS,
    "mode": Field(str, choices=("text-to-image",)),
}


# Bedrock serves Stability's text-to-image models in us-west-2 only, by their bare ids
# (there is no `us.` profile for them).
REGIONS = ("us-west-2",)


def _stability(
    model_id: str,
    name: str,
    formats: tuple[str, ...],
    extras: dict[str, Field],
    replaced_by: str = "",
) -> ModelSpec:
    return ModelSpec(
        model_id=model_id,
        name=name,
        provider="Stability AI",
        max_images_per_call=1,
        native_formats=formats,
        default_size=ASPECT_SIZES["1:1"],
        max_prompt_chars=10_000,
        extras=extras,
        regions=REGIONS,
        replaced_by=replaced_by,
    )


CORE_1, ULTRA_1 = "stability.stable-image-core-v1:1", "stability.stable-image-ultra-v1:1"
# (model id, name, the living model that supersedes it)
_CORE_ULTRA = (
    ("stability.stable-image-core-v1:0", "Stable Image Core", CORE_1),
    (CORE_1, "Stable Image Core", ""),
    ("stability.stable-image-ultra-v1:0", "Stable Image Ultra", ULTRA_1),
    (ULTRA_1, "Stable Image Ultra", ""),
)
MODELS = {
    "stability.sd3-5-large-v1:0": _stability(
        "stability.sd3-5-large-v1:0", "SD3.5 Large", ("png", "jpeg", "webp"), _SD35_EXTRAS
    ),
    **{
        model_id: _stability(model_id, name, ("png", "jpeg"), _COMMON_EXTRAS, replaced_by)
        for model_id, name, replaced_by in _CORE_ULTRA
    },
}


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The supported aspect ratio closest to width:height (compared on a log scale)."""
    target = math.log(width / height)
    return min(ASPECT_SIZES, key=lambda r: abs(math.log(_ratio(r)) - target))


def _ratio(aspect: str) -> float:
    w, h = aspect.split(":")
    return int(w) / int(h)


class StabilityImage(ModelFamily):
    models = MODELS

    def _aspect_ratio(self, params: GenerationParams) -> str:
        explicit = params.extras.get("aspect_ratio")
        if isinstance(explicit, str) and explicit in ASPECT_SIZES:
            return explicit
        return nearest_aspect_ratio(*params.size) if params.size else "1:1"

    def output_size(self, params: GenerationParams) -> tuple[int, int]:
        return ASPECT_SIZES[self._aspect_ratio(params)]

    def build_calls(self, params: GenerationParams) -> list[BedrockCall]:
        model_id = params.model_id
        if params.style is not None:
            raise invalid_param(
                "style",
                f"'style' value {params.style!r} has no equivalent on {model_id}: Bedrock's "
                "Stability text-to-image models take no style preset (accepted values: none). "
                "Describe the look in the prompt; Stability's edit services "
                "(/v1/images/edits) take a style_preset.",
            )
        asked = [key for key in ("image", "strength") if key in params.extras]
        if params.extras.get("mode") == "image-to-image":
            asked.insert(0, "mode")
        if asked and "mode" in self.models[model_id].extras:  # SD3.5 Large
            raise invalid_param(
                asked[0],
                f"'{asked[0]}': image-to-image is an edit. POST /v1/images/edits with model "
                f"{model_id}, the image as the 'image' file and 'strength' (0-1) in the "
                "form; /v1/images/generations is text-to-image only.",
                code="unsupported_parameter",
            )
        spec = self.check_common(params)
        extras = check_object(params.extras, spec.extras)
        if params.quality is not None and params.quality not in QUALITIES:
            raise invalid_param(
                "quality",
                f"'quality' value {params.quality!r} is not supported by {model_id}: Stability "
                f"models on Bedrock have one quality level. Accepted values: "
                f"{', '.join(QUALITIES)}. For the most detailed images use {ULTRA}.",
            )
        body: dict[str, Any] = {
            "prompt": params.prompt,
            "aspect_ratio": self._aspect_ratio(params),
            "output_format": self.native_format(params),
            **extras,
        }
        batches = split_batches(params.n, spec.max_images_per_call)
        seeds = batch_seeds(body.pop("seed", None), batches, SEED_MAX)
        return [
            BedrockCall(
                body=body | {"seed": seed},
                first_index=first,
                image_count=count,
            )
            for (first, count), seed in zip(batches, seeds, strict=True)
        ]

    def read_images(self, spec: ModelSpec, payload: Mapping[str, Any]) -> list[str]:
        return read_answer(spec.model_id, spec.name, payload)


def read_answer(model_id: str, name: str, payload: Mapping[str, Any]) -> list[str]:
    """The one image of a Stability answer (generation or edit service).

    Filtering arrives as HTTP 200 with a `finish_reasons` value, never as an error status.
    """
    reasons = payload.get("finish_reasons") or [None]
    reason = reasons[0]
    if isinstance(reason, str) and reason.startswith("Filter reason"):
        blamed = "image" if "input image" in reason else "prompt"
        raise ApiError(
            400,
            f"The request was blocked by {name}'s content filter ({reason}). "
            f"Change the {blamed} and try again.",
            param=blamed,
            code="content_policy_violation",
        )
    if reason is not None:
        raise ApiError(502, f"{model_id} failed: {reason}", code="model_error")
    images = payload.get("images")
    if not isinstance(images, list) or len(images) != 1 or not isinstance(images[0], str):
        raise ApiError(502, f"{model_id} returned no image.", code="model_error")
    return images
