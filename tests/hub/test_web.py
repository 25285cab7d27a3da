"""Tests of the ASGI layer (`hub.web`): routing, streaming with a cap, request building, health.

Through `httpx.ASGITransport` (Starlette's TestClient now wants `httpx2`), offline: a frozen
clock, a `ListEnqueuer` and the in-memory dedupe store from `_receiver_connectors.py`.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from hub import web
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime
from hub.events import WebhookRequest, WebhookResponse
from hub.queue import ListEnqueuer
from hub.web import create_app, make_server, readiness_checks
from hub.webhooks import Reason, Receiver, ReceiverInstance


def _load_helpers() -> ModuleType:
    name = "_receiver_connectors"
    if name not in sys.modules:  # shared with test_webhooks.py: one module, one set of classes
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


rc = _load_helpers()

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cr3t-for-tests"
MAX = 8192


class Client:
    """A synchronous face over `httpx.AsyncClient(transport=ASGITransport(app))`."""

    def __init__(self, app: ASGIApp, *, peer: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self.transport = httpx.ASGITransport(app=app, client=peer)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self.transport, base_url="http://hub.test"
            ) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)


class RecordingReceiver(Receiver):
    """Keeps the WebhookRequests the ASGI layer built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[WebhookRequest] = []

    def receive(self, instance_id: str, request: WebhookRequest) -> WebhookResponse:
        self.requests.append(request)
        return super().receive(instance_id, request)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def store() -> Any:
    return rc.MemoryDedupeStore()


@pytest.fixture
def enqueuer() -> ListEnqueuer:
    return ListEnqueuer()


@pytest.fixture
def receiver(
    clock: FrozenClock, http: httpx.Client, store: Any, enqueuer: ListEnqueuer
) -> RecordingReceiver:
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
    return RecordingReceiver(
        instances, store=store, enqueuer=enqueuer, clock=clock, max_body_bytes=MAX
    )


@pytest.fixture
def checks() -> dict[str, bool]:
    return {"broker": True, "store": True}


@pytest.fixture
def client(receiver: RecordingReceiver, checks: dict[str, bool]) -> Client:
    return Client(create_app(receiver=receiver, readiness=lambda: checks),
                  peer=("198.51.100.7", 4711))  # fmt: skip


def signed(body: bytes, clock: FrozenClock, **extra: str) -> dict[str, str]:
    return {**rc.sign(body, secret=SECRET, timestamp=int(clock.now().timestamp())), **extra}


# -- /webhooks/{connector_id} ---------------------------------------------------------------------


def test_signed_post_is_enqueued_with_the_request_built_faithfully(
    client: Client,
    receiver: RecordingReceiver,
    enqueuer: ListEnqueuer,
    clock: FrozenClock,
) -> None:
    body = rc.batch("h1", "h2")
    headers = signed(body, clock, **{"X-Custom": "One"})
    response = client.post("/webhooks/probe?x=1&y=2", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"accepted": 2}
    assert [e.delivery_id for e in enqueuer.events] == ["h1", "h2"]
    [built] = receiver.requests
    assert built.method == "POST"
    assert built.path == "/webhooks/probe"
    assert built.query_string == "x=1&y=2"
    assert built.body == body
    assert built.received_at == NOW
    assert built.client_host == "198.51.100.7"
    assert built.headers["x-custom"] == "One"
    assert all(name == name.lower() for name in built.headers)


