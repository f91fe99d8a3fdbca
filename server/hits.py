"""Answers from the response cache before Strawberry's view runs: what a request must be for
the cache to answer it (one operation, as Strawberry would read it; anything else goes the
usual way, so that Strawberry alone decides what is wrong with it and says so), and the
answer itself."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from starlette.responses import Response
from strawberry.http import GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type

from server.cache import matches

if TYPE_CHECKING:
    from server.cache import Entry

CONTENT_TYPES = 64  # distinct Content-Type values whose media type is remembered
# What every anonymous answer says when the response cache is on: any cache may store it, and
# must ask again before using it; only those with an ETag can be answered 304.
REVALIDATE = {"Cache-Control": "no-cache", "Vary": "Accept, Authorization"}
_REVALIDATE = [(name.lower().encode(), value.encode()) for name, value in REVALIDATE.items()]


def single_operation(data: object) -> GraphQLRequestData | None:
    """The operation of a decoded body or query string, if Strawberry would take it as one."""
    if not isinstance(data, dict):
        return None
    query, variables, extensions = data.get("query"), data.get("variables"), data.get("extensions")
    if not (
        isinstance(query, str | None)
        and isinstance(variables, dict | None)
        and isinstance(extensions, dict | None)
    ):
        return None
    return GraphQLRequestData(query, variables, data.get("operationName"), extensions)


@lru_cache(maxsize=CONTENT_TYPES)
def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, as Strawberry parses it (which is slow)."""
    media, _ = parse_content_type(content_type or "")
    return media


class CachedResponse(Response):
    """An entry's bytes, or 304 while the client's copy is still them: stored by any cache,
    but asked again each time. Its headers are put together as Starlette would, without the
    generic work that cost a tenth of a whole hit."""

    def __init__(self, entry: Entry, media: str, if_none_match: str | None) -> None:
        etag = entry.etag(media)
        self.background = None
        self.raw_headers = [(b"etag", etag.encode()), *_REVALIDATE]
        if matches(if_none_match, etag):
            self.status_code, self.body = 304, b""
            return
        self.status_code, self.body = 200, entry.body
        self.raw_headers += [
            (b"content-length", str(len(entry.body)).encode()),
            (b"content-type", f"{media}; charset=utf-8".encode()),
        ]
