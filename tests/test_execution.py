"""Compiled plans and the shortcut for plain leaves answer exactly as graphql-core does,
errors too, with the same batches; documents are parsed and validated once per text."""

from __future__ import annotations

import asyncio
import base64
import enum
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import graphql
import pytest
import strawberry
from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    ValidationRule,
    parse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from strawberry.dataloader import DataLoader

from bench.queries import W1
from db.rows import Actor, CommentOrder, CommentState
from db.synthetic import generate_thread
from resolvers import ids
from resolvers.context import Context
from resolvers.cursors import comment_cursor, thread_cursor
from schema import build_schema
from schema import schema as threadql_schema
from schema.documents import STRAWBERRY_RULES, CachedDocuments, Documents
from schema.execution import Execution
from schema.execution import observed as observed_execution
from schema.plans import ObjectPlan, compile_query
from server.graphql import EXAMPLE_QUERY

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tests.conftest import GraphQLClient


@strawberry.enum
class Mood(enum.Enum):
    CALM = "calm"
    TENSE = "tense"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Item(Named):
    count: int
    maybe: str | None
    mood: Mood
    tags: list[str]
    must: str  # None in some rows: graphql-core's null error, not a crash

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    def fragile(self) -> str:
        raise RuntimeError("no shout today")

    @strawberry.field
    async def later(self) -> int:
        await asyncio.sleep(0)
        return self.count + 1

    @strawberry.field
    async def children(
        self, info: strawberry.Info, first: int = 2, mood: Mood | None = None
    ) -> list[Item]:
        """Loaded in batches: one for every level of a query."""
        names = await info.context["children"].load(self.name)
        return [item(name, mood=mood or Mood.CALM) for name in names[:first]]

    @strawberry.field(graphql_type=list[str])  # type: ignore[untyped-decorator]
    def names(self, info: strawberry.Info) -> Awaitable[list[str]]:
        """The loader's own future, which it keeps for the key."""
        return info.context["children"].load(self.name)  # type: ignore[no-any-return]

    @strawberry.field
    def echo(self, text: str = "quiet", times: int = 1) -> str:
        return text * times


class Unreadable(Item):
    """An Item whose plain `maybe` fails as it is read."""

    @property
    def maybe(self) -> str | None:
        raise RuntimeError("no value today")

    @maybe.setter
    def maybe(self, _: str | None) -> None:
        pass


def item(
    name: str, count: Any = 1, must: Any = "here", maybe: str | None = None, mood: Mood = Mood.CALM
) -> Item:
    return Item(name=name, count=count, maybe=maybe, mood=mood, tags=["a", "b"], must=must)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [item("one"), item("two", maybe="yes"), item("three", count=2**40)]

    @strawberry.field
    def holes(self) -> list[Item | None]:
        unreadable = Unreadable(
            name="unreadable", count=1, maybe=None, mood=Mood.TENSE, tags=[], must=""
        )
        return [item("fine"), item("nothing", must=None), item("odd", count="many"), unreadable]


PLAIN = strawberry.Schema(Query, types=[Item])
FAST = strawberry.Schema(Query, types=[Item], execution_context_class=Execution)


class Batches:
    """A context whose loader notes each batch it loads; fresh loaders note afresh."""

    def __init__(self) -> None:
        self.renewals = -1
        self.fresh_loaders()

    def fresh_loaders(self) -> DataLoader[str, list[str]]:
        self.renewals += 1
        batches: list[list[str]] = []
        self.batches = batches
        self.loader: DataLoader[str, list[str]] = DataLoader(partial(self.load, batches))
        return self.loader

    @staticmethod
    async def load(batches: list[list[str]], names: list[str]) -> list[list[str]]:
        batches.append(sorted(names))
        return [[f"{name}.{n}" for n in range(3)] for name in names]

    def __getitem__(self, name: str) -> DataLoader[str, list[str]]:
        assert name == "children"
        return self.loader


