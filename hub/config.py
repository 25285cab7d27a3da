"""The configuration directory: models, loading and validation in one place.

Layout (the admins' contract, see ``config/`` for the commented examples)::

    config/
      hub.yaml               hub settings, LRS destinations, identity, web, delivery
      connectors/*.yaml      one connector instance per file (``*.yml`` too; dot-files ignored)
      identity-map.csv       optional, named by ``identity.map_file``

`load_config` is the one code path: ``lxhub config check`` and every service call it. It reads
every file, resolves secret references (`hub.secrets`), validates ``hub.yaml`` with `HubConfig`
and each instance's ``settings`` with its connector's own ``settings_model`` (so the raw dict
exists nowhere after loading), cross-checks names between files, and collects EVERY problem
before raising `ConfigInvalid`. Problems read ``file: key.path: message``; unknown keys come
with a suggestion.

Paths: ``data_dir`` is relative to the config directory's PARENT (``./config`` -> ``./data``,
``/etc/lxhub/config`` -> ``/etc/lxhub/data``), never to the working directory; ``map_file`` and
``{file: …}`` secret paths are relative to the config directory itself.

Size: this module is the admins' whole contract (every model with its field descriptions, which
``lxhub connectors describe``-style tooling and the JSON Schema reuse) plus its one loader, kept
together on purpose; split it into ``config/models.py`` + ``config/loader.py`` if it grows further.

Environment: ``LXHUB_BROKER_URL``, ``LXHUB_STORE_URL`` and ``LXHUB_DATA_DIR`` override
``broker_url``, ``store_url`` and ``data_dir`` (containers mount the config read-only and the data
elsewhere); the config directory is ``--config DIR`` > ``LXHUB_CONFIG`` > ``./config``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hub.connector import Capability
from hub.errors import ConfigError
from hub.registry import Registry
from hub.secrets import KeyPath, format_key_path, literal_secret_paths, resolve_refs

if TYPE_CHECKING:
    from hub.identity import IdentityMap

__all__ = [
    "ConfigInvalid",
    "ConfigProblem",
    "DeliveryConfig",
    "HubConfig",
    "IdentityConfig",
    "InstanceConfig",
    "LoadedConfig",
    "LrsConfig",
    "LrsRoutes",
    "ScheduleConfig",
    "WebConfig",
    "load_config",
    "resolve_config_dir",
]

# -- problems ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong (or worth a warning) in one file, at one key path."""

    file: str
    key_path: str
    message: str

    def __str__(self) -> str:
        if self.key_path:
            return f"{self.file}: {self.key_path}: {self.message}"
        return f"{self.file}: {self.message}"


class ConfigInvalid(ConfigError):
    """The configuration has errors; `problems` lists every one of them."""

    def __init__(
        self, problems: list[ConfigProblem], *, warnings: tuple[ConfigProblem, ...] = ()
    ) -> None:
        self.problems = list(problems)
        self.warnings = tuple(warnings)
        n = len(self.problems)
        head = f"configuration has {n} error{'s' if n != 1 else ''}:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


# -- reusable field types --------------------------------------------------------------------------

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?\Z")


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            f"{value!r} is not a URL-safe slug: use 1-64 lower-case letters, digits, '-' or '_', "
            "starting and ending with a letter or digit (e.g. 'acme-coach')"
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def _to_seconds(value: Any) -> Any:
    """Accept 90, 2.5, "90", "30s", "15m", "1h30m", "7d"; anything else goes to pydantic."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return float(text)
        if text and _DURATION.sub("", text).strip() == "":
            return float(sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text)))
        raise ValueError(
            f"{value!r} is not a duration: write seconds (90) or a number with a unit "
            "s, m, h, d or w ('30s', '15m', '1h30m', '7d')"
        )
    return value


Seconds = Annotated[float, BeforeValidator(_to_seconds)]
"""A duration in seconds; YAML may say ``90``, ``"15m"``, ``"1h30m"`` or ``"7d"``."""


def _blank_to_none(value: Any) -> Any:
    """``${VAR:-}`` with VAR unset gives "": for optional credentials that means "not set"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_blank_to_none)]


