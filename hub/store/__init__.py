"""The hub's state: one interface (`Store`), a Redis and a SQLite implementation."""

from __future__ import annotations

from hub.store.base import (
    DeadLetter,
    DeadLetterFilter,
    Lease,
    OutboxItem,
    OutboxStats,
    Store,
    item_weight,
)

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "Lease",
    "OutboxItem",
    "OutboxStats",
    "Store",
    "item_weight",
    "open_store",
]


def open_store(url: str) -> Store:
    """Open the store named by a URL: `redis://…`/`rediss://…` or `sqlite:///path/state.db`."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from hub.store.redis import RedisStore

        return RedisStore.from_url(url)
    if url.startswith("sqlite:"):
        from hub.store.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    raise ValueError(
        f"unsupported store URL scheme in {url.split(':', 1)[0]!r}; use redis:// or sqlite:///"
    )
