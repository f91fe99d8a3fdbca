"""Mutations through the API: who may do what, every refusal, and what each write leaves behind."""

from __future__ import annotations

import ast
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import httpx
import jwt
import pytest

from db.demo import demo_sub, fixture
from db.sql import SQLStorage
from db.storage import Reason
from resolvers import ids, refusals
from schema.mutation import UserErrorCode
from server.app import create_app
from server.auth import mint
from server.settings import Settings, SettingsError
from tests.conftest import QUERY_PLANS
from tests.services import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

WRONG_SECRET = "some-other-site-signing-secret-987654321"
BASE_URL = "http://threadql.test"
ANONYMOUS = "anonymous"

# The people who sign in: host-site id, display name and role.
PEOPLE: dict[str, tuple[str, str, str | None]] = {
    "author": ("host:alice", "Alice", None),
    "other": ("host:bob", "Bob", None),
    "moderator": ("host:mo", "Mo", "moderator"),
}

COMMENT_FIELDS = """
  id depth state body bodyHtml editedAt likeCount viewerHasLiked viewerCanEdit viewerCanDelete
  replyCount descendantCount author { id name } parent { id } thread { id commentCount locked }
"""
ERROR_FIELDS = "errors { code message field }"


def comment_mutation(name: str, input_type: str) -> str:
    return (
        f"mutation ($input: {input_type}!) {{ {name}(input: $input) {{"
        f" comment {{ {COMMENT_FIELDS} }} {ERROR_FIELDS} }} }}"
    )


MUTATIONS = {
    "addComment": comment_mutation("addComment", "AddCommentInput"),
    "editComment": comment_mutation("editComment", "EditCommentInput"),
    "deleteComment": comment_mutation("deleteComment", "CommentIdInput"),
    "likeComment": comment_mutation("likeComment", "CommentIdInput"),
    "unlikeComment": comment_mutation("unlikeComment", "CommentIdInput"),
    "removeComment": comment_mutation("removeComment", "RemoveCommentInput"),
    "lockThread": (
        "mutation ($input: LockThreadInput!) { lockThread(input: $input) {"
        f" thread {{ id key locked commentCount }} {ERROR_FIELDS} }} }}"
    ),
}

COMMENT_QUERY = f"query ($id: ID!) {{ comment(id: $id) {{ {COMMENT_FIELDS} }} }}"

LISTING_FIELDS = "id state body author { name } replyCount descendantCount"
# Three levels of 20 fit the node limit (20 + 20*20 + 20*20*20 = 8,420); the threads here are small.
THREAD_QUERY = f"""
query ($id: ID!) {{
  thread(id: $id) {{
    commentCount locked
    comments(first: 20) {{
      totalCount
      nodes {{
        {LISTING_FIELDS}
        replies(first: 20) {{
          totalCount
          nodes {{ {LISTING_FIELDS} replies(first: 20) {{ totalCount nodes {{ {LISTING_FIELDS} }} }} }}
        }}
      }}
    }}
  }}
}}
"""

# Tables a write may touch, by primary key; users are left out: signing in upserts the user.
WRITTEN_TABLES = {
    "threads": "id",
    "comments": "id",
    "likes": "thread_id, comment_id, user_id",
    "comment_revisions": "id",
}


def token(who: str, secret: str = SECRET, *, expires_in: int = 3600) -> str:
    sub, name, role = PEOPLE[who]
    return mint(secret, sub=sub, name=name, role=role, expires_in=expires_in)


class Api:
    """One running application, called as anonymous or as one of PEOPLE."""

    def __init__(self, http: httpx.AsyncClient, storage: SQLStorage) -> None:
        self.http = http
        self.storage = storage

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        who: str = ANONYMOUS,
        authorization: str | None = None,
        status: int = 200,
    ) -> dict[str, Any]:
        headers = {}
        if who != ANONYMOUS:
            authorization = f"Bearer {token(who)}"
        if authorization is not None:
            headers["Authorization"] = authorization
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, who: str = ANONYMOUS
    ) -> dict[str, Any]:
        body = await self.post(query, variables, who=who)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, name: str, input: dict[str, Any], who: str) -> dict[str, Any]:
        """The payload of a mutation that ran, whether it wrote or was refused."""
        payload: dict[str, Any] = (await self.data(MUTATIONS[name], {"input": input}, who=who))[
            name
        ]
        return payload

    async def ok(self, name: str, input: dict[str, Any], who: str) -> dict[str, Any]:
        """The comment (or thread) of a mutation that must succeed."""
        payload = await self.mutate(name, input, who)
        assert payload["errors"] == [], payload["errors"]
        result: dict[str, Any] = payload["thread" if name == "lockThread" else "comment"]
        assert result is not None
        return result

    async def refused(
        self, name: str, input: dict[str, Any], who: str, code: str, field: str | None
    ) -> str:
        """Run a mutation that must be refused with `code` on `field` and write nothing."""
        before = await self.snapshot()
        payload = await self.mutate(name, input, who)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], payload
        assert payload["errors"][0]["message"]
        assert payload["thread" if name == "lockThread" else "comment"] is None
        assert await self.snapshot() == before, "a refused mutation wrote something"
        message: str = payload["errors"][0]["message"]
        return message

    async def unauthenticated(self, name: str, input: dict[str, Any]) -> None:
        """An anonymous write: a top-level UNAUTHENTICATED error, nothing written."""
        before = await self.snapshot()
        body = await self.post(MUTATIONS[name], {"input": input})
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        assert await self.snapshot() == before, "an anonymous mutation wrote something"

    async def comment(self, global_id: str, who: str = ANONYMOUS) -> dict[str, Any]:
        found: dict[str, Any] = (await self.data(COMMENT_QUERY, {"id": global_id}, who=who))[
            "comment"
        ]
        return found

    async def thread(self, global_id: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.data(THREAD_QUERY, {"id": global_id}))["thread"]
        return found

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self.storage._read(sql, params)]

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return {
            table: await self.rows(f"SELECT * FROM {table} ORDER BY {key}")
            for table, key in WRITTEN_TABLES.items()
        }

    async def count(self, table: str) -> int:
        rows = await self.rows(f"SELECT COUNT(*) FROM {table}")
        return int(rows[0][0])


@asynccontextmanager
async def running(database_url: str, data_dir: Path, **settings: Any) -> AsyncIterator[Api]:
    """The application on a fresh database, with a known signing secret."""
    options: dict[str, Any] = {
        "demo": False,
        "rate_limits": False,
        "query_plans": QUERY_PLANS,
        **settings,
    }
    application = create_app(
        Settings(
            database_url=database_url,
            jwt_secret=SECRET,
            data_dir=str(data_dir),
            **options,
        )
    )
    storage = application.state.storage
    assert isinstance(storage, SQLStorage)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield Api(http, storage)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with running(database_url, tmp_path) as service:
        yield service


