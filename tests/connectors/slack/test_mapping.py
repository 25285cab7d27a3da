"""Extra Slack mapping cases: §8.2 id vectors through the real mapping, §8.4 time vectors,
privacy options, channel allow-list and the app_mention/message double count."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.slack.connector import SlackConnector
from connectors.slack.mapping import slack_time
from connectors.slack.settings import SlackSettings
from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime
from hub.events import SourceEvent, WebhookRequest
from hub.testing import StaticActorResolver, context_factory, normalize_events
from hub.xapi import Statement, format_timestamp, key_time, parse_timestamp

EVENTS = Path(__file__).parent / "fixtures" / "events"
BASE = "https://lrs-hub.example.com/xapi"
NOW = datetime(2025, 7, 1, 12, tzinfo=UTC)


def build(**overrides: Any) -> SlackConnector:
    values: dict[str, Any] = {
        "team_id": "T111",
        "signing_secret": "s",
        "channels": ("C111", "C123ABC456"),
        **overrides,
    }
    runtime = ConnectorRuntime(instance_id="slack-1", base_iri=BASE, clock=FrozenClock(NOW))
    return SlackConnector(SlackSettings(**values), runtime=runtime)


def parse(conn: SlackConnector, name: str) -> list[SourceEvent]:
    body = (EVENTS / f"{name}.json").read_bytes()
    req = WebhookRequest(method="POST", path="/", body=body, received_at=NOW)
    return conn.parse(req)


def statements(conn: SlackConnector, *names: str) -> list[Statement]:
    make = context_factory(conn, actors=StaticActorResolver("account"), base_iri=BASE)
    events = [e for n in names for e in parse(conn, n)]
    return normalize_events(conn, events, make_context=make)


def test_section_8_2_slack_vectors_reproduce() -> None:
    conn = build()
    posted = statements(conn, "message_posted")
    liked = statements(conn, "reaction_added")
    assert [str(s.id) for s in posted] == ["929e9b57-fd96-5904-8f49-5d6c4d66d859"]
    assert [str(s.id) for s in liked] == ["220092b0-d290-577e-9af5-57f988e8b0dd"]
    ext = f"{BASE}/extensions/source-event-id"
    assert posted[0].context is not None
    assert posted[0].context.extensions is not None
    assert (
        posted[0].context.extensions[ext] == "slack|t111|posted|channel=C111|ts=1595926230.009600"
    )
    assert liked[0].context is not None
    assert liked[0].context.extensions is not None
    assert liked[0].context.extensions[ext] == (
        "slack|t111|liked|channel=C111|ts=1599529504.000400|user=W111|reaction=heart_eyes"
    )


def test_section_8_4_time_vectors() -> None:
    assert format_timestamp(slack_time("1595926230.009600")) == "2020-07-28T08:50:30.009Z"
    when = parse_timestamp(1599616881)
    assert when is not None
    assert key_time(when) == "2020-09-09T02:01:21Z"


def test_join_key_uses_event_time() -> None:
    (joined,) = statements(build(), "member_joined_channel")
    assert joined.context is not None
    assert joined.context.extensions is not None
    key = joined.context.extensions[f"{BASE}/extensions/source-event-id"]
    assert key == "slack|t111|join|channel=C111|user=U999|event_time=2020-07-28T08:53:20Z"
    assert joined.context.extensions[f"{BASE}/extensions/slack/inviter"] == "U222"


def test_message_text_is_not_copied_by_default() -> None:
    (stmt,) = statements(build(), "message_channel")
    assert stmt.result is None
    assert "SQL joins" not in json.dumps(stmt.to_json())


def test_message_text_is_copied_and_truncated_when_enabled() -> None:
    conn = build(include_message_text=True, message_text_max_chars=12)
    (stmt,) = statements(conn, "message_channel")
    assert stmt.result is not None
    assert stmt.result.response == "Just finishe"


def test_app_mention_is_not_double_counted() -> None:
    """The S1 mention and its message.channels twin give one `posted`, no second statement."""
    out = statements(build(), "message_posted", "app_mention_not_question")
    assert [s.verb.id for s in out] == ["https://w3id.org/xapi/acrossx/verbs/posted"]


def test_question_mention_is_asked_and_can_be_disabled() -> None:
    (asked,) = statements(build(), "app_mention_question")
    assert asked.verb.id == "http://adlnet.gov/expapi/verbs/asked"
    assert statements(build(mentions_as_questions=False), "app_mention_question") == []


@pytest.mark.parametrize(
    "name",
    [
        "noise_bot_message",
        "noise_message_changed",
        "noise_channel_join",
        "noise_message_deleted",
        "noise_external_user",
        "noise_reaction_on_file",
        "noise_other_channel",
    ],
)
def test_noise_gives_no_statement(name: str) -> None:
    assert statements(build(), name) == []


def test_external_users_can_be_included() -> None:
    assert len(statements(build(skip_external_users=False), "noise_external_user")) == 1


def test_channels_outside_the_allow_list_are_not_enqueued() -> None:
    assert parse(build(), "noise_other_channel") == []
    assert parse(build(channels=("C111",)), "message_channel") == []
    assert len(parse(build(channels=(), all_channels=True), "message_channel")) == 1


def test_other_workspace_and_rate_limit_envelopes_give_no_event() -> None:
    assert parse(build(team_id="T222"), "message_posted") == []
    body = json.dumps(
        {
            "token": "x",
            "type": "app_rate_limited",
            "team_id": "T111",
            "minute_rate_limited": 1518467820,
            "api_app_id": "A1",
        }
    ).encode()
    req = WebhookRequest(method="POST", path="/", body=body, received_at=NOW)
    assert build().parse(req) == []


def test_thread_reply_has_root_message_as_parent() -> None:
    (reply,) = statements(build(), "message_thread_reply")
    (broadcast,) = statements(build(), "message_thread_broadcast")
    for stmt in (reply, broadcast):
        assert stmt.verb.id == "http://id.tincanapi.com/verb/replied"
        assert stmt.context is not None
        assert stmt.context.context_activities is not None
        parents = stmt.context.context_activities.parent or []
        assert parents[0].id.endswith("/message/C123ABC456%2F1355517523.000005")
