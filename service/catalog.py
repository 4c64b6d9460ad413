"""The models API: the image models this service drives that Bedrock offers in the region.

Bedrock's ListFoundationModels says which image models the region has and where each is in
its lifecycle; the registry says which of them this service can drive. The answer is kept
for CACHE_S seconds. When Bedrock cannot be asked, the registry's own list is served (and
the failure logged), so /v1/models keeps answering.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.errors import ApiError
from service.models import aliases
from service.models.base import ModelSpec
from service.models.registry import all_models, resolve

log = logging.getLogger(__name__)

CACHE_S = 300.0
FALLBACK_CACHE_S = 30.0  # retry Bedrock sooner after a failed listing


@dataclass(frozen=True)
class ModelEntry:
    spec: ModelSpec
    created: int  # unix seconds the model became available on Bedrock (0 if unknown)
    lifecycle: str  # ACTIVE | LEGACY, or UNKNOWN when Bedrock could not be asked
    alias: str = ""  # set on an OpenAI model name's entry (MODEL_ALIASES); spec: its target


def _created(summary: dict[str, Any]) -> int:
    start = summary.get("modelLifecycle", {}).get("startOfLifeTime")
    return int(start.timestamp()) if isinstance(start, datetime) else 0


class ModelCatalog:
    def __init__(self, list_image_models: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        self._list_image_models = list_image_models
        self._entries: list[ModelEntry] = []
        self._expires_at = float("-inf")
        self._lock = asyncio.Lock()

    async def entries(self) -> list[ModelEntry]:
        async with self._lock:
            if time.monotonic() >= self._expires_at:
                self._entries, keep_s = await self._fetch()
                self._expires_at = time.monotonic() + keep_s
            return self._entries

    async def listing(self) -> list[ModelEntry]:
        """What /v1/models lists: the models, then the OpenAI model names mapped to them."""
        entries = await self.entries()
        return entries + with_aliases(entries)

    async def entry(self, name: str) -> ModelEntry:
        resolved = resolve(name)  # 404 for ids this service cannot drive
        for entry in await self.listing():
            if entry.spec.model_id == resolved.spec.model_id and entry.alias == resolved.alias:
                return entry
        raise ApiError(
            404,
            f"The model '{name}' is not offered by Bedrock in this region.",
            param="model",
            code="model_not_found",
        )

    async def _fetch(self) -> tuple[list[ModelEntry], float]:
        """The entries and how long to keep them."""
        try:
            summaries = {s["modelId"]: s for s in await self._list_image_models()}
        except ApiError as exc:
            log.warning("ListFoundationModels failed, serving the built-in list: %s", exc)
            return [ModelEntry(spec, 0, "UNKNOWN") for _, spec in all_models()], FALLBACK_CACHE_S
        entries = [
            ModelEntry(
                spec,
                _created(summaries[spec.model_id]),
                summaries[spec.model_id].get("modelLifecycle", {}).get("status", "ACTIVE"),
            )
            for _, spec in all_models()
            if spec.model_id in summaries
        ]
        return entries, CACHE_S


def with_aliases(entries: list[ModelEntry]) -> list[ModelEntry]:
    """An entry per OpenAI model name whose generation model is listed, naming that model."""
    listed = {entry.spec.model_id: entry for entry in entries}
    return [
        dataclasses.replace(listed[alias.targets["generations"]], alias=name)
        for name, alias in aliases.active().items()
        if alias.targets.get("generations") in listed
    ]
