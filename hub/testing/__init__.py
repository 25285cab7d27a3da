"""The lxhub connector test kit, shipped for built-in and third-party plugins alike.

A connector's conformance file is one class::

    from hub.testing import PollingConformance, WebhookConformance

    class TestAcme(WebhookConformance):
        connector = AcmeConnector
        entry_point = "acme"
        sample_settings = {...}
        fixtures = Path(__file__).parent / "fixtures"
        skip = {"webhook.handshake": "vendor has none"}

Modules: `suite` (the conformance classes and the in-process pipeline), `fixtures` (fixture
files, golden comparison, strict respx routers, network blocking, test identity resolver, mocked
LRS, temp SQLite store), `pytest_plugin` (pytest fixtures, registered as `pytest11: lxhub`) and
`lrs_servers` (real LRS launchers for integration tests).

Names are loaded on first use, so importing the pytest plugin (which imports this package) stays
cheap and does not import `hub` before coverage starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.testing.fixtures import (
        DEFAULT_NOW,
        FrozenClock,
        IfiStrategy,
        MemoryState,
        MockLrs,
        NetworkBlocked,
        StaticActorResolver,
        StrictRouter,
        actual_path,
        assert_golden,
        block_network,
        dump_json,
        json_response,
        load_json_fixture,
        mbox_sha1sum,
        mock_json_pages,
        strict_router,
        temp_sqlite_store,
    )
    from hub.testing.suite import (
        BASE_IRI,
        ENTRY_POINT_GROUP,
        OPT_OUT_KEYS,
        ConnectorConformance,
        Delivery,
        Harness,
        PollingConformance,
        SuiteConfig,
        WebhookConformance,
        context_factory,
        deliver_statements,
        normalize_events,
        run_in_process,
    )

__all__ = [
    "BASE_IRI",
    "ConnectorConformance",
    "DEFAULT_NOW",
    "Delivery",
    "ENTRY_POINT_GROUP",
    "FrozenClock",
    "Harness",
    "IfiStrategy",
    "MemoryDedupeStore",
    "MemoryState",
    "MockLrs",
    "NetworkBlocked",
    "OPT_OUT_KEYS",
    "PollingConformance",
    "StaticActorResolver",
    "StrictRouter",
    "SuiteConfig",
    "WebhookConformance",
    "actual_path",
    "assert_golden",
    "block_network",
    "context_factory",
    "deliver_statements",
    "dump_json",
    "json_response",
    "load_json_fixture",
    "mbox_sha1sum",
    "mock_json_pages",
    "normalize_events",
    "run_in_process",
    "strict_router",
    "temp_sqlite_store",
]

_SUITE = frozenset(
    {
        "BASE_IRI",
        "ENTRY_POINT_GROUP",
        "OPT_OUT_KEYS",
        "ConnectorConformance",
        "Delivery",
        "Harness",
        "PollingConformance",
        "SuiteConfig",
        "WebhookConformance",
        "context_factory",
        "deliver_statements",
        "normalize_events",
        "run_in_process",
    }
)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'hub.testing' has no attribute {name!r}")
    module = "hub.testing.suite" if name in _SUITE else "hub.testing.fixtures"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
