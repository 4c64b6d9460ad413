"""What every model family adapter provides, and the declarative pieces they are built from.

An adapter turns one validated, model-independent request (`GenerationParams`) into the
Bedrock InvokeModel bodies it needs (`BedrockCall`, several when `n` exceeds what one call
can produce) and reads the images back out of Bedrock's answers. What a model accepts is
written down as data (`ModelSpec`, `Field` trees for provider extras), not as code paths.
"""

from __future__ import annotations

import copy
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.errors import ApiError, invalid_param

OUTPUT_FORMATS = ("png", "jpeg", "webp")
# Source regions of the `us.` cross-region inference profiles (the call is made in one of
# them; Bedrock routes it among them).
US_PROFILE_REGIONS = ("us-east-1", "us-east-2", "us-west-2")


@dataclass(frozen=True)
class GenerationParams:
    """A request after model-independent validation; `None` means "model default"."""

    model_id: str  # the base model id the request resolved to
    invoke_id: str  # what to send to Bedrock: the id, profile id or ARN the caller named
    prompt: str
    n: int
    size: tuple[int, int] | None
    quality: str | None
    style: str | None
    output_format: str
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BedrockCall:
    """One InvokeModel request and the request-order index of its first image."""

    body: dict[str, Any]
    first_index: int
    image_count: int


@dataclass(frozen=True)
class Field:
    """The accepted shape of one provider-specific parameter (or of a nested object)."""

    kind: type | tuple[type, ...]
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    max_length: int | None = None
    min_length: int | None = None
    pattern: str | None = None
    fields: Mapping[str, Field] | None = None  # members of a nested object
    items: Field | None = None  # element shape of a list


@dataclass(frozen=True)
class ModelSpec:
    """One row of an adapter's capability table."""

    model_id: str
    name: str
    provider: str
    max_images_per_call: int
    native_formats: tuple[str, ...]  # formats Bedrock itself can return
    default_size: tuple[int, int]
    max_prompt_chars: int
    styles: tuple[str, ...] = ()
    extras: Mapping[str, Field] = field(default_factory=dict)
    # Where Bedrock serves it (see service/regions.py): the regions it can be called in, the
    # first used when the service's AWS_REGION is not one of them; empty: any region.
    regions: tuple[str, ...] = ()
    # The living model to use instead once Bedrock retires this one (empty: none needed).
    replaced_by: str = ""


