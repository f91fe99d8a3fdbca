"""Request limits: just under passes, just over is refused before any SQL runs."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from graphql import OperationDefinitionNode, get_variable_values, parse
from websockets.exceptions import ConnectionClosed

from schema import schema as threadql_schema
from server import auth
from server.app import create_app
from server.settings import Settings
from tests.live import GraphQLWebSocket, LiveServer, live_server
from tests.services import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from starlette.applications import Starlette

GRAPHQL_RESPONSE = "application/graphql-response+json"


class Client:
    """Requests to one app, with the SQL statements each one ran."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http

    async def post(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> tuple[httpx.Response, int]:
        before = self.app.state.storage.statements
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"accept": GRAPHQL_RESPONSE},
        )
        return response, self.app.state.storage.statements - before

    async def passes(self, query: str, variables: dict[str, Any] | None = None) -> None:
        response, _ = await self.post(query, variables)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.json()

    async def refused(
        self, query: str, message: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response, statements = await self.post(query, variables)
        assert response.status_code == 400, response.text
        body: dict[str, Any] = response.json()
        assert "data" not in body
        assert message in body["errors"][0]["message"], body
        assert statements == 0, "a refused query ran SQL"
        return body


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=str(tmp_path))


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Client]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield Client(app, http)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with serving(settings) as c:
        yield c


def replies(first: int, levels: int, top: int) -> str:
    selection = "nodes { id }"
    for _ in range(levels):
        selection = f"nodes {{ id replies(first: {first}) {{ {selection} }} }}"
    return f'{{ thread(key: "demo") {{ comments(first: {top}) {{ {selection} }} }} }}'


async def test_node_limit(client: Client) -> None:
    await client.passes(replies(99, 1, top=100))  # 100 + 100 x 99 = 10,000
    body = await client.refused(replies(100, 1, top=100), "up to 10,100 nodes")
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_LIMIT",
        "nodes": 10_100,
        "maxNodes": 10_000,
    }
    # Variables count, and so do defaults: replies come 10 at a time unless asked otherwise.
    two = 'query ($n: Int) { thread(key: "demo") { comments(first: $n) { nodes { replies { nodes { id } } } } } }'
    await client.passes(two, {"n": 100})  # 100 + 1,000
    three = 'query ($n: Int) { thread(key: "demo") { comments(first: $n) { nodes { replies { nodes { replies { nodes { id } } } } } } } }'
    await client.refused(three, "up to 11,100 nodes", {"n": 100})
    await client.refused(
        "{ threads(first: 100) { nodes { comments(first: 100) { nodes { id } } } } }",
        "up to 10,100 nodes",
    )
    await client.refused(
        "query ($n: Int) { threads(first: $n) { nodes { comments(first: 100) { nodes { id } } } } }",
        "up to 10,100 nodes",
        {"n": 100},
    )
    fragment = "fragment R on Comment { replies(first: 100) { nodes { id } } }"
    await client.refused(
        '{ thread(key: "demo") { comments(first: 100) { nodes { ...R } } } } ' + fragment,
        "up to 10,100 nodes",
    )


# Each counted as its resolvers read `first`: given, a variable, a variable's default, the
# field's default, and for null the resolver's own fallback (20 comments, 10 replies, 20 threads).
COUNTED = [
    ('{ thread(key: "demo") { comments { nodes { replies { nodes { id } } } } } }', {}, 220),
    (
        '{ thread(key: "demo") { comments(first: null) { nodes { replies(first: null) { nodes { id } } } } } }',
        {},
        220,
    ),
    (
        'query ($f: Int = 100) { thread(key: "demo") { comments(first: $f) { totalCount } } }',
        {},
        100,
    ),
    (
        'query ($f: Int = 100) { thread(key: "demo") { comments(first: $f) { totalCount } } }',
        {"f": None},
        20,
    ),
    (
        'query ($f: Int = 100) { thread(key: "demo") { comments(first: $f) { totalCount } } }',
        {"f": 7},
        7,
    ),
    ('query ($f: Int) { thread(key: "demo") { comments(first: $f) { totalCount } } }', {}, 20),
    ("{ threads(first: null) { nodes { comments(first: null) { nodes { id } } } } }", {}, 420),
    (
        'query ($more: Boolean!) { thread(key: "demo") { comments(first: 5) { nodes { id } }'
        " more: comments(first: 100) @include(if: $more) { nodes { id } } } }",
        {"more": False},
        5,
    ),
    (
        '{ node(id: "VGhyZWFkOjE") { ... on Thread { comments(first: null) { totalCount } } } }',
        {},
        20,
    ),
    (
        'query ($f: Int = 100) { thread(key: "demo") { comments { nodes { ...C } } } }'
        " fragment C on Comment { thread { comments(first: $f) { nodes { replies(first: null) { totalCount } } } } }",
        {},
        20 + 20 * 100 + 20 * 100 * 10,
    ),
]


