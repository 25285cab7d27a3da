"""Deterministic ids: every vector of vendors.md 8.2 plus the HUB_NS vector."""

from __future__ import annotations

import random
import uuid

import pytest

from hub.xapi import (
    Verbs,
    activity_iri,
    extension_iri,
    key_time,
    natural_key,
    parse_timestamp,
    statement_id,
    statement_namespace,
)
from hub.xapi.ids import statement_id_text

BASE = "https://lrs-hub.example.com/xapi"
HUB_NS = uuid.UUID("b3b2824f-59e2-5129-80fb-fdeb67e0c2bd")
CSOD_USER = "6ebc7096-3d2a-4f5b-a1c9-7e8f9d0b1c2d"
CSOD_LO = "8d86b95c-2f4e-4c1a-8b7d-0e9f6a5c4b3a"
SESSION = "2f0d7c4e-8a4b-4f0e-9a51-0c7b1d3e5a77"
TEAMS_TENANT = "84bd8158-6d4d-4958-8b9f-9d6445542f95"

# (source, tenant, verb_key, parts, expected key, expected statement id) - vendors.md 8.2
VECTORS: list[tuple[str, str, str, list[tuple[str, str]], str, str]] = [
    (
        "docebo",
        "acme.docebosaas.com",
        "completed",
        [("user", "12345"), ("course", "678"), ("completed_at", "2024-03-13T14:58:26Z")],
        "docebo|acme.docebosaas.com|completed|user=12345|course=678|completed_at=2024-03-13T14:58:26Z",
        "961f16f9-d0d5-5cb4-9ef0-f04fe6cf6eb2",
    ),
    (
        "csod",
        "acme.csod.com",
        "completed",
        [
            ("user", CSOD_USER),
            ("lo", CSOD_LO),
            ("reg", "1"),
            ("completed_at", "2025-06-05T18:54:38Z"),
        ],
        f"csod|acme.csod.com|completed|user={CSOD_USER}|lo={CSOD_LO}|reg=1|completed_at=2025-06-05T18:54:38Z",
        "8496c202-1c7a-5cb4-a1e3-d4fd47b848c9",
    ),
    (
        "csod",
        "acme.csod.com",
        "registration",
        [("user", CSOD_USER), ("lo", CSOD_LO), ("reg", "1")],
        f"csod|acme.csod.com|registration|user={CSOD_USER}|lo={CSOD_LO}|reg=1",
        "1dab40f3-fb3d-5a58-bed7-e54631066ca9",
    ),
    (
        "youtube",
        "learn.example.com",
        "initialized",
        [("session", SESSION)],
        f"youtube|learn.example.com|initialized|session={SESSION}",
        "a8d76c03-dea1-5b81-93ca-1dd2f17976fb",
    ),
    (
        "youtube",
        "learn.example.com",
        "completed",
        [("session", SESSION)],
        f"youtube|learn.example.com|completed|session={SESSION}",
        "f75e92cf-c90e-51e1-8b2d-1c7e31ea1724",
    ),
    (
        "youtube",
        "learn.example.com",
        "registration",
        [("user", "u-1001"), ("video", "7lCDEYXw3mM")],
        "youtube|learn.example.com|registration|user=u-1001|video=7lCDEYXw3mM",
        "1bc88377-1b97-57c1-a064-8b6395fa0fad",
    ),
    (
        "msteams",
        TEAMS_TENANT,
        "posted",
        [
            ("channel", "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"),
            ("message", "1606515483514"),
        ],
        f"msteams|{TEAMS_TENANT}|posted|channel=19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
        "|message=1606515483514",
        "d9c333c2-1a98-5aeb-9a63-7ce9173ac8d2",
    ),
    (
        "msteams",
        TEAMS_TENANT,
        "attended",
        [
            ("meeting", "MSpkYzE3Njc0Yy04MWQ5LTRhZGItYmZ"),
            ("report", "c9b6db1c-d5eb-427d-a5c0-20088d9b22d7"),
            ("attendee", "dc17674c-81d9-4adb-bfb2-8f6a442e4623"),
        ],
        f"msteams|{TEAMS_TENANT}|attended|meeting=MSpkYzE3Njc0Yy04MWQ5LTRhZGItYmZ"
        "|report=c9b6db1c-d5eb-427d-a5c0-20088d9b22d7|attendee=dc17674c-81d9-4adb-bfb2-8f6a442e4623",
        "670cadd5-3b67-5287-bb12-74a2030d6949",
    ),
    (
        "slack",
        "T111",
        "posted",
        [("channel", "C111"), ("ts", "1595926230.009600")],
        "slack|t111|posted|channel=C111|ts=1595926230.009600",
        "929e9b57-fd96-5904-8f49-5d6c4d66d859",
    ),
    (
        "slack",
        "T111",
        "liked",
        [
            ("channel", "C111"),
            ("ts", "1599529504.000400"),
            ("user", "W111"),
            ("reaction", "heart_eyes"),
        ],
        "slack|t111|liked|channel=C111|ts=1599529504.000400|user=W111|reaction=heart_eyes",
        "220092b0-d290-577e-9af5-57f988e8b0dd",
    ),
]


