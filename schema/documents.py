"""Each distinct document text parsed and validated once: a page sends the same few again
and again, and validating the demo thread's query costs more than executing it.

Strawberry's own caches key validation on the parsed document, which hashes its whole tree
on every lookup; these key on the text, whose hash Python keeps.

Every transport's documents come here, persisted queries' too, so the size and token limits
hold for all of them. A refusal is a parse error raised by Strawberry's own parse, or a
validation error: an error raised inside an extension's hook escapes Strawberry's streaming
path (`Schema._stream`, which serves the WebSocket) instead of answering the operation.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import suppress
from typing import TYPE_CHECKING, TypeVar

from graphql import GraphQLError, parse, specified_rules, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from schema.limits import limit_error

if TYPE_CHECKING:
    from collections.abc import Iterator

    from graphql import ASTValidationRule, DocumentNode
    from strawberry.types import ExecutionContext

Rules = tuple[type["ASTValidationRule"], ...]
# The rules Strawberry's own validation adds to a request's (`validate_document`).
STRAWBERRY_RULES: Rules = (MaybeNullValidationRule, OneOfInputValidationRule)
K = TypeVar("K")
V = TypeVar("V")


class Documents:
    """Parsed documents and their validation errors, the least recently used out first.
    With `hide_suggestions`, no validation error suggests a name ("Did you mean")."""

    def __init__(
        self,
        maxsize: int,
        max_tokens: int,
        max_bytes: int | None = None,
        *,
        hide_suggestions: bool = False,
    ) -> None:
        self.maxsize = maxsize
        self.max_tokens = max_tokens
        self.max_bytes = max_bytes
        self.hide_suggestions = hide_suggestions
        self._parsed: OrderedDict[str, DocumentNode] = OrderedDict()
        self._errors: OrderedDict[tuple[str, Rules], list[GraphQLError]] = OrderedDict()

    def parse(self, text: str) -> DocumentNode:
        """Raises GraphQLError, uncached, for a document that does not parse."""
        document = self._parsed.get(text)
        if document is None:
            document = parse(text, max_tokens=self.max_tokens)
            self._keep(self._parsed, text, document)
        else:
            self._parsed.move_to_end(text)
        return document

    def errors(
        self, text: str, document: DocumentNode, execution: ExecutionContext
    ) -> list[GraphQLError]:
        """`document` is what `text` parses to; the rules are the request's, the same
        classes on every request of one schema."""
        key = (text, execution.validation_rules)
        errors = self._errors.get(key)
        if errors is None:
            # The limits' rules measure a valid document only: Strawberry's depth rule, for
            # one, raises on a spread of a fragment that does not exist.
            standard = tuple(rule for rule in key[1] if rule in specified_rules)
            limits = tuple(rule for rule in key[1] if rule not in specified_rules)
            errors = (
                self._too_long(text)
                or self._validate(execution, document, (*standard, *STRAWBERRY_RULES))
                or self._validate(execution, document, limits)
            )
            self._keep(self._errors, key, errors)
        else:
            self._errors.move_to_end(key)
        return list(errors)

    def _validate(
        self, execution: ExecutionContext, document: DocumentNode, rules: Rules
    ) -> list[GraphQLError]:
        if not rules:
            return []
        schema = execution.schema._schema
        return validate(schema, document, rules, hide_suggestions=self.hide_suggestions)

    def _too_long(self, text: str) -> list[GraphQLError]:
        """Parsing a longer document costs little: the token limit stops it early."""
        if self.max_bytes is None or len(text.encode()) <= self.max_bytes:
            return []
        message = f"The query document is longer than {self.max_bytes} bytes."
        return [limit_error(message, maxDocumentBytes=self.max_bytes)]

    def _keep(self, cache: OrderedDict[K, V], key: K, value: V) -> None:
        cache[key] = value
        if len(cache) > self.maxsize:
            cache.popitem(last=False)


class CachedDocuments(SchemaExtension):
    """Parsing and validation from `Documents`, shared by every request of the schema."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        # A document that does not parse is left to Strawberry's own parse, which then
        # answers the same error, within the same token limit.
        execution.parse_options["max_tokens"] = self.documents.max_tokens
        if execution.graphql_document is None and execution.query:
            with suppress(GraphQLError):
                execution.graphql_document = self.documents.parse(execution.query)
        yield

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if execution.query and document is not None:
            execution.pre_execution_errors = self.documents.errors(
                execution.query, document, execution
            )
        yield
