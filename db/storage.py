"""The storage interface every backend implements, and the errors it raises."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime, timedelta

    from db.rows import (
        Actor,
        AddedComment,
        CommentRow,
        CommentState,
        ImportedThread,
        ImportResult,
        NewComment,
        PageRequest,
        ThreadDump,
        ThreadRef,
        ThreadRow,
        UserRow,
    )


class Reason(enum.Enum):
    """Why a write was refused. db/ says why; the API layer says it to clients, with a
    code and the input at fault (resolvers/refusals.py)."""

    INVALID = "invalid"  # text a caller named, refused by db.rules or the API's validation
    KEY_TAKEN = "key taken"
    NO_THREAD = "no thread"
    NO_COMMENT = "no comment"
    NO_PARENT = "no parent"
    PARENT_IN_ANOTHER_THREAD = "parent in another thread"
    PARENT_HIDDEN = "parent hidden"
    TOO_DEEP = "too deep"
    NO_TITLE = "no title"
    THREAD_CREATION_REFUSED = "thread creation refused"
    THREAD_LOCKED = "thread locked"
    EDITING_HIDDEN = "editing hidden"
    LIKING_HIDDEN = "liking hidden"
    NOT_AUTHOR = "not author"
    NOT_MODERATOR = "not moderator"
    NOT_AUTHOR_OR_MODERATOR = "not author or moderator"
    EDIT_WINDOW_CLOSED = "edit window closed"


class WriteRefused(Exception):
    """A write that the stored data refuses; nothing of it was kept.

    `field` is set only where the caller named the value it had checked (db.rules.text).
    """

    def __init__(self, message: str, reason: Reason, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.field = field


class InvalidInput(WriteRefused):
    pass


class Conflict(WriteRefused):
    """A key that must be unique is taken."""


class NotFound(WriteRefused):
    pass


class Forbidden(WriteRefused):
    pass


class ThreadLocked(WriteRefused):
    pass


class EditWindowClosed(WriteRefused):
    pass


class Storage(Protocol):
    """Every statement that touches comments names the thread, so tables can be split by thread."""

    statements: int  # SQL statements executed since opening: tests and the bench read it

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order, each in its own transaction; return their names."""
        ...

    async def threads_by_ids(self, ids: Sequence[int]) -> list[ThreadRow | None]: ...

    async def threads_by_keys(self, keys: Sequence[str]) -> list[ThreadRow | None]: ...

    async def thread_page(
        self, after: int | None, limit: int, oldest_first: bool = False
    ) -> list[ThreadRow]:
        """Threads newest first (or oldest first), starting after the thread with id `after`."""
        ...

    async def thread_total(self) -> int: ...

    async def thread_versions(self, ids: Sequence[int]) -> dict[int, int]:
        """The version of each thread that exists: a response cache checks them in one read."""
        ...

    async def users_by_ids(
        self, ids: Sequence[int], written_in: Collection[CommentState] | None = None
    ) -> list[UserRow | None]:
        """Users by id; with `written_in`, only those who wrote a comment now in one of those
        states, None for anyone else."""
        ...

    async def comments_by_ids(self, keys: Sequence[tuple[int, int]]) -> list[CommentRow | None]:
        """Comments by (thread id, comment id)."""
        ...

    async def comment_pages(self, requests: Sequence[PageRequest]) -> list[list[CommentRow]]:
        """Pages of many parents in as few statements as their distinct shapes allow."""
        ...

    async def upsert_user(
        self, sub: str, name: str, avatar_url: str | None, role: str = "user"
    ) -> UserRow: ...

    async def create_thread(
        self, key: str, title: str, url: str | None, created_at: datetime
    ) -> ThreadRow: ...

    async def insert_comments(self, thread_id: int, comments: Sequence[NewComment]) -> list[int]:
        """Insert in one transaction, keeping every count exact; return the new ids in order."""
        ...

    async def liked_by(self, user_id: int, keys: Sequence[tuple[int, int]]) -> list[bool]:
        """Whether the user likes each comment, by (thread id, comment id)."""
        ...

    # Writes of the API: each one transaction that checks, writes and keeps counts exact,
    # raising a WriteRefused (and keeping nothing) when the stored data says no. A locked
    # thread refuses them all (ThreadLocked) unless the actor is a moderator.

    async def add_comment(
        self,
        thread: ThreadRef,
        comment: NewComment,
        actor: Actor,
        parent_thread_id: int | None = None,
        max_depth: int | None = None,
    ) -> AddedComment:
        """A new visible comment; `parent_thread_id` is the thread named in the parent's id,
        `max_depth` the deepest level a reply may take (None: any)."""
        ...

    async def edit_comment(
        self,
        key: tuple[int, int],
        editor: Actor,
        body: tuple[str, str, str],
        now: datetime,
        window: timedelta,
    ) -> CommentRow:
        """Replace the body (source, HTML, text), keeping the old one as a revision."""
        ...

    async def hide_comment(
        self, key: tuple[int, int], actor: Actor, state: CommentState, reason: str | None = None
    ) -> CommentRow:
        """Delete (author or moderator) or remove (moderator); hiding twice changes nothing."""
        ...

    async def set_like(self, key: tuple[int, int], actor: Actor, liked: bool) -> CommentRow: ...

    async def lock_thread(self, thread_id: int, locked: bool) -> ThreadRow: ...

    # Imports and exports (`threadql import`, `threadql export`).

    async def imported_ids(self, key: str, source: str) -> dict[str, int]:
        """Comment ids of the thread with this key, by their ids at `source`."""
        ...

    async def import_thread(self, thread: ImportedThread) -> ImportResult:
        """Create the thread unless its key exists, its users unless their subs exist, and its
        comments, with their states and every count exact: all in one transaction."""
        ...

    async def thread_dump(self, thread_id: int) -> ThreadDump | None:
        """One thread with all its comments, read while no write to it can come between."""
        ...
