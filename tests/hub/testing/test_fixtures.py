"""Unit tests of the kit's helpers (`hub.testing.fixtures`) and its pytest fixtures."""

from __future__ import annotations

import json
import socket
from importlib import metadata
from pathlib import Path

import httpx
import pytest
import respx

from hub.clock import FrozenClock
from hub.connector import Person
from hub.errors import UnresolvedActor
from hub.queue import ListEnqueuer
from hub.store.base import Store
from hub.testing import (
    DEFAULT_NOW,
    OPT_OUT_KEYS,
    MockLrs,
    NetworkBlocked,
    StaticActorResolver,
    StrictRouter,
    SuiteConfig,
    assert_golden,
    block_network,
    json_response,
    load_json_fixture,
    mbox_sha1sum,
    mock_json_pages,
    strict_router,
)

# The pytest11 entry point loads the plugin once lxhub is pip-installed; load it by module name
# only when it is not (registering it twice would be an error).
_INSTALLED = any(
    ep.value == "hub.testing.pytest_plugin" for ep in metadata.entry_points(group="pytest11")
)
pytest_plugins = [] if _INSTALLED else ["hub.testing.pytest_plugin"]


# --- golden files ----------------------------------------------------------------------------


def test_golden_match_removes_stale_actual(tmp_path: Path) -> None:
    expected = tmp_path / "case.json"
    expected.write_text('[{"a": 1}]')
    (tmp_path / "case.actual.json").write_text("stale")
    assert_golden([{"a": 1}], expected)
    assert not (tmp_path / "case.actual.json").exists()


def test_golden_mismatch_writes_actual_and_shows_diff(tmp_path: Path) -> None:
    expected = tmp_path / "case.json"
    expected.write_text('[{"a": 1}]')
    with pytest.raises(AssertionError, match=r'(?s)differs from .*-    "a": 1.*\+    "a": 2'):
        assert_golden([{"a": 2}], expected)
    assert json.loads((tmp_path / "case.actual.json").read_text()) == [{"a": 2}]


def test_golden_missing_expected_fails(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="missing expected file"):
        assert_golden([], tmp_path / "expected" / "new.json")
    assert (tmp_path / "expected" / "new.actual.json").read_text() == "[]\n"


def test_load_json_fixture_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(AssertionError, match="bad.json is not valid JSON"):
        load_json_fixture(tmp_path, "bad.json")
    with pytest.raises(AssertionError, match="does not exist"):
        load_json_fixture(tmp_path, "missing.json")
    (tmp_path / "ok.json").write_text('{"x": [1]}')
    assert load_json_fixture(tmp_path / "ok.json") == {"x": [1]}


# --- routers and network ----------------------------------------------------------------------


def test_strict_router_records_swallowed_unmocked_calls() -> None:
    router = strict_router()
    with router, httpx.Client(transport=router.transport()) as client:
        with pytest.raises(AssertionError):
            client.get("https://nowhere.example/")
        assert [str(r.url) for r in router.unmocked] == ["https://nowhere.example/"]


def test_strict_router_fails_on_uncalled_routes() -> None:
    router = strict_router()
    router.start()
    router.get("https://api.example/never")
    assert router.uncalled_routes()
    with pytest.raises(AssertionError, match="not called"):
        router.stop()


def test_mock_json_pages_serves_pages_in_order(tmp_path: Path) -> None:
    (tmp_path / "p2.json").write_text('{"page": 2}')
    with strict_router() as router:
        mock_json_pages(
            router,
            "GET",
            "https://api.example/items",
            [{"page": 1}, tmp_path / "p2.json", httpx.Response(429, headers={"retry-after": "3"})],
        )
        got = [httpx.get("https://api.example/items") for _ in range(3)]
    assert [r.status_code for r in got] == [200, 200, 429]
    assert [r.json() for r in got[:2]] == [{"page": 1}, {"page": 2}]


def test_block_network_blocks_inet_sockets() -> None:
    with block_network(), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(NetworkBlocked, match="mock it with respx"):
            sock.connect(("192.0.2.1", 80))
        with pytest.raises(NetworkBlocked):
            sock.connect_ex(("192.0.2.1", 80))


# --- identity --------------------------------------------------------------------------------


