"""``lxhub connectors new NAME``: scaffold a third-party connector package whose tests pass as
generated (see `hub.scaffold` and the guide docs/plugins.md).

The command is attached to the ``connectors`` group by `hub.cli`
(``connectors_group.add_command(new_cmd)``); it needs no `CliState` (it reads no config and no
registry), so it also runs on its own with click's ``CliRunner``.
"""

from __future__ import annotations

from pathlib import Path

import click

from hub.scaffold import (
    CAPABILITIES,
    Capability,
    ScaffoldError,
    default_dir,
    relative,
    scaffold,
    validate_name,
)

__all__ = ["new_cmd"]


def _check_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return validate_name(value)
    except ScaffoldError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command("new")
@click.argument("name", callback=_check_name)
@click.option(
    "--dir",
    "dest",
    type=click.Path(path_type=Path, dir_okay=True, file_okay=False),
    default=None,
    help="Where to create the package (default: ./lxhub-connector-NAME).",
)
@click.option(
    "--capability",
    type=click.Choice(CAPABILITIES),
    default="webhook",
    show_default=True,
    help="webhook: signed pushes (HMAC-SHA256); polling: one API page per call with a cursor.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into an existing non-empty directory, overwriting the generated files.",
)
def new_cmd(name: str, dest: Path | None, capability: Capability, force: bool) -> None:
    """Create a connector package NAME (lower-case-with-hyphens, e.g. acme-coach).

    The package declares the entry point NAME in the group lxhub.connectors and holds the
    connector class, its settings model, a mapper, a golden fixture pair and a test class that
    runs the lxhub conformance kit. Its tests pass as generated:

        lxhub connectors new acme-coach
        cd lxhub-connector-acme-coach && pip install -e '.[test]' && pytest
    """
    target = dest if dest is not None else default_dir(name)
    try:
        written = scaffold(name, dest=target, capability=capability, force=force)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {capability} connector {name!r} in {target}:")
    for rel in relative(written, target):
        click.echo(f"  {rel}")
    click.echo("")
    click.echo("next steps:")
    click.echo(f"  cd {target}")
    click.echo("  pip install -e '.[test]'     # next to lxhub, in the same environment")
    click.echo("  pytest                       # the conformance kit and the golden files")
    click.echo(f"  lxhub connectors list        # shows {name}")
    click.echo("guide: docs/plugins.md (Writing a connector)")