@pytest.mark.parametrize(("query", "variables", "nodes"), COUNTED)
async def test_node_count_uses_the_first_the_resolvers_get(
    settings: Settings, query: str, variables: dict[str, Any], nodes: int
) -> None:
    async with serving(Settings(**{**settings.__dict__, "max_nodes": 1})) as client:
        body = await client.refused(query, f"up to {nodes:,} nodes", variables)
    assert body["errors"][0]["extensions"]["nodes"] == nodes


def cycles(aliases: int) -> str:
    """The outside attack: aliases, and thread > comments > nodes > thread cycles whose `first`
    is null or a variable left at its default."""
    cycle = "thread { comments(first: null) { nodes { thread { comments(first: $f) { nodes { id body } } } } } }"
    fields = " ".join(
        f'a{i}: thread(key: "demo") {{ comments {{ nodes {{ {cycle} }} }} }}'
        for i in range(aliases)
    )
    return f"query ($f: Int = 100) {{ {fields} }}"


async def test_null_and_defaulted_first_cannot_bypass_the_node_limit(client: Client) -> None:
    per_alias = 20 + 20 * 20 + 20 * 20 * 100
    body = await client.refused(cycles(15), f"up to {15 * per_alias:,} nodes")
    assert body["errors"][0]["extensions"]["code"] == "QUERY_LIMIT"
    await client.refused(cycles(1), f"up to {per_alias:,} nodes", {"f": 100})
    await client.refused(cycles(2), f"up to {2 * (20 + 400 + 8_000):,} nodes", {"f": None})


async def test_bad_variables_and_huge_counts_get_clear_errors_over_post_and_get(
    client: Client,
) -> None:
    query = 'query ($n: Int) { thread(key: "demo") { comments(first: $n) { totalCount } } }'
    operation = parse(query).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    huge = " ".join(["nodes { replies(first: 2147483647) {"] * 2)
    nested = f'{{ thread(key: "demo") {{ comments(first: 2147483647) {{ {huge} totalCount }} }} }} }} }} }} }}'
    bad: list[dict[str, Any]] = [{"n": "x"}, {"n": [1]}, {"n": 1e300}]
    for variables in bad:
        # graphql-core's own answer to these variables, as its execution gives it
        expected = get_variable_values(
            threadql_schema._schema, operation.variable_definitions or (), variables
        )
        assert isinstance(expected, list)
        for response in [
            (await client.post(query, variables))[0],
            await client.http.get(
                "/graphql",
                params={"query": query, "variables": json.dumps(variables)},
                headers={"accept": GRAPHQL_RESPONSE},
            ),
        ]:
            assert response.status_code == 400, response.text
            assert [e["message"] for e in response.json()["errors"]] == [
                e.message for e in expected
            ]
    for response in [
        (await client.post(nested))[0],
        await client.http.get(
            "/graphql", params={"query": nested}, headers={"accept": GRAPHQL_RESPONSE}
        ),
    ]:
        assert response.status_code == 400, response.text
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "QUERY_LIMIT"
        assert 10_000 < error["extensions"]["nodes"] <= 2**53 - 1  # exact in every JSON reader
        assert "int()" not in response.text


async def test_depth_limit_fits_the_demo_thread(settings: Settings) -> None:
    # thread > comments > nodes > (replies > nodes) x levels > id: depth 3 + 2 x levels
    async with serving(settings) as client:
        await client.passes(replies(2, 10, top=2))  # depth 23 of 24
        await client.refused(replies(2, 11, top=2), "exceeds maximum operation depth of 24")
    async with serving(Settings(**{**settings.__dict__, "max_query_depth": 9})) as client:
        await client.passes(replies(5, 3, top=20))  # the demo thread's full nesting
        await client.refused(replies(5, 4, top=20), "exceeds maximum operation depth of 9")


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(count)) + " }"


