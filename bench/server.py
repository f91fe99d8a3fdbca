"""One `threadql serve` worker in a subprocess, on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

from bench.queries import WORKLOADS

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# The console script's entry point, run by this interpreter so the venv needs no PATH.
_SERVE = "from server.cli import main; main()"
# Every server of the bench, in-process ones too: the dataset is prepared beforehand; no
# rate limits, since W4's writers each post hundreds of comments a minute; and a node limit
# that admits the heaviest workload.
BENCH_SETTINGS = {
    "THREADQL_DEMO": "false",
    "THREADQL_RATE_LIMITS": "false",
    "THREADQL_MAX_NODES": str(max(w.worst_case_nodes for w in WORKLOADS)),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(
    database_url: str, log: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Yield the base URL once /healthz answers; stop the server however the block ends.

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
    with log.open("wb") as output:
        # The access log goes to a file: an unread pipe would fill up and stall the server.
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://{HOST}:{port}"
            _wait_until_healthy(process, base_url, log)
            yield base_url
        finally:
            _stop(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {START_TIMEOUT:.0f} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text("utf-8", errors="replace").splitlines()[-lines:])
