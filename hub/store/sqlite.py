"""`Store` on one SQLite file: for single-host installs, development and the offline test suite.

Several PROCESSES share the file (Celery prefork workers, beat, the webhook receiver), so:

* WAL mode: readers never block the writer and the writer never blocks readers.
* `busy_timeout`: a process that finds the write lock taken waits instead of failing at once.
* Every write runs in ``BEGIN IMMEDIATE``, which takes the write lock *before* reading. A deferred
  transaction that reads and then writes can fail with SQLITE_BUSY without waiting (another process
  committed since its read snapshot); IMMEDIATE turns that race into a wait, and it is what makes
  two processes never lease the same outbox item.
* One connection per thread, reopened after a fork: a SQLite connection must never cross a fork.

Times are UTC epoch floats (REAL) and bytes are BLOBs. Rows past their `expires_at` count as absent
for every read and are overwritten by the next write of the same key; a periodic sweep deletes the
rest so the file does not grow with dead de-duplication keys.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

from hub.store.base import (
    DeadLetter,
    DeadLetterFilter,
    Lease,
    OutboxItem,
    OutboxStats,
    item_weight,
    units_prefix,
)

__all__ = ["SqliteStore", "ensure_wal"]

# Sweep expired seen/kv/lock rows once every this many TTL writes of a store object.
_SWEEP_EVERY: Final = 512

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS cursors (
    instance_id TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS locks (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_expires ON seen (expires_at);
CREATE TABLE IF NOT EXISTS kv (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
-- A rowid table on purpose: rowid orders items appended at the same due time, and `body` comes
-- last so scans that stop at the earlier columns never walk a large body's overflow pages.
CREATE TABLE IF NOT EXISTS outbox (
    lrs              TEXT NOT NULL,
    statement_id     TEXT NOT NULL,
    instance_id      TEXT NOT NULL,
    verb             TEXT NOT NULL,
    enqueued_at      REAL NOT NULL,
    received_at      REAL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_failure_at REAL,
    last_error       TEXT,
    due_at           REAL NOT NULL,
    lease_id         TEXT,
    lease_expires_at REAL,
    body             BLOB NOT NULL,
    PRIMARY KEY (lrs, statement_id)
);
CREATE INDEX IF NOT EXISTS outbox_ready ON outbox (lrs, due_at) WHERE lease_id IS NULL;
CREATE INDEX IF NOT EXISTS outbox_leased
    ON outbox (lrs, lease_expires_at) WHERE lease_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_enqueued ON outbox (lrs, enqueued_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id             TEXT PRIMARY KEY,
    stage          TEXT NOT NULL,
    lrs            TEXT,
    instance_id    TEXT,
    statement_id   TEXT,
    reason         TEXT NOT NULL,
    detail         TEXT NOT NULL,
    attempts       INTEGER NOT NULL,
    first_at       REAL NOT NULL,
    last_at        REAL NOT NULL,
    envelope       TEXT NOT NULL,
    body           BLOB,
    stored_version BLOB
);
CREATE INDEX IF NOT EXISTS dead_letters_last ON dead_letters (last_at);
"""

# Same merge rule as `hub.store.redis.merge_letters`: attempts add up, first_at is the earliest,
# last_at the latest, the cause is the newest, payload fields keep their old value when the new
# letter has none (the envelope column holds JSON text, so "none" is the JSON literal null).
_DLQ_UPSERT: Final = """
INSERT INTO dead_letters (id, stage, lrs, instance_id, statement_id, reason, detail, attempts,
                          first_at, last_at, envelope, body, stored_version)
VALUES (:id, :stage, :lrs, :instance_id, :statement_id, :reason, :detail, :attempts,
        :first_at, :last_at, :envelope, :body, :stored_version)
ON CONFLICT (id) DO UPDATE SET
    stage = excluded.stage,
    reason = excluded.reason,
    detail = excluded.detail,
    attempts = dead_letters.attempts + excluded.attempts,
    first_at = min(dead_letters.first_at, excluded.first_at),
    last_at = max(dead_letters.last_at, excluded.last_at),
    lrs = coalesce(excluded.lrs, dead_letters.lrs),
    instance_id = coalesce(excluded.instance_id, dead_letters.instance_id),
    statement_id = coalesce(excluded.statement_id, dead_letters.statement_id),
    envelope = CASE WHEN excluded.envelope = 'null' THEN dead_letters.envelope
                    ELSE excluded.envelope END,
    body = coalesce(excluded.body, dead_letters.body),
    stored_version = coalesce(excluded.stored_version, dead_letters.stored_version)
"""

