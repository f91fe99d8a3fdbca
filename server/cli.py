"""`threadql`: serve, migrate, export the schema, import and export comments."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from db import exchange, open_storage
from db.exchange import native
from db.exchange.core import counted
from schema import schema
from server import auth, collector
from server.app import create_app
from server.logs import configure as configure_logs
from server.settings import Settings, SettingsError

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
    print(f"threadql: GraphiQL: http://{host}:{port}/graphql", flush=True)
    if not settings.jwt_secret:
        secret = auth.secret_for(None, Path(settings.data_dir))
        token = auth.mint(secret, sub="demo-reader", name="Demo Reader")
        print(
            f"threadql: no THREADQL_JWT_SECRET set: tokens are signed with the secret kept in"
            f" {Path(settings.data_dir) / auth.SECRET_FILE}.\n"
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


def token(settings: Settings, args: argparse.Namespace) -> None:
    secret = auth.secret_for(settings.jwt_secret, Path(settings.data_dir))
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
            storage, args.format, Path(args.file), args.thread_key, _progress(args.format)
        )
    finally:
        await storage.close()


def import_comments(settings: Settings, args: argparse.Namespace) -> None:
    try:
        summary = asyncio.run(_import(settings, args))
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="threadql", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="migrate, load the demo thread, serve HTTP")
    serve_parser.add_argument("--host")
    serve_parser.add_argument("--port", type=int)
    serve_parser.add_argument(
        "--workers", type=int, default=1, help="processes to serve with (more than 1 needs Redis)"
    )
    commands.add_parser("migrate", help="apply pending database migrations")
    token_parser = commands.add_parser("token", help="print a signed token for local use")
    token_parser.add_argument("--sub", required=True, help="the host site's id for the user")
    token_parser.add_argument("--name", required=True, help="the name shown beside comments")
    token_parser.add_argument("--avatar", help="an http(s) URL of the user's picture")
    token_parser.add_argument("--role", choices=auth.ROLES, help="moderator or admin")
    token_parser.add_argument(
        "--expires", type=int, default=7 * 24 * 3600, help="seconds until it expires (a week)"
    )
    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", "-o", help="write to this file instead of stdout")
    import_parser = commands.add_parser(
        "import", help="import comments from Disqus, WordPress, Isso or a threadql export"
    )
    import_parser.add_argument("format", choices=sorted(exchange.READERS))
    import_parser.add_argument("file", help="the export file (Isso: its database file)")
    import_parser.add_argument("--thread-key", help="import only the thread with this key")
    dump_parser = commands.add_parser(
        "export", help="print every thread with its comments as threadql's JSON"
    )
    dump_parser.add_argument("--thread-key", help="export only the thread with this key")
    args = parser.parse_args(argv)

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
