"""The embedded broker (kombu's SQLAlchemy transport on SQLite) under `lxhub up`'s start.

`lxhub up` starts the receiver, the scheduler and the workers together, and each opens the
broker file on its first kick. On a new file they race to create kombu's tables and to switch
the file to WAL; before the fixes in `workers.embedded`, 10 of 15 rounds of 6 processes had a
process fail with "table kombu_queue already exists", unable to publish anything.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from kombu import Connection

PROCESSES = 6
ROUNDS = 3


def _publish(
    url: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    barrier.wait()
    try:
        with Connection(url, transport="workers.embedded:Transport",
                        transport_options={"polling_interval": 0.1}) as conn:  # fmt: skip
            queue = conn.SimpleQueue("celery")
            queue.put({"n": 1})
            queue.close()
        out.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        out.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_broker_file_at_once_all_publish(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # like `lxhub up`: fresh interpreters
    for round_ in range(ROUNDS):
        path = tmp_path / f"broker-{round_}.sqlite"
        barrier = ctx.Barrier(PROCESSES)
        out = ctx.Queue()
        procs = [ctx.Process(target=_publish, args=(f"sqlite:///{path}", barrier, out))
                 for _ in range(PROCESSES)]  # fmt: skip
        for p in procs:
            p.start()
        answers = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert answers == ["ok"] * PROCESSES
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("SELECT COUNT(*) FROM kombu_message").fetchone()[0] == PROCESSES
        db.close()
