"""Every stored count against a recount from the rows, after random sequences of writes."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter, defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from db import migrations, open_storage
from db.rows import Actor, CommentOrder, CommentState, PageRequest, ThreadRef
from db.sql import SQLStorage
from db.storage import NotFound
from server.app import create_app
from server.auth import mint
from server.settings import Settings
from tests.conftest import new_comment
from tests.services import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from db.rows import CommentRow

# Weighted by repetition: replies grow trees, hiding and likes change them.
KINDS = ("top", "reply", "reply", "reply", "delete", "remove", "like", "like", "unlike")
USERS = 3

# (kind, which comment: an index taken modulo the candidates, which user)
Operation = tuple[str, int, int]

operations = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 1_000), st.integers(0, USERS - 1)),
    max_size=40,
)

# Hand-picked sequences that hide whole chains, from the top and from the bottom.
CHAIN_HIDDEN_TOP_DOWN: list[Operation] = [
    ("top", 0, 0),
    ("reply", 0, 1),
    ("reply", 1, 2),
    ("delete", 0, 0),
    ("remove", 1, 0),
    ("delete", 2, 2),
]
# A visible comment under two placeholders.
CHAIN_OF_PLACEHOLDERS = CHAIN_HIDDEN_TOP_DOWN[:5]
CHAIN_HIDDEN_BOTTOM_UP: list[Operation] = [
    ("top", 0, 0),
    ("reply", 0, 1),
    ("reply", 1, 2),
    ("reply", 1, 0),
    ("like", 3, 1),
    ("delete", 3, 0),
    ("remove", 2, 1),
    ("delete", 1, 1),
    ("like", 0, 2),
    ("unlike", 0, 2),
    ("delete", 0, 0),
]


@dataclass
class Model:
    """What the writes should have left, kept beside the database."""

    thread_id: int
    users: list[int]
    comments: list[int] = field(default_factory=list)  # in creation order
    parents: dict[int, int | None] = field(default_factory=dict)
    authors: dict[int, int] = field(default_factory=dict)
    states: dict[int, CommentState] = field(default_factory=dict)
    likes: set[tuple[int, int]] = field(default_factory=set)  # (comment id, user id)

    @property
    def visible(self) -> list[int]:
        return [c for c in self.comments if self.states[c] is CommentState.VISIBLE]

    def like_count(self, comment_id: int) -> int:
        return sum(1 for c, _ in self.likes if c == comment_id)

    def ancestors(self, comment_id: int) -> tuple[int, ...]:
        """The comments above this one, root first."""
        above = self.parents[comment_id]
        return () if above is None else (*self.ancestors(above), above)


T = TypeVar("T")


def pick(candidates: Sequence[T], index: int) -> T | None:
    return candidates[index % len(candidates)] if candidates else None


async def apply(storage: SQLStorage, model: Model, operation: Operation, step: int) -> None:
    kind, index, who = operation
    user = model.users[who]
    moderator = Actor(user, moderator=True)
    target = pick(model.comments, index)
    # Pairs of comments share a timestamp, so ties are broken by id.
    created_at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=step // 2)

    if kind in ("top", "reply"):
        parent = pick(model.visible, index) if kind == "reply" else None
        comment = dataclasses.replace(
            new_comment(f"{kind} {step}", created_at, parent_id=parent), author_id=user
        )
        added = await storage.add_comment(
            ThreadRef(id=model.thread_id),
            comment,
            Actor(user),
            parent_thread_id=model.thread_id if parent is not None else None,
        )
        row = added.comment
        assert (row.parent_id, row.state, row.descendant_count) == (parent, CommentState.VISIBLE, 0)
        model.comments.append(row.id)
        model.parents[row.id] = parent
        assert added.ancestor_ids == model.ancestors(row.id)
        model.authors[row.id] = user
        model.states[row.id] = CommentState.VISIBLE
    elif target is None:
        return
    elif kind in ("delete", "remove"):
        state = CommentState.DELETED if kind == "delete" else CommentState.REMOVED
        was_visible = model.states[target] is CommentState.VISIBLE
        actor = Actor(model.authors[target]) if kind == "delete" and was_visible else moderator
        row = await storage.hide_comment((model.thread_id, target), actor, state)
        if was_visible:
            model.states[target] = state
        assert row.state is model.states[target]
    else:
        liked = kind == "like"
        if model.states[target] is not CommentState.VISIBLE:
            with pytest.raises(NotFound):
                await storage.set_like((model.thread_id, target), Actor(user), liked)
            return
        row = await storage.set_like((model.thread_id, target), Actor(user), liked)
        if liked:
            model.likes.add((target, user))
        else:
            model.likes.discard((target, user))
        assert row.like_count == model.like_count(target)


@dataclass(frozen=True)
class Stored:
    id: int
    parent_id: int | None
    depth: int
    state: str
    created_at: str
    counts: tuple[int, int, int, int]  # like, reply, listed reply, descendant


async def stored_comments(storage: SQLStorage, thread_id: int) -> dict[int, Stored]:
    rows = await storage._read(
        "SELECT id, parent_id, depth, state, created_at,"
        " like_count, reply_count, listed_reply_count, descendant_count"
        " FROM comments WHERE thread_id = ?",
        (thread_id,),
    )
    return {
        row[0]: Stored(
            id=row[0],
            parent_id=row[1],
            depth=row[2],
            state=row[3],
            created_at=row[4],
            counts=(row[5], row[6], row[7], row[8]),
        )
        for row in rows
    }


def recount(
    comments: dict[int, Stored], likes: Sequence[tuple[int, int]]
) -> tuple[dict[int, tuple[int, int, int, int]], dict[int, bool]]:
    """Each comment's counts computed from the rows alone, and whether listings show it."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for comment in comments.values():
        children[comment.parent_id].append(comment.id)
    visible = {c.id: c.state == "VISIBLE" for c in comments.values()}
    descendants: dict[int, int] = {}
    for comment in sorted(comments.values(), key=lambda c: -c.depth):  # deepest first
        descendants[comment.id] = sum(visible[c] + descendants[c] for c in children[comment.id])
    listed = {i: visible[i] or descendants[i] > 0 for i in comments}
    like_counts = Counter(comment_id for comment_id, _ in likes)
    counts = {
        i: (
            like_counts[i],
            sum(visible[c] for c in children[i]),
            sum(listed[c] for c in children[i]),
            descendants[i],
        )
        for i in comments
    }
    return counts, listed


