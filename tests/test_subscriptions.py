"""Live updates over a real WebSocket to a real server."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections import Counter
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from strawberry.extensions import SchemaExtension
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from resolvers import ids
from resolvers import live as live_events
from server import auth
from server.settings import Settings
from tests.live import GraphQLWebSocket, LiveServer, live_server, receiving
from tests.services import SECRET
from tests.variants import add_salutation

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from graphql import GraphQLResolveInfo

    from db.rows import CommentRow
    from resolvers.context import Context
    from server.broker import Event

QUEUE = 4

ADDED = """subscription ($thread: ID!, $ancestor: ID) {
  commentAdded(threadId: $thread, ancestorId: $ancestor) {
    id depth body author { name } parent { id } viewerCanEdit
  }
}"""
UPDATED = """subscription ($thread: ID!) {
  commentUpdated(threadId: $thread) { id body editedAt likeCount viewerHasLiked state }
}"""
# Nothing in it depends on the viewer: every subscriber may share one execution of it.
SHARED = """subscription Added($thread: ID!) {
  commentAdded(threadId: $thread) { id body bodyHtml author { name avatarUrl } parent { id } }
}"""
EDIT = """mutation ($i: EditCommentInput!) { editComment(input: $i) { errors { code } } }"""
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


@pytest.fixture
def executions(live: LiveServer) -> Counter[str]:
    """How many times each root field was resolved: a subscription's, once per execution."""
    counts: Counter[str] = Counter()

    class CountRootFields(SchemaExtension):
        def resolve(
            self,
            _next: Callable[..., object],
            root: object,
            info: GraphQLResolveInfo[Any],
            *args: str,
            **kwargs: Any,
        ) -> object:
            if info.path.prev is None:
                counts[info.field_name] += 1
            return _next(root, info, *args, **kwargs)

    schema = live.app.state.fanout.schema
    schema.extensions = (*schema.extensions, CountRootFields)
    return counts


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


@pytest.mark.parametrize("signed_in", [True, False], ids=["its-own", "shared"])
async def test_ancestor_id_filters_to_the_subtree_at_any_depth(
    live: LiveServer, poster: Poster, signed_in: bool
) -> None:
    thread_id, top = await demo_ids(poster)
    child = await poster.add("child", parentId=top[1])
    async with GraphQLWebSocket.connect(live.ws_url, token() if signed_in else None) as ws:
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


@pytest.mark.parametrize(
    ("signed_in", "subscribed", "after_cut_off"),
    [(False, (1, 2), (1, 1)), (True, (2, 0), (1, 0))],
    ids=["shared", "each-its-own"],
)
async def test_a_stalled_subscriber_is_cut_off_and_others_keep_receiving(
    live: LiveServer,
    poster: Poster,
    signed_in: bool,
    subscribed: tuple[int, int],
    after_cut_off: tuple[int, int],
) -> None:
    """Anonymous, both share one execution; signed in, `viewerCanEdit` gives each its own."""
    thread_id, _ = await demo_ids(poster)
    as_token = token() if signed_in else None
    # A client that stops reading: small socket buffers, no compression, room for one message.
    host, port = live.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    async with (
        GraphQLWebSocket.connect(
            live.ws_url, as_token, sock=sock, compression=None, max_size=None, max_queue=1
        ) as stalled,
        GraphQLWebSocket.connect(live.ws_url, as_token) as reader,
    ):
        stalled_operation = await stalled.subscribe(ADDED, {"thread": thread_id})
        operation = await reader.subscribe(ADDED, {"thread": thread_id})
        await until(lambda: receiving(live.app) == subscribed)
        assert receiving(live.app) == subscribed
        posted: list[str] = []
        received: list[str] = []
        for _ in range(400):  # the stalled one never reads; the other reads every event
            posted.append(await poster.add(secrets.token_urlsafe(6_000)))
            received.append(
                (await asyncio.wait_for(reader.next_data(operation), 10))["commentAdded"]["id"]
            )
            if receiving(live.app) == after_cut_off:
                break
        assert receiving(live.app) == after_cut_off, "the stalled subscriber was never cut off"
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


