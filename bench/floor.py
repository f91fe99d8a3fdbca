"""The floor: a bare Starlette endpoint answering W1's POST with the demo thread's full W1
response, encoded beforehand, under uvicorn with threadql's settings. Whatever threadql
does beyond sending bytes costs what it falls short of this.

`python -m bench.floor --port PORT --response FILE` serves it; `measure_floor` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from bench.memory import ServerMemory
from bench.processes import HOST, free_port, running
from bench.queries import W1
from bench.rows import Kind, Row, measured
from server.app import healthz
from server.cli import server_options
from server.settings import Settings

if TYPE_CHECKING:
    from starlette.requests import Request

    from bench.backend import Setup

SYSTEM = "floor: bare Starlette, W1 answer pre-encoded"


def floor_app(answer: bytes) -> Starlette:
    async def graphql(request: Request) -> Response:
        await request.body()  # read, as any endpoint must, though not looked at
        return Response(answer, media_type="application/json")

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)]
    )


def measure_floor(setup: Setup, answer: bytes, comments: int) -> Row:
    """W1 against the floor; `answer` is threadql's W1 response, holding `comments`."""
    path = setup.workdir / "floor-answer.json"
    path.write_bytes(answer)
    port = free_port()
    command = [sys.executable, "-m", "bench.floor", "--port", str(port), "--response", str(path)]
    log = setup.workdir / "floor.log"
    print(f"Floor W1: {setup.seconds:g} s …", flush=True)
    with running(command, port, log, os.environ, "/healthz") as server:
        body = json.dumps(W1.body).encode("utf-8")
        url = f"{server.base_url}/graphql"
        load, peak = measured(setup.generator, url, body, setup.seconds, ServerMemory(server.pid))
    return Row(W1.name, SYSTEM, Kind.FLOOR, comments, 0, load, peak)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--response", type=Path, required=True, help="the bytes to answer with")
    args = parser.parse_args()
    app = floor_app(args.response.read_bytes())
    # The options and log level of `threadql serve`, access log included.
    uvicorn.run(app, host=HOST, port=args.port, log_level="info", **server_options(Settings()))


if __name__ == "__main__":
    main()
