"""SQLite-only behaviour: URLs, files, threads and forked processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from hub.store.sqlite import SqliteStore


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
