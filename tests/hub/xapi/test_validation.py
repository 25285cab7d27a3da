"""One test case per producer rule of xapi.md sections 2 and 4 (rule code + JSON path)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from hub.xapi import (
    Activity,
    Agent,
    Rule,
    Statement,
    StatementInvalid,
    ValidationIssue,
    Verbs,
    ensure_valid,
    validate_statement,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
IRI = "https://example.com/x"
UUID_A = "a8d76c03-dea1-5b81-93ca-1dd2f17976fb"
Data = dict[str, Any]
_DELETE = object()


def _walk(data: Any, path: str) -> tuple[Any, str | int]:
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def put(data: Data, path: str, value: Any) -> None:
    """Set (or with _DELETE remove) the value at a dotted path; digits index arrays."""
    node, last = _walk(data, path)
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


def issues(data: Data, version: str = "1.0.3", **kwargs: Any) -> set[tuple[str, str]]:
    found = validate_statement(data, version=version, now=NOW, **kwargs)  # type: ignore[arg-type]
    return {(issue.path, issue.rule) for issue in found}


def substatement() -> Data:
    return {
        "objectType": "SubStatement",
        "actor": {"mbox": "mailto:bob@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": IRI},
    }


class Case(NamedTuple):
    rule: Rule
    name: str
    mutate: Callable[[Data], None]
    path: str
    version: str = "1.0.3"


CASES: list[Case] = [
    Case(Rule.REQUIRED, "actor-missing", lambda d: put(d, "actor", _DELETE), "$.actor"),
    Case(Rule.REQUIRED, "verb-id-missing", lambda d: put(d, "verb.id", _DELETE), "$.verb.id"),
    Case(
        Rule.REQUIRED,
        "attachment-sha2-missing",
        lambda d: put(d, "attachments.0.sha2", _DELETE),
        "$.attachments[0].sha2",
    ),
    Case(Rule.UNKNOWN_KEY, "top-level", lambda d: put(d, "extra", 1), "$.extra"),
    Case(
        Rule.UNKNOWN_KEY,
        "wrong-key-case",
        lambda d: put(d, "object.definition.moreinfo", IRI),
        "$.object.definition.moreinfo",
    ),
    Case(
        Rule.NULL, "response-null", lambda d: put(d, "result.response", None), "$.result.response"
    ),
    Case(
        Rule.TYPE, "raw-as-string", lambda d: put(d, "result.score.raw", "80"), "$.result.score.raw"
    ),
    Case(
        Rule.TYPE,
        "success-as-string",
        lambda d: put(d, "result.success", "true"),
        "$.result.success",
    ),
    Case(Rule.EMPTY_OBJECT, "empty-result", lambda d: put(d, "result", {}), "$.result"),
    Case(Rule.IRI, "verb-id", lambda d: put(d, "verb.id", "completed"), "$.verb.id"),
    Case(
        Rule.IRI,
        "context-parent-id",
        lambda d: put(d, "context.contextActivities.parent.0.id", "course/678"),
        "$.context.contextActivities.parent[0].id",
    ),
    Case(
        Rule.IRI,
        "activity-type",
        lambda d: put(d, "object.definition.type", "course"),
        "$.object.definition.type",
    ),
    Case(
        Rule.IRI,
        "more-info",
        lambda d: put(d, "object.definition.moreInfo", "www.example.com"),
        "$.object.definition.moreInfo",
    ),
    Case(
        Rule.IRI,
        "extension-key",
        lambda d: put(d, "context.extensions", {"source": "docebo"}),
        "$.context.extensions.source",
    ),
    Case(
        Rule.IRI,
        "usage-type",
        lambda d: put(d, "attachments.0.usageType", "certificate"),
        "$.attachments[0].usageType",
    ),
    Case(Rule.MBOX, "no-mailto", lambda d: put(d, "actor.mbox", "ada@example.com"), "$.actor.mbox"),
    Case(Rule.MBOX, "no-address", lambda d: put(d, "actor.mbox", "mailto:ada"), "$.actor.mbox"),
    Case(
        Rule.MBOX_SHA1SUM,
        "39-hex",
        lambda d: put(d, "context.team.member.0.mbox_sha1sum", "a" * 39),
        "$.context.team.member[0].mbox_sha1sum",
    ),
    Case(
        Rule.IFI,
        "two-ifis",
        lambda d: put(d, "actor.openid", "https://id.example.com/ada"),
        "$.actor",
    ),
    Case(Rule.IFI, "no-ifi", lambda d: put(d, "actor", {"name": "Ada"}), "$.actor"),
    Case(
        Rule.IFI,
        "group-two-ifis",
        lambda d: put(
            d,
            "actor",
            {"objectType": "Group", "mbox": "mailto:g@example.com", "openid": IRI},
        ),
        "$.actor",
    ),
    Case(
        Rule.GROUP_ANONYMOUS,
        "anonymous-without-member",
        lambda d: put(d, "context.team.member", _DELETE),
        "$.context.team.member",
    ),
    Case(
        Rule.GROUP_MEMBER,
        "member-is-group",
        lambda d: put(
            d,
            "context.team.member.1",
            {"objectType": "Group", "mbox": "mailto:g@example.com"},
        ),
        "$.context.team.member[1]",
    ),
    Case(
        Rule.OBJECT_TYPE,
        "agent-object-without-objectType",
        lambda d: put(d, "object", {"mbox": "mailto:bob@example.com"}),
        "$.object.objectType",
    ),
    Case(
        Rule.OBJECT_TYPE,
        "group-without-objectType-as-team",
        lambda d: put(d, "context.team.objectType", _DELETE),
        "$.context.team.objectType",
    ),
    Case(
        Rule.OBJECT_TYPE,
        "unknown-objectType",
        lambda d: put(d, "object.objectType", "Course"),
        "$.object.objectType",
    ),
    Case(
        Rule.UUID,
        "statement-id",
        lambda d: put(d, "id", "961f16f9d0d55cb49ef0f04fe6cf6eb2"),
        "$.id",
    ),
    Case(
        Rule.UUID,
        "registration",
        lambda d: put(d, "context.registration", "reg-1"),
        "$.context.registration",
    ),
    Case(
        Rule.UUID,
        "statement-ref-id",
        lambda d: put(d, "object", {"objectType": "StatementRef", "id": "12345"}),
        "$.object.id",
    ),
    Case(
        Rule.LANGUAGE_TAG,
        "display-key",
        lambda d: put(d, "verb.display", {"en_US": "completed"}),
        "$.verb.display.en_US",
    ),
    Case(
        Rule.LANGUAGE_TAG,
        "context-language",
        lambda d: put(d, "context.language", "english!"),
        "$.context.language",
    ),
    Case(
        Rule.SCORE_SCALED,
        "above-one",
        lambda d: put(d, "result.score.scaled", 1.5),
        "$.result.score.scaled",
    ),
    Case(
        Rule.SCORE_SCALED,
        "below-minus-one",
        lambda d: put(d, "result.score.scaled", -1.01),
        "$.result.score.scaled",
    ),
    Case(
        Rule.SCORE_MIN_MAX,
        "min-equals-max",
        lambda d: put(d, "result.score.min", 100),
        "$.result.score.min",
    ),
    Case(
        Rule.SCORE_RAW,
        "raw-above-max",
        lambda d: put(d, "result.score.raw", 101),
        "$.result.score.raw",
    ),
    Case(
        Rule.SCORE_RAW,
        "raw-below-min",
        lambda d: put(d, "result.score.raw", -1),
        "$.result.score.raw",
    ),
    Case(
        Rule.DURATION, "words", lambda d: put(d, "result.duration", "1 hour"), "$.result.duration"
    ),
    Case(
        Rule.DURATION,
        "weeks-combined",
        lambda d: put(d, "result.duration", "P1W2D"),
        "$.result.duration",
    ),
    Case(
        Rule.DURATION,
        "fraction-not-last",
        lambda d: put(d, "result.duration", "PT1.5M2S"),
        "$.result.duration",
    ),
    Case(
        Rule.DURATION,
        "alternative-format",
        lambda d: put(d, "result.duration", "PT01:02:03"),
        "$.result.duration",
    ),
    Case(
        Rule.DURATION,
        "empty-time-part",
        lambda d: put(d, "result.duration", "P1DT"),
        "$.result.duration",
    ),
    Case(
        Rule.TIMESTAMP,
        "space-separator",
        lambda d: put(d, "timestamp", "2024-03-13 14:58:26Z"),
        "$.timestamp",
    ),
    Case(
        Rule.TIMESTAMP,
        "month-13",
        lambda d: put(d, "timestamp", "2024-13-13T14:58:26Z"),
        "$.timestamp",
    ),
    Case(
        Rule.TIMESTAMP,
        "minus-zero-offset-2.0",
        lambda d: put(d, "timestamp", "2024-03-13T14:58:26.000-00:00"),
        "$.timestamp",
        "2.0.0",
    ),
    Case(
        Rule.TIMESTAMP,
        "february-30",
        lambda d: put(d, "timestamp", "2024-02-30T00:00:00Z"),
        "$.timestamp",
    ),
    Case(
        Rule.TIMESTAMP,
        "offset-minutes-60",
        lambda d: put(d, "timestamp", "2024-03-13T14:58:26+05:60"),
        "$.timestamp",
    ),
    Case(
        Rule.TIMESTAMP,
        "before-year-1-in-utc",
        lambda d: put(d, "timestamp", "0001-01-01T00:30:00+01:00"),
        "$.timestamp",
    ),
    Case(
        Rule.TIMESTAMP_ZONE,
        "no-zone",
        lambda d: put(d, "timestamp", "2024-03-13T14:58:26.000"),
        "$.timestamp",
    ),
    Case(
        Rule.TIMESTAMP_FUTURE,
        "next-year",
        lambda d: put(d, "timestamp", "2026-01-01T00:00:00.000Z"),
        "$.timestamp",
    ),
    Case(
        Rule.CONTEXT_ACTIVITY_ONLY,
        "revision-with-agent-object",
        lambda d: put(d, "object", {"objectType": "Agent", "mbox": "mailto:bob@example.com"}),
        "$.context.revision",
    ),
    Case(
        Rule.CONTEXT_ACTIVITY_ONLY,
        "platform-with-statementref-object",
        lambda d: put(d, "object", {"objectType": "StatementRef", "id": UUID_A}),
        "$.context.platform",
    ),
    Case(
        Rule.CONTEXT_ACTIVITIES_ARRAY,
        "single-object",
        lambda d: put(d, "context.contextActivities.parent", {"id": IRI}),
        "$.context.contextActivities.parent",
    ),
    Case(
        Rule.UNKNOWN_KEY,
        "context-activities-key",
        lambda d: put(d, "context.contextActivities.parents", [{"id": IRI}]),
        "$.context.contextActivities.parents",
    ),
    Case(
        Rule.INTERACTION,
        "unknown-interaction-type",
        lambda d: put(d, "object.definition.interactionType", "multiple-choice"),
        "$.object.definition.interactionType",
    ),
    Case(
        Rule.INTERACTION,
        "choices-with-likert",
        lambda d: put(d, "object.definition.interactionType", "likert"),
        "$.object.definition.choices",
    ),
    Case(
        Rule.SUBSTATEMENT_PROPERTY,
        "substatement-with-id",
        lambda d: put(d, "object", {**substatement(), "id": UUID_A}),
        "$.object.id",
    ),
    Case(
        Rule.SUBSTATEMENT_NESTED,
        "substatement-in-substatement",
        lambda d: put(d, "object", {**substatement(), "object": substatement()}),
        "$.object.object",
    ),
    Case(
        Rule.LRS_ONLY, "stored", lambda d: put(d, "stored", "2024-03-13T14:58:27.000Z"), "$.stored"
    ),
    Case(
        Rule.LRS_ONLY,
        "authority",
        lambda d: put(d, "authority", {"mbox": "mailto:hub@lrs.example.org"}),
        "$.authority",
    ),
    Case(Rule.VERSION, "2.0.0-on-1.0.3", lambda d: put(d, "version", "2.0.0"), "$.version"),
    Case(Rule.VERSION, "1.1.0-on-1.0.3", lambda d: put(d, "version", "1.1.0"), "$.version"),
    Case(
        Rule.VERSION, "3.0.0-on-2.0.0", lambda d: put(d, "version", "3.0.0"), "$.version", "2.0.0"
    ),
    Case(
        Rule.VERSION_2_ONLY,
        "context-agents-on-1.0.3",
        lambda d: put(
            d,
            "context.contextAgents",
            [{"objectType": "contextAgent", "agent": {"mbox": "mailto:c@example.com"}}],
        ),
        "$.context.contextAgents",
    ),
    Case(
        Rule.VERSION_2_ONLY,
        "context-groups-on-1.0.3",
        lambda d: put(d, "context.contextGroups", []),
        "$.context.contextGroups",
    ),
    Case(
        Rule.RELEVANT_TYPES,
        "empty-relevant-types",
        lambda d: put(
            d,
            "context.contextAgents",
            [
                {
                    "objectType": "contextAgent",
                    "agent": {"mbox": "mailto:c@example.com"},
                    "relevantTypes": [],
                }
            ],
        ),
        "$.context.contextAgents[0].relevantTypes",
        "2.0.0",
    ),
    Case(
        Rule.IRI,
        "relevant-type-not-iri",
        lambda d: put(
            d,
            "context.contextAgents",
            [
                {
                    "objectType": "contextAgent",
                    "agent": {"mbox": "mailto:c@example.com"},
                    "relevantTypes": ["coach"],
                }
            ],
        ),
        "$.context.contextAgents[0].relevantTypes[0]",
        "2.0.0",
    ),
    Case(
        Rule.OBJECT_TYPE,
        "context-agent-object-type",
        lambda d: put(
            d,
            "context.contextAgents",
            [{"objectType": "Agent", "agent": {"mbox": "mailto:c@example.com"}}],
        ),
        "$.context.contextAgents[0].objectType",
        "2.0.0",
    ),
    Case(
        Rule.IFI,
        "context-group-invalid-group",
        lambda d: put(
            d,
            "context.contextGroups",
            [
                {
                    "objectType": "contextGroup",
                    "group": {"objectType": "Group", "mbox": "mailto:g@example.com", "openid": IRI},
                }
            ],
        ),
        "$.context.contextGroups[0].group",
        "2.0.0",
    ),
    Case(
        Rule.SHA2,
        "short-sha2",
        lambda d: put(d, "attachments.0.sha2", "abc"),
        "$.attachments[0].sha2",
    ),
    Case(
        Rule.CONTENT_TYPE,
        "not-a-media-type",
        lambda d: put(d, "attachments.0.contentType", "pdf"),
        "$.attachments[0].contentType",
    ),
    Case(
        Rule.VOIDING_OBJECT,
        "voided-activity",
        lambda d: put(
            d, "verb", {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en": "voided"}}
        ),
        "$.object",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.rule.value}:{c.name}" for c in CASES])
def test_rule(case: Case, make_v1: Callable[[], Data]) -> None:
    data = make_v1()
    case.mutate(data)
    found = issues(data, case.version)
    assert (case.path, case.rule.value) in found, sorted(found)


def test_every_rule_has_a_case() -> None:
    covered = {case.rule for case in CASES} | {Rule.HUB_REQUIRED}  # HUB_REQUIRED tested below
    assert covered == set(Rule)


def test_valid_full_statement_passes_1_0_3(valid_v1: Data) -> None:
    assert validate_statement(valid_v1, version="1.0.3", now=NOW) == []


def test_valid_full_statement_passes_2_0_0(valid_v2: Data) -> None:
    assert validate_statement(valid_v2, version="2.0.0", now=NOW) == []


def test_2_0_fields_rejected_for_1_0_3(valid_v2: Data) -> None:
    found = issues(valid_v2, "1.0.3")
    assert found == {
        ("$.context.contextAgents", "version-2-only"),
        ("$.context.contextGroups", "version-2-only"),
        ("$.version", "version"),
    }


@pytest.mark.parametrize(
    "obj",
    [
        {"objectType": "Agent", "mbox": "mailto:bob@example.com"},
        {"objectType": "Group", "member": [{"mbox": "mailto:bob@example.com"}]},
        {"objectType": "StatementRef", "id": UUID_A},
        substatement(),
        {"id": IRI},
    ],
    ids=["agent", "anonymous-group", "statement-ref", "substatement", "bare-activity"],
)
def test_valid_object_kinds(obj: Data, valid_v1: Data) -> None:
    del valid_v1["context"]["revision"], valid_v1["context"]["platform"]
    valid_v1["object"] = obj
    assert validate_statement(valid_v1, now=NOW) == []


@pytest.mark.parametrize("duration", ["P3Y", "P4W", "PT1H2M3.45S", "P0D", "P1DT2H3M4S", "PT0.5S"])
def test_valid_durations(duration: str, valid_v1: Data) -> None:
    valid_v1["result"]["duration"] = duration
    assert validate_statement(valid_v1, now=NOW) == []


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-03-13T14:58:26Z",
        "2024-03-13T16:58:26.123456+02:00",
        "2024-03-13t14:58:26z",
        "2024-03-13T14:58:26.123456789Z",
        "2024-03-14T00:58:26-10:00",  # the day after in UTC is still in the past of NOW
    ],
)
def test_valid_timestamps(timestamp: str, valid_v1: Data) -> None:
    valid_v1["timestamp"] = timestamp
    assert validate_statement(valid_v1, version="2.0.0", now=NOW) == []


def test_null_allowed_inside_extensions(valid_v1: Data) -> None:
    valid_v1["context"]["extensions"] = {"https://example.com/e": None}
    valid_v1["result"]["extensions"] = {"https://example.com/e": {"deep": [None]}}
    assert validate_statement(valid_v1, now=NOW) == []


def test_version_1_0_0_allowed_and_2_0_0_allowed_for_2_0(valid_v1: Data) -> None:
    valid_v1["version"] = "1.0.0"
    assert validate_statement(valid_v1, version="1.0.3", now=NOW) == []
    valid_v1["version"] = "2.0.0"
    assert validate_statement(valid_v1, version="2.0.0", now=NOW) == []


def test_hub_rules_require_id_timestamp_and_file_url(valid_v1: Data) -> None:
    del valid_v1["id"], valid_v1["timestamp"], valid_v1["attachments"][0]["fileUrl"]
    assert validate_statement(valid_v1, now=NOW) == []
    assert issues(valid_v1, hub_rules=True) == {
        ("$.id", "hub-required"),
        ("$.timestamp", "hub-required"),
        ("$.attachments[0].fileUrl", "hub-required"),
    }


def test_reports_all_issues_not_just_the_first(valid_v1: Data) -> None:
    valid_v1["verb"]["id"] = "completed"
    valid_v1["result"]["score"]["scaled"] = 2
    valid_v1["actor"]["mbox"] = "ada@example.com"
    valid_v1["context"]["registration"] = "nope"
    valid_v1["timestamp"] = "yesterday"
    assert issues(valid_v1) == {
        ("$.verb.id", "iri"),
        ("$.result.score.scaled", "score-scaled"),
        ("$.actor.mbox", "mbox"),
        ("$.context.registration", "uuid"),
        ("$.timestamp", "timestamp"),
    }


def test_non_object_statement() -> None:
    assert issues([1, 2]) == {("$", "type")}  # type: ignore[arg-type]


def test_extension_key_path_uses_brackets_for_non_identifiers(valid_v1: Data) -> None:
    valid_v1["context"]["extensions"] = {"not an iri": 1}
    assert ('$.context.extensions["not an iri"]', "iri") in issues(valid_v1)


def test_accepts_statement_model() -> None:
    statement = Statement(
        actor=Agent(mbox="mailto:ada@example.com"),
        verb=Verbs.VOIDED.verb(),
        object_=Activity(id=IRI),
    )
    found = validate_statement(statement, now=NOW)
    assert [(i.path, i.rule) for i in found] == [("$.object", "voiding-object")]


def test_ensure_valid_raises_with_issues_and_readable_message(valid_v1: Data) -> None:
    ensure_valid(valid_v1, now=NOW)  # no exception
    valid_v1["verb"]["id"] = "completed"
    valid_v1["stored"] = "x"
    with pytest.raises(StatementInvalid) as info:
        ensure_valid(valid_v1, now=NOW)
    assert info.value.issues == (
        ValidationIssue("$.stored", "lrs-only", "'stored' is set by the LRS, never sent"),
        ValidationIssue(
            "$.verb.id", "iri", "verb id must be an absolute IRI with a scheme: 'completed'"
        ),
    )
    assert "2 issue(s)" in str(info.value)
    assert "$.verb.id: [iri]" in str(info.value)


def test_future_check_uses_current_time_by_default(valid_v1: Data) -> None:
    valid_v1["timestamp"] = "2999-01-01T00:00:00.000Z"
    found = validate_statement(valid_v1)
    assert [(i.path, i.rule) for i in found] == [("$.timestamp", "timestamp-future")]


def test_unsupported_version_rejected(valid_v1: Data) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        validate_statement(valid_v1, version="1.1.0", now=NOW)  # type: ignore[arg-type]


# -- remembered verdicts: recurring agents and verbs are checked once -------------------------


def _paths(data: Data, **kwargs: Any) -> list[str]:
    return [i.path for i in validate_statement(data, now=NOW, **kwargs)]


def test_a_remembered_agent_never_hides_a_different_one(make_v1: Callable[[], Data]) -> None:
    data = make_v1()
    data["actor"] = {"mbox": "mailto:recurring@example.com"}
    assert _paths(data) == []  # valid: now remembered
    assert _paths(data) == []
    data["actor"] = {"mbox": "recurring@example.com"}  # no mailto:
    assert _paths(data) == ["$.actor.mbox"]
    assert _paths(data) == ["$.actor.mbox"]  # an invalid value is never remembered
    data["actor"] = {"mbox": "mailto:recurring@example.com", "objectType": "Person"}
    assert _paths(data) == ["$.actor.objectType"]
    data["actor"] = {"mbox": "mailto:recurring@example.com", "name": 5}
    assert _paths(data) == ["$.actor.name"]  # not a plain value: checked every time


def test_a_remembered_agent_as_object_still_needs_its_object_type(
    make_v1: Callable[[], Data],
) -> None:
    data = make_v1()
    agent = {"account": {"homePage": "https://lms.example.com", "name": "u-9"}}
    data["actor"] = dict(agent)
    assert _paths(data) == []
    data["object"] = dict(agent)  # the same agent as the object, without objectType
    for key in ("revision", "platform"):  # these only go with an Activity object
        del data["context"][key]
    assert _paths(data) == ["$.object.objectType"]
    data["object"] = {"account": {"homePage": "not an iri", "name": "u-9"}, "objectType": "Agent"}
    assert _paths(data) == ["$.object.account.homePage"]


def test_a_remembered_verb_never_hides_a_different_one(make_v1: Callable[[], Data]) -> None:
    data = make_v1()
    verb = "https://example.com/verbs/recurring"
    data["verb"] = {"id": verb, "display": {"en-US": "recurred"}}
    assert _paths(data) == []
    data["verb"] = {"id": verb, "display": {"en_US": "recurred"}}  # not a language tag
    assert _paths(data) == ["$.verb.display.en_US"]
    data["verb"] = {"id": verb, "display": {"en-US": "recurred"}, "extra": "x"}
    assert _paths(data) == ["$.verb.extra"]
    data["verb"] = {"id": verb}
    assert _paths(data) == []
    data["verb"] = {"id": verb, "display": None}
    assert _paths(data) == ["$.verb.display"]


def test_verdicts_are_bounded() -> None:
    from hub.xapi.validation import _Verdicts

    verdicts = _Verdicts(limit=3)
    for n in range(3):
        verdicts.add(n)
    assert all(n in verdicts for n in range(3))
    verdicts.add(3)  # full: forget the old ones rather than grow
    assert 3 in verdicts
    assert 0 not in verdicts
