"""Assembles a running hub from its configuration: store, connectors, identity, destinations.

Every process (web receiver, worker, scheduler, CLI) builds one `HubRuntime` from the config
directory with the same validation `lxhub config check` runs, so a bad config stops every
service the same way, naming the file and key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from hub.clock import Clock, SystemClock
from hub.config import HubConfig, InstanceConfig, LoadedConfig, LrsConfig, load_config
from hub.connector import Capability, Connector, ConnectorRuntime
from hub.events import SourceEvent
from hub.identity import IdentityResolver
from hub.inbox import StoreInbox
from hub.local_lrs import LocalLrs, LocalLrsTransport
from hub.lrs import LrsClient, LrsTarget
from hub.metrics import Metrics, record_events
from hub.pipeline import Destination, NormalizeReport, normalize
from hub.registry import Registry, build_registry
from hub.store import Store, open_store
from hub.webhooks import ReceiverStats

logger = logging.getLogger(__name__)

USER_AGENT = "lxhub/0.1 (+https://github.com/lxhub)"


def config_dir_from_env(explicit: str | Path | None = None) -> Path:
    """`--config DIR` > `LXHUB_CONFIG` > `./config`."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("LXHUB_CONFIG", "config"))


class StoreState:
    """A connector instance's small state, namespaced in the hub's store."""

    def __init__(self, store: Store, instance_id: str) -> None:
        self._store = store
        self._ns = f"state:{instance_id}"

    def get(self, key: str) -> str | None:
        return self._store.kv_get(self._ns, key)

    def set(self, key: str, value: str, *, ttl_seconds: float | None = None) -> None:
        self._store.kv_set(self._ns, key, value, ttl_seconds=ttl_seconds)

    def delete(self, key: str) -> None:
        self._store.kv_delete(self._ns, key)

    def compare_and_set(
        self, key: str, expected: str | None, value: str, *, ttl_seconds: float | None = None
    ) -> bool:
        return self._store.kv_compare_and_set(
            self._ns, key, expected=expected, value=value, ttl_seconds=ttl_seconds
        )


@dataclass(frozen=True)
class BoundConnector:
    """A configured instance with its live connector object."""

    config: InstanceConfig
    connector: Connector[Any]

    @property
    def instance_id(self) -> str:
        return self.config.id

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def lrs(self) -> frozenset[str] | None:
        return None if self.config.lrs is None else frozenset(self.config.lrs)

    @property
    def polls(self) -> bool:
        return Capability.POLLING in self.connector.active_capabilities()

    @property
    def receives(self) -> bool:
        return Capability.WEBHOOK in self.connector.active_capabilities()


