"""Structural rules enforced by the pydantic models, and JSON round trips."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from hub.xapi import (
    Account,
    Activity,
    Agent,
    Context,
    ContextActivities,
    ContextAgent,
    Group,
    Result,
    Statement,
    StatementRef,
    SubStatement,
    Verbs,
    validate_statement,
)

IRI = "https://example.com/activities/1"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _statement(**overrides: Any) -> Statement:
    fields: dict[str, Any] = {
        "actor": Agent(mbox="mailto:ada@example.com"),
        "verb": Verbs.COMPLETED.verb(),
        "object_": Activity(id=IRI),
        "timestamp": datetime(2024, 3, 13, 14, 58, 26, 123456, tzinfo=UTC),
    }
    fields.update(overrides)
    return Statement(**fields)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mbox": "mailto:ada@example.com", "openid": "https://id.example.com/ada"},
        {"mbox_sha1sum": "0" * 40, "account": Account(home_page="https://x.io", name="1")},
    ],
    ids=["zero-ifis", "mbox+openid", "sha1+account"],
)
def test_agent_requires_exactly_one_ifi(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one IFI"):
        Agent(name="Ada", **kwargs)


def test_agent_with_one_ifi_dumps_by_alias_without_nones() -> None:
    agent = Agent(account=Account(home_page="https://acme.csod.com", name="guid-1"))
    assert agent.to_json() == {"account": {"homePage": "https://acme.csod.com", "name": "guid-1"}}


def test_anonymous_group_requires_member() -> None:
    with pytest.raises(ValidationError, match="anonymous Group"):
        Group(object_type="Group", name="nobody")


def test_identified_group_allows_no_member_but_one_ifi() -> None:
    group = Group(object_type="Group", mbox="mailto:team@example.com")
    assert not group.is_anonymous
    with pytest.raises(ValidationError, match="exactly one IFI"):
        Group(object_type="Group", mbox="mailto:team@example.com", openid=IRI)


def test_group_requires_object_type() -> None:
    with pytest.raises(ValidationError, match="objectType"):
        Group.model_validate({"member": [{"mbox": "mailto:a@example.com"}]})


def test_group_members_must_be_agents() -> None:
    with pytest.raises(ValidationError):
        Group.model_validate(
            {
                "objectType": "Group",
                "member": [{"objectType": "Group", "mbox": "mailto:g@example.com"}],
            }
        )


def test_extra_keys_forbidden() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Agent.model_validate({"mbox": "mailto:a@example.com", "email": "a@example.com"})


def test_models_are_frozen() -> None:
    agent = Agent(mbox="mailto:a@example.com")
    with pytest.raises(ValidationError, match="frozen"):
        agent.name = "x"  # type: ignore[misc]


def test_actor_and_object_discriminated_by_object_type() -> None:
    statement = Statement.model_validate(
        {
            "actor": {"objectType": "Group", "member": [{"mbox": "mailto:a@example.com"}]},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
            "object": {"objectType": "StatementRef", "id": str(uuid.UUID(int=1, version=4))},
        }
    )
    assert isinstance(statement.actor, Group)
    assert isinstance(statement.object_, StatementRef)
    plain = Statement.model_validate(
        {"actor": {"mbox": "mailto:a@example.com"}, "verb": {"id": IRI}, "object": {"id": IRI}}
    )
    assert isinstance(plain.actor, Agent)
    assert isinstance(plain.object_, Activity)


def test_agent_as_object_requires_object_type() -> None:
    with pytest.raises(ValidationError, match="objectType='Agent'"):
        _statement(object_=Agent(mbox="mailto:bob@example.com"))
    ok = _statement(object_=Agent(object_type="Agent", mbox="mailto:bob@example.com"))
    assert ok.to_json()["object"] == {"objectType": "Agent", "mbox": "mailto:bob@example.com"}


def test_substatement_cannot_nest() -> None:
    inner: dict[str, Any] = {
        "objectType": "SubStatement",
        "actor": {"mbox": "mailto:a@example.com"},
        "verb": {"id": IRI},
        "object": {"id": IRI},
    }
    assert SubStatement.model_validate(inner).object_type == "SubStatement"
    with pytest.raises(ValidationError):
        SubStatement.model_validate({**inner, "object": inner})
    with pytest.raises(ValidationError, match="extra"):
        SubStatement.model_validate({**inner, "id": str(uuid.uuid4())})


def test_timestamp_must_be_aware_and_serialises_in_canonical_form() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _statement(timestamp=datetime(2024, 3, 13, 14, 58, 26))  # noqa: DTZ001
    plus_two = timezone(timedelta(hours=2))
    statement = _statement(timestamp=datetime(2024, 3, 13, 16, 58, 26, 999999, tzinfo=plus_two))
    assert statement.to_json()["timestamp"] == "2024-03-13T14:58:26.999Z"


def test_score_rejects_strings_and_bools() -> None:
    with pytest.raises(ValidationError):
        Result.model_validate({"score": {"raw": "80"}})
    with pytest.raises(ValidationError):
        Result.model_validate({"success": "true"})
    assert Result.model_validate({"score": {"raw": 80}}).to_json() == {"score": {"raw": 80}}


def test_context_agent_relevant_types_non_empty() -> None:
    with pytest.raises(ValidationError):
        ContextAgent(agent=Agent(mbox="mailto:a@example.com"), relevant_types=[])
    agent = ContextAgent(agent=Agent(mbox="mailto:a@example.com"))
    assert agent.to_json() == {
        "objectType": "contextAgent",
        "agent": {"mbox": "mailto:a@example.com"},
    }


def test_statement_ref_requires_uuid() -> None:
    with pytest.raises(ValidationError):
        StatementRef.model_validate({"objectType": "StatementRef", "id": "nope"})


def test_full_statement_round_trips(valid_v2: dict[str, Any]) -> None:
    statement = Statement.model_validate(valid_v2)
    assert statement.to_json() == valid_v2
    assert validate_statement(statement, version="2.0.0", now=NOW) == []


def test_python_names_and_aliases_both_accepted() -> None:
    by_name = Context(context_activities=ContextActivities(parent=[Activity(id=IRI)]))
    by_alias = Context.model_validate({"contextActivities": {"parent": [{"id": IRI}]}})
    assert by_name == by_alias
    assert by_name.to_json() == {"contextActivities": {"parent": [{"id": IRI}]}}
