"""What every edit adapter provides, and the declarative rows edit models are written as.

An edit model is a row (`EditSpec`): which inputs it needs (images, mask, prompt), which
provider options it takes (as `Field`s, with ranges), which input sizes it accepts and how
big its output is. An adapter (`EditFamily`) turns one validated request (`EditParams`) into
Bedrock bodies and reads the images back, like the generation adapters in `base.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from service.edit_images import EditArea, SourceImage
from service.errors import invalid_param
from service.models.base import BedrockCall, Field, check_object

Need = Literal["required", "optional", "none"]
# The output size of an edit from its first input image and its options.
OutputRule = Callable[[SourceImage, Mapping[str, Any]], tuple[int, int]]


def same_size(image: SourceImage, options: Mapping[str, Any]) -> tuple[int, int]:
    return image.size


@dataclass(frozen=True)
class ImageLimits:
    """The input images a model accepts; anything else is a 400 that states these limits."""

    min_side: int = 64
    max_side: int | None = None
    min_pixels: int = 0
    max_pixels: int = 9_437_184  # about 9.4 MP
    max_aspect: float | None = 2.5  # long side / short side

    def describe(self) -> str:
        rules = [f"each side at least {self.min_side} px"]
        if self.max_side:
            rules.append(f"at most {self.max_side} px")
        if self.min_pixels:
            rules.append(f"at least {self.min_pixels} pixels in total")
        rules.append(f"at most {self.max_pixels} pixels in total")
        if self.max_aspect:
            rules.append(f"aspect ratio between 1:{self.max_aspect:g} and {self.max_aspect:g}:1")
        return ", ".join(rules)

    def check(self, image: SourceImage, model_id: str) -> None:
        width, height = image.size
        aspect = max(width, height) / min(width, height)
        ok = (
            min(width, height) >= self.min_side
            and (self.max_side is None or max(width, height) <= self.max_side)
            and self.min_pixels <= width * height <= self.max_pixels
            and (self.max_aspect is None or aspect <= self.max_aspect)
        )
        if not ok:
            raise invalid_param(
                image.param,
                f"'{image.param}' is {width}x{height}, outside what {model_id} accepts: "
                f"{self.describe()}.",
            )


@dataclass(frozen=True)
class EditSpec:
    """One row of an edit adapter's table."""

    model_id: str  # the base model id, as Bedrock names it
    name: str
    provider: str
    summary: str  # what the edit does, one line (README, MCP tool)
    # "none": the model takes no prompt. The OpenAI SDKs always send one with an edit, so it
    # is accepted and not forwarded (the README says so for each such model).
    prompt: Need
    mask: Need
    options: Mapping[str, Field]
    native_formats: tuple[str, ...]
    images: tuple[int, int] = (1, 1)  # fewest and most input images
    required_options: tuple[str, ...] = ()
    limits: ImageLimits = field(default_factory=ImageLimits)
    output_size: OutputRule = same_size
    max_prompt_chars: int = 10_000
    max_n: int = 10  # 1 for deterministic edits: more would pay for identical images
    max_images_per_call: int = 1
    transparent_output: bool = False  # the result carries an alpha channel
    variation: bool = False  # serves POST /v1/images/variations
    # Bedrock serves it only through cross-region inference profiles (`us.` ids).
    profile_only: bool = False
    # Where Bedrock serves it, as ModelSpec.regions; and the living model to use instead.
    regions: tuple[str, ...] = ()
    replaced_by: str = ""


@dataclass(frozen=True)
class EditParams:
    """An edit request after model-independent validation; `None` means "model default"."""

    model_id: str
    invoke_id: str
    prompt: str
    n: int
    size: tuple[int, int] | None
    quality: str | None
    output_format: str
    images: tuple[SourceImage, ...]
    area: EditArea | None  # from the OpenAI mask; None without one
    variation: bool
    options: Mapping[str, Any]  # provider options: typed ones, extras and server defaults


class EditFamily(ABC):
    """An adapter for the edit models of one Bedrock family."""

    models: Mapping[str, EditSpec]

    @abstractmethod
    def build_calls(self, params: EditParams) -> list[BedrockCall]:
        """Validate model-specific rules and build the InvokeModel bodies (raises ApiError)."""

    @abstractmethod
    def read_images(self, spec: EditSpec, payload: Mapping[str, Any]) -> list[str]:
        """The base64 images of one Bedrock answer (raises ApiError on filtered output)."""

    @abstractmethod
    def output_size(self, params: EditParams) -> tuple[int, int]:
        """The pixel size the images will have."""

    def transparent(self, params: EditParams) -> bool:
        """Whether the result has an alpha channel (OpenAI's `background: transparent`)."""
        return self.models[params.model_id].transparent_output

    def native_format(self, params: EditParams) -> str:
        spec = self.models[params.model_id]
        return params.output_format if params.output_format in spec.native_formats else "png"

    def check_inputs(self, params: EditParams) -> tuple[EditSpec, dict[str, Any]]:
        """Rules every edit row states as data: inputs, options, limits, n. Returns the row
        and the checked options."""
        spec = self.models[params.model_id]
        low, high = spec.images
        if not low <= len(params.images) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise invalid_param(
                "image",
                f"{spec.model_id} takes {expected} input image(s); got {len(params.images)}.",
            )
        for image in params.images:
            spec.limits.check(image, spec.model_id)
        if spec.prompt == "required" and not params.prompt.strip():
            raise invalid_param(
                "prompt",
                f"'prompt' is required by {spec.model_id}.",
                code="missing_required_parameter",
            )
        if len(params.prompt) > spec.max_prompt_chars:
            raise invalid_param(
                "prompt",
                f"'prompt' is too long for {spec.model_id}: {len(params.prompt)} characters, "
                f"at most {spec.max_prompt_chars}.",
            )
        if spec.mask == "none" and params.area is not None:
            raise invalid_param("mask", f"{spec.model_id} takes no mask ({spec.summary}).")
        if params.area is not None and params.area.is_empty():
            raise invalid_param(
                "mask", "'mask' marks nothing to edit: no pixel of it is transparent (alpha 0)."
            )
        if params.n > spec.max_n:
            raise invalid_param(
                "n",
                f"{spec.model_id} gives the same result every time: 'n' must be at most "
                f"{spec.max_n}.",
            )
        options = check_object(params.options, spec.options)
        for name in spec.required_options:
            if name not in options or options[name] in ("", None):
                raise invalid_param(
                    name,
                    f"'{name}' is required by {spec.model_id} ({spec.summary}).",
                    code="missing_required_parameter",
                )
        return spec, options

    def check_size(self, params: EditParams) -> None:
        """Edits whose output size follows from the inputs accept only that size (or none)."""
        size = self.output_size(params)
        if params.size is not None and params.size != size:
            raise invalid_param(
                "size",
                f"{params.model_id} returns {size[0]}x{size[1]} for this input; 'size' cannot "
                "change that: omit it, or use 'auto'.",
            )
