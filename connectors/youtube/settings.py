"""Settings of a YouTube connector instance (validated by `YouTubeSettings`).

One instance serves one embedding site (its login system is the learners' `account.homePage`):
the tracker on its pages posts player batches signed with learner tokens, and optional WebSub
subscriptions keep the metadata cache of the configured channels fresh.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator

from hub import ConnectorSettings

__all__ = ["ChannelId", "YouTubeSettings", "uploads_playlist"]

_CHANNEL = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
_PLAYLIST = re.compile(r"^[A-Za-z0-9_-]{12,64}$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")

ChannelId = Annotated[str, Field(pattern=_CHANNEL.pattern, description="a channel id (UC...)")]


def uploads_playlist(channel_id: str) -> str:
    """The playlist of a channel's uploads: its id with `UC` replaced by `UU` (vendors.md 4.2)."""
    return "UU" + channel_id[2:]


MIN_SECRET_BYTES = 32
"""Shortest accepted learner-token secret: HS256 keys should carry 256 bits."""


class YouTubeSettings(ConnectorSettings):
    """Admin configuration of a `youtube` instance (see connectors/youtube/README.md)."""

    tenant: str = Field(
        description="Lower-case host of the embedding site's login system (e.g. "
        "learn.example.com); used in statement ids. Never change it once statements were sent.",
        pattern=r"^[a-z0-9.-]+$",
    )
    home_page: HttpUrl | None = Field(
        default=None,
        description="account.homePage for learners (default https://{tenant}).",
    )
    token_secret: SecretStr = Field(
        description="Shared HMAC-SHA256 secret the embedding site signs learner tokens with "
        f"(at least {MIN_SECRET_BYTES} bytes).",
    )
    token_audience: str | None = Field(
        default=None,
        description="Required `aud` claim of learner tokens (default: the instance id).",
    )
    token_max_lifetime_seconds: int = Field(
        default=12 * 3600,
        ge=60,
        le=7 * 86400,
        description="Longest accepted token lifetime (exp - iat); longer tokens are refused.",
    )
    token_leeway_seconds: int = Field(
        default=60, ge=0, le=600, description="Clock skew tolerated on exp and iat."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) whose pages may post player events. A "
        "request with another Origin header is refused with 403.",
    )
    require_origin: bool = Field(
        default=False,
        description="Refuse player batches that carry no Origin header (browsers always send "
        "one on POST; only non-browser clients omit it).",
    )
    completion_threshold: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Progress (0-1] at which `completed` is sent (Video Profile default 1).",
    )
    seek_tolerance_seconds: float = Field(
        default=1.5,
        gt=0.0,
        le=60.0,
        description="A position jump larger than this (versus the expected position) is a seek.",
    )
    clock_skew_limit_seconds: float = Field(
        default=300.0,
        gt=0.0,
        description="Client clocks further off than this are replaced by the receipt time "
        "(and the statement is flagged timestamp-inferred).",
    )
    interactions: bool = Field(
        default=False,
        description="Send optional `interacted` statements (rate, volume, mute, quality, "
        "captions, fullscreen).",
    )
    session_ttl_seconds: int = Field(
        default=7 * 86400, ge=3600, description="How long a video session's state is kept."
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="YouTube Data API v3 key for metadata (title, duration, channel). Without "
        "it statements carry only what the tracker reports.",
    )
    api_base_url: HttpUrl = Field(
        default=HttpUrl("https://www.googleapis.com/youtube/v3"),
        description="Data API base URL (change only for tests or a proxy).",
    )
    daily_quota_units: int = Field(
        default=10_000,
        ge=1,
        description="Data API units this instance may spend per day (Pacific time). When spent, "
        "enrichment is skipped; statements are still sent.",
    )
    metadata_ttl_seconds: int = Field(
        default=86_400, ge=600, description="How long video metadata is cached."
    )
    check_video_id: str = Field(
        default="7lCDEYXw3mM",
        pattern=r"^[A-Za-z0-9_-]{11}$",
        description="A public video `check()` looks up to test the API key (costs 1 unit).",
    )
    channels: list[ChannelId] = Field(
        default_factory=list,
        description="Channel ids to follow with WebSub (new uploads refresh the metadata cache).",
    )
    playlists: list[str] = Field(
        default_factory=list,
        description="Playlist ids (PL..., UU...) whose videos' metadata is fetched ahead of the "
        "first viewer and refreshed every catalog_refresh_seconds; a channel id (UC...) means "
        "that channel's uploads. Needs api_key.",
    )
    catalog_refresh_seconds: int = Field(
        default=86_400, ge=3600, description="How often the playlists are walked again."
    )
    public_url: HttpUrl | None = Field(
        default=None,
        description="The hub's public base URL (https); WebSub callbacks go to "
        "{public_url}/webhooks/{instance_id}. Required when channels are set.",
    )
    websub_hub_url: HttpUrl = Field(
        default=HttpUrl("https://pubsubhubbub.appspot.com/subscribe"),
        description="WebSub hub to subscribe at.",
    )
    websub_secret: SecretStr | None = Field(
        default=None,
        description="hub.secret for WebSub (under 200 bytes); notifications must be signed "
        "with it. Required when channels are set.",
    )
    websub_lease_seconds: int = Field(
        default=432_000, ge=3600, description="Lease requested from the hub (it may choose)."
    )
    publish_statements: bool = Field(
        default=False,
        description="Turn WebSub upload notifications into `posted` statements by the channel "
        "(off by default).",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for origin in value:
            norm = origin.strip().rstrip("/").lower()
            if not _ORIGIN.match(norm):
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
            out.append(norm)
        return out

    @field_validator("playlists")
    @classmethod
    def _playlists(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for raw in value:
            playlist = raw.strip()
            if _CHANNEL.match(playlist):
                playlist = uploads_playlist(playlist)
            elif not _PLAYLIST.match(playlist):
                raise ValueError(f"not a playlist or channel id: {raw!r}")
            if playlist not in out:
                out.append(playlist)
        return out

    @field_validator("token_secret")
    @classmethod
    def _secret_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"token_secret must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _websub_needs(self) -> YouTubeSettings:
        if self.playlists and self.api_key is None:
            raise ValueError("playlists need api_key (they are read with the YouTube Data API)")
        if self.channels:
            if self.public_url is None or self.public_url.scheme != "https":
                raise ValueError("channels need public_url with https (hub.secret needs HTTPS)")
            if self.websub_secret is None:
                raise ValueError("channels need websub_secret")
        if (
            self.websub_secret is not None
            and len(self.websub_secret.get_secret_value().encode()) >= 200
        ):
            raise ValueError("websub_secret must be under 200 bytes (WebSub)")
        return self
