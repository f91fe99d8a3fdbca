"""Query operations compiled once into plans: what to read or call for each response key.

graphql-core works out, for every object of an answer, which fields apply, how to complete
each value and what to pass its resolver; for a thread page that is thousands of times the
same work. A plan does it once per operation. It covers what a page of comments asks for:
fields (aliased, repeated, merged), fragments and inline fragments, arguments and variables,
`__typename`, objects and lists of them. Anything else (directives, abstract types, field
extensions, introspection) makes no plan, and the operation runs the ordinary way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    InlineFragmentNode,
    OperationType,
    Undefined,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from graphql import (
        FragmentDefinitionNode,
        GraphQLField,
        GraphQLLeafType,
        GraphQLOutputType,
        GraphQLSchema,
        NamedTypeNode,
        OperationDefinitionNode,
        SelectionSetNode,
    )
    from strawberry.types.field import StrawberryField


class PlainLeaf(NamedTuple):
    attribute: str  # the Python attribute that holds the value
    coerce: Callable[[Any], Any]  # the scalar's or enum's output coercion
    non_null: bool
    unchanged: type | None  # values of exactly this type are their own output


# Built-in scalars whose output coercion returns a value of exactly this type as it is.
_UNCHANGED: dict[GraphQLLeafType, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


def plain_leaf(field: GraphQLField) -> PlainLeaf | None:
    """The shortcut for `field`, if Strawberry would only read an attribute for it."""
    resolve = field.resolve
    definition: StrawberryField | None = field.extensions.get("strawberry-definition")
    if definition is None or not definition.is_basic_field:
        return None
    if not getattr(resolve, "_is_default", False):  # Strawberry wraps it for a reason
        return None
    field_type: GraphQLOutputType = field.type
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    if isinstance(inner, GraphQLList) or not is_leaf_type(inner):
        return None
    named: GraphQLLeafType = get_named_type(inner)  # type: ignore[assignment]
    return PlainLeaf(
        definition.python_name, named.coerce_output_value, non_null, _UNCHANGED.get(named)
    )


def leaf_output(leaf: PlainLeaf, value: Any) -> Any:
    """The leaf's answer for `value`, or Undefined when only the ordinary path can say what
    it is: a null its type forbids, a value its scalar refuses."""
    if type(value) is leaf.unchanged:
        return value
    if value is None:
        return Undefined if leaf.non_null else None
    try:
        coerced = leaf.coerce(value)
    except Exception:  # the ordinary path raises it again, located
        return Undefined
    return Undefined if coerced is None else coerced


def read_leaf(leaf: PlainLeaf, source: Any) -> Any:
    """The field's answer, or Undefined when the ordinary path must find out what it is."""
    try:
        value = getattr(source, leaf.attribute)
    except Exception:  # as above
        return Undefined
    return leaf_output(leaf, value)


class NoPlan(Exception):
    """The operation asks for something plans do not cover."""


@dataclass(frozen=True, slots=True)
class Output:
    """How to complete a value: exactly one of `coerce`, `item` and `plan` is set."""

    non_null: bool
    coerce: Callable[[Any], Any] | None = None  # a scalar's or enum's output coercion
    item: Output | None = None  # a list's items
    plan: ObjectPlan | None = None  # an object's selection


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """One of: a plain leaf, `__typename` (no definition), a plain attribute whose value
    `output` completes, or a resolver's function."""

    key: str  # the response key: the alias, else the field's name
    definition: GraphQLField | None
    nodes: tuple[FieldNode, ...]  # every node merged under the key, for resolve infos
    field: StrawberryField | None
    leaf: PlainLeaf | None = None
    output: Output | None = None
    attribute: str | None = None  # read when there is no resolver
    call: Callable[..., Any] | None = None  # the resolver's own function
    pass_self: bool = False  # the object goes first, as `self`
    info_name: str | None = None  # the parameter that takes a `strawberry.Info`
    arguments: bool = False  # whether arguments are converted for it, once per request


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    object_type: GraphQLObjectType
    origin: type | None  # the Python class its objects are; None for the root
    fields: tuple[FieldPlan, ...]


