"""Compiled plans and the shortcut for plain leaves answer exactly as graphql-core does,
errors too, with the same batches; documents are parsed and validated once per text."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
import strawberry
from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    ValidationRule,
    parse,
)
from starlette.requests import Request
from strawberry.dataloader import DataLoader

from bench.queries import W1
from resolvers.context import Context
from schema import build_schema
from schema import schema as threadql_schema
from schema.documents import CachedDocuments, Documents
from schema.execution import Execution
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


def test_each_document_is_validated_once() -> None:
    validations: list[str] = []

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
    assert validations == ["validated", "validated"]


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
