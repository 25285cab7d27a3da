"""Test-only connector classes for the config, registry and CLI tests.

Loaded by path (see `load()` in the test modules), never imported as a package: tests have no
`__init__.py`. Registries are built from these with `Registry.from_classes`, so no test depends on
which plugins happen to be installed.

* `StandInWebhookConnector` (`webhook`): the settings keys config/connectors/acme-coach.yaml uses
  (`preset`, `tenant`, `secrets`), like connectors.webhook's GenericWebhookSettings.
* `SamplePollConnector` (`sample-poll`): polling, with a nested settings model and an HttpUrl.
* `Bad*`: one plugin-contract violation each, for `validate()`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from hub.connector import Connector, ConnectorSettings, Polling, Webhook
from hub.cursor import TimeCursor
from hub.events import PollResult, SourceEvent, WebhookRequest
from hub.mapping import EventPayload, MappingContext, MapResult, StatementMapper
from hub.xapi import Statement


class Ping(EventPayload):
    event_types = ("ping",)
    id: str


mapper = StatementMapper()


@mapper.on(Ping)
def _ping(e: Ping, ctx: MappingContext) -> list[Statement]:
    return []


class WebhookSettings(ConnectorSettings):
    preset: str = Field(description="name of a shipped mapping preset")
    tenant: str = Field(description="tenant token")
    secrets: dict[str, SecretStr] = Field(default_factory=dict, description="secrets by name")
    tolerance_seconds: int = Field(default=300, ge=0, description="replay window")


class StandInWebhookConnector(Connector[WebhookSettings], Webhook):
    """Stand-in for the generic webhook connector (same entry-point name and settings keys)."""

    name = "webhook"
    source = "webhook"
    platform = "Webhook"
    settings_model = WebhookSettings
    mapper = mapper

    @property
    def tenant(self) -> str:
        return "example"

    def check(self) -> None:
        return None

    def verify(self, request: WebhookRequest) -> None:
        return None

    def parse(self, request: WebhookRequest) -> list[SourceEvent]:
        return []


class Paging(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    page_size: int = Field(default=100, ge=1, le=1000)


class PollSettings(ConnectorSettings):
    base_url: HttpUrl = Field(description="API base URL")
    api_key: SecretStr = Field(description="API key")
    paging: Paging = Field(default_factory=Paging)
    url: HttpUrl | None = Field(default=None, description="a field named like a pydantic tag")
    limit: int | Literal["auto"] = Field(default="auto", description="a union")


class SamplePollConnector(Connector[PollSettings], Polling[TimeCursor]):
    """Polls a sample API, one page per call."""

    name = "sample-poll"
    source = "samplepoll"
    platform = "Sample Poll"
    settings_model = PollSettings
    mapper = mapper

    @property
    def tenant(self) -> str:
        return "example"

    def check(self) -> None:
        return None

    def poll(self, cursor: TimeCursor | None, *, until: datetime) -> PollResult[TimeCursor]:
        raise NotImplementedError

    def initial_cursor(self, since: datetime) -> TimeCursor:
        raise NotImplementedError


class NotAConnector:
    name = "not-a-connector"


class BadNameConnector(StandInWebhookConnector):
    name = "other-name"


class LooseSettings(BaseModel):
    anything: str = ""


class BadSettingsConnector(StandInWebhookConnector):
    name = "bad-settings"
    settings_model = LooseSettings


class NoCapabilityConnector(Connector[WebhookSettings]):
    name = "no-capability"
    source = "nocap"
    platform = "No Capability"
    settings_model = WebhookSettings
    mapper = mapper

    @property
    def tenant(self) -> str:
        return "example"

    def check(self) -> None:
        return None


class EmptyMapperConnector(StandInWebhookConnector):
    name = "empty-mapper"
    mapper = StatementMapper()


class OwnMapConnector(EmptyMapperConnector):
    """An empty mapper is fine when `map` is overridden (e.g. a declarative mapping)."""

    name = "own-map"

    def map(self, event: SourceEvent, ctx: MappingContext) -> MapResult:
        return []


class NoSourceConnector(StandInWebhookConnector):
    name = "no-source"
    source = "Not A Slug"
    platform = ""


class AbstractConnector(Connector[WebhookSettings], Webhook):
    name = "abstract"
    source = "abstract"
    platform = "Abstract"
    settings_model = WebhookSettings
    mapper = mapper

    @property
    def tenant(self) -> str:
        return "example"

    def check(self) -> None:
        return None
