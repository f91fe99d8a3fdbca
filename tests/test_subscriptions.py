"""Live updates over a real WebSocket to a real server."""

from __future__ import annotations

import asyncio
import secrets
import socket
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from server import auth
from server.settings import Settings
from tests.live import GraphQLWebSocket, LiveServer, live_server
from tests.services import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

QUEUE = 4

ADDED = """subscription ($thread: ID!, $ancestor: ID) {
  commentAdded(threadId: $thread, ancestorId: $ancestor) {
    id depth body author { name } parent { id } viewerCanEdit
  }
}"""
UPDATED = """subscription ($thread: ID!) {
  commentUpdated(threadId: $thread) { id body editedAt likeCount viewerHasLiked state }
}"""
ADD = """mutation ($input: AddCommentInput!) {
  addComment(input: $input) { comment { id } errors { code message } }
}"""


def token(sub: str = "reader", name: str = "Rea Der") -> str:
    return auth.mint(SECRET, sub=sub, name=name)


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Wait for the server to catch up; the assertions after it say what must hold."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


@pytest.fixture
async def live(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    settings = Settings(
        database_url=database_url,
        jwt_secret=SECRET,
        data_dir=str(tmp_path),
        subscriber_queue=QUEUE,
        rate_limits=False,
    )
    async with live_server(settings) as server:
        yield server


class Poster:
    """Mutations over HTTP, as a signed-in reader."""

    def __init__(self, live: LiveServer, as_token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=live.url, headers={"authorization": f"Bearer {as_token}"}
        )

    async def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def add(self, body: str, **where: str) -> str:
        """A comment on the demo thread, or a reply when `parentId` is given."""
        where = where or {"threadKey": "demo"}
        data = await self.query(ADD, {"input": {"body": body, **where}})
        assert data["addComment"]["errors"] == [], data
        comment_id: str = data["addComment"]["comment"]["id"]
        return comment_id


@pytest.fixture
async def poster(live: LiveServer) -> AsyncIterator[Poster]:
    p = Poster(live, token("poster", "Pat Poster"))
    yield p
    await p.http.aclose()


async def demo_ids(poster: Poster) -> tuple[str, list[str]]:
    data = await poster.query('{ thread(key: "demo") { id comments(first: 20) { nodes { id } } } }')
    thread = data["thread"]
    return thread["id"], [n["id"] for n in thread["comments"]["nodes"]]


async def test_a_reply_reaches_a_subscriber_with_author_and_parent(
    live: LiveServer, poster: Poster
) -> None:
    thread_id, top = await demo_ids(poster)
    async with GraphQLWebSocket.connect(live.ws_url) as ws:
        operation = await ws.subscribe(ADDED, {"thread": thread_id})
        await until(lambda: live.app.state.broker.subscriber_count() == 1)
        reply = await poster.add("Welcome back!", parentId=top[0])
        data = await asyncio.wait_for(ws.next_data(operation), 10)
    comment = data["commentAdded"]
    assert comment["id"] == reply
    assert comment["body"] == "Welcome back!"
    assert comment["author"] == {"name": "Pat Poster"}
    assert comment["parent"] == {"id": top[0]}
    assert comment["depth"] == 1
    assert comment["viewerCanEdit"] is False  # the subscriber is anonymous, not the author


async def test_ancestor_id_filters_to_the_subtree_at_any_depth(
    live: LiveServer, poster: Poster
) -> None:
    thread_id, top = await demo_ids(poster)
    child = await poster.add("child", parentId=top[1])
    async with GraphQLWebSocket.connect(live.ws_url, token=token()) as ws:
        operation = await ws.subscribe(ADDED, {"thread": thread_id, "ancestor": top[1]})
        await until(lambda: live.app.state.broker.subscriber_count() == 1)
        await poster.add("elsewhere", parentId=top[0])
        await poster.add("top level")
        grandchild = await poster.add("grandchild", parentId=child)
        deeper = await poster.add("deeper", parentId=grandchild)
        first = await asyncio.wait_for(ws.next_data(operation), 10)
        second = await asyncio.wait_for(ws.next_data(operation), 10)
    assert [first["commentAdded"]["id"], second["commentAdded"]["id"]] == [grandchild, deeper]
    assert second["commentAdded"]["depth"] == 3


async def test_comment_updated_sees_an_edit_and_a_like(live: LiveServer, poster: Poster) -> None:
    thread_id, _ = await demo_ids(poster)
    mine = await poster.add("frist")
    liker = Poster(live, token())
    async with GraphQLWebSocket.connect(live.ws_url, token=token()) as ws:
        operation = await ws.subscribe(UPDATED, {"thread": thread_id})
        await until(lambda: live.app.state.broker.subscriber_count() == 1)
        await poster.query(
            "mutation ($i: EditCommentInput!) { editComment(input: $i) { errors { code } } }",
            {"i": {"commentId": mine, "body": "first"}},
        )
        edited = (await asyncio.wait_for(ws.next_data(operation), 10))["commentUpdated"]
        await liker.query(
            "mutation ($i: CommentIdInput!) { likeComment(input: $i) { errors { code } } }",
            {"i": {"commentId": mine}},
        )
        liked = (await asyncio.wait_for(ws.next_data(operation), 10))["commentUpdated"]
    await liker.http.aclose()
    assert (edited["id"], edited["body"], edited["likeCount"]) == (mine, "first", 0)
    assert edited["editedAt"] is not None
    assert (liked["id"], liked["likeCount"]) == (mine, 1)
    assert liked["viewerHasLiked"] is True  # the subscriber is the liker: read as its own viewer


async def test_a_stalled_subscriber_is_cut_off_and_others_keep_receiving(
    live: LiveServer, poster: Poster
) -> None:
    thread_id, _ = await demo_ids(poster)
    broker = live.app.state.broker
    # A client that stops reading: small socket buffers, no compression, room for one message.
    host, port = live.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    async with (
        GraphQLWebSocket.connect(
            live.ws_url, sock=sock, compression=None, max_size=None, max_queue=1
        ) as stalled,
        GraphQLWebSocket.connect(live.ws_url) as reader,
    ):
        stalled_operation = await stalled.subscribe(ADDED, {"thread": thread_id})
        operation = await reader.subscribe(ADDED, {"thread": thread_id})
        await until(lambda: broker.subscriber_count() == 2)
        assert broker.subscriber_count() == 2
        posted: list[str] = []
        received: list[str] = []
        for _ in range(400):  # the stalled one never reads; the other reads every event
            posted.append(await poster.add(secrets.token_urlsafe(6_000)))
            received.append(
                (await asyncio.wait_for(reader.next_data(operation), 10))["commentAdded"]["id"]
            )
            if broker.subscriber_count() == 1:
                break
        assert broker.subscriber_count() == 1, "the stalled subscriber was never cut off"
        assert received == posted
        after = await poster.add("still flowing")
        assert (await asyncio.wait_for(reader.next_data(operation), 10))["commentAdded"][
            "id"
        ] == after

        stalled_got = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = await asyncio.wait_for(stalled.receive(), 30)
                assert message.get("id") == stalled_operation
                stalled_got += 1
        assert stalled_got < len(posted)
        assert closed.value.rcvd is None or closed.value.rcvd.code in (1011, 1013)


async def test_subscribing_and_leaving_a_thousand_times_leaves_nothing(
    live: LiveServer, poster: Poster
) -> None:
    thread_id, _ = await demo_ids(poster)
    broker = live.app.state.broker
    baseline = len(asyncio.all_tasks())
    async with GraphQLWebSocket.connect(live.ws_url) as ws:
        for _ in range(1_000):
            operation = await ws.subscribe(ADDED, {"thread": thread_id})
            await ws.complete(operation)
        last = await ws.subscribe(ADDED, {"thread": thread_id})
        await until(lambda: broker.subscriber_count() == 1)
        reply = await poster.add("after the churn")
        assert (await asyncio.wait_for(ws.next_data(last), 10))["commentAdded"]["id"] == reply
        for _ in range(3):  # sockets dropped with subscriptions still open
            async with GraphQLWebSocket.connect(live.ws_url) as dropped:
                await dropped.subscribe(ADDED, {"thread": thread_id})
                await dropped.subscribe(UPDATED, {"thread": thread_id})
                await asyncio.sleep(0.05)
    await until(lambda: broker.subscriber_count() == 0 and len(asyncio.all_tasks()) <= baseline)
    assert broker.subscriber_count() == 0
    assert len(asyncio.all_tasks()) <= baseline


async def test_a_bad_token_is_refused_and_anonymous_subscribers_are_welcome(
    live: LiveServer,
) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        async with GraphQLWebSocket.connect(live.ws_url, token="not-a-token"):
            pass
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    async with GraphQLWebSocket.connect(live.ws_url) as ws:
        operation = await ws.subscribe(ADDED, {"thread": "nope"})
        message = await asyncio.wait_for(ws.receive(), 10)
    assert message["id"] == operation
    assert message["type"] in ("error", "next")
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert "not a valid id" in errors[0]["message"]
