"""What a refused write says to clients: the code frontends branch on (UserErrorCode) and
the input at fault. db/ says only why (db.storage.Reason); this is where the API names it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from db.storage import Reason

if TYPE_CHECKING:
    from db.storage import WriteRefused

CODES: dict[Reason, str] = {
    Reason.INVALID: "INVALID_INPUT",
    Reason.KEY_TAKEN: "INVALID_INPUT",
    Reason.NO_THREAD: "NOT_FOUND",
    Reason.NO_COMMENT: "NOT_FOUND",
    Reason.NO_PARENT: "NOT_FOUND",
    Reason.PARENT_IN_ANOTHER_THREAD: "INVALID_INPUT",
    Reason.PARENT_HIDDEN: "INVALID_INPUT",
    Reason.TOO_DEEP: "INVALID_INPUT",
    Reason.NO_TITLE: "INVALID_INPUT",
    Reason.THREAD_CREATION_REFUSED: "FORBIDDEN",
    Reason.THREAD_LOCKED: "THREAD_LOCKED",
    Reason.EDITING_HIDDEN: "INVALID_INPUT",
    Reason.LIKING_HIDDEN: "NOT_FOUND",
    Reason.NOT_AUTHOR: "FORBIDDEN",
    Reason.NOT_MODERATOR: "FORBIDDEN",
    Reason.NOT_AUTHOR_OR_MODERATOR: "FORBIDDEN",
    Reason.EDIT_WINDOW_CLOSED: "EDIT_WINDOW_CLOSED",
}

# The input at fault for each reason. A reason about the thread (it is missing, or locked)
# is missing here: its input is whichever named the thread, and only the mutation knows.
FIELDS: dict[Reason, str] = {
    Reason.KEY_TAKEN: "threadKey",
    Reason.NO_COMMENT: "commentId",
    Reason.NO_PARENT: "parentId",
    Reason.PARENT_IN_ANOTHER_THREAD: "parentId",
    Reason.PARENT_HIDDEN: "parentId",
    Reason.TOO_DEEP: "parentId",
    Reason.NO_TITLE: "threadTitle",
    Reason.THREAD_CREATION_REFUSED: "threadKey",
    Reason.EDITING_HIDDEN: "commentId",
    Reason.LIKING_HIDDEN: "commentId",
    Reason.NOT_AUTHOR: "commentId",
    Reason.NOT_MODERATOR: "commentId",
    Reason.NOT_AUTHOR_OR_MODERATOR: "commentId",
    Reason.EDIT_WINDOW_CLOSED: "commentId",
}


def field(refused: WriteRefused, thread_field: str) -> str | None:
    """The input at fault: the one the refusal names, where its caller named the value it
    checked; else the reason's; else `thread_field`, the input that named the thread."""
    if refused.field is not None:
        return refused.field
    return FIELDS.get(refused.reason, thread_field)