@dataclass(frozen=True)
class Scene:
    """Two threads, each with a comment, and a deleted and a removed comment in the first."""

    thread: str
    comment: str  # top-level, by the author
    other_thread: str
    elsewhere: str  # top-level in the other thread, by the other user
    deleted: str
    removed: str


async def new_thread(api: Api, key: str, who: str = "author", body: str = "First!") -> str:
    """A comment that opens a new thread; its id."""
    comment = await api.ok(
        "addComment", {"threadKey": key, "threadTitle": f"About {key}", "body": body}, who
    )
    assert comment["thread"]["commentCount"] == 1
    comment_id: str = comment["id"]
    return comment_id


async def reply(api: Api, parent: str, who: str = "other", body: str = "A reply.") -> str:
    comment_id: str = (await api.ok("addComment", {"parentId": parent, "body": body}, who))["id"]
    return comment_id


def thread_of(comment_id: str) -> str:
    return ids.encode("Thread", ids.comment_key(comment_id)[0])


async def scene(api: Api) -> Scene:
    comment = await new_thread(api, "post")
    thread = thread_of(comment)
    elsewhere = await new_thread(api, "other-post", "other")
    deleted = await api.ok("addComment", {"threadId": thread, "body": "Oops."}, "author")
    await api.ok("deleteComment", {"commentId": deleted["id"]}, "author")
    removed = await api.ok("addComment", {"threadId": thread, "body": "Spam."}, "other")
    await api.ok("removeComment", {"commentId": removed["id"]}, "moderator")
    return Scene(thread, comment, thread_of(elsewhere), elsewhere, deleted["id"], removed["id"])


# -- who may do what --------------------------------------------------------------------------

OK, FORBIDDEN, UNAUTHENTICATED = "succeeds", "FORBIDDEN", "UNAUTHENTICATED"
WHO = (ANONYMOUS, "author", "other", "moderator")

# fmt: off
PERMISSIONS = [
    # mutation         anonymous        author     other      moderator
    ("addComment",     UNAUTHENTICATED, OK,        OK,        OK),
    ("editComment",    UNAUTHENTICATED, OK,        FORBIDDEN, FORBIDDEN),
    ("deleteComment",  UNAUTHENTICATED, OK,        FORBIDDEN, OK),
    ("likeComment",    UNAUTHENTICATED, OK,        OK,        OK),
    ("unlikeComment",  UNAUTHENTICATED, OK,        OK,        OK),
    ("removeComment",  UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, OK),
    ("lockThread",     UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, OK),
]
# fmt: on


def input_for(mutation: str, thread: str, comment: str) -> dict[str, Any]:
    if mutation == "addComment":
        return {"threadId": thread, "body": "Me too."}
    if mutation == "editComment":
        return {"commentId": comment, "body": "Edited, with a *point*."}
    if mutation == "removeComment":
        return {"commentId": comment, "reason": "Off topic"}
    if mutation == "lockThread":
        return {"threadId": thread, "locked": True}
    return {"commentId": comment}


async def check_written(
    api: Api, mutation: str, who: str, result: dict[str, Any], comment: str
) -> None:
    """What a successful mutation left, in the payload and in the tables."""
    name = PEOPLE[who][1]
    key = ids.comment_key(comment)
    if mutation == "addComment":
        assert result["body"] == "Me too."
        assert result["state"] == "VISIBLE"
        assert result["author"]["name"] == name
        assert result["thread"]["commentCount"] == 2
        assert await api.count("comments") == 2
    elif mutation == "editComment":
        assert result["body"] == "Edited, with a *point*."
        assert "<em>point</em>" in result["bodyHtml"]
        assert result["editedAt"] is not None
        revisions = await api.rows(
            "SELECT body FROM comment_revisions WHERE thread_id = ? AND comment_id = ?", key
        )
        assert revisions == [("First!",)]
    elif mutation in ("deleteComment", "removeComment"):
        state = "DELETED" if mutation == "deleteComment" else "REMOVED"
        assert (result["state"], result["author"], result["body"], result["bodyHtml"]) == (
            state,
            None,
            "",
            "",
        )
        assert result["thread"]["commentCount"] == 0
        rows = await api.rows(
            "SELECT state, removed_reason FROM comments WHERE thread_id = ? AND id = ?", key
        )
        assert rows == [(state, "Off topic" if state == "REMOVED" else None)]
    elif mutation == "likeComment":
        assert (result["likeCount"], result["viewerHasLiked"]) == (1, True)
        assert await api.count("likes") == 1
    elif mutation == "unlikeComment":
        assert (result["likeCount"], result["viewerHasLiked"]) == (0, False)
        assert await api.count("likes") == 0
    else:
        assert result["locked"] is True
        assert (await api.thread(result["id"]))["locked"] is True


@pytest.mark.parametrize(
    ("mutation", "who", "outcome"),
    [
        pytest.param(mutation, who, outcome, id=f"{mutation}-as-{who}")
        for mutation, *outcomes in PERMISSIONS
        for who, outcome in zip(WHO, outcomes, strict=True)
    ],
)
async def test_permission_matrix(api: Api, mutation: str, who: str, outcome: str) -> None:
    comment = await new_thread(api, "post")
    thread = thread_of(comment)
    if mutation == "unlikeComment":  # something to unlike
        await api.ok("likeComment", {"commentId": comment}, who if who != ANONYMOUS else "other")
    input = input_for(mutation, thread, comment)
    if outcome == UNAUTHENTICATED:
        await api.unauthenticated(mutation, input)
    elif outcome == FORBIDDEN:
        field = "threadId" if mutation == "lockThread" else "commentId"
        await api.refused(mutation, input, who, FORBIDDEN, field)
    else:
        await check_written(api, mutation, who, await api.ok(mutation, input, who), comment)


async def test_an_admin_moderates_too(api: Api) -> None:
    admin = mint(SECRET, sub="host:ada", name="Ada", role="admin")
    comment = await new_thread(api, "post")
    body = await api.post(
        MUTATIONS["removeComment"],
        {"input": {"commentId": comment}},
        authorization=f"Bearer {admin}",
    )
    assert body["data"]["removeComment"]["errors"] == []
    assert body["data"]["removeComment"]["comment"]["state"] == "REMOVED"


# -- every refusal, with its code and field ----------------------------------------------------

LONGEST = 10_000
TOO_LONG = "x" * (LONGEST + 1)
INVALID, NOT_FOUND = "INVALID_INPUT", "NOT_FOUND"


