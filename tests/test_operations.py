"""The example operations in docs/operations, run as a frontend runs them against the demo."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    VariableValues,
    Visitor,
    parse,
    print_ast,
    validate,
    visit,
)

from schema import schema
from schema.limits import NodeCounter
from server import auth
from server.settings import Settings
from tests.live import GraphQLWebSocket, LiveServer, live_server
from tests.services import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from graphql import DefinitionNode, FragmentSpreadNode, Node

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations"
NAMES = sorted(p.stem for p in OPERATIONS.glob("*.graphql") if p.stem != "fragments")
_IMPORT = re.compile(r'^#import "(.+)"$', re.MULTILINE)
MAX_NODES = Settings().max_nodes


def definitions(path: Path) -> list[DefinitionNode]:
    """A file's definitions and those of the files it imports."""
    text = path.read_text("utf-8")
    found = list(parse(text).definitions)
    for imported in _IMPORT.findall(text):
        found += definitions(path.parent / imported)
    return found


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.names.append(node.name.value)


def spreads(node: Node) -> list[str]:
    visitor = _Spreads()
    visit(node, visitor)
    return visitor.names


def document(name: str) -> str:
    """The operation of `name`.graphql with the fragments it spreads, as a client sends it."""
    found = definitions(OPERATIONS / f"{name}.graphql")
    [operation] = [d for d in found if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in found if isinstance(d, FragmentDefinitionNode)}
    used: dict[str, FragmentDefinitionNode] = {}
    pending = spreads(operation)
    while pending:
        fragment = fragments[pending.pop()]
        if fragment.name.value not in used:
            used[fragment.name.value] = fragment
            pending += spreads(fragment)
    return print_ast(DocumentNode(definitions=(operation, *used.values())))


def token(sub: str = "reader", name: str = "Rea Der") -> str:
    return auth.mint(SECRET, sub=sub, name=name)


# -- the documents -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_each_operation_validates_within_the_node_limit(name: str) -> None:
    parsed = parse(document(name))
    assert validate(schema._schema, parsed) == []
    operation = parsed.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    assert operation.name is not None
    assert operation.name.value == name, "a file holds the operation it is named after"
    worst = NodeCounter(schema._schema, parsed, VariableValues({}, {"first": 100}))
    assert worst.operation(operation) <= MAX_NODES


def test_every_shared_fragment_is_used() -> None:
    shared = {
        d.name.value
        for d in definitions(OPERATIONS / "fragments.graphql")
        if isinstance(d, FragmentDefinitionNode)
    }
    used = {n for name in NAMES for n in spreads(parse(document(name)))}
    assert shared <= used


# -- against the demo thread, over HTTP and the WebSocket --------------------------------------


