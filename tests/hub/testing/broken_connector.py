"""A DELIBERATELY BROKEN connector: every bug here must be reported by the conformance kit.

Copied into pytester directories by `test_conformance_kit.py`. Each override is one classic
mistake; the comment names the inherited test that must catch it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta

import toy_connector as toy
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from toy_connector import LessonEvent, LessonRegistered, ToyConnector

from hub.connector import Connector, Person, Polling, Webhook
from hub.cursor import TimeCursor
from hub.errors import InvalidSignature, TransientError
from hub.events import PollResult, SourceEvent, WebhookRequest, WebhookResponse
from hub.mapping import EventPayload, MappingContext, StatementMapper
from hub.xapi import Activity, Statement
from hub.xapi.timefmt import key_time


class BrokenSettings(BaseModel):
    # plugin.settings_extra + plugin.sample_settings + plugin.registry: unknown keys allowed.
    model_config = ConfigDict(extra="allow", frozen=True)

    tenant: str = Field(description="tenant host")
    api_base: HttpUrl = Field(description="API base URL")
    api_token: str = Field(description="bearer token")  # plugin.secrets: not SecretStr
    signing_secret: str  # plugin.secrets + plugin.descriptions


mapper = StatementMapper()


class LessonFailed(EventPayload):
    event_types = ("lesson.failed",)  # mapping.coverage: no fixture for it

    id: str


@mapper.on(LessonEvent)
def completed(e: LessonEvent, ctx: MappingContext) -> list[Statement]:
    actor = ctx.agent(Person(source_user_id=e.user_id, email=e.email, name=e.name))
    at = toy._when(e)
    return [
        ctx.statement(
            verb=toy.Verbs.COMPLETED,
            key=[("user", e.user_id), ("lesson", e.lesson_id), ("completed_at", key_time(at))],
            actor=actor,
            object_=Activity(id=ctx.activity_id("lesson", e.lesson_id)),
            timestamp=at,
            # mapping.actor_ifi: a raw email copied into the statement
            # mapping.golden / mapping.deterministic: the wall clock in the output
            extensions={
                ctx.extension("email"): e.email,
                ctx.extension("mapped-at"): datetime.now().isoformat(),
            },
        )
    ]


@mapper.on(LessonRegistered)
def registered(e: LessonRegistered, ctx: MappingContext) -> list[Statement]:
    return toy.lesson_registered(e, ctx)


@mapper.on(LessonFailed)
def failed(e: LessonFailed, ctx: MappingContext) -> list[Statement]:
    return []


class BrokenConnector(ToyConnector):
    name = "Broken_Toy"  # plugin.name: not the entry-point name, not lower-case-with-hyphens
    settings_model = BrokenSettings  # type: ignore[assignment]
    mapper = mapper

    def _get(self, path, params=None):  # type: ignore[no-untyped-def]
        response = self.runtime.http.get(self._url(path), params=params)
        if response.status_code == 429:
            # polling.rate_limit[http-date]: float() of an HTTP date raises ValueError
            raise toy.RateLimited("slow down", retry_after=float(response.headers["retry-after"]))
        if response.status_code >= 400:
            raise TransientError(str(response.status_code))  # check.unauthorized: 401 retried
        return response

    def _url(self, path: str) -> str:
        return str(self.settings.api_base).rstrip("/") + path

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def poll(self, cursor, *, until):  # type: ignore[no-untyped-def]
        cursor = cursor or self.initial_cursor(until - timedelta(days=30))
        params = {"since": key_time(cursor.mark)}
        if cursor.page_token:
            params["page_token"] = cursor.page_token
        data = self._get("/v1/records", params).json()
        events = [self._event(r, via="poll") for r in data["records"]]
        token = data.get("next_page_token")
        if token:  # polling.repeated_token: no loop detection
            return PollResult(
                events=events,
                next_cursor=TimeCursor(mark=cursor.mark, page_token=token),
                has_more=True,
            )
        newest = max(toy._when(LessonEvent.model_validate(r)) for r in data["records"])
        # polling.until: the mark is not clamped to `until`
        return PollResult(events=events, next_cursor=TimeCursor(mark=newest), has_more=False)

    def status_details(self) -> dict[str, str]:
        # plugin.status_details: asks the API on every status request
        return {"records": str(len(self._get("/v1/records").json()["records"]))}

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        data = json.loads(request.body)  # (never reached with a non-JSON body in these tests)
        if data.get("type") == "url_verification":
            # webhook.handshake: answers JSON instead of echoing the challenge
            return WebhookResponse(body=json.dumps({"challenge": data["challenge"]}).encode())
        return None

    def verify(self, request: WebhookRequest) -> None:
        # webhook.missing_header / malformed_header: KeyError / ValueError instead of
        # InvalidSignature; webhook.stale: no timestamp tolerance;
        # webhook.tampered: leading whitespace is stripped before checking
        stamp = int(request.headers["x-toy-timestamp"])
        secret = self.settings.signing_secret
        mac = hmac.new(
            secret.encode(), f"{stamp}.".encode() + request.body.lstrip(), hashlib.sha256
        )
        if not hmac.compare_digest("v1=" + mac.hexdigest(), request.headers["x-toy-signature"]):
            raise InvalidSignature("signature mismatch")


__all__ = ["BrokenConnector", "Connector", "Polling", "SourceEvent", "Webhook"]
