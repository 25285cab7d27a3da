"""Building the hub runtime for a CLI command, with the same validation as the services."""

from __future__ import annotations

from hub.commands import CliState
from hub.config import load_config
from hub.runtime import HubRuntime


def runtime_for(state: CliState) -> HubRuntime:
    registry = state.registry()
    return HubRuntime(load_config(state.config_dir, registry=registry), registry=registry)
