"""``lxhub backfill CONNECTOR_ID --since DATE``: a throttled historical import.

A backfill goes through the normal pipeline: it polls the source page by page with the
connector's own `poll()` (through `hub.pipeline.run_poll`, so events are enqueued durably BEFORE
the cursor moves), from `initial_cursor(since)`, into the ingest inbox the workers drain. It keeps
its own cursor (``backfill:{id}``) beside the live one, so the scheduled polls go on undisturbed.

* Resumable and Ctrl-C safe: the backfill cursor is saved after every page; running the same
  command again continues where it stopped (a page may be fetched twice; deterministic statement
  ids make that harmless). `--restart` forgets the saved position.
* Throttled: at most ``--rate`` pages per second, and it waits while more than ``--max-waiting``
  raw events wait for the workers, so a year of history never floods the store.
* ``--dry-run`` polls and maps in this process WITHOUT enqueueing or saving anything, then asks
  every routed LRS for each statement id (`LrsClient.get_statement`): it reports exactly how many
  statements would be created and how many each LRS already holds.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import click
from pydantic import BaseModel, ConfigDict

from hub.backoff import full_jitter
from hub.commands import CliState
from hub.commands.runtime import runtime_for
from hub.connector import Polling
from hub.cursor import Cursor
from hub.errors import (
    ConfigError,
    DeliveryTransient,
    HubError,
    MappingError,
    RateLimited,
    TransientError,
    UnresolvedActor,
)
from hub.inbox import INBOX
from hub.lrs import LrsUnauthorized
from hub.mapping import Unmapped
from hub.pipeline import (
    Destination,
    encode_for_targets,
    mapping_context,
    routed_destinations,
    run_poll,
)
from hub.runtime import BoundConnector, HubRuntime
from hub.xapi.validation import StatementInvalid

NAMESPACE = "backfill"
"""kv namespace of the backfill records (key: the connector instance id)."""

MAX_TRANSIENT_RETRIES = 6
MAX_RATE_LIMIT_WAIT = 300.0


def cursor_key(instance_id: str) -> str:
    """The store key of a backfill's own cursor, beside the live one."""
    return f"backfill:{instance_id}"


