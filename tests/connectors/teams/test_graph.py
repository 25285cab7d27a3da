"""Delta reconciliation, identity and tokens against respx-mocked Graph and Entra ID."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.teams.connector import TeamsCursor
from connectors.teams.mapping import language
from hub.connector import Person
from hub.errors import ConfigError
from hub.events import SourceEvent, WebhookRequest
from hub.testing import (
    StaticActorResolver,
    StrictRouter,
    context_factory,
    json_response,
    strict_router,
)
from hub.testing import normalize_events as normalize
from hub.xapi import canonical_bytes, format_timestamp, parse_timestamp
from tests.connectors.teams._graph import (
    API,
    CHAN1,
    GRAPH,
    LOGIN,
    NOW,
    PEOPLE,
    TEAM1,
    build,
    delta_url,
    mock_token,
)

EVENTS = Path(__file__).parent / "fixtures" / "events"


@pytest.fixture
def router() -> Iterator[StrictRouter]:
    r = strict_router()
    with r:
        yield r


def test_delta_and_notification_give_identical_statements(router: StrictRouter) -> None:
    mock_token(router)
    router.get(delta_url(TEAM1, CHAN1)).mock(
        return_value=json_response(API / "delta_channel1_page1.json")
    )
    conn = build(router)
    polled = conn.poll(None, until=NOW).events
    request = WebhookRequest(
        method="POST", path="/", body=(EVENTS / "notification_channel_message.json").read_bytes(),
        received_at=NOW,
    )  # fmt: skip
    pushed = conn.parse(request)
    make = context_factory(conn, actors=StaticActorResolver("mbox", PEOPLE))
    a = normalize(conn, polled, make_context=make)
    b = normalize(conn, pushed, make_context=make)
    assert [str(s.id) for s in a] == ["d9c333c2-1a98-5aeb-9a63-7ce9173ac8d2"]
    assert [canonical_bytes(s) for s in a] == [canonical_bytes(s) for s in b]


def test_expanded_replies_become_reply_events(router: StrictRouter) -> None:
    mock_token(router)
    router.get(delta_url(TEAM1, CHAN1)).mock(
        return_value=json_response(API / "delta_channel1_page2.json")
    )
    conn = build(router)
    events = conn.poll(None, until=NOW).events
    make = context_factory(conn, actors=StaticActorResolver("mbox", PEOPLE))
    verbs = [s.verb.id.rsplit("/", 1)[-1] for s in normalize(conn, events, make_context=make)]
    assert verbs == ["posted", "replied"]  # the system message is filtered


def test_expired_delta_link_restarts_the_channel(router: StrictRouter) -> None:
    mock_token(router)
    router.get(delta_url(TEAM1, CHAN1), params={"$deltatoken": "old"}).mock(
        return_value=httpx.Response(410)
    )
    conn = build(router)
    key = conn.settings.channels[0].key
    cursor = TeamsCursor(delta_links={key: f"{delta_url(TEAM1, CHAN1)}?$deltatoken=old"})
    result = conn.poll(cursor, until=NOW)
    assert result.events == []
    assert result.has_more
    assert result.next_cursor is not None
    assert key not in result.next_cursor.delta_links
    assert result.next_cursor.position == 0


def test_token_is_cached_and_refreshed_once_on_401(router: StrictRouter) -> None:
    token = mock_token(router)
    user = router.get(f"{GRAPH}/users/8ea0e38b-efb3-4757-924a-5f94061cf8c2").mock(
        side_effect=[
            json_response(API / "user.json"),
            httpx.Response(401),
            json_response(API / "user.json"),
        ]
    )
    conn = build(router)
    first = conn.lookup_user("8ea0e38b-efb3-4757-924a-5f94061cf8c2")
    assert token.call_count == 1
    second = conn.lookup_user("8ea0e38b-efb3-4757-924a-5f94061cf8c2")
    assert (
        first
        == second
        == Person(
            source_user_id="8ea0e38b-efb3-4757-924a-5f94061cf8c2",
            email="Robin.Kline@contoso.example",
            name="Robin Kline",
        )
    )
    assert token.call_count == 2
    assert user.call_count == 3
    assert token.calls[0].request.content.count(b"client_credentials") == 1
    assert b"scope=https%3A%2F%2Fgraph.microsoft.com%2F.default" in token.calls[0].request.content
    assert user.calls[0].request.headers["authorization"] == "Bearer test-access-token"


@pytest.mark.parametrize(
    ("mail", "upn", "upn_is_email", "expected"),
    [
        (None, "ada@contoso.example", False, None),
        (None, "ada@contoso.example", True, "ada@contoso.example"),
        (None, "ext_ada_example.com#EXT#@contoso.onmicrosoft.com", True, None),
        ("", "ada@contoso.example", True, "ada@contoso.example"),
    ],
)
def test_identity_mail_or_confirmed_upn(
    router: StrictRouter, mail: str | None, upn: str, upn_is_email: bool, expected: str | None
) -> None:
    mock_token(router)
    router.get(f"{GRAPH}/users/u1").mock(
        return_value=json_response({"id": "u1", "displayName": "Ada", "mail": mail,
                                    "userPrincipalName": upn})
    )  # fmt: skip
    person = build(router, upn_is_email=upn_is_email).lookup_user("u1")
    assert person is not None
    assert person.email == expected


def test_unknown_user_is_none_and_email_only_attendees_are_not_looked_up(
    router: StrictRouter,
) -> None:
    mock_token(router)
    router.get(f"{GRAPH}/users/gone").mock(return_value=httpx.Response(404))
    conn = build(router)
    assert conn.lookup_user("gone") is None
    assert conn.lookup_user("email-sha1:0123") is None


def test_refused_credentials_are_a_config_error(router: StrictRouter) -> None:
    router.get(f"{LOGIN}/v2.0/.well-known/openid-configuration").mock(
        return_value=json_response(API / "openid-configuration.json")
    )
    router.post(f"{LOGIN}/oauth2/v2.0/token").mock(
        return_value=httpx.Response(
            401, json={"error": "invalid_client", "error_description": "AADSTS7000215",
                       "error_codes": [7000215]},
        )
    )  # fmt: skip
    with pytest.raises(ConfigError, match="invalid_client"):
        build(router).check()


def test_section_8_4_graph_time_vectors() -> None:
    for text, expected in [
        ("2021-02-02T10:30:34.9097561-08:00", "2021-02-02T18:30:34.909Z"),
        ("2021-03-16T18:59:52.2782182Z", "2021-03-16T18:59:52.278Z"),
    ]:
        when = parse_timestamp(text)
        assert when is not None
        assert format_timestamp(when) == expected


def test_locale_becomes_rfc5646() -> None:
    assert language("en-us") == "en-US"
    assert language("zh-hant-tw") == "zh-hant-TW"
    assert language(None) is None


def test_attendance_statement_facts() -> None:
    conn = build()
    raw = json.loads((EVENTS / "poll-attendance_report.json").read_text())[0]
    event = SourceEvent.model_validate(
        {"instance_id": "t", "received_at": NOW, "via": "poll", **raw}
    )
    make = context_factory(conn, actors=StaticActorResolver("mbox", PEOPLE))
    (stmt,) = normalize(conn, [event], make_context=make)
    assert str(stmt.id) == "670cadd5-3b67-5287-bb12-74a2030d6949"
    assert stmt.result is not None
    assert stmt.result.duration == "PT19M12S"
    assert format_timestamp(stmt.timestamp) == "2021-03-16T18:59:52.278Z"  # type: ignore[arg-type]
    no_threshold = build(attendance_threshold=None)
    (plain,) = normalize(no_threshold, [event], make_context=make)
    assert plain.result is not None
    assert plain.result.completion is None
