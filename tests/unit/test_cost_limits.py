"""Prices, budgets in the SQLite ledger, in-process limit counters and the usage report."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from imagegen.v1 import images_pb2 as pb
from service.admission import reset_text
from service.config import ConfigError, Settings
from service.cost import PriceTable
from service.errors import ApiError
from service.ledger import Budget, SqliteLedger, UsageRow
from service.limits import LocalCounters
from service.usage_report import days_of, report

EMULATOR = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:1"}


def test_prices_by_model_tier_and_size() -> None:
    prices = PriceTable()
    assert prices.unit_price("stability.stable-image-core-v1:1", None, (1024, 1024)) == 40_000
    assert prices.unit_price("amazon.nova-canvas-v1:0", "standard", (1024, 1024)) == 40_000
    assert prices.unit_price("amazon.nova-canvas-v1:0", "hd", (2048, 2048)) == 80_000
    assert prices.unit_price("amazon.titan-image-generator-v2:0", None, (512, 512)) == 8_000
    assert prices.unit_price("stability.stable-outpaint-v1:0", None, (1024, 1024)) == 80_000


def test_image_prices_override_is_validated() -> None:
    settings = Settings.from_env(
        {**EMULATOR, "IMAGE_PRICES": '{"us.stability.stable-image-core-v1:1": 0.05}'}
    )
    table = PriceTable(settings.image_prices)
    assert table.unit_price("stability.stable-image-core-v1:1", None, (1, 1)) == 50_000
    for raw in ("[1]", '{"nope": 1}', '{"amazon.nova-canvas-v1:0": -1}', "{"):
        with pytest.raises(ConfigError, match="IMAGE_PRICES"):
            Settings.from_env({**EMULATOR, "IMAGE_PRICES": raw})


def test_reset_text_reads_like_openai() -> None:
    assert [reset_text(s) for s in (0.2, 12, 60, 3723)] == ["1s", "12s", "1m0s", "1h2m3s"]


def test_sqlite_budget_reserves_then_settles() -> None:
    async def run() -> None:
        ledger = SqliteLedger()
        day = [Budget("day", 100_000)]
        now = dt.datetime.now(dt.UTC)
        assert await ledger.reserve("k", 40_000, day) is None
        assert await ledger.reserve("k", 40_000, day) is None
        assert await ledger.reserve("k", 40_000, day) == day[0]  # 0.12 > 0.10
        # The second request produced nothing: its reservation is given back.
        row = UsageRow(now.strftime("%Y-%m-%d"), "k", "m", "1x1", 1, 0, 0)
        await ledger.settle("k", 40_000, day, row, now)
        assert await ledger.reserve("k", 40_000, day) is None
        rows = await ledger.rows(row.day, row.day)
        assert [(r.requests, r.images, r.micro_usd) for r in rows] == [(1, 0, 0)]

    asyncio.run(run())


def test_local_counters() -> None:
    async def run() -> None:
        counters = LocalCounters()
        hits = [await counters.hit("k", 2, 60) for _ in range(3)]
        assert [h.allowed for h in hits] == [True, True, False]
        assert hits[2].remaining == 0 and 0 < hits[2].reset_s <= 60
        token = await counters.acquire("c", 3, 2, 60)
        assert token is not None and await counters.acquire("c", 3, 2, 60) is None
        await counters.release("c", token, 2)
        assert await counters.acquire("c", 3, 3, 60) is not None

    asyncio.run(run())


def test_usage_report_buckets() -> None:
    start = int(dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp())
    request = pb.UsageRequest(start_time=start, end_time=start + 3 * 86400, group_by=["model"],
                              limit=2)  # fmt: skip
    days, more = days_of(request)
    assert [d.isoformat() for d in days] == ["2026-12-01", "2026-12-02"] and more
    rows = [UsageRow("2026-12-01", "a", "m", "1x1", 1, 2, 80_000),
            UsageRow("2026-12-01", "b", "m", "2x2", 1, 1, 40_000)]  # fmt: skip
    page = report(request, days, more, rows)
    [first, second] = page["data"]
    [result] = first["results"]
    assert (result["images"], result["model"], result["api_key_id"]) == (3, "m", None)
    assert result["amount"]["value"] == 0.12 and second["results"] == []
    assert page["next_page"] == str(start + 2 * 86400)
    with pytest.raises(ApiError):
        days_of(pb.UsageRequest())


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"start_time": 1, "end_time": 9007199254740993}, "end_time"),
        ({"start_time": 9007199254740993}, "start_time"),
        ({"start_time": 1, "page": "\u00b2"}, "page"),
        ({"start_time": 1, "page": "9" * 13}, "page"),
    ],
)
def test_usage_report_far_times_are_400s(request_fields: dict[str, Any], param: str) -> None:
    """Found by schemathesis: these overflowed datetime (a 500) before."""
    with pytest.raises(ApiError) as raised:
        days_of(pb.UsageRequest(**request_fields))
    assert raised.value.param == param


def test_usage_report_of_eight_millennia_builds_one_page() -> None:
    """A range up to year 9999 once built ~2.9 million dates on the event loop."""
    days, more = days_of(pb.UsageRequest(start_time=1, end_time=253402300799, limit=3))
    assert [d.isoformat() for d in days] == ["1970-01-01", "1970-01-02", "1970-01-03"] and more
