"""Per-request DataLoaders: every batch is one SQL statement, whatever the number of keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from resolvers import policy

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from db.rows import CommentRow, PageRequest, ThreadRow, UserRow
    from db.storage import Storage


class Loaders:
    def __init__(self, storage: Storage, viewer_id: int | None = None) -> None:
        self.storage = storage
        self.viewer_id = viewer_id
        self.thread: DataLoader[int, ThreadRow | None] = DataLoader(storage.threads_by_ids)
        self.thread_by_key: DataLoader[str, ThreadRow | None] = DataLoader(self._threads_by_keys)
        self.public_user: DataLoader[int, UserRow | None] = DataLoader(self._public_users)
        self.comment: DataLoader[tuple[int, int], CommentRow | None] = DataLoader(self._comments)
        self.page: DataLoader[PageRequest, list[CommentRow]] = DataLoader(self._pages)
        self.liked: DataLoader[tuple[int, int], bool] = DataLoader(self._liked)

    async def _liked(self, keys: Sequence[tuple[int, int]]) -> list[bool]:
        """Whether the viewer likes each comment; nobody likes anything for anonymous readers."""
        if self.viewer_id is None:
            return [False] * len(keys)
        return await self.storage.liked_by(self.viewer_id, keys)

    async def _public_users(self, ids: Sequence[int]) -> list[UserRow | None]:
        """Users whom anyone may see: None for the others, as for ids that name nobody."""
        return await self.storage.authors_by_ids(ids, policy.PUBLIC_AUTHORSHIP)

    async def _threads_by_keys(self, keys: Sequence[str]) -> list[ThreadRow | None]:
        threads = await self.storage.threads_by_keys(keys)
        self.thread.prime_many({t.id: t for t in threads if t is not None})
        return threads

    async def _comments(self, keys: Sequence[tuple[int, int]]) -> list[CommentRow | None]:
        comments = await self.storage.comments_by_ids(keys)
        self._prime_users(c for c in comments if c is not None)
        return comments

    async def _pages(self, requests: Sequence[PageRequest]) -> list[list[CommentRow]]:
        """Pages of a whole tree level at once; their comments then resolve `parent` for free."""
        pages = await self.storage.comment_pages(requests)
        for page in pages:
            self.comment.prime_many({(c.thread_id, c.id): c for c in page})
            self._prime_users(page)
        return pages

    def _prime_users(self, comments: Iterable[CommentRow]) -> None:
        """The authors of comments just read, where those comments make them public."""
        self.public_user.prime_many(
            {
                c.author.id: c.author
                for c in comments
                if c.author is not None and c.state in policy.PUBLIC_AUTHORSHIP
            }
        )
