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
from service.models.base import ModelFamily, ModelSpec, check_object
from service.models.nova import NovaCanvas
from service.models.stability import StabilityImage
from service.models.titan import TitanImage

FAMILIES: tuple[ModelFamily, ...] = (NovaCanvas(), TitanImage(), StabilityImage())

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


def check_default_params(defaults: Mapping[str, Mapping[str, Any]]) -> None:
    """Start-up check of DEFAULT_MODEL_PARAMS: known models, parameters they accept."""
    for name, params in defaults.items():
        try:
            check_object(params, resolve(name).spec.extras)
        except ApiError as exc:
            raise ConfigError(f"DEFAULT_MODEL_PARAMS[{name!r}]: {exc.message}") from None
