"""The Subscription root: new and changed comments of a thread, live."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers import live
from schema.types import Comment, Info
from server.broker import EventKind


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every new comment of the thread; with `ancestorId`, those beneath it only."
    )
    async def comment_added(
        self, info: Info, thread_id: strawberry.ID, ancestor_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Comment, None]:
        async for row in live.comment_events(info.context, EventKind.ADDED, thread_id, ancestor_id):
            yield Comment.from_row(row, info.context)

    @strawberry.subscription(description="Edits, deletions, removals and like counts.")
    async def comment_updated(
        self, info: Info, thread_id: strawberry.ID
    ) -> AsyncGenerator[Comment, None]:
        async for row in live.comment_events(info.context, EventKind.UPDATED, thread_id):
            yield Comment.from_row(row, info.context)
