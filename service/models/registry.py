"""Resolves what a caller names as `model` to the adapter and table row that serve it.

Accepted: base model ids, cross-region inference profile ids (`us.`, `eu.`, `apac.`, ...
prefixes), and Bedrock ARNs of foundation models and inference profiles. Bedrock is
invoked with exactly what the caller named, so profiles and ARNs keep their meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from service.config import ConfigError
from service.errors import ApiError
from service.models.amazon_edit import AmazonEdit
from service.models.base import ModelFamily, ModelSpec, check_object
from service.models.edit import EditFamily, EditSpec
from service.models.nova import NovaCanvas
from service.models.stability import StabilityImage
from service.models.stability_edit import StabilityEdit
from service.models.titan import TitanImage

FAMILIES: tuple[ModelFamily, ...] = (NovaCanvas(), TitanImage(), StabilityImage())
EDIT_FAMILIES: tuple[EditFamily, ...] = (StabilityEdit(), AmazonEdit())

_PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|us-gov|ca|jp|au|global)\.")
_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{0,12}:"
    r"(?:foundation-model|inference-profile|application-inference-profile)/(?P<id>.+)$"
)


@dataclass(frozen=True)
class ResolvedModel:
    family: ModelFamily
    spec: ModelSpec
    invoke_id: str

    def read_images(self, payload: Mapping[str, Any]) -> list[str]:
        return self.family.read_images(self.spec, payload)


@dataclass(frozen=True)
class ResolvedEdit:
    family: EditFamily
    spec: EditSpec
    invoke_id: str

    def read_images(self, payload: Mapping[str, Any]) -> list[str]:
        return self.family.read_images(self.spec, payload)


def all_models() -> Iterator[tuple[ModelFamily, ModelSpec]]:
    for family in FAMILIES:
        for spec in family.models.values():
            yield family, spec


def base_model_id(name: str) -> str:
    """Strip an ARN wrapper and a cross-region profile prefix."""
    match = _ARN.match(name)
    model_id = match.group("id") if match else name
    return _PROFILE_PREFIX.sub("", model_id)


def resolve(name: str) -> ResolvedModel:
    model_id = base_model_id(name.strip())
    for family, spec in all_models():
        if spec.model_id == model_id:
            return ResolvedModel(family=family, spec=spec, invoke_id=name.strip())
    known = ", ".join(spec.model_id for _, spec in all_models())
    raise ApiError(
        404,
        f"The model '{name}' does not exist or is not an image model served here. "
        f"Available models: {known}.",
        param="model",
        code="model_not_found",
    )


def all_edit_models() -> Iterator[tuple[EditFamily, EditSpec]]:
    for family in EDIT_FAMILIES:
        for spec in family.models.values():
            yield family, spec


def resolve_edit(name: str, variation: bool = False) -> ResolvedEdit:
    """The edit row for `model`; a bare id of a profile-only model is invoked as `us.<id>`."""
    named = name.strip()
    model_id = base_model_id(named)
    for family, spec in all_edit_models():
        if spec.model_id != model_id:
            continue
        if variation and not spec.variation:
            raise ApiError(
                400,
                f"{spec.model_id} does not make variations; models that do: "
                f"{', '.join(s.model_id for _, s in all_edit_models() if s.variation)}.",
                param="model",
                code="model_not_supported",
            )
        invoke_id = f"us.{named}" if spec.profile_only and named == model_id else named
        return ResolvedEdit(family=family, spec=spec, invoke_id=invoke_id)
    known = ", ".join(spec.model_id for _, spec in all_edit_models())
    if any(spec.model_id == model_id for _, spec in all_models()):
        raise ApiError(
            400,
            f"The model '{name}' generates images but does not edit them. Edit models: {known}.",
            param="model",
            code="model_not_supported",
        )
    raise ApiError(
        404,
        f"The model '{name}' does not exist or is not an image edit model served here. "
        f"Edit models: {known}.",
        param="model",
        code="model_not_found",
    )


def check_default_params(defaults: Mapping[str, Mapping[str, Any]]) -> None:
    """Start-up check of DEFAULT_MODEL_PARAMS: known models, parameters they accept."""
    for name, params in defaults.items():
        try:
            try:
                fields = resolve(name).spec.extras
            except ApiError:  # an edit-only model (one of Stability's image services)
                fields = resolve_edit(name).spec.options
            check_object(params, fields)
        except ApiError as exc:
            raise ConfigError(f"DEFAULT_MODEL_PARAMS[{name!r}]: {exc.message}") from None
