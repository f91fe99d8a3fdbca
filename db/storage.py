"""The storage interface every backend implements, and the errors it raises."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from db.rows import CommentRow, NewComment, PageRequest, ThreadRow, UserRow


class StorageError(Exception):
    """A write that the stored data refuses; nothing of it was kept."""


class NotFound(StorageError):
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

    async def thread_page(self, after: int | None, limit: int) -> list[ThreadRow]:
        """Threads newest first, starting after the thread with id `after`."""
        ...

    async def thread_total(self) -> int: ...

    async def users_by_ids(self, ids: Sequence[int]) -> list[UserRow | None]: ...

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
