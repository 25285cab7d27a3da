"""The server sweep (vendors.md 4.6): a session silent for 30 minutes is terminated (preceded by
a synthetic paused if it was playing), through an event `maintain()` returns and the normalizer
maps like any other."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from _youtube_kit import CHANNEL, WEBSUB_SECRET, Kit, result_ext, verbs, y5_body

from connectors.youtube.connector import IDLE_EVENT, YouTubeConnector
from hub import MaintenanceIncomplete, TransientError
from hub.events import SourceEvent
from hub.testing import MemoryState, strict_router

WEBSUB_HUB = "https://pubsubhubbub.appspot.com/subscribe"

LAST_SEEN = datetime(2024, 5, 3, 14, 25, 3, 300000, tzinfo=UTC)  # Y5's seq 4 (playing at 320 s)


def playing_body() -> dict[str, Any]:
    """Y5 up to seq 4: the player is playing at 320 s, then the tab dies (no unload)."""
    body = y5_body()
    body["events"] = [e for e in body["events"] if e["seq"] <= 4]
    return body


def start(yt: Kit) -> YouTubeConnector:
    # Received two seconds after its last event, as a tracker's periodic batch would be.
    yt.clock.set(datetime(2024, 5, 3, 14, 25, 5, 300000, tzinfo=UTC))
    conn = yt.connector(completion_threshold=0.9)
    assert verbs(yt.send(conn, playing_body())) == ["initialized", "played", "seeked", "played"]
    return conn


def test_a_session_silent_for_30_minutes_is_paused_and_terminated(yt: Kit) -> None:
    conn = start(yt)
    yt.clock.advance(31 * 60)
    (idle,) = conn.maintain()
    assert idle.event_type == IDLE_EVENT
    assert idle.instance_id == "test"
    statements = yt.map(conn, [idle])
    assert verbs(statements) == ["paused", "terminated"]
    for statement in statements:
        # Where and when the player was last observed, not when the sweep ran (the synthetic
        # unload is judged like the last batch: a client clock off by more than the skew limit
        # would give that batch's receipt time, flagged inferred).
        assert result_ext(statement, "time") == 320.0
        assert statement.timestamp == LAST_SEEN
    assert result_ext(statements[1], "progress") == 0.315  # 300 of 951 s watched
    # Swept once: the session is closed now.
    yt.clock.advance(10 * 60)
    assert conn.maintain() == []


def test_a_failing_websub_hub_does_not_hold_the_sweep_back(yt: Kit) -> None:
    yt.clock.set(datetime(2024, 5, 3, 14, 25, 5, 300000, tzinfo=UTC))
    websub = {"channels": [CHANNEL], "public_url": "https://hub.example.com",
              "websub_secret": WEBSUB_SECRET}  # fmt: skip
    conn = yt.connector(completion_threshold=0.9, **websub)
    with strict_router() as router:
        router.post(WEBSUB_HUB).mock(return_value=httpx.Response(503))
        yt.send(conn, playing_body())
        yt.clock.advance(31 * 60)
        with pytest.raises(MaintenanceIncomplete, match="WebSub") as failed:
            conn.maintain()
    (idle,) = failed.value.events  # the hub enqueues these, then records the failure
    assert idle.event_type == IDLE_EVENT
    assert verbs(yt.map(conn, [idle])) == ["paused", "terminated"]


def test_a_session_heard_from_recently_is_not_swept(yt: Kit) -> None:
    conn = start(yt)
    yt.clock.advance(20 * 60)
    assert conn.maintain() == []


def test_a_session_ended_by_its_unload_beacon_is_not_swept(yt: Kit) -> None:
    conn = yt.connector(completion_threshold=0.9)
    assert verbs(yt.send(conn, y5_body()))[-1] == "terminated"
    yt.clock.advance(60 * 60)
    assert conn.maintain() == []


def test_activity_after_the_sweep_looked_cancels_it(yt: Kit) -> None:
    conn = start(yt)
    yt.clock.advance(31 * 60)
    (idle,) = conn.maintain()
    # The learner comes back before the normalizer maps the sweep's event.
    body = playing_body()
    body["events"] = [{"seq": 5, "type": "heartbeat", "client_ts": "2024-05-03T15:06:00Z",
                       "t": 340.0, "rate": 1}]  # fmt: skip
    body["sent_at"] = "2024-05-03T15:06:41Z"
    yt.send(conn, body)
    assert yt.map(conn, [idle]) == []


def test_the_same_sweep_event_twice_terminates_once(yt: Kit) -> None:
    conn = start(yt)
    yt.clock.advance(31 * 60)
    (idle,) = conn.maintain()
    assert verbs(yt.map(conn, [idle])) == ["paused", "terminated"]
    assert yt.map(conn, [idle]) == []


def test_swept_terminated_has_the_id_an_unload_would_have(yt: Kit) -> None:
    # Deterministic ids: were the beacon to arrive after all, the LRS sees the same statement
    # id (and the session ignores anything after terminated).
    conn = start(yt)
    yt.clock.advance(31 * 60)
    swept = yt.map(conn, conn.maintain())[-1]
    other = Kit()
    beacon = other.connector(completion_threshold=0.9)
    body = playing_body()
    body["events"].append({"seq": 5, "type": "unload", "client_ts": "2024-05-03T14:25:04Z",
                           "t": 320.0})  # fmt: skip
    unloaded = other.send(beacon, body)[-1]
    assert verbs([unloaded, swept]) == ["terminated", "terminated"]
    assert unloaded.id == swept.id


def test_a_sweep_event_for_an_unknown_session_maps_to_nothing(yt: Kit) -> None:
    conn = yt.connector()
    event = SourceEvent(
        instance_id="test",
        event_type=IDLE_EVENT,
        payload={"session_id": "0f0e0d0c-0000-4000-8000-000000000000"},
        delivery_id="idle:x",
        received_at=yt.clock.now(),
        via="poll",
    )
    assert yt.map(conn, [event]) == []


@dataclass
class RacingState(MemoryState):
    """A state where another worker adds `rival` to the open-session index right after this one
    read it (once), as two normalizers opening sessions at the same instant would."""

    rival: str = "ses-of-another-worker"
    raced: bool = False

    def get(self, key: str) -> str | None:
        value = super().get(key)
        if key == "open-sessions" and not self.raced:
            self.raced = True
            found = json.loads(self.values.get(key) or "[]")
            self.values[key] = json.dumps(sorted([*found, self.rival]))
        return value


def test_sessions_opened_at_the_same_instant_by_two_workers_are_both_indexed(yt: Kit) -> None:
    yt.state = RacingState()
    start(yt)  # this worker's session; another worker's was indexed in between
    index = set(json.loads(yt.state.values["open-sessions"]))
    (own,) = index - {"ses-of-another-worker"}
    assert index == {own, "ses-of-another-worker"}
    # And the sweep still finds this worker's session (the rival has no record: it is dropped).
    yt.clock.advance(31 * 60)
    conn = yt.connector(completion_threshold=0.9)
    (idle,) = conn.maintain()
    assert isinstance(idle.payload, dict)
    assert idle.payload["session_id"] == own
    assert json.loads(yt.state.values["open-sessions"]) == [own]


@dataclass
class AlwaysChangingState(MemoryState):
    def compare_and_set(
        self, key: str, expected: str | None, value: str, *, ttl_seconds: float | None = None
    ) -> bool:
        return False


def test_an_index_that_never_settles_retries_the_batch_instead_of_dropping_the_entry(
    yt: Kit,
) -> None:
    yt.state = AlwaysChangingState()
    yt.clock.set(datetime(2024, 5, 3, 14, 25, 5, 300000, tzinfo=UTC))
    conn = yt.connector(completion_threshold=0.9)
    with pytest.raises(TransientError, match="open-session index kept changing"):
        yt.send(conn, playing_body())
