"""One `threadql serve` worker in a subprocess, on a free local port."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bench.processes import HOST, free_port, running
from bench.queries import ALL_WORKLOADS

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from bench.processes import Running

# The console script's entry point, run by this interpreter so the venv needs no PATH.
_SERVE = "from server.cli import main; main()"
# Every server of the bench, in-process ones too: the dataset is prepared beforehand; no
# rate limits, since W4's writers each post hundreds of comments a minute; a node limit
# that admits the heaviest workload; and caps per client address that admit W5's and W6's
# 1,000 subscribers, all connected from this one address.
BENCH_SETTINGS = {
    "THREADQL_DEMO": "false",
    "THREADQL_RATE_LIMITS": "false",
    "THREADQL_MAX_NODES": str(max(w.worst_case_nodes for w in ALL_WORKLOADS)),
    "THREADQL_MAX_CONNECTIONS_PER_ADDRESS": "10000",
    "THREADQL_MAX_SUBSCRIPTIONS_PER_ADDRESS": "10000",
}


@contextmanager
def running_server(
    database_url: str, log: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Running]:
    """Yield the server once /healthz answers; stop it however the block ends.

    `extra_env` adds settings, such as THREADQL_JWT_SECRET; the server inherits this
    process's limits, its open-file limit among them.
    """
    port = free_port()
    env = {
        **os.environ,
        "THREADQL_DATABASE_URL": database_url,
        **BENCH_SETTINGS,
        **(extra_env or {}),
    }
    command = [sys.executable, "-c", _SERVE, "serve", "--host", HOST, "--port", str(port)]
    with running(command, port, log, env, "/healthz") as server:
        yield server
