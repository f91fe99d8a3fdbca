"""Limits on what one operation may ask, checked before anything runs.

Every limit refuses an operation with validation errors, the one answer Strawberry honours
on each of its paths: queries and mutations over HTTP and the WebSocket, and subscriptions,
whether they run alone or shared (server/fanout.py). Strawberry's subscription path ignores a
result that an `on_execute` hook sets in advance, which its query path answers with.

The node limit follows GitHub's: the worst case of an operation is the product of the `first`
arguments along each path of connections, summed over all paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationRule,
    get_argument_values,
    get_directive_values,
    get_named_type,
    get_operation_ast,
    get_variable_values,
    is_composite_type,
)
from graphql.utilities.coerce_input_value import coerce_default_value
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from resolvers.pages import page_size
from schema.selections import fragment_selection, fragments_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from graphql import (
        DirectiveNode,
        DocumentNode,
        GraphQLCompositeType,
        GraphQLField,
        GraphQLSchema,
        SelectionNode,
        SelectionSetNode,
        ValidationContext,
        VariableValues,
    )
    from strawberry.types import ExecutionContext

# Counts stop here: every JSON reader keeps an integer up to it exactly.
CEILING = 2**53 - 1
# Variable errors reported at most, as graphql-core's execution reports them.
MAX_VARIABLE_ERRORS = 50


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_nodes: int = 10_000
    max_depth: int = 24
    max_aliases: int = 15
    max_tokens: int = 1_000
    max_directives: int = 50
    max_document_bytes: int = 16_384

    def extensions(self, *, hide_suggestions: bool) -> list[Callable[[], SchemaExtension]]:
        """The token and document size limits are applied by `schema.documents.Documents`.
        These extensions come after `CachedDocuments`, which validates."""
        # One set of rule classes for every request: validation is cached by them.
        rules = [
            *QueryDepthLimiter(max_depth=self.max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=self.max_aliases).validation_rules,
            directive_limit(self.max_directives),
        ]
        return [
            lambda: AddValidationRules(rules),
            lambda: NodeLimit(self.max_nodes, hide_suggestions=hide_suggestions),
        ]


def limit_error(message: str, **details: int) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "QUERY_LIMIT", **details})


def directive_limit(maximum: int) -> type[ValidationRule]:
    class DirectiveLimit(ValidationRule):
        """At most `maximum` directives in a document."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.count = 0

        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            self.count += 1
            if self.count == maximum + 1:
                self.report_error(
                    limit_error(
                        f"The query has more than {maximum} directives.", maxDirectives=maximum
                    )
                )

    return DirectiveLimit


class NodeLimit(SchemaExtension):
    """Refuses, as a validation error, an operation that could return more than `maximum`
    nodes. It counts a document once it is valid, with the request's variables coerced as
    execution coerces them; variables that do not coerce are refused with graphql-core's own
    errors, since there is nothing to count with."""

    def __init__(self, maximum: int, *, hide_suggestions: bool) -> None:
        self.maximum = maximum
        self.hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not context.pre_execution_errors:  # `CachedDocuments` has validated the document
            errors = self.errors(context)
            if errors:
                context.pre_execution_errors = errors
        yield

    def errors(self, context: ExecutionContext) -> list[GraphQLError]:
        document = context.graphql_document
        if document is None:
            return []
        counted = count_nodes(
            context.schema._schema,
            document,
            context.operation_name,
            context.variables,
            hide_suggestions=self.hide_suggestions,
        )
        if isinstance(counted, list):
            return counted
        if counted <= self.maximum:
            return []
        figure = f"at least {counted:,}" if counted >= CEILING else f"up to {counted:,}"
        return [
            limit_error(
                f"This query could return {figure} nodes; the limit is {self.maximum:,}."
                " Ask for fewer with `first`.",
                nodes=counted,
                maxNodes=self.maximum,
            )
        ]


def count_nodes(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: object,
    *,
    hide_suggestions: bool = False,
) -> int | list[GraphQLError]:
    """The worst-case nodes of a valid document's operation, or why they cannot be counted:
    the errors graphql-core's execution would answer the same request with."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []  # execution says which operation is missing
    if variables is not None and not isinstance(variables, dict):
        return [GraphQLError("The GraphQL operation's `variables` must be an object or null.")]
    coerced = get_variable_values(
        schema,
        operation.variable_definitions or (),
        variables or {},
        max_errors=MAX_VARIABLE_ERRORS,
        hide_suggestions=hide_suggestions,
    )
    if isinstance(coerced, list):
        return coerced
    try:
        return NodeCounter(schema, document, coerced).operation(operation)
    except GraphQLError as error:  # a directive's argument that does not coerce
        return [error]


class NodeCounter:
    """Worst-case nodes of an operation: each connection counts `first` per parent node, the
    `first` its resolver gets. A field asked for twice counts twice; a field that `@skip` or
    `@include` leaves out does not count."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: VariableValues):
        self.schema = schema
        self.variables = variables
        self.fragments = fragments_of(document)
        # Nodes below one parent, by selection set and parent type: below n parents there are
        # n times as many, so a fragment spread many times is counted once.
        self._below_one: dict[tuple[int, str], int] = {}

    def operation(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        return self.selections(operation.selection_set, root) if root else 0

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLCompositeType) -> int:
        key = (id(selection_set), parent.name)
        nodes = self._below_one.get(key)
        if nodes is None:
            each = [self.selection(s, parent) for s in selection_set.selections]
            nodes = self._below_one[key] = min(sum(each), CEILING)
        return nodes

    def selection(self, node: SelectionNode, parent: GraphQLCompositeType) -> int:
        if not self.included(node):
            return 0
        if isinstance(node, FieldNode):
            return self.field(node, parent)
        assert isinstance(node, InlineFragmentNode | FragmentSpreadNode)
        found = fragment_selection(self.schema, self.fragments, node, parent)
        if found is None:
            return 0
        target, inner = found
        return self.selections(inner, target) if is_composite_type(target) else 0

    def field(self, node: FieldNode, parent: GraphQLCompositeType) -> int:
        definition = (
            None if isinstance(parent, GraphQLUnionType) else parent.fields.get(node.name.value)
        )
        if definition is None:
            return 0  # __typename, or introspection
        named = get_named_type(definition.type)
        below = (
            self.selections(node.selection_set, named)
            if node.selection_set and is_composite_type(named)
            else 0
        )
        if "first" not in definition.args:
            return below
        first = self.first(definition, node)
        return min(first + first * below, CEILING)

    def first(self, definition: GraphQLField, node: FieldNode) -> int:
        """As the resolver reads it: given, from a variable or its default, else the field's
        default; and for null, the resolver's own fallback, the field's default."""
        try:
            given = get_argument_values(definition, node, self.variables)
        except GraphQLError:
            return 0  # execution fails the field with this error: nothing below it runs
        # The field's declared default, as execution reads it when `first` is left out.
        default = coerce_default_value(definition.args["first"])
        size = page_size(given.get("first"), default if isinstance(default, int) else 0)
        return max(size, 0)

    def included(self, node: SelectionNode) -> bool:
        """As execution decides it: `@skip` first, then `@include`."""
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip is not None and skip["if"]:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return include is None or bool(include["if"])
