from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from db import open_storage
from db.render import render_html, render_text
from db.rows import NewComment
from server.app import create_app
from server.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime
    from pathlib import Path

    from starlette.applications import Starlette

    from db.storage import Storage


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


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/threadql.db"


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    """An open, migrated storage on a fresh SQLite file."""
    store = open_storage(database_url)
    await store.open()
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Starlette]:
    """The whole application on a fresh SQLite file with the demo thread, lifespan running."""
    application = create_app(Settings(database_url=database_url))
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
