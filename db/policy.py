"""Who may do and see what: the rules, pure and in one place.

The writes in db/sql.py re-check them under their lock, against the rows they hold; the API
answers `viewerCanEdit` and `viewerCanDelete` from the same functions, so what a reader is
offered is what a write accepts. No I/O here: every rule is tested on rows alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from db.rows import Actor, CommentState

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from db.rows import CommentRow, UserRow

# The roles that moderate: lock threads, remove comments, delete anyone's, write where locked.
MODERATOR_ROLES = frozenset({"moderator", "admin"})

# A user is public only through something public they wrote: a comment in one of these
# states. Signing in, moderating, or writing only what is now deleted or removed makes
# nobody findable by id.
PUBLIC_AUTHORSHIP = frozenset({CommentState.VISIBLE})


def is_moderator(role: str) -> bool:
    return role in MODERATOR_ROLES


def actor_of(user: UserRow) -> Actor:
    """A signed-in user as the rules see them."""
    return Actor(user.id, is_moderator(user.role))


def is_self(viewer: UserRow | None, user_id: int) -> bool:
    """Everyone sees themselves, public or not."""
    return viewer is not None and viewer.id == user_id


def is_author(actor: Actor | None, comment: CommentRow) -> bool:
    """Whether the actor wrote the comment; a deleted comment has no author left."""
    return actor is not None and comment.author is not None and comment.author.id == actor.user_id


def can_moderate(actor: Actor | None) -> bool:
    return actor is not None and actor.moderator


def edit_window_open(created_at: datetime, now: datetime, window: timedelta) -> bool:
    """An author may edit for `window` after writing, the last instant included."""
    return now - created_at <= window


def can_edit(actor: Actor | None, comment: CommentRow, now: datetime, window: timedelta) -> bool:
    """Only its author edits a visible comment, and only while the edit window is open."""
    return (
        comment.visible
        and is_author(actor, comment)
        and edit_window_open(comment.created_at, now, window)
    )


def can_delete(actor: Actor | None, comment: CommentRow) -> bool:
    """Its author or a moderator deletes a visible comment."""
    return comment.visible and (is_author(actor, comment) or can_moderate(actor))


def thread_writable(locked: bool, actor: Actor) -> bool:
    """A locked thread is read-only for everyone but moderators."""
    return not locked or actor.moderator
