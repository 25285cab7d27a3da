"""Learner tokens, origins and CORS: the actor comes only from a valid token (vendors.md 4.1)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import jwt  # PyJWT, installed with msal: an independent HS256 implementation to check against
import pytest
from _youtube_kit import INSTANCE, ORIGIN, SECRET, Kit, receiver_for, y5_body

from connectors.youtube.token import issue_learner_token, verify_learner_token
from hub.errors import InvalidSignature

NODE_SCRIPT = Path(__file__).parent / "browser" / "issue-token.mjs"


def _verify(yt: Kit, token: str, **kw: object) -> object:
    return verify_learner_token(token, SECRET, audience=INSTANCE, now=yt.clock.now(), **kw)  # type: ignore[arg-type]


def test_issue_and_verify_round_trip(yt: Kit) -> None:
    claims = _verify(yt, yt.token())
    assert claims.sub == "u-1001"  # type: ignore[attr-defined]
    assert claims.email == "ada@example.com"  # type: ignore[attr-defined]


def test_pyjwt_verifies_our_tokens_and_we_verify_pyjwt_tokens(yt: Kit) -> None:
    ours = yt.token()
    decoded = jwt.decode(ours, SECRET, algorithms=["HS256"], audience=INSTANCE,
                         options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    assert decoded["sub"] == "u-1001"
    now = int(yt.clock.now().timestamp())
    theirs = jwt.encode({"sub": "u-7", "aud": INSTANCE, "iat": now, "exp": now + 600}, SECRET,
                        algorithm="HS256")  # fmt: skip
    assert _verify(yt, theirs).sub == "u-7"  # type: ignore[attr-defined]


def test_node_example_from_the_readme_issues_valid_tokens(yt: Kit) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (the README's Node example is tested with it)")
    token = subprocess.run(
        [node, str(NODE_SCRIPT), SECRET, "u-node", INSTANCE, "node@example.com"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    from datetime import UTC, datetime

    claims = verify_learner_token(token, SECRET, audience=INSTANCE, now=datetime.now(UTC))
    assert (claims.sub, claims.email) == ("u-node", "node@example.com")


@pytest.mark.parametrize(
    "case", ["missing", "expired", "tampered", "wrong_aud", "alg_none", "future", "too_long_lived",
             "garbage", "wrong_secret"],
)  # fmt: skip
def test_bad_tokens_are_invalid(yt: Kit, case: str) -> None:
    now = yt.clock.now()
    token = {
        "missing": "",
        "expired": yt.token(at=now - timedelta(hours=5)),
        "wrong_aud": yt.token(audience="another-instance"),
        "future": yt.token(at=now + timedelta(minutes=10)),
        "too_long_lived": yt.token(ttl_seconds=13 * 3600),
        "garbage": "a.b.c",
        "wrong_secret": issue_learner_token("x" * 40, sub="u-1", audience=INSTANCE, now=now),
    }.get(case)
    if case == "tampered":
        head, body, sig = yt.token().split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=="))
        claims["sub"] = "someone-else"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token = f"{head}.{forged}.{sig}"
    if case == "alg_none":
        head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        token = f"{head}.{yt.token().split('.')[1]}."
    assert token is not None
    with pytest.raises(InvalidSignature):
        _verify(yt, token)


@pytest.mark.parametrize("case", ["missing", "expired", "tampered", "wrong_aud"])
def test_receiver_answers_401_and_enqueues_nothing(yt: Kit, case: str) -> None:
    conn = yt.connector()
    kit = receiver_for(conn, yt.clock)
    now = yt.clock.now()
    token = {
        "missing": None,
        "expired": yt.token(at=now - timedelta(hours=5)),
        "tampered": yt.token()[:-2] + ("AA" if not yt.token().endswith("AA") else "BB"),
        "wrong_aud": yt.token(audience="other"),
    }[case]
    answer = kit.receive(yt.request(y5_body(), token=token))
    assert answer.status == 401
    assert kit.enqueuer.events == []


def test_disallowed_origin_is_refused_with_403(yt: Kit) -> None:
    conn = yt.connector()
    kit = receiver_for(conn, yt.clock)
    answer = kit.receive(yt.request(y5_body(), token=yt.token(), origin="https://evil.example"))
    assert answer.status == 403
    assert "access-control-allow-origin" not in {k.lower() for k in answer.headers}
    assert kit.enqueuer.events == []


def test_missing_origin_is_allowed_unless_required(yt: Kit) -> None:
    kit = receiver_for(yt.connector(), yt.clock)
    assert kit.receive(yt.request(y5_body(), token=yt.token(), origin=None)).status == 200
    strict = receiver_for(yt.connector(require_origin=True), yt.clock)
    assert strict.receive(yt.request(y5_body(), token=yt.token(), origin=None)).status == 403


def test_accepted_batch_gets_cors_headers_and_token_stays_off_the_queue(yt: Kit) -> None:
    kit = receiver_for(yt.connector(), yt.clock)
    answer = kit.receive(yt.request(y5_body(), token=yt.token()))
    assert answer.status == 200
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    [event] = kit.enqueuer.events
    assert event.payload["learner"]["sub"] == "u-1001"  # type: ignore[index,call-overload]


def test_beacon_form_token_in_a_text_plain_body(yt: Kit) -> None:
    kit = receiver_for(yt.connector(), yt.clock)
    body = {**y5_body(), "token": yt.token()}
    answer = kit.receive(yt.request(body, content_type="text/plain;charset=UTF-8"))
    assert answer.status == 200
    [event] = kit.enqueuer.events
    assert "token" not in json.dumps(event.payload)
    forged = {**y5_body(), "token": yt.token(audience="other")}
    assert kit.receive(yt.request(forged, content_type="text/plain")).status == 401


def test_a_body_cannot_name_the_actor(yt: Kit) -> None:
    conn = yt.connector()
    body = {**y5_body(), "actor": {"mbox": "mailto:eve@example.com"}, "learner": {"sub": "eve"}}
    statements = yt.send(conn, body)
    assert {s.actor.mbox for s in statements} == {"mailto:ada@example.com"}


def test_preflight_answer_if_the_receiver_routes_options(yt: Kit) -> None:
    conn = yt.connector()
    ok = conn.handshake(yt.request(b"", method="OPTIONS",
                                   headers={"access-control-request-method": "POST"}))  # fmt: skip
    assert ok is not None
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in ok.headers["Access-Control-Allow-Headers"]
    refused = conn.handshake(
        yt.request(
            b"",
            method="OPTIONS",
            origin="https://evil.example",
            headers={"access-control-request-method": "POST"},
        )
    )
    assert refused is not None
    assert refused.status == 403


def test_malformed_batches_are_400(yt: Kit) -> None:
    kit = receiver_for(yt.connector(), yt.clock)
    bad = {**y5_body(), "video_id": "not a video id"}
    assert kit.receive(yt.request(bad, token=yt.token())).status == 400
    assert kit.receive(yt.request(b"[1,2]", token=yt.token())).status == 400
    assert kit.enqueuer.events == []