def order_key(order: CommentOrder, comment: Stored) -> tuple[Any, ...]:
    if order is CommentOrder.TOP:
        return (-comment.counts[0], comment.created_at, comment.id)
    return (comment.created_at, comment.id)


async def walk(
    storage: SQLStorage, thread_id: int, parent: int | None, order: CommentOrder, size: int
) -> list[int]:
    """Every comment a listing shows, page by page."""
    seen: list[int] = []
    after = None
    while True:
        [page] = await storage.comment_pages([PageRequest(thread_id, parent, order, after, size)])
        seen.extend(c.id for c in page)
        if len(page) < size:
            return seen
        after = page[-1].sort_key(order)
        assert len(seen) < 1_000, "the pages do not end"


async def check(storage: SQLStorage, model: Model) -> None:
    thread_id = model.thread_id
    comments = await stored_comments(storage, thread_id)
    likes: list[tuple[int, int]] = [
        (row[0], row[1])
        for row in await storage._read(
            "SELECT comment_id, user_id FROM likes WHERE thread_id = ?", (thread_id,)
        )
    ]
    counts, listed = recount(comments, likes)

    assert set(likes) == model.likes
    assert {i: c.state for i, c in comments.items()} == {
        i: s.value for i, s in model.states.items()
    }
    assert {i: c.counts for i, c in comments.items()} == counts
    for comment in comments.values():
        above = comments[comment.parent_id].depth if comment.parent_id is not None else -1
        assert comment.depth == above + 1

    [thread] = [
        (row[0], row[1])
        for row in await storage._read(
            "SELECT comment_count, top_level_count FROM threads WHERE id = ?", (thread_id,)
        )
    ]
    top_level = [c for c in comments.values() if c.parent_id is None]
    assert thread == (
        sum(c.state == "VISIBLE" for c in comments.values()),
        sum(listed[c.id] for c in top_level),
    )

    parents: list[int | None] = [None, *comments]
    for order in CommentOrder:
        expected = {
            parent: sorted(
                (c for c in comments.values() if c.parent_id == parent and listed[c.id]),
                key=lambda c: order_key(order, c),
                reverse=order is CommentOrder.NEWEST,
            )
            for parent in parents
        }
        # All parents at once: the top level alone, every reply list in one statement.
        requests = [PageRequest(thread_id, parent, order, None, 1_000) for parent in parents]
        pages = await storage.comment_pages(requests)
        for parent, page in zip(parents, pages, strict=True):
            assert [c.id for c in page] == [c.id for c in expected[parent]], (order, parent)
            assert all(_counts_of(c) == comments[c.id].counts for c in page)
        # Small pages with cursors, one parent at a time.
        for parent in parents:
            walked = await walk(storage, thread_id, parent, order, 2)
            assert walked == [c.id for c in expected[parent]], (order, parent)


