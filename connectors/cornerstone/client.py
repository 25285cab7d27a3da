"""The Cornerstone Reporting API (OData) client: OAuth2, per-view rate limits, joins, caching.

* Every request takes a token from the view's client-side bucket first (400/min per view is the
  documented throttle; the default stays below it) and drains that bucket early when
  ``x-csod-requests-remaining-urilevel`` runs low.
* A 429 without ``Retry-After`` (Cornerstone documents none) gets an exponential backoff with
  jitter that grows with consecutive 429s.
* ``@odata.nextLink`` is followed verbatim, and only on the portal's own host (the bearer token
  must never go elsewhere).
* User and training rows are cached in the instance state (and in memory) for joins.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from pydantic import JsonValue, ValidationError

from connectors.cornerstone.models import ODataPage
from connectors.cornerstone.settings import CornerstoneSettings
from hub import (
    Clock,
    ConfigError,
    KeyValue,
    OAuth2ClientCredentials,
    PermanentError,
    RateLimiter,
    TransientError,
    classify_source_response,
    full_jitter,
    send_with_retry,
)

__all__ = [
    "TRAINING_VIEW",
    "TRANSCRIPT_COLUMNS",
    "TRANSCRIPT_VIEW",
    "USER_VIEW",
    "CornerstoneClient",
    "JoinRow",
    "odata_time",
]

logger = logging.getLogger(__name__)

TRANSCRIPT_VIEW = "vw_rpt_transcript"
USER_VIEW = "vw_rpt_user"
TRAINING_VIEW = "vw_rpt_training"
VIEWS_PATH = "/services/api/x/odata/api/views"

TRANSCRIPT_COLUMNS = (
    "reg_num",
    "transc_user_id",
    "transc_object_id",
    "user_lo_status_id",
    "user_lo_status",
    "user_lo_score",
    "user_lo_pass",
    "user_lo_minutes_participated",
    "user_lo_assigned_dt",
    "user_lo_reg_dt",
    "user_lo_comp_dt",
    "user_lo_removed_dt",
    "is_removed",
    "_last_touched_dt_utc",
)
USER_COLUMNS = ("user_id", "user_guid", "user_email", "user_name_first", "user_name_last")
_IN_CHUNK = 40  # ids per `or` filter: keeps URLs well under common 8 KB limits

JoinRow = dict[str, JsonValue]
"""A joined user or training row, restricted to the columns the fact model reads."""


def odata_time(dt: datetime) -> str:
    """A typed OData literal; without `cast` the service compares strings (pitfall 7)."""
    return f"cast('{dt.strftime('%Y-%m-%dT%H:%M:%SZ')}', Edm.DateTimeOffset)"


def _guid_literal(guid: str) -> str:
    return f"cast('{guid}', Edm.Guid)"


class CornerstoneClient:
    """Typed access to the three Reporting API views."""

    def __init__(
        self,
        settings: CornerstoneSettings,
        *,
        http: httpx.Client,
        clock: Clock,
        state: KeyValue,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        self.state = state
        # Jitter only spreads retries; it needs no cryptographic quality.
        self.rng = rng or random.Random()  # noqa: S311
        self.auth: OAuth2ClientCredentials | None = None
        if settings.client_id and settings.client_secret is not None:
            self.auth = OAuth2ClientCredentials(
                token_url=f"{settings.base_url}/services/api/oauth2/token",
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                scope=" ".join(settings.scopes),
                body=settings.token_body,
                clock=clock,
            )
        self.limiter = RateLimiter(
            rate=settings.requests_per_minute / 60.0, burst=settings.burst, clock=clock
        )
        self._throttled = 0
        self._memo: dict[str, JoinRow | None] = {}

    # -- transport -------------------------------------------------------------------------------

    def _backoff(self) -> float:
        # Cornerstone documents no Retry-After: exponential with full jitter, floor 1 s.
        return max(1.0, full_jitter(self._throttled, base=2.0, cap=300.0, rng=self.rng))

    def get_page(
        self, view: str, *, params: Mapping[str, str] | None = None, link: str | None = None
    ) -> ODataPage:
        """One page of `view`: the first (with `params`) or the one at `link` (verbatim)."""
        if self.auth is None:
            raise ConfigError("the Reporting API needs client_id and client_secret")
        if link is not None:
            if urlsplit(link).netloc != urlsplit(self.settings.base_url).netloc:
                raise PermanentError("@odata.nextLink points to another host; not following it")
            request = self.http.build_request("GET", link, headers=self._headers())
        else:
            request = self.http.build_request(
                "GET",
                f"{self.settings.base_url}{VIEWS_PATH}/{view}",
                params=params,
                headers=self._headers(),
            )
        self.limiter.acquire(view)
        response = send_with_retry(self.http, request, auth=self.auth)
        remaining = response.headers.get("x-csod-requests-remaining-urilevel")
        if remaining is not None and remaining.strip().isdigit():
            self.limiter.observe_remaining(
                view, int(remaining), low_water=self.settings.low_water_remaining
            )
        if response.status_code == 429:
            self._throttled += 1
        classify_source_response(response, now=self.clock.now(), fallback_retry_after=self._backoff)
        self._throttled = 0
        try:
            return ODataPage.model_validate(json.loads(response.content))
        except (ValueError, ValidationError):
            # A page cut mid-stream parses badly: the same link is retried later.
            raise TransientError(f"GET {view}: truncated or malformed OData page") from None

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "Prefer": f"odata.maxpagesize={self.settings.page_size}",
        }

    # -- transcript ------------------------------------------------------------------------------

    def transcript_params(self, *, start: datetime, upto: datetime) -> dict[str, str]:
        return {
            "$select": ",".join(TRANSCRIPT_COLUMNS),
            "$filter": (
                f"_last_touched_dt_utc ge {odata_time(start)} "
                f"and _last_touched_dt_utc le {odata_time(upto)}"
            ),
        }

    def transcript_rows(self, *, user_id: str, lo_guid: str, reg_num: str) -> list[JoinRow]:
        """The transcript row(s) of one registration (to enrich a webhook fact)."""
        params = {
            "$select": ",".join(TRANSCRIPT_COLUMNS),
            "$filter": (
                f"transc_user_id eq {int(user_id)} and transc_object_id eq "
                f"{_guid_literal(lo_guid)} and reg_num eq {int(reg_num)}"
            ),
        }
        return self.get_page(TRANSCRIPT_VIEW, params=params).value

    # -- joins (cached) --------------------------------------------------------------------------

    def _cached(self, key: str) -> tuple[bool, JoinRow | None]:
        if key in self._memo:
            return True, self._memo[key]
        raw = self.state.get(key)
        if raw is None:
            return False, None
        try:
            value = json.loads(raw)
        except ValueError:
            return False, None
        row = value if isinstance(value, dict) else None
        self._memo[key] = row
        return True, row

    def _remember(self, key: str, row: JoinRow | None) -> None:
        self._memo[key] = row
        # A runtime without a state store raises: the in-memory cache still helps then.
        with contextlib.suppress(RuntimeError):
            self.state.set(key, json.dumps(row), ttl_seconds=self.settings.cache_ttl_hours * 3600)

    def users_by_id(self, user_ids: Iterable[str]) -> dict[str, JoinRow | None]:
        """Reporting-API user ids -> user rows (GUID, email, names); None for unknown ids."""
        return self._join(
            USER_VIEW,
            "user",
            sorted({u for u in user_ids if u.isdigit()}, key=int),
            column="user_id",
            literal=str,
            select=USER_COLUMNS,
        )

    def user_by_guid(self, guid: str) -> JoinRow | None:
        return self._join(
            USER_VIEW, "user-guid", [guid], column="user_guid", literal=_guid_literal,
            select=USER_COLUMNS,
        )[guid]  # fmt: skip

    def trainings(self, guids: Iterable[str]) -> dict[str, JoinRow | None]:
        """Learning-object GUIDs -> training rows (type, title, max and mastery score)."""
        title = self.settings.training_title_column
        select = ("lo_object_id", "lo_type", title, "lo_max_score", "lo_mastery_score")
        rows = self._join(
            TRAINING_VIEW, "training", sorted(set(guids)), column="lo_object_id",
            literal=_guid_literal, select=select,
        )  # fmt: skip
        if title != "lo_title":
            for row in rows.values():
                if row is not None and title in row:
                    row["lo_title"] = row.pop(title)
        return rows

    def _join(
        self,
        view: str,
        kind: str,
        keys: list[str],
        *,
        column: str,
        literal: Callable[[str], str],
        select: tuple[str, ...],
    ) -> dict[str, JoinRow | None]:
        found: dict[str, JoinRow | None] = {}
        missing: list[str] = []
        for key in keys:
            hit, row = self._cached(f"{kind}:{key}")
            if hit:
                found[key] = row
            else:
                missing.append(key)
        for i in range(0, len(missing), _IN_CHUNK):
            chunk = missing[i : i + _IN_CHUNK]
            flt = " or ".join(f"{column} eq {literal(k)}" for k in chunk)
            page = self.get_page(view, params={"$select": ",".join(select), "$filter": flt})
            by_key: dict[str, JoinRow] = {}
            for row in page.value:
                value = row.get(column)
                norm = str(value).lower() if value is not None else None
                if norm is not None:
                    by_key[norm] = {k: row[k] for k in select if k in row}
            for key in chunk:
                row = by_key.get(key.lower())
                self._remember(f"{kind}:{key}", row)
                found[key] = row
        return found
