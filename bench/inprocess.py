"""SQL statements per request, counted inside the app so that no network is involved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from bench.queries import checked_data, count_comments
from bench.server import BENCH_SETTINGS
from server.app import create_app
from server.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.queries import Workload


@dataclass(frozen=True)
class Counted:
    comments: int
    statements: int


async def count_statements(url: str, workloads: Sequence[Workload]) -> list[Counted]:
    """Each workload once to warm caches, then once more with the storage's counter watched."""
    app = create_app(Settings.from_env({**BENCH_SETTINGS, "THREADQL_DATABASE_URL": url}))
    results = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60
        ) as client,
    ):
        storage = app.state.storage
        for workload in workloads:
            await _ask(client, workload)
            before = storage.statements
            comments = await _ask(client, workload)
            results.append(Counted(comments, storage.statements - before))
    return results


async def _ask(client: httpx.AsyncClient, workload: Workload) -> int:
    response = await client.post("/graphql", json=workload.body)
    response.raise_for_status()
    return count_comments(checked_data(response.json()))
