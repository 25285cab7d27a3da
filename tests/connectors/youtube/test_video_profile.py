"""Player events -> xAPI Video Profile statements (vendors.md 4.4 Y5, 4.5, 4.6, 8.2, 8.5 item 9).

One test per Video Profile rule of 4.5 that applies, plus the Y5 sequence, thresholds, seek
tolerance, repeated sequence numbers, clock clamping and the deterministic ids.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _youtube_kit import ORIGIN, VIDEO, Kit, context_ext, result_ext, verbs, y5_body

from connectors.youtube.session import format_segments, merge_segments, progress
from hub.errors import MappingError
from hub.xapi import Statement, validate_statement

SESSION = "2f0d7c4e-8a4b-4f0e-9a51-0c7b1d3e5a77"
T0 = datetime(2024, 5, 3, 14, 20, tzinfo=UTC)
SNAPSHOT_VERBS = ("paused", "completed", "terminated")


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def batch(*events: dict[str, Any], session: str = SESSION, **extra: Any) -> dict[str, Any]:
    return {
        "session_id": session,
        "video_id": "7lCDEYXw3mM",
        "page_url": "https://learn.example.com/paths/apis/lesson-3",
        "player": {"origin": ORIGIN, "user_agent": "Mozilla/5.0", "screen_size": "1920x1080"},
        "events": list(events),
        **extra,
    }


def ev(seq: int, kind: str, at: float, **fields: Any) -> dict[str, Any]:
    return {"seq": seq, "type": kind, "client_ts": ts(at), **fields}


def play_pause_batch() -> dict[str, Any]:
    return batch(
        ev(0, "ready", 0, duration=100.0),
        ev(1, "state", 1, state=1, t=0.0, rate=1),
        ev(2, "state", 41, state=2, t=40.0),
    )


@pytest.fixture
def y5(yt: Kit) -> list[Statement]:
    return yt.send(yt.connector(completion_threshold=0.9), y5_body())


# -- Y5 (vendors.md 4.4, 8.5 item 9) -----------------------------------------------------------


def test_y5_exact_sequence_and_values(y5: list[Statement]) -> None:
    assert verbs(y5) == [
        "initialized", "played", "seeked", "played", "paused", "completed", "terminated"
    ]  # fmt: skip
    initialized, played0, seeked, played320, paused, completed, terminated = y5
    assert str(initialized.id) == "a8d76c03-dea1-5b81-93ca-1dd2f17976fb"
    assert str(completed.id) == "f75e92cf-c90e-51e1-8b2d-1c7e31ea1724"
    assert result_ext(played0, "time") == 0.0
    assert (result_ext(seeked, "time-from"), result_ext(seeked, "time-to")) == (300.0, 320.0)
    assert result_ext(played320, "time") == 320.0
    segments = "0.000[.]300.000[,]320.000[.]951.000"
    for s in (paused, completed, terminated):
        assert result_ext(s, "time") == 951.0
        assert result_ext(s, "progress") == 0.979
        assert result_ext(s, "played-segments") == segments
    assert completed.result is not None
    assert completed.result.duration == "PT15M31S"
    assert completed.context is not None
    assert str(completed.context.registration) == "1bc88377-1b97-57c1-a064-8b6395fa0fad"
    assert completed.context.platform == "YouTube"
    stamps = [s.timestamp.isoformat() for s in y5 if s.timestamp]
    assert stamps[0] == "2024-05-03T14:20:00.120000+00:00"
    assert completed.timestamp == datetime(2024, 5, 3, 14, 35, 34, 300000, tzinfo=UTC)


def test_y5_statements_are_valid_xapi(y5: list[Statement]) -> None:
    for s in y5:
        assert validate_statement(s, now=datetime(2024, 5, 3, 15, tzinfo=UTC), hub_rules=True) == []


def test_threshold_one_sends_no_completed(yt: Kit) -> None:
    statements = yt.send(yt.connector(completion_threshold=1.0), y5_body())
    assert "completed" not in verbs(statements)
    assert verbs(statements) == ["initialized", "played", "seeked", "played", "paused",
                                 "terminated"]  # fmt: skip
    # The default threshold 1 is not stated (4.5: MUST only when it is not 1).
    assert all(context_ext(s, "completion-threshold") is None for s in statements)


def test_seek_jitter_under_tolerance_is_not_a_seek(yt: Kit) -> None:
    yt.clock.set(T0 + timedelta(seconds=40))
    statements = yt.send(yt.connector(), batch(
        ev(0, "ready", 0, duration=100.0), ev(1, "state", 1, state=1, t=0.0),
        ev(2, "heartbeat", 11, t=11.4),  # expected 10.0: 1.4 s off, under the 1.5 s tolerance
        ev(3, "heartbeat", 21, t=21.0), ev(4, "state", 31, state=2, t=30.5),
    ))  # fmt: skip
    assert verbs(statements) == ["initialized", "played", "paused"]
    assert result_ext(statements[-1], "played-segments") == "0.000[.]30.500"


def test_seek_tolerance_is_configurable(yt: Kit) -> None:
    statements = yt.send(yt.connector(seek_tolerance_seconds=30.0), y5_body())
    assert "seeked" not in verbs(statements)


# -- batches, sequence numbers, clocks ------------------------------------------------------------


def test_repeated_sequence_numbers_are_ignored_across_batches(yt: Kit) -> None:
    conn = yt.connector()
    body = y5_body()
    first = batch(*body["events"][:3])
    second = batch(*body["events"][1:5])  # repeats seq 1 and 2 (a sendBeacon retry)
    third = batch(*body["events"][4:])  # repeats seq 4
    out = [verbs(yt.send(conn, b)) for b in (first, second, third)]
    assert out == [["initialized", "played"], ["seeked", "played"],
                   ["paused", "completed", "terminated"]]  # fmt: skip
    resent = dict(second, sent_at=ts(2000))  # another envelope with the same seqs: nothing
    assert verbs(yt.send(conn, resent)) == []
    # The identical envelope again (the inbox normally drops it) gives the same statements.
    assert [s.id for s in yt.send(conn, second)] == [s.id for s in yt.send(conn, second)]


def test_out_of_order_events_in_a_batch_are_sorted(yt: Kit) -> None:
    body = y5_body()
    body["events"].reverse()
    assert verbs(yt.send(yt.connector(completion_threshold=0.9), body)) == verbs(
        yt.send(Kit().connector(completion_threshold=0.9), y5_body())
    )


def test_remapping_the_same_envelope_gives_identical_statements(yt: Kit) -> None:
    conn = yt.connector()
    events = yt.events(conn, y5_body())
    first = yt.map(conn, events)
    again = yt.map(conn, events)  # a worker crashed after mapping: the inbox replays it
    assert [s.model_dump_json() for s in again] == [s.model_dump_json() for s in first]


def test_client_clock_far_off_is_clamped_to_receipt_time(yt: Kit) -> None:
    yt.clock.set(T0 + timedelta(hours=2))  # the browser's clock is 2 h behind the server's
    statements = yt.send(yt.connector(), play_pause_batch())
    inferred = "https://lrs-hub.example.com/xapi/extensions/timestamp-inferred"
    for s in statements:
        assert s.timestamp == yt.clock.now()
        assert s.context is not None
        assert s.context.extensions is not None
        assert s.context.extensions[inferred] is True


def test_client_clock_within_limit_is_kept(yt: Kit) -> None:
    yt.clock.set(T0 + timedelta(seconds=45))
    statements = yt.send(yt.connector(), play_pause_batch())
    assert [s.timestamp for s in statements] == [T0, T0 + timedelta(seconds=1),
                                                 T0 + timedelta(seconds=41)]  # fmt: skip


def test_a_session_belongs_to_one_learner(yt: Kit) -> None:
    conn = yt.connector()
    yt.send(conn, batch(ev(0, "ready", 0, duration=100.0)))
    intruder = yt.events(conn, batch(ev(1, "state", 1, state=1, t=0.0)), token=yt.token(sub="eve"))
    with pytest.raises(MappingError):
        yt.map(conn, intruder)


# -- Video Profile rules (vendors.md 4.5), one test each ----------------------------------------


def test_rule_initialized_first_exactly_once(yt: Kit) -> None:
    conn = yt.connector()
    first = yt.send(conn, batch(ev(0, "state", 0, state=1, t=0.0, duration=100.0)))
    assert verbs(first) == ["initialized", "played"]  # synthetic initialized when no ready
    later = yt.send(conn, batch(ev(1, "ready", 5, duration=100.0), ev(2, "state", 6, state=2,
                                                                        t=5.0)))  # fmt: skip
    assert "initialized" not in verbs(later)


def test_rule_initialized_waits_for_a_length(yt: Kit) -> None:
    yt.clock.set(T0 + timedelta(seconds=10))
    conn = yt.connector()
    assert yt.send(conn, batch(ev(0, "ready", 0))) == []  # getDuration() was 0 (pitfall 1)
    statements = yt.send(conn, batch(ev(1, "state", 2, state=1, t=0.0, duration=100.0)))
    assert verbs(statements) == ["initialized", "played"]
    assert context_ext(statements[0], "length") == 100.0
    assert statements[0].timestamp == T0  # the ready's time


def test_rule_played_when_playback_starts_not_on_buffering(yt: Kit) -> None:
    statements = yt.send(yt.connector(), batch(
        ev(0, "ready", 0, duration=100.0), ev(1, "state", 1, state=1, t=0.0),
        ev(2, "state", 11, state=3, t=10.0), ev(3, "state", 14, state=1, t=10.0),
    ))  # fmt: skip
    assert verbs(statements) == ["initialized", "played"]  # a stall is neither seek nor play


def test_rule_paused_precedes_terminated(yt: Kit) -> None:
    statements = yt.send(yt.connector(), batch(
        ev(0, "ready", 0, duration=100.0), ev(1, "state", 1, state=1, t=0.0),
        ev(2, "unload", 21, t=20.0),
    ))  # fmt: skip
    assert verbs(statements) == ["initialized", "played", "paused", "terminated"]
    assert result_ext(statements[2], "time") == 20.0


def test_rule_seeked_uses_time_from_and_time_to_only(y5: list[Statement]) -> None:
    seeked = y5[2]
    assert seeked.result is not None
    assert seeked.result.extensions is not None
    assert set(seeked.result.extensions) == {VIDEO + "time-from", VIDEO + "time-to"}
    others = [s for s in y5 if s is not seeked and s.result and s.result.extensions]
    assert all(VIDEO + "time-from" not in (s.result.extensions or {}) for s in others)  # type: ignore[union-attr]


def test_rule_completed_has_completion_and_duration(y5: list[Statement]) -> None:
    completed = y5[5]
    assert completed.result is not None
    assert completed.result.completion is True
    assert completed.result.duration == "PT15M31S"


def test_rule_only_completed_carries_completion(y5: list[Statement]) -> None:
    assert [s.result.completion for s in y5 if s.result] == [None, None, None, None, True, None]


def test_rule_completed_at_most_once_per_session(yt: Kit) -> None:
    conn = yt.connector(completion_threshold=0.5)
    body = batch(
        ev(0, "ready", 0, duration=100.0), ev(1, "state", 1, state=1, t=0.0),
        ev(2, "state", 101, state=0, t=100.0), ev(3, "state", 102, state=1, t=0.0),  # replay
        ev(4, "state", 202, state=0, t=100.0),
    )  # fmt: skip
    statements = yt.send(conn, body)
    assert verbs(statements).count("completed") == 1
    assert "seeked" not in verbs(statements)  # ENDED -> PLAYING at 0 is a replay (pitfall 5)


def test_rule_nothing_follows_terminated(yt: Kit) -> None:
    conn = yt.connector()
    yt.send(conn, batch(ev(0, "ready", 0, duration=100.0), ev(1, "unload", 1, t=0.0)))
    assert yt.send(conn, batch(ev(2, "state", 2, state=1, t=0.0))) == []


def test_rule_object_is_a_video_activity(y5: list[Statement]) -> None:
    for s in y5:
        assert s.object_.id == "https://www.youtube.com/watch?v=7lCDEYXw3mM"  # type: ignore[union-attr]
        definition = s.object_.definition  # type: ignore[union-attr]
        assert definition is not None
        assert definition.type == "https://w3id.org/xapi/video/activity-type/video"


def test_rule_time_on_played_paused_completed_terminated(y5: list[Statement]) -> None:
    for s in y5:
        has_time = result_ext(s, "time") is not None if s.result else False
        assert has_time is (s.verb.id.rsplit("/", 1)[-1] in
                            ("played", "paused", "completed", "terminated"))  # fmt: skip


def test_rule_progress_and_segments_on_paused_completed_terminated(y5: list[Statement]) -> None:
    for s in y5:
        name = s.verb.id.rsplit("/", 1)[-1]
        ext = (s.result.extensions or {}) if s.result else {}
        expected = name in SNAPSHOT_VERBS
        assert (VIDEO + "progress" in ext) is expected, name
        assert (VIDEO + "played-segments" in ext) is expected, name


def test_rule_session_id_is_the_initialized_id_on_all(y5: list[Statement]) -> None:
    assert {context_ext(s, "session-id") for s in y5} == {str(y5[0].id)}


def test_rule_length_on_initialized_paused_completed_terminated(y5: list[Statement]) -> None:
    for s in y5:
        name = s.verb.id.rsplit("/", 1)[-1]
        if name in ("initialized", *SNAPSHOT_VERBS):
            assert context_ext(s, "length") == 951.0, name


def test_rule_threshold_stated_when_not_one(y5: list[Statement]) -> None:
    for s in y5:
        name = s.verb.id.rsplit("/", 1)[-1]
        if name in ("initialized", *SNAPSHOT_VERBS):
            assert context_ext(s, "completion-threshold") == 0.9, name


def test_rule_category_is_the_video_profile(y5: list[Statement]) -> None:
    for s in y5:
        assert s.context is not None
        assert s.context.context_activities is not None
        category = s.context.context_activities.category or []
        assert "https://w3id.org/xapi/video" in [a.id for a in category]


def test_rule_registration_accumulates_duration_across_sessions(yt: Kit) -> None:
    conn = yt.connector(completion_threshold=0.5)
    one = yt.send(conn, play_pause_batch())  # 40 s of playing, no completion
    assert "completed" not in verbs(one)
    second = batch(
        ev(0, "ready", 100, duration=100.0), ev(1, "state", 101, state=1, t=0.0),
        ev(2, "state", 161, state=2, t=60.0),
        session="9d2f0c1e-1111-4222-8333-444455556666",
    )  # fmt: skip
    two = yt.send(conn, second)
    completed = next(s for s in two if s.verb.id.endswith("completed"))
    assert completed.result is not None
    assert completed.result.duration == "PT1M40S"
    assert one[0].context is not None
    assert completed.context is not None
    assert one[0].context.registration == completed.context.registration


def test_rule_progress_merges_overlaps_rounded_to_3_decimals() -> None:
    segments = [(10.0, 20.0), (0.0, 12.0), (30.0, 30.5), (19.0, 25.0)]
    assert merge_segments(segments) == [(0.0, 25.0), (30.0, 30.5)]
    assert progress(segments, 951.0) == round(25.5 / 951, 3)
    assert format_segments([(0.0, 12.0), (14.0, 21.0)]) == "0.000[.]12.000[,]14.000[.]21.000"
    assert progress([(0.0, 2000.0)], 951.0) == 1.0
    assert progress([(0.0, 1.0)], None) is None


def test_rule_interacted_is_optional_and_carries_the_changed_extension(yt: Kit) -> None:
    events = (
        ev(0, "ready", 0, duration=100.0), ev(1, "state", 1, state=1, t=0.0, rate=1),
        ev(2, "rate", 11, rate=2, t=10.0), ev(3, "volume", 12, volume=40, t=12.0),
    )  # fmt: skip
    assert "interacted" not in verbs(yt.send(yt.connector(), batch(*events)))
    statements = Kit().send(Kit().connector(interactions=True), batch(*events))
    interacted = [s for s in statements if s.verb.id.endswith("interacted")]
    assert [context_ext(s, "speed") for s in interacted] == ["2x", None]
    assert context_ext(interacted[1], "volume") == 0.4
    assert all(result_ext(s, "time") is not None for s in interacted)


def test_rate_changes_keep_media_and_wall_time_apart(yt: Kit) -> None:
    statements = yt.send(yt.connector(completion_threshold=0.5), batch(
        ev(0, "ready", 0, duration=100.0), ev(1, "state", 1, state=1, t=0.0, rate=2),
        ev(2, "state", 31, state=2, t=60.0),
    ))  # fmt: skip
    completed = statements[-1]
    assert result_ext(completed, "progress") == 0.6  # media time: 60 of 100 s
    assert completed.result is not None
    assert completed.result.duration == "PT30S"


def test_seek_while_paused_is_reported(yt: Kit) -> None:
    statements = yt.send(yt.connector(), batch(
        ev(0, "ready", 0, duration=100.0), ev(1, "state", 1, state=1, t=0.0),
        ev(2, "state", 11, state=2, t=10.0), ev(3, "heartbeat", 15, t=50.0),
        ev(4, "state", 16, state=1, t=50.0),
    ))  # fmt: skip
    assert verbs(statements) == ["initialized", "played", "paused", "seeked", "played"]


# -- ids (vendors.md 8.2) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb_key", "parts", "expected"),
    [
        ("initialized", [("session", SESSION)], "a8d76c03-dea1-5b81-93ca-1dd2f17976fb"),
        ("completed", [("session", SESSION)], "f75e92cf-c90e-51e1-8b2d-1c7e31ea1724"),
        ("paused", [("session", SESSION), ("seq", "7")], "ba1ce552-f359-56b5-80ed-46f04b9b359e"),
        ("registration", [("user", "u-1001"), ("video", "7lCDEYXw3mM")],
         "1bc88377-1b97-57c1-a064-8b6395fa0fad"),
    ],
)  # fmt: skip
def test_id_vectors(yt: Kit, verb_key: str, parts: list[tuple[str, str]], expected: str) -> None:
    from hub.testing import BASE_IRI
    from hub.xapi import natural_key, statement_id, statement_namespace

    key = natural_key(source="youtube", tenant="learn.example.com", verb_key=verb_key, parts=parts)
    assert str(statement_id(statement_namespace(BASE_IRI), key)) == expected


def test_paused_seq7_id_from_the_mapping(yt: Kit) -> None:
    body = copy.deepcopy(y5_body())
    body["events"] = [
        ev(0, "ready", 0, duration=951.0), ev(1, "state", 1, state=1, t=0.0),
        ev(7, "state", 11, state=2, t=10.0),
    ]  # fmt: skip
    paused = yt.send(yt.connector(), body)[-1]
    assert str(paused.id) == "ba1ce552-f359-56b5-80ed-46f04b9b359e"
