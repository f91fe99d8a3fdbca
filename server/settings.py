"""Every setting in one place: `THREADQL_*` environment variables, checked at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX = "THREADQL_"
ENVIRONMENTS = ("development", "production")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _port(name: str, raw: str) -> int:
    if not raw.strip().isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name} must be a port number between 1 and 65535, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///data/threadql.db"
    broker_url: str = "memory://"
    jwt_secret: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = True  # load the demo thread into an empty database
    env: str = "development"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            name = PREFIX + field.name.upper()
            raw = environ.get(name)
            if raw is None:
                continue
            if field.name == "port":
                values[field.name] = _port(name, raw)
            elif field.name == "demo":
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
        if self.database_url.startswith(("postgresql://", "postgres://")):
            raise SettingsError(
                f"{PREFIX}DATABASE_URL: this build stores data in SQLite only (sqlite:///path)"
            )
        if self.broker_url != "memory://":
            raise SettingsError(f"{PREFIX}BROKER_URL: this build has the memory:// broker only")
