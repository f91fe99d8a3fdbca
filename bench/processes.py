"""A server in a subprocess of its own, on a free local port, stopped however the block ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class StartFailed(RuntimeError):
    """The server exited, or did not answer in time; the message ends with its log."""


@dataclass(frozen=True)
class Running:
    base_url: str
    pid: int  # the process started; a server that forks workers is their parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running(
    command: Sequence[str],
    port: int,
    log: Path,
    env: Mapping[str, str],
    health_path: str,
    start_timeout: float = START_TIMEOUT,
) -> Iterator[Running]:
    """Start `command`, which listens on `port`, and yield once `health_path` answers 200.

    The server gets a session of its own, so that it and any workers it forks are stopped
    together; its output goes to `log`, since an unread pipe would fill up and stall it.
    """
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base_url = f"http://{HOST}:{port}"
            _wait_until_healthy(process, base_url + health_path, log, start_timeout)
            yield Running(base_url, process.pid)
        finally:
            _stop(process)


def _wait_until_healthy(
    process: subprocess.Popen[bytes], url: str, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartFailed(f"the server exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise StartFailed(f"the server did not answer within {timeout:.0f} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server, SIGKILL if it lingers; then SIGKILL to whatever is left of
    its session (the process group it leads), such as workers of a server that was killed."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text("utf-8", errors="replace").splitlines()[-lines:])
