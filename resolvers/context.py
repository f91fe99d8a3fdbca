"""What every resolver gets as `info.context`."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketDisconnect

from db import policy
from resolvers.loaders import Loaders
from server.ratelimit import UNLIMITED, address_key

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from db.rows import Actor, UserRow
    from db.storage import Storage
    from server.broker import Broker
    from server.ratelimit import RateLimiter
    from server.settings import Settings


# 1013, "try again later": clients of graphql-transport-ws reconnect on it.
MISSED_UPDATES_CODE = 1013
_closing: set[asyncio.Future[None]] = set()


async def _close(websocket: WebSocket) -> None:
    """Say why, if the socket still takes a frame; a client that reads nothing is cut off
    by the server's keep-alive pings instead."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(
            code=MISSED_UPDATES_CODE, reason="live updates were missed: reconnect and reload"
        )


def app_limiter(request: Request | WebSocket) -> RateLimiter:
    """The limiter `create_app` keeps in the app's state, so that every view and client of
    the app shares it; an app without one limits nothing."""
    app = request.scope.get("app")
    limiter: RateLimiter = getattr(getattr(app, "state", None), "limiter", UNLIMITED)
    return limiter


@dataclass
class Context:
    storage: Storage
    broker: Broker
    settings: Settings
    request: Request | WebSocket
    response: Response | WebSocket | None
    base_url: str  # absolute URL of this server, for links it serves itself (avatars)
    viewer: UserRow | None = None
    loaders: Loaders = field(init=False)
    connection_params: dict[str, Any] | None = None
    # When the viewer's token expires (seconds since the epoch): a WebSocket's authority ends.
    viewer_expires: float | None = None
    limiter: RateLimiter = field(init=False)  # the app's `state.limiter`

    def __post_init__(self) -> None:
        self.limiter = app_limiter(self.request)
        self.fresh_loaders()

    def fresh_loaders(self) -> Loaders:
        """New caches: a WebSocket keeps one context for all its events, each needs fresh rows."""
        self.loaders = Loaders(self.storage, self.viewer.id if self.viewer else None)
        return self.loaders

    def close_for_missed_updates(self) -> None:
        """Close a WebSocket whose subscriber missed events (it fell behind, or the broker
        dropped), so that the client reconnects and reloads."""
        if isinstance(self.request, WebSocket):
            task = asyncio.ensure_future(_close(self.request))
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    def rate_key(self) -> str:
        """Whom a rate limit counts: the signed-in user, else the client's address."""
        if self.viewer is not None:
            return f"user:{self.viewer.id}"
        return address_key(self.request)

    def actor(self) -> Actor:
        """The signed-in user about to write; a top-level error for anonymous writes."""
        if self.viewer is None:
            raise GraphQLError(
                "sign in to do this: send `Authorization: Bearer <token>`",
                extensions={"code": "UNAUTHENTICATED"},
            )
        return policy.actor_of(self.viewer)
