"""The response cache: anonymous queries answered from bytes while their threads are unchanged,
never a read that misses an acknowledged write, and ETags that revalidate with one statement."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest
from starlette.routing import Route

from server.app import create_app
from server.auth import mint
from server.cache import LRU, ReadRecorder, matches
from server.graphql import EXAMPLE_QUERY, GraphQLView
from server.settings import Settings
from tests.services import SECRET
from tests.variants import add_salutation

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from starlette.applications import Starlette

    from db.storage import Storage

PEOPLE = {"alice": ("host:alice", "Alice"), "bob": ("host:bob", "Bob")}

# The newest top-level comments of the demo thread, with what each write changes.
THREAD = """query Thread($key: String!) {
  thread(key: $key) {
    commentCount
    comments(first: 50, orderBy: NEWEST) {
      totalCount
      nodes { id state body likeCount author { name } }
    }
  }
}"""
COMMENT = "query ($id: ID!) { comment(id: $id) { id body likeCount author { name } } }"
FIELDS = "comment { id state body likeCount thread { commentCount } } errors { code message }"
MUTATIONS = {
    name: f"mutation ($input: {kind}!) {{ {name}(input: $input) {{ {FIELDS} }} }}"
    for name, kind in [
        ("addComment", "AddCommentInput"),
        ("editComment", "EditCommentInput"),
        ("deleteComment", "CommentIdInput"),
        ("likeComment", "CommentIdInput"),
        ("unlikeComment", "CommentIdInput"),
    ]
}


def bearer(who: str, name: str | None = None) -> dict[str, str]:
    sub, default = PEOPLE[who]
    return {"Authorization": f"Bearer {mint(SECRET, sub=sub, name=name or default)}"}


class Api:
    def __init__(self, http: httpx.AsyncClient, app: Starlette) -> None:
        self.http = http
        self.app = app
        self.storage: Storage = app.state.storage

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = {"query": query, "variables": variables or {}}
        return await self.http.post("/graphql", json=body, headers=headers or {})

    async def read(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body

    async def counted(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, httpx.Response]:
        """The SQL statements one request cost, and its response."""
        before = self.storage.statements
        response = await self.post(query, variables, headers)
        return self.storage.statements - before, response

    async def write(self, who: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(MUTATIONS[name], {"input": input}, bearer(who))
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()["data"][name]
        assert payload["errors"] == [], payload
        return payload


DEMO = {"key": "demo"}


async def nodes(api: Api) -> list[dict[str, Any]]:
    body = await api.read(THREAD, DEMO)
    found: list[dict[str, Any]] = body["data"]["thread"]["comments"]["nodes"]
    return found


@asynccontextmanager
async def running(database_url: str, tmp_path: Path, **options: Any) -> AsyncIterator[Api]:
    settings = Settings(
        database_url=database_url,
        data_dir=str(tmp_path),
        jwt_secret=SECRET,
        rate_limits=False,
        **options,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://threadql.test") as http:
            yield Api(http, app)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with running(database_url, tmp_path) as running_api:
        yield running_api


async def test_a_repeated_anonymous_query_costs_only_the_version_check(api: Api) -> None:
    cold, first = await api.counted(EXAMPLE_QUERY)
    assert first.status_code == 200
    assert cold == 4  # the thread, its top level, two levels of replies
    for _ in range(3):
        hot, again = await api.counted(EXAMPLE_QUERY)
        assert hot == 1
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == "no-cache"
        assert again.headers["content-type"] == first.headers["content-type"]

    # Read nothing stored, nothing to check: answered without any statement.
    await api.read("{ viewer { name } }")
    hot, viewer = await api.counted("{ viewer { name } }")
    assert (hot, viewer.json()) == (0, {"data": {"viewer": None}})


async def test_a_comment_looked_up_by_id_is_cached_and_sees_a_like(api: Api) -> None:
    payload = await api.write("alice", "addComment", {"threadKey": "demo", "body": "Hello"})
    comment_id = payload["comment"]["id"]
    cold, first = await api.counted(COMMENT, {"id": comment_id})
    assert cold == 2  # the thread's version first, then the comment
    hot, again = await api.counted(COMMENT, {"id": comment_id})
    assert (hot, again.content) == (1, first.content)

    await api.write("bob", "likeComment", {"commentId": comment_id})
    fresh = await api.read(COMMENT, {"id": comment_id})
    assert fresh["data"]["comment"]["likeCount"] == 1


async def test_no_read_after_an_acknowledged_write_misses_it(api: Api) -> None:
    """Writes of every kind, each followed by reads that must show it, while other readers
    keep filling the cache from reads that race with the writes."""
    stop = asyncio.Event()

    async def race() -> None:
        while not stop.is_set():
            await api.read(THREAD, DEMO)
            await asyncio.sleep(0)  # a hit may never wait on anything: let the writer in

    racers = [asyncio.create_task(race()) for _ in range(3)]
    mine: list[str] = []  # alice's visible comments, newest last
    liked: set[str] = set()
    cache = api.app.state.response_cache
    hits = cache.hits
    kinds = itertools.cycle(["add", "like", "edit", "add", "unlike", "like", "delete"])
    try:
        for step in range(40):
            kind = next(kinds)
            if kind == "add" or not mine:
                payload = await api.write(
                    "alice", "addComment", {"threadKey": "demo", "body": f"Comment {step}"}
                )
                mine.append(payload["comment"]["id"])
            elif kind == "edit":
                edit = {"commentId": mine[-1], "body": f"Edited at {step}"}
                payload = await api.write("alice", "editComment", edit)
            elif kind == "delete":
                payload = await api.write("alice", "deleteComment", {"commentId": mine.pop(0)})
                liked.discard(payload["comment"]["id"])
            else:
                target = mine[-1]
                name = "likeComment" if target not in liked else "unlikeComment"
                payload = await api.write("bob", name, {"commentId": target})
                liked.symmetric_difference_update({target})
            written = payload["comment"]
            for _ in range(2):  # the first read may fill the cache, the second may hit it
                response = await api.post(THREAD, DEMO)
                thread = response.json()["data"]["thread"]
                assert thread["commentCount"] == written["thread"]["commentCount"], (step, kind)
                shown = {node["id"]: node for node in thread["comments"]["nodes"]}
                assert [i for i in mine if i not in shown] == [], (step, kind)
                if written["state"] != "VISIBLE":  # deleted, with no replies: not listed
                    assert written["id"] not in shown, (step, kind)
                    continue
                node = shown[written["id"]]
                assert node["body"] == written["body"], (step, kind)
                assert node["likeCount"] == written["likeCount"], (step, kind)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*racers), timeout=30)
    assert cache.hits > hits  # the cache did answer in between
    await api.read(THREAD, DEMO)
    count, _ = await api.counted(THREAD, DEMO)
    assert count == 1


async def test_a_new_name_shows_in_every_cached_thread_at_once(api: Api) -> None:
    await api.write("alice", "addComment", {"threadKey": "demo", "body": "Signed Alice"})
    assert "Alice" in [n["author"]["name"] for n in (await nodes(api))]
    await api.read(THREAD, DEMO)  # cached now

    renamed = await api.post("{ viewer { name } }", headers=bearer("alice", name="Alice Liddell"))
    assert renamed.json()["data"]["viewer"]["name"] == "Alice Liddell"
    names = [n["author"]["name"] for n in await nodes(api) if n["author"]]
    assert "Alice Liddell" in names
    assert "Alice" not in names


async def test_signed_in_requests_bypass_the_cache(api: Api) -> None:
    await api.read(EXAMPLE_QUERY)
    await api.post("{ viewer { name } }", headers=bearer("bob"))  # signs Bob in: a write
    for _ in range(2):
        count, response = await api.counted(EXAMPLE_QUERY, headers=bearer("bob"))
        assert response.status_code == 200
        assert count == 4
        assert "etag" not in response.headers
        assert "cache-control" not in response.headers
    # Any Authorization header speaks for someone, even one that names no token.
    count, response = await api.counted(EXAMPLE_QUERY, headers={"Authorization": ""})
    assert count == 4
    assert "etag" not in response.headers


async def test_a_viewer_field_of_any_name_is_never_answered_to_another_viewer(api: Api) -> None:
    """Only anonymous answers are kept and served, so a field marked as the viewer's, whatever
    its name, is answered to each signed-in reader as that reader."""
    add_salutation(api.app)
    query = """{ thread(key: "demo") { comments(first: 2) {
      nodes { id ... on Comment { greeting: salutation } }
    } } }"""

    async def greetings(
        headers: dict[str, str] | None = None,
    ) -> tuple[int, set[object], httpx.Response]:
        count, response = await api.counted(query, headers=headers)
        assert response.status_code == 200, response.text
        nodes = response.json()["data"]["thread"]["comments"]["nodes"]
        assert len(nodes) == 2
        return count, {node["greeting"] for node in nodes}, response

    _, anonymous, stored = await greetings()
    assert anonymous == {None}
    for who, name in [("alice", "Alice"), ("bob", "Bob"), ("alice", "Alice")]:
        count, seen, response = await greetings(bearer(who))
        assert seen == {f"Hello, {name}"}
        assert count > 1
        assert "etag" not in response.headers
    hot, anonymous, again = await greetings()
    assert (hot, anonymous) == (1, {None})
    assert again.headers["etag"] == stored.headers["etag"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_etags_answer_304_until_the_thread_changes(api: Api, method: str) -> None:
    async def ask(**headers: str) -> tuple[int, httpx.Response]:
        before = api.storage.statements
        if method == "GET":
            params = {"query": THREAD, "variables": '{"key": "demo"}'}
            response = await api.http.get("/graphql", params=params, headers=headers)
        else:
            response = await api.post(THREAD, DEMO, headers)
        return api.storage.statements - before, response

    _, first = await ask()
    etag = first.headers["etag"]
    assert first.status_code == 200
    assert {"Accept", "Authorization"} <= {v.strip() for v in first.headers["vary"].split(",")}

    for _ in range(2):
        count, unchanged = await ask(**{"If-None-Match": etag})
        assert (count, unchanged.status_code, unchanged.content) == (1, 304, b"")
        assert unchanged.headers["etag"] == etag
    count, listed = await ask(**{"If-None-Match": f'"other", W/{etag}'})
    assert (count, listed.status_code) == (1, 304)
    count, other = await ask(**{"If-None-Match": '"other"'})
    assert (count, other.status_code, other.content) == (1, 200, first.content)

    comment = (await nodes(api))[0]["id"]
    await api.write("bob", "likeComment", {"commentId": comment})
    _, changed = await ask(**{"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.content != first.content
    _, again = await ask(**{"If-None-Match": changed.headers["etag"]})
    assert again.status_code == 304


async def test_each_media_type_has_an_etag_of_its_own(api: Api) -> None:
    _, plain = await api.counted(EXAMPLE_QUERY, headers={"Accept": "application/json"})
    _, graphql = await api.counted(
        EXAMPLE_QUERY, headers={"Accept": "application/graphql-response+json"}
    )
    assert plain.content == graphql.content
    assert plain.headers["etag"] != graphql.headers["etag"]
    assert graphql.headers["content-type"].startswith("application/graphql-response+json")
    stale = {"Accept": "application/json", "If-None-Match": graphql.headers["etag"]}
    count, answer = await api.counted(EXAMPLE_QUERY, headers=stale)
    assert (count, answer.status_code) == (1, 200)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ threads(first: 5) { totalCount nodes { key commentCount } } }", {}),  # any thread
        ('{ thread(key: "not-yet") { title } }', {}),  # may be created
        ("query ($id: ID!) { node(id: $id) { id } }", {"id": "VXNlcjox"}),  # a user
        ('{ comment(id: "nonsense") { id } }', {}),  # an error
        ("{ thread { title } }", {}),  # an error found before any read
    ],
)
async def test_what_no_version_covers_is_never_cached(
    api: Api, query: str, variables: dict[str, Any]
) -> None:
    first, response = await api.counted(query, variables)
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert response.headers["cache-control"] == "no-cache"  # no CDN keeps it as it is
    second, _ = await api.counted(query, variables)
    assert second == first


async def test_a_mutation_is_never_answered_from_the_cache(api: Api) -> None:
    add = {"input": {"threadKey": "demo", "body": "Hi"}}
    for _ in range(2):
        response = await api.post(MUTATIONS["addComment"], add)
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "etag" not in response.headers


async def test_the_cache_can_be_turned_off(database_url: str, tmp_path: Path) -> None:
    assert Settings.from_env({"THREADQL_RESPONSE_CACHE": "false"}).response_cache is False
    async with running(database_url, tmp_path, response_cache=False) as api:
        for _ in range(3):
            count, response = await api.counted(EXAMPLE_QUERY)
            assert count == 4
            assert "etag" not in response.headers
            assert "cache-control" not in response.headers


async def test_the_cache_keeps_within_its_entries_and_bytes(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, response_cache_entries=2) as api:
        for n in range(4):
            await api.read(THREAD.replace("query Thread", f"query Thread{n}"), DEMO)
        assert len(api.app.state.response_cache.entries) == 2

    lru: LRU[str, str] = LRU(max_entries=10, max_bytes=100)
    lru.put("a", "a", 60)
    lru.put("b", "b", 30)
    assert lru.get("a") == "a"  # now the most recently used
    lru.put("c", "c", 30)  # 120 bytes: "b" goes
    assert (lru.get("b"), lru.get("a"), lru.get("c"), lru.bytes) == (None, "a", "c", 90)
    lru.put("huge", "huge", 101)
    assert (lru.get("huge"), len(lru)) == (None, 2)


async def test_reads_the_recorder_does_not_know_make_a_response_uncacheable(
    api: Api,
) -> None:
    recorder = ReadRecorder(api.storage)
    await recorder.threads_by_keys(["demo"])
    assert recorder.cacheable
    assert list(recorder.versions) == [1]
    await recorder.thread_total()
    assert not recorder.cacheable


def test_if_none_match_lists_and_wildcards() -> None:
    assert matches('"a", "b"', '"b"')
    assert matches('W/"b"', '"b"')
    assert matches("*", '"b"')
    assert not matches(None, '"b"')
    assert not matches('"bb"', '"b"')


def graphql_view(app: Starlette) -> GraphQLView:
    [view] = [r.endpoint for r in app.routes if isinstance(r, Route) and r.path == "/graphql"]
    assert isinstance(view, GraphQLView)
    return view


async def ask(
    api: Api, method: str, headers: dict[str, str] | None = None, **body: Any
) -> tuple[int, httpx.Response]:
    """One request of THREAD for the demo thread (or of `body`), and the statements it cost."""
    body = body or {"query": THREAD, "variables": DEMO}
    before = api.storage.statements
    if method == "GET":
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        response = await api.http.get("/graphql", params=params, headers=headers or {})
    else:
        response = await api.http.post("/graphql", json=body, headers=headers or {})
    return api.storage.statements - before, response


def without_request_id(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Accept": "application/graphql-response+json", "Origin": "https://blog.example"},
    ],
)
async def test_a_hit_skips_strawberry_and_answers_as_the_miss_did(
    api: Api, method: str, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, miss = await ask(api, method, headers)  # Strawberry runs it, and the answer is kept

    async def not_run(*args: object) -> NoReturn:
        raise AssertionError("Strawberry's view ran for a hit")

    monkeypatch.setattr(graphql_view(api.app), "run", not_run)
    count, hit = await ask(api, method, headers)
    assert (count, hit.status_code, hit.content) == (1, 200, miss.content)
    assert without_request_id(hit) == without_request_id(miss)
    assert hit.headers["x-request-id"] != miss.headers["x-request-id"]
    assert hit.headers["x-content-type-options"] == "nosniff"
    if "Origin" in headers:
        assert hit.headers["access-control-allow-origin"] == "*"
    count, unchanged = await ask(api, method, {**headers, "If-None-Match": hit.headers["etag"]})
    assert (count, unchanged.status_code, unchanged.content) == (1, 304, b"")


async def test_a_miss_reads_parses_and_resolves_its_request_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = graphql_view(api.app)
    persisted = api.app.state.persisted_queries
    calls = {"parse_json": 0, "resolve": 0}

    def counted(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **options: Any) -> Any:
            calls[name] += 1
            return function(*args, **options)

        return call

    monkeypatch.setattr(view, "parse_json", counted("parse_json", view.parse_json))
    monkeypatch.setattr(persisted, "resolve", counted("resolve", persisted.resolve))
    digest = hashlib.sha256(THREAD.encode()).hexdigest()
    apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read as it arrives
        body = json.dumps({"query": THREAD, "variables": DEMO, "extensions": apq}).encode()
        yield body[:100]
        yield body[100:]

    headers = {"content-type": "application/json"}
    miss = await api.http.post("/graphql", content=chunks(), headers=headers)
    assert miss.status_code == 200, miss.text
    assert calls == {"parse_json": 1, "resolve": 1}
    count, hit = await ask(api, "POST", extensions=apq, variables=DEMO)  # by hash alone
    assert (count, hit.content, calls["resolve"]) == (1, miss.content, 2)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_persisted_queries_by_hash_alone_are_hits(api: Api, method: str) -> None:
    digest = hashlib.sha256(THREAD.encode()).hexdigest()
    apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    _, unknown = await ask(api, method, extensions=apq, variables=DEMO)
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    _, first = await ask(api, method, query=THREAD, extensions=apq, variables=DEMO)
    for _ in range(2):
        count, again = await ask(api, method, extensions=apq, variables=DEMO)
        assert (count, again.status_code, again.content) == (1, 200, first.content)
        assert again.headers["etag"] == first.headers["etag"]


async def test_hits_are_logged_and_counted_under_their_operation_name(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="threadql.request")
    for _ in range(3):  # no operationName: the document names its one operation
        await ask(api, "POST")
    lines = [r.__dict__ for r in caplog.records if r.name == "threadql.request"]
    assert [(line["operation"], line["outcome"], line["status"]) for line in lines] == [
        ("Thread", "ok", 200)
    ] * 3
    assert [line["statements"] for line in lines][1:] == [1, 1]
    registry = api.app.state.metrics.registry
    labels = {"operation": "Thread", "outcome": "ok"}
    assert registry.get_sample_value("threadql_graphql_requests_total", labels) == 3
    duration = "threadql_graphql_request_duration_seconds_count"
    assert registry.get_sample_value(duration, {"operation": "Thread"}) == 3


async def test_a_signed_in_request_never_takes_a_hit(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ask(api, "POST")  # kept
    cache = api.app.state.response_cache

    async def no_lookup(key: bytes) -> NoReturn:
        raise AssertionError("a signed-in request looked the cache up")

    monkeypatch.setattr(cache, "lookup", no_lookup)
    for method in ("GET", "POST"):
        count, response = await ask(api, method, bearer("bob"))
        assert response.status_code == 200
        assert count > 1
        assert "etag" not in response.headers


REFUSED = [
    (b'{"query": "{ viewer { id } }"', "application/json"),
    (b"[]", "application/json"),
    (b'[{"query": "{ viewer { id } }"}]', "application/json"),
    (b'{"query": 5}', "application/json"),
    (b'{"query": "{ viewer { id } }", "variables": [1]}', "application/json"),
    (b'{"query": "{ viewer { id } }", "extensions": "x"}', "application/json"),
    (b'{"variables": {}}', "application/json"),
    (b'{"extensions": {"persistedQuery": {"version": 2}}}', "application/json"),
    (b'{"query": "{ viewer { id } }"}', "text/plain"),
    (b'{"query": "' + b" " * 200 + b'{ viewer { id } }"}', "application/json"),
    (b'{"query": "{ viewer { id } }", "variables": {"x": "' + b"x" * 400 + b'"}}', ""),
]


async def test_refusals_are_the_same_with_the_cache_on_and_off(
    database_url: str, tmp_path: Path
) -> None:
    limits = {"max_document_bytes": 200, "max_request_bytes": 400}
    answers: list[list[tuple[int, str, bytes]]] = []
    for cache in (True, False):
        async with running(database_url, tmp_path, response_cache=cache, **limits) as api:
            answers.append([])
            for content, content_type in REFUSED:
                headers = {"content-type": content_type} if content_type else {}
                response = await api.http.post("/graphql", content=content, headers=headers)
                answers[-1].append(
                    (response.status_code, response.headers["content-type"], response.content)
                )
            for params in ({"query": "{ viewer { id } }", "variables": "[1"}, {"variables": "{}"}):
                response = await api.http.get(
                    "/graphql", params=params, headers={"accept": "application/json"}
                )
                answers[-1].append(
                    (response.status_code, response.headers["content-type"], response.content)
                )
    with_cache, without_cache = answers
    assert with_cache == without_cache
    assert all(status >= 400 for status, _, _ in with_cache)
