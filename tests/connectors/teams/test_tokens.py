"""Graph validationTokens (vendors.md 5.4): signature by Entra ID's keys, aud, iss, azp, expiry;
the key set cached in the instance state and fetched again when stale or rotated; and the
connector acknowledging and dropping (202) a rich notification whose tokens fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.teams.tokens import (
    GRAPH_NOTIFICATION_PUBLISHER,
    SigningKeys,
    TokenInvalid,
    check_validation_tokens,
)
from hub import InvalidSignature, TransientError
from hub.events import WebhookRequest
from hub.testing import MemoryState
from tests.connectors.teams._graph import CLIENT, FIXTURES, KEYS, NOW, SIGNING_KEYS, TENANT, build

KID = SIGNING_KEYS["keys"][0]["kid"]
URL = "https://login.example/keys"
OTHER_TENANT = "00000000-0000-0000-0000-000000000000"
_KEY = serialization.load_pem_private_key((KEYS / "test-key.pem").read_bytes(), password=None)
assert isinstance(_KEY, rsa.RSAPrivateKey)
TEST_KEY: rsa.RSAPrivateKey = _KEY


def token(
    *, key: rsa.RSAPrivateKey = TEST_KEY, kid: str = KID, alg: str = "RS256", **claims: Any
) -> str:
    body = {
        "aud": CLIENT,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "azp": GRAPH_NOTIFICATION_PUBLISHER,
        "nbf": int((NOW - timedelta(minutes=1)).timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


class Jwks:
    """A key-set endpoint that counts its requests."""

    def __init__(self, keys: dict[str, Any], status: int = 200) -> None:
        self.keys, self.status, self.calls = keys, status, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(self.status, json=self.keys)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def signing_keys(endpoint: Jwks, clock: Clock, state: MemoryState | None = None) -> SigningKeys:
    http = httpx.Client(transport=httpx.MockTransport(endpoint))
    return SigningKeys(URL, http=http, state=state or MemoryState(), clock=clock)


def check(tokens: list[str], keys: SigningKeys, now: datetime = NOW) -> None:
    check_validation_tokens(tokens, keys=keys, app_id=CLIENT, tenant_id=TENANT, now=now)


def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_token_from_graph_passes_and_the_key_set_is_fetched_once() -> None:
    endpoint, clock = Jwks(SIGNING_KEYS), Clock()
    keys = signing_keys(endpoint, clock)
    check([token()], keys)
    check([token(), token()], keys)
    assert endpoint.calls == 1  # cached in the instance state


def test_the_fixtures_tokens_pass() -> None:
    body = json.loads((FIXTURES / "events" / "notification_channel_message.json").read_text())
    check(body["validationTokens"], signing_keys(Jwks(SIGNING_KEYS), Clock()))


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "99999999-2222-3333-4444-555555555555"}, "another app"),
        ({"iss": f"https://sts.windows.net/{OTHER_TENANT}/"}, "another tenant"),
        ({"azp": "11111111-2222-3333-4444-555555555555"}, "publisher"),
        ({"azp": None}, "publisher"),  # neither azp nor appid
        ({"exp": int((NOW - timedelta(minutes=6)).timestamp())}, "expired"),
        ({"nbf": int((NOW + timedelta(minutes=6)).timestamp())}, "not valid yet"),
        ({"exp": None}, "invalid"),
    ],
)
def test_each_claim_is_checked(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(TokenInvalid, match=reason):
        check([token(**claims)], signing_keys(Jwks(SIGNING_KEYS), Clock()))


def test_v1_tokens_name_the_publisher_in_appid() -> None:
    check(
        [token(azp=None, appid=GRAPH_NOTIFICATION_PUBLISHER)],
        signing_keys(Jwks(SIGNING_KEYS), Clock()),
    )


def test_a_clock_leeway_of_five_minutes_is_allowed() -> None:
    keys = signing_keys(Jwks(SIGNING_KEYS), Clock())
    check([token(exp=int((NOW - timedelta(minutes=4)).timestamp()))], keys)


def test_every_token_of_the_batch_must_pass() -> None:
    keys = signing_keys(Jwks(SIGNING_KEYS), Clock())
    with pytest.raises(TokenInvalid, match="another app"):
        check([token(), token(aud="99999999-2222-3333-4444-555555555555")], keys)


@pytest.mark.parametrize(
    ("tokens", "reason"),
    [
        ([], "without validationTokens"),
        (["not a jwt"], "not a JWT"),
        (["x" * 20_000], "sane length"),
        ([token()] * 11, "more than"),
    ],
)
def test_malformed_input_is_invalid_not_a_crash(tokens: list[str], reason: str) -> None:
    with pytest.raises(TokenInvalid, match=reason):
        check(tokens, signing_keys(Jwks(SIGNING_KEYS), Clock()))


def test_a_token_signed_by_another_key_with_the_same_kid_fails() -> None:
    with pytest.raises(TokenInvalid, match="invalid"):
        check([token(key=other_key())], signing_keys(Jwks(SIGNING_KEYS), Clock()))


def test_algorithm_confusion_is_refused() -> None:
    # HS256 with the public key as the "secret": the classic JWT forgery; only RS256 is taken.
    public_pem = TEST_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT refuses to sign that (its own guard), so the forger's token is built by hand.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    body = b64(json.dumps({"aud": CLIENT, "exp": int(NOW.timestamp()) + 60}).encode())
    mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{head}.{body}.{b64(mac)}"
    with pytest.raises(TokenInvalid, match="RS256"):
        check([forged], signing_keys(Jwks(SIGNING_KEYS), Clock()))


def test_an_unknown_key_id_refetches_the_key_set_at_most_every_five_minutes() -> None:
    rotated = other_key()
    new_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rotated.public_key()))
    endpoint, clock = Jwks(SIGNING_KEYS), Clock()
    keys = signing_keys(endpoint, clock)
    check([token()], keys)  # first fetch
    clock.now += timedelta(minutes=10)
    endpoint.keys = {"keys": [*SIGNING_KEYS["keys"], {**new_jwk, "kid": "rotated"}]}
    check([token(key=rotated, kid="rotated")], keys, now=clock.now)  # refetched: known now
    assert endpoint.calls == 2
    # A flood of made-up key ids costs one fetch per five minutes, not one per request.
    for n in range(5):
        with pytest.raises(TokenInvalid, match="key set does not have"):
            check([token(kid=f"forged-{n}")], keys, now=clock.now)
    assert endpoint.calls == 2


def test_a_day_old_key_set_is_fetched_again() -> None:
    endpoint, clock = Jwks(SIGNING_KEYS), Clock()
    keys = signing_keys(endpoint, clock)
    check([token()], keys)
    clock.now += timedelta(hours=25)
    check([token(exp=int((clock.now + timedelta(hours=1)).timestamp()))], keys, now=clock.now)
    assert endpoint.calls == 2


@pytest.mark.parametrize("status", [500, 404])
def test_key_set_unavailable_is_transient_so_graph_retries(status: int) -> None:
    with pytest.raises(TransientError, match="signing keys unavailable"):
        check([token()], signing_keys(Jwks(SIGNING_KEYS, status=status), Clock()))


# --- the connector --------------------------------------------------------------------------


def notification(tokens: list[str] | None) -> WebhookRequest:
    body = json.loads((FIXTURES / "events" / "notification_channel_message.json").read_text())
    if tokens is None:
        del body["validationTokens"]
    else:
        body["validationTokens"] = tokens
    return WebhookRequest(
        method="POST",
        path="/webhooks/teams-test",
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
        received_at=datetime(2025, 7, 1, 12, tzinfo=UTC),
    )


def test_the_connector_accepts_a_rich_notification_with_valid_tokens() -> None:
    connector = build()
    connector.verify(notification([token()]))
    assert len(connector.parse(notification([token()]))) == 1


@pytest.mark.parametrize(
    "tokens",
    [None, [], [token(aud="99999999-2222-3333-4444-555555555555")], [token(key=other_key())]],
    ids=["absent", "empty", "wrong-aud", "forged-signature"],
)
def test_the_connector_acknowledges_and_drops_bad_tokens(tokens: list[str] | None) -> None:
    with pytest.raises(InvalidSignature) as caught:
        build().verify(notification(tokens))
    # 202, as vendors.md 5.4 says: Graph must not retry it, and nothing is enqueued.
    assert caught.value.status == 202
    assert "validationTokens" in caught.value.reason


def test_tokens_are_only_required_with_resource_data() -> None:
    lifecycle = {
        "value": [
            {
                "subscriptionId": "10493aa0-4d29-4df5-bc0c-ef742cc6cd7f",
                "lifecycleEvent": "reauthorizationRequired",
                "clientState": json.loads(notification([]).body)["value"][0]["clientState"],
                "tenantId": TENANT,
            }
        ]
    }
    request = notification([]).model_copy(update={"body": json.dumps(lifecycle).encode()})
    build().verify(request)  # no validationTokens, no encryptedContent: fine


def test_checking_can_be_turned_off_for_debugging() -> None:
    build(validate_tokens=False).verify(notification(None))
