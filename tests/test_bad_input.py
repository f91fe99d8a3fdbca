"""Every argument a client controls: a clear error, the right status, never a 500."""

from __future__ import annotations

import base64
import json
from datetime import UTC
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.extensions import SchemaExtension

from db.rows import format_time
from resolvers import ids
from schema import build_schema

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

    from tests.conftest import GraphQLClient

GRAPHQL_RESPONSE = "application/graphql-response+json"


def forge(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def codes(body: dict[str, Any]) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ thread(id: "123") { key } }', "is not a valid id"),
        ("{ thread(id: 123) { key } }", "is not a valid id"),
        (f'{{ thread(id: "{ids.encode("Comment", 1, 1)}") {{ key }} }}', "not of a Thread"),
        (f'{{ comment(id: "{ids.encode("Thread", 1)}") {{ id }} }}', "not of a Comment"),
        (f'{{ comment(id: "{forge("Comment:1")}") {{ id }} }}', "is not a valid id"),
        (f'{{ node(id: "{forge("Secret:1")}") {{ id }} }}', "is not a valid id"),
        ('{ node(id: "") { id } }', "is not a valid id"),
        ('{ node(id: "%%%") { id } }', "is not a valid id"),
        ("{ thread { key } }", "exactly one of `id` and `key`"),
        (f'{{ thread(id: "{ids.encode("Thread", 1)}", key: "demo") {{ key }} }}', "exactly one"),
        ("{ threads(first: -1) { totalCount } }", "between 0 and 100"),
        ("{ threads(first: 101) { totalCount } }", "between 0 and 100"),
        ('{ thread(key: "demo") { comments(first: -5) { totalCount } } }', "between 0 and 100"),
        ('{ thread(key: "demo") { comments(first: 1000) { totalCount } } }', "between 0 and 100"),
        ('{ thread(key: "demo") { comments(after: "nope") { totalCount } } }', "not a cursor"),
        (
            f'{{ thread(key: "demo") {{ comments(after: "{forge(["NEWEST", "2025", 1])}")'
            " { totalCount } } }",
            "not a cursor",
        ),
        (
            f'{{ thread(key: "demo") {{ comments(orderBy: TOP, after: "{forge(["TOP", "x", "y", 1])}")'
            " { totalCount } } }",
            "not a cursor",
        ),
        (
            f'{{ thread(key: "demo") {{ comments(after: "{forge(["OLDEST", "2025", 2**70])}")'
            " { totalCount } } }",
            "not a cursor",
        ),
        (
            f'{{ threads(after: "{forge(["OLDEST", "2025", 1])}") {{ totalCount }} }}',
            "not a cursor",
        ),
        (
            '{ thread(key: "demo") { comments(first: 1) { nodes { excerpt(maxLength: 0) { text } } } } }',
            "between 1 and 10000",
        ),
    ],
)
async def test_bad_arguments_are_bad_user_input(
    gql: GraphQLClient, query: str, message: str
) -> None:
    body = await gql(query)
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert message in body["errors"][0]["message"]
    assert "data" in body  # a field error: the request executed


@pytest.mark.parametrize(
    "query",
    [
        f'{{ thread(id: "{ids.encode("Thread", 999)}") {{ key }} }}',
        '{ thread(key: "no-such-page") { key } }',
        f'{{ comment(id: "{ids.encode("Comment", 1, 999)}") {{ id }} }}',
        f'{{ comment(id: "{ids.encode("Comment", 999, 1)}") {{ id }} }}',
        f'{{ node(id: "{ids.encode("User", 999)}") {{ id }} }}',
    ],
)
async def test_unknown_ids_are_null_without_error(gql: GraphQLClient, query: str) -> None:
    body = await gql(query)
    assert "errors" not in body
    assert next(iter(body["data"].values())) is None


