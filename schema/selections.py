"""A document's selections as execution reads them: its fragments by name, and the type and
selection set that each fragment, inline or spread, stands for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphql import FragmentDefinitionNode, InlineFragmentNode

if TYPE_CHECKING:
    from graphql import (
        DocumentNode,
        FragmentSpreadNode,
        GraphQLNamedType,
        GraphQLSchema,
        SelectionSetNode,
    )

Fragments = dict[str, FragmentDefinitionNode]


def fragments_of(document: DocumentNode) -> Fragments:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def fragment_selection(
    schema: GraphQLSchema,
    fragments: Fragments,
    node: InlineFragmentNode | FragmentSpreadNode,
    parent: GraphQLNamedType | None,
) -> tuple[GraphQLNamedType | None, SelectionSetNode] | None:
    """The type a fragment applies to (`parent` when it names none) and its selections; None
    for a spread of a fragment the document lacks."""
    if isinstance(node, InlineFragmentNode):
        condition, inner = node.type_condition, node.selection_set
    else:
        fragment = fragments.get(node.name.value)
        if fragment is None:
            return None
        condition, inner = fragment.type_condition, fragment.selection_set
    return (schema.get_type(condition.name.value) if condition else parent), inner