def resolve(input: dict[str, Any], s: Scene) -> dict[str, Any]:
    """The input with `@name` values replaced by the scene's ids."""
    thread_number = ids.comment_key(s.comment)[0]
    refs = {
        "@thread": s.thread,
        "@comment": s.comment,
        "@elsewhere": s.elsewhere,
        "@deleted": s.deleted,
        "@removed": s.removed,
        "@unknown-thread": ids.encode("Thread", 99_999),
        "@unknown-comment": ids.encode("Comment", thread_number, 99_999),
        "@orphan": ids.encode("Comment", 99_999, 1),
    }
    return {k: refs.get(v, v) if isinstance(v, str) else v for k, v in input.items()}


# fmt: off
ADD_REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # case                         input                                                            code       field
    ("empty body",                 {"threadId": "@thread", "body": ""},                             INVALID,   "body"),
    ("blank body",                 {"threadId": "@thread", "body": " \n\t \r\n "},                  INVALID,   "body"),
    ("body too long",              {"threadId": "@thread", "body": TOO_LONG},                       INVALID,   "body"),
    ("NUL in body",                {"threadId": "@thread", "body": "a\x00b"},                       INVALID,   "body"),
    ("trailing NUL",               {"threadId": "@thread", "body": "ab\x00"},                       INVALID,   "body"),
    ("escape in body",             {"threadId": "@thread", "body": "a\x1b[2Jb"},                    INVALID,   "body"),
    ("form feed in body",          {"threadId": "@thread", "body": "a\x0cb"},                       INVALID,   "body"),
    ("DEL in body",                {"threadId": "@thread", "body": "a\x7fb"},                       INVALID,   "body"),
    ("C1 control in body",         {"threadId": "@thread", "body": "a\x85b"},                       INVALID,   "body"),
    ("threadId and threadKey",     {"threadId": "@thread", "threadKey": "post", "body": "Hi"},      INVALID,   "threadKey"),
    ("no thread at all",           {"body": "Hi"},                                                  INVALID,   "threadId"),
    ("new key without title",      {"threadKey": "brand-new", "body": "Hi"},                        INVALID,   "threadTitle"),
    ("new key, empty title",       {"threadKey": "brand-new", "threadTitle": "", "body": "Hi"},     INVALID,   "threadTitle"),
    ("new key, blank title",       {"threadKey": "brand-new", "threadTitle": "  ", "body": "Hi"},   INVALID,   "threadTitle"),
    ("script as threadUrl",        {"threadKey": "brand-new", "threadTitle": "New",
                                    "threadUrl": "javascript:alert(1)", "body": "Hi"},              INVALID,   "threadUrl"),
    ("relative threadUrl",         {"threadKey": "brand-new", "threadTitle": "New",
                                    "threadUrl": "/brand-new", "body": "Hi"},                       INVALID,   "threadUrl"),
    ("threadUrl with a backslash", {"threadKey": "brand-new", "threadTitle": "New",
                                    "threadUrl": "https://evil.example\\@example.com/a", "body": "Hi"}, INVALID, "threadUrl"),
    ("threadUrl with credentials", {"threadKey": "brand-new", "threadTitle": "New",
                                    "threadUrl": "https://user:pw@example.com/a", "body": "Hi"},    INVALID,   "threadUrl"),
    ("unknown threadId",           {"threadId": "@unknown-thread", "body": "Hi"},                   NOT_FOUND, "threadId"),
    ("malformed threadId",         {"threadId": "not-an-id", "body": "Hi"},                         INVALID,   "threadId"),
    ("empty threadId",             {"threadId": "", "body": "Hi"},                                  INVALID,   "threadId"),
    ("comment id as threadId",     {"threadId": "@comment", "body": "Hi"},                          INVALID,   "threadId"),
    ("malformed parentId",         {"parentId": "%%%", "body": "Hi"},                               INVALID,   "parentId"),
    ("thread id as parentId",      {"parentId": "@thread", "body": "Hi"},                           INVALID,   "parentId"),
    ("parent in another thread",   {"threadId": "@thread", "parentId": "@elsewhere", "body": "Hi"}, INVALID,   "parentId"),
    ("parent outside keyed one",   {"threadKey": "post", "parentId": "@elsewhere", "body": "Hi"},   INVALID,   "parentId"),
    ("parent outside a new one",   {"threadKey": "new", "threadTitle": "New", "parentId": "@comment",
                                    "body": "Hi"},                                                  INVALID,   "parentId"),
    ("deleted parent",             {"parentId": "@deleted", "body": "Hi"},                          INVALID,   "parentId"),
    ("removed parent",             {"parentId": "@removed", "body": "Hi"},                          INVALID,   "parentId"),
    ("unknown parent",             {"parentId": "@unknown-comment", "body": "Hi"},                  NOT_FOUND, "parentId"),
    ("parent in unknown thread",   {"parentId": "@orphan", "body": "Hi"},                           NOT_FOUND, "parentId"),
]
# fmt: on


@pytest.mark.parametrize(
    ("input", "code", "field"),
    [pytest.param(input, code, field, id=case) for case, input, code, field in ADD_REFUSALS],
)
async def test_add_comment_refusals(api: Api, input: dict[str, Any], code: str, field: str) -> None:
    s = await scene(api)
    await api.refused("addComment", resolve(input, s), "other", code, field)
    assert (await api.thread(s.thread))["commentCount"] == 1
    assert await api.count("threads") == 2


COMMENT_MUTATIONS = (
    "editComment",
    "deleteComment",
    "likeComment",
    "unlikeComment",
    "removeComment",
)

# fmt: off
BAD_COMMENT_IDS: list[tuple[str, str, str]] = [
    # case          commentId            code
    ("malformed",   "nope",              INVALID),
    ("empty",       "",                  INVALID),
    ("thread id",   "@thread",           INVALID),
    ("unknown",     "@unknown-comment",  NOT_FOUND),
]

OTHER_REFUSALS: list[tuple[str, str, dict[str, Any], str, str]] = [
    # case                  mutation        input                                              code       field
    ("edit to empty",       "editComment",  {"commentId": "@comment", "body": ""},             INVALID,   "body"),
    ("edit to blank",       "editComment",  {"commentId": "@comment", "body": " \r\n "},       INVALID,   "body"),
    ("edit too long",       "editComment",  {"commentId": "@comment", "body": TOO_LONG},       INVALID,   "body"),
    ("edit with NUL",       "editComment",  {"commentId": "@comment", "body": "\x00"},         INVALID,   "body"),
    ("edit with control",   "editComment",  {"commentId": "@comment", "body": "bell\x07"},     INVALID,   "body"),
    ("lock malformed id",   "lockThread",   {"threadId": "nope", "locked": True},              INVALID,   "threadId"),
    ("lock a comment id",   "lockThread",   {"threadId": "@comment", "locked": True},          INVALID,   "threadId"),
    ("lock unknown thread", "lockThread",   {"threadId": "@unknown-thread", "locked": True},   NOT_FOUND, "threadId"),
    *(
        (f"{mutation} {case} id", mutation, {"commentId": comment_id}, code, "commentId")
        for mutation in COMMENT_MUTATIONS
        for case, comment_id, code in BAD_COMMENT_IDS
    ),
]
# fmt: on


