"""A real headless Chromium runs the YouTube tracker against the real hub receiver.

The hub's web app (`hub.web.create_app` + `Receiver` over a `youtube` connector, the SQLite store
for de-duplication and the connector's session state, an in-memory queue) is served by uvicorn on
a free port. Its extra routes serve `/static/lxhub-youtube.js` (the route hub/webapp.py is asked
to add) and the test page: a stand-in for the YouTube IFrame API
(tests/connectors/youtube/browser/fake-youtube-api.js) and a scenario that plays, seeks, pauses,
plays to the end and leaves the page (pagehide -> sendBeacon).

Two runs:

* ``same-origin``: the page is on http://127.0.0.1:PORT, like the hub: fetch sends the learner
  token in ``Authorization: Bearer``.
* ``cross-origin``: the page is on http://localhost:PORT (another origin): fetch sends the token
  in the ``text/plain`` body (a CORS-simple request: no preflight, which the receiver does not
  route yet), and the hub's answer carries ``Access-Control-Allow-Origin``.

Both end with a beacon (token in the body). The test then maps what the hub enqueued and checks
the Video Profile statement sequence and validates each statement. The canonical bytes go into the
same store's outbox and the hub's delivery (`hub.delivery.deliver_once` with the real `LrsClient`)
sends them to the real Learning Locker (the session's `learning_locker` fixture); the statements
are read back from it, each once, and a second delivery of the same bytes leaves them once.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connectors.youtube.connector import YouTubeConnector
from connectors.youtube.settings import YouTubeSettings
from connectors.youtube.token import issue_learner_token
from hub.clock import SystemClock
from hub.connector import ConnectorRuntime
from hub.delivery import deliver_once
from hub.events import SourceEvent, WebhookRequest
from hub.lrs import LrsClient, LrsTarget
from hub.mapping import Unmapped
from hub.queue import ListEnqueuer
from hub.runtime import StoreState
from hub.store.base import DeadLetterFilter, OutboxItem, Store
from hub.testing import BASE_IRI, StaticActorResolver, context_factory, temp_sqlite_store
from hub.testing.lrs_servers import LrsServer, get_statement, read_statements
from hub.web import create_app, make_server
from hub.webhooks import Receiver, ReceiverInstance
from hub.xapi import Statement, canonical_bytes, validate_statement

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = ROOT / "tests" / "connectors" / "youtube" / "browser"
TRACKER = ROOT / "hub" / "static" / "lxhub-youtube.js"
CHROMIUM = "/usr/bin/chromium"
INSTANCE = "yt-browser"
SECRET = "browser-test-learner-token-secret-0123456789"
VIDEO = "https://w3id.org/xapi/video/extensions/"
TIMEOUT = 60.0
LRS = "ll"
XAPI_VERSION: Final = "1.0.3"


@dataclass
class Recorded:
    """What the hub saw of each player request (auth form, content type, origin)."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordingYouTube(YouTubeConnector):
    """The real connector, plus a record of how each player batch was authenticated."""

    recorded: Recorded

    def verify(self, request: WebhookRequest) -> None:
        body_token = b'"token"' in request.body
        with self.recorded.lock:
            self.recorded.requests.append(
                {
                    "authorization": request.header("authorization") is not None,
                    "body_token": body_token,
                    "content_type": request.header("content-type"),
                    "origin": request.header("origin"),
                }
            )
        super().verify(request)


