"""Every setting in one place: `THREADQL_*` environment variables, checked at start."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from resolvers import thread_creation

if TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX = "THREADQL_"
MIN_SECRET_BYTES = 32  # RFC 7518: an HS256 key is at least as long as the hash, 256 bits
ENVIRONMENTS = ("development", "production")
LOG_FORMATS = ("json", "text")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _integer(name: str, raw: str, low: int, high: int) -> int:
    text = raw.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(text)


# Each integer setting's allowed range.
_RANGES = {
    "port": (1, 65535),
    "edit_window": (0, 10 * 365 * 24 * 3600),
    "max_body_length": (1, 1_000_000),
    "max_depth": (0, 10_000),
    "subscriber_queue": (1, 100_000),
    "max_nodes": (1, 10_000_000),
    "max_query_depth": (1, 1_000),
    "max_aliases": (0, 10_000),
    "max_tokens": (1, 1_000_000),
    "max_directives": (0, 10_000),
    "max_document_bytes": (1, 10_000_000),
    "max_request_bytes": (1, 100_000_000),
    "request_body_timeout": (1, 3600),
    "max_message_bytes": (1, 100_000_000),
    "max_operations": (1, 100_000),
    "comments_per_minute": (1, 1_000_000),
    "comment_burst": (1, 1_000_000),
    "likes_per_minute": (1, 1_000_000),
    "like_burst": (1, 1_000_000),
    "response_cache_entries": (1, 10_000_000),
    "response_cache_bytes": (1, 1 << 40),
    "persisted_query_bytes": (1, 1 << 40),
    "persisted_query_count": (1, 10_000_000),
    "registrations_per_minute": (1, 1_000_000),
    "registration_burst": (1, 1_000_000),
    "max_connections_per_address": (1, 1_000_000),
    "max_subscriptions_per_address": (1, 10_000_000),
    "deliveries_per_turn": (1, 100_000),
}


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///data/threadql.db"
    broker_url: str = "memory://"
    broker_prefix: str = "threadql:"  # Redis channel names start with it
    jwt_secret: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = True  # load the demo thread into an empty database
    env: str = "development"
    data_dir: str = "data"  # where a generated JWT secret is kept
    edit_window: int = 900  # seconds in which an author may edit a comment
    max_body_length: int = 10_000  # characters
    max_depth: int = 10  # deepest reply level, a top-level comment being 0; 0 for no limit
    subscriber_queue: int = 100  # events a subscriber may fall behind before it is cut off
    # Limits on what one request may ask; refused before anything runs.
    max_nodes: int = 10_000  # worst-case nodes a query can return, from its `first` arguments
    max_query_depth: int = 24  # nested selections; the demo thread's full nesting fits
    max_aliases: int = 15
    max_tokens: int = 1_000
    max_directives: int = 50
    max_document_bytes: int = 16_384  # the query text
    max_request_bytes: int = 65_536  # an HTTP body, answered 413 when larger
    request_body_timeout: int = 10  # seconds for an HTTP body to arrive, else answered 408
    max_message_bytes: int = 65_536  # a WebSocket message
    max_operations: int = 100  # operations at once on one WebSocket
    # Rate limits per signed-in user (per client address when anonymous): token buckets.
    rate_limits: bool = True
    comments_per_minute: int = 20  # one every 3 s
    comment_burst: int = 5
    likes_per_minute: int = 120  # two a second
    like_burst: int = 10
    # Answers to anonymous queries, kept while none of the threads they read is written to.
    response_cache: bool = True
    response_cache_entries: int = 10_000
    response_cache_bytes: int = 64 * 1024 * 1024
    # Automatic persisted queries: documents by their SHA-256, sent once, then by hash.
    persisted_queries: bool = True
    # Bounds of the documents kept, in each process and again in Redis.
    persisted_query_bytes: int = 8 * 1024 * 1024
    persisted_query_count: int = 10_000
    # New documents registered per client address; over it a document runs but is not kept.
    registrations_per_minute: int = 20
    registration_burst: int = 20
    # Operations: log lines as JSON or text (empty: JSON in production, text in development),
    # and OpenTelemetry spans for each operation when the opentelemetry packages are installed.
    log_format: str = ""
    tracing: bool = False
    # Who may open a thread by commenting on a new key: anyone, moderators, pattern:REGEX or
    # origin:https://… (resolvers/thread_creation.py); empty: moderators in production,
    # anyone in development.
    thread_creation: str = ""
    # WebSockets held at once by one client address (as the rate limits see it), and the
    # operations open on them; in each process.
    max_connections_per_address: int = 50
    max_subscriptions_per_address: int = 500
    # Subscribers served an event in one turn of the event loop: the requests waiting meanwhile
    # get theirs in between, however many follow a thread.
    deliveries_per_turn: int = 2
    # Queries run by compiled plans (schema/execution.py); false: plain graphql-core execution.
    query_plans: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            name = PREFIX + field.name.upper()
            raw = environ.get(name)
            if raw is None:
                continue
            if field.name in _RANGES:
                values[field.name] = _integer(name, raw, *_RANGES[field.name])
            elif field.name in (
                "demo",
                "rate_limits",
                "response_cache",
                "persisted_queries",
                "tracing",
                "query_plans",
            ):
                values[field.name] = _boolean(name, raw)
            else:
                values[field.name] = raw
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise SettingsError(
                f"{PREFIX}ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}"
            )
        if not self.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise SettingsError(
                f"{PREFIX}DATABASE_URL must be sqlite:///path or postgresql://…,"
                f" not {self.database_url!r}"
            )
        if self.broker_url != "memory://" and not self.broker_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise SettingsError(
                f"{PREFIX}BROKER_URL must be memory:// or redis://…, not {self.broker_url!r}"
            )
        if self.log_format not in ("", *LOG_FORMATS):
            raise SettingsError(
                f"{PREFIX}LOG_FORMAT must be one of {', '.join(LOG_FORMATS)},"
                f" not {self.log_format!r}"
            )
        try:
            thread_creation.parse(self.thread_creation, self.env)
        except ValueError as error:
            raise SettingsError(f"{PREFIX}THREAD_CREATION {error}") from error
        if self.tracing and importlib.util.find_spec("opentelemetry") is None:
            raise SettingsError(
                f"{PREFIX}TRACING=true needs OpenTelemetry: install opentelemetry-api and"
                " opentelemetry-sdk, or leave tracing off"
            )
        if self.env == "production" and not (self.jwt_secret or "").strip():
            raise SettingsError(
                f"{PREFIX}JWT_SECRET must be set in production: the secret the host site signs"
                " its tokens with (only development generates one of its own)"
            )
        if self.env == "production" and len((self.jwt_secret or "").encode()) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"{PREFIX}JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes in production:"
                " HS256 needs a key as long as its hash (e.g. `openssl rand -hex 32`)"
            )

    @property
    def logs(self) -> str:
        """The log format in effect: as set, else JSON in production and text in development."""
        return self.log_format or ("json" if self.env == "production" else "text")