@pytest.mark.parametrize(
    ("mutation", "input", "code", "field"),
    [
        pytest.param(m, input, code, field, id=case)
        for case, m, input, code, field in OTHER_REFUSALS
    ],
)
async def test_refusals_of_other_mutations(
    api: Api, mutation: str, input: dict[str, Any], code: str, field: str
) -> None:
    s = await scene(api)
    who = "author" if mutation in ("editComment", "deleteComment") else "moderator"
    if mutation == "editComment":
        input = {"body": "A better body.", **input}
    await api.refused(mutation, resolve(input, s), who, code, field)
    assert (await api.comment(s.comment))["body"] == "First!"


def test_every_reason_for_a_refusal_has_a_code_clients_know() -> None:
    assert set(refusals.CODES) == set(Reason)
    assert set(refusals.CODES.values()) <= {code.value for code in UserErrorCode}


def test_storage_names_no_api_input_or_code() -> None:
    """db/ says why a write was refused; which input and which code is the API's to say."""
    api_names = {"threadId", "threadKey", "threadTitle", "threadUrl", "parentId", "commentId"}
    api_names |= {code.value for code in UserErrorCode}
    db = Path(__file__).parent.parent / "db"
    named = {
        (module.name, node.value)
        for module in db.rglob("*.py")
        for node in ast.walk(ast.parse(module.read_text()))
        if isinstance(node, ast.Constant) and node.value in api_names
    }
    assert named == set()


async def test_body_limits_and_normalisation(api: Api) -> None:
    thread = thread_of(await new_thread(api, "post"))

    async def stored(body: str) -> str:
        comment = await api.ok("addComment", {"threadId": thread, "body": body}, "other")
        text: str = comment["body"]
        return text

    assert await stored("x" * LONGEST) == "x" * LONGEST
    assert await stored("  " + "x" * LONGEST + " \n ") == "x" * LONGEST
    assert await stored("  Hello there. \n") == "Hello there."
    assert await stored("line one\r\nline two") == "line one\nline two"
    assert await stored("a\tb\n\nc") == "a\tb\n\nc"
    assert (await api.thread(thread))["commentCount"] == 6


async def test_edit_keeps_the_old_body_and_normalises_the_new(api: Api) -> None:
    comment = await new_thread(api, "post", body="Frist!")
    edited = await api.ok("editComment", {"commentId": comment, "body": " First!\r\n"}, "author")
    assert edited["body"] == "First!"
    assert edited["editedAt"] is not None
    again = await api.ok("editComment", {"commentId": comment, "body": "First!!"}, "author")
    assert again["body"] == "First!!"
    revisions = await api.rows(
        "SELECT body FROM comment_revisions WHERE thread_id = ? AND comment_id = ? ORDER BY id",
        ids.comment_key(comment),
    )
    assert revisions == [("Frist!",), ("First!",)]
    assert (await api.thread(thread_of(comment)))["commentCount"] == 1


async def test_the_edit_window_closes(database_url: str, tmp_path: Path) -> None:
    async with running(database_url, tmp_path, edit_window=0) as api:
        comment = await new_thread(api, "post")
        assert (await api.comment(comment, "author"))["viewerCanEdit"] is False
        message = await api.refused(
            "editComment",
            {"commentId": comment, "body": "Too late"},
            "author",
            "EDIT_WINDOW_CLOSED",
            "commentId",
        )
        assert "0 seconds" in message
        found = await api.comment(comment, "author")
        assert (found["body"], found["editedAt"]) == ("First!", None)
        assert await api.count("comment_revisions") == 0
        assert (await api.comment(comment, "author"))["viewerCanDelete"] is True
        await api.ok("deleteComment", {"commentId": comment}, "author")


async def test_an_old_demo_comment_cannot_be_edited_by_its_author(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, demo=True) as api:
        first = await api.data(
            '{ thread(key: "demo") { comments(first: 1) { nodes { id body author { name } } } } }'
        )
        [node] = first["thread"]["comments"]["nodes"]
        name = node["author"]["name"]
        assert name == fixture()["comments"][0]["author"]
        demo_token = mint(SECRET, sub=demo_sub(name), name=name)
        before = await api.snapshot()
        body = await api.post(
            MUTATIONS["editComment"],
            {"input": {"commentId": node["id"], "body": "Rewritten"}},
            authorization=f"Bearer {demo_token}",
        )
        payload = body["data"]["editComment"]
        assert payload["comment"] is None
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [
            ("EDIT_WINDOW_CLOSED", "commentId")
        ]
        assert await api.snapshot() == before
        assert (await api.comment(node["id"]))["body"] == node["body"]


async def test_replies_nest_to_max_depth(database_url: str, tmp_path: Path) -> None:
    async with running(database_url, tmp_path, max_depth=2) as api:
        root = await new_thread(api, "post")
        child = await reply(api, root)
        grandchild = await reply(api, child, "author")
        assert (await api.comment(grandchild))["depth"] == 2
        await api.refused(
            "addComment",
            {"parentId": grandchild, "body": "Deeper"},
            "other",
            "INVALID_INPUT",
            "parentId",
        )
        assert (await api.comment(root))["descendantCount"] == 2
        await reply(api, child, "moderator")  # depth 2 still takes replies


async def test_by_default_replies_stop_at_a_depth_limit(api: Api) -> None:
    """Without any setting, one reader cannot build an endless chain of replies."""
    limit = Settings().max_depth
    assert 0 < limit <= 20, "the default is a limit, deep enough for real conversations"
    parent = await new_thread(api, "post")
    for _ in range(limit):
        parent = await reply(api, parent)
    assert (await api.comment(parent))["depth"] == limit
    message = await api.refused(
        "addComment", {"parentId": parent, "body": "Deeper"}, "other", INVALID, "parentId"
    )
    assert f"at most {limit} levels deep" in message
    assert (await api.comment(parent))["replyCount"] == 0


