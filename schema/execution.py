"""graphql-core's executor with a shortcut for plain leaf fields.

Most of a thread's answer is leaves read straight off an object (`id`, `body`, `likeCount`,
...). graphql-core treats each like any field: a path, a resolve info, Strawberry's resolver
wrapper, an awaitable check and completion, about ten calls for one `getattr`. Here a leaf
whose Strawberry field has no resolver and no extensions is read and serialised in place.
Anything unusual about a value (null where the type forbids it, a value the scalar refuses)
goes the ordinary way, so that errors stay exactly graphql-core's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    Undefined,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from graphql import GraphQLField, GraphQLOutputType
    from graphql.execution.collect_fields import GroupedFieldSet
    from graphql.pyutils import AwaitableOrValue


class PlainLeaf(NamedTuple):
    attribute: str  # the Python attribute that holds the value
    coerce: Callable[[Any], Any]  # the scalar's or enum's output coercion
    non_null: bool


def plain_leaf(field: GraphQLField) -> PlainLeaf | None:
    """The shortcut for `field`, if Strawberry would only read an attribute for it."""
    resolve = field.resolve
    definition = field.extensions.get("strawberry-definition")
    if definition is None or not getattr(resolve, "_is_default", False):
        return None
    field_type: GraphQLOutputType = field.type
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    if isinstance(inner, GraphQLList) or not is_leaf_type(inner):
        return None
    named = get_named_type(inner)
    return PlainLeaf(definition.python_name, named.coerce_output_value, non_null)  # type: ignore[attr-defined]


def read_leaf(leaf: PlainLeaf, source: Any) -> Any:
    """The field's answer, or Undefined when the ordinary path must find out what it is."""
    try:
        value = getattr(source, leaf.attribute)
        if value is None:
            return Undefined if leaf.non_null else None
        coerced = leaf.coerce(value)
    except Exception:  # the ordinary path raises it again, located
        return Undefined
    return Undefined if coerced is None else coerced


class Execution(StrawberryGraphQLCoreExecutionContext):
    # (type, field name) -> the shortcut or None; a schema's types never change.
    _plain: dict[tuple[GraphQLObjectType, str], PlainLeaf | None] = {}  # noqa: RUF012

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """graphql-core's, with plain leaves read in place."""
        middleware = self.middleware_manager
        if middleware is not None and middleware.middlewares:  # they see every field
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        is_awaitable = self.is_awaitable
        plain = self._plain
        try:
            for response_name, field_details_list in grouped_field_set.items():
                key = (parent_type, field_details_list[0].node.name.value)
                if key in plain:
                    leaf = plain[key]
                else:
                    definition = parent_type.fields.get(key[1])
                    leaf = plain[key] = plain_leaf(definition) if definition else None
                if leaf is not None:
                    value = read_leaf(leaf, source_value)
                    if value is not Undefined:
                        results[response_name] = value
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:  # no tasks to gather
                field = awaitable_fields[0]
                results[field] = await results[field]
                return results
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
