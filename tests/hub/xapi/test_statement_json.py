"""StatementJson: a statement already in xAPI JSON goes through the same checks and bytes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hub.xapi import (
    Statement,
    StatementInvalid,
    StatementJson,
    canonical_bytes,
    statement_verb_id,
    validate_statement,
)

SUB_ID = "2c3c4d5e-6f70-4a8b-9c0d-1e2f3a4b5c6d"


def _sendable(valid_v1: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(valid_v1)
    data["result"]["duration"] = "PT90M"  # not canonical: canonical_bytes rewrites it
    return data


def _with_substatement(valid_v1: dict[str, Any]) -> dict[str, Any]:
    data = _sendable(valid_v1)
    data["object"] = {
        "objectType": "SubStatement",
        "actor": {"mbox": "mailto:bob@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
        "object": {"id": "https://example.com/activities/a"},
        "result": {"duration": "PT3600S"},
    }
    data["context"].pop("revision")  # revision and platform only go with an Activity object
    data["context"].pop("platform")
    return data


@pytest.mark.parametrize("shape", [_sendable, _with_substatement])
@pytest.mark.parametrize("version", ["1.0.3", "2.0.0"])
def test_the_same_bytes_as_the_model(valid_v1: dict[str, Any], shape: Any, version: Any) -> None:
    data = shape(valid_v1)
    model = Statement.model_validate(data)
    as_json = StatementJson(data)
    assert canonical_bytes(as_json, version=version) == canonical_bytes(model, version=version)
    assert b'"PT1H30M"' in canonical_bytes(as_json, version=version)


@pytest.mark.parametrize("shape", [_sendable, _with_substatement])
def test_canonical_bytes_leave_the_json_untouched(valid_v1: dict[str, Any], shape: Any) -> None:
    # Builders share sub-objects between statements (one actor dict per person): writing the
    # canonical duration into them would change statements not yet sent.
    data = shape(valid_v1)
    before = copy.deepcopy(data)
    canonical_bytes(StatementJson(data))
    assert data == before


def test_an_invalid_one_is_refused_like_a_dict(valid_v1: dict[str, Any]) -> None:
    data = _sendable(valid_v1)
    data["actor"] = {"mbox": "ada@example.com"}  # no mailto:
    as_json = StatementJson(data)
    issues = validate_statement(as_json, hub_rules=True)
    assert issues == validate_statement(data, hub_rules=True)
    assert [i.path for i in issues] == ["$.actor.mbox"]
    with pytest.raises(StatementInvalid, match=r"\$\.actor\.mbox"):
        canonical_bytes(as_json)


def test_hub_rules_apply_to_it(valid_v1: dict[str, Any]) -> None:
    data = _sendable(valid_v1)
    del data["id"]
    with pytest.raises(StatementInvalid, match="the hub always sets 'id'"):
        canonical_bytes(StatementJson(data))


def test_accessors_and_conversions(valid_v1: dict[str, Any]) -> None:
    data = _sendable(valid_v1)
    as_json = StatementJson(data)
    assert as_json.id == data["id"]
    assert (
        as_json.verb_id == statement_verb_id(as_json) == "http://adlnet.gov/expapi/verbs/completed"
    )
    model = as_json.to_statement()
    assert statement_verb_id(model) == as_json.verb_id
    assert str(model.id) == as_json.id
    copied = as_json.to_json()
    copied["actor"]["mbox"] = "mailto:changed@example.com"
    assert data["actor"]["mbox"] == "mailto:ada@example.com"


def test_a_missing_verb_routes_as_no_verb() -> None:
    # Routing reads the verb before validation; a statement without one must not crash it
    # (validation then dead-letters it).
    broken = StatementJson({"id": SUB_ID, "verb": "completed"})
    assert broken.verb_id is None
    assert statement_verb_id(broken) == ""
    assert StatementJson({"verb": {"id": 5}}).id is None