def _relative_to_context(value: Path | None, info: ValidationInfo, key: str) -> Path | None:
    ctx = info.context if isinstance(info.context, dict) else {}
    base = ctx.get(key)
    if value is None or value.is_absolute() or not isinstance(base, Path):
        return value
    return base / value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- hub.yaml ------------------------------------------------------------------------------------


class LrsRoutes(_Model):
    """Which statements an LRS receives. ``None`` means all."""

    instances: list[Slug] | None = Field(
        default=None, description="connector instance ids routed here (default: all)"
    )
    verbs: list[str] | None = Field(
        default=None,
        description="verb IRIs or verb keys (the IRI's last segment, e.g. 'completed'); "
        "default: all",
    )

    @field_validator("verbs")
    @classmethod
    def _verbs(cls, value: list[str] | None) -> list[str] | None:
        for verb in value or []:
            if ":" not in verb and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", verb):
                raise ValueError(f"{verb!r} is neither a verb IRI nor a verb key")
        return value


class LrsConfig(_Model):
    """One LRS destination (``lrs:`` list in hub.yaml)."""

    name: Slug = Field(description="unique destination name, used in routes, metrics and DLQ")
    type: Literal["xapi", "local"] = Field(
        default="xapi", description="'xapi': a remote LRS; 'local': the hub's embedded store"
    )
    endpoint: HttpUrl | None = Field(
        default=None, description="xAPI base URL, ending before 'statements' (required for xapi)"
    )
    username: OptionalStr = Field(default=None, description="Basic auth user (with password)")
    password: OptionalSecret = Field(default=None, description="Basic auth password")
    token: OptionalSecret = Field(default=None, description="Bearer token (instead of Basic)")
    xapi_version: Literal["1.0.3", "2.0.0"] = Field(
        default="1.0.3", description="X-Experience-API-Version header sent"
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="statements per POST")
    max_batch_wait: Seconds = Field(
        default=2.0, ge=0, description="seconds to wait for a fuller batch"
    )
    max_batch_idle: Seconds = Field(
        default=0.25,
        ge=0,
        description="a partial batch also goes out once no statement has joined it for this "
        "long (0: wait the whole max_batch_wait)",
    )
    max_in_flight: int = Field(
        default=2,
        ge=1,
        le=8,
        description="batches POSTed to this LRS at the same time (2: the next batch is ready "
        "while the LRS stores the current one)",
    )
    timeout: Seconds = Field(default=10.0, gt=0, description="HTTP timeout in seconds")
    retry_horizon: Seconds = Field(
        default=86400.0, gt=0, description="seconds of retrying before dead-lettering"
    )
    routes: LrsRoutes = Field(default_factory=LrsRoutes, description="routing filters")
    enabled: bool = Field(default=True, description="false: nothing is queued for this LRS")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is None:
            return None
        text = str(value)
        if re.search(r"/statements/?$", value.path or ""):
            raise ValueError(
                "endpoint is the xAPI base URL: drop the trailing 'statements' "
                f"(e.g. {text.rstrip('/').rsplit('/', 1)[0]}/)"
            )
        if value.query or value.fragment:
            raise ValueError("endpoint must not have a query string or fragment")
        return value if text.endswith("/") else HttpUrl(text + "/")

    @model_validator(mode="after")
    def _auth(self) -> LrsConfig:
        basic = self.username is not None or self.password is not None
        if self.type == "local":
            extra = [k for k in ("endpoint", "username", "password", "token") if getattr(self, k)]
            if extra:
                raise ValueError(
                    f"a 'local' LRS is the hub's embedded store and takes no {', '.join(extra)}"
                )
            return self
        if self.endpoint is None:
            raise ValueError("an 'xapi' LRS needs an endpoint (its xAPI base URL)")
        if basic and self.token is not None:
            raise ValueError("give either username and password, or token, not both")
        if basic and (self.username is None or self.password is None):
            missing = "password" if self.password is None else "username"
            raise ValueError(f"Basic auth needs both username and password; {missing} is missing")
        if not basic and self.token is None:
            raise ValueError("an 'xapi' LRS needs credentials: username and password, or token")
        return self


