"""The real `lxhub serve` process receives webhooks for the generic connector on a real Redis.

The hub is configured by tests/integration/hubproc.py (one Learning Locker LRS, the `acme-coach`
instance of the generic webhook connector on the `example-coaching` preset: HMAC-SHA256 over
``{timestamp}.{body}``, a 300 s window) with a Redis broker and store. Only the receiver runs: no
worker drains the store's ingest inbox, so what the receiver enqueued stays there, and the test
reads it with a `RedisStore` on the same store URL.

Redis isolation: the harness's shared databases (hubproc.BROKER_DB / STORE_DB) are flushed by every
hub test that starts and drained by every worker of those tests, so a concurrent run (or a worker
left over from an interrupted one) takes this test's events off the inbox: the receiver's kick
goes to the shared broker and a foreign worker drains the shared store. This test therefore puts
its hub on two databases of its own (PRIVATE_DBS), named in hub.yaml like a deployment's Redis,
and flushes only those.

Signed, re-sent, unsigned, wrongly signed, tampered, stale, oversized, malformed, wrongly typed
and misaddressed webhooks are sent over real sockets; every answer's status is checked, then the
inbox must hold exactly the valid distinct deliveries, each once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from hub.events import SourceEvent
from hub.inbox import INBOX, from_item
from hub.store.redis import RedisStore
from hub.testing.lrs_servers import LrsServer
from tests.integration.hubproc import (
    BROKER_DB,
    STORE_DB,
    Hub,
    acme_connector,
    session_event,
    signed,
    wait_until,
    write_hub,
)

pytestmark = pytest.mark.integration

INSTANCE = "acme-coach"
REDIS = "redis://127.0.0.1:6379"
PRIVATE_DBS = {"broker_url": 11, "store_url": 12}  # apart from the harness's shared ones
assert not set(PRIVATE_DBS.values()) & {0, BROKER_DB, STORE_DB}
STORE_URL = f"{REDIS}/{PRIVATE_DBS['store_url']}"
MAX_BODY = 1_048_576  # the receiver's default cap (hub.yaml web.max_body_bytes)
STALE = 600  # seconds: twice the preset's 300 s replay window


@pytest.fixture
def hub(tmp_path: Path, learning_locker: LrsServer) -> Iterator[Hub]:
    lrs = {
        "name": "ll",
        "endpoint": learning_locker.endpoint,
        "username": learning_locker.username,
        "password": learning_locker.password,
    }
    # backend="sqlite" only keeps write_hub from flushing the shared databases; the Redis URLs
    # written just below are what the hub runs on.
    hub = write_hub(tmp_path, backend="sqlite", lrs=[lrs], connectors=[acme_connector(INSTANCE)])
    config = hub.config_dir / "hub.yaml"
    settings = yaml.safe_load(config.read_text())
    settings.update({key: f"{REDIS}/{db}" for key, db in PRIVATE_DBS.items()})
    config.write_text(yaml.safe_dump(settings))
    _flush_private()
    try:
        hub.start("serve", "--port", str(hub.port))  # no worker: the inbox is not drained
        wait_until(hub.ready, timeout=30, what="the receiver's /readyz", hub=hub)
        yield hub
    finally:
        hub.stop()
        _flush_private()


def _flush_private() -> None:
    for db in PRIVATE_DBS.values():
        with redis.Redis.from_url(f"{REDIS}/{db}") as client:
            client.flushdb()


@pytest.fixture
def store() -> Iterator[RedisStore]:
    store = RedisStore.from_url(STORE_URL)  # the hub's default key prefix
    yield store
    store.close()


def _body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def _post(
    client: httpx.Client, body: bytes, headers: dict[str, str], *, instance: str = INSTANCE
) -> int:
    return client.post(f"/webhooks/{instance}", content=body, headers=headers).status_code


def _inbox(store: RedisStore) -> list[SourceEvent]:
    """Every raw event in the ingest inbox, leased once (nobody else drains it)."""
    lease = store.outbox_lease(INBOX, max_items=100, lease_seconds=5, now=datetime.now(UTC))
    if lease is None:
        return []
    ids = [item.statement_id for item in lease.items]
    assert len(ids) == len(set(ids)), ids
    events = [e for item in lease.items for e in from_item(item)]
    keys = [f"{e.instance_id}:{e.delivery_id}" for e in events]
    assert len(keys) == len(set(keys)), keys
    if len(events) == len(ids):  # one event per item: the item id is the event's
        assert keys == ids
    return events


def test_only_valid_webhooks_are_enqueued_each_once(hub: Hub, store: RedisStore) -> None:
    tag = uuid.uuid4().hex[:8]
    valid = [session_event(n, tag) for n in range(3)]
    bad = iter(session_event(n, f"{tag}bad") for n in range(100))  # one distinct id per reject
    results: dict[str, tuple[int | list[int], int | tuple[int, ...]]] = {}

    with httpx.Client(base_url=hub.url, timeout=30) as client:
        for n, event in enumerate(valid):
            body = _body(event)
            headers = signed(body)
            results[f"valid {n}"] = (_post(client, body, headers), 202)
            # The same request again (a sender's retry of the very same bytes and headers) ...
            results[f"valid {n}, same again"] = (_post(client, body, headers), (200, 202, 204))
            # ... and the same delivery re-signed later, as a vendor's retry queue does.
            results[f"valid {n}, re-signed"] = (
                _post(client, body, signed(body, at=int(headers["X-AcmeCoach-Timestamp"]) + 1)),
                (200, 202, 204),
            )
        # Eight copies of a new delivery at once: one enqueue, whoever wins the race.
        racing = _body(session_event(99, tag))
        with ThreadPoolExecutor(max_workers=8) as pool:
            raced = list(pool.map(lambda _: _post(client, racing, signed(racing)), range(8)))
        results["8 concurrent copies"] = (raced, 202)

        body = _body(next(bad))
        results["unsigned"] = (_post(client, body, {"Content-Type": "application/json"}), 401)
        body = _body(next(bad))
        results["wrong secret"] = (_post(client, body, signed(body, secret="not-the-secret")), 401)
        body, other = _body(next(bad)), _body(next(bad))
        results["signature of another body"] = (_post(client, body, signed(other)), 401)
        body = _body(next(bad))
        headers = signed(body)
        headers["X-AcmeCoach-Signature"] = "sha256=" + "0" * 64
        results["forged signature"] = (_post(client, body, headers), 401)
        body = _body(next(bad))
        stale = int(datetime.now(UTC).timestamp()) - STALE
        results["stale timestamp"] = (_post(client, body, signed(body, at=stale)), 401)
        body = _body(next(bad))
        future = int(datetime.now(UTC).timestamp()) + STALE
        results["timestamp from the future"] = (_post(client, body, signed(body, at=future)), 401)

        big = next(bad)
        big["data"]["session"]["notes"] = "x" * MAX_BODY  # valid JSON, correctly signed
        body = _body(big)
        assert len(body) > MAX_BODY
        results["oversized"] = (_post(client, body, signed(body)), 413)
        body = _body(next(bad))
        results["malformed JSON"] = (_post(client, body[:-7], signed(body[:-7])), 400)
        body = b"[1, 2"
        results["truncated array"] = (_post(client, body, signed(body)), 400)
        body = _body(next(bad))
        headers = signed(body)
        headers["Content-Type"] = "text/plain"
        results["wrong content type"] = (_post(client, body, headers), 415)
        body = _body(next(bad))
        results["unknown connector id"] = (
            _post(client, body, signed(body), instance="no-such-coach"),
            404,
        )

    def ok(got: int | list[int], want: int | tuple[int, ...]) -> bool:
        wanted = want if isinstance(want, tuple) else (want,)
        return all(code in wanted for code in (got if isinstance(got, list) else [got]))

    wrong = {what: got_want for what, got_want in results.items() if not ok(*got_want)}
    assert not wrong, f"unexpected statuses (got, expected): {wrong}\n{hub.tail('serve')}"

    # The inbox: exactly the valid distinct deliveries, each once, nothing of the rejects.
    expected = sorted([e["id"] for e in valid] + [f"evt_{tag}_000099"])
    stats = store.outbox_stats(INBOX, now=datetime.now(UTC))
    assert (stats.ready, stats.leased) == (len(expected), 0), (stats, hub.tail("serve"))
    events = _inbox(store)
    assert sorted(e.delivery_id or "" for e in events) == expected
    payload_ids = sorted(str(e.payload["id"]) for e in events if isinstance(e.payload, dict))
    assert payload_ids == expected
    assert all(e.instance_id == INSTANCE for e in events)
    assert all(e.event_type == "session.completed" for e in events)
    assert all(e.via == "webhook" for e in events)
    # What was enqueued is what was sent (the payload of the first valid delivery, verbatim).
    first = next(e for e in events if e.delivery_id == valid[0]["id"])
    assert first.payload == valid[0]
    stats = store.outbox_stats(INBOX, now=datetime.now(UTC))
    assert (stats.ready, stats.leased) == (0, len(expected)), stats
