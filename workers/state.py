"""The worker process's `HubRuntime`, built lazily and rebuilt after a prefork fork, so no
connection (Redis socket, SQLite handle) is ever shared between processes."""

from __future__ import annotations

from collections.abc import Callable

from hub.runtime import HubRuntime

_factory: Callable[[], HubRuntime] | None = None
_runtime: HubRuntime | None = None


def install(factory: Callable[[], HubRuntime], runtime: HubRuntime | None = None) -> None:
    global _factory, _runtime
    _factory = factory
    _runtime = runtime


def reset_after_fork() -> None:
    global _runtime
    _runtime = None


def runtime() -> HubRuntime:
    global _runtime
    if _runtime is None:
        if _factory is None:
            # A task refuses to run without configuration instead of guessing one.
            raise RuntimeError(
                "lxhub worker is not configured: start it with `lxhub worker` (or call "
                "workers.app.configure) so the hub config is loaded and validated"
            )
        _runtime = _factory()
    return _runtime