async def test_subscribers_of_one_selection_share_one_execution_per_event(
    live: LiveServer, poster: Poster, executions: Counter[str]
) -> None:
    thread_id, _ = await demo_ids(poster)
    subscribers = 20
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                # Signed in or not, they see the same: no field of SHARED reads the viewer.
                GraphQLWebSocket.connect(live.ws_url, token(f"reader-{n}") if n % 4 else None)
            )
            for n in range(subscribers)
        ]
        operations = [await ws.subscribe(SHARED, {"thread": thread_id}) for ws in sockets]
        await until(lambda: receiving(live.app) == (1, subscribers))
        assert receiving(live.app) == (1, subscribers)
        posted = [await poster.add(f"To all {n}") for n in range(3)]
        payloads = [
            [await asyncio.wait_for(ws.next_data(operation), 10) for _ in posted]
            for ws, operation in zip(sockets, operations, strict=True)
        ]
    assert [data["commentAdded"]["id"] for data in payloads[0]] == posted
    assert payloads[0][0]["commentAdded"]["author"]["name"] == "Pat Poster"
    assert all(received == payloads[0] for received in payloads)
    assert executions["commentAdded"] == len(posted)


async def seen_by_two_viewers_and_two_anonymous(
    live: LiveServer, poster: Poster, tokens: tuple[str, str], selection: str, body: str
) -> tuple[str, list[dict[str, Any]]]:
    """The comment `poster` adds, and `commentAdded` as each of four subscribers got it: two
    signed in with `tokens`, then two anonymous. Each signed-in viewer has an execution of
    its own; the two anonymous share one."""
    thread_id, _ = await demo_ids(poster)
    async with (
        GraphQLWebSocket.connect(live.ws_url, tokens[0]) as first,
        GraphQLWebSocket.connect(live.ws_url, tokens[1]) as second,
        GraphQLWebSocket.connect(live.ws_url) as anonymous,
        GraphQLWebSocket.connect(live.ws_url) as another,
    ):
        sockets = [first, second, anonymous, another]
        operations = [await ws.subscribe(selection, {"thread": thread_id}) for ws in sockets]
        await until(lambda: receiving(live.app) == (3, 2))
        assert receiving(live.app) == (3, 2)
        added = await poster.add(body)
        seen = [
            (await asyncio.wait_for(ws.next_data(operation), 10))["commentAdded"]
            for ws, operation in zip(sockets, operations, strict=True)
        ]
    return added, seen


async def test_a_viewer_dependent_selection_is_read_as_each_signed_in_viewer(
    live: LiveServer, poster: Poster, executions: Counter[str]
) -> None:
    tokens = (token("poster", "Pat Poster"), token())
    mine, seen = await seen_by_two_viewers_and_two_anonymous(
        live, poster, tokens, ADDED, "Mine to edit"
    )
    assert [comment["id"] for comment in seen] == [mine] * 4
    assert [comment["viewerCanEdit"] for comment in seen] == [True, False, False, False]
    assert executions["commentAdded"] == 3


async def test_a_viewer_field_of_any_name_is_read_as_each_signed_in_viewer(
    live: LiveServer, poster: Poster, executions: Counter[str]
) -> None:
    """Whether subscribers share is decided by the fields' marks, not by their names."""
    add_salutation(live.app)
    selection = """subscription ($thread: ID!) {
      commentAdded(threadId: $thread) { id ...Greeted }
    }
    fragment Greeted on Comment { ... on Comment { greeting: salutation } }"""
    tokens = (token("ann", "Ann"), token("ben", "Ben"))
    added, seen = await seen_by_two_viewers_and_two_anonymous(
        live, poster, tokens, selection, "Who reads this?"
    )
    assert [comment["id"] for comment in seen] == [added] * 4
    assert [comment["greeting"] for comment in seen] == ["Hello, Ann", "Hello, Ben", None, None]
    assert executions["commentAdded"] == 3


async def test_sharers_that_leave_do_not_stop_the_others(live: LiveServer, poster: Poster) -> None:
    thread_id, _ = await demo_ids(poster)
    async with GraphQLWebSocket.connect(live.ws_url) as drops:
        # The first starts the shared execution; it leaves first, with its socket.
        await drops.subscribe(SHARED, {"thread": thread_id})
        await until(lambda: receiving(live.app) == (1, 1))
        async with (
            GraphQLWebSocket.connect(live.ws_url) as completes,
            GraphQLWebSocket.connect(live.ws_url) as stays,
        ):
            done = await completes.subscribe(SHARED, {"thread": thread_id})
            kept = await stays.subscribe(SHARED, {"thread": thread_id})
            await until(lambda: receiving(live.app) == (1, 3))
            assert receiving(live.app) == (1, 3)
            await drops.connection.close()
            await completes.complete(done)
            await until(lambda: receiving(live.app) == (1, 1))
            assert receiving(live.app) == (1, 1)
            after = await poster.add("Anyone still here?")
            data = await asyncio.wait_for(stays.next_data(kept), 10)
            assert data["commentAdded"]["id"] == after
    await until(lambda: receiving(live.app) == (0, 0))
    assert receiving(live.app) == (0, 0), "the last to leave ends the shared execution"


