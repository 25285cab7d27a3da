"""The reliability invariants of the Celery settings (STYLE §8 Celery wiring tests)."""

from __future__ import annotations

from workers import celeryconfig
from workers.app import app


def test_json_only_no_pickle() -> None:
    assert celeryconfig.task_serializer == "json"
    assert celeryconfig.accept_content == ["json"]
    assert app.conf.accept_content == ["json"]


def test_acks_late_prefetch_one_no_results() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_ignore_result is True
    assert app.conf.result_backend is None
    assert app.conf.task_reject_on_worker_lost is False


def test_countdowns_and_time_limits_below_visibility_timeout() -> None:
    vt = app.conf.broker_transport_options["visibility_timeout"]
    assert vt > celeryconfig.MAX_COUNTDOWN
    assert app.conf.task_time_limit < vt
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_every_task_has_an_explicit_stable_name_and_queue() -> None:
    app.loader.import_default_modules()
    ours = sorted(name for name in app.tasks if name.startswith("hub."))
    assert ours == [
        "hub.deliver_statements",
        "hub.flush",
        "hub.maintain",
        "hub.normalize_events",
        "hub.poll_connector",
    ]
    for name in ours:
        assert celeryconfig.task_routes[name]["queue"] in celeryconfig.QUEUES


def test_tasks_refuse_to_run_without_configuration() -> None:
    import pytest

    from workers import state

    state.install(None, None)  # type: ignore[arg-type]
    app.loader.import_default_modules()
    with pytest.raises(RuntimeError, match="not configured"):
        app.tasks["hub.normalize_events"].apply(throw=True)
