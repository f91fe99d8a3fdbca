"""What one WebSocket may do: open operations while its client address has room for them,
and start them a few at a time.

`SocketHandler` wraps `FanoutHandler`, where the operations themselves run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from graphql import GraphQLError

from server.fanout import FanoutHandler
from server.ratelimit import client_address

if TYPE_CHECKING:
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

    from resolvers.context import Context
    from server.addresses import PerAddress
    from server.broker import Broker


class SocketView(Protocol):
    broker: Broker
    operations: PerAddress  # open at once, by client address


def too_many_operations(cap: int) -> GraphQLError:
    return GraphQLError(
        f"at most {cap} operations at once per address: complete one first",
        extensions={"code": "QUERY_LIMIT"},
    )


class SocketHandler(FanoutHandler):
    async def run_operation(self, operation: Operation[Context, None]) -> None:
        view = cast("SocketView", self.view)
        await view.broker.turn()  # operations sent all at once start a few at a time
        address = client_address(self.context.request)
        if not view.operations.take(address):
            await operation.send_initial_errors([too_many_operations(view.operations.cap)])
            return
        try:
            await super().run_operation(operation)
        finally:
            view.operations.give_back(address)
