"""Opaque keyset cursors: the sort key of the last row seen, so pages stay stable under inserts."""

from __future__ import annotations

import base64
import binascii

import orjson

from db.rows import CommentOrder, SortKey
from resolvers.errors import BadUserInput

_MAX_INT = 2**63 - 1


def _pack(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _unpack(cursor: str) -> object:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None


def _is_int(value: object) -> bool:
    return type(value) is int and 0 <= value <= _MAX_INT


def comment_cursor(order: CommentOrder, key: SortKey) -> str:
    return _pack([order.value, *key])


def decode_comment_cursor(cursor: str, order: CommentOrder) -> SortKey:
    value = _unpack(cursor)
    if isinstance(value, list) and value and value[0] == order.value:
        key = value[1:]
        if order is CommentOrder.TOP:
            if len(key) == 3 and _is_int(key[0]) and isinstance(key[1], str) and _is_int(key[2]):
                return (key[0], key[1], key[2])
        elif len(key) == 2 and isinstance(key[0], str) and _is_int(key[1]):
            return (key[0], key[1])
    raise BadUserInput(f"`after` is not a cursor of this connection in {order.value} order")


def thread_cursor(thread_id: int) -> str:
    return _pack(["T", thread_id])


def decode_thread_cursor(cursor: str) -> int:
    value = _unpack(cursor)
    if isinstance(value, list) and len(value) == 2 and value[0] == "T" and _is_int(value[1]):
        return int(value[1])
    raise BadUserInput("`after` is not a cursor of the threads connection")