@dataclass
class Hub:
    base: str
    port: int
    enqueuer: ListEnqueuer
    connector: RecordingYouTube
    recorded: Recorded
    store: Store


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _test_routes(recorded: Recorded) -> list[Route]:
    files = {
        "page.html": "text/html",
        "done.html": "text/html",
        "scenario.js": "text/javascript",
        "fake-youtube-api.js": "text/javascript",
    }

    async def test_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(BROWSER_DIR / name, media_type=files[name])

    async def token(request: Request) -> Response:
        # What the embedding site's backend does for its logged-in learner.
        value = issue_learner_token(
            SECRET, sub="u-browser", audience=INSTANCE, now=datetime.now(UTC),
            ttl_seconds=3600, email="grace@example.com", name="Grace Hopper",
        )  # fmt: skip
        return PlainTextResponse(value, headers={"Cache-Control": "no-store"})

    async def report(request: Request) -> Response:
        data = await request.json()
        with recorded.lock:
            recorded.reports.append(data)
        return JSONResponse({"ok": True})

    # The route hub/webapp.py is asked to add, verbatim in spirit: the packaged file.
    async def tracker_js(request: Request) -> Response:
        return FileResponse(TRACKER, media_type="text/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})  # fmt: skip

    return [
        Route("/static/lxhub-youtube.js", tracker_js, methods=["GET"]),
        Route("/test/token", token, methods=["GET"]),
        Route("/test/report", report, methods=["POST"]),
        Route("/test/{name}", test_file, methods=["GET"]),
    ]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    sock = _free_socket()
    port = sock.getsockname()[1]
    store = temp_sqlite_store(tmp_path)
    recorded = Recorded()
    settings = YouTubeSettings(
        tenant="learn.example.com",
        token_secret=SECRET,  # type: ignore[arg-type,unused-ignore]
        allowed_origins=[f"http://127.0.0.1:{port}", f"http://localhost:{port}"],
        completion_threshold=0.7,
    )
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(599)))
    runtime = ConnectorRuntime(
        instance_id=INSTANCE, base_iri=BASE_IRI, http=http, clock=SystemClock(),
        state=StoreState(store, INSTANCE),
    )  # fmt: skip
    connector = RecordingYouTube(settings, runtime=runtime)
    connector.recorded = recorded
    enqueuer = ListEnqueuer()
    receiver = Receiver(
        {INSTANCE: ReceiverInstance(connector=connector)},
        store=store, enqueuer=enqueuer, clock=SystemClock(),
    )  # fmt: skip
    app = create_app(
        receiver=receiver, readiness=lambda: {"store": True}, extra_routes=_test_routes(recorded)
    )
    server = make_server(app, "127.0.0.1", port, graceful_timeout=2)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Hub(f"http://127.0.0.1:{port}", port, enqueuer, connector, recorded, store)
    finally:
        server.should_exit = True
        thread.join(10)
        http.close()
        store.close()
        sock.close()


def _chromium(url: str, profile: Path, log: Path) -> subprocess.Popen[bytes]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", "--no-default-browser-check",
        f"--user-data-dir={profile}", url,
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, by its id
            proc.wait(10)


def _session_events(hub: Hub, session: str) -> list[SourceEvent]:
    out = []
    for event in list(hub.enqueuer.events):
        payload = event.payload
        if isinstance(payload, dict):
            batch = payload.get("batch")
            if isinstance(batch, dict) and batch.get("session_id") == session:
                out.append(event)
    return out


def _has_unload(events: list[SourceEvent]) -> bool:
    for event in events:
        payload = event.payload
        assert isinstance(payload, dict)
        batch = payload["batch"]
        assert isinstance(batch, dict)
        items = batch["events"]
        assert isinstance(items, list)
        if any(isinstance(e, dict) and e.get("type") == "unload" for e in items):
            return True
    return False


