"""Graph's `validationTokens`: the proof that a rich notification comes from Microsoft Graph.

Anyone can encrypt to the hub's public certificate and the clientState only proves knowledge of
one secret, so vendors.md 5.4 asks, before decrypting, that every JWT in the batch's
`validationTokens` is checked:

* signed (RS256) by an Entra ID key from the OpenID key set (`signing_keys_url`);
* `aud` = the hub's app (client) id;
* `iss` = ``https://sts.windows.net/{tenantId}/``;
* `azp` (v2 tokens) or `appid` (v1) = ``0bf30f3b-4a52-48df-9a82-234910c4a086``, the Microsoft
  Graph change-notification publisher;
* not expired (a small clock leeway).

The key set is kept in the instance state (shared by receiver processes) and fetched again when
it is a day old or a token names a key it does not hold (at most once per `REFETCH_AFTER`, so a
flood of forged key ids cannot turn the receiver into a load generator).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
from pydantic import BaseModel, Field, ValidationError

from hub import KeyValue, TransientError

__all__ = [
    "GRAPH_NOTIFICATION_PUBLISHER",
    "SIGNING_KEYS_URL",
    "SigningKeys",
    "TokenInvalid",
    "check_validation_tokens",
]

GRAPH_NOTIFICATION_PUBLISHER = "0bf30f3b-4a52-48df-9a82-234910c4a086"
SIGNING_KEYS_URL = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
MAX_AGE = timedelta(hours=24)
REFETCH_AFTER = timedelta(minutes=5)
LEEWAY = timedelta(minutes=5)
_STATE_KEY = "validation-token-keys"
_MAX_TOKENS = 10
_MAX_TOKEN_CHARS = 16_384


class TokenInvalid(Exception):
    """A validation token failed a check; `reason` is safe to log (no token content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _KeySet(BaseModel):
    fetched_at: datetime
    keys: list[dict[str, Any]] = Field(default_factory=list)


class SigningKeys:
    """Entra ID's token-signing keys (a JWKS), cached in the instance state."""

    def __init__(
        self,
        url: str,
        *,
        http: httpx.Client,
        state: KeyValue,
        clock: Callable[[], datetime],
        timeout: float = 2.0,
    ) -> None:
        self.url = url
        self._http = http
        self._state = state
        self._clock = clock
        self._timeout = timeout

    def _cached(self) -> _KeySet | None:
        raw = self._state.get(_STATE_KEY)
        if not raw:
            return None
        try:
            return _KeySet.model_validate_json(raw)
        except ValidationError:
            return None

    def _fetch(self) -> _KeySet:
        try:
            response = self._http.get(self.url, timeout=self._timeout)
            response.raise_for_status()
            keys = response.json().get("keys")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            # Not the sender's fault: answer 5xx so Graph retries, instead of dropping the batch.
            raise TransientError(
                f"Entra ID signing keys unavailable from {self.url}: {exc}"
            ) from None
        if not isinstance(keys, list):
            raise TransientError(f"no key list at {self.url}")
        return self._store(keys)

    def remember(self, jwks: dict[str, Any]) -> None:
        """Keep `jwks` (``{"keys": [...]}``) as if just fetched: for air-gapped setups that
        mirror the key set, and for tests."""
        keys = jwks.get("keys")
        if not isinstance(keys, list):
            raise ValueError("a JWKS is an object with a 'keys' list")
        self._store(keys)

    def _store(self, keys: list[Any]) -> _KeySet:
        fresh = _KeySet(fetched_at=self._clock(), keys=[k for k in keys if isinstance(k, dict)])
        self._state.set(_STATE_KEY, fresh.model_dump_json())
        return fresh

    def key(self, kid: str) -> Any:
        """The public key with id `kid`; `TokenInvalid` if the key set does not have it."""
        now = self._clock()
        cached = self._cached()
        if cached is None or now - cached.fetched_at >= MAX_AGE:
            cached = self._fetch()
        found = _find(cached, kid)
        if found is None and now - cached.fetched_at >= REFETCH_AFTER:
            # Keys rotate: a new one is published before use, so a refetch may know it.
            cached = self._fetch()
            found = _find(cached, kid)
        if found is None:
            raise TokenInvalid("signed with a key the Entra ID key set does not have")
        try:
            return jwt.PyJWK.from_dict(found, algorithm="RS256").key
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"unusable signing key: {exc}") from None


def _find(keys: _KeySet, kid: str) -> dict[str, Any] | None:
    return next((k for k in keys.keys if k.get("kid") == kid), None)


def check_validation_tokens(
    tokens: Sequence[str],
    *,
    keys: SigningKeys,
    app_id: str,
    tenant_id: str,
    now: datetime,
) -> None:
    """Raise `TokenInvalid` unless there is at least one token and every one passes."""
    if not tokens:
        raise TokenInvalid("rich notification without validationTokens")
    if len(tokens) > _MAX_TOKENS:
        raise TokenInvalid(f"more than {_MAX_TOKENS} validationTokens")
    issuer = f"https://sts.windows.net/{tenant_id.lower()}/"
    for token in tokens:
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
            raise TokenInvalid("a validation token is not a string of sane length")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("a validation token is not a JWT") from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise TokenInvalid("a validation token is not RS256 with a key id")
        try:
            claims = jwt.decode(
                token,
                key=keys.key(header["kid"]),
                algorithms=["RS256"],
                audience=app_id,
                issuer=issuer,
                # Times are checked below against the hub's clock (PyJWT reads the system's).
                options={
                    "require": ["exp", "aud", "iss"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise TokenInvalid("a validation token is for another app (aud)") from None
        except jwt.InvalidIssuerError:
            raise TokenInvalid("a validation token is from another tenant (iss)") from None
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"a validation token is invalid: {type(exc).__name__}") from None
        _check_times(claims, now)
        publisher = claims.get("azp") or claims.get("appid")
        if publisher != GRAPH_NOTIFICATION_PUBLISHER:
            raise TokenInvalid(
                "a validation token was not issued to Graph's notification publisher"
            )


def _check_times(claims: dict[str, Any], now: datetime) -> None:
    stamp = now.timestamp()
    leeway = LEEWAY.total_seconds()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenInvalid("a validation token has no numeric exp")
    if exp + leeway <= stamp:
        raise TokenInvalid("a validation token has expired")
    if nbf is not None and (not isinstance(nbf, int | float) or nbf - leeway > stamp):
        raise TokenInvalid("a validation token is not valid yet")
