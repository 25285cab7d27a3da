"""Cursors: where a polling connector stands in a source, saved only after its page is enqueued.

A cursor is a small frozen pydantic model of its own (Singer's state, typed). Time cursors keep an
overlap window: the next poll starts `overlap` before the saved mark so records that land late in
the source are still seen; deterministic statement ids make the overlap harmless. A time cursor
never moves past `until` (the signpost: poll start minus a safety lag), so records written while
a poll runs are not skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict


class Cursor(BaseModel):
    """Base of every cursor model. Subclasses add their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeCursor(Cursor):
    """A high-water mark on the source's modification time, plus an in-progress page."""

    mark: AwareDatetime
    page: int | None = None
    page_token: str | None = None

    def window_start(self, overlap: timedelta) -> datetime:
        """Where the next sync starts: the mark minus the overlap window."""
        return self.mark - overlap


def signpost(until: datetime, candidate: datetime) -> datetime:
    """Clamp a candidate mark so a cursor never moves beyond `until`."""
    return min(until, candidate)
