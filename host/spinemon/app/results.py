"""What a session gives: the result types of replay and report.

:class:`SessionResult` (a replayed or live session: its summary, events and
alerts; for a resumed recording each segment's :class:`SegmentReplay`),
:class:`ReportTables`/:class:`ReportResult` (what ``spinemon report``
builds and writes) and :func:`live_comparison` (a replay's events against
those recorded live) and :func:`join_segments` (a resumed recording's
segments as one result). The summary's own types are :mod:`spinemon.app.session_summary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spinemon.app.session_summary import (
    DeviceCounts,
    EventRow,
    HeldBack,
    HoldRow,
    Monitoring,
    RepRow,
    SetRow,
    Summary,
    sum_counts,
)
from spinemon.app.words import plural
from spinemon.core.alerts import Alert
from spinemon.core.calibration import Calibration
from spinemon.core.detect import Event
from spinemon.core.device_status import DeviceAccounting
from spinemon.core.pipeline import Pipeline
from spinemon.core.unilateral import session_sides


@dataclass
class SessionResult:
    events: list[Event]
    alerts: list[Alert]
    stats: dict
    calibration: Calibration | None
    angle_label: str
    frames: int = 0
    send_failures: int = 0
    #: the summary, typed (a dict given here is taken in with :meth:`Summary.from_dict`)
    session: Summary = field(default_factory=Summary)
    #: replay: each segment of the recording replayed on its own (one for a recording that was never resumed)
    segments: list[SegmentReplay] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.session, Mapping):
            self.session = Summary.from_dict(self.session)

    @classmethod
    def of(cls, pipeline: Pipeline, frames: int, summary: Summary, send_failures: int = 0) -> SessionResult:
        """What a finished session's (or replayed segment's) pipeline gives, with its summary."""
        return cls(
            pipeline.events,
            pipeline.alerts,
            pipeline.decoder.stats.as_dict(),
            pipeline.calibration,
            pipeline.angle_label,
            frames,
            send_failures,
            summary,
        )

    @property
    def summary(self) -> dict[str, Any]:
        """The summary as JSON-ready data (what a recording stores and
        ``replay --json`` prints); read :attr:`session` for the typed one."""
        return self.session.as_dict()

    @summary.setter
    def summary(self, d: Mapping[str, Any]) -> None:
        self.session = Summary.from_dict(d)

    @property
    def matches_live(self) -> bool | None:
        """Replay: every segment gave the events its live session reported
        (None: no segment has a live summary, e.g. an imported recording)."""
        verdicts = [s.matches_live for s in self.segments if s.matches_live is not None]
        return None if not verdicts else all(verdicts)

    @property
    def live_comparison(self) -> str | None:
        """Replay: how each segment compares with its own live session
        (:func:`live_comparison`): one segment's verdict, ``yes`` when every
        segment's is, else each as ``session N: ...`` (None: no live summary)."""
        verdicts = [(s.index, s.live_comparison) for s in self.segments if s.live_comparison is not None]
        if not verdicts:
            return None
        if len(verdicts) == 1 or all(v == "yes" for _, v in verdicts):
            return verdicts[0][1] if len(verdicts) == 1 else "yes"
        return "; ".join(f"session {n}: {v}" for n, v in verdicts)


