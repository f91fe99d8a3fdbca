"""Rate limits: the token-bucket maths in memory and in Redis, and what writers see."""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis import Redis as SyncRedis
from redis import RedisError

from db.sql import SQLStorage
from server.app import create_app, open_limiter
from server.auth import mint
from server.ratelimit import (
    UNLIMITED,
    MemoryRateLimiter,
    RedisRateLimiter,
    Unlimited,
    retry_after,
)
from server.settings import Settings
from tests.live import free_port
from tests.services import REDIS, SECRET, unavailable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from starlette.applications import Starlette

RATE, BURST = 20, 5  # one token every 3 s

ADD = """mutation ($input: AddCommentInput!) { addComment(input: $input) {
  comment { id thread { id } } errors { code message field retryAfter } } }"""
EDIT = """mutation ($input: EditCommentInput!) { editComment(input: $input) {
  comment { id } errors { code message field retryAfter } } }"""
LIKE = """mutation ($input: CommentIdInput!) { likeComment(input: $input) {
  comment { id } errors { code message field retryAfter } } }"""
UNLIKE = """mutation ($input: CommentIdInput!) { unlikeComment(input: $input) {
  comment { id } errors { code message field retryAfter } } }"""
DELETE = """mutation ($input: CommentIdInput!) { deleteComment(input: $input) {
  comment { id state } errors { code message field retryAfter } } }"""
REMOVE = """mutation ($input: RemoveCommentInput!) { removeComment(input: $input) {
  comment { id state } errors { code message field retryAfter } } }"""
LOCK = """mutation ($input: LockThreadInput!) { lockThread(input: $input) {
  thread { locked } errors { code message field retryAfter } } }"""

