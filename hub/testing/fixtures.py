"""Fixture-file helpers for connector tests: JSON fixtures, golden files, strict respx routers.

Everything here is plain functions and small classes, usable from any test (the conformance kit
in `hub.testing.suite` and the pytest fixtures in `hub.testing.pytest_plugin` are built on it):

* `load_json_fixture` / `json_response` / `mock_json_pages`: API responses kept as files under
  `fixtures/api/`, served by respx routes (page 1, page 2, last as a `side_effect` list).
* `strict_router()`: a respx router with `assert_all_called=True` AND `assert_all_mocked=True`
  (the default `respx.mock` router disables `assert_all_called`).
* `assert_golden()`: compare JSON output with `expected/<name>.json`; on mismatch (or when the
  expected file is missing) write `<name>.actual.json` next to it and fail with a diff.
* `block_network()`: any real socket connection raises `NetworkBlocked`.
* `StaticActorResolver`: a no-I/O `ActorResolver` with a chosen IFI strategy.
* `MockLrs`: an in-memory LRS on a respx route (identical re-send = already stored, 409 on drift).
* `temp_sqlite_store()`: the SQLite `Store` in a temporary directory.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import httpx
import respx
from pydantic import JsonValue
from respx.models import AllMockedAssertionError, ResolvedRoute

from hub.clock import FrozenClock
from hub.errors import UnresolvedActor
from hub.store.base import Store
from hub.xapi import Account, Agent

__all__ = [
    "DEFAULT_NOW",
    "FrozenClock",
    "IfiStrategy",
    "MockLrs",
    "NetworkBlocked",
    "MemoryState",
    "StaticActorResolver",
    "StrictRouter",
    "actual_path",
    "assert_golden",
    "block_network",
    "dump_json",
    "json_response",
    "load_json_fixture",
    "mbox_sha1sum",
    "mock_json_pages",
    "strict_router",
    "temp_sqlite_store",
]

DEFAULT_NOW = datetime(2025, 7, 1, 12, 0, 0, tzinfo=UTC)
"""The frozen "now" of the kit: fixtures should hold events shortly before it."""

IfiStrategy = Literal["mbox", "mbox_sha1sum", "account"]
"""The actor identifier forms a tenant may choose (vendors.md 1.2)."""


# --- JSON fixture files ---------------------------------------------------------------------


def load_json_fixture(path: Path | str, *names: str) -> JsonValue:
    """Read a JSON fixture: `load_json_fixture(FIXTURES, "api", "page1.json")`.

    Fails with the file name (not a bare `JSONDecodeError`) when the file is missing or invalid.
    """
    file = Path(path).joinpath(*names)
    if not file.is_file():
        raise AssertionError(f"fixture file {file} does not exist")
    try:
        return cast(JsonValue, json.loads(file.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise AssertionError(f"fixture file {file} is not valid JSON: {exc}") from None


def dump_json(value: object) -> str:
    """The golden-file form: sorted keys, 2-space indent, UTF-8, trailing newline."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def actual_path(expected: Path) -> Path:
    """Where `assert_golden` writes the actual output: `<name>.actual.json` beside `<name>.json`."""
    return expected.with_name(expected.name.removesuffix(".json") + ".actual.json")


def assert_golden(actual: object, expected_file: Path, *, what: str = "output") -> None:
    """Assert that `actual` (JSON data) equals the JSON in `expected_file`.

    On mismatch, or when `expected_file` does not exist, the actual output is written to
    `<name>.actual.json` beside it and the assertion fails with a unified diff. Review it and
    rename it to `<name>.json` to accept. A stale `.actual.json` is removed once things match.
    """
    out = actual_path(expected_file)
    rendered = dump_json(actual)
    if not expected_file.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(rendered, encoding="utf-8")
        raise AssertionError(
            f"missing expected file {expected_file}: actual {what} written to {out.name}; "
            f"review it and rename it to {expected_file.name} to accept it"
        )
    try:
        expected = json.loads(expected_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AssertionError(f"expected file {expected_file} is not valid JSON: {exc}") from None
    if expected == json.loads(rendered):
        out.unlink(missing_ok=True)
        return
    out.write_text(rendered, encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            dump_json(expected).splitlines(keepends=True),
            rendered.splitlines(keepends=True),
            fromfile=str(expected_file.name),
            tofile=str(out.name),
            n=2,
        )
    )
    if len(diff) > 4000:
        diff = diff[:4000] + "\n... (diff truncated)\n"
    raise AssertionError(
        f"{what} differs from {expected_file}; actual written to {out}.\n"
        f"If the change is intended, replace the expected file with it.\n{diff}"
    )


