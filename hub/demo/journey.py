"""Jamie's week: the demo journey, one step per connector.

Each `Step` is one connector's part of the story, complete in itself:

* the connector instance it needs (type, settings with ``{file: …}`` secret references, and the
  random secrets behind them, generated per demo);
* the vendor API routes its connector calls (answered by `hub.demo.fakeapi.FakeVendorApi`);
* the HTTP requests the source sends to ``/webhooks/{instance_id}``, built from the bundled
  payloads in ``hub/demo/payloads/`` and authenticated exactly as that source does it (Docebo
  Basic auth, a YouTube learner token, Graph's clientState and encrypted content, Slack's ``v0``
  signature, AcmeCoach's HMAC).

A step whose connector plugin is not installed is skipped by the runner with a note, so the demo
grows with the installed connectors. ``hub`` never imports ``connectors`` (tests/test_layering):
what a step needs from its connector (the live object after the hub built it, the YouTube
package's token helper) it reaches through the registry and the runtime, like any plugin user.

Dates are fixed (the week of Monday 10 March 2025) and the runner's replay clock is set to each
request's moment before it is sent, so the same statements, with the same ids, come out of every
run.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import importlib
import json
import secrets as secrets_module
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from hub.demo.fakeapi import FakeReply, FakeRequest, FakeRoute, FakeVendorApi, static

__all__ = [
    "JAMIE_EMAIL",
    "JAMIE_NAME",
    "Send",
    "Step",
    "StepContext",
    "journey_steps",
    "payload",
]

JAMIE_EMAIL = "jamie@example.com"
JAMIE_NAME = "Jamie Rivera"


@cache
def payload(name: str) -> Any:
    """A bundled payload file (``hub/demo/payloads/{name}.json``), parsed."""
    text = resources.files("hub.demo").joinpath("payloads", f"{name}.json").read_text("utf-8")
    return json.loads(text)


def secret_ref(name: str) -> dict[str, str]:
    """A ``{file: …}`` secret reference to the generated value of `name`.

    Files rather than ``${ENV}`` references: the demo's config directory then stays usable
    after the run (``lxhub --config data/demo/config status``), and the values never appear
    in a YAML file or a process environment.
    """
    return {"file": f"secrets/{name.lower()}"}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _compact(body: Any) -> bytes:
    # Sources send compact JSON; the signature covers exactly these bytes.
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Send:
    """One HTTP request a source sends to the hub's receiver."""

    label: str
    at: datetime
    body: bytes
    headers: Mapping[str, str]
    query: str = ""
    method: str = "POST"


@dataclass(frozen=True)
class StepContext:
    """What a step may use once the demo hub runs."""

    instance_id: str
    secrets: Mapping[str, str]
    fake: FakeVendorApi
    connector: Any
    """The live connector object the hub built from the instance file."""
    plugin: type[Any]
    """The connector class from the registry (its package may ship helpers)."""


class Step(abc.ABC):
    """One connector's part of the journey (see the module docstring)."""

    key: ClassVar[str]
    connector_type: ClassVar[str]
    instance_id: ClassVar[str]
    platform: ClassVar[str]
    title: ClassVar[str]
    secret_names: ClassVar[tuple[str, ...]] = ()
    redirect_http: ClassVar[bool] = True
    """Route the connector's httpx calls to the fake (False: it is pointed at it by settings)."""

    def generate_secrets(self) -> dict[str, str]:
        """Fresh random values for this step's secret references, by name."""
        return {name: secrets_module.token_urlsafe(32) for name in self.secret_names}

    @abc.abstractmethod
    def settings(self, fake: FakeVendorApi) -> dict[str, Any]:
        """The instance's ``settings`` table (secrets as `secret_ref` references)."""

    def instance(self, fake: FakeVendorApi) -> dict[str, Any]:
        """The whole ``connectors/{instance_id}.yaml`` document."""
        return {
            "id": self.instance_id,
            "type": self.connector_type,
            "enabled": True,
            "description": f"demo: {self.title}",
            "settings": self.settings(fake),
            "lrs": ["local"],
        }

    how: ClassVar[str] = ""
    """How the source proves itself and what the connector asks its vendor (for the report)."""

    def labels(self) -> dict[str, str]:
        """Names of activities the statements leave unnamed (IRI suffix -> name)."""
        return {}

    def routes(self, secrets: Mapping[str, str], state: dict[str, Any]) -> list[FakeRoute]:
        """The vendor API endpoints this connector calls; `state` is the fake vendors' memory
        (kept across runs with ``--keep``)."""
        return []

    def prepare(self, ctx: StepContext) -> None:  # noqa: B027 (optional hook)
        """Vendor-side setup before the source sends anything (e.g. a Graph subscription)."""

    @abc.abstractmethod
    def sends(self, ctx: StepContext) -> list[Send]:
        """The source's requests, in time order."""