async def test_max_depth_zero_lets_replies_nest_without_limit(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, max_depth=0) as api:
        parent = await new_thread(api, "post")
        for _ in range(Settings().max_depth + 2):
            parent = await reply(api, parent)
        assert (await api.comment(parent))["depth"] == Settings().max_depth + 2


async def test_a_locked_thread_takes_no_comments_until_unlocked(api: Api) -> None:
    s = await scene(api)
    locked = await api.ok("lockThread", {"threadId": s.thread, "locked": True}, "moderator")
    assert (locked["id"], locked["locked"], locked["key"]) == (s.thread, True, "post")
    attempts = [
        ({"threadId": s.thread, "body": "Hello?"}, "threadId"),
        ({"parentId": s.comment, "body": "Hello?"}, "parentId"),
    ]
    for input, field in attempts:
        for who in ("author", "other"):
            await api.refused("addComment", input, who, "THREAD_LOCKED", field)
    by_key = {"threadKey": "post", "body": "Hello?"}
    payload = await api.mutate("addComment", by_key, "author")
    assert [e["code"] for e in payload["errors"]] == ["THREAD_LOCKED"]
    await api.ok("addComment", {"threadId": s.other_thread, "body": "Still open"}, "author")
    unlocked = await api.ok("lockThread", {"threadId": s.thread, "locked": False}, "moderator")
    assert unlocked["locked"] is False
    await api.ok("addComment", attempts[1][0], "author")
    await api.ok("addComment", by_key, "other")
    assert (await api.thread(s.thread))["commentCount"] == 3


async def test_a_locked_thread_is_read_only_for_all_but_moderators(api: Api) -> None:
    s = await scene(api)
    await api.ok("likeComment", {"commentId": s.comment}, "other")
    await api.ok("likeComment", {"commentId": s.comment}, "author")
    await api.ok("lockThread", {"threadId": s.thread, "locked": True}, "moderator")
    comment = {"commentId": s.comment}
    # Each write a reader could do, by whoever could do it were the thread open.
    refused = [
        ("addComment", {"threadId": s.thread, "body": "Hello?"}, "author", "threadId"),
        ("addComment", {"parentId": s.comment, "body": "Hello?"}, "other", "parentId"),
        ("addComment", {"threadKey": "post", "body": "Hello?"}, "other", "threadKey"),
        ("editComment", {**comment, "body": "Second thoughts"}, "author", "commentId"),
        ("deleteComment", comment, "author", "commentId"),
        ("likeComment", comment, "author", "commentId"),
        ("unlikeComment", comment, "other", "commentId"),
        ("removeComment", comment, "other", "commentId"),
    ]
    for mutation, input, who, field in refused:
        message = await api.refused(mutation, input, who, "THREAD_LOCKED", field)
        assert "locked" in message
    found = await api.comment(s.comment, "other")
    assert (found["body"], found["likeCount"], found["viewerHasLiked"]) == ("First!", 2, True)
    # The thread beside it takes likes as before.
    assert (await api.ok("likeComment", {"commentId": s.elsewhere}, "author"))["likeCount"] == 1

    # Moderators still act in the locked thread.
    added = await api.ok("addComment", {"parentId": s.comment, "body": "Closing."}, "moderator")
    await api.ok("editComment", {"commentId": added["id"], "body": "Closed."}, "moderator")
    assert (await api.ok("likeComment", comment, "moderator"))["likeCount"] == 3
    assert (await api.ok("unlikeComment", comment, "moderator"))["likeCount"] == 2
    await api.ok("deleteComment", {"commentId": added["id"]}, "moderator")
    assert (await api.ok("removeComment", comment, "moderator"))["state"] == "REMOVED"
    assert (await api.thread(s.thread))["commentCount"] == 0


async def test_a_locked_thread_named_by_key_is_refused_on_thread_key(api: Api) -> None:
    thread = thread_of(await new_thread(api, "post"))
    await api.ok("lockThread", {"threadId": thread, "locked": True}, "moderator")
    by_key = {"threadKey": "post", "body": "Hello?"}
    await api.refused("addComment", by_key, "author", "THREAD_LOCKED", "threadKey")


# -- who may open a thread ---------------------------------------------------------------------

PAGE = "https://example.com/blog/my-post"
ON_THE_SITE = {"thread_creation": "origin:https://example.com"}

# fmt: off
OPENINGS: list[tuple[str, dict[str, str], str, dict[str, str], bool]] = [
    # case                           settings                                          who          input beside title and body                                   opens
    ("development: anyone",          {},                                               "author",    {"threadKey": "any/thing"},                                   True),
    ("production: not a reader",     {"env": "production"},                            "author",    {"threadKey": "any/thing"},                                   False),
    ("production: a moderator",      {"env": "production"},                            "moderator", {"threadKey": "any/thing"},                                   True),
    ("moderators: not a reader",     {"thread_creation": "moderators"},                "other",     {"threadKey": "any/thing"},                                   False),
    ("anyone, in production",        {"env": "production", "thread_creation": "anyone"}, "other",   {"threadKey": "any/thing"},                                   True),
    ("pattern: a matching key",      {"thread_creation": "pattern:blog/[a-z0-9-]+"},   "author",    {"threadKey": "blog/my-post"},                                True),
    ("pattern: matched in part",     {"thread_creation": "pattern:blog/[a-z0-9-]+"},   "author",    {"threadKey": "blog/my-post/../x"},                           False),
    ("pattern: another key",         {"thread_creation": "pattern:blog/[a-z0-9-]+"},   "author",    {"threadKey": "shop/item"},                                   False),
    ("pattern: a moderator",         {"thread_creation": "pattern:blog/[a-z0-9-]+"},   "moderator", {"threadKey": "shop/item"},                                   True),
    ("origin: the page's path",      ON_THE_SITE,                                      "author",    {"threadKey": "/blog/my-post", "threadUrl": PAGE + "?a=1#c"}, True),
    ("origin: spelt otherwise",      ON_THE_SITE,                                      "author",    {"threadKey": "/blog/my-post",
                                                                                                     "threadUrl": "HTTPS://Example.COM:443/blog/my-post"},        True),
    ("origin: another site",         ON_THE_SITE,                                      "author",    {"threadKey": "/blog/my-post",
                                                                                                     "threadUrl": "https://example.net/blog/my-post"},            False),
    ("origin: another scheme",       ON_THE_SITE,                                      "author",    {"threadKey": "/blog/my-post",
                                                                                                     "threadUrl": "http://example.com/blog/my-post"},             False),
    ("origin: a site that ends so",  ON_THE_SITE,                                      "author",    {"threadKey": "/blog/my-post",
                                                                                                     "threadUrl": "https://example.com.evil.example/blog/my-post"}, False),
    ("origin: no address",           ON_THE_SITE,                                      "author",    {"threadKey": "/blog/my-post"},                               False),
    ("origin: not the page's path",  ON_THE_SITE,                                      "author",    {"threadKey": "/blog/future-post", "threadUrl": PAGE},        False),
    ("origin: a moderator",          ON_THE_SITE,                                      "moderator", {"threadKey": "anything"},                                    True),
]
# fmt: on