def _counts_of(row: CommentRow) -> tuple[int, int, int, int]:
    return (row.like_count, row.reply_count, row.listed_reply_count, row.descendant_count)


def fresh_key() -> str:
    return f"counts-{uuid.uuid4().hex[:12]}"


async def play(database_url: str, ops: Sequence[Operation]) -> None:
    """Run the operations on a fresh thread of the database, then check every count."""
    storage = open_storage(database_url)
    assert isinstance(storage, SQLStorage)
    await storage.open()
    try:
        await storage.migrate()
        users = [
            (await storage.upsert_user(f"host:user-{n}", f"User {n}", None)).id
            for n in range(USERS)
        ]
        now = datetime.now(UTC)
        thread = await storage.create_thread(fresh_key(), "Counts", None, now)
        # A second thread takes some of the same writes: counts never leak between threads.
        neighbour = await storage.create_thread(fresh_key(), "Next door", None, now)
        model, beside = Model(thread.id, users), Model(neighbour.id, users)
        for step, operation in enumerate(ops):
            await apply(storage, model, operation, step)
            if step % 3 == 0:
                await apply(storage, beside, operation, step)
        await check(storage, model)
        await check(storage, beside)
    finally:
        await storage.close()


# One database per test (each backend), a fresh thread per example: the database fixture is
# deliberately shared by the examples.
SHARED_DATABASE = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@settings(SHARED_DATABASE, max_examples=40)
@given(ops=operations)
@example(ops=CHAIN_HIDDEN_TOP_DOWN)
@example(ops=CHAIN_OF_PLACEHOLDERS)
@example(ops=CHAIN_HIDDEN_BOTTOM_UP)
def test_stored_counts_match_a_recount(database_url: str, ops: list[Operation]) -> None:
    asyncio.run(play(database_url, ops))


# -- counts across the migration that drops materialised paths --------------------------------

# A thread as it was stored before migration 0003: (name, parent, state, author, liked by).
# The chain under r1 holds a placeholder with a visible reply; d and r2 are placeholders with
# nothing beneath, out of the listings.
BEFORE_0003: list[tuple[str, str | None, str, int | None, tuple[int, ...]]] = [
    ("r1", None, "VISIBLE", 0, ()),
    ("a", "r1", "VISIBLE", 1, (0,)),
    ("b", "a", "DELETED", None, ()),
    ("c", "b", "VISIBLE", 1, (1, 2)),
    ("d", "r1", "REMOVED", 2, ()),
    ("r2", None, "DELETED", None, ()),
]


async def write_before_0003(storage: SQLStorage, model: Model) -> dict[str, int]:
    """The rows of BEFORE_0003 as the storage before 0003 wrote them, paths included, with
    counts from a recount; the comments' ids by name."""
    named: dict[str, int] = {}
    paths: dict[int, str] = {}
    now = storage._time(datetime(2025, 1, 1, tzinfo=UTC))
    async with storage._transaction():
        for name, parent, state, author, liked_by in BEFORE_0003:
            above = named[parent] if parent else None
            path = paths[above] + f"{above:012d}/" if above is not None else ""
            rows = await storage._write(
                "INSERT INTO comments (thread_id, parent_id, depth, path, author_id, body,"
                " body_html, body_text, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                (
                    model.thread_id,
                    above,
                    path.count("/"),
                    path,
                    None if author is None else model.users[author],
                    *(name, name, name),  # body, its HTML and its text
                    state,
                    now,
                ),
            )
            named[name] = comment_id = int(rows[0][0])
            paths[comment_id] = path
            model.comments.append(comment_id)
            model.parents[comment_id] = above
            model.states[comment_id] = CommentState(state)
            if author is not None:
                model.authors[comment_id] = model.users[author]
            for who in liked_by:
                model.likes.add((comment_id, model.users[who]))
                await storage._write(
                    "INSERT INTO likes (thread_id, comment_id, user_id, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (model.thread_id, comment_id, model.users[who], now),
                )
    comments = await stored_comments(storage, model.thread_id)
    counts, listed = recount(comments, sorted(model.likes))
    async with storage._transaction():
        for comment_id, (likes, replies, listed_replies, descendants) in counts.items():
            await storage._write(
                "UPDATE comments SET like_count = ?, reply_count = ?, listed_reply_count = ?,"
                " descendant_count = ? WHERE thread_id = ? AND id = ?",
                (likes, replies, listed_replies, descendants, model.thread_id, comment_id),
            )
        await storage._write(
            "UPDATE threads SET comment_count = ?, top_level_count = ? WHERE id = ?",
            (
                len(model.visible),
                sum(listed[c] for c in model.comments if model.parents[c] is None),
                model.thread_id,
            ),
        )
    return named


