"""Runs the demo journey through the real hub: receiver, pipeline, local LRS.

What happens, in order:

1. a demo directory (``{data dir}/demo``) gets a config directory written for it: ``hub.yaml`` on
   the embedded default (SQLite store, the ``local`` LRS with ``max_batch_wait: 0``) and one
   instance file per installed connector of the journey, with freshly generated random secrets
   in ``config/secrets/`` (mode 0600) referenced as ``{file: …}``;
2. the fake vendor APIs start on 127.0.0.1 (`hub.demo.fakeapi`), then a `HubRuntime` is built
   from that directory with the same validation every service runs, the connectors' HTTP sent to
   the fake, and a replay clock;
3. the real web receiver (``hub.webapp.build_app`` on uvicorn) starts on a free loopback port;
4. step by step, the replay clock is set to each request's moment and the source's signed
   request is POSTed to ``/webhooks/{id}`` over HTTP; after each step the pipeline runs in
   process until quiet (``drain_inbox`` + ``normalize``, then ``deliver_once`` to the local LRS),
   the same functions the Celery tasks call;
5. the statements are read back from the local LRS.

Fresh or kept: by default the demo directory is wiped first, so every run starts from nothing and
produces the same statements with the same ids (fixed payload dates, a replay clock, deterministic
ids). With ``keep=True`` the previous run's directory, secrets and fake-vendor state are reused:
the replay then shows the delivery guarantee (the receiver drops the redelivered webhooks as
duplicates, and the LRS still holds one copy of each statement).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from hub.config import load_config
from hub.delivery import deliver_once
from hub.demo.fakeapi import BackgroundServer, FakeCall, FakeVendorApi
from hub.demo.journey import Step, StepContext, journey_steps
from hub.errors import HubError
from hub.metrics import record_delivered
from hub.pipeline import drain_inbox
from hub.registry import Registry
from hub.runtime import HubRuntime
from hub.store.base import DeadLetter, DeadLetterFilter
from hub.web import make_server
from hub.webapp import build_app

__all__ = ["DemoDirError", "DemoResult", "ReplayClock", "StepOutcome", "run_demo"]

MARKER = ".lxhub-demo"
"""Marks a directory the demo created, so it only ever wipes its own."""
LRS_NAME = "local"
WEEK_START = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
"""Monday morning of Jamie's week: the replay clock's start (the hub is set up then)."""
PIPELINE_ROUNDS = 200
"""Upper bound of pipeline rounds per step: a stuck pipeline fails the demo, never hangs it."""


class DemoDirError(HubError):
    """The demo directory exists and was not made by the demo (it is never wiped then)."""


class ReplayClock:
    """The hub's clock during the replay: set to a moment of Jamie's week, then running.

    Signature checks (Slack's five minutes, AcmeCoach's tolerance, learner-token lifetimes) and
    the YouTube tracker's clock-skew check compare the sources' timestamps with this clock, as
    they would compare them with the wall clock when the sources send in real time. It keeps
    running between `set` calls so leases and backoffs behave normally.
    """

    def __init__(self, at: datetime) -> None:
        self._lock = threading.Lock()
        self._anchor = at
        self._started = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            return self._anchor + timedelta(seconds=time.monotonic() - self._started)

    def set(self, at: datetime) -> None:
        with self._lock:
            self._anchor = at
            self._started = time.monotonic()


@dataclass
class StepOutcome:
    """What one step did."""

    key: str
    title: str
    platform: str
    instance_id: str
    how: str = ""
    skipped: str | None = None
    error: str | None = None
    responses: list[tuple[str, int]] = field(default_factory=list)
    """(request label, HTTP status) of every request the source sent."""
    statements: int = 0
    dead_letters: int = 0


@dataclass
class DemoResult:
    """Everything the command prints."""

    demo_dir: Path
    config_dir: Path
    lrs_path: Path
    kept: bool
    steps: list[StepOutcome]
    statements: list[dict[str, Any]]
    """The local LRS's statements, in the order it stored them."""
    stored_before: int
    fake_calls: list[FakeCall]
    unmatched_calls: list[FakeCall]
    dead_letters: list[DeadLetter]
    seconds: float
    labels: dict[str, str] = field(default_factory=dict)
    """Names of activities the statements leave unnamed (chat channels), for the timeline."""

    @property
    def ok(self) -> bool:
        return (
            not any(s.error for s in self.steps)
            and not self.dead_letters
            and not self.unmatched_calls
            and bool(self.statements)
        )


