"""Recordings <-> CSV.

- :func:`trace_recording` re-runs a recording through the live path (the
  same :class:`~spinemon.pipeline.Pipeline` walk as :func:`spinemon.session.replay`)
  and keeps what replay throws away: every sample in SI units and the lumbar
  angles of every sample (``FrameResult.angles``), the labels in effect and the
  limits over time. ``spinemon report`` and ``spinemon export`` both use it.
- :func:`export_csv` writes one row per sample (device time, sequence number,
  acc/gyr per IMU, angles, set/rep/exercise, active events) and an events CSV.
- importing other loggers' files is :mod:`spinemon.csv_import` (its names are
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

import argparse
import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from spinemon.detect import Limits
from spinemon.errors import ConfigError, RecordingError
from spinemon.pipeline import Pipeline, PipelineSettings
from spinemon.recording import Recording, load
from spinemon.session import SessionResult, replay
from spinemon.stream import FrameDecoder, SampleBlock

# import lives in spinemon.csv_import; re-exported here for older callers
from spinemon.csv_import import (  # noqa: F401
    AXES,
    SENSORS,
    _sample_column,
    ColumnMapping,
    CsvImportError,
    ImportResult,
    add_import_arguments,
    import_csv,
    import_main,
    parse_axes,
    parse_columns,
)

__all__ = [
    "CsvImportError",
    "SampleTrace",
    "SessionTrace",
    "trace_recording",
    "export_csv",
    "ColumnMapping",
    "parse_columns",
    "parse_axes",
    "ImportResult",
    "import_csv",
    "add_export_arguments",
    "export_main",
    "add_import_arguments",
    "import_main",
]

def sample_columns(sensors: Sequence[str]) -> list[str]:
    """Header of the samples CSV for these sensors."""
    cols = ["t_s", "seq"]
    for s in sensors:
        cols += [_sample_column(s, a) for a in AXES]
    cols += ["flexion_deg", "lateral_deg", "twist_deg", "set", "rep", "exercise", "labelled", "events", "alerts"]
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
    that :func:`spinemon.session.replay` returns, plus per-sample data and
    the limits in effect over time (``limit_changes``: (device time, Limits))."""

    recording: Recording
    result: SessionResult
    samples: SampleTrace
    limit_changes: list[tuple[float, Limits]] = field(default_factory=list)
    labels: list[tuple[float, dict]] = field(default_factory=list)  # (device time of the next sample, label)

    @property
    def summary(self) -> dict:
        return self.result.summary

    def limits_at(self, t: float) -> Limits | None:
        cur = None
        for tc, lim in self.limit_changes:
            if tc <= t:
                cur = lim
            else:
                break
        return cur


def trace_recording(recording: Recording, settings: PipelineSettings | None = None) -> SessionTrace:
    """Re-run ``recording`` through the pipeline exactly as
    :func:`spinemon.session.replay` does (same records, same order, same
    settings), collecting per-sample angles on the way."""
    raw = FrameDecoder()  # decodes the same frames as the pipeline's decoder: same blocks
    blocks: list[SampleBlock] = []
    angles: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    label_sets: list[int] = []
    exercises: list[str] = []
    limit_changes: list[tuple[float, Limits]] = []
    labels: list[tuple[float, dict]] = []
    pending_labels: list[dict] = []

    def on_frame(frame: bytes, t_host: float, res, pipeline: Pipeline) -> None:
        nonlocal pending_labels
        for block in (b for b in raw.feed(frame, t_host) if isinstance(b, SampleBlock)):
            n = len(block)
            if n == 0:
                continue
            t0 = float(block.t[0])
            for lab in pending_labels:
                labels.append((t0, lab))
            pending_labels = []
            if not limit_changes or limit_changes[-1][1] != pipeline.limits:
                limit_changes.append((t0, pipeline.limits))
            if res.angles is not None and res.t is not None and len(res.t) == n:
                a = res.angles
                angles.append((np.asarray(a.flexion_deg, float), np.asarray(a.lateral_deg, float), np.asarray(a.twist_deg, float)))
            else:
                nan = np.full(n, np.nan)
                angles.append((nan, nan, nan))
            blocks.append(block)
            label_sets.append(pipeline.set_number or 0)
            exercises.append(pipeline.exercise)

    def on_label(m: dict, pipeline: Pipeline) -> None:
        pending_labels.append(m)

    result = replay(recording, settings, on_frame=on_frame, on_label=on_label)
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


