"""Resolves what a caller names as `model` to the adapter and table row that serve it.

Accepted: base model ids, cross-region inference profile ids (`us.`, `eu.`, `apac.`, ...
prefixes), and Bedrock ARNs of foundation models and inference profiles. Bedrock is
invoked with exactly what the caller named, so profiles and ARNs keep their meaning.
An OpenAI model name (`service.models.aliases`) is first swapped for the model it maps to.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from service.config import ConfigError
from service.errors import ApiError
from service.models import aliases
from service.models.amazon_edit import AmazonEdit
from service.models.base import Field, ModelFamily, ModelSpec, check_object
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
    alias: str = ""  # the OpenAI model name the caller used, if any

    def read_images(self, payload: Mapping[str, Any]) -> list[str]:
        return self.family.read_images(self.spec, payload)


@dataclass(frozen=True)
class ResolvedEdit:
    family: EditFamily
    spec: EditSpec
    invoke_id: str
    alias: str = ""

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


def _unaliased(name: str, endpoint: str) -> tuple[str, str]:
    """(the model to resolve, the alias it came from or "")."""
    named = name.strip()
    alias = aliases.lookup(named)
    return (alias.target(endpoint), alias.name) if alias else (named, "")


def resolve(name: str) -> ResolvedModel:
    named, alias = _unaliased(name, "generations")
    model_id = base_model_id(named)
    for family, spec in all_models():
        if spec.model_id == model_id:
            return ResolvedModel(family=family, spec=spec, invoke_id=named, alias=alias)
    known = ", ".join(spec.model_id for _, spec in all_models())
    raise ApiError(
        404,
        f"The model '{name}' does not exist or is not an image model served here. "
        f"Available models: {known}; OpenAI names: {', '.join(aliases.active()) or 'none'}.",
        param="model",
        code="model_not_found",
    )


def all_edit_models() -> Iterator[tuple[EditFamily, EditSpec]]:
    for family in EDIT_FAMILIES:
        for spec in family.models.values():
            yield family, spec


def resolve_edit(name: str, variation: bool = False) -> ResolvedEdit:
    """The edit row for `model`; a bare id of a profile-only model is invoked as `us.<id>`."""
    named, alias = _unaliased(name, "variations" if variation else "edits")
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
        return ResolvedEdit(family=family, spec=spec, invoke_id=invoke_id, alias=alias)
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
            for fields in _defaults_applied_with(name):
                check_object(params, fields)
        except ApiError as exc:
            raise ConfigError(f"DEFAULT_MODEL_PARAMS[{name!r}]: {exc.message}") from None


def _defaults_applied_with(name: str) -> list[Mapping[str, Field]]:
    """The parameter tables DEFAULT_MODEL_PARAMS[name] must fit: a generation model's extras,
    an image service's edit options, or both for an alias that names one of each."""
    tables = []
    with contextlib.suppress(ApiError):
        tables.append(resolve(name).spec.extras)
    with contextlib.suppress(ApiError):
        edit = resolve_edit(name)
        if edit.spec.profile_only:  # the pipeline applies defaults to these edits only
            tables.append(edit.spec.options)
    if not tables:
        resolve(name)  # the 404 naming the available models
    return tables
