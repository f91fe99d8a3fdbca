"""Crash safety: `threadql serve` killed with SIGKILL in the middle of a stream of writes.

Several clients add, like and delete comments; once a number of writes are acknowledged, and
more are in flight, the server is killed. Restarted on the same database it must have every
acknowledged write, nothing that was never sent, and counts that agree with the rows.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from db import open_storage
from db.sql import SQLStorage
from resolvers import ids
from server import auth
from tests.live import THREADQL, free_port
from tests.services import SECRET
from tests.test_counts import recount, stored_comments

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.processes

WRITERS = 6
KILL_AFTER = 100  # acknowledged writes before the kill
MAX_STEPS = 300  # per writer: a bound far above what the kill leaves time for
THREAD_KEYS = ("crash-a", "crash-b")
ADD = """mutation ($input: AddCommentInput!) {
  addComment(input: $input) { comment { id body } errors { code message } }
}"""
LIKE = """mutation ($input: CommentIdInput!) {
  likeComment(input: $input) { comment { id likeCount } errors { code message } }
}"""
DELETE = """mutation ($input: CommentIdInput!) {
  deleteComment(input: $input) { comment { id state } errors { code message } }
}"""
READ = "query ($id: ID!) { comment(id: $id) { id body state parent { id } } }"


# -- the server as a process ------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    async def ready(self) -> None:
        """Wait, a bounded time, until it answers."""
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(400):
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.process.poll() is None, self.log.read_text()
                await asyncio.sleep(0.05)
        raise AssertionError(f"the server did not start: {self.log.read_text()}")


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[Server]:
    """`threadql serve` on a free port of 127.0.0.1; always gone when the block ends."""
    port = free_port()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*THREADQL, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield Server(process, f"http://127.0.0.1:{port}", log)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=20)


# -- what the clients did, and what the server acknowledged ----------------------------------


@dataclass(frozen=True)
class Added:
    body: str
    author: str  # the host-site id of its author
    parent: str | None  # the global id of its parent


@dataclass
class Ledger:
    """Every write sent: acknowledged (HTTP 200, no errors), refused, or of unknown outcome
    (no answer: it may or may not have been committed before the kill)."""

    added: dict[str, Added] = field(default_factory=dict)  # global id -> what was added
    liked: set[tuple[str, str]] = field(default_factory=set)  # (comment, liker)
    deleted: set[str] = field(default_factory=set)
    unknown_adds: dict[str, Added] = field(default_factory=dict)  # body -> what was sent
    unknown_likes: set[tuple[str, str]] = field(default_factory=set)
    unknown_deletes: set[str] = field(default_factory=set)
    refused: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)
    acknowledged: int = 0
    in_flight: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)

    def acknowledge(self) -> None:
        self.acknowledged += 1
        if self.acknowledged >= KILL_AFTER:
            self.enough.set()

    def hidden(self, comment: str) -> bool:
        """Deleted, or perhaps being deleted: no longer a target."""
        return comment in self.deleted or comment in self.unknown_deletes


def token(sub: str) -> str:
    return auth.mint(SECRET, sub=sub, name=sub.removeprefix("host:").title())


async def mutate(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> tuple[bool, dict[str, Any] | None]:
    """Whether the server answered at all, and the mutation's payload when the answer is a
    clean one: HTTP 200 without GraphQL errors."""
    try:
        response = await http.post(
            "/graphql", json={"query": query, "variables": {"input": variables}}
        )
    except httpx.HTTPError:
        return False, None
    answer = response.json() if response.status_code == 200 else {}
    if "errors" in answer or not answer.get("data"):
        return True, None
    payload: dict[str, Any] = next(iter(answer["data"].values()))
    return True, payload


async def writer(number: int, url: str, ledger: Ledger) -> None:
    """Adds, replies, likes and deletes of its own comments, until the server stops answering."""
    rng = random.Random(number)
    me = f"host:writer-{number}"
    mine: list[str] = []
    async with httpx.AsyncClient(
        base_url=url, headers={"authorization": f"Bearer {token(me)}"}, timeout=10
    ) as http:
        for step in range(MAX_STEPS):
            targets = [c for c in ledger.added if not ledger.hidden(c)]
            own = [c for c in mine if not ledger.hidden(c)]
            roll = rng.random()
            body = f"Writer {number}, step {step}: **{rng.randrange(10**9)}**"
            parent = None
            if roll < 0.45 or not targets:
                kind, query = "add", ADD
                key = rng.choice(THREAD_KEYS)
                variables: dict[str, Any] = {"body": body, "threadKey": key, "threadTitle": key}
            elif roll < 0.65:
                kind, query = "add", ADD
                parent = rng.choice(targets)
                variables = {"body": body, "parentId": parent}
            elif roll < 0.9 or not own:
                kind, query = "like", LIKE
                variables = {"commentId": rng.choice(targets)}
            else:
                kind, query = "delete", DELETE
                variables = {"commentId": rng.choice(own)}

            ledger.in_flight += 1
            try:
                answered, payload = await mutate(http, query, variables)
            finally:
                ledger.in_flight -= 1

            if payload is not None and payload["errors"]:
                target = parent or variables.get("commentId", "")
                ledger.refused.append((kind, target, payload["errors"]))
            elif payload is not None:
                if kind == "add":
                    ledger.added[payload["comment"]["id"]] = Added(body, me, parent)
                    mine.append(payload["comment"]["id"])
                elif kind == "like":
                    ledger.liked.add((variables["commentId"], me))
                else:
                    ledger.deleted.add(variables["commentId"])
                ledger.acknowledge()
            else:
                # No answer, or not a clean one: the write may or may not have happened.
                if kind == "add":
                    ledger.unknown_adds[body] = Added(body, me, parent)
                elif kind == "like":
                    ledger.unknown_likes.add((variables["commentId"], me))
                else:
                    ledger.unknown_deletes.add(variables["commentId"])
                if not answered:
                    return  # the server is gone


# -- what must hold afterwards ----------------------------------------------------------------


async def assert_counts_match_recount(storage: SQLStorage) -> None:
    """Every stored count of every thread equals a recount from the rows themselves."""
    threads = await storage._read("SELECT id, comment_count, top_level_count FROM threads")
    for thread_id, comment_count, top_level_count in threads:
        comments = await stored_comments(storage, thread_id)
        likes = [
            (row[0], row[1])
            for row in await storage._read(
                "SELECT comment_id, user_id FROM likes WHERE thread_id = ?", (thread_id,)
            )
        ]
        counts, listed = recount(comments, likes)
        assert {i: c.counts for i, c in comments.items()} == counts, thread_id
        visible = sum(c.state == "VISIBLE" for c in comments.values())
        top_level = sum(listed[c.id] for c in comments.values() if c.parent_id is None)
        assert (comment_count, top_level_count) == (visible, top_level), thread_id
        for comment in comments.values():
            if comment.parent_id is not None:
                parent = comments[comment.parent_id]
                assert comment.depth == parent.depth + 1, comment


def global_id(thread_id: int, comment_id: int) -> str:
    return ids.encode("Comment", thread_id, comment_id)


async def assert_every_acknowledged_write_kept(storage: SQLStorage, ledger: Ledger) -> None:
    rows = await storage._read(
        "SELECT c.thread_id, c.id, c.parent_id, c.state, c.body, u.sub, t.key"
        " FROM comments c JOIN threads t ON t.id = c.thread_id"
        " LEFT JOIN users u ON u.id = c.author_id"
    )
    stored = {
        global_id(row[0], row[1]): {
            "parent": None if row[2] is None else global_id(row[0], row[2]),
            "state": row[3],
            "body": row[4],
            "author": row[5],
            "thread": row[6],
        }
        for row in rows
    }
    assert {s["thread"] for s in stored.values()} <= set(THREAD_KEYS)

    for comment_id, added in ledger.added.items():
        assert comment_id in stored, f"an acknowledged comment is lost: {added}"
        row = stored[comment_id]
        assert row["parent"] == added.parent, (comment_id, row, added)
        kept = {"state": "VISIBLE", "body": added.body, "author": added.author}
        gone = {"state": "DELETED", "body": "", "author": None}
        now = {"state": row["state"], "body": row["body"], "author": row["author"]}
        if comment_id in ledger.deleted:
            assert now == gone, f"an acknowledged delete did not take effect: {comment_id}"
        elif comment_id in ledger.unknown_deletes:
            assert now in (kept, gone), (comment_id, now)
        else:
            assert now == kept, (comment_id, now, added)

    # Nothing else: the rest are writes sent before the kill whose answer never came.
    unacknowledged = {c: row for c, row in stored.items() if c not in ledger.added}
    bodies = [row["body"] for row in unacknowledged.values()]
    assert len(bodies) == len(set(bodies)), "a write was stored twice"
    for row in unacknowledged.values():
        sent = ledger.unknown_adds.get(row["body"])
        assert sent is not None, f"a comment nobody sent: {row}"
        assert (row["state"], row["author"], row["parent"]) == ("VISIBLE", sent.author, sent.parent)

    like_rows = await storage._read(
        "SELECT l.thread_id, l.comment_id, u.sub FROM likes l JOIN users u ON u.id = l.user_id"
    )
    likes = {(global_id(row[0], row[1]), row[2]) for row in like_rows}
    assert ledger.liked <= likes, f"acknowledged likes are lost: {ledger.liked - likes}"
    assert likes <= ledger.liked | ledger.unknown_likes, likes - ledger.liked

    # A refusal is explained by a delete that came first: of the reply's parent, of the liked.
    for kind, target, errors in ledger.refused:
        assert kind in ("add", "like"), (kind, errors)
        assert ledger.hidden(target), (kind, target, errors)
        assert [e["code"] for e in errors] in (["INVALID_INPUT"], ["NOT_FOUND"]), errors


async def assert_the_restarted_server_serves_it(server: Server, ledger: Ledger) -> None:
    """Every acknowledged comment reads back through the API, and a new write works."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for comment_id, added in ledger.added.items():
            response = await http.post(
                "/graphql", json={"query": READ, "variables": {"id": comment_id}}
            )
            assert response.status_code == 200, response.text
            comment = response.json()["data"]["comment"]
            assert comment is not None, comment_id
            assert comment["parent"] == (None if added.parent is None else {"id": added.parent})
            if comment["state"] == "VISIBLE":
                assert comment["body"] == added.body
                assert comment_id not in ledger.deleted
            else:
                assert comment["state"] == "DELETED", comment
                assert ledger.hidden(comment_id), comment
        body = "After the restart."
        response = await http.post(
            "/graphql",
            json={
                "query": ADD,
                "variables": {"input": {"body": body, "threadKey": THREAD_KEYS[0]}},
            },
            headers={"authorization": f"Bearer {token('host:after')}"},
        )
        payload = response.json()["data"]["addComment"]
        assert payload["errors"] == [], payload
        ledger.added[payload["comment"]["id"]] = Added(body, "host:after", None)


