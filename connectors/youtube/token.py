"""Learner tokens: a compact HS256 JWT (RFC 7519) that the embedding site signs for its user.

YouTube never says who watched. The page that embeds a video knows its logged-in learner, so it
asks its own backend for a short-lived token, signed with a secret shared with the hub, and hands
it to the tracker. The hub takes the actor ONLY from this token, never from the request body.

Header ``{"alg": "HS256", "typ": "JWT"}``; claims:

* ``sub`` (required): the site's immutable user id (becomes ``account.name``).
* ``aud`` (required): the connector instance id, or the configured ``token_audience``.
* ``iat``, ``exp`` (required, seconds since the epoch): short-lived; ``exp - iat`` must not
  exceed ``token_max_lifetime_seconds``.
* ``email``, ``name`` (optional): used for the actor per the hub's ``actor_ifi`` policy.

Any other ``alg`` (notably ``none``), a bad signature, a malformed part, an expired token, a token
issued in the future or one for another audience is refused with `InvalidSignature` (401).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from hub import InvalidSignature

__all__ = ["LearnerClaims", "issue_learner_token", "verify_learner_token"]

MAX_TOKEN_CHARS = 4096
_HEADER = {"alg": "HS256", "typ": "JWT"}


class LearnerClaims(BaseModel):
    """The verified claims of a learner token."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sub: str = Field(strict=True, min_length=1, max_length=255)
    aud: str | list[str]
    exp: StrictInt
    iat: StrictInt
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=255)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(c not in _B64_ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _sign(secret: bytes, signing_input: bytes) -> bytes:
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


def issue_learner_token(
    secret: str | bytes,
    *,
    sub: str,
    audience: str,
    now: datetime,
    ttl_seconds: int = 4 * 3600,
    email: str | None = None,
    name: str | None = None,
) -> str:
    """Sign a learner token, as the embedding site's backend does.

    Example::

        token = issue_learner_token(SECRET, sub="u-1001", audience="youtube-learn",
                                    now=datetime.now(UTC), email="ada@example.com")
    """
    iat = int(now.timestamp())
    claims: dict[str, Any] = {"sub": sub, "aud": audience, "iat": iat, "exp": iat + ttl_seconds}
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    key = secret.encode() if isinstance(secret, str) else secret
    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{_b64(_sign(key, signing_input))}"


def verify_learner_token(
    token: str,
    secret: str | bytes,
    *,
    audience: str,
    now: datetime,
    leeway_seconds: int = 60,
    max_lifetime_seconds: int = 12 * 3600,
) -> LearnerClaims:
    """Check a learner token and return its claims, or raise `InvalidSignature`.

    The reason given is safe to log (it never quotes the token).
    """
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidSignature("learner token missing or too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidSignature("learner token is not a JWS compact token")
    head_b64, body_b64, sig_b64 = parts
    try:
        header = json.loads(_unb64(head_b64))
        signature = _unb64(sig_b64)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidSignature("learner token is malformed") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidSignature("learner token alg must be HS256")
    key = secret.encode() if isinstance(secret, str) else secret
    expected = _sign(key, f"{head_b64}.{body_b64}".encode("ascii"))
    if not hmac.compare_digest(signature, expected):
        raise InvalidSignature("learner token signature does not match")
    try:
        raw = json.loads(_unb64(body_b64))
        claims = LearnerClaims.model_validate(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError, ValidationError):
        raise InvalidSignature("learner token claims are malformed") from None
    audiences = [claims.aud] if isinstance(claims.aud, str) else claims.aud
    if audience not in audiences:
        raise InvalidSignature("learner token is for another audience")
    at = int(now.timestamp())
    if claims.exp + leeway_seconds <= at:
        raise InvalidSignature("learner token expired")
    if claims.iat - leeway_seconds > at:
        raise InvalidSignature("learner token issued in the future")
    if claims.exp - claims.iat > max_lifetime_seconds:
        raise InvalidSignature("learner token lifetime exceeds the configured maximum")
    return claims
