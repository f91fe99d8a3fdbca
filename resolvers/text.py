"""Plain-text helpers for fields computed from stored text."""

from __future__ import annotations

from resolvers.errors import BadUserInput

MAX_EXCERPT = 10_000
ELLIPSIS = "…"


def excerpt(text: str, max_length: int) -> tuple[str, bool]:
    """At most `max_length` characters, cut at a word boundary, with an ellipsis when cut."""
    if not 1 <= max_length <= MAX_EXCERPT:
        raise BadUserInput(f"`maxLength` must be between 1 and {MAX_EXCERPT}, not {max_length}")
    flat = " ".join(text.split())
    if len(flat) <= max_length:
        return flat, False
    room = flat[: max_length - len(ELLIPSIS) + 1]
    cut = room.rfind(" ")
    kept = room[:cut] if cut > 0 else room[: max_length - len(ELLIPSIS)]
    return kept.rstrip(" ,;:.-\u2013\u2014") + ELLIPSIS, True
