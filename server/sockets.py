"""What one WebSocket may do: open operations while its client address has room for them,
start them a few at a time, and act as its user only while the user's token holds.

`SocketHandler` wraps `FanoutHandler`, where the operations themselves run. At `exp` a
signed-in socket is closed with 4401, which graphql-ws clients read as "sign in again"; an
operation or a message that meets an expired token before the timer has closed the socket
is dropped, so that nothing runs or goes out as that user any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Protocol, cast

from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected

from server.fanout import FanoutHandler
from server.ratelimit import client_address

if TYPE_CHECKING:
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
    from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
        ConnectionInitMessage,
        Message,
    )

    from resolvers.context import Context
    from server.addresses import PerAddress
    from server.broker import Broker

UNAUTHORIZED = 4401  # graphql-transport-ws: the client must connect again, signed in afresh
EXPIRED = "the token has expired: connect again with a new one"


class SocketView(Protocol):
    broker: Broker
    operations: PerAddress  # open at once, by client address


def too_many_operations(cap: int) -> GraphQLError:
    return GraphQLError(
        f"at most {cap} operations at once per address: complete one first",
        extensions={"code": "QUERY_LIMIT"},
    )


class SocketHandler(FanoutHandler):
    _expiry: asyncio.TimerHandle | None = None
    _ending: asyncio.Task[None] | None = None  # set once the token has expired

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        expires = self.context.viewer_expires
        if self.connection_acknowledged and expires is not None and self._expiry is None:
            delay = max(0.0, expires - time.time())
            self._expiry = asyncio.get_running_loop().call_later(delay, self._end_authority)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        view = cast("SocketView", self.view)
        await view.broker.turn()  # operations sent all at once start a few at a time
        if self._expired():  # a mutation must not run as the token's user any more
            self._end_authority()
            return
        address = client_address(self.context.request)
        if not view.operations.take(address):
            await operation.send_initial_errors([too_many_operations(view.operations.cap)])
            return
        try:
            await super().run_operation(operation)
        finally:
            view.operations.give_back(address)

    async def send_message(self, message: Message) -> None:
        if self._expired():  # before the timer has run
            self._end_authority()
            return
        await super().send_message(message)

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await super().shutdown()
        if self._ending is not None:
            await self._ending

    def _expired(self) -> bool:
        expires = self.context.viewer_expires
        return self._ending is not None or (expires is not None and time.time() >= expires)

    def _end_authority(self) -> None:
        if self._ending is None:
            self._ending = asyncio.create_task(self._close_unauthorized())

    async def _close_unauthorized(self) -> None:
        """Stop every operation, then close; a client already gone is left alone."""
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with contextlib.suppress(WebSocketDisconnected, WebSocketDisconnect, RuntimeError):
            await self.websocket.close(code=UNAUTHORIZED, reason=EXPIRED)
