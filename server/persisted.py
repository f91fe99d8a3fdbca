"""Automatic persisted queries, Apollo's protocol: a client sends the SHA-256 of a document in
place of the document, and sends both once when the server answers that it does not know it.

A GET with the hash alone is a short URL that stays the same: what lets a CDN cache a query.
Documents are kept in this process, and with a Redis broker in Redis too, so that a document
registered through one process runs through all of them. Anyone may register a document, so
both stores are held within a number of documents and of bytes: the oldest registrations go
first, and a client whose document went registers it again when it is told so.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.cache import ENTRY_OVERHEAD, LRU

log = logging.getLogger(__name__)

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
TIMEOUT = 1.0  # seconds to connect to Redis or for it to answer: a request waits on it
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PersistedQueryError(Exception):
    """Answered as a GraphQL response without `data`; Apollo's clients act on `code`."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def not_supported() -> PersistedQueryError:
    """Tells Apollo's clients to send whole documents from now on."""
    return PersistedQueryError(200, "PersistedQueryNotSupported", NOT_SUPPORTED)


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def requested_hash(extension: object) -> str:
    """The hash of `extensions.persistedQuery`, in lower case."""
    version = extension.get("version") if isinstance(extension, dict) else None
    if not isinstance(extension, dict) or type(version) is not int or version != 1:
        # The integer 1: JSON's `true` and `1.0` are equal to it in Python, not in the protocol.
        raise PersistedQueryError(400, "Unsupported persisted query version: send version 1")
    digest = extension.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower()):
        raise PersistedQueryError(400, "`sha256Hash` must be 64 hexadecimal digits")
    return digest.lower()


# Documents in Redis: KEYS[1] a hash of documents by digest, KEYS[2] a sorted set of digests by
# when they were last registered, KEYS[3] the bytes the hash holds. ARGV: digest, document,
# now, most documents, most bytes. One script run, so that processes registering at once keep
# the three in step; the oldest registrations are evicted until both bounds hold.
REGISTER = """
if redis.call('HSTRLEN', KEYS[1], ARGV[1]) == 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('INCRBY', KEYS[3], string.len(ARGV[2]))
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local count = redis.call('ZCARD', KEYS[2])
local bytes = tonumber(redis.call('GET', KEYS[3]))
while count > tonumber(ARGV[4]) or bytes > tonumber(ARGV[5]) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])[1]
  if oldest == nil then break end
  bytes = redis.call('DECRBY', KEYS[3], redis.call('HSTRLEN', KEYS[1], oldest))
  redis.call('HDEL', KEYS[1], oldest)
  count = count - 1
end
return count
"""


class PersistedQueries:
    """Documents by their SHA-256, at most `max_documents` and `max_bytes` of them in this
    process and as many again in Redis. While Redis cannot be reached, this process's own
    are used."""

    def __init__(
        self,
        max_documents: int,
        max_bytes: int,
        redis_url: str | None = None,
        prefix: str = "threadql:apq:",
    ) -> None:
        self.prefix = prefix
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self._documents: LRU[str, str] = LRU(max_documents, max_bytes)
        self._redis = (
            Redis.from_url(
                redis_url,
                client_name="threadql-apq",
                retry=Retry(NoBackoff(), 1),  # a pooled connection may be stale after a restart
                socket_timeout=TIMEOUT,
                socket_connect_timeout=TIMEOUT,
            )
            if redis_url
            else None
        )
        self._register_script = (
            None if self._redis is None else self._redis.register_script(REGISTER)
        )
        self._failing = False

    @property
    def keys(self) -> tuple[str, str, str]:
        """In Redis: the documents, the order of their registrations, and their bytes."""
        return self.prefix + "documents", self.prefix + "registered", self.prefix + "bytes"

    async def resolve(self, extension: object, query: str | None, *, register: bool = True) -> str:
        """The document to run: the one sent, registered under its hash unless `register` is
        false, or the one registered."""
        digest = requested_hash(extension)
        if query is not None:
            if sha256(query) != digest:
                raise PersistedQueryError(400, "provided sha does not match query", HASH_MISMATCH)
            if register:
                await self._register(digest, query)
            return query
        document = self._documents.get(digest) or await self._shared(digest)
        if document is None:
            raise PersistedQueryError(200, "PersistedQueryNotFound", NOT_FOUND)
        return document

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    def _keep(self, digest: str, document: str) -> None:
        self._documents.put(digest, document, len(document.encode()) + ENTRY_OVERHEAD)

    async def _register(self, digest: str, document: str) -> None:
        encoded = document.encode()
        if len(encoded) > self.max_bytes:
            return  # kept nowhere: it would only push every other document out
        self._keep(digest, document)
        if self._register_script is not None:
            bounds = (time.time(), self.max_documents, self.max_bytes)
            try:
                await self._register_script(keys=self.keys, args=(digest, encoded, *bounds))
            except (RedisError, OSError) as error:
                self._failed(error)
            else:
                self._recovered()

    async def _shared(self, digest: str) -> str | None:
        """Registered through another process; checked, since Redis is not ours alone."""
        if self._redis is None:
            return None
        try:
            stored = await self._redis.hget(self.keys[0], digest)
        except (RedisError, OSError) as error:
            self._failed(error)
            return None
        self._recovered()
        if not isinstance(stored, bytes):
            return None
        document = stored.decode(errors="replace")
        if sha256(document) != digest:
            return None
        self._keep(digest, document)
        return document

    def _failed(self, error: BaseException) -> None:
        if not self._failing:  # once per outage, not once per request
            log.warning("persisted queries: Redis unreachable (%s); using this process's", error)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("persisted queries: Redis is back")
            self._failing = False
