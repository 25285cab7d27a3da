"""Subcommand groups of the ``lxhub`` command; `hub.cli` attaches each one to the root.

`CliState` is what the root hands every command through ``ctx.obj``; a command module takes it
with ``@click.pass_obj`` and never reads ``--config`` or the registry any other way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hub.config import resolve_config_dir
from hub.registry import Registry, get_registry


@dataclass
class CliState:
    """Shared state of one ``lxhub`` invocation."""

    config_option: Path | None = None
    registry_factory: Callable[[], Registry] = field(default=get_registry)

    @property
    def config_dir(self) -> Path:
        """``--config DIR`` > ``LXHUB_CONFIG`` > ``./config``."""
        return resolve_config_dir(self.config_option)

    def registry(self) -> Registry:
        """The connector plugins (installed ones by default; tests inject explicit ones)."""
        return self.registry_factory()
