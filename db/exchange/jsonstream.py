"""A JSON object read member by member, one array of it element by element.

json.load would hold a whole dump in memory; this holds one element of the streamed array
(one thread) and whatever of the file has been read but not yet decoded.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from db.exchange.source import ExchangeError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TextIO

_CHUNK = 1 << 16
_WHITESPACE = " \t\r\n"
_MAX_DIGITS = 100  # an integer longer is no count and no id: read as a float, never an int


def _integer(text: str) -> int | float:
    """Python refuses to read integers of more than 4,300 digits, and no database holds one
    of more than 20: a longer one stays a number, but not an integer."""
    return int(text) if len(text) <= _MAX_DIGITS else float(text)


class _Reader:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.buffer = ""
        self.at = 0
        self.ended = False
        self.decoder = json.JSONDecoder(parse_int=_integer)

    def _more(self, at_least: int = _CHUNK) -> bool:
        """Read on; False at the end of the file."""
        chunk = self.stream.read(at_least)
        if not chunk:
            self.ended = True
            return False
        self.buffer = self.buffer[self.at :] + chunk
        self.at = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace, not consumed; "" at the end."""
        while True:
            while self.at < len(self.buffer) and self.buffer[self.at] in _WHITESPACE:
                self.at += 1
            if self.at < len(self.buffer) or not self._more():
                return self.buffer[self.at : self.at + 1]

    def expect(self, *allowed: str) -> str:
        found = self.peek()
        if found not in allowed:
            raise ExchangeError(f"expected one of {' '.join(allowed)} but found {found!r}")
        self.at += 1
        return found

    def value(self) -> Any:
        """One JSON value. A value may end just where the buffer does (a number cut in two),
        so it is decoded again with more text until something follows it."""
        self.peek()
        wanted = _CHUNK
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.at)
            except json.JSONDecodeError as error:
                if self.ended or not self._more(wanted):
                    raise ExchangeError(f"not valid JSON: {error}") from error
                wanted *= 2  # a long value is decoded O(log n) times, not once per chunk
                continue
            except RecursionError as error:  # arrays in arrays deeper than Python's stack
                raise ExchangeError("values nested too deeply to read") from error
            if end < len(self.buffer) or self.ended or not self._more(wanted):
                self.at = end
                return value


def members(stream: TextIO, streamed: str) -> Iterator[tuple[str, Any]]:
    """(name, value) for each member of the top-level object; for the array named
    `streamed`, (name, element) for each of its elements."""
    reader = _Reader(stream)
    reader.expect("{")
    if reader.peek() == "}":
        return
    while True:
        name = reader.value()
        if not isinstance(name, str):
            raise ExchangeError(f"expected a member's name, found {name!r}")
        reader.expect(":")
        if name == streamed:
            reader.expect("[")
            if reader.peek() == "]":
                reader.at += 1
            else:
                while True:
                    yield name, reader.value()
                    if reader.expect(",", "]") == "]":
                        break
        else:
            yield name, reader.value()
        if reader.expect(",", "}") == "}":
            return
