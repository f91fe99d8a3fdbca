"""Isso side by side: installed from PyPI into a throwaway virtualenv of its own, given the
same threads, served by gunicorn with one worker on loopback, and loaded by the same
generator. Its database is SQLite in the bench's temporary folder; moderation, e-mail and
the spam guard (which would refuse the bulk load) are off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench.isso_data import count_comments, demo_thread, generated_prefix, post_thread
from bench.memory import ServerMemory
from bench.processes import HOST, StartFailed, free_port, running
from bench.queries import W1, W2
from bench.rows import Kind, Row, measured

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from bench.backend import Setup
    from bench.isso_data import SourceThread
    from bench.processes import Running

REQUIREMENTS = ("isso>=0.13", "gunicorn")
VENV_TIMEOUT = 120.0
INSTALL_TIMEOUT = 300.0
COUNT_TIMEOUT = 120.0
WORKERS = 1
PEER_COMMENTS = 1_000  # W2 against Isso: a thread it can answer whole
TMPFS = Path("/dev/shm")

# Run by Isso's own interpreter: each path once to warm up, then once more counting the
# statements that Isso's database wrapper executes (it opens a connection for each).
_COUNT_STATEMENTS = """
import sys
from isso import config, make_app
from isso.db import SQLite3
from werkzeug.test import Client

calls = [0]
execute = SQLite3.execute

def counted(self, sql, args=()):
    calls[0] += 1
    return execute(self, sql, args)

SQLite3.execute = counted
conf = config.load(config.default_file(), sys.argv[1])
client = Client(make_app(conf, multiprocessing=True))
for path in sys.argv[2:]:
    client.get(path)
    calls[0] = 0
    status = client.get(path).status_code
    print(calls[0] if status == 200 else -status)
"""


_VERSIONS = "from importlib.metadata import version as v; print(v('isso'), v('gunicorn'))"


class PeerUnavailable(RuntimeError):
    """Isso could not be installed or started; the message says why."""


@dataclass(frozen=True)
class Installed:
    folder: Path  # its virtualenv, configuration, database and logs
    version: str

    @property
    def bin(self) -> Path:
        return self.folder / "venv" / "bin"


@dataclass(frozen=True)
class PeerWorkload:
    workload: str
    system: str
    kind: Kind
    thread: SourceThread
    query: str = ""  # after the thread's URI

    @property
    def path(self) -> str:
        return f"/?uri={self.thread.uri}{self.query}"


def install(folder: Path) -> Installed:
    """A virtualenv under `folder` with Isso and gunicorn from PyPI; `PeerUnavailable` if not."""
    folder.mkdir()
    venv = folder / "venv"
    log = folder / "install.log"
    _step([sys.executable, "-m", "venv", str(venv)], log, VENV_TIMEOUT)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *REQUIREMENTS]
    _step(pip, log, INSTALL_TIMEOUT)
    versions = _output(venv / "bin" / "python", _VERSIONS, [])
    if versions is None or len(versions.split()) != 2:
        raise PeerUnavailable(f"Isso was installed, but its version cannot be read: {versions}")
    isso, gunicorn = versions.split()
    return Installed(folder, f"{isso} (gunicorn {gunicorn})")


def measure_isso(setup: Setup, installed: Installed, threadql_db: Path) -> list[Row]:
    """W1 as Isso answers by default (Markdown rendered on every request) and with plain=1; W2
    against a 1,000-comment thread, answered whole. The threads come from the fixture and
    from threadql's SQLite database, `threadql_db`."""
    print(f"Isso {installed.version}: loading the threads through its API …", flush=True)
    demo = demo_thread()
    big = generated_prefix(threadql_db, W2.thread_key, PEER_COMMENTS)
    name = f"Isso {installed.version.split()[0]}"
    big_workload = f"W2 vs Isso: a {PEER_COMMENTS:,}-comment thread, whole"
    workloads = [
        PeerWorkload(W1.name, name, Kind.PEER, demo),
        PeerWorkload(
            W1.name, f"{name}, plain=1 (no Markdown)", Kind.PEER_VARIANT, demo, "&plain=1"
        ),
        PeerWorkload(big_workload, name, Kind.PEER, big),
    ]
    database = installed.folder / "comments.db"
    _load(installed, (demo, big), database)
    port = free_port()
    config = _write_config(installed.folder, port, database)
    with running_isso(installed, config, port) as server:
        statements = count_statements(installed, config, [w.path for w in workloads])
        memory = ServerMemory(server.pid)
        rows = []
        for workload, count in zip(workloads, statements, strict=True):
            url = server.base_url + workload.path
            comments = _check(url, workload.thread)
            label = f"{workload.system} {workload.workload.split()[0]}"
            print(f"{label}: {setup.seconds:g} s …", flush=True)
            load, peak = measured(setup.generator, url, None, setup.seconds, memory)
            rows.append(
                Row(workload.workload, workload.system, workload.kind, comments, count, load, peak)
            )
    return rows


