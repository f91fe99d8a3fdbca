"""Plain records that the storage returns: no I/O, no GraphQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime


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


# Where a user's identity comes from: the host site's tokens, or the import that brought
# them (its format's name). A token's `sub` names a user of this origin only.
TOKEN = "token"  # noqa: S105 - the name of an origin, not a secret

# A user as (origin, sub): unique, and the same in every database an export goes to.
Identity = tuple[str, str]


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    sub: str
    name: str
    avatar_url: str | None
    role: str
    origin: str = TOKEN

    @property
    def identity(self) -> Identity:
        return (self.origin, self.sub)


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
    version: int = 0  # moved by every write to the thread, in the write's transaction


@dataclass(frozen=True, slots=True)
class CommentRow:
    """A stored comment. `author` is kept for a removed comment; the API hides it."""

    id: int
    thread_id: int
    parent_id: int | None
    depth: int
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


@dataclass(frozen=True, slots=True)
class AddedComment:
    """A new comment, and the ids of the comments above it, root first: subscribers to a
    subtree (`commentAdded(ancestorId:)`) filter on them. Only the write that adds a comment
    walks up its parents; no row stores them."""

    comment: CommentRow
    ancestor_ids: tuple[int, ...]


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
    creation_refused: str | None = None  # why this writer may not open a new thread by key


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
    edited_at: datetime | None = None  # set by imports; the API's edits go through edit_comment


# -- imports and exports ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user an import brings along; one that exists already is left as it is. An import
    grants no role: roles come from tokens."""

    origin: str
    sub: str
    name: str
    avatar_url: str | None = None

    @property
    def identity(self) -> Identity:
        return (self.origin, self.sub)


@dataclass(frozen=True, slots=True)
class Revision:
    """A body an edit replaced."""

    body: str
    written_at: datetime
    replaced_at: datetime


@dataclass(frozen=True, slots=True)
class ImportedComment:
    """A comment from elsewhere: its id there, and the comment it becomes here.

    Users are named by identity, since the import creates them in the same transaction.
    """

    source_id: str
    author: Identity | None
    body: str
    body_html: str
    body_text: str
    created_at: datetime
    state: CommentState = CommentState.VISIBLE
    edited_at: datetime | None = None
    parent_id: int | None = None  # a stored comment
    parent_index: int | None = None  # an earlier item of the same thread
    like_count: int = 0
    liked_by: tuple[Identity, ...] = ()
    revisions: tuple[Revision, ...] = ()
    removed_reason: str | None = None
    moderated_by: Identity | None = None


@dataclass(frozen=True, slots=True)
class ImportedThread:
    """One thread's import, written in one transaction; `source` scopes the comments' ids."""

    source: str
    key: str
    title: str
    url: str | None
    created_at: datetime
    locked: bool
    users: tuple[NewUser, ...]
    comments: tuple[ImportedComment, ...]


@dataclass(frozen=True, slots=True)
class ImportResult:
    thread_id: int
    created: bool  # the thread is new
    new_users: int
    comment_ids: list[int]  # in the order of ImportedThread.comments


@dataclass(frozen=True, slots=True)
class ThreadDump:
    """A thread with everything a dump keeps: its comments in the order they were written,
    and what CommentRow leaves out (likes, revisions, moderation)."""

    thread: ThreadRow
    comments: list[CommentRow]
    users: dict[int, UserRow]  # every user a comment, a like or a moderation names
    likes: dict[int, list[int]]  # comment id -> ids of the users who like it
    revisions: dict[int, list[Revision]]  # comment id -> replaced bodies, oldest first
    moderation: dict[int, tuple[int | None, str | None]]  # comment id -> (moderator, reason)