class BackfillRecord(BaseModel):
    """What a backfill remembers between runs (kv ``backfill/{id}``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    since: datetime
    until: datetime | None = None
    started_at: datetime
    pages: int = 0
    events: int = 0
    completed_at: datetime | None = None


def parse_when(value: str, *, option: str) -> datetime:
    """``2024-01-31`` (midnight UTC) or an ISO date-time (no zone: UTC)."""
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: use 2024-01-31 or 2024-01-31T08:00:00Z", param_hint=option
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """A dependency-free progress line: a bar and ETA when the source gives a total."""

    def __init__(self, label: str, *, tty: bool | None = None) -> None:
        self.label = label
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.started = time.monotonic()
        self.done = 0
        self.pages = 0
        self.total: int | None = None
        self.note = ""
        self._last_line = 0.0

    def update(self, *, events: int, total_hint: int | None, note: str = "") -> None:
        self.done += events
        self.pages += 1
        if total_hint is not None:
            self.total = max(total_hint, self.done)
        self.note = note
        self.render()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        speed = self.done / elapsed
        parts = [self.label]
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * 28)
            parts.append(f"[{'#' * filled}{'.' * (28 - filled)}] {share:4.0%}")
            parts.append(f"{self.done:,}/{self.total:,} events")
            if speed > 0 and self.done < self.total:
                parts.append(f"ETA {_clock(int((self.total - self.done) / speed))}")
        else:
            parts.append(f"{self.done:,} events")
        parts.append(f"page {self.pages}")
        parts.append(f"{speed * 60:,.0f}/min")
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)

    def render(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            click.echo("\r\033[K" + self.line(), nl=False, err=True)
        elif force or now - self._last_line >= 5.0:  # logs: one line every 5 s at most
            click.echo(self.line(), err=True)
            self._last_line = now

    def finish(self) -> None:
        if self.tty:
            click.echo("\r\033[K" + self.line(), err=True)
        else:
            self.render(force=True)


def _clock(seconds: int) -> str:
    return str(timedelta(seconds=max(seconds, 0)))


class Throttle:
    """At most `rate` calls per second (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
        self._next = max(now, self._next) + self.interval


# -- the command ---------------------------------------------------------------------------------


@click.command("backfill")
@click.argument("connector_id")
@click.option(
    "--since",
    "since_text",
    required=True,
    help="Import records from this date (2024-01-31 = midnight UTC, or a date-time).",
)
@click.option(
    "--until",
    "until_text",
    default=None,
    help="Up to this date/time (default: now minus the usual safety lag).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Poll and map only: count the statements that would be created and the ones "
    "each LRS already holds. Nothing is enqueued or saved.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="At most N pages per second (0: no limit).",
)
@click.option(
    "--max-waiting",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Pause while more raw events than this wait for the workers.",
)
@click.option(
    "--restart", is_flag=True, help="Forget a saved backfill position and start again at --since."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def backfill_cmd(
    state: CliState,
    connector_id: str,
    since_text: str,
    until_text: str | None,
    dry_run: bool,
    rate: float,
    max_waiting: int,
    restart: bool,
    as_json: bool,
) -> None:
    """Import a connector's history through the normal pipeline (throttled, resumable)."""
    since = parse_when(since_text, option="--since")
    until = parse_when(until_text, option="--until") if until_text else None
    if until is not None and until <= since:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    rt = runtime_for(state)
    try:
        bound = _polling_instance(rt, connector_id)
        if dry_run:
            summary = _dry_run(rt, bound, since=since, until=until, rate=rate)
            _print_dry_run(summary, as_json=as_json)
        else:
            _backfill(
                rt,
                bound,
                since=since,
                until=until,
                rate=rate,
                max_waiting=max_waiting,
                restart=restart,
                as_json=as_json,
            )
    finally:
        rt.close()


def _polling_instance(rt: HubRuntime, instance_id: str) -> BoundConnector:
    bound = rt.connectors.get(instance_id)
    if bound is None:
        known = ", ".join(sorted(rt.connectors)) or "none"
        raise ConfigError(
            f"no connector instance {instance_id!r} in {rt.loaded.config_dir}/connectors "
            f"(configured: {known})"
        )
    if not bound.polls:
        raise ConfigError(
            f"connector instance {instance_id!r} (type {bound.config.type}) does not poll, so it "
            "has no history to import; only polling connectors can be backfilled"
        )
    if not bound.enabled:
        raise ConfigError(
            f"connector instance {instance_id!r} is disabled: set `enabled: true` in its file "
            "first (the workers only normalize events of enabled instances)"
        )
    return bound


def _poller(bound: BoundConnector) -> Polling[Any]:
    connector = bound.connector
    if not isinstance(connector, Polling):  # _polling_instance checked it; for the type checker
        raise ConfigError(f"connector instance {bound.instance_id!r} does not poll")
    return connector


# -- the real import -------------------------------------------------------------------------------


def _backfill(
    rt: HubRuntime,
    bound: BoundConnector,
    *,
    since: datetime,
    until: datetime | None,
    rate: float,
    max_waiting: int,
    restart: bool,
    as_json: bool,
) -> None:
    connector = _poller(bound)
    store, key, iid = rt.store, cursor_key(bound.instance_id), bound.instance_id
    now = rt.clock.now()
    record = _read_record(rt, iid)
    saved = store.get_cursor(key)
    if restart:
        store.delete_cursor(key)
        saved, record = None, None
    same = record is not None and record.since == since and record.until == until
    if record is not None and not same:
        if saved is not None:
            raise ConfigError(
                f"an unfinished backfill of {iid!r} from {record.since:%Y-%m-%d %H:%M} is "
                "saved; run it again with the same --since/--until to resume it, or add "
                "--restart to drop it and start this one"
            )
        record = None  # a finished backfill of another period: this is a new one
    if record is not None and record.completed_at is not None and saved is None:
        click.echo(
            f"The backfill of {iid} from {since:%Y-%m-%d} already completed at "
            f"{record.completed_at:%Y-%m-%d %H:%M} UTC ({record.events:,} events); "
            "add --restart to run it again."
        )
        return
    if saved is None:
        store.set_cursor(key, connector.initial_cursor(since).model_dump_json())
        record = BackfillRecord(since=since, until=until, started_at=now)
        click.echo(
            f"Backfilling {iid} from {since:%Y-%m-%d %H:%M} UTC"
            f"{f' to {until:%Y-%m-%d %H:%M} UTC' if until else ''} …",
            err=True,
        )
    else:
        record = record or BackfillRecord(since=since, until=until, started_at=now)
        click.echo(
            f"Resuming the backfill of {iid} ({record.events:,} events in "
            f"{record.pages} pages so far) …",
            err=True,
        )
    _write_record(rt, iid, record)

    progress = Progress(f"{iid}:")
    throttle = Throttle(rate)
    rng = random.Random()  # noqa: S311 (retry jitter, not security)
    retries = 0
    try:
        while True:
            _wait_for_workers(rt, max_waiting, progress)
            throttle.wait()
            try:
                report = run_poll(
                    bound,
                    store=store,
                    enqueuer=rt.inbox,
                    clock=rt.clock,
                    cursor_key=key,
                    until=until,
                )
            except RateLimited as exc:
                wait = min(max(exc.retry_after, 1.0), MAX_RATE_LIMIT_WAIT)
                progress.note = f"source asked to slow down: waiting {wait:.0f}s"
                progress.render(force=True)
                time.sleep(wait)
                continue
            except TransientError as exc:
                retries += 1
                if retries > MAX_TRANSIENT_RETRIES:
                    raise TransientError(
                        f"{exc}; the backfill stopped after {retries - 1} retries, its position "
                        "is saved: run the same command again to resume"
                    ) from exc
                wait = full_jitter(retries, base=2.0, cap=60.0, rng=rng)
                progress.note = f"retrying in {wait:.0f}s ({type(exc).__name__})"
                progress.render(force=True)
                time.sleep(wait)
                continue
            if report.skipped:
                raise ConfigError(
                    f"another backfill of {iid!r} is running (its lock is held); wait for it "
                    "or stop it first"
                )
            retries = 0
            record = record.model_copy(
                update={"pages": record.pages + 1, "events": record.events + report.events}
            )
            _write_record(rt, iid, record)
            progress.update(events=report.events, total_hint=report.total_hint)
            if not report.has_more:
                break
    except KeyboardInterrupt:
        progress.finish()
        click.echo(
            f"Interrupted. {record.events:,} events are enqueued and the position is "
            "saved: run the same command again to resume.",
            err=True,
        )
        sys.exit(130)
    progress.finish()
    record = record.model_copy(update={"completed_at": rt.clock.now()})
    _write_record(rt, iid, record)
    store.delete_cursor(key)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "connector": iid,
                    "pages": record.pages,
                    "events": record.events,
                    "completed": True,
                }
            )
        )
        return
    click.echo(
        f"Done: {record.events:,} events from {record.pages} pages enqueued for {iid}. "
        "The workers normalize and deliver them; follow with `lxhub status`."
    )