@dataclass
class SegmentReplay:
    """One segment of a recording (one live session) replayed on its own.

    ``result``: the segment through a fresh pipeline with its own header's
    settings, exactly as its live session ran (its own calibration, sets
    numbered from 1, its own device times). ``live_events``: the events its
    live session reported (its closing summary; None without one).
    ``set_offset``/``t_offset``: added to its set numbers and device times
    where the recording is shown as one (:func:`replay`'s joined result)."""

    index: int  # 1 = the first segment
    path: Path | None
    header: dict
    set_offset: int = 0
    t_offset: float = 0.0
    result: SessionResult | None = None
    live_events: list[dict] | None = None

    @property
    def resumed(self) -> bool:
        return self.index > 1

    @property
    def events(self) -> list[dict]:
        return [] if self.result is None else [e.as_dict() for e in self.result.events]

    @property
    def matches_live(self) -> bool | None:
        return None if self.live_events is None else self.live_events == self.events

    @property
    def live_comparison(self) -> str | None:
        """How its events compare with its own live session's (:func:`live_comparison`)."""
        return live_comparison(self.live_events, self.events)

    @property
    def sets(self) -> list[int]:
        """Its set numbers on the recording's numbering."""
        return [
            int(st.set) + self.set_offset
            for st in (self.result.session.sets if self.result else ())
            if st.set is not None
        ]

    def as_dict(self) -> dict:
        summ = self.result.session if self.result else Summary()
        m = summ.monitoring if summ.has("monitoring") else None
        return {
            "segment": self.index,
            "file": None if self.path is None else self.path.name,
            "resumed": self.resumed,
            "set_offset": self.set_offset,
            "t_offset_s": round(self.t_offset, 6),
            "sets": self.sets,
            "reps": len(summ.reps),
            "events": len(self.events),
            "calibration": None if m is None else m.calibration,
            "duration_s": m.duration_s if m is not None and m.has("duration_s") else None,
            "monitored_s": m.monitored_s if m is not None and m.has("monitored_s") else None,
            "matches_live": self.matches_live,
            "live_comparison": self.live_comparison,
        }


@dataclass(frozen=True)
class EventLine(EventRow):
    """A row of the report's events table: the summary's event (every key it
    has, in its order: :meth:`Record.as_dict`) with what happened in words
    and its time of day."""

    #: what happened as a coach says it ("rounded", "leaned back (hip swing)")
    what: str = ""
    #: its time of day (None: the recording holds no real time)
    clock: str | None = None


@dataclass(frozen=True)
class RepLine(RepRow):
    """A row of the report's reps table: the summary's rep with its events."""

    #: the kinds of the events in the rep, ``;``-joined ("" for a clean rep)
    events: str = ""
    #: how many of them alerted
    alerts: int = 0


@dataclass(frozen=True)
class SetLine(SetRow):
    """A row of the report's sets table: the summary's set with its peaks and events."""

    peak_extension_deg: float | None = None
    #: events in the set, how many alerted, and the count per kind (``kind=n;...``)
    events: int = 0
    alerts: int = 0
    event_kinds: str = ""


@dataclass
class ReportTables:
    """The report's rows, typed (frozen records: each keeps the keys it was
    made with, in order, so a table's columns are the union of its rows'
    keys and a key a later pipeline adds shows up unchanged); they become
    dicts only where they are written (CSV, page, terminal: ``as_dict``)."""

    sets: list[SetLine]
    reps: list[RepLine]
    events: list[EventLine]
    session: dict  # one-level key -> value facts about the session
    other: dict = field(default_factory=dict)  # summary sections the report does not know, shown as they are
    monitoring: Monitoring | None = None  # Pipeline.monitoring(): what was watched (None: not in the summary)
    one_sensor: bool = False
    #: unilateral work: left against right per exercise (``summary()["side_comparisons"]``: mappings, as in the summary)
    sides: list[Mapping[str, Any]] = field(default_factory=list)
    #: timed holds (plank, bird dog, ...): ``summary()["holds"]`` without their ``type``
    holds: list[HoldRow] = field(default_factory=list)
    #: the wall clock (epoch seconds) at device time 0; None: the recording holds no real time
    clock: float | None = None

    @property
    def verdict(self) -> list[str]:
        """One line per set a coach reads first (spinemon.app.verdict)."""
        from spinemon.app.verdict import session_verdict

        return session_verdict(
            self.sets, self.reps, self.events, self.monitoring, self.one_sensor, self.sides, self.holds
        )


@dataclass
class ReportResult:
    out_dir: Path
    html: Path | None  # None: jinja2 is missing, no page written (plots_skipped says so)
    csv: dict[str, Path]
    plots: list[Path]
    tables: ReportTables
    plots_skipped: str | None = None


