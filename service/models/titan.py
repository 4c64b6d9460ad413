"""Amazon Titan Image Generator v1 and v2: a fixed list of sizes, up to 5 images per call."""

from __future__ import annotations

from service.models.amazon import AmazonImageFamily, amazon_extras
from service.models.base import Field, ModelSpec, unsupported_value

SIZES: tuple[tuple[int, int], ...] = (
    (1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576),
    (1152, 768), (576, 384), (768, 1280), (384, 640), (1280, 768),
    (640, 384), (896, 1152), (448, 576), (1152, 896), (576, 448),
    (768, 1408), (384, 704), (1408, 768), (704, 384), (640, 1408),
    (320, 704), (1408, 640), (704, 320), (1152, 640), (1173, 640),
)  # fmt: skip

# Where Bedrock served them (both retired: Bedrock says so when called).
REGIONS = ("us-east-1", "us-west-2")
REPLACED_BY = "stability.stable-image-core-v1:1"
V1_TASKS = ("TEXT_IMAGE",)
V2_TASKS = ("TEXT_IMAGE", "COLOR_GUIDED_GENERATION")
V2_CONDITIONING = {
    "conditionImage": Field(str, min_length=1),
    "controlMode": Field(str, choices=("CANNY_EDGE", "SEGMENTATION")),
    "controlStrength": Field(float, low=0.0, high=1.0),
}


def _titan(
    model_id: str, name: str, tasks: tuple[str, ...], conditioning: dict[str, Field]
) -> ModelSpec:
    return ModelSpec(
        model_id=model_id,
        name=name,
        provider="Amazon",
        max_images_per_call=5,
        native_formats=("png",),
        default_size=(1024, 1024),
        max_prompt_chars=512,
        extras=amazon_extras(tasks, 512, conditioning),
        regions=REGIONS,
        replaced_by=REPLACED_BY,
    )


MODELS = {
    "amazon.titan-image-generator-v1": _titan(
        "amazon.titan-image-generator-v1", "Titan Image G1", V1_TASKS, {}
    ),
    "amazon.titan-image-generator-v2:0": _titan(
        "amazon.titan-image-generator-v2:0", "Titan Image G1 v2", V2_TASKS, V2_CONDITIONING
    ),
}


class TitanImage(AmazonImageFamily):
    models = MODELS

    def check_size(self, spec: ModelSpec, width: int, height: int) -> None:
        if (width, height) not in SIZES:
            raise unsupported_value(
                "size", f"{width}x{height}", spec.model_id, [f"{w}x{h}" for w, h in SIZES]
            )
