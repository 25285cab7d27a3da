"""Unit tests of the webhook receive algorithm (`hub.webhooks.Receiver`) and its body helpers.

Offline: a frozen clock, a `ListEnqueuer`, and the dedupe store both in memory and as the real
`SqliteStore` in a temp dir. Every refused request is checked to have left nothing behind: no
event enqueued and no dedupe key kept (a kept key would make the source's retry a "duplicate").
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import random
import sys
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from hub.clock import FrozenClock
from hub.connector import ConnectorRuntime
from hub.errors import BadRequest
from hub.events import WebhookRequest
from hub.queue import ListEnqueuer
from hub.webhooks import (
    Reason,
    Receiver,
    ReceiverInstance,
    decode_body,
    dedupe_key,
    json_depth,
    load_json,
)


def _load_helpers() -> ModuleType:
    name = "_receiver_connectors"
    if name not in sys.modules:  # shared with test_web.py: one module, one set of classes
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


rc = _load_helpers()

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cr3t-for-tests"
MAX = 4096


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # Unused by the probe connectors, but a runtime needs one; building it costs an SSL context.
    with httpx.Client() as client:
        yield client


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield rc.MemoryDedupeStore()
        return
    from hub.store.sqlite import SqliteStore

    sqlite_store = SqliteStore(tmp_path / "state.db")
    yield sqlite_store
    sqlite_store.close()


@pytest.fixture
def memory_store() -> Any:
    return rc.MemoryDedupeStore()


@pytest.fixture
def enqueuer() -> ListEnqueuer:
    return ListEnqueuer()


def make_instances(clock: FrozenClock, http: httpx.Client) -> dict[str, ReceiverInstance]:
    def connector(cls: Any, instance_id: str, **settings: Any) -> Any:
        runtime = ConnectorRuntime(
            instance_id=instance_id, base_iri="https://hub.example", http=http, clock=clock
        )
        return cls(rc.ProbeSettings(**settings), runtime=runtime)

    instances = {
        "probe": ReceiverInstance(connector(rc.ProbeConnector, "probe")),
        "off": ReceiverInstance(connector(rc.ProbeConnector, "off"), enabled=False),
        "polled": ReceiverInstance(connector(rc.PolledProbeConnector, "polled")),
        "drop": ReceiverInstance(connector(rc.ProbeConnector, "drop", invalid_status=202)),
    }
    for stage in ("handshake", "verify", "parse", "acknowledge", "events"):
        iid = f"crash-{stage}"
        instances[iid] = ReceiverInstance(connector(rc.CrashingProbeConnector, iid, crash_in=stage))
    return instances


def make_receiver(
    clock: FrozenClock, http: httpx.Client, store: Any, enqueuer: Any, **kw: Any
) -> Receiver:
    return Receiver(
        make_instances(clock, http),
        store=store,
        enqueuer=enqueuer,
        clock=clock,
        max_body_bytes=kw.pop("max_body_bytes", MAX),
        **kw,
    )


@pytest.fixture
def receiver(
    clock: FrozenClock, http: httpx.Client, store: Any, enqueuer: ListEnqueuer
) -> Receiver:
    return make_receiver(clock, http, store, enqueuer)


def req(
    body: bytes = b"",
    *,
    clock: FrozenClock,
    signed: bool = True,
    ts: int | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    query: str = "",
    signed_body: bytes | None = None,
) -> WebhookRequest:
    all_headers: dict[str, str] = {"content-type": "application/json"}
    if signed:
        stamp = int(clock.now().timestamp()) if ts is None else ts
        signature = rc.sign(signed_body or body, secret=SECRET, timestamp=stamp)
        all_headers.update({k.lower(): v for k, v in signature.items()})
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return WebhookRequest(
        method=method,
        path="/webhooks/x",
        query_string=query,
        headers=all_headers,
        body=body,
        received_at=clock.now(),
        client_host="203.0.113.9",
    )


def kept(store: Any, instance_id: str, delivery_id: str) -> bool:
    """Whether a dedupe key is held, via the public API only (mark, then undo if it was new)."""
    first = store.mark_seen(instance_id, dedupe_key(delivery_id), ttl_seconds=60)
    if first:
        store.unmark_seen(instance_id, dedupe_key(delivery_id))
    return not first


def assert_left_nothing(store: Any, enqueuer: ListEnqueuer, instance_id: str, *ids: str) -> None:
    assert enqueuer.events == []
    for delivery_id in ids:
        assert not kept(store, instance_id, delivery_id), delivery_id


def delivery_ids(enqueuer: ListEnqueuer) -> list[str | None]:
    return [e.delivery_id for e in enqueuer.events]


def error_of(body: bytes) -> str:
    return str(json.loads(body)["error"])


# -- the happy path and dedupe -----------------------------------------------------------------


def test_valid_batch_is_enqueued_and_acknowledged(
    receiver: Receiver, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    answer = receiver.receive("probe", req(rc.batch("a1", "a2"), clock=clock))
    assert answer.status == 200
    assert json.loads(answer.body) == {"accepted": 2}
    assert delivery_ids(enqueuer) == ["a1", "a2"]
    assert {e.instance_id for e in enqueuer.events} == {"probe"}
    assert enqueuer.events[0].payload == {"type": "probe.happened", "id": "a1"}
    stats = receiver.stats.snapshot()
    assert stats.enqueued == {"probe": 2}
    assert stats.received == {"probe": 1}
    assert stats.rejected == {}


def test_duplicate_delivery_is_acknowledged_and_enqueued_once(
    receiver: Receiver, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    first = receiver.receive("probe", req(rc.batch("d1"), clock=clock))
    again = receiver.receive("probe", req(rc.batch("d1"), clock=clock))
    assert (first.status, again.status) == (200, 200)
    assert delivery_ids(enqueuer) == ["d1"]
    assert receiver.stats.snapshot().duplicates == {"probe": 1}


def test_only_new_items_of_a_partly_seen_batch_are_enqueued(
    receiver: Receiver, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    receiver.receive("probe", req(rc.batch("a", "b"), clock=clock))
    answer = receiver.receive("probe", req(rc.batch("b", "c", "c"), clock=clock))
    assert answer.status == 200
    assert json.loads(answer.body) == {"accepted": 3}  # acknowledge sees the whole request
    assert delivery_ids(enqueuer) == ["a", "b", "c"]


def test_events_without_delivery_id_are_never_deduped_here(
    receiver: Receiver, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    for _ in range(2):
        assert receiver.receive("probe", req(rc.batch(None), clock=clock)).status == 200
    assert delivery_ids(enqueuer) == [None, None]


def test_dedupe_is_per_instance(
    clock: FrozenClock, http: httpx.Client, store: Any, enqueuer: ListEnqueuer
) -> None:
    instances = make_instances(clock, http)
    instances["probe2"] = ReceiverInstance(
        rc.ProbeConnector(
            rc.ProbeSettings(),
            runtime=ConnectorRuntime(
                instance_id="probe2", base_iri="https://hub.example", http=http, clock=clock
            ),
        )
    )
    receiver = Receiver(instances, store=store, enqueuer=enqueuer, clock=clock)
    receiver.receive("probe", req(rc.batch("same"), clock=clock))
    receiver.receive("probe2", req(rc.batch("same"), clock=clock))
    assert [(e.instance_id, e.delivery_id) for e in enqueuer.events] == [
        ("probe", "same"),
        ("probe2", "same"),
    ]


def test_dedupe_keys_use_the_configured_ttl(
    clock: FrozenClock, http: httpx.Client, memory_store: Any, enqueuer: ListEnqueuer
) -> None:
    receiver = make_receiver(clock, http, memory_store, enqueuer, dedupe_ttl=123.0)
    receiver.receive("probe", req(rc.batch("t1"), clock=clock))
    assert memory_store.keys == {("probe", "delivery:t1"): 123.0}


def test_default_dedupe_ttl_is_seven_days(
    clock: FrozenClock, http: httpx.Client, memory_store: Any, enqueuer: ListEnqueuer
) -> None:
    receiver = Receiver(
        make_instances(clock, http), store=memory_store, enqueuer=enqueuer, clock=clock
    )
    receiver.receive("probe", req(rc.batch("t1"), clock=clock))
    assert list(memory_store.keys.values()) == [7 * 86400]


# -- 404: which instances accept webhooks ---------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_id", "reason"),
    [
        ("nope", Reason.UNKNOWN_INSTANCE),
        ("off", Reason.DISABLED),
        ("polled", Reason.NOT_A_WEBHOOK),
    ],
)
def test_instances_that_take_no_webhooks_answer_404(
    receiver: Receiver,
    store: Any,
    enqueuer: ListEnqueuer,
    clock: FrozenClock,
    instance_id: str,
    reason: Reason,
) -> None:
    answer = receiver.receive(instance_id, req(rc.batch("n1"), clock=clock))
    assert answer.status == 404
    assert error_of(answer.body) == reason.value
    assert_left_nothing(store, enqueuer, instance_id, "n1")
    assert receiver.stats.snapshot().rejections(reason) == 1


def test_polling_only_instance_says_it_takes_no_webhooks(
    receiver: Receiver, clock: FrozenClock
) -> None:
    answer = receiver.receive("polled", req(rc.batch("n1"), clock=clock))
    assert b"does not accept webhooks" in answer.body


def test_unknown_ids_share_one_stats_label(receiver: Receiver, clock: FrozenClock) -> None:
    for i in range(3):
        receiver.receive(f"random-{i}", req(b"{}", clock=clock))
    stats = receiver.stats.snapshot()
    assert stats.received == {"(unknown)": 3}
    assert stats.rejections(Reason.UNKNOWN_INSTANCE, "(unknown)") == 3


# -- 413/415: size and encoding -----------------------------------------------------------------


def test_body_over_the_cap_is_413(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    ids = [f"big-{i:04d}" for i in range(300)]
    body = rc.batch(*ids)
    assert len(body) > MAX
    answer = receiver.receive("probe", req(body, clock=clock))
    assert answer.status == 413
    assert error_of(answer.body) == "too_large"
    assert_left_nothing(store, enqueuer, "probe", *ids)


def test_declared_content_length_over_the_cap_is_413(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    body = rc.batch("cl1")
    request = req(body, clock=clock, headers={"content-length": str(MAX + 1)})
    assert receiver.receive("probe", request).status == 413
    assert_left_nothing(store, enqueuer, "probe", "cl1")


def test_gzip_body_is_inflated_before_verify_and_parse(
    receiver: Receiver, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    body = rc.batch("gz1", "gz2")
    request = req(
        gzip.compress(body), clock=clock, signed_body=body, headers={"content-encoding": "gzip"}
    )
    answer = receiver.receive("probe", request)
    assert answer.status == 200
    assert delivery_ids(enqueuer) == ["gz1", "gz2"]


def test_gzip_bomb_stops_at_the_cap_with_413(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    inflated = b'{"items": [{"id": "bomb"}], "pad": "' + b" " * 3_000_000 + b'"}'
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < MAX  # small on the wire, 3 MB inflated (deflate tops out near 1000:1)
    request = req(bomb, clock=clock, signed_body=inflated, headers={"content-encoding": "gzip"})
    answer = receiver.receive("probe", request)
    assert answer.status == 413
    assert_left_nothing(store, enqueuer, "probe", "bomb")


@pytest.mark.parametrize(
    ("encoding", "payload", "status"),
    [
        ("gzip", b"definitely not gzip", 400),
        ("gzip", gzip.compress(b'{"items": []}')[:-6], 400),  # truncated
        ("br", b"\x00", 415),
        ("gzip, gzip", b"\x00", 415),
    ],
)
def test_bad_content_encodings_are_refused(
    receiver: Receiver,
    enqueuer: ListEnqueuer,
    clock: FrozenClock,
    encoding: str,
    payload: bytes,
    status: int,
) -> None:
    request = req(payload, clock=clock, headers={"content-encoding": encoding})
    assert receiver.receive("probe", request).status == status
    assert enqueuer.events == []


def test_unsupported_content_type_is_415(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    request = req(rc.batch("ct1"), clock=clock, headers={"content-type": "text/plain"})
    answer = receiver.receive("probe", request)
    assert answer.status == 415
    assert error_of(answer.body) == "unsupported_media"
    assert_left_nothing(store, enqueuer, "probe", "ct1")


# -- handshakes -----------------------------------------------------------------------------------


def test_url_verification_is_answered_and_nothing_enqueued(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "ch4ll"}).encode()
    answer = receiver.receive("probe", req(body, clock=clock, signed=False))
    assert (answer.status, answer.body) == (200, b"ch4ll")
    assert enqueuer.events == []
    assert receiver.stats.snapshot().rejected == {}


def test_get_handshake_echoes_the_challenge(
    receiver: Receiver, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    request = req(clock=clock, method="GET", signed=False, query="hub.challenge=abc%20d")
    answer = receiver.receive("probe", request)
    assert (answer.status, answer.body) == (200, b"abc d")
    assert enqueuer.events == []


def test_get_that_is_no_handshake_is_405(receiver: Receiver, clock: FrozenClock) -> None:
    answer = receiver.receive("probe", req(clock=clock, method="GET"))
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"


def test_other_methods_are_405(receiver: Receiver, clock: FrozenClock) -> None:
    assert receiver.receive("probe", req(rc.batch("m"), clock=clock, method="PUT")).status == 405


# -- 401: authenticity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["unsigned", "wrong_secret", "tampered", "stale", "future", "bad_ts", "bad_scheme"]
)
def test_invalid_signatures_are_401(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock, case: str
) -> None:
    body = rc.batch("s1")
    now = int(clock.now().timestamp())
    request = {
        "unsigned": lambda: req(body, clock=clock, signed=False),
        "wrong_secret": lambda: req(
            body, clock=clock, signed=False, headers=rc.sign(body, secret="nope", timestamp=now)
        ),
        "tampered": lambda: req(body, clock=clock, signed_body=rc.batch("s2")),
        "stale": lambda: req(body, clock=clock, ts=now - 301),
        "future": lambda: req(body, clock=clock, ts=now + 301),
        "bad_ts": lambda: req(body, clock=clock, headers={"x-test-timestamp": "yesterday"}),
        "bad_scheme": lambda: req(body, clock=clock, headers={"x-test-signature": "md5=00"}),
    }[case]()
    answer = receiver.receive("probe", request)
    assert answer.status == 401
    assert error_of(answer.body) == "invalid_signature"
    assert b"mismatch" not in answer.body  # the reason is logged, never told to the sender
    assert_left_nothing(store, enqueuer, "probe", "s1")
    assert receiver.stats.snapshot().rejections(Reason.INVALID_SIGNATURE, "probe") == 1


def test_timestamp_inside_the_window_is_accepted(
    receiver: Receiver, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    now = int(clock.now().timestamp())
    answer = receiver.receive("probe", req(rc.batch("w1"), clock=clock, ts=now - 300))
    assert answer.status == 200
    assert delivery_ids(enqueuer) == ["w1"]


def test_connector_may_ask_for_2xx_and_drop(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    answer = receiver.receive("drop", req(rc.batch("ws1"), clock=clock, signed=False))
    assert (answer.status, answer.body) == (202, b"")
    assert_left_nothing(store, enqueuer, "drop", "ws1")
    assert receiver.stats.snapshot().rejections(Reason.INVALID_SIGNATURE, "drop") == 1


# -- 400: bodies the connector cannot parse -------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"items": [{"id": "p1"}',  # truncated
        b'{"items": {"id": "p1"}}',  # not a list
        b'{"items": ["p1"]}',  # item not an object
        b'{"items": [{"id": "p1", "n": NaN}]}',  # not JSON
        b'{"items": [{"id": "p1", "x": ' + b"[" * 70 + b"]" * 70 + b"}]}",  # too deep
        b"\xff\xfe\xfa",
    ],
)
def test_unparseable_bodies_are_400(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock, body: bytes
) -> None:
    answer = receiver.receive("probe", req(body, clock=clock))
    assert answer.status == 400
    assert error_of(answer.body) == "bad_request"
    assert_left_nothing(store, enqueuer, "probe", "p1")


# -- 503: the queue or the store is down ----------------------------------------------------------


def test_queue_down_is_503_and_releases_keys_so_the_retry_is_accepted(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    enqueuer.fail = True
    answer = receiver.receive("probe", req(rc.batch("q1", "q2"), clock=clock))
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "30"
    assert error_of(answer.body) == "queue_unavailable"
    assert_left_nothing(store, enqueuer, "probe", "q1", "q2")

    enqueuer.fail = False
    retry = receiver.receive("probe", req(rc.batch("q1", "q2"), clock=clock))
    assert retry.status == 200
    assert delivery_ids(enqueuer) == ["q1", "q2"]


def test_queue_down_keeps_keys_of_earlier_deliveries(
    receiver: Receiver, store: Any, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    receiver.receive("probe", req(rc.batch("old"), clock=clock))
    enqueuer.fail = True
    answer = receiver.receive("probe", req(rc.batch("old", "new"), clock=clock))
    assert answer.status == 503
    assert kept(store, "probe", "old")  # marked by the earlier, successful request
    assert not kept(store, "probe", "new")


def test_unexpected_enqueuer_failure_is_503_too(
    clock: FrozenClock, http: httpx.Client, store: Any
) -> None:
    class Broken:
        def enqueue(self, events: Any) -> None:
            raise RuntimeError("boom")

        def ping(self) -> bool:
            return False

    receiver = make_receiver(clock, http, store, Broken())
    assert receiver.receive("probe", req(rc.batch("u1"), clock=clock)).status == 503
    assert not kept(store, "probe", "u1")


def test_store_down_during_dedupe_is_503_with_nothing_kept(
    clock: FrozenClock, http: httpx.Client, memory_store: Any, enqueuer: ListEnqueuer
) -> None:
    receiver = make_receiver(clock, http, memory_store, enqueuer)
    memory_store.fail_mark_after = 1  # the second mark of the batch fails
    answer = receiver.receive("probe", req(rc.batch("x1", "x2", "x3"), clock=clock))
    assert answer.status == 503
    assert error_of(answer.body) == "store_unavailable"
    assert "Retry-After" in answer.headers
    assert enqueuer.events == []
    assert memory_store.keys == {}  # the one key marked before the failure was released


def test_keys_that_cannot_be_released_are_logged_for_replay(
    clock: FrozenClock,
    http: httpx.Client,
    memory_store: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = make_receiver(clock, http, memory_store, ListEnqueuer(fail=True))
    memory_store.fail_unmark = True
    with caplog.at_level(logging.ERROR, logger="hub.webhooks"):
        answer = receiver.receive("probe", req(rc.batch("r1"), clock=clock))
    assert answer.status == 503
    assert "delivery:r1" in caplog.text


# -- 500: connector bugs --------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["handshake", "verify", "parse", "events"])
def test_connector_crash_is_500_generic_and_logged_without_payload(
    receiver: Receiver,
    store: Any,
    enqueuer: ListEnqueuer,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    stage: str,
) -> None:
    instance_id = f"crash-{stage}"
    with caplog.at_level(logging.DEBUG, logger="hub.webhooks"):
        answer = receiver.receive(instance_id, req(rc.batch("c1"), clock=clock))
    assert answer.status == 500
    assert json.loads(answer.body) == {"error": "connector_error", "message": "internal error"}
    assert_left_nothing(store, enqueuer, instance_id, "c1")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert all(getattr(r, "instance", None) == instance_id for r in errors)
    assert rc.CrashingProbeConnector.LEAK not in caplog.text
    assert SECRET not in caplog.text


def test_acknowledge_crash_after_enqueue_still_answers_200(
    receiver: Receiver, enqueuer: ListEnqueuer, clock: FrozenClock
) -> None:
    answer = receiver.receive("crash-acknowledge", req(rc.batch("k1"), clock=clock))
    assert answer.status == 200
    assert delivery_ids(enqueuer) == ["k1"]


# -- admit(): the checks made before the body is read ---------------------------------------------


def test_admit_refuses_early_and_counts_once(receiver: Receiver) -> None:
    assert receiver.admit("probe", method="POST", content_length=10) is None
    assert receiver.admit("probe", method="POST", content_length=None) is None
    unknown = receiver.admit("nope", method="POST", content_length=10)
    too_big = receiver.admit("probe", method="POST", content_length=MAX + 1)
    assert unknown is not None
    assert unknown.status == 404
    assert too_big is not None
    assert too_big.status == 413
    assert receiver.body_too_large("probe").status == 413
    stats = receiver.stats.snapshot()
    assert stats.received == {"(unknown)": 1, "probe": 2}
    assert stats.rejections(Reason.TOO_LARGE, "probe") == 2


def test_receiver_rejects_a_nonsense_cap(
    clock: FrozenClock, enqueuer: ListEnqueuer, memory_store: Any
) -> None:
    with pytest.raises(ValueError, match="positive"):
        Receiver({}, store=memory_store, enqueuer=enqueuer, clock=clock, max_body_bytes=0)


# -- body helpers ---------------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_load_json_allows_64_levels_and_refuses_65() -> None:
    assert json_depth(load_json(nested(64))) == 64
    with pytest.raises(BadRequest, match="deeper than 64") as info:
        load_json(nested(65))
    assert info.value.status == 400


def test_load_json_survives_absurd_depth() -> None:
    with pytest.raises(BadRequest, match="deeper"):
        load_json(nested(200_000))


@pytest.mark.parametrize("body", [b"", b"{", b"NaN", b"[Infinity]", b"\xff", b"1" * 5000])
def test_load_json_refuses_what_is_not_strict_json(body: bytes) -> None:
    with pytest.raises(BadRequest):
        load_json(body)


def test_json_depth_counts_containers() -> None:
    assert json_depth(1) == 0
    assert json_depth({}) == 1
    assert json_depth({"a": [1, {"b": []}]}) == 4
    # Containers of other types (an object_pairs_hook's OrderedDict) count like dicts.
    assert json_depth({"a": OrderedDict(b=[OrderedDict()])}) == 4
    assert json_depth([OrderedDict(b=[[]])]) == 4


def _reference_depth(value: object) -> int:
    """The definition, recursively (fine for the small documents below)."""
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    return 0


def _random_json(rng: random.Random, budget: int) -> object:
    kind = rng.random()
    if budget <= 0 or kind < 0.3:
        return rng.choice([0, 1.5, "x", None, True])
    children = [_random_json(rng, budget - rng.randint(1, 4)) for _ in range(rng.randint(0, 4))]
    if kind < 0.65:
        return children
    return {f"k{i}": child for i, child in enumerate(children)}


def test_json_depth_agrees_with_its_definition_on_random_documents() -> None:
    rng = random.Random(20261129)
    for _ in range(3000):
        doc = _random_json(rng, rng.randint(0, 14))
        depth = _reference_depth(doc)
        assert json_depth(doc) == depth, doc
        limit = rng.randint(0, 12)
        # Stopping early: over the limit exactly when the document is deeper than it.
        assert (json_depth(doc, stop_above=limit) > limit) == (depth > limit), (doc, limit)


def test_decode_body_handles_identity_and_multi_member_gzip() -> None:
    assert decode_body(b"plain", None, limit=10) == b"plain"
    assert decode_body(b"plain", "identity", limit=10) == b"plain"
    two_members = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert decode_body(two_members, "GZIP", limit=10) == b"abcd"
    with pytest.raises(BadRequest) as info:
        decode_body(two_members, "x-gzip", limit=3)
    assert info.value.status == 413


def test_dedupe_key_bounds_long_ids() -> None:
    assert dedupe_key("abc") == "delivery:abc"
    long_key = dedupe_key("x" * 10_000)
    assert long_key.startswith("delivery:sha256:")
    assert len(long_key) < 100