def live_comparison(live: list[dict] | None, events: list[dict]) -> str | None:
    """How the replayed events compare with those the live session recorded:
    ``yes``; or, for a recording made by an earlier spinemon whose
    calibration or angles differ slightly, the same events (kind, set, rep,
    times within 0.1 s) with how far peaks and limits moved; or ``NO``."""
    if live is None:
        return None
    if live == events:
        return "yes"
    keys = ("kind", "set", "rep", "exercise")
    if len(live) == len(events) and all(
        all(a.get(k) == b.get(k) for k in keys) for a, b in zip(live, events)
    ):

        def off(a, b, k):
            x, y = a.get(k), b.get(k)
            return (
                0.0 if x is None and y is None else (float("inf") if x is None or y is None else abs(x - y))
            )

        dt = max(
            [off(a, b, k) for a, b in zip(live, events) for k in ("t_start", "t_alert", "t_end")] or [0.0]
        )
        dd = max([off(a, b, k) for a, b in zip(live, events) for k in ("peak_deg", "limit_deg")] or [0.0])
        if dt <= 0.1:
            return f"NO, but the same {plural(len(events), 'event')}: peaks and limits within {dd:.2f} deg, times within {dt:.2f} s (the recording's spinemon calibrated slightly differently)"
    return "NO"


def summary_of(pipeline: Pipeline, device: DeviceAccounting, **fields: Any) -> Summary:
    """A finished pipeline's summary, typed, with ``fields`` set and the
    wearable's own counters (``device``: when it sent any STATUS)."""
    counts = (
        DeviceCounts.from_dict(device.as_dict(pipeline.decoder.stats.lost_samples))
        if device.status_frames
        else None
    )
    return Summary.from_dict(pipeline.summary()).evolve(
        **fields, device=counts
    )  # the device's counters after them


# -- a recording of several segments shown as one -----------------------------------
def moved_event(e: Event, part: SegmentReplay) -> Event:
    dt = part.t_offset

    def sh(t: float | None) -> float | None:
        return None if t is None else t + dt

    return replace(
        e,
        t_start=e.t_start + dt,
        t_alert=sh(e.t_alert),
        t_end=sh(e.t_end),
        set=None if e.set is None else e.set + part.set_offset,
    )


def join_segments(segs: list[SegmentReplay]) -> SessionResult:
    """The segments' results as one: sets numbered on, one time line."""
    results = [p.result for p in segs if p.result is not None]
    assert len(results) == len(segs)  # every segment was replayed
    summs = [r.session for r in results]
    events = [moved_event(e, p) for p, r in zip(segs, results) for e in r.events]
    alerts = [
        replace(a, event=moved_event(a.event, p), t_trigger_device=a.t_trigger_device + p.t_offset)
        for p, r in zip(segs, results)
        for a in r.alerts
    ]
    stats = sum_counts(r.stats for r in results)

    def moved(rows: str) -> tuple:
        return tuple(
            row.moved(p.t_offset, p.set_offset, p.index)
            for p, sm in zip(segs, summs)
            for row in getattr(sm, rows)
        )

    reps = moved("reps")
    devices = [sm.device for sm in summs if sm.device is not None]
    first, last = summs[0], summs[-1]
    summary = Summary(
        events=moved("events"),
        reps=reps,
        sets=moved("sets"),
        holds=moved("holds"),
        drift_checks=moved("drift_checks"),
        suppressed=moved("suppressed"),
        layout_changes=moved("layout_changes"),
        rejected_reps=moved("rejected_reps"),
        notices=moved("notices"),
        side_comparisons=tuple(session_sides([r.as_dict() for r in reps])),
        drift_flagged=any(sm.drift_flagged for sm in summs),
        held_back=HeldBack.joined(sm.held_back for sm in summs),
        stats=stats,
        monitoring=Monitoring.joined(sm.monitoring for sm in summs),
        skipped_samples=sum_counts(sm.skipped_samples for sm in summs),
        clock_backsteps=sum(sm.clock_backsteps for sm in summs),
        angle=first.angle,
        calibrated=all(sm.calibrated for sm in summs),
        alignment=first.alignment,
        limits=last.limits,
        limits_off={k: v for sm in summs for k, v in sm.limits_off.items()},
        phase=last.phase,
        frames=sum(r.frames for r in results),
        device=DeviceCounts.joined(devices) if devices else None,
        segments=len(segs),
        segment_details=tuple(p.as_dict() for p in segs),
        json_keys=Summary.JOINED_KEYS,
    )
    return SessionResult(
        events,
        alerts,
        stats,
        results[0].calibration,
        results[0].angle_label,
        summary.frames,
        0,
        summary,
        segs,
    )
