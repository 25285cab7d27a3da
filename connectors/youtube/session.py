"""The server-side video session: a pure state machine from player events to Video Profile facts.

Why server-side state: the Video Profile's ``played-segments``, ``progress``, the seek inference
and "initialized first / completed once / nothing after terminated" depend on the WHOLE session,
while the tracker sends it in many small batches (at least once, via fetch and sendBeacon). The
connector loads a `SessionState` from the hub's store, calls `advance()` with one batch, and
saves the new state; `advance()` itself does no I/O, so every rule is unit-testable.

Rules (vendors.md 4.1, 4.5, 4.6, 4.7):

* Events are applied in ``seq`` order; a ``seq`` at or below the highest one already applied is
  ignored (batches are retried by the browser and may repeat or overlap).
* There is no seek event: a seek is a position jump, comparing ``t`` with the expected position
  ``anchor_t + elapsed_wall * rate`` (while PLAYING; the position stands still otherwise). A jump
  beyond the tolerance is ``seeked`` from the last observed position to the new one. The open
  segment closes at the last observed position (conservative: what we saw played). ENDED followed
  by PLAYING near 0 is a replay, not a seek.
* ``played`` when playback starts (state 1 after not playing, or after a seek); BUFFERING (3)
  alone never produces a statement. ``paused`` on state 2 or 0 while playing, and a synthetic
  ``paused`` before ``terminated`` when the unload comes while playing.
* ``completed`` when progress reaches the threshold, first time in the session, checked whenever
  a segment closes. ``terminated`` on unload; nothing is applied after it.
* Playing wall time accumulates only between observations while PLAYING with no seek in
  between (``result.duration`` uses wall time; ``progress`` uses media time; pitfall 3).
* ``initialized`` is the first fact of a session, exactly once. When the length is unknown at
  ``ready`` (``getDuration()`` is 0 and no metadata), it waits for an event that reports a
  duration, or for the first other fact, whichever comes first (pitfall 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.youtube.models import PlayerBatch, PlayerEvent

__all__ = [
    "Fact",
    "SessionParams",
    "SessionState",
    "advance",
    "format_segments",
    "merge_segments",
    "progress",
]

FactKind = Literal[
    "initialized", "played", "paused", "seeked", "completed", "terminated", "interacted"
]
PLAYING, PAUSED, ENDED, BUFFERING = 1, 2, 0, 3
_INTERACTIONS = ("rate", "volume", "mute", "fullscreen", "quality", "captions")


class SessionState(BaseModel):
    """Everything the server remembers about one video session between batches."""

    model_config = ConfigDict(extra="forbid")

    session_id: str
    video_id: str
    sub: str
    last_seq: int = -1
    initialized: bool = False
    completed: bool = False
    terminated: bool = False
    ready_at: datetime | None = Field(default=None, description="statement time of `ready`")
    ready_inferred: bool = False
    ready_seq: int | None = None
    player_state: int = -1
    playing: bool = False
    resume_pending: bool = False
    segment_start: float | None = None
    segments: list[tuple[float, float]] = Field(default_factory=list)
    anchor_t: float | None = None
    anchor_wall: datetime | None = Field(default=None, description="client clock, raw")
    rate: float = 1.0
    wall_seconds: float = 0.0
    tracker_length: float | None = None
    page_url: str | None = None
    user_agent: str | None = None
    screen_size: str | None = None


@dataclass(frozen=True)
class SessionParams:
    """The instance settings the state machine needs, plus the metadata length if known."""

    threshold: float = 1.0
    tolerance: float = 1.5
    skew_limit: float = 300.0
    interactions: bool = False
    meta_length: float | None = None


@dataclass(frozen=True)
class Fact:
    """One Video Profile statement to build, with every value it needs."""

    kind: FactKind
    seq: int
    at: datetime
    inferred: bool
    time: float | None = None
    time_from: float | None = None
    time_to: float | None = None
    progress: float | None = None
    segments: str | None = None
    length: float | None = None
    wall_seconds: float = 0.0
    changed: dict[str, str | float | bool] = field(default_factory=dict)


def _r3(value: float) -> float:
    return round(value + 0.0, 3)


def merge_segments(segments: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sort and merge overlapping or touching segments (xapi-videojs' method)."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted((min(a, b), max(a, b)) for a, b in segments):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def progress(segments: Sequence[tuple[float, float]], length: float | None) -> float | None:
    """Covered seconds / length, rounded to 3 decimals, at most 1; None without a length."""
    if not length or length <= 0:
        return None
    covered = sum(end - start for start, end in merge_segments(segments))
    return _r3(min(1.0, covered / length))


def format_segments(segments: Sequence[tuple[float, float]]) -> str:
    """``"0.000[.]12.000[,]14.000[.]21.000"``, in the order the segments were played."""
    return "[,]".join(f"{start:.3f}[.]{end:.3f}" for start, end in segments)


class _Run:
    """One `advance()` call: the mutable working copy and the facts produced."""

    def __init__(
        self, state: SessionState, params: SessionParams, received_at: datetime, offset_bad: bool
    ) -> None:
        self.s = state
        self.p = params
        self.received_at = received_at
        self.offset_bad = offset_bad
        self.facts: list[Fact] = []

    # -- helpers ---------------------------------------------------------------------------

    @property
    def length(self) -> float | None:
        if self.p.meta_length is not None:
            return self.p.meta_length if self.p.meta_length > 0 else None
        return self.s.tracker_length

    def stamp(self, event: PlayerEvent) -> tuple[datetime, bool]:
        """Statement time: the client's, unless its clock is off (then receipt time)."""
        limit = timedelta(seconds=self.p.skew_limit)
        if self.offset_bad or event.client_ts - self.received_at > limit:
            return self.received_at, True
        return event.client_ts, False

    def segments_now(self) -> list[tuple[float, float]]:
        return list(self.s.segments)

    def add(self, kind: FactKind, event: PlayerEvent, **values: object) -> None:
        if kind != "initialized" and not self.s.initialized:
            self.initialize(event)
        at, inferred = self.stamp(event)
        if kind == "initialized" and self.s.ready_at is not None:
            at, inferred = self.s.ready_at, self.s.ready_inferred
        self.facts.append(
            Fact(kind=kind, seq=event.seq, at=at, inferred=inferred, length=self.length,
                 **values)  # type: ignore[arg-type]
        )  # fmt: skip

    def initialize(self, event: PlayerEvent) -> None:
        self.s.initialized = True
        self.add("initialized", event)

    def close_segment(self, end: float) -> None:
        start = self.s.segment_start
        if start is not None and end > start:
            self.s.segments.append((_r3(start), _r3(end)))
        self.s.segment_start = None

    def snapshot(self) -> dict[str, object]:
        segs = self.s.segments
        return {"progress": progress(segs, self.length), "segments": format_segments(segs)}

    def check_completed(self, event: PlayerEvent, t: float) -> None:
        if self.s.completed:
            return
        value = progress(self.s.segments, self.length)
        if value is not None and value >= self.p.threshold:
            self.s.completed = True
            self.add("completed", event, time=_r3(t), wall_seconds=self.s.wall_seconds,
                     **self.snapshot())  # fmt: skip

    def pause(self, event: PlayerEvent, t: float) -> None:
        self.close_segment(t)
        self.s.playing = False
        self.s.resume_pending = False
        self.add("paused", event, time=_r3(t), **self.snapshot())
        self.check_completed(event, t)

    # -- the position model ------------------------------------------------------------------

    def observe(self, event: PlayerEvent) -> None:
        """Seek inference and wall-time accounting for an event that reports a position."""
        t = event.t
        if t is None:
            return
        s = self.s
        if s.anchor_t is not None and s.anchor_wall is not None:
            elapsed = max(0.0, (event.client_ts - s.anchor_wall).total_seconds())
            advancing = s.player_state == PLAYING
            expected = s.anchor_t + elapsed * s.rate if advancing else s.anchor_t
            replay = s.player_state == ENDED and t <= self.p.tolerance
            if abs(t - expected) > self.p.tolerance and not replay:
                origin = s.anchor_t
                if s.segment_start is not None:
                    self.close_segment(origin)
                    s.segment_start = t  # playback goes on from the new position
                    s.resume_pending = True
                self.add("seeked", event, time_from=_r3(origin), time_to=_r3(t))
            elif advancing:
                s.wall_seconds += elapsed
        s.anchor_t = t
        s.anchor_wall = event.client_ts

    # -- one event -----------------------------------------------------------------------------

    def apply(self, event: PlayerEvent) -> None:
        s = self.s
        if event.duration and event.duration > 0:
            s.tracker_length = event.duration
        if event.type == "ready":
            s.ready_at, s.ready_inferred = self.stamp(event)
            s.ready_seq = event.seq
            if not s.initialized and self.length is not None:
                self.initialize(event)
            return
        if not s.initialized and s.ready_at is not None and self.length is not None:
            self.initialize(event)
        self.observe(event)
        t = event.t if event.t is not None else (s.anchor_t or 0.0)
        if event.rate is not None and event.type in ("state", "heartbeat", "rate"):
            old_rate, s.rate = s.rate, event.rate
            if event.type == "rate" and self.p.interactions and old_rate != event.rate:
                self.add("interacted", event, time=_r3(t), changed={"speed": _speed(event.rate)})
        if event.type == "state" and event.state is not None:
            self.state_change(event, event.state, t)
        elif event.type == "unload":
            self.unload(event, t)
        elif event.type in _INTERACTIONS and event.type != "rate" and self.p.interactions:
            changed = _changed(event)
            if changed:
                self.add("interacted", event, time=_r3(t), changed=changed)

    def state_change(self, event: PlayerEvent, state: int, t: float) -> None:
        s = self.s
        if state == PLAYING:
            if not s.playing or s.resume_pending:
                self.add("played", event, time=_r3(t))
            s.playing = True
            s.resume_pending = False
            if s.segment_start is None:
                s.segment_start = t
        elif state in (PAUSED, ENDED) and s.playing:
            self.pause(event, t)
        s.player_state = state

    def unload(self, event: PlayerEvent, t: float) -> None:
        s = self.s
        if s.playing:
            self.pause(event, t)  # the Video Profile's paused-before-terminated rule
        else:
            self.check_completed(event, t)
        self.add("terminated", event, time=_r3(t), **self.snapshot())
        s.terminated = True


