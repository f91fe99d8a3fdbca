"""Root lookups by global id or key: unknown ids are null, malformed ones an error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from db import policy
from resolvers import ids
from resolvers.errors import BadUserInput

if TYPE_CHECKING:
    from db.rows import CommentRow, ThreadRow, UserRow
    from resolvers.context import Context


async def thread(context: Context, global_id: str | None, key: str | None) -> ThreadRow | None:
    if (global_id is None) == (key is None):
        raise BadUserInput("give exactly one of `id` and `key`")
    if global_id is not None:
        return await context.loaders.thread.load(ids.thread_id(global_id))
    assert key is not None
    return await context.loaders.thread_by_key.load(key)


async def comment(context: Context, global_id: str) -> CommentRow | None:
    return await context.loaders.comment.load(ids.comment_key(global_id))


async def node(context: Context, global_id: str) -> ThreadRow | CommentRow | UserRow | None:
    type_name, parts = ids.decode(global_id)
    if type_name == "Thread":
        return await context.loaders.thread.load(parts[0])
    if type_name == "Comment":
        return await context.loaders.comment.load((parts[0], parts[1]))
    return await user(context, parts[0])


async def user(context: Context, user_id: int) -> UserRow | None:
    """A user as the viewer may see them: themselves, or a user public through a comment."""
    if policy.is_self(context.viewer, user_id):
        return context.viewer
    return await context.loaders.public_user.load(user_id)