@pytest.mark.parametrize(
    ("settings", "who", "input", "opens"),
    [pytest.param(*rest, id=case) for case, *rest in OPENINGS],
)
async def test_who_may_open_a_thread(
    database_url: str,
    tmp_path: Path,
    settings: dict[str, str],
    who: str,
    input: dict[str, str],
    opens: bool,
) -> None:
    async with running(database_url, tmp_path, **settings) as api:
        first = {**input, "threadTitle": "My post", "body": "First!"}
        if not opens:
            await api.refused("addComment", first, who, FORBIDDEN, "threadKey")
            assert await api.count("threads") == 0
            return
        comment = await api.ok("addComment", first, who)
        assert comment["thread"]["commentCount"] == 1
        stored = await api.rows("SELECT key, title, url FROM threads")
        assert stored == [(input["threadKey"], "My post", input.get("threadUrl"))]


async def test_a_thread_opened_by_a_moderator_takes_everyones_comments(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, env="production") as api:
        await api.refused(
            "addComment",
            {"threadKey": "post", "threadTitle": "Mine", "body": "Hi"},
            "author",
            FORBIDDEN,
            "threadKey",
        )
        opened = await new_thread(api, "post", "moderator")
        await api.ok("addComment", {"threadKey": "post", "body": "By key"}, "author")
        await api.ok("addComment", {"threadId": thread_of(opened), "body": "By id"}, "other")
        await reply(api, opened, "author")
        assert (await api.thread(thread_of(opened)))["commentCount"] == 4


@pytest.mark.parametrize(
    "value",
    [
        "everyone",
        "pattern:",
        "pattern:(",
        "origin:",
        "origin:example.com",
        "origin:ftp://x.y",
        "origin:https://example.com/blog",
    ],
)
def test_a_bad_thread_creation_rule_stops_with_its_name(value: str) -> None:
    with pytest.raises(SettingsError, match="THREADQL_THREAD_CREATION"):
        Settings.from_env({"THREADQL_THREAD_CREATION": value})


async def test_an_existing_key_needs_no_title(api: Api) -> None:
    first = await new_thread(api, "post")
    again = await api.ok("addComment", {"threadKey": "post", "body": "Again"}, "other")
    assert again["thread"]["id"] == thread_of(first)
    assert again["thread"]["commentCount"] == 2
    assert await api.count("threads") == 1


# -- what writes leave behind ------------------------------------------------------------------


async def test_a_deleted_comment_keeps_its_replies_and_a_deleted_leaf_disappears(api: Api) -> None:
    root = await new_thread(api, "post", body="Root")
    thread = thread_of(root)
    child = await reply(api, root, "other", "Child")
    leaf = (await api.ok("addComment", {"threadId": thread, "body": "Leaf"}, "author"))["id"]

    deleted = await api.ok("deleteComment", {"commentId": root}, "author")
    assert (deleted["state"], deleted["author"], deleted["body"], deleted["bodyHtml"]) == (
        "DELETED",
        None,
        "",
        "",
    )
    assert (deleted["replyCount"], deleted["descendantCount"]) == (1, 1)
    listing = await api.thread(thread)
    assert listing["commentCount"] == 2
    comments = listing["comments"]
    assert comments["totalCount"] == 2
    assert [(n["id"], n["state"]) for n in comments["nodes"]] == [
        (root, "DELETED"),
        (leaf, "VISIBLE"),
    ]
    placeholder = comments["nodes"][0]
    assert (placeholder["author"], placeholder["body"]) == (None, "")
    assert placeholder["replies"]["totalCount"] == 1
    assert [n["id"] for n in placeholder["replies"]["nodes"]] == [child]

    await api.ok("deleteComment", {"commentId": leaf}, "author")
    comments = (await api.thread(thread))["comments"]
    assert comments["totalCount"] == 1
    assert [n["id"] for n in comments["nodes"]] == [root]

    await api.ok("deleteComment", {"commentId": child}, "other")  # the placeholder's last reply
    listing = await api.thread(thread)
    assert listing["commentCount"] == 0
    assert listing["comments"] == {"totalCount": 0, "nodes": []}
    rows = await api.rows("SELECT state, author_id, body, body_html FROM comments")
    assert rows == [("DELETED", None, "", "")] * 3
    # A deleted leaf is still reachable by id, as a placeholder.
    assert (await api.comment(leaf))["state"] == "DELETED"


async def test_a_removed_comment_in_the_middle_keeps_its_place(api: Api) -> None:
    root = await new_thread(api, "post", body="Root")
    thread = thread_of(root)
    middle = await reply(api, root, "other", "Middle")
    bottom = await reply(api, middle, "author", "Bottom")

    removed = await api.ok("removeComment", {"commentId": middle}, "moderator")
    assert (removed["state"], removed["author"], removed["body"]) == ("REMOVED", None, "")
    listing = await api.thread(thread)
    assert listing["commentCount"] == 2
    [top] = listing["comments"]["nodes"]
    assert (top["id"], top["replyCount"], top["descendantCount"]) == (root, 0, 1)
    assert top["replies"]["totalCount"] == 1
    [placeholder] = top["replies"]["nodes"]
    assert (placeholder["id"], placeholder["state"], placeholder["author"]) == (
        middle,
        "REMOVED",
        None,
    )
    assert [n["id"] for n in placeholder["replies"]["nodes"]] == [bottom]
    assert placeholder["replies"]["totalCount"] == 1
    reason = await api.rows(
        "SELECT removed_reason FROM comments WHERE thread_id = ? AND id = ?",
        ids.comment_key(middle),
    )
    assert reason == [(None,)]

    await api.ok("deleteComment", {"commentId": bottom}, "author")
    top = (await api.thread(thread))["comments"]["nodes"][0]
    assert (top["replyCount"], top["descendantCount"], top["replies"]["totalCount"]) == (0, 0, 0)
    assert top["replies"]["nodes"] == []


async def test_hiding_twice_changes_nothing(api: Api) -> None:
    root = await new_thread(api, "post")
    await api.ok("removeComment", {"commentId": root, "reason": "Spam"}, "moderator")
    before = await api.snapshot()
    again = await api.ok("deleteComment", {"commentId": root}, "moderator")
    assert again["state"] == "REMOVED"
    await api.ok("removeComment", {"commentId": root, "reason": "Other"}, "moderator")
    assert await api.snapshot() == before


