"""Checks of what a client sends to a mutation, before anything is written."""

from __future__ import annotations

from db.render import CONTROL
from db.storage import InvalidInput
from resolvers import ids, thread_creation
from resolvers.errors import BadUserInput

MAX_KEY, MAX_TITLE, MAX_REASON, MAX_URL = 255, 300, 1_000, 2_048


def text(value: str, field: str, max_length: int, *, multiline: bool = False) -> str:
    """Trimmed text without control characters, 1 to `max_length` characters long."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not value:
        raise InvalidInput(f"`{field}` must not be empty", field)
    if not multiline and "\n" in value:
        raise InvalidInput(f"`{field}` must be one line", field)
    if CONTROL.search(value):
        raise InvalidInput(f"`{field}` must not contain control characters", field)
    if len(value) > max_length:
        raise InvalidInput(f"`{field}` must be at most {max_length} characters long", field)
    return value


def url(value: str, field: str) -> str:
    """An absolute http(s) address, as a page of the host site has."""
    value = text(value, field, MAX_URL)
    if thread_creation.origin_of(value) is None or any(c.isspace() for c in value):
        raise InvalidInput(f"`{field}` must be an http or https address", field)
    return value


def body(value: str, max_length: int) -> str:
    return text(value, "body", max_length, multiline=True)


def thread_id(global_id: str, field: str = "threadId") -> int:
    try:
        return ids.thread_id(global_id)
    except BadUserInput as error:
        raise InvalidInput(error.message, field) from error


def comment_key(global_id: str, field: str = "commentId") -> tuple[int, int]:
    try:
        return ids.comment_key(global_id)
    except BadUserInput as error:
        raise InvalidInput(error.message, field) from error
