"""`threadql`: serve, migrate and export the schema."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import uvicorn

from db import open_storage
from schema import schema
from server.app import create_app
from server.settings import Settings, SettingsError


async def _migrate(settings: Settings) -> list[str]:
    storage = open_storage(settings.database_url)
    await storage.open()
    try:
        return await storage.migrate()
    finally:
        await storage.close()


def serve(settings: Settings, host: str | None, port: int | None) -> None:
    host, port = host or settings.host, port or settings.port
    print(f"threadql: GraphiQL: http://{host}:{port}/graphql", flush=True)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="auto",
        http="auto",
        log_level="info",
    )


def migrate(settings: Settings) -> None:
    applied = asyncio.run(_migrate(settings))
    print("\n".join(f"applied {name}" for name in applied) or "the database is up to date")


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
