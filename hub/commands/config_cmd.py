"""``lxhub config check``: the validation every service runs at start, for admins and CI."""

from __future__ import annotations

import click

from hub.commands import CliState
from hub.config import ConfigInvalid, ConfigProblem, LoadedConfig, load_config


@click.group("config")
def config_group() -> None:
    """Inspect and validate the configuration directory."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _warning(problem: ConfigProblem) -> str:
    if problem.key_path:
        return f"{problem.file}: {problem.key_path}: warning: {problem.message}"
    return f"{problem.file}: warning: {problem.message}"


@config_group.command("check")
@click.pass_obj
def check(state: CliState) -> None:
    """Validate hub.yaml and connectors/*.yaml exactly as the services do.

    Prints every problem as ``file: key.path: message`` (warnings too), then a summary line.
    Exits 0 when the configuration is usable, 1 otherwise.
    """
    config_dir = state.config_dir
    registry = state.registry()
    broken = [
        f"plugin {b.found.display_name}: warning: {b.error.reason}"
        for b in registry.broken.values()
    ]
    loaded: LoadedConfig | None = None
    try:
        loaded = load_config(config_dir, registry=registry)
    except ConfigInvalid as exc:
        errors, warnings = exc.problems, exc.warnings
    else:
        errors, warnings = [], loaded.warnings
    for problem in errors:
        click.echo(str(problem))
    for problem in warnings:
        click.echo(_warning(problem))
    for line in broken:
        click.echo(line)
    n_warn = len(warnings) + len(broken)
    if loaded is None:
        click.echo(
            f"{config_dir}: {_plural(len(errors), 'error')}, {_plural(n_warn, 'warning')}; "
            "fix the errors above, then run `lxhub config check` again"
        )
        raise SystemExit(1)
    hub = loaded.hub
    n_lrs = sum(1 for lrs in hub.lrs if lrs.enabled)
    n_inst = len(loaded.enabled_instances)
    click.echo(
        f"{config_dir}: OK: {_plural(len(hub.lrs), 'LRS destination')} ({n_lrs} enabled), "
        f"{_plural(len(loaded.instances), 'connector instance')} ({n_inst} enabled), "
        f"{_plural(n_warn, 'warning')}"
    )