# Static SQL with NULL-means-any parameters, rather than SQL assembled from strings. `since` is
# inclusive and `until` exclusive, on last_at. LIMIT -1 is SQLite for "no limit".
_DLQ_LIST: Final = """
SELECT id, stage, lrs, instance_id, statement_id, reason, detail, attempts, first_at, last_at,
       envelope, body, stored_version
FROM dead_letters
WHERE (:stage IS NULL OR stage = :stage)
  AND (:lrs IS NULL OR lrs = :lrs)
  AND (:instance_id IS NULL OR instance_id = :instance_id)
  AND (:reason IS NULL OR reason = :reason)
  AND (:since IS NULL OR last_at >= :since)
  AND (:until IS NULL OR last_at < :until)
ORDER BY last_at DESC, id DESC
LIMIT :limit
"""
_DLQ_COUNT: Final = """
SELECT count(*)
FROM dead_letters
WHERE (:stage IS NULL OR stage = :stage)
  AND (:lrs IS NULL OR lrs = :lrs)
  AND (:instance_id IS NULL OR instance_id = :instance_id)
  AND (:reason IS NULL OR reason = :reason)
  AND (:since IS NULL OR last_at >= :since)
  AND (:until IS NULL OR last_at < :until)
"""


def _ts(dt: datetime) -> float:
    # A naive datetime's .timestamp() silently assumes local time: refuse it instead.
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"datetimes must be timezone-aware (UTC), got {dt!r}")
    return dt.timestamp()


def _ts_opt(dt: datetime | None) -> float | None:
    return None if dt is None else _ts(dt)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _dt_opt(ts: float | None) -> datetime | None:
    return None if ts is None else _dt(ts)


def _ttl(ttl_seconds: float) -> float:
    if not ttl_seconds > 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
    return ttl_seconds


def _letter_from_row(row: sqlite3.Row) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        stage=row["stage"],
        lrs=row["lrs"],
        instance_id=row["instance_id"],
        statement_id=row["statement_id"],
        reason=row["reason"],
        detail=row["detail"],
        attempts=row["attempts"],
        first_at=_dt(row["first_at"]),
        last_at=_dt(row["last_at"]),
        envelope=json.loads(row["envelope"]),
        body=row["body"],
        stored_version=row["stored_version"],
    )


def _filter_params(flt: DeadLetterFilter) -> dict[str, Any]:
    return {
        "stage": flt.stage,
        "lrs": flt.lrs,
        "instance_id": flt.instance_id,
        "reason": flt.reason,
        "since": _ts_opt(flt.since),
        "until": _ts_opt(flt.until),
    }


def ensure_wal(conn: sqlite3.Connection, path: str, *, timeout: float) -> None:
    """Put the file behind `conn` in WAL mode (a property of the file: once holds for all).

    Switching, and even reading the mode of a file another connection is creating or
    switching, can fail with "database is locked" without waiting for the busy timeout:
    SQLite does not call the busy handler there. `lxhub up` opens the store and the embedded
    broker from several processes at once, so a locked answer is retried until `timeout`
    seconds have passed, not fatal.
    """
    deadline = time.monotonic() + timeout
    for attempt in range(1_000_000):
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(min(0.001 * 2**attempt, 0.05))  # when a process starts, not in a task
            continue
        if str(mode).lower() != "wal":
            raise RuntimeError(f"could not switch {path} to WAL mode (got {mode!r})")
        return


