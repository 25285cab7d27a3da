"""``lxhub demo``: Jamie's week, replayed through the real receiver and pipeline.

The journey, the fake vendor APIs and the runner live in `hub.demo`; this module only runs it
and prints the result for a person (or as JSON with ``--json``).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from hub.commands import CliState
from hub.demo.journey import JAMIE_EMAIL
from hub.demo.runner import DemoResult, run_demo
from hub.demo.timeline import TimelineRow, build_timeline

__all__ = ["demo_cmd"]

JAMIE_IFI = f"mailto:{JAMIE_EMAIL}"


def demo_dir() -> Path:
    """``$LXHUB_DATA_DIR/demo``, else ``./data/demo``: beside the embedded default's data, and
    never inside it (the demo wipes its own directory on each run)."""
    return Path(os.environ.get("LXHUB_DATA_DIR") or "data") / "demo"


def _shown(path: Path) -> str:
    """The path relative to the working directory when it is under it (shorter to copy)."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@click.command("demo")
@click.option(
    "--keep",
    is_flag=True,
    help="Replay onto the previous demo's data instead of starting fresh: shows that "
    "redelivered webhooks are dropped and nothing is stored twice.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def demo_cmd(state: CliState, keep: bool, as_json: bool) -> None:
    """Replay Jamie's week (Docebo, YouTube, Teams, Slack, a coaching app) through the hub.

    Every source's realistic payloads are sent, signed as the real source signs them, to the
    real web receiver on 127.0.0.1; the connectors' vendor API calls are answered by a local
    fake; the pipeline normalizes and delivers into the local LRS on the embedded default; the
    statements are printed as a timeline. Nothing leaves this machine; it takes a few seconds.
    """
    directory = demo_dir()
    if not as_json:
        click.echo(
            click.style("lxhub demo", bold=True)
            + " · Jamie's week, replayed through the real receiver and pipeline"
        )
        click.echo(
            "  embedded default (SQLite, local LRS); vendor APIs faked on 127.0.0.1; "
            "nothing leaves this machine\n"
        )
    result = run_demo(directory, registry=state.registry(), keep=keep)
    rows = build_timeline(result.statements, people={JAMIE_IFI: "Jamie"}, labels=result.labels)
    if as_json:
        click.echo(json.dumps(_as_json(result, rows), indent=2))
    else:
        _print_sources(result)
        _print_timeline(rows)
        _print_summary(result, rows)
    if not result.ok:
        raise click.exceptions.Exit(1)


# -- text output ------------------------------------------------------------------------------


def _print_sources(result: DemoResult) -> None:
    click.echo(click.style("The sources send, signed as the real ones sign", bold=True))
    width = max(len(s.platform) for s in result.steps) + 2
    for step in result.steps:
        if step.skipped:
            mark = click.style("-", fg="yellow")
            click.echo(f"  {mark} {step.platform:<{width}}skipped: {step.skipped}")
            continue
        mark = click.style("✗", fg="red") if step.error else click.style("✓", fg="green")
        sent = len(step.responses)
        figures = f"{sent} request{'s' * (sent != 1)} → {step.statements}"
        figures += " new" if result.kept else f" statement{'s' * (step.statements != 1)}"
        click.echo(
            f"  {mark} {step.platform:<{width}}{figures:<28}" + click.style(step.how, dim=True)
        )
        if step.error:
            click.echo(click.style(f"      {step.error}", fg="red"))
        if step.dead_letters:
            click.echo(
                click.style(f"      {step.dead_letters} dead letter(s): see below", fg="red")
            )
    calls = len(result.fake_calls)
    if calls:
        click.echo(
            click.style(
                f"  The connectors called their vendors' APIs {calls} times (tokens, user "
                "lookups, enrichment): all answered by the local fake.",
                dim=True,
            )
        )


def _day(when: datetime) -> str:
    return f"{when:%a} {when.day} {when:%b %Y}"


def _print_timeline(rows: list[TimelineRow]) -> None:
    click.echo("\n" + click.style("Timeline", bold=True) + click.style("  (UTC)", dim=True))
    if not rows:
        click.echo("  (no statements in the local LRS)")
        return
    width = max(len(r.platform) for r in rows) + 2
    day = ""
    for row in rows:
        if _day(row.when) != day:
            day = _day(row.when)
            click.echo("  " + click.style(day, bold=True, underline=True))
        who = click.style(row.who, bold=True) if row.actor == JAMIE_IFI else row.who
        line = f"    {row.when:%H:%M}  {click.style(f'{row.platform:<{width}}', fg='cyan')}"
        line += f"{who} {row.text}"
        if row.quote:
            line += f": {row.quote}"
        if row.highlights:
            line += click.style(" · " + " · ".join(row.highlights), dim=True)
        click.echo(line)


def _print_summary(result: DemoResult, rows: list[TimelineRow]) -> None:
    mine = [r for r in rows if r.actor == JAMIE_IFI]
    platforms = sorted({r.platform for r in mine})
    others = len(rows) - len(mine)
    click.echo()
    if mine:
        click.echo(
            click.style("One person across every tool: ", bold=True)
            + f"Jamie's {len(mine)} statements from {len(platforms)} tools all carry the actor "
            + click.style(JAMIE_IFI, bold=True)
        )
        click.echo(
            "  (each tool knows Jamie by its own user id; the hub resolved every one of them to "
            "the same email)"
        )
    colleagues = f" ({others} by colleagues)" if others else ""
    click.echo(
        f"{len(rows)} statements{colleagues} stored in the local LRS: "
        f"{_shown(result.lrs_path)}" + click.style(f"  · {result.seconds:.1f} s", dim=True)
    )
    if result.kept:
        new = len(rows) - result.stored_before
        click.echo(
            f"  Replayed onto the kept demo data: {new} new statement{'s' * (new != 1)}; "
            "redelivered webhooks were dropped and the LRS holds one copy of each statement."
        )
    for letter in result.dead_letters:
        click.echo(
            click.style(
                f"  dead letter [{letter.stage}] {letter.instance_id}: {letter.reason}: "
                f"{letter.detail[:160]}",
                fg="red",
            )
        )
    for call in result.unmatched_calls:
        click.echo(
            click.style(
                f"  the fake vendor API had no answer for {call.method} https://{call.host}"
                f"{call.path}",
                fg="red",
            )
        )
    config = _shown(result.config_dir)
    click.echo("\n" + click.style("Next steps", bold=True))
    steps = [
        (f"lxhub --config {config} status", "this demo hub's connectors, LRS and dead letters"),
        ("lxhub demo --keep", "replay the same week onto this data: nothing is stored twice"),
        ("lxhub config check", "validate your own configuration in ./config"),
        ("lxhub up", "run your hub; status page at http://127.0.0.1:8080/ (web.admin_token)"),
    ]
    width = max(len(cmd) for cmd, _ in steps) + 3
    for cmd, why in steps:
        click.echo(f"  {cmd:<{width}}" + click.style(why, dim=True))


# -- JSON output ------------------------------------------------------------------------------


def _as_json(result: DemoResult, rows: list[TimelineRow]) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "actor": JAMIE_IFI,
        "demo_dir": str(result.demo_dir),
        "config_dir": str(result.config_dir),
        "local_lrs": str(result.lrs_path),
        "kept": result.kept,
        "seconds": round(result.seconds, 3),
        "steps": [
            {
                "key": s.key,
                "platform": s.platform,
                "instance_id": s.instance_id,
                "title": s.title,
                "skipped": s.skipped,
                "error": s.error,
                "responses": [{"request": label, "status": code} for label, code in s.responses],
                "statements": s.statements,
                "dead_letters": s.dead_letters,
            }
            for s in result.steps
        ],
        "vendor_api_calls": len(result.fake_calls),
        "unmatched_vendor_calls": [
            f"{c.method} https://{c.host}{c.path}" for c in result.unmatched_calls
        ],
        "dead_letters": [
            {"stage": d.stage, "instance_id": d.instance_id, "reason": d.reason, "detail": d.detail}
            for d in result.dead_letters
        ],
        "timeline": [
            {
                "timestamp": r.when.isoformat(),
                "platform": r.platform,
                "who": r.who,
                "actor": r.actor,
                "text": f"{r.who} {r.text}",
                "quote": r.quote,
                "highlights": r.highlights,
                "statement_id": r.statement_id,
            }
            for r in rows
        ],
        "statements": result.statements,
    }
