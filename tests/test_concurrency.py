"""SQLite under concurrent writers: every write lands, counts stay exact, readers never wait."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from db.sql import SQLStorage
from server import auth
from server.settings import Settings
from tests.live import live_server
from tests.services import SECRET

if TYPE_CHECKING:
    from pathlib import Path

ADD = """mutation ($input: AddCommentInput!) {
  addComment(input: $input) { comment { id } errors { code message } }
}"""


async def test_two_hundred_concurrent_comments_all_land(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url, jwt_secret=SECRET, data_dir=str(tmp_path), rate_limits=False
    )
    tokens = [auth.mint(SECRET, sub=f"writer-{n}", name=f"Writer {n}") for n in range(20)]
    async with (
        live_server(settings) as live,
        httpx.AsyncClient(base_url=live.url, timeout=60) as http,
    ):
        demo = (
            await http.post(
                "/graphql",
                json={
                    "query": '{ thread(key: "demo") { id comments(first: 3) { nodes { id } } } }'
                },
            )
        ).json()
        parents = [None, *(n["id"] for n in demo["data"]["thread"]["comments"]["nodes"])]

        async def post(n: int) -> httpx.Response:
            where: dict[str, Any] = (
                {"parentId": parents[n % 4]} if parents[n % 4] else {"threadKey": "demo"}
            )
            return await http.post(
                "/graphql",
                json={"query": ADD, "variables": {"input": {"body": f"comment {n}", **where}}},
                headers={"authorization": f"Bearer {tokens[n % len(tokens)]}"},
            )

        responses = await asyncio.gather(*(post(n) for n in range(200)))
        assert {r.status_code for r in responses} == {200}
        assert not any("locked" in r.text for r in responses)
        payloads = [r.json()["data"]["addComment"] for r in responses]
        assert all(p["errors"] == [] for p in payloads), [p for p in payloads if p["errors"]][:3]
        assert len({p["comment"]["id"] for p in payloads}) == 200

        counts = (
            await http.post(
                "/graphql",
                json={
                    "query": """{ thread(key: "demo") {
            commentCount comments(first: 3) { totalCount nodes { replyCount descendantCount } } } }"""
                },
            )
        ).json()
        thread = counts["data"]["thread"]
        assert thread["commentCount"] == 28 + 200
        assert thread["comments"]["totalCount"] == 17 + 50
        replies = [n["replyCount"] for n in thread["comments"]["nodes"]]
        assert replies == [1 + 50, 1 + 50, 1 + 50]  # each demo comment had one reply already

        storage = live.app.state.storage
        assert isinstance(storage, SQLStorage)
        stored = await storage._read("SELECT COUNT(*) FROM comments")
        assert stored[0][0] == 228


async def test_reads_do_not_wait_for_an_open_write(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, jwt_secret=SECRET, data_dir=str(tmp_path))
    async with (
        live_server(settings) as live,
        httpx.AsyncClient(base_url=live.url, timeout=30) as http,
    ):
        storage = live.app.state.storage
        assert isinstance(storage, SQLStorage)
        query = {"query": '{ thread(key: "demo") { title commentCount } }'}
        with pytest.raises(RuntimeError, match="roll back"):
            async with storage._transaction():
                await storage._write(
                    "UPDATE threads SET title = 'being written' WHERE key = 'demo'"
                )
                response = await http.post("/graphql", json=query)
                raise RuntimeError("roll back")
        # The read answered while the write transaction was still open, from the last commit.
        expected = {"title": "The psoas: the muscle that keeps the score", "commentCount": 28}
        assert response.json() == {"data": {"thread": expected}}