async def test_a_shared_execution_that_falls_behind_closes_every_sharer(
    live: LiveServer, poster: Poster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind its broker subscription (or dropped by Redis), a shared execution may have
    missed events: each sharer is closed with 1013; a new subscriber starts afresh."""
    thread_id, _ = await demo_ids(poster)
    held = asyncio.Event()
    read = live_events._committed_row

    async def held_read(context: Context, event: Event) -> CommentRow | None:
        await held.wait()
        return await read(context, event)

    monkeypatch.setattr(live_events, "_committed_row", held_read)
    async with (
        GraphQLWebSocket.connect(live.ws_url) as one,
        GraphQLWebSocket.connect(live.ws_url, token()) as two,
    ):
        for ws in (one, two):
            await ws.subscribe(SHARED, {"thread": thread_id})
        await until(lambda: receiving(live.app) == (1, 2))
        assert receiving(live.app) == (1, 2)
        for n in range(QUEUE + 2):  # the first is held: the rest pile up behind it
            await poster.add(f"pile-up {n}")
        for ws in (one, two):
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.receive(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
    await until(lambda: receiving(live.app) == (0, 0))
    assert receiving(live.app) == (0, 0)

    held.set()
    async with GraphQLWebSocket.connect(live.ws_url) as again:
        operation = await again.subscribe(SHARED, {"thread": thread_id})
        await until(lambda: receiving(live.app) == (1, 1))
        after = await poster.add("after the pile-up")
        data = await asyncio.wait_for(again.next_data(operation), 10)
    assert data["commentAdded"]["id"] == after


async def test_sharers_see_an_edit_after_an_event_as_it_now_is(
    live: LiveServer, poster: Poster, executions: Counter[str]
) -> None:
    thread_id, _ = await demo_ids(poster)
    async with (
        GraphQLWebSocket.connect(live.ws_url) as one,
        GraphQLWebSocket.connect(live.ws_url) as two,
    ):
        sockets = [one, two]
        added = [await ws.subscribe(SHARED, {"thread": thread_id}) for ws in sockets]
        updated = [await ws.subscribe(UPDATED, {"thread": thread_id}) for ws in sockets]
        await until(lambda: receiving(live.app) == (2, 4))
        assert receiving(live.app) == (2, 4)
        mine = await poster.add("frist")
        for ws, operation in zip(sockets, added, strict=True):
            data = await asyncio.wait_for(ws.next_data(operation), 10)
            assert (data["commentAdded"]["id"], data["commentAdded"]["body"]) == (mine, "frist")
        for body in ("first", "first!"):
            await poster.query(EDIT, {"i": {"commentId": mine, "body": body}})
            for ws, operation in zip(sockets, updated, strict=True):
                edited = (await asyncio.wait_for(ws.next_data(operation), 10))["commentUpdated"]
                assert (edited["id"], edited["body"]) == (mine, body)
                assert edited["editedAt"] is not None
    assert (executions["commentAdded"], executions["commentUpdated"]) == (1, 2)


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


async def test_an_operation_name_the_document_lacks_is_said_not_masked(
    live: LiveServer,
) -> None:
    """As a document that does not parse: graphql-transport-ws ends the socket with 4400 and
    the reason, the client's mistake and not an unexpected error of ours."""
    thread = ids.encode("Thread", 1)
    document = (
        f'subscription S {{ commentAdded(threadId: "{thread}") {{ id }} }} query Q {{ __typename }}'
    )
    async with GraphQLWebSocket.connect(live.ws_url) as ws:
        payload = {"query": document, "operationName": "Nope"}
        await ws.send({"id": "1", "type": "subscribe", "payload": payload})
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.receive(), 10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        4400,
        'Unknown operation named "Nope".',
    )


