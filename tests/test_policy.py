"""The rules of db.policy on rows alone: who may edit, delete, moderate and write where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db import policy
from db.rows import Actor, CommentRow, CommentState, UserRow

WRITTEN = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(minutes=15)

AUTHOR = UserRow(1, "host:author", "Author", None, "user")
OTHER = UserRow(2, "host:other", "Other", None, "user")
MODERATOR = UserRow(3, "host:mod", "Mod", None, "moderator")
ADMIN = UserRow(4, "host:admin", "Admin", None, "admin")


def comment(state: CommentState = CommentState.VISIBLE) -> CommentRow:
    """AUTHOR's comment; a deleted one has lost its author, a removed one keeps it."""
    author = None if state is CommentState.DELETED else AUTHOR
    return CommentRow(1, 1, None, 0, author, "b", "<p>b</p>", "b", state, WRITTEN, None, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("role", "moderates"),
    [("user", False), ("moderator", True), ("admin", True), ("Moderator", False), ("", False)],
)
def test_only_moderators_and_admins_moderate(role: str, moderates: bool) -> None:
    user = UserRow(9, "host:someone", "Someone", None, role)
    assert policy.is_moderator(role) is moderates
    assert policy.actor_of(user) == Actor(9, moderates)
    assert policy.can_moderate(policy.actor_of(user)) is moderates


def test_nobody_signed_in_moderates() -> None:
    assert policy.can_moderate(None) is False


# (who, state, time since writing, may edit)
EDITS: list[tuple[UserRow | None, CommentState, timedelta, bool]] = [
    (AUTHOR, CommentState.VISIBLE, timedelta(0), True),
    (AUTHOR, CommentState.VISIBLE, WINDOW, True),  # the last instant is still open
    (AUTHOR, CommentState.VISIBLE, WINDOW + timedelta(microseconds=1), False),
    (AUTHOR, CommentState.REMOVED, timedelta(0), False),  # the author is kept, not their rights
    (AUTHOR, CommentState.DELETED, timedelta(0), False),
    (OTHER, CommentState.VISIBLE, timedelta(0), False),
    (MODERATOR, CommentState.VISIBLE, timedelta(0), False),  # moderators remove, never edit
    (None, CommentState.VISIBLE, timedelta(0), False),
]


@pytest.mark.parametrize(("who", "state", "age", "may"), EDITS)
def test_only_the_author_edits_a_visible_comment_within_the_window(
    who: UserRow | None, state: CommentState, age: timedelta, may: bool
) -> None:
    actor = policy.actor_of(who) if who else None
    assert policy.can_edit(actor, comment(state), WRITTEN + age, WINDOW) is may


# (who, state, may delete)
DELETES: list[tuple[UserRow | None, CommentState, bool]] = [
    (AUTHOR, CommentState.VISIBLE, True),
    (MODERATOR, CommentState.VISIBLE, True),
    (ADMIN, CommentState.VISIBLE, True),
    (OTHER, CommentState.VISIBLE, False),
    (None, CommentState.VISIBLE, False),
    (AUTHOR, CommentState.REMOVED, False),  # a placeholder is deleted already, as far as shown
    (MODERATOR, CommentState.REMOVED, False),
    (MODERATOR, CommentState.DELETED, False),
]


@pytest.mark.parametrize(("who", "state", "may"), DELETES)
def test_the_author_or_a_moderator_deletes_a_visible_comment(
    who: UserRow | None, state: CommentState, may: bool
) -> None:
    actor = policy.actor_of(who) if who else None
    assert policy.can_delete(actor, comment(state)) is may


def test_the_delete_right_does_not_expire_with_the_edit_window() -> None:
    old = WRITTEN + 100 * WINDOW
    author = policy.actor_of(AUTHOR)
    assert policy.can_edit(author, comment(), old, WINDOW) is False
    assert policy.can_delete(author, comment()) is True


@pytest.mark.parametrize(
    ("locked", "who", "writable"),
    [
        (False, AUTHOR, True),
        (False, MODERATOR, True),
        (True, AUTHOR, False),
        (True, OTHER, False),
        (True, MODERATOR, True),
        (True, ADMIN, True),
    ],
)
def test_a_locked_thread_is_read_only_for_all_but_moderators(
    locked: bool, who: UserRow, writable: bool
) -> None:
    assert policy.thread_writable(locked, policy.actor_of(who)) is writable


@pytest.mark.parametrize(
    ("state", "public"),
    [(CommentState.VISIBLE, True), (CommentState.DELETED, False), (CommentState.REMOVED, False)],
)
def test_only_a_visible_comment_makes_its_author_public(state: CommentState, public: bool) -> None:
    assert (state in policy.PUBLIC_AUTHORSHIP) is public


def test_everyone_sees_themselves() -> None:
    assert policy.is_self(AUTHOR, AUTHOR.id) is True
    assert policy.is_self(AUTHOR, OTHER.id) is False
    assert policy.is_self(None, AUTHOR.id) is False
