"""Checks of what a client sends to a mutation, before anything is written.

The rules for text live in db.rules, where imports hold to them too.
"""

from __future__ import annotations

from db.rules import MAX_KEY, MAX_REASON, MAX_TITLE, MAX_URL, body, text
from db.storage import InvalidInput, Reason
from resolvers import ids, thread_creation
from resolvers.errors import BadUserInput

__all__ = [
    "MAX_KEY",
    "MAX_REASON",
    "MAX_TITLE",
    "MAX_URL",
    "body",
    "comment_key",
    "text",
    "thread_id",
    "url",
]


def url(value: str, field: str) -> str:
    """An absolute http(s) address, as a page of the host site has."""
    value = text(value, field, MAX_URL)
    if thread_creation.origin_of(value) is None or any(c.isspace() for c in value):
        raise InvalidInput(f"`{field}` must be an http or https address", Reason.INVALID, field)
    return value


def thread_id(global_id: str, field: str = "threadId") -> int:
    try:
        return ids.thread_id(global_id)
    except BadUserInput as error:
        raise InvalidInput(error.message, Reason.INVALID, field) from error


def comment_key(global_id: str, field: str = "commentId") -> tuple[int, int]:
    try:
        return ids.comment_key(global_id)
    except BadUserInput as error:
        raise InvalidInput(error.message, Reason.INVALID, field) from error
