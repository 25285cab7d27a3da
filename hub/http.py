"""HTTP helpers for source APIs: a client factory, the response classifier, in-process retries.

* `build_client()`: timeouts, user agent, base URL, auth and an injectable transport.
* `classify_source_response()`: turns a non-2xx source response into the hub's exception tree
  (STYLE §6) so every connector applies the same policy:

  =============================  =================================================
  2xx / 3xx                      returned to the caller (no exception)
  401, 403                       `ConfigError` (the auth flow already refreshed once)
  408, 425                       `TransientError`
  429                            `RateLimited` (``Retry-After``, else the fallback)
  503 with ``Retry-After``       `RateLimited` (Docebo answers 503 under overload)
  other 5xx                      `TransientError`
  other 4xx                      `PermanentError`
  =============================  =================================================

* `send_with_retry()`: a tenacity retry for connect and read errors ONLY (a few quick attempts).
  Anything longer becomes a task retry; a task never sleeps for long (STYLE §5).

Error messages carry the method, the path and the status, never the body or the query string
(bodies can quote personal data; query strings can carry tokens).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from hub.backoff import parse_retry_after
from hub.errors import ConfigError, PermanentError, RateLimited, TransientError

__all__ = [
    "DEFAULT_TIMEOUT",
    "RETRYABLE_NETWORK_ERRORS",
    "USER_AGENT",
    "build_client",
    "classify_source_response",
    "send_with_retry",
]

logger = logging.getLogger(__name__)

USER_AGENT = "lxhub/0.1 (+https://github.com/lxhub)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

RETRYABLE_NETWORK_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.ReadTimeout,
    # A streamed page that breaks mid-body (Cornerstone RTDW) surfaces as this one.
    httpx.RemoteProtocolError,
)


def build_client(
    *,
    base_url: str = "",
    auth: httpx.Auth | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
    user_agent: str = USER_AGENT,
) -> httpx.Client:
    """A client with sane timeouts, our user agent and no redirects (a redirect on an API call
    is a misconfigured base URL; following it could send the token to another host)."""
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        timeout=timeout,
        transport=transport,
        headers={"User-Agent": user_agent},
        follow_redirects=False,
    )


def _where(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.path}"


def classify_source_response(
    response: httpx.Response,
    *,
    now: datetime,
    fallback_retry_after: Callable[[], float] | None = None,
) -> httpx.Response:
    """Return `response` if it succeeded, else raise the matching hub error (see module doc).

    `fallback_retry_after` computes the wait for a 429 without a usable ``Retry-After`` (a
    connector's own backoff, e.g. Cornerstone's, which documents no header); without it 60 s.
    """
    status = response.status_code
    if status < 400:
        return response
    where = _where(response)
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
    if status == 429:
        if retry_after is None:
            retry_after = fallback_retry_after() if fallback_retry_after else 60.0
        raise RateLimited(f"{where}: rate limited (HTTP 429)", retry_after=retry_after)
    if status in (401, 403):
        raise ConfigError(
            f"{where}: HTTP {status}; the credentials lack access (check the API user's "
            "permissions and the OAuth scopes)"
        )
    if status == 503 and retry_after is not None:
        raise RateLimited(f"{where}: overloaded (HTTP 503)", retry_after=retry_after)
    if status in (408, 425) or status >= 500:
        raise TransientError(f"{where}: HTTP {status}")
    raise PermanentError(f"{where}: HTTP {status}")


def send_with_retry(
    client: httpx.Client,
    request: httpx.Request,
    *,
    auth: httpx.Auth | None = None,
    attempts: int = 3,
    max_wait: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """Send `request`, retrying connect/read errors a few times; then `TransientError`.

    HTTP error statuses are NOT retried here: they go to `classify_source_response` and, when
    transient, to the task's retry with its longer backoff.
    """
    retrying = Retrying(
        retry=retry_if_exception_type(RETRYABLE_NETWORK_ERRORS),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(max=max_wait),
        sleep=sleep,
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                return client.send(request) if auth is None else client.send(request, auth=auth)
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        raise TransientError(
            f"{request.method} {request.url.path}: network error after {attempts} attempts "
            f"({type(cause).__name__})"
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover - Retrying always yields
