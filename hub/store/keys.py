"""Redis key names for the hub's state: the ONLY place they are built.

Every key has the form ``{prefix}:{kind}:{name}:…`` (prefix ``hub`` in production), so an operator
can list one kind with ``SCAN MATCH hub:outbox:*`` and a test can own a whole private prefix.

Name components (instance ids, namespaces, LRS names) are escaped: ``%`` and ``:`` become
``%25`` and ``%3A``. Without this a namespace ``a`` would SCAN-match the keys of a namespace
``a:b``, and ``kv_items("a")`` would return another namespace's keys. The LAST component (a
caller's key) is left as is: nothing follows it, so a ``:`` inside it cannot be ambiguous.
"""

from __future__ import annotations

from typing import NamedTuple

# Characters with a meaning in SCAN MATCH / KEYS glob patterns; escaped with a backslash there.
_GLOB_SPECIAL = frozenset("*?[]\\")


def escape_component(value: str) -> str:
    """Make `value` safe as a non-final key component (no ``:``), reversibly."""
    return value.replace("%", "%25").replace(":", "%3A")


def glob_escape(value: str) -> str:
    """Make `value` match itself literally inside a SCAN MATCH pattern."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in value)


class OutboxKeys(NamedTuple):
    """The keys of one LRS's outbox; the Lua scripts receive them in this order."""

    ready: str  # ZSET statement_id -> due time (µs): waiting items, due or not
    leased: str  # ZSET statement_id -> lease expiry (µs)
    lease_of: str  # HASH statement_id -> lease id holding it
    bodies: str  # HASH statement_id -> canonical statement bytes
    meta: str  # HASH statement_id -> OutboxItem JSON without the body
    enqueued: str  # ZSET statement_id -> enqueued_at (µs), for the oldest-item metric
    extra: str  # STRING: sum of (item_weight - 1) over the items held (grouped inbox items)


class DlqKeys(NamedTuple):
    letters: str  # HASH letter id -> DeadLetter JSON (bytes base64)
    by_last: str  # ZSET letter id -> last_at (µs), newest-first listing


class RedisKeys:
    """Builds every Redis key of one store under `prefix`."""

    def __init__(self, prefix: str = "hub") -> None:
        # The prefix is used raw in SCAN patterns and must stay one component.
        if not prefix or ":" in prefix or any(ch in _GLOB_SPECIAL for ch in prefix):
            raise ValueError(f"invalid key prefix {prefix!r}: non-empty, no ':' or glob characters")
        self.prefix = prefix

    def _key(self, kind: str, *names: str, last: str | None = None) -> str:
        parts = [self.prefix, kind, *(escape_component(n) for n in names)]
        if last is not None:
            parts.append(last)
        return ":".join(parts)

    # -- whole prefix (tests, operators) --------------------------------------------------------
    def everything_pattern(self) -> str:
        """SCAN MATCH pattern for every key of this store."""
        return f"{self.prefix}:*"

    # -- cursors, locks, dedupe, small state -----------------------------------------------------
    def cursor(self, instance_id: str) -> str:
        return self._key("cursor", last=instance_id)

    def lock(self, name: str) -> str:
        return self._key("lock", last=name)

    def seen(self, namespace: str, key: str) -> str:
        return self._key("seen", namespace, last=key)

    def kv(self, namespace: str, key: str) -> str:
        return self._key("kv", namespace, last=key)

    def kv_prefix(self, namespace: str) -> str:
        """What every kv key of `namespace` starts with; the rest is the caller's key."""
        return self._key("kv", namespace) + ":"

    def kv_pattern(self, namespace: str) -> str:
        return glob_escape(self.kv_prefix(namespace)) + "*"

    def counter(self, namespace: str, key: str) -> str:
        return self._key("counter", namespace, last=key)

    # -- outboxes and dead letters ---------------------------------------------------------------
    def outbox(self, lrs: str) -> OutboxKeys:
        return OutboxKeys(
            ready=self._key("outbox", lrs, last="ready"),
            leased=self._key("outbox", lrs, last="leased"),
            lease_of=self._key("outbox", lrs, last="lease_of"),
            bodies=self._key("outbox", lrs, last="bodies"),
            meta=self._key("outbox", lrs, last="meta"),
            enqueued=self._key("outbox", lrs, last="enqueued"),
            extra=self._key("outbox", lrs, last="extra"),
        )

    def dlq(self) -> DlqKeys:
        return DlqKeys(
            letters=self._key("dlq", last="letters"),
            by_last=self._key("dlq", last="by_last"),
        )
