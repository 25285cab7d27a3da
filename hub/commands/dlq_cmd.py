"""``lxhub dlq list|show|replay|purge``: the dead letters, and sending them through again.

Replay re-validates before re-enqueueing: a statement letter (stage ``deliver``) goes back into
its LRS's outbox only if it is still valid xAPI for that LRS's version; an event letter (stages
``ingest``, ``normalize``, ``identity``) goes back into the ingest inbox and is mapped again with
the current mapping and identity map. A letter leaves the dead letters only once the next stage
holds it. Deterministic statement ids make a replay of something already stored harmless.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from hub.commands import CliState
from hub.commands.runtime import runtime_for
from hub.events import SourceEvent
from hub.inbox import INBOX, to_item
from hub.runtime import HubRuntime
from hub.store.base import DeadLetter, DeadLetterFilter, OutboxItem
from hub.xapi.serialize import statement_from_bytes
from hub.xapi.validation import validate_statement


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (use 2024-05-01 or 2024-05-01T12:00)"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _filters(f: Callable[..., None]) -> Callable[..., None]:
    """Add the filter options shared by list/replay/purge and hand the command one
    `DeadLetterFilter` (`flt`) instead of six loose arguments."""

    @functools.wraps(f)
    def command(
        *args: Any,
        lrs: str | None,
        instance: str | None,
        stage: str | None,
        reason: str | None,
        since: str | None,
        until: str | None,
        **kwargs: Any,
    ) -> None:
        flt = DeadLetterFilter(
            lrs=lrs,
            instance_id=instance,
            stage=stage,
            reason=reason,
            since=_when(since),
            until=_when(until),
        )
        f(*args, flt=flt, **kwargs)

    options = [
        click.option("--lrs", help="Only letters of this LRS."),
        click.option("--connector", "instance", help="Only letters of this connector instance."),
        click.option("--stage", type=click.Choice(["ingest", "normalize", "identity", "deliver"])),
        click.option("--reason", help="Only this reason (e.g. lrs_rejected, conflict)."),
        click.option("--since", help="Last failure at or after this date/time (UTC)."),
        click.option("--until", help="Last failure before this date/time (UTC)."),
    ]
    decorated: Callable[..., None] = command
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def _summary(letter: DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "stage": letter.stage,
        "lrs": letter.lrs,
        "instance_id": letter.instance_id,
        "statement_id": letter.statement_id,
        "reason": letter.reason,
        "detail": letter.detail,
        "attempts": letter.attempts,
        "first_at": letter.first_at.isoformat(),
        "last_at": letter.last_at.isoformat(),
    }


@click.group("dlq")
def dlq_group() -> None:
    """Dead letters: what could not go further, with the reason."""


@dlq_group.command("list")
@_filters
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def list_cmd(
    state: CliState,
    flt: DeadLetterFilter,
    limit: int,
    as_json: bool,
) -> None:
    """List dead letters, newest first."""
    rt = runtime_for(state)
    letters = rt.store.dlq_list(flt.model_copy(update={"limit": limit}))
    if as_json:
        click.echo(json.dumps([_summary(d) for d in letters], indent=2))
        return
    if not letters:
        click.echo("no dead letters match")
        return
    for d in letters:
        where = d.lrs or d.instance_id or "-"
        click.echo(
            f"{d.last_at:%Y-%m-%d %H:%M:%S}  {d.stage:<9} {where:<16} {d.reason:<22} "
            f"{d.id}\n    {d.detail[:160]}"
        )
    total = rt.store.dlq_count()
    click.echo(
        f"{len(letters)} shown, {total} in all. `lxhub dlq show ID` for one; "
        "`lxhub dlq replay` once the cause is fixed."
    )


@dlq_group.command("show")
@click.argument("letter_id")
@click.pass_obj
def show_cmd(state: CliState, letter_id: str) -> None:
    """Show one dead letter with its original bytes (and the LRS's version for conflicts)."""
    rt = runtime_for(state)
    letter = rt.store.dlq_get(letter_id)
    if letter is None:
        raise click.ClickException(f"no dead letter {letter_id!r}; `lxhub dlq list` shows ids")
    doc: dict[str, object] = dict(_summary(letter))
    if letter.body is not None:
        doc["statement"] = _pretty(letter.body)
    if letter.stored_version is not None:
        doc["stored_in_lrs"] = _pretty(letter.stored_version)
    if letter.envelope is not None:
        doc["envelope"] = letter.envelope
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def _pretty(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def replay_one(rt: HubRuntime, letter: DeadLetter, *, now: datetime) -> str | None:
    """Send one letter back to the stage it failed before; None on success, else why not."""
    if letter.stage == "deliver":
        if letter.body is None or letter.lrs is None or letter.statement_id is None:
            return "no statement bytes kept"
        try:
            cfg = rt.lrs_config(letter.lrs)
        except KeyError:
            return f"LRS {letter.lrs!r} is no longer configured"
        issues = validate_statement(statement_from_bytes(letter.body), version=cfg.xapi_version)
        if issues:
            return f"still invalid: {issues[0].path}: {issues[0].message}"
        verb = json.loads(letter.body).get("verb", {}).get("id", "")
        rt.store.outbox_append(
            letter.lrs,
            [
                OutboxItem(
                    statement_id=letter.statement_id,
                    body=letter.body,
                    instance_id=letter.instance_id or "",
                    verb=str(verb),
                    enqueued_at=now,
                )
            ],
            now=now,
        )
    else:
        if letter.envelope is None:
            return "no raw event kept"
        event = SourceEvent.model_validate(letter.envelope)
        event = event.model_copy(update={"attempt": event.attempt + 1, "via": "replay"})
        rt.store.outbox_append(INBOX, [to_item(event, now=now)], now=now)
    rt.store.dlq_delete([letter.id])
    return None


@dlq_group.command("replay")
@_filters
@click.option("--id", "ids", multiple=True, help="Replay only these letters (repeatable).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def replay_cmd(
    state: CliState,
    flt: DeadLetterFilter,
    ids: tuple[str, ...],
    yes: bool,
) -> None:
    """Re-validate and re-enqueue dead letters (after fixing their cause)."""
    rt = runtime_for(state)
    if ids:
        letters = [d for d in (rt.store.dlq_get(i) for i in ids) if d is not None]
    else:
        letters = rt.store.dlq_list(flt)
    if not letters:
        click.echo("nothing to replay")
        return
    if not yes:
        click.confirm(f"Replay {len(letters)} dead letters?", abort=True)
    failed: list[tuple[str, str]] = []
    now = rt.clock.now()
    with click.progressbar(
        length=len(letters),
        label="replaying",
        show_eta=True,
        show_pos=True,
        file=sys.stderr,
    ) as bar:
        for letter in letters:
            why = replay_one(rt, letter, now=now)
            if why is not None:
                failed.append((letter.id, why))
            bar.update(1)
    click.echo(
        f"replayed {len(letters) - len(failed)} of {len(letters)}; workers deliver them "
        "within seconds (the scheduler must be running)"
    )
    for letter_id, why in failed:
        click.echo(f"  kept {letter_id}: {why}")
    if failed:
        raise SystemExit(1)


@dlq_group.command("purge")
@_filters
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge_cmd(
    state: CliState,
    flt: DeadLetterFilter,
    yes: bool,
) -> None:
    """Delete dead letters for good."""
    rt = runtime_for(state)
    letters = rt.store.dlq_list(flt)
    if not letters:
        click.echo("nothing to purge")
        return
    if not yes:
        click.confirm(f"Delete {len(letters)} dead letters for good?", abort=True)
    n = rt.store.dlq_delete([d.id for d in letters])
    click.echo(f"purged {n} dead letters")
