"""hub.signatures (HMAC, static header, Basic, query token) and the connector's verify().

Vectors from vendors.md 8.3. Every malformed input must raise InvalidSignature and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from hub.clock import FrozenClock
from hub.errors import ConfigError, InvalidSignature
from hub.events import WebhookRequest
from hub.signatures import (
    BasicAuthVerifier,
    HmacVerifier,
    QueryTokenVerifier,
    StaticHeaderVerifier,
    secret_bytes,
)

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfm"
    b"ibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def req(
    body: bytes = b"", headers: dict[str, str] | None = None, query: str = ""
) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        path="/webhooks/x",
        query_string=query,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def at(epoch: int) -> FrozenClock:
    return FrozenClock(datetime.fromtimestamp(epoch, tz=UTC))


def slack(clock: FrozenClock, secrets: list[Any] | None = None) -> HmacVerifier:
    return HmacVerifier(
        secrets=secrets or [SLACK_SECRET],
        header="X-Slack-Signature",
        prefix="v0=",
        signed_string="v0:{timestamp}:{body}",
        timestamp_header="X-Slack-Request-Timestamp",
        clock=clock,
    )


def slack_headers(sig: str = SLACK_SIG, ts: str = SLACK_TS) -> dict[str, str]:
    return {"X-Slack-Signature": sig, "X-Slack-Request-Timestamp": ts}


# --- HmacVerifier ---------------------------------------------------------------------------


def test_slack_official_vector_passes() -> None:
    slack(at(1531420618)).verify(req(SLACK_BODY, slack_headers()))


def test_slack_vector_stale_by_301_seconds_fails() -> None:
    with pytest.raises(InvalidSignature, match="replay window"):
        slack(at(1531420618 + 301)).verify(req(SLACK_BODY, slack_headers()))


def test_timestamp_from_the_future_fails() -> None:
    with pytest.raises(InvalidSignature):
        slack(at(1531420618 - 301)).verify(req(SLACK_BODY, slack_headers()))


def test_tampered_body_fails() -> None:
    with pytest.raises(InvalidSignature, match="mismatch"):
        slack(at(1531420618)).verify(req(SLACK_BODY + b"&x=1", slack_headers()))


def test_rotation_previous_secret_passes_and_a_third_does_not() -> None:
    clock = at(1531420618)
    slack(clock, ["new-secret", SLACK_SECRET]).verify(req(SLACK_BODY, slack_headers()))
    with pytest.raises(InvalidSignature):
        slack(clock, ["new-secret", "other"]).verify(req(SLACK_BODY, slack_headers()))


def test_secret_str_is_accepted() -> None:
    slack(at(1531420618), [SecretStr(SLACK_SECRET)]).verify(req(SLACK_BODY, slack_headers()))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Request-Timestamp": SLACK_TS},
        {"X-Slack-Signature": SLACK_SIG},
        slack_headers(sig="v0=zz"),
        slack_headers(sig="v0="),
        slack_headers(sig="v1=" + SLACK_SIG[3:]),
        slack_headers(sig=SLACK_SIG[3:]),
        slack_headers(sig="v0=" + "é" * 64),
        slack_headers(sig="v0=" + "a" * 10_000),
        slack_headers(sig=SLACK_SIG.upper().replace("V0=", "v0=")[:-2]),
        slack_headers(ts="abc"),
        slack_headers(ts="-1531420618"),
        slack_headers(ts="1531420618.5"),
        slack_headers(ts="9" * 40),
        slack_headers(ts=""),
    ],
)
def test_missing_or_malformed_headers_are_invalid_never_other_errors(
    headers: dict[str, str],
) -> None:
    with pytest.raises(InvalidSignature):
        slack(at(1531420618)).verify(req(SLACK_BODY, headers))


def test_hex_digest_is_case_insensitive() -> None:
    upper = "v0=" + SLACK_SIG[3:].upper()
    slack(at(1531420618)).verify(req(SLACK_BODY, slack_headers(sig=upper)))


def websub(prefix: str = "method=") -> HmacVerifier:
    return HmacVerifier(
        secrets=["websub-secret"],
        header="X-Hub-Signature",
        algorithm="sha1",
        allowed_algorithms=["sha1", "sha256"],
        prefix=prefix,
        clock=at(0),
    )


def test_websub_vectors_sha1_and_sha256() -> None:
    verifier = websub()
    verifier.verify(
        req(b"<feed/>", {"X-Hub-Signature": "sha1=1100a088d83ac1e1d1a8f9b86c3762214e85abb7"})
    )
    sha256 = "sha256=4c2e585c6c7c4d33d72a7b8bd87433dc2bcb255e1a6e253ab84227c34df0d96b"
    verifier.verify(req(b"<feed/>", {"X-Hub-Signature": sha256}))
    assert verifier.sign(req(b"<feed/>")) == "sha1=1100a088d83ac1e1d1a8f9b86c3762214e85abb7"


@pytest.mark.parametrize(
    "value", ["md5=1100a088d83ac1e1d1a8f9b86c3762214e85abb7", "1100a088", "sha512=00", "=", ""]
)
def test_websub_disallowed_or_malformed_method(value: str) -> None:
    with pytest.raises(InvalidSignature):
        websub().verify(req(b"<feed/>", {"X-Hub-Signature": value}))


def test_base64_digest_and_base64_secret_csod_style() -> None:
    key = bytes(range(32))
    secret = base64.b64encode(key).decode()
    body = b'{"a":1}'
    digest = hmac.new(key, b"POST/webhooks/x" + body, hashlib.sha256).digest()
    verifier = HmacVerifier(
        secrets=[secret],
        secret_encoding="base64",
        header="X-Signature",
        encoding="base64",
        signed_string="{method}{path}{body}",
        clock=at(0),
    )
    verifier.verify(req(body, {"X-Signature": base64.b64encode(digest).decode()}))
    # URL-safe alphabet without padding is the same digest.
    urlsafe = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    verifier.verify(req(body, {"X-Signature": urlsafe}))
    for bad in ("!!!", "a", base64.b64encode(b"x" * 32).decode()):
        with pytest.raises(InvalidSignature):
            verifier.verify(req(body, {"X-Signature": bad}))


def test_signed_string_can_include_another_header() -> None:
    verifier = HmacVerifier(
        secrets=["k"], header="X-Sig", signed_string="{header:X-Delivery}.{body}", clock=at(0)
    )
    good = hmac.new(b"k", b"d-1.body", hashlib.sha256).hexdigest()
    verifier.verify(req(b"body", {"X-Sig": good, "X-Delivery": "d-1"}))
    with pytest.raises(InvalidSignature, match="missing"):
        verifier.verify(req(b"body", {"X-Sig": good}))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secrets": []},
        {"secrets": ["a", "b", "c"]},
        {"secrets": [""]},
        {"secrets": ["not base64!"], "secret_encoding": "base64"},
        {"secrets": ["k"], "algorithm": "md5"},
        {"secrets": ["k"], "signed_string": "{nope}"},
        {"secrets": ["k"], "signed_string": "{timestamp}.{body}"},
        {"secrets": ["k"], "tolerance_seconds": 0},
    ],
)
def test_configuration_errors_raise_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(
        ValueError, match="secret|algorithm|placeholder|timestamp|tolerance"
    ) as info:
        HmacVerifier(header="X-Sig", clock=at(0), **kwargs)
    assert "not base64!" not in str(info.value)


def test_repr_hides_secrets() -> None:
    assert SLACK_SECRET not in repr(slack(at(0)))
    assert "tok" not in repr(StaticHeaderVerifier(header="X", secrets=["tok"]))


def test_secret_bytes_hex() -> None:
    assert secret_bytes("0a0b", encoding="hex") == b"\n\x0b"


# --- static header, Basic, query token --------------------------------------------------------


def test_static_header_bearer_with_rotation() -> None:
    verifier = StaticHeaderVerifier(header="Authorization", scheme="Bearer", secrets=["t1", "t0"])
    verifier.verify(req(headers={"Authorization": "Bearer t1"}))
    verifier.verify(req(headers={"Authorization": "bearer  t0 "}))
    for value in ("Bearer t2", "Basic t1", "t1", "Bearer", "Bearer t1é"):
        with pytest.raises(InvalidSignature):
            verifier.verify(req(headers={"Authorization": value}))
    with pytest.raises(InvalidSignature, match="missing"):
        verifier.verify(req())


def test_static_header_without_scheme() -> None:
    verifier = StaticHeaderVerifier(header="x-api-key", secrets=["k-123"])
    verifier.verify(req(headers={"x-api-key": "k-123"}))
    with pytest.raises(InvalidSignature):
        verifier.verify(req(headers={"x-api-key": "k-1234"}))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth() -> None:
    verifier = BasicAuthVerifier(username="hub", passwords=["pw-new", "pw-old"])
    verifier.verify(req(headers=basic("hub", "pw-new")))
    verifier.verify(req(headers=basic("hub", "pw-old")))
    bad = [
        basic("hub", "nope"),
        basic("other", "pw-new"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Bearer x"},
        {"Authorization": "Basic"},
        {},
    ]
    for headers in bad:
        with pytest.raises(InvalidSignature):
            verifier.verify(req(headers=headers))


def test_query_token() -> None:
    verifier = QueryTokenVerifier(param="token", secrets=["s3cr3t"])
    verifier.verify(req(query="token=s3cr3t&x=1"))
    for query in ("token=nope", "", "token=", "token=%ff%fe", "tok=s3cr3t"):
        with pytest.raises(InvalidSignature):
            verifier.verify(req(query=query))


# --- the connector's verify() -------------------------------------------------------------------


def acme_headers(body: bytes, secret: str, ts: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-AcmeCoach-Signature": f"sha256={mac}", "X-AcmeCoach-Timestamp": str(ts)}


def test_example_preset_hmac(kit: Any) -> None:
    body = (kit.fixtures / "example-coaching/events/w1-session-completed.json").read_bytes()
    now = int(kit.received_at.timestamp())
    conn = kit.build("example-coaching")
    conn.verify(kit.request(body, headers=acme_headers(body, "acme-current", now)))
    # Rotation: the previous secret still passes.
    conn.verify(kit.request(body, headers=acme_headers(body, "acme-previous", now - 299)))
    failing = [
        (body + b" ", acme_headers(body, "acme-current", now)),
        (body, acme_headers(body, "acme-current", now - 301)),
        (body, acme_headers(body, "wrong", now)),
        (body, {"X-AcmeCoach-Timestamp": str(now)}),
        (body, {"X-AcmeCoach-Signature": "sha256=00", "X-AcmeCoach-Timestamp": "x"}),
    ]
    for sent, headers in failing:
        with pytest.raises(InvalidSignature):
            conn.verify(kit.request(sent, headers=headers))


def test_coachaccountable_bearer(kit: Any) -> None:
    conn = kit.build("coachaccountable")
    conn.verify(kit.request(b"{}", headers={"Authorization": "Bearer ca-token-1"}))
    conn.verify(kit.request(b"{}", headers={"Authorization": "Bearer ca-token-0"}))
    with pytest.raises(InvalidSignature):
        conn.verify(kit.request(b"{}", headers={"Authorization": "Bearer ca-token-2"}))


def test_poll_mode_preset_accepts_no_webhooks(kit: Any) -> None:
    with pytest.raises(InvalidSignature, match="poll"):
        kit.build("sparkwise").verify(kit.request(b"[]"))


def test_missing_current_secret_is_a_config_error(kit: Any) -> None:
    with pytest.raises(ConfigError, match="current"):
        kit.build("coachaccountable", secrets={"previous": SecretStr("x")})


def test_previous_secret_is_optional(kit: Any) -> None:
    conn = kit.build("coachaccountable", secrets={"current": SecretStr("only")})
    conn.verify(kit.request(b"{}", headers={"Authorization": "Bearer only"}))


def inline(auth: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "vendor": "inline",
        "mapping_version": 1,
        "platform": "Inline",
        "auth": auth,
        "routes": [
            {
                "when": "`true`",
                "statements": [
                    {
                        "verb": {"key": "x", "id": "http://example.com/x", "display": "x"},
                        "actor": {"email": "email"},
                        "object": {"id": "'http://example.com/a'"},
                        "timestamp": "now()",
                        "natural_key": ["id"],
                    }
                ],
            }
        ],
        **extra,
    }


def test_all_verifiers_must_pass(kit: Any) -> None:
    mapping = inline(
        [
            {"type": "static_header", "header": "x-api-key", "secrets": ["key"]},
            {"type": "query_token", "param": "token", "secrets": ["tok"]},
        ]
    )
    conn = kit.build(mapping=mapping, secrets={"key": SecretStr("k"), "tok": SecretStr("t")})
    conn.verify(kit.request(b"{}", headers={"x-api-key": "k"}, query="token=t"))
    with pytest.raises(InvalidSignature):
        conn.verify(kit.request(b"{}", headers={"x-api-key": "k"}))
    assert conn.redacted_query_params == frozenset({"token"})


def test_basic_auth_from_mapping(kit: Any) -> None:
    mapping = inline([{"type": "basic_auth", "username": "hub"}])
    conn = kit.build(mapping=mapping, secrets={"current": SecretStr("pw")})
    conn.verify(kit.request(b"{}", headers=basic("hub", "pw")))
    with pytest.raises(InvalidSignature):
        conn.verify(kit.request(b"{}", headers=basic("hub", "no")))


def test_ip_allowlist_honours_forwarded_for_only_from_trusted_proxies(kit: Any) -> None:
    mapping = inline(
        [{"type": "ip_allowlist", "cidrs": ["203.0.113.0/24"], "trusted_proxies": ["10.0.0.0/8"]}]
    )
    conn = kit.build(mapping=mapping)
    conn.verify(kit.request(b"{}", client_host="203.0.113.9"))
    conn.verify(
        kit.request(
            b"{}", client_host="10.1.2.3", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.5"}
        )
    )
    failing = [
        ("198.51.100.1", {"X-Forwarded-For": "203.0.113.7"}),  # not from a trusted proxy
        ("10.1.2.3", {"X-Forwarded-For": "198.51.100.1"}),
        ("10.1.2.3", {"X-Forwarded-For": "garbage"}),
        (None, {}),
        ("not-an-ip", {}),
    ]
    for host, headers in failing:
        with pytest.raises(InvalidSignature):
            conn.verify(kit.request(b"{}", client_host=host, headers=headers))