def test_mbox_sha1sum_vector() -> None:
    # vendors.md 8.3 vector 5
    assert mbox_sha1sum(" Ada@Example.com ") == "72ac10875be5a7770a4f31058ea797edb8e55020"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("mbox", {"mbox": "mailto:ada@example.com", "name": "Ada"}),
        (
            "mbox_sha1sum",
            {"mbox_sha1sum": "72ac10875be5a7770a4f31058ea797edb8e55020", "name": "Ada"},
        ),
        (
            "account",
            {"account": {"homePage": "https://acme.example", "name": "u-1"}, "name": "Ada"},
        ),
    ],
)
def test_static_resolver_strategies(strategy: str, expected: dict[str, object]) -> None:
    resolver = StaticActorResolver(strategy, {"u-1": "Ada@Example.com"})  # type: ignore[arg-type]
    agent = resolver.agent(
        Person(source_user_id="u-1", name="Ada"), source="acme", home_page="https://acme.example"
    )
    assert agent.to_json() == expected
    assert len(resolver.seen) == 1


def test_static_resolver_falls_back_to_account_and_refuses_nobody() -> None:
    resolver = StaticActorResolver("mbox")
    agent = resolver.agent(
        Person(source_user_id="u-9"), source="acme", home_page="https://a.example"
    )
    assert agent.to_json() == {"account": {"homePage": "https://a.example", "name": "u-9"}}
    with pytest.raises(UnresolvedActor):
        resolver.agent(Person(name="Nobody"), source="acme", home_page="https://a.example")


# --- mocked LRS ------------------------------------------------------------------------------


def test_mock_lrs_counts_resends_and_conflicts() -> None:
    lrs = MockLrs()
    statement = {"id": "6f1c2a43-0000-5000-8000-000000000001", "verb": {"id": "http://x/v"}}
    headers = {"x-experience-api-version": "1.0.3"}
    with strict_router() as router:
        lrs.install(router)
        first = httpx.post(lrs.statements_url, json=[statement], headers=headers)
        again = httpx.post(lrs.statements_url, json=[statement], headers=headers)
        drift = httpx.post(
            lrs.statements_url, json=[{**statement, "verb": {"id": "http://x/w"}}], headers=headers
        )
        unversioned = httpx.post(lrs.statements_url, json=[statement])
    assert [first.status_code, again.status_code, drift.status_code] == [200, 200, 409]
    assert unversioned.status_code == 400
    assert (lrs.stored, lrs.already_stored, lrs.conflicts) == (1, 1, 1)


# --- suite configuration ---------------------------------------------------------------------


def test_suite_config_reports_unknown_keys_and_missing_reasons() -> None:
    config = SuiteConfig({"webhook.handshak": "typo", "check": "", "polling": "no API"})
    problems = config.problems()
    assert any("unknown opt-out key 'webhook.handshak'" in p for p in problems)
    assert any("did you mean webhook.handshake" in p for p in problems)
    assert any("'check' needs a reason" in p for p in problems)
    assert len(problems) == 2
    assert config.reason("polling.rate_limit") == "no API"
    assert config.reason("webhook.stale") is None


def test_opt_out_keys_are_grouped() -> None:
    groups = {key.split(".")[0] for key in OPT_OUT_KEYS}
    assert groups == {"plugin", "check", "polling", "webhook", "mapping", "e2e"}


# --- pytest fixtures -------------------------------------------------------------------------


def test_plugin_fixtures(
    lxhub_clock: FrozenClock,
    lxhub_enqueuer: ListEnqueuer,
    lxhub_actor_resolver: StaticActorResolver,
) -> None:
    assert lxhub_clock.now() == DEFAULT_NOW
    assert lxhub_enqueuer.events == []
    assert lxhub_actor_resolver.strategy == "mbox"


def test_plugin_store_fixture(lxhub_store: Store) -> None:
    lxhub_store.set_cursor("test", '{"mark": "2025-07-01T00:00:00Z"}')
    assert lxhub_store.get_cursor("test") == '{"mark": "2025-07-01T00:00:00Z"}'


def test_plugin_respx_and_lrs_fixtures(lxhub_respx: StrictRouter, lxhub_lrs: MockLrs) -> None:
    assert isinstance(lxhub_respx, respx.MockRouter)
    lxhub_respx.get("https://api.example/x").mock(return_value=json_response({"ok": True}))
    assert httpx.get("https://api.example/x").json() == {"ok": True}
    response = httpx.post(
        lxhub_lrs.statements_url,
        json=[{"id": "6f1c2a43-0000-5000-8000-000000000002"}],
        headers={"x-experience-api-version": "1.0.3"},
    )
    assert response.status_code == 200
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)
