"""Avatars drawn by threadql itself: initials on a colour taken from the name."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from starlette.responses import Response

from db.render import one_line

if TYPE_CHECKING:
    from starlette.requests import Request

MAX_NAME = 200


def initials(name: str) -> str:
    words = [w for w in name.replace("|", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()


def avatar_svg(name: str) -> str:
    """Any name draws well-formed XML: the name as stored names are cleaned."""
    name = one_line(name)
    hue = int.from_bytes(hashlib.sha256(name.encode()).digest()[:2], "big") % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"'
        f' role="img" aria-label="{escape(name, {chr(34): "&quot;"})}">'
        f'<rect width="64" height="64" rx="32" fill="hsl({hue},55%,45%)"/>'
        '<text x="32" y="32" dy=".35em" text-anchor="middle" fill="#fff"'
        ' font-family="system-ui,sans-serif" font-size="26" font-weight="600">'
        f"{escape(initials(name))}</text></svg>"
    )


async def avatar(request: Request) -> Response:
    name = request.path_params["name"][:MAX_NAME]
    return Response(
        avatar_svg(name),
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        },
    )
