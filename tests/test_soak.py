"""Soak: one server under concurrent writers, readers and subscribers, for a fixed number of
writes. Nothing fails, nothing is lost, and every subscriber sees its thread's comments once
each, in the order they were committed."""

from __future__ import annotations

import asyncio
import itertools
import random
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from db.sql import SQLStorage
from resolvers import ids
from server import auth
from server.settings import Settings
from tests.live import GraphQLWebSocket, LiveServer, live_server, receiving
from tests.services import SECRET
from tests.test_crash import assert_counts_match_recount

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.soak

THREAD_KEYS = ("soak-a", "soak-b", "soak-c")
WRITES = 300
LIKE_EVERY = 5  # every fifth write is a like, the others add a comment or a reply
WRITERS = 6
READERS = 3
MAX_READS = 200  # per reader
SUBSCRIBERS_PER_THREAD = 2

ADD = """mutation ($input: AddCommentInput!) {
  addComment(input: $input) { comment { id body } errors { code message } }
}"""
LIKE = """mutation ($input: CommentIdInput!) {
  likeComment(input: $input) { comment { id likeCount } errors { code message } }
}"""
ADDED = """subscription ($thread: ID!) { commentAdded(threadId: $thread) { id body } }"""
THREAD = """query ($key: String!) { thread(key: $key) {
  id commentCount
  comments(first: 20, orderBy: NEWEST) { totalCount nodes {
    id body likeCount replyCount descendantCount replies(first: 5) { totalCount nodes { id } }
  } }
} }"""
READ = "query ($id: ID!) { comment(id: $id) { id body } }"


def token(sub: str) -> str:
    return auth.mint(SECRET, sub=sub, name=sub.removeprefix("host:").title())


def commit_order(comment_id: str) -> int:
    """A comment's place in the commit order of its thread: its id.

    Every write to a thread holds the thread while it draws the new comment's id and until it
    commits (SQLite: the one writer connection and BEGIN IMMEDIATE; PostgreSQL: SELECT … FOR
    UPDATE on the thread's row), so within a thread ids increase in commit order on both
    backends. `createdAt` would not do: it is taken before the write waits for the thread, so
    a comment can be created first and committed second.
    """
    return ids.comment_key(comment_id)[1]


