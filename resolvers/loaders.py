"""Per-request DataLoaders: every batch is one SQL statement, whatever the number of keys."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING, Generic, TypeVar

from strawberry.dataloader import DataLoader

from db import policy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

    from db.rows import CommentRow, PageRequest, SortKey, ThreadRow, UserRow
    from db.storage import Storage

K = TypeVar("K")
V = TypeVar("V")


class Loader(Generic[K, V]):
    """A DataLoader that hands each load its own view of the key's shared future.

    graphql-core cancels the sibling fields of a field whose error reaches their object, and
    cancelling a task cancels the future it awaits. With the bare future, one field's error
    would cancel the batch's answer for every other field that asked for the same key; a
    view (`asyncio.shield`) is cancelled alone, and the batch still answers the others.
    """

    def __init__(self, load_fn: Callable[[list[K]], Awaitable[Sequence[V | BaseException]]]):
        self._loader: DataLoader[K, V] = DataLoader(load_fn)

    def load(self, key: K) -> Awaitable[V]:
        return asyncio.shield(self._loader.load(key))

    def prime(self, key: K, value: V) -> None:
        self._loader.prime(key, value)

    def prime_many(self, data: Mapping[K, V]) -> None:
        self._loader.prime_many(data)


class Loaders:
    def __init__(self, storage: Storage, viewer_id: int | None = None) -> None:
        self.storage = storage
        self.viewer_id = viewer_id
        self.thread: Loader[int, ThreadRow | None] = Loader(storage.threads_by_ids)
        self.thread_by_key: Loader[str, ThreadRow | None] = Loader(self._threads_by_keys)
        self.public_user: Loader[int, UserRow | None] = Loader(self._public_users)
        self.comment: Loader[tuple[int, int], CommentRow | None] = Loader(self._comments)
        self.page: Loader[PageRequest, list[CommentRow]] = Loader(self._pages)
        self.liked: Loader[tuple[int, int], bool] = Loader(self._liked)

    async def _liked(self, keys: Sequence[tuple[int, int]]) -> list[bool]:
        """Whether the viewer likes each comment; nobody likes anything for anonymous readers."""
        if self.viewer_id is None:
            return [False] * len(keys)
        return await self.storage.liked_by(self.viewer_id, keys)

    async def _public_users(self, ids: Sequence[int]) -> list[UserRow | None]:
        """Users whom anyone may see: None for the others, as for ids that name nobody."""
        return await self.storage.users_by_ids(ids, policy.PUBLIC_AUTHORSHIP)

    async def _threads_by_keys(self, keys: Sequence[str]) -> list[ThreadRow | None]:
        threads = await self.storage.threads_by_keys(keys)
        self.thread.prime_many({t.id: t for t in threads if t is not None})
        return threads

    async def _comments(self, keys: Sequence[tuple[int, int]]) -> list[CommentRow | None]:
        comments = await self.storage.comments_by_ids(keys)
        self._prime_users(c for c in comments if c is not None)
        return comments

    async def _pages(self, requests: Sequence[PageRequest]) -> list[list[CommentRow] | Exception]:
        """Pages of a whole tree level at once; their comments then resolve `parent` for free.

        A cursor is the one part of a request that a client writes, and pages after different
        cursors never share a statement: asked for apart, a cursor the database refuses fails
        its own pages and no other, for no statement more.
        """
        by_cursor: dict[SortKey | None, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            by_cursor[request.after].append(index)
        pages: list[list[CommentRow] | Exception] = [[] for _ in requests]
        for indices in by_cursor.values():
            try:
                found = await self.storage.comment_pages([requests[i] for i in indices])
            except Exception as error:  # the error of these pages alone
                for index in indices:
                    pages[index] = error
                continue
            for index, page in zip(indices, found, strict=True):
                pages[index] = page
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