async def test_a_cursor_from_another_order_is_refused(gql: GraphQLClient) -> None:
    query = """query ($order: CommentOrder, $after: String) {
      thread(key: "demo") { comments(first: 2, orderBy: $order, after: $after) {
        pageInfo { endCursor } } } }"""
    page = await gql.data(query, {"order": "OLDEST"})
    cursor = page["thread"]["comments"]["pageInfo"]["endCursor"]
    body = await gql(query, {"order": "TOP", "after": cursor})
    assert codes(body) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("body", "status_json", "status_graphql"),
    [
        ({"query": "{ thread(key: 1) { key } }"}, 200, 400),
        (
            {"query": '{ thread(key: "demo") { comments(orderBy: SIDEWAYS) { totalCount } } }'},
            200,
            400,
        ),
        ({"query": "{ threads(first: 3000000000) { totalCount } }"}, 200, 400),
        ({"query": '{ threads(first: "ten") { totalCount } }'}, 200, 400),
        ({"query": "{ nothing }"}, 200, 400),
        ({"query": "{ thread(key: "}, 200, 400),
        ({"query": "\x00{ viewer { id } }"}, 200, 400),
        (
            {
                "query": 'query ($o: CommentOrder) { thread(key: "demo") { comments(orderBy: $o) { totalCount } } }',
                "variables": {"o": "SIDEWAYS"},
            },
            200,
            400,
        ),
        (
            {
                "query": "query ($n: Int) { threads(first: $n) { totalCount } }",
                "variables": {"n": "x"},
            },
            200,
            400,
        ),
        ({"query": "query A { viewer { id } }", "operationName": "B"}, 400, 400),
        ({"query": "{ viewer { id } }", "operationName": 5}, 400, 400),
        ({"query": 5}, 400, 400),
        ({}, 400, 400),
        ({"query": "{ viewer { id } }", "variables": [1]}, 400, 400),
        ({"query": "{ viewer { id } }", "extensions": "x"}, 400, 400),
        ([{"query": "{ viewer { id } }"}], 400, 400),
        ({"query": "mutation { addComment }"}, 200, 400),
    ],
)
async def test_request_errors_follow_graphql_over_http(
    client: httpx.AsyncClient, body: Any, status_json: int, status_graphql: int
) -> None:
    for accept, status in (("application/json", status_json), (GRAPHQL_RESPONSE, status_graphql)):
        response = await client.post("/graphql", json=body, headers={"accept": accept})
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith(accept)
        decoded = response.json()
        assert "data" not in decoded, "a request that fails before execution has no data"
        assert decoded["errors"][0]["message"]
        assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"query": "{ viewer { id } }"', "application/json", 400),
        (b'{"query": "\xff\xfe"}', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b'"just a string"', "application/json", 400),
        (b"12", "application/json", 400),
        (b"null", "application/json", 400),
        (b"", "application/json", 400),
        (b"query=%7B+viewer+%7B+id+%7D+%7D", "application/x-www-form-urlencoded", 415),
        (b'{"query": "{ viewer { id } }"}', "text/plain", 415),
        (
            b"--x\r\nContent-Disposition: form-data; name=operations\r\n\r\n{}\r\n--x--",
            "multipart/form-data; boundary=x",
            415,
        ),
        (b'{"query": "{ viewer { id } }"}', "", 415),
    ],
)
async def test_malformed_bodies_are_4xx(
    client: httpx.AsyncClient, content: bytes, content_type: str, status: int
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/graphql", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["message"]
    healthy = await client.post("/graphql", json={"query": "{ viewer { id } }"})
    assert healthy.json() == {"data": {"viewer": None}}


async def test_get_serves_queries_but_not_mutations(client: httpx.AsyncClient) -> None:
    query = await client.get(
        "/graphql",
        params={
            "query": "query ($k: String) { thread(key: $k) { key } }",
            "variables": '{"k": "demo"}',
        },
        headers={"accept": "application/json"},
    )
    assert query.json() == {"data": {"thread": {"key": "demo"}}}
    mutation = await client.get("/graphql", params={"query": "mutation { addComment }"})
    assert mutation.status_code == 405
    assert mutation.headers["allow"] == "POST"
    bad_variables = await client.get(
        "/graphql", params={"query": "{ viewer { id } }", "variables": "[1"}
    )
    assert bad_variables.status_code == 400


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
async def test_a_subscription_over_http_is_sent_to_the_websocket(
    client: httpx.AsyncClient, method: str, accept: str
) -> None:
    document = (
        f'subscription Live {{ commentAdded(threadId: "{ids.encode("Thread", 1)}") {{ id }} }}'
        " query Title { viewer { id } }"
    )
    params = {"query": document, "operationName": "Live"}
    headers = {"accept": accept}
    if method == "GET":
        response = await client.get("/graphql", params=params, headers=headers)
    else:
        response = await client.post("/graphql", json=params, headers=headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    assert "WebSocket" in body["errors"][0]["message"]
    assert codes(body) == [None]
    query = {"query": document, "operationName": "Title"}
    assert (await client.post("/graphql", json=query)).json() == {"data": {"viewer": None}}


async def test_other_methods_and_unacceptable_media(client: httpx.AsyncClient) -> None:
    put = await client.put("/graphql", json={"query": "{ viewer { id } }"})
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, POST"
    csv = await client.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers={"accept": "text/csv"}
    )
    assert csv.status_code == 406


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("{ ...Frag }", "Frag"),
        ('{ thread(key: "demo") { ...F } }', "F"),
        ('{ a: thread(key: "demo") { id } ...X }', "X"),
        ('{ thread(key: "demo") { comments { nodes { ...N } } } }', "N"),
    ],
)
async def test_a_spread_of_a_missing_fragment_is_a_validation_error(
    client: httpx.AsyncClient, query: str, fragment: str
) -> None:
    """The limits' rules measure valid documents only: graphql-core's own error answers."""
    response = await client.post("/graphql", json={"query": query})
    body = response.json()
    assert "data" not in body
    assert [e["message"] for e in body["errors"]] == [f"Unknown fragment '{fragment}'."]