class SqliteStore:
    """The hub's state in one SQLite file, safe for several threads and processes."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 30_000) -> None:
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file::memory:"):
            # Every connection would get its own empty database: no sharing, so no store.
            raise ValueError("SqliteStore needs a file path, not an in-memory database")
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._opened: list[tuple[int, sqlite3.Connection]] = []
        self._opened_guard = threading.Lock()
        self._ttl_writes = 0  # unlocked: a lost increment only shifts the next sweep a little
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        ensure_wal(self._conn(), self.path, timeout=self._busy_timeout_ms / 1000)
        with self._write() as c:
            # Not executescript(): it would COMMIT first, outside our IMMEDIATE transaction.
            # (So the schema must keep ';' out of its comments.)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """``sqlite:///relative/state.db`` or ``sqlite:////absolute/state.db`` (as SQLAlchemy)."""
        scheme = "sqlite:///"
        if not url.startswith(scheme) or "?" in url:
            raise ValueError(f"expected sqlite:///path without query, got {url!r}")
        return cls(url[len(scheme) :])

    # -- connections and transactions ------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        # First use in this thread, or first use in a forked child (whose inherited connection
        # belongs to the parent: it is abandoned, never closed, as closing would drop locks).
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
            check_same_thread=False,  # so close() may close every thread's connection
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        # NORMAL is durable against process crashes; a power cut can lose the last commits, but
        # WAL loses a suffix, in order, so the state stays one the outbox/cursor protocol handles
        # (a lost append loses its cursor save too; a lost ack only means an idempotent resend).
        conn.execute("PRAGMA synchronous = NORMAL")
        self._local.conn = conn
        self._local.pid = os.getpid()
        with self._opened_guard:
            self._opened.append((os.getpid(), conn))
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT: a transaction left open would break every later BEGIN.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _after_ttl_write(self) -> None:
        self._ttl_writes += 1
        if self._ttl_writes % _SWEEP_EVERY:
            return
        now = time.time()
        with self._write() as c:
            c.execute("DELETE FROM seen WHERE expires_at <= ?", (now,))
            c.execute("DELETE FROM kv WHERE expires_at <= ?", (now,))
            c.execute("DELETE FROM locks WHERE expires_at <= ?", (now,))

    # -- health ----------------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return bool(self._conn().execute("SELECT 1").fetchone()[0] == 1)
        except sqlite3.Error:
            return False

    def close(self) -> None:
        pid = os.getpid()
        with self._opened_guard:
            mine = [conn for owner, conn in self._opened if owner == pid]
            self._opened = [(owner, conn) for owner, conn in self._opened if owner != pid]
        for conn in mine:
            conn.close()
        self._local = threading.local()

    # -- cursors and locks -----------------------------------------------------------------------
    def get_cursor(self, instance_id: str) -> str | None:
        row = (
            self._conn()
            .execute("SELECT value FROM cursors WHERE instance_id = ?", (instance_id,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def set_cursor(self, instance_id: str, value: str) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO cursors (instance_id, value) VALUES (?, ?)"
                " ON CONFLICT (instance_id) DO UPDATE SET value = excluded.value",
                (instance_id, value),
            )

    def delete_cursor(self, instance_id: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM cursors WHERE instance_id = ?", (instance_id,))

    def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._write() as c:
            # Takes the row only when absent or expired: SET NX PX, with expiry checked here.
            cur = c.execute(
                "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at WHERE locks.expires_at <= ?",
                (name, owner, now + _ttl(ttl_seconds), now),
            )
            acquired = cur.rowcount == 1
        self._after_ttl_write()
        return acquired

    def refresh_lock(self, name: str, *, owner: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._write() as c:
            cur = c.execute(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ? AND expires_at > ?",
                (now + _ttl(ttl_seconds), name, owner, now),
            )
            return cur.rowcount == 1

    def release_lock(self, name: str, *, owner: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    # -- de-duplication and small state ----------------------------------------------------------
    def mark_seen(self, namespace: str, key: str, *, ttl_seconds: float) -> bool:
        return self.mark_seen_many(namespace, [key], ttl_seconds=ttl_seconds)[0]

    def mark_seen_many(
        self, namespace: str, keys: Sequence[str], *, ttl_seconds: float
    ) -> list[bool]:
        now = time.time()
        firsts: list[bool] = []
        with self._write() as c:  # one transaction: all or nothing
            for key in keys:
                cur = c.execute(
                    "INSERT INTO seen (namespace, key, expires_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (namespace, key) DO UPDATE SET expires_at = excluded.expires_at"
                    " WHERE seen.expires_at <= ?",
                    (namespace, key, now + _ttl(ttl_seconds), now),
                )
                firsts.append(cur.rowcount == 1)
        self._after_ttl_write()
        return firsts

    def unmark_seen(self, namespace: str, key: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM seen WHERE namespace = ? AND key = ?", (namespace, key))

    def kv_get(self, namespace: str, key: str) -> str | None:
        return _kv_value(self._conn(), namespace, key, time.time())

    def kv_set(
        self, namespace: str, key: str, value: str, *, ttl_seconds: float | None = None
    ) -> None:
        expires_at = None if ttl_seconds is None else time.time() + _ttl(ttl_seconds)
        with self._write() as c:
            _kv_upsert(c, namespace, key, value, expires_at)
        if expires_at is not None:
            self._after_ttl_write()

    def kv_delete(self, namespace: str, key: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))

    def kv_compare_and_set(
        self,
        namespace: str,
        key: str,
        *,
        expected: str | None,
        value: str,
        ttl_seconds: float | None = None,
    ) -> bool:
        now = time.time()
        expires_at = None if ttl_seconds is None else now + _ttl(ttl_seconds)
        with self._write() as c:  # BEGIN IMMEDIATE: nobody writes between the read and the set
            if _kv_value(c, namespace, key, now) != expected:
                return False
            _kv_upsert(c, namespace, key, value, expires_at)
        if expires_at is not None:
            self._after_ttl_write()
        return True

    def kv_items(self, namespace: str) -> list[tuple[str, str]]:
        rows = (
            self._conn()
            .execute(
                "SELECT key, value FROM kv WHERE namespace = ?"
                " AND (expires_at IS NULL OR expires_at > ?) ORDER BY key",
                (namespace, time.time()),
            )
            .fetchall()
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def incr(self, namespace: str, key: str, amount: int = 1) -> int:
        with self._write() as c:
            row = c.execute(
                "INSERT INTO counters (namespace, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (namespace, key)"
                " DO UPDATE SET value = counters.value + excluded.value RETURNING value",
                (namespace, key, amount),
            ).fetchall()[0]
        return int(row[0])

    # -- outboxes --------------------------------------------------------------------------------
    def outbox_append(self, lrs: str, items: Sequence[OutboxItem], *, now: datetime) -> int:
        if not items:
            return 0
        due = _ts(now)
        rows = [
            (
                lrs,
                item.statement_id,
                item.instance_id,
                item.verb,
                _ts(item.enqueued_at),
                _ts_opt(item.received_at),
                item.attempts,
                _ts_opt(item.first_failure_at),
                item.last_error,
                due,
                item.body,
            )
            for item in items
        ]
        with self._write() as c:
            # DO NOTHING on the primary key: an id already waiting, or leased, keeps its one copy.
            cur = c.executemany(
                "INSERT INTO outbox (lrs, statement_id, instance_id, verb, enqueued_at,"
                " received_at, attempts, first_failure_at, last_error, due_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            return cur.rowcount

    def outbox_lease(
        self, lrs: str, *, max_items: int, lease_seconds: float, now: datetime
    ) -> Lease | None:
        if max_items <= 0:
            raise ValueError(f"max_items must be positive, got {max_items!r}")
        now_ts = _ts(now)
        expires_at = now.astimezone(UTC) + timedelta(seconds=lease_seconds)
        lease_id = uuid4().hex
        with self._write() as c:
            # An expired lease belongs to a worker that died or stalled: its items are due now.
            c.execute(
                "UPDATE outbox SET lease_id = NULL, lease_expires_at = NULL, due_at = ?"
                " WHERE lrs = ? AND lease_id IS NOT NULL AND lease_expires_at <= ?",
                (now_ts, lrs, now_ts),
            )
            due = c.execute(
                "SELECT statement_id FROM outbox"
                " WHERE lrs = ? AND lease_id IS NULL AND due_at <= ?"
                " ORDER BY due_at, rowid LIMIT ?",
                (lrs, now_ts, max_items),
            ).fetchall()
            # The same ordered prefix again, cut where the units run out (same transaction).
            take = units_prefix([r[0] for r in due], max_items)
            rows = c.execute(
                "UPDATE outbox SET lease_id = ?, lease_expires_at = ? WHERE rowid IN ("
                "  SELECT rowid FROM outbox WHERE lrs = ? AND lease_id IS NULL AND due_at <= ?"
                "  ORDER BY due_at, rowid LIMIT ?"
                ") RETURNING due_at, rowid, statement_id, instance_id, verb, enqueued_at,"
                " received_at, attempts, first_failure_at, last_error, body",
                (lease_id, _ts(expires_at), lrs, now_ts, take),
            ).fetchall()  # RETURNING rows must be read before COMMIT
        if not rows:
            return None
        # RETURNING gives no order guarantee; restore the lease order.
        rows.sort(key=lambda r: (r["due_at"], r["rowid"]))
        items = [
            OutboxItem(
                statement_id=r["statement_id"],
                body=r["body"],
                instance_id=r["instance_id"],
                verb=r["verb"],
                enqueued_at=_dt(r["enqueued_at"]),
                received_at=_dt_opt(r["received_at"]),
                attempts=r["attempts"],
                first_failure_at=_dt_opt(r["first_failure_at"]),
                last_error=r["last_error"],
            )
            for r in rows
        ]
        return Lease(lease_id=lease_id, lrs=lrs, items=items, expires_at=expires_at)

    def outbox_ack(self, lrs: str, lease_id: str, statement_ids: Sequence[str]) -> None:
        if not statement_ids:
            return
        # Unconditional on purpose: the LRS has confirmed these statements, so even if the lease
        # expired (and another worker holds them now) there is nothing left to deliver.
        with self._write() as c:
            c.executemany(
                "DELETE FROM outbox WHERE lrs = ? AND statement_id = ?",
                [(lrs, sid) for sid in statement_ids],
            )

    def outbox_release(
        self,
        lrs: str,
        lease_id: str,
        statement_ids: Sequence[str],
        *,
        not_before: datetime,
        error: str | None = None,
        count_attempt: bool = True,
        now: datetime,
    ) -> None:
        if not statement_ids:
            return
        failed = count_attempt or error is not None
        params = {
            "due": _ts(not_before),
            "inc": int(count_attempt),
            "failed": int(failed),
            "now": _ts(now),
            "error": error,
            "lrs": lrs,
            "lease": lease_id,
        }
        with self._write() as c:
            # `AND lease_id = :lease`: after an expiry another worker may hold the item, and
            # putting it back to ready would hand it out twice.
            c.executemany(
                "UPDATE outbox SET lease_id = NULL, lease_expires_at = NULL, due_at = :due,"
                " attempts = attempts + :inc,"
                " first_failure_at = CASE WHEN :failed THEN coalesce(first_failure_at, :now)"
                "                    ELSE first_failure_at END,"
                " last_error = coalesce(:error, last_error)"
                " WHERE lrs = :lrs AND statement_id = :sid AND lease_id = :lease",
                [{**params, "sid": sid} for sid in statement_ids],
            )

    def outbox_stats(self, lrs: str, *, now: datetime) -> OutboxStats:
        now_ts = _ts(now)
        # Each sub-select runs on its partial index; BEGIN makes both statements one snapshot.
        conn = self._conn()
        conn.execute("BEGIN")  # one read snapshot for both statements
        try:
            row = conn.execute(
                "SELECT"
                " (SELECT count(*) FROM outbox WHERE lrs = :lrs AND lease_id IS NULL),"
                " (SELECT count(*) FROM outbox WHERE lrs = :lrs AND lease_id IS NOT NULL"
                "   AND lease_expires_at <= :now),"
                " (SELECT count(*) FROM outbox WHERE lrs = :lrs AND lease_id IS NOT NULL"
                "   AND lease_expires_at > :now),"
                " (SELECT min(enqueued_at) FROM outbox WHERE lrs = :lrs)",
                {"lrs": lrs, "now": now_ts},
            ).fetchone()
            # Only the inbox's grouped items ("#k#...") weigh more than 1.
            weighted = conn.execute(
                "SELECT statement_id FROM outbox"
                " WHERE lrs = ? AND statement_id >= '#' AND statement_id < '$'",
                (lrs,),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        ready, expired, leased, oldest = row[0], row[1], row[2], row[3]
        held = int(ready) + int(expired) + int(leased)
        # An expired lease is waiting again in substance; the next lease call requeues it.
        return OutboxStats(
            ready=int(ready) + int(expired),
            leased=int(leased),
            oldest_enqueued_at=_dt_opt(oldest),
            weight=held + sum(item_weight(r[0]) - 1 for r in weighted),
        )

    def outbox_next_due(self, lrs: str) -> datetime | None:
        row = (
            self._conn()
            .execute(
                "SELECT"
                " (SELECT min(due_at) FROM outbox WHERE lrs = :lrs AND lease_id IS NULL),"
                # A leased item is due again when its lease expires (if its worker died).
                " (SELECT min(lease_expires_at) FROM outbox WHERE lrs = :lrs"
                "   AND lease_id IS NOT NULL)",
                {"lrs": lrs},
            )
            .fetchone()
        )
        candidates = [float(v) for v in (row[0], row[1]) if v is not None]
        return _dt(min(candidates)) if candidates else None

    # -- dead letters ----------------------------------------------------------------------------
    def dlq_add(self, letter: DeadLetter) -> None:
        with self._write() as c:
            c.execute(
                _DLQ_UPSERT,
                {
                    "id": letter.id,
                    "stage": letter.stage,
                    "lrs": letter.lrs,
                    "instance_id": letter.instance_id,
                    "statement_id": letter.statement_id,
                    "reason": letter.reason,
                    "detail": letter.detail,
                    "attempts": letter.attempts,
                    "first_at": _ts(letter.first_at),
                    "last_at": _ts(letter.last_at),
                    "envelope": json.dumps(letter.envelope, separators=(",", ":")),
                    "body": letter.body,
                    "stored_version": letter.stored_version,
                },
            )

    def dlq_list(self, flt: DeadLetterFilter) -> list[DeadLetter]:
        if flt.limit is not None and flt.limit < 0:
            raise ValueError(f"limit must not be negative, got {flt.limit!r}")
        params = {**_filter_params(flt), "limit": -1 if flt.limit is None else flt.limit}
        rows = self._conn().execute(_DLQ_LIST, params).fetchall()
        return [_letter_from_row(r) for r in rows]

    def dlq_get(self, letter_id: str) -> DeadLetter | None:
        flt_row = (
            self._conn()
            .execute(
                "SELECT id, stage, lrs, instance_id, statement_id, reason, detail, attempts,"
                " first_at, last_at, envelope, body, stored_version FROM dead_letters WHERE id = ?",
                (letter_id,),
            )
            .fetchone()
        )
        return None if flt_row is None else _letter_from_row(flt_row)

    def dlq_delete(self, letter_ids: Sequence[str]) -> int:
        if not letter_ids:
            return 0
        with self._write() as c:
            cur = c.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in letter_ids])
            return cur.rowcount

    def dlq_count(self, *, lrs: str | None = None, stage: str | None = None) -> int:
        params = _filter_params(DeadLetterFilter(lrs=lrs, stage=stage))
        row = self._conn().execute(_DLQ_COUNT, params).fetchone()
        return int(row[0])


def _kv_value(c: sqlite3.Connection, namespace: str, key: str, now: float) -> str | None:
    """The live value of a kv key (None when absent or expired at `now`)."""
    row = c.execute(
        "SELECT value FROM kv WHERE namespace = ? AND key = ?"
        " AND (expires_at IS NULL OR expires_at > ?)",
        (namespace, key, now),
    ).fetchone()
    return None if row is None else str(row[0])


def _kv_upsert(
    c: sqlite3.Connection, namespace: str, key: str, value: str, expires_at: float | None
) -> None:
    c.execute(
        "INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
        " expires_at = excluded.expires_at",
        (namespace, key, value, expires_at),
    )