# Tables a write may touch; a refused write leaves them as they were.
WRITTEN_TABLES = {
    "threads": "id",
    "comments": "id",
    "likes": "thread_id, comment_id, user_id",
    "comment_revisions": "id",
}


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_url() -> str:
    try:
        with SyncRedis.from_url(REDIS, socket_connect_timeout=5, socket_timeout=5) as client:
            client.ping()
    except (RedisError, OSError) as error:
        unavailable("Redis", error)
    return REDIS


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, its keys deleted at the end."""
    name = f"threadql-test-{uuid.uuid4().hex}:"
    yield name
    with SyncRedis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{name}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"])
async def limiter(
    request: pytest.FixtureRequest, clock: Clock
) -> AsyncIterator[MemoryRateLimiter | RedisRateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(clock)
        return
    prefix = request.getfixturevalue("prefix")
    redis_limiter = RedisRateLimiter(REDIS, f"{prefix}rate:", clock=clock)
    try:
        yield redis_limiter
    finally:
        await redis_limiter.close()


async def takes(
    limiter: MemoryRateLimiter | RedisRateLimiter, n: int, key: str = "user:1"
) -> list[float]:
    return [await limiter.take("comments", key, RATE, BURST) for _ in range(n)]


# -- the maths, on both limiters ---------------------------------------------------------------


async def test_a_burst_passes_then_each_refusal_says_when_a_token_is_back(
    limiter: MemoryRateLimiter | RedisRateLimiter, clock: Clock
) -> None:
    assert await takes(limiter, BURST) == [0.0] * BURST
    assert await takes(limiter, 3) == [pytest.approx(3.0)] * 3, "refusals take nothing"
    clock.now += 1
    assert await takes(limiter, 1) == [pytest.approx(2.0)]
    clock.now += 2
    assert await takes(limiter, 2) == [0.0, pytest.approx(3.0)]


async def test_tokens_refill_in_part_and_never_beyond_the_burst(
    limiter: MemoryRateLimiter | RedisRateLimiter, clock: Clock
) -> None:
    await takes(limiter, BURST)
    clock.now += 7.5  # two and a half tokens
    assert await takes(limiter, 3) == [0.0, 0.0, pytest.approx(1.5)]
    clock.now += 3600
    assert await takes(limiter, BURST + 1) == [0.0] * BURST + [pytest.approx(3.0)]


async def test_buckets_and_keys_are_counted_apart(
    limiter: MemoryRateLimiter | RedisRateLimiter,
) -> None:
    await takes(limiter, BURST)
    assert await takes(limiter, 1) != [0.0]
    assert await takes(limiter, 1, key="user:2") == [0.0]
    assert await limiter.take("likes", "user:1", RATE, BURST) == 0.0


async def test_a_clock_going_back_adds_no_tokens(
    limiter: MemoryRateLimiter | RedisRateLimiter, clock: Clock
) -> None:
    await takes(limiter, BURST)
    clock.now -= 100
    assert await takes(limiter, 1) == [pytest.approx(3.0)]
    clock.now += 103
    assert await takes(limiter, 2) == [0.0, pytest.approx(3.0)]


async def test_concurrent_takes_never_share_a_token(
    limiter: MemoryRateLimiter | RedisRateLimiter,
) -> None:
    results = await asyncio.gather(*(limiter.take("comments", "u", RATE, BURST) for _ in range(50)))
    assert results.count(0.0) == BURST
    assert all(wait > 0 for wait in results if wait != 0.0)


async def test_idle_buckets_are_forgotten_in_memory(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock, sweep_interval=60)
    for n in range(100):
        await limiter.take("comments", f"user:{n}", RATE, BURST)
    for _ in range(2):  # a minute a token: two minutes to refill
        await limiter.take("comments", "slow", 1, 2)
    assert len(limiter) == 101
    clock.now += 61
    await limiter.take("comments", "user:0", RATE, BURST)
    assert len(limiter) == 2, "only the buckets not yet full are kept"
    clock.now += 120
    await limiter.take("comments", "user:0", RATE, BURST)
    assert len(limiter) == 1


async def test_redis_keys_expire_once_the_bucket_would_be_full(
    redis_url: str, prefix: str, clock: Clock
) -> None:
    limiter = RedisRateLimiter(redis_url, f"{prefix}rate:", clock=clock)
    try:
        await takes(limiter, 1)
        with SyncRedis.from_url(redis_url) as client:
            key = limiter.key("comments", "user:1")
            assert key == f"{prefix}rate:comments:user:1"
            assert 3_000 < client.pttl(key) <= 4_000  # a token's refill, and a second's margin
            await takes(limiter, BURST - 1)
            assert 15_000 - 1_000 < client.pttl(key) <= 16_000
            await takes(limiter, 1)  # refused: writes nothing, the expiry stands
            assert client.pttl(key) <= 16_000
    finally:
        await limiter.close()


async def test_an_unreachable_redis_allows_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="server.ratelimit"):
            for _ in range(BURST + 3):
                assert await limiter.take("comments", "user:1", RATE, BURST) == 0.0
    finally:
        await limiter.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Redis unreachable" in warnings[0].getMessage()


async def test_unlimited_always_allows() -> None:
    assert [await UNLIMITED.take("comments", "user:1", 1, 1) for _ in range(100)] == [0.0] * 100


@pytest.mark.parametrize(
    ("wait", "shown"), [(3.0, 3.0), (2.91, 3.0), (2.9, 2.9), (0.001, 0.1), (59.99, 60.0)]
)
def test_retry_after_rounds_up_to_a_tenth(wait: float, shown: float) -> None:
    assert retry_after(wait) == shown


def test_the_limiter_follows_the_settings() -> None:
    assert isinstance(open_limiter(Settings()), MemoryRateLimiter)
    assert open_limiter(Settings(rate_limits=False)) is UNLIMITED
    shared = open_limiter(Settings(broker_url="redis://127.0.0.1:6379/0", broker_prefix="site:"))
    assert isinstance(shared, RedisRateLimiter)
    assert shared.prefix == "site:rate:"
    unlimited = open_limiter(Settings(broker_url="redis://127.0.0.1:6379/0", rate_limits=False))
    assert unlimited is UNLIMITED


# -- through the API ---------------------------------------------------------------------------


class Api:
    """One running application; people are named by their host-site id."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http
        storage = app.state.storage
        assert isinstance(storage, SQLStorage)
        self.storage = storage

    async def post(self, query: str, input: dict[str, Any], who: str | None) -> dict[str, Any]:
        headers = {}
        if who is not None:
            role = "moderator" if who.startswith("mod") else None
            headers["Authorization"] = f"Bearer {mint(SECRET, sub=who, name=who, role=role)}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": {"input": input}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def payload(self, query: str, input: dict[str, Any], who: str) -> dict[str, Any]:
        body = await self.post(query, input, who)
        assert "errors" not in body, body["errors"]
        (payload,) = body["data"].values()
        assert isinstance(payload, dict)
        return payload

    async def ok(self, query: str, input: dict[str, Any], who: str) -> dict[str, Any]:
        payload = await self.payload(query, input, who)
        assert payload["errors"] == [], payload["errors"]
        return payload

    async def add(self, who: str, body: str = "Hello") -> dict[str, Any]:
        payload = await self.ok(ADD, {"threadKey": "demo", "body": body}, who)
        comment: dict[str, Any] = payload["comment"]
        return comment

    async def refused(self, query: str, input: dict[str, Any], who: str) -> dict[str, Any]:
        """A mutation refused as RATE_LIMITED, having written nothing; its error."""
        before = await self.snapshot()
        payload = await self.payload(query, input, who)
        assert next(v for k, v in payload.items() if k != "errors") is None
        assert len(payload["errors"]) == 1, payload["errors"]
        error: dict[str, Any] = payload["errors"][0]
        assert error["code"] == "RATE_LIMITED"
        assert error["field"] is None
        assert error["retryAfter"] > 0
        assert f"try again in {error['retryAfter']:g} s" in error["message"]
        assert await self.snapshot() == before, "a refused mutation wrote something"
        return error

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return {
            table: [
                tuple(row)
                for row in await self.storage._read(f"SELECT * FROM {table} ORDER BY {key}")
            ]
            for table, key in WRITTEN_TABLES.items()
        }


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://threadql.test") as h:
            yield Api(app, h)


