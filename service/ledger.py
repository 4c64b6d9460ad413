"""Spend and usage per API key: budgets are checked against it, the usage report reads it.

Amounts are micro-USD integers. A request first *reserves* what it may cost (n images at
the model's price) against every budget of its key, atomically, so concurrent requests
cannot overspend together; when it ends, the reservation is replaced by what Bedrock really
produced, and that goes into the usage rows (UTC day, key, model, size).

`SqliteLedger` is the single-process default (USAGE_DB, in memory unless a path is given);
`RedisLedger` is shared by every replica (REDIS_URL).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis

PERIODS = ("day", "month")
_KEEP_S = 40 * 24 * 3600  # Redis spend counters outlive the longest budget period


@dataclass(frozen=True)
class Budget:
    period: str  # "day" or "month" (UTC)
    limit_micro: int

    @property
    def name(self) -> str:
        return f"budget_usd_per_{self.period}"


@dataclass(frozen=True)
class UsageRow:
    day: str  # YYYY-MM-DD, UTC
    key: str  # "" when the service runs open
    model: str
    size: str
    requests: int
    images: int
    micro_usd: int


def period_bucket(period: str, now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Ledger(Protocol):
    async def reserve(self, key: str, micro: int, budgets: list[Budget]) -> Budget | None:
        """Reserve `micro` against every budget; the first budget it would exceed (nothing
        reserved then), or None."""
        ...

    async def settle(
        self, key: str, reserved: int, budgets: list[Budget], row: UsageRow, at: dt.datetime
    ) -> None:
        """Replace a reservation by the real cost (`row.micro_usd`) and record the usage."""
        ...

    async def rows(self, first_day: str, last_day: str) -> list[UsageRow]: ...


class SqliteLedger:
    def __init__(self, path: str = ":memory:") -> None:
        # One connection used from the event loop only; each statement is microseconds.
        self._db = sqlite3.connect(path or ":memory:", isolation_level=None)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS spend (
                key TEXT, bucket TEXT, micro INTEGER NOT NULL, PRIMARY KEY (key, bucket));
            CREATE TABLE IF NOT EXISTS usage (
                day TEXT, key TEXT, model TEXT, size TEXT, requests INTEGER NOT NULL,
                images INTEGER NOT NULL, micro INTEGER NOT NULL,
                PRIMARY KEY (day, key, model, size));
            """
        )

    def _add(self, key: str, bucket: str, micro: int) -> None:
        self._db.execute(
            "INSERT INTO spend VALUES (?, ?, ?) "
            "ON CONFLICT (key, bucket) DO UPDATE SET micro = micro + excluded.micro",
            (key, bucket, micro),
        )

    async def reserve(self, key: str, micro: int, budgets: list[Budget]) -> Budget | None:
        now = utc_now()
        with self._db:  # one transaction: check every budget, then add to each
            self._db.execute("BEGIN IMMEDIATE")
            for budget in budgets:
                bucket = period_bucket(budget.period, now)
                found = self._db.execute(
                    "SELECT micro FROM spend WHERE key = ? AND bucket = ?", (key, bucket)
                ).fetchone()
                if (found[0] if found else 0) + micro > budget.limit_micro:
                    return budget
            for budget in budgets:
                self._add(key, period_bucket(budget.period, now), micro)
        return None

    async def settle(
        self, key: str, reserved: int, budgets: list[Budget], row: UsageRow, at: dt.datetime
    ) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for budget in budgets:
                self._add(key, period_bucket(budget.period, at), row.micro_usd - reserved)
            self._db.execute(
                "INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (day, key, model, size) DO UPDATE SET "
                "requests = requests + excluded.requests, images = images + excluded.images, "
                "micro = micro + excluded.micro",
                (row.day, row.key, row.model, row.size, row.requests, row.images, row.micro_usd),
            )

    async def rows(self, first_day: str, last_day: str) -> list[UsageRow]:
        found = self._db.execute(
            "SELECT day, key, model, size, requests, images, micro FROM usage "
            "WHERE day BETWEEN ? AND ? ORDER BY day",
            (first_day, last_day),
        )
        return [UsageRow(*values) for values in found.fetchall()]


_RESERVE = """
local micro = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local spent = tonumber(redis.call('GET', key) or '0')
  if spent + micro > tonumber(ARGV[i + 2]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('INCRBY', key, micro)
  redis.call('EXPIRE', key, tonumber(ARGV[2]))
end
return 0
"""


class RedisLedger:
    PREFIX = "imagegen:"

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._reserve: Any = client.register_script(_RESERVE)

    def _spend_key(self, key: str, bucket: str) -> str:
        return f"{self.PREFIX}spend:{key}:{bucket}"

    async def reserve(self, key: str, micro: int, budgets: list[Budget]) -> Budget | None:
        if not budgets:
            return None
        now = utc_now()
        keys = [self._spend_key(key, period_bucket(b.period, now)) for b in budgets]
        args = [micro, _KEEP_S, *(b.limit_micro for b in budgets)]
        exceeded = int(await self._reserve(keys=keys, args=args))
        return budgets[exceeded - 1] if exceeded else None

    async def settle(
        self, key: str, reserved: int, budgets: list[Budget], row: UsageRow, at: dt.datetime
    ) -> None:
        usage = f"{self.PREFIX}usage:{row.day}"
        field = "\t".join((row.key, row.model, row.size))
        async with self._redis.pipeline(transaction=True) as batch:
            for budget in budgets:
                spend = self._spend_key(key, period_bucket(budget.period, at))
                batch.incrby(spend, row.micro_usd - reserved)
            batch.hincrby(usage, field + "\trequests", row.requests)
            batch.hincrby(usage, field + "\timages", row.images)
            batch.hincrby(usage, field + "\tmicro", row.micro_usd)
            await batch.execute()

    async def rows(self, first_day: str, last_day: str) -> list[UsageRow]:
        found: list[UsageRow] = []
        day = dt.date.fromisoformat(first_day)
        last = dt.date.fromisoformat(last_day)
        while day <= last:
            values = await self._redis.hgetall(f"{self.PREFIX}usage:{day.isoformat()}")
            totals: dict[tuple[str, str, str], dict[str, int]] = {}
            for raw_field, raw_value in values.items():
                key, model, size, what = _text(raw_field).split("\t")
                totals.setdefault((key, model, size), {})[what] = int(raw_value)
            for (key, model, size), sums in sorted(totals.items()):
                found.append(UsageRow(day.isoformat(), key, model, size, sums.get("requests", 0),
                                      sums.get("images", 0), sums.get("micro", 0)))  # fmt: skip
            day += dt.timedelta(days=1)
        return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
