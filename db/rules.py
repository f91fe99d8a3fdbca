"""What text from outside may be, whoever sends it: a client's mutation, a token's claims, an
import. One rule each, so that an import is held to the same limits as the API.

`text` and `body` refuse (the API answers the client); `clean_text` and `line` sanitise (an
import has nobody to answer, and keeps what it can). Which characters are control characters,
and how a name is made one line, is db.render's.
"""

from __future__ import annotations

from db.render import CONTROL, one_line
from db.storage import InvalidInput, Reason

MAX_KEY, MAX_TITLE, MAX_REASON = 255, 300, 1_000
MAX_SUB, MAX_NAME, MAX_URL = 255, 100, 2_048
MAX_COUNT = 2**31 - 1  # the largest count an INTEGER column holds on every backend


def _newlines(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


def text(value: str, field: str, max_length: int, *, multiline: bool = False) -> str:
    """Trimmed text without control characters, 1 to `max_length` characters long."""
    value = _newlines(value).strip()
    if not value:
        raise InvalidInput(f"`{field}` must not be empty", Reason.INVALID, field)
    if not multiline and "\n" in value:
        raise InvalidInput(f"`{field}` must be one line", Reason.INVALID, field)
    if CONTROL.search(value):
        raise InvalidInput(f"`{field}` must not contain control characters", Reason.INVALID, field)
    if len(value) > max_length:
        raise InvalidInput(
            f"`{field}` must be at most {max_length} characters long", Reason.INVALID, field
        )
    return value


def body(value: str, max_length: int) -> str:
    return text(value, "body", max_length, multiline=True)


def clean_text(value: str) -> str:
    """What `text` would refuse taken out: newlines as `\\n`, no control characters but
    newlines and tabs, trimmed."""
    return CONTROL.sub("", _newlines(value)).strip()


def line(value: str, max_length: int) -> str:
    """A name or a title as it shows (db.render.one_line), cut to `max_length` characters."""
    return one_line(value)[:max_length].strip()


def web_url(value: str) -> bool:
    """An http(s) address of at most MAX_URL characters, without white space or control
    characters: an avatar, a thread's page."""
    return (
        value.startswith(("https://", "http://"))
        and len(value) <= MAX_URL
        and not CONTROL.search(value)
        and not any(c.isspace() for c in value)
    )