def _run(hub: Hub, run: str, page_origin: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    endpoint = f"{hub.base}/webhooks/{INSTANCE}"
    url = f"{page_origin}/test/page.html?run={run}&endpoint={endpoint}"
    profile = tmp_path / f"profile-{run}"
    log = tmp_path / f"chromium-{run}.log"
    proc = _chromium(url, profile, log)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            with hub.recorded.lock:
                reports = [r for r in hub.recorded.reports if r.get("run") == run]
            errors = [r for r in reports if r.get("stage") == "error"]
            assert not errors, f"the page failed: {errors}"
            flushed = next((r for r in reports if r.get("stage") == "flushed"), None)
            done = any(r.get("stage") == "done" for r in reports)
            if flushed and done and _has_unload(_session_events(hub, flushed["session"])):
                return flushed["session"], flushed
            if time.monotonic() > deadline or proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                pytest.fail(
                    f"run {run}: no complete session within {TIMEOUT}s; reports="
                    f"{reports}; chromium exit={proc.poll()}\n{tail}",
                    pytrace=False,
                )
            time.sleep(0.1)
    finally:
        _stop(proc)
        shutil.rmtree(profile, ignore_errors=True)


def _map(hub: Hub, events: list[SourceEvent]) -> list[Statement]:
    make = context_factory(
        hub.connector, actors=StaticActorResolver("mbox"), base_iri=BASE_IRI, instance_id=INSTANCE
    )
    out: list[Statement] = []
    for event in events:
        result = hub.connector.map(event, make(event))
        assert not isinstance(result, Unmapped)
        out.extend(result)
    return out


def _ext(statement: Statement, where: str, name: str) -> Any:
    holder = statement.result if where == "result" else statement.context
    assert holder is not None
    assert holder.extensions is not None
    return holder.extensions.get(VIDEO + name)


def _check_statements(statements: list[Statement]) -> None:
    verbs = [s.verb.id.rsplit("/", 1)[-1] for s in statements]
    assert verbs == [
        "initialized", "played", "seeked", "played", "paused", "played", "paused", "completed",
        "terminated",
    ], verbs  # fmt: skip
    by = dict(zip(range(len(statements)), statements, strict=True))
    assert _ext(by[1], "result", "time") == 0.0
    assert (_ext(by[2], "result", "time-from"), _ext(by[2], "result", "time-to")) == (30.0, 60.0)
    assert _ext(by[3], "result", "time") == 60.0
    assert _ext(by[4], "result", "time") == 80.0
    assert _ext(by[6], "result", "time") == 120.0
    segments = "0.000[.]30.000[,]60.000[.]80.000[,]80.000[.]120.000"
    for index in (6, 7, 8):
        assert _ext(by[index], "result", "played-segments") == segments
        assert _ext(by[index], "result", "progress") == 0.75
    completed = by[7]
    assert completed.result is not None
    assert completed.result.completion is True
    assert completed.result.duration == "PT1M30S"  # 30 + 20 + 40 s of playing wall time
    session_id = str(statements[0].id)
    assert all(_ext(s, "context", "session-id") == session_id for s in statements)
    assert all(_ext(s, "context", "length") == 120.0 for s in (by[0], by[4], by[7], by[8]))
    assert statements[0].actor.mbox == "mailto:grace@example.com"
    now = datetime.now(UTC) + timedelta(minutes=10)  # the page's simulated clock runs ahead
    for statement in statements:
        issues = validate_statement(statement, now=now, hub_rules=True)
        assert not issues, f"{statement.verb.id}: {issues}"


def _deliver(hub: Hub, lrs: LrsServer, statements: list[Statement]) -> int:
    """Put the canonical bytes in the store's outbox for `lrs`, drain it with the hub's delivery.

    Returns how many statements the delivery rounds reported stored.
    """
    now = datetime.now(UTC)
    items = [
        OutboxItem(
            statement_id=str(s.id),
            body=canonical_bytes(s, version=XAPI_VERSION),
            instance_id=INSTANCE,
            verb=s.verb.id,
            enqueued_at=now,
        )
        for s in statements
    ]
    hub.store.outbox_append(LRS, items, now=now)
    target = LrsTarget(
        name=LRS, endpoint=lrs.endpoint, username=lrs.username,
        password=SecretStr(lrs.password), xapi_version=XAPI_VERSION, timeout=30,
    )  # fmt: skip
    stored = 0
    with httpx.Client(trust_env=False) as http:
        client = LrsClient(target, http=http)
        for _ in range(10):
            report = deliver_once(
                store=hub.store, lrs_name=LRS, client=client, clock=SystemClock(),
                batch_size=50, max_batch_wait=0, lease_seconds=30, retry_horizon=60,
                rng=random.Random(0),
            )  # fmt: skip
            assert report.last_error is None, report
            assert report.dead_lettered == 0, report
            assert report.retried == 0, report
            stored += report.stored
            if not report.more_waiting:
                break
    stats = hub.store.outbox_stats(LRS, now=datetime.now(UTC))
    assert (stats.ready, stats.leased) == (0, 0), stats
    assert hub.store.dlq_list(DeadLetterFilter()) == []
    return stored


def _in_lrs(lrs: LrsServer, session_id: str) -> list[dict[str, Any]]:
    """The statements of one player session in the (shared) LRS, by its session-id extension."""
    key = VIDEO + "session-id"
    return [
        s
        for s in read_statements(lrs, version=XAPI_VERSION)
        if (s.get("context") or {}).get("extensions", {}).get(key) == session_id
    ]


def _plain(value: Any) -> Any:
    """`value` without `objectType` keys: an LRS may add the default (xAPI §2.4.2) when storing."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "objectType"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _check_in_lrs(lrs: LrsServer, statements: list[Statement]) -> None:
    ours = [json.loads(canonical_bytes(s, version=XAPI_VERSION)) for s in statements]
    held = _in_lrs(lrs, str(statements[0].id))
    assert sorted(h["id"] for h in held) == sorted(o["id"] for o in ours), held  # each once
    for mine in ours:
        got = get_statement(lrs, mine["id"], version=XAPI_VERSION)
        assert got is not None, mine["id"]
        for key in ("actor", "verb", "object", "result", "timestamp"):
            if key == "timestamp":  # the LRS may normalise the notation, not the instant
                assert datetime.fromisoformat(got[key]) == datetime.fromisoformat(mine[key])
            else:
                assert _plain(got.get(key)) == _plain(mine.get(key)), (key, got, mine)
        assert got["context"]["extensions"] == mine["context"]["extensions"]


@pytest.mark.parametrize(
    ("run", "origin_host", "header_auth"),
    [("same-origin", "127.0.0.1", True), ("cross-origin", "localhost", False)],
)
def test_tracker_in_chromium_reaches_the_lrs(
    hub: Hub,
    learning_locker: LrsServer,
    tmp_path: Path,
    run: str,
    origin_host: str,
    header_auth: bool,
) -> None:
    session, flushed = _run(hub, run, f"http://{origin_host}:{hub.port}", tmp_path)
    assert flushed["status"] == 200, flushed
    assert flushed["errors"] == [], flushed
    assert flushed["header"] is header_auth

    events = _session_events(hub, session)
    # The fetches used the expected token transport; the last request was a beacon (body token).
    with hub.recorded.lock:
        seen = list(hub.recorded.requests)
    page_origin = f"http://{origin_host}:{hub.port}"
    assert all(r["origin"] == page_origin for r in seen), seen
    fetches, beacon = seen[:-1], seen[-1]
    assert fetches, seen
    assert all(r["authorization"] is header_auth for r in fetches), seen
    assert all(r["body_token"] is not header_auth for r in fetches), seen
    assert beacon["body_token"], beacon
    assert not beacon["authorization"], beacon
    assert beacon["content_type"].startswith("text/plain"), beacon
    # No token reaches the queue.
    assert all("token" not in json.dumps(e.payload) for e in events)

    statements = _map(hub, events)
    _check_statements(statements)
    assert _deliver(hub, learning_locker, statements) == len(statements)
    _check_in_lrs(learning_locker, statements)
    # Delivered again (a redelivery after a lost acknowledgement): still each once in the LRS.
    assert _deliver(hub, learning_locker, statements) == len(statements)
    _check_in_lrs(learning_locker, statements)