async def test_alias_limit(client: Client) -> None:
    await client.passes(aliased(15))
    await client.refused(aliased(16), "aliases")


async def test_token_limit(client: Client) -> None:
    names = ["id", "title", "key", "url", "locked", "createdAt", "commentCount"]

    def query(fields: int) -> str:  # `{ thread ( key : "demo" ) { … } }` is 10 tokens
        return '{ thread(key: "demo") { ' + " ".join(names[i % 7] for i in range(fields)) + " } }"

    await client.passes(query(990))
    await client.refused(query(991), "more than 1000 tokens")


async def test_directive_limit(client: Client) -> None:
    def query(count: int) -> str:
        return '{ thread(key: "demo") { ' + "id @include(if: true) " * count + "} }"

    await client.passes(query(50))
    await client.refused(query(51), "more than 50 directives")


async def test_document_and_body_size(settings: Settings) -> None:
    limits = {"max_document_bytes": 200, "max_request_bytes": 400, "max_tokens": 10_000}
    async with serving(Settings(**{**settings.__dict__, **limits})) as client:
        query = "{ viewer { id } }"
        padded = query + " " * (200 - len(query))
        await client.passes(padded)
        response, statements = await client.post(padded + " ")
        assert (response.status_code, statements) == (413, 0)
        assert "longer than 200 bytes" in response.json()["errors"][0]["message"]
        big = b'{"query": "{ viewer { id } }", "variables": {"x": "' + b"x" * 400 + b'"}}'
        response = await client.http.post(
            "/graphql", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert "larger than 400 bytes" in response.json()["errors"][0]["message"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            yield big[:200]
            yield big[200:]

        response = await client.http.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        await client.passes(query)


async def test_a_body_that_trickles_in_is_cut_off(settings: Settings) -> None:
    """A client that sends its headers and then a body too slowly holds nothing for long."""
    slow = Settings(**{**settings.__dict__, "request_body_timeout": 1})
    async with live_server(slow) as server:
        host, port = server.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = b'{"query": "{ viewer { id } }"}'
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: threadql.test\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:5]
        )
        await writer.drain()
        # To the end: the server closes the connection (or the test fails after 30 s).
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        head, _, text = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer
        assert b"took longer than 1 s" in text
        async with httpx.AsyncClient(base_url=server.url) as http:  # others are served
            response = await http.post("/graphql", json={"query": "{ viewer { id } }"})
            assert response.json() == {"data": {"viewer": None}}


# Each mistake graphql-core answers with "Did you mean", in each of its places.
MISTAKES: list[tuple[str, dict[str, Any]]] = [
    ('{ thred(key: "demo") { id } }', {}),  # a field
    ('{ node(id: "VGhyZWFkOjE") { ... on Threa { id } } }', {}),  # a type
    ('{ thread(key: "demo") { comments(firts: 1) { totalCount } } }', {}),  # an argument
    ('{ thread(key: "demo") { comments(orderBy: TOPP) { totalCount } } }', {}),  # an enum value
    (
        'query ($o: CommentOrder) { thread(key: "demo") { comments(orderBy: $o) { totalCount } } }',
        {"o": "TOPP"},
    ),  # an enum value in a variable
    ("query ($o: CommentOrdr) { viewer { id } }", {}),  # a variable's type
    (
        "mutation ($i: EditCommentInput!) { editComment(input: $i) { errors { code } } }",
        {"i": {"commentId": "x", "bodi": "x"}},
    ),  # an input field in a variable
]


async def test_introspection_and_suggestions_only_in_development(settings: Settings) -> None:
    introspection = "{ __schema { queryType { name } } }"
    async with serving(settings) as client:
        await client.passes(introspection)
        for query, variables in MISTAKES:
            body = await client.refused(query, "", variables)
            assert "Did you mean" in json.dumps(body), body
    async with serving(Settings(**{**settings.__dict__, "env": "production"})) as client:
        await client.refused(introspection, "introspection")
        for query, variables in MISTAKES:
            body = await client.refused(query, "", variables)
            assert "Did you mean" not in json.dumps(body), body
        await client.passes('{ thread(key: "demo") { id } }')


