"""`threadql`: serve, migrate, export the schema, import and export comments."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import uvicorn

from db import exchange, open_storage
from db.exchange import native
from db.exchange.core import counted
from schema import schema
from server import auth, collector
from server.app import create_app
from server.logs import configure as configure_logs
from server.settings import PREFIX, Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Callable


async def _migrate(settings: Settings) -> list[str]:
    storage = open_storage(settings.database_url)
    await storage.open()
    try:
        return await storage.migrate()
    finally:
        await storage.close()


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings that threadql's own follow: uvloop and httptools when installed,
    WebSocket messages no larger than THREADQL_MAX_MESSAGE_BYTES."""
    return {"loop": "auto", "http": "auto", "ws_max_size": settings.max_message_bytes}


def workers_refusal(settings: Settings, workers: int) -> str | None:
    """Why `workers` processes cannot serve with these settings, if they cannot."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers > 1 and settings.broker_url == "memory://":
        return (
            f"--workers {workers} needs a broker every process shares: set"
            " THREADQL_BROKER_URL=redis://… (with memory:// each process's subscribers would"
            " miss the comments posted through the others)"
        )
    return None


def serve(settings: Settings, host: str | None, port: int | None, workers: int = 1) -> None:
    host, port = host or settings.host, port or settings.port
    configure_logs(settings.logs)
    print(
        f"threadql: the demo page: http://{host}:{port}/\n"
        f"threadql: GraphiQL: http://{host}:{port}/graphql",
        flush=True,
    )
    if not settings.jwt_secret:
        secret = auth.secret_for(None, Path(settings.data_dir))
        token = auth.mint(secret, sub="demo-reader", name="Demo Reader")
        print(
            f"threadql: no THREADQL_JWT_SECRET set: tokens are signed with the secret kept in"
            f" {secret_path(settings.data_dir)}.\n"
            "threadql: to post as Demo Reader, paste these headers into GraphiQL:\n"
            f'{{"Authorization": "Bearer {token}"}}',
            flush=True,
        )
    # Logging is threadql's own (`THREADQL_LOG_FORMAT`): uvicorn's loggers pass their lines on.
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "log_config": None,
        **server_options(settings),
    }
    if workers > 1:
        # Each worker process builds its own app from the same environment.
        uvicorn.run("server.app:worker_app", factory=True, workers=workers, **options)
    else:
        app = create_app(settings)
        collector.settle()
        uvicorn.run(app, **options)


def migrate(settings: Settings) -> None:
    applied = asyncio.run(_migrate(settings))
    print("\n".join(f"applied {name}" for name in applied) or "the database is up to date")


def secret_path(data_dir: str) -> Path:
    """Where `serve` keeps the secret it generates when none is configured."""
    return Path(data_dir).absolute() / auth.SECRET_FILE


def token(settings: Settings, args: argparse.Namespace) -> None:
    """Signs with the secret `serve` would use from this folder, and says which; it never
    makes one up, since a server elsewhere would refuse what it signed."""
    if settings.jwt_secret:
        secret, source = settings.jwt_secret, f"{PREFIX}JWT_SECRET"
    else:
        kept = auth.kept_secret(Path(settings.data_dir))
        if kept is None:
            sys.exit(
                f"threadql: token: no {PREFIX}JWT_SECRET is set and no secret is kept in"
                f" {secret_path(settings.data_dir)}, where `threadql serve` keeps the secret it"
                " generates. Run `threadql token` in the folder the server runs in, or set"
                f" {PREFIX}DATA_DIR (or {PREFIX}JWT_SECRET) as the server has it."
            )
        secret, source = kept, f"the secret kept in {secret_path(settings.data_dir)}"
    print(f"threadql: signed with {source}", file=sys.stderr)
    print(
        auth.mint(
            secret,
            sub=args.sub,
            name=args.name,
            avatar=args.avatar,
            role=args.role,
            expires_in=args.expires,
        )
    )


def export_schema(output: str | None) -> None:
    text = schema.as_str() + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def seconds(text: str) -> float:
    """A positive, finite number of seconds, for argparse."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError(text)
    return value


def _progress(format_name: str) -> Callable[[exchange.Summary], None] | None:
    """A line on the terminal that each imported thread rewrites; none when piped."""
    if not sys.stderr.isatty():
        return None

    def show(summary: exchange.Summary) -> None:
        threads = summary.threads + summary.threads_unchanged
        sys.stderr.write(f"\r{format_name}: threads {threads}, comments {summary.comments}")
        sys.stderr.flush()

    return show


async def _import(settings: Settings, args: argparse.Namespace) -> exchange.Summary:
    storage = open_storage(settings.database_url)
    await storage.open()
    try:
        await storage.migrate()
        return await exchange.import_file(
            storage,
            args.format,
            Path(args.file),
            key=args.thread_key,
            progress=_progress(args.format),
            limits=exchange.Limits(settings.max_body_length, args.timeout),
        )
    finally:
        await storage.close()


def import_comments(settings: Settings, args: argparse.Namespace) -> None:
    try:
        summary = asyncio.run(_import(settings, args))
    except exchange.TimedOut as error:
        if error.summary is not None:
            print("\n".join(error.summary.lines()), flush=True)
        sys.exit(f"threadql: import: {error} (--timeout {args.timeout:g})")
    except (exchange.ExchangeError, OSError) as error:
        sys.exit(f"threadql: import: {error}")
    finally:
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
    print("\n".join(summary.lines()))


