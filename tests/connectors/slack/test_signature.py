"""Slack request signing (vendors.md 6.2, 8.3 vectors 1 and 2) and retries through the receiver."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.slack.connector import SlackConnector
from connectors.slack.settings import SlackSettings
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime
from hub.errors import InvalidSignature
from hub.events import SourceEvent, WebhookRequest
from hub.queue import ListEnqueuer
from hub.testing import MemoryDedupeStore
from hub.webhooks import Receiver, ReceiverInstance

FIXTURES = Path(__file__).parent / "fixtures"

OFFICIAL_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OFFICIAL_TS = 1531420618
OFFICIAL_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfm"
    b"ibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
OFFICIAL_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

HUB_SECRET = "test-signing-secret"
HUB_TS = 1599616882
HUB_SIGNATURE = "v0=5d539bb6efe482f04edc4f246d070f03bfb5aad97960d84b70987d06907d6631"
HUB_BODY = (FIXTURES / "events" / "reaction_added.json").read_bytes()


def connector(secret: str, now: float) -> SlackConnector:
    settings = SlackSettings(team_id="T111", signing_secret=secret, channels=("C111",))
    clock = FrozenClock(datetime.fromtimestamp(now, UTC))
    runtime = ConnectorRuntime(
        instance_id="slack-test", base_iri="https://x.example/xapi", clock=clock
    )
    return SlackConnector(settings, runtime=runtime)


def request(
    body: bytes, timestamp: str | None, signature: str | None, **extra: str
) -> WebhookRequest:
    headers = {"content-type": "application/json", **extra}
    if timestamp is not None:
        headers["x-slack-request-timestamp"] = timestamp
    if signature is not None:
        headers["x-slack-signature"] = signature
    return WebhookRequest(
        method="POST",
        path="/webhooks/slack-test",
        headers=headers,
        body=body,
        received_at=datetime(2020, 9, 9, 2, 1, 22, tzinfo=UTC),
    )


def test_official_vector_verifies() -> None:
    conn = connector(OFFICIAL_SECRET, OFFICIAL_TS)
    conn.verify(request(OFFICIAL_BODY, str(OFFICIAL_TS), OFFICIAL_SIGNATURE))


def test_official_vector_is_stale_after_301_seconds() -> None:
    conn = connector(OFFICIAL_SECRET, OFFICIAL_TS + 301)
    with pytest.raises(InvalidSignature, match="stale"):
        conn.verify(request(OFFICIAL_BODY, str(OFFICIAL_TS), OFFICIAL_SIGNATURE))


def test_official_vector_is_still_fresh_at_300_seconds() -> None:
    conn = connector(OFFICIAL_SECRET, OFFICIAL_TS + 300)
    conn.verify(request(OFFICIAL_BODY, str(OFFICIAL_TS), OFFICIAL_SIGNATURE))


def test_hub_vector_verifies() -> None:
    assert len(HUB_BODY) == 371
    conn = connector(HUB_SECRET, HUB_TS)
    conn.verify(request(HUB_BODY, str(HUB_TS), HUB_SIGNATURE))


def test_tampered_body_is_rejected() -> None:
    conn = connector(HUB_SECRET, HUB_TS)
    tampered = HUB_BODY.replace(b"heart_eyes", b"heart_eyez")
    with pytest.raises(InvalidSignature, match="bad Slack signature"):
        conn.verify(request(tampered, str(HUB_TS), HUB_SIGNATURE))


def test_wrong_secret_is_rejected() -> None:
    conn = connector("another-secret", HUB_TS)
    with pytest.raises(InvalidSignature):
        conn.verify(request(HUB_BODY, str(HUB_TS), HUB_SIGNATURE))


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        (None, HUB_SIGNATURE),
        (str(HUB_TS), None),
        ("", HUB_SIGNATURE),
        ("abc", HUB_SIGNATURE),
        ("1599616882.5", HUB_SIGNATURE),
        ("\u0661\u0665\u0669\u0669", HUB_SIGNATURE),  # Arabic-Indic digits: int() would accept
        ("9" * 40, HUB_SIGNATURE),
        (str(HUB_TS), "v1=" + HUB_SIGNATURE[3:]),
        (str(HUB_TS), HUB_SIGNATURE.upper()),
        (str(HUB_TS), HUB_SIGNATURE[:-1]),
        (str(HUB_TS), "v0=" + "z" * 64),
        (str(HUB_TS), "\u00e9"),
    ],
)
def test_malformed_headers_are_invalid_not_crashes(
    timestamp: str | None, signature: str | None
) -> None:
    conn = connector(HUB_SECRET, HUB_TS)
    with pytest.raises(InvalidSignature):
        conn.verify(request(HUB_BODY, timestamp, signature))


def test_non_utf8_body_is_invalid() -> None:
    conn = connector(HUB_SECRET, HUB_TS)
    with pytest.raises(InvalidSignature):
        conn.verify(request(b"\xff\xfe" + HUB_BODY, str(HUB_TS), HUB_SIGNATURE))


# --- through the real receiver ---------------------------------------------------------------


def receiver(conn: SlackConnector) -> tuple[Receiver, ListEnqueuer]:
    enqueuer = ListEnqueuer()
    rec = Receiver(
        {"slack-test": ReceiverInstance(conn)},
        store=MemoryDedupeStore(),
        enqueuer=enqueuer,
        clock=conn.runtime.clock,
    )
    return rec, enqueuer


@pytest.mark.parametrize(
    ("now", "body", "timestamp", "signature"),
    [
        (HUB_TS + 301, HUB_BODY, str(HUB_TS), HUB_SIGNATURE),  # stale
        (HUB_TS, HUB_BODY.replace(b"W111", b"W999", 1), str(HUB_TS), HUB_SIGNATURE),  # tampered
        (HUB_TS, HUB_BODY, "1599616882; drop table", HUB_SIGNATURE),  # malformed
        (HUB_TS, HUB_BODY, str(HUB_TS), "sha256=abc"),  # malformed
    ],
)
def test_receiver_answers_401_and_enqueues_nothing(
    now: int, body: bytes, timestamp: str, signature: str
) -> None:
    conn = connector(HUB_SECRET, now)
    rec, enqueuer = receiver(conn)
    answer = rec.receive("slack-test", request(body, timestamp, signature))
    assert answer.status == 401
    assert enqueuer.events == []


def test_slack_retry_is_dropped_as_duplicate_by_the_receiver() -> None:
    conn = connector(HUB_SECRET, HUB_TS)
    rec, enqueuer = receiver(conn)
    first = rec.receive("slack-test", request(HUB_BODY, str(HUB_TS), HUB_SIGNATURE))
    retry = request(
        HUB_BODY,
        str(HUB_TS),
        HUB_SIGNATURE,
        **{"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"},
    )
    again = rec.receive("slack-test", retry)
    assert (first.status, again.status) == (200, 200)
    events: list[SourceEvent] = list(enqueuer.events)
    assert [e.delivery_id for e in events] == ["Ev111"]
    assert rec.stats.snapshot().duplicates == {"slack-test": 1}
    assert conn.parse(retry)[0].delivery_id == conn.parse(first_request())[0].delivery_id


def first_request() -> WebhookRequest:
    return request(HUB_BODY, str(HUB_TS), HUB_SIGNATURE)


def test_url_verification_is_verified_then_answered() -> None:
    body = (
        b'{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":'
        b'"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'
    )
    conn = connector(HUB_SECRET, HUB_TS)
    from slack_sdk.signature import SignatureVerifier

    good = SignatureVerifier(HUB_SECRET).generate_signature(timestamp=str(HUB_TS), body=body)
    assert good is not None
    rec, enqueuer = receiver(conn)
    answer = rec.receive("slack-test", request(body, str(HUB_TS), good))
    assert answer.status == 200
    assert answer.body == b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert answer.content_type.startswith("text/plain")
    forged = rec.receive("slack-test", request(body, str(HUB_TS), HUB_SIGNATURE))
    assert forged.status == 401
    assert enqueuer.events == []