def _wait_for_workers(rt: HubRuntime, max_waiting: int, progress: Progress) -> None:
    """Backpressure: let the workers catch up before adding more raw events."""
    while True:
        waiting = rt.store.outbox_stats(INBOX, now=rt.clock.now()).weight  # events
        if waiting <= max_waiting:
            progress.note = ""
            return
        progress.note = f"waiting for the workers ({waiting:,} raw events queued)"
        progress.render()
        time.sleep(1.0)


def _read_record(rt: HubRuntime, instance_id: str) -> BackfillRecord | None:
    raw = rt.store.kv_get(NAMESPACE, instance_id)
    if raw is None:
        return None
    try:
        return BackfillRecord.model_validate_json(raw)
    except ValueError:
        return None


def _write_record(rt: HubRuntime, instance_id: str, record: BackfillRecord) -> None:
    rt.store.kv_set(NAMESPACE, instance_id, record.model_dump_json())


# -- the dry run -----------------------------------------------------------------------------------


@dataclass
class LrsCount:
    """Per LRS: statements routed to it, and how many it already holds."""

    routed: int = 0
    already: int = 0

    @property
    def new(self) -> int:
        return self.routed - self.already


@dataclass
class DryRunSummary:
    connector: str
    since: datetime
    until: datetime | None
    pages: int = 0
    events: int = 0
    statements: int = 0
    unmapped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    lrs: dict[str, LrsCount] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "pages": self.pages,
            "events": self.events,
            "statements": self.statements,
            "unmapped_events": dict(self.unmapped),
            "would_dead_letter": dict(self.failed),
            "lrs": {
                name: {"routed": c.routed, "already_stored": c.already, "new": c.new}
                for name, c in self.lrs.items()
            },
        }


def _dry_run(
    rt: HubRuntime, bound: BoundConnector, *, since: datetime, until: datetime | None, rate: float
) -> DryRunSummary:
    connector = _poller(bound)
    summary = DryRunSummary(connector=bound.instance_id, since=since, until=until)
    destinations = routed_destinations(rt.destinations, bound)
    for d in destinations:
        summary.lrs[d.name] = LrsCount()
    limit = until if until is not None else rt.clock.now() - timedelta(seconds=30)
    cursor: Cursor | None = connector.initial_cursor(since)
    progress = Progress(f"{bound.instance_id} (dry run):")
    throttle = Throttle(rate)
    seen: set[str] = set()  # overlapping pages repeat records: count each statement once
    try:
        while True:
            throttle.wait()
            page = _poll_with_retries(connector, cursor, limit)
            summary.pages += 1
            summary.events += len(page.events)
            for event in page.events:
                _map_one(rt, bound, event, destinations, summary, seen)
            progress.update(
                events=len(page.events),
                total_hint=page.total_hint,
                note=f"{summary.statements:,} statements",
            )
            if not page.has_more or page.next_cursor is None:
                break
            cursor = page.next_cursor
    except KeyboardInterrupt:
        progress.finish()
        click.echo("Interrupted: the counts below cover the pages read so far.", err=True)
    progress.finish()
    return summary


