"""Edit tasks of Amazon Nova Canvas and Titan Image Generator: INPAINTING, OUTPAINTING,
IMAGE_VARIATION, BACKGROUND_REMOVAL.

One model id serves several tasks, so the task is chosen from the request: `task_type` when
given; otherwise a variation request is IMAGE_VARIATION, an edit with a mask (or
`mask_prompt`) is INPAINTING, and an edit without one is IMAGE_VARIATION guided by the
prompt. Masks go to Bedrock black = edit, white = keep. Up to 5 images per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.errors import invalid_param
from service.models.amazon import QUALITY_MAP, SEED_MAX, read_answer
from service.models.base import BedrockCall, Field, batch_seeds, split_batches, unsupported_value
from service.models.edit import EditFamily, EditParams, EditSpec, ImageLimits
from service.models.nova import MAX_PIXELS, NovaCanvas
from service.models.nova import MODELS as NOVA_MODELS
from service.models.titan import MODELS as TITAN_MODELS
from service.models.titan import TitanImage

TASK_PARAMS: Mapping[str, str] = {
    "INPAINTING": "inPaintingParams",
    "OUTPAINTING": "outPaintingParams",
    "IMAGE_VARIATION": "imageVariationParams",
    "BACKGROUND_REMOVAL": "backgroundRemovalParams",
}
MASKED_TASKS = ("INPAINTING", "OUTPAINTING")
DEFAULT_VARIATION_SIZE = (1024, 1024)


def _options(tasks: tuple[str, ...], max_text: int) -> dict[str, Field]:
    return {
        "task_type": Field(str, choices=tasks),
        "negative_prompt": Field(str, min_length=1, max_length=max_text),
        "mask_prompt": Field(str, min_length=1, max_length=max_text),
        "outpainting_mode": Field(str, choices=("DEFAULT", "PRECISE")),
        "similarity_strength": Field(float, low=0.2, high=1.0),
        "cfg_scale": Field(float, low=1.1, high=10.0),
        "seed": Field(int, low=0, high=SEED_MAX),
    }


def _row(model_id: str, tasks: tuple[str, ...], max_text: int, max_side: int,
         variation_images: int) -> EditSpec:  # fmt: skip
    generator = (NOVA_MODELS | TITAN_MODELS)[model_id]
    return EditSpec(
        model_id=model_id,
        name=generator.name,
        provider="Amazon",
        summary=f"{', '.join(tasks)} (task_type); the mask is converted to black = edit",
        prompt="optional",
        mask="optional",
        options=_options(tasks, max_text),
        native_formats=("png",),
        images=(1, variation_images),
        limits=ImageLimits(min_side=320, max_side=max_side, max_pixels=MAX_PIXELS, max_aspect=4),
        max_prompt_chars=max_text,
        max_images_per_call=5,
        variation=True,
        regions=generator.regions,
        # Stability's image services do what these tasks did (README: Migrating from Nova).
        replaced_by="stability.stable-image-inpaint-v1:0",
    )


_ALL_TASKS = tuple(TASK_PARAMS)
MODELS: Mapping[str, EditSpec] = {
    spec.model_id: spec
    for spec in (
        _row("amazon.nova-canvas-v1:0", _ALL_TASKS, 1024, 4096, 5),
        _row("amazon.titan-image-generator-v1", _ALL_TASKS[:3], 512, 1408, 1),
        _row("amazon.titan-image-generator-v2:0", _ALL_TASKS, 512, 1408, 5),
    )
}


class AmazonEdit(EditFamily):
    models = MODELS

    def __init__(self) -> None:
        self._generators = {
            **{model_id: NovaCanvas() for model_id in NOVA_MODELS},
            **{model_id: TitanImage() for model_id in TITAN_MODELS},
        }

    def task(self, params: EditParams) -> str:
        explicit = params.options.get("task_type")
        if isinstance(explicit, str):
            return explicit
        if params.variation:
            return "IMAGE_VARIATION"
        if params.area is not None or "mask_prompt" in params.options:
            return "INPAINTING"
        return "IMAGE_VARIATION"

    def transparent(self, params: EditParams) -> bool:
        return self.task(params) == "BACKGROUND_REMOVAL"

    def output_size(self, params: EditParams) -> tuple[int, int]:
        if self.task(params) == "IMAGE_VARIATION":
            return params.size or DEFAULT_VARIATION_SIZE
        return params.images[0].size

    def build_calls(self, params: EditParams) -> list[BedrockCall]:
        spec, options = self.check_inputs(params)
        task = options.pop("task_type", None) or self.task(params)
        self._check_task(spec, task, params, options)
        if task == "IMAGE_VARIATION":
            width, height = self.output_size(params)
            generator = self._generators[spec.model_id]
            generator.check_size(generator.models[spec.model_id], width, height)
        else:
            self.check_size(params)
        if task == "BACKGROUND_REMOVAL":
            image = params.images[0].b64_png_or_jpeg()
            body = {"taskType": task, "backgroundRemovalParams": {"image": image}}
            return [BedrockCall(body=body, first_index=0, image_count=1)]

        task_params: dict[str, Any] = {}
        if params.prompt.strip():
            task_params["text"] = params.prompt
        if "negative_prompt" in options:
            task_params["negativeText"] = options["negative_prompt"]
        if task == "IMAGE_VARIATION":
            task_params["images"] = [image.b64_png_or_jpeg() for image in params.images]
            if "similarity_strength" in options:
                task_params["similarityStrength"] = options["similarity_strength"]
        else:
            task_params["image"] = params.images[0].b64_png_or_jpeg()
            if params.area is not None:
                task_params["maskImage"] = params.area.black_is_edit()
            else:
                task_params["maskPrompt"] = options["mask_prompt"]
            if "outpainting_mode" in options:
                task_params["outPaintingMode"] = options["outpainting_mode"]
        config: dict[str, Any] = {}
        if task == "IMAGE_VARIATION":
            config["width"], config["height"] = self.output_size(params)
        if params.quality is not None:
            if params.quality not in QUALITY_MAP:
                raise unsupported_value("quality", params.quality, spec.model_id, list(QUALITY_MAP))
            config["quality"] = QUALITY_MAP[params.quality]
        if "cfg_scale" in options:
            config["cfgScale"] = options["cfg_scale"]
        batches = split_batches(params.n, spec.max_images_per_call)
        seeds = batch_seeds(options.get("seed"), batches, SEED_MAX)
        return [
            BedrockCall(
                body={
                    "taskType": task,
                    TASK_PARAMS[task]: task_params,
                    "imageGenerationConfig": config | {"numberOfImages": count, "seed": seed},
                },
                first_index=first,
                image_count=count,
            )
            for (first, count), seed in zip(batches, seeds, strict=True)
        ]

    def _check_task(
        self, spec: EditSpec, task: str, params: EditParams, options: Mapping[str, Any]
    ) -> None:
        """What each task needs and refuses, beyond the row's own rules."""
        if task != "IMAGE_VARIATION" and len(params.images) > 1:
            raise invalid_param(
                "image", f"taskType {task} edits one image; got {len(params.images)}."
            )
        masked = task in MASKED_TASKS
        has_mask = params.area is not None or "mask_prompt" in options
        if masked and params.area is not None and "mask_prompt" in options:
            raise invalid_param("mask_prompt", "Send either 'mask' or 'mask_prompt', not both.")
        if masked and not has_mask:
            raise invalid_param(
                "mask",
                f"taskType {task} needs a 'mask' (alpha = 0 marks the area) or 'mask_prompt'.",
                code="missing_required_parameter",
            )
        if not masked and has_mask:
            name = "mask" if params.area is not None else "mask_prompt"
            raise invalid_param(name, f"taskType {task} takes no mask.")
        allowed = {
            "IMAGE_VARIATION": {"similarity_strength"},
            "OUTPAINTING": {"outpainting_mode"},
        }.get(task, set())
        for name in ("similarity_strength", "outpainting_mode"):
            if name in options and name not in allowed:
                raise invalid_param(name, f"'{name}' does not apply to taskType {task}.")
        if task == "BACKGROUND_REMOVAL":
            extra = sorted(set(options) - {"task_type"})
            if extra:
                raise invalid_param(extra[0], f"taskType {task} takes no '{extra[0]}'.")
            if params.n != 1:
                raise invalid_param(
                    "n", "BACKGROUND_REMOVAL gives the same result every time: 'n' must be 1."
                )

    def read_images(self, spec: EditSpec, payload: Mapping[str, Any]) -> list[str]:
        return read_answer(spec.model_id, payload)
