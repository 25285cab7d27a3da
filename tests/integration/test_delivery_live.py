"""The delivery guarantee with real parts: real Redis (or the embedded SQLite default), real
`lxhub serve` / `lxhub worker` / `lxhub beat` processes, real LRSs (Learning Locker's statement
service, Ralph), and a fault-injecting proxy in front of the LRS where a failure is needed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hub.testing.lrs_servers import LrsServer, read_statements
from tests.integration.faultproxy import FaultProxy, Plan
from tests.integration.hubproc import Hub, send_events, wait_until, write_hub

pytestmark = pytest.mark.integration

BACKENDS = ["redis", "sqlite"]


def lrs_entry(name: str, endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint": endpoint,
        "username": "hub",
        "password": "hub-secret",
        "batch_size": 10,
        "max_batch_wait": 0.3,
        "timeout": 10,
        **extra,
    }


def ours(server: LrsServer, tag: str) -> list[dict[str, Any]]:
    """The statements of this test in the LRS (shared by this module), by the session ids."""
    # One large page: following `more` cursors while statements are being stored was seen to
    # miss some on Learning Locker (its cursor is its sort key, the `stored` time).
    everything = read_statements(server, limit=1000)
    return [s for s in everything if f"/session/ses_{tag}_" in s["object"]["id"]]


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def running() -> Iterator[list[Hub]]:
    hubs: list[Hub] = []
    yield hubs
    for hub in hubs:
        hub.stop()


def start(running: list[Hub], hub: Hub) -> Hub:
    running.append(hub)
    hub.start_all()
    return hub


def dead_letters(hub: Hub) -> list[dict[str, Any]]:
    out = hub.lxhub("dlq", "list", "--json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("backend", BACKENDS)
def test_n_events_become_exactly_n_statements_even_when_sent_twice(
    backend: str, tmp_path: Path, learning_locker: LrsServer, running: list[Hub], tag: str
) -> None:
    hub = start(
        running,
        write_hub(tmp_path, backend=backend, lrs=[lrs_entry("ll", learning_locker.endpoint)]),
    )
    n = 30
    assert send_events(hub, range(n), tag=tag) == [202] * n
    wait_until(
        lambda: len(ours(learning_locker, tag)) == n,
        timeout=120,
        what=f"{n} statements in Learning Locker",
        hub=hub,
    )
    assert send_events(hub, range(n), tag=tag) == [202] * n  # the same deliveries again
    time.sleep(3)
    stored = ours(learning_locker, tag)
    assert len(stored) == n
    assert len({s["id"] for s in stored}) == n
    assert {s["actor"]["mbox"] for s in stored} <= {
        f"mailto:learner{i}@example.com" for i in range(50)
    }
    assert dead_letters(hub) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_lrs_503_for_a_while_then_recovers_all_delivered_none_twice(
    backend: str, tmp_path: Path, learning_locker: LrsServer, running: list[Hub], tag: str
) -> None:
    with FaultProxy(learning_locker.origin) as proxy:
        proxy.set(Plan(mode="status", status=503))
        hub = start(
            running,
            write_hub(tmp_path, backend=backend, lrs=[lrs_entry("ll", proxy.url + "/xAPI/")]),
        )
        send_events(hub, range(20), tag=tag)
        wait_until(
            lambda: proxy.statuses().count(503) >= 3, timeout=120, what="three 503s", hub=hub
        )
        assert ours(learning_locker, tag) == []
        proxy.set(Plan())
        wait_until(
            lambda: len(ours(learning_locker, tag)) == 20,
            timeout=120,
            what="delivery after recovery",
            hub=hub,
        )
        assert 409 not in proxy.statuses()
        assert dead_letters(hub) == []


def test_429_retry_after_is_honoured(
    tmp_path: Path, learning_locker: LrsServer, running: list[Hub], tag: str
) -> None:
    with FaultProxy(learning_locker.origin) as proxy:
        proxy.set(Plan(mode="status", status=429, headers={"Retry-After": "4"}, remaining=1))
        hub = start(
            running,
            write_hub(tmp_path, backend="redis", lrs=[lrs_entry("ll", proxy.url + "/xAPI/")]),
        )
        send_events(hub, range(5), tag=tag)
        wait_until(
            lambda: len(ours(learning_locker, tag)) == 5, timeout=120, what="delivery", hub=hub
        )
        posts = [(t, status) for t, method, path, status in proxy.log if method == "POST"]
        assert posts[0][1] == 429
        assert posts[1][0] - posts[0][0] >= 3.9  # waited as told, not sooner


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_with_one_invalid_statement_others_stored_bad_one_dead_lettered(
    backend: str, tmp_path: Path, learning_locker: LrsServer, running: list[Hub], tag: str
) -> None:
    """A statement our validator let through but the LRS refuses (here: written into the outbox
    by hand, as an older hub version might have) is isolated by bisection."""
    from datetime import UTC, datetime

    from hub.runtime import HubRuntime
    from hub.store.base import OutboxItem

    hub = write_hub(tmp_path, backend=backend, lrs=[lrs_entry("ll", learning_locker.endpoint)])
    rt = HubRuntime.from_config_dir(hub.config_dir, env=hub.env)
    now = datetime.now(UTC)
    good = [_statement(tag, i) for i in range(6)]
    bad = _statement(tag, 99)
    bad["actor"] = {"mbox": "not-a-mailto@example.com"}
    items = [
        OutboxItem(
            statement_id=s["id"],
            body=json.dumps(s).encode(),
            instance_id="t",
            verb=s["verb"]["id"],
            enqueued_at=now,
        )
        for s in [*good[:3], bad, *good[3:]]
    ]
    rt.store.outbox_append("ll", items, now=now)
    rt.close()
    start(running, hub)
    wait_until(
        lambda: len(ours(learning_locker, tag)) == 6, timeout=120, what="the good six", hub=hub
    )
    letters = dead_letters(hub)
    assert [d["statement_id"] for d in letters] == [bad["id"]]
    assert letters[0]["reason"] == "lrs_rejected"
    assert "mbox" in letters[0]["detail"]  # the LRS's own message


def _statement(tag: str, i: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}-{i}")),
        "actor": {"mbox": f"mailto:learner{i}@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"en-US": "attended"}},
        "object": {"id": f"https://lrs-hub.example.com/xapi/activities/t/t/session/ses_{tag}_{i}"},
        "timestamp": "2024-05-03T15:00:00.000Z",
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_conflicting_statement_only_it_is_dead_lettered_with_both_versions(
    backend: str, tmp_path: Path, learning_locker: LrsServer, running: list[Hub], tag: str
) -> None:
    hub = start(
        running,
        write_hub(tmp_path, backend=backend, lrs=[lrs_entry("ll", learning_locker.endpoint)]),
    )
    send_events(hub, [0], tag=tag)
    wait_until(lambda: len(ours(learning_locker, tag)) == 1, timeout=120, what="the first", hub=hub)
    # Someone else stores a DIFFERENT statement under the id event 1 will get (derived exactly as
    # the hub derives it: the preset's natural key, positional names k1, k2).
    from hub.xapi.ids import natural_key, statement_id, statement_namespace

    key = natural_key(
        source="webhook:acmecoach",
        tenant="acme",
        verb_key="attended",
        parts=[("k1", f"ses_{tag}_000001"), ("k2", "u_1")],
    )
    sid = str(statement_id(statement_namespace("https://lrs-hub.example.com/xapi"), key))
    squatter = _statement(tag, 1) | {"id": sid}
    squatter["verb"] = {"id": "http://adlnet.gov/expapi/verbs/failed", "display": {"en-US": "x"}}
    r = httpx.post(
        learning_locker.statements_url,
        json=[squatter],
        headers={"X-Experience-API-Version": "1.0.3"},
        auth=learning_locker.auth,
    )
    assert r.status_code == 200
    send_events(hub, range(1, 8), tag=tag)
    wait_until(
        lambda: len(ours(learning_locker, tag)) == 8, timeout=120, what="the others", hub=hub
    )
    letters = dead_letters(hub)
    assert [d["statement_id"] for d in letters] == [sid], letters
    assert letters[0]["reason"] == "conflict"
    shown = hub.lxhub("dlq", "show", letters[0]["id"])
    assert "failed" in shown.stdout  # the version the LRS holds ...
    assert "attended" in shown.stdout  # ... and ours: both kept


@pytest.mark.parametrize("backend", BACKENDS)
def test_worker_killed_mid_delivery_everything_delivered_exactly_once(
    backend: str, tmp_path: Path, learning_locker: LrsServer, running: list[Hub], tag: str
) -> None:
    with FaultProxy(learning_locker.origin) as proxy:
        proxy.set(Plan(mode="slow", delay=4.0))
        hub = start(
            running,
            write_hub(tmp_path, backend=backend, lrs=[lrs_entry("ll", proxy.url + "/xAPI/")]),
        )
        send_events(hub, range(10), tag=tag)
        wait_until(lambda: proxy.inflight > 0, timeout=30, what="a delivery in flight", hub=hub)
        hub.kill("worker")  # SIGKILL the whole worker process group mid-request
        time.sleep(4.5)  # the proxy forwards the request it already had: the LRS may store it
        proxy.set(Plan())
        hub.start("worker")
        wait_until(
            lambda: len(ours(learning_locker, tag)) == 10,
            timeout=120,
            what="delivery by the new worker after the lease expired",
            hub=hub,
        )
        stored = ours(learning_locker, tag)
        assert len({s["id"] for s in stored}) == 10
        assert 409 not in proxy.statuses()  # re-sent bytes were identical
        assert dead_letters(hub) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_401_pauses_the_lrs_nothing_lost_and_resumes_after_credentials_fixed(
    backend: str, tmp_path: Path, ralph: LrsServer, running: list[Hub], tag: str
) -> None:
    hub = write_hub(
        tmp_path,
        backend=backend,
        lrs=[lrs_entry("ralph", ralph.endpoint, password="wrong-password")],
        delivery={"probe_interval": 1.0},
    )
    start(running, hub)
    send_events(hub, range(6), tag=tag)
    status: dict[str, Any] = {}

    def paused() -> bool:
        nonlocal status
        r = httpx.get(hub.url + "/api/status", headers={"Authorization": "Bearer admin-token"})
        status = r.json()
        return bool(status["lrs"][0]["paused"])

    wait_until(paused, timeout=120, what="the LRS paused", hub=hub)
    assert status["lrs"][0]["backlog"] + status["lrs"][0]["in_flight"] == 6
    assert dead_letters(hub) == []
    # The admin fixes the password and restarts the workers.
    cfg = yaml.safe_load((hub.config_dir / "hub.yaml").read_text())
    cfg["lrs"][0]["password"] = "hub-secret"
    (hub.config_dir / "hub.yaml").write_text(yaml.safe_dump(cfg))
    hub.kill("worker", 15)
    hub.start("worker")
    wait_until(
        lambda: len(ours(ralph, tag)) == 6, timeout=150, what="delivery after the fix", hub=hub
    )


def test_two_lrs_one_down_the_other_receives_everything_on_time(
    tmp_path: Path, learning_locker: LrsServer, ralph: LrsServer, running: list[Hub], tag: str
) -> None:
    with FaultProxy(ralph.origin) as proxy:
        proxy.set(Plan(mode="status", status=503))
        hub = start(
            running,
            write_hub(
                tmp_path,
                backend="redis",
                lrs=[
                    lrs_entry("ll", learning_locker.endpoint),
                    lrs_entry("ralph", proxy.url + "/xAPI/"),
                ],
            ),
        )
        started = time.monotonic()
        send_events(hub, range(20), tag=tag)
        wait_until(
            lambda: len(ours(learning_locker, tag)) == 20,
            timeout=30,
            what="Learning Locker served while Ralph is down",
            hub=hub,
        )
        assert time.monotonic() - started < 15
        assert ours(ralph, tag) == []
        proxy.set(Plan())
        wait_until(
            lambda: len(ours(ralph, tag)) == 20, timeout=150, what="Ralph catching up", hub=hub
        )
