"""Limits on what one operation may ask, checked before anything runs.

The node limit follows GitHub's: the worst case of a query is the product of the
`first` arguments along each path of connections, summed over all paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationRule,
    get_named_type,
    value_from_ast,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from graphql import (
        DirectiveNode,
        DocumentNode,
        GraphQLSchema,
        SelectionSetNode,
        ValidationContext,
    )

Parent = GraphQLObjectType | GraphQLInterfaceType


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_nodes: int = 10_000
    max_depth: int = 24
    max_aliases: int = 15
    max_tokens: int = 1_000
    max_directives: int = 50

    def extensions(self) -> list[Callable[[], SchemaExtension]]:
        """The token limit is the parser's: `schema.documents.Documents` applies it."""
        # One set of rule classes for every request: validation is cached by them.
        rules = [
            *QueryDepthLimiter(max_depth=self.max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=self.max_aliases).validation_rules,
            directive_limit(self.max_directives),
        ]
        return [lambda: AddValidationRules(rules), lambda: NodeLimit(self.max_nodes)]


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
    """Refuses, before execution, a query that could return more than `maximum` nodes."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            counter = NodeCounter(context.schema._schema, document, context.variables or {})
            nodes = counter.operation(context.operation_name)
            if nodes > self.maximum:
                error = limit_error(
                    f"This query could return up to {nodes:,} nodes; the limit is"
                    f" {self.maximum:,}. Ask for fewer with `first`.",
                    nodes=nodes,
                    maxNodes=self.maximum,
                )
                context.result = ExecutionResult(data=None, errors=[error])
        yield


class NodeCounter:
    """Worst-case nodes of an operation: each connection counts `first` per parent node."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operations = [
            d for d in document.definitions if isinstance(d, OperationDefinitionNode)
        ]

    def operation(self, name: str | None) -> int:
        for operation in self.operations:
            if name is None or (operation.name and operation.name.value == name):
                root = self.schema.get_root_type(operation.operation)
                return self.selections(operation.selection_set, root, 1) if root else 0
        return 0

    def selections(self, selection_set: SelectionSetNode | None, parent: Parent, times: int) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, times)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition, inner = selection.type_condition, selection.selection_set
            else:
                assert isinstance(selection, FragmentSpreadNode)
                fragment = self.fragments.get(selection.name.value)
                if fragment is None:
                    continue
                condition, inner = fragment.type_condition, fragment.selection_set
            target = self.schema.get_type(condition.name.value) if condition else parent
            if isinstance(target, GraphQLObjectType | GraphQLInterfaceType):
                total += self.selections(inner, target, times)
        return total

    def field(self, node: FieldNode, parent: Parent, times: int) -> int:
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0
        total = 0
        if "first" in definition.args:
            argument = definition.args["first"]
            first = argument.default_value
            for given in node.arguments or ():
                if given.name.value == "first":
                    first = value_from_ast(given.value, argument.type, self.variables)
            times *= max(int(first or 0), 0)
            total += times
        named = get_named_type(definition.type)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            total += self.selections(node.selection_set, named, times)
        return total
