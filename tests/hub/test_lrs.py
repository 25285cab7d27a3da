"""LrsClient: what it sends, and how it classifies every answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from hub.clock import FrozenClock
from hub.errors import DeliveryPermanent, DeliveryTransient
from hub.lrs import (
    BatchOutcome,
    LrsClient,
    LrsTarget,
    LrsUnauthorized,
    Outcome,
    classify_status,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
SID = "0b6c2f5e-8c1a-4e0f-9a57-3d1f2b7c9e01"
PASSWORD = "s3cr3t-Pa55"
TOKEN = "tok-abc-123-very-secret"

Handler = Callable[[httpx.Request], httpx.Response]


def basic_target(**kw: object) -> LrsTarget:
    data: dict[str, object] = {
        "name": "ll",
        "endpoint": "https://lrs.example.org/xAPI",
        "username": "hub",
        "password": PASSWORD,
    }
    data.update(kw)
    return LrsTarget.model_validate(data)


def make_client(handler: Handler, target: LrsTarget | None = None) -> LrsClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return LrsClient(target or basic_target(), http=http, clock=FrozenClock(NOW))


class Recorder:
    def __init__(self, response: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.response = response or httpx.Response(200, json=[SID])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.response


# -- LrsTarget ------------------------------------------------------------------------------------
def test_endpoint_gets_a_trailing_slash_once() -> None:
    assert basic_target().endpoint == "https://lrs.example.org/xAPI/"
    assert basic_target(endpoint="https://lrs.example.org/xAPI/").endpoint == (
        "https://lrs.example.org/xAPI/"
    )
    assert basic_target().statements_url == "https://lrs.example.org/xAPI/statements"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint": "lrs.example.org/xAPI"}, "absolute"),
        ({"endpoint": "https://hub:pw@lrs.example.org/xAPI"}, "credentials"),
        ({"endpoint": "https://lrs.example.org/xAPI/statements"}, "before 'statements'"),
        ({"endpoint": "https://lrs.example.org/xAPI?x=1"}, "query"),
        ({"password": None}, "both username and password"),
        ({"token": TOKEN}, "exactly one"),
        ({"username": None, "password": None}, "exactly one"),
        ({"xapi_version": "1.1.0"}, "xapi_version"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_target_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        basic_target(**changes)


# -- what is sent --------------------------------------------------------------------------------
def test_post_batch_sends_joined_canonical_bytes_and_headers() -> None:
    rec = Recorder()
    client = make_client(rec)
    # Deliberately odd but valid JSON: the client must not re-serialise it.
    bodies = [b'{"id":"a","z":1,  "a":"\\u00e9"}', b'{"id":"b"}']
    outcome = client.post_batch(bodies)
    assert outcome == BatchOutcome(kind=Outcome.STORED, status=200)
    (request,) = rec.requests
    assert request.method == "POST"
    assert str(request.url) == "https://lrs.example.org/xAPI/statements"
    assert request.content == b'[{"id":"a","z":1,  "a":"\\u00e9"},{"id":"b"}]'
    assert request.headers["X-Experience-API-Version"] == "1.0.3"
    assert request.headers["Content-Type"] == "application/json"
    expected = base64.b64encode(f"hub:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_bearer_token_and_version_2() -> None:
    rec = Recorder(httpx.Response(204))
    target = LrsTarget(
        name="ralph",
        endpoint="http://127.0.0.1:8100/xAPI/",
        token=SecretStr(TOKEN),
        xapi_version="2.0.0",
    )
    outcome = make_client(rec, target).post_batch([b'{"id":"a"}'])
    assert outcome.kind is Outcome.STORED
    (request,) = rec.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Experience-API-Version"] == "2.0.0"


def test_empty_batch_is_refused_locally() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="at least one"):
        make_client(rec).post_batch([])
    assert rec.requests == []


# -- classification ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, Outcome.STORED),
        (204, Outcome.STORED),
        (409, Outcome.CONFLICT),
        (400, Outcome.REJECTED),
        (422, Outcome.REJECTED),
        (415, Outcome.REJECTED),
        (413, Outcome.TOO_LARGE),
        (408, Outcome.RETRY),
        (425, Outcome.RETRY),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (504, Outcome.RETRY),
        (401, Outcome.AUTH),
        (403, Outcome.AUTH),
        (404, Outcome.AUTH),
        (405, Outcome.AUTH),
        (301, Outcome.AUTH),
        (308, Outcome.AUTH),
    ],
)
def test_every_status_is_classified(status: int, kind: Outcome) -> None:
    assert classify_status(status) is kind
    outcome = make_client(Recorder(httpx.Response(status, text="nope"))).post_batch([b"{}"])
    assert outcome.kind is kind
    assert outcome.status == status
    assert outcome.detail == ("" if kind is Outcome.STORED else "nope")


def test_rejection_detail_is_the_lrs_message_truncated() -> None:
    warning = {"warnings": ["Problem in 'statements.1.actor.mbox'. " + "x" * 2000]}
    outcome = make_client(Recorder(httpx.Response(400, json=warning))).post_batch([b"{}"])
    assert outcome.kind is Outcome.REJECTED
    assert outcome.detail.startswith('{"warnings":["Problem in \'statements.1.actor.mbox\'.')
    assert len(outcome.detail) <= 500


def test_ralph_500_on_an_invalid_mbox_is_retry() -> None:
    response = httpx.Response(500, text="Internal Server Error")
    outcome = make_client(Recorder(response)).post_batch([b"{}", b"{}"])
    assert outcome == BatchOutcome(
        kind=Outcome.RETRY, status=500, detail="Internal Server Error", retry_after=None
    )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("Sat, 28 Nov 2026 12:00:42 GMT", 42.0), ("later", None)],
)
def test_retry_after_seconds_and_http_date(header: str, seconds: float | None) -> None:
    response = httpx.Response(429, headers={"Retry-After": header})
    outcome = make_client(Recorder(response)).post_batch([b"{}"])
    assert outcome.kind is Outcome.RETRY
    assert outcome.retry_after == seconds


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("gone"),
    ],
)
def test_network_errors_are_retry(error: httpx.TransportError) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise error

    outcome = make_client(handler).post_batch([b"{}"])
    assert outcome.kind is Outcome.RETRY
    assert outcome.status is None
    assert type(error).__name__ in outcome.detail
    # Only a dead keep-alive connection earns one immediate second try.
    reconnectable = isinstance(error, httpx.ConnectError | httpx.RemoteProtocolError)
    assert calls == (2 if reconnectable else 1)


def test_a_stale_connection_is_retried_once_in_process() -> None:
    answers: list[Exception | httpx.Response] = [
        httpx.RemoteProtocolError("Server disconnected"),
        httpx.Response(200, json=[SID]),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert make_client(handler).post_batch([b"{}"]).kind is Outcome.STORED


# -- get_statement -------------------------------------------------------------------------------
STATEMENT = {"id": SID, "actor": {"mbox": "mailto:a@example.org"}, "verb": {"id": "x:v"}}


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json=STATEMENT),  # spec / Learning Locker: bare statement
        httpx.Response(200, json={"statements": [STATEMENT]}),  # Ralph
        httpx.Response(200, json={"statements": [{"id": "other"}, STATEMENT], "more": ""}),
    ],
)
def test_get_statement_shapes(response: httpx.Response) -> None:
    rec = Recorder(response)
    assert make_client(rec).get_statement(SID) == STATEMENT
    (request,) = rec.requests
    assert request.method == "GET"
    assert request.url.params["statementId"] == SID
    assert request.headers["X-Experience-API-Version"] == "1.0.3"
    assert "Content-Type" not in request.headers
    assert request.headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "response",
    [httpx.Response(404, json={"message": "no"}), httpx.Response(200, json={"statements": []})],
)
def test_get_statement_none(response: httpx.Response) -> None:
    assert make_client(Recorder(response)).get_statement(SID) is None


def test_get_statement_failures() -> None:
    busy = httpx.Response(503, headers={"Retry-After": "9"})
    with pytest.raises(DeliveryTransient) as info:
        make_client(Recorder(busy)).get_statement(SID)
    assert info.value.retry_after == 9.0
    with pytest.raises(LrsUnauthorized):
        make_client(Recorder(httpx.Response(401))).get_statement(SID)
    with pytest.raises(DeliveryPermanent, match="400"):
        make_client(Recorder(httpx.Response(400, text="bad"))).get_statement(SID)
    with pytest.raises(DeliveryPermanent, match="invalid JSON"):
        make_client(Recorder(httpx.Response(200, text="<html>"))).get_statement(SID)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    with pytest.raises(DeliveryTransient, match="ReadTimeout"):
        make_client(down).get_statement(SID)


# -- secrets -------------------------------------------------------------------------------------
def test_secrets_absent_from_repr_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    basic = make_client(Recorder(httpx.Response(401, text="Invalid authentication credentials")))
    token_target = LrsTarget(name="r", endpoint="https://r.example.org/x", token=SecretStr(TOKEN))
    bearer = make_client(Recorder(httpx.Response(503)), token_target)
    basic.post_batch([b"{}"])
    bearer.post_batch([b"{}"])
    texts = [
        repr(basic),
        str(basic),
        repr(bearer),
        repr(basic.target),
        repr(bearer.target),
        str(basic.target.model_dump()),
        basic.target.model_dump_json(),
        repr(basic._auth),
        repr(bearer._auth),
        caplog.text,
    ]
    for text in texts:
        assert PASSWORD not in text
        assert TOKEN not in text
    assert repr(basic) == (
        "LrsClient(name='ll', endpoint='https://lrs.example.org/xAPI/', auth='basic', "
        "xapi_version='1.0.3')"
    )
    assert "401" in caplog.text


def test_json_body_is_valid_for_real_statements() -> None:
    rec = Recorder()
    bodies = [json.dumps({"id": str(i)}).encode() for i in range(3)]
    make_client(rec).post_batch(bodies)
    assert json.loads(rec.requests[0].content) == [{"id": "0"}, {"id": "1"}, {"id": "2"}]
