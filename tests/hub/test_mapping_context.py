"""MappingContext's two builders: a model (`statement`) and xAPI JSON (`statement_json`).

Typed connectors build models, the generic webhook engine builds JSON; both must give the same
bytes for the same fact, or a webhook and a backfill of it would be two statements.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub.connector import Person
from hub.events import SourceEvent
from hub.mapping import MappingContext
from hub.testing.fixtures import StaticActorResolver
from hub.xapi import (
    Activity,
    ActivityDefinition,
    Agent,
    Context,
    ContextActivities,
    Result,
    Score,
    Verbs,
    canonical_bytes,
)

WHEN = datetime(2024, 5, 3, 15, 0, 0, 250000, tzinfo=UTC)
BASE = "https://lrs-hub.example.com/xapi"
KEY = [("session", "ses_1"), ("user", "u_1")]


@pytest.fixture
def ctx() -> MappingContext:
    event = SourceEvent(
        instance_id="coach-main", event_type="session.completed", payload={}, received_at=WHEN
    )
    return MappingContext(
        base_iri=BASE,
        source="webhook:acmecoach",
        tenant="acme",
        platform="AcmeCoach",
        connector_type="webhook",
        connector_version="0.1.0",
        instance_id="coach-main",
        home_page="https://app.acmecoach.example",
        actors=StaticActorResolver(),
        event=event,
    )


def _both(ctx: MappingContext, **parts: Any) -> tuple[bytes, bytes]:
    """Build the same statement both ways; `parts` hold (model, json) pairs per argument."""
    models = {k: v[0] for k, v in parts.items()}
    jsons = {k: v[1] for k, v in parts.items()}
    actor = ctx.agent(Person(email="Ada@Example.com", source_user_id="u_1"))
    common = {"verb": Verbs.ATTENDED, "key": KEY, "timestamp": WHEN}
    model = ctx.statement(actor=actor, **common, **models)
    as_json = ctx.statement_json(actor=actor.to_json(), **common, **jsons)
    return canonical_bytes(model), canonical_bytes(as_json)


ACTIVITY = (
    Activity(
        id=f"{BASE}/activities/s/1",
        definition=ActivityDefinition(type="http://id.tincanapi.com/activitytype/tutor-session"),
    ),
    {
        "id": f"{BASE}/activities/s/1",
        "definition": {"type": "http://id.tincanapi.com/activitytype/tutor-session"},
    },
)
COACH = Agent(mbox="mailto:coach@example.com")


@pytest.mark.parametrize(
    "parts",
    [
        {"object_": ACTIVITY},
        {  # an Agent object: no platform or language is added
            "object_": (
                Agent(mbox="mailto:bob@example.com", object_type="Agent"),
                {"mbox": "mailto:bob@example.com", "objectType": "Agent"},
            )
        },
        {
            "object_": ACTIVITY,
            "result": (
                Result(score=Score(raw=4, min=1, max=5, scaled=0.8), duration="PT45M"),
                {"score": {"raw": 4, "min": 1, "max": 5, "scaled": 0.8}, "duration": "PT45M"},
            ),
            "context": (
                Context(
                    instructor=COACH,
                    platform="Coaching Suite",
                    language="de",
                    context_activities=ContextActivities(parent=[Activity(id=f"{BASE}/e/42")]),
                    extensions={f"{BASE}/extensions/x": 1, f"{BASE}/extensions/source": "mine"},
                ),
                {
                    "instructor": COACH.to_json(),
                    "platform": "Coaching Suite",
                    "language": "de",
                    "contextActivities": {"parent": [{"id": f"{BASE}/e/42"}]},
                    "extensions": {
                        f"{BASE}/extensions/x": 1,
                        f"{BASE}/extensions/source": "mine",
                    },
                },
            ),
            "extensions": (
                {f"{BASE}/extensions/timestamp-inferred": True},
                {f"{BASE}/extensions/timestamp-inferred": True},
            ),
            "verb_key": ("attended-late", "attended-late"),
        },
    ],
    ids=["activity", "agent-object", "everything"],
)
def test_both_builders_give_the_same_bytes(ctx: MappingContext, parts: dict[str, Any]) -> None:
    model, as_json = _both(ctx, **parts)
    assert model == as_json


def test_the_json_builder_sets_id_platform_and_lineage(ctx: MappingContext) -> None:
    built = ctx.statement_json(
        verb=Verbs.ATTENDED,
        key=KEY,
        actor={"mbox": "mailto:ada@example.com"},
        object_=ACTIVITY[1],
        timestamp=WHEN,
    )
    assert built.id == str(ctx.statement_id("attended", KEY))
    assert built.data["timestamp"] == "2024-05-03T15:00:00.250Z"
    context = built.data["context"]
    assert (context["platform"], context["language"]) == ("AcmeCoach", "en")
    nk = "webhook:acmecoach|acme|attended|session=ses_1|user=u_1"
    assert context["extensions"][f"{BASE}/extensions/source-event-id"] == nk
    assert "result" not in built.data
