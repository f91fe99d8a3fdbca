"""Plain records that the storage returns: no I/O, no GraphQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

PATH_DIGITS = 12


class CommentState(enum.Enum):
    VISIBLE = "VISIBLE"
    DELETED = "DELETED"
    REMOVED = "REMOVED"


class CommentOrder(enum.Enum):
    OLDEST = "OLDEST"
    NEWEST = "NEWEST"
    TOP = "TOP"  # most likes first, ties oldest first


# The position of a comment in one ordering: (created_at, id) for OLDEST and
# NEWEST, (like_count, created_at, id) for TOP. Cursors carry it.
SortKey = tuple[str, int] | tuple[int, str, int]


def format_time(moment: datetime) -> str:
    """Fixed-width UTC text, so that string order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def path_segment(comment_id: int) -> str:
    return f"{comment_id:0{PATH_DIGITS}d}/"


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    sub: str
    name: str
    avatar_url: str | None
    role: str


@dataclass(frozen=True, slots=True)
class ThreadRow:
    id: int
    key: str
    title: str
    url: str | None
    created_at: datetime
    locked: bool
    comment_count: int
    top_level_count: int


@dataclass(frozen=True, slots=True)
class CommentRow:
    """A stored comment. `author` is kept for a removed comment; the API hides it."""

    id: int
    thread_id: int
    parent_id: int | None
    depth: int
    path: str
    author: UserRow | None
    body: str
    body_html: str
    body_text: str
    state: CommentState
    created_at: datetime
    edited_at: datetime | None
    like_count: int
    reply_count: int  # visible direct replies
    listed_reply_count: int  # direct replies that listings show, placeholders included
    descendant_count: int  # visible comments beneath, at any depth

    @property
    def visible(self) -> bool:
        return self.state is CommentState.VISIBLE

    def sort_key(self, order: CommentOrder) -> SortKey:
        created = format_time(self.created_at)
        if order is CommentOrder.TOP:
            return (self.like_count, created, self.id)
        return (created, self.id)

    @property
    def ancestor_ids(self) -> list[int]:
        return [int(part) for part in self.path.split("/") if part]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page of a parent's replies, or of a thread's top level when `parent_id` is None."""

    thread_id: int
    parent_id: int | None
    order: CommentOrder
    after: SortKey | None
    limit: int


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is writing: the signed-in user and whether they moderate."""

    user_id: int
    moderator: bool = False


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """The thread a new comment goes to: by id, or by key (created with `title` if new)."""

    id: int | None = None
    key: str | None = None
    title: str | None = None
    url: str | None = None
    field: str = "threadId"  # the input that named the thread, for refusals


@dataclass(frozen=True, slots=True)
class NewComment:
    """A comment to insert. `parent_index` points at an earlier item of the same batch."""

    author_id: int | None
    body: str
    body_html: str
    body_text: str
    created_at: datetime
    parent_id: int | None = None
    parent_index: int | None = None
    like_count: int = 0
