"""The session summary, typed: frozen dataclasses for the session, its sets,
reps, events, holds, monitoring and the rest.

The pipeline gives its summary as one JSON-ready dict
(:meth:`spinemon.core.pipeline.Pipeline.summary`): that is what a recording
stores as its closing record and what ``replay --json`` prints. The app takes
it in once (:meth:`Summary.from_dict`), reads and joins it by attribute, and
turns it back into a dict only at the recording and JSON boundary
(:meth:`Record.as_dict`), the way VQF keeps its state and batch results as
typed values and gives dicts only on the way out.

The way back is exact: :meth:`Record.as_dict` gives the keys a record came
with, in their order (``json_keys``), so ``replay --json`` and the recordings
stay byte for byte what they were. A key the types here do not name (a
section a later pipeline adds, or an older recording's) is kept in
``extra`` and written back where it was; a key a record did not come with
(``pelvis_share`` of a one-sensor rep, ``segment`` of a recording that was
never resumed) is not invented. Values are not converted (a count stays an
int, a rounded time a float), so nothing changes on the way through.

Sections that are maps of counts (``stats``, ``skipped_samples``, seconds
per reason) stay mappings of name to number; the drift checks, layout
changes and side comparisons stay mappings too (:class:`Row` for the ones a
segment moves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import cache
from typing import Any, ClassVar, Self

__all__ = [
    "DeviceCounts",
    "EventRow",
    "HeldBack",
    "HoldRow",
    "Monitoring",
    "Notice",
    "Record",
    "RejectedRep",
    "RepRow",
    "Row",
    "SetRow",
    "Summary",
    "sum_counts",
]


def _plain(v: Any) -> Any:
    """A typed value as JSON-ready data (records as dicts, tuples as lists)."""
    if isinstance(v, Record):
        return v.as_dict()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


@dataclass(frozen=True)
class Record:
    """One JSON object of the summary, typed. Subclasses declare the keys they
    name as fields (all optional: an older recording may lack any of them)."""

    #: the keys this record came with, in order (None: made here, every field in field order)
    json_keys: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)
    #: keys the fields do not name, with their values as read
    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)

    #: field -> how its JSON value becomes typed (nested records, rows)
    NESTED: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    @classmethod
    @cache
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name not in ("json_keys", "extra"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Typed from a JSON object. A value that does not fit its field (a
        damaged or foreign summary: rows that are not a list of objects) is
        kept as it was in ``extra`` and the field keeps its default, so
        :meth:`as_dict` still gives back exactly ``d``."""
        names, defaults, factories = _layout(cls)
        nested = cls.NESTED
        values = dict(defaults)
        for k, make in factories:
            values[k] = make()
        extra: dict[str, Any] = {}
        for k, v in d.items():
            if k in names:
                conv = nested.get(k)
                typed = v if conv is None else conv(v)
                if typed is not _MISFIT:
                    values[k] = typed
                    continue
            extra[k] = v
        values["json_keys"] = tuple(d)
        values["extra"] = extra
        # the fields' values set as __init__ would (the class is frozen), without
        # its per-field checks: a summary of an hour has thousands of rows
        obj = object.__new__(cls)
        obj.__dict__.update(values)
        return obj

    def key_order(self) -> tuple[str, ...]:
        """The keys :meth:`as_dict` gives, in order."""
        if self.json_keys is None:
            return (*self.field_names(), *self.extra)
        return self.json_keys

    def has(self, key: str) -> bool:
        """The record has ``key`` (it came with it, or was made with every field)."""
        return key in self.key_order()

    def value(self, key: str) -> Any:
        return self.extra[key] if key in self.extra else getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        extra, values = self.extra, self.__dict__
        out = {}
        for k in self.key_order():
            v = extra[k] if k in extra else values[k]
            out[k] = _plain(v) if isinstance(v, (Record, tuple)) else v
        return out

    def evolve(self, **changes: Any) -> Self:
        """A copy with ``changes``; a key it did not have comes last, as a dict's would."""
        keys = self.json_keys
        if keys is not None:
            keys = keys + tuple(k for k in changes if k not in keys)
        extra_changes = {k: v for k, v in changes.items() if k not in self.field_names()}
        typed = {k: v for k, v in changes.items() if k not in extra_changes}
        extra = {k: v for k, v in self.extra.items() if k not in typed} | extra_changes
        return replace(self, **typed, json_keys=keys, extra=extra)

    def moved(self, t_offset: float, set_offset: int, segment: int) -> Self:
        """On a joined recording's time line and set numbering, tagged with its
        segment: every time (``t``, ``t_...``) moved by ``t_offset``, ``set`` by
        ``set_offset``."""
        changes: dict[str, Any] = {}
        for k in self.key_order():
            v = self.value(k)
            if (
                (k == "t" or k.startswith("t_"))
                and isinstance(v, (int, float))
                and not isinstance(v, bool)
                and t_offset
            ):
                changes[k] = round(v + t_offset, 6)
        st = self.value("set") if "set" in self.key_order() else None
        if isinstance(st, int) and not isinstance(st, bool):
            changes["set"] = st + set_offset
        changes["segment"] = segment
        return self.evolve(**changes)


