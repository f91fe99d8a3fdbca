"""SQL statements per request, counted inside the app so that no network is involved."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from bench.posting import Poster, comment_body
from bench.queries import checked_data, count_comments
from bench.server import BENCH_SETTINGS
from server.app import create_app
from server.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from starlette.applications import Starlette

    from bench.queries import Workload

BASE_URL = "http://bench"


@dataclass(frozen=True)
class Counted:
    comments: int
    statements: int
    answer: bytes  # the response body


async def count_statements(
    url: str, workloads: Sequence[Workload], settings: Mapping[str, str] | None = None
) -> list[Counted]:
    """Each workload once to warm caches, then once more with the storage's counter watched.

    `settings` adds to the bench's own, such as THREADQL_RESPONSE_CACHE.
    """
    results = []
    async with _app(url, settings=settings) as (app, transport):
        storage = app.state.storage
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60) as client:
            for workload in workloads:
                await _ask(client, workload)
                before = storage.statements
                comments, answer = await _ask(client, workload)
                results.append(Counted(comments, storage.statements - before, answer))
    return results


async def count_add_comment(url: str, secret: str, thread_key: str) -> int:
    """Statements of one of W4's top-level comments, after one that signs the writer in."""
    async with (
        _app(url, secret) as (app, transport),
        Poster(
            f"{BASE_URL}/graphql", secret, "bench-counter", "Bench Counter", transport
        ) as poster,
    ):
        thread_id = (await poster.thread(thread_key)).id
        await poster.add(comment_body(0, 1), thread_id=thread_id)
        before = app.state.storage.statements
        await poster.add(comment_body(0, 2), thread_id=thread_id)
        statements: int = app.state.storage.statements - before
        return statements


@asynccontextmanager
async def _app(
    url: str, secret: str | None = None, settings: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[Starlette, httpx.ASGITransport]]:
    env = {**BENCH_SETTINGS, "THREADQL_DATABASE_URL": url, **(settings or {})}
    if secret is not None:
        env["THREADQL_JWT_SECRET"] = secret
    app = create_app(Settings.from_env(env))
    async with app.router.lifespan_context(app):
        yield app, httpx.ASGITransport(app=app)


async def _ask(client: httpx.AsyncClient, workload: Workload) -> tuple[int, bytes]:
    response = await client.post("/graphql", json=workload.body)
    response.raise_for_status()
    return count_comments(checked_data(response.json())), response.content
