"""Graph encrypted content (vendors.md 8.3 vector 4), clientState and the handshake."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP

from connectors.teams.crypto import ContentError, decrypt_content, decrypt_data
from hub.events import WebhookRequest
from hub.queue import ListEnqueuer
from hub.testing import MemoryDedupeStore
from hub.webhooks import Receiver, ReceiverInstance
from tests.connectors.teams._graph import NOW, build

EVENTS = Path(__file__).parent / "fixtures" / "events"

KEY = bytes(range(32))
DATA = (
    "UFxzR8IUj//950kF2GeJB/T5mrmgb59fNLpQqI2nncFegcy1t12B9bURTMr5TbYJoTd62q0Zg0kCeju2gWiAe1Xzx"
    "U1s+bT7h6+Ru+CYdtp624ggEc+5Erx7hVGle9TqueyitpIFKDYlqtUxMYfVQvZSuslKbjd98tvZbDM3YBLl0hpELV"
    "VZ47fsajn4qVAG32milN/oidHXX8LCKnyobfVoZ0Soih6jIj1Q2ZALIU/05XsFvgeLqDIFgBd8OBg8h+1r0tYh+rdO"
    "h1gJ7l4myH5Ni1ZNGfEHZN4HhoxSolkYjk5Ff1/pJ/IAtQCYTCvckgdfe4pm0YbZ0gx238fI1PsRDb76uNBsVgiyFl"
    "zxkOI="
)
SIGNATURE = "ZS3jHrbB2Be2yBqrzwXD6xDmYefRzqBtcEzrSniDffA="
PLAINTEXT = (
    b'{"id":"1612289992105","replyToId":null,"messageType":"message","createdDateTime":'
    b'"2021-02-02T18:19:52Z","from":{"user":{"id":"8ea0e38b-efb3-4757-924a-5f94061cf8c2",'
    b'"displayName":"Ramjot Singh","userIdentityType":"aadUser"}},"body":{"contentType":"text",'
    b'"content":"test"}}'
)


def test_vector_4_key_is_bytes_0_to_31() -> None:
    assert base64.b64encode(KEY).decode() == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def test_vector_4_decrypts() -> None:
    assert decrypt_data(KEY, DATA, SIGNATURE) == PLAINTEXT


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def data_key(key: rsa.RSAPrivateKey) -> str:
    # Graph mandates OAEP with SHA-1 for dataKey (vendors.md 5.4).
    oaep = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    return base64.b64encode(key.public_key().encrypt(KEY, oaep)).decode()


def test_full_path_with_a_generated_rsa_key(rsa_key: rsa.RSAPrivateKey) -> None:
    plain = decrypt_content(
        rsa_key, data=DATA, data_signature=SIGNATURE, data_key=data_key(rsa_key)
    )
    assert json.loads(plain)["id"] == "1612289992105"


@pytest.mark.parametrize("index", [0, 17, 100, -3])
def test_one_flipped_byte_fails_the_hmac(rsa_key: rsa.RSAPrivateKey, index: int) -> None:
    raw = bytearray(base64.b64decode(DATA))
    raw[index] ^= 0x01
    flipped = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(ContentError, match="HMAC"):
        decrypt_content(rsa_key, data=flipped, data_signature=SIGNATURE, data_key=data_key(rsa_key))


def test_other_rsa_key_and_garbage_are_content_errors(rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ContentError, match="dataKey"):
        decrypt_content(other, data=DATA, data_signature=SIGNATURE, data_key=data_key(rsa_key))
    with pytest.raises(ContentError, match="base64"):
        decrypt_content(rsa_key, data="%%%", data_signature=SIGNATURE, data_key=data_key(rsa_key))
    with pytest.raises(ContentError):
        decrypt_data(KEY[:16], DATA, SIGNATURE)


# --- notifications through the connector and the real receiver ------------------------------


def post(body: bytes, query: str = "") -> WebhookRequest:
    return WebhookRequest(
        method="POST", path="/webhooks/teams-test", query_string=query,
        headers={"content-type": "application/json"}, body=body, received_at=NOW,
    )  # fmt: skip


def receiver() -> tuple[Receiver, ListEnqueuer]:
    conn = build()
    enqueuer = ListEnqueuer()
    rec = Receiver(
        {"teams-test": ReceiverInstance(conn)},
        store=MemoryDedupeStore(), enqueuer=enqueuer, clock=conn.runtime.clock,
    )  # fmt: skip
    return rec, enqueuer


def test_wrong_client_state_drops_only_that_item() -> None:
    rec, enqueuer = receiver()
    answer = rec.receive(
        "teams-test", post((EVENTS / "notification_mixed_client_state.json").read_bytes())
    )
    assert answer.status == 202
    assert [e.payload["message"]["id"] for e in enqueuer.events] == ["1606515500000"]  # type: ignore[call-overload,index]


def test_all_items_with_a_wrong_client_state_are_202_and_nothing_enqueued() -> None:
    body = (EVENTS / "notification_channel_message.json").read_text()
    forged = json.loads(body)
    forged["value"][0]["clientState"] = "forged"
    rec, enqueuer = receiver()
    answer = rec.receive("teams-test", post(json.dumps(forged).encode()))
    assert answer.status == 202
    assert enqueuer.events == []


def test_a_flipped_byte_in_a_notification_drops_it() -> None:
    data = json.loads((EVENTS / "notification_channel_message.json").read_text())
    content = data["value"][0]["encryptedContent"]
    raw = bytearray(base64.b64decode(content["data"]))
    raw[5] ^= 0xFF
    content["data"] = base64.b64encode(bytes(raw)).decode()
    rec, enqueuer = receiver()
    assert rec.receive("teams-test", post(json.dumps(data).encode())).status == 202
    assert enqueuer.events == []


def test_graph_retry_of_the_same_notification_is_a_duplicate() -> None:
    rec, enqueuer = receiver()
    body = (EVENTS / "notification_channel_message.json").read_bytes()
    rec.receive("teams-test", post(body))
    rec.receive("teams-test", post(body))
    assert len(enqueuer.events) == 1


def test_validation_token_handshake_is_decoded_text_plain() -> None:
    rec, enqueuer = receiver()
    query = (
        "validationToken=Validation%3a+Testing+client+application+reachability+for+"
        "subscription+Request-Id%3a+abc%2B1"
    )
    answer = rec.receive("teams-test", post(b"", query))
    assert answer.status == 200
    assert answer.content_type.startswith("text/plain")
    assert (
        answer.body
        == b"Validation: Testing client application reachability for subscription Request-Id: abc+1"
    )
    assert enqueuer.events == []
