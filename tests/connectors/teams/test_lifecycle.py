"""Subscription upkeep against respx-mocked Graph (vendors.md 5.2, 5.4, 8.5 item 7)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from connectors.teams.connector import SubscriptionRecord, TeamsConnector
from hub.errors import MaintenanceIncomplete
from hub.events import WebhookRequest
from hub.testing import MemoryState, StrictRouter, json_response, strict_router
from tests.connectors.teams._graph import (
    API,
    CHAN1,
    CHAN2,
    GRAPH,
    NOW,
    TEAM1,
    TEAM2,
    build,
    delta_url,
    mock_token,
)

EVENTS = Path(__file__).parent / "fixtures" / "events"
SUB1 = "7b4c9f65-8a2d-4f6e-9c11-3f2e1d0c9b8a"
SUB2 = "0c1d2e3f-0000-4000-8000-000000000002"


@pytest.fixture
def router() -> Iterator[StrictRouter]:
    r = strict_router()
    with r:
        yield r


def subscribed(router: StrictRouter, state: MemoryState, *, hours_left: float) -> TeamsConnector:
    conn = build(router, state=state)
    for sub_id, ch in ((SUB1, conn.settings.channels[0]), (SUB2, conn.settings.channels[1])):
        record = SubscriptionRecord(
            id=sub_id,
            resource=f"/teams/{ch.team_id}/channels/{ch.channel_id}/messages",
            expires_at=NOW + timedelta(hours=hours_left),
        )
        state.set(f"subscription:{ch.key}", record.model_dump_json())
    return conn


def deliver(conn: TeamsConnector, name: str) -> int:
    """handshake -> verify -> parse -> acknowledge, as the receiver runs them."""
    request = WebhookRequest(
        method="POST", path="/webhooks/teams-test", query_string="lifecycle=1",
        headers={"content-type": "application/json"},
        body=(EVENTS / f"{name}.json").read_bytes(), received_at=NOW,
    )  # fmt: skip
    assert conn.handshake(request) is None
    conn.verify(request)
    events = conn.parse(request)
    assert events == []  # lifecycle messages never become statements
    return conn.acknowledge(request, events).status


def created(sub_id: str) -> httpx.Response:
    data = json.loads((API / "subscription.json").read_text())
    return httpx.Response(201, json={**data, "id": sub_id})


def test_maintain_creates_missing_subscriptions(router: StrictRouter) -> None:
    mock_token(router)
    route = router.post(f"{GRAPH}/subscriptions").mock(side_effect=[created(SUB1), created(SUB2)])
    state = MemoryState()
    conn = build(router, state=state)
    conn.maintain()
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert [b["resource"] for b in bodies] == [
        f"/teams/{TEAM1}/channels/{CHAN1}/messages",
        f"/teams/{TEAM2}/channels/{CHAN2}/messages",
    ]
    first = bodies[0]
    assert first["clientState"] == conn.client_state(conn.settings.channels[0])
    assert first["clientState"] != bodies[1]["clientState"]
    assert len(first["clientState"]) <= 128
    assert first["includeResourceData"] is True
    assert first["encryptionCertificateId"] == "hub-2024-05"
    assert "BEGIN" not in first["encryptionCertificate"]
    assert first["notificationUrl"] == "https://hub.example.com/webhooks/test"
    assert first["lifecycleNotificationUrl"] == "https://hub.example.com/webhooks/test?lifecycle=1"
    assert first["expirationDateTime"] == "2025-07-04T10:00:00.0000000Z"  # now + 4200 min
    record = conn.subscription(conn.settings.channels[0])
    assert record is not None
    assert record.id == SUB1


def test_renewal_before_expiry(router: StrictRouter) -> None:
    mock_token(router)
    data = json.loads((API / "subscription.json").read_text())
    patch1 = router.patch(f"{GRAPH}/subscriptions/{SUB1}").mock(
        return_value=json_response({**data, "id": SUB1})
    )
    patch2 = router.patch(f"{GRAPH}/subscriptions/{SUB2}").mock(
        return_value=json_response({**data, "id": SUB2})
    )
    state = MemoryState()
    conn = subscribed(router, state, hours_left=10)  # within the 24 h renewal window
    conn.maintain()
    assert json.loads(patch1.calls.last.request.content) == {
        "expirationDateTime": "2025-07-04T10:00:00.0000000Z"
    }
    assert patch2.call_count == 1
    record = conn.subscription(conn.settings.channels[0])
    assert record is not None
    assert record.expires_at.isoformat() == "2025-07-04T10:00:00+00:00"


def test_no_call_while_far_from_expiry(router: StrictRouter) -> None:
    conn = subscribed(router, MemoryState(), hours_left=48)
    conn.maintain()  # the strict router fails on any request


def test_renewal_rate_limited_is_reported_and_the_other_channel_still_renewed(
    router: StrictRouter,
) -> None:
    mock_token(router)
    router.patch(f"{GRAPH}/subscriptions/{SUB1}").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "2"})
    )
    renew2 = router.patch(f"{GRAPH}/subscriptions/{SUB2}").mock(return_value=created(SUB2))
    state = MemoryState()
    conn = subscribed(router, state, hours_left=10)
    before = state.get(f"subscription:{conn.settings.channels[0].key}")
    with pytest.raises(MaintenanceIncomplete) as info:
        conn.maintain()
    [error] = info.value.errors
    assert error.startswith(f"channel {conn.settings.channels[0].key}: RateLimited:")
    assert renew2.call_count == 1  # the first channel's 429 did not stop the second's renewal
    assert state.get(f"subscription:{conn.settings.channels[0].key}") == before  # kept as is


def test_reauthorization_required_reauthorizes(router: StrictRouter) -> None:
    mock_token(router)
    reauth = router.post(f"{GRAPH}/subscriptions/{SUB1}/reauthorize").mock(
        return_value=httpx.Response(204)
    )
    state = MemoryState()
    conn = subscribed(router, state, hours_left=48)
    assert deliver(conn, "lifecycle_reauthorizationRequired") == 202
    conn.maintain()
    assert reauth.call_count == 1
    assert conn.pending_lifecycle(conn.settings.channels[0]) == frozenset()
    assert not conn.resync_requested(conn.settings.channels[0])


def test_refused_reauthorization_recreates_and_resyncs(router: StrictRouter) -> None:
    mock_token(router)
    router.post(f"{GRAPH}/subscriptions/{SUB1}/reauthorize").mock(return_value=httpx.Response(404))
    create = router.post(f"{GRAPH}/subscriptions").mock(return_value=created("new-sub-1"))
    conn = subscribed(router, MemoryState(), hours_left=48)
    deliver(conn, "lifecycle_reauthorizationRequired")
    conn.maintain()
    assert create.call_count == 1
    channel = conn.settings.channels[0]
    record = conn.subscription(channel)
    assert record is not None
    assert record.id == "new-sub-1"
    assert conn.resync_requested(channel)


def delta_routes(router: StrictRouter) -> httpx.Response:
    page = json.loads((API / "delta_channel1_page2.json").read_text())
    return json_response(page)


def test_subscription_removed_recreates_then_delta_resyncs(router: StrictRouter) -> None:
    mock_token(router)
    create = router.post(f"{GRAPH}/subscriptions").mock(return_value=created("new-sub-1"))
    delta = router.get(delta_url(TEAM1, CHAN1), params={"$deltatoken": "saved"}).mock(
        return_value=json_response(API / "delta_channel1_page2.json")
    )
    conn = subscribed(router, MemoryState(), hours_left=48)
    channel = conn.settings.channels[0]
    assert deliver(conn, "lifecycle_subscriptionRemoved") == 202
    conn.maintain()
    assert create.call_count == 1
    assert conn.resync_requested(channel)
    # the next poll resyncs from the last checkpoint (the saved deltaLink) and clears the flag
    from connectors.teams.connector import TeamsCursor

    cursor = TeamsCursor(delta_links={channel.key: f"{delta_url(TEAM1, CHAN1)}?$deltatoken=saved"})
    result = conn.poll(cursor, until=NOW)
    assert delta.call_count == 1
    assert [e.payload["message"]["id"] for e in result.events] == [  # type: ignore[call-overload,index]
        "1606515500000",
        "1606515500001",
        "1606515600000",
    ]
    assert not conn.resync_requested(channel)


def test_missed_flags_a_delta_resync_without_calls(router: StrictRouter) -> None:
    conn = subscribed(router, MemoryState(), hours_left=48)
    assert deliver(conn, "lifecycle_missed") == 202
    conn.maintain()
    assert conn.resync_requested(conn.settings.channels[0])
    assert not conn.resync_requested(conn.settings.channels[1])


def test_expired_subscription_after_downtime_is_recreated_with_resync(router: StrictRouter) -> None:
    mock_token(router)
    router.post(f"{GRAPH}/subscriptions").mock(side_effect=[created("a"), created("b")])
    conn = subscribed(router, MemoryState(), hours_left=-1)
    conn.maintain()
    assert all(conn.resync_requested(ch) for ch in conn.settings.channels)


def test_notification_without_resource_data_requests_resync() -> None:
    conn = build(state=MemoryState())
    assert deliver(conn, "notification_without_resource_data") == 202
    assert conn.resync_requested(conn.settings.channels[0])


def test_no_subscriptions_without_a_notification_url(router: StrictRouter) -> None:
    conn = build(router, notification_url=None)
    conn.maintain()


def test_status_details_show_live_subscriptions_and_the_next_expiry(router: StrictRouter) -> None:
    state = MemoryState()
    conn = subscribed(router, state, hours_left=10)
    facts = conn.status_details
    assert facts() == {"Graph subscriptions": "2 of 2 channels, next expiry in 10.0 h"}
    expired = SubscriptionRecord.model_validate_json(
        state.get(f"subscription:{conn.settings.channels[1].key}") or ""
    ).model_copy(update={"expires_at": NOW - timedelta(minutes=1)})
    state.set(f"subscription:{conn.settings.channels[1].key}", expired.model_dump_json())
    assert facts() == {"Graph subscriptions": "1 of 2 channels, next expiry in 10.0 h"}
    assert build(router, notification_url=None).status_details() == {}  # delta polling only
