"""The operators' usage report, shaped like OpenAI's usage API for images.

`GET /v1/organization/usage/images?start_time=...&group_by=api_key_id&group_by=model`
answers `{"object": "page", "data": [buckets], "has_more", "next_page"}`; each daily bucket
holds results with `images`, `num_model_requests`, the grouped fields (api_key_id is the
key's name) and, as in OpenAI's costs API, `amount: {"value": USD, "currency": "usd"}`.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable
from typing import Any

from imagegen.v1 import images_pb2 as pb
from service.cost import usd
from service.errors import invalid_param
from service.ledger import UsageRow

DAY_S = 86400
# The last second a datetime holds (9999-12-31T23:59:59Z): later times are a 400, not a crash.
LATEST_TIME = 253402300799
_PAGE = re.compile(r"[0-9]{1,12}")
GROUPS = ("api_key_id", "model", "size")
_ROW_FIELD = {"api_key_id": "key", "model": "model", "size": "size"}


def _day(timestamp: int) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date()


def _start_of(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def days_of(request: pb.UsageRequest, now: float | None = None) -> tuple[list[dt.date], bool]:
    """The days of this page and whether more follow; raises a 400 naming the parameter."""
    if request.start_time <= 0:
        raise invalid_param("start_time", "'start_time' (Unix seconds) is required.")
    if request.bucket_width not in ("", "1d"):
        raise invalid_param("bucket_width", "Only bucket_width=1d is available (daily counters).")
    for group in request.group_by:
        if group not in GROUPS:
            raise invalid_param("group_by", f"group_by must be any of {', '.join(GROUPS)}.")
    if not 0 <= request.limit <= 31:
        raise invalid_param("limit", "'limit' must be between 1 and 31.")
    for name in ("start_time", "end_time"):
        if not 0 <= getattr(request, name) <= LATEST_TIME:
            raise invalid_param(name, f"'{name}' must be Unix seconds up to {LATEST_TIME}.")
    end = request.end_time or int(now if now is not None else time.time())
    start = request.start_time
    if request.page:
        if not _PAGE.fullmatch(request.page) or int(request.page) > LATEST_TIME:
            raise invalid_param("page", "'page' must be the next_page of a previous answer.")
        start = int(request.page)
    if end <= start:
        return [], False
    # Only this page's days are built: a range of millennia costs no more than a week.
    first, last = _day(start), _day(end - 1)
    count = (last - first).days + 1
    limit = request.limit or 7
    days = [first + dt.timedelta(days=i) for i in range(min(count, limit))]
    return days, count > limit


def report(request: pb.UsageRequest, days: list[dt.date], has_more: bool,
           rows: Iterable[UsageRow]) -> dict[str, Any]:  # fmt: skip
    groups = [group for group in GROUPS if group in request.group_by]
    keys, models = set(request.api_key_ids), set(request.models)
    sums: dict[tuple[str, ...], dict[str, int]] = {}
    for row in rows:
        if (keys and row.key not in keys) or (models and row.model not in models):
            continue
        group = (row.day, *(getattr(row, _ROW_FIELD[name]) for name in groups))
        total = sums.setdefault(group, {"images": 0, "requests": 0, "micro": 0})
        total["images"] += row.images
        total["requests"] += row.requests
        total["micro"] += row.micro_usd
    buckets = []
    for day in days:
        results = []
        for group, total in sorted(sums.items()):
            if group[0] != day.isoformat():
                continue
            result: dict[str, Any] = {
                "object": "organization.usage.images.result",
                "images": total["images"],
                "num_model_requests": total["requests"],
                "amount": {"value": round(usd(total["micro"]), 6), "currency": "usd"},
                "source": None, "project_id": None, "user_id": None,
                "api_key_id": None, "model": None, "size": None,
            }  # fmt: skip
            for name, value in zip(groups, group[1:], strict=True):
                result[name] = value or None
            results.append(result)
        start = _start_of(day)
        buckets.append({"object": "bucket", "start_time": start, "end_time": start + DAY_S,
                        "results": results})  # fmt: skip
    next_page = str(_start_of(days[-1]) + DAY_S) if has_more and days else None
    return {"object": "page", "data": buckets, "has_more": has_more, "next_page": next_page}
