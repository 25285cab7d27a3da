"""`lxhub backfill`: a throttled, resumable historical import through the normal pipeline, and a
dry run that counts exactly what an LRS already holds (issue 7 item 5).

The source is a small polling connector defined here (`rec-lms`) whose API is mocked with respx:
25 completion records, 10 per page, with a `total` the progress bar uses. The command runs
through click's `CliRunner` with an explicit registry, on the embedded SQLite store. The dry-run
test talks to a real Learning Locker (integration).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from click.testing import CliRunner, Result
from pydantic import Field, HttpUrl, SecretStr

from hub.clock import SystemClock
from hub.commands import CliState
from hub.commands.backfill_cmd import NAMESPACE, backfill_cmd, cursor_key, parse_when
from hub.config import load_config
from hub.connector import Connector, ConnectorSettings, Person, Polling
from hub.cursor import TimeCursor, signpost
from hub.delivery import deliver_once
from hub.errors import TransientError
from hub.events import PollResult, SourceEvent
from hub.inbox import INBOX, from_item
from hub.mapping import EventPayload, MappingContext, StatementMapper
from hub.pipeline import normalize
from hub.registry import Registry
from hub.runtime import HubRuntime
from hub.testing.lrs_servers import LrsServer, start_learning_locker, stop_server
from hub.xapi import Activity, ActivityDefinition, Statement
from hub.xapi.vocab import ActivityTypes, Verbs

ROOT = Path(__file__).resolve().parents[2]
API = "https://lms.example.test/api"
RECORDS = 25
PAGE = 10


# -- the source: a polling connector and its mocked API ------------------------------------------


class Completion(EventPayload):
    event_types = ("completion",)
    id: str
    email: str
    course: str
    completed_at: datetime


mapper = StatementMapper()


@mapper.on(Completion)
def _completion(e: Completion, ctx: MappingContext) -> list[Statement]:
    return [ctx.statement(
        verb=Verbs.COMPLETED, key=[("record", e.id)],
        actor=ctx.agent(Person(source_user_id=e.email, email=e.email)),
        object_=Activity(id=ctx.activity_id("course", e.course), definition=ActivityDefinition(
            name=ctx.lang(f"Course {e.course}"), type=ActivityTypes.COURSE)),
        timestamp=e.completed_at,
    )]


class RecSettings(ConnectorSettings):
    base_url: HttpUrl = Field(description="API base URL")
    api_token: SecretStr = Field(description="API token")
    tenant: str = Field(description="tenant token")


class RecConnector(Connector[RecSettings], Polling[TimeCursor]):
    """GET {base}/records?since=…&page=N → {"records": [...], "total": n, "next_page": n|null}."""

    name = "rec-lms"
    source = "reclms"
    platform = "Rec LMS"
    settings_model = RecSettings
    mapper = mapper

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def check(self) -> None:
        return None

    def poll(self, cursor: TimeCursor | None, *, until: datetime) -> PollResult[TimeCursor]:
        cursor = cursor or self.initial_cursor(until)
        page = cursor.page or 1
        response = self.runtime.http.get(
            f"{self.settings.base_url}records",
            params={"since": cursor.mark.isoformat(), "until": until.isoformat(), "page": page},
            headers={"Authorization": f"Bearer {self.settings.api_token.get_secret_value()}"},
        )
        if response.status_code >= 500:
            raise TransientError(f"source answered {response.status_code}")
        body = response.json()
        events = [
            SourceEvent(instance_id=self.instance_id, event_type="completion", payload=r,
                        delivery_id=r["id"], received_at=self.runtime.clock.now(), via="poll")
            for r in body["records"]
        ]
        if body["next_page"] is not None:
            return PollResult[TimeCursor](
                events=events, next_cursor=TimeCursor(mark=cursor.mark, page=body["next_page"]),
                has_more=True, total_hint=body["total"])
        newest = max((datetime.fromisoformat(r["completed_at"]) for r in body["records"]),
                     default=cursor.mark)
        return PollResult[TimeCursor](
            events=events, next_cursor=TimeCursor(mark=signpost(until, newest)),
            total_hint=body["total"])

    def initial_cursor(self, since: datetime) -> TimeCursor:
        return TimeCursor(mark=since)


def _record(n: int, tag: str) -> dict[str, Any]:
    return {"id": f"{tag}-{n:04d}", "email": f"learner{n % 7}@example.com",
            "course": f"c{n % 3}", "completed_at": f"2024-02-{1 + n % 27:02d}T10:00:00+00:00"}


def source_api(router: respx.MockRouter, tag: str) -> respx.Route:
    """Mock the LMS: RECORDS records, PAGE per page."""
    records = [_record(n, tag) for n in range(RECORDS)]

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer lms-token"
        page = int(request.url.params["page"])
        chunk = records[(page - 1) * PAGE: page * PAGE]
        more = page * PAGE < RECORDS
        return httpx.Response(200, json={"records": chunk, "total": RECORDS,
                                         "next_page": page + 1 if more else None})

    return router.get(f"{API}/records").mock(side_effect=answer)


# -- the hub -------------------------------------------------------------------------------------


def write_config(tmp_path: Path, *, lrs: list[dict[str, Any]] | None = None) -> Path:
    config = tmp_path / "config"
    (config / "connectors").mkdir(parents=True)
    hub = {"data_dir": str(tmp_path / "data"), "log_format": "text",
           "lrs": lrs or [{"name": "local", "type": "local"}]}
    (config / "hub.yaml").write_text(yaml.safe_dump(hub))
    instance = {"id": "rec", "type": "rec-lms", "enabled": True,
                "settings": {"base_url": API + "/", "api_token": "${REC_TOKEN}",
                             "tenant": "acme"}}
    (config / "connectors" / "rec.yaml").write_text(yaml.safe_dump(instance))
    return config


REGISTRY = Registry.from_classes([RecConnector])


def run(config: Path, *args: str) -> Result:
    state = CliState(config_option=config, registry_factory=lambda: REGISTRY)
    return CliRunner().invoke(backfill_cmd, list(args), obj=state)


def runtime(config: Path) -> HubRuntime:
    return HubRuntime(load_config(config, registry=REGISTRY), registry=REGISTRY)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REC_TOKEN", "lms-token")


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()  # the real LRS, when a test uses one
        yield router


def inbox_events(rt: HubRuntime) -> list[SourceEvent]:
    lease = rt.store.outbox_lease(INBOX, max_items=1000, lease_seconds=5, now=rt.clock.now())
    return [] if lease is None else [e for item in lease.items for e in from_item(item)]


# -- the real import -------------------------------------------------------------------------------


def test_backfill_enqueues_every_page_then_forgets_its_cursor(
    tmp_path: Path, api: respx.MockRouter
) -> None:
    route = source_api(api, "a")
    config = write_config(tmp_path)
    result = run(config, "rec", "--since", "2024-01-01", "--rate", "0")
    assert result.exit_code == 0, (result.output, result.exception)
    assert route.call_count == 3
    assert f"{RECORDS} events from 3 pages" in result.output
    assert "25/25 events" in result.output  # progress with the source's total
    rt = runtime(config)
    try:
        assert rt.store.get_cursor(cursor_key("rec")) is None
        assert rt.store.get_cursor("rec") is None  # the live cursor is untouched
        record = json.loads(rt.store.kv_get(NAMESPACE, "rec") or "{}")
        assert record["events"] == RECORDS
        assert record["completed_at"]
        events = inbox_events(rt)
        assert sorted(e.delivery_id or "" for e in events) == [f"a-{n:04d}" for n in range(25)]
        assert {e.via for e in events} == {"poll"}
        assert all(e.instance_id == "rec" for e in events)
        # The first request started at --since (midnight UTC).
        first = route.calls[0].request
        assert first.url.params["since"] == "2024-01-01T00:00:00+00:00"
    finally:
        rt.close()

    again = run(config, "rec", "--since", "2024-01-01", "--rate", "0")
    assert again.exit_code == 0
    assert "already completed" in again.output
    assert route.call_count == 3  # nothing fetched again without --restart
    restarted = run(config, "rec", "--since", "2024-01-01", "--rate", "0", "--restart")
    assert restarted.exit_code == 0, restarted.output
    assert route.call_count == 6


def test_backfill_interrupted_resumes_where_it_stopped(
    tmp_path: Path, api: respx.MockRouter
) -> None:
    records = [_record(n, "b") for n in range(RECORDS)]
    pages_served: list[int] = []
    interrupt = {"on_page": 2}

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        if page == interrupt["on_page"]:
            interrupt["on_page"] = -1
            raise KeyboardInterrupt  # Ctrl-C while page 2 is being fetched
        pages_served.append(page)
        chunk = records[(page - 1) * PAGE: page * PAGE]
        more = page * PAGE < RECORDS
        return httpx.Response(200, json={"records": chunk, "total": RECORDS,
                                         "next_page": page + 1 if more else None})

    api.get(f"{API}/records").mock(side_effect=answer)
    config = write_config(tmp_path)
    stopped = run(config, "rec", "--since", "2024-01-01", "--rate", "0")
    assert stopped.exit_code == 130, (stopped.output, stopped.exception)
    assert "run the same command again to resume" in stopped.output
    rt = runtime(config)
    try:
        saved = json.loads(rt.store.get_cursor(cursor_key("rec")) or "{}")
        assert saved["page"] == 2
    finally:
        rt.close()

    other = run(config, "rec", "--since", "2023-06-01", "--rate", "0")
    assert other.exit_code == 1
    assert "unfinished backfill" in str(other.exception)
    assert "--restart" in str(other.exception)

    resumed = run(config, "rec", "--since", "2024-01-01", "--rate", "0")
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming" in resumed.output
    assert pages_served == [1, 2, 3]  # page 1 was not fetched twice
    rt = runtime(config)
    try:
        assert len(inbox_events(rt)) == RECORDS
    finally:
        rt.close()


def test_backfill_is_throttled(tmp_path: Path, api: respx.MockRouter) -> None:
    source_api(api, "c")
    config = write_config(tmp_path)
    started = time.monotonic()
    result = run(config, "rec", "--since", "2024-01-01", "--rate", "4")
    assert result.exit_code == 0, (result.output, result.exception)
    assert time.monotonic() - started >= 0.45  # 3 pages at 4 pages/s: two waits of 0.25 s


def test_backfill_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    unknown = run(config, "nope", "--since", "2024-01-01")
    assert unknown.exit_code != 0
    assert "no connector instance 'nope'" in str(unknown.exception)
    bad_date = run(config, "rec", "--since", "last tuesday")
    assert bad_date.exit_code == 2
    assert "is not a date" in bad_date.output
    backwards = run(config, "rec", "--since", "2024-02-01", "--until", "2024-01-01")
    assert backwards.exit_code == 2


def test_dates() -> None:
    assert parse_when("2024-01-31", option="--since") == datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_when("2024-01-31T08:30:00Z", option="--since") == datetime(
        2024, 1, 31, 8, 30, tzinfo=UTC)
    assert parse_when("2024-01-31T08:30", option="--since").tzinfo is not None


# -- the dry run against a real LRS ----------------------------------------------------------------


@pytest.fixture(scope="module")
def learning_locker() -> Iterator[LrsServer]:
    """Learning Locker's statement service, in memory (the same helper as tests/integration)."""
    try:
        server = start_learning_locker(ROOT)
    except RuntimeError as exc:
        pytest.fail(f"could not start Learning Locker: {exc}", pytrace=False)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.mark.integration