@contextmanager
def running_isso(
    installed: Installed, config: Path, port: int, name: str = "isso"
) -> Iterator[Running]:
    """gunicorn serving `isso.run`, its documented WSGI entry point, with one sync worker;
    its log is `name`.log."""
    command = [
        str(installed.bin / "gunicorn"),
        *("--workers", str(WORKERS), "--bind", f"{HOST}:{port}"),
        "isso.run",
    ]
    # HOME: newer gunicorn releases open a control socket under ~/.gunicorn.
    env = {**os.environ, "ISSO_SETTINGS": str(config), "HOME": str(installed.folder)}
    try:
        with running(command, port, installed.folder / f"{name}.log", env, "/config") as server:
            yield server
    except StartFailed as error:
        raise PeerUnavailable(f"Isso did not start: {error}") from error


def _load(installed: Installed, threads: Sequence[SourceThread], database: Path) -> None:
    """Post `threads` through Isso's API into `database`.

    Isso commits each comment on a connection of its own, and so waits for the disk each
    time: the threads are posted to a database in memory (tmpfs) where there is one, which
    is then copied into place while no Isso process has it open.
    """
    memory = TMPFS if TMPFS.is_dir() and os.access(TMPFS, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="threadql-bench-isso-", dir=memory) as scratch:
        loading = Path(scratch) / database.name
        port = free_port()
        config = _write_config(installed.folder, port, loading, "load")
        with running_isso(installed, config, port, "load") as server:
            for thread in threads:
                post_thread(server.base_url, thread)
        shutil.copyfile(loading, database)


def count_statements(installed: Installed, config: Path, paths: Sequence[str]) -> list[int | None]:
    """SQL statements per `GET path`, counted inside an Isso app of its own; None if not."""
    output = _output(installed.bin / "python", _COUNT_STATEMENTS, [str(config), *paths])
    counts = [int(n) for n in (output or "").split() if n.lstrip("-").isdigit()]
    if len(counts) != len(paths) or min(counts) < 0:
        print(f"Isso: statements per request not counted ({output!r})", flush=True)
        return [None] * len(paths)
    known: list[int | None] = list(counts)
    return known


def _write_config(folder: Path, port: int, database: Path, name: str = "isso") -> Path:
    path = folder / f"{name}.cfg"
    path.write_text(
        "[general]\n"
        f"dbpath = {database}\n"
        "host = http://127.0.0.1\n"
        "notify = stdout\n"
        "reply-notifications = false\n"
        "[moderation]\n"
        "enabled = false\n"
        "[guard]\n"
        "enabled = false\n"
        "[admin]\n"
        "enabled = false\n"
        "[server]\n"
        f"listen = http://{HOST}:{port}\n",
        encoding="utf-8",
    )
    return path


def _check(url: str, thread: SourceThread) -> int:
    """The comments in Isso's answer, which must be the whole thread."""
    response = httpx.get(url, timeout=60)
    response.raise_for_status()
    comments = count_comments(response.json())
    if comments != len(thread.comments):
        raise RuntimeError(
            f"Isso returned {comments} comments for {url}, not {len(thread.comments)}"
        )
    return comments


def _output(python: Path, script: str, args: Sequence[str]) -> str | None:
    """What `script`, run by Isso's interpreter, prints; None, and its errors shown, if it fails."""
    done = subprocess.run(
        [str(python), "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=COUNT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        print(f"Isso's interpreter failed: {done.stderr.strip()[-500:]}", flush=True)
        return None
    return done.stdout


def _step(command: Sequence[str], log: Path, timeout: float) -> None:
    with log.open("ab") as output:
        try:
            subprocess.run(
                command, stdout=output, stderr=subprocess.STDOUT, timeout=timeout, check=True
            )
        except (OSError, subprocess.SubprocessError) as error:
            tail = log.read_text("utf-8", errors="replace").strip().splitlines()[-3:]
            said = f" ({' | '.join(tail)})" if tail else ""
            raise PeerUnavailable(f"Isso could not be installed: {error}{said}") from error
