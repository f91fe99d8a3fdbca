"""Two `threadql serve` processes sharing one database and one Redis, as a deployment runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis.asyncio as redis

from server import auth
from tests.live import THREADQL, GraphQLWebSocket, free_port
from tests.services import REDIS, SECRET, unavailable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.processes

ADD = """mutation ($input: AddCommentInput!) {
  addComment(input: $input) { comment { id } errors { code message } }
}"""
ADDED = """subscription ($thread: ID!) {
  commentAdded(threadId: $thread) { id body depth author { name } parent { id } }
}"""
READ = """{ thread(key: "demo") { commentCount comments(first: 50) { totalCount nodes {
  id body likeCount replyCount author { name } replies { nodes { id body depth } } } } } }"""


@pytest.fixture
async def redis_url() -> str:
    client = redis.Redis.from_url(REDIS)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as error:
        unavailable("Redis", error)
    finally:
        await client.aclose()
    return REDIS


@contextmanager
def serving(env: dict[str, str], tmp_path: Path, name: str) -> Iterator[str]:
    """`threadql serve` on a free port; its URL once it answers."""
    port = free_port()
    log = (tmp_path / f"{name}.log").open("w")
    process = subprocess.Popen(
        [*THREADQL, "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def shared_env(database_url: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    """What the processes of one test share: the database, the secret, a data folder."""
    return {
        "THREADQL_DATABASE_URL": database_url,
        "THREADQL_JWT_SECRET": SECRET,
        "THREADQL_DATA_DIR": str(tmp_path),
        "THREADQL_RATE_LIMITS": "false",
        **settings,
    }


async def post(http: httpx.AsyncClient, url: str, body: str, **where: str) -> str:
    token = auth.mint(SECRET, sub="walker", name="Wal Ker")
    response = await http.post(
        f"{url}/graphql",
        json={
            "query": ADD,
            "variables": {"input": {"body": body, **(where or {"threadKey": "demo"})}},
        },
        headers={"authorization": f"Bearer {token}"},
    )
    payload = response.json()["data"]["addComment"]
    assert payload["errors"] == [], payload
    comment_id: str = payload["comment"]["id"]
    return comment_id


async def read(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    body: dict[str, Any] = (await http.post(f"{url}/graphql", json={"query": READ})).json()
    assert "errors" not in body, body
    return body


async def test_a_comment_posted_to_one_process_reaches_a_subscriber_of_another(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = shared_env(
        database_url,
        tmp_path,
        THREADQL_BROKER_URL=redis_url,
        THREADQL_BROKER_PREFIX=f"threadql-test-{uuid.uuid4().hex}:",
    )
    with ExitStack() as stack:
        first = stack.enter_context(serving(env, tmp_path, "a"))
        second = stack.enter_context(serving(env, tmp_path, "b"))
        async with httpx.AsyncClient(timeout=30) as http:
            demo = (
                await http.post(
                    f"{first}/graphql",
                    json={
                        "query": '{ thread(key: "demo") { id comments(first: 1) { nodes { id } } } }'
                    },
                )
            ).json()
            thread_id = demo["data"]["thread"]["id"]
            parent = demo["data"]["thread"]["comments"]["nodes"][0]["id"]
            ws_url = second.replace("http://", "ws://") + "/graphql"
            async with GraphQLWebSocket.connect(ws_url) as ws:
                operation = await ws.subscribe(ADDED, {"thread": thread_id})
                # The subscription is live once a comment posted to the other process arrives.
                for attempt in range(100):
                    probe = await post(http, first, f"probe {attempt}")
                    try:
                        data = await asyncio.wait_for(ws.next_data(operation), 0.5)
                    except TimeoutError:
                        continue
                    assert data["commentAdded"]["id"] == probe
                    break
                else:
                    pytest.fail("no comment posted to one process reached the other")
                reply = await post(http, first, "Across processes!", parentId=parent)
                data = await asyncio.wait_for(ws.next_data(operation), 10)
            comment = data["commentAdded"]
            assert comment["id"] == reply
            assert comment["author"] == {"name": "Wal Ker"}
            assert comment["parent"] == {"id": parent}
            assert comment["depth"] == 1
            assert await read(http, first) == await read(http, second)


async def test_no_process_answers_from_its_cache_after_a_write_through_another(
    database_url: str, tmp_path: Path
) -> None:
    env = shared_env(database_url, tmp_path)
    with ExitStack() as stack:
        reader = stack.enter_context(serving(env, tmp_path, "reader"))
        writer = stack.enter_context(serving(env, tmp_path, "writer"))
        async with httpx.AsyncClient(timeout=30) as http:
            for step in range(3):
                answers = [await http.post(f"{reader}/graphql", json={"query": READ})]
                answers.append(await http.get(f"{reader}/graphql", params={"query": READ}))
                answers.append(await http.get(f"{reader}/graphql", params={"query": READ}))
                assert len({answer.content for answer in answers}) == 1
                assert answers[1].headers["etag"] == answers[2].headers["etag"]  # a hit
                comment = await post(http, writer, f"Written elsewhere {step}")
                fresh = await http.get(
                    f"{reader}/graphql",
                    params={"query": READ},
                    headers={"If-None-Match": answers[2].headers["etag"]},
                )
                assert fresh.status_code == 200
                nodes = fresh.json()["data"]["thread"]["comments"]["nodes"]
                assert comment in [node["id"] for node in nodes]