_Layout = tuple[frozenset[str], dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...]]
_LAYOUTS: dict[type, _Layout] = {}


def _layout(cls: type) -> _Layout:
    """A record class's field names, plain defaults and default factories (worked out once per class)."""
    got = _LAYOUTS.get(cls)
    if got is not None:
        return got
    names: set[str] = set()
    defaults: dict[str, Any] = {}
    factories: list[tuple[str, Callable[[], Any]]] = []
    for f in fields(cls):
        if f.name in ("json_keys", "extra"):
            continue
        names.add(f.name)
        if f.default_factory is not MISSING:
            factories.append((f.name, f.default_factory))
        else:
            defaults[f.name] = f.default
    got = _LAYOUTS[cls] = (frozenset(names), defaults, tuple(factories))
    return got


#: a JSON value that does not fit its field (see :meth:`Record.from_dict`)
_MISFIT: Any = object()


def _rows(cls: type[Record]) -> Callable[[Any], Any]:
    """A JSON list of objects -> a tuple of ``cls``."""

    def conv(v: Any) -> Any:
        if isinstance(v, list) and all(isinstance(x, Mapping) for x in v):
            return tuple(cls.from_dict(x) for x in v)
        return _MISFIT

    return conv


def _one(cls: type[Record], *, none: bool = False) -> Callable[[Any], Any]:
    """A JSON object -> ``cls`` (``none``: null stays None)."""

    def conv(v: Any) -> Any:
        if none and v is None:
            return None
        return cls.from_dict(v) if isinstance(v, Mapping) else _MISFIT

    return conv


def _list(v: Any) -> Any:
    """A JSON list -> a tuple of its values as they are."""
    return tuple(v) if isinstance(v, list) else _MISFIT


def sum_counts(maps: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Maps of counts added up key by key (nested maps too); other values: the last one's."""
    out: dict[str, Any] = {}
    for d in maps:
        for k, v in d.items():
            if isinstance(v, bool) or not isinstance(v, (int, float, Mapping)):
                out[k] = v
            elif isinstance(v, Mapping):
                out[k] = sum_counts([out.get(k) or {}, v]) if isinstance(out.get(k, {}), Mapping) else v
            else:
                out[k] = round(out.get(k, 0) + v, 6) if isinstance(v, float) else out.get(k, 0) + v
    return out


@dataclass(frozen=True)
class Row(Record):
    """A row the types here do not name field by field (a drift check, a layout change)."""


@dataclass(frozen=True)
class EventRow(Record):
    """A limit event (``Event.as_dict``): seconds of device time, degrees."""

    kind: str = ""
    t_start: float = 0.0
    t_end: float | None = None
    peak_deg: float = 0.0
    limit_deg: float = 0.0
    t_alert: float | None = None
    set: int | None = None
    rep: int | None = None
    exercise: str | None = None
    #: the reason a fault did not buzz (suppressed events only)
    held_back: str | None = None
    #: a joined recording: the segment it belongs to
    segment: int | None = None


@dataclass(frozen=True)
class RepRow(Record):
    """One rep (``RepRecord.as_dict`` and what the summary adds)."""

    type: str = "rep"
    set: int | None = None
    rep: int = 0
    exercise: str = ""
    t_start: float = 0.0
    t_end: float = 0.0
    time_under_tension_s: float = 0.0
    peak_flexion_deg: float = 0.0
    peak_extension_deg: float = 0.0
    range_deg: float = 0.0
    peak_sagittal_velocity_deg_s: float = 0.0
    peak_excursion_deg: float = 0.0
    peak_lateral_deg: float | None = None
    peak_twist_deg: float | None = None
    peak_trunk_deg: float | None = None
    labelled: bool = False
    #: the hips' share of the trunk's lean (two sensors only: absent with one)
    pelvis_share: float | None = None
    side: str | None = None
    side_from: str | None = None
    segment: int | None = None


@dataclass(frozen=True)
class SetRow(Record):
    """One set (``SetRecord.as_dict`` and what the summary adds)."""

    type: str = "set"
    set: int = 0
    exercise: str = ""
    t_start: float = 0.0
    t_end: float = 0.0
    reps: int = 0
    labelled: bool = False
    peak_flexion_deg: float | None = None
    warmed_up: bool = False
    warmup: str | None = None
    range_moves_before: int = 0
    side: str | None = None
    #: unilateral work: left against right in this set (``core.unilateral.compare_sides``)
    side_comparison: Mapping[str, Any] | None = None
    segment: int | None = None


@dataclass(frozen=True)
class HoldRow(Record):
    """One timed hold (plank, bird dog, ...)."""

    type: str = "hold"
    exercise: str = ""
    set: int | None = None
    hold: int = 0
    t_start: float = 0.0
    t_end: float | None = None
    duration_s: float | None = None
    faults: tuple[Mapping[str, Any], ...] = ()
    segment: int | None = None

    NESTED: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"faults": _list}