# -- 1. Docebo -------------------------------------------------------------------------------


class DoceboStep(Step):
    """Onboarding course completed in Docebo (webhooks; the user id resolved through the API)."""

    key = "docebo"
    connector_type = "docebo"
    instance_id = "docebo-acme"
    platform = "Docebo"
    title = "an onboarding course completed in Docebo"
    secret_names = ("DEMO_DOCEBO_CLIENT_SECRET", "DEMO_DOCEBO_PASSWORD", "DEMO_DOCEBO_WEBHOOK")
    how = "Basic-auth webhooks; user id -> email via the Docebo user API; score via enrollments"
    host = "acme.docebosaas.com"

    def settings(self, fake: FakeVendorApi) -> dict[str, Any]:
        return {
            "base_url": f"https://{self.host}",
            "grant": "password",
            "client_id": "lxhub",
            "client_secret": secret_ref("DEMO_DOCEBO_CLIENT_SECRET"),
            "username": "svc-lxhub",
            "password": secret_ref("DEMO_DOCEBO_PASSWORD"),
            "webhook_auth": "basic",
            "webhook_username": "docebo-webhooks",
            "webhook_password": secret_ref("DEMO_DOCEBO_WEBHOOK"),
        }

    def routes(self, secrets: Mapping[str, str], state: dict[str, Any]) -> list[FakeRoute]:
        api = payload("docebo")["api"]

        def token(request: FakeRequest, _: Any) -> FakeReply:
            form = request.form
            # Docebo checks the app and the service user; so does the fake.
            good = form.get("client_secret") == secrets["DEMO_DOCEBO_CLIENT_SECRET"] and (
                form.get("password") == secrets["DEMO_DOCEBO_PASSWORD"]
            )
            if not good:
                return FakeReply({"error": "invalid_client"}, status=401)
            return FakeReply(api["token"])

        def user(request: FakeRequest, match: Any) -> FakeReply:
            found = api["users"].get(match["id"])
            return FakeReply(found) if found else FakeReply({"message": "not found"}, status=404)

        return [
            FakeRoute("POST", self.host, "/oauth2/token", token, "OAuth2 token"),
            FakeRoute(
                "GET",
                self.host,
                "/learn/v1/enrollments",
                static(api["enrollments"]),
                "enrollment row (score, time spent)",
            ),
            FakeRoute("GET", self.host, r"/manage/v1/user/(?P<id>\d+)", user, "user -> email"),
        ]

    def sends(self, ctx: StepContext) -> list[Send]:
        basic = base64.b64encode(
            f"docebo-webhooks:{ctx.secrets['DEMO_DOCEBO_WEBHOOK']}".encode()
        ).decode()
        return [
            Send(
                label=f"Docebo webhook {hook['body']['event']}",
                at=_when(hook["sent_at"]),
                body=_compact(hook["body"]),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Basic {basic}",
                    "User-Agent": "Docebo-Webhooks",
                },
            )
            for hook in payload("docebo")["webhooks"]
        ]


