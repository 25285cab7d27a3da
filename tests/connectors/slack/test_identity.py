"""Slack identity through slack-sdk's WebClient against a local stdlib HTTP server.

slack-sdk speaks urllib, not httpx, so respx cannot serve it; a tiny `http.server` on 127.0.0.1
answers users.info / auth.test from canned responses (fixtures/api) instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from connectors.slack.client import EMAIL_SCOPE
from connectors.slack.connector import SlackConnector
from connectors.slack.settings import SlackSettings
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime, Person
from hub.errors import ConfigError, RateLimited, TransientError

API = Path(__file__).parent / "fixtures" / "api"
SCOPES = (
    "channels:history,reactions:read,app_mentions:read,channels:read,users:read,users:read.email"
)


@dataclass
class Canned:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeSlack:
    """Canned answers per Web API method, served in order; requests are recorded."""

    answers: dict[str, list[Canned]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    base_url: str = ""

    def add(self, method: str, *answers: Canned) -> None:
        self.answers.setdefault(method, []).extend(answers)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode()
            method = self.path.rsplit("/", 1)[-1]
            fake.requests.append((method, body, self.headers.get("authorization") or ""))
            queue = fake.answers.get(method) or [Canned(404, {"ok": False, "error": "unknown"})]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def build(fake: FakeSlack, **overrides: Any) -> tuple[SlackConnector, list[float]]:
    settings = SlackSettings(
        team_id="T111",
        signing_secret="s",
        bot_token="xoxb-test-token",
        api_base_url=fake.base_url,
        **overrides,
    )
    runtime = ConnectorRuntime(
        instance_id="slack-1",
        base_iri="https://lrs-hub.example.com/xapi",
        clock=FrozenClock(datetime(2025, 7, 1, tzinfo=UTC)),
    )
    conn = SlackConnector(settings, runtime=runtime)
    slept: list[float] = []
    conn.api.rate_limit_handler.sleep = slept.append
    return conn, slept


def users_info() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((API / "users.info.json").read_text())
    return data


def test_users_info_gives_the_email(fake_slack: FakeSlack) -> None:
    fake_slack.add("users.info", Canned(200, users_info(), {"x-oauth-scopes": SCOPES}))
    conn, _ = build(fake_slack)
    person = conn.lookup_user("W012A3CDE")
    assert person == Person(
        source_user_id="W012A3CDE", email="Spengler@Ghostbusters.example.com", name="Egon Spengler"
    )
    method, body, auth = fake_slack.requests[0]
    assert method == "users.info"
    assert "user=W012A3CDE" in body
    assert auth == "Bearer xoxb-test-token"


def test_rate_limit_is_retried_after_retry_after(fake_slack: FakeSlack) -> None:
    limited = Canned(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "2"})
    fake_slack.add("users.info", limited, Canned(200, users_info()))
    conn, slept = build(fake_slack)
    person = conn.lookup_user("W012A3CDE")
    assert person is not None
    assert person.email is not None
    assert len(fake_slack.requests) == 2
    assert len(slept) == 1
    assert 2.0 <= slept[0] < 2.5


def test_rate_limit_retries_are_bounded(fake_slack: FakeSlack) -> None:
    fake_slack.add(
        "users.info", Canned(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "2"})
    )
    conn, slept = build(fake_slack, rate_limit_retries=2)
    with pytest.raises(RateLimited) as info:
        conn.lookup_user("W012A3CDE")
    assert info.value.retry_after == 2.0
    assert len(fake_slack.requests) == 3
    assert len(slept) == 2


def test_long_retry_after_becomes_a_task_retry(fake_slack: FakeSlack) -> None:
    fake_slack.add(
        "users.info", Canned(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "90"})
    )
    conn, slept = build(fake_slack)
    with pytest.raises(RateLimited) as info:
        conn.lookup_user("W012A3CDE")
    assert info.value.retry_after == 90.0
    assert slept == []
    assert len(fake_slack.requests) == 1


def test_missing_scope_is_a_config_error_naming_the_scope(fake_slack: FakeSlack) -> None:
    fake_slack.add(
        "users.info",
        Canned(
            200,
            {
                "ok": False,
                "error": "missing_scope",
                "needed": EMAIL_SCOPE,
                "provided": "users:read",
            },
        ),
    )
    conn, _ = build(fake_slack)
    with pytest.raises(ConfigError, match="users:read.email"):
        conn.lookup_user("W012A3CDE")


def test_hidden_email_without_the_scope_is_a_config_error(fake_slack: FakeSlack) -> None:
    data = users_info()
    del data["user"]["profile"]["email"]
    fake_slack.add("users.info", Canned(200, data, {"x-oauth-scopes": "users:read,channels:read"}))
    conn, _ = build(fake_slack)
    with pytest.raises(ConfigError, match="users:read.email"):
        conn.lookup_user("W012A3CDE")


def test_user_without_email_but_with_scope_resolves_without_email(fake_slack: FakeSlack) -> None:
    data = users_info()
    del data["user"]["profile"]["email"]
    fake_slack.add("users.info", Canned(200, data, {"x-oauth-scopes": SCOPES}))
    conn, _ = build(fake_slack)
    person = conn.lookup_user("W012A3CDE")
    assert person is not None
    assert person.email is None


def test_unknown_user_is_none(fake_slack: FakeSlack) -> None:
    fake_slack.add("users.info", Canned(200, {"ok": False, "error": "user_not_found"}))
    conn, _ = build(fake_slack)
    assert conn.lookup_user("W0NOBODY") is None


def test_server_errors_are_transient(fake_slack: FakeSlack) -> None:
    fake_slack.add("users.info", Canned(503, {"ok": False, "error": "service_unavailable"}))
    conn, _ = build(fake_slack)
    conn.api.client.retry_handlers = [conn.api.rate_limit_handler]  # no 5xx backoff sleeps
    with pytest.raises(TransientError):
        conn.lookup_user("W012A3CDE")


def test_check_runs_auth_test(fake_slack: FakeSlack) -> None:
    fake_slack.add("auth.test", Canned(200, {"ok": True, "team_id": "T111", "user_id": "U0BOT"}))
    conn, _ = build(fake_slack)
    conn.check()
    assert [r[0] for r in fake_slack.requests] == ["auth.test"]


def test_check_with_a_revoked_token_is_a_config_error(fake_slack: FakeSlack) -> None:
    fake_slack.add("auth.test", Canned(200, {"ok": False, "error": "invalid_auth"}))
    conn, _ = build(fake_slack)
    with pytest.raises(ConfigError, match="invalid_auth"):
        conn.check()


def test_without_a_bot_token_there_is_no_lookup() -> None:
    settings = SlackSettings(team_id="T111", signing_secret="s")
    conn = SlackConnector(
        settings, runtime=ConnectorRuntime(instance_id="s", base_iri="https://x.example/xapi")
    )
    assert conn.lookup_user("W1") is None
    conn.check()