def run_demo(demo_dir: Path, *, registry: Registry, keep: bool = False) -> DemoResult:
    """Run the journey in `demo_dir` (see the module docstring)."""
    started = time.monotonic()
    demo_dir = demo_dir.resolve()
    _prepare_dir(demo_dir, keep=keep)
    config_dir = demo_dir / "config"
    steps = journey_steps()
    outcomes = {s.key: _outcome(s) for s in steps}
    active: list[Step] = []
    for step in steps:
        if step.connector_type not in registry:
            missing = f"the {step.connector_type!r} connector plugin is not installed"
            outcomes[step.key].skipped = missing
        else:
            active.append(step)

    secrets = _secrets(config_dir, active)
    fake = FakeVendorApi()
    fake_state_file = demo_dir / "fake-vendors.json"
    if fake_state_file.exists():
        fake.state.update(json.loads(fake_state_file.read_text("utf-8")))
    for step in active:
        fake.add(step.routes(secrets[step.key], fake.state))
    fake.start()
    try:
        _write_config(config_dir, active, fake)
        loaded = load_config(config_dir, registry=registry, env={})
        clock = ReplayClock(WEEK_START)
        runtime = HubRuntime(
            loaded,
            registry=registry,
            clock=clock,
            transports={
                f"connector:{s.instance_id}": fake.transport() for s in active if s.redirect_http
            },
        )
        try:
            stored_before = runtime.local_lrs.count()
            receiver = BackgroundServer(make_server(build_app(runtime), "127.0.0.1", 0))
            contexts = {s.key: _context(s, runtime, fake, secrets) for s in active}
            # Install time, Monday morning: vendor-side setup such as Graph subscriptions.
            for step in active:
                _prepare_step(step, outcomes[step.key], contexts[step.key])
            with receiver, httpx.Client(base_url=receiver.url, timeout=30.0) as http:
                for step in active:
                    ctx = contexts[step.key]
                    if ctx is not None and outcomes[step.key].error is None:
                        _run_step(step, outcomes[step.key], ctx, runtime, clock, http)
            statements = _all_statements(runtime)
            letters = runtime.store.dlq_list(DeadLetterFilter())
        finally:
            runtime.close()
    finally:
        fake.stop()
        # It holds the Graph subscription's clientState: as private as the secrets.
        _write_private(fake_state_file, json.dumps(fake.state, indent=1))
    return DemoResult(
        demo_dir=demo_dir,
        config_dir=config_dir,
        lrs_path=Path(loaded.hub.data_dir) / "local-lrs.sqlite",
        kept=keep,
        steps=[outcomes[s.key] for s in steps],
        statements=statements,
        stored_before=stored_before,
        fake_calls=list(fake.calls),
        unmatched_calls=list(fake.unmatched),
        dead_letters=letters,
        seconds=time.monotonic() - started,
        labels={k: v for s in active for k, v in s.labels().items()},
    )


def _outcome(step: Step) -> StepOutcome:
    return StepOutcome(
        key=step.key,
        title=step.title,
        platform=step.platform,
        instance_id=step.instance_id,
        how=step.how,
    )


def _prepare_dir(demo_dir: Path, *, keep: bool) -> None:
    marker = demo_dir / MARKER
    if demo_dir.exists() and not keep:
        if not marker.exists() and any(demo_dir.iterdir()):
            raise DemoDirError(
                f"{demo_dir} exists and was not made by `lxhub demo`; refusing to wipe it "
                "(move it away, or point LXHUB_DATA_DIR elsewhere)"
            )
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "Written by `lxhub demo`: the demo's config, state and local LRS. Safe to delete.\n",
        "utf-8",
    )


def _secrets(config_dir: Path, steps: Sequence[Step]) -> dict[str, dict[str, str]]:
    """Each step's secrets: generated, or read back from a kept run."""
    folder = config_dir / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    out: dict[str, dict[str, str]] = {}
    for step in steps:
        fresh = step.generate_secrets()
        values: dict[str, str] = {}
        for name, value in fresh.items():
            path = folder / name.lower()
            if path.exists():
                values[name] = path.read_text("utf-8")
                continue
            _write_private(path, value)
            values[name] = value
        out[step.key] = values
    return out


def _write_private(path: Path, text: str) -> None:
    # Created 0600 from the start: never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


_HUB_YAML_HEADER = """\
# Written by `lxhub demo` for its replay of Jamie's week. Rewritten on every run.
# The embedded default: SQLite state under ./data next to this directory, and the local LRS.
# Secrets are random per demo directory, in ./secrets (mode 0600), referenced as {file: ...}.
# Inspect what the demo left behind with: lxhub --config <this directory> status
"""