def settings_for(sqlite_url: str, tmp_path: Path, **options: Any) -> Settings:
    # A token a minute: the time the test itself takes refills next to nothing.
    limits: dict[str, Any] = {"comments_per_minute": 1, "likes_per_minute": 1, **options}
    return Settings(database_url=sqlite_url, jwt_secret=SECRET, data_dir=str(tmp_path), **limits)


@pytest.fixture
async def api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with running(settings_for(sqlite_url, tmp_path)) as service:
        yield service


class Refusing:
    """Refuses every take and records it."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, str]] = []

    async def take(self, bucket: str, key: str, rate_per_minute: int, burst: int) -> float:
        self.taken.append((bucket, key))
        return 29.91


async def test_a_burst_of_comments_passes_and_the_next_is_refused(api: Api) -> None:
    burst = Settings().comment_burst
    for n in range(burst):
        await api.add("alice", f"comment {n}")
    error = await api.refused(ADD, {"threadKey": "demo", "body": "one too many"}, "alice")
    assert 0 < error["retryAfter"] <= 60
    assert "too many comments" in error["message"]


async def test_another_writer_keeps_their_own_budget(api: Api) -> None:
    for _ in range(Settings().comment_burst):
        await api.add("alice")
    await api.refused(ADD, {"threadKey": "demo", "body": "again"}, "alice")
    await api.add("bob")


async def test_edits_spend_from_the_comments_bucket(api: Api) -> None:
    comment = await api.add("alice")
    for _ in range(Settings().comment_burst - 2):
        await api.add("alice")
    await api.ok(EDIT, {"commentId": comment["id"], "body": "Edited"}, "alice")
    await api.refused(EDIT, {"commentId": comment["id"], "body": "Edited again"}, "alice")
    await api.refused(ADD, {"threadKey": "demo", "body": "again"}, "alice")


async def test_likes_have_a_bucket_of_their_own(api: Api) -> None:
    comment = await api.add("bob")
    for _ in range(Settings().comment_burst):
        await api.add("alice")
    like = {"commentId": comment["id"]}
    for n in range(Settings().like_burst):
        await api.ok(UNLIKE if n % 2 else LIKE, like, "alice")
    error = await api.refused(LIKE, like, "alice")
    assert "too many likes" in error["message"]
    await api.refused(UNLIKE, like, "alice")
    await api.ok(LIKE, like, "bob")


async def test_waiting_as_long_as_told_is_enough(api: Api, clock: Clock) -> None:
    api.app.state.limiter = MemoryRateLimiter(clock)
    for _ in range(Settings().comment_burst):
        await api.add("alice")
    error = await api.refused(ADD, {"threadKey": "demo", "body": "again"}, "alice")
    assert error["retryAfter"] == 60.0
    clock.now += error["retryAfter"]
    await api.add("alice")
    await api.refused(ADD, {"threadKey": "demo", "body": "again"}, "alice")


async def test_moderation_and_deletes_are_never_limited(api: Api) -> None:
    own = await api.add("alice")
    other = await api.add("bob")
    limiter = Refusing()
    api.app.state.limiter = limiter
    for query, input in [
        (ADD, {"threadKey": "demo", "body": "again"}),
        (EDIT, {"commentId": own["id"], "body": "Edited"}),
        (LIKE, {"commentId": other["id"]}),
        (UNLIKE, {"commentId": other["id"]}),
    ]:
        error = await api.refused(query, input, "alice")
        assert error["retryAfter"] == 30.0
    assert [bucket for bucket, _ in limiter.taken] == ["comments", "comments", "likes", "likes"]
    limiter.taken.clear()

    deleted = await api.ok(DELETE, {"commentId": own["id"]}, "alice")
    assert deleted["comment"]["state"] == "DELETED"
    removed = await api.ok(REMOVE, {"commentId": other["id"], "reason": "spam"}, "mod-mo")
    assert removed["comment"]["state"] == "REMOVED"
    locked = await api.ok(LOCK, {"threadId": own["thread"]["id"], "locked": True}, "mod-mo")
    assert locked["thread"]["locked"] is True
    assert limiter.taken == []


async def test_anonymous_writers_are_told_to_sign_in_not_to_wait(api: Api) -> None:
    limiter = Refusing()
    api.app.state.limiter = limiter
    body = await api.post(ADD, {"threadKey": "demo", "body": "Hi"}, None)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert limiter.taken == []


async def test_signed_in_writers_are_counted_by_user(api: Api) -> None:
    limiter = Refusing()
    api.app.state.limiter = limiter
    await api.refused(ADD, {"threadKey": "demo", "body": "Hi"}, "alice")
    await api.refused(ADD, {"threadKey": "demo", "body": "Hi"}, "bob")
    alice, bob = (key for _, key in limiter.taken)
    assert alice.startswith("user:")
    assert bob.startswith("user:")
    assert alice != bob


async def test_other_refusals_have_no_retry_after(api: Api) -> None:
    payload = await api.payload(DELETE, {"commentId": "nonsense"}, "alice")
    assert [(e["code"], e["retryAfter"]) for e in payload["errors"]] == [("INVALID_INPUT", None)]


async def test_rate_limits_can_be_turned_off(sqlite_url: str, tmp_path: Path) -> None:
    settings = settings_for(sqlite_url, tmp_path, rate_limits=False)
    async with running(settings) as api:
        assert isinstance(api.app.state.limiter, Unlimited)
        for _ in range(settings.comment_burst + 5):
            await api.add("alice")


async def test_two_apps_on_one_redis_share_the_budget(
    sqlite_url: str, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    settings = settings_for(sqlite_url, tmp_path, broker_url=redis_url, broker_prefix=prefix)
    async with running(settings) as first, running(settings) as second:
        assert isinstance(first.app.state.limiter, RedisRateLimiter)
        for n in range(settings.comment_burst):
            await (first if n % 2 else second).add("alice")
        await first.refused(ADD, {"threadKey": "demo", "body": "again"}, "alice")
        await second.refused(ADD, {"threadKey": "demo", "body": "again"}, "alice")
        await second.add("bob")
