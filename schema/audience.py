"""Who may share an answer: each field whose value can differ by who asks is marked where it
is declared, and an operation reads the viewer if its selection reaches a marked field.

A mark is Strawberry field metadata, so a plain attribute stays a plain attribute (no
resolver is added, and the compiled plans still read it in place):

    viewer_can_edit: bool = strawberry.field(metadata=PER_VIEWER)

Answers to a selection that reads no marked field are the same for every reader; the others
may be shared only between readers who are the same viewer (anonymous ones).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    InlineFragmentNode,
    get_named_type,
    is_abstract_type,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter

from schema.selections import Fragments, fragment_selection, fragments_of

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from graphql import (
        DocumentNode,
        GraphQLField,
        GraphQLNamedType,
        GraphQLSchema,
        OperationDefinitionNode,
        SelectionSetNode,
    )

_MARK = "threadql.audience"

# The metadata of a field whose value depends on the viewer.
PER_VIEWER: Mapping[str, str] = MappingProxyType({_MARK: "viewer"})


def per_viewer(field: GraphQLField) -> bool:
    """The field is marked as depending on the viewer."""
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    metadata: Mapping[str, object] = getattr(definition, "metadata", None) or {}
    return metadata.get(_MARK) == "viewer"


def reads_viewer(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> bool:
    """The operation's selection, through every fragment, reaches a field marked `PER_VIEWER`.

    Directives are not weighed (a skipped field counts as read). A field the schema does not
    have counts as not read: validation refuses the document, so nothing of it runs.
    """
    root = schema.get_root_type(operation.operation)
    if root is None:
        return False
    fragments = fragments_of(document)
    return _Walk(schema, fragments).reads(root, operation.selection_set)


class _Walk:
    def __init__(self, schema: GraphQLSchema, fragments: Fragments) -> None:
        self.schema = schema
        self.fragments = fragments
        self.seen: set[str] = set()  # fragments walked: one has one type, so one answer

    def reads(self, parent: GraphQLNamedType | None, selection_set: SelectionSetNode) -> bool:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if self._field_reads(parent, selection):
                    return True
                continue
            if isinstance(selection, FragmentSpreadNode):
                if selection.name.value in self.seen:
                    continue
                self.seen.add(selection.name.value)
            assert isinstance(selection, InlineFragmentNode | FragmentSpreadNode)
            found = fragment_selection(self.schema, self.fragments, selection, parent)
            if found is not None and self.reads(*found):
                return True
        return False

    def _field_reads(self, parent: GraphQLNamedType | None, node: FieldNode) -> bool:
        for field in self._definitions(parent, node.name.value):
            if per_viewer(field):
                return True
            if node.selection_set and self.reads(get_named_type(field.type), node.selection_set):
                return True
        return False

    def _definitions(self, parent: GraphQLNamedType | None, name: str) -> Iterator[GraphQLField]:
        """The field as `parent` declares it and, on an interface or union, as each type that
        may stand for it declares it: that is the one that runs."""
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) and name in parent.fields:
            yield parent.fields[name]
        if parent is not None and is_abstract_type(parent):
            for possible in self.schema.get_possible_types(parent):
                if name in possible.fields:
                    yield possible.fields[name]