class HubRuntime:
    """The live objects of one hub process, built lazily from the loaded configuration."""

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        registry: Registry,
        store: Store | None = None,
        clock: Clock | None = None,
        transports: Mapping[str, httpx.BaseTransport] | None = None,
    ) -> None:
        self.loaded = loaded
        self.registry = registry
        self.clock: Clock = clock or SystemClock()
        self._store = store
        self._transports = dict(transports or {})
        # How this process signals workers (a Celery send_task in services; None in tests and
        # one-shot CLI runs, where the scheduler's periodic flush picks the work up).
        self.kick: Callable[[str, tuple[str, ...]], None] | None = None
        self.receiver_stats: ReceiverStats | None = None
        self._lrs_clients: dict[str, LrsClient] = {}

    @classmethod
    def from_config_dir(
        cls, config_dir: str | Path | None = None, *, env: Mapping[str, str] | None = None
    ) -> HubRuntime:
        directory = config_dir_from_env(config_dir)
        enabled, named = _instance_types(directory)
        registry = build_registry(required=enabled, only=named)
        loaded = load_config(directory, registry=registry, env=env)
        return cls(loaded, registry=registry)

    @property
    def config(self) -> HubConfig:
        return self.loaded.hub

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config.effective_store_url)
        return self._store

    @cached_property
    def metrics(self) -> Metrics:
        return Metrics()

    @cached_property
    def inbox(self) -> StoreInbox:
        def kick() -> None:
            if self.kick is not None:
                self.kick("hub.normalize_events", ())

        return StoreInbox(self.store, clock=self.clock, kick=kick)

    @cached_property
    def identity(self) -> IdentityResolver:
        return IdentityResolver.from_config(
            self.config.identity,
            store=self.store,
            lookup=self._lookup_user,
            config_dir=self.loaded.config_dir,
            identity_map=self.loaded.identity_map,
        )

    def _lookup_user(self, source: str, source_user_id: str) -> Any:
        for bound in self.connectors.values():
            if bound.connector.source == source and bound.enabled:
                return bound.connector.lookup_user(source_user_id)
        return None

    def http_client(self, name: str) -> httpx.Client:
        """A client with sane timeouts and our user agent; tests inject transports by name."""
        return httpx.Client(
            timeout=httpx.Timeout(30.0, connect=10.0),
            headers={"User-Agent": USER_AGENT},
            transport=self._transports.get(name),
            follow_redirects=False,
        )

    @cached_property
    def connectors(self) -> dict[str, BoundConnector]:
        out: dict[str, BoundConnector] = {}
        for instance in self.loaded.instances.values():
            plugin = self.registry.get(instance.type)
            if plugin is None:
                continue
            runtime = ConnectorRuntime(
                instance_id=instance.id,
                base_iri=self.config.base_iri,
                http=self.http_client(f"connector:{instance.id}"),
                clock=self.clock,
                state=StoreState(self.store, instance.id),
            )
            out[instance.id] = BoundConnector(
                instance, plugin.cls(instance.settings, runtime=runtime)
            )
        return out

    def normalize(self, events: Sequence[SourceEvent]) -> NormalizeReport:
        """Normalize raw events with this hub's connectors, identity and routes (what the
        `hub.normalize_events` task and the demo both run), counting them for the rates."""
        record_events(self.store, events, now=self.clock.now())
        return normalize(
            events,
            instances=self.enabled_instance,
            destinations=self.destinations,
            store=self.store,
            clock=self.clock,
            base_iri=self.config.base_iri,
            actors=self.identity,
        )

    def due_now(self, outbox: str) -> bool:
        """Something in `outbox` (an LRS's, or the inbox) can be taken now: the tasks ask
        before they stop, so that work which arrived while they ran is not left waiting."""
        due = self.store.outbox_next_due(outbox)
        return due is not None and due <= self.clock.now()

    def enabled_instance(self, instance_id: str) -> BoundConnector | None:
        bound = self.connectors.get(instance_id)
        return bound if bound is not None and bound.enabled else None

    @cached_property
    def destinations(self) -> list[Destination]:
        return [
            Destination(
                name=lrs.name,
                xapi_version=lrs.xapi_version,
                instances=None if lrs.routes.instances is None else frozenset(lrs.routes.instances),
                verbs=None if lrs.routes.verbs is None else frozenset(lrs.routes.verbs),
            )
            for lrs in self.config.lrs
            if lrs.enabled
        ]

    def lrs_config(self, name: str) -> LrsConfig:
        for lrs in self.config.lrs:
            if lrs.name == name:
                return lrs
        raise KeyError(name)

    @cached_property
    def local_lrs(self) -> LocalLrs:
        return LocalLrs(Path(self.config.data_dir) / "local-lrs.sqlite")

    def lrs_client(self, name: str) -> LrsClient:
        """One client per LRS per process: its connections are reused across deliveries."""
        client = self._lrs_clients.get(name)
        if client is None:
            client = self._lrs_clients[name] = self._new_lrs_client(name)
        return client

    def _new_lrs_client(self, name: str) -> LrsClient:
        cfg = self.lrs_config(name)
        if cfg.type == "local":
            # In process, no credentials: the transport never leaves this machine.
            transport: httpx.BaseTransport | None = LocalLrsTransport(self.local_lrs)
            target = LrsTarget(
                name=cfg.name,
                endpoint="http://local.lxhub.invalid/xapi/",
                token=SecretStr("local"),
                xapi_version=cfg.xapi_version,
                timeout=cfg.timeout,
            )
        else:
            transport = self._transports.get(f"lrs:{name}")
            target = LrsTarget(
                name=cfg.name,
                endpoint=str(cfg.endpoint),
                username=cfg.username,
                password=cfg.password,
                token=cfg.token,
                xapi_version=cfg.xapi_version,
                timeout=cfg.timeout,
            )
        client = httpx.Client(
            timeout=httpx.Timeout(cfg.timeout),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )
        return LrsClient(target, http=client)

    def close(self) -> None:
        for client in self._lrs_clients.values():
            client.close()
        for bound in self.connectors.values():
            bound.connector.runtime.http.close()
        if self._store is not None:
            self._store.close()


def _instance_types(config_dir: Path) -> tuple[set[str], set[str]]:
    """(types of enabled instances, types of all instances), read without validation: the
    registry insists the first load and loads only the second (`lxhub config check` and
    `lxhub connectors list` still load every installed plugin)."""
    import yaml

    required: set[str] = set()
    named: set[str] = set()
    for path in sorted((config_dir / "connectors").glob("*.y*ml")):
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue  # load_config reports it with the file name
        if isinstance(doc, dict) and isinstance(doc.get("type"), str):
            named.add(doc["type"])
            if doc.get("enabled"):
                required.add(doc["type"])
    return required, named