async def test_batched_requests_are_refused(client: Client) -> None:
    response = await client.http.post("/graphql", json=[{"query": "{ viewer { id } }"}] * 2)
    assert response.status_code == 400
    assert "Batching is not enabled" in response.json()["errors"][0]["message"]


async def test_unexpected_errors_are_masked_with_a_request_id(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    await client.app.state.storage.close()  # every read now fails inside the server
    with caplog.at_level(logging.ERROR, logger="threadql.errors"):
        response, _ = await client.post('{ thread(key: "demo") { id } }')
    await client.app.state.storage.open()
    error = response.json()["errors"][0]
    assert error["message"] == "Unexpected error."
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    request_id = error["extensions"]["requestId"]
    assert response.headers["x-request-id"] == request_id
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None, "the log keeps the traceback"


async def test_graphiql_page_has_a_content_security_policy(client: Client) -> None:
    response = await client.http.get("/graphql", headers={"accept": "text/html"})
    policy = response.headers["content-security-policy"]
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in response.text
    assert "<script>" not in response.text
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_websocket_limits(settings: Settings) -> None:
    limits = {"max_operations": 2, "max_message_bytes": 2_000}
    async with live_server(Settings(**{**settings.__dict__, **limits})) as live:
        subscription = 'subscription { commentUpdated(threadId: "VGhyZWFkOjE") { id } }'
        async with GraphQLWebSocket.connect(live.ws_url) as ws:
            await ws.subscribe(subscription)
            await ws.subscribe(subscription)
            third = await ws.subscribe(subscription)
            message = await asyncio.wait_for(ws.receive(), 10)
            assert (message["id"], message["type"]) == (third, "error")
            assert "Subscription limit reached" in message["payload"][0]["message"]
        async with GraphQLWebSocket.connect(live.ws_url) as ws:
            await ws.send({"type": "ping", "payload": {"x": "x" * 3_000}})
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.receive(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009


THREAD = "VGhyZWFkOjE"  # the demo thread's id


def over_each_limit(leaf: str) -> list[tuple[str, str]]:
    """An operation over each limit of the default settings, and words of its refusal.
    `leaf` is a field added to each subscription's selection."""
    added = f'commentAdded(threadId: "{THREAD}") {{ {leaf}'
    nested = "id"
    for _ in range(12):  # depth 25; 8,190 nodes
        nested = f"id replies(first: 2) {{ nodes {{ {nested} }} }}"
    cycle = "thread { comments { nodes { thread { comments(first: $f) { nodes { thread { comments(first: null) { totalCount } } } } } } } }"
    return [
        (
            f"subscription {{ {added} thread {{ comments(first: 100) {{ nodes {{ replies(first: 100) {{ totalCount }} }} }} }} }} }}",
            "up to 10,100 nodes",
        ),
        (f"subscription ($f: Int = 100) {{ {added} {cycle} }} }}", "up to 42,020 nodes"),
        (
            'query { thread(key: "demo") { comments(first: 100) { nodes { replies(first: 100) { totalCount } } } } }',
            "up to 10,100 nodes",
        ),
        (f"subscription {{ {added} {nested} }} }}", "exceeds maximum operation depth of 24"),
        (
            f"subscription {{ {added} " + " ".join(f"a{i}: id" for i in range(16)) + " } }",
            "aliases",
        ),
        (f"subscription {{ {added} " + "id @include(if: true) " * 51 + "} }", "50 directives"),
        (f"subscription {{ {added} id }} }}" + " " * 16_384, "longer than 16384 bytes"),
    ]


@pytest.mark.parametrize("signed_in", [False, True], ids=["shared", "its-own"])
async def test_every_limit_holds_on_the_websocket(settings: Settings, signed_in: bool) -> None:
    """Anonymous subscribers share one execution (server/fanout.py); a signed-in one reading
    a viewer field takes Strawberry's own path."""
    settings = Settings(**{**settings.__dict__, "jwt_secret": SECRET})
    token = auth.mint(SECRET, sub="reader", name="Rea Der") if signed_in else None
    async with (
        live_server(settings) as live,
        GraphQLWebSocket.connect(live.ws_url, token) as ws,
    ):
        statements = live.app.state.storage.statements
        leaf = "viewerHasLiked" if signed_in else ""
        for query, refusal in over_each_limit(leaf):
            operation = await ws.subscribe(query)
            message = await asyncio.wait_for(ws.receive(), 10)
            assert (message["id"], message["type"]) == (operation, "error"), (refusal, message)
            assert refusal in message["payload"][0]["message"], message
        assert live.app.state.storage.statements == statements, "a refused operation ran SQL"
        operation = await ws.subscribe(
            f'subscription {{ commentAdded(threadId: "{THREAD}") {{ body {leaf} }} }}'
        )
        await until_subscribed(live)
        async with httpx.AsyncClient(base_url=live.url) as http:
            response = await http.post(
                "/graphql",
                json={
                    "query": ADD,
                    "variables": {"input": {"threadKey": "demo", "body": "Still here"}},
                },
                headers={"authorization": f"Bearer {auth.mint(SECRET, sub='poster', name='Pat')}"},
            )
            assert response.json()["data"]["addComment"]["errors"] == []
        data = await asyncio.wait_for(ws.next_data(operation), 10)
        assert data["commentAdded"]["body"] == "Still here"
        # A document that does not parse ends the socket, as graphql-transport-ws says.
        await ws.subscribe(
            f'subscription {{ commentAdded(threadId: "{THREAD}") {{ {leaf} ' + "id " * 1_000 + "} }"
        )
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.receive(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400
        assert "more than 1000 tokens" in closed.value.rcvd.reason


ADD = "mutation ($input: AddCommentInput!) { addComment(input: $input) { errors { code } } }"


async def until_subscribed(live: LiveServer) -> None:
    for _ in range(500):
        if live.app.state.broker.subscriber_count():
            return
        await asyncio.sleep(0.02)


def _nested_fragments() -> str:
    return (
        '{ thread(key: "demo") { comments { nodes { ...A } } } }'
        " fragment A on Comment { id replies { nodes { ...B } } }"
        " fragment B on Comment { id replies { nodes { ...A } } }"
    )


ATTACKS: list[tuple[str, str | bytes, dict[str, str]]] = [
    ("deep nesting", replies(1, 40, top=1), {}),
    (
        "alias overloading",
        "{ " + " ".join(f"a{i}: threads {{ totalCount }}" for i in range(500)) + " }",
        {},
    ),
    ("field duplication", '{ thread(key: "demo") { ' + "id " * 5_000 + "} }", {}),
    ("circular fragments", _nested_fragments(), {}),
    ("first multiplied", replies(100, 4, top=100), {}),
    ("directive overloading", "{ viewer { id " + "@skip(if: false) " * 1_000 + "} }", {}),
    ("invalid JSON", b'{"query": ', {"content-type": "application/json"}),
    ("invalid UTF-8", b'{"query": "\xc3\x28"}', {"content-type": "application/json"}),
    ("NUL bytes", "{ viewer { id } }\x00", {}),
    (
        "form-encoded",
        b"query=%7B+viewer+%7B+id+%7D+%7D",
        {"content-type": "application/x-www-form-urlencoded"},
    ),
    (
        "oversize body",
        b'{"query": "' + b" " * 100_000 + b'{ viewer { id } }"}',
        {"content-type": "application/json"},
    ),
]


@pytest.mark.parametrize(("query", "headers"), [pytest.param(q, h, id=n) for n, q, h in ATTACKS])
async def test_attack_corpus_is_refused_and_the_server_carries_on(
    client: Client, query: str | bytes, headers: dict[str, str]
) -> None:
    before = client.app.state.storage.statements
    if isinstance(query, bytes):
        response = await client.http.post("/graphql", content=query, headers=headers)
    else:
        response = await client.http.post("/graphql", json={"query": query})
    assert response.status_code < 500, response.text[:300]
    assert response.status_code >= 400 or response.json().get("errors"), response.text[:300]
    assert "Traceback" not in response.text
    assert client.app.state.storage.statements == before, "an attack ran SQL"
    await client.passes('{ thread(key: "demo") { commentCount } }')


async def test_get_mutations_and_production_introspection_are_refused(settings: Settings) -> None:
    async with serving(Settings(**{**settings.__dict__, "env": "production"})) as client:
        response = await client.http.get("/graphql", params={"query": "mutation { lockThread }"})
        assert response.status_code == 405
        introspection = await client.http.post(
            "/graphql", json={"query": '{ __type(name: "Comment") { name } }'}
        )
        assert introspection.json()["errors"]
        await client.passes('{ thread(key: "demo") { commentCount } }')