async def test_the_author_deleting_twice_changes_nothing(api: Api) -> None:
    root = await new_thread(api, "post")
    await api.ok("deleteComment", {"commentId": root}, "author")
    before = await api.snapshot()
    again = await api.ok("deleteComment", {"commentId": root}, "author")
    assert again["state"] == "DELETED"
    assert await api.snapshot() == before


async def test_likes_are_idempotent_one_per_user(api: Api) -> None:
    comment = await new_thread(api, "post")
    liked = await api.ok("likeComment", {"commentId": comment}, "other")
    assert (liked["likeCount"], liked["viewerHasLiked"]) == (1, True)
    before = await api.snapshot()
    again = await api.ok("likeComment", {"commentId": comment}, "other")
    assert (again["likeCount"], again["viewerHasLiked"]) == (1, True)
    assert await api.snapshot() == before
    assert (await api.ok("likeComment", {"commentId": comment}, "moderator"))["likeCount"] == 2
    assert await api.count("likes") == 2

    for who, has_liked in [
        ("other", True),
        ("moderator", True),
        ("author", False),
        (ANONYMOUS, False),
    ]:
        seen = await api.comment(comment, who)
        assert (seen["likeCount"], seen["viewerHasLiked"]) == (2, has_liked), who

    before = await api.snapshot()
    never = await api.ok("unlikeComment", {"commentId": comment}, "author")
    assert (never["likeCount"], never["viewerHasLiked"]) == (2, False)
    assert await api.snapshot() == before

    for _ in range(2):
        unliked = await api.ok("unlikeComment", {"commentId": comment}, "other")
        assert (unliked["likeCount"], unliked["viewerHasLiked"]) == (1, False)
    users = await api.rows("SELECT u.sub FROM likes l JOIN users u ON u.id = l.user_id")
    assert users == [("host:mo",)]


async def test_viewer_fields_answer_for_the_token_user(api: Api) -> None:
    comment = await new_thread(api, "post")
    expected = {
        ANONYMOUS: (False, False),
        "author": (True, True),
        "other": (False, False),
        "moderator": (False, True),
    }
    for who, (can_edit, can_delete) in expected.items():
        seen = await api.comment(comment, who)
        assert (seen["viewerCanEdit"], seen["viewerCanDelete"]) == (can_edit, can_delete), who
        assert seen["author"]["name"] == "Alice"

    await api.ok("likeComment", {"commentId": comment}, "author")
    assert (await api.comment(comment, "author"))["viewerHasLiked"] is True
    assert (await api.comment(comment, "other"))["viewerHasLiked"] is False

    await api.ok("deleteComment", {"commentId": comment}, "author")
    for who in expected:
        seen = await api.comment(comment, who)
        assert (seen["viewerCanEdit"], seen["viewerCanDelete"]) == (False, False), who
        # The placeholder keeps its likes, and says whose they are.
        assert seen["likeCount"] == 1
        assert seen["viewerHasLiked"] is (who == "author"), who


async def test_viewer_is_the_signed_in_user(api: Api) -> None:
    query = "{ viewer { id name avatarUrl } }"
    assert await api.data(query) == {"viewer": None}
    viewer = (await api.data(query, who="author"))["viewer"]
    assert viewer["name"] == "Alice"
    assert viewer["avatarUrl"] == f"{BASE_URL}/avatars/Alice.svg"
    assert ids.decode(viewer["id"])[0] == "User"
    author = await api.comment(await new_thread(api, "post"))
    assert author["author"]["id"] == viewer["id"]
    assert (await api.data(query, who="other"))["viewer"]["name"] == "Bob"

    pictured = mint(SECRET, sub="host:pia", name="Pia", avatar="https://img.example/pia.png")
    body = await api.post(query, authorization=f"Bearer {pictured}")
    assert body["data"]["viewer"]["avatarUrl"] == "https://img.example/pia.png"
    assert body["data"]["viewer"]["name"] == "Pia"


# -- users: what a token stores, who else sees them ---------------------------------------------

NODE_QUERY = "query ($id: ID!) { node(id: $id) { id ... on User { name } } }"


def bearer_for(sub: str, name: str) -> str:
    return f"Bearer {mint(SECRET, sub=sub, name=name)}"


async def user_id(api: Api, authorization: str) -> str:
    """The global id of the token's user, whom this request stores."""
    body = await api.post("{ viewer { id } }", authorization=authorization)
    found: str = body["data"]["viewer"]["id"]
    return found


async def add_as(api: Api, authorization: str, input: dict[str, Any]) -> dict[str, Any]:
    body = await api.post(MUTATIONS["addComment"], {"input": input}, authorization=authorization)
    comment: dict[str, Any] = body["data"]["addComment"]["comment"]
    return comment


async def test_node_names_a_user_only_through_a_visible_comment(api: Api) -> None:
    """Signing in, moderating, or writing what is now deleted or removed makes nobody public;
    each user still finds themselves."""
    comment = await new_thread(api, "post")
    alice = (await api.comment(comment))["author"]["id"]
    await api.ok("deleteComment", {"commentId": await reply(api, comment, "other")}, "other")
    carol_token = bearer_for("host:carol", "Carol")
    spam = await add_as(api, carol_token, {"parentId": comment, "body": "Buy now"})
    await api.ok("removeComment", {"commentId": spam["id"]}, "moderator")
    own_tokens = {
        "Bob": f"Bearer {token('other')}",
        "Carol": carol_token,
        "Mo": f"Bearer {token('moderator')}",
        "Sam": bearer_for("host:sam", "Sam"),
    }
    hidden = {name: (own, await user_id(api, own)) for name, own in own_tokens.items()}

    async def node(global_id: str, authorization: str | None = None) -> Any:
        body = await api.post(NODE_QUERY, {"id": global_id}, authorization=authorization)
        assert "errors" not in body, body
        return body["data"]["node"]

    assert await node(alice) == {"id": alice, "name": "Alice"}
    for name, (own_token, global_id) in hidden.items():
        assert await node(global_id) is None, name
        assert await node(global_id, f"Bearer {token('author')}") is None, name
        if name != "Mo":
            assert await node(global_id, f"Bearer {token('moderator')}") is None, name
        assert await node(global_id, own_token) == {"id": global_id, "name": name}

    await api.ok("deleteComment", {"commentId": comment}, "author")
    assert await node(alice) is None, "the last visible comment is gone"