@pytest.fixture
async def live(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    settings = Settings(
        database_url=database_url, jwt_secret=SECRET, data_dir=str(tmp_path), rate_limits=False
    )
    async with live_server(settings) as server:
        yield server


class Frontend:
    """Sends the operations as a page does, with or without the reader's token."""

    def __init__(self, live: LiveServer, as_token: str | None = None) -> None:
        headers = {"authorization": f"Bearer {as_token}"} if as_token else {}
        self.http = httpx.AsyncClient(base_url=live.url, headers=headers)
        self.sent: set[str] = set()

    async def __call__(self, name: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": document(name), "variables": variables}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        for payload in data.values():  # a mutation's refusals come back as data
            if isinstance(payload, dict) and "errors" in payload:
                assert payload["errors"] == [], payload
        self.sent.add(name)
        return data


@pytest.fixture
async def frontends(live: LiveServer) -> AsyncIterator[tuple[Frontend, Frontend]]:
    anonymous, reader = Frontend(live), Frontend(live, token())
    yield anonymous, reader
    await anonymous.http.aclose()
    await reader.http.aclose()


async def test_queries_and_mutations_over_http(frontends: tuple[Frontend, Frontend]) -> None:
    anonymous, reader = frontends
    assert await anonymous("Viewer") == {"viewer": None}
    viewer = (await reader("Viewer"))["viewer"]
    assert viewer["name"] == "Rea Der"
    assert viewer["avatarUrl"].endswith(".svg")

    page = (await anonymous("ThreadPage", key="demo"))["thread"]
    assert (page["key"], page["commentCount"]) == ("demo", 28)
    top = page["comments"]["nodes"]
    assert len(top) == page["comments"]["totalCount"] == 17
    assert top[0]["author"]["name"] == "Corie Feiner"
    assert top[0]["excerpt"]["text"].startswith('"I like to say my psoas')
    second = await anonymous("ThreadPage", key="demo", first=5)
    assert len(second["thread"]["comments"]["nodes"]) == 5
    cursor = second["thread"]["comments"]["pageInfo"]["endCursor"]
    following = await anonymous("ThreadPage", key="demo", first=5, after=cursor)
    assert following["thread"]["comments"]["nodes"][0]["id"] == top[5]["id"]

    added = await reader("AddComment", input={"threadKey": "demo", "body": "Saved *this*."})
    comment = added["addComment"]["comment"]
    assert (comment["bodyHtml"], comment["viewerCanEdit"]) == ("<p>Saved <em>this</em>.</p>", True)
    assert comment["thread"]["commentCount"] == 29
    replies = []
    for n in (1, 2):
        reply = await reader("AddComment", input={"parentId": comment["id"], "body": f"Me {n}."})
        replies.append(reply["addComment"]["comment"]["id"])
        assert reply["addComment"]["comment"]["parent"] == {
            "id": comment["id"],
            "replyCount": n,
            "descendantCount": n,
        }

    shown = (await anonymous("LoadMoreReplies", commentId=comment["id"], first=1))["comment"]
    assert [r["id"] for r in shown["replies"]["nodes"]] == replies[:1]
    after = shown["replies"]["pageInfo"]["endCursor"]
    more = await anonymous("LoadMoreReplies", commentId=comment["id"], after=after)
    assert [r["id"] for r in more["comment"]["replies"]["nodes"]] == replies[1:]
    assert more["comment"]["replies"]["pageInfo"]["hasNextPage"] is False

    edited = await reader("EditComment", commentId=comment["id"], body="Saved *this* one.")
    assert edited["editComment"]["comment"]["editedAt"] is not None
    liked = await reader("LikeComment", commentId=top[0]["id"])
    assert liked["likeComment"]["comment"]["likeCount"] == top[0]["likeCount"] + 1
    assert liked["likeComment"]["comment"]["viewerHasLiked"] is True
    unliked = await reader("UnlikeComment", commentId=top[0]["id"])
    assert unliked["unlikeComment"]["comment"]["likeCount"] == top[0]["likeCount"]
    deleted = await reader("DeleteComment", commentId=comment["id"])
    assert deleted["deleteComment"]["comment"]["state"] == "DELETED"
    assert deleted["deleteComment"]["comment"]["author"] is None

    subscriptions = {"CommentAdded", "CommentUpdated"}
    assert anonymous.sent | reader.sent == set(NAMES) - subscriptions


async def test_subscriptions_over_the_websocket(
    live: LiveServer, frontends: tuple[Frontend, Frontend]
) -> None:
    _, reader = frontends
    thread_id = (await reader("ThreadPage", key="demo", first=1))["thread"]["id"]
    async with GraphQLWebSocket.connect(live.ws_url, token("watcher", "Wat Cher")) as ws:
        added = await ws.subscribe(document("CommentAdded"), {"threadId": thread_id})
        updated = await ws.subscribe(document("CommentUpdated"), {"threadId": thread_id})
        for _ in range(500):
            if live.app.state.broker.subscriber_count() == 2:
                break
            await asyncio.sleep(0.01)

        posted = await reader("AddComment", input={"threadKey": "demo", "body": "Live!"})
        comment_id = posted["addComment"]["comment"]["id"]
        arrived = (await asyncio.wait_for(ws.next_data(added), 10))["commentAdded"]
        assert (arrived["id"], arrived["bodyHtml"], arrived["parent"]) == (
            comment_id,
            "<p>Live!</p>",
            None,
        )
        assert arrived["viewerCanEdit"] is False, "the watcher sees it as the watcher"

        await reader("LikeComment", commentId=comment_id)
        changed = (await asyncio.wait_for(ws.next_data(updated), 10))["commentUpdated"]
        assert (changed["id"], changed["likeCount"], changed["viewerHasLiked"]) == (
            comment_id,
            1,
            False,
        )
