"""Settings of one generic-webhook connector instance, and loading of its mapping.

The instance chooses its mapping in exactly one way: a shipped ``preset`` (a file in
``connectors/webhook/presets/``), an inline ``mapping``, or a ``mapping_file``. Secrets are never
in the mapping: it names them, and ``secrets`` maps those names to values (the config loader
resolves ``${ENV}``/``{file: ...}`` references into `SecretStr` before this model sees them).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml
from pydantic import Field, SecretStr, model_validator

from connectors.webhook.poll import PollSettings
from connectors.webhook.spec import MappingSpec, load_mapping
from hub import ConfigError, ConnectorSettings

__all__ = ["GenericWebhookSettings", "available_presets", "load_preset"]

_PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9.\-_:]*$")


def available_presets() -> list[str]:
    """Names of the shipped presets (file names without ``.yaml``)."""
    folder = resources.files("connectors.webhook") / "presets"
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def load_preset(name: str) -> MappingSpec:
    """Load and validate a shipped preset by name. Raises ConfigError for an unknown one."""
    # The name is checked against a slug pattern before it touches the package folder, so a
    # config value cannot read another file (``../..``).
    if not _PRESET_NAME.match(name) or name not in available_presets():
        raise ConfigError(f"unknown webhook preset {name!r}; shipped: {available_presets()}")
    text = (resources.files("connectors.webhook") / "presets" / f"{name}.yaml").read_text("utf-8")
    return load_mapping(text)


class GenericWebhookSettings(ConnectorSettings):
    """Settings of a ``type: webhook`` connector instance."""

    preset: str | None = Field(
        default=None, description="name of a shipped preset, e.g. 'example-coaching'"
    )
    mapping: MappingSpec | None = Field(default=None, description="an inline mapping")
    mapping_file: Path | None = Field(default=None, description="path of a mapping YAML file")
    tenant: str = Field(
        description="tenant token for statement ids and activity IRIs (lower-case); never change"
    )
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="secret values by the names the mapping uses (e.g. current, previous)",
    )
    platform: str | None = Field(
        default=None, description="context.platform; defaults to the mapping's platform"
    )
    actor_home_page: str | None = Field(
        default=None,
        description="account.homePage for actors without email; defaults to the mapping's",
    )
    include_free_text: bool = Field(
        default=False,
        description="emit user-written text (result.response, free_text names); off by default",
    )
    poll: PollSettings | None = Field(
        default=None,
        description="poll mode only: the vendor's base URL, template variables, column names",
    )

    @model_validator(mode="after")
    def _one_mapping_source(self) -> GenericWebhookSettings:
        given = [n for n in ("preset", "mapping", "mapping_file") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of preset, mapping, mapping_file")
        if not _TENANT.match(self.tenant):
            raise ValueError("tenant must be a lower-case host or tenant id")
        return self

    def load_spec(self) -> MappingSpec:
        """The validated mapping this instance uses. Raises ConfigError if it cannot load."""
        if self.mapping is not None:
            return self.mapping
        if self.preset is not None:
            return load_preset(self.preset)
        assert self.mapping_file is not None  # noqa: S101 - guaranteed by the validator
        try:
            text = self.mapping_file.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read mapping_file {self.mapping_file}: {exc}") from None
        try:
            return load_mapping(text)
        except (ValueError, yaml.YAMLError) as exc:  # pydantic's ValidationError is a ValueError
            raise ConfigError(f"invalid mapping_file {self.mapping_file}: {exc}") from None
