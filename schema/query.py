"""The Query root: look-ups by global id or key, and the list of threads."""

from __future__ import annotations

import strawberry

from db.rows import CommentRow, ThreadRow
from resolvers import lookups, pages
from schema.audience import PER_VIEWER
from schema.types import Comment, Info, Node, Thread, ThreadConnection, User


@strawberry.type
class Query:
    @strawberry.field(description="Any object by its global id; null when none has it.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        row = await lookups.node(info.context, id)
        if isinstance(row, ThreadRow):
            return Thread.from_row(row)
        if isinstance(row, CommentRow):
            return Comment.from_row(row, info.context)
        return User.from_row(row, info.context.base_url) if row else None

    @strawberry.field(description="A thread by its global id or by the host site's key.")
    async def thread(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        key: str | None = None,
    ) -> Thread | None:
        row = await lookups.thread(info.context, id, key)
        return Thread.from_row(row) if row else None

    @strawberry.field(description="Threads, newest first.")
    async def threads(
        self, info: Info, first: int | None = pages.THREADS_PAGE, after: str | None = None
    ) -> ThreadConnection:
        size = pages.page_size(first, pages.THREADS_PAGE)
        page = await pages.thread_page(info.context, size, after)
        return ThreadConnection(nodes=[Thread.from_row(r) for r in page.rows], page=page)

    @strawberry.field
    async def comment(self, info: Info, id: strawberry.ID) -> Comment | None:
        row = await lookups.comment(info.context, id)
        return Comment.from_row(row, info.context) if row else None

    @strawberry.field(
        description="The signed-in user; null for anonymous readers.", metadata=PER_VIEWER
    )
    def viewer(self, info: Info) -> User | None:
        viewer = info.context.viewer
        return User.from_row(viewer, info.context.base_url) if viewer else None
