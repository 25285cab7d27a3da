"""Structured logs (`hub.logs`): JSON lines with the context fields, and no secret ever.

Two layers are tested: the redaction backstop on its own, and the real code paths that see
credentials (config loading, an LRS refusing Basic and bearer credentials, a 5xx with a body that
echoes a header, a connector's poll error) run with the JSON formatter installed on the root
logger at DEBUG, whose whole output must not contain any secret value, in clear or base64.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from hub.clock import FrozenClock
from hub.delivery import deliver_once
from hub.logs import JsonFormatter, TextFormatter, redact, setup_logging
from hub.lrs import LrsClient, LrsTarget
from hub.store.base import OutboxItem
from hub.store.sqlite import SqliteStore

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "pa55-w0rd-that-must-not-leak"
TOKEN = "tok-3f9a7c2e-must-not-leak"
USER = "hub-user"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged anywhere, as the services log it (JSON), at DEBUG."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging(level="DEBUG", fmt="json")
    out = io.StringIO()
    root.handlers[0].stream = out  # type: ignore[attr-defined]
    try:
        yield out
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
        assert base64.b64encode(secret.encode()).decode() not in text
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert basic not in text


# -- the backstop ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "leak"),
    [
        ("Authorization: Basic aHViLXVzZXI6cGE1NQ==", "aHViLXVzZXI6cGE1NQ=="),
        ("authorization=Bearer abc.def.ghi", "abc.def.ghi"),
        ("connecting with password=hunter2 now", "hunter2"),
        ("client_secret: s3cr3t-value", "s3cr3t-value"),
        ("GET https://api.example.com/x?page=2&token=q-secret&x=1", "q-secret"),
        ("GET https://api.example.com/x?api_key=zzz-secret", "zzz-secret"),
        ("redis://default:r3dis-pass@redis:6379/0", "r3dis-pass"),
        ("https://blob.example.test/f?sv=1&sig=deadbeefcafe", "deadbeefcafe"),
    ],
)
def test_redact_masks_credentials(raw: str, leak: str) -> None:
    masked = redact(raw)
    assert leak not in masked
    assert "***" in masked


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "delivered 100 statements to LRS main-lrs in 0.3 s (batch 4 of 9)"
    assert redact(text) == text


def test_json_lines_carry_the_context_fields() -> None:
    record = logging.LogRecord("hub.delivery", logging.WARNING, __file__, 1,
                               "LRS %s paused: %s", ("main-lrs", "401 Unauthorized"), None)
    record.lrs = "main-lrs"
    record.instance = "docebo-main"
    record.statement_id = "6f1c1f3e-7a51-5c2b-9d45-2c0f5a2a8e11"
    record.reason = "auth"
    record.note = f"header was Authorization: Bearer {TOKEN}"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["level"] == "warning"
    assert doc["logger"] == "hub.delivery"
    assert doc["msg"] == "LRS main-lrs paused: 401 Unauthorized"
    assert doc["lrs"] == "main-lrs"
    assert doc["instance"] == "docebo-main"
    assert doc["statement_id"] == "6f1c1f3e-7a51-5c2b-9d45-2c0f5a2a8e11"
    assert doc["ts"].endswith("+00:00")
    assert TOKEN not in json.dumps(doc)  # extra fields are redacted too


def test_exception_text_is_redacted() -> None:
    try:
        raise RuntimeError(f"upstream said password={PASSWORD}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    for formatter in (JsonFormatter(), TextFormatter()):
        assert PASSWORD not in formatter.format(record)


# -- real code paths that hold credentials ------------------------------------------------------


def test_lrs_refusing_credentials_logs_no_secret(tmp_path: Path, captured: io.StringIO) -> None:
    seen_auth: list[str] = []

    def lrs(request: httpx.Request) -> httpx.Response:
        seen_auth.append(request.headers["authorization"])
        if len(seen_auth) == 1:  # a 5xx whose body echoes the request's credentials
            return httpx.Response(503, text=f"upstream error; got {request.headers}")
        return httpx.Response(401, json={"message": "bad credentials"})

    store = SqliteStore(tmp_path / "state.sqlite")
    try:
        for target in (
            LrsTarget(name="basic-lrs", endpoint="https://lrs.example.test/xapi/",
                      username=USER, password=PASSWORD),
            LrsTarget(name="bearer-lrs", endpoint="https://lrs2.example.test/xapi/",
                      token=TOKEN),
        ):
            seen_auth.clear()
            client = LrsClient(target, http=httpx.Client(transport=httpx.MockTransport(lrs)))
            item = OutboxItem(statement_id="6f1c1f3e-7a51-5c2b-9d45-2c0f5a2a8e11",
                              body=b'{"id":"6f1c1f3e-7a51-5c2b-9d45-2c0f5a2a8e11"}',
                              instance_id="acme", verb="completed", enqueued_at=NOW)
            store.outbox_append(target.name, [item], now=NOW)
            for minute in range(3):  # 503, then 401 (paused), then a probe
                clock = FrozenClock(NOW.replace(minute=minute * 10))
                deliver_once(store=store, lrs_name=target.name, client=client, clock=clock,
                             batch_size=10, max_batch_wait=0, lease_seconds=30,
                             retry_horizon=3600, rng=random.Random(0),  # noqa: S311
                             probe_interval=30)
            assert seen_auth  # the LRS did get the credentials
            logging.getLogger("test").info("client in use: %r", client)
            client.close()
    finally:
        store.close()
    text = captured.getvalue()
    assert "paused" in text  # the 401 was logged ...
    assert_no_secret(text, PASSWORD, TOKEN)  # ... without the credentials


def test_config_with_secrets_logs_no_secret(
    tmp_path: Path, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.config import load_config
    from hub.registry import Registry

    config = tmp_path / "config"
    config.mkdir()
    (config / "hub.yaml").write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "data"),
        "web": {"admin_token": "${ADMIN}"},
        "lrs": [{"name": "main", "endpoint": "https://lrs.example.test/xapi/",
                 "username": USER, "password": "${LRS_PASSWORD}"}],
    }))
    monkeypatch.setenv("ADMIN", TOKEN)
    monkeypatch.setenv("LRS_PASSWORD", PASSWORD)
    loaded = load_config(config, registry=Registry.from_classes([]))
    log = logging.getLogger("hub.test")
    log.info("loaded config %s", loaded.hub)
    log.info("lrs %r", loaded.hub.lrs[0], extra={"lrs": "main"})
    log.warning("dump %s", loaded.hub.model_dump())
    text = captured.getvalue()
    assert "main" in text
    assert_no_secret(text, PASSWORD, TOKEN)


def test_httpx_request_lines_are_not_logged(captured: io.StringIO) -> None:
    """httpx logs every URL at INFO; URLs can carry tokens, so the services silence it."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    with httpx.Client(transport=transport) as client:
        client.get(f"https://api.example.test/v1/users?access_token={TOKEN}")
    assert_no_secret(captured.getvalue(), TOKEN)
