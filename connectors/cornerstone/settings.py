"""Settings of a Cornerstone OnDemand instance (``config/connectors/<id>.yaml`` ``settings``).

Facts vendors.md marks [U] are settings with documented defaults: the status ids that mean
completed / in progress / registered (tenant lookups), the verb for assignments, the title column
of ``vw_rpt_training``, and the CSV column names of file-drop reports.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator

from hub import ConnectorSettings, HmacVerifier, SystemClock

__all__ = ["CornerstoneSettings", "DEFAULT_SCOPES"]

DEFAULT_SCOPES = ("vw_rpt_transcript:read", "vw_rpt_user:read", "vw_rpt_training:read")


class CornerstoneSettings(ConnectorSettings):
    """One Cornerstone portal (one environment: production, pilot and stage are separate)."""

    base_url: str = Field(description="https://{corpname}.csod.com (or -pilot/-stage hosts)")
    tenant: str | None = Field(
        default=None,
        description="tenant token in statement ids and IRIs (default: the base_url host). "
        "NEVER change it once statements were sent: it re-keys history",
    )
    mode: Literal["api", "files"] = Field(
        default="api", description="api: Reporting API polling; files: CSV transcript reports"
    )

    # -- OAuth2 client credentials (vendors.md 3.2) --------------------------------------------
    client_id: str | None = Field(default=None, description="required in api mode")
    client_secret: SecretStr | None = Field(default=None, description="required in api mode")
    scopes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES),
        description="one {view}:read per view; only scopes registered on the application",
    )
    token_body: Literal["json-camel", "form"] = Field(
        default="json-camel", description="token request encoding; both work on most portals"
    )

    # -- Reporting API polling (vendors.md 3.3-3.5) ------------------------------------------
    page_size: int = Field(default=1000, ge=1, le=10000, description="Prefer: odata.maxpagesize")
    overlap_minutes: float = Field(
        default=30, ge=0, description="RTDW lag is up to ~15 min; default 30"
    )
    start_date: AwareDatetime | None = Field(
        default=None, description="first-run backfill start (default: 30 days ago)"
    )
    requests_per_minute: float = Field(
        default=300, gt=0, description="client-side limit PER VIEW (Cornerstone allows 400)"
    )
    burst: int = Field(default=10, ge=1, description="requests allowed back to back per view")
    low_water_remaining: int = Field(
        default=10,
        ge=0,
        description="slow down when x-csod-requests-remaining-urilevel drops to this",
    )
    training_title_column: str = Field(
        default="lo_title", description="[U] title column of vw_rpt_training in your portal"
    )
    cache_ttl_hours: float = Field(default=24, gt=0, description="user/training join cache")

    # -- status ids ([U]: tenant lookups; check vw_rpt_transcript user_lo_status) -------------
    completed_status_ids: list[int] = Field(
        default_factory=lambda: [16], description="user_lo_status_id values meaning completed"
    )
    in_progress_status_ids: list[int] = Field(
        default_factory=list, description="user_lo_status_id values meaning in progress"
    )
    registered_status_ids: list[int] = Field(
        default_factory=list, description="user_lo_status_id values meaning registered"
    )
    completed_status_names: list[str] = Field(
        default_factory=lambda: ["Completed"],
        description="user_lo_status texts meaning completed (used when the id is not listed)",
    )
    in_progress_status_names: list[str] = Field(
        default_factory=lambda: ["In Progress"],
        description="user_lo_status texts meaning in progress",
    )
    registered_status_names: list[str] = Field(
        default_factory=lambda: ["Registered", "Approved"],
        description="user_lo_status texts meaning registered",
    )

    # -- mapping ------------------------------------------------------------------------------
    assign_verb: Literal["registered", "assign"] = Field(
        default="registered",
        description="[U] TrainingAssigned as 'registered' (learner is actor) or AS1 'assign' "
        "(assigner is actor; needs the assigner's GUID)",
    )
    session_completed_too: bool = Field(
        default=False, description="ILT sessions: 'completed' as well as 'attended'"
    )
    curriculum_type: Literal["course", "learning-plan"] = Field(
        default="course", description="[U] activity type of curricula"
    )
    enrich_webhooks: bool = Field(
        default=True,
        description="join webhook facts with vw_rpt_user/training/transcript (score, pass, "
        "duration, type) so webhook and polling give identical statements",
    )

    # -- webhooks (vendors.md 3.7) ------------------------------------------------------------
    webhook_api_key: SecretStr | None = Field(
        default=None, description="the x-api-key Cornerstone generated for the endpoint"
    )
    webhook_previous_api_key: SecretStr | None = Field(
        default=None, description="accepted too while rotating"
    )
    # HMAC signing (vendors.md 3.7): Cornerstone documents its parts, not the exact string to
    # sign, so the string is a template an admin can adjust once confirmed on the tenant.
    webhook_hmac_secret: SecretStr | None = Field(
        default=None,
        description="the endpoint's Security Token, base64 as Cornerstone shows it; when set, "
        "the Authorization HMAC-SHA256, x-content-sha256 and Date are checked too",
    )
    webhook_previous_hmac_secret: SecretStr | None = Field(
        default=None, description="accepted too while rotating"
    )
    webhook_hmac_string: str = Field(
        default="{method}\n{path_and_query}\n{header:x-content-sha256}\n{header:date}",
        description="what is signed: {method}, {path_and_query}, {path}, {body}, {header:Name} "
        "(append custom headers as \\n{header:X-Name})",
    )
    webhook_hmac_prefix: str = Field(
        default="", description="literal text before the base64 signature in Authorization"
    )
    webhook_max_clock_skew: float = Field(
        default=300.0, gt=0, le=3600, description="seconds the Date header may be off"
    )

    # -- file-drop mode -------------------------------------------------------------------------
    files_dir: Path | None = Field(default=None, description="where CSV reports are dropped")
    files_pattern: str = Field(default="*.csv", description="glob of report files in files_dir")
    csv_delimiter: str = Field(
        default=",", min_length=1, max_length=1, description="CSV field separator"
    )
    csv_encoding: str = Field(default="utf-8-sig", description="text encoding of the reports")
    csv_columns: dict[str, str] = Field(
        default_factory=dict,
        description="CSV header -> Reporting API column name (e.g. 'User GUID': user_guid)",
    )

    @field_validator("webhook_hmac_string")
    @classmethod
    def _signable(cls, value: str) -> str:
        # Fail at `lxhub config check` rather than when the first webhook arrives.
        try:
            HmacVerifier(
                secrets=[b"probe"], header="authorization", signed_string=value, clock=SystemClock()
            )
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("base_url must be an https:// URL")
        return f"https://{parts.netloc}"

    @model_validator(mode="after")
    def _consistent(self) -> CornerstoneSettings:
        if self.mode == "api" and (not self.client_id or self.client_secret is None):
            raise ValueError("mode 'api' needs client_id and client_secret")
        if self.mode == "files" and self.files_dir is None:
            raise ValueError("mode 'files' needs files_dir")
        return self

    @property
    def tenant_token(self) -> str:
        return (self.tenant or urlsplit(self.base_url).hostname or "").lower()

    @property
    def has_api(self) -> bool:
        return bool(self.client_id) and self.client_secret is not None

    def first_start(self, now: datetime) -> datetime:
        return self.start_date or now - timedelta(days=30)
