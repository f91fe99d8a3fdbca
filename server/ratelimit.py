"""Rate limits as token buckets: each (bucket, key) holds up to `burst` tokens, refilled at
`rate_per_minute`; a write takes one token or is refused with the seconds until one is back.

A full bucket and a missing one are the same, so a bucket idle long enough to refill is
forgotten: memory (or Redis keys) grows with the writers of the last few minutes only.
"""

from __future__ import annotations

import logging
import math
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import HTTPConnection

log = logging.getLogger(__name__)

TIMEOUT = 1.0  # seconds to connect to Redis or for it to answer: a write waits on it
EXPIRY_MARGIN = 1.0  # seconds a full bucket's Redis key outlives its refill

# Told the bucket of each refusal in the current request: the app's metrics set it, so that
# a limiter swapped in at any time is still counted.
on_refusal: ContextVar[Callable[[str], None] | None] = ContextVar("on_refusal", default=None)


def _refused(bucket: str) -> None:
    observer = on_refusal.get()
    if observer is not None:
        observer(bucket)


def client_address(connection: HTTPConnection) -> str:
    """Whom anonymous limits count: the peer's address as the server gives it, which uvicorn
    takes from `X-Forwarded-For` only when the peer is a proxy it trusts
    (`FORWARDED_ALLOW_IPS`)."""
    client = connection.client
    return client.host if client else "unknown"


def address_key(connection: HTTPConnection) -> str:
    """The key of an anonymous client's rate-limit buckets."""
    return f"address:{client_address(connection)}"


class RateLimiter(Protocol):
    async def take(self, bucket: str, key: str, rate_per_minute: int, burst: int) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is back (nothing taken)."""
        ...


class Unlimited:
    """Every request allowed: rate limits are turned off."""

    async def take(self, bucket: str, key: str, rate_per_minute: int, burst: int) -> float:
        return 0.0


UNLIMITED = Unlimited()


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when `tokens` was counted
    full_at: float  # when it will hold `burst` again, and may be forgotten


class MemoryRateLimiter:
    """Buckets of this process: right for a single process, not shared across several."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, sweep_interval: float = 60.0
    ) -> None:
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._next_sweep = clock() + sweep_interval

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, bucket: str, key: str, rate_per_minute: int, burst: int) -> float:
        # No await from here on: the event loop runs each take to its end alone.
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        rate = rate_per_minute / 60
        state = self._buckets.get((bucket, key))
        tokens = float(burst)
        if state is not None:
            tokens = min(tokens, state.tokens + max(0.0, now - state.at) * rate)
            now = max(now, state.at)
        if tokens < 1:
            _refused(bucket)
            return (1 - tokens) / rate
        tokens -= 1
        self._buckets[bucket, key] = _Bucket(tokens, now, now + (burst - tokens) / rate)
        return 0.0

    def _sweep(self, now: float) -> None:
        """Forget the buckets that have refilled."""
        self._buckets = {k: b for k, b in self._buckets.items() if b.full_at > now}
        self._next_sweep = now + self._sweep_interval


# KEYS[1]: the bucket's key; ARGV: now (seconds), rate (tokens a second), burst, margin (ms).
# The caller's clock, not Redis's TIME: the processes of a deployment share one wall clock,
# and a refusal writes nothing.
TAKE = """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
local at = tonumber(state[2])
if at ~= nil and tonumber(state[1]) ~= nil then
  tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - at) * rate)
  now = math.max(now, at)
end
if tokens < 1 then
  return string.format('%.17g', (1 - tokens) / rate)
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000 + tonumber(ARGV[4])))
return '0'
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every process of a deployment; each take is one script
    run, so concurrent writers never spend the same token.

    While Redis cannot be reached, requests are allowed: an outage of the limiter must not
    stop people writing.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "threadql:rate:",
        *,
        clock: Callable[[], float] = time.time,
        client_name: str = "threadql-ratelimit",
    ) -> None:
        self.prefix = prefix
        self._clock = clock
        # One quick retry: a pooled connection may be stale after Redis restarted.
        self._redis = Redis.from_url(
            url,
            client_name=client_name,
            retry=Retry(NoBackoff(), 1),
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
        )
        self._script = self._redis.register_script(TAKE)
        self._failing = False

    def key(self, bucket: str, key: str) -> str:
        return f"{self.prefix}{bucket}:{key}"

    async def take(self, bucket: str, key: str, rate_per_minute: int, burst: int) -> float:
        args = (self._clock(), rate_per_minute / 60, burst, EXPIRY_MARGIN * 1000)
        try:
            wait = await self._script(keys=[self.key(bucket, key)], args=args)
        except (RedisError, OSError) as error:
            if not self._failing:  # once per outage, not once per request
                log.warning("rate limits: Redis unreachable (%s); allowing requests", error)
            self._failing = True
            return 0.0
        if self._failing:
            log.info("rate limits: Redis is back; limiting again")
            self._failing = False
        seconds = float(wait)
        if seconds > 0:
            _refused(bucket)
        return seconds

    async def close(self) -> None:
        await self._redis.aclose()


def retry_after(wait: float) -> float:
    """Seconds for clients, rounded up to a tenth so that waiting that long is enough."""
    return math.ceil(round(wait * 10, 6)) / 10
