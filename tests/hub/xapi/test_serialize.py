"""Canonical bytes and the xAPI statement-equivalence rule."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hub.xapi import (
    Activity,
    ActivityDefinition,
    Agent,
    Context,
    ContextAgent,
    Group,
    Result,
    Score,
    Statement,
    StatementInvalid,
    Verbs,
    canonical_bytes,
    canonical_json,
    statement_differences,
    statement_from_bytes,
    statements_equivalent,
)

ROOT = Path(__file__).resolve().parents[3]
BASE = "https://lrs-hub.example.com/xapi"
COURSE = f"{BASE}/activities/docebo/acme.docebosaas.com/course/678"
SOURCE_EVENT = f"{BASE}/extensions/source-event-id"
STATEMENT_ID = uuid.UUID("961f16f9-d0d5-5cb4-9ef0-f04fe6cf6eb2")
WHEN = datetime(2024, 3, 13, 14, 58, 26, tzinfo=UTC)

GOLDEN = (
    '{"actor":{"mbox":"mailto:ada@example.com","name":"Ada Lövelace","objectType":"Agent"},'
    '"context":{"extensions":{"https://lrs-hub.example.com/xapi/extensions/source-event-id":"m-1"},'
    '"platform":"Docebo"},'
    '"id":"961f16f9-d0d5-5cb4-9ef0-f04fe6cf6eb2",'
    '"object":{"definition":{"name":{"en":"Cours 678"},'
    '"type":"http://adlnet.gov/expapi/activities/course"},'
    '"id":"https://lrs-hub.example.com/xapi/activities/docebo/acme.docebosaas.com/course/678",'
    '"objectType":"Activity"},'
    '"result":{"completion":true,"duration":"PT19M12S","score":{"max":100,"min":0,"raw":80,'
    '"scaled":0.8}},'
    '"timestamp":"2024-03-13T14:58:26.000Z",'
    '"verb":{"display":{"en-US":"completed"},"id":"http://adlnet.gov/expapi/verbs/completed"}}'
)


def build(**overrides: Any) -> Statement:
    fields: dict[str, Any] = {
        "id": STATEMENT_ID,
        "actor": Agent(object_type="Agent", name="Ada Lövelace", mbox="mailto:ada@example.com"),
        "verb": Verbs.COMPLETED.verb(),
        "object_": Activity(
            object_type="Activity",
            id=COURSE,
            definition=ActivityDefinition(
                name={"en": "Cours 678"}, type="http://adlnet.gov/expapi/activities/course"
            ),
        ),
        "result": Result(
            completion=True, duration="PT1152S", score=Score(scaled=0.8, raw=80, min=0, max=100)
        ),
        "context": Context(platform="Docebo", extensions={SOURCE_EVENT: "m-1"}),
        "timestamp": WHEN,
    }
    fields.update(overrides)
    return Statement(**fields)


def test_golden_bytes() -> None:
    assert canonical_bytes(build()) == GOLDEN.encode("utf-8")


def test_equal_statements_give_identical_bytes() -> None:
    plus_two = timezone(timedelta(hours=2))
    other = Statement.model_validate(
        json.loads(
            json.dumps(
                {
                    "version": "1.0.0",
                    "timestamp": "2024-03-13T16:58:26+02:00",
                    **{k: v for k, v in build().to_json().items() if k != "timestamp"},
                }
            )
        )
    )
    assert canonical_bytes(other) == canonical_bytes(build())
    shifted = build(timestamp=WHEN.astimezone(plus_two), result=build().result)
    assert canonical_bytes(shifted) == canonical_bytes(build())


def test_bytes_stable_across_runs() -> None:
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from hub.xapi import Statement\n"
        "from hub.xapi.serialize import canonical_bytes\n"
        "data = sys.stdin.read()\n"
        "sys.stdout.buffer.write(canonical_bytes(Statement.model_validate_json(data)))\n"
    )
    payload = json.dumps(build().to_json())
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", script],
            input=payload.encode(),
            capture_output=True,
            check=True,
            env=env,
            cwd=ROOT,
        )
        outputs.add(done.stdout)
    assert outputs == {GOLDEN.encode("utf-8")}


def test_utf8_not_ascii_escaped_and_compact() -> None:
    body = canonical_bytes(build())
    assert "Lövelace".encode() in body
    assert b"\\u" not in body
    assert b", " not in body
    assert b": " not in body


def _stdlib_canonical(data: Any) -> bytes:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@pytest.mark.parametrize(
    "data",
    [
        {"b": 1, "a": [1, 2.5, -0.0, 1e16, 'é\u2028\x00\x1f"\\/'], "c": None},
        {"z": {"y": True, "x": False}, "é": "last", "Z": "before lower case"},
        {"big": 2**70},  # beyond orjson's 64 bits: the standard library writes it
        {10: "a", 2: "b"},  # non-string keys: as json.dumps writes (and orders) them
        {"a": {"b": [None, {"c": 1}]}},  # a real null is not mistaken for NaN
    ],
)
def test_canonical_json_writes_what_the_standard_library_writes(data: dict[Any, Any]) -> None:
    assert canonical_json(data) == _stdlib_canonical(data)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_canonical_json_refuses_non_finite_numbers(bad: float) -> None:
    # orjson alone would write null here; the statement would silently change.
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"result": {"score": {"raw": [1, bad]}}})


def test_version_field_omitted() -> None:
    body = canonical_bytes(build(version="1.0.0"))
    assert b'"version"' not in body


def test_invalid_statement_raises_with_issues() -> None:
    bad = build(verb=Verbs.COMPLETED.verb().model_copy(update={"id": "completed"}))
    with pytest.raises(StatementInvalid) as info:
        canonical_bytes(bad)
    assert [(i.path, i.rule) for i in info.value.issues] == [("$.verb.id", "iri")]


def test_2_0_fields_raise_for_1_0_3_but_serialise_for_2_0_0() -> None:
    context = Context(
        platform="Docebo",
        context_agents=[ContextAgent(agent=Agent(mbox="mailto:coach@example.com"))],
    )
    with pytest.raises(StatementInvalid, match="version-2-only"):
        canonical_bytes(build(context=context))
    body = canonical_bytes(build(context=context), version="2.0.0")
    assert b'"contextAgents":[{"agent":{"mbox":"mailto:coach@example.com"}' in body


def test_hub_requires_id_and_timestamp() -> None:
    with pytest.raises(StatementInvalid) as info:
        canonical_bytes(build(id=None, timestamp=None))
    assert {(i.path, i.rule) for i in info.value.issues} == {
        ("$.id", "hub-required"),
        ("$.timestamp", "hub-required"),
    }


def test_future_timestamp_rejected() -> None:
    with pytest.raises(StatementInvalid, match="timestamp-future"):
        canonical_bytes(build(timestamp=datetime.now(UTC) + timedelta(days=1)))


def test_statement_from_bytes_round_trip() -> None:
    body = canonical_bytes(build())
    data = statement_from_bytes(body)
    assert data["id"] == str(STATEMENT_ID)
    assert data["result"]["duration"] == "PT19M12S"
    assert canonical_bytes(Statement.model_validate(data)) == body
    with pytest.raises(ValueError, match="JSON object"):
        statement_from_bytes(b"[1]")


# --- equivalence ----------------------------------------------------------------------------


@pytest.fixture
def sent() -> dict[str, Any]:
    return statement_from_bytes(canonical_bytes(build()))


def stored_copy(sent: dict[str, Any]) -> dict[str, Any]:
    stored = copy.deepcopy(sent)
    stored["stored"] = "2024-03-13T15:00:00.000Z"
    stored["authority"] = {"objectType": "Agent", "mbox": "mailto:hub@lrs.example.org"}
    stored["version"] = "1.0.0"
    return stored


def test_lrs_added_fields_ignored(sent: dict[str, Any]) -> None:
    assert statements_equivalent(sent, stored_copy(sent))


def test_timestamp_notation_differences_are_equal(sent: dict[str, Any]) -> None:
    for notation in (
        "2024-03-13T14:58:26Z",
        "2024-03-13T14:58:26+00:00",
        "2024-03-13T16:58:26.000+02:00",
    ):
        other = {**sent, "timestamp": notation}
        assert statements_equivalent(sent, other), notation


def test_different_instant_not_equal(sent: dict[str, Any]) -> None:
    assert not statements_equivalent(sent, {**sent, "timestamp": "2024-03-13T14:58:27.000Z"})


def test_different_verb_not_equal(sent: dict[str, Any]) -> None:
    other = {**sent, "verb": {"id": Verbs.PASSED.iri, "display": {"en-US": "passed"}}}
    assert not statements_equivalent(sent, other)
    assert statement_differences(sent, other) == ["$.verb.display.en-us", "$.verb.id"]


def test_ignored_extension(sent: dict[str, Any]) -> None:
    other = copy.deepcopy(sent)
    other["context"]["extensions"][SOURCE_EVENT] = "m-2-redelivery"
    assert not statements_equivalent(sent, other)
    assert statements_equivalent(sent, other, ignore_extensions=[SOURCE_EVENT])
    del other["context"]["extensions"]
    assert statements_equivalent(sent, other, ignore_extensions={SOURCE_EVENT})


def test_other_extension_still_compared(sent: dict[str, Any]) -> None:
    other = copy.deepcopy(sent)
    other["context"]["extensions"][f"{BASE}/extensions/source"] = "docebo"
    assert not statements_equivalent(sent, other, ignore_extensions=[SOURCE_EVENT])


def test_group_member_order_ignored() -> None:
    members = [Agent(mbox="mailto:a@example.com"), Agent(mbox="mailto:b@example.com")]
    one = build(actor=Group(object_type="Group", member=members)).to_json()
    two = build(actor=Group(object_type="Group", member=members[::-1])).to_json()
    assert one != two
    assert statements_equivalent(one, two)


def test_case_insensitive_parts(sent: dict[str, Any]) -> None:
    other = copy.deepcopy(sent)
    other["actor"]["mbox"] = "mailto:ada@EXAMPLE.com"
    other["id"] = sent["id"].upper()
    assert statements_equivalent(sent, other)
    other["actor"]["mbox"] = "mailto:ADA@example.com"
    assert not statements_equivalent(sent, other)


def test_lrs_defaults_and_array_wrapping_ignored(sent: dict[str, Any]) -> None:
    mine = copy.deepcopy(sent)
    del mine["actor"]["objectType"], mine["object"]["objectType"]
    mine["context"]["contextActivities"] = {"parent": {"id": COURSE}}
    theirs = copy.deepcopy(sent)
    theirs["context"]["contextActivities"] = {"parent": [{"objectType": "Activity", "id": COURSE}]}
    assert statements_equivalent(mine, theirs)


def test_one_sided_id_and_timestamp_ignored(sent: dict[str, Any]) -> None:
    mine = {k: v for k, v in sent.items() if k not in ("id", "timestamp")}
    assert statements_equivalent(mine, stored_copy(sent))
    assert not statements_equivalent(sent, {**sent, "id": str(uuid.uuid4())})


def test_duration_notation_ignored(sent: dict[str, Any]) -> None:
    other = copy.deepcopy(sent)
    other["result"]["duration"] = "PT1152.001S"
    assert statements_equivalent(sent, other)
    other["result"]["duration"] = "PT1153S"
    assert not statements_equivalent(sent, other)


def test_bool_and_number_not_conflated(sent: dict[str, Any]) -> None:
    other = copy.deepcopy(sent)
    other["result"]["completion"] = 1
    assert not statements_equivalent(sent, other)


def test_durations_already_canonical_are_kept_and_the_rest_rewritten() -> None:
    # canonical_bytes skips re-deriving a duration that is already in format_duration's form;
    # the shortcut must accept every such form and nothing that format_duration would change.
    from decimal import Decimal
    from random import Random

    from hub.xapi.serialize import _canonical_duration
    from hub.xapi.timefmt import format_duration, parse_duration

    rng = Random(20261129)
    for _ in range(5000):
        text = format_duration(Decimal(rng.randint(0, 10**7)) / 100)
        assert _canonical_duration(text) == text
    for _ in range(20000):
        text = (
            "PT"
            + rng.choice(["", f"{rng.randint(0, 30)}H"])
            + rng.choice(["", f"{rng.randint(0, 70)}M"])
            + rng.choice(
                ["", f"{rng.randint(0, 70)}S", f"{rng.randint(0, 70)}.{rng.randint(0, 999)}S"]
            )
        )
        if text == "PT":
            continue
        assert _canonical_duration(text) == format_duration(parse_duration(text)), text
    for text, expected in [("PT60S", "PT1M"), ("PT0H5M", "PT5M"), ("PT1.50S", "PT1.5S"),
                           ("PT0M0S", "PT0S"), ("P1D", "PT24H"), ("P1Y", "P1Y")]:  # fmt: skip
        assert _canonical_duration(text) == expected
