"""Reusable `httpx.Auth` classes for source APIs: static bearer tokens and OAuth2 token grants.

Every class here works inside httpx's `auth_flow` generator, so a connector just builds its
client with ``auth=...`` and never handles tokens itself:

* `BearerToken`: a static token (``Authorization: Bearer …``).
* `OAuth2ClientCredentials`: the ``client_credentials`` grant (Docebo, Cornerstone).
* `OAuth2Password`: the ``password`` grant with a service user (Docebo's most common setup).

OAuth2 behaviour (vendors.md 2.2, 3.2; STYLE §6):

* The token is cached until ``expires_in`` minus a leeway (60 s by default). The expiry is counted
  from the time recorded **before** the token POST (singer's rule), so a slow token endpoint can
  never make us believe a token lives longer than it does.
* A 401 on a call re-authenticates **once** and retries that call once; a second 401 is returned
  to the caller, whose classifier turns it into a `ConfigError`.
* Token endpoint failures are classified here: 400/401/403 -> `ConfigError` (wrong credentials or
  scope, retrying cannot help), 429 -> `RateLimited`, 5xx and the rest -> `TransientError`.
* Secrets and tokens never appear in ``repr()``, logs or exception messages.

Example::

    auth = OAuth2ClientCredentials(
        token_url="https://acme.csod.com/services/api/oauth2/token",
        client_id="id", client_secret=SecretStr("..."), scope="vw_rpt_user:read",
        body="json-camel", clock=runtime.clock,
    )
    client = httpx.Client(base_url="https://acme.csod.com", auth=auth)
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Literal

import httpx
from pydantic import SecretStr

from hub.backoff import parse_retry_after
from hub.clock import Clock, SystemClock
from hub.errors import ConfigError, RateLimited, TransientError

__all__ = ["BearerToken", "OAuth2ClientCredentials", "OAuth2Password", "TokenBody"]

logger = logging.getLogger(__name__)

TokenBody = Literal["form", "json-camel"]
"""How the token request is encoded: RFC 6749 form fields, or Cornerstone's JSON
(``clientId``/``clientSecret``/``grantType``/``scope``)."""

_DEFAULT_LIFETIME = 3600.0  # when a server omits expires_in, assume the common hour


def _secret(value: SecretStr | str) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class BearerToken(httpx.Auth):
    """A static bearer token."""

    def __init__(self, token: SecretStr | str) -> None:
        self._token = _secret(token)

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class _OAuth2(httpx.Auth):
    """Shared machinery of the OAuth2 grants: token cache, expiry, refresh-once on 401."""

    grant_type: str = ""
    # The token response must be read inside the flow.
    requires_response_body = True

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        scope: str | None = None,
        body: TokenBody = "form",
        leeway: timedelta = timedelta(seconds=60),
        clock: Clock | None = None,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = _secret(client_secret)
        self.scope = scope
        self.body = body
        self.leeway = leeway
        self.clock: Clock = clock or SystemClock()
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = threading.Lock()
        self.token_requests = 0
        """How many token POSTs this instance made (for tests and metrics)."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            "secret=<hidden>)"
        )

    # -- token request ---------------------------------------------------------------------

    def _fields(self) -> dict[str, str]:
        fields = {
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.scope:
            fields["scope"] = self.scope
        return fields

    def token_request(self) -> httpx.Request:
        """The POST that obtains a new token."""
        fields = self._fields()
        if self.body == "json-camel":
            camel = {
                "clientId": fields.pop("client_id"),
                "clientSecret": fields.pop("client_secret"),
                "grantType": fields.pop("grant_type"),
                **fields,
            }
            return httpx.Request(
                "POST",
                self.token_url,
                json=camel,
                headers={"Accept": "application/json", "Cache-Control": "no-cache"},
            )
        return httpx.Request(
            "POST", self.token_url, data=fields, headers={"Accept": "application/json"}
        )

    def _valid_token(self) -> str | None:
        with self._lock:
            if self._token is None or self._expires_at is None:
                return None
            if self.clock.now() >= self._expires_at:
                return None
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (the next request fetches a new one)."""
        with self._lock:
            self._token = None
            self._expires_at = None

    def _store(self, response: httpx.Response, requested_at: datetime) -> str:
        self.token_requests += 1
        status = response.status_code
        if status == 429:
            retry = parse_retry_after(response.headers.get("Retry-After"), now=self.clock.now())
            raise RateLimited("token endpoint rate-limited (HTTP 429)", retry_after=retry or 60.0)
        if status in (400, 401, 403):
            # Never echo the body: some servers repeat the submitted credentials.
            raise ConfigError(
                f"token endpoint refused the credentials of client {self.client_id!r} "
                f"(HTTP {status}); check client id/secret, grant and scopes"
            )
        if status >= 300:
            raise TransientError(f"token endpoint failed (HTTP {status})")
        try:
            data = json.loads(response.content)
        except ValueError:
            raise TransientError("token endpoint returned a body that is not JSON") from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise TransientError("token endpoint returned no access_token")
        raw_lifetime = data.get("expires_in", _DEFAULT_LIFETIME)
        try:
            lifetime = float(raw_lifetime)
        except (TypeError, ValueError):
            lifetime = _DEFAULT_LIFETIME
        # Short-lived tokens (below the leeway) are still used once rather than never.
        usable = max(lifetime - self.leeway.total_seconds(), 0.0)
        with self._lock:
            self._token = token
            self._expires_at = requested_at + timedelta(seconds=usable)
        logger.debug("obtained a token for client %s (valid %.0f s)", self.client_id, usable)
        return token

    # -- the flow ---------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._valid_token()
        if token is None:
            requested_at = self.clock.now()  # BEFORE the POST: expiry is never overestimated
            token = self._store((yield self.token_request()), requested_at)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        # The token was revoked or expired early: re-authenticate once, retry once.
        self.invalidate()
        requested_at = self.clock.now()
        token = self._store((yield self.token_request()), requested_at)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class OAuth2ClientCredentials(_OAuth2):
    """OAuth2 ``client_credentials`` grant (Docebo, Cornerstone)."""

    grant_type = "client_credentials"


class OAuth2Password(_OAuth2):
    """OAuth2 ``password`` grant with a dedicated service user (Docebo)."""

    grant_type = "password"

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        username: str,
        password: SecretStr | str,
        scope: str | None = None,
        body: TokenBody = "form",
        leeway: timedelta = timedelta(seconds=60),
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            body=body,
            leeway=leeway,
            clock=clock,
        )
        self.username = username
        self._password = _secret(password)

    def _fields(self) -> dict[str, str]:
        return {**super()._fields(), "username": self.username, "password": self._password}