def _write_config(config_dir: Path, steps: Sequence[Step], fake: FakeVendorApi) -> None:
    hub_doc: dict[str, Any] = {
        "base_iri": "https://lrs-hub.example.com/xapi",
        "data_dir": "data",
        "log_format": "text",
        "identity": {
            "actor_form": "mbox",
            "map_file": None,
            "unresolved": "account",
            "include_name": True,
        },
        "lrs": [{"name": LRS_NAME, "type": "local", "enabled": True, "max_batch_wait": 0}],
    }
    (config_dir / "hub.yaml").write_text(
        _HUB_YAML_HEADER + yaml.safe_dump(hub_doc, sort_keys=False), "utf-8"
    )
    folder = config_dir / "connectors"
    if folder.exists():
        shutil.rmtree(folder)  # a kept run may have had other connectors installed
    folder.mkdir()
    for step in steps:
        text = f"# {step.platform}: {step.title} (written by `lxhub demo`)\n"
        text += yaml.safe_dump(step.instance(fake), sort_keys=False, allow_unicode=True)
        (folder / f"{step.instance_id}.yaml").write_text(text, "utf-8")


def _context(
    step: Step, runtime: HubRuntime, fake: FakeVendorApi, secrets: dict[str, dict[str, str]]
) -> StepContext | None:
    bound = runtime.connectors.get(step.instance_id)
    if bound is None:
        return None
    return StepContext(
        instance_id=step.instance_id,
        secrets=secrets[step.key],
        fake=fake,
        connector=bound.connector,
        plugin=runtime.registry[step.connector_type].cls,
    )


def _prepare_step(step: Step, outcome: StepOutcome, ctx: StepContext | None) -> None:
    if ctx is None:
        outcome.error = "the hub did not build this connector instance"
        return
    try:
        step.prepare(ctx)
    except Exception as exc:  # one broken step must not hide the rest of the story
        outcome.error = f"setup failed: {type(exc).__name__}: {exc}"


def _run_step(
    step: Step,
    outcome: StepOutcome,
    ctx: StepContext,
    runtime: HubRuntime,
    clock: ReplayClock,
    http: httpx.Client,
) -> None:
    letters_before = runtime.store.dlq_count()
    try:
        # Built after prepare(): a request may depend on vendor-side state (a subscription).
        for send in step.sends(ctx):
            clock.set(send.at)
            response = http.request(
                send.method,
                f"/webhooks/{step.instance_id}",
                content=send.body,
                headers=dict(send.headers),
                params=send.query or None,
            )
            outcome.responses.append((send.label, response.status_code))
        # Then the workers' share, as soon as the requests are in (as the kicked tasks would).
        outcome.statements += _run_pipeline(runtime)
    except Exception as exc:  # one broken step must not hide the rest of the story
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.dead_letters = runtime.store.dlq_count() - letters_before
    refused = [f"{label}: HTTP {status}" for label, status in outcome.responses if status >= 300]
    if refused and outcome.error is None:
        outcome.error = "the receiver refused " + "; ".join(refused)


def _run_pipeline(runtime: HubRuntime) -> int:
    """Normalize and deliver until nothing is left; the statements produced for the LRS."""
    rng = random.Random(0)  # noqa: S311 (backoff jitter, not security)
    lrs = runtime.lrs_config(LRS_NAME)
    produced = 0

    for _ in range(PIPELINE_ROUNDS):
        drained = drain_inbox(
            store=runtime.store,
            clock=runtime.clock,
            normalize_batch=runtime.normalize,
            # A lookup that fails transiently is retried at once: the fake answers or never will.
            backoff=lambda attempt: 0.0,
        )
        if drained.normalized is not None:
            produced += drained.normalized.produced.get(LRS_NAME, 0)
        delivered = deliver_once(
            store=runtime.store,
            lrs_name=LRS_NAME,
            client=runtime.lrs_client(LRS_NAME),
            clock=runtime.clock,
            batch_size=lrs.batch_size,
            max_batch_wait=0.0,
            lease_seconds=runtime.config.delivery.lease_seconds,
            retry_horizon=lrs.retry_horizon,
            rng=rng,
            probe_interval=runtime.config.delivery.probe_interval,
        )
        record_delivered(runtime.store, delivered, now=runtime.clock.now())
        if not drained.leased and not delivered.stored and not delivered.more_waiting:
            return produced
    raise RuntimeError(f"the pipeline was still busy after {PIPELINE_ROUNDS} rounds")


def _all_statements(runtime: HubRuntime) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        page, before = runtime.local_lrs.query(limit=500, before_seq=before)
        found.extend(page)
        if before is None:
            break
    found.reverse()  # the LRS answers newest first; the timeline wants stored order for ties
    return found