async def both(query: str, variables: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The answer and the batches of each schema."""
    answers = []
    for schema in (PLAIN, FAST):
        context = Batches()
        result = await schema.execute(query, variable_values=variables, context_value=context)
        errors = [e.formatted for e in result.errors or []]
        answers.append(({"data": result.data, "errors": errors}, context.batches))
    return answers[0], answers[1]


QUERIES = [
    "{ items { name count maybe mood tags shout later } }",
    "{ items { n: name, c: count, n2: name, __typename } }",
    "{ holes { name must } }",
    "{ holes { name count } }",
    "{ holes { name maybe } }",
    "{ items { name fragile } }",
    "{ holes { ...F } } fragment F on Item { name mood must maybe }",
    "{ items { ... on Named { name } ... on Item { count } __typename } }",
    "{ items { name children { name children(first: 3) { name mood } } } }",
    "{ items { a: children(first: 1) { name } b: children(mood: TENSE) { mood } } }",
    "{ items { name ...A ...B } } fragment A on Item { children { name } }"
    " fragment B on Item { children { count } }",
    '{ items { echo e2: echo(text: "hey", times: 2) } }',
    "{ items { name @include(if: true) count @skip(if: true) } }",
    "{ items { children { name fragile } } }",
    "{ items { children(first: -1) { name } } }",
    "{ items { names count } }",  # the loader's futures outlive an abandoned plan
    "query Named { items { name } } query Other { holes { name } }",
]
VARIABLES = [
    ("query ($n: Int!) { items { children(first: $n) { name } } }", {"n": 1}),
    ("query ($m: Mood) { items { children(mood: $m) { mood } } }", {"m": "TENSE"}),
    ('query ($t: String = "x") { items { echo(text: $t, times: 3) } }', {}),
    ("query ($n: Int!) { items { name } }", {"n": "not a number"}),
]


@pytest.mark.parametrize("query", QUERIES)
async def test_answers_as_graphql_core_does(query: str) -> None:
    if query.startswith("query Named"):
        for name in ("Named", "Other"):
            expected = await PLAIN.execute(query, operation_name=name, context_value=Batches())
            actual = await FAST.execute(query, operation_name=name, context_value=Batches())
            assert (actual.data, actual.errors) == (expected.data, expected.errors)
        return
    expected, actual = await both(query)
    assert actual == expected


@pytest.mark.parametrize(("query", "variables"), VARIABLES)
async def test_variables_as_graphql_core_does(query: str, variables: dict[str, Any]) -> None:
    expected, actual = await both(query, variables)
    assert actual == expected


async def test_field_errors_are_answered_by_the_plan() -> None:
    """A resolver's error is located and nulls what graphql-core nulls, in the plan's run."""
    context = Batches()
    result = await FAST.execute("{ items { name fragile } }", context_value=context)
    expected = await PLAIN.execute("{ items { name fragile } }", context_value=Batches())
    assert (result.data, result.errors) == (expected.data, expected.errors)
    assert context.renewals == 0


async def test_an_abandoned_plan_leaves_graphql_core_fresh_loaders() -> None:
    """A value no plan expects (a count beyond Int, read in place) sends the operation to
    graphql-core, which loads what it would load alone, none of the plan's futures."""
    query = "{ items { names count } }"
    context, plain = Batches(), Batches()
    result = await FAST.execute(query, context_value=context)
    expected = await PLAIN.execute(query, context_value=plain)
    for _ in range(3):  # the batches of items nulled by the error load in the background
        await asyncio.sleep(0)
    assert (result.data, result.errors) == (expected.data, expected.errors)
    assert context.renewals == 1
    assert context.batches == plain.batches == [["one", "three", "two"]]


async def test_one_batch_for_each_level() -> None:
    query = "{ items { children { children { name } } } }"
    (_, plain_batches), (_, fast_batches) = await both(query)
    assert len(fast_batches) == 2 == len(plain_batches)
    assert fast_batches[0] == ["one", "three", "two"]


async def test_answers_keep_the_order_of_the_selection() -> None:
    """Awaited fields fill in later, in their place: clients may compare texts."""
    result = await FAST.execute(
        "{ items { children { name } name echo shout } }", context_value=Batches()
    )
    assert result.data is not None
    assert list(result.data["items"][0]) == ["children", "name", "echo", "shout"]


async def test_shortcut_errors_are_located() -> None:
    """A null in a non-null leaf and a value its scalar refuses each null their item."""
    result = await FAST.execute("{ holes { name must count } }")
    assert result.data == {
        "holes": [
            {"name": "fine", "must": "here", "count": 1},
            None,
            None,
            {"name": "unreadable", "must": "", "count": 1},
        ]
    }
    assert sorted(tuple(e.path or ()) for e in result.errors or []) == [
        ("holes", 1, "must"),
        ("holes", 2, "count"),
    ]


def test_documents_parse_each_text_once_within_the_bound() -> None:
    documents = Documents(maxsize=2, max_tokens=100)
    first = documents.parse("{ a }")
    assert documents.parse("{ a }") is first
    documents.parse("{ b }")
    documents.parse("{ c }")  # the bound pushes "{ a }" out
    assert documents.parse("{ a }") is not first


def test_documents_refuse_too_many_tokens_every_time() -> None:
    documents = Documents(maxsize=2, max_tokens=5)
    for _ in range(2):
        with pytest.raises(GraphQLError, match="more than 5 tokens"):
            documents.parse("{ a b c d e f g }")


def test_each_document_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    validations: list[str] = []
    validated: list[str] = []  # the text of each document that `validate` is called with

    def validate(schema: Any, document: Any, *rules: Any, **options: Any) -> Any:
        validated.append(document.loc.source.body)
        return graphql.validate(schema, document, *rules, **options)

    monkeypatch.setattr("schema.documents.validate", validate)

    class Counted(ValidationRule):
        def enter_document(self, *_: object) -> None:
            validations.append("validated")

    documents = Documents(maxsize=8, max_tokens=1_000)

    class Rules(strawberry.extensions.SchemaExtension):
        def on_operation(self):  # type: ignore[no-untyped-def]
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                Counted,
            )
            yield

    schema = strawberry.Schema(Query, extensions=[Rules, lambda: CachedDocuments(documents)])
    for _ in range(3):
        assert schema.execute_sync("{ items { name } }").errors is None
        errors = schema.execute_sync("{ items { nope } }").errors
        assert errors is not None
        assert errors[0].message.startswith("Cannot query field 'nope' on type 'Item'.")
    # The added rule measures the valid document only; graphql-core's rules see both, once.
    assert validations == ["validated"]
    assert validated == ["{ items { name } }"] * 2 + ["{ items { nope } }"]


