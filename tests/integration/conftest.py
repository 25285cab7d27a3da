"""Session-wide real LRSs for the integration tests (installed by `bash .ci/install-lrs`).

Nothing here skips: an LRS that is not installed makes its fixture fail with the install hint,
because CI installs both before running the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.testing.lrs_servers import LrsServer, start_learning_locker, start_ralph, stop_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _serve(start: Callable[[], LrsServer], what: str) -> Iterator[LrsServer]:
    server: LrsServer | None = None
    try:
        server = start()
    except RuntimeError as exc:
        error = str(exc)
    if server is None:  # fail outside the except block: no chained traceback noise
        pytest.fail(f"could not start {what}: {error}", pytrace=False)
    try:
        yield server
    finally:
        stop_server(server)


# Module scope: each test module gets fresh servers (about 1 s and 5 s to start), so one
# module's thousands of statements never slow the next module's reads and waits.
@pytest.fixture(scope="module")
def learning_locker() -> Iterator[LrsServer]:
    """Learning Locker's statement service, in memory; accepts any credentials."""
    yield from _serve(lambda: start_learning_locker(PROJECT_ROOT), "Learning Locker")


@pytest.fixture(scope="module")
def ralph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrsServer]:
    """Ralph with the fs backend (APPEND fix) storing under a session temp dir; user hub."""
    data_dir = tmp_path_factory.mktemp("ralph-data")
    yield from _serve(lambda: start_ralph(PROJECT_ROOT, data_dir), "Ralph")
