"""The object types of the API: nodes, connections and their leaves."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import strawberry
from strawberry import Private

from db import policy
from db.rows import CommentOrder, CommentRow, CommentState, ThreadRow, UserRow
from resolvers import ids, pages, text
from resolvers.context import Context
from resolvers.cursors import comment_cursor, thread_cursor
from schema.audience import PER_VIEWER

strawberry.enum(CommentState, description="VISIBLE, or a placeholder that keeps its replies.")
strawberry.enum(CommentOrder, description="TOP: most likes first, ties oldest first.")

Info = strawberry.Info[Context, None]


@strawberry.interface(description="An object with a global id, opaque to clients.")
class Node:
    id: strawberry.ID


@strawberry.type
class User(Node):
    name: str
    avatar_url: str = strawberry.field(
        description="The URL from the sign-in claims, or an avatar served by threadql."
    )

    @classmethod
    def from_row(cls, row: UserRow, base_url: str) -> User:
        avatar = row.avatar_url or f"{base_url}/avatars/{quote(row.name, safe='')}.svg"
        return cls(id=strawberry.ID(ids.encode("User", row.id)), name=row.name, avatar_url=avatar)


@strawberry.type
class Excerpt:
    text: str
    truncated: bool


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Thread(Node):
    key: str = strawberry.field(description="The host site's identifier for the page.")
    title: str
    url: str | None
    created_at: datetime
    locked: bool
    comment_count: int = strawberry.field(description="Visible comments, replies included.")
    row: Private[ThreadRow]

    @classmethod
    def from_row(cls, row: ThreadRow) -> Thread:
        return cls(
            id=strawberry.ID(ids.encode("Thread", row.id)),
            key=row.key,
            title=row.title,
            url=row.url,
            created_at=row.created_at,
            locked=row.locked,
            comment_count=row.comment_count,
            row=row,
        )

    @strawberry.field(description="Top-level comments; replies hang under each.")
    async def comments(
        self,
        info: Info,
        first: int | None = pages.COMMENTS_PAGE,
        after: str | None = None,
        order_by: CommentOrder | None = CommentOrder.OLDEST,
    ) -> CommentConnection:
        context = info.context
        order_by = order_by or CommentOrder.OLDEST
        page = await pages.comment_page(
            context,
            thread_id=self.row.id,
            parent_id=None,
            first=pages.page_size(first, pages.COMMENTS_PAGE),
            after=after,
            order=order_by,
        )
        return CommentConnection.from_page(page, order_by, self.row.top_level_count, context)


@strawberry.type
class Comment(Node):
    depth: int = strawberry.field(description="0 for a top-level comment.")
    author: User | None = strawberry.field(description="Null once deleted or removed.")
    body: str = strawberry.field(description='Markdown source; "" once deleted or removed.')
    body_html: str = strawberry.field(description="Sanitised HTML rendered from the body.")
    state: CommentState
    created_at: datetime
    edited_at: datetime | None
    like_count: int
    viewer_can_edit: bool = strawberry.field(metadata=PER_VIEWER)
    viewer_can_delete: bool = strawberry.field(metadata=PER_VIEWER)
    reply_count: int = strawberry.field(description="Direct visible replies.")
    descendant_count: int = strawberry.field(description="All visible comments beneath.")
    row: Private[CommentRow]

    @classmethod
    def from_row(cls, row: CommentRow, context: Context) -> Comment:
        visible = row.visible
        author = row.author if visible else None
        actor = policy.actor_of(context.viewer) if context.viewer is not None else None
        window = timedelta(seconds=context.settings.edit_window)
        return cls(
            id=strawberry.ID(ids.encode("Comment", row.thread_id, row.id)),
            depth=row.depth,
            author=User.from_row(author, context.base_url) if author else None,
            body=row.body if visible else "",
            body_html=row.body_html if visible else "",
            state=row.state,
            created_at=row.created_at,
            edited_at=row.edited_at,
            like_count=row.like_count,
            viewer_can_edit=policy.can_edit(actor, row, datetime.now(UTC), window),
            viewer_can_delete=policy.can_delete(actor, row),
            reply_count=row.reply_count,
            descendant_count=row.descendant_count,
            row=row,
        )

    @strawberry.field(
        description="False for anonymous readers.", graphql_type=bool, metadata=PER_VIEWER
    )
    def viewer_has_liked(self, info: Info) -> Awaitable[bool] | bool:
        """Not a coroutine: most readers are anonymous, and their answer needs no waiting."""
        if info.context.viewer is None:
            return False
        return info.context.loaders.liked.load((self.row.thread_id, self.row.id))

    @strawberry.field
    async def thread(self, info: Info) -> Thread:
        row = await info.context.loaders.thread.load(self.row.thread_id)
        assert row is not None, "a comment's thread always exists"
        return Thread.from_row(row)

    @strawberry.field
    async def parent(self, info: Info) -> Comment | None:
        if self.row.parent_id is None:
            return None
        row = await info.context.loaders.comment.load((self.row.thread_id, self.row.parent_id))
        return Comment.from_row(row, info.context) if row else None

    @strawberry.field(description='Plain text cut at a word boundary, for "Expand full comment".')
    def excerpt(self, max_length: int | None = 280) -> Excerpt:
        max_length = 280 if max_length is None else max_length
        source = self.row.body_text if self.row.state is CommentState.VISIBLE else ""
        cut, truncated = text.excerpt(source, max_length)
        return Excerpt(text=cut, truncated=truncated)

    @strawberry.field(description="Direct replies; each has replies of its own.")
    async def replies(
        self,
        info: Info,
        first: int | None = pages.REPLIES_PAGE,
        after: str | None = None,
        order_by: CommentOrder | None = CommentOrder.OLDEST,
    ) -> CommentConnection:
        context = info.context
        order_by = order_by or CommentOrder.OLDEST
        row = self.row
        page = await pages.comment_page(
            context,
            thread_id=row.thread_id,
            parent_id=row.id,
            first=pages.page_size(first, pages.REPLIES_PAGE),
            after=after,
            order=order_by,
        )
        return CommentConnection.from_page(page, order_by, row.listed_reply_count, context)


@strawberry.type
class CommentEdge:
    cursor: str
    node: Comment


@strawberry.type
class CommentConnection:
    nodes: list[Comment]
    total_count: int
    order: Private[CommentOrder]
    page: Private[pages.Page[CommentRow]]

    @classmethod
    def from_page(
        cls, page: pages.Page[CommentRow], order: CommentOrder, total: int, context: Context
    ) -> CommentConnection:
        nodes = [Comment.from_row(row, context) for row in page.rows]
        return cls(nodes=nodes, total_count=total, order=order, page=page)

    @strawberry.field
    def edges(self) -> list[CommentEdge]:
        return [
            CommentEdge(cursor=comment_cursor(self.order, n.row.sort_key(self.order)), node=n)
            for n in self.nodes
        ]

    @strawberry.field
    def page_info(self) -> PageInfo:
        rows = self.page.rows
        return PageInfo(
            has_next_page=self.page.has_next,
            has_previous_page=self.page.has_previous,
            start_cursor=comment_cursor(self.order, rows[0].sort_key(self.order)) if rows else None,
            end_cursor=comment_cursor(self.order, rows[-1].sort_key(self.order)) if rows else None,
        )


@strawberry.type
class ThreadEdge:
    cursor: str
    node: Thread


@strawberry.type
class ThreadConnection:
    nodes: list[Thread]
    page: Private[pages.Page[ThreadRow]]

    @strawberry.field
    def edges(self) -> list[ThreadEdge]:
        return [ThreadEdge(cursor=thread_cursor(n.row.id), node=n) for n in self.nodes]

    @strawberry.field
    def page_info(self) -> PageInfo:
        rows = self.page.rows
        return PageInfo(
            has_next_page=self.page.has_next,
            has_previous_page=self.page.has_previous,
            start_cursor=thread_cursor(rows[0].id) if rows else None,
            end_cursor=thread_cursor(rows[-1].id) if rows else None,
        )

    @strawberry.field
    async def total_count(self, info: Info) -> int:
        return await info.context.storage.thread_total()
