"""Amazon Nova Canvas: flexible sizes, 8 style presets, up to 5 images per call."""

from __future__ import annotations

from service.errors import invalid_param
from service.models.amazon import AmazonImageFamily, amazon_extras
from service.models.base import Field, ModelSpec

MIN_SIDE, MAX_SIDE, SIDE_STEP = 320, 4096, 16
MAX_PIXELS = 4_194_304  # 2048 x 2048
MAX_ASPECT = 4.0

STYLES = (
    "3D_ANIMATED_FAMILY_FILM",
    "DESIGN_SKETCH",
    "FLAT_VECTOR_ILLUSTRATION",
    "GRAPHIC_NOVEL_ILLUSTRATION",
    "MAXIMALISM",
    "MIDCENTURY_RETRO",
    "PHOTOREALISM",
    "SOFT_DIGITAL_PAINTING",
)
TASK_TYPES = ("TEXT_IMAGE", "COLOR_GUIDED_GENERATION")
# Where Bedrock served it (it reached end of life on 2026-09-30: Bedrock says so when called).
REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
REPLACED_BY = "stability.stable-image-core-v1:1"

MODELS = {
    "amazon.nova-canvas-v1:0": ModelSpec(
        model_id="amazon.nova-canvas-v1:0",
        name="Nova Canvas",
        provider="Amazon",
        max_images_per_call=5,
        native_formats=("png",),
        default_size=(1024, 1024),
        max_prompt_chars=1024,
        styles=STYLES,
        extras=amazon_extras(
            TASK_TYPES,
            1024,
            {
                "style": Field(str, choices=STYLES),
                "conditionImage": Field(str, min_length=1),
                "controlMode": Field(str, choices=("CANNY_EDGE", "SEGMENTATION")),
                "controlStrength": Field(float, low=0.0, high=1.0),
            },
        ),
        regions=REGIONS,
        replaced_by=REPLACED_BY,
    ),
}


class NovaCanvas(AmazonImageFamily):
    models = MODELS

    def check_size(self, spec: ModelSpec, width: int, height: int) -> None:
        problem = None
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            problem = f"each side must be between {MIN_SIDE} and {MAX_SIDE} pixels"
        elif width % SIDE_STEP or height % SIDE_STEP:
            problem = f"each side must be a multiple of {SIDE_STEP}"
        elif max(width / height, height / width) > MAX_ASPECT:
            problem = "the aspect ratio must be between 1:4 and 4:1"
        elif width * height > MAX_PIXELS:
            problem = f"at most {MAX_PIXELS} pixels in total (2048x2048)"
        if problem:
            raise invalid_param(
                "size", f"Size {width}x{height} is not supported by {spec.model_id}: {problem}."
            )