# --- HTTP: strict respx routers and JSON responses ------------------------------------------


class StrictRouter(respx.MockRouter):
    """A respx router that fails on any unmocked request AND on any route left uncalled.

    It also remembers unmocked requests in `unmocked`, so a connector that swallows respx's
    `AllMockedAssertionError` (a broad `except Exception`) is still caught afterwards.
    """

    def __init__(self, *, base_url: str | None = None) -> None:
        super().__init__(assert_all_called=True, assert_all_mocked=True, base_url=base_url)
        self.unmocked: list[httpx.Request] = []

    def resolve(self, request: httpx.Request) -> ResolvedRoute:
        try:
            return super().resolve(request)
        except AllMockedAssertionError:
            self.unmocked.append(request)
            raise

    def uncalled_routes(self) -> list[str]:
        """Readable descriptions of the routes nobody requested."""
        return [_describe_route(route) for route in self.routes if not route.called]

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering from this router (for an injected `httpx.Client`)."""
        return httpx.MockTransport(self.handler)


def _describe_route(route: respx.Route) -> str:
    return route.name or repr(route.pattern)


def strict_router(*, base_url: str | None = None) -> StrictRouter:
    """A `StrictRouter`. Use it as a context manager (`with strict_router() as router:`):
    while active it patches every httpx transport, so real network calls cannot slip through.
    """
    return StrictRouter(base_url=base_url)


def json_response(
    body: JsonValue | Path,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An httpx response with a JSON body given inline or as a fixture file path."""
    value = load_json_fixture(body) if isinstance(body, Path) else body
    return httpx.Response(status, json=value, headers=dict(headers or {}))


def mock_json_pages(
    router: respx.MockRouter,
    method: str,
    url: str,
    pages: Sequence[JsonValue | Path | httpx.Response],
    **lookups: Any,
) -> respx.Route:
    """Register one route answering with `pages` in order (page 1, page 2, last; a 429 first).

    Each page is inline JSON, a fixture `Path`, or a ready `httpx.Response`. Extra `lookups`
    go to respx (`params={"page": "2"}`, `headers=...`). Match on the page parameter when you
    can, so a connector that ignores its cursor hits an unmocked URL instead of page 2.
    """
    responses = [p if isinstance(p, httpx.Response) else json_response(p) for p in pages]
    return router.route(method=method, url=url, **lookups).mock(side_effect=responses)


# --- network blocking -----------------------------------------------------------------------


class NetworkBlocked(AssertionError):
    """A test tried to open a real network connection."""


_LOCAL_FAMILIES = {getattr(socket, "AF_UNIX", None)} - {None}


