"""The ``lxhub`` command: a small click root that subcommand modules attach to.

Command groups live in their own modules and are attached here:

* the hub's own (`hub.commands.*`) with one ``main.add_command(...)`` line each;
* commands from outside ``hub`` (the process commands in ``workers``: ``up``, ``serve``,
  ``worker``, ``beat``, ``healthcheck``) through the entry-point group ``lxhub.commands``, whose
  value is a click command or a sequence of them, so ``hub`` never imports ``workers``. They are
  found per invocation, never stored on the global ``main``; a built-in name always wins.

The root owns what every command shares:

* ``--config DIR`` (> ``LXHUB_CONFIG`` > ``./config``), kept in `CliState` (``ctx.obj``);
* errors: a `HubError` prints as one clear sentence (``error: …``) and exits 1; anything
  unexpected is wrapped the same way, with its type, and ``LXHUB_DEBUG=1`` shows the traceback.

Tests pass ``obj=CliState(registry_factory=...)`` to ``CliRunner.invoke`` to supply an explicit
registry instead of the installed plugins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from hub.commands import CliState
from hub.commands.backfill_cmd import backfill_cmd
from hub.commands.config_cmd import config_group
from hub.commands.connectors_cmd import connectors_group
from hub.commands.demo_cmd import demo_cmd
from hub.commands.dlq_cmd import dlq_group
from hub.commands.scaffold_cmd import new_cmd
from hub.commands.status_cmd import status_cmd
from hub.errors import HubError

__all__ = ["COMMAND_GROUP", "CliState", "main"]

COMMAND_GROUP = "lxhub.commands"
"""Entry-point group for commands that live outside ``hub`` (value: a command or a sequence)."""

_META_KEY = "lxhub.plugin_commands"


def _plugin_commands() -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for ep in sorted(metadata.entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the whole CLI down
            click.echo(
                f"warning: lxhub command plugin {ep.name} = {ep.value} failed to load: "
                f"{type(exc).__name__}: {exc}",
                err=True,
            )
            continue
        commands: Sequence[object] = (
            [obj]
            if isinstance(obj, click.Command)
            else obj
            if isinstance(obj, list | tuple)
            else []
        )
        for cmd in commands:
            if isinstance(cmd, click.Command) and cmd.name:
                found.setdefault(cmd.name, cmd)
    return found


class _HubGroup(click.Group):
    """Adds the ``lxhub.commands`` plugins, and turns errors into one line on stderr and exit
    status 1, never a traceback."""

    def _plugins(self, ctx: click.Context) -> dict[str, click.Command]:
        root = ctx.find_root()
        if _META_KEY not in root.meta:
            root.meta[_META_KEY] = _plugin_commands()
        plugins: dict[str, click.Command] = root.meta[_META_KEY]
        return plugins

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugins(ctx).get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except HubError as exc:
            _fail(str(exc))
        except Exception as exc:
            if os.environ.get("LXHUB_DEBUG"):
                raise
            _fail(
                f"unexpected {type(exc).__name__}: {exc} "
                "(this is a bug; run again with LXHUB_DEBUG=1 for the traceback and report it)"
            )


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(cls=_HubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Config directory (default: $LXHUB_CONFIG, else ./config).",
)
@click.pass_context
def main(ctx: click.Context, config_dir: Path | None) -> None:
    """lxhub: learning events from every tool, as xAPI, in every LRS."""
    state = ctx.ensure_object(CliState)
    if config_dir is not None:
        state.config_option = config_dir


main.add_command(config_group)
main.add_command(connectors_group)
connectors_group.add_command(new_cmd)
main.add_command(dlq_group)
main.add_command(status_cmd)
main.add_command(backfill_cmd)
main.add_command(demo_cmd)


if __name__ == "__main__":  # `python -m hub.cli`, as `lxhub up` starts its children
    main()
