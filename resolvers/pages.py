"""Connection pages: argument checks, cursors, and one look-ahead row for `hasNextPage`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from db.rows import PageRequest
from resolvers.cursors import decode_comment_cursor, decode_thread_cursor
from resolvers.errors import BadUserInput

if TYPE_CHECKING:
    from db.rows import CommentOrder, CommentRow, ThreadRow
    from resolvers.context import Context

MAX_FIRST = 100
# What a connection gives when `first` is left out or null. The schema declares each as its
# field's default, and the node limit (schema/limits.py) counts with `page_size` too.
THREADS_PAGE = 20
COMMENTS_PAGE = 20
REPLIES_PAGE = 10
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T]
    has_next: bool
    has_previous: bool


def page_size(first: int | None, default: int) -> int:
    """The rows a connection asks for: `first`, or its default when `first` is null."""
    return default if first is None else first


def check_first(first: int) -> int:
    if not 0 <= first <= MAX_FIRST:
        raise BadUserInput(f"`first` must be between 0 and {MAX_FIRST}, not {first}")
    return first


async def comment_page(
    context: Context,
    *,
    thread_id: int,
    parent_id: int | None,
    first: int,
    after: str | None,
    order: CommentOrder,
) -> Page[CommentRow]:
    """A page of a thread's top level (`parent_id` None) or of a comment's direct replies."""
    limit = check_first(first)
    key = decode_comment_cursor(after, order) if after is not None else None
    request = PageRequest(thread_id, parent_id, order, key, limit + 1)
    rows = await context.loaders.page.load(request)
    return Page(rows[:limit], len(rows) > limit, after is not None)


async def thread_page(context: Context, first: int, after: str | None) -> Page[ThreadRow]:
    limit = check_first(first)
    after_id = decode_thread_cursor(after) if after is not None else None
    rows = await context.storage.thread_page(after_id, limit + 1)
    context.loaders.thread.prime_many({t.id: t for t in rows})
    return Page(rows[:limit], len(rows) > limit, after is not None)
