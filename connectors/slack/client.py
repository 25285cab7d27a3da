"""Slack Web API calls through slack-sdk's `WebClient`, with its rate-limit retry handler.

* `users_info(user)` -> `SlackUser` (id, name, email). Errors are turned into the hub's tree:
  ``missing_scope`` / auth errors -> `ConfigError` naming the scope, 429 after the in-process
  retries -> `RateLimited`, 5xx / network -> `TransientError`, ``user_not_found`` -> None.
* `auth_test()` for `check()`.

Retries follow vendors.md 6.6: connection errors (2), rate limits (3), 500/503 (2). The
rate-limit handler is slack-sdk's `RateLimitErrorRetryHandler` with two changes: it only waits
when ``Retry-After`` is at most `max_wait` seconds (longer waits become a task retry: a worker
never sleeps long), and its sleep function is injectable (tests do not sleep).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from urllib.error import URLError

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from hub import ConfigError, PermanentError, RateLimited, TransientError

__all__ = ["EMAIL_SCOPE", "BoundedRateLimitRetryHandler", "SlackApi", "SlackUser"]

logger = logging.getLogger(__name__)

EMAIL_SCOPE = "users:read.email"
_AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
_NOT_FOUND = frozenset({"user_not_found", "users_not_found"})


class SlackUser(BaseModel):
    """What `users.info` tells about a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str | None = None
    email: str | None = None
    is_bot: bool = False


class _Profile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    email: str | None = None
    real_name: str | None = None
    display_name: str | None = None


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    real_name: str | None = None
    is_bot: bool = False
    profile: _Profile = _Profile()


def _retry_after(response: HttpResponse) -> float | None:
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                return max(float(values[0]), 0.0)
            except ValueError:
                return None
    return None


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler, waiting only for short ``Retry-After`` values (module doc)."""

    def __init__(
        self,
        max_retry_count: int = 3,
        *,
        max_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        self.sleep = sleep
        self.waits: list[float] = []

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after(response)
        return wait is None or wait <= self.max_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:  # pragma: no cover - _can_retry needs a response
            raise error or RuntimeError("no response to retry")
        state.next_attempt_requested = True
        wait = _retry_after(response)
        # Retry-After plus a little jitter, like slack-sdk (S311: jitter, not crypto).
        duration = (1.0 if wait is None else wait) + random.random() * 0.5  # noqa: S311
        self.waits.append(duration)
        self.sleep(duration)
        state.increment_current_attempt()


class SlackApi:
    """The few Web API methods the connector uses (module doc)."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        rate_limit_retries: int = 3,
        max_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: int = 10,
    ) -> None:
        self.rate_limit_handler = BoundedRateLimitRetryHandler(
            rate_limit_retries, max_wait=max_wait, sleep=sleep
        )
        self.client = WebClient(
            token=token,
            base_url=base_url,
            timeout=timeout,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                self.rate_limit_handler,
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )

    def __repr__(self) -> str:
        return f"SlackApi(base_url={self.client.base_url!r}, token=<hidden>)"

    def _call(self, method: str, fn: Callable[[], SlackResponse]) -> SlackResponse | None:
        try:
            return fn()
        except SlackApiError as exc:
            return self._classify(method, exc.response)
        except (URLError, SlackRequestError, TimeoutError, ConnectionError) as exc:
            raise TransientError(f"Slack {method}: network error ({type(exc).__name__})") from None

    @staticmethod
    def _classify(method: str, response: SlackResponse) -> None:
        status = response.status_code
        error = response.get("error") if isinstance(response.data, dict) else None
        if status == 429:
            values = response.headers.get("Retry-After") or response.headers.get("retry-after")
            try:
                retry_after = float(values) if values is not None else 60.0
            except (TypeError, ValueError):
                retry_after = 60.0
            raise RateLimited(f"Slack {method}: rate limited (HTTP 429)", retry_after=retry_after)
        if status >= 500:
            raise TransientError(f"Slack {method}: HTTP {status}")
        if error == "missing_scope":
            needed = response.get("needed") or EMAIL_SCOPE
            raise ConfigError(
                f"Slack {method}: the bot token lacks the scope {needed!r}; add users:read and "
                f"{EMAIL_SCOPE} under OAuth & Permissions and reinstall the app"
            )
        if error in _AUTH_ERRORS:
            raise ConfigError(f"Slack {method}: the bot token was refused ({error})")
        if error == "ratelimited":
            raise RateLimited(f"Slack {method}: rate limited", retry_after=60.0)
        if error in _NOT_FOUND:
            return None
        raise PermanentError(f"Slack {method}: {error or f'HTTP {status}'}")

    def auth_test(self) -> None:
        """Check the token (``auth.test``): ConfigError when refused."""
        self._call("auth.test", self.client.auth_test)

    def users_info(self, user: str) -> SlackUser | None:
        """The user's id, name and email (``users.info``); None for an unknown user.

        A success without ``profile.email`` while the granted scopes (``X-OAuth-Scopes``) lack
        ``users:read.email`` is a `ConfigError`: Slack silently hides emails then.
        """
        response = self._call("users.info", lambda: self.client.users_info(user=user))
        if response is None:
            return None
        try:
            found = _User.model_validate(response.get("user"))
        except ValidationError:
            raise PermanentError("Slack users.info: unexpected answer shape") from None
        email = (found.profile.email or "").strip() or None
        if email is None and not found.is_bot:
            scopes = response.headers.get("x-oauth-scopes") or response.headers.get(
                "X-OAuth-Scopes"
            )
            if scopes is not None and EMAIL_SCOPE not in {s.strip() for s in scopes.split(",")}:
                raise ConfigError(
                    f"Slack users.info returned no email: the bot token lacks {EMAIL_SCOPE!r} "
                    f"(granted: {scopes}); add it under OAuth & Permissions and reinstall"
                )
        name = found.profile.real_name or found.real_name or found.profile.display_name
        return SlackUser(id=found.id, name=name or None, email=email, is_bot=found.is_bot)
