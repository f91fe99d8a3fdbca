"""Bearer tokens from the host site: HS256 JWTs whose claims name the user."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt

from db.render import CONTROL, one_line
from db.rules import MAX_NAME, MAX_SUB, web_url

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from db.rows import UserRow
    from db.storage import Storage

ALGORITHM = "HS256"
ROLES = ("moderator", "admin")
SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: UserRow
    expires: float  # `exp`, in seconds since the epoch: a WebSocket's authority ends then


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


def _text(
    claims: dict[str, Any], name: str, limit: int, clean: Callable[[str], str] = str.strip
) -> str:
    value = claims.get(name)
    cleaned = clean(value) if isinstance(value, str) else ""
    if not cleaned or len(cleaned) > limit:
        raise Unauthenticated(f"the token's `{name}` claim must be text of 1 to {limit} characters")
    if CONTROL.search(cleaned):
        raise Unauthenticated(f"the token's `{name}` claim must not hold control characters")
    return cleaned


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
    if avatar is not None and not (isinstance(avatar, str) and web_url(avatar)):
        raise Unauthenticated("the token's `avatar` claim must be an http(s) URL")
    role = claims.get("role", "user")
    if role not in ("user", *ROLES):
        raise Unauthenticated(f"the token's `role` claim must be one of {', '.join(ROLES)}")
    sub = _text(claims, "sub", MAX_SUB)
    # A name shows beside comments and in avatars: one line, nothing that turns text around.
    name = _text(claims, "name", MAX_NAME, one_line)
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


def kept_secret(data_dir: Path) -> str | None:
    """The secret kept in the data folder, if one was generated there."""
    path = data_dir / SECRET_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def secret_for(configured: str | None, data_dir: Path) -> str:
    """The configured secret, or one generated once and kept in the data folder."""
    if configured:
        return configured
    kept = kept_secret(data_dir)
    if kept is not None:
        return kept
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    path.touch(mode=0o600)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret, encoding="utf-8")
    return secret


class Authenticator:
    """Turns a token into a user row, writing the row only when the claims differ from it.

    What it keeps, by `sub`, is the row as the storage returned it from the last write, so a
    token is compared with what is stored and not with the token seen before it: names going
    A, B, A write A back. Writes go one at a time, so the row kept is the one written last.
    """

    def __init__(self, secret: str, storage: Storage, cache_size: int = 10_000) -> None:
        self.secret = secret
        self.storage = storage
        self._stored: OrderedDict[str, UserRow] = OrderedDict()
        self._cache_size = cache_size
        self._writing = asyncio.Lock()

    async def signed_in(self, token: str | None) -> SignedIn | None:
        """The token's user and when the token expires; None without a token."""
        if token is None:
            return None
        claims = decode(token, self.secret)
        return SignedIn(await self._user(claims), claims.expires)

    async def _user(self, claims: Claims) -> UserRow:
        stored = self._unchanged(claims)
        if stored is not None:
            return stored
        async with self._writing:
            stored = self._unchanged(claims)  # written while this request waited
            if stored is not None:
                return stored
            user = await self.storage.upsert_user(
                claims.sub, claims.name, claims.avatar, claims.role
            )
            self._stored[claims.sub] = user
            self._stored.move_to_end(claims.sub)
            if len(self._stored) > self._cache_size:
                self._stored.popitem(last=False)
            return user

    def _unchanged(self, claims: Claims) -> UserRow | None:
        """The stored row of the claims' user, if it already says what the claims say."""
        stored = self._stored.get(claims.sub)
        said = (claims.name, claims.avatar, claims.role)
        if stored is None or (stored.name, stored.avatar_url, stored.role) != said:
            return None
        self._stored.move_to_end(claims.sub)
        return stored
