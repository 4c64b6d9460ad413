"""The models API catalog: each model from its region's listing, lifecycle, cached, resilient."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from service.catalog import ModelCatalog
from service.errors import ApiError
from service.models.registry import all_models
from service.regions import RegionRouter
from tests.model_ids import CORE_1, NOVA, SD35, TITAN_V1, TITAN_V2


class FakeListing:
    """ListFoundationModels per region; a region missing from `by_region` is unreachable."""

    def __init__(self, by_region: dict[str, list[dict[str, Any]]]) -> None:
        self.by_region = by_region
        self.calls: list[str] = []

    async def __call__(self, region: str) -> list[dict[str, Any]]:
        self.calls.append(region)
        if region not in self.by_region:
            raise ApiError(503, "Bedrock is unreachable")
        return self.by_region[region]


def catalog(listing: FakeListing, configured: str = "us-east-1") -> ModelCatalog:
    return ModelCatalog(listing, RegionRouter(configured, {}))


def test_each_model_comes_from_its_regions_listing_with_its_lifecycle() -> None:
    listing = FakeListing({
        "us-west-2": [
            {"modelId": SD35, "modelLifecycle": {
                "status": "ACTIVE", "startOfLifeTime": datetime(2024, 12, 19, tzinfo=UTC)}},
            {"modelId": NOVA, "modelLifecycle": {"status": "ACTIVE"}},  # not where it is called
            {"modelId": "some.other-image-model-v1:0", "modelLifecycle": {"status": "ACTIVE"}},
        ],
        "us-east-1": [
            {"modelId": NOVA, "modelLifecycle": {
                "status": "LEGACY", "legacyTime": datetime(2026, 3, 30, tzinfo=UTC),
                "endOfLifeTime": datetime(2026, 9, 30, tzinfo=UTC)}},
            {"modelId": TITAN_V2, "modelLifecycle": {
                "status": "LEGACY", "endOfLifeTime": datetime(2999, 1, 1, tzinfo=UTC)}},
        ],
    })  # fmt: skip
    models = catalog(listing)
    entries = {e.spec.model_id: e for e in asyncio.run(models.entries())}
    assert sorted(entries) == [NOVA, TITAN_V2, SD35]
    assert sorted(listing.calls) == ["us-east-1", "us-west-2"]
    assert (entries[SD35].region, entries[SD35].lifecycle) == ("us-west-2", "ACTIVE")
    assert entries[SD35].created == int(datetime(2024, 12, 19, tzinfo=UTC).timestamp())
    nova = entries[NOVA]
    assert (nova.region, nova.lifecycle, nova.retired) == ("us-east-1", "EOL", True)
    assert nova.legacy_at == datetime(2026, 3, 30, tzinfo=UTC)
    assert nova.end_of_life_at == datetime(2026, 9, 30, tzinfo=UTC)
    assert entries[TITAN_V2].lifecycle == "LEGACY", "an end of life still to come is LEGACY"
    asyncio.run(models.entries())
    assert len(listing.calls) == 2, "the answers are cached"


def test_a_model_bedrock_refused_as_retired_is_listed_as_eol() -> None:
    models = catalog(FakeListing({"us-east-1": [], "us-west-2": []}))
    assert asyncio.run(models.entries()) == []
    models.refused_as_retired(f"us.{TITAN_V1}")
    entries = asyncio.run(models.entries())
    assert [(e.spec.model_id, e.lifecycle) for e in entries] == [(TITAN_V1, "EOL")]


def test_entry_resolves_profiles_and_404s_models_not_in_their_region() -> None:
    models = catalog(FakeListing({"us-east-1": [{"modelId": NOVA}], "us-west-2": []}))
    assert asyncio.run(models.entry(f"us.{NOVA}")).spec.model_id == NOVA
    for name in (CORE_1, "midjourney-v7"):
        with pytest.raises(ApiError) as info:
            asyncio.run(models.entry(name))
        assert (info.value.status, info.value.code) == (404, "model_not_found")
    with pytest.raises(ApiError, match="us-west-2"):
        asyncio.run(models.entry(CORE_1))


def test_an_unreachable_region_serves_its_models_as_unknown() -> None:
    entries = asyncio.run(catalog(FakeListing({"us-east-1": [{"modelId": NOVA}]})).entries())
    lifecycles = {entry.spec.model_id: entry.lifecycle for entry in entries}
    stability = [spec.model_id for _, spec in all_models() if spec.regions == ("us-west-2",)]
    assert lifecycles == {NOVA: "ACTIVE"} | {model_id: "UNKNOWN" for model_id in stability}