async def _export(settings: Settings, key: str | None) -> tuple[int, int]:
    storage = open_storage(settings.database_url)
    await storage.open()
    try:
        return await native.export(storage, sys.stdout.buffer, key)
    finally:
        await storage.close()


def export_comments(settings: Settings, args: argparse.Namespace) -> None:
    try:
        threads, comments = asyncio.run(_export(settings, args.thread_key))
    except exchange.ExchangeError as error:
        sys.exit(f"threadql: export: {error}")
    sys.stdout.flush()
    print(
        f"threadql: exported {counted(comments, 'comment')} in {counted(threads, 'thread')}",
        file=sys.stderr,
    )


def _from_env(name: str) -> tuple[str, str]:
    """A setting as `--help` shows it: its value (the environment's, else the default) and
    where that value comes from."""
    variable = PREFIX + name.upper()
    value = os.environ.get(variable)
    if value:
        return value, f"from {variable}"
    return str(getattr(Settings, name)), f"the default; {variable} sets another"


def _database() -> str:
    """The database the commands act on, read as they read it, without its password."""
    url, source = _from_env("database_url")
    if url.startswith("sqlite:///"):
        return f"the SQLite file {Path(url.removeprefix('sqlite:///')).absolute()} ({source})"
    parts = urlsplit(url)
    if parts.password is not None:
        url = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
    return f"{url} ({source})"


def _default(name: str) -> str:
    value, source = _from_env(name)
    return f"(default: {value}, {source.removeprefix('the default; ')})"


def build_parser() -> argparse.ArgumentParser:
    database = _database()
    parser = argparse.ArgumentParser(
        prog="threadql",
        description=f"{__doc__} Commands that read or write comments act on {database}.",
        epilog="`threadql COMMAND --help` says what each command does and what it acts on.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="migrate, load the demo thread, serve HTTP",
        description=(
            f"Apply pending migrations to {database}, load the demo thread into it when it"
            f" holds no threads ({PREFIX}DEMO), and serve GraphQL (HTTP and WebSocket),"
            " GraphiQL and the demo page until stopped."
        ),
    )
    serve_parser.add_argument("--host", help=f"the address to listen on {_default('host')}")
    serve_parser.add_argument("--port", type=int, help=f"the port to listen on {_default('port')}")
    serve_parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help=(
            f"processes to serve with; more than 1 needs {PREFIX}BROKER_URL=redis://… (default: 1)"
        ),
    )
    commands.add_parser(
        "migrate",
        help="apply pending database migrations",
        description=f"Apply pending migrations to {database}, and name each one applied.",
    )
    data_dir, data_dir_source = _from_env("data_dir")
    token_parser = commands.add_parser(
        "token",
        help="print a signed token for local use",
        description=(
            "Print a token for `Authorization: Bearer …`, signed with"
            f" {PREFIX}JWT_SECRET when it is set, else with the secret `threadql serve`"
            f" generated into {secret_path(data_dir)} ({data_dir_source})."
            " It touches no database."
        ),
    )
    token_parser.add_argument("--sub", required=True, help="the host site's id for the user")
    token_parser.add_argument("--name", required=True, help="the name shown beside comments")
    token_parser.add_argument(
        "--avatar", help="an http(s) URL of the user's picture (default: none, a drawn one)"
    )
    token_parser.add_argument(
        "--role", choices=auth.ROLES, help="moderator or admin (default: a plain user)"
    )
    token_parser.add_argument(
        "--expires",
        type=int,
        default=7 * 24 * 3600,
        help="seconds until it expires (default: 604800, a week)",
    )
    export = commands.add_parser(
        "export-schema",
        help="print the GraphQL schema (SDL)",
        description="Print the GraphQL schema the server runs, in SDL. It touches no database.",
    )
    export.add_argument("--output", "-o", help="write to this file (default: standard output)")
    import_parser = commands.add_parser(
        "import",
        help="import comments from Disqus, WordPress, Isso or a threadql export",
        description=(
            f"Import the comments of an export file into {database}, migrating it first."
            " Each thread is imported whole or not at all, and running the same import"
            " again adds nothing; a summary says what was imported and what was skipped."
        ),
    )
    import_parser.add_argument("format", choices=sorted(exchange.READERS))
    import_parser.add_argument("file", help="the export file (Isso: its database file)")
    import_parser.add_argument(
        "--thread-key", help="import only the thread with this key (default: every thread)"
    )
    import_parser.add_argument(
        "--timeout",
        type=seconds,
        default=exchange.Limits().timeout,
        help="seconds the import may take; then it stops, keeping the threads it wrote"
        " (default: %(default)g)",
    )
    dump_parser = commands.add_parser(
        "export",
        help="print every thread with its comments as threadql's JSON",
        description=(
            f"Print the threads of {database} with their comments as threadql's JSON, which"
            " `threadql import json` reads back."
        ),
    )
    dump_parser.add_argument(
        "--thread-key", help="export only the thread with this key (default: every thread)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.command is None:
        parser.print_help()
        return
    if args.command == "export-schema":
        export_schema(args.output)
        return
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        parser.exit(2, f"threadql: {error}\n")
    if args.command == "serve":
        refusal = workers_refusal(settings, args.workers)
        if refusal is not None:
            parser.exit(2, f"threadql: {refusal}\n")
        try:
            serve(settings, args.host, args.port, args.workers)
        except SettingsError as error:
            parser.exit(2, f"threadql: {error}\n")
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "token":
        token(settings, args)
    elif args.command == "import":
        import_comments(settings, args)
    elif args.command == "export":
        export_comments(settings, args)
