"""SQLite-only behaviour: URLs, files, threads and forked processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from hub.store.sqlite import SqliteStore, ensure_wal


def test_from_url_and_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = tmp_path / "sub" / "state.db"
    store = SqliteStore.from_url(f"sqlite:///{absolute}")  # "sqlite:////abs/path" form
    store.set_cursor("i", "v")
    store.close()
    with sqlite3.connect(absolute) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()

    monkeypatch.chdir(tmp_path)
    relative = SqliteStore.from_url("sqlite:///rel.db")
    assert relative.ping()
    relative.close()
    assert (tmp_path / "rel.db").exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "redis://x"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite|in-memory"):
        SqliteStore.from_url(url)


class _LockedAtFirst:
    """A connection whose first `journal_mode` pragmas answer "database is locked", as SQLite
    does (without calling the busy handler) while another connection switches a new file."""

    def __init__(self, conn: sqlite3.Connection, failures: int) -> None:
        self._conn = conn
        self.failures = failures

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if "journal_mode" in sql and self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return self._conn.execute(sql, *args)


def test_a_locked_answer_while_switching_to_wal_is_retried(tmp_path: Path) -> None:
    fresh = sqlite3.connect(tmp_path / "other.db", isolation_level=None)
    flaky = _LockedAtFirst(fresh, failures=3)
    ensure_wal(flaky, "other.db", timeout=5)  # type: ignore[arg-type]
    assert flaky.failures == 0
    assert fresh.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    fresh.close()


def test_a_lock_that_outlasts_the_timeout_still_fails(tmp_path: Path) -> None:
    fresh = sqlite3.connect(tmp_path / "other.db", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        ensure_wal(_LockedAtFirst(fresh, failures=10_000), "other.db", timeout=0.05)  # type: ignore[arg-type]
    fresh.close()


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    class Broken:
        calls = 0

        def execute(self, sql: str) -> sqlite3.Cursor:
            Broken.calls += 1
            raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk"):
        ensure_wal(Broken(), "x.db", timeout=5)  # type: ignore[arg-type]
    assert Broken.calls == 1


def test_many_processes_worth_of_stores_open_one_new_file_at_once(tmp_path: Path) -> None:
    # What `lxhub up` does at start: receiver, worker and scheduler open the same new file.
    for round_ in range(10):
        path = tmp_path / f"state-{round_}.db"
        barrier = threading.Barrier(12)
        errors: list[BaseException] = []

        def open_and_write(
            n: int,
            path: Path = path,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                store = SqliteStore(path)
                store.kv_set("ns", str(n), "v")
                store.close()
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        check = SqliteStore(path)
        assert len(check.kv_items("ns")) == 12
        check.close()


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(50):
                store.incr("metrics", "n")
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.incr("metrics", "n", 0) == 200
    store.close()


def _bump_in_child(store: SqliteStore) -> None:
    store.incr("metrics", "forked")
    store.close()


def test_a_forked_child_gets_its_own_connection(tmp_path: Path) -> None:
    # Celery prefork: the store is built in the parent and used in the children.
    store = SqliteStore(tmp_path / "state.db")
    store.incr("metrics", "forked")
    child = multiprocessing.get_context("fork").Process(target=_bump_in_child, args=(store,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert store.incr("metrics", "forked", 0) == 2  # the parent's connection still works
    store.close()