async def test_acknowledged_writes_survive_a_sigkill(database_url: str, tmp_path: Path) -> None:
    env = {
        "THREADQL_DATABASE_URL": database_url,
        "THREADQL_JWT_SECRET": SECRET,
        "THREADQL_DATA_DIR": str(tmp_path),
        "THREADQL_RATE_LIMITS": "false",
        # No demo thread: its likes are counts without rows, and every row here is a write
        # of the test, so that nothing can hide among them.
        "THREADQL_DEMO": "false",
    }
    log = tmp_path / "serve.log"
    ledger = Ledger()
    with serving(env, log) as server:
        await server.ready()
        in_flight = 0
        writers = [asyncio.create_task(writer(n, server.url, ledger)) for n in range(WRITERS)]
        try:
            await asyncio.wait_for(ledger.enough.wait(), 60)
            in_flight = ledger.in_flight
            server.process.send_signal(signal.SIGKILL)
            assert server.process.wait(timeout=20) == -signal.SIGKILL
            await asyncio.wait_for(asyncio.gather(*writers), 60)
        finally:
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
    assert ledger.acknowledged >= KILL_AFTER
    assert in_flight > 0, "no write was in flight when the server was killed"
    if database_url.startswith("sqlite:///"):
        # Never closed: the restart has a write-ahead log to recover.
        wal = database_url.removeprefix("sqlite:///") + "-wal"
        assert await asyncio.to_thread(os.path.getsize, wal) > 0

    with serving(env, log) as server:
        await server.ready()
        await assert_the_restarted_server_serves_it(server, ledger)

    storage = open_storage(database_url)
    assert isinstance(storage, SQLStorage)
    await storage.open()
    try:
        await assert_every_acknowledged_write_kept(storage, ledger)
        await assert_counts_match_recount(storage)
        if storage.dialect == "sqlite":
            assert await storage._read("PRAGMA integrity_check") == [("ok",)]
            assert await storage._read("PRAGMA foreign_key_check") == []
    finally:
        await storage.close()
