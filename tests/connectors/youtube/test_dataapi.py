"""Data API metadata: videos.list batching (<= 50 ids), cache, daily quota (vendors.md 4.2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from _youtube_kit import FIXTURES, Kit, verbs, y5_body

from connectors.youtube.dataapi import MAX_IDS_PER_CALL, pacific_day
from hub.errors import ConfigError, TransientError
from hub.testing import strict_router
from hub.xapi import parse_duration

API = "https://www.googleapis.com/youtube/v3/videos"
Y3 = json.loads((FIXTURES / "api" / "videos_list_y3.json").read_text())


def _ids(n: int) -> list[str]:
    return [f"vid{i:08d}"[:11] for i in range(n)]


def _echo(request: httpx.Request) -> httpx.Response:
    ids = request.url.params["id"].split(",")
    items = [dict(Y3["items"][0], id=i) for i in ids if not i.endswith("7")]  # some are private
    return httpx.Response(200, json={"items": items})


@pytest.mark.parametrize(
    ("text", "seconds"), [("PT15M51S", 951), ("P0D", 0), ("P1DT2H3M4S", 93784)]
)
def test_duration_vectors(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_lookup_batches_at_most_50_ids_and_caches(yt: Kit) -> None:
    conn = yt.connector(api_key="k")
    ids = _ids(120)
    with strict_router() as router:
        route = router.get(API).mock(side_effect=_echo)
        found = conn.metadata.lookup(ids)
        sizes = [len(c.request.url.params["id"].split(",")) for c in route.calls]
        assert sizes == [50, 50, 20]
        assert max(sizes) <= MAX_IDS_PER_CALL
        assert all(c.request.url.params["key"] == "k" for c in route.calls)
        assert len(found) == 120 - 12  # ids ending in 7 are "private": simply absent
        again = conn.metadata.lookup(ids)  # cache hits, and misses remembered for an hour
        assert route.call_count == 3
        assert again == found
    assert conn.quota_used() == 3


def test_y3_fields(yt: Kit) -> None:
    conn = yt.connector(api_key="k")
    with strict_router() as router:
        router.get(API).mock(return_value=httpx.Response(200, json=Y3))
        meta = conn.metadata.lookup(["7lCDEYXw3mM"])["7lCDEYXw3mM"]
    assert (meta.title, meta.length, meta.language) == (
        "Google I/O 101: Q&A On Using Google APIs", 951.0, "en")  # fmt: skip
    assert meta.channel_id == "UC_x5XG1OV2P6uZZ5FSM9Ttw"
    assert not meta.live


def test_live_video_has_no_length(yt: Kit) -> None:
    live = json.loads(json.dumps(Y3))
    live["items"][0]["contentDetails"]["duration"] = "P0D"
    live["items"][0]["snippet"]["liveBroadcastContent"] = "live"
    conn = yt.connector(api_key="k")
    with strict_router() as router:
        router.get(API).mock(return_value=httpx.Response(200, json=live))
        meta = conn.metadata.lookup(["7lCDEYXw3mM"])["7lCDEYXw3mM"]
    assert meta.length is None
    assert meta.live


def test_statements_are_enriched(yt: Kit) -> None:
    conn = yt.connector(api_key="k")
    with strict_router() as router:
        router.get(API).mock(return_value=httpx.Response(200, json=Y3))
        statements = yt.send(conn, y5_body())
    definition = statements[0].object_.definition  # type: ignore[union-attr]
    assert definition is not None
    assert definition.name == {"en": "Google I/O 101: Q&A On Using Google APIs"}
    assert statements[0].context is not None
    assert statements[0].context.language == "en"


def test_spent_quota_skips_enrichment_but_not_statements(yt: Kit) -> None:
    conn = yt.connector(api_key="k", daily_quota_units=1)
    with strict_router() as router:
        router.get(API).mock(return_value=httpx.Response(200, json={"items": []}))
        conn.metadata.lookup(["aaaaaaaaaaa"])  # spends the one unit
    statements = yt.send(conn, y5_body())  # no route: any call would fail the test
    assert verbs(statements)[0] == "initialized"
    assert statements[0].object_.definition.name is None  # type: ignore[union-attr]
    assert conn.quota_used() == 1


def test_quota_exceeded_answer_exhausts_the_day(yt: Kit) -> None:
    conn = yt.connector(api_key="k")
    answer = {"error": {"code": 403, "errors": [{"reason": "quotaExceeded",
                                                 "domain": "youtube.quota"}]}}  # fmt: skip
    with strict_router() as router:
        router.get(API).mock(return_value=httpx.Response(403, json=answer))
        assert conn.metadata.lookup(["7lCDEYXw3mM"]) == {}
    assert conn.quota_used() == 10_000
    assert verbs(yt.send(conn, y5_body()))[0] == "initialized"


def test_quota_day_is_pacific(yt: Kit) -> None:
    # 2024-05-04 03:00 UTC is still May 3rd in California.
    assert pacific_day(datetime(2024, 5, 4, 3, tzinfo=UTC)) == "2024-05-03"
    conn = yt.connector(api_key="k")
    with strict_router() as router:
        router.get(API).mock(return_value=httpx.Response(200, json={"items": []}))
        conn.metadata.lookup(["aaaaaaaaaaa"])
    assert conn.quota_used() == 1
    yt.clock.advance(timedelta(days=1).total_seconds())
    assert conn.quota_used() == 0


def test_api_errors_never_fail_mapping(yt: Kit) -> None:
    conn = yt.connector(api_key="k")
    with strict_router() as router:
        router.get(API).mock(return_value=httpx.Response(500))
        assert verbs(yt.send(conn, y5_body()))[0] == "initialized"


def test_check_classifies_errors(yt: Kit) -> None:
    conn = yt.connector(api_key="k")
    with strict_router() as router:
        router.get(API).mock(side_effect=[httpx.Response(400, json={}), httpx.Response(502)])
        with pytest.raises(ConfigError):
            conn.check()
        with pytest.raises(TransientError):
            conn.check()
