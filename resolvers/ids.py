"""Global ids: opaque to clients, carrying the type and, for comments, the thread."""

from __future__ import annotations

import base64
import binascii
import re

from resolvers.errors import BadUserInput

_DECODED = re.compile(r"^(Thread|Comment|User):(\d{1,18})(?::(\d{1,18}))?$")
_PARTS = {"Thread": 1, "Comment": 2, "User": 1}


def encode(type_name: str, *parts: int) -> str:
    raw = ":".join([type_name, *map(str, parts)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(global_id: str) -> tuple[str, tuple[int, ...]]:
    """The type name and numbers of a global id; a clear error for anything forged."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    match = _DECODED.match(raw)
    if not match or len([g for g in match.groups()[1:] if g]) != _PARTS[match.group(1)]:
        raise BadUserInput(f"{global_id[:64]!r} is not a valid id")
    return match.group(1), tuple(int(g) for g in match.groups()[1:] if g)


def decode_as(global_id: str, type_name: str) -> tuple[int, ...]:
    found, parts = decode(global_id)
    if found != type_name:
        raise BadUserInput(f"{global_id[:64]!r} is the id of a {found}, not of a {type_name}")
    return parts


def thread_id(global_id: str) -> int:
    return decode_as(global_id, "Thread")[0]


def comment_key(global_id: str) -> tuple[int, int]:
    thread, comment = decode_as(global_id, "Comment")
    return thread, comment