class Failing(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        raise RuntimeError("internal detail: /srv/threadql/secret.py line 12")
        yield  # pragma: no cover


async def test_an_error_of_ours_before_execution_is_masked() -> None:
    schema = build_schema()
    schema.extensions = (*schema.extensions, Failing)
    result = await schema.execute('{ thread(key: "demo") { id } }')
    assert result.errors is not None
    assert [(e.message, (e.extensions or {}).get("code")) for e in result.errors] == [
        ("Unexpected error.", "INTERNAL_SERVER_ERROR")
    ]


# Two pages of the same thread, loaded in one batch: `bad` takes the cursor under test.
BATCHED_PAGES = """query ($after: String, $order: CommentOrder) {
  good: thread(key: "demo") { comments(first: 2) { totalCount nodes { body } } }
  bad: thread(key: "demo") { comments(first: 2, after: $after, orderBy: $order) { totalCount } }
}"""


async def assert_only_the_bad_page_fails(
    gql: GraphQLClient, after: str, order: str
) -> dict[str, Any]:
    """`bad` is a page or BAD_USER_INPUT; `good`, in the same batch, is its page either way."""
    good = (await gql.data(BATCHED_PAGES))["good"]
    body = await gql(BATCHED_PAGES, {"after": after, "order": order})
    assert body["data"]["good"] == good, body
    errors = body.get("errors", [])
    assert [(e["path"], e["extensions"]["code"]) for e in errors] in (
        [],
        [(["bad", "comments"], "BAD_USER_INPUT")],
    ), body
    if errors:
        assert body["data"]["bad"] is None
        assert "not a cursor" in errors[0]["message"]
    else:
        assert body["data"]["bad"]["comments"]["totalCount"] == 17
    return body


@pytest.mark.parametrize(
    "payload",
    [
        ["OLDEST", "x", 1],
        ["OLDEST", "", 0],
        ["TOP", 1, "x", 2],
        ["OLDEST", "9999-12-31T23:59:59-14:00", 1],
        ["NEWEST", "0001-01-01T00:00:00+14:00", 1],
        ["OLDEST", "2025-06-01T12:00:00", 1],  # no time zone
        ["TOP", 2**40, "2025-06-01T12:00:00.000000Z", 1],  # beyond a like count
    ],
)
async def test_cursors_that_failed_their_batch_are_bad_user_input(
    gql: GraphQLClient, payload: list[Any]
) -> None:
    """Such a cursor once passed decoding, failed the batched statement for every page in
    it, and answered INTERNAL_SERVER_ERROR."""
    body = await assert_only_the_bad_page_fails(gql, forge(payload), payload[0])
    assert codes(body) == ["BAD_USER_INPUT"], body


# What a client may put in a cursor: anything JSON holds, shaped like a cursor or not.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)
moments = st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()) | (
    st.datetimes(timezones=st.just(UTC)).map(format_time)  # as cursors write them
)
cursor_shaped = st.tuples(
    st.sampled_from(["OLDEST", "NEWEST", "TOP"]),
    st.lists(st.integers(-1, 2**64) | st.sampled_from([0, 1, 3, 2**31, 2**63]), max_size=2),
    moments | st.text(max_size=30),
    st.integers(-(2**64), 2**64) | json_values,
).map(lambda t: [t[0], *t[1][:1], t[2], t[3]] if t[0] == "TOP" else [t[0], t[2], t[3]])
cursors = (
    (cursor_shaped | json_values).map(forge)
    | st.text(max_size=60)
    | st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(after=cursors, order=st.sampled_from(["OLDEST", "NEWEST", "TOP"]))
async def test_any_cursor_is_a_page_or_bad_user_input(
    gql: GraphQLClient, after: str, order: str
) -> None:
    await assert_only_the_bad_page_fails(gql, after, order)
