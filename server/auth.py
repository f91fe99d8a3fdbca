"""Bearer tokens from the host site: HS256 JWTs whose claims name the user."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from pathlib import Path

    from db.rows import UserRow
    from db.storage import Storage

ALGORITHM = "HS256"
ROLES = ("moderator", "admin")
SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret
MAX_SUB, MAX_NAME, MAX_URL = 255, 100, 2048


class Unauthenticated(Exception):
    """A token was sent and is not good: never read as anonymous."""


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    name: str
    avatar: str | None = None
    role: str = "user"
    # `exp`, in seconds since the epoch: when the token stops being good, not who it names.
    expires: float = field(default=float("inf"), compare=False)


def _text(claims: dict[str, Any], name: str, limit: int) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Unauthenticated(f"the token's `{name}` claim must be text of 1 to {limit} characters")
    return value.strip()


def decode(token: str, secret: str) -> Claims:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "name", "exp"]}
        )
    except jwt.ExpiredSignatureError as error:
        raise Unauthenticated("the token has expired") from error
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(f"the token is not valid: {error}") from error
    avatar = claims.get("avatar")
    if avatar is not None and not (
        isinstance(avatar, str)
        and avatar.startswith(("https://", "http://"))
        and len(avatar) <= MAX_URL
    ):
        raise Unauthenticated("the token's `avatar` claim must be an http(s) URL")
    role = claims.get("role", "user")
    if role not in ("user", *ROLES):
        raise Unauthenticated(f"the token's `role` claim must be one of {', '.join(ROLES)}")
    sub, name = _text(claims, "sub", MAX_SUB), _text(claims, "name", MAX_NAME)
    return Claims(sub, name, avatar, role, float(claims["exp"]))


def mint(
    secret: str,
    *,
    sub: str,
    name: str,
    avatar: str | None = None,
    role: str | None = None,
    expires_in: int = 7 * 24 * 3600,
) -> str:
    claims: dict[str, Any] = {"sub": sub, "name": name, "exp": int(time.time()) + expires_in}
    if avatar:
        claims["avatar"] = avatar
    if role:
        claims["role"] = role
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header; None when there is no header."""
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send the token as `Authorization: Bearer <token>`")
    return token.strip()


def secret_for(configured: str | None, data_dir: Path) -> str:
    """The configured secret, or one generated once and kept in the data folder."""
    if configured:
        return configured
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


class Authenticator:
    """Turns a token into a user row, writing the row only when the claims change."""

    def __init__(self, secret: str, storage: Storage, cache_size: int = 10_000) -> None:
        self.secret = secret
        self.storage = storage
        self._known: OrderedDict[Claims, UserRow] = OrderedDict()
        self._cache_size = cache_size

    async def user(self, token: str | None) -> UserRow | None:
        if token is None:
            return None
        claims = decode(token, self.secret)
        known = self._known.get(claims)
        if known is not None:
            self._known.move_to_end(claims)
            return known
        user = await self.storage.upsert_user(claims.sub, claims.name, claims.avatar, claims.role)
        self._known[claims] = user
        if len(self._known) > self._cache_size:
            self._known.popitem(last=False)
        return user

    def expires(self, token: str) -> float:
        """When the token stops being good, in seconds since the epoch."""
        return decode(token, self.secret).expires
