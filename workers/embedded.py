"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, with two fixes.

Fix 1: kombu passes every transport option to SQLAlchemy's `create_engine`, so the options every
virtual transport understands (`polling_interval`, which we lower from 1 s so each hop does not
add a second of latency, and `visibility_timeout`) make it fail. This subclass keeps them for
kombu and hands SQLAlchemy only what it knows. It also turns on SQLite's WAL mode so the web
receiver, the scheduler and the workers write the broker file concurrently without "database is
locked" errors.
"""

from __future__ import annotations

from typing import Any

from kombu.transport.sqlalchemy import Channel as _Channel
from kombu.transport.sqlalchemy import Transport as _Transport
from sqlalchemy import create_engine, event
from sqlalchemy.exc import IntegrityError

_KOMBU_ONLY = ("polling_interval", "visibility_timeout")


class Channel(_Channel):
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
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine


class Transport(_Transport):
    Channel = Channel
