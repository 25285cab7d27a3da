"""The local destination (`type: local`): an embedded statement store with LRS semantics.

It lets a fresh install work end to end with no server, and lets admins dry-run a connector
before pointing it at a production LRS. It is reached through an httpx transport
(`LocalLrsTransport`), so delivery uses exactly the same LRS client, batching and response
classification as for a real LRS:

* POST statements: validates every statement (400 with the JSON path if one is invalid; the
  batch is atomic), stores new ids, answers 200 with the ids; an identical re-send is stored
  (200), a different statement under a stored id is 409.
* GET statements?statementId=: the bare statement or 404; otherwise a StatementResult, newest
  stored first, paged with `more`.

SQLite in WAL mode, safe for several processes (the worker writes, the web receiver reads).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

from hub.xapi.timefmt import format_timestamp
from hub.xapi.validation import validate_statement

_SCHEMA = """
CREATE TABLE IF NOT EXISTS statements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    verb TEXT NOT NULL,
    stored REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS statements_verb ON statements(verb);
"""

AUTHORITY = {
    "objectType": "Agent",
    "name": "lxhub local",
    "account": {"homePage": "https://lxhub.invalid", "name": "local"},
}


class LocalLrs:
    """A statement store on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        yield conn

    def store(self, statements: list[dict[str, Any]]) -> tuple[int, list[str] | str]:
        """Store a batch atomically: (200, ids) / (400|409, message)."""
        seen: set[str] = set()
        for index, st in enumerate(statements):
            issues = validate_statement(st)
            if issues:
                first = issues[0]
                return 400, f"statements[{index}] {first.path}: {first.message}"
            sid = st.get("id")
            if not isinstance(sid, str):
                return 400, f"statements[{index}]: the local LRS requires a statement id"
            if sid in seen:
                return 400, f"{sid} is duplicated in the batch"
            seen.add(sid)
        now = datetime.now(UTC).timestamp()
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for st in statements:
                    row = conn.execute(
                        "SELECT body FROM statements WHERE id = ?", (st["id"],)
                    ).fetchone()
                    if row is not None:
                        if json.loads(row[0]) != st:
                            conn.execute("ROLLBACK")
                            return 409, f"{st['id']} is conflicting"
                        continue
                    conn.execute(
                        "INSERT INTO statements (id, body, verb, stored) VALUES (?, ?, ?, ?)",
                        (st["id"], json.dumps(st, sort_keys=True), st["verb"]["id"], now),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return 200, [st["id"] for st in statements]

    def _present(self, body: str, stored: float) -> dict[str, Any]:
        st: dict[str, Any] = json.loads(body)
        st["stored"] = format_timestamp(datetime.fromtimestamp(stored, UTC))
        st["authority"] = AUTHORITY
        st.setdefault("version", "1.0.0")
        return st

    def get(self, statement_id: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT body, stored FROM statements WHERE id = ?", (statement_id,)
            ).fetchone()
        return None if row is None else self._present(row[0], row[1])

    def query(
        self, *, limit: int = 100, verb: str | None = None, before_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; returns the page and the seq to continue before (None: done)."""
        sql = "SELECT seq, body, stored FROM statements WHERE 1=1"
        args: list[Any] = []
        if verb:
            sql += " AND verb = ?"
            args.append(verb)
        if before_seq is not None:
            sql += " AND seq < ?"
            args.append(before_seq)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit + 1)
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        more = rows[limit - 1][0] if len(rows) > limit else None
        return [self._present(r[1], r[2]) for r in rows[:limit]], more

    def count(self) -> int:
        with self._conn() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM statements").fetchone()[0])


def _json(status: int, data: object) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", "X-Experience-API-Version": "1.0.3"},
    )


class LocalLrsTransport(httpx.BaseTransport):
    """Serves the xAPI statements resource of a `LocalLrs` to an httpx client, in process."""

    def __init__(self, lrs: LocalLrs) -> None:
        self.lrs = lrs

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.rstrip("/").endswith("statements"):
            return _json(404, {"message": "only the statements resource exists here"})
        if request.method == "POST":
            try:
                data = json.loads(request.read())
            except ValueError:
                return _json(400, {"message": "invalid JSON body"})
            batch = data if isinstance(data, list) else [data]
            if not all(isinstance(s, dict) for s in batch):
                return _json(400, {"message": "statements must be JSON objects"})
            status, result = self.lrs.store(batch)
            return _json(status, result if status == 200 else {"message": result})
        if request.method == "GET":
            return self.handle_get(request.url.query.decode())
        return _json(405, {"message": f"{request.method} not supported by the local LRS"})

    def handle_get(self, query: str) -> httpx.Response:
        params = {k: v[0] for k, v in parse_qs(query).items()}
        if "statementId" in params:
            st = self.lrs.get(params["statementId"])
            return _json(404, {"message": "not found"}) if st is None else _json(200, st)
        try:
            limit = max(1, min(int(params.get("limit", "100")), 1000))
            before = int(params["before"]) if "before" in params else None
        except ValueError:
            return _json(400, {"message": "limit and before must be integers"})
        page, more = self.lrs.query(limit=limit, verb=params.get("verb"), before_seq=before)
        more_url = ""
        if more is not None:
            rest = {k: v for k, v in params.items() if k != "before"}
            more_url = "/xapi/statements?" + urlencode({**rest, "before": more})
        return _json(200, {"statements": page, "more": more_url})
