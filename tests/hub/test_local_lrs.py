"""The local destination answers like an LRS, through the same client and delivery code."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx

from hub.clock import FrozenClock
from hub.delivery import deliver_once
from hub.local_lrs import LocalLrs, LocalLrsTransport
from hub.lrs import LrsClient, LrsTarget
from hub.store.base import OutboxItem
from hub.store.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def statement(verb: str = "completed", sid: str | None = None) -> dict[str, object]:
    return {
        "id": sid or str(uuid4()),
        "actor": {"mbox": "mailto:ada@example.com"},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}", "display": {"en-US": verb}},
        "object": {"id": "https://lrs-hub.example.com/xapi/activities/x/y/course/1"},
        "timestamp": "2024-05-01T12:00:00.000Z",
    }


def client(lrs: LocalLrs) -> httpx.Client:
    return httpx.Client(transport=LocalLrsTransport(lrs), base_url="http://local/xapi/")


def test_store_identical_resend_and_conflict(tmp_path: Path) -> None:
    lrs = LocalLrs(tmp_path / "lrs.sqlite")
    st = statement()
    with client(lrs) as c:
        headers = {"X-Experience-API-Version": "1.0.3"}
        assert c.post("statements", json=[st], headers=headers).json() == [st["id"]]
        assert c.post("statements", json=[st], headers=headers).status_code == 200
        changed = {**st, "verb": {"id": "http://adlnet.gov/expapi/verbs/passed"}}
        assert c.post("statements", json=[changed], headers=headers).status_code == 409
        got = c.get("statements", params={"statementId": st["id"]}).json()
        assert got["verb"]["id"].endswith("/completed")
        assert "stored" in got
        assert "authority" in got
        assert c.get("statements", params={"statementId": str(uuid4())}).status_code == 404
    assert lrs.count() == 1


def test_batch_is_atomic_and_invalid_is_400_with_path(tmp_path: Path) -> None:
    lrs = LocalLrs(tmp_path / "lrs.sqlite")
    bad = statement()
    bad["actor"] = {"mbox": "ada@example.com"}
    with client(lrs) as c:
        r = c.post("statements", json=[statement(), bad])
        assert r.status_code == 400
        assert "statements[1]" in r.json()["message"]
        assert "actor" in r.json()["message"]
    assert lrs.count() == 0


def test_query_pages_newest_first(tmp_path: Path) -> None:
    lrs = LocalLrs(tmp_path / "lrs.sqlite")
    ids = [str(uuid4()) for _ in range(5)]
    for sid in ids:
        lrs.store([statement(sid=sid)])
    with client(lrs) as c:
        seen: list[str] = []
        page = c.get("statements", params={"limit": 2}).json()
        while True:
            seen += [s["id"] for s in page["statements"]]
            if not page["more"]:
                break
            page = c.get("http://local" + page["more"]).json()
    assert seen == list(reversed(ids))


def test_delivery_into_the_local_lrs_via_the_real_client(tmp_path: Path) -> None:
    lrs = LocalLrs(tmp_path / "lrs.sqlite")
    store = SqliteStore(tmp_path / "state.sqlite")
    items = [
        OutboxItem(
            statement_id=str(st["id"]),
            body=json.dumps(st).encode(),
            instance_id="i",
            verb="v",
            enqueued_at=T0,
        )
        for st in (statement() for _ in range(3))
    ]
    store.outbox_append("local", items, now=T0)
    lrs_client = LrsClient(
        LrsTarget(name="local", endpoint="http://local/xapi/", token="t"),
        http=httpx.Client(transport=LocalLrsTransport(lrs)),
    )
    report = deliver_once(
        store=store,
        lrs_name="local",
        client=lrs_client,
        clock=FrozenClock(T0),
        batch_size=100,
        max_batch_wait=0,
        lease_seconds=30,
        retry_horizon=3600,
        rng=random.Random(1),
    )
    assert report.stored == 3
    assert lrs.count() == 3
    assert store.outbox_stats("local", now=T0).ready == 0
