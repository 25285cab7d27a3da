"""Webhook authenticity checks: HMAC signatures, static header secrets, Basic auth, query tokens.

Modelled on slack-sdk's ``SignatureVerifier`` with tighter input handling:

* Every verifier is built once from configuration and checks a `WebhookRequest` over its **raw
  bytes**. ``verify()`` returns None or raises `InvalidSignature`; a missing, malformed,
  non-ASCII or oversized header is *invalid*, never a ``ValueError``/``TypeError``/... (a
  crafted request must not turn into a 500 or a dead worker).
* Every secret comparison goes through `hmac.compare_digest` on bytes, and all configured
  secrets are compared (no early exit), so timing does not tell which secret matched.
* Up to two secrets are active at once: the current one and the previous one while a vendor
  rotates (vendors.md 7.6 B).
* Time comes from an injected `Clock`, so replay-window tests freeze it instead of sleeping.

Configuration mistakes (an unknown algorithm, a secret that is not valid base64) raise
`ValueError` at construction, which the caller reports as a ConfigError before any request.

Example (the Slack scheme)::

    verifier = HmacVerifier(
        secrets=[signing_secret],
        header="X-Slack-Signature",
        prefix="v0=",
        signed_string="v0:{timestamp}:{body}",
        timestamp_header="X-Slack-Request-Timestamp",
        clock=SystemClock(),
    )
    verifier.verify(request)          # raises InvalidSignature
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

from pydantic import SecretStr

from hub.clock import Clock
from hub.errors import InvalidSignature
from hub.events import WebhookRequest

__all__ = [
    "Algorithm",
    "BasicAuthVerifier",
    "BodyDigestVerifier",
    "DateHeaderVerifier",
    "HmacVerifier",
    "QueryTokenVerifier",
    "SecretLike",
    "StaticHeaderVerifier",
    "Verifier",
    "hmac_digest",
    "matches_any",
    "secret_bytes",
]

Algorithm = Literal["sha1", "sha256", "sha384", "sha512"]
SecretLike = SecretStr | str | bytes
SecretEncoding = Literal["raw", "base64", "hex"]

_ALGORITHMS = frozenset({"sha1", "sha256", "sha384", "sha512"})
# Headers longer than this are not signatures; refusing them early bounds the work an
# unauthenticated sender can cause (base64/hex decoding, comparisons).
_MAX_HEADER = 4096
_MAX_SECRETS = 2
_PLACEHOLDER = re.compile(
    r"\{(body|timestamp|method|path_and_query|path|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+)\}"
)
_DIGITS = re.compile(r"^[0-9]{1,16}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


class Verifier(Protocol):
    """Anything that can authenticate a webhook request."""

    def verify(self, request: WebhookRequest) -> None:
        """Return None if the request is authentic; raise InvalidSignature otherwise."""


def secret_bytes(secret: SecretLike, *, encoding: Literal["raw", "base64", "hex"] = "raw") -> bytes:
    """The key bytes of a configured secret.

    ``raw`` uses the UTF-8 bytes of the text (Slack, GitHub, WebSub); ``base64`` and ``hex``
    decode it first (CSOD hands out base64 secrets whose *decoded* bytes are the HMAC key).
    Raises ValueError (a configuration error) when the secret is empty or does not decode.
    """
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    raw = secret if isinstance(secret, bytes) else secret.encode("utf-8")
    if not raw:
        raise ValueError("empty secret")
    if encoding == "raw":
        return raw
    try:
        decoded = (
            base64.b64decode(raw, validate=True)
            if encoding == "base64"
            else bytes.fromhex(raw.decode("ascii"))
        )
    except (binascii.Error, ValueError, UnicodeDecodeError):
        # Never echo the secret: the message names the encoding only.
        raise ValueError(f"secret is not valid {encoding}") from None
    if not decoded:
        raise ValueError("empty secret")
    return decoded


def _secrets(
    secrets: Iterable[SecretLike], encoding: Literal["raw", "base64", "hex"]
) -> tuple[bytes, ...]:
    keys = tuple(secret_bytes(s, encoding=encoding) for s in secrets)
    if not 1 <= len(keys) <= _MAX_SECRETS:
        raise ValueError(
            f"give 1 or {_MAX_SECRETS} active secrets (current, previous), got {len(keys)}"
        )
    return keys


def matches_any(candidate: bytes, expected: Sequence[bytes]) -> bool:
    """Constant-time membership: compares against *every* expected value, no early exit."""
    found = False
    for value in expected:
        found |= hmac.compare_digest(candidate, value)
    return found


def hmac_digest(key: bytes, message: bytes, algorithm: Algorithm = "sha256") -> bytes:
    """HMAC of ``message`` under ``key`` (raw digest bytes)."""
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"unsupported HMAC algorithm {algorithm!r}")
    return hmac.new(key, message, algorithm).digest()


def _header(request: WebhookRequest, name: str) -> str:
    value = request.header(name)
    if value is None:
        raise InvalidSignature(f"missing {name} header")
    if len(value) > _MAX_HEADER:
        raise InvalidSignature(f"{name} header too long")
    return value


def _to_bytes(text: str) -> bytes:
    # Header values arrive as str; "replace" keeps non-ASCII garbage from raising here while
    # guaranteeing it cannot equal a real secret or digest.
    return text.encode("utf-8", errors="replace")


class HmacVerifier:
    """Checks an HMAC signature header over a signed string built from the raw request.

    Args:
        secrets: one or two active secrets (current first, then the one being rotated out).
        header: the signature header, e.g. ``X-Hub-Signature-256``.
        algorithm: the digest; with ``prefix="method="`` it is the default when the header
            does not name one.
        encoding: how the header encodes the digest (``hex`` is case-insensitive).
        prefix: a literal prefix the header value starts with (``sha256=``, ``v0=``), or the
            special value ``"method="`` to read the algorithm from the header itself
            (``sha1=...`` / ``sha256=...``, WebSub), limited to ``allowed_algorithms``.
        signed_string: template of the signed bytes over ``{body}`` (the exact raw bytes),
            ``{timestamp}``, ``{method}``, ``{path}``, ``{path_and_query}`` (``/p?a=1``) and
            ``{header:Name}``.
        secret_encoding: ``raw``, ``base64`` or ``hex`` (see `secret_bytes`).
        timestamp_header: when set, its value (epoch seconds, or milliseconds with
            ``timestamp_unit="ms"``) must be within ``tolerance_seconds`` of the clock.
        clock: the time source; required so tests never depend on the wall clock.
    """

    def __init__(
        self,
        *,
        secrets: Sequence[SecretLike],
        header: str,
        clock: Clock,
        algorithm: Algorithm = "sha256",
        encoding: Literal["hex", "base64"] = "hex",
        prefix: str = "",
        signed_string: str = "{body}",
        secret_encoding: SecretEncoding = "raw",  # noqa: S107 - an encoding name, not a secret
        timestamp_header: str | None = None,
        timestamp_unit: Literal["s", "ms"] = "s",
        tolerance_seconds: float = 300,
        allowed_algorithms: Sequence[Algorithm] | None = None,
    ) -> None:
        if algorithm not in _ALGORITHMS:
            raise ValueError(f"unsupported HMAC algorithm {algorithm!r}")
        allowed = tuple(allowed_algorithms or (algorithm,))
        for name in allowed:
            if name not in _ALGORITHMS:
                raise ValueError(f"unsupported HMAC algorithm {name!r}")
        if tolerance_seconds <= 0:
            raise ValueError("tolerance_seconds must be positive")
        self._keys = _secrets(secrets, secret_encoding)
        self._header = header
        self._algorithm: Algorithm = algorithm
        self._allowed = allowed
        self._encoding = encoding
        self._prefix = prefix
        self._parts = self._compile(signed_string)
        if "{timestamp}" in signed_string and timestamp_header is None:
            raise ValueError("signed_string uses {timestamp} but no timestamp_header is set")
        self._timestamp_header = timestamp_header
        self._timestamp_unit = timestamp_unit
        self._tolerance = tolerance_seconds
        self._clock = clock

    def __repr__(self) -> str:  # never show key material
        return f"HmacVerifier(header={self._header!r}, secrets=<{len(self._keys)} hidden>)"

    @staticmethod
    def _compile(template: str) -> tuple[tuple[bool, str], ...]:
        """Split the template into (is_placeholder, text) parts; reject unknown placeholders."""
        parts: list[tuple[bool, str]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(template):
            parts.append((False, template[pos : match.start()]))
            parts.append((True, match.group(1)))
            pos = match.end()
        parts.append((False, template[pos:]))
        for is_ph, text in parts:
            if not is_ph and ("{" in text or "}" in text):
                raise ValueError(f"unknown placeholder in signed_string {template!r}")
        return tuple(p for p in parts if p[0] or p[1])

    def signed_bytes(self, request: WebhookRequest, timestamp: str | None) -> bytes:
        """The exact bytes the sender signed (the body is inserted byte for byte)."""
        out = bytearray()
        for is_ph, text in self._parts:
            if not is_ph:
                out += text.encode("utf-8")
            elif text == "body":
                out += request.body
            elif text == "timestamp":
                out += (timestamp or "").encode("ascii")
            elif text == "method":
                out += request.method.upper().encode("ascii", errors="replace")
            elif text == "path":
                out += _to_bytes(request.path)
            elif text == "path_and_query":
                query = f"?{request.query_string}" if request.query_string else ""
                out += _to_bytes(request.path + query)
            else:
                out += _to_bytes(_header(request, text.removeprefix("header:")))
        return bytes(out)

    def _check_timestamp(self, request: WebhookRequest) -> str | None:
        if self._timestamp_header is None:
            return None
        raw = _header(request, self._timestamp_header).strip()
        if not _DIGITS.match(raw):
            raise InvalidSignature(f"malformed {self._timestamp_header} header")
        seconds = int(raw) / (1000 if self._timestamp_unit == "ms" else 1)
        age = self._clock.now().timestamp() - seconds
        if abs(age) > self._tolerance:
            raise InvalidSignature("timestamp outside the replay window")
        return raw

    def _split(self, value: str) -> tuple[Algorithm, str]:
        if self._prefix == "method=":
            method, sep, digest = value.partition("=")
            method = method.strip().lower()
            if not sep or method not in self._allowed:
                raise InvalidSignature(f"malformed {self._header} header")
            return method, digest
        if not value.startswith(self._prefix):
            raise InvalidSignature(f"malformed {self._header} header")
        return self._algorithm, value[len(self._prefix) :]

    def _decode(self, digest: str) -> bytes:
        digest = digest.strip()
        try:
            if self._encoding == "hex":
                return bytes.fromhex(digest)
            if not _BASE64.match(digest):
                raise ValueError("not base64")
            # Accept the URL-safe alphabet and missing padding: both are common in headers.
            std = digest.rstrip("=").replace("-", "+").replace("_", "/")
            return base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
        except (ValueError, binascii.Error):
            raise InvalidSignature(f"malformed {self._header} header") from None

    def verify(self, request: WebhookRequest) -> None:
        """Raise InvalidSignature unless one active secret signed this request."""
        value = _header(request, self._header)
        timestamp = self._check_timestamp(request)
        algorithm, digest_text = self._split(value.strip())
        provided = self._decode(digest_text)
        message = self.signed_bytes(request, timestamp)
        expected = [hmac_digest(key, message, algorithm) for key in self._keys]
        if not matches_any(provided, expected):
            raise InvalidSignature("signature mismatch")

    def sign(self, request: WebhookRequest, *, timestamp: str | None = None) -> str:
        """The header value the *current* secret produces (for tests and test tools)."""
        digest = hmac_digest(self._keys[0], self.signed_bytes(request, timestamp), self._algorithm)
        text = digest.hex() if self._encoding == "hex" else base64.b64encode(digest).decode("ascii")
        prefix = f"{self._algorithm}=" if self._prefix == "method=" else self._prefix
        return prefix + text


class BodyDigestVerifier:
    """A header holding the SHA-256 of the raw body (``x-content-sha256``), hex or base64.

    Senders document one encoding or none (Cornerstone Edge: unconfirmed), so either is
    accepted; a missing or different digest is an invalid signature (the body was changed, or
    the request was not built by the sender).
    """

    def __init__(self, *, header: str) -> None:
        self._header = header

    def __repr__(self) -> str:
        return f"BodyDigestVerifier(header={self._header!r})"

    def verify(self, request: WebhookRequest) -> None:
        value = _header(request, self._header).strip()
        digest = hashlib.sha256(request.body).digest()
        expected = {digest.hex(), base64.b64encode(digest).decode("ascii")}
        # Bytes: compare_digest refuses non-ASCII str, and a forged header may be anything.
        candidate = (value.lower() if len(value) == 64 else value).encode("utf-8", "replace")
        if not any(hmac.compare_digest(candidate, e.encode("ascii")) for e in expected):
            raise InvalidSignature(f"{self._header} does not match the body")


class DateHeaderVerifier:
    """An HTTP ``Date`` header (RFC 9110, e.g. ``Tue, 15 Nov 1994 08:12:31 GMT``) within
    ``tolerance_seconds`` of the clock: a replay window for senders that sign the date."""

    def __init__(self, *, clock: Clock, header: str = "date", tolerance_seconds: float = 300):
        if tolerance_seconds <= 0:
            raise ValueError("tolerance_seconds must be positive")
        self._header = header
        self._clock = clock
        self._tolerance = tolerance_seconds

    def __repr__(self) -> str:
        return f"DateHeaderVerifier(header={self._header!r})"

    def verify(self, request: WebhookRequest) -> None:
        raw = _header(request, self._header).strip()
        try:
            sent = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            raise InvalidSignature(f"malformed {self._header} header") from None
        if sent.tzinfo is None:
            raise InvalidSignature(f"{self._header} header without a time zone")
        if abs((self._clock.now() - sent).total_seconds()) > self._tolerance:
            raise InvalidSignature(f"{self._header} outside the replay window")


class StaticHeaderVerifier:
    """A shared secret sent verbatim in a header (``x-api-key: …``, ``Authorization: Bearer …``).

    With ``scheme`` set (``Bearer``), the header must be ``<scheme> <secret>``; the scheme is
    matched case-insensitively as HTTP auth schemes are.
    """

    def __init__(
        self, *, header: str, secrets: Sequence[SecretLike], scheme: str | None = None
    ) -> None:
        self._header = header
        self._scheme = scheme
        self._keys = _secrets(secrets, "raw")

    def __repr__(self) -> str:
        return f"StaticHeaderVerifier(header={self._header!r}, secrets=<{len(self._keys)} hidden>)"

    def verify(self, request: WebhookRequest) -> None:
        value = _header(request, self._header).strip()
        if self._scheme is not None:
            scheme, _, value = value.partition(" ")
            if scheme.lower() != self._scheme.lower():
                raise InvalidSignature(f"malformed {self._header} header")
            value = value.strip()
        if not matches_any(_to_bytes(value), self._keys):
            raise InvalidSignature(f"wrong {self._header} secret")


class BasicAuthVerifier:
    """HTTP Basic credentials (Docebo's common pattern): one username, one or two passwords."""

    def __init__(self, *, username: SecretLike, passwords: Sequence[SecretLike]) -> None:
        self._user = secret_bytes(username)
        self._keys = _secrets(passwords, "raw")

    def __repr__(self) -> str:
        return "BasicAuthVerifier(<hidden>)"

    def verify(self, request: WebhookRequest) -> None:
        value = _header(request, "Authorization").strip()
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "basic" or not token.strip():
            raise InvalidSignature("malformed Authorization header")
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSignature("malformed Authorization header") from None
        user, sep, password = decoded.partition(b":")
        if not sep:
            raise InvalidSignature("malformed Authorization header")
        # Evaluate both comparisons before combining them: no early exit on the username.
        user_ok = hmac.compare_digest(user, self._user)
        password_ok = matches_any(password, self._keys)
        if not (user_ok & password_ok):
            raise InvalidSignature("wrong Basic credentials")


class QueryTokenVerifier:
    """A secret query parameter (``?token=…``). The receiver must redact `param` from logs."""

    def __init__(self, *, param: str, secrets: Sequence[SecretLike]) -> None:
        self.param = param
        self._keys = _secrets(secrets, "raw")

    def __repr__(self) -> str:
        return f"QueryTokenVerifier(param={self.param!r}, secrets=<hidden>)"

    def verify(self, request: WebhookRequest) -> None:
        try:
            value = request.query(self.param)
        except (ValueError, UnicodeError):  # pragma: no cover - parse_qs is lenient
            raise InvalidSignature("malformed query string") from None
        if value is None:
            raise InvalidSignature(f"missing {self.param} query parameter")
        if len(value) > _MAX_HEADER or not matches_any(_to_bytes(value), self._keys):
            raise InvalidSignature(f"wrong {self.param} token")
