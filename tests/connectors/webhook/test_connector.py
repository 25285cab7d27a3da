"""GenericWebhookConnector: settings, mapping validation, handshakes, parse() and map()."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import uuid
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from connectors.webhook.connector import GenericWebhookConnector
from connectors.webhook.dryrun import dry_run
from connectors.webhook.settings import GenericWebhookSettings
from connectors.webhook.spec import MappingSpec, load_mapping
from hub.errors import BadRequest, ConfigError, MappingError, UnresolvedActor
from hub.mapping import Unmapped
from hub.xapi import canonical_bytes, statement_namespace, validate_statement
from hub.xapi.validation import StatementInvalid

VERB = {"key": "attended", "id": "http://adlnet.gov/expapi/verbs/attended", "display": "attended"}


def mapping(**overrides: Any) -> dict[str, Any]:
    """A small inline mapping: one route per `type`, statements keyed by `id`."""
    base: dict[str, Any] = {
        "vendor": "inline",
        "mapping_version": 1,
        "platform": "Inline",
        "auth": [{"type": "static_header", "header": "x-api-key"}],
        "event_type": "type",
        "delivery_id": "id",
        "routes": [
            {
                "name": "done",
                "when": "type == 'done'",
                "statements": [
                    {
                        "verb": VERB,
                        "actor": {"email": "user.email", "account_name": "user.id"},
                        "object": {
                            "id": "activity_id('thing', thing)",
                            "type": "http://adlnet.gov/expapi/activities/meeting",
                        },
                        "timestamp": "to_datetime(at)",
                        "natural_key": {"thing": "thing", "user": "user.id"},
                    }
                ],
            }
        ],
    }
    base.update(overrides)
    return base


def build(kit: Any, spec: dict[str, Any] | None = None, **settings: Any) -> GenericWebhookConnector:
    secrets = settings.pop("secrets", {"current": SecretStr("k")})
    conn: GenericWebhookConnector = kit.build(
        mapping=spec or mapping(), secrets=secrets, **settings
    )
    return conn


ITEM = {
    "id": "d1",
    "type": "done",
    "thing": "t1",
    "at": "2025-01-02T03:04:05Z",
    "user": {"id": "u1", "email": "U1@Example.com"},
}


# --- identity of the instance ---------------------------------------------------------------


def test_source_and_platform_are_per_instance(kit: Any) -> None:
    conn = kit.build("example-coaching")
    assert conn.source == "webhook:acmecoach"
    assert conn.platform == "AcmeCoach"
    assert GenericWebhookConnector.source == "webhook"  # the class is untouched
    assert conn.account_home_page == "https://app.acmecoach.example"
    other = kit.build(
        "example-coaching", platform="Acme Coaching", actor_home_page="https://x.example"
    )
    assert other.platform == "Acme Coaching"
    assert other.account_home_page == "https://x.example"
    assert kit.build(mapping=mapping(), secrets={"current": SecretStr("k")}).account_home_page == (
        "https://acme"
    )


def test_settings_need_exactly_one_mapping_source() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        GenericWebhookSettings(tenant="acme")
    with pytest.raises(ValidationError, match="exactly one"):
        GenericWebhookSettings(tenant="acme", preset="sparkwise", mapping=mapping())
    with pytest.raises(ValidationError):
        GenericWebhookSettings(tenant="acme", preset="sparkwise", surprise=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="tenant"):
        GenericWebhookSettings(tenant="Acme Corp", preset="sparkwise")


def test_unknown_or_sneaky_preset_is_a_config_error() -> None:
    for name in ("nope", "../settings", "Example-Coaching", "example-coaching.yaml"):
        with pytest.raises(ConfigError, match="unknown webhook preset"):
            GenericWebhookSettings(tenant="acme", preset=name).load_spec()


def test_mapping_file(kit: Any, tmp_path: Any) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(json.dumps(mapping()), encoding="utf-8")  # JSON is YAML
    conn = kit.build(mapping_file=path, secrets={"current": SecretStr("k")})
    assert conn.source == "webhook:inline"
    path.write_text("vendor: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid mapping_file"):
        kit.build(mapping_file=path, secrets={"current": SecretStr("k")})
    with pytest.raises(ConfigError, match="cannot read"):
        kit.build(mapping_file=tmp_path / "missing.yaml")


def test_settings_json_schema_exports() -> None:
    schema = GenericWebhookSettings.model_json_schema()
    assert "mapping" in schema["properties"]


# --- mapping validation ---------------------------------------------------------------------


def invalid(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        MappingSpec.model_validate(spec)


def test_a_statement_without_natural_key_fails_validation() -> None:
    spec = mapping()
    del spec["routes"][0]["statements"][0]["natural_key"]
    invalid(spec, "natural_key is required")
    spec["routes"][0]["statements"][0]["natural_key"] = []
    invalid(spec, "natural_key is required")


def test_expressions_are_checked_at_load_time() -> None:
    spec = mapping()
    spec["routes"][0]["when"] = "type =="
    invalid(spec, "invalid expression")
    spec = mapping()
    spec["routes"][0]["statements"][0]["timestamp"] = "eval(at)"
    invalid(spec, "unknown function")


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("vendor",), "Acme Coach", "pattern"),
        (("auth",), [], "at least one request verifier"),
        (("auth",), [{"type": "hmac", "header": "x", "secrets": ["a", "b", "c"]}], "1 or 2"),
        (("auth",), [{"type": "static_header", "header": "x", "secrets": ["sk live!"]}], "secret"),
        (("auth",), [{"type": "jwt"}], "does not match any of the expected tags"),
        (("ingress",), {"content_types": ["application/xml"]}, "content_types"),
        (("ingress",), {"ack": {"status": 204, "body": "ok"}}, "204"),
        (("routes",), [], "at least 1"),
        (("routes", 0, "statements", 0, "verb", "id"), "attended", "absolute IRI"),
        (("routes", 0, "statements", 0, "verb", "key"), "Attended Now", "pattern"),
        (("routes", 0, "statements", 0, "actor"), {"name": "user.name"}, "email and/or"),
        (("routes", 0, "statements", 0, "natural_key"), {"a|b": "x"}, "natural-key name"),
        (("routes", 0, "statements", 0, "surprise"), 1, "Extra inputs"),
        (
            ("routes", 0, "statements", 0, "context"),
            {"extensions": {"{base}/extensions/{thing}": "thing"}},
            "unknown placeholder",
        ),
    ],
)
def test_invalid_mappings(path: tuple[Any, ...], value: Any, match: str) -> None:
    spec = copy.deepcopy(mapping())
    node: Any = spec
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    invalid(spec, match)


def test_shipped_presets_load_with_yaml_safe_load(kit: Any) -> None:
    text = (
        kit.fixtures.parents[3] / "connectors/webhook/presets/example-coaching.yaml"
    ).read_text()
    spec = load_mapping(text)
    assert spec.source == "webhook:acmecoach"
    assert spec.secret_names() == {"env:ACMECOACH_SECRET", "env:ACMECOACH_SECRET_PREVIOUS"}


# --- handshakes ----------------------------------------------------------------------------


def test_slack_style_echo_json_field(kit: Any) -> None:
    hs = [{"type": "echo_json_field"}]
    conn = build(kit, mapping(handshakes=hs))
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aB"}).encode()
    answer = conn.handshake(kit.request(body))
    assert answer is not None
    assert (answer.status, answer.body, answer.content_type) == (
        200,
        b"3eZbrw1aB",
        "text/plain; charset=utf-8",
    )
    assert conn.handshake(kit.request(json.dumps(ITEM).encode())) is None
    assert conn.handshake(kit.request(b"not json")) is None
    as_json = build(kit, mapping(handshakes=[{"type": "echo_json_field", "respond_as": "json"}]))
    answer = as_json.handshake(kit.request(body))
    assert answer is not None
    assert json.loads(answer.body) == {"challenge": "3eZbrw1aB"}


def test_websub_get_challenge_with_topic_check(kit: Any) -> None:
    topic = "https://www.youtube.com/xml/feeds/videos.xml?channel_id=UC1"
    hs = [{"type": "echo_query_param", "topics": [topic]}]
    conn = build(kit, mapping(handshakes=hs))
    from urllib.parse import urlencode

    query = urlencode({"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": "c-123"})
    answer = conn.handshake(kit.request(method="GET", content_type=None, query=query))
    assert answer is not None
    assert (answer.status, answer.body) == (200, b"c-123")
    unknown = urlencode({"hub.topic": "https://evil.example/feed", "hub.challenge": "c"})
    answer = conn.handshake(kit.request(method="GET", content_type=None, query=unknown))
    assert answer is not None
    assert answer.status == 404
    assert conn.handshake(kit.request(method="GET", content_type=None)) is None


def test_graph_validation_token_is_url_decoded_text(kit: Any) -> None:
    hs = [{"type": "echo_query_param", "method": "POST", "param": "validationToken"}]
    conn = build(kit, mapping(handshakes=hs))
    answer = conn.handshake(
        kit.request(
            b"", content_type=None, query="validationToken=Validation%3A%20Testing%20client"
        )
    )
    assert answer is not None
    assert answer.body == b"Validation: Testing client"
    assert answer.content_type.startswith("text/plain")


def test_hmac_challenge_is_answered_only_for_verified_requests(kit: Any) -> None:
    hs = [{"type": "hmac_challenge", "when": "event == 'endpoint.url_validation'"}]
    conn = build(kit, mapping(handshakes=hs), secrets={"current": SecretStr("zoom-secret")})
    body = json.dumps({"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8v"}})
    answer = conn.handshake(kit.request(body.encode(), headers={"x-api-key": "zoom-secret"}))
    assert answer is not None
    assert answer.status == 200
    expected = hashlib.sha256  # HMAC-SHA256(secret, plainToken), hex
    import hmac

    mac = hmac.new(b"zoom-secret", b"qgg8v", expected).hexdigest()
    assert json.loads(answer.body) == {"plainToken": "qgg8v", "encryptedToken": mac}
    refused = conn.handshake(kit.request(body.encode(), headers={"x-api-key": "wrong"}))
    assert refused is not None
    assert refused.status == 401


def test_static_response(kit: Any) -> None:
    hs = [{"type": "static_response", "method": "GET", "body": "verified", "status": 200}]
    conn = build(kit, mapping(handshakes=hs))
    answer = conn.handshake(kit.request(method="GET", content_type=None))
    assert answer is not None
    assert answer.body == b"verified"
    assert conn.handshake(kit.request(json.dumps(ITEM).encode())) is None


def test_ack_is_configurable(kit: Any) -> None:
    conn = kit.build("example-coaching")
    ack = conn.acknowledge(kit.request(b"{}"), [])
    assert ack.status == 202


# --- parse -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "text/csv"])
def test_unsupported_content_type_is_415(kit: Any, content_type: str | None) -> None:
    conn = build(kit)
    with pytest.raises(BadRequest) as info:
        conn.parse(kit.request(b"{}", content_type=content_type))
    assert info.value.status == 415


def test_json_with_charset_parameter(kit: Any) -> None:
    conn = build(kit)
    events = conn.parse(
        kit.request(json.dumps(ITEM).encode(), content_type="application/json; charset=utf-8")
    )
    assert [(e.event_type, e.delivery_id) for e in events] == [("done", "d1")]
    assert events[0].instance_id == "test-inline"
    assert events[0].received_at == kit.received_at


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{", 400),
        (b"\xff\xfe{", 400),
        (b"NaN", 400),
        (b"[" * 65 + b"]" * 65, 415),
        (b"[" * 100_000 + b"]" * 100_000, 415),
        (b"42", 400),
        (b'[{"a": 1}, 5]', 400),
    ],
)
def test_bad_json_bodies(kit: Any, body: bytes, status: int) -> None:
    conn = build(kit, mapping(items="@ || `[]`"))
    with pytest.raises(BadRequest) as info:
        conn.parse(kit.request(body))
    assert info.value.status == status


def test_json_nesting_limit_is_inclusive_and_counts_objects(kit: Any) -> None:
    conn = build(kit, mapping(items="@ || `[]`", ingress={"max_depth": 3}))
    item = {"delivery_id": "d1", "a": {"b": 1}}  # depth 2 inside the list: 3 in all
    assert len(conn.parse(kit.request(json.dumps([item]).encode()))) == 1
    item["a"] = {"b": {"c": 1}}
    with pytest.raises(BadRequest) as info:
        conn.parse(kit.request(json.dumps([item]).encode()))
    assert info.value.status == 415


@pytest.mark.parametrize("body", [b'{"n": Infinity}', b'{"n": -Infinity}', b'{"n": NaN}'])
def test_non_finite_json_numbers_are_400(kit: Any, body: bytes) -> None:
    conn = build(kit)
    with pytest.raises(BadRequest) as info:
        conn.parse(kit.request(body))
    assert info.value.status == 400


def test_integers_beyond_64_bits_parse_exactly(kit: Any) -> None:
    from urllib.parse import urlencode

    big = 2**70 + 1
    conn = build(kit)
    body = json.dumps({**ITEM, "big": big}).encode()
    assert conn.parse(kit.request(body))[0].payload["big"] == big  # type: ignore[index,call-overload]
    form = build(kit, mapping(ingress={"content_types": ["application/x-www-form-urlencoded"]}))
    body = urlencode({"payload": json.dumps({**ITEM, "big": -big})}).encode()
    events = form.parse(kit.request(body, content_type="application/x-www-form-urlencoded"))
    assert events[0].payload["big"] == -big  # type: ignore[index,call-overload]


def test_size_cap_and_gzip(kit: Any) -> None:
    conn = build(kit, mapping(ingress={"max_body_bytes": 1000}))
    with pytest.raises(BadRequest) as info:
        conn.parse(kit.request(b" " * 1001))
    assert info.value.status == 413
    packed = gzip.compress(json.dumps(ITEM).encode())
    events = conn.parse(kit.request(packed, headers={"Content-Encoding": "gzip"}))
    assert events[0].payload["thing"] == "t1"  # type: ignore[index,call-overload]
    bomb = gzip.compress(b" " * 100_000)
    with pytest.raises(BadRequest) as info:
        conn.parse(kit.request(bomb, headers={"Content-Encoding": "gzip"}))
    assert info.value.status == 413
    with pytest.raises(BadRequest) as info:
        conn.parse(kit.request(b"junk", headers={"Content-Encoding": "gzip"}))
    assert info.value.status == 400
    with pytest.raises(BadRequest) as info:
        conn.parse(kit.request(b"{}", headers={"Content-Encoding": "br"}))
    assert info.value.status == 415


def test_form_body_with_payload_json(kit: Any) -> None:
    from urllib.parse import urlencode

    conn = build(kit, mapping(ingress={"content_types": ["application/x-www-form-urlencoded"]}))
    body = urlencode({"payload": json.dumps(ITEM)}).encode()
    events = conn.parse(kit.request(body, content_type="application/x-www-form-urlencoded"))
    assert events[0].event_type == "done"
    plain = urlencode({"type": "done", "id": "f1", "tag": "a"}).encode() + b"&tag=b"
    events = conn.parse(kit.request(plain, content_type="application/x-www-form-urlencoded"))
    assert events[0].payload == {"type": "done", "id": "f1", "tag": ["a", "b"]}


def test_csv_rows_become_items(kit: Any) -> None:
    conn = build(kit, mapping(items="@", ingress={"content_types": ["text/csv"]}))
    body = "\ufeffid,type,thing\nr1,done,t1\nr2,other,t2,extra\n".encode()
    events = conn.parse(kit.request(body, content_type="text/csv"))
    assert [e.payload for e in events] == [
        {"id": "r1", "type": "done", "thing": "t1", "$envelope": None},
        {"id": "r2", "type": "other", "thing": "t2", "_extra": ["extra"], "$envelope": None},
    ]


def test_batches_keep_the_envelope_and_unique_delivery_ids(kit: Any) -> None:
    spec = mapping(items="payloads || [payload]", delivery_id="$envelope.message_id")
    conn = build(kit, spec)
    body = json.dumps(
        {"message_id": "m-9", "payloads": [dict(ITEM, thing="a"), dict(ITEM, thing="b")]}
    ).encode()
    events = conn.parse(kit.request(body))
    assert [e.delivery_id for e in events] == ["m-9:0", "m-9:1"]
    assert events[0].payload["$envelope"] == {"message_id": "m-9"}  # type: ignore[index,call-overload]
    single = json.dumps({"message_id": "m-10", "payload": ITEM}).encode()
    assert [e.delivery_id for e in conn.parse(kit.request(single))] == ["m-10"]


def test_delivery_id_falls_back_to_the_body_hash_and_index(kit: Any) -> None:
    conn = build(kit, mapping(items="@", delivery_id=None, event_type=None))
    body = json.dumps([ITEM, ITEM]).encode()
    events = conn.parse(kit.request(body))
    digest = hashlib.sha256(body).hexdigest()
    assert [e.delivery_id for e in events] == [f"sha256:{digest}:0", f"sha256:{digest}:1"]
    assert {e.event_type for e in events} == {"item"}


def test_json_field_equals_drops_foreign_items(kit: Any) -> None:
    auth = [
        {"type": "static_header", "header": "x-api-key"},
        {"type": "json_field_equals", "path": "clientState", "secrets": ["state"]},
    ]
    conn = build(
        kit,
        mapping(items="value", auth=auth),
        secrets={"current": SecretStr("k"), "state": SecretStr("s3")},
    )
    body = json.dumps(
        {"value": [dict(ITEM, clientState="s3"), dict(ITEM, clientState="bad"), dict(ITEM)]}
    ).encode()
    assert len(conn.parse(kit.request(body))) == 1


def test_parse_makes_no_network_calls(kit: Any) -> None:
    import respx

    with respx.mock(assert_all_called=False, assert_all_mocked=True):
        build(kit).parse(kit.request(json.dumps(ITEM).encode()))


# --- map --------------------------------------------------------------------------------------


def events_of(kit: Any, conn: GenericWebhookConnector, item: dict[str, Any]) -> Any:
    return conn.parse(kit.request(json.dumps(item).encode()))


def map_one(kit: Any, conn: GenericWebhookConnector, item: dict[str, Any]) -> Any:
    (event,) = events_of(kit, conn, item)
    return conn.map(event, kit.context(conn, event))


def test_statement_id_follows_the_fixed_key_format(kit: Any) -> None:
    conn = build(kit)
    (statement,) = map_one(kit, conn, ITEM)
    key = "webhook:inline|acme|attended|thing=t1|user=u1"
    assert statement.id == str(uuid.uuid5(statement_namespace(kit.base_iri), key))
    w1 = (kit.fixtures / "example-coaching/events/w1-session-completed.json").read_bytes()
    (first,) = kit.map_body(kit.build("example-coaching"), w1)
    nk = "webhook:acmecoach|acme|attended|k1=ses_9001|k2=u_123"
    assert first["id"] == str(uuid.uuid5(uuid.UUID("b3b2824f-59e2-5129-80fb-fdeb67e0c2bd"), nk))


def test_unmatched_items_are_unmapped_with_their_event_type(kit: Any) -> None:
    assert map_one(kit, build(kit), dict(ITEM, type="coffee.break")) == Unmapped("coffee.break")
    sparkwise = kit.build("sparkwise")
    body = json.dumps([{"id": "c2", "attended": False, "remoteUserId": "u"}]).encode()
    (event,) = sparkwise.parse(kit.request(body))
    assert sparkwise.map(event, kit.context(sparkwise, event)) == Unmapped("completion")


def test_first_match_wins_unless_continue(kit: Any) -> None:
    spec = mapping()
    route = spec["routes"][0]
    spec["routes"] = [route, dict(route, when="thing == 't1'")]
    assert len(map_one(kit, build(kit, spec), ITEM)) == 1
    spec["routes"][0] = dict(route, **{"continue": True})
    assert len(map_one(kit, build(kit, spec), ITEM)) == 2


def test_unresolvable_actor_raises_unresolved_actor(kit: Any) -> None:
    with pytest.raises(UnresolvedActor):
        map_one(kit, build(kit), dict(ITEM, user={"name": "nobody"}))


def test_missing_timestamp_is_a_mapping_error(kit: Any) -> None:
    with pytest.raises(MappingError, match=r"routes\[0\] \(done\)\.statements\[0\]\.timestamp"):
        map_one(kit, build(kit), {k: v for k, v in ITEM.items() if k != "at"})


def test_missing_natural_key_part_is_a_mapping_error(kit: Any) -> None:
    with pytest.raises(MappingError, match="natural-key part 'user'"):
        map_one(kit, build(kit), dict(ITEM, user={"email": "a@b.example"}))
    with pytest.raises(MappingError, match="contains"):
        map_one(kit, build(kit), dict(ITEM, thing="a|b"))


def test_now_marks_the_timestamp_inferred(kit: Any) -> None:
    spec = mapping()
    spec["routes"][0]["statements"][0]["timestamp"] = "to_datetime(at) || now()"
    (statement,) = map_one(kit, build(kit, spec), {k: v for k, v in ITEM.items() if k != "at"})
    data = statement.to_json()
    assert data["timestamp"] == "2026-02-01T12:00:00.000Z"
    assert data["context"]["extensions"][f"{kit.base_iri}/extensions/timestamp-inferred"] is True
    (normal,) = map_one(kit, build(kit, spec), ITEM)
    assert (
        f"{kit.base_iri}/extensions/timestamp-inferred"
        not in normal.to_json()["context"]["extensions"]
    )


def test_null_result_fields_are_omitted_and_flags_are_typed(kit: Any) -> None:
    spec = mapping()
    spec["routes"][0]["statements"][0]["result"] = {
        "completion": True,
        "success": "passed",
        "score": "percent_to_score(pct)",
        "duration": "seconds_to_duration(secs)",
        "extensions": {"{base}/extensions/x": "missing"},
    }
    (statement,) = map_one(kit, build(kit, spec), ITEM)
    assert statement.to_json()["result"] == {"completion": True}
    (statement,) = map_one(kit, build(kit, spec), dict(ITEM, passed=False, pct=85, secs=1152))
    assert statement.to_json()["result"] == {
        "completion": True,
        "success": False,
        "score": {"raw": 85, "min": 0, "max": 100, "scaled": 0.85},
        "duration": "PT19M12S",
    }
    with pytest.raises(MappingError, match="success must be"):
        map_one(kit, build(kit, spec), dict(ITEM, passed="yes"))


def test_free_text_is_off_by_default(kit: Any) -> None:
    spec = mapping()
    stmt = spec["routes"][0]["statements"][0]
    stmt["object"]["name"] = {"path": "title", "free_text": True}
    stmt["result"] = {"response": "notes"}
    item = dict(ITEM, title="My private goal", notes="I feel...")
    (statement,) = map_one(kit, build(kit, spec), item)
    data = statement.to_json()
    assert "name" not in data["object"]["definition"]
    assert "result" not in data
    (statement,) = map_one(kit, build(kit, spec, include_free_text=True), item)
    data = statement.to_json()
    assert data["object"]["definition"]["name"] == {"en": "My private goal"}
    assert data["result"]["response"] == "I feel..."


def test_agent_object_registration_and_context_lists(kit: Any) -> None:
    spec = mapping()
    stmt = spec["routes"][0]["statements"][0]
    stmt["verb"] = {
        "key": "mentored",
        "id": "http://id.tincanapi.com/verb/mentored",
        "display": "mentored",
    }
    stmt["actor"] = {"email": "coach.email"}
    stmt["object"] = {"agent": {"email": "user.email", "account_name": "user.id"}}
    stmt["context"] = {
        "registration": {"user": "user.id", "thing": "thing"},
        "grouping": ["activity_id('program', program)", {"id": "activity_id('team', team)"}],
        "language": "lang",
    }
    item = dict(ITEM, coach={"email": "c@x.example"}, program="p1", lang="de-CH")
    (statement,) = map_one(kit, build(kit, spec), item)
    data = statement.to_json()
    assert data["object"] == {"objectType": "Agent", "mbox": "mailto:u1@example.com"}
    reg_key = "webhook:inline|acme|registration|user=u1|thing=t1"
    assert data["context"]["registration"] == str(
        uuid.uuid5(statement_namespace(kit.base_iri), reg_key)
    )
    assert data["context"]["contextActivities"] == {
        "grouping": [{"id": f"{kit.base_iri}/activities/webhook:inline/acme/program/p1"}]
    }
    assert data["context"]["language"] == "de-CH"
    assert validate_statement(statement, now=kit.received_at, hub_rules=True) == []


def test_invalid_statements_are_mapping_errors(kit: Any) -> None:
    spec = mapping()
    spec["routes"][0]["statements"][0]["object"]["id"] = "thing"
    with pytest.raises(MappingError, match="absolute IRI"):
        map_one(kit, build(kit, spec), ITEM)


def test_statements_that_break_xapi_rules_are_caught_by_the_pipelines_check(kit: Any) -> None:
    # The engine builds the statement; the pipeline's single validation (canonical_bytes) and
    # the dry run refuse it, so it is dead-lettered / reported and never queued.
    spec = mapping()
    spec["routes"][0]["statements"][0]["context"] = {"language": "lang"}
    conn = build(kit, spec)
    item = dict(ITEM, lang="not a language tag")
    (statement,) = map_one(kit, conn, item)
    with pytest.raises(StatementInvalid, match="language"):
        canonical_bytes(statement, now=kit.received_at)
    listing = mapping(items="@")
    listing["routes"][0]["statements"][0]["context"] = {"language": "lang"}
    body = json.dumps([item, dict(ITEM, lang="en-GB")]).encode()
    report = dry_run(
        build(kit, listing), kit.request(body), base_iri=kit.base_iri, actors=kit.resolver()
    )
    assert [r.outcome for r in report] == ["error", "statements"]
    assert report[0].error is not None
    assert report[0].error.startswith("invalid statement: statements[0]: ")


def test_w1_passes_hub_xapi_validation(kit: Any) -> None:
    body = (kit.fixtures / "example-coaching/events/w1-session-completed.json").read_bytes()
    conn = kit.build("example-coaching")
    (statement,) = kit.map_events(conn, conn.parse(kit.request(body)))
    assert validate_statement(statement, now=kit.received_at, hub_rules=True) == []
    sent = json.loads(canonical_bytes(statement))
    assert sent["actor"] == {"mbox": "mailto:ada@example.com"}
    assert sent["verb"]["id"] == "http://adlnet.gov/expapi/verbs/attended"
    assert sent["result"]["duration"] == "PT45M"
    assert sent["timestamp"] == "2024-05-03T15:00:00.000Z"
    assert sent["context"]["instructor"] == {"mbox": "mailto:coach.kim@acmecoach.example"}


def test_dry_run_reports_every_item(kit: Any) -> None:
    conn = build(kit, mapping(items="@"))
    body = json.dumps([ITEM, dict(ITEM, type="other"), dict(ITEM, at="yesterday")]).encode()
    report = dry_run(conn, kit.request(body), base_iri=kit.base_iri, actors=kit.resolver())
    assert [r.outcome for r in report] == ["statements", "unmapped", "error"]
    assert report[0].statements[0]["verb"]["id"] == VERB["id"]
    assert report[2].error is not None
    assert "timestamp" in report[2].error
