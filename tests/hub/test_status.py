"""`hub.status.details`: a connector's own facts for the status page, bounded, and a plugin
whose `status_details()` fails never takes the page down."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from hub.status import MAX_DETAILS, details


class Facts:
    name = "facts"

    def __init__(self, found: Mapping[Any, Any] | Exception) -> None:
        self.found = found

    def status_details(self) -> Mapping[Any, Any]:
        if isinstance(self.found, Exception):
            raise self.found
        return self.found


def test_details_are_shown_as_text_and_bounded() -> None:
    assert details(Facts({})) == {}  # type: ignore[arg-type]
    assert details(Facts({"API calls today": 12})) == {"API calls today": "12"}  # type: ignore[arg-type]
    many = {f"fact {i}": "x" * 500 for i in range(20)}
    shown = details(Facts(many))  # type: ignore[arg-type]
    assert len(shown) == MAX_DETAILS
    assert all(len(v) == 200 for v in shown.values())
    long_label = details(Facts({"l" * 100: "v"}))  # type: ignore[arg-type]
    assert list(long_label) == ["l" * 60]


def test_a_failing_plugin_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="hub.status"):
        shown = details(Facts(RuntimeError("state store down")))  # type: ignore[arg-type]
    assert shown == {"status details": "unavailable (status_details() failed; see the logs)"}
    assert "status_details() of connector 'facts' failed" in caplog.text
