"""Automatic persisted queries, as Apollo's clients speak them, over POST and GET."""

from __future__ import annotations

import hashlib
import json
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.exceptions import RedisError

from server.app import create_app
from server.cache import ENTRY_OVERHEAD
from server.settings import Settings
from tests.services import REDIS, unavailable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

QUERY = 'query Title { thread(key: "demo") { title commentCount } }'
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
PRIVATE = "private, no-cache, must-revalidate"


def extensions(digest: str = HASH, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


@asynccontextmanager
async def client(
    database_url: str, tmp_path: Path, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    options = {"rate_limits": False, **options}
    settings = Settings(database_url=database_url, data_dir=str(tmp_path), **options)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://threadql.test") as c:
            yield c


@pytest.fixture
async def http(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client(database_url, tmp_path) as c:
        yield c


async def post(http: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await http.post("/graphql", json=body)


async def get(
    http: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    encoded = {name: json.dumps(v) if isinstance(v, dict) else v for name, v in params.items()}
    return await http.get("/graphql", params=encoded, headers=headers or {})


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["errors"][0]
    return response.status_code, error["message"], error["extensions"]["code"]


async def test_an_unknown_hash_is_not_found_then_registered_then_runs_by_hash(
    http: httpx.AsyncClient,
) -> None:
    for response in [
        await post(http, extensions=extensions()),
        await get(http, extensions=extensions()),
        await get(http, {"Accept": "*/*"}, extensions=extensions()),  # not GraphiQL
    ]:
        assert refusal(response) == (200, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["cache-control"] == PRIVATE  # a CDN must not keep it
        assert "data" not in response.json()

    registered = await post(http, query=QUERY, extensions=extensions())
    assert registered.json()["data"]["thread"]["commentCount"] == 28

    by_post = await post(http, extensions=extensions(HASH.upper()))
    by_get = await get(http, extensions=extensions())
    named = await get(http, extensions=extensions(), operationName="Title")
    assert by_post.json() == by_get.json() == named.json() == registered.json()
    assert by_get.headers["etag"] == by_post.headers["etag"] == registered.headers["etag"]
    assert by_get.headers["cache-control"] == "no-cache"

    # What a CDN does with `no-cache`: ask again with the ETag it holds.
    revalidated = await get(
        http, {"If-None-Match": by_get.headers["etag"]}, extensions=extensions()
    )
    assert (revalidated.status_code, revalidated.content) == (304, b"")


async def test_a_hash_that_is_not_the_documents_is_refused(http: httpx.AsyncClient) -> None:
    other = hashlib.sha256(b"{ viewer { name } }").hexdigest()
    response = await post(http, query=QUERY, extensions=extensions(other))
    assert refusal(response) == (
        400,
        "provided sha does not match query",
        "PERSISTED_QUERY_HASH_MISMATCH",
    )
    # Nothing was registered under either hash.
    for digest in (other, HASH):
        assert (
            refusal(await post(http, extensions=extensions(digest)))[2]
            == "PERSISTED_QUERY_NOT_FOUND"
        )


@pytest.mark.parametrize(
    "extension",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": HASH}},
        {"persistedQuery": {"version": 1.0, "sha256Hash": HASH}},
        {"persistedQuery": {"version": True, "sha256Hash": HASH}},
        {"persistedQuery": {"sha256Hash": HASH}},
        {"persistedQuery": {"version": 1, "sha256Hash": "abc"}},
        {"persistedQuery": {"version": 1, "sha256Hash": 7}},
        {"persistedQuery": "yes"},
    ],
)
async def test_malformed_persisted_queries_are_refused(
    http: httpx.AsyncClient, extension: dict[str, Any]
) -> None:
    response = await post(http, query=QUERY, extensions=extension)
    assert response.status_code == 400
    assert "data" not in response.json()


async def test_a_persisted_query_is_held_to_every_limit(http: httpx.AsyncClient) -> None:
    """Registered, then asked for by its hash alone: counted with the variables of each
    request, null and defaults as the resolvers read them."""
    query = (
        'query Wide($f: Int = 100) { thread(key: "demo") { comments(first: $f) {'
        " nodes { thread { comments(first: null) { nodes { replies(first: $f) { totalCount } } } } } } } }"
    )
    digest = hashlib.sha256(query.encode()).hexdigest()
    registered = await post(http, query=query, extensions=extensions(digest))
    assert refusal(registered)[2] == "QUERY_LIMIT"  # 100 + 2,000 + 200,000
    for response in [
        await get(http, extensions=extensions(digest)),
        await post(http, extensions=extensions(digest), variables={"f": 25}),  # 25 + 500 + 12,500
    ]:
        assert refusal(response)[2] == "QUERY_LIMIT"
        assert "data" not in response.json()
    small = await post(http, extensions=extensions(digest), variables={"f": 0})
    assert small.json() == {"data": {"thread": {"comments": {"nodes": []}}}}
    within = await get(http, extensions=extensions(digest), variables={"f": None})
    assert "errors" not in within.json()  # 20 + 400 + 4,000
    bad = await get(http, extensions=extensions(digest), variables={"f": "x"})
    assert bad.json()["errors"][0]["message"].startswith("Variable '$f' has invalid value")


async def test_persisted_queries_can_be_turned_off(database_url: str, tmp_path: Path) -> None:
    async with client(database_url, tmp_path, persisted_queries=False) as http:
        response = await post(http, query=QUERY, extensions=extensions())
        assert refusal(response) == (
            200,
            "PersistedQueryNotSupported",
            "PERSISTED_QUERY_NOT_SUPPORTED",
        )
        assert (await post(http, query=QUERY)).json()["data"]["thread"]["commentCount"] == 28


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A broker prefix of this test's own, its keys deleted at the end."""
    try:
        with SyncRedis.from_url(REDIS, socket_connect_timeout=5, socket_timeout=5) as redis:
            redis.ping()
    except (RedisError, OSError) as error:
        unavailable("Redis", error)
    prefix = f"threadql-test-{uuid.uuid4().hex}:"
    yield prefix
    with SyncRedis.from_url(REDIS) as redis:
        keys = list(redis.scan_iter(match=f"{prefix}*"))
        if keys:
            redis.delete(*keys)


async def test_processes_sharing_a_redis_broker_share_their_documents(
    database_url: str, tmp_path: Path, redis_prefix: str
) -> None:
    shared = {"broker_url": REDIS, "broker_prefix": redis_prefix}
    async with (
        client(database_url, tmp_path / "one", **shared) as one,
        client(database_url, tmp_path / "two", **shared) as two,
    ):
        assert (await post(one, query=QUERY, extensions=extensions())).status_code == 200
        by_hash = await get(two, extensions=extensions())
        assert by_hash.json()["data"]["thread"]["commentCount"] == 28

        # What Redis holds is checked against its hash before it runs.
        forged = hashlib.sha256(b"{ viewer { name } }").hexdigest()
        with SyncRedis.from_url(REDIS) as redis:
            redis.hset(f"{redis_prefix}apq:documents", forged, b"{ threads { totalCount } }")
        assert (
            refusal(await post(two, extensions=extensions(forged)))[2]
            == "PERSISTED_QUERY_NOT_FOUND"
        )


def numbered(count: int) -> list[tuple[str, str]]:
    """`count` distinct documents of the same size, with their hashes."""
    documents = [f"query Q{n:04} {{ viewer {{ id }} }}" for n in range(count)]
    return [(document, hashlib.sha256(document.encode()).hexdigest()) for document in documents]


async def known(http: httpx.AsyncClient, digest: str) -> bool:
    response = await post(http, extensions=extensions(digest))
    return "data" in response.json()


async def test_the_documents_kept_are_bounded_in_each_process(
    database_url: str, tmp_path: Path
) -> None:
    documents = numbered(30)
    size = len(documents[0][0])
    async with client(database_url, tmp_path, persisted_query_count=10) as http:
        for document, digest in documents:
            assert (await post(http, query=document, extensions=extensions(digest))).is_success
        assert [await known(http, digest) for _, digest in documents] == [False] * 20 + [True] * 10
    two = 2 * (size + ENTRY_OVERHEAD)  # what this process counts for two documents
    async with client(database_url, tmp_path, persisted_query_bytes=two) as http:
        for document, digest in documents[:5]:
            await post(http, query=document, extensions=extensions(digest))
        assert [await known(http, digest) for _, digest in documents[:5]] == [False] * 3 + [
            True
        ] * 2


async def test_the_documents_kept_in_redis_are_bounded_in_number_and_bytes(
    database_url: str, tmp_path: Path, redis_prefix: str
) -> None:
    documents = numbered(40)
    size = len(documents[0][0])
    shared = {"broker_url": REDIS, "broker_prefix": redis_prefix}
    bounds = {"persisted_query_count": 25, "persisted_query_bytes": 20 * size}
    async with client(database_url, tmp_path / "one", **shared, **bounds) as one:
        for document, digest in documents:
            assert (await post(one, query=document, extensions=extensions(digest))).is_success
    with SyncRedis.from_url(REDIS) as redis:
        stored = redis.hgetall(f"{redis_prefix}apq:documents")
        assert len(stored) == redis.zcard(f"{redis_prefix}apq:registered") == 20
        assert int(redis.get(f"{redis_prefix}apq:bytes") or 0) == 20 * size
    # Another process, with nothing of its own, finds the newest twenty and only those.
    async with client(database_url, tmp_path / "two", **shared, **bounds) as two:
        assert [await known(two, digest) for _, digest in documents] == [False] * 20 + [True] * 20


async def test_registrations_spend_from_the_client_address_budget(
    database_url: str, tmp_path: Path
) -> None:
    documents = numbered(5)
    limits = {"rate_limits": True, "registration_burst": 3, "registrations_per_minute": 1}
    async with client(database_url, tmp_path, **limits) as http:
        for document, digest in documents:
            response = await post(http, query=document, extensions=extensions(digest))
            assert response.json() == {"data": {"viewer": None}}  # run, kept or not
        assert [await known(http, digest) for _, digest in documents] == [True] * 3 + [False] * 2