async def test_users_by_id_are_one_statement_however_many(api: Api) -> None:
    public = []
    for n in range(4):
        input = {"threadKey": "post", "threadTitle": "Post", "body": f"Hi from {n}"}
        public.append((await add_as(api, bearer_for(f"host:w{n}", f"W{n}"), input))["author"]["id"])
    wanted = [*public, await user_id(api, bearer_for("host:lurker", "L")), ids.encode("User", 999)]
    query = "{ " + " ".join(f'u{n}: node(id: "{i}") {{ id }}' for n, i in enumerate(wanted)) + " }"
    before = api.storage.statements
    data = await api.data(query)
    assert api.storage.statements - before == 1
    assert list(data.values()) == [*({"id": i} for i in public), None, None]


async def test_a_name_that_changes_back_is_stored_back(api: Api) -> None:
    """Tokens naming A, then B, then A again: the viewer and every reader see the same name,
    the one signed last."""
    signed_a, signed_b = bearer_for("host:nina", "Nina A"), bearer_for("host:nina", "Nina B")
    input = {"threadKey": "post", "threadTitle": "Post", "body": "Hi"}
    comment = (await add_as(api, signed_a, input))["id"]
    renamed = await api.post("{ viewer { name } }", authorization=signed_b)
    assert renamed["data"] == {"viewer": {"name": "Nina B"}}
    query = (
        "query ($id: ID!) { viewer { name } comment(id: $id) { author { name } }"
        ' thread(key: "post") { comments { nodes { author { name } } } } }'
    )
    body = await api.post(query, {"id": comment}, authorization=signed_a)
    assert body["data"] == {
        "viewer": {"name": "Nina A"},
        "comment": {"author": {"name": "Nina A"}},
        "thread": {"comments": {"nodes": [{"author": {"name": "Nina A"}}]}},
    }
    listing = await api.thread(thread_of(comment))
    assert listing["comments"]["nodes"][0]["author"] == {"name": "Nina A"}
    assert await api.rows("SELECT name FROM users") == [("Nina A",)]


# Names as a host site may sign them, and what threadql keeps of each: no control character,
# no direction control, whitespace runs as one space; marks and other scripts as they are.
NAMES = [
    ("Mal\x00lory", "Mallory"),
    ("Mal\u202elory", "Mallory"),
    ("\u2066Mallory\u2069 \u202bthe\u202c great\u202a\u202d", "Mallory the great"),
    ("Mal\x07lo\x1b[31mry\x7f\x9b", "Mallo[31mry"),
    (" Mal\nlory\t\r\x0b\x0c\x85\u2028Smith ", "Mal lory Smith"),
    ("Mallory\ufffe\uffff\ud800", "Mallory"),
    (
        "\u05de\u05dc\u05d5\u05e8\u05d9 \u200f\U0001f600",
        "\u05de\u05dc\u05d5\u05e8\u05d9 \u200f\U0001f600",
    ),
]


@pytest.mark.parametrize(("name", "kept"), NAMES)
async def test_names_keep_no_control_or_direction_characters(
    api: Api, name: str, kept: str
) -> None:
    body = await api.post(
        "{ viewer { name avatarUrl } }", authorization=bearer_for("host:mallory", name)
    )
    assert body["data"]["viewer"]["name"] == kept
    assert await api.rows("SELECT name FROM users") == [(kept,)]
    avatar = await api.http.get(body["data"]["viewer"]["avatarUrl"])
    assert avatar.status_code == 200
    assert ElementTree.fromstring(avatar.content).get("aria-label") == kept


def bad_authorization(kind: str) -> str:
    sub, name, _ = PEOPLE["author"]
    later = int(time.time()) + 3600
    if kind == "garbage":
        return "Bearer not.a.token"
    if kind == "expired":
        return f"Bearer {token('author', expires_in=-60)}"
    if kind == "wrong secret":
        return f"Bearer {token('author', WRONG_SECRET)}"
    if kind == "unsigned":
        return "Bearer " + jwt.encode(
            {"sub": sub, "name": name, "exp": later}, None, algorithm="none"
        )
    if kind == "no name claim":
        return "Bearer " + jwt.encode({"sub": sub, "exp": later}, SECRET, algorithm="HS256")
    if kind == "no expiry":
        return "Bearer " + jwt.encode({"sub": sub, "name": name}, SECRET, algorithm="HS256")
    if kind == "blank name":
        return "Bearer " + mint(SECRET, sub=sub, name=" \u202e\x00\u2066 \x07 ")
    if kind == "control characters in sub":
        return "Bearer " + mint(SECRET, sub="host:\x00\ud800", name=name)
    if kind == "control character in avatar":
        return "Bearer " + mint(SECRET, sub=sub, name=name, avatar="https://img.example/\x00")
    if kind == "unknown role":
        return f"Bearer {mint(SECRET, sub=sub, name=name, role='owner')}"
    if kind == "tampered":
        header, _claims, signature = token("author").split(".")
        forged = token("moderator").split(".")[1]
        return f"Bearer {header}.{forged}.{signature}"
    if kind == "empty bearer":
        return "Bearer "
    assert kind == "other scheme"
    return f"Basic {token('author')}"


BAD_TOKENS = [
    "garbage",
    "expired",
    "wrong secret",
    "unsigned",
    "no name claim",
    "no expiry",
    "unknown role",
    "blank name",
    "control characters in sub",
    "control character in avatar",
    "tampered",
    "empty bearer",
    "other scheme",
]


@pytest.mark.parametrize("kind", BAD_TOKENS)
@pytest.mark.parametrize(
    "query",
    [
        pytest.param("{ viewer { name } }", id="viewer"),
        pytest.param("{ threads { totalCount } }", id="plain-query"),
        pytest.param(
            'mutation { addComment(input: {threadKey: "post", threadTitle: "T", body: "Hi"})'
            " { comment { id } } }",
            id="mutation",
        ),
    ],
)
async def test_a_bad_token_is_401_for_any_request(api: Api, kind: str, query: str) -> None:
    before = await api.snapshot()
    body = await api.post(query, authorization=bad_authorization(kind), status=401)
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"]
    assert await api.snapshot() == before
    assert await api.count("users") == 0


async def test_a_bad_token_names_the_bearer_scheme(api: Api) -> None:
    response = await api.http.post(
        "/graphql",
        json={"query": "{ viewer { name } }"},
        headers={"Authorization": bad_authorization("expired")},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "expired" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("secret", ["short", "x" * 31])
def test_production_refuses_a_short_secret(secret: str) -> None:
    environ = {"THREADQL_ENV": "production", "THREADQL_JWT_SECRET": secret}
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        Settings.from_env(environ)
    assert Settings.from_env({**environ, "THREADQL_JWT_SECRET": "x" * 32}).jwt_secret == "x" * 32
