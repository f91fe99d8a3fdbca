"""Keyset pagination: every order, all pages, nothing missed or repeated under inserts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from db.rows import CommentOrder, PageRequest
from resolvers.loaders import Loaders
from tests.conftest import new_comment

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from db.storage import Storage
    from tests.conftest import GraphQLClient

TOP_LEVEL_PAGE = """
query ($first: Int, $after: String, $order: CommentOrder) {
  thread(key: "demo") {
    comments(first: $first, after: $after, orderBy: $order) {
      totalCount
      edges { cursor node { id likeCount createdAt } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


def storage_of(app: Starlette) -> Storage:
    store: Storage = app.state.storage
    return store


async def insert_top_level(storage: Storage, count: int, likes: int = 0) -> None:
    """New top-level comments, written now (after every demo comment)."""
    thread = (await storage.threads_by_keys(["demo"]))[0]
    assert thread is not None
    now = datetime.now(UTC)
    comments = [
        new_comment("Late to the party!", now + timedelta(seconds=i), likes=likes)
        for i in range(count)
    ]
    await storage.insert_comments(thread.id, comments)


async def walk(
    gql: GraphQLClient, order: str, first: int, between: Any = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every edge, page by page; `between` runs after each page. Returns edges and page infos."""
    edges: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"first": first, "after": after, "order": order}
        connection = (await gql.data(TOP_LEVEL_PAGE, variables))["thread"]["comments"]
        edges.extend(connection["edges"])
        infos.append(connection["pageInfo"])
        if between is not None:
            await between()
        if not connection["pageInfo"]["hasNextPage"]:
            return edges, infos
        after = connection["pageInfo"]["endCursor"]
        assert len(infos) < 50, "pagination does not end"


def sort_key(order: str, node: dict[str, Any]) -> tuple[Any, ...]:
    created = datetime.fromisoformat(node["createdAt"])
    if order == "OLDEST":
        return (created,)
    if order == "NEWEST":
        return (-created.timestamp(),)
    return (-node["likeCount"], created)


@pytest.mark.parametrize("order", ["OLDEST", "NEWEST", "TOP"])
@pytest.mark.parametrize("first", [1, 4, 17, 100])
async def test_pages_cover_everything_once_in_order(
    gql: GraphQLClient, order: str, first: int
) -> None:
    edges, infos = await walk(gql, order, first)
    ids = [e["node"]["id"] for e in edges]
    assert len(ids) == len(set(ids)) == 17
    nodes = [e["node"] for e in edges]
    assert nodes == sorted(nodes, key=lambda n: sort_key(order, n))
    assert len(infos) == -(-17 // first)
    assert [i["hasPreviousPage"] for i in infos] == [False] + [True] * (len(infos) - 1)
    assert [i["hasNextPage"] for i in infos] == [True] * (len(infos) - 1) + [False]
    assert infos[-1]["endCursor"] == edges[-1]["cursor"]


@pytest.mark.parametrize("order", ["OLDEST", "NEWEST", "TOP"])
async def test_no_comment_missed_or_repeated_while_comments_arrive(
    app: Starlette, gql: GraphQLClient, order: str
) -> None:
    before = {e["node"]["id"] for e in (await walk(gql, order, 100))[0]}
    storage = storage_of(app)

    async def someone_comments() -> None:
        await insert_top_level(storage, 2, likes=5)

    edges, _ = await walk(gql, order, 3, between=someone_comments)
    ids = [e["node"]["id"] for e in edges]
    assert len(ids) == len(set(ids)), "a comment was repeated"
    assert before <= set(ids), "a comment was missed"
    if order == "OLDEST":  # new comments are the newest: the walk reaches them at the end
        assert len(ids) > 17


async def test_total_count_and_first_zero(app: Starlette, gql: GraphQLClient) -> None:
    await insert_top_level(storage_of(app), 3)
    connection = (await gql.data(TOP_LEVEL_PAGE, {"first": 0}))["thread"]["comments"]
    assert connection["totalCount"] == 20
    assert connection["edges"] == []
    assert connection["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_replies_paginate_with_their_own_cursors(app: Starlette, gql: GraphQLClient) -> None:
    storage = storage_of(app)
    thread = (await storage.threads_by_keys(["demo"]))[0]
    assert thread is not None
    parent = await gql.data('{ thread(key: "demo") { comments(first: 1) { nodes { id } } } }')
    parent_id = parent["thread"]["comments"]["nodes"][0]["id"]
    now = datetime.now(UTC)
    replies = [new_comment("me too", now + timedelta(seconds=i), parent_id=1) for i in range(5)]
    await storage.insert_comments(thread.id, replies)
    query = """
    query ($id: ID!, $after: String) {
      comment(id: $id) {
        replyCount
        replies(first: 2, after: $after) {
          totalCount
          edges { cursor node { id depth parent { id } } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }
    """
    seen: list[str] = []
    after = None
    while True:
        comment = (await gql.data(query, {"id": parent_id, "after": after}))["comment"]
        replies = comment["replies"]
        assert comment["replyCount"] == replies["totalCount"] == 6
        for edge in replies["edges"]:
            assert edge["node"]["depth"] == 1
            assert edge["node"]["parent"]["id"] == parent_id
            seen.append(edge["node"]["id"])
        if not replies["pageInfo"]["hasNextPage"]:
            break
        after = replies["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 6


async def test_threads_connection_pages(app: Starlette, gql: GraphQLClient) -> None:
    storage = storage_of(app)
    for n in range(4):
        await storage.create_thread(f"post-{n}", f"Post {n}", None, datetime.now(UTC))
    query = """
    query ($after: String) {
      threads(first: 2, after: $after) {
        totalCount nodes { key } pageInfo { hasNextPage endCursor }
      }
    }
    """
    keys: list[str] = []
    after = None
    while True:
        threads = (await gql.data(query, {"after": after}))["threads"]
        assert threads["totalCount"] == 5
        keys.extend(n["key"] for n in threads["nodes"])
        if not threads["pageInfo"]["hasNextPage"]:
            break
        after = threads["pageInfo"]["endCursor"]
    assert keys == ["post-3", "post-2", "post-1", "post-0", "demo"]


async def test_a_cursor_the_database_refuses_fails_only_its_own_pages(storage: Storage) -> None:
    """The API lets no such cursor through (tests/test_bad_input.py); should one reach a batch,
    the pages after other cursors in it still load."""
    thread = await storage.create_thread("refusals", "Refusals", None, datetime.now(UTC))
    moment = datetime.now(UTC)
    await storage.insert_comments(
        thread.id, [new_comment("one", moment), new_comment("two", moment)]
    )
    loaders = Loaders(storage)
    requests = [
        PageRequest(thread.id, None, CommentOrder.OLDEST, None, 5),
        PageRequest(thread.id, None, CommentOrder.OLDEST, ("not a time", 1), 5),
        PageRequest(thread.id, None, CommentOrder.NEWEST, None, 5),
    ]
    good, bad, newest = await asyncio.gather(
        *(loaders.page.load(r) for r in requests), return_exceptions=True
    )
    assert [c.body for c in good] == ["one", "two"]  # type: ignore[union-attr]
    assert [c.body for c in newest] == ["two", "one"]  # type: ignore[union-attr]
    assert isinstance(bad, ValueError)