@dataclass
class Run:
    """What the clients saw."""

    thread_ids: dict[str, str] = field(default_factory=dict)  # key -> global id
    added: dict[str, list[str]] = field(default_factory=dict)  # key -> acknowledged comments
    bodies: dict[str, str] = field(default_factory=dict)  # comment -> body
    liked: set[tuple[str, str]] = field(default_factory=set)  # (comment, liker)
    written: int = 0  # acknowledged writes of the plan
    statuses: list[int] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)  # GraphQL or payload errors

    async def send(
        self, http: httpx.AsyncClient, query: str, variables: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The `data` of a clean answer; None, with the problem kept, otherwise."""
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        self.statuses.append(response.status_code)
        body: dict[str, Any] = response.json() if response.status_code == 200 else {}
        if "errors" in body or "data" not in body:
            self.problems.append((response.status_code, body or response.text))
            return None
        data: dict[str, Any] = body["data"]
        return data

    async def add(self, http: httpx.AsyncClient, key: str, body: str, **where: str) -> bool:
        """Whether the comment was acknowledged."""
        data = await self.send(http, ADD, {"input": {"body": body, **where}})
        if data is None:
            return False
        payload = data["addComment"]
        if payload["errors"]:
            self.problems.append(payload["errors"])
            return False
        comment_id = payload["comment"]["id"]
        self.added.setdefault(key, []).append(comment_id)
        self.bodies[comment_id] = body
        return True


async def write(run: Run, live: LiveServer, number: int, plan: Iterator[int]) -> None:
    """Takes the next write of the plan until none is left."""
    me = f"host:writer-{number}"
    async with httpx.AsyncClient(
        base_url=live.url, headers={"authorization": f"Bearer {token(me)}"}, timeout=30
    ) as http:
        for n in plan:
            rng = random.Random(n)
            key = THREAD_KEYS[n % len(THREAD_KEYS)]
            known = run.added[key]
            if n % LIKE_EVERY == LIKE_EVERY - 1:
                target = rng.choice(known)
                data = await run.send(http, LIKE, {"input": {"commentId": target}})
                if data is not None and data["likeComment"]["errors"]:
                    run.problems.append(data["likeComment"]["errors"])
                elif data is not None:
                    run.liked.add((target, me))
                    run.written += 1
            else:
                where = (
                    {"threadId": run.thread_ids[key]}
                    if rng.random() < 0.4
                    else {"parentId": rng.choice(known)}
                )
                if await run.add(http, key, f"Write {n} by writer {number}.", **where):
                    run.written += 1


async def read(run: Run, live: LiveServer, writing: asyncio.Future[Any]) -> None:
    """Reads the threads, one after another, while the writes go on."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        for n in range(MAX_READS):
            if writing.done():
                return
            await run.send(http, THREAD, {"key": THREAD_KEYS[n % len(THREAD_KEYS)]})


async def subscribe(ws: GraphQLWebSocket, thread_id: str, last: str, into: list[str]) -> None:
    """The thread's new comments, as they arrive, until the one whose body is `last`."""
    operation = await ws.subscribe(ADDED, {"thread": thread_id})
    for _ in range(WRITES + 10):
        comment = (await asyncio.wait_for(ws.next_data(operation), 30))["commentAdded"]
        into.append(comment["id"])
        if comment["body"] == last:
            return
    raise AssertionError(f"more comments than were written: {into}")


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


async def test_writers_readers_and_subscribers_together(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url,
        jwt_secret=SECRET,
        data_dir=str(tmp_path),
        rate_limits=False,
        demo=False,
        # Room for every event of the run: being cut off for falling behind is
        # test_subscriptions' subject; here a subscriber must receive everything.
        subscriber_queue=4 * WRITES,
    )
    run = Run()
    async with (
        live_server(settings) as live,
        httpx.AsyncClient(
            base_url=live.url,
            headers={"authorization": f"Bearer {token('host:host')}"},
            timeout=30,
        ) as http,
        AsyncExitStack() as sockets,
    ):
        # A first comment opens each thread, before anyone subscribes.
        for key in THREAD_KEYS:
            first = f"The first comment of {key}."
            assert await run.add(http, key, first, threadKey=key, threadTitle=key), run.problems
            data = await run.send(http, THREAD, {"key": key})
            assert data is not None, run.problems
            run.thread_ids[key] = data["thread"]["id"]
        seeds = {key: list(run.added[key]) for key in THREAD_KEYS}

        # Every subscriber is in place before the first write.
        received: dict[tuple[str, int], list[str]] = {}
        subscribers = []
        for key, copy in itertools.product(THREAD_KEYS, range(SUBSCRIBERS_PER_THREAD)):
            ws = await sockets.enter_async_context(GraphQLWebSocket.connect(live.ws_url))
            received[key, copy] = []
            subscribers.append(
                asyncio.create_task(
                    subscribe(ws, run.thread_ids[key], f"The last of {key}.", received[key, copy])
                )
            )
        # The subscribers of a thread are anonymous and ask the same: they share its stream.
        subscribed = (len(THREAD_KEYS), len(THREAD_KEYS) * SUBSCRIBERS_PER_THREAD)
        await until(lambda: receiving(live.app) == subscribed)
        assert receiving(live.app) == subscribed

        plan = iter(range(WRITES))
        writing = asyncio.ensure_future(
            asyncio.gather(*(write(run, live, n, plan) for n in range(WRITERS)))
        )
        readers = [asyncio.create_task(read(run, live, writing)) for _ in range(READERS)]
        try:
            await asyncio.wait_for(asyncio.shield(writing), 120)
            await asyncio.wait_for(asyncio.gather(*readers), 60)
            # The last comment of each thread is committed after every other: once a
            # subscriber has it, it has everything it is going to get.
            for key in THREAD_KEYS:
                last = f"The last of {key}."
                assert await run.add(http, key, last, threadId=run.thread_ids[key]), run.problems
            await asyncio.wait_for(asyncio.gather(*subscribers), 60)
        finally:
            tasks: list[asyncio.Future[Any]] = [*subscribers, *readers, writing]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        assert [s for s in run.statuses if s >= 500] == []
        assert run.problems == []
        assert set(run.statuses) == {200}
        assert run.written == WRITES

        for (key, _), comments in received.items():
            expected = [c for c in run.added[key] if c not in seeds[key]]
            assert sorted(comments) == sorted(expected), f"not every comment once, on {key}"
            assert comments == sorted(expected, key=commit_order), f"out of order on {key}"

        # Nothing lost: every acknowledged comment reads back, every like is stored.
        for comment_id, body in run.bodies.items():
            data = await run.send(http, READ, {"id": comment_id})
            assert data is not None, run.problems
            assert data["comment"] == {"id": comment_id, "body": body}
        storage = live.app.state.storage
        assert isinstance(storage, SQLStorage)
        rows = await storage._read(
            "SELECT l.thread_id, l.comment_id, u.sub FROM likes l JOIN users u ON u.id = l.user_id"
        )
        assert {(ids.encode("Comment", row[0], row[1]), row[2]) for row in rows} == run.liked
        await assert_counts_match_recount(storage)
