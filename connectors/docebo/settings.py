"""Settings of a Docebo instance (the ``settings`` table of ``config/connectors/<id>.yaml``).

Every fact vendors.md marks [U] (unconfirmed) is a setting here, with the documented default:
the time zone of Docebo's offset-less dates, the score scale, the learning-plan event names and
the learning-plan / ILT endpoints.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator

from hub import ConnectorSettings

__all__ = ["DoceboSettings"]


class DoceboSettings(ConnectorSettings):
    """One Docebo tenant."""

    base_url: str = Field(
        description="https://{subdomain}.docebosaas.com or the tenant's custom domain"
    )
    tenant: str | None = Field(
        default=None,
        description="tenant token in statement ids and activity IRIs (default: the base_url "
        "host). NEVER change it once statements were sent: it re-keys history",
    )

    # -- OAuth2 (vendors.md 2.2) ---------------------------------------------------------------
    grant: Literal["password", "client_credentials"] = Field(
        default="password", description="password: a dedicated Superadmin service user"
    )
    client_id: str = Field(description="client id of the OAuth2 app (API and SSO app)")
    client_secret: SecretStr = Field(description="its client secret (use ${ENV} or {file:})")
    username: str | None = Field(default=None, description="service user (password grant)")
    password: SecretStr | None = Field(default=None, description="its password (password grant)")
    scope: str = Field(default="api", description="OAuth2 scope Docebo expects")

    # -- webhooks (vendors.md 2.7: Docebo documents no signature) ----------------------------
    webhook_auth: Literal["basic", "query_token"] = Field(
        default="basic", description="how the payload URL is protected"
    )
    webhook_username: str | None = Field(default=None, description="Basic auth user")
    webhook_password: SecretStr | None = Field(default=None, description="Basic auth password")
    webhook_token_param: str = Field(default="token", description="query parameter name")
    webhook_token: SecretStr | None = Field(default=None, description="secret query token")
    webhook_previous_secret: SecretStr | None = Field(
        default=None, description="the old password/token, accepted too while rotating"
    )
    event_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="tenant event name -> hub event name, e.g. the learning-plan completion "
        "event (unconfirmed [U]) -> 'learningplan.enrollment.completed'",
    )

    # -- polling (vendors.md 2.3-2.5) -----------------------------------------------------------
    enrollments_api: Literal["learn", "course"] = Field(
        default="learn",
        description="learn: GET /learn/v1/enrollments with updated_from (incremental); "
        "course: GET /course/v1/courses/enrollments (no server-side filter; rows are "
        "filtered by enrollment_date_last_updated)",
    )
    learning_plans: bool = Field(default=True, description="poll learning-plan completions")
    learning_plan_path: str = Field(
        default="/learningplan/v1/learningplans/enrollments", description="[U] LP endpoint"
    )
    ilt_attendance_path: str | None = Field(
        default=None,
        description="[U] ILT session attendance endpoint; unset: attendance is not polled",
    )
    page_size: int = Field(default=200, ge=1, le=200, description="Docebo caps pages at 200")
    overlap_minutes: float = Field(
        default=15, ge=0, description="each window starts this long before the saved mark"
    )
    start_date: AwareDatetime | None = Field(
        default=None,
        description="first-run backfill start when the hub gives none (default: 30 days ago)",
    )
    rate_per_second: float = Field(default=2.0, gt=0, description="client-side request rate")
    rate_burst: int = Field(default=4, ge=1, description="requests allowed back to back")

    # -- mapping ([U] facts) ------------------------------------------------------------------
    source_timezone: str = Field(
        default="UTC",
        description="[U] zone of Docebo's offset-less 'YYYY-MM-DD HH:MM:SS' dates (IANA name)",
    )
    score_max: float | None = Field(
        default=100.0,
        gt=0,
        description="[U] the course score scale; null: send the raw score only",
    )
    enrich_completions: bool = Field(
        default=True,
        description="fetch score and time spent for webhook completions (Docebo's webhook has "
        "none), so webhook and polling produce identical statements",
    )
    emit_progressed: bool = Field(
        default=False, description="course.enrollment.updated (in progress) -> 'progressed'"
    )

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("base_url must be an https:// URL")
        return f"https://{parts.netloc}"

    @field_validator("source_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DoceboSettings:
        if self.grant == "password" and (not self.username or self.password is None):
            raise ValueError("grant 'password' needs username and password")
        if self.webhook_auth == "basic" and (
            not self.webhook_username or self.webhook_password is None
        ):
            raise ValueError("webhook_auth 'basic' needs webhook_username and webhook_password")
        if self.webhook_auth == "query_token" and self.webhook_token is None:
            raise ValueError("webhook_auth 'query_token' needs webhook_token")
        return self

    @property
    def tenant_token(self) -> str:
        return (self.tenant or urlsplit(self.base_url).hostname or "").lower()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.source_timezone)

    def first_start(self, now: datetime) -> datetime:
        return self.start_date or now - timedelta(days=30)