# -- 2. YouTube ------------------------------------------------------------------------------


class YouTubeStep(Step):
    """A tutorial watched from the resource library (tracker batches, learner token)."""

    key = "youtube"
    connector_type = "youtube"
    instance_id = "youtube-learn"
    platform = "YouTube"
    title = "a YouTube tutorial watched from the resource library"
    secret_names = ("DEMO_YOUTUBE_TOKEN_SECRET", "DEMO_YOUTUBE_API_KEY")
    how = "tracker batches with a learner token; title and length via videos.list"

    def settings(self, fake: FakeVendorApi) -> dict[str, Any]:
        return {
            "tenant": "learn.acme.example",
            "token_secret": secret_ref("DEMO_YOUTUBE_TOKEN_SECRET"),
            "allowed_origins": [payload("youtube")["origin"]],
            "completion_threshold": 0.95,
            "api_key": secret_ref("DEMO_YOUTUBE_API_KEY"),
        }

    def routes(self, secrets: Mapping[str, str], state: dict[str, Any]) -> list[FakeRoute]:
        videos = payload("youtube")["api"]["videos"]

        def videos_list(request: FakeRequest, _: Any) -> FakeReply:
            if request.query.get("key") != secrets["DEMO_YOUTUBE_API_KEY"]:
                return FakeReply({"error": {"code": 400, "message": "API key not valid"}}, 400)
            wanted = set(request.query.get("id", "").split(","))
            items = [v for v in videos["items"] if v["id"] in wanted]
            return FakeReply({**videos, "items": items})

        return [
            FakeRoute(
                "GET",
                "www.googleapis.com",
                "/youtube/v3/videos",
                videos_list,
                "videos.list (title, duration)",
            ),
        ]

    def sends(self, ctx: StepContext) -> list[Send]:
        data = payload("youtube")
        issue = _plugin_helper(ctx.plugin, "issue_learner_token")
        learner = data["learner"]
        first = _when(data["batches"][0]["sent_at"])
        # The site's backend issues the token when it renders the page; the tracker reuses it
        # for every batch of the session.
        token = issue(
            ctx.secrets["DEMO_YOUTUBE_TOKEN_SECRET"],
            sub=learner["sub"],
            audience=ctx.connector.audience,
            now=first - timedelta(seconds=20),
            ttl_seconds=4 * 3600,
            email=learner["email"],
            name=learner["name"],
        )
        # The hub is on another origin than the page, so the tracker sends a CORS "simple"
        # request: text/plain with the token in the body (see the connector's README).
        return [
            Send(
                label=f"tracker batch of {len(batch['events'])} player events",
                at=_when(batch["sent_at"]) + timedelta(milliseconds=300),
                body=_compact({**batch, "token": token}),
                headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": data["origin"]},
            )
            for batch in data["batches"]
        ]


# -- 3. Teams --------------------------------------------------------------------------------

_GRAPH = "graph.microsoft.com"
_LOGIN = "login.microsoftonline.com"


