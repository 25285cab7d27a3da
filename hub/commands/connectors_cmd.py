"""``lxhub connectors list|describe|schema``: what plugins are installed and how to configure
them. Secret fields are flagged, and their defaults are never printed."""

from __future__ import annotations

import difflib
import inspect
import json
import re
import typing
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from hub.commands import CliState
from hub.errors import ConfigError
from hub.registry import LoadedConnector, Registry


@click.group("connectors")
def connectors_group() -> None:
    """Installed connector plugins and their settings."""


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


@connectors_group.command("list")
@click.pass_obj
def list_connectors(state: CliState) -> None:
    """List installed connector plugins: name, capabilities, distribution and version.

    Plugins that fail to load are listed too, with their error.
    """
    registry = state.registry()
    rows = [["NAME", "CAPABILITIES", "DISTRIBUTION", "VERSION"]]
    for name, lc in registry.items():
        caps = ",".join(sorted(c.value for c in lc.capabilities))
        rows.append([name, caps, lc.dist_name, lc.dist_version])
    for name, b in registry.broken.items():
        rows.append([name, "BROKEN", b.found.dist_name, b.found.dist_version])
    if len(rows) == 1:
        click.echo("no connector plugins installed (entry-point group lxhub.connectors)")
        return
    for line in _table(rows):
        click.echo(line)
    for name, b in registry.broken.items():
        click.echo(f"\n{name}: {b.error.reason}")


def _get(registry: Registry, name: str) -> LoadedConnector:
    lc = registry.get(name)
    if lc is not None:
        return lc
    if name in registry.broken:
        raise ConfigError(str(registry.broken[name].error))
    hint = difflib.get_close_matches(name, list(registry), n=1, cutoff=0.6)
    raise ConfigError(
        f"no connector plugin named {name!r}"
        + (f"; did you mean {hint[0]!r}?" if hint else "")
        + f" (installed: {', '.join(registry) or 'none'}; see `lxhub connectors list`)"
    )


def _type_name(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "None"
    if typing.get_origin(annotation) is None and isinstance(annotation, type):
        return annotation.__name__
    text = repr(annotation).replace("typing.", "")
    return re.sub(r"\b(?:[A-Za-z_][\w]*\.)+([A-Za-z_]\w*)", r"\1", text)


def _is_secret(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_is_secret(a) for a in typing.get_args(annotation))


def _default(info: FieldInfo, secret: bool) -> str:
    if info.is_required():
        return "required"
    if secret:
        return "default: (hidden)"
    if info.default_factory is not None:
        return "default: (computed)"
    value = info.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "default: (defaults)"
    return f"default: {json.dumps(value, default=str)}"


@connectors_group.command("describe")
@click.argument("name")
@click.pass_obj
def describe(state: CliState, name: str) -> None:
    """Show a connector plugin: docstring, capabilities and its settings fields."""
    lc = _get(state.registry(), name)
    cls = lc.cls
    click.echo(f"{lc.name}: {cls.__name__} from {lc.dist_name} {lc.dist_version}")
    if lc.value:
        click.echo(f"  entry point:  {lc.value}")
    click.echo(f"  capabilities: {', '.join(sorted(c.value for c in lc.capabilities))}")
    click.echo(f"  source:       {cls.source}")
    click.echo(f"  platform:     {cls.platform}")
    doc = inspect.getdoc(cls)
    if doc:
        click.echo("")
        click.echo(doc)
    model = cls.settings_model
    click.echo("")
    click.echo(f"settings ({model.__name__}):")
    rows: list[list[str]] = []
    descriptions: list[str] = []
    for field_name, info in model.model_fields.items():
        secret = _is_secret(info.annotation)
        rows.append(
            [
                f"  {info.alias or field_name}",
                _type_name(info.annotation),
                _default(info, secret),
                "[secret: use ${VAR} or {file: …}]" if secret else "",
            ]
        )
        descriptions.append(info.description or "")
    if not rows:
        click.echo("  (no settings)")
        return
    for line, desc in zip(_table(rows), descriptions, strict=True):
        click.echo(line)
        if desc:
            click.echo(f"      {desc}")


@connectors_group.command("schema")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the JSON Schema to this file instead of stdout.",
)
@click.pass_obj
def schema(state: CliState, name: str, out: Path | None) -> None:
    """Print the JSON Schema of a connector's settings (for editors and CI)."""
    lc = _get(state.registry(), name)
    document = lc.cls.settings_model.model_json_schema()
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}", err=True)
