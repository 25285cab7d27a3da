"""The real web receiver over real sockets, with a real Redis store and a Redis-backed queue.

uvicorn serves `hub.web.create_app` on a free port in a background thread; the dedupe keys live
in the machine's Redis through `RedisStore` (a private key prefix, deleted afterwards), and the
queue is a Redis list the enqueuer RPUSHes each envelope's `model_dump_json()` to, as the Celery
enqueuer does. Signed, unsigned, stale, oversized, malformed and duplicate webhooks are sent with
httpx; exactly the valid deliveries must end up in Redis, each once, however often they were sent.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hub.clock import SystemClock
from hub.connector import ConnectorRuntime
from hub.events import SourceEvent
from hub.queue import QueueUnavailable
from hub.store.redis import RedisStore
from hub.web import create_app, make_server, readiness_checks
from hub.webhooks import Receiver, ReceiverInstance

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "s3cr3t-for-tests"  # ProbeSettings' default
MAX = 1_048_576


def _load_helpers() -> ModuleType:
    name = "_receiver_connectors"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "hub" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


rc = _load_helpers()


class RedisListEnqueuer:
    """RPUSHes each envelope's JSON to one Redis list, atomically per batch (MULTI/EXEC)."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key

    def enqueue(self, events: Sequence[SourceEvent]) -> None:
        try:
            with self.client.pipeline(transaction=True) as pipe:
                for event in events:
                    pipe.rpush(self.key, event.model_dump_json())
                pipe.execute()
        except redis.RedisError as exc:
            raise QueueUnavailable(f"redis: {type(exc).__name__}") from exc

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False