def test_dry_run_counts_exactly_what_the_lrs_already_holds(
    tmp_path: Path, api: respx.MockRouter, learning_locker: LrsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = f"d{random.randrange(16**6):06x}"  # fresh ids: the LRS lives for the whole session
    route = source_api(api, tag)
    monkeypatch.setenv("LL_USER", learning_locker.username)
    monkeypatch.setenv("LL_PASSWORD", learning_locker.password)
    config = write_config(tmp_path, lrs=[{
        "name": "ll", "type": "xapi", "endpoint": learning_locker.endpoint,
        "username": "${LL_USER}", "password": "${LL_PASSWORD}"}])

    # Before anything was sent: every statement would be new.
    fresh = run(config, "rec", "--since", "2024-01-01", "--dry-run", "--rate", "0", "--json")
    assert fresh.exit_code == 0, (fresh.output, fresh.exception)
    counts = _summary(fresh.output)
    assert counts["events"] == RECORDS
    assert counts["statements"] == RECORDS
    assert counts["lrs"]["ll"] == {"routed": RECORDS, "already_stored": 0, "new": RECORDS}

    # Deliver the first page (10 statements) through the real pipeline functions.
    rt = runtime(config)
    try:
        first_page = rt.connectors["rec"].connector
        assert isinstance(first_page, RecConnector)
        page = first_page.poll(first_page.initial_cursor(datetime(2024, 1, 1, tzinfo=UTC)),
                               until=datetime.now(UTC))
        assert len(page.events) == PAGE
        report = normalize(page.events, instances=rt.enabled_instance,
                           destinations=rt.destinations, store=rt.store, clock=SystemClock(),
                           base_iri=rt.config.base_iri, actors=rt.identity)
        assert report.produced == {"ll": PAGE}
        delivered = deliver_once(store=rt.store, lrs_name="ll", client=rt.lrs_client("ll"),
                                 clock=SystemClock(), batch_size=100, max_batch_wait=0,
                                 lease_seconds=30, retry_horizon=60,
                                 rng=random.Random(1))  # noqa: S311
        assert delivered.stored == PAGE, delivered
    finally:
        rt.close()

    calls_before = route.call_count
    after = run(config, "rec", "--since", "2024-01-01", "--dry-run", "--rate", "0", "--json")
    assert after.exit_code == 0, after.output
    counts = _summary(after.output)
    assert counts["lrs"]["ll"] == {"routed": RECORDS, "already_stored": PAGE,
                                   "new": RECORDS - PAGE}
    assert route.call_count == calls_before + 3

    # A dry run changes nothing: no inbox items, no backfill cursor, no record.
    rt = runtime(config)
    try:
        assert rt.store.outbox_stats(INBOX, now=rt.clock.now()).ready == 0
        assert rt.store.get_cursor(cursor_key("rec")) is None
        assert rt.store.kv_get(NAMESPACE, "rec") is None
    finally:
        rt.close()

    text = run(config, "rec", "--since", "2024-01-01", "--dry-run", "--rate", "0")
    assert text.exit_code == 0
    assert "map to 25 statements" in text.output
    assert "would create" in text.output


def _summary(output: str) -> dict[str, Any]:
    """The JSON summary: the last JSON document of the output (progress goes before it)."""
    start = output.index("{\n")
    summary: dict[str, Any] = json.loads(output[start:])
    return summary
