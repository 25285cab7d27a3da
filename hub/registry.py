"""Connector plugin discovery, in flake8's shape: find → load → validate.

* `find()` lists the entry points of the group ``lxhub.connectors`` from installed distribution
  metadata, WITHOUT importing anything, sorted by name. Two distributions declaring the same name
  is an error naming both (pluggy's rule: nothing silently overrides).
* `load(found)` imports one entry point; any exception becomes a `PluginLoadError` naming the
  distribution and the entry point.
* `validate(loaded)` checks the class against the plugin contract (see `validate`).

`build_registry(required)` runs the three steps for every installed plugin. A plugin that an
enabled connector instance needs must load, or it raises with flake8-style lists (installed /
expected / missing or broken); any other plugin that fails is logged at WARNING and kept in
`Registry.broken` so ``lxhub connectors list`` can show it. `get_registry()` caches the result per
installed set. Tests build registries from explicit classes with `Registry.from_classes` and never
touch a global.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from types import MappingProxyType
from typing import cast

from pydantic import BaseModel

from hub.connector import Capability, Connector
from hub.errors import PluginLoadError

logger = logging.getLogger(__name__)

GROUP = "lxhub.connectors"
"""The entry-point group every connector plugin (built-in or third-party) registers in."""

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")


@dataclass(frozen=True, order=True)
class FoundPlugin:
    """An entry point found in distribution metadata; nothing imported yet."""

    name: str
    value: str
    dist_name: str
    dist_version: str

    @property
    def display_name(self) -> str:
        """``sample-coach (lxhub-connector-sample 0.1.0)``: names the package to blame."""
        return f"{self.name} ({self.dist_name} {self.dist_version})"


@dataclass(frozen=True)
class LoadedConnector:
    """An imported connector class and where it came from."""

    name: str
    cls: type[Connector[BaseModel]]
    dist_name: str
    dist_version: str
    capabilities: frozenset[Capability]
    value: str = ""

    @property
    def display_name(self) -> str:
        return f"{self.name} ({self.dist_name} {self.dist_version})"


@dataclass(frozen=True)
class BrokenPlugin:
    """An installed plugin that failed to load or validate."""

    found: FoundPlugin
    error: PluginLoadError


def _dist_name(dist: metadata.Distribution) -> str:
    name = dist.metadata["Name"] if dist.metadata is not None else None
    return str(name) if name else "<unknown distribution>"


def find(path: Sequence[str] | None = None) -> list[FoundPlugin]:
    """List connector entry points from installed metadata, sorted by name, without importing.

    Args:
        path: directories to search instead of ``sys.path`` (tests).

    Raises:
        PluginLoadError: two different distributions declare the same connector name.
    """
    dists = (
        metadata.distributions(path=list(path)) if path is not None else metadata.distributions()
    )
    by_name: dict[str, FoundPlugin] = {}
    seen_dists: set[str] = set()
    duplicates: dict[str, list[FoundPlugin]] = {}
    for dist in dists:
        dist_name = _dist_name(dist)
        key = re.sub(r"[-_.]+", "-", dist_name).lower()
        # The same distribution found twice on the path (e.g. an install shadowing another) is
        # one plugin: the first wins, as it would on import.
        if key in seen_dists:
            continue
        seen_dists.add(key)
        for ep in dist.entry_points:
            if ep.group != GROUP:
                continue
            found = FoundPlugin(ep.name, ep.value, dist_name, dist.version or "?")
            other = by_name.get(ep.name)
            if other is None:
                by_name[ep.name] = found
            else:
                duplicates.setdefault(ep.name, [other]).append(found)
    if duplicates:
        lines = [
            f"{name!r} is declared by "
            + " and ".join(f"{f.dist_name} {f.dist_version} ({f.value})" for f in fs)
            for name, fs in sorted(duplicates.items())
        ]
        raise PluginLoadError(
            ", ".join(sorted(duplicates)),
            "duplicate connector names: " + "; ".join(lines) + ". Uninstall one of them.",
        )
    return sorted(by_name.values())


def load(found: FoundPlugin) -> LoadedConnector:
    """Import one entry point. Any exception is wrapped as `PluginLoadError` naming its package."""
    ep = metadata.EntryPoint(name=found.name, value=found.value, group=GROUP)
    try:
        obj = ep.load()
    except Exception as exc:  # a plugin can raise anything at import; wrap it, never crash here
        raise PluginLoadError(
            found.display_name,
            f"cannot import entry point {found.name} = {found.value}: {type(exc).__name__}: {exc}",
        ) from exc
    if not inspect.isclass(obj):
        raise PluginLoadError(
            found.display_name, f"entry point {found.value} is not a class but {type(obj).__name__}"
        )
    caps = obj.capabilities() if issubclass(obj, Connector) else frozenset()
    return LoadedConnector(
        name=found.name,
        cls=cast("type[Connector[BaseModel]]", obj),  # validate() checks it really is one
        dist_name=found.dist_name,
        dist_version=found.dist_version,
        capabilities=caps,
        value=found.value,
    )


def validate(loaded: LoadedConnector) -> LoadedConnector:
    """Check a loaded class against the plugin contract; raise `PluginLoadError` listing ALL
    violations.

    The class must be a `Connector` subclass with no abstract method left; ``cls.name`` equals
    the entry-point name; ``settings_model`` is a pydantic model that forbids unknown keys; it has
    at least one capability (`Polling`, `Webhook`); its ``mapper`` is non-empty unless it overrides
    ``map``; ``source`` (a lower-case slug) and ``platform`` are declared.
    """
    cls = loaded.cls
    if not (inspect.isclass(cls) and issubclass(cls, Connector)):
        raise PluginLoadError(loaded.display_name, f"{_qual(cls)} is not a hub.Connector subclass")
    issues: list[str] = []
    name = getattr(cls, "name", None)
    if name != loaded.name:
        issues.append(f"{_qual(cls)}.name is {name!r} but the entry point is named {loaded.name!r}")
    model = getattr(cls, "settings_model", None)
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        issues.append("settings_model must be a pydantic BaseModel subclass")
    elif model.model_config.get("extra") != "forbid":
        issues.append(
            f"settings_model {model.__name__} must forbid unknown keys "
            "(model_config = ConfigDict(extra='forbid'); or subclass hub.ConnectorSettings)"
        )
    if not cls.capabilities():
        issues.append("declares no capability: subclass hub.Polling and/or hub.Webhook")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        issues.append(f"abstract methods not implemented: {missing}")
    if cls.map is Connector.map:
        mapper = getattr(cls, "mapper", None)
        if mapper is None:
            issues.append("declares no mapper (a StatementMapper) and does not override map()")
        elif not hasattr(mapper, "map") or not hasattr(mapper, "__len__"):
            issues.append(f"mapper is a {type(mapper).__name__}, not a StatementMapper")
        elif len(mapper) == 0:
            issues.append("mapper has no handler: register one with @mapper.on(PayloadModel)")
    source = getattr(cls, "source", None)
    if not isinstance(source, str) or not _SLUG.match(source):
        issues.append("source must be declared as a lower-case slug (e.g. 'docebo')")
    platform = getattr(cls, "platform", None)
    if not isinstance(platform, str) or not platform.strip():
        issues.append("platform must be declared (the product name for context.platform)")
    if issues:
        raise PluginLoadError(loaded.display_name, "; ".join(issues))
    return loaded


def _qual(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


class Registry(Mapping[str, LoadedConnector]):
    """An immutable mapping of connector name -> `LoadedConnector`, plus the broken plugins."""

    def __init__(
        self,
        connectors: Iterable[LoadedConnector] = (),
        *,
        broken: Iterable[BrokenPlugin] = (),
    ) -> None:
        items: dict[str, LoadedConnector] = {}
        for lc in connectors:
            if lc.name in items:
                raise PluginLoadError(
                    lc.name,
                    f"duplicate connector name: {items[lc.name].display_name} and "
                    f"{lc.display_name}",
                )
            items[lc.name] = lc
        self._items = MappingProxyType(dict(sorted(items.items())))
        self._broken = MappingProxyType({b.found.name: b for b in sorted(broken, key=_bkey)})

    @classmethod
    def from_classes(
        cls,
        classes: Iterable[type[Connector[BaseModel]]],
        *,
        dist_name: str = "<local>",
        dist_version: str = "0",
    ) -> Registry:
        """A registry of explicit classes, each validated as a plugin would be (for tests and
        embedding)."""
        loaded = [
            validate(
                LoadedConnector(
                    name=getattr(c, "name", c.__name__),
                    cls=c,
                    dist_name=dist_name,
                    dist_version=dist_version,
                    capabilities=c.capabilities() if issubclass(c, Connector) else frozenset(),
                    value=f"{c.__module__}:{c.__qualname__}",
                )
            )
            for c in classes
        ]
        return cls(loaded)

    @property
    def broken(self) -> Mapping[str, BrokenPlugin]:
        """Installed plugins that failed to load or validate, by entry-point name."""
        return self._broken

    @property
    def installed(self) -> list[str]:
        """Every discovered name, working or broken, sorted."""
        return sorted({*self._items, *self._broken})

    def require(self, names: Iterable[str]) -> None:
        """Raise `PluginLoadError` unless every name in `names` is loaded and valid."""
        expected = sorted(set(names))
        missing = [n for n in expected if n not in self._items]
        if not missing:
            return
        details = []
        for n in missing:
            b = self._broken.get(n)
            details.append(f"{n} ({b.error.reason})" if b else f"{n} (not installed)")
        raise PluginLoadError(
            ", ".join(missing),
            "required connector plugins are unavailable. "
            f"installed: {', '.join(self.installed) or '(none)'}; "
            f"expected: {', '.join(expected)}; "
            f"missing/broken: {'; '.join(details)}. "
            "Install the missing distributions (pip install lxhub-connector-<name>) or disable "
            "the connector instances that use them.",
        )

    def __getitem__(self, name: str) -> LoadedConnector:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({list(self._items)!r}, broken={list(self._broken)!r})"


def _bkey(b: BrokenPlugin) -> str:
    return b.found.name


def build_registry(
    required: Iterable[str] = (),
    *,
    found: Sequence[FoundPlugin] | None = None,
    only: Iterable[str] | None = None,
) -> Registry:
    """Load and validate every installed plugin (or only those named in `only`).

    Args:
        required: names that enabled connector instances use; each must load, or this raises.
        found: the plugins to load (default: `find()`).
        only: load just these names. Services pass the types their config names, so a worker
            does not import (and keep in memory) every vendor SDK installed beside it.

    Raises:
        PluginLoadError: a required plugin is missing or broken (with installed / expected /
            missing lists), or two distributions declare the same name.
    """
    plugins = find() if found is None else found
    required_set = set(required)
    if only is not None:
        wanted = set(only) | required_set
        plugins = [fp for fp in plugins if fp.name in wanted]
    ok: list[LoadedConnector] = []
    broken: list[BrokenPlugin] = []
    for fp in plugins:
        try:
            ok.append(validate(load(fp)))
        except PluginLoadError as exc:
            broken.append(BrokenPlugin(fp, exc))
            if fp.name not in required_set:
                logger.warning("connector plugin %s is broken and was skipped: %s", fp.name, exc)
    registry = Registry(ok, broken=broken)
    registry.require(required_set)
    return registry


@lru_cache(maxsize=4)
def _registry_for(plugins: tuple[FoundPlugin, ...]) -> Registry:
    return build_registry(found=plugins)


def get_registry() -> Registry:
    """The registry of every installed plugin, cached per installed set (broken ones kept in
    `Registry.broken`, logged at WARNING)."""
    return _registry_for(tuple(find()))
