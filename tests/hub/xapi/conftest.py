"""Shared fixtures for the hub.xapi tests: complete, valid statements as raw JSON."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

BASE = "https://lrs-hub.example.com/xapi"
EXT = f"{BASE}/extensions"
SHA256 = "0f" * 32

VALID_V1: dict[str, Any] = {
    "id": "961f16f9-d0d5-5cb4-9ef0-f04fe6cf6eb2",
    "actor": {"objectType": "Agent", "name": "Ada Lovelace", "mbox": "mailto:ada@example.com"},
    "verb": {
        "id": "http://adlnet.gov/expapi/verbs/completed",
        "display": {"en-US": "completed"},
    },
    "object": {
        "objectType": "Activity",
        "id": f"{BASE}/activities/docebo/acme.docebosaas.com/course/678",
        "definition": {
            "name": {"en": "Course 678", "zh-Hant-TW": "課程"},
            "description": {"en-US": "A course"},
            "type": "http://adlnet.gov/expapi/activities/course",
            "moreInfo": "https://acme.docebosaas.com/learn/course/678/some-slug",
            "extensions": {f"{EXT}/source-record": {"status": "completed", "x": None}},
            "interactionType": "choice",
            "correctResponsesPattern": ["a"],
            "choices": [{"id": "a", "description": {"en": "A"}}, {"id": "b"}],
        },
    },
    "result": {
        "score": {"scaled": 0.8, "raw": 80, "min": 0, "max": 100},
        "success": True,
        "completion": True,
        "response": "a",
        "duration": "PT1H2M3.45S",
        "extensions": {f"{EXT}/attempt": None},
    },
    "context": {
        "registration": "1dab40f3-fb3d-5a58-bed7-e54631066ca9",
        "instructor": {"account": {"homePage": "https://acme.csod.com", "name": "u-1"}},
        "team": {
            "objectType": "Group",
            "name": "Team",
            "member": [
                {"mbox_sha1sum": "72ac10875be5a7770a4f31058ea797edb8e55020"},
                {"openid": "https://openid.example.com/bob"},
            ],
        },
        "contextActivities": {
            "parent": [{"id": f"{BASE}/activities/docebo/acme.docebosaas.com/plan/9"}],
            "grouping": [{"objectType": "Activity", "id": "https://acme.docebosaas.com"}],
            "category": [{"id": "https://w3id.org/xapi/video"}],
            "other": [{"id": "urn:example:other"}],
        },
        "revision": "3",
        "platform": "Docebo",
        "language": "en-US",
        "statement": {"objectType": "StatementRef", "id": "a8d76c03-dea1-5b81-93ca-1dd2f17976fb"},
        "extensions": {f"{EXT}/source": "docebo", f"{EXT}/source-tenant": None},
    },
    "timestamp": "2024-03-13T14:58:26.000Z",
    "attachments": [
        {
            "usageType": "http://id.tincanapi.com/attachment/certificate-of-completion",
            "display": {"en": "Certificate"},
            "description": {"en": "PDF certificate"},
            "contentType": "application/pdf",
            "length": 1234,
            "sha2": SHA256,
            "fileUrl": "https://files.example.com/cert.pdf",
        }
    ],
}

V2_EXTRA_CONTEXT: dict[str, Any] = {
    "contextAgents": [
        {
            "objectType": "contextAgent",
            "agent": {"mbox": "mailto:coach@example.com"},
            "relevantTypes": ["https://example.com/types/coach"],
        }
    ],
    "contextGroups": [
        {
            "objectType": "contextGroup",
            "group": {"objectType": "Group", "account": {"homePage": "https://x.io", "name": "g"}},
        }
    ],
}


@pytest.fixture
def valid_v1() -> dict[str, Any]:
    """A complete statement valid for xAPI 1.0.3 (and 2.0)."""
    return copy.deepcopy(VALID_V1)


@pytest.fixture
def valid_v2() -> dict[str, Any]:
    """A complete statement using 2.0-only fields (contextAgents/Groups, version 2.0.0)."""
    data = copy.deepcopy(VALID_V1)
    data["context"].update(copy.deepcopy(V2_EXTRA_CONTEXT))
    data["version"] = "2.0.0"
    return data


@pytest.fixture
def make_v1() -> Callable[[], dict[str, Any]]:
    """Factory for fresh copies of the valid 1.0.3 statement."""
    return lambda: copy.deepcopy(VALID_V1)
