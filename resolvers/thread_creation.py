"""Who may open a thread: the rule `THREADQL_THREAD_CREATION` sets, in this one place.

A comment by `threadKey` on a key that has no thread yet opens one. Left open to everyone,
any signed-in reader could take a key the host site has not used yet (a future article's
slug) under a title of their choosing. The rule is one of:

- `anyone`: every signed-in user; the default in development, where the demo and the tests
  open threads freely;
- `moderators`: moderators and admins only; the default in production. The host site opens
  a thread itself: its backend posts the first comment with a moderator's token, or imports
  the thread;
- `pattern:REGEX`: keys that the regular expression matches as a whole, such as
  `pattern:blog/[a-z0-9-]+`;
- `origin:ORIGIN [ORIGIN ...]`: pages of the host site, the way Isso ties a thread to its
  page: the first comment sends `threadUrl`, an address on one of the origins, and the key
  is that address's path (`/blog/my-post` for `https://example.com/blog/my-post`).

Moderators may open threads under every rule. The storage asks nothing: it is told, with
the thread it is to find or create, why this writer may not create it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

Kind = Literal["anyone", "moderators", "pattern", "origin"]
DEFAULTS: dict[str, Kind] = {"development": "anyone", "production": "moderators"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) address, lower case and without a default
    port; None for anything else. Browsers read a backslash as a slash and go to the host
    before an `@`, where Python reads the host after it: neither is an address here."""
    if "\\" in url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


@dataclass(frozen=True, slots=True)
class ThreadCreation:
    kind: Kind
    pattern: re.Pattern[str] | None = None
    origins: tuple[str, ...] = ()

    def refusal(self, moderator: bool, key: str, url: str | None) -> str | None:
        """Why this writer may not open a thread with this key and page address; None when
        they may."""
        if moderator or self.kind == "anyone":
            return None
        if self.kind == "moderators":
            return "no thread has this key, and only moderators may open new threads"
        if self.pattern is not None:
            if self.pattern.fullmatch(key):
                return None
            return (
                f"no thread has this key, and new threads need keys matching {self.pattern.pattern}"
            )
        places = " or ".join(self.origins)
        if url is None:
            return f"no thread has this key: a new thread needs `threadUrl`, its page on {places}"
        if origin_of(url) not in self.origins:
            return f"new threads are pages of {places}: `threadUrl` is elsewhere"
        path = urlsplit(url).path or "/"
        if key != path:
            return f"a new thread's key is its page's path: {path!r} for this `threadUrl`"
        return None


_PLAIN = {"anyone": ThreadCreation("anyone"), "moderators": ThreadCreation("moderators")}


@lru_cache(maxsize=8)
def parse(value: str, env: str) -> ThreadCreation:
    """The rule a setting names (empty: the environment's default); ValueError if it names
    none."""
    value = value.strip() or DEFAULTS.get(env, "moderators")
    if value in _PLAIN:
        return _PLAIN[value]
    kind, _, argument = value.partition(":")
    argument = argument.strip()
    if kind == "pattern" and argument:
        try:
            return ThreadCreation("pattern", pattern=re.compile(argument))
        except re.error as error:
            raise ValueError(f"pattern:{argument} is not a regular expression: {error}") from error
    if kind == "origin" and argument:
        origins = []
        for place in argument.replace(",", " ").split():
            origin = origin_of(place)
            if origin is None or urlsplit(place).path not in ("", "/"):
                raise ValueError(f"{place!r} is not an origin such as https://example.com")
            origins.append(origin)
        return ThreadCreation("origin", origins=tuple(origins))
    raise ValueError(
        f"must be anyone, moderators, pattern:REGEX or origin:https://example.com, not {value!r}"
    )
