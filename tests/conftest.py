from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest

from db import open_storage
from db.render import render_html, render_text
from db.rows import NewComment
from server.app import create_app
from server.settings import Settings
from tests.services import POSTGRES_ADMIN, unavailable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from datetime import datetime
    from pathlib import Path

    from starlette.applications import Starlette

    from db.storage import Storage


# `THREADQL_QUERY_PLANS=false pytest …` serves the apps the API tests build with graphql-core's
# own execution: CI runs them both ways.
QUERY_PLANS = Settings.from_env(
    {"THREADQL_QUERY_PLANS": os.environ.get("THREADQL_QUERY_PLANS", "true")}
).query_plans


def new_comment(
    body: str, created_at: datetime, *, parent_id: int | None = None, likes: int = 0
) -> NewComment:
    """A comment as the write path stores it: body rendered once, at write time."""
    body_html = render_html(body)
    return NewComment(
        author_id=None,
        body=body,
        body_html=body_html,
        body_text=render_text(body_html),
        created_at=created_at,
        parent_id=parent_id,
        like_count=likes,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks each test on PostgreSQL, by its database parameter or the run's database, so that
    `-m "not postgresql"` keeps SQLite's (make test-fast)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgresql = callspec is not None and "postgresql" in callspec.params.values()
        if on_postgresql or "postgres_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgresql)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database for this run, dropped at its end; each test works in a schema of its own."""
    name = f"threadql_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def run(statement: str) -> None:
        """On a thread of its own: the fixture may be set up inside a running event loop."""
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, admin(statement)).result()

    try:
        run(f"CREATE DATABASE {name}")
    except (OSError, asyncpg.PostgresError) as error:
        unavailable("PostgreSQL", error)
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/threadql.db"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[str]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    async with postgres_schema(request.getfixturevalue("postgres_database")) as url:
        yield url


@asynccontextmanager
async def postgres_schema(database: str) -> AsyncIterator[str]:
    """A URL of the run's database that works in a schema of its own, dropped at the end."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield f"{database}?search_path={schema}"
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    """An open, migrated storage on a fresh database."""
    store = open_storage(database_url)
    await store.open()
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[Starlette]:
    """The whole application on a fresh database with the demo thread, lifespan running."""
    application = create_app(
        Settings(database_url=database_url, data_dir=str(tmp_path), query_plans=QUERY_PLANS)
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://threadql.test") as c:
        yield c


class GraphQLClient:
    """POSTs a query and returns the decoded response, after checking the HTTP status."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, status: int = 200
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}
        )
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a response that must have no errors."""
        body = await self(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)