@dataclass
class Live:
    base_url: str
    redis: redis.Redis
    list_key: str
    prefix: str
    enqueuer: RedisListEnqueuer

    def queued(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.redis.lrange(self.list_key, 0, -1)]

    def queued_ids(self) -> list[str | None]:
        return [item["delivery_id"] for item in self.queued()]

    def seen_keys(self) -> list[bytes]:
        return sorted(self.redis.scan_iter(match=f"{self.prefix}:seen:*", count=1000))

    def post(self, instance_id: str, body: Any = b"", **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            return client.post(f"/webhooks/{instance_id}", content=body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            return client.get(path, **kwargs)


def signed(body: bytes, *, age: int = 0) -> dict[str, str]:
    headers: dict[str, str] = rc.sign(body, secret=SECRET, timestamp=int(time.time()) - age)
    return headers


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.fail(f"the receiver integration test needs Redis at {REDIS_URL}: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def live(redis_client: redis.Redis) -> Iterator[Live]:
    token = uuid.uuid4().hex[:12]
    prefix, list_key = f"test-receiver-{token}", f"test-receiver-{token}-ingest"
    store = RedisStore.from_url(REDIS_URL, prefix=prefix)
    enqueuer = RedisListEnqueuer(redis_client, list_key)
    http = httpx.Client()
    clock = SystemClock()

    def runtime(instance_id: str) -> ConnectorRuntime:
        return ConnectorRuntime(
            instance_id=instance_id, base_iri="https://hub.example", http=http, clock=clock
        )

    instances = {
        "probe": ReceiverInstance(rc.ProbeConnector(rc.ProbeSettings(), runtime=runtime("probe"))),
        "polled": ReceiverInstance(
            rc.PolledProbeConnector(rc.ProbeSettings(), runtime=runtime("polled"))
        ),
    }
    receiver = Receiver(instances, store=store, enqueuer=enqueuer, clock=clock, max_body_bytes=MAX)
    app = create_app(receiver=receiver, readiness=readiness_checks(broker=enqueuer, store=store))

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; no race with another binder
    port = sock.getsockname()[1]
    server = make_server(app, "127.0.0.1", port, graceful_timeout=5)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{port}", redis_client, list_key, prefix, enqueuer)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        keys = list(redis_client.scan_iter(match=f"{prefix}:*", count=1000))
        redis_client.delete(list_key, *keys)
        store.close()
        http.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture
def fresh(live: Live) -> Live:
    """Each test starts with an empty queue and no dedupe keys."""
    keys = list(live.redis.scan_iter(match=f"{live.prefix}:*", count=1000))
    live.redis.delete(live.list_key, *keys)
    return live


def test_mixed_traffic_leaves_exactly_the_valid_deliveries_each_once(fresh: Live) -> None:
    valid_1, valid_2 = rc.batch("v1", "v2"), rc.batch("v3")
    deep = b'{"items": [{"id": "bad-deep", "x": ' + b"[" * 80 + b"]" * 80 + b"}]}"
    malformed = b'{"items": [{"id": "bad-malformed"}'
    oversized = rc.batch(*[f"bad-big-{i:06d}" for i in range(40_000)])
    assert len(oversized) > MAX

    sent = [
        (fresh.post("probe", valid_1, headers=signed(valid_1)), 200),
        (fresh.post("probe", valid_2, headers=signed(valid_2)), 200),
        # duplicates: the same deliveries again, and one overlapping batch
        (fresh.post("probe", valid_1, headers=signed(valid_1)), 200),
        (fresh.post("probe", rc.batch("v3", "v1"), headers=signed(rc.batch("v3", "v1"))), 200),
        # refused
        (fresh.post("probe", rc.batch("bad-unsigned"),
                    headers={"Content-Type": "application/json"}), 401),
        (fresh.post("probe", rc.batch("bad-stale"),
                    headers=signed(rc.batch("bad-stale"), age=301)), 401),
        (fresh.post("probe", rc.batch("bad-forged"),
                    headers=signed(rc.batch("bad-other"))), 401),
        (fresh.post("probe", malformed, headers=signed(malformed)), 400),
        (fresh.post("probe", deep, headers=signed(deep)), 400),
        (fresh.post("probe", rc.batch("bad-type"),
                    headers={**signed(rc.batch("bad-type")), "Content-Type": "text/xml"}), 415),
        (fresh.post("probe", oversized, headers=signed(oversized)), 413),
        (fresh.post("nope", valid_1, headers=signed(valid_1)), 404),
        (fresh.post("polled", valid_1, headers=signed(valid_1)), 404),
    ]  # fmt: skip
    assert [r.status_code for r, _ in sent] == [status for _, status in sent]
    assert fresh.queued_ids() == ["v1", "v2", "v3"]
    assert {item["instance_id"] for item in fresh.queued()} == {"probe"}
    # Keys only for what was accepted: a refused delivery can be retried and accepted.
    assert len(fresh.seen_keys()) == 3


def test_concurrent_identical_deliveries_enqueue_once(fresh: Live) -> None:
    body = rc.batch("race-1", "race-2")
    headers = signed(body)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: fresh.post("probe", body, headers=headers).status_code,
                                 range(16)))  # fmt: skip
    assert statuses == [200] * 16
    assert sorted(str(i) for i in fresh.queued_ids()) == ["race-1", "race-2"]


def test_streamed_oversized_body_without_length_is_413(fresh: Live) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536  # 2.5 MiB in total, chunked

    response = fresh.post("probe", chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert fresh.queued() == []


def test_gzip_delivery_and_gzip_bomb(fresh: Live) -> None:
    body = rc.batch("gz-1")
    ok = fresh.post("probe", gzip.compress(body),
                    headers={**signed(body), "Content-Encoding": "gzip"})  # fmt: skip
    inflated = b'{"items": [{"id": "bomb"}], "pad": "' + b" " * 20_000_000 + b'"}'
    bomb = fresh.post("probe", gzip.compress(inflated, compresslevel=9),
                      headers={**signed(inflated), "Content-Encoding": "gzip"})  # fmt: skip
    assert (ok.status_code, bomb.status_code) == (200, 413)
    assert fresh.queued_ids() == ["gz-1"]


def test_handshakes_are_answered_and_nothing_is_enqueued(fresh: Live) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "xyz-1"}).encode()
    post = fresh.post("probe", body, headers={"Content-Type": "application/json"})
    get = fresh.get("/webhooks/probe", params={"hub.challenge": "xyz-2"})
    assert (post.status_code, post.text) == (200, "xyz-1")
    assert (get.status_code, get.text) == (200, "xyz-2")
    assert fresh.queued() == []
    assert fresh.seen_keys() == []


def test_queue_down_answers_503_and_the_retry_is_accepted(fresh: Live) -> None:
    body = rc.batch("retry-1")
    working = fresh.enqueuer.client
    # No retries: redis-py would otherwise back off for seconds before giving up.
    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    fresh.enqueuer.client = dead  # a broker that refuses connections
    try:
        down = fresh.post("probe", body, headers=signed(body))
        ready = fresh.get("/readyz")
    finally:
        fresh.enqueuer.client = working
        dead.close()
    assert down.status_code == 503
    assert down.headers["retry-after"] == "30"
    assert (ready.status_code, ready.json()["failed"]) == (503, ["broker"])
    assert fresh.seen_keys() == []  # released, so the source's retry is not a "duplicate"

    retry = fresh.post("probe", body, headers=signed(body))
    assert retry.status_code == 200
    assert fresh.queued_ids() == ["retry-1"]


def test_health_endpoints(fresh: Live) -> None:
    assert fresh.get("/healthz").json() == {"status": "ok"}
    ready = fresh.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": True, "store": True}