async def migrate_with_data(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = open_storage(database_url)
    assert isinstance(storage, SQLStorage)
    await storage.open()
    try:
        every = migrations.load(storage.dialect)
        monkeypatch.setattr(migrations, "load", lambda dialect: [m for m in every if m.version < 3])
        await storage.migrate()
        users = []
        async with storage._transaction():  # as the users table was before 0004
            for n in range(3):
                rows = await storage._write(
                    "INSERT INTO users (sub, name, created_at, updated_at) VALUES (?, ?, ?, ?)"
                    " RETURNING id",
                    (f"host:u{n}", f"U{n}", *[storage._time(datetime.now(UTC))] * 2),
                )
                users.append(int(rows[0][0]))
        thread = await storage.create_thread("old", "Old", None, datetime.now(UTC))
        model = Model(thread.id, users)
        named = await write_before_0003(storage, model)
        # Checked once migrated: today's reads name columns that came after 0003 (0004's).
        before = await stored_comments(storage, thread.id)

        monkeypatch.setattr(migrations, "load", lambda dialect: every)
        assert await storage.migrate() == [
            "0003_comments_without_paths.sql",
            "0004_user_origin.sql",
        ]
        assert await stored_comments(storage, thread.id) == before
        await check(storage, model)

        # Writes after it walk up parents instead of reading paths: counts stay exact.
        under_d = new_comment("Back in the listings", datetime.now(UTC), parent_id=named["d"])
        [back] = await storage.insert_comments(thread.id, [under_d])
        model.comments.append(back)
        model.parents[back] = named["d"]
        model.states[back] = CommentState.VISIBLE
        c = model.comments.index(named["c"])
        for step, operation in enumerate(
            [("reply", 2, 0), ("like", c, 0), ("delete", c, 1), ("remove", 1, 2), ("reply", 0, 2)]
        ):
            await apply(storage, model, operation, 100 + step)
        await check(storage, model)
    finally:
        await storage.close()


async def test_dropping_paths_keeps_every_row_and_count(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate_with_data(database_url, monkeypatch)


# -- the same through the API ------------------------------------------------------------------

ROLES = ("user", "user", "moderator")

ADD = """
mutation ($input: AddCommentInput!) { addComment(input: $input) { comment { id } errors { code } } }
"""
HIDE = """
mutation ($id: ID!, $delete: Boolean!) {
  deleteComment(input: {commentId: $id}) @include(if: $delete) { comment { state } errors { code } }
  removeComment(input: {commentId: $id}) @skip(if: $delete) { comment { state } errors { code } }
}
"""
LIKE = """
mutation ($id: ID!, $like: Boolean!) {
  likeComment(input: {commentId: $id}) @include(if: $like) { comment { likeCount } errors { code } }
  unlikeComment(input: {commentId: $id}) @skip(if: $like) { comment { likeCount } errors { code } }
}
"""
# Each page also lists its nodes' replies, which the server fetches for all of them at once.
NODE_FIELDS = """
  id state likeCount viewerHasLiked replyCount descendantCount
  replies(first: 100) { totalCount nodes { id } }
"""
TOP_LEVEL = f"""
query ($key: String!, $after: String) {{
  thread(key: $key) {{
    commentCount
    comments(first: 2, after: $after) {{
      totalCount nodes {{ {NODE_FIELDS} }} pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
REPLIES = f"""
query ($id: ID!, $after: String) {{
  comment(id: $id) {{
    replies(first: 2, after: $after) {{
      totalCount nodes {{ {NODE_FIELDS} }} pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.key = fresh_key()  # the thread of this example
        self.tokens = [
            mint(SECRET, sub=f"host:user-{n}", name=f"User {n}", role=role)
            for n, role in enumerate(ROLES)
        ]

    async def data(self, query: str, variables: dict[str, Any], who: int | None) -> dict[str, Any]:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@asynccontextmanager
async def api_client(database_url: str, data_dir: Path) -> AsyncIterator[Client]:
    settings = Settings(
        database_url=database_url,
        jwt_secret=SECRET,
        data_dir=str(data_dir),
        demo=False,
        rate_limits=False,
        max_depth=0,  # the operations may chain replies deeper than the default allows
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://threadql.test") as h:
            yield Client(h)


async def listing(
    client: Client, parent: str | None, who: int | None
) -> tuple[int, list[dict[str, Any]]]:
    """A connection's totalCount and every node across its pages."""
    nodes: list[dict[str, Any]] = []
    after = None
    totals: set[int] = set()
    while True:
        if parent is None:
            thread = (await client.data(TOP_LEVEL, {"key": client.key, "after": after}, who))[
                "thread"
            ]
            connection = thread["comments"]
        else:
            connection = (await client.data(REPLIES, {"id": parent, "after": after}, who))[
                "comment"
            ]["replies"]
        totals.add(connection["totalCount"])
        nodes.extend(connection["nodes"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert len(totals) == 1, "totalCount changed between pages"
    return totals.pop(), nodes


async def play_api(database_url: str, data_dir: Path, ops: Sequence[Operation]) -> None:
    async with api_client(database_url, data_dir) as client:
        comments: list[str] = []
        authors: dict[str, int] = {}
        states: dict[str, str] = {}
        likes: set[tuple[str, int]] = set()
        for kind, index, who in ops:
            visible = [c for c in comments if states[c] == "VISIBLE"]
            target = comments[index % len(comments)] if comments else None
            if kind in ("top", "reply"):
                parent = pick(visible, index) if kind == "reply" else None
                where = (
                    {"parentId": parent}
                    if parent
                    else {"threadKey": client.key, "threadTitle": "T"}
                )
                added = await client.data(ADD, {"input": {**where, "body": kind}}, who)
                assert added["addComment"]["errors"] == []
                comments.append(added["addComment"]["comment"]["id"])
                authors[comments[-1]], states[comments[-1]] = who, "VISIBLE"
            elif target is None:
                continue
            elif kind in ("delete", "remove"):
                delete = kind == "delete"
                actor = authors[target] if delete and states[target] == "VISIBLE" else 2
                hidden = await client.data(HIDE, {"id": target, "delete": delete}, actor)
                payload = hidden["deleteComment" if delete else "removeComment"]
                assert payload["errors"] == []
                if states[target] == "VISIBLE":
                    states[target] = "DELETED" if delete else "REMOVED"
                assert payload["comment"]["state"] == states[target]
            elif target is not None and states[target] == "VISIBLE":
                like = kind == "like"
                result = await client.data(LIKE, {"id": target, "like": like}, who)
                if like:
                    likes.add((target, who))
                else:
                    likes.discard((target, who))
                payload = result["likeComment" if like else "unlikeComment"]
                assert payload["comment"]["likeCount"] == sum(1 for c, _ in likes if c == target)

        # Walk the whole tree as the API lists it, then recount from what was walked.
        viewer = 1
        if not comments:
            assert (await client.data(TOP_LEVEL, {"key": client.key}, None))["thread"] is None
            return
        total, top = await listing(client, None, viewer)
        seen: dict[str, dict[str, Any]] = {}

        async def visit(node: dict[str, Any]) -> int:
            """Check one listed comment; return the visible comments at and beneath it."""
            assert node["id"] not in seen, "a comment is listed twice"
            seen[node["id"]] = node
            total, replies = await listing(client, node["id"], viewer)
            assert total == len(replies)
            batched = node["replies"]
            assert batched["totalCount"] == total
            assert [r["id"] for r in batched["nodes"]] == [r["id"] for r in replies]
            beneath = [await visit(reply) for reply in replies]
            assert node["replyCount"] == sum(r["state"] == "VISIBLE" for r in replies)
            assert node["descendantCount"] == sum(beneath)
            assert node["state"] == "VISIBLE" or node["descendantCount"] > 0
            assert node["likeCount"] == sum(1 for c, _ in likes if c == node["id"])
            assert node["viewerHasLiked"] is ((node["id"], viewer) in likes)
            return int(node["state"] == "VISIBLE") + int(node["descendantCount"])

        assert total == len(top)
        visible_total = sum([await visit(node) for node in top])
        assert {i: n["state"] for i, n in seen.items()} == {c: states[c] for c in seen}, (
            "a listed comment has the wrong state"
        )
        assert {c for c in comments if states[c] == "VISIBLE"} <= set(seen)
        thread = (await client.data(TOP_LEVEL, {"key": client.key, "after": None}, None))["thread"]
        assert thread["commentCount"] == visible_total == list(states.values()).count("VISIBLE")


@settings(SHARED_DATABASE, max_examples=15)
@given(ops=operations.map(lambda ops: ops[:20]))
@example(ops=CHAIN_HIDDEN_TOP_DOWN)
@example(ops=CHAIN_OF_PLACEHOLDERS)
@example(ops=CHAIN_HIDDEN_BOTTOM_UP)
def test_api_counts_match_what_the_api_lists(
    database_url: str, tmp_path: Path, ops: list[Operation]
) -> None:
    asyncio.run(play_api(database_url, tmp_path, ops))
