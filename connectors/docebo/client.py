"""The Docebo REST client: OAuth2, client-side rate limit, classification, typed pages.

It uses the hub-injected `httpx.Client` (runtime.http) and passes its own auth per request, so
tests mock it with respx and the hub controls timeouts and transports.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import httpx
from pydantic import ValidationError

from connectors.docebo.models import (
    DoceboPage,
    DoceboUserData,
    DoceboUserResponse,
    EnrollmentRecord,
)
from connectors.docebo.settings import DoceboSettings
from hub import (
    Clock,
    ConfigError,
    OAuth2ClientCredentials,
    OAuth2Password,
    PermanentError,
    RateLimiter,
    TransientError,
    classify_source_response,
    send_with_retry,
)

__all__ = ["DoceboClient"]

logger = logging.getLogger(__name__)

Params = Mapping[str, str | int | Sequence[str | int]]


class DoceboClient:
    """Thin typed access to the endpoints the connector uses."""

    def __init__(self, settings: DoceboSettings, *, http: httpx.Client, clock: Clock) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        token_url = f"{settings.base_url}/oauth2/token"
        self.auth: OAuth2Password | OAuth2ClientCredentials
        if settings.grant == "password":
            if settings.username is None or settings.password is None:  # validated; for mypy
                raise ConfigError("grant 'password' needs username and password")
            self.auth = OAuth2Password(
                token_url=token_url,
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                username=settings.username,
                password=settings.password,
                scope=settings.scope,
                clock=clock,
            )
        else:
            self.auth = OAuth2ClientCredentials(
                token_url=token_url,
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                scope=settings.scope,
                clock=clock,
            )
        self.limiter = RateLimiter(
            rate=settings.rate_per_second, burst=settings.rate_burst, clock=clock
        )

    def get_json(self, path: str, params: Params | None = None) -> object:
        """GET `path` under the tenant; classified errors; the decoded JSON body."""
        self.limiter.acquire("tenant")
        request = self.http.build_request(
            "GET",
            f"{self.settings.base_url}{path}",
            params=params,
            headers={"Accept": "application/json"},
        )
        response = send_with_retry(self.http, request, auth=self.auth)
        classify_source_response(response, now=self.clock.now())
        try:
            return json.loads(response.content)
        except ValueError:
            raise TransientError(f"GET {path}: body is not JSON") from None

    def page(self, path: str, params: Params) -> DoceboPage:
        body = self.get_json(path, params)
        try:
            return DoceboPage.model_validate(body)
        except ValidationError:
            raise PermanentError(f"GET {path}: unexpected list envelope") from None

    def user(self, user_id: str) -> DoceboUserData | None:
        """``GET /manage/v1/user/{id}``; None when Docebo does not know the user."""
        try:
            body = self.get_json(f"/manage/v1/user/{user_id}")
        except PermanentError:
            return None  # 404: the user was deleted; the resolver applies its policy
        try:
            return DoceboUserResponse.model_validate(body).data.user_data
        except ValidationError:
            raise PermanentError("GET /manage/v1/user: unexpected body") from None

    def enrollment_rows(self, *, user_id: str, course_id: str) -> list[EnrollmentRecord]:
        """The enrollment rows of one user in one course (to enrich a webhook completion)."""
        if self.settings.enrollments_api == "course":
            params: Params = {
                "user_id[]": [user_id],
                "course_id[]": [course_id],
                "extra_fields[]": ["enrollment_time_spent"],
            }
            path = "/course/v1/courses/enrollments"
        else:
            params = {"id_user[]": [user_id], "id_course[]": [course_id]}
            path = "/learn/v1/enrollments"
        rows: list[EnrollmentRecord] = []
        for item in self.page(path, params).data.items:
            try:
                rows.append(EnrollmentRecord.model_validate(item))
            except ValidationError:
                continue  # a row of another shape cannot enrich this fact
        return rows