@pytest.mark.parametrize("name", ["authorization", "Authorization", "AUTHORIZATION"])
async def test_the_token_is_found_whatever_the_case_of_its_name(
    live: LiveServer, name: str
) -> None:
    token = auth.mint(SECRET, sub="cased", name="Case Sensitive")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as connection:  # type: ignore[list-item]
        ws = GraphQLWebSocket(connection)
        await ws.send({"type": "connection_init", "payload": {name: f"Bearer {token}"}})
        assert (await ws.receive())["type"] == "connection_ack"
        operation = await ws.subscribe("{ viewer { name } }")
        data = await asyncio.wait_for(ws.next_data(operation), 10)
    assert data == {"viewer": {"name": "Case Sensitive"}}


# Anything about a comment but its viewer's view of it: subscribers may share its execution.
LEAN = "subscription ($thread: ID!) { commentAdded(threadId: $thread) { id body } }"
# `viewerCanEdit` is the viewer's: a signed-in subscriber's execution is its own.
OWN = "subscription ($thread: ID!) { commentAdded(threadId: $thread) { id viewerCanEdit } }"
ADD_OVER_SOCKET = """mutation ($body: String!) {
  addComment(input: {threadKey: "demo", body: $body}) { comment { id } errors { code } }
}"""


def live_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_secret=SECRET,
        data_dir=str(tmp_path),
        rate_limits=False,
        **overrides,
    )


async def refusal(url: str) -> int | None:
    """The close code that refused a connection, or None when it was acknowledged."""
    try:
        async with GraphQLWebSocket.connect(url):
            return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else 1006


