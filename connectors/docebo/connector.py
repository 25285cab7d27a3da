"""The Docebo connector: webhooks for near-real-time facts, polling for backfill and reconciliation.

Both paths produce the same raw event types (``course.enrollment.created`` /
``course.enrollment.completed`` / ...) whose payloads fit the same payload models
(`connectors.docebo.models`), and so the same statements and statement ids (vendors.md 8.5 #2).

Polling walks three streams per sync window, one page per `poll()` call:
``enrollments`` (incremental ``updated_from`` on ``/learn/v1/enrollments``, or the new course
service), ``learning_plans`` and, when configured, ``ilt`` attendance. A sync window runs from
the saved mark minus the overlap to the `until` seen when the sync started (kept in the cursor,
so offset pages stay stable while the sync runs); the mark moves only when the last page of the
last stream is done. A crash between pages replays at most one page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, JsonValue, ValidationError

from connectors.docebo.client import DoceboClient
from connectors.docebo.mapping import mapper
from connectors.docebo.models import (
    DoceboEnvelope,
    EnrollmentRecord,
    IltAttendance,
    LearningPlanCompleted,
    MappingOptions,
    docebo_time,
    format_docebo_time,
)
from connectors.docebo.settings import DoceboSettings
from hub import (
    BadRequest,
    BasicAuthVerifier,
    Connector,
    ConnectorRuntime,
    LoopGuard,
    MappingContext,
    MapResult,
    Person,
    Polling,
    PollResult,
    QueryTokenVerifier,
    SourceEvent,
    TimeCursor,
    Verifier,
    Webhook,
    WebhookRequest,
    json_body,
    next_page_number,
    signpost,
)
from hub.xapi import key_time

__all__ = ["DoceboConnector", "DoceboCursor"]

logger = logging.getLogger(__name__)

Stream = Literal["enrollments", "learning_plans", "ilt"]

COMPLETED_EVENT = "course.enrollment.completed"
CREATED_EVENT = "course.enrollment.created"
LP_COMPLETED_EVENT = "learningplan.enrollment.completed"
ILT_ATTENDED_EVENT = "ilt.session.attended"


class DoceboCursor(TimeCursor):
    """Where a Docebo sync stands: the mark, the stream and page inside the current window."""

    stream: Stream = "enrollments"
    upto: AwareDatetime | None = None
    seen: tuple[str, ...] = ()


RowEvents = Callable[[dict[str, JsonValue]], list[tuple[str, dict[str, JsonValue]]]]


class DoceboConnector(Connector[DoceboSettings], Polling[DoceboCursor], Webhook):
    """Docebo Learn: OAuth2 API polling plus webhooks (single and grouped forms)."""

    name = "docebo"
    source = "docebo"
    platform = "Docebo"
    settings_model: ClassVar[type[BaseModel]] = DoceboSettings
    mapper = mapper
    cursor_model = DoceboCursor
    # Webhooks carry the live traffic; polling reconciles and backfills.
    default_interval: ClassVar[timedelta] = timedelta(minutes=30)

    def __init__(self, settings: DoceboSettings, *, runtime: ConnectorRuntime) -> None:
        super().__init__(settings, runtime=runtime)
        self.client = DoceboClient(settings, http=runtime.http, clock=runtime.clock)
        self._verifier = self._build_verifier()

    # -- identity -------------------------------------------------------------------------------

    @property
    def tenant(self) -> str:
        return self.settings.tenant_token

    @property
    def account_home_page(self) -> str:
        return self.settings.base_url

    def check(self) -> None:
        self.client.get_json("/manage/v1/user", {"page_size": 1})

    def lookup_user(self, source_user_id: str) -> Person | None:
        data = self.client.user(source_user_id)
        if data is None:
            return None
        name = " ".join(p for p in (data.first_name, data.last_name) if p) or None
        # Some tenants return an empty email here (vendors.md 2.3): None, not "".
        return Person(source_user_id=source_user_id, email=data.email or None, name=name)

    # -- webhook --------------------------------------------------------------------------------

    def _build_verifier(self) -> Verifier:
        s = self.settings
        previous = [s.webhook_previous_secret] if s.webhook_previous_secret else []
        if s.webhook_auth == "query_token" and s.webhook_token is not None:
            return QueryTokenVerifier(
                param=s.webhook_token_param, secrets=[s.webhook_token, *previous]
            )
        if s.webhook_username is None or s.webhook_password is None:  # validated; for mypy
            raise ValueError("webhook_auth 'basic' needs webhook_username and webhook_password")
        return BasicAuthVerifier(
            username=s.webhook_username, passwords=[s.webhook_password, *previous]
        )

    def verify(self, request: WebhookRequest) -> None:
        self._verifier.verify(request)

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        try:
            envelope = DoceboEnvelope.model_validate(json_body(request))
        except ValidationError:
            raise BadRequest("not a Docebo webhook message (message_id, event)") from None
        event_type = self.settings.event_aliases.get(envelope.event, envelope.event)
        if envelope.payloads is not None:
            # One message_id covers up to 25 grouped events (pitfall 4): each event gets its own
            # delivery id (stable across redeliveries of the message) so the receiver's dedupe
            # drops a redelivered message without dropping its siblings.
            items = [(f"{envelope.message_id}:{i}", p) for i, p in enumerate(envelope.payloads)]
        elif envelope.payload is not None:
            items = [(envelope.message_id, envelope.payload)]
        else:
            raise BadRequest("Docebo message with neither payload nor payloads")
        return [
            SourceEvent(
                instance_id=self.instance_id,
                event_type=event_type,
                payload=payload,
                delivery_id=delivery_id,
                received_at=request.received_at,
                via="webhook",
            )
            for delivery_id, payload in items
        ]

    # -- mapping --------------------------------------------------------------------------------

    def _options(self) -> dict[str, JsonValue]:
        s = self.settings
        return MappingOptions(
            source_timezone=s.source_timezone,
            score_max=s.score_max,
            emit_progressed=s.emit_progressed,
        ).model_dump(mode="json")

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        payload = event.payload
        if isinstance(payload, dict):
            payload = dict(payload)
            if event.event_type == COMPLETED_EVENT and self.settings.enrich_completions:
                payload = self._enrich_completion(payload)
            payload["_hub"] = self._options()
            event = event.model_copy(update={"payload": payload})
        return self.mapper.map(event, ctx)

    def _enrich_completion(self, payload: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """Add score and time spent to a webhook completion (the webhook has neither), from the
        enrollment API row of the SAME completion. I/O in the normalizer, like user lookups;
        a TransientError retries the batch."""
        if "enrollment_score" in payload or "score" in payload:
            return payload  # an API row, or already enriched
        try:
            fact = EnrollmentRecord.model_validate(payload)
        except ValidationError:
            return payload  # the mapper reports what is wrong
        zone = self.settings.zone
        done = docebo_time(fact.completion_date, zone)
        if done is None:
            return payload
        for row in self.client.enrollment_rows(user_id=fact.user_id, course_id=fact.course_id):
            row_done = docebo_time(row.completion_date, zone)
            if row_done is not None and key_time(row_done) == key_time(done):
                return {
                    **payload,
                    "enrollment_score": row.score,
                    "enrollment_time_spent": row.time_spent,
                }
        # Reset and redone since: this completion's score is gone; send it without one.
        return {**payload, "enrollment_score": None}

    # -- polling --------------------------------------------------------------------------------

    def initial_cursor(self, since: datetime) -> DoceboCursor:
        return DoceboCursor(mark=since)

    def _streams(self) -> list[Stream]:
        streams: list[Stream] = ["enrollments"]
        if self.settings.learning_plans:
            streams.append("learning_plans")
        if self.settings.ilt_attendance_path:
            streams.append("ilt")
        return streams

    def poll(self, cursor: DoceboCursor | None, *, until: datetime) -> PollResult[DoceboCursor]:
        now = self.runtime.clock.now()
        if cursor is None:
            cursor = self.initial_cursor(self.settings.first_start(now))
        start = cursor.window_start(timedelta(minutes=self.settings.overlap_minutes))
        upto = cursor.upto or signpost(until, now)
        if upto <= cursor.mark and cursor.page is None:
            return PollResult(events=[], next_cursor=cursor, has_more=False)
        streams = self._streams()
        stream = cursor.stream if cursor.stream in streams else streams[0]
        page_no = cursor.page or 1
        path, params, to_events = self._stream_request(stream, start=start, upto=upto)
        params = {**params, "page": page_no, "page_size": self.settings.page_size, "get_cursor": 1}
        if cursor.page_token:
            params["cursor"] = cursor.page_token
        page = self.client.page(path, params).data

        events: list[SourceEvent] = []
        for row in page.items:
            for event_type, payload in to_events(row):
                events.append(
                    SourceEvent(
                        instance_id=self.instance_id,
                        event_type=event_type,
                        payload=payload,
                        received_at=now,
                        via="poll",
                    )
                )

        guard = LoopGuard(cursor.seen)
        nxt = next_page_number(
            page_no, has_more=page.has_more_data, total_pages=page.total_page_count
        )
        if nxt is not None:
            token = page.cursor
            if token:
                guard.check(token)  # the same page token twice: PaginationLoop
            next_cursor = cursor.model_copy(
                update={
                    "stream": stream,
                    "page": nxt,
                    "page_token": token,
                    "upto": upto,
                    "seen": guard.seen,
                }
            )
            return PollResult(
                events=events, next_cursor=next_cursor, has_more=True, total_hint=page.total_count
            )
        later = streams[streams.index(stream) + 1 :]
        if later:
            next_cursor = DoceboCursor(mark=cursor.mark, stream=later[0], upto=upto)
            return PollResult(
                events=events, next_cursor=next_cursor, has_more=True, total_hint=page.total_count
            )
        done = DoceboCursor(mark=signpost(until, max(cursor.mark, upto)), stream=streams[0])
        return PollResult(events=events, next_cursor=done, has_more=False, total_hint=None)

    def _in_window(self, value: str | None, *, start: datetime, upto: datetime) -> bool:
        when = docebo_time(value, self.settings.zone)
        # A row without the date cannot be placed: keep it (deterministic ids dedupe it).
        return when is None or start <= when <= upto

    def _stream_request(
        self, stream: Stream, *, start: datetime, upto: datetime
    ) -> tuple[str, dict[str, str | int | Sequence[str | int]], RowEvents]:
        zone = self.settings.zone

        def enrollment_events(row: dict[str, JsonValue]) -> list[tuple[str, dict[str, JsonValue]]]:
            try:
                rec = EnrollmentRecord.model_validate(row)
            except ValidationError:
                logger.warning("skipping a Docebo enrollment row of unexpected shape")
                return []
            if self.settings.enrollments_api == "course" and not self._in_window(
                rec.last_updated, start=start, upto=upto
            ):
                return []
            out: list[tuple[str, dict[str, JsonValue]]] = []
            if docebo_time(rec.enrollment_date, zone) is not None:
                out.append((CREATED_EVENT, row))
            if (rec.status or "").lower() == "completed":
                out.append((COMPLETED_EVENT, row))
            return out

        def plan_events(row: dict[str, JsonValue]) -> list[tuple[str, dict[str, JsonValue]]]:
            try:
                rec = LearningPlanCompleted.model_validate(row)
            except ValidationError:
                return []
            status = row.get("enrollment_status", row.get("status"))
            done = docebo_time(rec.completion_date, zone)
            completed = status == "completed" or (status is None and done is not None)
            if not completed or not self._in_window(rec.completion_date, start=start, upto=upto):
                return []
            return [(LP_COMPLETED_EVENT, row)]

        def ilt_events(row: dict[str, JsonValue]) -> list[tuple[str, dict[str, JsonValue]]]:
            try:
                rec = IltAttendance.model_validate(row)
            except ValidationError:
                return []
            if rec.attended is False or not self._in_window(rec.date, start=start, upto=upto):
                return []
            return [(ILT_ATTENDED_EVENT, row)]

        params: dict[str, str | int | Sequence[str | int]]
        if stream == "enrollments":
            if self.settings.enrollments_api == "learn":
                params = {
                    "updated_from": format_docebo_time(start, zone),
                    "updated_to": format_docebo_time(upto, zone),
                }
                return "/learn/v1/enrollments", params, enrollment_events
            params = {"extra_fields[]": ["enrollment_time_spent"]}
            return "/course/v1/courses/enrollments", params, enrollment_events
        if stream == "learning_plans":
            params = {"extra_fields[]": ["enrollment_status"]}
            return self.settings.learning_plan_path, params, plan_events
        return self.settings.ilt_attendance_path or "", {}, ilt_events
