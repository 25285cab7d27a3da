"""App-only Graph tokens: MSAL client credentials wrapped in an `httpx.Auth` (STYLE §6).

* One `msal.ConfidentialClientApplication` per connector instance, built on first use and kept
  for the process lifetime: its token cache is what makes `acquire_token_for_client` reuse
  tokens (vendors.md 5.1).
* MSAL does its own HTTP; `MsalHttpAdapter` gives it the hub's `httpx.Client` (MSAL's
  ``http_client`` interface: ``post``/``get`` returning objects with ``status_code``, ``text``,
  ``headers`` and ``raise_for_status``, which `httpx.Response` has). So the token endpoint is
  mocked with respx like any other call, and timeouts and the transport are the hub's.
* A 401 from Graph drops the cached token and retries the call once with a fresh one.
* MSAL error answers become `ConfigError` (wrong tenant, client, secret or consent) or
  `TransientError`; secrets and tokens never appear in messages.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import msal

from hub import ConfigError, TransientError

__all__ = ["GraphAuth", "MsalHttpAdapter"]

_CONFIG_ERRORS = frozenset(
    {
        "invalid_client",
        "unauthorized_client",
        "invalid_request",
        "invalid_scope",
        "invalid_grant",
        "invalid_resource",
    }
)


class MsalHttpAdapter:
    """MSAL's ``http_client`` interface over an `httpx.Client` (see the module docstring)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def post(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        content = urlencode(dict(data)) if isinstance(data, Mapping) else data
        merged = dict(headers or {})
        if isinstance(data, Mapping):
            merged.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            return self._client.post(url, params=params, content=content, headers=merged)
        except httpx.TransportError as exc:
            raise TransientError(f"token endpoint: network error ({type(exc).__name__})") from None

    def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        try:
            return self._client.get(url, params=params, headers=dict(headers or {}))
        except httpx.TransportError as exc:
            raise TransientError(f"authority: network error ({type(exc).__name__})") from None

    def close(self) -> None:
        """MSAL may close its client; the hub owns this one, so nothing happens."""


class GraphAuth(httpx.Auth):
    """Bearer tokens from MSAL client credentials for every Graph request."""

    def __init__(
        self,
        *,
        http: httpx.Client,
        tenant_id: str,
        client_id: str,
        authority_host: str,
        scope: str,
        client_secret: str | None = None,
        certificate: Mapping[str, str] | None = None,
    ) -> None:
        self._http = http
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self.client_id = client_id
        self.scopes = [scope]
        self._credential: str | dict[str, str] = (
            dict(certificate) if certificate is not None else (client_secret or "")
        )
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        self.token_cache = msal.TokenCache()

    def __repr__(self) -> str:
        return f"GraphAuth(authority={self.authority!r}, client_id={self.client_id!r})"

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    client_id=self.client_id,
                    authority=self.authority,
                    client_credential=self._credential,
                    http_client=MsalHttpAdapter(self._http),
                    token_cache=self.token_cache,
                    instance_discovery=False,
                )
            except ValueError as exc:
                # MSAL's message names the authority, never the secret.
                raise ConfigError(
                    f"Entra authority {self.authority!r} is unusable: {exc}"
                ) from None
        return self._app

    def token(self) -> str:
        """A valid access token (MSAL's cache first, the token endpoint when needed)."""
        with self._lock:
            result = self._application().acquire_token_for_client(scopes=self.scopes)
        token = result.get("access_token") if isinstance(result, dict) else None
        if isinstance(token, str) and token:
            return token
        error = str(result.get("error", "unknown")) if isinstance(result, dict) else "unknown"
        codes = result.get("error_codes") if isinstance(result, dict) else None
        if error in _CONFIG_ERRORS:
            raise ConfigError(
                f"Entra ID refused the app-only token for client {self.client_id} ({error}, "
                f"codes {codes}); check tenant, client id, credential and admin consent"
            )
        raise TransientError(f"Entra ID token request failed ({error})")

    def invalidate(self) -> None:
        """Forget cached tokens (after a 401)."""
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        if response.status_code == 401:
            self.invalidate()
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request