def test_hub_namespace_vector() -> None:
    assert statement_namespace(BASE) == HUB_NS
    assert statement_namespace(BASE + "/") == HUB_NS


@pytest.mark.parametrize(
    ("source", "tenant", "verb_key", "parts", "key", "expected"),
    VECTORS,
    ids=[f"{v[0]}-{v[2]}-{i}" for i, v in enumerate(VECTORS)],
)
def test_section_8_2_vectors(
    source: str,
    tenant: str,
    verb_key: str,
    parts: list[tuple[str, str]],
    key: str,
    expected: str,
) -> None:
    built = natural_key(source=source, tenant=tenant, verb_key=verb_key, parts=parts)
    assert built == key
    assert statement_id(statement_namespace(BASE), built) == uuid.UUID(expected)
    assert statement_id_text(statement_namespace(BASE), built) == expected


def test_docebo_key_from_vendor_timestamp() -> None:
    completed = parse_timestamp("2024-03-13 14:58:26", assume_utc=True)
    assert completed is not None
    key = natural_key(
        source="Docebo",
        tenant="ACME.docebosaas.com",
        verb_key=Verbs.COMPLETED.key,
        parts=[("user", "12345"), ("course", "678"), ("completed_at", key_time(completed))],
    )
    assert str(statement_id(HUB_NS, key)) == "961f16f9-d0d5-5cb4-9ef0-f04fe6cf6eb2"


def test_natural_key_values_used_as_given() -> None:
    key = natural_key(source="s", tenant="t", verb_key="v", parts=[("n", "MiXeD|x=y")])
    assert key == "s|t|v|n=MiXeD|x=y"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"parts": [("us|er", "1")]},
        {"parts": [("a=b", "1")]},
        {"parts": [("", "1")]},
        {"source": "doc|ebo"},
        {"tenant": ""},
        {"verb_key": "com|pleted"},
    ],
)
def test_natural_key_rejects_separators(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"source": "docebo", "tenant": "t", "verb_key": "completed"}
    args["parts"] = [("user", "1")]
    args.update(kwargs)
    with pytest.raises(ValueError, match="must not"):
        natural_key(**args)  # type: ignore[arg-type]


def test_activity_iri_vectors() -> None:
    assert (
        activity_iri(
            BASE, source="docebo", tenant="acme.docebosaas.com", kind="course", source_id="678"
        )
        == "https://lrs-hub.example.com/xapi/activities/docebo/acme.docebosaas.com/course/678"
    )
    channel = "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
    assert (
        activity_iri(
            BASE + "/", source="MSTeams", tenant=TEAMS_TENANT, kind="channel", source_id=channel
        )
        == f"{BASE}/activities/msteams/{TEAMS_TENANT}/channel/{channel}"
    )
    assert (
        activity_iri(
            BASE, source="webhook:sparkwise", tenant="t", kind="session", source_id="a/b c?d#e"
        )
        == f"{BASE}/activities/webhook:sparkwise/t/session/a%2Fb%20c%3Fd%23e"
    )


def test_activity_iri_rejects_relative_base_and_empty_id() -> None:
    with pytest.raises(ValueError, match="absolute"):
        activity_iri("lrs-hub/xapi", source="s", tenant="t", kind="k", source_id="1")
    with pytest.raises(ValueError, match="empty"):
        activity_iri(BASE, source="s", tenant="t", kind="k", source_id="")


def test_extension_iri() -> None:
    assert extension_iri(BASE, "source-tenant") == f"{BASE}/extensions/source-tenant"
    assert (
        extension_iri(BASE + "/", "timestamp-inferred") == f"{BASE}/extensions/timestamp-inferred"
    )
    with pytest.raises(ValueError, match="extension name"):
        extension_iri(BASE, "bad name")


def test_statement_id_text_is_the_uuid5_text() -> None:
    # The JSON builders use the text form; it must be the very id statement_id() gives, or
    # the same fact would get two ids depending on which builder mapped it.
    rng = random.Random(7)
    alphabet = "abcXYZ019|=:/.-_ é€😀"
    namespaces = [
        statement_namespace("https://lrs-hub.example.com/xapi"),
        uuid.UUID(int=0),
        uuid.UUID(int=(1 << 128) - 1),
    ]
    for namespace in namespaces:
        for _ in range(3000):
            key = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
            assert statement_id_text(namespace, key) == str(statement_id(namespace, key))
    nk = "webhook:acmecoach|acme|attended|k1=ses_9001|k2=u_123"
    assert statement_id_text(namespaces[0], nk) == str(uuid.uuid5(namespaces[0], nk))