def _poll_with_retries(connector: Polling[Any], cursor: Cursor | None, limit: datetime) -> Any:
    rng = random.Random()  # noqa: S311 (retry jitter, not security)
    for attempt in range(1, MAX_TRANSIENT_RETRIES + 2):
        try:
            return connector.poll(cursor, until=limit)
        except RateLimited as exc:
            time.sleep(min(max(exc.retry_after, 1.0), MAX_RATE_LIMIT_WAIT))
        except TransientError:
            if attempt > MAX_TRANSIENT_RETRIES:
                raise
            time.sleep(full_jitter(attempt, base=2.0, cap=60.0, rng=rng))
    raise TransientError("the source kept asking to slow down; try again later")


def _map_one(
    rt: HubRuntime,
    bound: BoundConnector,
    event: Any,
    destinations: list[Destination],
    summary: DryRunSummary,
    seen: set[str],
) -> None:
    ctx = mapping_context(bound, event, base_iri=rt.config.base_iri, actors=rt.identity)
    try:
        result = bound.connector.map(event, ctx)
    except TransientError:
        raise
    except UnresolvedActor:
        summary.failed["unresolved_actor"] += 1
        return
    except MappingError:
        summary.failed["mapping_failed"] += 1
        return
    except HubError as exc:
        summary.failed[type(exc).__name__] += 1
        return
    if isinstance(result, Unmapped):
        summary.unmapped[result.event_type] += 1
        return
    for statement in result:
        try:
            _, targets, _ = encode_for_targets(
                statement, destinations, instance_id=bound.instance_id, now=event.received_at
            )
        except StatementInvalid:
            summary.failed["invalid_statement"] += 1
            continue
        if statement.id is None:  # no deterministic id: it cannot be looked up
            summary.failed["no_statement_id"] += 1
            continue
        sid = str(statement.id)
        if sid in seen:
            continue
        seen.add(sid)
        summary.statements += 1
        for d in targets:
            count = summary.lrs[d.name]
            count.routed += 1
            if _lrs_holds(rt, d.name, sid):
                count.already += 1


def _lrs_holds(rt: HubRuntime, lrs: str, statement_id: str) -> bool:
    client = rt.lrs_client(lrs)
    rng = random.Random()  # noqa: S311 (retry jitter, not security)
    for attempt in range(1, MAX_TRANSIENT_RETRIES + 2):
        try:
            return client.get_statement(statement_id) is not None
        except LrsUnauthorized as exc:
            raise ConfigError(
                f"LRS {lrs!r} refused our credentials ({exc}); fix them in "
                "hub.yaml and run the dry run again"
            ) from exc
        except DeliveryTransient as exc:
            if attempt > MAX_TRANSIENT_RETRIES:
                raise TransientError(f"LRS {lrs!r} kept failing: {exc}") from exc
            wait = (
                exc.retry_after
                if exc.retry_after is not None
                else full_jitter(attempt, base=1.0, cap=30.0, rng=rng)
            )
            time.sleep(min(wait, MAX_RATE_LIMIT_WAIT))
    raise TransientError(f"LRS {lrs!r} kept failing")


def _print_dry_run(summary: DryRunSummary, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    span = f"{summary.since:%Y-%m-%d %H:%M}" + (
        f" to {summary.until:%Y-%m-%d %H:%M}" if summary.until else " to now"
    )
    click.echo(
        f"Dry run of {summary.connector} ({span} UTC): {summary.events:,} events in "
        f"{summary.pages} pages map to {summary.statements:,} statements. Nothing was "
        "enqueued."
    )
    if summary.lrs:
        click.echo(f"  {'LRS':<20}{'routed':>10}{'already there':>15}{'would create':>15}")
        for name, c in summary.lrs.items():
            click.echo(f"  {name:<20}{c.routed:>10,}{c.already:>15,}{c.new:>15,}")
    if summary.unmapped:
        kinds = ", ".join(f"{k} ({n})" for k, n in summary.unmapped.most_common())
        click.echo(f"  events no mapping handles (skipped): {kinds}")
    if summary.failed:
        kinds = ", ".join(f"{k} ({n})" for k, n in summary.failed.most_common())
        click.echo(f"  events that would go to the dead letters: {kinds}")