class IdentityConfig(_Model):
    """How actors are identified (DESIGN §4)."""

    actor_form: Literal["mbox", "mbox_sha1sum", "account"] = Field(
        default="mbox", description="the one IFI put on every Agent"
    )
    map_file: Path | None = Field(
        default=None,
        description="admin-maintained identity map (CSV or YAML), relative to the config dir",
    )
    cache_ttl: Seconds = Field(
        default=86400.0, gt=0, description="seconds a looked-up email stays cached"
    )
    unresolved: Literal["account", "quarantine"] = Field(
        default="account",
        description="no email found: 'account' (source id on the source's home page) or "
        "'quarantine' (dead letter, replay later)",
    )
    include_name: bool = Field(default=True, description="put the person's name on the Agent")

    @field_validator("map_file")
    @classmethod
    def _map_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _relative_to_context(value, info, "config_dir")


class WebConfig(_Model):
    """The web receiver (``lxhub serve``)."""

    host: str = Field(default="127.0.0.1", description="listen address")
    port: int = Field(default=8080, ge=1, le=65535, description="listen port")
    max_body_bytes: int = Field(default=1048576, ge=1024, description="webhook body size cap")
    admin_token: OptionalSecret = Field(
        default=None,
        description="bearer token for the status page and /api/status (unset or empty: none)",
    )
    dedupe_ttl: Seconds = Field(
        default=7 * 86400.0, gt=0, description="seconds a webhook delivery id is remembered"
    )


class DeliveryConfig(_Model):
    """Delivery workers' timing."""

    lease_seconds: Seconds = Field(
        default=60.0, gt=0, description="how long a delivery attempt holds its batch"
    )
    flush_interval: Seconds = Field(default=1.0, gt=0, description="seconds between outbox checks")
    max_countdown: Seconds = Field(
        default=3000.0, gt=0, description="longest retry countdown (below the broker timeout)"
    )
    probe_interval: Seconds = Field(
        default=30.0,
        gt=0,
        description="first wait before probing a paused LRS (401/403); doubles up to 10 min",
    )


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


_IRI = TypeAdapter(HttpUrl)


class HubConfig(_Model):
    """hub.yaml."""

    base_iri: str = Field(
        default="https://lrs-hub.example.com/xapi",
        description="IRI prefix of activity ids, extensions and statement-id namespaces; "
        "NEVER change it once statements were sent",
    )
    data_dir: Path = Field(
        default=Path("data"),
        validate_default=True,  # the default is relative too: resolve it like a written value
        description="embedded state; relative to the config dir's parent",
    )
    broker_url: OptionalStr = Field(
        default=None, description="Celery broker (env LXHUB_BROKER_URL wins); default SQLite"
    )
    store_url: OptionalStr = Field(
        default=None, description="hub state store (env LXHUB_STORE_URL wins); default SQLite"
    )
    web: WebConfig = Field(default_factory=WebConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    lrs: list[LrsConfig] = Field(min_length=1, description="LRS destinations (at least one)")
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    log_level: Annotated[LogLevel, BeforeValidator(_upper)] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("base_iri")
    @classmethod
    def _base_iri(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        url = _IRI.validate_python(value)
        if url.query or url.fragment:
            raise ValueError("base_iri must not have a query string or fragment")
        return value

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("redis://", "rediss://", "unix://", "sqlite:///")
        ):
            scheme = value.split(":", 1)[0] if ":" in value else value
            raise ValueError(
                f"unsupported store URL scheme {scheme!r}: use redis://, rediss:// or sqlite:///path"
            )
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: Path, info: ValidationInfo) -> Path:
        return _relative_to_context(value, info, "data_base") or value

    @field_validator("lrs")
    @classmethod
    def _unique_lrs(cls, value: list[LrsConfig]) -> list[LrsConfig]:
        seen: dict[str, int] = {}
        for i, lrs in enumerate(value):
            if lrs.name in seen:
                raise ValueError(
                    f"duplicate LRS name {lrs.name!r} (entries {seen[lrs.name]} and {i})"
                )
            seen[lrs.name] = i
        return value

    @property
    def effective_broker_url(self) -> str:
        """The Celery broker: ``broker_url`` or SQLite under ``data_dir``."""
        return self.broker_url or f"sqla+sqlite:///{self.data_dir}/broker.sqlite"

    @property
    def effective_store_url(self) -> str:
        """The hub store: ``store_url`` or SQLite under ``data_dir``."""
        return self.store_url or f"sqlite:///{self.data_dir}/state.sqlite"

    def lrs_named(self, name: str) -> LrsConfig:
        """The LRS destination called `name` (KeyError if none)."""
        for lrs in self.lrs:
            if lrs.name == name:
                return lrs
        raise KeyError(name)


