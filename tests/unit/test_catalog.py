"""The models API catalog: Bedrock's list intersected with the registry, cached, resilient."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from service.catalog import ModelCatalog
from service.errors import ApiError
from service.models.registry import all_models


class FakeListing:
    def __init__(self, summaries: list[dict[str, Any]] | None) -> None:
        self.summaries = summaries
        self.calls = 0

    async def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.summaries is None:
            raise ApiError(503, "Bedrock is unreachable")
        return self.summaries


def test_lists_only_models_bedrock_offers_with_their_lifecycle() -> None:
    listing = FakeListing([
        {"modelId": "stability.sd3-5-large-v1:0",
         "modelLifecycle": {"status": "ACTIVE", "startOfLifeTime": datetime(2024, 12, 19,
                                                                            tzinfo=UTC)}},
        {"modelId": "amazon.nova-canvas-v1:0", "modelLifecycle": {"status": "LEGACY"}},
        {"modelId": "some.other-image-model-v1:0", "modelLifecycle": {"status": "ACTIVE"}},
    ])  # fmt: skip
    catalog = ModelCatalog(listing)
    entries = asyncio.run(catalog.entries())
    assert [(e.spec.model_id, e.lifecycle) for e in entries] == [
        ("amazon.nova-canvas-v1:0", "LEGACY"), ("stability.sd3-5-large-v1:0", "ACTIVE"),
    ]  # fmt: skip
    assert entries[1].created == int(datetime(2024, 12, 19, tzinfo=UTC).timestamp())
    asyncio.run(catalog.entries())
    assert listing.calls == 1, "the answer is cached"


def test_entry_resolves_aliases_and_404s_models_not_in_the_region() -> None:
    catalog = ModelCatalog(FakeListing([{"modelId": "amazon.nova-canvas-v1:0"}]))
    assert asyncio.run(catalog.entry("us.amazon.nova-canvas-v1:0")).spec.model_id == (
        "amazon.nova-canvas-v1:0"
    )
    for name in ("stability.sd3-5-large-v1:0", "midjourney-v7"):
        with pytest.raises(ApiError) as info:
            asyncio.run(catalog.entry(name))
        assert (info.value.status, info.value.code) == (404, "model_not_found")


def test_unreachable_bedrock_serves_the_builtin_list() -> None:
    entries = asyncio.run(ModelCatalog(FakeListing(None)).entries())
    assert len(entries) == len(list(all_models()))
    assert {entry.lifecycle for entry in entries} == {"UNKNOWN"}
