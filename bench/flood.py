"""`python -m bench.flood`: one client address floods a server with WebSocket subscriptions.

`--connections` sockets, each opening `--subscriptions` anonymous subscriptions to the demo
thread (one shared document, or with `--distinct` a document of its own for each, so that
none shares an execution), all read as fast as they arrive. Then comments are posted one
at a time while `/healthz` is asked again and again: the figures are the slowest `/healthz`
and `addComment` answers, the server's resident memory before and after, and how many
connections and subscriptions the server took or refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import re
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.delivery import raise_open_file_limit
from bench.posting import Poster, comment_body, new_secret
from bench.server import running_server
from server.settings import Settings

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.synchronize import Event

_RSS = re.compile(r"^VmRSS:\s+(\d+) kB$", re.MULTILINE)
PROBE_INTERVAL = 0.02  # seconds between two /healthz requests
DELIVERY_WAIT = 120.0  # seconds that the deliveries of all comments may take at most


def rss_mib(pid: int) -> float:
    match = _RSS.search(Path(f"/proc/{pid}/status").read_text("ascii"))
    return int(match.group(1)) / 1024 if match else 0.0


def document(number: int | None) -> str:
    """The subscription; numbered ones differ in an alias, so none shares an execution."""
    alias = "" if number is None else f" n{number}: depth"
    return (
        "subscription ($thread: ID!) { commentAdded(threadId: $thread) {"
        f" id body bodyHtml author {{ name avatarUrl }}{alias} }} }}"
    )


@dataclass
class Tally:
    acknowledged: int = 0
    refused_connections: Counter[int] = field(default_factory=Counter)  # by close code
    refused_subscriptions: int = 0
    received: int = 0
    expected: int | None = None  # events to receive, once the subscriptions are known
    all_received: asyncio.Event = field(default_factory=asyncio.Event)

    def receive(self) -> None:
        self.received += 1
        if self.expected is not None and self.received >= self.expected:
            self.all_received.set()


async def flood_socket(
    ws_url: str, thread_id: str, index: int, subscriptions: int, distinct: bool, tally: Tally
) -> None:
    try:
        async with connect(
            ws_url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            max_size=None,
            open_timeout=60,
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                return
            tally.acknowledged += 1
            for n in range(subscriptions):
                number = index * subscriptions + n if distinct else None
                payload = {"query": document(number), "variables": {"thread": thread_id}}
                await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": payload}))
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "next":
                    tally.receive()
                elif message["type"] == "error":
                    tally.refused_subscriptions += 1
                elif message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else 1006
        tally.refused_connections[code] += 1


def probe(url: str, results: Connection, stop: Event) -> None:
    """In a process of its own, so that the flooding clients cannot slow the probe down:
    (wall-clock time asked, seconds until answered) for each request."""
    timings = []
    with httpx.Client(timeout=300) as client:
        while not stop.is_set():
            asked, started = time.time(), time.perf_counter()
            client.get(url)
            timings.append((asked, time.perf_counter() - started))
            time.sleep(PROBE_INTERVAL)
    results.send(timings)


def within(timings: list[tuple[float, float]], start: float, end: float) -> list[float]:
    return [seconds for asked, seconds in timings if start <= asked < end]


async def flood(base_url: str, pid: int, secret: str, args: argparse.Namespace) -> None:
    rss_before = rss_mib(pid)
    ws_url = base_url.replace("http://", "ws://") + "/graphql"
    tally = Tally()
    async with Poster(base_url + "/graphql", secret, "flood-poster", "Flo Poster") as poster:
        thread_id = (await poster.thread()).id
        receiver, sender = multiprocessing.Pipe(duplex=False)
        stop = multiprocessing.Event()
        prober = multiprocessing.Process(target=probe, args=(base_url + "/healthz", sender, stop))
        prober.start()
        subscribing = time.time()
        sockets = [
            asyncio.create_task(
                flood_socket(ws_url, thread_id, i, args.subscriptions, args.distinct, tally)
            )
            for i in range(args.connections)
        ]
        await asyncio.sleep(args.settle)  # connecting and subscribing
        rss_subscribed = rss_mib(pid)
        posting = time.time()
        round_trips = []
        for number in range(args.comments):
            posted = await poster.add(comment_body(1, number), thread_id=thread_id)
            round_trips.append(posted.round_trip)
        subscribed = tally.acknowledged * args.subscriptions - tally.refused_subscriptions
        tally.expected = expected = subscribed * args.comments
        if tally.received >= expected:
            tally.all_received.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.all_received.wait(), DELIVERY_WAIT)
        delivered_in = time.time() - posting
        stop.set()
        timings = await asyncio.to_thread(receiver.recv)
        prober.join()
        rss_after = rss_mib(pid)
        for task in sockets:
            task.cancel()
        await asyncio.gather(*sockets, return_exceptions=True)

    def ms(values: list[float]) -> str:
        if not values:
            return "-"
        return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"

    print(
        f"{args.connections} connections x {args.subscriptions} subscriptions"
        f" ({'distinct documents' if args.distinct else 'one shared document'}),"
        f" {args.comments} comments"
    )
    print(f"  connections acknowledged: {tally.acknowledged}")
    print(f"  connections refused (by close code): {dict(tally.refused_connections)}")
    print(f"  subscriptions refused: {tally.refused_subscriptions}")
    print(
        f"  events received: {tally.received} of {expected},"
        f" {delivered_in:.1f} s after the first comment was posted"
    )
    while_subscribing = within(timings, subscribing, posting)
    while_posting = within(timings, posting, time.time())
    print(
        f"  /healthz while subscribing: {ms(while_subscribing)} ({len(while_subscribing)} probes)"
    )
    print(f"  /healthz while posting:     {ms(while_posting)} ({len(while_posting)} probes)")
    print(f"  addComment round trip:      {ms(round_trips)}")
    print(
        f"  server RSS: {rss_before:.0f} MiB before, {rss_subscribed:.0f} MiB subscribed,"
        f" {rss_after:.0f} MiB after posting"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--subscriptions", type=int, default=100, help="on each connection")
    parser.add_argument("--comments", type=int, default=5)
    parser.add_argument("--distinct", action="store_true", help="a document per subscription")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to subscribe")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE settings for the server"
    )
    args = parser.parse_args()
    raise_open_file_limit()
    secret = new_secret()
    extra = dict(item.split("=", 1) for item in args.env)
    defaults = Settings()
    with tempfile.TemporaryDirectory() as folder:
        env = {
            "THREADQL_JWT_SECRET": secret,
            "THREADQL_DEMO": "true",
            # The caps as shipped, not the bench's own: a flood is what they are for.
            "THREADQL_MAX_CONNECTIONS_PER_ADDRESS": str(defaults.max_connections_per_address),
            "THREADQL_MAX_SUBSCRIPTIONS_PER_ADDRESS": str(defaults.max_subscriptions_per_address),
            **extra,
        }
        database = f"sqlite:///{folder}/flood.db"
        with running_server(database, Path(folder) / "server.log", env) as server:
            asyncio.run(flood(server.base_url, server.pid, secret, args))


if __name__ == "__main__":
    main()
