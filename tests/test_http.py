"""The HTTP surface: GraphiQL, media types, avatars, health."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import pytest

from server import graphiql
from server.avatars import avatar_svg, initials
from server.graphql import EXAMPLE_QUERY
from server.negotiation import GRAPHQL_RESPONSE, JSON, negotiate

if TYPE_CHECKING:
    import httpx


async def test_graphiql_opens_with_a_demo_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "GraphiQL" in response.text
    assert 'thread(key: "demo")' in response.text
    assert "Welcome to GraphiQL" not in response.text


async def test_graphiql_loads_only_threadql_files_under_a_policy_naming_no_other_origin(
    client: httpx.AsyncClient,
) -> None:
    """Offline, GraphiQL must still load: every file its page asks for comes from threadql,
    is the very file its `integrity` names, and the policy allows nothing else."""
    page = (await client.get("/graphql", headers={"accept": "text/html"})).text
    loads = re.findall(r'(?:src|href)="([^"]*)"(?:\s+integrity="([^"]*)")?', page)
    assert {url for url, _ in loads if not url.startswith("data:")} == {
        graphiql.PATH + path for path in graphiql.FILES
    }
    for url, integrity in loads:
        if url.startswith("data:"):
            continue
        response = await client.get(url, headers={"accept-encoding": "identity"})
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith(("text/javascript", "text/css"))
        algorithm, _, digest = integrity.partition("-")
        assert (
            base64.b64encode(hashlib.new(algorithm, response.content).digest()).decode() == digest
        )
    assert (await client.get(graphiql.PATH + "graphiql@3.8.3/package.json")).status_code == 404

    policy = (await client.get("/graphql", headers={"accept": "text/html"})).headers[
        "content-security-policy"
    ]
    sources = [source for part in policy.split(";") for source in part.split()[1:]]
    assert sources, policy
    for source in sources:
        assert source in {"'self'", "'none'", "data:"} or re.fullmatch(r"'nonce-[\w-]+'", source), (
            source
        )


async def test_the_ide_example_query_runs(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": EXAMPLE_QUERY})
    body = response.json()
    assert "errors" not in body
    assert body["data"]["thread"]["commentCount"] == 28


async def test_graphql_response_media_type_on_success(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": '{ thread(key: "demo") { key } }'},
        headers={"accept": f"{GRAPHQL_RESPONSE}, {JSON};q=0.9"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json() == {"data": {"thread": {"key": "demo"}}}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON}", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE};q=0, */*", JSON),
        ("application/*;q=0.2, text/html", JSON),
        ("text/html", None),
        ("text/csv, application/json;q=0", None),
        ("application/json;q=oops", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("name", "letters"),
    [
        ("Kim Wenger Hall", "KH"),
        ("Ally", "A"),
        ("Jess | Wellness with Depth", "JD"),
        ("doctor steven murphy", "DM"),
        ("🪻", "?"),
    ],
)
def test_initials(name: str, letters: str) -> None:
    assert initials(name) == letters


async def test_avatar_is_stable_cacheable_and_inert(client: httpx.AsyncClient) -> None:
    first = await client.get("/avatars/%3Cscript%3Ealert(1)%3C%2Fscript%3E.svg")
    second = await client.get("/avatars/%3Cscript%3Ealert(1)%3C%2Fscript%3E.svg")
    assert first.status_code == 200
    assert first.text == second.text
    assert "<script" not in first.text
    assert "immutable" in first.headers["cache-control"]
    assert first.headers["content-security-policy"].startswith("default-src 'none'")
    assert avatar_svg("Kim Wenger Hall") != avatar_svg("Ally")


@pytest.mark.parametrize(
    "name", ["%00", "A%00%07b", "%E2%80%AEevil", "%EF%BF%BE%EF%BF%BF", "a%09%0Bb", "%C2%9B"]
)
async def test_any_avatar_name_draws_well_formed_xml(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/avatars/{name}.svg")
    assert response.status_code == 200
    label = ElementTree.fromstring(response.content).get("aria-label")
    assert label is not None
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u202e\ufffe" for c in label)
