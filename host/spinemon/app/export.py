"""Recordings <-> CSV.

- :func:`trace_recording` re-runs a recording through the live path (the
  same :class:`~spinemon.core.pipeline.Pipeline` walk as :func:`spinemon.app.replay.replay`)
  and keeps what replay throws away: every sample in SI units and the lumbar
  angles of every sample (``FrameResult.angles``), the labels in effect and the
  limits over time. ``spinemon report`` and ``spinemon export`` both use it.
- :func:`export_csv` writes one row per sample (device time, sequence number,
  acc/gyr per IMU, angles, set/rep/exercise, active events) and an events CSV.
- :func:`export_parquet` writes the same columns, typed, as Parquet (the
  ``parquet`` extra, pyarrow), with the recording's source and settings in the
  files' key-value metadata (``spinemon.source``, ``spinemon.settings``, ...).
- importing other loggers' files is :mod:`spinemon.app.csv_import` (its names are
  re-exported here).

Column names of the samples CSV (:data:`SAMPLE_COLUMNS`): ``t_s`` (device time),
``seq``, ``upper.ax_m_s2`` ... ``upper.gz_rad_s`` (and ``lower.*`` with two
IMUs; sensor frame, board axes), ``flexion_deg``, ``lateral_deg``, ``twist_deg``
(empty before calibration finished), ``set``, ``rep``, ``exercise``,
``labelled`` (1 when ``set``/``exercise`` come from the lifter's label,
0 when the set was found automatically), ``events`` (kinds active at this
sample, ``;``-separated), ``alerts`` (kinds whose alert fired at this sample).
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from spinemon.app.csv_import import (
    AXES,
    SENSORS,
    ColumnMapping,
    CsvImportError,
    ImportResult,
    _sample_column,
    import_csv,
    parse_axes,
    parse_columns,
)

# import lives in spinemon.app.csv_import; re-exported here for older callers
from spinemon.app.extras import install_hint
from spinemon.app.replay import replay
from spinemon.app.results import SessionResult
from spinemon.app.session_summary import EventRow, Summary
from spinemon.core.detect import Limits
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.core.stream import FrameDecoder, SampleBlock
from spinemon.errors import ConfigError, RecordingError
from spinemon.io.atomic import atomic_write, cannot_write
from spinemon.io.recording import KIND_RX, Recording

__all__ = [
    "ColumnMapping",
    "CsvImportError",
    "ImportResult",
    "SampleTrace",
    "SessionTrace",
    "events_table",
    "export_csv",
    "export_parquet",
    "import_csv",
    "parse_axes",
    "parse_columns",
    "samples_table",
    "trace_recording",
]


def sample_columns(sensors: Sequence[str]) -> list[str]:
    """Header of the samples CSV for these sensors."""
    cols = ["t_s", "seq"]
    for s in sensors:
        cols += [_sample_column(s, a) for a in AXES]
    cols += [
        "flexion_deg",
        "lateral_deg",
        "twist_deg",
        "set",
        "rep",
        "exercise",
        "labelled",
        "events",
        "alerts",
    ]
    return cols


SAMPLE_COLUMNS = sample_columns(SENSORS)


# ---------------------------------------------------------------------------
# replay with per-sample angles
# ---------------------------------------------------------------------------
@dataclass
class SampleTrace:
    """Every decoded sample of a recording, in order (duplicates removed).

    ``acc``/``gyr``: sensor id -> (n, 3) in the sensor frame (m/s^2, rad/s).
    ``flexion_deg``/``lateral_deg``/``twist_deg``: the pipeline's angles, NaN
    where it had none yet (calibration). ``label_set`` (0 = no label yet),
    ``exercise``: the lifter's label (or the settings' exercise) in effect
    when the sample's frame was processed.
    """

    seq: np.ndarray
    t: np.ndarray
    acc: dict[str, np.ndarray]
    gyr: dict[str, np.ndarray]
    flexion_deg: np.ndarray
    lateral_deg: np.ndarray
    twist_deg: np.ndarray
    label_set: np.ndarray
    exercise: np.ndarray  # dtype object (str)
    rate_hz: float

    def __len__(self) -> int:
        return len(self.t)

    @property
    def sensors(self) -> tuple[str, ...]:
        return tuple(self.acc)


@dataclass
class SessionTrace:
    """A recording re-run through the live path: the :class:`SessionResult`
    that :func:`spinemon.app.replay.replay` returns, plus per-sample data and
    the limits in effect over time (``limit_changes``: (device time, Limits))."""

    recording: Recording
    result: SessionResult
    samples: SampleTrace
    limit_changes: list[tuple[float, Limits]] = field(default_factory=list)
    labels: list[tuple[float, dict]] = field(default_factory=list)  # (device time of the next sample, label)

    @property
    def summary(self) -> dict:
        """The summary as JSON-ready data; :attr:`session` is the typed one."""
        return self.result.summary

    @property
    def session(self) -> Summary:
        return self.result.session

    def limits_at(self, t: float) -> Limits | None:
        cur = None
        for tc, lim in self.limit_changes:
            if tc <= t:
                cur = lim
            else:
                break
        return cur


def trace_recording(
    recording: Recording,
    settings: PipelineSettings | None = None,
    *,
    on_progress: Callable[[float, float], None] | None = None,
) -> SessionTrace:
    """Re-run ``recording`` through the pipeline exactly as
    :func:`spinemon.app.replay.replay` does (same records, same order, same
    settings), collecting per-sample angles on the way. A resumed recording's
    segments are on one time line with sets numbered on, as in replay's
    joined result (each segment's ``t_offset`` and ``set_offset``).
    ``on_progress(done, total)``: frames replayed so far, of all (a progress bar)."""
    total = float(sum(1 for r in recording.records if r.kind == KIND_RX)) if on_progress else 0.0
    seen = 0
    raw = FrameDecoder()  # decodes the same frames as the pipeline's decoder: same blocks
    blocks: list[SampleBlock] = []
    angles: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    label_sets: list[int] = []
    exercises: list[str] = []
    limit_changes: list[tuple[float, Limits]] = []
    labels: list[tuple[float, dict]] = []
    pending_labels: list[dict] = []
    seg = None  # the segment being replayed (spinemon.app.results.SegmentReplay)

    def on_segment(part) -> None:
        nonlocal raw, seg
        raw = FrameDecoder()  # each segment's pipeline decodes afresh
        seg = part

    def on_frame(frame: bytes, t_host: float, res, pipeline: Pipeline) -> None:
        nonlocal pending_labels, seen
        if on_progress is not None:
            seen += 1
            if seen % 256 == 0:
                on_progress(float(seen), total)
        dt = seg.t_offset if seg is not None else 0.0
        set_offset = seg.set_offset if seg is not None else 0
        for block in (b for b in raw.feed(frame, t_host) if isinstance(b, SampleBlock)):
            n = len(block)
            if n == 0:
                continue
            if dt:
                block = replace(block, t=block.t + dt)
            t0 = float(block.t[0])
            for lab in pending_labels:
                labels.append((t0, lab))
            pending_labels = []
            if not limit_changes or limit_changes[-1][1] != pipeline.limits:
                limit_changes.append((t0, pipeline.limits))
            if res.angles is not None and res.t is not None and len(res.t) == n:
                a = res.angles
                angles.append(
                    (
                        np.asarray(a.flexion_deg, float),
                        np.asarray(a.lateral_deg, float),
                        np.asarray(a.twist_deg, float),
                    )
                )
            else:
                nan = np.full(n, np.nan)
                angles.append((nan, nan, nan))
            blocks.append(block)
            label_sets.append(pipeline.set_number + set_offset if pipeline.set_number else 0)
            exercises.append(pipeline.exercise)

    def on_label(m: dict, pipeline: Pipeline) -> None:
        pending_labels.append(m)

    result = replay(recording, settings, on_frame=on_frame, on_label=on_label, on_segment=on_segment)
    if not blocks:
        raise RecordingError(f"{recording.path} holds no samples")
    sizes = [len(b) for b in blocks]
    # every sensor seen; where the wearable changed its sensors mid-session (a reboot
    # without the lower IMU) the missing one reads NaN
    sensors = tuple(s for s in SENSORS if any(s in b.sensors for b in blocks))

    def column(b: SampleBlock, kind: str, s: str) -> np.ndarray:
        d = b.acc if kind == "acc" else b.gyr
        return d[s] if s in d else np.full((len(b), 3), np.nan)

    samples = SampleTrace(
        seq=np.concatenate([b.seq for b in blocks]),
        t=np.concatenate([b.t for b in blocks]),
        acc={s: np.concatenate([column(b, "acc", s) for b in blocks]) for s in sensors},
        gyr={s: np.concatenate([column(b, "gyr", s) for b in blocks]) for s in sensors},
        flexion_deg=np.concatenate([a[0] for a in angles]),
        lateral_deg=np.concatenate([a[1] for a in angles]),
        twist_deg=np.concatenate([a[2] for a in angles]),
        label_set=np.repeat(np.asarray(label_sets, dtype=np.int64), sizes),
        exercise=np.repeat(np.asarray(exercises, dtype=object), sizes),
        rate_hz=float(blocks[-1].rate_hz),
    )
    return SessionTrace(recording, result, samples, limit_changes, labels)


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------
def _fmt(v: float, spec: str) -> str:
    return "" if v != v else format(v, spec)


def _events_per_sample(t: np.ndarray, events: Iterable[EventRow]) -> tuple[list[list[str]], list[list[str]]]:
    """For each sample: kinds active at it, kinds whose alert fired at it."""
    n = len(t)
    active: list[list[str]] = [[] for _ in range(n)]
    fired: list[list[str]] = [[] for _ in range(n)]
    t_end_all = float(t[-1]) if n else 0.0
    for e in events:
        t0 = e.t_start
        if t0 is None:
            continue
        t1 = e.t_end
        if t1 is None or t1 != t1:
            t1 = t_end_all
        i0 = int(np.searchsorted(t, t0 - 1e-9, "left"))
        i1 = int(np.searchsorted(t, t1 + 1e-9, "right"))
        for i in range(i0, i1):
            active[i].append(str(e.kind))
        ta = e.t_alert
        if ta is not None:
            i = int(np.searchsorted(t, ta - 1e-9, "left"))
            if i < n and abs(float(t[i]) - ta) < 1e-3:
                fired[i].append(str(e.kind))
    return active, fired


def _segment_columns(trace: SessionTrace) -> tuple[list[str], list[str], list[str], list[str]]:
    """Per sample: set, rep, exercise, labelled (as CSV strings)."""
    s = trace.samples
    t = s.t
    n = len(t)
    sets = ["" for _ in range(n)]
    reps = ["" for _ in range(n)]
    labelled = ["0"] * n
    exercise = [str(x) for x in s.exercise]
    for i in np.flatnonzero(s.label_set > 0):
        sets[i] = str(int(s.label_set[i]))
        labelled[i] = "1"
    # unlabelled stretches: the set found automatically, where one is running
    summ = trace.session
    for st in summ.sets:
        if st.labelled or st.t_start is None or st.t_end is None:
            continue
        i0 = int(np.searchsorted(t, st.t_start - 1e-9, "left"))
        i1 = int(np.searchsorted(t, st.t_end + 1e-9, "right"))
        for j in range(i0, i1):
            if labelled[j] == "0":
                sets[j] = str(st.set)
                if st.exercise:
                    exercise[j] = str(st.exercise)
    for r in summ.reps:
        i0 = int(np.searchsorted(t, r.t_start - 1e-9, "left"))
        i1 = int(np.searchsorted(t, r.t_end + 1e-9, "right"))
        for j in range(i0, i1):
            reps[j] = str(r.rep)
            if not sets[j]:
                sets[j] = str(r.set)
    return sets, reps, exercise, labelled


EVENT_COLUMNS = ["kind", "t_start", "t_end", "t_alert", "peak_deg", "limit_deg", "set", "rep", "exercise"]


def write_table_csv(path: Path, rows: list[dict], first: Sequence[str] = ()) -> list[str]:
    """Write dicts as CSV; columns = ``first`` then any other keys in order of
    appearance (so fields added later show up without code changes)."""
    cols = list(first)
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)

    def fill(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in rows:
                w.writerow([_cell(r.get(c)) for c in cols])

    try:
        atomic_write(path, fill)  # whole or not at all
    except OSError as e:
        raise ConfigError(cannot_write(path, e)) from None
    return cols


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return "" if v != v else repr(round(v, 6))
    if isinstance(v, (list, tuple)):
        return ";".join(_cell(x) for x in v)
    if isinstance(v, dict):
        return ";".join(f"{k}={_cell(x)}" for k, x in v.items())
    return str(v)


@dataclass
class ExportResult:
    samples_csv: Path
    events_csv: Path
    rows: int
    events: int
    columns: list[str]


@dataclass
class _PerSample:
    """What the samples table says about each sample beyond the decoded
    values, shared by the CSV and the Parquet export (so they cannot differ)."""

    sets: list[str]
    reps: list[str]
    exercise: list[str]
    labelled: list[str]
    active: list[list[str]]
    fired: list[list[str]]


def _per_sample(trace: SessionTrace) -> _PerSample:
    active, fired = _events_per_sample(trace.samples.t, trace.session.events)
    sets, reps, exercise, labelled = _segment_columns(trace)
    return _PerSample(sets, reps, exercise, labelled, active, fired)


def _write_parquet(pq: Any, table: Any, tmp: str) -> None:
    pq.write_table(table, tmp)


def _check_parent(*paths: Path) -> None:
    for p in paths:
        if not p.parent.exists():
            raise ConfigError(f"directory {p.parent} does not exist; create it first")


def export_csv(
    trace: SessionTrace, out: str | os.PathLike, events_out: str | os.PathLike | None = None
) -> ExportResult:
    """Write the samples CSV (one row per sample, :func:`sample_columns`) to
    ``out`` and the events CSV to ``events_out`` (default: ``<out>-events.csv``)."""
    out = Path(out)
    events_out = Path(events_out) if events_out is not None else out.with_name(out.stem + "-events.csv")
    _check_parent(out, events_out)
    s = trace.samples
    sensors = s.sensors
    cols = sample_columns(sensors)
    events = [e.as_dict() for e in trace.session.events]  # the events CSV's rows
    ps = _per_sample(trace)

    def fill(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for i in range(len(s)):
                row = [f"{s.t[i]:.6f}", str(int(s.seq[i]))]
                for sen in sensors:
                    a, g = s.acc[sen][i], s.gyr[sen][i]
                    row += [
                        f"{a[0]:.8g}",
                        f"{a[1]:.8g}",
                        f"{a[2]:.8g}",
                        f"{g[0]:.8g}",
                        f"{g[1]:.8g}",
                        f"{g[2]:.8g}",
                    ]
                row += [
                    _fmt(s.flexion_deg[i], ".3f"),
                    _fmt(s.lateral_deg[i], ".3f"),
                    _fmt(s.twist_deg[i], ".3f"),
                ]
                row += [
                    ps.sets[i],
                    ps.reps[i],
                    ps.exercise[i],
                    ps.labelled[i],
                    ";".join(ps.active[i]),
                    ";".join(ps.fired[i]),
                ]
                w.writerow(row)

    # both files whole or not at all: a temporary file renamed over the name (a full disk leaves nothing partial)
    try:
        atomic_write(out, fill)
    except OSError as e:
        raise ConfigError(cannot_write(out, e)) from None
    write_table_csv(events_out, events, EVENT_COLUMNS)
    return ExportResult(out, events_out, len(s), len(events), cols)


# ---------------------------------------------------------------------------
# Parquet (the `parquet` extra: pyarrow)
# ---------------------------------------------------------------------------
PARQUET_HINT = f"spinemon export --parquet needs pyarrow: {install_hint('parquet')}"


def _pyarrow():
    """(pyarrow, pyarrow.parquet), or a ConfigError that names the extra."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(PARQUET_HINT) from None
    return pa, pq


#: typed columns of the events table (others that a summary may carry are written as strings)
_EVENT_TYPES = {
    "kind": "string",
    "t_start": "float64",
    "t_end": "float64",
    "t_alert": "float64",
    "peak_deg": "float64",
    "limit_deg": "float64",
    "set": "int64",
    "rep": "int64",
    "exercise": "string",
    "segment": "int64",
}


def parquet_metadata(trace: SessionTrace, table: str) -> dict[bytes, bytes]:
    """The Parquet key-value metadata of an export: the recording's source,
    settings and header, the angle it measures, which table this is."""
    import json

    from spinemon import __version__

    rec = trace.recording
    h = rec.header
    meta = {
        "spinemon.table": table,
        "spinemon.version": __version__,
        "spinemon.io.recording": rec.path.name,
        "spinemon.source": str(h.get("source", "")),
        "spinemon.settings": json.dumps(h.get("settings", {}), sort_keys=True),
        "spinemon.header": json.dumps(h, sort_keys=True, default=str),
        "spinemon.segments": str(len(rec.segments)),
        "spinemon.angle": trace.result.angle_label,
        "spinemon.rate_hz": repr(float(trace.samples.rate_hz)),
    }
    return {k.encode(): v.encode() for k, v in meta.items()}


def _nullable_int(values: Sequence[str]) -> list[int | None]:
    return [int(v) if v else None for v in values]


def samples_table(trace: SessionTrace, ps: _PerSample | None = None):
    """The samples as a pyarrow Table: the CSV's columns, typed (float64
    values and angles with null where there is none, nullable int64 set/rep,
    string exercise, bool labelled, list<string> events/alerts)."""
    pa, _ = _pyarrow()
    s = trace.samples
    ps = ps or _per_sample(trace)
    cols: dict[str, Any] = {
        "t_s": pa.array(s.t, pa.float64()),
        "seq": pa.array(s.seq, pa.int64()),
    }
    for sen in s.sensors:
        for j, ax in enumerate(AXES):
            src = s.acc[sen] if ax.startswith("a") else s.gyr[sen]
            cols[_sample_column(sen, ax)] = pa.array(src[:, j % 3], pa.float64(), from_pandas=True)
    for name in ("flexion_deg", "lateral_deg", "twist_deg"):
        cols[name] = pa.array(getattr(s, name), pa.float64(), from_pandas=True)  # NaN (no angle yet) -> null
    cols["set"] = pa.array(_nullable_int(ps.sets), pa.int64())
    cols["rep"] = pa.array(_nullable_int(ps.reps), pa.int64())
    cols["exercise"] = pa.array(ps.exercise, pa.string())
    cols["labelled"] = pa.array([v == "1" for v in ps.labelled], pa.bool_())
    cols["events"] = pa.array(ps.active, pa.list_(pa.string()))
    cols["alerts"] = pa.array(ps.fired, pa.list_(pa.string()))
    assert list(cols) == sample_columns(s.sensors)
    return pa.table(cols).replace_schema_metadata(parquet_metadata(trace, "samples"))


def events_table(trace: SessionTrace):
    """The events (the summary's, as in the events CSV) as a pyarrow Table."""
    pa, _ = _pyarrow()
    events = [e.as_dict() for e in trace.session.events]  # the events table's rows
    names = list(EVENT_COLUMNS)
    for e in events:
        names += [k for k in e if k not in names]
    cols = {}
    for c in names:
        typ = _EVENT_TYPES.get(c)
        vals = [e.get(c) for e in events]
        if typ is None:
            cols[c] = pa.array([None if v is None else _cell(v) for v in vals], pa.string())
        else:
            cols[c] = pa.array(vals, getattr(pa, typ)())
    return pa.table(cols).replace_schema_metadata(parquet_metadata(trace, "events"))


@dataclass
class ParquetResult:
    samples: Path
    events: Path
    rows: int
    n_events: int
    columns: list[str]


def parquet_folder(dest: str | os.PathLike | None) -> Path | None:
    """The folder ``export --parquet DEST`` writes into, or None when ``DEST``
    names a file: a folder that exists, a name written with a trailing ``/``,
    or a new name without a ``.parquet`` suffix (``exports/``, ``exports``).
    The folder may not exist yet (the command makes it)."""
    if not dest:
        return None
    d = Path(dest)
    if d.is_dir() or str(dest).endswith(("/", os.sep)):
        return d
    if not d.exists() and d.suffix.lower() != ".parquet":
        return d
    return None


def parquet_paths(recording: str | os.PathLike, dest: str | os.PathLike | None) -> tuple[Path, Path]:
    """Where ``export --parquet [DEST]`` writes: ``DEST`` a folder
    (:func:`parquet_folder`) -> ``DEST/<recording>.parquet``; a file -> that
    file; none -> next to the recording. The events go beside it as
    ``<name>-events.parquet``."""
    src = Path(recording)
    folder = parquet_folder(dest)
    if not dest:
        out = src.with_suffix(".parquet")
    elif folder is not None:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder} is a file, not a folder; choose another --parquet")
        out = folder / (src.stem + ".parquet")
    else:
        out = Path(dest)
    return out, out.with_name(out.stem + "-events.parquet")


def export_parquet(
    trace: SessionTrace, out: str | os.PathLike, events_out: str | os.PathLike | None = None
) -> ParquetResult:
    """Write the samples (:func:`samples_table`) to ``out`` and the events
    (:func:`events_table`) to ``events_out`` (default ``<out>-events.parquet``),
    each with the recording's settings and source in its key-value metadata."""
    _, pq = _pyarrow()
    out = Path(out)
    events_out = Path(events_out) if events_out is not None else out.with_name(out.stem + "-events.parquet")
    _check_parent(out, events_out)
    samples = samples_table(trace)
    events = events_table(trace)
    for table, path in ((samples, out), (events, events_out)):
        try:
            atomic_write(
                path, functools.partial(_write_parquet, pq, table)
            )  # never half-written under the final name
        except OSError as e:
            raise ConfigError(cannot_write(path, e)) from None
    return ParquetResult(out, events_out, samples.num_rows, events.num_rows, samples.column_names)
