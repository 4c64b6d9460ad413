"""Counters behind the rate limits: sliding windows (requests per minute) and leases
(concurrent generations, Bedrock calls in flight).

`LocalCounters` keeps them in this process; `RedisCounters` in Redis, so every replica
counts against one limit. Each Redis operation is one Lua script (atomic, Redis's own clock),
and leases expire on their own, so a replica that dies mid-request frees its slots.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis


@dataclass(frozen=True)
class Window:
    """The answer of a sliding window: allowed or not, and what the x-ratelimit-* headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # until the oldest counted request leaves the window


class Counters(Protocol):
    async def hit(self, name: str, limit: int, window_s: float) -> Window: ...

    async def acquire(self, name: str, limit: int, count: int, ttl_s: float) -> str | None:
        """A lease on `count` of `limit` slots (a token to release), or None when full."""
        ...

    async def release(self, name: str, token: str, count: int) -> None: ...


class LocalCounters:
    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}
        self._leases: dict[str, dict[str, tuple[int, float]]] = {}

    async def hit(self, name: str, limit: int, window_s: float) -> Window:
        now = time.monotonic()
        times = self._windows.setdefault(name, deque())
        while times and times[0] <= now - window_s:
            times.popleft()
        if len(times) >= limit:
            return Window(False, limit, 0, times[0] + window_s - now)
        times.append(now)
        return Window(True, limit, limit - len(times), times[0] + window_s - now)

    async def acquire(self, name: str, limit: int, count: int, ttl_s: float) -> str | None:
        now = time.monotonic()
        leases = self._leases.setdefault(name, {})
        for token in [token for token, (_, expiry) in leases.items() if expiry <= now]:
            del leases[token]
        if sum(used for used, _ in leases.values()) + count > limit:
            return None
        token = uuid.uuid4().hex
        leases[token] = (count, now + ttl_s)
        return token

    async def release(self, name: str, token: str, count: int) -> None:
        self._leases.get(name, {}).pop(token, None)


# Redis scripts. redis.replicate_commands() lets a script write after reading TIME (needed
# before Redis 7, a no-op since).
_NOW_MS = """
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
_HIT = (
    _NOW_MS
    + """
local key, limit, window = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
  count = count + 1
  allowed = 1
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {allowed, count, tonumber(oldest[2]) + window - now}
"""
)
_ACQUIRE = (
    _NOW_MS
    + """
local key, limit, count, ttl = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) + count > limit then return 0 end
for i = 1, count do redis.call('ZADD', key, now + ttl, ARGV[4] .. ':' .. i) end
redis.call('PEXPIRE', key, ttl)
return 1
"""
)


class RedisCounters:
    PREFIX = "imagegen:limits:"

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._hit: Any = client.register_script(_HIT)
        self._acquire: Any = client.register_script(_ACQUIRE)

    async def hit(self, name: str, limit: int, window_s: float) -> Window:
        allowed, count, reset_ms = await self._hit(
            keys=[self.PREFIX + name], args=[limit, int(window_s * 1000), uuid.uuid4().hex]
        )
        remaining = 0 if not allowed else limit - int(count)
        return Window(bool(allowed), limit, remaining, int(reset_ms) / 1000)

    async def acquire(self, name: str, limit: int, count: int, ttl_s: float) -> str | None:
        token = uuid.uuid4().hex
        granted = await self._acquire(
            keys=[self.PREFIX + name], args=[limit, count, int(ttl_s * 1000), token]
        )
        return token if granted else None

    async def release(self, name: str, token: str, count: int) -> None:
        members = [f"{token}:{i}" for i in range(1, count + 1)]
        await self._redis.zrem(self.PREFIX + name, *members)