@contextmanager
def block_network() -> Iterator[None]:
    """Make every real socket connection (except AF_UNIX) raise `NetworkBlocked`.

    respx-mocked httpx calls never reach a socket, so they are unaffected.
    """
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def _guard(sock: socket.socket, address: object) -> None:
        if sock.family not in _LOCAL_FAMILIES:
            sock.close()  # socket.create_connection() leaks it on a non-OSError otherwise
            raise NetworkBlocked(
                f"real network access to {address!r} during a connector test; mock it with respx"
            )

    def connect(sock: socket.socket, address: Any) -> None:
        _guard(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        _guard(sock, address)
        return real_connect_ex(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


# --- identity ---------------------------------------------------------------------------------


def mbox_sha1sum(email: str) -> str:
    """SHA-1 hex of the `mailto:` IRI of a trimmed, lower-cased email (vendors.md 1.2)."""
    iri = f"mailto:{email.strip().lower()}"
    return hashlib.sha1(iri.encode(), usedforsecurity=False).hexdigest()


@dataclass
class StaticActorResolver:
    """An `ActorResolver` for tests: no I/O, a fixed directory, one IFI strategy.

    * `mbox`: `mailto:` of the person's email (or the directory's), else `account`.
    * `mbox_sha1sum`: the SHA-1 of that `mailto:`, else `account`.
    * `account`: `{homePage, name=<source user id>}` always.

    With no email and no source user id it raises `UnresolvedActor`. `directory` maps source
    user ids to emails (what the hub's identity cache would know); `seen` records every person
    resolved, for assertions.
    """

    strategy: IfiStrategy = "mbox"
    directory: Mapping[str, str] = field(default_factory=dict)
    seen: list[object] = field(default_factory=list)

    def agent(self, person: Any, *, source: str, home_page: str) -> Agent:
        self.seen.append(person)
        user_id: str | None = getattr(person, "source_user_id", None)
        email: str | None = getattr(person, "email", None)
        name: str | None = getattr(person, "name", None)
        if not email and user_id is not None:
            email = self.directory.get(user_id)
        if email and self.strategy == "mbox":
            return Agent(name=name, mbox=f"mailto:{email.strip().lower()}")
        if email and self.strategy == "mbox_sha1sum":
            return Agent(name=name, mbox_sha1sum=mbox_sha1sum(email))
        if user_id:
            return Agent(name=name, account=Account(home_page=home_page, name=user_id))
        raise UnresolvedActor(source, repr(name or "<anonymous>"))


# --- a mocked LRS ---------------------------------------------------------------------------


@dataclass
class MockLrs:
    """An in-memory LRS behind a respx route on `POST {endpoint}/statements`.

    Semantics of a conformant LRS: new ids are stored (200, the ids); a statement whose id is
    already stored with the same content counts as already stored (200); a different statement
    under a stored id is a `409` (nothing stored from that batch). Counters: `stored`,
    `already_stored`, `conflicts`; `posts` keeps every request body.
    """

    endpoint: str = "https://lrs.example.test/xapi"
    statements: dict[str, JsonValue] = field(default_factory=dict)
    stored: int = 0
    already_stored: int = 0
    conflicts: int = 0
    posts: list[bytes] = field(default_factory=list)

    @property
    def statements_url(self) -> str:
        return self.endpoint.rstrip("/") + "/statements"

    def install(self, router: respx.MockRouter) -> respx.Route:
        """Register the LRS route on `router` (strict routers require at least one POST)."""
        return router.post(self.statements_url).mock(side_effect=self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.posts.append(body)
        if request.headers.get("x-experience-api-version") is None:
            return httpx.Response(400, json={"message": "missing X-Experience-API-Version"})
        data = json.loads(body)
        batch: list[Any] = data if isinstance(data, list) else [data]
        for item in batch:
            sid = item.get("id") if isinstance(item, dict) else None
            if not isinstance(sid, str):
                return httpx.Response(400, json={"message": "statement without id"})
            held = self.statements.get(sid)
            if held is not None and held != item:
                self.conflicts += 1
                return httpx.Response(409, json={"message": f"{sid} exists with other content"})
        ids: list[str] = []
        for item in batch:
            sid = item["id"]
            if sid in self.statements:
                self.already_stored += 1
            else:
                self.statements[sid] = item
                self.stored += 1
            ids.append(sid)
        return httpx.Response(200, json=ids)


# --- small state --------------------------------------------------------------------------


@dataclass
class MemoryState:
    """An in-memory `KeyValue` for a connector runtime (TTLs are ignored)."""

    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str, *, ttl_seconds: float | None = None) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)

    def compare_and_set(
        self, key: str, expected: str | None, value: str, *, ttl_seconds: float | None = None
    ) -> bool:
        if self.values.get(key) != expected:
            return False
        self.values[key] = value
        return True


@dataclass
class MemoryDedupeStore:
    """An in-memory `DedupeStore` for running a connector through the real `Receiver`."""

    keys: dict[tuple[str, str], float] = field(default_factory=dict)
    """(namespace, key) -> the TTL it was marked with (TTLs are not enforced)."""

    def mark_seen(self, namespace: str, key: str, *, ttl_seconds: float) -> bool:
        if (namespace, key) in self.keys:
            return False
        self.keys[(namespace, key)] = ttl_seconds
        return True

    def mark_seen_many(
        self, namespace: str, keys: Sequence[str], *, ttl_seconds: float
    ) -> list[bool]:
        return [self.mark_seen(namespace, key, ttl_seconds=ttl_seconds) for key in keys]

    def unmark_seen(self, namespace: str, key: str) -> None:
        self.keys.pop((namespace, key), None)


# --- the SQLite store ------------------------------------------------------------------------


def temp_sqlite_store(directory: Path) -> Store:
    """The hub's SQLite `Store` in `directory` (e.g. pytest's `tmp_path`); close it after use."""
    from hub.store.sqlite import SqliteStore  # imported late: optional for the rest of the kit

    store: Store = SqliteStore.from_url(f"sqlite:///{directory / 'state.db'}")
    return store