# -- connectors/*.yaml -----------------------------------------------------------------------------


def _start_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("start_date needs a timezone, e.g. 2024-01-01T00:00:00Z (or a date)")
    return value


class ScheduleConfig(_Model):
    """When a polling instance runs."""

    interval: Seconds | None = Field(
        default=None, gt=0, description="poll every N seconds / '15m' (default: the connector's)"
    )
    reconcile_interval: Seconds | None = Field(
        default=None, gt=0, description="low-frequency reconciliation poll of webhook sources"
    )
    start_date: Annotated[datetime, BeforeValidator(_start_date)] | None = Field(
        default=None, description="first run backfills from here (date = midnight UTC)"
    )

    def effective_interval(self, default: timedelta) -> timedelta:
        """The interval to schedule, falling back to the connector's `default_interval`."""
        return default if self.interval is None else timedelta(seconds=self.interval)


class _InstanceFile(_Model):
    """The envelope of a connector instance file; ``settings`` is validated separately."""

    id: Slug
    type: str
    enabled: bool
    settings: dict[str, Any] | None = None
    lrs: list[Slug] | None = None
    schedule: ScheduleConfig | None = None
    description: str = ""


class InstanceConfig(_Model):
    """One connector instance (a file in ``connectors/``), its settings already validated."""

    id: Slug = Field(description="unique, URL-safe; the webhook path /webhooks/{id}")
    type: str = Field(description="the connector's entry-point name")
    enabled: bool = Field(description="false: validated, but not run")
    settings: SerializeAsAny[BaseModel] = Field(
        description="an instance of the connector's settings_model"
    )
    lrs: list[Slug] | None = Field(default=None, description="destinations (default: all)")
    schedule: ScheduleConfig | None = None
    description: str = ""
    path: Path | None = Field(default=None, description="the file it came from")


# -- loading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedConfig:
    """A fully validated configuration directory."""

    config_dir: Path
    hub: HubConfig
    instances: Mapping[str, InstanceConfig]
    warnings: tuple[ConfigProblem, ...] = ()
    identity_map: IdentityMap | None = None
    """The parsed identity map, when ``identity.map_file`` is set."""

    @property
    def enabled_instances(self) -> dict[str, InstanceConfig]:
        return {k: v for k, v in self.instances.items() if v.enabled}


