"""Admission of a planned generation or edit: the checks that need the validated request.

The interceptor has already authenticated the caller. Here, before any Bedrock call: the
key's model allowlist (403), its requests per minute and concurrent generations, the
service-wide cap on Bedrock calls in flight (429 `rate_limit_exceeded` with Retry-After),
and its USD budgets (429 `insufficient_quota`). The call's record learns what was asked and
what it costs; when the call ends its slots are released and its real cost is settled.
Every face calls `admit` between planning and running, so none can skip it.
"""

from __future__ import annotations

import math

from service import metrics
from service.auth import ApiKey, check_model
from service.cost import PriceTable, usd
from service.errors import ApiError
from service.interceptors import CallRecord, current_call
from service.ledger import Budget, Ledger, SqliteLedger, UsageRow, utc_now
from service.limits import Counters, LocalCounters, Window
from service.pipeline import Plan

# A lease outlives any request (Bedrock's read timeout is at most an hour): a replica that
# died holding one frees it by then.
LEASE_TTL_S = 3900.0


def reset_text(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* format: 1s, 6m0s, 1h2m3s."""
    whole = max(1, math.ceil(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rate_limited(message: str, retry_after_s: float) -> ApiError:
    retry = max(1, math.ceil(retry_after_s))
    return ApiError(429, message, code="rate_limit_exceeded",
                    headers={"retry-after": str(retry)})  # fmt: skip


def budgets_of(key: ApiKey) -> list[Budget]:
    budgets = []
    for period, limit in (("day", key.budget_usd_per_day), ("month", key.budget_usd_per_month)):
        if limit is not None:
            budgets.append(Budget(period, round(limit * 1_000_000)))
    return budgets


class Admission:
    def __init__(
        self,
        counters: Counters | None = None,
        ledger: Ledger | None = None,
        prices: PriceTable | None = None,
        max_bedrock_calls: int = 0,
    ) -> None:
        self._counters = counters or LocalCounters()
        self._ledger = ledger or SqliteLedger()
        self._prices = prices or PriceTable()
        # The cap on Bedrock calls in flight is this process's own (it protects its pool).
        self._local = LocalCounters()
        self._max_bedrock_calls = max_bedrock_calls

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    async def admit(self, plan: Plan) -> None:
        """Raises the ApiError the caller gets when the request may not run now."""
        record = current_call()
        if record is None:  # outside an RPC (direct pipeline use): nothing to enforce
            return
        model_id = plan.model.spec.model_id
        record.model = model_id
        record.alias = plan.model.alias
        # The model really used, also when the caller named an alias (MODEL_ALIASES).
        record.headers["x-bedrock-model"] = plan.model.invoke_id
        record.n = plan.common.n
        record.size = "{}x{}".format(*plan.size)
        record.user = plan.common.user
        record.prompt = plan.common.prompt
        record.unit_price_micro = self._prices.unit_price(model_id, plan.common.quality, plan.size)
        key = record.key
        check_model(key, model_id)
        if key is not None:
            await self._key_limits(key, record)
        await self._bedrock_cap(len(plan.calls), record)
        budgets = budgets_of(key) if key is not None else []
        planned = record.unit_price_micro * plan.common.n
        reserved_at = utc_now()
        if budgets:
            exceeded = await self._ledger.reserve(key.name if key else "", planned, budgets)
            if exceeded is not None:
                raise ApiError(
                    429,
                    f"The API key '{record.key_name}' is over its {exceeded.name} of "
                    f"{usd(exceeded.limit_micro):.2f} USD: this request may cost "
                    f"{usd(planned):.2f} USD. It resets at the start of the next UTC "
                    f"{exceeded.period}.",
                    code="insufficient_quota",
                    error_type="insufficient_quota",
                )

        async def settle(done: CallRecord) -> None:
            cost = done.cost_micro
            metrics.COST_USD.labels(model_id).inc(usd(cost))
            row = UsageRow(reserved_at.strftime("%Y-%m-%d"), done.key_name, model_id,
                           done.size, 1, done.images, cost)  # fmt: skip
            await self._ledger.settle(done.key_name, planned if budgets else 0, budgets, row,
                                      reserved_at)  # fmt: skip

        record.finishers.append(settle)

    async def _key_limits(self, key: ApiKey, record: CallRecord) -> None:
        if key.requests_per_minute:
            window = await self._counters.hit(f"rpm:{key.name}", key.requests_per_minute, 60)
            record.headers.update(_window_headers(window))
            if not window.allowed:
                raise rate_limited(
                    f"Rate limit reached for the API key '{key.name}': "
                    f"{key.requests_per_minute} requests per minute. Try again in "
                    f"{reset_text(window.reset_s)}.",
                    window.reset_s,
                )
        if key.max_concurrent:
            name = f"concurrent:{key.name}"
            token = await self._counters.acquire(name, key.max_concurrent, 1, LEASE_TTL_S)
            if token is None:
                raise rate_limited(
                    f"The API key '{key.name}' already has {key.max_concurrent} generation(s) "
                    "under way; wait for one to finish.",
                    1,
                )
            record.finishers.append(lambda _: self._counters.release(name, token, 1))

    async def _bedrock_cap(self, calls: int, record: CallRecord) -> None:
        if not self._max_bedrock_calls:
            return
        limit = self._max_bedrock_calls
        token = await self._local.acquire("bedrock", limit, calls, LEASE_TTL_S)
        if token is None:
            raise rate_limited(
                f"The service is at its limit of {limit} Bedrock calls in flight "
                "(BEDROCK_MAX_IN_FLIGHT); try again shortly.",
                1,
            )
        record.finishers.append(lambda _: self._local.release("bedrock", token, calls))


def _window_headers(window: Window) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(window.limit),
        "x-ratelimit-remaining-requests": str(window.remaining),
        "x-ratelimit-reset-requests": reset_text(window.reset_s),
    }
