"""The `threadql` command as an operator runs it, and a real server on a real port."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from db import open_storage
from db.demo import load_demo
from schema import schema
from server import auth
from server.cli import main
from tests.live import THREADQL, free_port

pytestmark = pytest.mark.processes  # each test runs `threadql` as a process of its own

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("serve", "migrate", "token", "export-schema", "import", "export")


def run(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`threadql` with only the settings given: none of this shell's THREADQL_* variables."""
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith("THREADQL_")
    }
    return subprocess.run(
        [*THREADQL, *args],
        env={**inherited, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`threadql COMMAND --help` as one line of text, as a reader takes it in."""
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_migrate_then_nothing_to_do(tmp_path: Path) -> None:
    env = {"THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    first = run(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_initial.sql" in first.stdout
    again = run(["migrate"], env)
    assert again.stdout.strip() == "the database is up to date"


def test_export_schema(tmp_path: Path) -> None:
    printed = run(["export-schema"], {})
    assert printed.stdout == schema.as_str() + "\n"
    written = run(["export-schema", "--output", str(tmp_path / "s.graphql")], {})
    assert written.returncode == 0
    assert (tmp_path / "s.graphql").read_text() == printed.stdout


def test_a_bad_setting_stops_with_its_name(tmp_path: Path) -> None:
    result = run(["migrate"], {"THREADQL_DATABASE_URL": "oracle://x"})
    assert result.returncode == 2
    assert "THREADQL_DATABASE_URL" in result.stderr
    result = run(["serve"], {"THREADQL_PORT": "eighty"})
    assert result.returncode == 2
    assert "THREADQL_PORT" in result.stderr


def test_production_does_not_start_without_a_secret(tmp_path: Path) -> None:
    """No secret of its own, no token printed: the operator is told which variable to set."""
    env = {k: v for k, v in os.environ.items() if k != "THREADQL_JWT_SECRET"}
    env |= {
        "THREADQL_ENV": "production",
        "THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/prod.db",
        "THREADQL_DATA_DIR": str(tmp_path / "data"),
    }
    for secret in (None, "", "   "):
        if secret is not None:
            env["THREADQL_JWT_SECRET"] = secret
        server = subprocess.Popen(
            [*THREADQL, "serve", "--port", str(free_port())],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.terminate()
            out, err = server.communicate(timeout=20)
            pytest.fail(f"threadql served in production without a secret:\n{out}{err}")
        assert server.returncode == 2, err
        assert "THREADQL_JWT_SECRET" in err
        assert "Traceback" not in err
        assert "Bearer" not in out + err
        assert not (tmp_path / "data").exists(), "no secret of its own was generated"


async def _with_demo_thread(database_url: str) -> None:
    storage = open_storage(database_url)
    await storage.open()
    try:
        await storage.migrate()
        await load_demo(storage)
    finally:
        await storage.close()


def test_export_counts_what_it_wrote_in_words(tmp_path: Path) -> None:
    env = {"THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    asyncio.run(_with_demo_thread(env["THREADQL_DATABASE_URL"]))
    exported = run(["export", "--thread-key", "demo"], env)
    assert exported.returncode == 0, exported.stderr
    assert len(json.loads(exported.stdout)["threads"]) == 1
    assert exported.stderr == "threadql: exported 28 comments in 1 thread\n"


def test_token_mints_what_the_server_accepts(tmp_path: Path) -> None:
    secret = "a test secret that is long enough for HS256 signing"
    env = {"THREADQL_JWT_SECRET": secret}
    minted = run(["token", "--sub", "mod-1", "--name", "Mo", "--role", "moderator"], env)
    assert minted.returncode == 0, minted.stderr
    claims = auth.decode(minted.stdout.strip(), secret)
    assert claims == auth.Claims(sub="mod-1", name="Mo", avatar=None, role="moderator")
    expired = run(["token", "--sub", "x", "--name", "X", "--expires", "0"], env)
    with pytest.raises(auth.Unauthenticated, match="expired"):
        auth.decode(expired.stdout.strip(), secret)
    kept = auth.secret_for(None, tmp_path)  # as `serve` generates it
    assert (tmp_path / auth.SECRET_FILE).stat().st_mode & 0o077 == 0, "the secret is private"
    signed = run(["token", "--sub", "x", "--name", "X"], {"THREADQL_DATA_DIR": str(tmp_path)})
    assert auth.decode(signed.stdout.strip(), kept).sub == "x"


def test_token_elsewhere_finds_no_secret_and_says_where_it_looked(tmp_path: Path) -> None:
    """Run in another folder than the server's, `token` must not sign with a secret of its
    own that the server would refuse: it names the file it looked for, and how to point it
    at the server's."""
    served = tmp_path / "site" / "data"
    secret = auth.secret_for(None, served)  # what `serve` kept when it first started
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ["token", "--sub", "alice", "--name", "Alice"]

    refused = run(args, {}, cwd=elsewhere)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert str(elsewhere / "data" / auth.SECRET_FILE) in refused.stderr
    assert "THREADQL_DATA_DIR" in refused.stderr
    assert not (elsewhere / "data").exists(), "no secret was made up"

    found = run(args, {"THREADQL_DATA_DIR": str(served)}, cwd=elsewhere)
    assert found.returncode == 0, found.stderr
    assert auth.decode(found.stdout.strip(), secret).sub == "alice"
    assert f"signed with the secret kept in {served / auth.SECRET_FILE}" in found.stderr

    configured = run(args, {"THREADQL_JWT_SECRET": secret}, cwd=elsewhere)
    assert auth.decode(configured.stdout.strip(), secret).sub == "alice"
    assert "signed with THREADQL_JWT_SECRET" in configured.stderr


def test_bare_threadql_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    main([])
    printed = " ".join(capsys.readouterr().out.split())
    assert printed.startswith("usage: threadql")
    for command in COMMANDS:
        assert f" {command} " in printed


def test_every_command_says_what_it_does_its_defaults_and_its_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [name for name in os.environ if name.startswith("THREADQL_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "1000")  # paths whole, not broken at their hyphens
    monkeypatch.setenv("THREADQL_DATABASE_URL", "sqlite:///comments/site.db")
    database = f"the SQLite file {tmp_path / 'comments' / 'site.db'} (from THREADQL_DATABASE_URL)"
    expected = {
        "serve": [
            f"Apply pending migrations to {database}, load the demo thread",
            "serve GraphQL",
            "(default: 127.0.0.1, THREADQL_HOST sets another)",
            "(default: 8000, THREADQL_PORT sets another)",
            "(default: 1)",
        ],
        "migrate": [f"Apply pending migrations to {database}"],
        "token": [
            "Print a token for `Authorization: Bearer …`",
            f"{tmp_path / 'data' / auth.SECRET_FILE} (the default; THREADQL_DATA_DIR sets another)",
            "It touches no database.",
            "(default: 604800, a week)",
        ],
        "export-schema": [
            "Print the GraphQL schema",
            "It touches no database.",
            "(default: standard output)",
        ],
        "import": [
            f"Import the comments of an export file into {database}",
            "(default: every thread)",
        ],
        "export": [f"Print the threads of {database}", "(default: every thread)"],
    }
    assert set(expected) == set(COMMANDS)
    for command, phrases in expected.items():
        printed = help_of(command, capsys)
        for phrase in phrases:
            assert phrase in printed, (command, phrase)

    monkeypatch.setenv(
        "THREADQL_DATABASE_URL", "postgresql://app:hunter2@db.internal:5432/comments"
    )
    monkeypatch.setenv("THREADQL_PORT", "9000")
    printed = help_of("serve", capsys)
    assert "postgresql://app:***@db.internal:5432/comments (from THREADQL_DATABASE_URL)" in printed
    assert "hunter2" not in printed
    assert "(default: 9000, from THREADQL_PORT)" in printed


def test_make_serve_takes_the_port() -> None:
    def serve_command(*args: str) -> str:
        # Not as a sub-make of `make test`, which would print the directories it enters.
        outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
        env = {name: value for name, value in os.environ.items() if name not in outer}
        planned = subprocess.run(
            ["make", "--dry-run", "--no-print-directory", "serve", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return planned.stdout.splitlines()[-1]

    assert serve_command("PORT=8123").endswith("threadql serve --port 8123")
    assert serve_command().endswith("threadql serve ")


def test_serve_answers_the_demo_thread_over_real_http(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "THREADQL_DATABASE_URL": f"sqlite:///{tmp_path}/served.db",
        "THREADQL_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("THREADQL_JWT_SECRET", None)
    printed = ""
    server = subprocess.Popen(
        [*THREADQL, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        response = httpx.post(
            f"{url}/graphql", json={"query": '{ thread(key: "demo") { commentCount } }'}
        )
        assert response.json() == {"data": {"thread": {"commentCount": 28}}}
        assert server.stdout is not None
        while "Bearer" not in printed:
            printed += server.stdout.readline()
        header = json.loads(printed.strip().splitlines()[-1])
        viewer = httpx.post(f"{url}/graphql", json={"query": "{ viewer { name } }"}, headers=header)
        assert viewer.json() == {"data": {"viewer": {"name": "Demo Reader"}}}
        assert (tmp_path / "data" / auth.SECRET_FILE).exists()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert server.stdout is not None
    output = printed + server.stdout.read()
    assert "Application startup complete" in output
    assert "Application shutdown complete" in output, "the storage was not closed cleanly"
    assert f"the demo page: http://127.0.0.1:{port}/\n" in output
    assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in output
