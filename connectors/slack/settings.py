"""Settings of one Slack connector instance (one workspace of one Slack app).

Secrets (`signing_secret`, `bot_token`) are `SecretStr`; the config loader resolves
``${ENV}`` / ``{file: ...}`` references into them. See ``connectors/slack/README.md``.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from hub import ConnectorSettings

__all__ = ["SlackSettings"]

_SLACK_API = "https://slack.com/api/"


class SlackSettings(ConnectorSettings):
    """Settings of a ``type: slack`` connector instance."""

    team_id: str = Field(
        pattern=r"^[TE][A-Z0-9]{2,}$",
        description=(
            "the workspace id (T…) the app is installed in; its lower-case form is the tenant "
            "token of statement ids, so never change it once statements were sent"
        ),
    )
    signing_secret: SecretStr = Field(
        description="the app's Signing Secret (Basic Information → App Credentials)"
    )
    bot_token: SecretStr | None = Field(
        default=None,
        description=(
            "the bot token xoxb-… used for users.info email lookups (scopes users:read and "
            "users:read.email); without it actors fall back to Slack account ids"
        ),
    )
    channels: tuple[str, ...] = Field(
        default=(),
        description="allow-list of channel ids (C…/G…) whose events become statements",
    )
    all_channels: bool = Field(
        default=False,
        description="accept every channel the app can see instead of the allow-list",
    )
    include_message_text: bool = Field(
        default=False,
        description="copy message text into result.response (truncated); off for privacy",
    )
    message_text_max_chars: int = Field(
        default=1000, ge=1, le=10000, description="truncation length of copied message text"
    )
    mentions_as_questions: bool = Field(
        default=True,
        description=(
            "an app_mention whose text ends with '?' becomes an 'asked' statement; other "
            "mentions are skipped (the message event already gives 'posted')"
        ),
    )
    skip_external_users: bool = Field(
        default=True,
        description="ignore messages of users from other organizations (Slack Connect)",
    )
    api_base_url: str = Field(
        default=_SLACK_API,
        pattern=r"^https?://\S+/$",
        description="Slack Web API base URL (ends with '/'); change only for tests or proxies",
    )
    rate_limit_retries: int = Field(
        default=3, ge=0, le=10, description="retries of a rate-limited (429) Web API call"
    )
    rate_limit_max_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        le=120,
        description=(
            "longest Retry-After waited in-process; a longer wait is handed to the task queue"
        ),
    )

    @field_validator("channels")
    @classmethod
    def _channel_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if not c or c[0] not in "CGD" or not c.isalnum()]
        if bad:
            raise ValueError(f"channel ids look like C0123ABCD; got {bad}")
        return value
