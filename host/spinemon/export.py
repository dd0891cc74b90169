"""Recordings <-> CSV.

- :func:`trace_recording` re-runs a recording through the live path (the
  same :class:`~spinemon.pipeline.Pipeline` walk as :func:`spinemon.session.replay`)
  and keeps what replay throws away: every sample in SI units and the lumbar
  angles of every sample (``FrameResult.angles``), the labels in effect and the
  limits over time. ``spinemon report`` and ``spinemon export`` both use it.
- :func:`export_csv` writes one row per sample (device time, sequence number,
  acc/gyr per IMU, angles, set/rep/exercise, active events) and an events CSV.
- :func:`import_csv` turns a CSV from another logger (or a spinemon export)
  into a normal session recording: real SAMPLES frames (int16, ranges chosen to
  fit the data), RX records with synthetic host times, label records from the
  set/exercise columns, and a header whose ``source`` is ``"import"``.

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
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

import spinemon_protocol as proto
from spinemon.detect import PROFILES, Limits
from spinemon.errors import ConfigError, RecordingError, SpinemonError
from spinemon.pipeline import Pipeline, PipelineSettings
from spinemon.recording import Recording, RecordingWriter, load
from spinemon.session import SessionResult, header_for, replay
from spinemon.stream import G, FrameDecoder, SampleBlock

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

AXES = ("ax", "ay", "az", "gx", "gy", "gz")
SENSORS = ("upper", "lower")
SAMPLES_PER_FRAME = 8  # what the firmware sends (fits one notification with two IMUs)
HOST_LATENCY_S = 0.01  # synthetic host receive time = device time of the frame's last sample + this


class CsvImportError(SpinemonError):
    """A CSV that cannot be imported: missing column, non-numeric cell,
    implausible unit, bad mapping. The message names the row and column."""



def _sample_column(sensor: str, axis: str) -> str:
    unit = "m_s2" if axis[0] == "a" else "rad_s"
    return f"{sensor}.{axis}_{unit}"


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
    sensors = blocks[0].sensors
    for b in blocks:
        if b.sensors != sensors:
            raise RecordingError(f"{recording.path}: the wearable changed its sensors mid-session ({'+'.join(sensors)} -> {'+'.join(b.sensors)}); not supported")
    samples = SampleTrace(
        seq=np.concatenate([b.seq for b in blocks]),
        t=np.concatenate([b.t for b in blocks]),
        acc={s: np.concatenate([b.acc[s] for b in blocks]) for s in sensors},
        gyr={s: np.concatenate([b.gyr[s] for b in blocks]) for s in sensors},
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
# import
# ---------------------------------------------------------------------------
ACC_UNITS = {"g": G, "m/s2": 1.0, "m/s^2": 1.0, "ms2": 1.0, "m_s2": 1.0}
GYR_UNITS = {"dps": math.pi / 180.0, "deg/s": math.pi / 180.0, "rad/s": 1.0, "rad_s": 1.0}
ACC_FS_G = (2, 4, 8, 16)
GYR_FS_DPS = (125, 250, 500, 1000, 2000)
LABEL_KEYS = ("set", "exercise", "labelled")


@dataclass(frozen=True)
class ColumnMapping:
    """Which CSV column holds what. ``imu[sensor][axis]`` for axis in
    ax..gz; ``time`` (optional); label columns ``set``/``exercise``/``labelled``
    (optional)."""

    imu: dict[str, dict[str, str]]
    time: str | None = None
    set: str | None = None
    exercise: str | None = None
    labelled: str | None = None

    def as_dict(self) -> dict:
        d: dict[str, str] = {}
        if self.time:
            d["t"] = self.time
        for s, axes in self.imu.items():
            for a, c in axes.items():
                d[f"{s}.{a}"] = c
        for k in LABEL_KEYS:
            if getattr(self, k):
                d[k] = getattr(self, k)
        return d


def parse_columns(spec: str) -> ColumnMapping:
    """Parse ``t=time,ax=accX,...`` (one IMU) or ``upper.ax=...,lower.ax=...``
    (two); ``set=``, ``exercise=``, ``labelled=`` name optional label columns."""
    imu: dict[str, dict[str, str]] = {}
    other: dict[str, str] = {}
    seen: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, col = part.partition("=")
        key, col = key.strip(), col.strip()
        if not sep or not key or not col:
            raise CsvImportError(f"--columns: {part!r} is not KEY=COLUMN (e.g. ax=accX)")
        sensor, dot, axis = key.rpartition(".")
        if not dot:
            sensor, axis = "", key
        if axis in AXES:
            sensor = sensor or "upper"
            if sensor not in SENSORS:
                raise CsvImportError(f"--columns: {key!r}: the IMU prefix must be 'upper.' or 'lower.'")
            full = f"{sensor}.{axis}"
        elif not dot and key in ("t", "time"):
            full = "t"
        elif not dot and key in LABEL_KEYS:
            full = key
        else:
            raise CsvImportError(f"--columns: unknown key {key!r}; use t, ax, ay, az, gx, gy, gz (upper./lower. prefixes for two IMUs), set, exercise")
        if full in seen:
            raise CsvImportError(f"--columns: {key!r} is given twice")
        seen.add(full)
        if full.startswith(SENSORS):
            s, a = full.split(".")
            imu.setdefault(s, {})[a] = col
        else:
            other[full] = col
    if "upper" not in imu:
        raise CsvImportError("--columns: the upper (or only) IMU needs ax, ay, az, gx, gy, gz")
    for s, axes in imu.items():
        missing = [a for a in AXES if a not in axes]
        if missing:
            pre = "" if s == "upper" and "lower" not in imu else f"{s}."
            raise CsvImportError(f"--columns: {s} IMU lacks {', '.join(pre + a for a in missing)}")
    return ColumnMapping(dict(sorted(imu.items(), key=lambda kv: SENSORS.index(kv[0]))), other.get("t"), other.get("set"), other.get("exercise"), other.get("labelled"))


def default_mapping(header: Sequence[str]) -> ColumnMapping | None:
    """The mapping for a CSV written by :func:`export_csv` (None if it is not one)."""
    imu = {}
    for s in SENSORS:
        cols = {a: _sample_column(s, a) for a in AXES}
        if all(c in header for c in cols.values()):
            imu[s] = cols
    if "upper" not in imu or "t_s" not in header:
        return None
    label = {k: (k if k in header else None) for k in LABEL_KEYS}
    return ColumnMapping(imu, "t_s", **label)


def parse_axes(spec: str) -> np.ndarray:
    """``x,-z,y`` -> the 3x3 matrix M with board = M @ source: board x is
    source x, board y is -source z, board z is source y. Only rotations
    (no mirror images) are accepted."""
    parts = [p.strip().lower() for p in spec.split(",")]
    if len(parts) != 3:
        raise CsvImportError(f"--axes {spec!r}: give three signed source axes, e.g. x,-z,y")
    m = np.zeros((3, 3))
    used = set()
    for i, p in enumerate(parts):
        sign = -1.0 if p.startswith("-") else 1.0
        name = p.lstrip("+-")
        if name not in ("x", "y", "z") or name in used:
            raise CsvImportError(f"--axes {spec!r}: each of x, y, z must appear once (with an optional '-')")
        used.add(name)
        m[i, "xyz".index(name)] = sign
    if np.linalg.det(m) < 0:
        raise CsvImportError(f"--axes {spec!r} is a mirror image, not a rotation; flip one more sign (both frames are right-handed)")
    return m


def _unit(name: str, table: dict[str, float], what: str) -> float:
    try:
        return table[name.strip().lower()]
    except KeyError:
        raise CsvImportError(f"unknown {what} unit {name!r}; use {' or '.join(k for k in table if '^' not in k and '_' not in k and k != 'ms2')}") from None


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CsvImportError(f"{path}: no such file; check the path (give a CSV of IMU samples with a header row)") from None
    except IsADirectoryError:
        raise CsvImportError(f"{path} is a directory, not a CSV file; give the CSV file itself") from None
    except UnicodeDecodeError:
        raise CsvImportError(f"{path} is not a text (UTF-8) CSV file; give a CSV of IMU samples with a header row (see 'spinemon import --help')") from None
    except OSError as e:
        raise CsvImportError(f"{path}: cannot read ({e.strerror}); check its permissions") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CsvImportError(f"{path} is empty or has no header row; give a CSV with a header row (see 'spinemon import --help')")
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
        delim = dialect.delimiter
    except csv.Error:
        delim = ","
    rows = list(csv.reader(lines, delimiter=delim))
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:]]
    return header, body


@dataclass
class ImportResult:
    """What :func:`import_csv` wrote."""

    path: Path
    samples: int
    frames: int
    labels: int
    rate_hz: float
    acc_fs_g: int
    gyr_fs_dps: int
    clipped_values: int
    t_offset_s: float
    header: dict


def _choose_fs(peak: float, scales: Sequence[int], unit: float) -> int:
    for fs in scales:
        if peak <= fs * unit * 32767 / 32768:
            return fs
    return scales[-1]


def import_csv(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    columns: ColumnMapping | str | None = None,
    rate_hz: float | None = None,
    acc_unit: str = "m/s2",
    gyr_unit: str = "rad/s",
    axes: str | None = None,
    settings: PipelineSettings | None = None,
) -> ImportResult:
    """Convert a CSV of IMU samples into a session recording at ``out``.

    ``columns``: a :class:`ColumnMapping` or its text form (see
    :func:`parse_columns`); None = the column names :func:`export_csv` writes.
    Without a time column ``rate_hz`` is required; with one, the rate is the
    median sample interval (unless ``rate_hz`` is given) and each sample's slot
    (sequence number) is its time / period, so gaps become lost samples.
    Raises :class:`CsvImportError` naming the row (file line) and column.
    """
    path = Path(path)
    out = Path(out)
    settings = settings or PipelineSettings()
    if out.exists():
        raise RecordingError(f"{out} already exists; choose another --out or delete it")
    header, body = _read_csv(path)
    if isinstance(columns, str):
        mapping = parse_columns(columns)
    elif columns is None:
        mapping = default_mapping(header)
        if mapping is None:
            raise CsvImportError(f"{path}: not a spinemon export; say which column is what with --columns (e.g. t=time,ax=accX,ay=accY,az=accZ,gx=gyroX,gy=gyroY,gz=gyroZ)")
    else:
        mapping = columns
    acc_scale = _unit(acc_unit, ACC_UNITS, "accelerometer")
    gyr_scale = _unit(gyr_unit, GYR_UNITS, "gyroscope")
    rot = parse_axes(axes) if axes else np.eye(3)
    if rate_hz is not None and not (1.0 <= rate_hz <= 10000.0):
        raise CsvImportError(f"--rate {rate_hz:g} Hz is out of range (1..10000)")
    if mapping.time is None and rate_hz is None:
        raise CsvImportError("no time column mapped: give the sample rate with --rate HZ (or map t=COLUMN)")

    index = {h: i for i, h in enumerate(header)}
    wanted = mapping.as_dict()
    for key, col in wanted.items():
        if col not in index:
            raise CsvImportError(f"{path}: column {col!r} (for {key}) is not in the header; columns are: {', '.join(header)}")
    if not body or all(not any(c.strip() for c in r) for r in body):
        raise CsvImportError(f"{path} has a header but no data rows")

    sensors = list(mapping.imu)
    numeric = ([("t", mapping.time)] if mapping.time else []) + [(f"{s}.{a}", mapping.imu[s][a]) for s in sensors for a in AXES]
    rows = [(ln, r) for ln, r in enumerate(body, start=2) if any(c.strip() for c in r)]
    n = len(rows)
    data = np.empty((n, len(numeric)))
    for j, (key, col) in enumerate(numeric):
        ci = index[col]
        for i, (ln, r) in enumerate(rows):
            try:
                cell = r[ci]
            except IndexError:
                raise CsvImportError(f"{path}: row {ln} has no value in column {col!r} (only {len(r)} cells)") from None
            try:
                v = float(cell)
            except ValueError:
                shown = cell if cell.strip() else "an empty cell"
                raise CsvImportError(f"{path}: row {ln}, column {col!r} ({key}): {shown!r} is not a number") from None
            if not math.isfinite(v):
                raise CsvImportError(f"{path}: row {ln}, column {col!r} ({key}): {cell!r} is not a finite number")
            data[i, j] = v
    off = 1 if mapping.time else 0
    acc = {s: data[:, off + 6 * k : off + 6 * k + 3] * acc_scale @ rot.T for k, s in enumerate(sensors)}
    gyr = {s: data[:, off + 6 * k + 3 : off + 6 * k + 6] * gyr_scale @ rot.T for k, s in enumerate(sensors)}
    _check_units(path, mapping, acc, gyr, acc_unit, gyr_unit)

    # time base
    if mapping.time:
        t = data[:, 0]
        dt = np.diff(t)
        bad = np.flatnonzero(dt <= 0)
        if len(bad):
            i = int(bad[0]) + 1
            raise CsvImportError(f"{path}: row {rows[i][0]}, column {mapping.time!r}: time {t[i]:g} does not increase (previous row {t[i - 1]:g})")
        if rate_hz is None:
            if n < 2:
                raise CsvImportError(f"{path}: one row cannot give a sample rate; pass --rate HZ")
            rate_hz = 1.0 / float(np.median(dt))
            if not (1.0 <= rate_hz <= 10000.0):
                raise CsvImportError(f"{path}: column {mapping.time!r}: the median sample interval gives {rate_hz:g} Hz; is the time in seconds? (pass --rate HZ)")
    else:
        t = np.arange(n) / rate_hz
    period_us = int(round(1e6 / rate_hz))
    t_offset = 0.0
    if not (0.0 <= t[0] < 3600.0):  # keep a spinemon export's device times; rebase wall-clock stamps
        t_offset = float(t[0])
    t_dev = t - t_offset
    slot = np.rint((t_dev - t_dev[0]) / (period_us * 1e-6)).astype(np.int64)
    same = np.flatnonzero(np.diff(slot) <= 0)
    if len(same):
        i = int(same[0]) + 1
        raise CsvImportError(f"{path}: row {rows[i][0]}, column {mapping.time!r}: time {t[i]:g} falls in the same sample slot as the row before "
                             f"(jitter above half a period at {rate_hz:g} Hz); pass the true --rate or resample")

    labels = _label_columns(path, mapping, header, index, rows)

    # ranges to fit the data, then int16
    peak_acc = max(float(np.max(np.abs(acc[s]))) for s in sensors)
    peak_gyr = max(float(np.max(np.abs(gyr[s]))) for s in sensors)
    afs = _choose_fs(peak_acc, ACC_FS_G, G)
    gfs = _choose_fs(peak_gyr, GYR_FS_DPS, math.pi / 180.0)
    ranges = proto.ranges_byte(afs, gfs)
    acc_lsb = afs / 32768.0 * G
    gyr_lsb = gfs / 32768.0 * (math.pi / 180.0)
    cols = []
    for s in sensors:
        cols += [acc[s] / acc_lsb, gyr[s] / gyr_lsb]
    vals = np.rint(np.concatenate(cols, axis=1))
    clipped = int(np.count_nonzero((vals > 32767) | (vals < -32768)))
    vals = np.clip(vals, -32768, 32767).astype(np.int64)
    per = vals.shape[1] + 1
    packed = np.empty((n, per), dtype="<i2")
    packed[:, :-1] = vals
    packed[:, -1] = proto.ANGLE_NONE
    mask = proto.SENSOR_UPPER | (proto.SENSOR_LOWER if "lower" in sensors else 0)
    spf = min(SAMPLES_PER_FRAME, proto.max_samples_per_frame(mask))

    info = {
        "csv": path.name,
        "columns": mapping.as_dict(),
        "acc_unit": acc_unit,
        "gyr_unit": gyr_unit,
        "axes": axes or "x,y,z",
        "rate_hz": round(1e6 / period_us, 6),
        "acc_fs_g": afs,
        "gyr_fs_dps": gfs,
        "rows": n,
        "clipped_values": clipped,
        "t_offset_s": t_offset,
        "labels": len(labels),
    }
    hdr = header_for(settings, "import", {"import": info})
    frames = 0
    t_us0 = int(round(t_dev[0] * 1e6))
    with RecordingWriter(out, hdr) as w:
        i = 0
        while i < n:
            # a frame holds consecutive slots, at most spf, aligned to the slot grid
            # (as the firmware's frames are), and ends where a label takes effect
            j = i + 1
            while j < n and j - i < spf and slot[j] == slot[j - 1] + 1 and (slot[j] % spf) != 0 and j not in labels:
                j += 1
            if i in labels:
                w.meta(labels[i], float(t_dev[i]) + HOST_LATENCY_S - 1e-3)
            seq = int(slot[i])
            frame = proto.encode_samples(seq, t_us0 + seq * period_us, period_us, mask, ranges, 0, j - i, packed[i:j].tobytes())
            w.frame_in(frame, float(t_dev[j - 1]) + HOST_LATENCY_S)
            frames += 1
            i = j
    return ImportResult(out, n, frames, len(labels), 1e6 / period_us, afs, gfs, clipped, t_offset, hdr)


def _check_units(path: Path, mapping: ColumnMapping, acc: dict, gyr: dict, acc_unit: str, gyr_unit: str) -> None:
    """Catch the usual unit mix-ups: g read as m/s^2 and back, deg/s read as rad/s."""
    for s in acc:
        mag = float(np.median(np.linalg.norm(acc[s], axis=1)))
        cols = "/".join(mapping.imu[s][a] for a in ("ax", "ay", "az"))
        if mag < 3.0:
            raise CsvImportError(f"{path}: columns {cols}: the median acceleration is {mag:.2f} m/s^2 with --acc-unit {acc_unit}; "
                                 "at rest an accelerometer reads about 9.8 m/s^2 (1 g): is the unit g? (--acc-unit g)")
        if mag > 30.0:
            raise CsvImportError(f"{path}: columns {cols}: the median acceleration is {mag:.1f} m/s^2 with --acc-unit {acc_unit}; "
                                 "at rest an accelerometer reads about 9.8 m/s^2: is the unit m/s2? (--acc-unit m/s2)")
        peak = float(np.max(np.abs(gyr[s])))
        if peak > math.radians(4000):
            gcols = "/".join(mapping.imu[s][a] for a in ("gx", "gy", "gz"))
            raise CsvImportError(f"{path}: columns {gcols}: the gyroscope peaks at {math.degrees(peak):.0f} deg/s with --gyr-unit {gyr_unit}; "
                                 "no body moves that fast: is the unit dps? (--gyr-unit dps)")


def _label_columns(path: Path, mapping: ColumnMapping, header: list[str], index: dict[str, int], rows: list) -> dict[int, dict]:
    """Row index -> label record, where the lifter's (set, exercise) changes."""
    if mapping.set is None and mapping.exercise is None:
        return {}
    out: dict[int, dict] = {}
    prev = None
    for i, (ln, r) in enumerate(rows):
        def cell(col: str | None) -> str:
            if col is None:
                return ""
            ci = index[col]
            return r[ci].strip() if ci < len(r) else ""

        if mapping.labelled is not None and cell(mapping.labelled) not in ("1", "true", "yes"):
            prev = None
            continue
        st, ex = cell(mapping.set), cell(mapping.exercise)
        if not st and not ex:
            prev = None
            continue
        number = None
        if st:
            try:
                number = int(float(st))
            except ValueError:
                raise CsvImportError(f"{path}: row {ln}, column {mapping.set!r} (set): {st!r} is not a set number") from None
            if number < 1 or number != float(st):
                raise CsvImportError(f"{path}: row {ln}, column {mapping.set!r} (set): {st!r} is not a set number (1, 2, ...)")
        if ex and ex not in PROFILES:
            raise CsvImportError(f"{path}: row {ln}, column {mapping.exercise!r} (exercise): unknown exercise {ex!r}; choose one of {', '.join(PROFILES)}")
        key = (number, ex or None)
        if key != prev:
            lab: dict = {"type": "label", "set": number}
            if ex:
                lab["exercise"] = ex
            out[i] = lab
        prev = key
    return out


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


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spinemon import``."""
    parser.add_argument("csv", help="a CSV file of IMU samples (one row per sample, a header row)")
    parser.add_argument("--columns", default=None,
                        help="KEY=COLUMN,... with keys t, ax, ay, az, gx, gy, gz (upper./lower. prefixes for two IMUs) and optional set, exercise; "
                             "default: the columns 'spinemon export' writes")
    parser.add_argument("--rate", type=float, default=None, metavar="HZ", help="sample rate (required without a time column)")
    parser.add_argument("--acc-unit", default="m/s2", help="accelerometer unit: g or m/s2 (default m/s2)")
    parser.add_argument("--gyr-unit", default="rad/s", help="gyroscope unit: dps or rad/s (default rad/s)")
    parser.add_argument("--axes", default=None, help="source axes as board x,y,z, a signed permutation, e.g. x,-z,y (default x,y,z)")
    parser.add_argument("--exercise", default="generic", help="exercise assumed where the CSV has no labels (default generic)")
    parser.add_argument("--out", default=None, help="recording to write (default: the CSV's name with .spinrec; must not exist)")


def import_main(args: argparse.Namespace) -> int:
    """``spinemon import CSV --rate HZ --columns ...``."""
    src = Path(args.csv)
    out = Path(args.out) if args.out else src.with_suffix(".spinrec")
    settings = PipelineSettings(exercise=args.exercise)
    res = import_csv(src, out, columns=args.columns, rate_hz=args.rate, acc_unit=args.acc_unit, gyr_unit=args.gyr_unit, axes=args.axes, settings=settings)
    print(f"wrote {res.path}: {res.samples} samples in {res.frames} frames at {res.rate_hz:g} Hz, "
          f"ranges {res.acc_fs_g} g / {res.gyr_fs_dps} dps, {res.labels} set label(s)")
    if res.clipped_values:
        print(f"  note: {res.clipped_values} value(s) beyond 16 g / 2000 dps were clipped")
    if res.t_offset_s:
        print(f"  note: times rebased by {res.t_offset_s:g} s (device time starts at 0)")
    print(f"Replay it: spinemon replay {res.path}   Report: spinemon report {res.path}")
    return 0
