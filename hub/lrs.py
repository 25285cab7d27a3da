"""The LRS client: POST a batch of canonical statements, read one back, classify every answer.

`LrsClient` speaks to one destination over an injected `httpx.Client` (one pool per process, so
connections are reused and tests swap the transport). It never decides what to do next: every
answer becomes a `BatchOutcome` of one `Outcome` kind, and `hub.delivery` acts on the kind.

The classification is one table (`classify_status`), derived from xAPI 1.0.3 §3.2 and from what
Learning Locker and Ralph were observed to answer (shared spec `xapi.md` §3 and §6):

======================  =========================================================================
Outcome                 HTTP answer
======================  =========================================================================
STORED                  any 2xx. Identical duplicates are 200 ``["id"]`` on Learning Locker and
                        204 with no body on Ralph; ids in the body are never trusted (Ralph omits
                        the ones it already had), the ids we assigned are.
CONFLICT                409: an id already holds *different* content.
REJECTED                400, 422 and every other 4xx not listed here: the bytes are invalid, the
                        whole batch was refused atomically.
TOO_LARGE               413.
RETRY                   408, 425, 429, every 5xx, network errors, timeouts. Carries `retry_after`.
AUTH                    401, 403 (credentials or scopes), and the answers that mean "this endpoint
                        is not an LRS as configured": 3xx (httpx does not follow redirects on
                        purpose), 404, 405. Retrying cannot help and dead-lettering would drop
                        good statements for a configuration typo, so delivery pauses the LRS.
======================  =========================================================================

Ralph quirk: one invalid ``mbox`` (e.g. without ``mailto:``) in a batch makes Ralph answer
``500 text/plain Internal Server Error`` (a FastAPI serialisation bug) and store nothing. We keep
500 as RETRY: a 5xx is the LRS's own failure by definition, and treating it as "bisect" would let
any overloaded LRS trigger a burst of 2n requests. The hub validates statements before they reach
the outbox, so such a batch should not occur; if it does it ends in the dead letters once the
retry horizon passes, with the 500 as the recorded error.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Generator
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_none

from hub.backoff import parse_retry_after
from hub.clock import Clock, SystemClock
from hub.errors import DeliveryPermanent, DeliveryTransient

__all__ = [
    "BatchOutcome",
    "LrsClient",
    "LrsTarget",
    "LrsUnauthorized",
    "Outcome",
    "classify_status",
]

logger = logging.getLogger(__name__)

#: How much of an LRS's error body we keep (dead letters, logs); bodies can echo whole batches.
DETAIL_LIMIT = 500


class Outcome(enum.StrEnum):
    """What an LRS answer means for the statements it was about."""

    STORED = "stored"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    TOO_LARGE = "too_large"
    RETRY = "retry"
    AUTH = "auth"


_EXACT: dict[int, Outcome] = {
    401: Outcome.AUTH,
    403: Outcome.AUTH,
    404: Outcome.AUTH,
    405: Outcome.AUTH,
    408: Outcome.RETRY,
    409: Outcome.CONFLICT,
    413: Outcome.TOO_LARGE,
    425: Outcome.RETRY,
    429: Outcome.RETRY,
}


def classify_status(status: int) -> Outcome:
    """The `Outcome` of an HTTP status on POST statements (see the module table)."""
    if status in _EXACT:
        return _EXACT[status]
    if 200 <= status < 300:
        return Outcome.STORED
    if 300 <= status < 400:
        return Outcome.AUTH
    if 400 <= status < 500:
        return Outcome.REJECTED
    # 5xx, and 1xx that httpx would never surface: the LRS's side, try again later.
    return Outcome.RETRY


class BatchOutcome(BaseModel):
    """The classified answer to one request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Outcome
    status: int | None = Field(default=None, description="HTTP status; None for network errors")
    detail: str = Field(default="", description="the LRS's message, truncated; never secrets")
    retry_after: float | None = Field(default=None, description="seconds, from Retry-After")


