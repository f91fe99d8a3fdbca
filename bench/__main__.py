"""`python -m bench`: statements per request, query plans, HTTP throughput, then writes
and live delivery.

The SQL counts and plans come from inside this process; the throughput from a real server
in another, so that the load generator and the server do not share an event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench import dataset, delivery, inprocess, plans
from bench.load import CLIENTS, pick_generator
from bench.posting import new_secret
from bench.queries import WORKLOADS, checked_data, count_comments
from bench.report import Row, markdown, writes_and_delivery
from bench.server import running_server
from bench.writes import WRITERS, measure_writes

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.load import LoadGenerator

OUT = Path(__file__).parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="load duration per workload (default 10)"
    )
    seconds: float = parser.parse_args().seconds
    if seconds <= 0:
        parser.error("--seconds must be positive")

    with tempfile.TemporaryDirectory(prefix="threadql-bench-") as tmp:
        workdir = Path(tmp)
        database = workdir / "bench.db"
        print(f"preparing {database} …", flush=True)
        asyncio.run(dataset.prepare(database))

        url = dataset.database_url(database)
        counted = asyncio.run(inprocess.count_statements(url, WORKLOADS))
        big = WORKLOADS[1]
        print(asyncio.run(plans.page_plans(database, big.thread_key, big.first, big.replies_first)))

        generator = pick_generator(workdir)
        delivery.raise_open_file_limit()  # before the server starts, so that it inherits it
        secret = new_secret()
        env = {
            "THREADQL_JWT_SECRET": secret,
            "THREADQL_SUBSCRIBER_QUEUE": str(delivery.SUBSCRIBER_QUEUE),
        }
        with running_server(url, workdir / "server.log", env) as base_url:
            graphql_url = f"{base_url}/graphql"
            rows = _load_all(generator, graphql_url, counted, seconds)
            print(f"W4 addComment: {WRITERS} writers, {seconds:g} s …", flush=True)
            writes = asyncio.run(measure_writes(graphql_url, secret, seconds))
            deliveries = asyncio.run(delivery.measure_delivery(graphql_url, secret))

    tables = (
        markdown(rows, generator.name, seconds) + "\n" + writes_and_delivery(writes, deliveries)
    )
    print(f"\n{tables}", end="")
    OUT.mkdir(exist_ok=True)
    (OUT / "results.md").write_text(tables, encoding="utf-8")


def _load_all(
    generator: LoadGenerator, url: str, counted: Sequence[inprocess.Counted], seconds: float
) -> list[Row]:
    rows = []
    for workload, count in zip(WORKLOADS, counted, strict=True):
        body = json.dumps(workload.body).encode("utf-8")
        _check_over_http(url, body, count.comments)
        print(f"loading {workload.name}: {CLIENTS} clients, {seconds:g} s …", flush=True)
        load = generator.run(url, body, seconds)
        rows.append(Row(workload.name, count.comments, count.statements, load))
    return rows


def _check_over_http(url: str, body: bytes, comments: int) -> None:
    """The load generators look at status codes only, so the answer itself is checked first."""
    response = httpx.post(
        url, content=body, headers={"content-type": "application/json"}, timeout=60
    )
    response.raise_for_status()
    returned = count_comments(checked_data(response.json()))
    if returned != comments:
        raise RuntimeError(f"the server returned {returned} comments, in-process {comments}")


if __name__ == "__main__":
    main()
