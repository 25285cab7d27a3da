"""Small reusable paginators with loop detection.

Polling connectors fetch ONE page per `poll()` call and carry their position in the cursor, so
the paginators here are pure helpers over "the page I just got": they decide the next position
and refuse to loop. Loop detection keeps short fingerprints of the tokens already followed in
this sync (they travel in the cursor, bounded), and raises `PaginationLoop` when a source hands
back a token it already gave: stopping beats fetching the same page forever.

* `LoopGuard`: remembers token fingerprints; `check(token)` raises on a repeat.
* `next_page_number()`: 1-based page paging with a ``has_more`` flag and a page-count cap (Docebo
  keeps ``has_more_data`` true on some endpoints; the cap stops it).
* `next_link()`: follow an absolute next-link verbatim (OData ``@odata.nextLink``), guarded.
* `iterate_pages()`: a whole-sync loop for callers that need every page at once (lookups).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from hub.errors import PaginationLoop

__all__ = [
    "LoopGuard",
    "fingerprint",
    "iterate_pages",
    "next_link",
    "next_page_number",
]

T = TypeVar("T")
TokenT = TypeVar("TokenT")

MAX_REMEMBERED = 64
"""Tokens kept per sync. A loop longer than this is not detected, but such a loop would be a
very strange server; the bound keeps cursors small."""


def fingerprint(token: str) -> str:
    """A short, non-reversible stand-in for a page token (tokens can be long or sensitive)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


class LoopGuard:
    """Remembers the page tokens followed in one sync; raises on a repeat."""

    def __init__(self, seen: Iterable[str] = (), *, limit: int = MAX_REMEMBERED) -> None:
        self._seen = list(seen)[-limit:]
        self._limit = limit

    @property
    def seen(self) -> tuple[str, ...]:
        """The fingerprints to carry in the cursor."""
        return tuple(self._seen)

    def check(self, token: str) -> None:
        """Record `token`; raise `PaginationLoop` if it was already followed."""
        fp = fingerprint(token)
        if fp in self._seen:
            raise PaginationLoop(
                f"the source returned a page token it already returned (fingerprint {fp}); "
                "stopping instead of looping"
            )
        self._seen.append(fp)
        del self._seen[: -self._limit]


def next_page_number(
    current: int, *, has_more: bool, total_pages: int | None = None, max_pages: int = 100_000
) -> int | None:
    """The next 1-based page, or None when done.

    Stops when the source says there is no more, when `total_pages` is reached (a guard against a
    ``has_more`` flag stuck at true) and, as a last resort, after `max_pages`.
    """
    if current < 1:
        raise ValueError("pages are 1-based")
    if not has_more:
        return None
    if total_pages is not None and current >= total_pages:
        return None
    if current >= max_pages:
        raise PaginationLoop(f"more than {max_pages} pages; refusing to go on")
    return current + 1


def next_link(link: str | None, guard: LoopGuard) -> str | None:
    """Follow an absolute next link verbatim (never rebuilt), refusing one seen before."""
    if not link:
        return None
    guard.check(link)
    return link


class _Pages(Generic[T, TokenT]):
    def __init__(
        self,
        fetch: Callable[[TokenT | None], tuple[list[T], TokenT | None]],
        key: Callable[[TokenT], str],
    ) -> None:
        self.fetch = fetch
        self.key = key

    def __iter__(self) -> Iterator[list[T]]:
        guard = LoopGuard()
        token: TokenT | None = None
        while True:
            items, token = self.fetch(token)
            yield items
            if token is None:
                return
            guard.check(self.key(token))


def iterate_pages(
    fetch: Callable[[TokenT | None], tuple[list[T], TokenT | None]],
    *,
    key: Callable[[TokenT], str] = str,
) -> Iterator[list[T]]:
    """Yield every page: `fetch(token)` returns ``(items, next_token)``; None ends the loop."""
    return iter(_Pages(fetch, key))
