"""Comments in and out: `threadql import FORMAT FILE` and `threadql export`.

Formats: `disqus` (Disqus's XML export), `wordpress` (WordPress's WXR export), `isso`
(Isso's SQLite database file) and `json` (threadql's own dump, see db.exchange.native).

Threads are found by key, and created when the key is new:

- disqus: the page's `disqus_identifier` (`<id>`), else its `<link>`; a thread deleted at
  Disqus is skipped with its posts; a closed one is created locked. Threads without posts
  are not created.
- wordpress: the post's permalink (`<link>`), else its `<guid>`, else `wordpress:<post id>`;
  posts that are not published are skipped with their comments; `comment_status` closed
  creates the thread locked. Only items that have comments are threads.
- isso: the page's path (`uri`); its title, else the path.
- json: the key it was exported with; states, order, locks and empty threads as they were.
  A thread whose key exists and whose comments did not come from a dump is skipped ("exists,
  and not from a dump"): a dump read back into the database it came from adds nothing.

A key is held to the API's rule for `threadKey` (one line, at most 255 characters, no control
characters): a thread whose key breaks it is skipped, with the rule as the reason.

A thread whose key exists already, locked or not, takes the imported comments beside its
own; its title and lock stay as they are. A thread with nothing to import is not created.
With `--thread-key KEY` only that thread is imported. Each thread is one transaction: its
comments land all or none. Every imported comment's id at its source is kept (table
`import_sources`, per thread), so running the same import again adds nothing, and a later
export of the same site adds only what is new.

What becomes of messy data, the same for every format:

- Authors: imported users have the format as their origin, beside the sub: no token, whatever
  its sub, signs in as one of them (tokens name users of origin `token` only). An account at
  the source (Disqus username, WordPress user id) becomes the user `user:<id>`; a guest the
  user `guest:<name>`, one per name; a comment with no author's name the user `anonymous`,
  "Anonymous". An id too long for a sub (255 characters) is no account: its author is a guest.
  E-mail addresses are not kept (threadql has none), so a missing one changes nothing. Users
  who exist (same origin and sub) keep their name, picture and role. A dump's users keep their
  origins: its `token` users are the host site's, and sign in again with its tokens.
- Users are held to what a token may carry: names on one line, control characters dropped,
  cut to 100 characters ("Anonymous" if nothing is left); a picture only at an http(s) address
  of at most 2048 characters, else none (the generated avatar). An import grants no role.
- Bodies: Disqus and WordPress bodies are HTML and become Markdown (db.exchange.markup):
  paragraphs, line breaks, links, emphasis, code, quotes and lists carry over, other tags
  go with their text kept, scripts and styles go whole. Isso's are Markdown already. Every
  body's HTML is rendered from the Markdown by db.render, as for a comment posted here.
  Control characters but newlines and tabs are dropped, as the API refuses them. A comment
  whose body is empty is treated as deleted; one whose body (or an earlier body of it) is
  longer than THREADQL_MAX_BODY_LENGTH is skipped ("body longer than N characters"), since
  cutting it would say what its author did not. Titles are cut to 300 characters, one line;
  a page address that is not http(s) is left out; a removal's reason is cut to 1000.
- A reply whose parent is not in the file (nor imported before) becomes a top-level
  comment; so does the oldest comment of a cycle of parents. Summary: "replies to a
  missing comment".
- A reply that comes before its parent in the file: comments are ordered by date (json: as
  written), and every parent is written before its replies whatever the dates say.
- Duplicate ids within a thread: the first wins; later ones are skipped ("duplicate id").
- Deleted, spam, trashed and unapproved comments (Disqus isDeleted/isSpam, WordPress
  comment_approved other than 1, Isso mode 2 and 4): a DELETED placeholder, with no author
  and no body, when a comment that is imported visible hangs beneath it; otherwise skipped
  ("deleted, no replies", "spam, no replies", "not approved, no replies").
- Pingbacks and trackbacks (WordPress) are skipped, counted by their type.
- Dates: with a zone they are converted to UTC; without one they are taken as UTC, except
  WordPress's local `comment_date` when `comment_date_gmt` is missing, which is shifted by
  the offset of the post's own two dates. A date that cannot be read, has no time in UTC,
  or lies before 1970, skips the comment ("unreadable date"). Imported comments keep their
  dates.
- Likes: a count is a whole number from 0 to 2^31 - 1, else the comment is skipped
  ("unreadable like count"). A dump's likes are counted even where its `likeCount` is lower,
  so that each listed liker can take theirs back; a higher count keeps likes the source
  counted without saying whose.
- A value of another type than its format has there (a number as a body, an object as a
  key, a BLOB in Isso's text column) skips its comment, or its thread, as "unreadable
  <what>". An id longer than 255 characters, or with control characters, is unreadable too.
- Counts (replies, listed replies, descendants, the thread's comments) come out exact:
  comments are inserted visible through SQLStorage._insert_comments and then hidden as the
  API hides them.

An import has a time bound (`Limits.timeout`, `threadql import --timeout`, an hour by
default): past it the import stops with TimedOut, between threads, inside a thread's write
(rolled back), or inside a read of an Isso database (SQLite's progress handler interrupts a
query that never ends, such as a recursive view). Threads written before stay.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from db.exchange import disqus, isso, native, wordpress
from db.exchange.core import Limits, Summary, import_threads
from db.exchange.source import Deadline, ExchangeError, TimedOut

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from db.exchange.source import SourceThread
    from db.storage import Storage

    Reader = Callable[[Path, Counter[str], Deadline], Iterator[SourceThread]]

# Format name on the command line -> (reader, the `source` that scopes imported ids).
READERS: dict[str, tuple[Reader, str]] = {
    "disqus": (disqus.read, disqus.SOURCE),
    "wordpress": (wordpress.read, wordpress.SOURCE),
    "isso": (isso.read, isso.SOURCE),
    "json": (native.read, native.SOURCE),
}

__all__ = ["READERS", "ExchangeError", "Limits", "Summary", "TimedOut", "import_file"]


async def import_file(
    storage: Storage,
    format_name: str,
    path: Path,
    *,
    key: str | None = None,
    progress: Callable[[Summary], None] | None = None,
    limits: Limits | None = None,
) -> Summary:
    limits = limits or Limits()
    read, source = READERS[format_name]
    skipped: Counter[str] = Counter()
    deadline = Deadline(limits.timeout)
    summary = await import_threads(
        storage,
        source,
        read(path, skipped, deadline),
        deadline=deadline,
        max_body_length=limits.max_body_length,
        key=key,
        progress=progress,
    )
    summary.skipped.update(skipped)
    return summary