def _events_per_sample(t: np.ndarray, events: Iterable[dict]) -> tuple[list[list[str]], list[list[str]]]:
    """For each sample: kinds active at it, kinds whose alert fired at it."""
    n = len(t)
    active: list[list[str]] = [[] for _ in range(n)]
    fired: list[list[str]] = [[] for _ in range(n)]
    t_end_all = float(t[-1]) if n else 0.0
    for e in events:
        t0 = e.get("t_start")
        if t0 is None:
            continue
        t1 = e.get("t_end")
        if t1 is None or t1 != t1:
            t1 = t_end_all
        i0 = int(np.searchsorted(t, t0 - 1e-9, "left"))
        i1 = int(np.searchsorted(t, t1 + 1e-9, "right"))
        for i in range(i0, i1):
            active[i].append(str(e["kind"]))
        ta = e.get("t_alert")
        if ta is not None:
            i = int(np.searchsorted(t, ta - 1e-9, "left"))
            if i < n and abs(float(t[i]) - ta) < 1e-3:
                fired[i].append(str(e["kind"]))
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
    for st in trace.summary.get("sets", []):
        if st.get("labelled") or st.get("t_start") is None or st.get("t_end") is None:
            continue
        i0 = int(np.searchsorted(t, st["t_start"] - 1e-9, "left"))
        i1 = int(np.searchsorted(t, st["t_end"] + 1e-9, "right"))
        for i in range(i0, i1):
            if labelled[i] == "0":
                sets[i] = str(st["set"])
                if st.get("exercise"):
                    exercise[i] = str(st["exercise"])
    for r in trace.summary.get("reps", []):
        i0 = int(np.searchsorted(t, r["t_start"] - 1e-9, "left"))
        i1 = int(np.searchsorted(t, r["t_end"] + 1e-9, "right"))
        for i in range(i0, i1):
            reps[i] = str(r["rep"])
            if not sets[i]:
                sets[i] = str(r["set"])
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
    try:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in rows:
                w.writerow([_cell(r.get(c)) for c in cols])
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror}") from None
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


def export_csv(trace: SessionTrace, out: str | os.PathLike, events_out: str | os.PathLike | None = None) -> ExportResult:
    """Write the samples CSV (one row per sample, :func:`sample_columns`) to
    ``out`` and the events CSV to ``events_out`` (default: ``<out>-events.csv``)."""
    out = Path(out)
    events_out = Path(events_out) if events_out is not None else out.with_name(out.stem + "-events.csv")
    for p in (out, events_out):
        if not p.parent.exists():
            raise ConfigError(f"directory {p.parent} does not exist; create it first")
    s = trace.samples
    sensors = s.sensors
    cols = sample_columns(sensors)
    events = trace.summary["events"]
    active, fired = _events_per_sample(s.t, events)
    sets, reps, exercise, labelled = _segment_columns(trace)
    try:
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for i in range(len(s)):
                row = [f"{s.t[i]:.6f}", str(int(s.seq[i]))]
                for sen in sensors:
                    a, g = s.acc[sen][i], s.gyr[sen][i]
                    row += [f"{a[0]:.8g}", f"{a[1]:.8g}", f"{a[2]:.8g}", f"{g[0]:.8g}", f"{g[1]:.8g}", f"{g[2]:.8g}"]
                row += [_fmt(s.flexion_deg[i], ".3f"), _fmt(s.lateral_deg[i], ".3f"), _fmt(s.twist_deg[i], ".3f")]
                row += [sets[i], reps[i], exercise[i], labelled[i], ";".join(active[i]), ";".join(fired[i])]
                w.writerow(row)
    except OSError as e:
        raise ConfigError(f"cannot write {out}: {e.strerror}") from None
    write_table_csv(events_out, events, EVENT_COLUMNS)
    return ExportResult(out, events_out, len(s), len(events), cols)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spinemon export``."""
    parser.add_argument("file", help="a .spinrec recording")
    parser.add_argument("--csv", nargs="?", const="", default=None, metavar="OUT",
                        help="write the samples CSV to OUT (default: the recording's name with .csv) and the events to OUT-events.csv")


def export_main(args: argparse.Namespace) -> int:
    """``spinemon export FILE --csv [OUT]``."""
    if args.csv is None:
        raise ConfigError("choose an output format: --csv [OUT]")
    src = Path(args.file)
    out = Path(args.csv) if args.csv else src.with_suffix(".csv")
    if out.resolve() == src.resolve():
        raise ConfigError(f"{out} is the recording itself; choose another OUT")
    trace = trace_recording(load(src))
    res = export_csv(trace, out)
    print(f"wrote {res.samples_csv}: {res.rows} samples, {len(res.columns)} columns ({trace.result.angle_label})")
    print(f"wrote {res.events_csv}: {res.events} events")
    return 0