def describe(value_kind: type | tuple[type, ...]) -> str:
    kinds = value_kind if isinstance(value_kind, tuple) else (value_kind,)
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def check_field(value: Any, spec: Field, path: str) -> Any:
    """Validate one extra against its `Field`; returns it with integral floats made ints.

    JSON numbers that arrive through protobuf `Struct` are doubles, so `7` shows up as `7.0`;
    Bedrock rejects floats where it expects integers, hence the conversion.
    """
    if isinstance(value, float) and value.is_integer() and int in _kinds(spec.kind):
        value = int(value)
    if isinstance(value, bool) and bool not in _kinds(spec.kind):
        raise invalid_param(path, f"'{path}' must be {describe(spec.kind)}.")
    if isinstance(value, int) and not isinstance(value, bool) and float in _kinds(spec.kind):
        value = value if int in _kinds(spec.kind) else float(value)
    if not isinstance(value, spec.kind):
        raise invalid_param(path, f"'{path}' must be {describe(spec.kind)}.")
    if spec.choices and value not in spec.choices:
        raise invalid_param(path, f"'{path}' must be one of: {', '.join(spec.choices)}.")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if (spec.low is not None and value < spec.low) or (
            spec.high is not None and value > spec.high
        ):
            raise invalid_param(
                path, f"'{path}' must be between {_num(spec.low)} and {_num(spec.high)}."
            )
    if isinstance(value, str | list):
        if spec.min_length is not None and len(value) < spec.min_length:
            raise invalid_param(
                path,
                f"'{path}' must have at least {spec.min_length} items"
                f"{' characters' if isinstance(value, str) else ''}.",
            )
        if spec.max_length is not None and len(value) > spec.max_length:
            unit = "characters" if isinstance(value, str) else "items"
            raise invalid_param(path, f"'{path}' must have at most {spec.max_length} {unit}.")
    if isinstance(value, str) and spec.pattern and not re.fullmatch(spec.pattern, value):
        raise invalid_param(path, f"'{path}' has an invalid format: {value!r}.")
    if isinstance(value, list) and spec.items is not None:
        value = [check_field(item, spec.items, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict) and spec.fields is not None:
        value = check_object(value, spec.fields, path)
    return value


def check_object(
    values: Mapping[str, Any], fields: Mapping[str, Field], path: str = ""
) -> dict[str, Any]:
    """Validate every member of an object; unknown members are a 400 naming them."""
    checked: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{path}.{key}" if path else key
        spec = fields.get(key)
        if spec is None:
            accepted = ", ".join(sorted(fields)) or "none"
            raise invalid_param(
                name,
                f"Parameter '{name}' is not supported by this model. "
                f"Accepted extra parameters: {accepted}.",
                code="unsupported_parameter",
            )
        checked[key] = check_field(value, spec, name)
    return checked


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _num(value: float | None) -> str:
    return (
        "-inf" if value is None else (str(int(value)) if float(value).is_integer() else str(value))
    )


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `overrides` into a copy of `base`; nested objects merge, other values replace."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def split_batches(n: int, per_call: int) -> list[tuple[int, int]]:
    """(first index, count) of each Bedrock call needed for n images."""
    return [(start, min(per_call, n - start)) for start in range(0, n, per_call)]


def batch_seeds(explicit: int | None, batches: list[tuple[int, int]], high: int) -> list[int]:
    """The seed of each call: the caller's seed, or a random one, plus the call's first index.

    Random by default so that repeating a request gives new images, as OpenAI's API does
    (Nova Canvas and Titan would otherwise use a fixed default seed). Adding the first image
    index keeps the calls of one request apart: a model that varies images within a call by
    seed + position then never produces the same seed twice.
    """
    base = explicit if explicit is not None else random.randint(0, high)
    return [(base + first) % (high + 1) for first, _ in batches]


class ModelFamily(ABC):
    """An adapter for one family of Bedrock image models."""

    models: Mapping[str, ModelSpec]

    @abstractmethod
    def build_calls(self, params: GenerationParams) -> list[BedrockCall]:
        """Validate model-specific rules and build the InvokeModel bodies (raises ApiError)."""

    @abstractmethod
    def read_images(self, spec: ModelSpec, payload: Mapping[str, Any]) -> list[str]:
        """The base64 images of one Bedrock answer (raises ApiError on filtered output)."""

    @abstractmethod
    def output_size(self, params: GenerationParams) -> tuple[int, int]:
        """The pixel size the images will have."""

    def native_format(self, params: GenerationParams) -> str:
        """The format Bedrock will return; re-encoding happens only when it differs."""
        spec = self.models[params.model_id]
        return params.output_format if params.output_format in spec.native_formats else "png"

    def check_common(self, params: GenerationParams) -> ModelSpec:
        """Rules every family shares: prompt length and style support."""
        spec = self.models[params.model_id]
        if len(params.prompt) > spec.max_prompt_chars:
            raise invalid_param(
                "prompt",
                f"'prompt' is too long for {spec.model_id}: {len(params.prompt)} characters, "
                f"at most {spec.max_prompt_chars}.",
            )
        if params.style is not None and not spec.styles:
            raise invalid_param("style", f"'style' is not supported by {spec.model_id}.")
        return spec


def unsupported_value(param: str, value: str, model_id: str, accepted: Sequence[str]) -> ApiError:
    return invalid_param(
        param,
        f"'{param}' value {value!r} is not supported by {model_id}. "
        f"Accepted values: {', '.join(accepted)}.",
    )
