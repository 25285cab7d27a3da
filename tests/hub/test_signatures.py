"""hub.signatures pieces added for Cornerstone Edge: body digests, Date windows, path+query."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hub import BodyDigestVerifier, DateHeaderVerifier, HmacVerifier, InvalidSignature
from hub.clock import FrozenClock
from hub.events import WebhookRequest

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
BODY = b'{"records":[]}'


def request(headers: dict[str, str], body: bytes = BODY, query: str = "") -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        path="/webhooks/csod",
        query_string=query,
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        received_at=NOW,
    )


@pytest.mark.parametrize(
    "digest",
    [
        hashlib.sha256(BODY).hexdigest(),
        hashlib.sha256(BODY).hexdigest().upper(),
        base64.b64encode(hashlib.sha256(BODY).digest()).decode(),
    ],
)
def test_body_digest_accepts_hex_or_base64(digest: str) -> None:
    BodyDigestVerifier(header="x-content-sha256").verify(request({"x-content-sha256": digest}))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing x-content-sha256"),
        ({"x-content-sha256": hashlib.sha256(b"other").hexdigest()}, "does not match"),
        ({"x-content-sha256": "not a digest"}, "does not match"),
        ({"x-content-sha256": "éèê"}, "does not match"),  # non-ASCII: refused, not a crash
    ],
)
def test_body_digest_refuses_missing_or_different(headers: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidSignature, match=message):
        BodyDigestVerifier(header="x-content-sha256").verify(request(headers))


def test_a_changed_body_fails_the_digest_it_was_sent_with() -> None:
    digest = hashlib.sha256(BODY).hexdigest()
    with pytest.raises(InvalidSignature):
        BodyDigestVerifier(header="x-content-sha256").verify(
            request({"x-content-sha256": digest}, body=BODY + b" ")
        )


@pytest.mark.parametrize("offset", [0, -290, 290])
def test_date_within_the_window_passes(offset: int) -> None:
    date = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    DateHeaderVerifier(clock=FrozenClock(NOW)).verify(request({"Date": date}))


@pytest.mark.parametrize(
    ("date", "message"),
    [
        (format_datetime(NOW - timedelta(seconds=301), usegmt=True), "replay window"),
        (format_datetime(NOW + timedelta(seconds=301), usegmt=True), "replay window"),
        ("yesterday", "malformed"),
        ("Sat, 28 Nov 2026 12:00:00", "time zone"),
    ],
)
def test_date_outside_the_window_or_malformed_fails(date: str, message: str) -> None:
    with pytest.raises(InvalidSignature, match=message):
        DateHeaderVerifier(clock=FrozenClock(NOW)).verify(request({"Date": date}))


def test_date_header_is_required() -> None:
    with pytest.raises(InvalidSignature, match="missing date"):
        DateHeaderVerifier(clock=FrozenClock(NOW)).verify(request({}))


def test_hmac_can_sign_the_path_with_its_query() -> None:
    verifier = HmacVerifier(
        secrets=["k"],
        header="authorization",
        encoding="base64",
        signed_string="{method}\n{path_and_query}",
        clock=FrozenClock(NOW),
    )
    with_query = request({}, query="a=1&b=2")
    assert verifier.signed_bytes(with_query, None) == b"POST\n/webhooks/csod?a=1&b=2"
    assert verifier.signed_bytes(request({}), None) == b"POST\n/webhooks/csod"
    signed = request({"authorization": verifier.sign(with_query)}, query="a=1&b=2")
    verifier.verify(signed)
    moved = request({"authorization": verifier.sign(with_query)}, query="a=2&b=2")
    with pytest.raises(InvalidSignature, match="mismatch"):
        verifier.verify(moved)