def resolve_config_dir(
    explicit: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> Path:
    """``--config DIR`` > ``LXHUB_CONFIG`` > ``./config``."""
    if explicit:
        return Path(explicit)
    environ = os.environ if env is None else env
    return Path(environ.get("LXHUB_CONFIG") or "config")


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, but a key written twice in one mapping is an error, not "last one wins"."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


@dataclass
class _Collector:
    cwd: Path
    errors: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)

    def show(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.cwd))
        except ValueError:
            return str(path)

    def error(self, path: Path, key: KeyPath | str, message: str) -> None:
        kp = key if isinstance(key, str) else format_key_path(key)
        self.errors.append(ConfigProblem(self.show(path), kp, message))

    def warn(self, path: Path, key: KeyPath | str, message: str) -> None:
        kp = key if isinstance(key, str) else format_key_path(key)
        self.warnings.append(ConfigProblem(self.show(path), kp, message))

    def read_yaml(self, path: Path) -> tuple[bool, Any]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.error(path, "", f"cannot read file: {getattr(exc, 'strerror', None) or exc}")
            return False, None
        try:
            return True, yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (safe loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = exc.problem or exc.context or "invalid YAML"
            self.error(path, "", f"YAML syntax error{where}: {what}")
        except yaml.YAMLError as exc:
            self.error(path, "", f"YAML syntax error: {exc}")
        return False, None

    def validation(
        self,
        path: Path,
        exc: ValidationError,
        *,
        model: type[BaseModel],
        data: Any,
        prefix: KeyPath = (),
        skip: set[KeyPath] | None = None,
    ) -> None:
        seen: set[tuple[KeyPath, str]] = set()
        for err in exc.errors(include_url=False, include_input=False):
            loc = _clean_loc(err["loc"], data)
            if skip and any(loc[: len(s)] == s for s in skip):
                continue  # a failed secret reference was already reported there
            message = _message(err, model=model, loc=loc)
            if (loc, message) in seen:
                continue  # union members failing the same way
            seen.add((loc, message))
            self.error(path, (*prefix, *loc), message)


def _clean_loc(loc: tuple[int | str, ...], data: Any) -> KeyPath:
    """Keep the parts of a pydantic location that are keys of the YAML tree `data`; drop the tags
    pydantic adds for union members and validators ('str', 'function-after[...]').

    A part that is not in the tree is kept when it can only be a key: a missing or unknown key of
    a mapping, or anything that does not look like a tag.
    """
    out: list[str | int] = []
    node: Any = data
    for part in loc:
        is_map = isinstance(node, dict)
        in_tree = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if in_tree:
            node = node[part]
            out.append(part)
            continue
        if isinstance(part, str) and ("[" in part or (part in _TYPE_TAGS and not is_map)):
            continue  # a tag: only a mapping can miss (or have an unknown) key
        node = None
        out.append(part)
    return tuple(out)


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "url", "datetime", "date"}