def compile_query(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
) -> ObjectPlan | None:
    """The plan of a query operation, or None when it asks for more than plans cover."""
    if operation.operation is not OperationType.QUERY or operation.directives:
        return None
    config = getattr(getattr(schema, "_strawberry_schema", None), "config", None)
    root = schema.query_type
    if root is None or getattr(config, "default_resolver", None) is not getattr:
        return None  # plain fields are read as Strawberry reads them: by attribute
    try:
        return _Compiler(schema, fragments).object_plan(root, [operation.selection_set], None)
    except NoPlan:
        return None


class _Compiler:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments

    def object_plan(
        self,
        parent: GraphQLObjectType,
        selection_sets: Sequence[SelectionSetNode],
        origin: type | None,
    ) -> ObjectPlan:
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()  # a fragment spread twice adds its fields once
        for selection_set in selection_sets:
            self._collect(parent, selection_set, grouped, visited)
        fields = tuple(self._field(parent, key, nodes) for key, nodes in grouped.items())
        return ObjectPlan(parent, origin, fields)

    def _collect(
        self,
        parent: GraphQLObjectType,
        selection_set: SelectionSetNode,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        """graphql-core's collection of fields, in its order: nodes merge under their key."""
        for selection in selection_set.selections:
            if selection.directives:
                raise NoPlan
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self._applies(selection.type_condition, parent):
                    self._collect(parent, selection.selection_set, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or fragment.variable_definitions:
                    raise NoPlan
                if not self._applies(fragment.type_condition, parent) or name in visited:
                    continue
                visited.add(name)
                self._collect(parent, fragment.selection_set, grouped, visited)
            else:
                raise NoPlan

    def _applies(self, condition: NamedTypeNode | None, parent: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        named = self.schema.get_type(condition.name.value)
        if named is parent:
            return True
        return is_abstract_type(named) and self.schema.is_sub_type(named, parent)

    def _field(self, parent: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> FieldPlan:
        name = nodes[0].name.value
        if name == "__typename":
            return FieldPlan(key, None, tuple(nodes), None)
        definition = parent.fields.get(name)
        if definition is None:
            raise NoPlan
        field: StrawberryField | None = definition.extensions.get("strawberry-definition")
        if field is None or field.extensions:
            raise NoPlan
        resolver = field.base_resolver
        if resolver is not None and (resolver.parent_parameter or resolver.root_parameter):
            raise NoPlan
        leaf = plain_leaf(definition)
        if leaf is not None:
            return FieldPlan(key, definition, tuple(nodes), field, leaf)
        sub_selections = [node.selection_set for node in nodes if node.selection_set]
        output = self._output(definition.type, sub_selections)
        if resolver is None:
            return FieldPlan(
                key, definition, tuple(nodes), field, output=output, attribute=field.python_name
            )
        if not callable(resolver.wrapped_func):
            raise NoPlan
        info = resolver.info_parameter
        return FieldPlan(
            key,
            definition,
            tuple(nodes),
            field,
            output=output,
            call=resolver.wrapped_func,
            pass_self=resolver.self_parameter is not None,
            info_name=info.name if info else None,
            arguments=bool(definition.args or any(node.arguments for node in nodes)),
        )

    def _output(self, output_type: GraphQLOutputType, selections: list[SelectionSetNode]) -> Output:
        non_null = isinstance(output_type, GraphQLNonNull)
        inner = output_type.of_type if isinstance(output_type, GraphQLNonNull) else output_type
        if isinstance(inner, GraphQLList):
            return Output(non_null, item=self._output(inner.of_type, selections))
        if is_leaf_type(inner):
            return Output(non_null, coerce=inner.coerce_output_value)
        if not isinstance(inner, GraphQLObjectType):
            raise NoPlan  # an interface or a union: which type, only the value knows
        definition = inner.extensions.get("strawberry-definition")
        origin = getattr(definition, "origin", None)
        if origin is None:
            raise NoPlan
        return Output(non_null, plan=self.object_plan(inner, selections, origin))
