"""SampleCoach: session webhooks authenticated with a static shared token.

Imports only the hub's plugin API (hub.connector, hub.errors, hub.events, hub.mapping, hub.xapi)
and pydantic, as a third-party plugin must.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime

from pydantic import Field, SecretStr

from hub import (
    BadRequest,
    Connector,
    ConnectorSettings,
    EventPayload,
    InvalidSignature,
    MappingContext,
    Person,
    SourceEvent,
    StatementMapper,
    Webhook,
    WebhookRequest,
)
from hub.xapi import Activity, ActivityDefinition, ActivityTypes, Statement, Verbs

TOKEN_HEADER = "X-Sample-Token"


class SampleCoachSettings(ConnectorSettings):
    """Settings of one SampleCoach tenant."""

    tenant: str = Field(description="the SampleCoach workspace, e.g. 'acme'")
    token: SecretStr = Field(description="the shared token SampleCoach sends in X-Sample-Token")


class _User(EventPayload):
    id: str
    email: str | None = None
    name: str | None = None


class _Session(EventPayload):
    id: str
    topic: str
    ended_at: datetime


class SessionCompleted(EventPayload):
    """``session.completed``: a coachee attended a coaching session."""

    event_types = ("session.completed",)
    id: str
    user: _User
    session: _Session


mapper = StatementMapper()


@mapper.on(SessionCompleted)
def session_completed(e: SessionCompleted, ctx: MappingContext) -> list[Statement]:
    actor = ctx.agent(Person(source_user_id=e.user.id, email=e.user.email, name=e.user.name))
    activity = Activity(
        id=ctx.activity_id("session", e.session.id),
        definition=ActivityDefinition(
            type=ActivityTypes.TUTOR_SESSION, name=ctx.lang(e.session.topic)
        ),
    )
    return [
        ctx.statement(
            verb=Verbs.ATTENDED,
            key=[("session", e.session.id), ("user", e.user.id)],
            actor=actor,
            object_=activity,
            timestamp=e.session.ended_at,
        )
    ]


class SampleCoachConnector(Connector[SampleCoachSettings], Webhook):
    """SampleCoach coaching sessions, pushed by webhook.

    Configure the webhook in SampleCoach with the URL ``/webhooks/<instance id>`` and a custom
    header ``X-Sample-Token`` holding the shared token.
    """

    name = "sample-coach"
    source = "samplecoach"
    platform = "SampleCoach"
    version = "0.1.0"
    settings_model = SampleCoachSettings
    mapper = mapper

    @property
    def tenant(self) -> str:
        return self.settings.tenant.lower()

    @property
    def account_home_page(self) -> str:
        return f"https://{self.tenant}.samplecoach.example"

    def check(self) -> None:
        return None

    def verify(self, request: WebhookRequest) -> None:
        sent = request.header(TOKEN_HEADER)
        expected = self.settings.token.get_secret_value()
        if sent is None or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise InvalidSignature("missing or wrong X-Sample-Token")

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        try:
            body = json.loads(request.body)
        except ValueError:
            raise BadRequest("body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise BadRequest("expected a JSON object with a 'type'")
        return [
            SourceEvent(
                instance_id=self.instance_id,
                event_type=body["type"],
                payload=body,
                delivery_id=str(body["id"]) if "id" in body else None,
                received_at=request.received_at,
            )
        ]
