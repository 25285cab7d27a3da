"""Playlist expansion (vendors.md 4.2): fetch the metadata of every video in the configured
playlists before anyone watches them, and again every `catalog_refresh_seconds`.

Why: a statement is enriched (title, description, channel, and `length`, the denominator of
`progress`) from the metadata cache. Without the catalog, the first viewer of each video pays
the `videos.list` call inside normalization, and a day whose quota ran out sends bare
statements for every video not yet cached. Walking the playlists ahead fills the cache at a
steady pace instead.

* `playlistItems.list`: 50 items a page, `nextPageToken` followed (a repeated token stops the
  walk: `LoopGuard`), 1 unit a page; the page's video ids then go through the metadata cache
  (`MetadataClient.lookup`: only ids not cached cost, 50 per unit).
* Bounded work per run (`PAGES_PER_RUN`): `maintain()` runs every few minutes; a long playlist
  is walked over several runs, resuming from the page token kept in the instance state.
* The catalog never spends the half of the daily quota it leaves to statement enrichment.
* A playlist that does not exist (404) or cannot be read (403) is a configuration error: it is
  reported, and tried again only at the next refresh, not every few minutes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.youtube.dataapi import MetadataClient
from connectors.youtube.settings import YouTubeSettings
from hub import Clock, ConfigError, KeyValue, LoopGuard, PaginationLoop, TransientError

__all__ = ["PAGES_PER_RUN", "CatalogReport", "PlaylistCatalog", "PlaylistProgress"]

logger = logging.getLogger(__name__)

PAGES_PER_RUN = 20
"""playlistItems pages per `maintain()` run, over all playlists (1,000 videos, at most 40
units): a run stays short, and a 5,000-video channel is walked in five runs."""
PAGE_SIZE = 50
PROGRESS_TTL_SECONDS = 30 * 86400


class PlaylistProgress(BaseModel):
    """Where the walk of one playlist stands (state key ``catalog:{playlist}``)."""

    model_config = ConfigDict(extra="ignore")

    page_token: str | None = Field(default=None, description="next page of the current walk")
    seen: list[str] = Field(default_factory=list, description="LoopGuard fingerprints")
    completed_at: datetime | None = Field(default=None, description="end of the last walk")
    videos: int = Field(default=0, description="videos listed by the current or last walk")
    error: str | None = Field(default=None, description="why the last walk stopped, if it did")

    @property
    def walking(self) -> bool:
        return self.page_token is not None

    def due(self, now: datetime, every: timedelta) -> bool:
        return self.walking or self.completed_at is None or now - self.completed_at >= every


class _ItemDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")
    videoId: str | None = None  # noqa: N815 - the API's field names


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")
    contentDetails: _ItemDetails = Field(default_factory=_ItemDetails)  # noqa: N815


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[_Item] = Field(default_factory=list)
    nextPageToken: str | None = None  # noqa: N815


@dataclass
class CatalogReport:
    """What one `refresh()` did."""

    pages: int = 0
    videos: int = 0
    completed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the run ended early: "quota", "transient", "pages"


class PlaylistCatalog:
    """Walks the configured playlists and keeps their videos' metadata cached."""

    def __init__(
        self,
        settings: YouTubeSettings,
        *,
        metadata: MetadataClient,
        state: KeyValue,
        clock: Clock,
        pages_per_run: int = PAGES_PER_RUN,
    ) -> None:
        self._settings = settings
        self._metadata = metadata
        self._state = state
        self._clock = clock
        self._pages_per_run = pages_per_run

    def progress(self, playlist: str) -> PlaylistProgress:
        raw = self._state.get(f"catalog:{playlist}")
        if raw is None:
            return PlaylistProgress()
        try:
            return PlaylistProgress.model_validate_json(raw)
        except ValidationError:
            return PlaylistProgress()  # unreadable: walk it again from the start

    def summary(self) -> str:
        """One line for the status page: how far the playlists are walked."""
        states = [self.progress(p) for p in self._settings.playlists]
        done = [p for p in states if not p.walking and p.completed_at and p.error is None]
        failed = sum(1 for p in states if p.error is not None)
        walking = sum(1 for p in states if p.walking)
        parts = [f"{len(done)} of {len(states)} walked ({sum(p.videos for p in done):,} videos)"]
        if walking:
            parts.append(f"{walking} walking")
        if failed:
            parts.append(f"{failed} failed (see last error)")
        return ", ".join(parts)

    def _save(self, playlist: str, progress: PlaylistProgress) -> None:
        self._state.set(
            f"catalog:{playlist}", progress.model_dump_json(), ttl_seconds=PROGRESS_TTL_SECONDS
        )

    def _quota_allows(self) -> bool:
        """A page and its lookup cost up to 2 units; half the day's budget stays with
        statement enrichment."""
        reserve = self._settings.daily_quota_units // 2
        return self._metadata.quota_left() >= reserve + 2

    def refresh(self) -> CatalogReport:
        """Walk the due playlists, within this run's page budget and the quota.

        Raises nothing: errors are in the report (`maintain()` turns them into a health error).
        """
        report = CatalogReport()
        every = timedelta(seconds=self._settings.catalog_refresh_seconds)
        for playlist in self._settings.playlists:
            progress = self.progress(playlist)
            if not progress.due(self._clock.now(), every):
                continue
            if not self._walk(playlist, progress, report):
                break
        if report.pages:
            logger.info(
                "YouTube catalog: %d page(s), %d video(s) listed, %d playlist(s) complete",
                report.pages, report.videos, len(report.completed),
            )  # fmt: skip
        return report

    def _walk(self, playlist: str, progress: PlaylistProgress, report: CatalogReport) -> bool:
        """Walk one playlist from where it stands; False when the run must stop."""
        if not progress.walking:  # a new walk
            progress = PlaylistProgress()
        guard = LoopGuard(progress.seen)
        while True:
            if report.pages >= self._pages_per_run:
                report.stopped = "pages"
                return False
            if not self._quota_allows():
                report.stopped = "quota"
                return False
            params = {"part": "contentDetails", "playlistId": playlist,
                      "maxResults": str(PAGE_SIZE)}  # fmt: skip
            if progress.page_token:
                params["pageToken"] = progress.page_token
            try:
                page = self._metadata.get("playlistItems", params, _Page)
            except TransientError as exc:
                report.errors.append(f"playlist {playlist}: {exc}")
                report.stopped = "transient"
                return False  # the same page is asked for again next run
            except ConfigError as exc:
                self._end(playlist, progress, report, error=f"playlist {playlist}: {exc}")
                return True  # the others may be fine
            report.pages += 1
            ids = [i.contentDetails.videoId for i in page.items if i.contentDetails.videoId]
            report.videos += len(ids)
            progress.videos += len(ids)
            self._metadata.lookup(ids)
            token = page.nextPageToken
            if not token:
                self._end(playlist, progress, report)
                return True
            try:
                guard.check(token)
            except PaginationLoop:
                self._end(playlist, progress, report,
                          error=f"playlist {playlist}: the API repeated a page token")  # fmt: skip
                return True
            progress.page_token = token
            progress.seen = list(guard.seen)
            self._save(playlist, progress)  # resume here if the run stops

    def _end(
        self,
        playlist: str,
        progress: PlaylistProgress,
        report: CatalogReport,
        *,
        error: str | None = None,
    ) -> None:
        """Close the walk: next one at the next refresh (also after an error, so a missing
        playlist costs a unit a day rather than one every few minutes)."""
        progress.page_token = None
        progress.seen = []
        progress.completed_at = self._clock.now()
        progress.error = error
        self._save(playlist, progress)
        if error is None:
            report.completed.append(playlist)
        else:
            report.errors.append(error)
