"""The request envelope shared by Amazon's image models (Nova Canvas and Titan).

Nova Canvas was derived from Titan's schema: `{"taskType", "<task>Params",
"imageGenerationConfig"}`. The two adapters differ only in their tables (sizes, task types,
styles, limits), so the envelope is built here once.
"""

from __future__ import annotations

from abc import abstractmethod
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
    deep_merge,
    split_batches,
    unsupported_value,
)

# OpenAI quality values (and Bedrock's own) -> imageGenerationConfig.quality.
QUALITY_MAP: Mapping[str, str] = {
    "auto": "standard",
    "standard": "standard",
    "low": "standard",
    "medium": "standard",
    "high": "premium",
    "hd": "premium",
    "xhigh": "premium",
    "max": "premium",
    "premium": "premium",
}

TASK_PARAMS_FIELD: Mapping[str, str] = {
    "TEXT_IMAGE": "textToImageParams",
    "COLOR_GUIDED_GENERATION": "colorGuidedGenerationParams",
}

SEED_MAX = 2_147_483_646
COLOR = Field(str, pattern=r"#[0-9A-Fa-f]{6}")


def amazon_extras(
    task_types: tuple[str, ...], max_text: int, text_params: Mapping[str, Field]
) -> dict[str, Field]:
    """The provider extras an Amazon model accepts, as a `Field` tree.

    width, height, numberOfImages and quality are deliberately absent: they come from the
    OpenAI `size`, `n` and `quality` parameters, so there is one way to set each.
    """
    negative = Field(str, min_length=1, max_length=max_text)
    extras: dict[str, Field] = {
        "taskType": Field(str, choices=task_types),
        "textToImageParams": Field(dict, fields={"negativeText": negative, **text_params}),
        "imageGenerationConfig": Field(
            dict,
            fields={
                "cfgScale": Field(float, low=1.1, high=10.0),
                "seed": Field(int, low=0, high=SEED_MAX),
            },
        ),
    }
    if "COLOR_GUIDED_GENERATION" in task_types:
        extras["colorGuidedGenerationParams"] = Field(
            dict,
            fields={
                "negativeText": negative,
                "colors": Field(list, min_length=1, max_length=10, items=COLOR),
                "referenceImage": Field(str, min_length=1),
            },
        )
    return extras


class AmazonImageFamily(ModelFamily):
    """Builds Nova Canvas / Titan bodies; subclasses supply the table and the size rule."""

    @abstractmethod
    def check_size(self, spec: ModelSpec, width: int, height: int) -> None:
        """Raise a 400 naming `size` when the model cannot produce width x height."""

    def output_size(self, params: GenerationParams) -> tuple[int, int]:
        return params.size or self.models[params.model_id].default_size

    def build_calls(self, params: GenerationParams) -> list[BedrockCall]:
        spec = self.check_common(params)
        extras = check_object(params.extras, spec.extras)
        task = extras.pop("taskType", "TEXT_IMAGE")
        params_field = TASK_PARAMS_FIELD[task]
        for other in TASK_PARAMS_FIELD.values():
            if other != params_field and other in extras:
                raise invalid_param(
                    other, f"'{other}' does not belong to taskType {task}; use '{params_field}'."
                )
        if task == "COLOR_GUIDED_GENERATION" and "colors" not in extras.get(params_field, {}):
            raise invalid_param(
                f"{params_field}.colors",
                "taskType COLOR_GUIDED_GENERATION needs "
                "'colorGuidedGenerationParams.colors' (1-10 '#RRGGBB' values).",
                code="missing_required_parameter",
            )

        width, height = self.output_size(params)
        self.check_size(spec, width, height)
        task_params: dict[str, Any] = {"text": params.prompt}
        if params.style is not None:
            if task != "TEXT_IMAGE":
                raise invalid_param("style", "'style' applies only to taskType TEXT_IMAGE.")
            style = params.style.upper().replace("-", "_")
            if style not in spec.styles:
                raise unsupported_value("style", params.style, spec.model_id, spec.styles)
            task_params["style"] = style
        config: dict[str, Any] = {"width": width, "height": height}
        if params.quality is not None:
            if params.quality not in QUALITY_MAP:
                raise unsupported_value("quality", params.quality, spec.model_id, list(QUALITY_MAP))
            config["quality"] = QUALITY_MAP[params.quality]

        base = deep_merge(
            {"taskType": task, params_field: task_params, "imageGenerationConfig": config}, extras
        )
        batches = split_batches(params.n, spec.max_images_per_call)
        seeds = batch_seeds(base["imageGenerationConfig"].get("seed"), batches, SEED_MAX)
        return [
            BedrockCall(
                body=deep_merge(
                    base, {"imageGenerationConfig": {"numberOfImages": count, "seed": seed}}
                ),
                first_index=first,
                image_count=count,
            )
            for (first, count), seed in zip(batches, seeds, strict=True)
        ]

    def read_images(self, spec: ModelSpec, payload: Mapping[str, Any]) -> list[str]:
        return read_answer(spec.model_id, payload)


def read_answer(model_id: str, payload: Mapping[str, Any]) -> list[str]:
    """The images of a Nova Canvas / Titan answer (generation or edit task).

    Success bodies may carry "error": null; only a non-empty error is a failure. Content
    filtering arrives as a ValidationException instead (see service/bedrock.py).
    """
    if payload.get("error"):
        raise ApiError(502, f"{model_id} failed: {payload['error']}", code="model_error")
    images = payload.get("images")
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise ApiError(502, f"{model_id} returned no images.", code="model_error")
    return images
