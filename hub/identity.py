"""Actor resolution: one identifier per person, whatever the source calls them (DESIGN §4).

`IdentityResolver.agent(person, source=..., home_page=...)` tries, in order:

1. the email the source put on the event (`Person.email`);
2. the admin-maintained identity map (``identity.map_file``: source + user id -> email, name);
3. the identity cache in the hub's store (namespace ``identity:{source}``, TTL ``cache_ttl``);
4. the connector's ``lookup_user`` (I/O), whose answer is cached (a "no email" answer too, for at
   most an hour, so an unknown user does not cost one API call per event);
5. the ``unresolved`` policy: ``account`` -> ``{homePage: home_page, name: source user id}``,
   ``quarantine`` -> `UnresolvedActor` (the pipeline dead-letters the event for replay).

Emails are trimmed and lower-cased. The actor form is ``mbox`` (``mailto:``), ``mbox_sha1sum``
(SHA-1 hex of the ``mailto:`` IRI) or ``account`` (always the source's user id on its home page,
even when an email is known; no user id -> `UnresolvedActor`). Nothing is ever dropped silently:
an actor is either resolved or the error says why. User events refresh the cache through
`IdentityResolver.remember`.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from hub.connector import Person
from hub.errors import ConfigError, UnresolvedActor
from hub.xapi import Account, Agent

if TYPE_CHECKING:
    from hub.config import IdentityConfig

logger = logging.getLogger(__name__)

Lookup = Callable[[str, str], Person | None]
"""``lookup(source, source_user_id)``: ask the source's user API (a connector's lookup_user)."""

AGENT_CACHE_SIZE = 10_000
"""Most Agents kept per resolver (per process) for reuse."""

NEGATIVE_TTL = 3600.0
"""Longest time a "the source knows no email for this user" answer is cached, in seconds."""

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\Z")


def normalize_email(value: str | None) -> str | None:
    """Trim, drop a ``mailto:`` prefix, lower-case; None when it is not an email address."""
    if value is None:
        return None
    text = value.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:].strip()
    text = text.lower()
    return text if _EMAIL.match(text) else None


def mbox_sha1sum(email: str) -> str:
    """SHA-1 hex of the ``mailto:`` IRI of a (normalized) email, as xAPI's ``mbox_sha1sum``."""
    return hashlib.sha1(f"mailto:{email}".encode(), usedforsecurity=False).hexdigest()