async def test_connections_past_the_cap_of_an_address_are_refused_with_4429(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = live_settings(sqlite_url, tmp_path, max_connections_per_address=2)
    async with live_server(settings) as live, GraphQLWebSocket.connect(live.ws_url) as first:
        async with GraphQLWebSocket.connect(live.ws_url):
            with pytest.raises(ConnectionClosed) as closed:
                async with GraphQLWebSocket.connect(live.ws_url):
                    pass
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4429
            assert "2 connections" in closed.value.rcvd.reason
        # The one that left gives its place back once the server has seen it go; the refused
        # one took none.
        refusals: list[int] = []
        while len(refusals) < 100 and (code := await refusal(live.ws_url)) is not None:
            refusals.append(code)
        assert code is None, refusals
        assert set(refusals) <= {4429}
        # The first is still served.
        await first.send({"type": "ping"})
        assert (await asyncio.wait_for(first.receive(), 10))["type"] == "pong"


async def test_operations_past_the_cap_of_an_address_are_refused_across_its_connections(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = live_settings(sqlite_url, tmp_path, max_subscriptions_per_address=3)
    async with live_server(settings) as live:
        poster = Poster(live, token("poster", "Pat Poster"))
        thread_id, _ = await demo_ids(poster)
        async with (
            GraphQLWebSocket.connect(live.ws_url) as one,
            GraphQLWebSocket.connect(live.ws_url) as two,
        ):
            held = [
                (one, await one.subscribe(LEAN, {"thread": thread_id})),
                (one, await one.subscribe(LEAN, {"thread": thread_id})),
                (two, await two.subscribe(LEAN, {"thread": thread_id})),
            ]
            await until(lambda: receiving(live.app) == (1, 3))
            assert receiving(live.app) == (1, 3)
            refused = await two.subscribe(LEAN, {"thread": thread_id})
            message = await asyncio.wait_for(two.receive(), 10)
            assert (message["id"], message["type"]) == (refused, "error")
            assert message["payload"][0]["extensions"]["code"] == "QUERY_LIMIT"
            assert "at most 3 operations" in message["payload"][0]["message"]

            posted = await poster.add("Still three of you")
            for ws, operation in held:
                data = await asyncio.wait_for(ws.next_data(operation), 10)
                assert data["commentAdded"]["id"] == posted

            # Completing one on the first connection makes room on the second.
            await one.complete(held[0][1])
            await until(lambda: receiving(live.app) == (1, 2))
            again = await two.subscribe(LEAN, {"thread": thread_id})
            await until(lambda: receiving(live.app) == (1, 3))
            assert receiving(live.app) == (1, 3)
            after = await poster.add("Room for one more")
            messages = [await asyncio.wait_for(two.receive(), 10) for _ in range(2)]
            assert {m["id"] for m in messages} == {held[2][1], again}
            assert [m["payload"]["data"]["commentAdded"]["id"] for m in messages] == [after] * 2
        await poster.http.aclose()


@pytest.mark.parametrize("signed_in", [False, True], ids=["shared", "each-its-own"])
async def test_requests_are_answered_while_an_event_is_delivered_to_many(
    sqlite_url: str, tmp_path: Path, signed_in: bool
) -> None:
    """One subscriber served per turn of the event loop: a request sent once the first
    subscriber has the event is answered before the last subscriber has it."""
    subscribers, per_socket = 100, 25
    settings = live_settings(sqlite_url, tmp_path, deliveries_per_turn=1)
    async with live_server(settings) as live, AsyncExitStack() as stack:
        poster = Poster(live, token("poster", "Pat Poster"))
        stack.push_async_callback(poster.http.aclose)
        thread_id, _ = await demo_ids(poster)
        sockets = [
            await stack.enter_async_context(
                GraphQLWebSocket.connect(live.ws_url, token(f"r{n}") if signed_in else None)
            )
            for n in range(subscribers // per_socket)
        ]
        for ws in sockets:
            for _ in range(per_socket):
                await ws.subscribe(OWN if signed_in else LEAN, {"thread": thread_id})
        expected = (subscribers, 0) if signed_in else (1, subscribers)
        await until(lambda: receiving(live.app) == expected)
        assert receiving(live.app) == expected

        arrived: list[str] = []
        first = asyncio.Event()

        async def read(ws: GraphQLWebSocket) -> None:
            for _ in range(per_socket):
                message = await ws.receive()
                assert message["type"] == "next", message
                arrived.append(message["payload"]["data"]["commentAdded"]["id"])
                first.set()

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        posted = await poster.add("To a crowd")
        await asyncio.wait_for(first.wait(), 10)
        healthz = await poster.http.get("/healthz")
        arrived_before_the_answer = len(arrived)
        await asyncio.wait_for(asyncio.gather(*readers), 30)

    assert healthz.status_code == 200
    assert arrived == [posted] * subscribers
    assert arrived_before_the_answer < subscribers


async def test_a_socket_loses_its_authority_when_its_token_expires(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Closed with 4401 at `exp`; what it sent, and what it would have received, as the token
    expired is neither run nor sent under that identity."""
    short = auth.mint(SECRET, sub="poster", name="Pat Poster", expires_in=3)
    expires = auth.decode(short, SECRET).expires
    async with live_server(live_settings(sqlite_url, tmp_path)) as live:
        poster = Poster(live, token("poster", "Pat Poster"))
        thread_id, _ = await demo_ids(poster)
        async with (
            GraphQLWebSocket.connect(live.ws_url, short) as expiring,
            GraphQLWebSocket.connect(live.ws_url, token("other", "Oth Er")) as other,
        ):
            watched = await expiring.subscribe(OWN, {"thread": thread_id})
            await until(lambda: receiving(live.app) == (1, 0))
            mine = await poster.add("Mine, while the token holds")
            before = (await asyncio.wait_for(expiring.next_data(watched), 10))["commentAdded"]
            assert before == {"id": mine, "viewerCanEdit": True}

            # Both sockets send just before `exp`; the server reads them after it.
            await asyncio.sleep(expires - 0.05 - time.time())
            with contextlib.suppress(ConnectionClosed):
                await expiring.send(
                    {
                        "id": "late",
                        "type": "subscribe",
                        "payload": {"query": ADD_OVER_SOCKET, "variables": {"body": "Too late"}},
                    }
                )
            await other.send(
                {
                    "id": "theirs",
                    "type": "subscribe",
                    "payload": {"query": ADD_OVER_SOCKET, "variables": {"body": "After exp"}},
                }
            )
            time.sleep(max(0.0, expires + 0.05 - time.time()))  # noqa: ASYNC251 - holds the server too

            theirs = await asyncio.wait_for(other.receive(), 10)
            assert theirs["type"] == "next", theirs
            assert theirs["payload"]["data"]["addComment"]["errors"] == []
            received = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    received.append(await asyncio.wait_for(expiring.receive(), 10))
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401
        assert [m for m in received if m["type"] != "ping"] == []
        data = await poster.query(
            '{ thread(key: "demo") { comments(first: 100, orderBy: NEWEST) { nodes { body } } } }'
        )
        bodies = [node["body"] for node in data["thread"]["comments"]["nodes"]]
        assert "After exp" in bodies
        assert "Too late" not in bodies
        await poster.http.aclose()
