"""Message text copied into result.response (opt-in): what a reader sees, not Graph's HTML."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.teams.mapping import MappingOptions, _text, plain_text
from connectors.teams.models import ChatMessage


def message(content: str, content_type: str = "html") -> ChatMessage:
    raw: dict[str, Any] = {
        "id": "1616990032035",
        "createdDateTime": "2021-03-29T03:53:52.035Z",
        "body": {"contentType": content_type, "content": content},
    }
    return ChatMessage.model_validate(raw)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<div><p>Hi &amp; welcome&nbsp;to <b>Q3</b></p></div>", "Hi & welcome to Q3"),
        (
            "<p>Agenda:<br>1. Goals &lt;draft&gt;</p><p>2. Budget</p>",
            "Agenda:\n1. Goals <draft>\n2. Budget",
        ),
        ("<div>a   lot\tof   space</div>", "a lot of space"),
        ("<p>caf&eacute; &#8211; &#x1F600;</p>", "café – \U0001f600"),
        ('<at id="0">Kim</at> see <a href="https://x.example">this</a>', "Kim see this"),
        ("<p></p><br/>", ""),
    ],
)
def test_html_bodies_become_plain_text(html: str, text: str) -> None:
    assert plain_text(html) == text


def test_text_is_only_copied_when_enabled_and_is_truncated() -> None:
    m = message("<p>Tom &amp; Jerry</p>")
    assert _text(MappingOptions(), m) is None  # off by default
    result = _text(MappingOptions(include_message_text=True, message_text_max_chars=5), m)
    assert result is not None
    assert result.response == "Tom &"
    full = _text(MappingOptions(include_message_text=True), m)
    assert full is not None
    assert full.response == "Tom & Jerry"


def test_plain_text_bodies_are_kept_as_sent_and_empty_ones_give_no_result() -> None:
    opts = MappingOptions(include_message_text=True)
    kept = _text(opts, message("a &amp; b <not a tag>", content_type="text"))
    assert kept is not None
    assert kept.response == "a &amp; b <not a tag>"
    assert _text(opts, message("<p>&nbsp;</p>")) is None
