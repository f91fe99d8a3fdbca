"""The number of SQL statements follows the depth of the query, never the size of the thread."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from db.demo import load_demo
from db.rows import CommentOrder, PageRequest
from db.sqlite import SQLiteStorage
from db.synthetic import generate_thread, tree_size

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tests.conftest import GraphQLClient

LEAVES = "id depth body bodyHtml likeCount author { id name avatarUrl } parent { id } thread { id }"


def nested_query(key: str, levels: int, top: int = 20, replies: int = 2) -> str:
    """Up to `top` top-level comments and `levels` levels of `replies` replies beneath them."""
    selection = f"nodes {{ {LEAVES} }}"
    for _ in range(levels):
        selection = f"nodes {{ {LEAVES} replies(first: {replies}) {{ totalCount {selection} }} }}"
    comments = f"comments(first: {top}) {{ {selection} }}"
    return f'{{ thread(key: "{key}") {{ commentCount {comments} }} }}'


async def statements_for(app: Starlette, gql: GraphQLClient, query: str) -> tuple[int, str]:
    storage = app.state.storage
    before = storage.statements
    body = await gql(query)
    assert "errors" not in body, body
    return storage.statements - before, str(body)


async def test_same_statements_for_demo_and_a_5000_comment_thread(
    app: Starlette, gql: GraphQLClient
) -> None:
    big = await generate_thread(app.state.storage, "big", top_level=10, fanout=(2,) * 8)
    assert big.comment_count == tree_size(10, (2,) * 8) == 5110

    levels = 3  # the demo thread's replies reach depth 2; one more level asks for its leaves
    demo_count, demo_body = await statements_for(app, gql, nested_query("demo", levels))
    big_count, big_body = await statements_for(app, gql, nested_query("big", levels))
    assert demo_body.count("'depth': 2") == 2
    assert big_body.count("'depth': 3") == 10 * 2**3
    assert demo_count == big_count
    # one for the thread, one for the top level, one per level of replies
    assert demo_count <= 1 + levels + 1

    deep_count, deep_body = await statements_for(app, gql, nested_query("big", 8, top=10))
    assert deep_body.count("'depth': 8") == 10 * 2**8
    assert deep_count == 1 + 1 + 8


async def test_many_threads_with_comments_batch_per_level(
    app: Starlette, gql: GraphQLClient
) -> None:
    for n in range(5):
        await generate_thread(app.state.storage, f"t{n}", top_level=3, fanout=(2,))
    replies = "replies { nodes { id } }"
    query = f"{{ threads(first: 10) {{ nodes {{ comments {{ nodes {{ id {replies} }} }} }} }} }}"
    count, body = await statements_for(app, gql, query)
    assert body.count("'id'") == 5 * (3 + 6) + 17 + 9  # demo: 17 top level, 9 replies
    assert count == 3  # threads, their top levels together, all their replies together


async def test_page_queries_use_indexes(sqlite_url: str) -> None:
    """SQLite's plans for every page shape; PostgreSQL has the same indexes."""
    storage = SQLiteStorage(sqlite_url.removeprefix("sqlite:///"))
    await storage.open()
    await storage.migrate()
    await load_demo(storage)
    plans: list[str] = []

    async def capture(sql: str, params: object) -> None:
        plans.extend(await storage.explain(sql, params))  # type: ignore[arg-type]

    original = storage._read

    async def read(sql: str, params: object = ()) -> list[object]:
        if sql.lstrip().startswith("SELECT"):
            await capture(sql, params)
        return await original(sql, params)  # type: ignore[arg-type]

    storage._read = read  # type: ignore[method-assign]
    thread = (await storage.threads_by_keys(["demo"]))[0]
    assert thread is not None
    for order in CommentOrder:
        await storage.comment_pages([PageRequest(thread.id, None, order, None, 21)])
        await storage.comment_pages([PageRequest(thread.id, p, order, None, 11) for p in (1, 3)])
        top = await storage.comment_pages([PageRequest(thread.id, None, order, None, 2)])
        after = top[0][-1].sort_key(order)
        await storage.comment_pages([PageRequest(thread.id, None, order, after, 2)])
        await storage.comment_pages([PageRequest(thread.id, p, order, after, 2) for p in (1, 3)])
    await storage.comments_by_ids([(thread.id, 1), (thread.id, 4)])
    storage._read = original  # type: ignore[method-assign]
    await storage.close()

    assert plans
    full_scans = [p for p in plans if re.match(r"SCAN (c|comments|t|threads|u|users)\b", p)]
    assert full_scans == [], plans
    assert any("USING INDEX comments_by_parent_time" in p for p in plans)
    assert any("USING INDEX comments_by_parent_top" in p for p in plans)