class LrsUnauthorized(DeliveryPermanent):
    """The LRS refused our credentials or endpoint on a read (AUTH outcome)."""


class LrsTarget(BaseModel):
    """One LRS destination, as far as the client needs it.

    Auth is HTTP Basic (`username` + `password`) or a bearer `token`, exactly one of the two.
    `endpoint` is the xAPI base URL ending before ``statements``; a missing trailing slash is
    added so ``statements`` resolves under it rather than replacing its last segment.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    endpoint: str
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    xapi_version: Literal["1.0.3", "2.0.0"] = "1.0.3"
    timeout: Annotated[float, Field(gt=0)] = 30.0

    @field_validator("endpoint")
    @classmethod
    def _normalize_endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("endpoint must be an absolute http(s) URL")
        if parts.username is not None or parts.password is not None:
            # Credentials in a URL end up in logs and tracebacks; they belong in SecretStr fields.
            raise ValueError("endpoint must not contain credentials; use username/password/token")
        if parts.query or parts.fragment:
            raise ValueError("endpoint must not have a query or fragment")
        if parts.path.rstrip("/").endswith("/statements"):
            raise ValueError("endpoint must end before 'statements' (the xAPI base URL)")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        basic = self.username is not None or self.password is not None
        if basic and (self.username is None or self.password is None):
            raise ValueError("Basic auth needs both username and password")
        if basic == (self.token is not None):
            raise ValueError("configure exactly one of username/password or token")
        return self

    @property
    def statements_url(self) -> str:
        return self.endpoint + "statements"

    @property
    def auth_kind(self) -> Literal["basic", "bearer"]:
        return "bearer" if self.token is not None else "basic"


# A keep-alive connection the LRS closed while idle fails on first use; one immediate second try
# on a fresh connection fixes that without sleeping. Re-POSTing is safe: ids are deterministic.
_reconnect_once = retry(
    retry=retry_if_exception_type((httpx.ConnectError, httpx.RemoteProtocolError)),
    stop=stop_after_attempt(2),
    wait=wait_none(),
    reraise=True,
)


class LrsClient:
    """Talks to one LRS. Thread-compatible as far as the injected `httpx.Client` is."""

    def __init__(
        self, target: LrsTarget, *, http: httpx.Client, clock: Clock | None = None
    ) -> None:
        self.target = target
        self._http = http
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._auth = _auth_for(target)

    def __repr__(self) -> str:
        t = self.target
        return (
            f"LrsClient(name={t.name!r}, endpoint={t.endpoint!r}, auth={t.auth_kind!r}, "
            f"xapi_version={t.xapi_version!r})"
        )

    @property
    def name(self) -> str:
        return self.target.name

    # -- requests ----------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def post_batch(self, bodies: list[bytes]) -> BatchOutcome:
        """POST the statements as one JSON array and classify the answer.

        `bodies` are canonical statement bytes; they are joined, never re-serialised, so every
        retry sends exactly the bytes the LRS may already hold. Never raises for HTTP or
        network failures: those are outcomes.
        """
        if not bodies:
            # LRSs disagree on `[]` (Learning Locker 200, Ralph 400); never send it.
            raise ValueError("post_batch needs at least one statement")
        content = b"[" + b",".join(bodies) + b"]"
        try:
            response = self._send("POST", content=content)
        except httpx.TimeoutException as exc:
            return BatchOutcome(kind=Outcome.RETRY, detail=f"timeout: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return BatchOutcome(kind=Outcome.RETRY, detail=f"network error: {type(exc).__name__}")
        return self._outcome(response)

    def get_statement(self, statement_id: str) -> dict[str, JsonValue] | None:
        """The statement the LRS holds under `statement_id`, or None when it has none.

        Accepts the spec's bare Statement (Learning Locker) and Ralph's ``{"statements": [...]}``
        wrapper; 404 (and Ralph's empty list) mean none.

        Raises:
            DeliveryTransient: a RETRY answer (429, 5xx, network), with `retry_after`.
            LrsUnauthorized: an AUTH answer.
            DeliveryPermanent: any other unexpected answer.
        """
        try:
            response = self._send("GET", params={"statementId": statement_id})
        except httpx.TransportError as exc:
            raise DeliveryTransient(f"GET statement: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        outcome = self._outcome(response)
        if outcome.kind is Outcome.RETRY:
            raise DeliveryTransient(_describe(outcome), retry_after=outcome.retry_after)
        if outcome.kind is Outcome.AUTH:
            raise LrsUnauthorized(_describe(outcome))
        if outcome.kind is not Outcome.STORED:
            raise DeliveryPermanent(_describe(outcome))
        try:
            document = response.json()
        except ValueError as exc:
            raise DeliveryPermanent("GET statement: the LRS answered with invalid JSON") from exc
        return _pick_statement(document, statement_id)

    # -- internals ---------------------------------------------------------------------------
    @_reconnect_once
    def _send(
        self, method: str, *, content: bytes | None = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        headers: dict[str, str] = {"X-Experience-API-Version": self.target.xapi_version}
        if content is not None:
            headers["Content-Type"] = "application/json"
        t = self.target
        return self._http.request(
            method,
            t.statements_url,
            content=content,
            params=params,
            headers=headers,
            auth=self._auth,
            timeout=t.timeout,
            follow_redirects=False,
        )

    def _outcome(self, response: httpx.Response) -> BatchOutcome:
        kind = classify_status(response.status_code)
        detail = "" if kind is Outcome.STORED else _truncate(response.text)
        retry_after = None
        if kind is Outcome.RETRY:
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), now=self._clock.now()
            )
        if kind is not Outcome.STORED:
            logger.info(
                "LRS %s answered %s (%s): %s",
                self.target.name,
                response.status_code,
                kind.value,
                detail,
                extra={"lrs": self.target.name},
            )
        return BatchOutcome(
            kind=kind, status=response.status_code, detail=detail, retry_after=retry_after
        )


class _BearerAuth(httpx.Auth):
    # Holds the SecretStr and reveals it only into the request header, so neither this object's
    # repr nor a traceback local shows the token.
    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "_BearerAuth(token='**********')"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


class _BasicAuth(httpx.Auth):
    def __init__(self, username: str, password: SecretStr) -> None:
        self._username = username
        self._password = password

    def __repr__(self) -> str:
        return f"_BasicAuth(username={self._username!r}, password='**********')"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        header = httpx.BasicAuth(self._username, self._password.get_secret_value())
        yield from header.auth_flow(request)


def _auth_for(target: LrsTarget) -> httpx.Auth:
    if target.token is not None:
        return _BearerAuth(target.token)
    if target.username is None or target.password is None:  # excluded by LrsTarget's validator
        raise ValueError(f"LRS {target.name}: no credentials configured")
    return _BasicAuth(target.username, target.password)


def _truncate(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= DETAIL_LIMIT:
        return flat
    return flat[: DETAIL_LIMIT - 1] + "…"


def _describe(outcome: BatchOutcome) -> str:
    status = outcome.status if outcome.status is not None else "no answer"
    return f"GET statement: {status} {outcome.detail}".rstrip()


def _pick_statement(document: object, statement_id: str) -> dict[str, JsonValue] | None:
    if not isinstance(document, dict):
        raise DeliveryPermanent("GET statement: the LRS answered with something not an object")
    wrapped = document.get("statements")
    if isinstance(wrapped, list) and "actor" not in document:
        # Ralph: {"statements": [...]}; [] for an unknown id. Match the id rather than taking the
        # first element, because Ralph ignores some filters and may list more.
        for candidate in wrapped:
            if isinstance(candidate, dict) and candidate.get("id") == statement_id:
                return candidate
        return None
    return document
