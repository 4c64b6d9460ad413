"""Stability AI's 13 Image Services on Bedrock, and SD3.5 Large image-to-image.

Every service is one row: its inputs, options and limits. Bodies are built the same way for
all of them: the input images under the service's field names, the mask as grayscale
(white = edit), the prompt where the service takes one, the options, `output_format` and a
seed per call. Each call returns one image, so `n` is n parallel calls. The services are
served only through `us.` cross-region inference profiles; a bare id is sent as its `us.`
profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.edit_images import EditArea, SourceImage
from service.errors import invalid_param
from service.models.base import (
    US_PROFILE_REGIONS,
    BedrockCall,
    Field,
    batch_seeds,
    split_batches,
    unsupported_value,
)
from service.models.edit import EditFamily, EditParams, EditSpec, ImageLimits
from service.models.stability import ASPECT_SIZES, QUALITIES, REGIONS, SEED_MAX, read_answer

STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture",
)  # fmt: skip
FORMATS = ("png", "jpeg", "webp")
MAX_EXTEND = 2000  # outpaint: pixels per side
UPSCALE_MAX_SIDE = 4096  # "up to 4K" for the creative and conservative upscalers

NEGATIVE = Field(str, max_length=10_000)
SEED = Field(int, low=0, high=SEED_MAX)
GROW_MASK = Field(int, low=0, high=20)
STYLE = Field(str, choices=STYLE_PRESETS)
EXTEND = Field(int, low=0, high=MAX_EXTEND)


def _unit(low: float = 0.0, high: float = 1.0) -> Field:
    return Field(float, low=low, high=high)


def outpainted(image: SourceImage, options: Mapping[str, Any]) -> tuple[int, int]:
    width = image.width + options.get("left", 0) + options.get("right", 0)
    return width, image.height + options.get("up", 0) + options.get("down", 0)


def upscaled_4x(image: SourceImage, options: Mapping[str, Any]) -> tuple[int, int]:
    return image.width * 4, image.height * 4


def upscaled_to_4k(image: SourceImage, options: Mapping[str, Any]) -> tuple[int, int]:
    scale = min(4.0, UPSCALE_MAX_SIDE / max(image.size))
    scale = max(1.0, scale)
    return round(image.width * scale), round(image.height * scale)


def by_aspect_ratio(image: SourceImage, options: Mapping[str, Any]) -> tuple[int, int]:
    return ASPECT_SIZES[options.get("aspect_ratio", "1:1")]


def _service(name: str, title: str, summary: str, **row: Any) -> tuple[str, EditSpec]:
    model_id = f"stability.{name}"
    spec = EditSpec(
        model_id=model_id,
        name=title,
        provider="Stability AI",
        summary=summary,
        native_formats=row.pop("native_formats", FORMATS),
        profile_only=True,
        regions=US_PROFILE_REGIONS,
        **row,
    )
    return model_id, spec


MODELS: Mapping[str, EditSpec] = dict(
    (
        _service(
            "stable-image-inpaint-v1:0", "Stable Image Inpaint",
            "fills the masked area (or the image's transparent pixels) from the prompt",
            prompt="required", mask="optional",
            options={"negative_prompt": NEGATIVE, "seed": SEED, "grow_mask": GROW_MASK,
                     "style_preset": STYLE},
        ),
        _service(
            "stable-outpaint-v1:0", "Stable Outpaint",
            "grows the canvas by left/right/up/down pixels and fills the new area",
            prompt="optional", mask="none", output_size=outpainted,
            options={"left": EXTEND, "right": EXTEND, "up": EXTEND, "down": EXTEND,
                     "creativity": _unit(), "negative_prompt": NEGATIVE, "seed": SEED,
                     "style_preset": STYLE},
        ),
        _service(
            "stable-image-search-replace-v1:0", "Stable Search Replace",
            "replaces what search_prompt names with what the prompt describes",
            prompt="required", mask="none", required_options=("search_prompt",),
            options={"search_prompt": Field(str, min_length=1, max_length=10_000),
                     "negative_prompt": NEGATIVE, "seed": SEED, "grow_mask": GROW_MASK,
                     "style_preset": STYLE},
        ),
        _service(
            "stable-image-search-recolor-v1:0", "Stable Search Recolor",
            "recolors what select_prompt names as the prompt describes",
            prompt="required", mask="none", required_options=("select_prompt",),
            options={"select_prompt": Field(str, min_length=1, max_length=10_000),
                     "negative_prompt": NEGATIVE, "seed": SEED, "grow_mask": GROW_MASK,
                     "style_preset": STYLE},
        ),
        _service(
            "stable-image-erase-object-v1:0", "Stable Erase Object",
            "removes what the mask (or the image's transparent pixels) covers",
            prompt="none", mask="optional",
            options={"grow_mask": GROW_MASK, "seed": SEED},
        ),
        _service(
            "stable-image-remove-background-v1:0", "Stable Remove BG",
            "removes the background: PNG or WebP with alpha",
            prompt="none", mask="none", max_n=1, transparent_output=True,
            native_formats=("png", "webp"), options={"seed": SEED},
        ),
        _service(
            "stable-creative-upscale-v1:0", "Stable Creative Upscale",
            "upscales 4x (long side up to 4096) and reimagines details from the prompt",
            prompt="required", mask="none", output_size=upscaled_to_4k,
            limits=ImageLimits(max_pixels=1_048_576),
            options={"creativity": _unit(0.1, 0.5), "negative_prompt": NEGATIVE, "seed": SEED,
                     "style_preset": STYLE},
        ),
        _service(
            "stable-conservative-upscale-v1:0", "Stable Conservative Upscale",
            "upscales 4x (long side up to 4096) keeping the image as it is",
            prompt="required", mask="none", output_size=upscaled_to_4k,
            options={"creativity": _unit(0.2, 0.5), "negative_prompt": NEGATIVE, "seed": SEED},
        ),
        _service(
            "stable-fast-upscale-v1:0", "Stable Fast Upscale",
            "upscales 4x, fast and deterministic",
            prompt="none", mask="none", max_n=1, output_size=upscaled_4x,
            limits=ImageLimits(min_side=32, max_side=1536, min_pixels=1024,
                               max_pixels=1_048_576),
            options={"seed": SEED},
        ),
        _service(
            "stable-image-control-sketch-v1:0", "Stable Control Sketch",
            "renders the prompt following the lines of a sketch",
            prompt="required", mask="none",
            options={"control_strength": _unit(), "negative_prompt": NEGATIVE, "seed": SEED,
                     "style_preset": STYLE},
        ),
        _service(
            "stable-image-control-structure-v1:0", "Stable Control Structure",
            "renders the prompt keeping the structure of the image",
            prompt="required", mask="none",
            options={"control_strength": _unit(), "negative_prompt": NEGATIVE, "seed": SEED,
                     "style_preset": STYLE},
        ),
        _service(
            "stable-image-style-guide-v1:0", "Stable Style Guide",
            "renders the prompt in the style of the image",
            prompt="required", mask="none", output_size=by_aspect_ratio,
            options={"fidelity": _unit(), "aspect_ratio": Field(str, choices=tuple(ASPECT_SIZES)),
                     "negative_prompt": NEGATIVE, "seed": SEED, "style_preset": STYLE},
        ),
        _service(
            "stable-style-transfer-v1:0", "Stable Style Transfer",
            "redraws the first image in the style of the second",
            prompt="optional", mask="none", images=(2, 2),
            options={"composition_fidelity": _unit(), "style_strength": _unit(),
                     "change_strength": _unit(0.1, 1.0), "negative_prompt": NEGATIVE,
                     "seed": SEED},
        ),
    )
)  # fmt: skip

# Stability's field names for the input images, where they are not just `image`.
IMAGE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "stability.stable-style-transfer-v1:0": ("init_image", "style_image"),
}
SD35 = "stability.sd3-5-large-v1:0"
SD35_DEFAULT_STRENGTH = 0.6  # OpenAI has no strength; 0 keeps the input, 1 ignores it

IMAGE_TO_IMAGE: Mapping[str, EditSpec] = {
    SD35: EditSpec(
        model_id=SD35,
        name="SD3.5 Large",
        provider="Stability AI",
        summary="redraws the image from the prompt (image-to-image); strength 0-1, default 0.6",
        prompt="required",
        mask="none",
        options={"strength": _unit(), "negative_prompt": NEGATIVE, "seed": SEED},
        native_formats=FORMATS,
        limits=ImageLimits(max_aspect=None),
        variation=True,
        regions=REGIONS,
    ),
}


class StabilityEdit(EditFamily):
    models: Mapping[str, EditSpec] = {**MODELS, **IMAGE_TO_IMAGE}

    def output_size(self, params: EditParams) -> tuple[int, int]:
        return self.models[params.model_id].output_size(params.images[0], params.options)

    def build_calls(self, params: EditParams) -> list[BedrockCall]:
        spec, options = self.check_inputs(params)
        if params.quality is not None and params.quality not in QUALITIES:
            raise unsupported_value("quality", params.quality, spec.model_id, QUALITIES)
        self.check_size(params)
        body: dict[str, Any] = {}
        names = IMAGE_FIELDS.get(spec.model_id, ("image",))
        for field_name, image in zip(names, params.images, strict=False):
            body[field_name] = image.b64()
        if spec.prompt != "none" and params.prompt.strip():
            body["prompt"] = params.prompt
        area = params.area
        if spec.mask == "optional" and area is None:
            area = self._area_from_alpha(params)
        if area is not None:
            body["mask"] = area.white_is_edit()
        if spec.model_id == SD35:
            body |= {"mode": "image-to-image", "strength": SD35_DEFAULT_STRENGTH}
        if spec.output_size is outpainted and not any(
            options.get(side, 0) > 0 for side in ("left", "right", "up", "down")
        ):
            raise invalid_param(
                "left",
                f"{spec.model_id} needs at least one of left, right, up, down above 0 "
                f"(pixels to add, at most {MAX_EXTEND} each).",
                code="missing_required_parameter",
            )
        body |= options
        body["output_format"] = self.native_format(params)
        batches = split_batches(params.n, spec.max_images_per_call)
        seeds = batch_seeds(body.pop("seed", None), batches, SEED_MAX)
        return [
            BedrockCall(body=body | {"seed": seed}, first_index=first, image_count=count)
            for (first, count), seed in zip(batches, seeds, strict=True)
        ]

    def _area_from_alpha(self, params: EditParams) -> EditArea:
        image = params.images[0]
        area = EditArea.from_image_alpha(image) if image.has_alpha else None
        if area is None or area.is_empty():
            raise invalid_param(
                "mask",
                f"{params.model_id} needs to know where to edit: send a 'mask' (alpha = 0 "
                "marks the area) or an image whose transparent pixels mark it.",
                code="missing_required_parameter",
            )
        return area

    def read_images(self, spec: EditSpec, payload: Mapping[str, Any]) -> list[str]:
        return read_answer(spec.model_id, spec.name, payload)
