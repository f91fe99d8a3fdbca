"""GraphQL-over-HTTP media types, chosen from the request's `Accept` header."""

from __future__ import annotations

from functools import lru_cache

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ACCEPTS = 64  # distinct Accept headers whose answer is remembered: clients send a few


def _ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    return ranges


@lru_cache(maxsize=ACCEPTS)
def negotiate(accept: str | None) -> str | None:
    """The response media type, or None when the client accepts neither JSON type.

    A type named outright beats a wildcard; between equals the newer
    `application/graphql-response+json` wins, while a bare `*/*` gets `application/json`.
    """
    if not accept:
        return JSON
    ranges = _ranges(accept)
    best: tuple[float, int, int, str] | None = None
    for preference, media in enumerate((JSON, GRAPHQL_RESPONSE)):
        for pattern, quality in ranges:
            exact = pattern == media
            if quality > 0 and (exact or pattern in {"*/*", "application/*"}):
                rank = (quality, int(exact), preference if exact else -preference, media)
                if best is None or rank > best:
                    best = rank
    return best[3] if best else None