class TeamsStep(Step):
    """A channel discussion in Teams (Graph rich change notifications)."""

    key = "teams"
    connector_type = "teams"
    instance_id = "teams-acme"
    platform = "Microsoft Teams"
    title = "a Teams channel discussion"
    secret_names = ("DEMO_TEAMS_CLIENT_SECRET", "DEMO_TEAMS_CLIENT_STATE")
    certificate_id = "lxhub-demo"
    how = "encrypted Graph notifications with the clientState; Entra id -> email via /users"

    def labels(self) -> dict[str, str]:
        data = payload("teams")
        return {f"/channel/{data['channel_id']}": str(data["channel_name"])}

    def generate_secrets(self) -> dict[str, str]:
        values = super().generate_secrets()
        key_pem, cert_pem = _self_signed_certificate()
        values["DEMO_TEAMS_PRIVATE_KEY"] = key_pem
        values["DEMO_TEAMS_CERTIFICATE"] = cert_pem
        return values

    def settings(self, fake: FakeVendorApi) -> dict[str, Any]:
        data = payload("teams")
        return {
            "tenant_id": data["tenant_id"],
            "client_id": data["client_id"],
            "client_secret": secret_ref("DEMO_TEAMS_CLIENT_SECRET"),
            "channels": [
                {
                    "team_id": data["team_id"],
                    "channel_id": data["channel_id"],
                    "name": data["channel_name"],
                }
            ],
            # The hub's public URL in a real install; here the demo delivers to the local
            # receiver itself.
            "notification_url": f"https://hub.acme.example/webhooks/{self.instance_id}",
            "client_state_secret": secret_ref("DEMO_TEAMS_CLIENT_STATE"),
            "encryption": {
                "certificate_id": self.certificate_id,
                "certificate": secret_ref("DEMO_TEAMS_CERTIFICATE"),
                "private_key": secret_ref("DEMO_TEAMS_PRIVATE_KEY"),
            },
            "include_message_text": True,
        }

    def routes(self, secrets: Mapping[str, str], state: dict[str, Any]) -> list[FakeRoute]:
        data = payload("teams")
        api = data["api"]
        tenant = data["tenant_id"]
        login = f"https://{_LOGIN}/{tenant}"

        def token(request: FakeRequest, _: Any) -> FakeReply:
            if request.form.get("client_secret") != secrets["DEMO_TEAMS_CLIENT_SECRET"]:
                return FakeReply({"error": "invalid_client", "error_codes": [7000215]}, 401)
            return FakeReply(api["token"])

        def user(request: FakeRequest, match: Any) -> FakeReply:
            found = api["users"].get(match["id"])
            if found is None:
                return FakeReply({"error": {"code": "Request_ResourceNotFound"}}, status=404)
            return FakeReply(found)

        def subscribe(request: FakeRequest, _: Any) -> FakeReply:
            body = request.json()
            # Graph keeps the subscription (clientState, certificate) and uses it for every
            # notification it sends: so does the fake.
            sub_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-subscription:{body['resource']}"))
            subs = state.setdefault("graph_subscriptions", {})
            subs[body["resource"]] = {**body, "id": sub_id}
            answer = {k: v for k, v in body.items() if k != "clientState"}
            return FakeReply({**answer, "id": sub_id, "clientState": None}, status=201)

        # Entra ID's token-signing key: the connector checks Graph's validationTokens with it.
        from hub.demo.graph import key_set

        signing_key = _entra_signing_key(state)
        return [
            FakeRoute(
                "GET",
                _LOGIN,
                r"/common/discovery/v2\.0/keys",
                static(key_set(signing_key, kid=_ENTRA_KID)),
                "Entra signing keys",
            ),
            FakeRoute(
                "GET",
                _LOGIN,
                rf"/{tenant}/v2\.0/\.well-known/openid-configuration",
                static(
                    {
                        "token_endpoint": f"{login}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{login}/oauth2/v2.0/authorize",
                        "issuer": f"{login}/v2.0",
                    }
                ),
                "Entra metadata",
            ),
            FakeRoute("POST", _LOGIN, rf"/{tenant}/oauth2/v2\.0/token", token, "app-only token"),
            FakeRoute("GET", _GRAPH, r"/v1\.0/users/(?P<id>[0-9a-f-]+)", user, "user -> mail"),
            FakeRoute("POST", _GRAPH, r"/v1\.0/subscriptions", subscribe, "subscription"),
        ]

    def prepare(self, ctx: StepContext) -> None:
        # The hub's maintenance task creates the channel subscription at Graph (the fake),
        # which then knows the clientState and the certificate to encrypt notifications to.
        ctx.connector.maintain()

    def sends(self, ctx: StepContext) -> list[Send]:
        data = payload("teams")
        team, channel = data["team_id"], data["channel_id"]
        resource = f"/teams/{team}/channels/{channel}/messages"
        sub = ctx.fake.state.get("graph_subscriptions", {}).get(resource)
        if sub is None:
            raise RuntimeError("no Graph subscription was created for the demo channel")
        from cryptography import x509

        from hub.demo.graph import encrypt_resource, validation_token

        cert = x509.load_der_x509_certificate(base64.b64decode(sub["encryptionCertificate"]))
        signing_key = _entra_signing_key(ctx.fake.state)
        out: list[Send] = []
        for entry in data["messages"]:
            message = entry["message"]
            mid, parent = message["id"], entry["reply_of"]
            path = f"teams('{team}')/channels('{channel}')/messages('{parent or mid}')"
            if parent:
                path += f"/replies('{mid}')"
            item = {
                "subscriptionId": sub["id"],
                "changeType": "created",
                "clientState": sub["clientState"],
                "subscriptionExpirationDateTime": sub["expirationDateTime"],
                "resource": path,
                "resourceData": {
                    "id": mid,
                    "@odata.type": "#Microsoft.Graph.chatMessage",
                    "@odata.id": path,
                },
                "encryptedContent": encrypt_resource(
                    cert, _compact(message), certificate_id=sub["encryptionCertificateId"]
                ),
                "tenantId": data["tenant_id"],
            }
            at = _when(entry["sent_at"])
            token = validation_token(
                signing_key,
                kid=_ENTRA_KID,
                app_id=data["client_id"],
                tenant_id=data["tenant_id"],
                not_before=at - timedelta(minutes=1),
                expires=at + timedelta(hours=1),
            )
            out.append(
                Send(
                    label=f"Graph change notification ({'reply' if parent else 'new message'})",
                    at=at,
                    body=_compact({"value": [item], "validationTokens": [token]}),
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
            )
        return out


_ENTRA_KID = "lxhub-demo-entra"


def _entra_signing_key(state: dict[str, Any]) -> Any:
    """The fake Entra ID's token-signing key, made on first use. Kept as PEM text in the fake's
    state, which is saved as JSON between demo runs (a private file): the key must survive a
    rerun, as the hub keeps the key set it fetched for a day."""
    from cryptography.hazmat.primitives import serialization

    from hub.demo.graph import new_rsa_key, private_key_pem

    if "entra_signing_key" not in state:
        state["entra_signing_key"] = private_key_pem(new_rsa_key())
    pem: str = state["entra_signing_key"]
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _self_signed_certificate() -> tuple[str, str]:
    """A fresh RSA key and self-signed certificate for Graph's rich notifications (PEM)."""
    from hub.demo.graph import self_signed_certificate, to_pem

    start = datetime(2025, 1, 1).astimezone()
    return to_pem(*self_signed_certificate("lxhub demo notifications", not_before=start, days=3650))


# -- 4. Slack --------------------------------------------------------------------------------


class SlackStep(Step):
    """A question asked and answered in Slack (signed Events API requests)."""

    key = "slack"
    connector_type = "slack"
    instance_id = "slack-acme"
    platform = "Slack"
    title = "a Slack question answered"
    redirect_http = False  # slack_sdk's WebClient does its own HTTP: api_base_url points at us
    how = "v0-signed Events API requests; user id -> email via users.info"

    def labels(self) -> dict[str, str]:
        data = payload("slack")
        return {f"/channel/{data['channel_id']}": f"#{data['channel_name']}"}

    def generate_secrets(self) -> dict[str, str]:
        return {
            "DEMO_SLACK_SIGNING_SECRET": secrets_module.token_hex(16),
            "DEMO_SLACK_BOT_TOKEN": f"xoxb-demo-{secrets_module.token_hex(20)}",
        }

    def settings(self, fake: FakeVendorApi) -> dict[str, Any]:
        data = payload("slack")
        return {
            "team_id": data["team_id"],
            "signing_secret": secret_ref("DEMO_SLACK_SIGNING_SECRET"),
            "bot_token": secret_ref("DEMO_SLACK_BOT_TOKEN"),
            "channels": [data["channel_id"]],
            "include_message_text": True,
            "api_base_url": fake.vendor_url("slack.com") + "/api/",
        }

    def routes(self, secrets: Mapping[str, str], state: dict[str, Any]) -> list[FakeRoute]:
        users = payload("slack")["api"]["users"]
        scopes = "channels:history,reactions:read,app_mentions:read,users:read,users:read.email"

        def users_info(request: FakeRequest, _: Any) -> FakeReply:
            auth = request.headers.get("authorization", "")
            if auth != f"Bearer {secrets['DEMO_SLACK_BOT_TOKEN']}":
                return FakeReply({"ok": False, "error": "invalid_auth"})
            found = users.get(request.param("user") or "")
            body = found if found else {"ok": False, "error": "user_not_found"}
            return FakeReply(body, headers={"X-OAuth-Scopes": scopes})

        return [
            FakeRoute(method, "slack.com", "/api/users.info", users_info, "users.info -> email")
            for method in ("GET", "POST")
        ]

    def sends(self, ctx: StepContext) -> list[Send]:
        secret = ctx.secrets["DEMO_SLACK_SIGNING_SECRET"].encode()
        out: list[Send] = []
        for entry in payload("slack")["events"]:
            at = _when(entry["sent_at"])
            body = _compact(entry["body"])
            stamp = str(int(at.timestamp()))
            digest = hmac.new(secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
            out.append(
                Send(
                    label=f"Events API {entry['body']['event']['type']}",
                    at=at,
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Slack-Request-Timestamp": stamp,
                        "X-Slack-Signature": f"v0={digest.hexdigest()}",
                        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
                    },
                )
            )
        return out


# -- 5. Coaching (generic webhook connector, AcmeCoach preset) -------------------------------


class CoachingStep(Step):
    """Coaching feedback: a session attended and rated (AcmeCoach, HMAC-signed)."""

    key = "coaching"
    connector_type = "webhook"
    instance_id = "acme-coach"
    platform = "AcmeCoach"
    title = "coaching feedback received (AcmeCoach)"
    secret_names = ("DEMO_ACMECOACH_SECRET",)
    how = "HMAC-signed webhooks; the generic connector's example-coaching preset"

    def settings(self, fake: FakeVendorApi) -> dict[str, Any]:
        return {
            "preset": "example-coaching",
            "tenant": "acme",
            "secrets": {"ACMECOACH_SECRET": secret_ref("DEMO_ACMECOACH_SECRET")},
        }

    def sends(self, ctx: StepContext) -> list[Send]:
        secret = ctx.secrets["DEMO_ACMECOACH_SECRET"].encode()
        out: list[Send] = []
        for entry in payload("acmecoach")["events"]:
            at = _when(entry["sent_at"])
            body = _compact(entry["body"])
            stamp = str(int(at.timestamp()))
            digest = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            out.append(
                Send(
                    label=f"AcmeCoach webhook {entry['body']['type']}",
                    at=at,
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-AcmeCoach-Timestamp": stamp,
                        "X-AcmeCoach-Signature": f"sha256={digest}",
                    },
                )
            )
        return out


def _plugin_helper(plugin: type[Any], name: str) -> Callable[..., Any]:
    """A helper the plugin's package exports (e.g. ``issue_learner_token``), found through the
    loaded class rather than imported by name: ``hub`` must not depend on ``connectors``."""
    package = plugin.__module__.rpartition(".")[0] or plugin.__module__
    helper = getattr(importlib.import_module(package), name, None)
    if not callable(helper):
        raise RuntimeError(f"the {package} package has no {name}() helper")
    return helper  # type: ignore[no-any-return]


def journey_steps() -> list[Step]:
    """Jamie's week, Monday to Friday, in story order."""
    return [DoceboStep(), YouTubeStep(), TeamsStep(), SlackStep(), CoachingStep()]
