"""WebSub: intent verification, signatures (vendors.md 8.3 item 3), leases, notifications."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from _youtube_kit import CHANNEL, FIXTURES, WEBSUB_SECRET, Kit, receiver_for

from connectors.youtube.connector import YouTubeConnector
from connectors.youtube.models import WebSubDeleted, WebSubVideo
from connectors.youtube.websub import (
    check_signature,
    parse_feed,
    subscription_key,
    topic_for,
)
from hub.events import WebhookRequest
from hub.testing import strict_router

TOPIC = topic_for(CHANNEL)
HUB = "https://pubsubhubbub.appspot.com/subscribe"
API = "https://www.googleapis.com/youtube/v3/videos"
WEBSUB = {"channels": [CHANNEL], "public_url": "https://hub.example.com",
          "websub_secret": WEBSUB_SECRET}  # fmt: skip
KEY = subscription_key(WEBSUB_SECRET.encode(), TOPIC)


def _get(yt: Kit, **params: str) -> WebhookRequest:
    return yt.request(b"", method="GET", origin=None,
                      query=str(httpx.QueryParams(params)))  # fmt: skip


def _notify(yt: Kit, body: bytes, signature: str | None, key: str = KEY) -> WebhookRequest:
    headers = {"x-hub-signature": signature} if signature else {}
    return yt.request(body, origin=None, content_type="application/atom+xml", headers=headers,
                      query=f"key={key}")  # fmt: skip


def _challenge(yt: Kit, conn: YouTubeConnector, topic: str = TOPIC, key: str = KEY,
               mode: str = "subscribe") -> tuple[int, bytes]:  # fmt: skip
    answer = conn.handshake(_get(yt, **{"hub.mode": mode, "hub.topic": topic,
                                        "hub.challenge": "c-42", "hub.lease_seconds": "432000",
                                        "key": key}))  # fmt: skip
    assert answer is not None
    return answer.status, answer.body


def test_signature_vectors() -> None:
    body, secret = b"<feed/>", WEBSUB_SECRET.encode()
    assert check_signature(secret, body, "sha1=1100a088d83ac1e1d1a8f9b86c3762214e85abb7")
    assert check_signature(
        secret, body, "sha256=4c2e585c6c7c4d33d72a7b8bd87433dc2bcb255e1a6e253ab84227c34df0d96b"
    )
    for bad in (None, "", "sha1=", "md5=abc", "sha1=1100a088d83ac1e1d1a8f9b86c3762214e85abb8",
                "sha1=zz", "1100a088d83ac1e1d1a8f9b86c3762214e85abb7"):  # fmt: skip
        assert not check_signature(secret, body, bad)


def test_challenge_is_echoed_and_the_lease_stored(yt: Kit) -> None:
    conn = yt.connector(**WEBSUB)
    assert _challenge(yt, conn) == (200, b"c-42")
    sub = conn.subscription(TOPIC)
    assert sub is not None
    assert sub.status == "active"
    assert sub.lease_seconds == 432000
    assert sub.verified_at == yt.clock.now()


@pytest.mark.parametrize("case", ["unknown_topic", "bad_key", "unrequested_unsubscribe"])
def test_unverifiable_intents_are_404(yt: Kit, case: str) -> None:
    conn = yt.connector(**WEBSUB)
    other = topic_for("UCaaaaaaaaaaaaaaaaaaaaaa")
    args = {
        "unknown_topic": {"topic": other, "key": subscription_key(WEBSUB_SECRET.encode(), other)},
        "bad_key": {"key": "0" * 32},
        "unrequested_unsubscribe": {"mode": "unsubscribe"},
    }[case]
    status, _ = _challenge(yt, conn, **args)
    assert status == 404


def test_requested_unsubscribe_is_confirmed(yt: Kit) -> None:
    conn = yt.connector(**WEBSUB)
    assert _challenge(yt, conn) == (200, b"c-42")
    removed = yt.connector(channels=[], public_url="https://hub.example.com",
                           websub_secret=WEBSUB_SECRET)  # fmt: skip
    with strict_router() as router:
        route = router.post(HUB).mock(return_value=httpx.Response(202))
        removed.maintain()
    assert parse_qs(route.calls.last.request.content.decode())["hub.mode"] == ["unsubscribe"]
    assert _challenge(yt, removed, mode="unsubscribe") == (200, b"c-42")
    assert removed.subscription(TOPIC) is None


def test_good_signature_is_parsed_and_refreshes_metadata(yt: Kit) -> None:
    import hashlib
    import hmac

    conn = yt.connector(**WEBSUB)
    kit = receiver_for(conn, yt.clock)
    body = (FIXTURES / "websub" / "y1_upload.xml").read_bytes()
    sig = "sha1=" + hmac.new(WEBSUB_SECRET.encode(), body, hashlib.sha1).hexdigest()
    answer = kit.receive(_notify(yt, body, sig))
    assert (answer.status, answer.body) == (200, b"")
    [event] = kit.enqueuer.events
    assert event.event_type == "websub.video"
    assert yt.map(conn, [event]) == []  # no statement unless publish_statements
    meta = conn.metadata.cached("7lCDEYXw3mM")
    assert meta is not None
    assert meta.title == "Google I/O 101: Q&A On Using Google APIs"


@pytest.mark.parametrize("signature", [None, "sha1=" + "0" * 40, "sha256=deadbeef"])
def test_bad_signature_is_2xx_and_dropped(yt: Kit, signature: str | None) -> None:
    conn = yt.connector(**WEBSUB)
    kit = receiver_for(conn, yt.clock)
    body = (FIXTURES / "websub" / "y1_upload.xml").read_bytes()
    good = kit.receive(_notify(yt, b"<feed xmlns='http://www.w3.org/2005/Atom'/>",
                               _sign(b"<feed xmlns='http://www.w3.org/2005/Atom'/>")))  # fmt: skip
    bad = kit.receive(_notify(yt, body, signature))
    assert bad.status == 200
    assert bad.body == b""
    assert (bad.status, bad.body, bad.content_type) == (good.status, good.body, good.content_type)
    assert kit.enqueuer.events == []


def test_unknown_callback_key_is_2xx_and_dropped(yt: Kit) -> None:
    kit = receiver_for(yt.connector(**WEBSUB), yt.clock)
    body = (FIXTURES / "websub" / "y1_upload.xml").read_bytes()
    assert kit.receive(_notify(yt, body, _sign(body), key="f" * 32)).status == 200
    assert kit.enqueuer.events == []


def _sign(body: bytes) -> str:
    import hashlib
    import hmac

    return "sha1=" + hmac.new(WEBSUB_SECRET.encode(), body, hashlib.sha1).hexdigest()


def test_lease_renewal_at_80_percent(yt: Kit) -> None:
    conn = yt.connector(**WEBSUB)
    with strict_router() as router:
        route = router.post(HUB).mock(return_value=httpx.Response(202))
        conn.maintain()  # first subscription
        form = parse_qs(route.calls.last.request.content.decode())
        assert form["hub.mode"] == ["subscribe"]
        assert form["hub.topic"] == [TOPIC]
        assert form["hub.secret"] == [WEBSUB_SECRET]
        assert form["hub.verify"] == ["async"]
        assert form["hub.callback"] == [f"https://hub.example.com/webhooks/test?key={KEY}"]
        conn.maintain()  # pending: not re-sent within the hour
        assert route.call_count == 1
        yt.clock.advance(60)
        assert _challenge(yt, conn) == (200, b"c-42")  # the hub verifies: 432000 s lease
        yt.clock.advance(432000 * 0.79)
        conn.maintain()
        assert route.call_count == 1  # not yet
        yt.clock.advance(432000 * 0.02)
        conn.maintain()
        assert route.call_count == 2  # renewed at 80 %


def test_hub_refusal_is_reported_by_maintain(yt: Kit) -> None:
    from hub.errors import MaintenanceIncomplete

    conn = yt.connector(**WEBSUB)
    with strict_router() as router:
        router.post(HUB).mock(return_value=httpx.Response(503))
        with pytest.raises(MaintenanceIncomplete, match="WebSub: WebSub subscribe: HTTP 503"):
            conn.maintain()
        router.post(HUB).mock(return_value=httpx.Response(403))
        with pytest.raises(MaintenanceIncomplete, match="HTTP 403 from the hub"):
            conn.maintain()


def test_parse_y1_and_y2() -> None:
    [upload] = parse_feed((FIXTURES / "websub" / "y1_upload.xml").read_bytes())
    assert isinstance(upload, WebSubVideo)
    assert (upload.video_id, upload.channel_id) == ("7lCDEYXw3mM", CHANNEL)
    assert upload.updated is not None
    assert upload.updated.isoformat() == "2015-03-09T19:05:24.552394+00:00"  # 9 digits cut
    [gone] = parse_feed((FIXTURES / "websub" / "y2_deleted.xml").read_bytes())
    assert isinstance(gone, WebSubDeleted)
    assert (gone.video_id, gone.channel_id) == ("7lCDEYXw3mM", CHANNEL)  # from <at:by><uri>


def test_dtd_is_refused() -> None:
    from hub.errors import BadRequest

    with pytest.raises(BadRequest):
        parse_feed(b'<!DOCTYPE x [<!ENTITY a "b">]><feed>&a;</feed>')


def test_tombstone_forgets_metadata(yt: Kit) -> None:
    conn = yt.connector(**WEBSUB)
    conn.metadata.remember(__import__("connectors.youtube.models", fromlist=["VideoMeta"])
                           .VideoMeta(video_id="7lCDEYXw3mM", title="x"))  # fmt: skip
    body = (FIXTURES / "websub" / "y2_deleted.xml").read_bytes()
    request = _notify(yt, body, _sign(body))
    conn.verify(request)
    assert yt.map(conn, conn.parse(request)) == []
    assert conn.metadata.cached("7lCDEYXw3mM") is None


def test_upload_with_api_key_refreshes_from_videos_list_and_can_publish(yt: Kit) -> None:
    conn = yt.connector(**WEBSUB, api_key="k", publish_statements=True)
    body = (FIXTURES / "websub" / "y1_upload.xml").read_bytes()
    request = _notify(yt, body, _sign(body))
    conn.verify(request)
    with strict_router() as router:
        router.get(API).mock(return_value=httpx.Response(
            200, content=(FIXTURES / "api" / "videos_list_y3.json").read_bytes()))  # fmt: skip
        statements = yt.map(conn, conn.parse(request))
    meta = conn.metadata.cached("7lCDEYXw3mM")
    assert meta is not None
    assert meta.length == 951.0
    assert meta.source == "videos.list"
    [posted] = statements
    assert posted.verb.id == "https://w3id.org/xapi/acrossx/verbs/posted"
    assert posted.actor.account is not None
    assert posted.actor.account.name == CHANNEL


_ = (Path, respx)
