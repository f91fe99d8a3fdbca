"""A real server on a free port, and a graphql-transport-ws client, for tests over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from server.app import create_app
from server.cli import server_options

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.applications import Starlette

    from server.settings import Settings


# `threadql` as a subprocess, from this interpreter and its environment.
THREADQL = [sys.executable, "-c", "from server.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    app: Starlette

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"


@asynccontextmanager
async def serving(app: Starlette, **options: Any) -> AsyncIterator[str]:
    """uvicorn serving `app` on a free port of 127.0.0.1, in this event loop; its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """threadql on 127.0.0.1, in this event loop, until the block ends."""
    app = create_app(settings)
    async with serving(
        app,
        lifespan="on",
        ws_ping_interval=0.5,  # a client that stops reading cannot answer pings: cut it off soon
        ws_ping_timeout=0.5,
        **server_options(settings),
    ) as url:
        yield LiveServer(url, app)


def receiving(app: Starlette) -> tuple[int, int]:
    """The broker's subscriptions, and the subscribers that share one of them (server/fanout.py).

    A subscriber receives every event published from the moment it is counted here; one that
    starts a shared subscription, from the moment that subscription is counted by the broker.
    """
    return app.state.broker.subscriber_count(), app.state.fanout.subscriber_count()


class GraphQLWebSocket:
    """The client side of graphql-transport-ws, enough for subscriptions."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = itertools.count(1)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, url: str, token: str | None = None, **options: Any
    ) -> AsyncIterator[GraphQLWebSocket]:
        async with connect(url, subprotocols=["graphql-transport-ws"], **options) as connection:  # type: ignore[list-item]
            client = cls(connection)
            payload = {"authorization": f"Bearer {token}"} if token else {}
            await client.send({"type": "connection_init", "payload": payload})
            ack = await client.receive()
            assert ack["type"] == "connection_ack", ack
            yield client

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.connection.recv())
        return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        operation = str(next(self._ids))
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": operation, "type": "subscribe", "payload": payload})
        return operation

    async def complete(self, operation: str) -> None:
        await self.send({"id": operation, "type": "complete"})

    async def next_data(self, operation: str) -> dict[str, Any]:
        """The data of the operation's next result; pings are answered on the way."""
        while True:
            message = await self.receive()
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            assert message.get("id") == operation, message
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            data: dict[str, Any] = message["payload"]["data"]
            return data
