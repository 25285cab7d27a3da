"""`lxhub up` on the embedded default (SQLite broker and store, nothing to install): one command
runs receiver, worker and scheduler; SIGTERM stops the whole tree cleanly; work still queued at
that moment is delivered after the next start, exactly once."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest

from hub.testing.lrs_servers import LrsServer
from tests.integration.faultproxy import FaultProxy, Plan
from tests.integration.hubproc import Hub, send_events, wait_until, write_hub
from tests.integration.test_delivery_live import dead_letters, lrs_entry, ours

pytestmark = pytest.mark.integration


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def sigterm_and_wait(hub: Hub) -> int:
    """SIGTERM to `lxhub up` only (as `docker stop` does); it must stop its children itself."""
    proc = hub.procs.pop("up")
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    wait_until(lambda: not group_alive(proc.pid), timeout=30, what="every child of lxhub up")
    return code


def test_up_runs_everything_and_stop_keeps_queued_work(
    tmp_path: Path, learning_locker: LrsServer
) -> None:
    tag = uuid.uuid4().hex[:8]
    with FaultProxy(learning_locker.origin) as proxy:
        hub = write_hub(tmp_path, backend="sqlite", lrs=[lrs_entry("ll", proxy.url + "/xAPI/")])
        try:
            hub.start("up")
            wait_until(hub.ready, timeout=60, what="the receiver of lxhub up", hub=hub)
            assert send_events(hub, range(10), tag=tag) == [202] * 10
            wait_until(
                lambda: len(ours(learning_locker, tag)) == 10,
                timeout=90,
                what="10 statements through lxhub up",
                hub=hub,
            )

            # The LRS goes down; new events are accepted and wait in the outbox.
            proxy.set(Plan(mode="status", status=503))
            assert send_events(hub, range(10, 25), tag=tag) == [202] * 15
            wait_until(
                lambda: proxy.statuses().count(503) >= 1,
                timeout=60,
                what="a delivery attempt against the failing LRS",
                hub=hub,
            )
            assert sigterm_and_wait(hub) == 0
            assert len(ours(learning_locker, tag)) == 10

            # Next start with the LRS back: everything queued is delivered, nothing twice.
            proxy.set(Plan())
            hub.start("up")
            wait_until(hub.ready, timeout=60, what="lxhub up again", hub=hub)
            wait_until(
                lambda: len(ours(learning_locker, tag)) == 25,
                timeout=120,
                what="the 15 queued statements after the restart",
                hub=hub,
            )
            stored = ours(learning_locker, tag)
            assert len({s["id"] for s in stored}) == 25
            assert dead_letters(hub) == []
            assert sigterm_and_wait(hub) == 0
        finally:
            hub.stop()
