"""Playlist expansion (vendors.md 4.2): playlistItems pages walked into the metadata cache,
within a page budget per run and half the daily quota, resumable, refreshed on schedule."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from _youtube_kit import CHANNEL, FIXTURES, Kit
from click.testing import CliRunner
from pydantic import ValidationError

from connectors.youtube.catalog import PlaylistCatalog
from connectors.youtube.connector import YouTubeConnector
from connectors.youtube.settings import YouTubeSettings
from hub.cli import main
from hub.errors import MaintenanceIncomplete
from hub.testing import strict_router

API = "https://www.googleapis.com/youtube/v3"
Y3 = json.loads((FIXTURES / "api" / "videos_list_y3.json").read_text())
Y4 = json.loads((FIXTURES / "api" / "playlist_items_y4.json").read_text())
PLAYLIST = "PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG"
UPLOADS = "UU" + CHANNEL[2:]


class Playlists:
    """A fake Data API: playlists of video ids served in Y4-shaped pages of 50, and videos.list
    echoing Y3 for each id asked."""

    def __init__(self, **playlists: list[str]) -> None:
        self.playlists = playlists
        self.tokens_asked: list[str | None] = []

    def page(self, request: httpx.Request) -> httpx.Response:
        playlist = request.url.params["playlistId"]
        if playlist not in self.playlists:
            error = {"code": 404, "errors": [{"reason": "playlistNotFound"}]}
            return httpx.Response(404, json={"error": error})
        assert request.url.params["maxResults"] == "50"
        assert request.url.params["part"] == "contentDetails"
        token = request.url.params.get("pageToken")
        self.tokens_asked.append(token)
        start = int(token[1:]) if token else 0
        ids = self.playlists[playlist][start : start + 50]
        item = Y4["items"][0]
        page: dict[str, Any] = {
            **Y4,
            "items": [
                {**item, "contentDetails": {**item["contentDetails"], "videoId": v}} for v in ids
            ],
        }
        page.pop("nextPageToken")
        if start + 50 < len(self.playlists[playlist]):
            page["nextPageToken"] = f"T{start + 50}"
        return httpx.Response(200, json=page)

    @staticmethod
    def videos(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["id"].split(",")
        return httpx.Response(200, json={"items": [dict(Y3["items"][0], id=i) for i in ids]})


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:09d}"[:11] for i in range(n)]


def _connector(yt: Kit, **settings: Any) -> YouTubeConnector:
    return yt.connector(**{"api_key": "k", "playlists": [PLAYLIST], **settings})


def _catalog(yt: Kit, conn: YouTubeConnector, pages: int) -> PlaylistCatalog:
    return PlaylistCatalog(conn.settings, metadata=conn.metadata, state=yt.state, clock=yt.clock,
                           pages_per_run=pages)  # fmt: skip


def test_settings_take_playlist_and_channel_ids() -> None:
    base = {"tenant": "learn.example.com", "token_secret": "s" * 32, "api_key": "k"}
    settings = YouTubeSettings.model_validate(
        {**base, "playlists": [PLAYLIST, CHANNEL, f" {PLAYLIST} ", UPLOADS]}
    )
    assert settings.playlists == [PLAYLIST, UPLOADS]  # a channel means its uploads (UC -> UU)
    with pytest.raises(ValidationError, match="not a playlist or channel id: 'no/such'"):
        YouTubeSettings.model_validate({**base, "playlists": ["no/such"]})
    without_key = {k: v for k, v in base.items() if k != "api_key"}
    with pytest.raises(ValidationError, match="playlists need api_key"):
        YouTubeSettings.model_validate({**without_key, "playlists": [PLAYLIST]})


def test_a_playlist_is_walked_into_the_metadata_cache(yt: Kit) -> None:
    videos = _ids("a", 120)
    api = Playlists(**{PLAYLIST: videos})
    conn = _connector(yt)
    with strict_router() as router:
        pages = router.get(f"{API}/playlistItems").mock(side_effect=api.page)
        lookups = router.get(f"{API}/videos").mock(side_effect=api.videos)
        assert conn.maintain() == []
        assert api.tokens_asked == [None, "T50", "T100"]
        assert pages.call_count == 3
        assert [len(c.request.url.params["id"].split(",")) for c in lookups.calls] == [50, 50, 20]
        assert all(conn.metadata.cached(v) is not None for v in videos)
        assert conn.quota_used() == 6  # a unit per page and per videos.list call
        progress = conn.catalog.progress(PLAYLIST)
        assert progress.completed_at == yt.clock.now()
        assert (progress.videos, progress.error) == (120, None)
        # Not due again before catalog_refresh_seconds: no call at all.
        yt.clock.advance(3600)
        conn.maintain()
        assert pages.call_count == 3
        # Due again: the walk repeats, and ids still cached cost nothing.
        yt.clock.advance(86_400)
        conn.maintain()
        assert pages.call_count == 6
        assert lookups.call_count == 3
    # The key is a query parameter; it never shows in what the catalog keeps.
    assert all(c.request.url.params["key"] == "k" for c in pages.calls)
    assert "k" not in yt.state.values[f"catalog:{PLAYLIST}"].split('"')


def test_a_long_walk_resumes_where_the_page_budget_stopped_it(yt: Kit) -> None:
    api = Playlists(**{PLAYLIST: _ids("a", 130), UPLOADS: _ids("b", 10)})
    conn = _connector(yt, playlists=[PLAYLIST, CHANNEL])
    catalog = _catalog(yt, conn, pages=2)
    with strict_router() as router:
        router.get(f"{API}/playlistItems").mock(side_effect=api.page)
        router.get(f"{API}/videos").mock(side_effect=api.videos)
        first = catalog.refresh()
        assert (first.pages, first.videos, first.stopped) == (2, 100, "pages")
        assert catalog.progress(PLAYLIST).page_token == "T100"
        assert catalog.progress(UPLOADS).completed_at is None  # not reached in this run
        second = catalog.refresh()
    assert api.tokens_asked == [None, "T50", "T100", None]  # resumed, then the next playlist
    assert second.completed == [PLAYLIST, UPLOADS]
    assert catalog.progress(PLAYLIST).videos == 130  # counted over both runs


def test_the_catalog_leaves_half_the_daily_quota_to_enrichment(yt: Kit) -> None:
    api = Playlists(**{PLAYLIST: _ids("a", 400)})
    conn = _connector(yt, daily_quota_units=20)
    with strict_router() as router:
        pages = router.get(f"{API}/playlistItems").mock(side_effect=api.page)
        router.get(f"{API}/videos").mock(side_effect=api.videos)
        report = conn.catalog.refresh()
    # 2 units a page; a page starts only while 10 + 2 units are left.
    assert (report.pages, report.stopped) == (5, "quota")
    assert conn.quota_used() == 10
    assert pages.call_count == 5
    assert conn.catalog.progress(PLAYLIST).page_token == "T250"


def test_a_missing_playlist_is_reported_and_retried_only_at_the_next_refresh(yt: Kit) -> None:
    api = Playlists(**{UPLOADS: _ids("b", 3)})
    conn = _connector(yt, playlists=[PLAYLIST, UPLOADS])
    with strict_router() as router:
        pages = router.get(f"{API}/playlistItems").mock(side_effect=api.page)
        router.get(f"{API}/videos").mock(side_effect=api.videos)
        with pytest.raises(MaintenanceIncomplete) as failed:
            conn.maintain()
        assert str(failed.value) == (
            f"catalog: playlist {PLAYLIST}: GET /playlistItems: HTTP 404 playlistNotFound"
        )
        assert failed.value.events == []
        assert conn.catalog.progress(UPLOADS).videos == 3  # the other one was walked
        assert conn.catalog.progress(PLAYLIST).error is not None
        yt.clock.advance(600)
        assert conn.maintain() == []  # not asked again every few minutes
        assert pages.call_count == 2
        yt.clock.advance(timedelta(days=1).total_seconds())
        with pytest.raises(MaintenanceIncomplete):
            conn.maintain()
        assert pages.call_count == 4


def test_a_transient_failure_asks_for_the_same_page_next_run(yt: Kit) -> None:
    api = Playlists(**{PLAYLIST: _ids("a", 80)})
    conn = _connector(yt)
    answers = iter([api.page, lambda r: httpx.Response(503), api.page])
    with strict_router() as router:
        router.get(f"{API}/playlistItems").mock(side_effect=lambda r: next(answers)(r))
        router.get(f"{API}/videos").mock(side_effect=api.videos)
        with pytest.raises(MaintenanceIncomplete, match="GET /playlistItems: HTTP 503"):
            conn.maintain()
        assert conn.catalog.progress(PLAYLIST).page_token == "T50"
        conn.maintain()
    assert api.tokens_asked == [None, "T50"]
    assert conn.catalog.progress(PLAYLIST).videos == 80


def test_a_repeated_page_token_ends_the_walk(yt: Kit) -> None:
    def looping(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**Y4, "nextPageToken": "SAME"})

    conn = _connector(yt)
    with strict_router() as router:
        pages = router.get(f"{API}/playlistItems").mock(side_effect=looping)
        router.get(f"{API}/videos").mock(side_effect=Playlists.videos)
        report = conn.catalog.refresh()
    assert pages.call_count == 2
    assert report.errors == [f"playlist {PLAYLIST}: the API repeated a page token"]
    assert conn.catalog.progress(PLAYLIST).page_token is None


def test_quota_exceeded_from_google_stops_the_catalog_for_the_day(yt: Kit) -> None:
    conn = _connector(yt)
    quota = {"error": {"code": 403, "errors": [{"reason": "quotaExceeded"}]}}
    with strict_router() as router:
        answer = httpx.Response(403, json=quota)
        pages = router.get(f"{API}/playlistItems").mock(return_value=answer)
        first = conn.catalog.refresh()
        second = conn.catalog.refresh()
    assert first.stopped == "transient"
    assert second.stopped == "quota"  # the day counts as spent: no second call
    assert pages.call_count == 1
    assert conn.metadata.quota_left() == 0


def test_status_details_show_quota_and_catalog_progress(yt: Kit) -> None:
    assert yt.connector().status_details() == {}  # no key, no playlists: nothing to show
    api = Playlists(**{PLAYLIST: _ids("a", 60)})
    conn = _connector(yt, playlists=[PLAYLIST, "PLmissing0000000000"])
    assert conn.status_details() == {
        "Data API units today": "0 of 10,000 (Pacific day)",
        "playlist catalog": "0 of 2 walked (0 videos)",
    }
    with strict_router() as router:
        router.get(f"{API}/playlistItems").mock(side_effect=api.page)
        router.get(f"{API}/videos").mock(side_effect=api.videos)
        _catalog(yt, conn, pages=1).refresh()  # the first page of the first playlist
        assert conn.status_details()["playlist catalog"] == "0 of 2 walked (0 videos), 1 walking"
        conn.catalog.refresh()
    assert conn.status_details() == {
        # Two pages and their two videos.list calls, and the 404 (Google charges it too).
        "Data API units today": "5 of 10,000 (Pacific day)",
        "playlist catalog": "1 of 2 walked (60 videos), 1 failed (see last error)",
    }


def test_lxhub_status_prints_the_connector_facts(tmp_path: Path) -> None:
    """The whole path: a config with a YouTube instance, its state in the real SQLite store,
    `lxhub status` reading it through `status_details()`."""
    config = tmp_path / "config"
    (config / "connectors").mkdir(parents=True)
    (config / "hub.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nlrs:\n  - name: local\n    type: local\n"
    )
    instance = {
        "id": "yt-learn", "type": "youtube", "enabled": True,
        "settings": {"tenant": "learn.example.com", "token_secret": "s" * 32,
                     "api_key": "${YT_KEY}", "playlists": [CHANNEL]},
    }  # fmt: skip
    (config / "connectors" / "yt-learn.yaml").write_text(yaml.safe_dump(instance))
    result = CliRunner().invoke(
        main, ["--config", str(config), "status"], env={"YT_KEY": "not-shown-anywhere"}
    )
    assert result.exit_code == 0, result.output
    assert "      Data API units today: 0 of 10,000 (Pacific day)\n" in result.output
    assert "      playlist catalog: 0 of 1 walked (0 videos)\n" in result.output
    assert "not-shown-anywhere" not in result.output