@dataclass(frozen=True)
class RejectedRep(Record):
    """A motion that looked like a rep and was not counted, and why."""

    t_start: float = 0.0
    t_end: float = 0.0
    peak_excursion_deg: float = 0.0
    reason: str = ""
    segment: int | None = None


@dataclass(frozen=True)
class Notice(Record):
    """What the lifter was told at the time (a stale calibration, a sensor lost)."""

    t: float = 0.0
    text: str = ""
    segment: int | None = None


#: calibration states from the least to the most trusted (a joined recording shows its least)
CALIBRATION_ORDER = ("none", "provisional", "stored", "done")


@dataclass(frozen=True)
class Monitoring(Record):
    """How much of the session was monitored, and why the rest was not (seconds)."""

    calibration: str | None = None
    #: a stored calibration checked against the first standing (when there was one)
    stored_check: Mapping[str, Any] | None = None
    duration_s: float = 0.0
    monitored_s: float = 0.0
    not_monitored: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def joined(cls, parts: Iterable[Monitoring]) -> Monitoring:
        """The segments' monitoring as one: times added up, the least trusted calibration."""
        parts = list(parts)
        worst = min(
            (m.calibration for m in parts),
            key=lambda c: CALIBRATION_ORDER.index(c) if c in CALIBRATION_ORDER else -1,
        )
        return cls(
            calibration=worst,
            duration_s=round(sum(m.duration_s for m in parts), 3),
            monitored_s=round(sum(m.monitored_s for m in parts), 3),
            not_monitored=sum_counts(m.not_monitored for m in parts),
            json_keys=("calibration", "duration_s", "monitored_s", "not_monitored"),
        )

    def line(self) -> str:
        """``monitored 52.1 of 60.0 s (calibration: done); not monitored: 7.9 s waiting for ...``."""
        names = {
            "done": "done",
            "stored": "stored profile",
            "provisional": "PROVISIONAL (no still stretch found: neutral from the quietest moment)",
            "none": "NOT DONE",
        }
        text = f"monitored {self.monitored_s:.1f} of {self.duration_s:.1f} s (calibration: {names.get(self.calibration, self.calibration)})"  # type: ignore[arg-type]
        rest = [f"{v:.1f} s {k}" for k, v in self.not_monitored.items()]
        if rest:
            text += "; not monitored: " + ", ".join(rest)
        if self.calibration == "none":
            text += "; stand still for 1 s at the start so neutral can be set"
        return text


@dataclass(frozen=True)
class HeldBack(Record):
    """What held the limits back: seconds per reason, and faults past a limit that did not buzz, per reason."""

    seconds: Mapping[str, float] = field(default_factory=dict)
    faults: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def joined(cls, parts: Iterable[HeldBack]) -> HeldBack:
        parts = list(parts)
        return cls(seconds=sum_counts(h.seconds for h in parts), faults=sum_counts(h.faults for h in parts))