def _clean_name(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return text or None


# -- the identity map file -------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityEntry:
    """One row of the identity map."""

    source: str
    user_id: str
    email: str
    name: str | None = None


def _map_key(source: str, user_id: str) -> tuple[str, str]:
    """Identity-map keys match case-insensitively: sources send the same GUID in either case
    (Cornerstone's upper-case `targetUserGuid` vs the lower case the connector keys on), and no
    source the hub knows distinguishes user ids by case alone."""
    return source.strip().lower(), user_id.strip().lower()


class IdentityMapError(ConfigError):
    """The identity map file has problems; `problems` holds (where, message) pairs."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(f"{w}: {m}" if w else m for w, m in problems))


_COLUMNS = ("source", "user_id", "email", "name")
_REQUIRED = ("source", "user_id", "email")


class IdentityMap:
    """Admin-maintained source user id -> email (and name), per source."""

    def __init__(self, entries: Iterable[IdentityEntry] = ()) -> None:
        self._by_key: dict[tuple[str, str], IdentityEntry] = {}
        for e in entries:
            self._by_key[_map_key(e.source, e.user_id)] = e

    def get(self, source: str, user_id: str) -> IdentityEntry | None:
        return self._by_key.get(_map_key(source, user_id))

    def __len__(self) -> int:
        return len(self._by_key)

    @classmethod
    def load(cls, path: Path) -> IdentityMap:
        """Read a CSV (header ``source,user_id,email,name``; ``#`` lines are comments) or a YAML
        list of mappings with those keys. Raises `IdentityMapError` listing every bad row."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise IdentityMapError(path, [("", "identity map file does not exist")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise IdentityMapError(path, [("", f"cannot read identity map: {reason}")]) from None
        if path.suffix.lower() in (".yaml", ".yml"):
            rows, problems = _yaml_rows(text)
        else:
            rows, problems = _csv_rows(text)
        entries: list[IdentityEntry] = []
        seen: dict[tuple[str, str], str] = {}
        for where, row in rows:
            entry = _entry(row, where, problems)
            if entry is None:
                continue
            key = _map_key(entry.source, entry.user_id)
            if key in seen:
                problems.append(
                    (
                        where,
                        f"{entry.source} user {entry.user_id!r} is already mapped at {seen[key]}",
                    )
                )
                continue
            seen[key] = where
            entries.append(entry)
        if problems:
            raise IdentityMapError(path, problems)
        return cls(entries)


def _csv_rows(text: str) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return [], problems
    reader = csv.reader(io.StringIO("\n".join(line for _, line in lines)))
    records = list(reader)
    header = [h.strip().lower() for h in records[0]]
    head_where = f"line {lines[0][0]}"
    for h in header:
        if h not in _COLUMNS:
            hint = difflib.get_close_matches(h, _COLUMNS, n=1, cutoff=0.6)
            problems.append(
                (
                    head_where,
                    f"unknown column {h!r}"
                    + (
                        f"; did you mean {hint[0]!r}?"
                        if hint
                        else f"; columns: {','.join(_COLUMNS)}"
                    ),
                )
            )
    for col in _REQUIRED:
        if col not in header:
            problems.append((head_where, f"missing column {col!r} (header: {','.join(_COLUMNS)})"))
    if problems:
        return [], problems
    rows: list[tuple[str, dict[str, Any]]] = []
    for (n, _), record in zip(lines[1:], records[1:], strict=False):
        where = f"line {n}"
        if len(record) > len(header):
            problems.append((where, f"{len(record)} fields but the header has {len(header)}"))
            continue
        rows.append((where, dict(zip(header, record, strict=False))))
    return rows, problems


def _yaml_rows(text: str) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [], [("", f"YAML syntax error: {exc}")]
    if data is None:
        return [], []
    if not isinstance(data, list):
        return [], [("", "expected a list of {source, user_id, email, name} mappings")]
    rows: list[tuple[str, dict[str, Any]]] = []
    problems: list[tuple[str, str]] = []
    for i, item in enumerate(data):
        where = f"[{i}]"
        if not isinstance(item, dict):
            problems.append((where, "expected a mapping with source, user_id, email, name"))
            continue
        for key in item:
            if key not in _COLUMNS:
                hint = difflib.get_close_matches(str(key), _COLUMNS, n=1, cutoff=0.6)
                problems.append(
                    (
                        f"{where}.{key}",
                        "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                    )
                )
        rows.append((where, item))
    return rows, problems


def _entry(
    row: dict[str, Any], where: str, problems: list[tuple[str, str]]
) -> IdentityEntry | None:
    values = {k: (str(v).strip() if v is not None else "") for k, v in row.items()}
    bad = False
    for col in _REQUIRED:
        if not values.get(col):
            problems.append((where, f"{col} is empty"))
            bad = True
    if bad:
        return None
    email = normalize_email(values["email"])
    if email is None:
        problems.append((where, "email is not an email address"))
        return None
    return IdentityEntry(
        source=values["source"],
        user_id=values["user_id"],
        email=email,
        name=_clean_name(values.get("name")),
    )


# -- the resolver --------------------------------------------------------------------------------


class IdentityCache(Protocol):
    """The part of `hub.store.Store` the resolver uses."""

    def kv_get(self, namespace: str, key: str) -> str | None: ...

    def kv_set(
        self, namespace: str, key: str, value: str, *, ttl_seconds: float | None = None
    ) -> None: ...


@dataclass(frozen=True)
class _Known:
    email: str | None
    name: str | None


class IdentityResolver:
    """Resolves a `Person` to an xAPI `Agent`; implements `hub.mapping.ActorResolver`."""

    def __init__(
        self,
        config: IdentityConfig,
        *,
        store: IdentityCache,
        identity_map: IdentityMap | None = None,
        lookup: Lookup | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.identity_map = identity_map or IdentityMap()
        self.lookup = lookup
        # Agents are frozen, and the same few people recur in every batch: building and
        # validating the model again for each statement was a measured share of mapping time.
        self._agents: dict[tuple[str, str, str | None], Agent] = {}

    @classmethod
    def from_config(
        cls,
        config: IdentityConfig,
        *,
        store: IdentityCache,
        lookup: Lookup | None = None,
        config_dir: Path | None = None,
        identity_map: IdentityMap | None = None,
    ) -> IdentityResolver:
        """Build from ``hub.yaml``'s ``identity`` section, reading ``map_file`` (relative paths
        against `config_dir`) unless an already-parsed `identity_map` is given."""
        if identity_map is None and config.map_file is not None:
            path = config.map_file
            if not path.is_absolute() and config_dir is not None:
                path = config_dir / path
            identity_map = IdentityMap.load(path)
        return cls(config, store=store, identity_map=identity_map, lookup=lookup)

    # -- ActorResolver ----------------------------------------------------------------------------

    def agent(self, person: Person, *, source: str, home_page: str) -> Agent:
        """Resolve `person` (seen in `source`) to an Agent; raise `UnresolvedActor` when the
        policy is ``quarantine`` and no email is found, or when no identifier can be formed."""
        uid = (person.source_user_id or "").strip() or None
        name = _clean_name(person.name)
        email = normalize_email(person.email)
        if person.email and email is None:
            logger.warning(
                "ignoring a malformed email for %s user %s",
                source,
                uid or "<no id>",
                extra={"source": source},
            )

        if self.config.actor_form == "account":
            if uid is None:
                raise UnresolvedActor(source, _ref(person))
            if name is None and self.config.include_name:
                name = self._known_name(source, uid)
            return self._account(home_page, uid, name)

        if email is None and uid is not None:
            known = self._from_map(source, uid) or self._from_cache(source, uid)
            if known is None:
                known = self._from_lookup(source, uid)
            if known is not None:
                email = known.email
                name = name or known.name
        elif name is None and uid is not None:
            known = self._from_map(source, uid)  # in memory: a free name, no I/O
            name = known.name if known else None
        if email is not None:
            return self._email_agent(email, name if self.config.include_name else None)

        if self.config.unresolved == "account" and uid is not None:
            return self._account(home_page, uid, name)
        raise UnresolvedActor(source, _ref(person))

    def remember(self, person: Person, source: str) -> None:
        """Refresh the cache from a user event (``user.created``/``user.updated``). A person
        without a source user id, or with nothing new to say, changes nothing."""
        uid = (person.source_user_id or "").strip()
        if not uid:
            return
        email = normalize_email(person.email)
        name = _clean_name(person.name)
        if email is None and name is None:
            return
        if email is None:
            cached = self._from_cache(source, uid)
            email = cached.email if cached else None
        self._write(source, uid, _Known(email, name), ttl=self.config.cache_ttl)

    # -- steps ----------------------------------------------------------------------------------

    def _email_agent(self, email: str, name: str | None) -> Agent:
        key = ("mbox", email, name)
        agent = self._agents.get(key)
        if agent is None:
            if self.config.actor_form == "mbox_sha1sum":
                agent = Agent(mbox_sha1sum=mbox_sha1sum(email), name=name)
            else:
                agent = Agent(mbox=f"mailto:{email}", name=name)
            self._remember_agent(key, agent)
        return agent

    def _account(self, home_page: str, uid: str, name: str | None) -> Agent:
        name = name if self.config.include_name else None
        key = (home_page, uid, name)
        agent = self._agents.get(key)
        if agent is None:
            agent = Agent(account=Account(home_page=home_page, name=uid), name=name)
            self._remember_agent(key, agent)
        return agent

    def _remember_agent(self, key: tuple[str, str, str | None], agent: Agent) -> None:
        if len(self._agents) >= AGENT_CACHE_SIZE:
            self._agents.clear()  # bounded; refilling costs one model build per person
        self._agents[key] = agent

    def _known_name(self, source: str, uid: str) -> str | None:
        known = self._from_map(source, uid) or self._from_cache(source, uid)
        return known.name if known else None

    def _from_map(self, source: str, uid: str) -> _Known | None:
        entry = self.identity_map.get(source, uid)
        return _Known(entry.email, entry.name) if entry else None

    def _from_cache(self, source: str, uid: str) -> _Known | None:
        raw = self.store.kv_get(_namespace(source), uid)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            email, name = data.get("email"), data.get("name")
        except (ValueError, AttributeError):
            logger.warning("ignoring a corrupt identity cache entry for %s user %s", source, uid)
            return None
        return _Known(
            normalize_email(email) if isinstance(email, str) else None,
            name if isinstance(name, str) else None,
        )

    def _from_lookup(self, source: str, uid: str) -> _Known | None:
        if self.lookup is None:
            return None
        found = self.lookup(source, uid)  # TransientError etc. propagate: the task retries
        email = normalize_email(found.email) if found else None
        known = _Known(email, _clean_name(found.name) if found else None)
        ttl = self.config.cache_ttl if email else min(self.config.cache_ttl, NEGATIVE_TTL)
        self._write(source, uid, known, ttl=ttl)
        return known

    def _write(self, source: str, uid: str, known: _Known, *, ttl: float) -> None:
        value = json.dumps({"email": known.email, "name": known.name}, sort_keys=True)
        self.store.kv_set(_namespace(source), uid, value, ttl_seconds=ttl)


def _namespace(source: str) -> str:
    return f"identity:{source}"


def _ref(person: Person) -> str:
    return person.source_user_id or "<no user id>"
