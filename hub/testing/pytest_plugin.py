"""The lxhub pytest plugin (entry point `pytest11: lxhub`): fixtures for connector tests.

Registered in pyproject.toml, so any project that installs lxhub gets these fixtures with no
conftest. Without the installed distribution, load it explicitly:
`pytest_plugins = ["hub.testing.pytest_plugin"]`.

Fixtures:
    lxhub_clock           a `FrozenClock` at `hub.testing.DEFAULT_NOW`
    lxhub_respx           a started strict respx router (assert_all_called + assert_all_mocked)
    lxhub_no_network      real socket connections raise `NetworkBlocked`
    lxhub_store           the SQLite `Store` in the test's `tmp_path`
    lxhub_enqueuer        an in-memory `ListEnqueuer`
    lxhub_actor_resolver  a `StaticActorResolver` (IFI strategy `mbox`)
    lxhub_lrs             a `MockLrs` served by `lxhub_respx`

This module imports nothing from `hub` at import time: pytest loads entry-point plugins before
coverage starts, and an early import would hide module-level lines of `hub` from coverage.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from hub.clock import FrozenClock
    from hub.queue import ListEnqueuer
    from hub.store.base import Store
    from hub.testing.fixtures import MockLrs, StaticActorResolver, StrictRouter

# The kit's own modules use plain asserts with messages; let pytest rewrite them for diffs.
pytest.register_assert_rewrite("hub.testing.suite", "hub.testing.fixtures")


@pytest.fixture
def lxhub_clock() -> FrozenClock:
    """A `FrozenClock` at `DEFAULT_NOW`; move it with `.advance(seconds)` or `.set(dt)`."""
    from hub.testing.fixtures import DEFAULT_NOW, FrozenClock

    return FrozenClock(DEFAULT_NOW)


@pytest.fixture
def lxhub_no_network() -> Iterator[None]:
    """Block real network access for the test (respx-mocked httpx calls still work)."""
    from hub.testing.fixtures import block_network

    with block_network():
        yield


@pytest.fixture
def lxhub_respx(lxhub_no_network: None) -> Iterator[StrictRouter]:
    """A started strict respx router: unmocked requests fail at once; routes left uncalled
    fail at teardown. Real network access is blocked while it is active."""
    from hub.testing.fixtures import strict_router

    router = strict_router()
    router.start()
    try:
        yield router
    finally:
        router.stop(quiet=False)


@pytest.fixture
def lxhub_store(tmp_path: Path) -> Iterator[Store]:
    """The hub's SQLite store in a temporary directory, closed after the test."""
    from hub.testing.fixtures import temp_sqlite_store

    store = temp_sqlite_store(tmp_path)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def lxhub_enqueuer() -> ListEnqueuer:
    """An in-memory enqueuer; the enqueued events are in `.events`."""
    from hub.queue import ListEnqueuer

    return ListEnqueuer()


@pytest.fixture
def lxhub_actor_resolver() -> StaticActorResolver:
    """A no-I/O actor resolver using `mbox` (set `.strategy` / `.directory` as needed)."""
    from hub.testing.fixtures import StaticActorResolver

    return StaticActorResolver("mbox")


@pytest.fixture
def lxhub_lrs(lxhub_respx: StrictRouter) -> MockLrs:
    """A mocked LRS at `https://lrs.example.test/xapi` (POST statements is routed)."""
    from hub.testing.fixtures import MockLrs

    lrs = MockLrs()
    lrs.install(lxhub_respx)
    return lrs
