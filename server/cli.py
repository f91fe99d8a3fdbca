"""`threadql`: serve, migrate and export the schema."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import uvicorn

from db import open_storage
from schema import schema
from server import auth
from server.app import create_app
from server.settings import Settings, SettingsError


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


def serve(settings: Settings, host: str | None, port: int | None) -> None:
    host, port = host or settings.host, port or settings.port
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
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level="info", **server_options(settings)
    )


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="threadql", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="migrate, load the demo thread, serve HTTP")
    serve_parser.add_argument("--host")
    serve_parser.add_argument("--port", type=int)
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
    args = parser.parse_args(argv)

    if args.command == "export-schema":
        export_schema(args.output)
        return
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        parser.exit(2, f"threadql: {error}\n")
    if args.command == "serve":
        serve(settings, args.host, args.port)
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "token":
        token(settings, args)