def test_documents_validate_with_the_rules_strawberry_adds(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Documents` validates as Strawberry's `validate_document` does, with graphql-core's
    `hide_suggestions` besides: this fails when Strawberry adds a rule of its own."""
    from strawberry.schema import schema as strawberry_schema  # noqa: PLC0415

    added: list[tuple[object, ...]] = []

    def validate(_schema: object, _document: object, rules: tuple[object, ...]) -> list[Any]:
        added.append(rules)
        return []

    monkeypatch.setattr(strawberry_schema, "validate", validate)
    strawberry_schema.validate_document(threadql_schema._schema, parse("{ viewer { id } }"), ())
    assert added == [STRAWBERRY_RULES]


def plan_of(schema: strawberry.Schema, query: str) -> ObjectPlan | None:
    document = parse(query)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return compile_query(schema._schema, operations[0], fragments)


@pytest.mark.parametrize(
    ("schema", "query"),
    [
        *((FAST, query) for query in [*QUERIES[:8], QUERIES[9], VARIABLES[0][0]]),
        (threadql_schema, W1.query),
        (threadql_schema, EXAMPLE_QUERY),
    ],
)
def test_pages_compile_to_plans(schema: strawberry.Schema, query: str) -> None:
    assert plan_of(schema, query) is not None


@pytest.mark.parametrize(
    "query",
    [
        "{ items { name @include(if: true) } }",  # directives: collect_fields decides
        "mutation { addComment { id } }",
        '{ node(id: "x") { id } }',  # an interface: only the value knows its type
        "{ __schema { types { name } } }",
    ],
)
def test_other_operations_run_the_ordinary_way(query: str) -> None:
    assert plan_of(FAST if "items" in query else threadql_schema, query) is None


# Two fields load the same page of the same thread; the second's sibling fails.
SHARED_BATCH = """{
  a: thread(key: "demo") { comments { totalCount } }
  b: thread(key: "demo") { comments { totalCount } x: comments(first: -1)DIRECTIVE { totalCount } }
}"""


@pytest.mark.parametrize("directive", ["", " @include(if: true)"], ids=["plan", "graphql-core"])
async def test_a_failing_field_leaves_a_shared_batch_to_the_others(
    gql: GraphQLClient, directive: str
) -> None:
    """graphql-core cancels the siblings of a field whose error reaches their object; the
    page they wait for is the one `a` waits for too, and stays `a`'s."""
    body = await gql(SHARED_BATCH.replace("DIRECTIVE", directive))
    assert body["data"] == {"a": {"comments": {"totalCount": 17}}, "b": None}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["b", "x"], "BAD_USER_INPUT")
    ]


# -- threadql's schema: plans against graphql-core's own execution, on the same data ----------

CORE_THREADQL = build_schema(plans=False)


def context_of(app: Starlette) -> Context:
    """An anonymous reader's context on the app's storage, as a request gets it."""
    scope = {"type": "http", "app": app, "method": "POST", "path": "/graphql", "headers": []}
    state = app.state
    return Context(
        storage=state.storage,
        broker=state.broker,
        settings=state.settings,
        request=Request(scope),
        response=None,
        base_url="http://threadql.test",
    )


async def answers_and_statements(
    app: Starlette, query: str, variables: dict[str, Any] | None = None
) -> list[tuple[dict[str, Any], int]]:
    """The whole answer of plans and of graphql-core, and the statements each took."""
    storage = app.state.storage
    found = []
    for schema in (threadql_schema, CORE_THREADQL):
        before = storage.statements
        result = await schema.execute(query, variables, context_value=context_of(app))
        errors = [error.formatted for error in result.errors or []]
        found.append(({"data": result.data, "errors": errors}, storage.statements - before))
    return found


USER_ERRORS = [
    '{ threads(first: -1) { totalCount } thread(key: "t2") { comments(first: 101) { totalCount } } }',
    '{ threads { totalCount } thread(key: "demo") { comments(first: -1) { totalCount } } }',
    SHARED_BATCH.replace("DIRECTIVE", ""),
    '{ thread(key: "demo") { comments(first: 3) { nodes { excerpt(maxLength: 0) { text } } } } }',
    '{ a: thread(key: "t2") { key } b: thread(id: "nope") { key } c: comment(id: "x") { id } }',
    '{ thread(key: "demo") { ...F ...F } } fragment F on Thread { comments(first: -1) { totalCount } }',
]


@pytest.mark.parametrize("query", USER_ERRORS)
async def test_user_errors_are_graphql_cores_in_one_run(app: Starlette, query: str) -> None:
    """A client's mistake is answered by the plan, exactly as graphql-core answers it
    (errors, their order and what they null), and costs no second run."""
    await app.state.storage.create_thread("t2", "Two", None, datetime.now(UTC))
    (plan, plan_statements), (core, core_statements) = await answers_and_statements(app, query)
    assert plan == core
    assert plan["errors"]
    assert plan_statements == core_statements


# -- random documents: plans against graphql-core ---------------------------------------------


def forge(value: object) -> str:
    """A cursor as a client could write one."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# What each type offers: leaves, and object fields with the kind of arguments they take.
LEAVES = {
    "Thread": ["id", "key", "title", "url", "createdAt", "locked", "commentCount"],
    "Comment": [
        *("id", "depth", "body", "state", "createdAt", "editedAt", "likeCount"),
        *("viewerHasLiked", "viewerCanEdit", "viewerCanDelete", "replyCount", "descendantCount"),
    ],
    "CommentConnection": ["totalCount"],
    "ThreadConnection": ["totalCount"],
    "PageInfo": ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"],
    "User": ["id", "name", "avatarUrl"],
    "Excerpt": ["text", "truncated"],
    "CommentEdge": ["cursor"],
    "ThreadEdge": ["cursor"],
    "Query": [],
}
OBJECTS: dict[str, dict[str, tuple[str, str | None]]] = {
    "Query": {
        "thread": ("Thread", "thread"),
        "threads": ("ThreadConnection", "threads"),
        "comment": ("Comment", "comment"),
        "node": ("Node", "node"),
        "viewer": ("User", None),
    },
    "Thread": {"comments": ("CommentConnection", "page")},
    "Comment": {
        "author": ("User", None),
        "excerpt": ("Excerpt", "excerpt"),
        "thread": ("Thread", None),
        "parent": ("Comment", None),
        "replies": ("CommentConnection", "page"),
    },
    "CommentConnection": {
        "nodes": ("Comment", None),
        "edges": ("CommentEdge", None),
        "pageInfo": ("PageInfo", None),
    },
    "ThreadConnection": {
        "nodes": ("Thread", None),
        "edges": ("ThreadEdge", None),
        "pageInfo": ("PageInfo", None),
    },
    "CommentEdge": {"node": ("Comment", None)},
    "ThreadEdge": {"node": ("Thread", None)},
    "PageInfo": {},
    "User": {},
    "Excerpt": {},
}
FIRSTS = [0, 1, 2, 3, 100, -1, 101]
# The demo thread is thread 1 with comments 1 to 28; "t2" follows with 29 to 58.
IDS = [
    ids.encode("Thread", 1),
    ids.encode("Thread", 2),
    ids.encode("Thread", 999),
    ids.encode("Comment", 1, 3),
    ids.encode("Comment", 2, 31),
    ids.encode("Comment", 2, 3),  # a comment of another thread
    ids.encode("Comment", 1, 999),
    ids.encode("User", 1),
    "nope",
]
CURSORS = [
    *(
        comment_cursor(CommentOrder(order), key)
        for order in ("OLDEST", "NEWEST")
        for key in [("2020-01-01T00:00:00.000000Z", 5), ("2025-01-01T02:00:00.000000Z", 30)]
    ),
    comment_cursor(CommentOrder.TOP, (1, "2020-01-01T00:00:00.000000Z", 5)),
    thread_cursor(2),
    "nope",
    forge(["OLDEST", "x", 1]),
]


class Document:
    """A query under construction: its variables, their values and its fragments."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.definitions: list[str] = []
        self.values: dict[str, Any] = {}
        self.fragments: dict[str, str] = {}
        self.names = 0
        # Directives leave the operation to graphql-core: in a quarter of the documents.
        self.with_directives = not draw(st.integers(0, 3))

    def coin(self) -> bool:
        return self.draw(st.booleans())

    def fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def value(self, graphql_type: str, choices: list[Any]) -> str:
        """A literal, or a variable with or without a default, given a value or not."""
        draw = self.draw
        required = graphql_type.endswith("!")
        values = st.sampled_from(choices if required else [None, *choices])
        if not draw(st.integers(0, 2)):
            name = self.fresh("v")
            default = draw(values)
            self.definitions.append(
                f"${name}: {graphql_type}" + ("" if default is None else f" = {literal(default)}")
            )
            if draw(st.booleans()) or (required and default is None):
                value = draw(values)
                self.values[name] = value.name if isinstance(value, Enum) else value
            return f"${name}"
        return literal(draw(values))

    def arguments(self, kind: str | None) -> str:
        draw = self.draw
        wanted: list[tuple[str, str, list[Any]]] = []
        if kind == "page":
            wanted = [
                ("first", "Int", FIRSTS),
                ("after", "String", CURSORS),
                ("orderBy", "CommentOrder", [Enum("OLDEST"), Enum("NEWEST"), Enum("TOP")]),
            ]
        elif kind == "threads":
            wanted = [("first", "Int", FIRSTS), ("after", "String", CURSORS)]
        elif kind == "excerpt":
            wanted = [("maxLength", "Int", [0, 1, 12, 20_000])]
        elif kind == "thread":
            if draw(st.booleans()):
                wanted = [("key", "String", ["demo", "t2", "missing"])]
            else:
                wanted = [("id", "ID", IDS)]
        elif kind in ("comment", "node"):
            return f"(id: {literal(draw(st.sampled_from(IDS)))})"
        given = [
            f"{name}: {self.value(graphql_type, choices)}"
            for name, graphql_type, choices in wanted
            if draw(st.booleans()) or kind == "thread"
        ]
        return f"({', '.join(given)})" if given else ""

    def directive(self) -> str:
        draw = self.draw
        if not self.with_directives or draw(st.integers(0, 4)):
            return ""
        name = draw(st.sampled_from(["include", "skip"]))
        return f" @{name}(if: {self.value('Boolean!', [True, False])})"

    def selection(self, type_name: str, depth: int) -> str:
        draw = self.draw
        if type_name == "Node":
            parts = ["id", "__typename"]
            for target in ("Comment", "Thread", "User"):
                if draw(st.booleans()):
                    parts.append(f"... on {target} {{ {self.selection(target, depth)} }}")
            return " ".join(parts)
        leaves = LEAVES[type_name]
        objects = OBJECTS[type_name] if depth > 0 else {}
        parts = [draw(st.sampled_from(leaves))] if leaves else []
        for _ in range(draw(st.integers(0 if leaves else 1, 3))):
            if leaves and self.coin():
                leaf = draw(st.sampled_from([*leaves, "__typename"]))
                alias = f"{self.fresh('a')}: " if not draw(st.integers(0, 3)) else ""
                parts.append(f"{alias}{leaf}{self.directive()}")
            elif objects:
                name = draw(st.sampled_from(sorted(objects)))
                if type_name == "Query" and name == "node" and draw(st.integers(0, 2)):
                    name = "thread"  # node is an interface: the whole operation has no plan
                field_type, kind = objects[name]
                arguments = self.arguments(kind)
                alias = f"{self.fresh('a')}: " if arguments and draw(st.integers(0, 7)) else ""
                inner = self.selection(field_type, depth - 1)
                parts.append(f"{alias}{name}{arguments}{self.directive()} {{ {inner} }}")
        if type_name in ("Comment", "Thread") and depth > 0 and not draw(st.integers(0, 3)):
            parts.append(self.spread(type_name, depth))
        if leaves and not draw(st.integers(0, 5)):
            inner = self.selection(type_name, depth - 1) if depth > 0 else leaves[0]
            parts.append(f"... on {type_name}{self.directive()} {{ {inner} }}")
        return " ".join(parts)

    def spread(self, type_name: str, depth: int) -> str:
        """A named fragment, new or already defined, spread once or twice."""
        known = [name for name, body in self.fragments.items() if f" on {type_name} " in body]
        if known and self.coin():
            name = self.draw(st.sampled_from(known))
        else:
            name = self.fresh("F")
            self.fragments[name] = ""  # named before its body, which may spread others
            body = self.selection(type_name, min(depth - 1, 2))
            self.fragments[name] = f"fragment {name} on {type_name} {{ {body} }}"
        return " ".join([f"...{name}{self.directive()}"] * self.draw(st.integers(1, 2)))


@dataclass(frozen=True)
class Enum:
    name: str


def literal(value: Any) -> str:
    if isinstance(value, Enum):
        return value.name
    return json.dumps(value)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    document = Document(draw)
    body = document.selection("Query", draw(st.integers(1, 5)))
    header = f"query Random({', '.join(document.definitions)})" if document.definitions else ""
    fragments = [text for text in document.fragments.values() if text]
    return " ".join([header, f"{{ {body} }}", *fragments]), document.values


@pytest.fixture
async def differential_app(app: Starlette) -> Starlette:
    """The demo thread and a second one with likes, replies and a deleted comment."""
    storage = app.state.storage
    thread = await generate_thread(storage, "t2", top_level=6, fanout=(2, 1), authors=3)
    assert thread.id == 2
    reader = await storage.upsert_user("reader", "Reader", None)
    for comment_id in (29, 31, 32, 41, 50):
        await storage.set_like((thread.id, comment_id), Actor(reader.id, False), True)
    await storage.hide_comment((thread.id, 30), Actor(reader.id, True), CommentState.DELETED)
    return app


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=documents())
async def test_random_documents_answer_as_graphql_core_does(
    differential_app: Starlette, document: tuple[str, dict[str, Any]]
) -> None:
    """Whole answers, errors included. Where graphql-core's own answer depends on which of
    two reads comes back first, the plans' answer is one of graphql-core's."""
    query, variables = document
    plans: list[dict[str, Any]] = []
    cores: list[dict[str, Any]] = []
    for _ in range(4):
        (plan, _), (core, _) = await answers_and_statements(differential_app, query, variables)
        plans.append(plan)
        cores.append(core)
        if plan in cores or core in plans:
            return
    assert plans[0] == cores[0]


async def test_each_abandoned_plan_is_told_to_its_observer() -> None:
    """Once for an operation whose plan gives way to graphql-core; never for a client's
    mistake, which the plan answers itself."""
    abandoned: list[None] = []
    observed = strawberry.Schema(
        Query,
        types=[Item],
        execution_context_class=observed_execution(partial(abandoned.append, None)),
    )
    await observed.execute("{ items { name fragile } }", context_value=Batches())
    assert abandoned == []
    result = await observed.execute("{ items { names count } }", context_value=Batches())
    assert result.errors
    assert abandoned == [None]
