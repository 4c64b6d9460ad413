"""The models API: the image models this service drives, where each is called, and where
Bedrock says each is in its lifecycle.

Each model is looked up in Bedrock's ListFoundationModels of the region it is called in
(service/regions.py), so the lifecycle shown is Bedrock's own: ACTIVE, LEGACY, or EOL once
its `endOfLifeTime` has passed or Bedrock refused a call as end of life. Nothing here holds
a date: Bedrock's answers decide. The answers are kept for CACHE_S seconds; when a region
cannot be asked, its models are served with lifecycle UNKNOWN (and the failure logged), so
/v1/models keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from service.errors import ApiError
from service.models import aliases
from service.models.base import ModelSpec
from service.models.registry import all_models, base_model_id, resolve
from service.regions import RegionRouter

log = logging.getLogger(__name__)

CACHE_S = 300.0
FALLBACK_CACHE_S = 30.0  # retry Bedrock sooner after a failed listing

ListImageModels = Callable[[str], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class ModelEntry:
    spec: ModelSpec
    region: str  # where it is called
    created: int  # unix seconds the model became available on Bedrock (0 if unknown)
    lifecycle: str  # ACTIVE | LEGACY | EOL, or UNKNOWN when Bedrock could not be asked
    legacy_at: datetime | None = None
    end_of_life_at: datetime | None = None
    alias: str = ""  # set on an OpenAI model name's entry (MODEL_ALIASES); spec: its target

    @property
    def retired(self) -> bool:
        return self.lifecycle == "EOL"


def _when(value: Any) -> datetime | None:
    """A lifecycle timestamp (botocore parses them into datetimes)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def entry_from_summary(
    spec: ModelSpec, region: str, summary: Mapping[str, Any], now: datetime
) -> ModelEntry:
    lifecycle = summary.get("modelLifecycle") or {}
    start = _when(lifecycle.get("startOfLifeTime"))
    end_of_life = _when(lifecycle.get("endOfLifeTime"))
    status = str(lifecycle.get("status") or "ACTIVE")
    if end_of_life is not None and end_of_life <= now:
        status = "EOL"
    return ModelEntry(
        spec,
        region,
        int(start.timestamp()) if start else 0,
        status,
        _when(lifecycle.get("legacyTime")),
        end_of_life,
    )


class ModelCatalog:
    def __init__(self, list_image_models: ListImageModels, router: RegionRouter) -> None:
        self._list_image_models = list_image_models
        self._router = router
        self._entries: list[ModelEntry] = []
        self._expires_at = float("-inf")
        self._lock = asyncio.Lock()
        # Models Bedrock refused as end of life although its listing did not say so.
        self._refused_as_retired: set[str] = set()

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
            f"The model '{name}' is not offered by Bedrock in "
            f"{self._router.model_region(resolved.spec.model_id)}.",
            param="model",
            code="model_not_found",
        )

    async def lookup(self, model_id: str) -> ModelEntry | None:
        """The entry of a model (base id), or None when Bedrock does not list it."""
        model_id = base_model_id(model_id)
        for entry in await self.entries():
            if entry.spec.model_id == model_id:
                return entry
        return None

    def refused_as_retired(self, model_id: str) -> None:
        """Bedrock answered a call with end of life: list the model as EOL from now on."""
        model_id = base_model_id(model_id)
        if model_id not in self._refused_as_retired:
            self._refused_as_retired.add(model_id)
            self._expires_at = float("-inf")

    async def _fetch(self) -> tuple[list[ModelEntry], float]:
        """The entries and how long to keep them."""
        specs = [spec for _, spec in all_models()]
        regions = sorted({self._router.model_region(spec.model_id) for spec in specs})
        listings = await asyncio.gather(
            *(self._list_image_models(region) for region in regions), return_exceptions=True
        )
        by_region: dict[str, dict[str, Any] | None] = {}
        for region, listing in zip(regions, listings, strict=True):
            if isinstance(listing, ApiError):
                log.warning("ListFoundationModels in %s failed: %s", region, listing)
                by_region[region] = None
            elif isinstance(listing, BaseException):
                raise listing
            else:
                by_region[region] = {summary["modelId"]: summary for summary in listing}
        now = datetime.now(UTC)
        entries = []
        for spec in specs:
            region = self._router.model_region(spec.model_id)
            summaries = by_region[region]
            if summaries is None:
                entries.append(ModelEntry(spec, region, 0, "UNKNOWN"))
            elif spec.model_id in summaries:
                entry = entry_from_summary(spec, region, summaries[spec.model_id], now)
                if spec.model_id in self._refused_as_retired:
                    entry = replace(entry, lifecycle="EOL")
                entries.append(entry)
            elif spec.model_id in self._refused_as_retired:
                entries.append(ModelEntry(spec, region, 0, "EOL"))
        failed = any(summaries is None for summaries in by_region.values())
        return entries, FALLBACK_CACHE_S if failed else CACHE_S


def with_aliases(entries: list[ModelEntry]) -> list[ModelEntry]:
    """An entry per OpenAI model name whose generation model is listed, naming that model."""
    listed = {entry.spec.model_id: entry for entry in entries}
    return [
        replace(listed[alias.targets["generations"]], alias=name)
        for name, alias in aliases.active().items()
        if alias.targets.get("generations") in listed
    ]