def _message(err: Any, *, model: type[BaseModel], loc: KeyPath) -> str:
    kind = err["type"]
    if kind == "extra_forbidden" and loc:
        key = str(loc[-1])
        allowed = _fields_at(model, loc[:-1])
        hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        text = f"unknown key {key!r}"
        if hint:
            return f"{text}; did you mean {hint[0]!r}?"
        if allowed:
            return f"{text}; allowed keys: {', '.join(sorted(allowed))}"
        return text
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    for lead in ("Value error, ", "Assertion failed, "):
        if msg.startswith(lead):
            msg = msg[len(lead) :]
    return msg


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _fields_at(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys allowed at `loc` inside `model` (for "did you mean" hints)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if info is None:
            return []
        models = _models_in(info.annotation)
        origin = typing.get_origin(info.annotation)
        if origin is dict or origin is types.MappingProxyType:
            return []
        current = models[0] if models else None
    if current is None:
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


def load_config(
    config_dir: Path, *, registry: Registry, env: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Load and validate a configuration directory; raise `ConfigInvalid` listing every problem.

    Args:
        config_dir: the directory holding ``hub.yaml`` and ``connectors/``.
        registry: the connector plugins available (``get_registry()`` in services).
        env: the environment for ``${VAR}`` references and ``LXHUB_*`` overrides
            (default: ``os.environ``).

    Returns:
        The validated `LoadedConfig`, with the non-fatal problems in ``warnings``.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    config_dir = Path(config_dir)
    out = _Collector(cwd=Path.cwd().resolve())
    if not config_dir.is_dir():
        out.error(
            config_dir,
            "",
            "config directory does not exist (use --config DIR or set LXHUB_CONFIG)",
        )
        raise ConfigInvalid(out.errors)
    abs_dir = config_dir.resolve()

    hub, lrs_names, identity_map = _load_hub(config_dir, abs_dir, environ, out)
    instances = _load_instances(config_dir, abs_dir, environ, registry, lrs_names, out)

    if hub is not None:
        for i, lrs in enumerate(hub.lrs):
            for j, inst in enumerate(lrs.routes.instances or []):
                if inst not in instances:
                    out.warn(
                        config_dir / "hub.yaml",
                        ("lrs", i, "routes", "instances", j),
                        f"no connector instance {inst!r} is configured; this route matches nothing",
                    )
        if not any(lrs.enabled for lrs in hub.lrs):
            out.warn(config_dir / "hub.yaml", "lrs", "no LRS is enabled: statements only wait")

    if out.errors or hub is None:
        raise ConfigInvalid(out.errors, warnings=tuple(out.warnings))
    return LoadedConfig(
        config_dir=abs_dir,
        hub=hub,
        instances=types.MappingProxyType(instances),
        warnings=tuple(out.warnings),
        identity_map=identity_map,
    )


_LITERAL_HINT = (
    "secret written as a literal; use ${VAR} (or ${VAR:-default}) or {file: /run/secrets/name} "
    "so it stays out of the config files"
)


def _resolve(
    path: Path,
    raw: Any,
    environ: Mapping[str, str],
    abs_dir: Path,
    out: _Collector,
) -> tuple[Any, set[KeyPath], set[KeyPath]]:
    res = resolve_refs(raw, env=environ, base_dir=abs_dir)
    for problem in res.problems:
        out.error(path, problem.path, problem.message)
    return res.value, res.ref_paths, res.failed_paths


def _load_hub(
    config_dir: Path, abs_dir: Path, environ: Mapping[str, str], out: _Collector
) -> tuple[HubConfig | None, set[str] | None, IdentityMap | None]:
    path = config_dir / "hub.yaml"
    if not path.is_file():
        alt = config_dir / "hub.yml"
        if alt.is_file():
            path = alt
        else:
            out.error(path, "", "missing: every config directory needs a hub.yaml")
            return None, None, None
    ok, raw = out.read_yaml(path)
    if not ok:
        return None, None, None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        out.error(path, "", f"expected a mapping of keys, got a {type(raw).__name__}")
        return None, None, None
    data, refs, failed = _resolve(path, raw, environ, abs_dir, out)
    for key, var in (("broker_url", "LXHUB_BROKER_URL"), ("store_url", "LXHUB_STORE_URL")):
        if environ.get(var):
            data[key] = environ[var]
    if environ.get("LXHUB_DATA_DIR"):
        # A shell value: relative to the working directory, like any path given on a command line.
        data["data_dir"] = str(Path(environ["LXHUB_DATA_DIR"]).absolute())
    lrs_names = _raw_lrs_names(data)
    try:
        hub = HubConfig.model_validate(
            data, context={"config_dir": abs_dir, "data_base": abs_dir.parent}
        )
    except ValidationError as exc:
        out.validation(path, exc, model=HubConfig, data=data, skip=failed)
        return None, lrs_names, None
    finally:
        for p in literal_secret_paths(HubConfig, raw=raw, ref_paths=refs):
            out.warn(path, p, _LITERAL_HINT)
    identity_map: IdentityMap | None = None
    if hub.identity.map_file is not None:
        from hub.identity import IdentityMap, IdentityMapError

        try:
            identity_map = IdentityMap.load(hub.identity.map_file)
        except IdentityMapError as exc:
            for where, message in exc.problems:
                out.error(hub.identity.map_file, where, message)
    return hub, lrs_names, identity_map


def _raw_lrs_names(data: dict[str, Any]) -> set[str] | None:
    lrs = data.get("lrs")
    if not isinstance(lrs, list):
        return None
    return {e["name"] for e in lrs if isinstance(e, dict) and isinstance(e.get("name"), str)}


def _load_instances(
    config_dir: Path,
    abs_dir: Path,
    environ: Mapping[str, str],
    registry: Registry,
    lrs_names: set[str] | None,
    out: _Collector,
) -> dict[str, InstanceConfig]:
    folder = config_dir / "connectors"
    instances: dict[str, InstanceConfig] = {}
    first_file: dict[str, Path] = {}
    if not folder.is_dir():
        return instances
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )
    for path in files:
        inst = _load_instance(path, abs_dir, environ, registry, lrs_names, out)
        if inst is None:
            continue
        if inst.id in first_file:
            out.error(
                path,
                "id",
                f"duplicate connector instance id {inst.id!r}: also used by "
                f"{out.show(first_file[inst.id])}",
            )
            continue
        first_file[inst.id] = path
        instances[inst.id] = inst
    return instances


def _load_instance(
    path: Path,
    abs_dir: Path,
    environ: Mapping[str, str],
    registry: Registry,
    lrs_names: set[str] | None,
    out: _Collector,
) -> InstanceConfig | None:
    ok, raw = out.read_yaml(path)
    if not ok:
        return None
    if not isinstance(raw, dict):
        what = "the file is empty" if raw is None else f"got a {type(raw).__name__}"
        out.error(path, "", f"expected a mapping with id, type, enabled and settings; {what}")
        return None
    before = len(out.errors)
    data, refs, failed = _resolve(path, raw, environ, abs_dir, out)
    enabled = data.get("enabled") is True or data.get("enabled") is None

    envelope: _InstanceFile | None = None
    try:
        envelope = _InstanceFile.model_validate(data)
    except ValidationError as exc:
        out.validation(path, exc, model=_InstanceFile, data=data, skip=failed)

    # The type and the settings are checked even when the envelope has other problems, so an
    # admin sees everything at once.
    type_name = data.get("type")
    settings_raw = data.get("settings")
    settings = None
    plugin = None
    if isinstance(type_name, str):
        plugin = registry.get(type_name)
        if plugin is None:
            report = out.error if enabled else out.warn
            report(path, "type", _unknown_type(type_name, registry, enabled=enabled))
    if plugin is not None and (settings_raw is None or isinstance(settings_raw, dict)):
        model = plugin.cls.settings_model
        try:
            settings = model.model_validate(settings_raw or {})
        except ValidationError as exc:
            sub_failed = {f[1:] for f in failed if f[:1] == ("settings",)}
            out.validation(
                path,
                exc,
                model=model,
                data=settings_raw or {},
                prefix=("settings",),
                skip=sub_failed,
            )
        sub_refs = {r[1:] for r in refs if r[:1] == ("settings",)}
        for p in literal_secret_paths(model, raw=raw.get("settings"), ref_paths=sub_refs):
            out.warn(path, ("settings", *p), _LITERAL_HINT)

    raw_lrs = data.get("lrs")
    if lrs_names is not None and isinstance(raw_lrs, list):
        for i, name in enumerate(raw_lrs):
            if isinstance(name, str) and name not in lrs_names:
                out.error(
                    path,
                    ("lrs", i),
                    f"no LRS named {name!r} in hub.yaml"
                    + _did_you_mean(name, lrs_names)
                    + f" (defined: {', '.join(sorted(lrs_names)) or 'none'})",
                )
    polls = plugin is not None and Capability.POLLING in plugin.capabilities
    if envelope is not None and plugin is not None and envelope.schedule is not None and not polls:
        out.warn(
            path,
            "schedule",
            f"connector type {type_name!r} does not poll; the schedule is ignored",
        )
    if len(out.errors) > before or envelope is None or settings is None:
        return None
    return InstanceConfig(
        id=envelope.id,
        type=envelope.type,
        enabled=envelope.enabled,
        settings=settings,
        lrs=envelope.lrs,
        schedule=envelope.schedule,
        description=envelope.description,
        path=path.resolve(),
    )


def _did_you_mean(word: str, options: set[str] | list[str]) -> str:
    hint = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def _unknown_type(name: str, registry: Registry, *, enabled: bool) -> str:
    if name in registry.broken:
        text = f"connector plugin {name!r} is installed but broken: {registry.broken[name].error}"
    else:
        installed = ", ".join(registry) or "none"
        text = (
            f"unknown connector type {name!r}{_did_you_mean(name, list(registry))} "
            f"(installed types: {installed})"
        )
    if not enabled:
        text += "; the instance is disabled, so this is only a warning"
    return text