@dataclass(frozen=True)
class DeviceCounts(Record):
    """The wearable's own counters from its STATUS frames (``core.device_status.DeviceAccounting``);
    the drop counters themselves are kept by name in :meth:`counts`."""

    status_frames: int = 0
    boots: tuple[int, ...] = ()
    restarts: int = 0
    samples_lost_device: int = 0
    heap_free_min: int | None = None

    NESTED: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"boots": _list}

    def counts(self) -> dict[str, Any]:
        return {k: self.value(k) for k in self.key_order()}

    @classmethod
    def joined(cls, parts: Iterable[DeviceCounts]) -> DeviceCounts:
        """Counters added up over the segments, every boot listed, the least free heap."""
        parts = list(parts)
        total = sum_counts(d.counts() for d in parts)
        heaps = [d.heap_free_min for d in parts if d.heap_free_min]
        total["boots"] = [b for d in parts for b in d.boots]
        total["heap_free_min"] = min(heaps) if heaps else None
        return cls.from_dict(total)


@dataclass(frozen=True)
class Summary(Record):
    """A session's summary: what each stage found (``Pipeline.summary``), and what
    the live session or the replay adds (frames, commands, the wearable's
    counters, the segments of a resumed recording)."""

    type: str = "summary"
    events: tuple[EventRow, ...] = ()
    reps: tuple[RepRow, ...] = ()
    sets: tuple[SetRow, ...] = ()
    #: unilateral work: left against right per exercise (``core.unilateral.session_sides``)
    side_comparisons: tuple[Mapping[str, Any], ...] = ()
    holds: tuple[HoldRow, ...] = ()
    drift_checks: tuple[Row, ...] = ()
    drift_flagged: bool = False
    #: faults past a limit while the limits were held back (no buzz)
    suppressed: tuple[EventRow, ...] = ()
    held_back: HeldBack = field(default_factory=HeldBack)
    rejected_reps: tuple[RejectedRep, ...] = ()
    #: the frame decoder's counts (``core.stream.StreamStats``)
    stats: Mapping[str, Any] = field(default_factory=dict)
    monitoring: Monitoring = field(default_factory=Monitoring)
    layout_changes: tuple[Row, ...] = ()
    skipped_samples: Mapping[str, int] = field(default_factory=dict)
    clock_backsteps: int = 0
    angle: str | None = None
    calibrated: bool = False
    alignment: Any = None
    limits: Mapping[str, float | None] | None = None
    limits_off: Mapping[str, str] = field(default_factory=dict)
    phase: str | None = None
    notices: tuple[Notice, ...] = ()
    # -- what the live session or replay adds
    frames: int = 0
    send_failures: int = 0
    #: the live session's command queue (``io.commands.CommandStats``)
    commands: Mapping[str, Any] | None = None
    device: DeviceCounts | None = None
    recording_error: str | None = None
    #: how many segments the recording has (1: never resumed)
    segments: int = 1
    #: a joined recording: each segment (``SegmentReplay.as_dict``)
    segment_details: tuple[Mapping[str, Any], ...] = ()

    NESTED: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "events": _rows(EventRow),
        "reps": _rows(RepRow),
        "sets": _rows(SetRow),
        "side_comparisons": _list,
        "holds": _rows(HoldRow),
        "drift_checks": _rows(Row),
        "suppressed": _rows(EventRow),
        "held_back": _one(HeldBack),
        "rejected_reps": _rows(RejectedRep),
        "monitoring": _one(Monitoring),
        "layout_changes": _rows(Row),
        "notices": _rows(Notice),
        "device": _one(DeviceCounts, none=True),
        "segment_details": _list,
    }

    #: the order of a joined recording's summary (as :func:`spinemon.app.replay.replay` always wrote it)
    JOINED_KEYS: ClassVar[tuple[str, ...]] = (
        "type",
        "events",
        "reps",
        "sets",
        "holds",
        "drift_checks",
        "suppressed",
        "layout_changes",
        "rejected_reps",
        "notices",
        "side_comparisons",
        "drift_flagged",
        "held_back",
        "stats",
        "monitoring",
        "skipped_samples",
        "clock_backsteps",
        "angle",
        "calibrated",
        "alignment",
        "limits",
        "limits_off",
        "phase",
        "frames",
        "device",
        "segments",
        "segment_details",
    )