def test_duplicate_post_is_2xx_and_enqueued_once(
    client: Client, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    body = rc.batch("dup")
    for _ in range(3):
        assert client.post("/webhooks/probe", content=body, headers=signed(body, clock)).is_success
    assert [e.delivery_id for e in enqueuer.events] == ["dup"]


def test_repeated_headers_are_joined(client: Client, receiver: RecordingReceiver) -> None:
    client.post("/webhooks/probe", content=b"{}", headers=[("X-Multi", "a"), ("X-Multi", "b")])
    assert receiver.requests[0].headers["x-multi"] == "a, b"


def test_unsigned_post_is_401(client: Client, enqueuer: ListEnqueuer) -> None:
    response = client.post("/webhooks/probe", content=rc.batch("u1"),
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert enqueuer.events == []


@pytest.mark.parametrize("instance_id", ["nope", "polled"])
def test_instances_without_webhooks_are_404_before_reading_the_body(
    client: Client, receiver: RecordingReceiver, instance_id: str
) -> None:
    response = client.post(f"/webhooks/{instance_id}", content=b"{}")
    assert response.status_code == 404
    assert receiver.requests == []  # refused by admit(), body never read


def test_oversized_content_length_is_413_before_reading(
    client: Client, receiver: RecordingReceiver, store: Any, enqueuer: ListEnqueuer
) -> None:
    body = rc.batch(*[f"big-{i:05d}" for i in range(1000)])
    assert len(body) > MAX
    response = client.post("/webhooks/probe", content=body)
    assert response.status_code == 413
    assert receiver.requests == []
    assert enqueuer.events == []
    assert store.keys == {}


def test_oversized_streamed_body_without_length_is_413(
    client: Client, receiver: RecordingReceiver, enqueuer: ListEnqueuer
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * 1024

    response = client.post("/webhooks/probe", content=chunks())
    assert response.status_code == 413
    assert receiver.requests == []
    assert enqueuer.events == []
    assert receiver.stats.snapshot().rejections(Reason.TOO_LARGE, "probe") == 1


def test_gzip_post_is_inflated(client: Client, enqueuer: ListEnqueuer, clock: FrozenClock) -> None:
    body = rc.batch("z1")
    headers = signed(body, clock, **{"Content-Encoding": "gzip"})
    response = client.post("/webhooks/probe", content=gzip.compress(body), headers=headers)
    assert response.status_code == 200
    assert [e.delivery_id for e in enqueuer.events] == ["z1"]


def test_get_answers_the_websub_challenge(client: Client, enqueuer: ListEnqueuer) -> None:
    response = client.get("/webhooks/probe", params={"hub.challenge": "c-123", "hub.mode": "x"})
    assert (response.status_code, response.text) == (200, "c-123")
    assert enqueuer.events == []


def test_methods_other_than_get_and_post_are_405(client: Client) -> None:
    assert client.put("/webhooks/probe", content=b"{}").status_code == 405


def test_queue_down_is_503_with_retry_after(
    client: Client, enqueuer: ListEnqueuer, store: Any, clock: FrozenClock
) -> None:
    enqueuer.fail = True
    body = rc.batch("q1")
    response = client.post("/webhooks/probe", content=body, headers=signed(body, clock))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert store.keys == {}
    enqueuer.fail = False
    response = client.post("/webhooks/probe", content=body, headers=signed(body, clock))
    assert response.status_code == 200
    assert [e.delivery_id for e in enqueuer.events] == ["q1"]


# -- streaming with a cap -------------------------------------------------------------------------


def _request_streaming(chunks: list[bytes], pulled: list[int]) -> Request:
    queue = list(chunks)

    async def receive() -> dict[str, Any]:
        pulled.append(1)
        chunk = queue.pop(0) if queue else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    return Request(scope, receive)


def test_read_limited_returns_the_body_within_the_cap() -> None:
    pulled: list[int] = []
    request = _request_streaming([b"ab", b"cd"], pulled)
    assert asyncio.run(web._read_limited(request, 4)) == b"abcd"


def test_read_limited_stops_past_the_cap_and_drains_a_bounded_amount() -> None:
    pulled: list[int] = []
    chunk = b"x" * 65536
    total_chunks = 1000  # 64 MiB offered
    request = _request_streaming([chunk] * total_chunks, pulled)
    assert asyncio.run(web._read_limited(request, 100_000)) is None
    # It read past the cap only to drain (discarding) up to the drain limit, not the rest.
    assert len(pulled) * len(chunk) <= web._DRAIN_LIMIT_BYTES + 2 * len(chunk)


# -- health ----------------------------------------------------------------------------------------


def test_healthz(client: Client) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_200_when_every_check_passes(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"broker": True, "store": True},
        "failed": [],
    }


def test_readyz_is_503_naming_the_failed_check(client: Client, checks: dict[str, bool]) -> None:
    checks["store"] = False
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["store"]


def test_readyz_is_503_when_the_readiness_callable_raises(receiver: RecordingReceiver) -> None:
    def broken() -> dict[str, bool]:
        raise ConnectionError("redis down")

    response = Client(create_app(receiver=receiver, readiness=broken)).get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["readiness"]


def test_readiness_checks_ping_each_component_and_survive_errors() -> None:
    class Exploding:
        def ping(self) -> bool:
            raise OSError("no route")

    check = readiness_checks(broker=ListEnqueuer(), store=rc.MemoryDedupeStore(), cache=Exploding())
    assert check() == {"broker": True, "store": True, "cache": False}
    assert readiness_checks(broker=ListEnqueuer(fail=True))() == {"broker": False}


def test_readyz_over_the_real_helper(receiver: RecordingReceiver) -> None:
    app = create_app(receiver=receiver, readiness=readiness_checks(broker=ListEnqueuer(fail=True)))
    response = Client(app).get("/readyz")
    assert response.status_code == 503
    assert json.loads(response.text)["failed"] == ["broker"]


# -- assembly --------------------------------------------------------------------------------------


def test_extra_routes_are_mounted(receiver: RecordingReceiver) -> None:
    async def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse("# metrics\n")

    app = create_app(
        receiver=receiver,
        readiness=dict,
        extra_routes=[Route("/metrics", metrics)],
    )
    assert Client(app).get("/metrics").text == "# metrics\n"


def test_make_server_configures_graceful_shutdown(receiver: RecordingReceiver) -> None:
    app = create_app(receiver=receiver, readiness=dict)
    server = make_server(app, "127.0.0.1", 0, graceful_timeout=7)
    assert isinstance(server, uvicorn.Server)
    assert server.config.timeout_graceful_shutdown == 7
    assert server.config.access_log is False
