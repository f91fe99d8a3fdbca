"""Subscriptions: a thread's events, each read afresh as the subscriber's own viewer."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from resolvers import ids
from resolvers.errors import BadUserInput

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from db.rows import CommentRow
    from resolvers.context import Context
    from server.broker import Event, EventKind


async def comment_events(
    context: Context, kind: EventKind, thread_global_id: str, ancestor_global_id: str | None = None
) -> AsyncIterator[CommentRow]:
    """Comments of the thread as events of `kind` name them; with an ancestor, its subtree only."""
    thread_id = ids.thread_id(thread_global_id)
    ancestor = ids.comment_key(ancestor_global_id) if ancestor_global_id is not None else None
    if ancestor is not None and ancestor[0] != thread_id:
        raise BadUserInput("`ancestorId` is a comment of another thread")
    if await context.fresh_loaders().thread.load(thread_id) is None:
        raise BadUserInput("no thread has this `threadId`")
    async with context.broker.subscribe(thread_id, context.close_for_missed_updates) as events:
        async for event in events:
            if event.kind is not kind:
                continue
            if ancestor is not None and ancestor[1] not in event.ancestor_ids:
                continue
            row = await _committed_row(context, event)
            if row is not None:
                # A turn after the shared read, not before: its end wakes every subscriber.
                await context.broker.turn()
                context.fresh_loaders().comment.prime((row.thread_id, row.id), row)
                yield row


async def _committed_row(context: Context, event: Event) -> CommentRow | None:
    """The event's comment, read once for all of this process's subscribers to the event."""
    read = event.shared.get("row")
    if read is None:
        key = (event.thread_id, event.comment_id)
        read = event.shared["row"] = asyncio.ensure_future(context.storage.comments_by_ids([key]))
    rows: list[CommentRow | None] = await asyncio.shield(read)
    return rows[0]
