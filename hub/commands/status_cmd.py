"""``lxhub status``: the status page's figures in the terminal."""

from __future__ import annotations

import click

from hub import status
from hub.commands import CliState
from hub.commands.runtime import runtime_for


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.1f}m"


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status_cmd(state: CliState, as_json: bool) -> None:
    """Connectors, LRS backlogs and dead letters at a glance."""
    rt = runtime_for(state)
    report = status.collect(rt)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    now = report.generated_at
    click.echo(
        f"lxhub status at {now:%Y-%m-%d %H:%M:%S} UTC · raw events waiting: {report.inbox_backlog}"
    )
    click.echo("\nLRS destinations")
    click.echo(
        f"  {'name':<18}{'state':<22}{'backlog':>8}{'in flight':>10}{'oldest':>9}{'dead':>6}"
    )
    for lrs in report.lrs:
        state_text = (
            f"PAUSED ({lrs.paused_reason})"
            if lrs.paused
            else "delivering"
            if lrs.enabled
            else "disabled"
        )
        click.echo(
            f"  {lrs.name:<18}{state_text[:21]:<22}{lrs.backlog:>8}{lrs.in_flight:>10}"
            f"{_age(lrs.oldest_waiting_seconds):>9}{lrs.dead_letters:>6}"
        )
    click.echo("\nConnectors")
    for c in report.connectors:
        state_text = (
            "disabled" if not c.enabled else "NEEDS ATTENTION" if c.unhealthy else "enabled"
        )
        last = (
            "webhook only"
            if "polling" not in c.capabilities
            else (
                _age((now - c.last_poll_at).total_seconds()) + " ago" if c.last_poll_at else "never"
            )
        )
        click.echo(f"  {c.id:<18}{c.type:<14}{state_text:<17}last poll: {last}")
        for label, value in c.details.items():
            click.echo(f"      {label}: {value}")
        if c.last_error:
            click.echo(f"      last error: {c.last_error[:150]}")
    click.echo(f"\nDead letters: {report.dead_letters_total}")
    for d in report.recent_dead_letters[:5]:
        click.echo(f"  {d.last_at:%m-%d %H:%M} {d.stage:<9} {d.reason:<22} {d.detail[:80]}")
    if report.dead_letters_total:
        click.echo("  `lxhub dlq list` for details, `lxhub dlq replay` once the cause is fixed")
