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

A thread whose key exists already, locked or not, takes the imported comments beside its
own; its title and lock stay as they are. A thread with nothing to import is not created.
With `--thread-key KEY` only that thread is imported. Each thread is one transaction: its
comments land all or none. Every imported comment's id at its source is kept (table
`import_sources`, per thread), so running the same import again adds nothing, and a later
export of the same site adds only what is new.

What becomes of messy data, the same for every format:

- Authors: an account at the source (Disqus username, WordPress user id) becomes the user
  `import:<format>:user:<id>`; a guest the user `import:<format>:guest:<name>`, one per name;
  a comment with no author's name the user `import:<format>:anonymous`, "Anonymous".
  E-mail addresses are not kept (threadql has none), so a missing one changes nothing.
  Users who exist (same sub) keep their name, picture and role.
- Bodies: Disqus and WordPress bodies are HTML and become Markdown (db.exchange.markup):
  paragraphs, line breaks, links, emphasis, code, quotes and lists carry over, other tags
  go with their text kept, scripts and styles go whole. Isso's are Markdown already. Every
  body's HTML is rendered from the Markdown by db.render, as for a comment posted here.
  A comment whose body is empty is treated as deleted.
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
  the offset of the post's own two dates. A date that cannot be read skips the comment
  ("unreadable date"). Imported comments keep their dates.
- Counts (replies, listed replies, descendants, the thread's comments) come out exact:
  comments are inserted visible through SQLStorage._insert_comments and then hidden as the
  API hides them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from db.exchange import disqus, isso, native, wordpress
from db.exchange.core import Summary, import_threads
from db.exchange.source import ExchangeError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from db.exchange.source import SourceThread
    from db.storage import Storage

    Reader = Callable[[Path, Counter[str]], Iterator[SourceThread]]

# Format name on the command line -> (reader, the `source` that scopes imported ids).
READERS: dict[str, tuple[Reader, str]] = {
    "disqus": (disqus.read, disqus.SOURCE),
    "wordpress": (wordpress.read, wordpress.SOURCE),
    "isso": (isso.read, isso.SOURCE),
    "json": (native.read, native.SOURCE),
}

__all__ = ["READERS", "ExchangeError", "Summary", "import_file"]


async def import_file(
    storage: Storage,
    format_name: str,
    path: Path,
    key: str | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    read, source = READERS[format_name]
    skipped: Counter[str] = Counter()
    summary = await import_threads(storage, source, read(path, skipped), key=key, progress=progress)
    summary.skipped.update(skipped)
    return summary
