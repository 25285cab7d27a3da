"""A small, correct connector (webhook + polling) used to exercise the conformance kit.

`tests/hub/testing/test_conformance_kit.py` copies this module into pytester directories, next
to generated test files that subclass the kit's conformance classes. `ToyHooks` is what a
connector author writes in their conformance class: the mocked routes and the signed requests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
from pydantic import Field, HttpUrl, JsonValue, SecretStr

from hub.connector import Connector, ConnectorSettings, Person, Polling, Webhook
from hub.cursor import TimeCursor, signpost
from hub.errors import (
    BadRequest,
    ConfigError,
    InvalidSignature,
    PaginationLoop,
    PermanentError,
    RateLimited,
    TransientError,
)
from hub.events import PollResult, SourceEvent, WebhookRequest, WebhookResponse
from hub.mapping import EventPayload, MappingContext, StatementMapper
from hub.testing import StrictRouter, json_response, load_json_fixture
from hub.xapi import Activity, ActivityDefinition, Result, Statement
from hub.xapi.timefmt import key_time, parse_timestamp
from hub.xapi.vocab import ActivityTypes, Verbs

API = "https://api.toy.example"
TOLERANCE = timedelta(minutes=5)


class ToySettings(ConnectorSettings):
    """Settings of the toy source."""

    tenant: str = Field(description="tenant host, used in ids")
    api_base: HttpUrl = Field(description="base URL of the toy API")
    api_token: SecretStr = Field(description="bearer token for the toy API")
    signing_secret: SecretStr = Field(description="HMAC secret of webhook deliveries")


mapper = StatementMapper()


class LessonEvent(EventPayload):
    event_types = ("lesson.completed",)

    id: str
    user_id: str
    email: str | None = None
    name: str | None = None
    lesson_id: str
    lesson_title: str
    at: str


class LessonRegistered(LessonEvent):
    event_types = ("lesson.registered",)


def _activity(e: LessonEvent, ctx: MappingContext) -> Activity:
    return Activity(
        id=ctx.activity_id("lesson", e.lesson_id),
        definition=ActivityDefinition(name=ctx.lang(e.lesson_title), type=ActivityTypes.COURSE),
    )


def _when(e: LessonEvent) -> datetime:
    at = parse_timestamp(e.at)
    assert at is not None
    return at


@mapper.on(LessonEvent)
def lesson_completed(e: LessonEvent, ctx: MappingContext) -> list[Statement]:
    at = _when(e)
    actor = ctx.agent(Person(source_user_id=e.user_id, email=e.email, name=e.name))
    return [
        ctx.statement(
            verb=Verbs.COMPLETED,
            key=[("user", e.user_id), ("lesson", e.lesson_id), ("completed_at", key_time(at))],
            actor=actor,
            object_=_activity(e, ctx),
            timestamp=at,
            result=Result(completion=True),
        )
    ]


@mapper.on(LessonRegistered)
def lesson_registered(e: LessonRegistered, ctx: MappingContext) -> list[Statement]:
    actor = ctx.agent(Person(source_user_id=e.user_id, email=e.email, name=e.name))
    return [
        ctx.statement(
            verb=Verbs.REGISTERED,
            key=[("user", e.user_id), ("lesson", e.lesson_id)],
            actor=actor,
            object_=_activity(e, ctx),
            timestamp=_when(e),
        )
    ]


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


class ToyConnector(Connector[ToySettings], Polling[TimeCursor], Webhook):
    name = "toy"
    source = "toy"
    platform = "Toy LMS"
    settings_model = ToySettings
    cursor_model = TimeCursor
    mapper = mapper

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def _url(self, path: str) -> str:
        return str(self.settings.api_base).rstrip("/") + path

    def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        token = self.settings.api_token.get_secret_value()
        try:
            response = self.runtime.http.get(
                self._url(path), params=params, headers={"authorization": f"Bearer {token}"}
            )
        except httpx.TransportError as exc:
            raise TransientError(f"toy API unreachable: {type(exc).__name__}") from None
        self._raise_for(response)
        return response

    def _raise_for(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        if status == 429:
            raise RateLimited("toy API rate limit", retry_after=self._retry_after(response))
        if status in (401, 403):
            raise ConfigError(f"toy API refused the credentials ({status})")
        if status >= 500:
            raise TransientError(f"toy API error {status}")
        raise PermanentError(f"toy API error {status}")

    def _retry_after(self, response: httpx.Response) -> float:
        value = response.headers.get("retry-after", "60").strip()
        if value.isdigit():
            return float(value)
        when = parsedate_to_datetime(value)
        return max(0.0, (when - self.runtime.clock.now()).total_seconds())

    def check(self) -> None:
        self._get("/v1/me")

    # -- polling --------------------------------------------------------------------------

    def initial_cursor(self, since: datetime) -> TimeCursor:
        return TimeCursor(mark=since)

    def poll(self, cursor: TimeCursor | None, *, until: datetime) -> PollResult[TimeCursor]:
        cursor = cursor or self.initial_cursor(until - timedelta(days=30))
        params = {"since": key_time(cursor.mark)}
        if cursor.page_token:
            params["page_token"] = cursor.page_token
        data = self._get("/v1/records", params).json()
        events = [self._event(r, via="poll") for r in data["records"]]
        token = data.get("next_page_token")
        if token:
            if token == cursor.page_token:
                raise PaginationLoop(f"toy API returned page token {token!r} twice")
            return PollResult(
                events=events,
                next_cursor=TimeCursor(mark=cursor.mark, page_token=token),
                has_more=True,
            )
        newest = max(
            [_when(LessonEvent.model_validate(r)) for r in data["records"]] or [cursor.mark]
        )
        mark = signpost(until, max(newest, cursor.mark))
        return PollResult(events=events, next_cursor=TimeCursor(mark=mark), has_more=False)

    def _event(self, record: dict[str, object], *, via: str) -> SourceEvent:
        return SourceEvent(
            instance_id=self.instance_id,
            event_type=str(record["type"]),
            payload=record,
            delivery_id=str(record["id"]),
            received_at=self.runtime.clock.now(),
            via=via,
        )

    # -- webhook --------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        try:
            data = json.loads(request.body)
        except ValueError:
            return None
        if isinstance(data, dict) and data.get("type") == "url_verification":
            return WebhookResponse(status=200, body=str(data.get("challenge", "")).encode())
        return None

    def verify(self, request: WebhookRequest) -> None:
        stamp = request.header("x-toy-timestamp")
        signature = request.header("x-toy-signature")
        if not stamp or not signature:
            raise InvalidSignature("missing signature headers")
        if not stamp.isdigit() or len(stamp) > 12:
            raise InvalidSignature("malformed timestamp")
        at = int(stamp)
        now = self.runtime.clock.now().timestamp()
        if abs(now - at) > TOLERANCE.total_seconds():
            raise InvalidSignature("stale timestamp")
        expected = sign(self.settings.signing_secret.get_secret_value(), request.body, at)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise InvalidSignature("signature mismatch")

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        try:
            data = json.loads(request.body)
        except ValueError:
            raise BadRequest("body is not JSON") from None
        return [self._event(r, via="webhook") for r in data.get("events", [])]


SAMPLE_SETTINGS = {
    "tenant": "acme.toy.example",
    "api_base": API,
    "api_token": "test-token",
    "signing_secret": "test-signing-secret",
}


class ToyHooks:
    """The hooks a connector author writes in the conformance class."""

    fixtures: Path | None

    def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest:
        stamp = int(at.timestamp())
        return WebhookRequest(
            method="POST",
            path="/webhooks/test",
            headers={
                "content-type": "application/json",
                "x-toy-timestamp": str(stamp),
                "x-toy-signature": sign("test-signing-secret", body, stamp),
            },
            body=body,
            received_at=at,
        )

    def handshake_request(self) -> WebhookRequest:
        body = b'{"type": "url_verification", "challenge": "challenge-123"}'
        return WebhookRequest(
            method="POST",
            path="/webhooks/test",
            body=body,
            received_at=datetime.fromisoformat("2025-07-01T12:00:00+00:00"),
        )

    def mock_check_success(self, router: StrictRouter) -> None:
        router.get(f"{API}/v1/me").mock(return_value=json_response({"ok": True}))

    def mock_check_failure(self, router: StrictRouter, status: int) -> None:
        router.get(f"{API}/v1/me").mock(return_value=json_response({"error": "x"}, status=status))

    def _page(self, name: str) -> httpx.Response:
        assert self.fixtures is not None
        return json_response(load_json_fixture(self.fixtures, "api", name))

    def poll_routes(self, router: StrictRouter) -> None:
        records = f"{API}/v1/records"
        router.get(records, params__contains={"page_token": "tok-2"}).mock(
            return_value=self._page("page2.json")
        )
        router.get(records, params__contains={"page_token": "tok-3"}).mock(
            return_value=self._page("page3.json")
        )
        router.get(records, params__eq={"since": "2025-06-01T11:55:00Z"}).mock(
            return_value=self._page("page1.json")
        )

    def repeated_token_routes(self, router: StrictRouter) -> None:
        page: dict[str, JsonValue] = {"records": [], "next_page_token": "tok-2"}
        router.get(f"{API}/v1/records").mock(return_value=json_response(page))

    def rate_limit_route(self, router: StrictRouter, retry_after: str) -> None:
        router.get(f"{API}/v1/records").mock(
            return_value=httpx.Response(429, headers={"retry-after": retry_after})
        )
