"""A small Microsoft Graph client over the hub's `httpx.Client` with `GraphAuth`.

Failures follow the hub's classifier (`hub.http.classify_source_response`): 429 and 503 with
``Retry-After`` -> `RateLimited` (the task waits exactly that long, vendors.md 5.6), 401/403 ->
`ConfigError`, 5xx -> `TransientError`, other 4xx -> `PermanentError`. `GraphStatusError`
lets callers react to specific statuses first (404 subscription gone, 410 delta expired).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from hub import Clock, PermanentError, TransientError, classify_source_response

__all__ = ["GraphClient", "GraphStatusError", "Page"]


class GraphStatusError(PermanentError):
    """A Graph answer with a status the caller asked to handle itself."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class Page(BaseModel):
    """A Graph collection page (``value`` plus the next or delta link)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    value: list[JsonValue] = Field(default_factory=list)
    next_link: str | None = Field(default=None, alias="@odata.nextLink")
    delta_link: str | None = Field(default=None, alias="@odata.deltaLink")


class GraphClient:
    """Graph calls relative to ``base_url`` (absolute next/delta links are used as given)."""

    def __init__(
        self, *, http: httpx.Client, base_url: str, auth: httpx.Auth, clock: Clock
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._clock = clock

    def url(self, path: str) -> str:
        return (
            path
            if path.startswith(("https://", "http://"))
            else f"{self.base_url}/{path.lstrip('/')}"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: JsonValue | None = None,
        handle: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send one request; raise per the module docstring (`GraphStatusError` for `handle`)."""
        try:
            response = self._http.request(
                method, self.url(path), params=params, json=json, auth=self._auth
            )
        except httpx.TransportError as exc:
            raise TransientError(
                f"Graph {method} {httpx.URL(self.url(path)).path}: network error "
                f"({type(exc).__name__})"
            ) from None
        if response.status_code in handle:
            raise GraphStatusError(
                f"Graph {method} {response.request.url.path}: HTTP {response.status_code}",
                status=response.status_code,
            )
        return classify_source_response(response, now=self._clock.now())

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        handle: frozenset[int] = frozenset(),
    ) -> JsonValue:
        response = self.request("GET", path, params=params, handle=handle)
        try:
            data: JsonValue = response.json()
        except ValueError:
            raise TransientError(f"Graph GET {response.request.url.path}: not JSON") from None
        return data

    def get_page(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        handle: frozenset[int] = frozenset(),
    ) -> Page:
        data = self.get_json(path, params=params, handle=handle)
        try:
            return Page.model_validate(data)
        except ValidationError:
            raise PermanentError("Graph returned a page without a value list") from None
