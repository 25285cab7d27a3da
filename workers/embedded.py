"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, with fixes.

* kombu passes every transport option to SQLAlchemy's `create_engine`, so the options every
  virtual transport understands (`polling_interval`, which we lower from 1 s so each hop does
  not add a second of latency, and `visibility_timeout`) make it fail. This subclass keeps them
  for kombu and hands SQLAlchemy only what it knows.
* The file is switched to WAL (`hub.store.sqlite.ensure_wal`) so the web receiver, the scheduler
  and the workers write it concurrently without "database is locked" errors.
* `lxhub up` starts those processes together, and on a new file they race to create kombu's
  tables and its queue rows, which kombu guards with a per-process mutex only: the losers are
  recovered (`_open`, `_get_or_create`) instead of failing every later publish.
"""

from __future__ import annotations

from typing import Any

from kombu.transport.sqlalchemy import Channel as _Channel
from kombu.transport.sqlalchemy import Transport as _Transport
from sqlalchemy import create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError

from hub.store.sqlite import ensure_wal

_KOMBU_ONLY = ("polling_interval", "visibility_timeout")
_OPEN_ATTEMPTS = 5


class Channel(_Channel):
    def _open(self) -> Any:
        # kombu creates its tables on first use, guarded by a per-process mutex only. When the
        # receiver, the scheduler and a worker start together on a new broker file (`lxhub
        # up`), a loser's CREATE TABLE fails with "table ... already exists" and that process
        # cannot publish at all. Open again: SQLAlchemy then finds the tables and skips them.
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                return super()._open()  # type: ignore[no-untyped-call]
            except OperationalError as exc:
                if "already exists" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_or_create(self, queue: str) -> Any:
        # kombu guards queue creation with a per-process mutex only. When two processes (the
        # scheduler and a worker) create the same queue at once, the loser's INSERT raises
        # IntegrityError, which kombu does not catch: its session then stays in a failed
        # transaction and every later publish from that process fails. Roll back and read the
        # row the other process created.
        try:
            return super()._get_or_create(queue)  # type: ignore[no-untyped-call]
        except IntegrityError:
            self.session.rollback()
            return self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).one()

    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        options = {
            k: v
            for k, v in conninfo.transport_options.items()
            if k
            not in {
                *_KOMBU_ONLY,
                "queue_tablename",
                "message_tablename",
                "callback",
                "errback",
                "max_retries",
                "interval_start",
                "interval_step",
                "interval_max",
                "retry_errors",
            }
        }
        options.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(conninfo.hostname, **options)

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA busy_timeout=30000")
            # Retried while another process creates or switches the file (see ensure_wal).
            ensure_wal(dbapi_connection, conninfo.hostname, timeout=30.0)

        return engine


class Transport(_Transport):
    Channel = Channel
