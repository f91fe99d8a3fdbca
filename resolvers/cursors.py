"""Opaque keyset cursors: the sort key of the last row seen, so pages stay stable under inserts."""

from __future__ import annotations

import base64
import binascii

import orjson

from db.rows import CommentOrder, SortKey, format_time, parse_time
from resolvers.errors import BadUserInput

# What a cursor's numbers can be: row ids are 64-bit, like counts 32-bit (as stored).
_MAX_ID = 2**63 - 1
_MAX_LIKES = 2**31 - 1


def _pack(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _unpack(cursor: str) -> object:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None


def _is_int(value: object, maximum: int = _MAX_ID) -> bool:
    return type(value) is int and 0 <= value <= maximum


def _is_moment(value: object) -> bool:
    """Whether `value` is a time exactly as `comment_cursor` writes one: any other text
    (another format, no time zone, a year that leaves the calendar in UTC) would reach the
    page's statement and fail it."""
    if not isinstance(value, str):
        return False
    try:
        return format_time(parse_time(value)) == value
    except (ValueError, OverflowError, OSError):
        return False


def comment_cursor(order: CommentOrder, key: SortKey) -> str:
    return _pack([order.value, *key])


def decode_comment_cursor(cursor: str, order: CommentOrder) -> SortKey:
    value = _unpack(cursor)
    if isinstance(value, list) and value and value[0] == order.value:
        key = value[1:]
        if order is CommentOrder.TOP:
            if (
                len(key) == 3
                and _is_int(key[0], _MAX_LIKES)
                and _is_moment(key[1])
                and _is_int(key[2])
            ):
                return (key[0], key[1], key[2])
        elif len(key) == 2 and _is_moment(key[0]) and _is_int(key[1]):
            return (key[0], key[1])
    raise BadUserInput(f"`after` is not a cursor of this connection in {order.value} order")


def thread_cursor(thread_id: int) -> str:
    return _pack(["T", thread_id])


def decode_thread_cursor(cursor: str) -> int:
    value = _unpack(cursor)
    if isinstance(value, list) and len(value) == 2 and value[0] == "T" and _is_int(value[1]):
        return int(value[1])
    raise BadUserInput("`after` is not a cursor of the threads connection")
