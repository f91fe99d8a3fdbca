"""Who may see what: the rules as data, in one place. Resolvers apply them; the storage
reads what they name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from db.rows import CommentState

if TYPE_CHECKING:
    from db.rows import UserRow

# A user is public only through something public they wrote: a comment in one of these
# states. Signing in, moderating, or writing only what is now deleted or removed makes
# nobody findable by id.
PUBLIC_AUTHORSHIP = frozenset({CommentState.VISIBLE})


def is_self(viewer: UserRow | None, user_id: int) -> bool:
    """Everyone sees themselves, public or not."""
    return viewer is not None and viewer.id == user_id
