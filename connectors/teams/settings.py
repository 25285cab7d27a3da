"""Settings of one Teams connector instance (one Entra ID tenant, one app registration).

See ``connectors/teams/README.md`` for the app registration and every key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.teams.tokens import SIGNING_KEYS_URL
from hub import ConnectorSettings

__all__ = [
    "ChannelRef",
    "EncryptionSettings",
    "LiveSession",
    "RetiredCertificate",
    "TeamsSettings",
]

_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelRef(_Strict):
    """One channel whose messages become statements."""

    team_id: str = Field(pattern=_GUID, description="the team's group id (GUID)")
    channel_id: str = Field(
        pattern=r"^19:[^/|'\s]+$", description="the channel id, e.g. 19:…@thread.tacv2"
    )
    name: str | None = Field(default=None, description="display name used in statements")

    @property
    def key(self) -> str:
        return f"{self.team_id.lower()}/{self.channel_id}"


class LiveSession(_Strict):
    """An online meeting whose attendance reports become `attended` statements."""

    organizer_id: str = Field(pattern=_GUID, description="Entra object id of the organizer")
    meeting_id: str = Field(min_length=8, description="the onlineMeeting id (MSp…)")
    subject: str | None = Field(default=None, description="activity name of the meeting")

    @property
    def key(self) -> str:
        return f"{self.organizer_id.lower()}/{self.meeting_id}"


class RetiredCertificate(_Strict):
    """A previous encryption certificate, kept during rotation."""

    certificate_id: str = Field(max_length=128, description="its encryptionCertificateId")
    private_key: SecretStr = Field(description="its PEM private key")


class EncryptionSettings(_Strict):
    """Rich notifications: Graph encrypts resource data to this certificate (vendors.md 5.4)."""

    certificate_id: str = Field(
        max_length=128, description="encryptionCertificateId sent when subscribing"
    )
    certificate: str = Field(
        description="the public X.509 certificate (PEM, or base64 DER) sent to Graph"
    )
    private_key: SecretStr = Field(description="the certificate's PEM private key (RSA)")
    retired: tuple[RetiredCertificate, ...] = Field(
        default=(), description="previous certificates still referenced by subscriptions"
    )


class TeamsSettings(ConnectorSettings):
    """Settings of a ``type: teams`` connector instance."""

    tenant_id: str = Field(
        pattern=_GUID,
        description="Entra ID tenant id; its lower-case form keys statement ids (never change)",
    )
    client_id: str = Field(pattern=_GUID, description="the app registration's client id")
    client_secret: SecretStr | None = Field(
        default=None, description="client secret (or use a certificate credential)"
    )
    client_certificate_private_key: SecretStr | None = Field(
        default=None, description="PEM private key of the app's credential certificate"
    )
    client_certificate_thumbprint: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Fa-f]{40}$",
        description="SHA-1 thumbprint (hex) of the credential certificate",
    )
    authority_host: str = Field(
        default="https://login.microsoftonline.com",
        pattern=r"^https?://[^/\s]+$",
        description="Entra authority host (national clouds: login.microsoftonline.us, …)",
    )
    graph_base_url: str = Field(
        default="https://graph.microsoft.com/v1.0",
        pattern=r"^https?://[^/\s]+/v1\.0$",
        description="Graph endpoint with version (graph.microsoft.us/v1.0, …)",
    )
    channels: tuple[ChannelRef, ...] = Field(
        default=(), description="channels to subscribe to and reconcile with delta"
    )
    notification_url: str | None = Field(
        default=None,
        pattern=r"^https://\S+$",
        description="public HTTPS URL of this instance's webhook, /webhooks/{instance id}",
    )
    lifecycle_notification_url: str | None = Field(
        default=None,
        pattern=r"^https://\S+$",
        description="lifecycle notification URL; defaults to notification_url?lifecycle=1",
    )
    client_state_secret: SecretStr = Field(
        description="secret from which each subscription's clientState is derived"
    )
    encryption: EncryptionSettings | None = Field(
        default=None,
        description="certificate for rich (encrypted) notifications; without it, "
        "notifications trigger a delta resync instead",
    )
    validate_tokens: bool = Field(
        default=True,
        description="check the validationTokens of rich notifications (vendors.md 5.4); turn off "
        "only to debug, never in production: without it anyone who learns one clientState can "
        "inject messages",
    )
    signing_keys_url: str = Field(
        default=SIGNING_KEYS_URL,
        pattern=r"^https?://\S+$",
        description="Entra ID's token-signing key set (JWKS) the validationTokens are checked "
        "against (national clouds have their own)",
    )
    subscription_lifetime_minutes: int = Field(
        default=4200, ge=60, le=4320, description="requested subscription lifetime"
    )
    renew_within_hours: float = Field(
        default=24.0, gt=0, le=72, description="renew subscriptions expiring within this time"
    )
    live_sessions: tuple[LiveSession, ...] = Field(
        default=(), description="online meetings whose attendance reports are polled"
    )
    attendance_threshold: float | None = Field(
        default=0.75,
        gt=0,
        le=1,
        description="share of the meeting length that sets result.completion (none: never)",
    )
    upn_is_email: bool = Field(
        default=False,
        description="use the UPN as email when mail is empty (only if UPN = email here)",
    )
    include_message_text: bool = Field(
        default=False, description="copy message text into result.response (truncated)"
    )
    message_text_max_chars: int = Field(
        default=1000, ge=1, le=10000, description="truncation length of copied message text"
    )
    delta_page_size: int = Field(default=50, ge=1, le=50, description="delta $top (max 50)")

    @model_validator(mode="after")
    def _credentials(self) -> TeamsSettings:
        cert = (self.client_certificate_private_key, self.client_certificate_thumbprint)
        if (cert[0] is None) != (cert[1] is None):
            raise ValueError(
                "client_certificate_private_key and client_certificate_thumbprint go together"
            )
        if self.client_secret is None and cert[0] is None:
            raise ValueError("set client_secret or a client certificate credential")
        return self

    @property
    def lifecycle_url(self) -> str | None:
        if self.lifecycle_notification_url:
            return self.lifecycle_notification_url
        if self.notification_url is None:
            return None
        sep = "&" if "?" in self.notification_url else "?"
        return f"{self.notification_url}{sep}lifecycle=1"
