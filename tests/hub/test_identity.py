"""hub.identity: actor forms, the resolution order, the cache and the unresolved policy."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import IdentityConfig
from hub.connector import Person
from hub.errors import TransientError, UnresolvedActor
from hub.identity import (
    IdentityEntry,
    IdentityMap,
    IdentityMapError,
    IdentityResolver,
    mbox_sha1sum,
    normalize_email,
)
from hub.store.sqlite import SqliteStore
from hub.xapi import Account, Agent

HOME = "https://acme.docebosaas.com"


class SpyStore:
    """Wraps the real SQLite store and records the TTLs written."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.ttls: list[tuple[str, str, float | None]] = []

    def kv_get(self, namespace: str, key: str) -> str | None:
        return self.store.kv_get(namespace, key)

    def kv_set(
        self, namespace: str, key: str, value: str, *, ttl_seconds: float | None = None
    ) -> None:
        self.ttls.append((namespace, key, ttl_seconds))
        self.store.kv_set(namespace, key, value, ttl_seconds=ttl_seconds)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SpyStore]:
    real = SqliteStore(tmp_path / "state.sqlite")
    yield SpyStore(real)
    real.close()


class Lookups:
    def __init__(self, answers: dict[str, Person | None]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def __call__(self, source: str, user_id: str) -> Person | None:
        self.calls.append((source, user_id))
        return self.answers.get(user_id)


def resolver(store: SpyStore, lookup: Lookups | None = None, **config: object) -> IdentityResolver:
    ident_map = IdentityMap([IdentityEntry("docebo", "7", "mapped@example.com", "Mapped Person")])
    return IdentityResolver(
        IdentityConfig.model_validate(config), store=store, identity_map=ident_map, lookup=lookup
    )


def test_sha1_vector() -> None:
    assert mbox_sha1sum("ada@example.com") == "72ac10875be5a7770a4f31058ea797edb8e55020"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("mailto:Ada@example.com", "ada@example.com"),
        ("not an email", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email(raw: str | None, normal: str | None) -> None:
    assert normalize_email(raw) == normal


def test_actor_forms(store: SpyStore) -> None:
    person = Person(source_user_id="42", email=" Ada@Example.com ", name="Ada Lovelace")
    assert resolver(store).agent(person, source="docebo", home_page=HOME) == Agent(
        mbox="mailto:ada@example.com", name="Ada Lovelace"
    )
    assert resolver(store, actor_form="mbox_sha1sum").agent(
        person, source="docebo", home_page=HOME
    ) == Agent(mbox_sha1sum="72ac10875be5a7770a4f31058ea797edb8e55020", name="Ada Lovelace")
    # account uses the source user id even when the email is known
    assert resolver(store, actor_form="account").agent(
        person, source="docebo", home_page=HOME
    ) == Agent(account=Account(home_page=HOME, name="42"), name="Ada Lovelace")
    assert (
        resolver(store, include_name=False).agent(person, source="docebo", home_page=HOME).name
        is None
    )


def test_account_form_without_user_id_is_unresolved(store: SpyStore) -> None:
    with pytest.raises(UnresolvedActor):
        resolver(store, actor_form="account").agent(
            Person(email="ada@example.com"), source="docebo", home_page=HOME
        )


def test_account_form_takes_the_name_from_the_map(store: SpyStore) -> None:
    agent = resolver(store, actor_form="account").agent(
        Person(source_user_id="7"), source="docebo", home_page=HOME
    )
    assert agent == Agent(account=Account(home_page=HOME, name="7"), name="Mapped Person")


def test_the_event_email_wins_and_no_io_happens(store: SpyStore) -> None:
    lookup = Lookups({})
    agent = resolver(store, lookup).agent(
        Person(source_user_id="7", email="event@example.com"), source="docebo", home_page=HOME
    )
    assert agent.mbox == "mailto:event@example.com"
    assert agent.name == "Mapped Person"  # the map is in memory: its name is free
    assert lookup.calls == []
    assert store.ttls == []


def test_identity_map_before_cache_and_lookup(store: SpyStore) -> None:
    lookup = Lookups({"7": Person(source_user_id="7", email="api@example.com")})
    agent = resolver(store, lookup).agent(
        Person(source_user_id="7"), source="docebo", home_page=HOME
    )
    assert agent == Agent(mbox="mailto:mapped@example.com", name="Mapped Person")
    assert lookup.calls == []
    # the map is per source
    agent = resolver(store, lookup).agent(
        Person(source_user_id="7"), source="slack", home_page=HOME
    )
    assert agent.mbox == "mailto:api@example.com"
    assert lookup.calls == [("slack", "7")]


def test_lookup_result_is_cached_with_the_ttl(store: SpyStore) -> None:
    lookup = Lookups({"42": Person(source_user_id="42", email="Ada@Example.com", name="Ada")})
    res = resolver(store, lookup, cache_ttl=600)
    for _ in range(3):
        agent = res.agent(Person(source_user_id="42"), source="docebo", home_page=HOME)
        assert agent == Agent(mbox="mailto:ada@example.com", name="Ada")
    assert lookup.calls == [("docebo", "42")]
    assert store.ttls == [("identity:docebo", "42", 600)]
    cached = json.loads(store.kv_get("identity:docebo", "42") or "{}")
    assert cached == {"email": "ada@example.com", "name": "Ada"}


def test_cache_expires(store: SpyStore) -> None:
    lookup = Lookups({"42": Person(source_user_id="42", email="ada@example.com")})
    res = resolver(store, lookup, cache_ttl=0.2)
    res.agent(Person(source_user_id="42"), source="docebo", home_page=HOME)
    time.sleep(0.3)
    res.agent(Person(source_user_id="42"), source="docebo", home_page=HOME)
    assert len(lookup.calls) == 2


def test_no_email_answers_are_cached_briefly(store: SpyStore) -> None:
    lookup = Lookups({"99": None})
    res = resolver(store, lookup, cache_ttl=86400)
    for _ in range(2):
        agent = res.agent(Person(source_user_id="99"), source="docebo", home_page=HOME)
        assert agent == Agent(account=Account(home_page=HOME, name="99"))
    assert lookup.calls == [("docebo", "99")]
    assert store.ttls == [("identity:docebo", "99", 3600)]


def test_lookup_errors_propagate(store: SpyStore) -> None:
    def failing(source: str, user_id: str) -> Person | None:
        raise TransientError("users API 503")

    with pytest.raises(TransientError):
        IdentityResolver(IdentityConfig(), store=store, lookup=failing).agent(
            Person(source_user_id="1"), source="docebo", home_page=HOME
        )
    assert store.ttls == []


def test_unresolved_policy(store: SpyStore) -> None:
    person = Person(source_user_id="U1", name="Someone")
    assert resolver(store).agent(person, source="slack", home_page=HOME) == Agent(
        account=Account(home_page=HOME, name="U1"), name="Someone"
    )
    with pytest.raises(UnresolvedActor) as exc:
        resolver(store, unresolved="quarantine").agent(person, source="slack", home_page=HOME)
    assert exc.value.source == "slack"
    assert exc.value.user_ref == "U1"
    with pytest.raises(UnresolvedActor):  # nothing at all to go on: never a made-up identity
        resolver(store).agent(Person(name="Anonymous"), source="slack", home_page=HOME)


def test_malformed_event_email_falls_through(store: SpyStore) -> None:
    agent = resolver(store).agent(
        Person(source_user_id="7", email="n/a"), source="docebo", home_page=HOME
    )
    assert agent.mbox == "mailto:mapped@example.com"


def test_remember_refreshes_the_cache(store: SpyStore) -> None:
    lookup = Lookups({})
    res = resolver(store, lookup)
    res.remember(Person(source_user_id="5", email="NEW@example.com", name="New"), "docebo")
    res.remember(Person(source_user_id="5", name="Renamed"), "docebo")  # keeps the email
    res.remember(Person(email="x@example.com"), "docebo")  # no user id: nothing to key on
    agent = res.agent(Person(source_user_id="5"), source="docebo", home_page=HOME)
    assert agent == Agent(mbox="mailto:new@example.com", name="Renamed")
    assert lookup.calls == []


def test_from_config_reads_the_map_file(tmp_path: Path, store: SpyStore) -> None:
    (tmp_path / "map.yaml").write_text(
        "- {source: slack, user_id: U024BE7LH, email: Jamie@Example.com, name: Jamie}\n"
        "- {source: docebo, user_id: 12345, email: jamie@example.com}\n"
    )
    res = IdentityResolver.from_config(
        IdentityConfig(map_file=Path("map.yaml")), store=store, config_dir=tmp_path
    )
    assert res.agent(Person(source_user_id="12345"), source="docebo", home_page=HOME) == Agent(
        mbox="mailto:jamie@example.com"
    )
    assert res.agent(Person(source_user_id="U024BE7LH"), source="slack", home_page=HOME).name == (
        "Jamie"
    )


def test_csv_map_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("# comment\nsource,user_id,email,name\n\ndocebo,1, A@B.example ,\n")
    ident = IdentityMap.load(path)
    assert ident.get("docebo", "1") == IdentityEntry("docebo", "1", "a@b.example", None)


HEADER = "source,user_id,email\n"
MAP_PROBLEMS = [
    ("source,user,email\n", ".csv", "line 1", "unknown column 'user'; did you mean 'user_id'?"),
    (
        "source,user_id\n",
        ".csv",
        "line 1",
        "missing column 'email' (header: source,user_id,email,name)",
    ),
    (HEADER + "d,1,\n", ".csv", "line 2", "email is empty"),
    (HEADER + "d,1,a@b.c\nd,1,c@d.e\n", ".csv", "line 3", "d user '1' is already mapped at line 2"),
    (HEADER + "d,1,a@b.c,x,y\n", ".csv", "line 2", "5 fields but the header has 3"),
    (
        "- {source: d, user_id: 1, emial: a@b.c}\n",
        ".yaml",
        "[0].emial",
        "unknown key; did you mean 'email'?",
    ),
    ("{a: 1}\n", ".yml", "", "expected a list of {source, user_id, email, name} mappings"),
]


@pytest.mark.parametrize(("text", "suffix", "where", "message"), MAP_PROBLEMS)
def test_map_file_problems(
    tmp_path: Path, text: str, suffix: str, where: str, message: str
) -> None:
    path = tmp_path / f"map{suffix}"
    path.write_text(text)
    with pytest.raises(IdentityMapError) as exc:
        IdentityMap.load(path)
    assert (where, message) in exc.value.problems


def test_identity_map_matches_user_ids_case_insensitively(tmp_path: Path) -> None:
    """Cornerstone sends GUIDs upper-case; admins copy them either way."""
    path = tmp_path / "map.csv"
    path.write_text(
        "source,user_id,email,name\ncsod,0A1B2C3D-AAAA-4BBB-8CCC-DDDDEEEEFFFF,x@example.com,X\n"
    )
    mapping = IdentityMap.load(path)
    entry = mapping.get("csod", "0a1b2c3d-aaaa-4bbb-8ccc-ddddeeeeffff")
    assert entry is not None
    assert entry.email == "x@example.com"
    assert mapping.get("csod", "0a1b2c3d-aaaa-4bbb-8ccc-000000000000") is None
