"""The status page in a real headless Chromium (issue 7 item 3).

A real web app (`hub.webapp.build_app` served by uvicorn via `hub.web.make_server` in a thread)
over a `HubRuntime` built from a temporary config directory with the embedded SQLite store. The
test puts a connector health record, outbox items, a paused LRS, rates and a dead letter into the
store, then drives Debian's `chromium` through the Chrome DevTools Protocol: it opens `/`, gets
the login form, signs in by filling and submitting the form, waits for the figures, checks the
DOM text, and writes a screenshot under the test's `tmp_path`.

CDP runs over `--remote-debugging-pipe` (NUL-separated JSON on file descriptors 3 and 4), so no
websocket client is needed: the standard library is enough.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import Field

from hub import health
from hub.config import load_config
from hub.connector import Connector, ConnectorSettings, Polling
from hub.cursor import TimeCursor
from hub.delivery import CIRCUIT_NAMESPACE, CircuitState
from hub.events import PollResult
from hub.mapping import EventPayload, MappingContext, StatementMapper
from hub.metrics import DELIVERED, EVENTS, Rates
from hub.registry import Registry
from hub.runtime import HubRuntime
from hub.store.base import DeadLetter, OutboxItem
from hub.web import make_server
from hub.webapp import build_app
from hub.xapi import Statement

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = os.environ.get("LXHUB_CHROMIUM", "/usr/bin/chromium")
TOKEN = "status-page-admin-token"
BACKLOG = 7


# -- a polling connector, so the page has a last poll and a cursor to show -------------------------


class Record(EventPayload):
    event_types = ("record",)
    id: str


mapper = StatementMapper()


@mapper.on(Record)
def _record(e: Record, ctx: MappingContext) -> list[Statement]:
    return []


class LmsSettings(ConnectorSettings):
    tenant: str = Field(description="tenant token")


class LmsConnector(Connector[LmsSettings], Polling[TimeCursor]):
    """Never actually polls in this test: the page reads its health record from the store."""

    name = "page-lms"
    source = "pagelms"
    platform = "Page LMS"
    settings_model = LmsSettings
    mapper = mapper

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def check(self) -> None:
        return None

    def status_details(self) -> dict[str, str]:
        return {"API calls today": "120 of 1,000"}

    def poll(self, cursor: TimeCursor | None, *, until: datetime) -> PollResult[TimeCursor]:
        return PollResult[TimeCursor](events=[], next_cursor=cursor)

    def initial_cursor(self, since: datetime) -> TimeCursor:
        return TimeCursor(mark=since)


# -- the hub -------------------------------------------------------------------------------------


def _write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    (config / "connectors").mkdir(parents=True)
    hub = {
        "data_dir": str(tmp_path / "data"),
        "web": {"admin_token": "${LXHUB_ADMIN_TOKEN}"},
        "lrs": [
            {"name": "main-lrs", "type": "xapi", "endpoint": "https://lrs.example.invalid/xapi/",
             "token": "${LRS_TOKEN}"},
            {"name": "backup-lrs", "type": "xapi", "endpoint": "https://backup.example.invalid/x/",
             "token": "${LRS_TOKEN}"},
        ],
        "log_format": "text",
    }
    (config / "hub.yaml").write_text(yaml.safe_dump(hub))
    instance = {"id": "lms-main", "type": "page-lms", "enabled": True,
                "description": "Onboarding LMS", "settings": {"tenant": "acme"}}
    (config / "connectors" / "lms-main.yaml").write_text(yaml.safe_dump(instance))
    return config


def _seed(rt: HubRuntime, now: datetime) -> None:
    store = rt.store
    health.record_success(
        store, "lms-main", at=now - timedelta(minutes=2), events=40,
        cursor=json.dumps({"mark": "2025-03-01T11:45:00Z", "page": 3}),
    )
    enqueued = now - timedelta(seconds=95)
    items = [
        OutboxItem(statement_id=f"00000000-0000-4000-8000-{i:012d}", body=b"{}",
                   instance_id="lms-main", verb="http://adlnet.gov/expapi/verbs/completed",
                   enqueued_at=enqueued, received_at=enqueued)
        for i in range(BACKLOG)
    ]
    assert store.outbox_append("main-lrs", items, now=enqueued) == BACKLOG
    store.kv_set(CIRCUIT_NAMESPACE, "backup-lrs", CircuitState(
        opened_at=now - timedelta(minutes=5), reason="401 Unauthorized: bad credentials",
        probe_at=now + timedelta(seconds=30), interval=30.0).model_dump_json())
    store.dlq_add(DeadLetter(
        id="deliver:main-lrs:00000000-0000-4000-8000-000000000099", stage="deliver",
        lrs="main-lrs", instance_id="lms-main",
        statement_id="00000000-0000-4000-8000-000000000099", reason="lrs_rejected",
        detail="400 Bad Request: verb.display must be a language map",
        first_at=now - timedelta(minutes=3), last_at=now - timedelta(minutes=1), body=b"{}"))
    rates = Rates(store)
    rates.add(EVENTS, "lms-main", 120, now=now - timedelta(seconds=30))
    rates.add(DELIVERED, "main-lrs", 300, now=now - timedelta(seconds=30))


@dataclass
class RunningHub:
    url: str
    runtime: HubRuntime


@pytest.fixture
def running_hub(tmp_path: Path) -> Iterator[RunningHub]:
    config = _write_config(tmp_path)
    registry = Registry.from_classes([LmsConnector])
    env = {"LXHUB_ADMIN_TOKEN": TOKEN, "LRS_TOKEN": "lrs-secret-token"}
    rt = HubRuntime(load_config(config, registry=registry, env=env), registry=registry)
    _seed(rt, datetime.now(UTC))
    app = build_app(rt)
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningHub(url=f"http://127.0.0.1:{port}", runtime=rt)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        rt.close()


# -- a minimal CDP client over --remote-debugging-pipe ---------------------------------------------


class Browser:
    """Headless Chromium driven by CDP over a pipe (fd 3: commands in, fd 4: answers out)."""

    def __init__(self, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: put the pipe ends on fds 3 and 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        argv = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
            f"--user-data-dir={profile}", "--window-size=1280,900", "--remote-debugging-pipe",
            "about:blank",
        ]
        with (profile / "chromium.log").open("wb") as log:
            self.proc = subprocess.Popen(  # fixed argv; preexec_fn only dup2s two fds
                argv, pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=log,
            )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()
        self.session = self._attach()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        waiter = self._answers.get(message["id"])
                    if waiter is not None:
                        waiter.put(message)

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, timeout: float = 20.0) -> dict[str, Any]:
        with self._lock:
            self._next += 1
            ident = self._next
            waiter: queue.Queue[dict[str, Any]] = queue.Queue()
            self._answers[ident] = waiter
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        try:
            answer = waiter.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no CDP answer to {method} within {timeout}s") from None
        if "error" in answer:
            raise AssertionError(f"CDP {method} failed: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def _attach(self) -> str:
        deadline = time.monotonic() + 20
        while True:
            pages = [t for t in self.send("Target.getTargets")["targetInfos"]
                     if t["type"] == "page"]
            if pages:
                break
            assert time.monotonic() < deadline, "chromium opened no page"
            time.sleep(0.1)
        attached = self.send("Target.attachToTarget",
                             {"targetId": pages[0]["targetId"], "flatten": True})
        session: str = attached["sessionId"]
        self.send("Page.enable", session=session)
        self.send("Runtime.enable", session=session)
        return session

    def page(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.send(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        answer = self.page("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in answer:
            raise AssertionError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 15.0, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except AssertionError:
                value = None  # navigating: the context went away between checks
            if value:
                return value
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(f"timed out waiting for {what}; the page says:\n{text}")
            time.sleep(0.1)

    def screenshot(self, path: Path) -> None:
        metrics = self.page("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = max(900, int(size["height"]))
        self.page("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False})
        shot = self.page("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    b = Browser(profile)
    try:
        yield b
    finally:
        b.close()


# -- the tests -----------------------------------------------------------------------------------


def test_status_page_needs_the_admin_token(running_hub: RunningHub) -> None:
    page = httpx.get(running_hub.url + "/", timeout=5)
    assert page.status_code == 401
    assert 'name="token"' in page.text
    assert "lms-main" not in page.text
    assert httpx.get(running_hub.url + "/api/status", timeout=5).status_code == 401
    wrong = httpx.post(running_hub.url + "/login", data={"token": "nope"}, timeout=5)
    assert wrong.status_code == 401
    assert "lxhub_admin" not in wrong.headers.get("set-cookie", "")


def test_status_page_in_headless_chromium(
    running_hub: RunningHub, browser: Browser, tmp_path: Path
) -> None:
    browser.page("Page.navigate", {"url": running_hub.url + "/"})
    browser.wait_for("!!document.querySelector('form input[name=token]')", what="the login form")
    browser.evaluate(
        f"document.querySelector('input[name=token]').value = {json.dumps(TOKEN)};"
        "document.querySelector('form').submit(); true"
    )
    # The figures arrive through /api/status after the sign-in redirect.
    browser.wait_for(
        "[...document.querySelectorAll('#lrs tbody tr')]"
        ".some(r => r.innerText.includes('main-lrs'))",
        what="the LRS table",
    )
    text: str = browser.evaluate("document.body.innerText")
    assert "lms-main" in text  # the connector
    assert "Onboarding LMS" in text
    assert "mark=2025-03-01T11:45:00Z" in text  # its cursor, readable
    assert "main-lrs" in text
    assert "backup-lrs" in text

    lrs_rows: dict[str, list[str]] = browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#lrs tbody tr')].map(r =>"
        " [r.cells[0].querySelector('.name').innerText,"
        "  [...r.cells].map(c => c.innerText.trim())]))"
    )
    main = lrs_rows["main-lrs"]
    assert main[2] == str(BACKLOG)  # backlog
    assert main[4].endswith(" s") or main[4].endswith(" min")  # oldest waiting: ~95 s
    assert float(main[5]) > 0  # delivered / min
    assert main[6] == "1"  # dead letters
    assert "delivering" in main[1]
    backup = lrs_rows["backup-lrs"]
    assert "paused" in backup[1]
    assert "401 Unauthorized" in backup[1]

    connector: list[str] = browser.evaluate(
        "[...document.querySelector('#connectors tbody tr').cells].map(c => c.innerText.trim())"
    )
    assert connector[0].startswith("lms-main")
    assert "API calls today: 120 of 1,000" in connector[0]  # the connector's own facts
    assert "enabled" in connector[1]
    assert "min ago" in connector[2]  # last poll 2 minutes ago
    assert float(connector[3]) > 0  # events / min

    assert "lrs_rejected" in text
    assert "verb.display must be a language map" in text  # the dead letter's reason
    assert "Attention: 1 LRS paused" in text  # the summary a person reads first
    # The session cookie is HttpOnly: page scripts never see it.
    assert browser.evaluate("document.cookie") == ""
    assert TOKEN not in browser.evaluate("document.documentElement.outerHTML")

    shot = tmp_path / "status.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    print(f"status page screenshot: {shot}")
