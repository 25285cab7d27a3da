"""The Cornerstone OnDemand connector: Reporting API polling, Edge webhooks, CSV file drops.

All three paths end in the same event types (``TrainingCompleted``, ``TrainingAssigned``,
``TrainingRegistered``, ``TrainingRemoved``) whose payloads fit `TranscriptFact`. Webhook facts
are joined in `map()` (the normalizer may do I/O, as user lookups do) with the same views the
poll joins, so a completion gives byte-identical statements whichever way it arrived.

Polling (mode ``api``) reads ``vw_rpt_transcript`` filtered on ``_last_touched_dt_utc`` from the
mark minus the overlap (the warehouse lags up to ~15 min) up to the `until` of the sync's first
page, follows ``@odata.nextLink`` verbatim, and moves the mark to the highest
``_last_touched_dt_utc`` seen once the last page is done (vendors.md 3.4).

File-drop mode (mode ``files``) reads the daily CSV transcript reports from ``files_dir``, one
file per poll, oldest first. Each file is diffed against the snapshot of the previous file
(row fingerprints in the instance state), so only new facts become events; the cursor names the
file whose snapshot is the baseline, and a snapshot is deleted only once a later cursor is saved.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, JsonValue, ValidationError

from connectors.cornerstone.client import (
    TRANSCRIPT_VIEW,
    USER_VIEW,
    CornerstoneClient,
    JoinRow,
)
from connectors.cornerstone.mapping import mapper
from connectors.cornerstone.models import (
    CsodWebhookBatch,
    MappingOptions,
    TranscriptFact,
    csod_time,
)
from connectors.cornerstone.settings import CornerstoneSettings
from hub import (
    BadRequest,
    BodyDigestVerifier,
    ConfigError,
    Connector,
    ConnectorRuntime,
    DateHeaderVerifier,
    HmacVerifier,
    InvalidSignature,
    LoopGuard,
    MappingContext,
    MapResult,
    Person,
    Polling,
    PollResult,
    SourceEvent,
    StaticHeaderVerifier,
    TimeCursor,
    TransientError,
    Verifier,
    Webhook,
    WebhookRequest,
    json_body,
    signpost,
)
from hub.xapi import key_time

__all__ = ["CornerstoneConnector", "CornerstoneCursor"]

logger = logging.getLogger(__name__)

COMPLETED = "TrainingCompleted"
ASSIGNED = "TrainingAssigned"
REGISTERED = "TrainingRegistered"
REMOVED = "TrainingRemoved"
_ENRICHED = (COMPLETED, ASSIGNED)


class CornerstoneCursor(TimeCursor):
    """API mode: mark, next link, window end, highest last-touched seen. Files mode: the last
    file read (its name, mtime and content hash) and the hash before it."""

    upto: AwareDatetime | None = None
    high: AwareDatetime | None = None
    seen: tuple[str, ...] = ()
    file_name: str | None = None
    file_mtime: float | None = None
    file_sha: str | None = None
    prev_sha: str | None = None


def _webhook_verifiers(settings: CornerstoneSettings, runtime: ConnectorRuntime) -> list[Verifier]:
    """x-api-key always (vendors.md 3.7); with a Security Token also the body digest, the
    Date window and the Authorization HMAC (the secret is base64, as Cornerstone shows it)."""
    keys = [k for k in (settings.webhook_api_key, settings.webhook_previous_api_key) if k]
    if not keys:
        return []
    verifiers: list[Verifier] = [StaticHeaderVerifier(header="x-api-key", secrets=keys)]
    secrets = [
        s for s in (settings.webhook_hmac_secret, settings.webhook_previous_hmac_secret) if s
    ]
    if secrets:
        verifiers += [
            BodyDigestVerifier(header="x-content-sha256"),
            DateHeaderVerifier(
                clock=runtime.clock, tolerance_seconds=settings.webhook_max_clock_skew
            ),
            HmacVerifier(
                secrets=secrets,
                header="authorization",
                encoding="base64",
                prefix=settings.webhook_hmac_prefix,
                signed_string=settings.webhook_hmac_string,
                secret_encoding="base64",  # noqa: S106 - an encoding name, not a secret
                clock=runtime.clock,
            ),
        ]
    return verifiers


class CornerstoneConnector(Connector[CornerstoneSettings], Polling[CornerstoneCursor], Webhook):
    """Cornerstone OnDemand: Reporting API, Edge webhooks, or CSV file drops."""

    name = "cornerstone"
    source = "csod"
    platform = "Cornerstone OnDemand"
    settings_model: ClassVar[type[BaseModel]] = CornerstoneSettings
    mapper = mapper
    cursor_model = CornerstoneCursor
    default_interval: ClassVar[timedelta] = timedelta(minutes=30)

    def __init__(self, settings: CornerstoneSettings, *, runtime: ConnectorRuntime) -> None:
        super().__init__(settings, runtime=runtime)
        self.client = CornerstoneClient(
            settings, http=runtime.http, clock=runtime.clock, state=runtime.state
        )
        self._verifiers = _webhook_verifiers(settings, runtime)

    @property
    def tenant(self) -> str:
        return self.settings.tenant_token

    @property
    def account_home_page(self) -> str:
        return self.settings.base_url

    def check(self) -> None:
        if self.settings.mode == "files":
            directory = self.settings.files_dir
            if directory is None or not directory.is_dir():
                raise ConfigError(f"files_dir {directory} is not a readable directory")
            return
        self.client.get_page(USER_VIEW, params={"$select": "user_id", "$top": "1"})

    def lookup_user(self, source_user_id: str) -> Person | None:
        if not self.settings.has_api:
            return None
        row = self.client.user_by_guid(source_user_id.lower())
        if row is None:
            return None
        first, last = row.get("user_name_first"), row.get("user_name_last")
        name = " ".join(p for p in (first, last) if isinstance(p, str) and p) or None
        email = row.get("user_email")
        return Person(
            source_user_id=source_user_id,
            email=email if isinstance(email, str) and email else None,
            name=name,
        )

    # -- webhook --------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        if not self._verifiers:
            raise InvalidSignature("no webhook_api_key configured for this instance")
        for verifier in self._verifiers:
            verifier.verify(request)

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        try:
            batch = CsodWebhookBatch.model_validate(json_body(request))
        except ValidationError:
            raise BadRequest("not a Cornerstone webhook batch (records[])") from None
        events: list[SourceEvent] = []
        for record in batch.records:
            case, data = record.value.lmsEventsCase, record.value.data()
            if not case or data is None:
                raise BadRequest("a record without lmsEventsCase and its data")
            # The message id is the same on every attempt (attemptNumber > 1): the receiver's
            # dedupe drops redeliveries.
            message_id = record.value.headers.messageId or data.get("eventId")
            events.append(
                SourceEvent(
                    instance_id=self.instance_id,
                    event_type=case,
                    payload=data,
                    delivery_id=str(message_id) if message_id else None,
                    received_at=request.received_at,
                    via="webhook",
                )
            )
        return events

    # -- mapping --------------------------------------------------------------------------------

    def _options(self) -> dict[str, JsonValue]:
        s = self.settings
        return MappingOptions(
            assign_verb=s.assign_verb,
            session_completed_too=s.session_completed_too,
            curriculum_type=s.curriculum_type,
        ).model_dump(mode="json")

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        payload = event.payload
        if isinstance(payload, dict):
            payload = dict(payload)
            if (
                event.event_type in _ENRICHED
                and self.settings.enrich_webhooks
                and self.settings.has_api
                and "transc_user_id" not in payload
                and "user_guid" not in payload
            ):
                payload = self._enrich(event.event_type, payload)
            payload["_hub"] = self._options()
            event = event.model_copy(update={"payload": payload})
        return self.mapper.map(event, ctx)

    def _enrich(self, event_type: str, payload: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """Join a webhook fact with the user, training and transcript views, exactly the
        columns a polled row carries (vendors.md 3.8: the webhook has no score or pass)."""
        try:
            fact = TranscriptFact.model_validate(payload)
        except ValidationError:
            return payload  # the mapper reports what is wrong
        user = self.client.user_by_guid(fact.user_guid)
        training = self.client.trainings([fact.lo_guid]).get(fact.lo_guid)
        out: dict[str, JsonValue] = {**payload}
        if user is not None:
            out.update({k: v for k, v in user.items() if k != "user_id"})
        if training is not None:
            out.update({k: v for k, v in training.items() if k != "lo_object_id"})
        user_id = user.get("user_id") if user else None
        if event_type == COMPLETED and user_id is not None and fact.reg_num.isdigit():
            done = csod_time(fact.action_at)
            rows = self.client.transcript_rows(
                user_id=str(user_id), lo_guid=fact.lo_guid, reg_num=fact.reg_num
            )
            for row in rows:
                row_done = csod_time(_text(row.get("user_lo_comp_dt")))
                if (
                    done is not None
                    and row_done is not None
                    and key_time(row_done) == key_time(done)
                ):
                    keep = ("user_lo_comp_dt", "user_lo_status", "user_lo_score", "user_lo_pass",
                            "user_lo_minutes_participated")  # fmt: skip
                    out.update({k: row[k] for k in keep if k in row})
                    break
        return out

    # -- polling --------------------------------------------------------------------------------

    def initial_cursor(self, since: datetime) -> CornerstoneCursor:
        return CornerstoneCursor(mark=since)

    def poll(
        self, cursor: CornerstoneCursor | None, *, until: datetime
    ) -> PollResult[CornerstoneCursor]:
        now = self.runtime.clock.now()
        if cursor is None:
            cursor = self.initial_cursor(self.settings.first_start(now))
        if self.settings.mode == "files":
            return self._poll_files(cursor, now=now)
        return self._poll_api(cursor, until=until, now=now)

    def _poll_api(
        self, cursor: CornerstoneCursor, *, until: datetime, now: datetime
    ) -> PollResult[CornerstoneCursor]:
        start = cursor.window_start(timedelta(minutes=self.settings.overlap_minutes))
        upto = cursor.upto or signpost(until, now)
        if cursor.page_token:
            page = self.client.get_page(TRANSCRIPT_VIEW, link=cursor.page_token)
        else:
            params = self.client.transcript_params(start=start, upto=upto)
            page = self.client.get_page(TRANSCRIPT_VIEW, params=params)

        users = self.client.users_by_id(_text(r.get("transc_user_id")) or "" for r in page.value)
        trainings = self.client.trainings(
            (_text(r.get("transc_object_id")) or "").lower() for r in page.value
        )
        high = cursor.high
        rows: list[dict[str, JsonValue]] = []
        for row in page.value:
            touched = csod_time(_text(row.get("_last_touched_dt_utc")))
            if touched is not None and (high is None or touched > high):
                high = touched
            user = users.get(_text(row.get("transc_user_id")) or "")
            if user is None:
                logger.warning("transcript row of an unknown user skipped (no GUID to key on)")
                continue
            lo = (_text(row.get("transc_object_id")) or "").lower()
            rows.append(_joined(row, user, trainings.get(lo)))
        events = self._events(rows, now=now)

        guard = LoopGuard(cursor.seen)
        if page.next_link:
            guard.check(page.next_link)  # a link seen before: PaginationLoop
            nxt = cursor.model_copy(
                update={
                    "page": (cursor.page or 1) + 1,
                    "page_token": page.next_link,
                    "upto": upto,
                    "high": high,
                    "seen": guard.seen,
                }
            )
            return PollResult(events=events, next_cursor=nxt, has_more=True)
        mark = cursor.mark if high is None else max(cursor.mark, high)
        done = CornerstoneCursor(mark=signpost(until, mark))
        return PollResult(events=events, next_cursor=done, has_more=False)

    def _events(self, rows: Iterable[dict[str, JsonValue]], *, now: datetime) -> list[SourceEvent]:
        out: list[SourceEvent] = []
        for row in rows:
            for event_type in self._facts(row):
                out.append(
                    SourceEvent(
                        instance_id=self.instance_id,
                        event_type=event_type,
                        payload=row,
                        received_at=now,
                        via="poll",
                    )
                )
        return out

    def _status(self, row: dict[str, JsonValue]) -> str | None:
        """completed / in_progress / registered from the configured ids, then names."""
        s = self.settings
        raw_id = row.get("user_lo_status_id")
        status_id = int(raw_id) if isinstance(raw_id, int | float) or (
            isinstance(raw_id, str) and raw_id.strip().isdigit()
        ) else None  # fmt: skip
        if status_id is not None:
            for label, ids in (
                ("completed", s.completed_status_ids),
                ("in_progress", s.in_progress_status_ids),
                ("registered", s.registered_status_ids),
            ):
                if status_id in ids:
                    return label
        name = (_text(row.get("user_lo_status")) or "").strip().lower()
        for label, names in (
            ("completed", s.completed_status_names),
            ("in_progress", s.in_progress_status_names),
            ("registered", s.registered_status_names),
        ):
            if name and name in (n.lower() for n in names):
                return label
        return None

    def _facts(self, row: dict[str, JsonValue]) -> list[str]:
        """The facts a transcript row states (vendors.md 3.9): deterministic ids make
        re-reading a row in a later window harmless."""
        removed = row.get("is_removed")
        if (
            removed is True
            or str(removed).lower() == "true"
            or _text(row.get("user_lo_removed_dt"))
        ):
            return [REMOVED]
        facts: list[str] = []
        if _text(row.get("user_lo_assigned_dt")):
            facts.append(ASSIGNED)
        elif _text(row.get("user_lo_reg_dt")):
            facts.append(REGISTERED)
        if self._status(row) == "completed" and _text(row.get("user_lo_comp_dt")):
            facts.append(COMPLETED)
        return facts

    # -- file-drop mode -----------------------------------------------------------------------

    def _files(self) -> list[tuple[float, str, Path]]:
        directory = self.settings.files_dir
        if directory is None or not directory.is_dir():
            raise ConfigError(f"files_dir {directory} is not a readable directory")
        found = []
        for path in directory.glob(self.settings.files_pattern):
            if path.is_file():
                found.append((path.stat().st_mtime, path.name, path))
        return sorted(found)

    def _poll_files(
        self, cursor: CornerstoneCursor, *, now: datetime
    ) -> PollResult[CornerstoneCursor]:
        if cursor.prev_sha and cursor.prev_sha != cursor.file_sha:
            # The cursor naming `file_sha` is saved, so the snapshot before it is garbage.
            self.runtime.state.delete(_snapshot_key(cursor.prev_sha))
        after = (cursor.file_mtime or float("-inf"), cursor.file_name or "")
        pending = [f for f in self._files() if (f[0], f[1]) > after]
        if not pending:
            return PollResult(events=[], next_cursor=cursor, has_more=False)
        mtime, name, path = pending[0]
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise TransientError(f"cannot read {name}: {exc.strerror}") from None
        sha = hashlib.sha256(content).hexdigest()
        nxt = cursor.model_copy(
            update={"file_name": name, "file_mtime": mtime, "file_sha": sha,
                    "prev_sha": cursor.file_sha}
        )  # fmt: skip
        if sha == cursor.file_sha:
            return PollResult(events=[], next_cursor=nxt, has_more=len(pending) > 1)
        baseline: set[str] = set()
        if cursor.file_sha:
            raw = self.runtime.state.get(_snapshot_key(cursor.file_sha))
            baseline = set(json.loads(raw)) if raw else set()
        rows = self._csv_rows(content, name)
        prints = [_fingerprint(row) for row in rows]
        # Written before the cursor moves: a crash leaves the old baseline intact.
        self.runtime.state.set(_snapshot_key(sha), json.dumps(sorted(set(prints))))
        fresh = [row for row, fp in zip(rows, prints, strict=True) if fp not in baseline]
        events = self._events(fresh, now=now)
        return PollResult(events=events, next_cursor=nxt, has_more=len(pending) > 1)

    def _csv_rows(self, content: bytes, name: str) -> list[dict[str, JsonValue]]:
        s = self.settings
        try:
            text = content.decode(s.csv_encoding)
        except (UnicodeDecodeError, LookupError):
            raise ConfigError(f"{name} is not {s.csv_encoding} text (csv_encoding)") from None
        reader = csv.DictReader(io.StringIO(text), delimiter=s.csv_delimiter)
        rows: list[dict[str, JsonValue]] = []
        for n, record in enumerate(reader, start=2):
            row: dict[str, JsonValue] = {}
            for header, value in record.items():
                if header is None:
                    continue
                column = s.csv_columns.get(header.strip(), header.strip())
                row[column] = value.strip() if isinstance(value, str) and value.strip() else None
            if (
                not row.get("user_guid")
                or not row.get("transc_object_id")
                and not row.get("lo_object_id")
            ):
                logger.warning("%s line %d: no user_guid / transc_object_id; skipped", name, n)
                continue
            rows.append(row)
        return rows


def _text(value: JsonValue) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _joined(
    row: dict[str, JsonValue], user: JoinRow, training: JoinRow | None
) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {**row}
    out.update({k: v for k, v in user.items() if k != "user_id"})
    if training is not None:
        out.update({k: v for k, v in training.items() if k != "lo_object_id"})
    return out


def _fingerprint(row: dict[str, JsonValue]) -> str:
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _snapshot_key(sha: str) -> str:
    return f"files:snapshot:{sha}"
