"""The lxhub conformance kit for the YouTube connector (webhook suite)."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import httpx

from connectors.youtube.connector import YouTubeConnector
from connectors.youtube.models import VideoMeta
from connectors.youtube.token import issue_learner_token
from connectors.youtube.websub import subscription_key, topic_for
from hub.connector import Connector, ConnectorRuntime
from hub.events import WebhookRequest
from hub.testing import StrictRouter, WebhookConformance, load_json_fixture

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "conformance-learner-token-secret-0123456789"
CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
ORIGIN = "https://learn.example.com"
API = "https://www.googleapis.com/youtube/v3/videos"


def _declared(name: str) -> bool:
    return any(ep.name == name for ep in metadata.entry_points(group="lxhub.connectors"))


class TestYouTubeConformance(WebhookConformance):
    connector = YouTubeConnector
    # Runs as soon as pyproject declares `youtube = "connectors.youtube.connector:YouTubeConnector"`
    # and the distribution is reinstalled (pip install -e .).
    check_entry_point = _declared("youtube")
    sample_settings: ClassVar[dict[str, Any]] = {
        "tenant": "learn.example.com",
        "token_secret": SECRET,
        "allowed_origins": [ORIGIN],
        "completion_threshold": 0.9,
        "api_key": "test-api-key",
        "channels": [CHANNEL],
        "public_url": "https://hub.example.com",
        "websub_secret": "websub-secret",
    }
    not_secret: ClassVar[dict[str, str]] = {
        "token_audience": "the expected `aud` claim, public",
        "token_max_lifetime_seconds": "a duration",
        "token_leeway_seconds": "a duration",
    }
    fixtures = FIXTURES
    now = datetime.fromisoformat("2024-05-03T14:35:41+00:00")
    signature_headers = ("authorization",)
    expected_handshake_body = b"challenge-123"
    skip: ClassVar[dict[str, str]] = {
        "webhook.tampered": "learner tokens authenticate the learner, not the body: the tracker "
        "runs in the learner's browser, so no secret can sign its bodies; the actor comes only "
        "from the token (token tampering is tested in test_token.py)",
    }

    def build_connector(self, runtime: ConnectorRuntime) -> Connector[Any]:
        # Y3's metadata is cached, so mapping needs no Data API call (fetching is tested apart).
        meta = VideoMeta(
            video_id="7lCDEYXw3mM",
            title="Google I/O 101: Q&A On Using Google APIs",
            description="Antonio Fuentes speaks to us and takes questions on working with Google "
            "APIs and OAuth 2.0.",
            channel_id=CHANNEL,
            channel_title="Google for Developers",
            language="en",
            length=951.0,
        )
        runtime.state.set("meta:7lCDEYXw3mM", meta.model_dump_json())
        return super().build_connector(runtime)

    def signed_request(self, body: bytes, *, at: datetime) -> WebhookRequest:
        token = issue_learner_token(
            SECRET, sub="u-1001", audience="test", now=at, ttl_seconds=600,
            email="ada@example.com", name="Ada Lovelace",
        )  # fmt: skip
        return WebhookRequest(
            method="POST", path="/webhooks/test", body=body, received_at=self.now,
            headers={"content-type": "application/json", "origin": ORIGIN,
                     "authorization": f"Bearer {token}"},
        )  # fmt: skip

    def handshake_request(self) -> WebhookRequest:
        topic = topic_for(CHANNEL)
        query = httpx.QueryParams(
            {
                "key": subscription_key(b"websub-secret", topic),
                "hub.mode": "subscribe",
                "hub.topic": topic,
                "hub.challenge": "challenge-123",
                "hub.lease_seconds": "432000",
            }
        )
        return WebhookRequest(
            method="GET", path="/webhooks/test", query_string=str(query),
            received_at=self.now + timedelta(seconds=1),
        )  # fmt: skip

    def mock_check_success(self, router: StrictRouter) -> None:
        router.get(API, params={"id": "7lCDEYXw3mM", "part": "id"}).mock(
            return_value=httpx.Response(
                200, json=load_json_fixture(FIXTURES, "api", "videos_list_y3.json")
            )
        )

    def mock_check_failure(self, router: StrictRouter, status: int) -> None:
        router.get(API).mock(return_value=httpx.Response(status, json={"error": {"code": status}}))