def _speed(rate: float) -> str:
    return f"{rate:g}x"


def _changed(event: PlayerEvent) -> dict[str, str | float | bool]:
    out: dict[str, str | float | bool] = {}
    if event.type == "volume" and event.volume is not None:
        out["volume"] = _r3(event.volume / 100)
    elif event.type == "mute" and event.muted is not None:
        out["volume"] = 0.0 if event.muted else _r3((event.volume or 100) / 100)
    elif event.type == "fullscreen" and event.fullscreen is not None:
        out["full-screen"] = event.fullscreen
    elif event.type == "quality" and event.quality:
        out["quality"] = event.quality
    elif event.type == "captions" and event.captions is not None:
        out["cc-subtitle-enabled"] = event.captions
        if event.captions_lang:
            out["cc-subtitle-lang"] = event.captions_lang
    return out


def advance(
    state: SessionState,
    batch: PlayerBatch,
    *,
    params: SessionParams,
    received_at: datetime,
) -> tuple[SessionState, list[Fact]]:
    """Apply one batch to a session; return the new state and the facts, in statement order.

    Pure: `state` is not modified. `received_at` is the server's receipt time (clock clamping).
    The client's clock is judged once per batch, by ``sent_at`` or else the newest event time:
    when it is off by more than the skew limit, every statement time of the batch becomes the
    receipt time (flagged inferred). A single event dated in the future is clamped alone.
    """
    new = state.model_copy(deep=True)
    if batch.player.user_agent and new.user_agent is None:
        new.user_agent = batch.player.user_agent
    if batch.player.screen_size and new.screen_size is None:
        new.screen_size = batch.player.screen_size
    if batch.page_url and new.page_url is None:
        new.page_url = batch.page_url
    fresh = sorted(
        {e.seq: e for e in batch.events if e.seq > state.last_seq}.values(), key=lambda e: e.seq
    )
    if not fresh or state.terminated:
        return new, []
    client_now = batch.sent_at or max(e.client_ts for e in batch.events)
    offset = abs((client_now - received_at).total_seconds())
    run = _Run(new, params, received_at, offset > params.skew_limit)
    for event in fresh:
        if new.terminated:
            break  # nothing may follow terminated in a session
        run.apply(event)
        new.last_seq = event.seq
    new.last_seq = max(new.last_seq, fresh[-1].seq)
    return new, run.facts
