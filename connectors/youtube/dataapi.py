"""YouTube Data API v3 metadata: `videos.list` with batching, a cache and a daily quota.

* Up to 50 ids per call, 1 unit per call whatever the parts (vendors.md 4.2).
* Metadata is cached in the instance's state (``meta:{video_id}``) for ``metadata_ttl_seconds``;
  ids the API does not return (private, deleted) are remembered for an hour (``meta-miss:``) so
  they do not cost a unit per player batch.
* Units are counted per Pacific day (the quota resets at midnight Pacific, not UTC) in
  ``quota:{YYYY-MM-DD}``. When the configured daily budget is spent, or Google answers
  ``quotaExceeded``, enrichment is skipped for the rest of the day: statements are still sent,
  with what the tracker reported. Enrichment never fails a statement.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.youtube.models import VideoMeta
from connectors.youtube.settings import YouTubeSettings
from hub import Clock, ConfigError, KeyValue, TransientError
from hub.xapi import parse_duration, parse_timestamp

__all__ = ["MAX_IDS_PER_CALL", "MetadataClient", "pacific_day"]

logger = logging.getLogger(__name__)

MAX_IDS_PER_CALL = 50
MISS_TTL_SECONDS = 3600
_PACIFIC = ZoneInfo("America/Los_Angeles")
_LANG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")


def pacific_day(now: datetime) -> str:
    """The quota day: the calendar date in Pacific time."""
    return now.astimezone(_PACIFIC).date().isoformat()


class _Snippet(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str | None = None
    description: str | None = None
    channelId: str | None = None  # noqa: N815 - the API's field names
    channelTitle: str | None = None  # noqa: N815
    publishedAt: str | None = None  # noqa: N815
    defaultAudioLanguage: str | None = None  # noqa: N815
    defaultLanguage: str | None = None  # noqa: N815
    liveBroadcastContent: str | None = None  # noqa: N815


class _ContentDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")
    duration: str | None = None


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    snippet: _Snippet = Field(default_factory=_Snippet)
    contentDetails: _ContentDetails = Field(default_factory=_ContentDetails)  # noqa: N815


_Body = TypeVar("_Body", bound=BaseModel)


class _ListResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[_Item] = Field(default_factory=list)


def _meta(item: _Item) -> VideoMeta:
    sn = item.snippet
    live = (sn.liveBroadcastContent or "none") in ("live", "upcoming")
    length: float | None = None
    if item.contentDetails.duration and not live:
        try:
            seconds = float(parse_duration(item.contentDetails.duration))
        except ValueError:
            seconds = 0.0
        length = seconds if seconds > 0 else None  # P0D: live or upcoming, no length
    language = sn.defaultAudioLanguage or sn.defaultLanguage
    published = None
    if sn.publishedAt:
        try:
            published = parse_timestamp(sn.publishedAt)
        except ValueError:
            published = None
    return VideoMeta(
        video_id=item.id,
        title=sn.title,
        description=sn.description,
        channel_id=sn.channelId,
        channel_title=sn.channelTitle,
        language=language if language and _LANG.match(language) else None,
        length=length,
        published_at=published,
        live=live or length is None,
    )


def _reason(response: httpx.Response) -> str:
    """`error.errors[0].reason` of a Google API error body (`quotaExceeded`), or ''."""
    try:
        data = response.json()
        reason = data["error"]["errors"][0]["reason"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    return reason if isinstance(reason, str) else ""


class MetadataClient:
    """Video metadata for one instance: cache first, then `videos.list` within the quota."""

    def __init__(
        self, settings: YouTubeSettings, *, http: httpx.Client, state: KeyValue, clock: Clock
    ) -> None:
        self._settings = settings
        self._http = http
        self._state = state
        self._clock = clock

    # -- quota -----------------------------------------------------------------------------

    def _quota_key(self) -> str:
        return f"quota:{pacific_day(self._clock.now())}"

    def quota_used(self) -> int:
        """Units spent today (Pacific day), as counted by this instance."""
        raw = self._state.get(self._quota_key())
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    def quota_left(self) -> int:
        return max(0, self._settings.daily_quota_units - self.quota_used())

    def _charge(self, units: int = 1) -> None:
        """Count `units` spent today (every Data API request costs, failed ones included)."""
        # get+set, not atomic: concurrent workers may under-count by a few units (open point:
        # KeyValue has no increment; Store.incr exists but is not exposed to connectors).
        self._state.set(self._quota_key(), str(self.quota_used() + units), ttl_seconds=2 * 86400)

    def _exhaust(self) -> None:
        """Google said the quota is spent: count the whole day as used."""
        self._state.set(
            self._quota_key(), str(self._settings.daily_quota_units), ttl_seconds=2 * 86400
        )

    # -- cache -----------------------------------------------------------------------------

    def cached(self, video_id: str) -> VideoMeta | None:
        raw = self._state.get(f"meta:{video_id}")
        if raw is None:
            return None
        try:
            return VideoMeta.model_validate_json(raw)
        except ValidationError:
            return None

    def remember(self, meta: VideoMeta) -> None:
        self._state.set(
            f"meta:{meta.video_id}", meta.model_dump_json(),
            ttl_seconds=self._settings.metadata_ttl_seconds,
        )  # fmt: skip
        self._state.delete(f"meta-miss:{meta.video_id}")

    def forget(self, video_id: str) -> None:
        self._state.delete(f"meta:{video_id}")

    # -- lookups -----------------------------------------------------------------------------

    def lookup(self, video_ids: Iterable[str], *, refresh: bool = False) -> dict[str, VideoMeta]:
        """Metadata for the ids: from the cache, else fetched (≤ 50 ids per call) while the
        quota lasts. Missing, private and deleted videos, API errors and a spent quota simply
        leave ids out of the answer; this never raises."""
        found: dict[str, VideoMeta] = {}
        wanted: list[str] = []
        for vid in dict.fromkeys(video_ids):
            meta = None if refresh else self.cached(vid)
            if meta is not None:
                found[vid] = meta
            elif refresh or self._state.get(f"meta-miss:{vid}") is None:
                wanted.append(vid)
        for start in range(0, len(wanted), MAX_IDS_PER_CALL):
            chunk = wanted[start : start + MAX_IDS_PER_CALL]
            if self.quota_left() < 1:
                logger.info("YouTube Data API quota spent for today; enrichment skipped")
                break
            try:
                fetched = self.fetch(chunk)
            except (TransientError, ConfigError) as exc:
                logger.warning("videos.list failed (%s); enrichment skipped", exc)
                break
            for vid in chunk:
                meta = fetched.get(vid)
                if meta is None:
                    self._state.set(f"meta-miss:{vid}", "1", ttl_seconds=MISS_TTL_SECONDS)
                else:
                    self.remember(meta)
                    found[vid] = meta
        return found

    def fetch(
        self, video_ids: Sequence[str], *, parts: str = "snippet,contentDetails"
    ) -> dict[str, VideoMeta]:
        """One `videos.list` call (1 unit, counted). Raises ConfigError for a bad key or a
        disabled API, TransientError for 5xx, network errors and a spent quota."""
        if not video_ids or len(video_ids) > MAX_IDS_PER_CALL:
            raise ValueError(f"videos.list takes 1 to {MAX_IDS_PER_CALL} ids")
        params = {"part": parts, "id": ",".join(video_ids), "maxResults": str(MAX_IDS_PER_CALL)}
        body = self.get("videos", params, _ListResponse)
        return {item.id: _meta(item) for item in body.items}

    def get(self, resource: str, params: dict[str, str], model: type[_Body]) -> _Body:
        """One Data API `GET /{resource}` with the key (1 unit, counted), read into `model`.

        Raises ConfigError for a bad key, a disabled API or a missing resource (4xx: a human
        must act), TransientError for 5xx, 408, 429, network errors, an unreadable answer and
        a spent quota (which also marks the day as spent).
        """
        if self._settings.api_key is None:
            raise ConfigError("no api_key configured for the YouTube Data API")
        what = f"GET /{resource}"
        url = str(self._settings.api_base_url).rstrip("/") + "/" + resource
        query = {**params, "key": self._settings.api_key.get_secret_value()}
        try:
            response = self._http.get(url, params=query, timeout=15.0)
        except httpx.HTTPError as exc:
            raise TransientError(f"{what}: network error ({type(exc).__name__})") from None
        finally:
            # Google charges a unit for every request it receives, failed ones included.
            self._charge()
        status = response.status_code
        reason = _reason(response)
        if status == 403 and reason in ("quotaExceeded", "dailyLimitExceeded"):
            self._exhaust()
            raise TransientError(f"{what}: daily quota exceeded")
        if status in (400, 401, 403):
            raise ConfigError(
                f"{what}: HTTP {status} {reason}".rstrip()
                + " (check api_key and that the YouTube Data API v3 is enabled)"
            )
        if status >= 500 or status in (408, 429):
            raise TransientError(f"{what}: HTTP {status}")
        if status >= 300:
            raise ConfigError(f"{what}: HTTP {status} {reason}".rstrip())
        try:
            return model.model_validate(json.loads(response.content))
        except (ValueError, ValidationError):
            raise TransientError(f"{what}: unreadable response") from None
