"""Real loggers' files -> a spinemon recording (``spinemon import``).

One job: read a table of IMU samples as another logger wrote it, fix what can
be fixed with one note per fix, refuse what cannot with one line that says
what to do, and write a normal recording (real SAMPLES frames, int16 with
ranges chosen to fit the data, RX records with synthetic host times, label
records from set/exercise columns, header ``source`` = ``"import"``).

What a file may look like (each fix is reported in :attr:`ImportResult.notes`):

- metadata lines before the column header (``Acquisition frequency: 100 Hz``),
  tab, comma or semicolon delimiters (found from the data rows), blank lines,
  trailing extra columns, a cut-off last row;
- several people or sets in one file: ``where=[("subject", "3")]`` keeps
  the matching rows;
- time in one column (``t``, seconds) or split across columns (``t_s``,
  ``t_ms``, ``t_us``, summed); rows out of time order are sorted, repeated
  timestamps dropped, irregular timestamps resampled onto an even grid
  (``resample_hz``, or automatically when the jitter would put two rows in one
  sample slot);
- the accelerometer in g, m/s^2 or raw counts (``acc_unit="counts"``,
  ``acc_scale`` = counts per g or ``"auto"``: from the magnitude at rest).
  The unit check compares the magnitude at rest with 1 g, so a wrong unit
  never passes silently;
- two IMUs in two files (``sources={"upper": f1, "lower": f2}``, the same
  single-IMU mapping for both), merged on time, or on sample index when the
  files have no time column.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

import spinemon_protocol as proto
from spinemon.app import argtypes
from spinemon.core.calibration import CalibrationSettings
from spinemon.core.detect import PROFILES
from spinemon.errors import ConfigError, RecordingError, SpinemonError
from spinemon.core.pipeline import PipelineSettings
from spinemon.io.recording import RecordingWriter
from spinemon.app.session import header_for
from spinemon.core.stream import G
from spinemon.core.unilateral import parse_exercise

__all__ = [
    "CsvImportError",
    "ColumnMapping",
    "parse_columns",
    "default_mapping",
    "parse_axes",
    "parse_where",
    "ImportResult",
    "import_csv",
    "add_import_arguments",
    "import_main",
]

AXES = ("ax", "ay", "az", "gx", "gy", "gz")
SENSORS = ("upper", "lower")
SAMPLES_PER_FRAME = 8  # what the firmware sends (fits one notification with two IMUs)
HOST_LATENCY_S = 0.01  # synthetic host receive time = device time of the frame's last sample + this
ACC_UNITS = {"g": G, "m/s2": 1.0, "m/s^2": 1.0, "ms2": 1.0, "m_s2": 1.0, "counts": None}
GYR_UNITS = {"dps": math.pi / 180.0, "deg/s": math.pi / 180.0, "rad/s": 1.0, "rad_s": 1.0}
ACC_FS_G = (2, 4, 8, 16)
GYR_FS_DPS = (125, 250, 500, 1000, 2000)
LABEL_KEYS = ("set", "exercise", "labelled")
TIME_KEYS = {"t": 1.0, "time": 1.0, "t_s": 1.0, "t_ms": 1e-3, "t_us": 1e-6}
DELIMITERS = {"\t": "tab", ";": "semicolon", ",": "comma"}
REST_TOLERANCE = 0.2  # the magnitude at rest must be within 20 % of 1 g


class CsvImportError(SpinemonError):
    """A file that cannot be imported: missing column, non-numeric cell,
    implausible unit, bad mapping. The message names the row and column."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds what. ``imu[sensor][axis]`` for axis in ax..gz;
    ``time``: the seconds column (key ``t``); ``time_parts``: (column, scale to
    seconds) pairs summed into the time (keys ``t_s``, ``t_ms``, ``t_us``);
    label columns ``set``/``exercise``/``labelled`` (optional)."""

    imu: dict[str, dict[str, str]]
    time: str | None = None
    set: str | None = None
    exercise: str | None = None
    labelled: str | None = None
    time_parts: tuple[tuple[str, float], ...] = ()

    @property
    def times(self) -> tuple[tuple[str, float], ...]:
        """All time columns with their scale to seconds (empty: no time column)."""
        return ((self.time, 1.0),) + self.time_parts if self.time else self.time_parts

    def as_dict(self) -> dict:
        d: dict[str, str] = {}
        if self.time:
            d["t"] = self.time
        for col, scale in self.time_parts:
            d[{1.0: "t_s", 1e-3: "t_ms", 1e-6: "t_us"}[scale]] = col
        for s, axes in self.imu.items():
            for a, c in axes.items():
                d[f"{s}.{a}"] = c
        for k in LABEL_KEYS:
            if getattr(self, k):
                d[k] = getattr(self, k)
        return d


def parse_columns(spec: str) -> ColumnMapping:
    """Parse ``t=time,ax=accX,...`` (one IMU) or ``upper.ax=...,lower.ax=...``
    (two); ``t_s=``/``t_ms=``/``t_us=`` split the time over columns (summed);
    ``set=``, ``exercise=``, ``labelled=`` name optional label columns."""
    imu: dict[str, dict[str, str]] = {}
    other: dict[str, str] = {}
    parts_t: list[tuple[str, float]] = []
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
        elif not dot and key in TIME_KEYS:
            full = "t" if key in ("t", "time") else key
        elif not dot and key in LABEL_KEYS:
            full = key
        else:
            raise CsvImportError(f"--columns: unknown key {key!r}; use t (or t_s, t_ms, t_us), ax, ay, az, gx, gy, gz (upper./lower. prefixes for two IMUs), set, exercise")
        if full in seen:
            raise CsvImportError(f"--columns: {key!r} is given twice")
        seen.add(full)
        if full.startswith(SENSORS):
            s, a = full.split(".")
            imu.setdefault(s, {})[a] = col
        elif full in ("t_s", "t_ms", "t_us"):
            parts_t.append((col, TIME_KEYS[full]))
        else:
            other[full] = col
    if "t" in other and parts_t:
        raise CsvImportError("--columns: give the time either as t=COLUMN or split as t_s=/t_ms=/t_us=, not both")
    if "upper" not in imu:
        raise CsvImportError("--columns: the upper (or only) IMU needs ax, ay, az, gx, gy, gz")
    for s, axes in imu.items():
        missing = [a for a in AXES if a not in axes]
        if missing:
            pre = "" if s == "upper" and "lower" not in imu else f"{s}."
            raise CsvImportError(f"--columns: {s} IMU lacks {', '.join(pre + a for a in missing)}")
    return ColumnMapping(
        dict(sorted(imu.items(), key=lambda kv: SENSORS.index(kv[0]))),
        other.get("t"),
        other.get("set"),
        other.get("exercise"),
        other.get("labelled"),
        tuple(parts_t),
    )


def _sample_column(sensor: str, axis: str) -> str:
    unit = "m_s2" if axis[0] == "a" else "rad_s"
    return f"{sensor}.{axis}_{unit}"


def default_mapping(header: Sequence[str]) -> ColumnMapping | None:
    """The mapping for a CSV written by ``spinemon export`` (None if it is not one)."""
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


def parse_where(items: Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    """``["subject=3", "set=2"]`` -> ``(("subject", "3"), ("set", "2"))``."""
    out = []
    for item in items or ():
        col, sep, value = item.partition("=")
        if not sep or not col.strip():
            raise CsvImportError(f"--where {item!r}: give COLUMN=VALUE, e.g. --where subject=3")
        out.append((col.strip(), value.strip()))
    return tuple(out)


# ---------------------------------------------------------------------------
# reading the table
# ---------------------------------------------------------------------------
@dataclass
class _Table:
    path: Path
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (file line number, cells)
    delimiter: str
    notes: list[str]
    rate_hz: float | None = None  # a sample rate stated in the lines before the header ("... 100 Hz")

    def column(self, name: str, what: str) -> int:
        try:
            return self.header.index(name)
        except ValueError:
            raise CsvImportError(f"{self.path}: column {name!r} (for {what}) is not in the header; columns are: {', '.join(self.header)}") from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _read_table(path: Path) -> _Table:
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
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    if not numbered:
        raise CsvImportError(f"{path} is empty or has no header row; give a CSV with a header row (see 'spinemon import --help')")
    notes: list[str] = []
    # the delimiter: the one that splits the last rows (data) into the most consistent, widest rows
    tail = [ln for _, ln in numbered[-200:]]
    best, best_score = ",", (-1, -1)
    for d in DELIMITERS:
        counts = [len(r) for r in csv.reader(tail, delimiter=d)]
        width = max(set(counts), key=counts.count)
        score = (counts.count(width) if width > 1 else 0, width)
        if score > best_score:
            best, best_score = d, score
    delim = best
    parsed = [(no, [c.strip() for c in cells]) for (no, _), cells in zip(numbered, csv.reader([ln for _, ln in numbered], delimiter=delim))]
    # the header: the last non-numeric row before the first data row
    first_data = None
    for k, (_, cells) in enumerate(parsed):
        if len(cells) > 1 and sum(_is_number(c) for c in cells) > len(cells) / 2:
            first_data = k
            break
    if first_data is None:
        raise CsvImportError(f"{path} has no data rows (no rows of numbers); give a CSV of IMU samples with a header row")
    if first_data == 0:
        raise CsvImportError(f"{path}: the first row holds numbers, not column names; add a header row (see 'spinemon import --help')")
    header = parsed[first_data - 1][1]
    skipped = first_data - 1
    stated = None
    for _, ln in numbered[:skipped]:
        m = re.search(r"(\d+(?:\.\d+)?)\s*Hz\b", ln, re.IGNORECASE)
        if m:
            stated = float(m.group(1))
            break
    if skipped:
        notes.append(f"skipped {skipped} line(s) before the column header (line {parsed[first_data - 1][0]})")
    if delim != ",":
        notes.append(f"columns separated by {DELIMITERS[delim]}s")
    blank = len(lines) - len(numbered) - sum(1 for ln in lines[: parsed[first_data - 1][0]] if not ln.strip())
    if blank > 0:
        notes.append(f"skipped {blank} blank line(s)")
    rows = parsed[first_data:]
    wider = sum(1 for _, r in rows if len(r) > len(header))
    if wider:
        notes.append(f"{wider} row(s) have more cells than the header; the extra trailing cells were ignored")
    return _Table(path, header, rows, delim, notes, stated)


def _filter_where(tab: _Table, where: Sequence[tuple[str, str]]) -> None:
    for col, value in where:
        ci = tab.column(col, "--where")
        try:
            fv = float(value)
        except ValueError:
            fv = None

        def keep(r: list[str]) -> bool:
            cell = r[ci] if ci < len(r) else ""
            if cell == value:
                return True
            if fv is not None:
                try:
                    return float(cell) == fv
                except ValueError:
                    return False
            return False

        before = len(tab.rows)
        seen = sorted({r[ci] for _, r in tab.rows if ci < len(r)})
        tab.rows = [(no, r) for no, r in tab.rows if keep(r)]
        if not tab.rows:
            shown = ", ".join(seen[:12]) + (", ..." if len(seen) > 12 else "")
            raise CsvImportError(f"{tab.path}: no rows have {col}={value} (--where); the column holds: {shown}")
        tab.notes.append(f"--where {col}={value}: kept {len(tab.rows)} of {before} rows")


def _numbers(tab: _Table, cols: Sequence[tuple[str, str]]) -> np.ndarray:
    """(rows, len(cols)) floats of the named columns; a cut-off last row is dropped with a note."""
    idx = [(key, col, tab.column(col, key)) for key, col in cols]
    need = max(ci for _, _, ci in idx) + 1
    if tab.rows and len(tab.rows[-1][1]) < need and len(tab.rows) > 1:
        tab.rows = tab.rows[:-1]
        tab.notes.append(f"dropped the last row (line {tab.rows[-1][0] + 1} or later): it is cut off")
    data = np.empty((len(tab.rows), len(idx)))
    for j, (key, col, ci) in enumerate(idx):
        for i, (ln, r) in enumerate(tab.rows):
            try:
                cell = r[ci]
            except IndexError:
                raise CsvImportError(f"{tab.path}: row {ln} has no value in column {col!r} (only {len(r)} cells)") from None
            try:
                v = float(cell)
            except ValueError:
                shown = cell if cell.strip() else "an empty cell"
                raise CsvImportError(f"{tab.path}: row {ln}, column {col!r} ({key}): {shown!r} is not a number") from None
            if not math.isfinite(v):
                raise CsvImportError(f"{tab.path}: row {ln}, column {col!r} ({key}): {cell!r} is not a finite number")
            data[i, j] = v
    return data


# ---------------------------------------------------------------------------
# units and time
# ---------------------------------------------------------------------------
def _unit(name: str, table: dict, what: str) -> float | None:
    try:
        return table[name.strip().lower()]
    except KeyError:
        names = [k for k in table if "^" not in k and "_" not in k and k != "ms2"]
        raise CsvImportError(f"unknown {what} unit {name!r}; use {' or '.join(names)}") from None


def _rest_magnitude(acc: np.ndarray, gyr: np.ndarray, n_win: int) -> float:
    """|a| at rest, in the file's units: the median magnitude over the quietest tenth of
    the windows (least variation of the accelerometer; a constant gyro offset does not matter)."""
    mag = np.linalg.norm(acc, axis=1)
    n_win = max(2, min(n_win, len(mag)))
    k = len(mag) // n_win
    if k < 2:
        return float(np.median(mag))
    win = mag[: k * n_win].reshape(k, n_win)
    spread = win.std(axis=1)
    quiet = np.argsort(spread)[: max(1, k // 10)]
    return float(np.median(win[quiet]))


def _acc_scale(path: Path, unit: str, scale: str | float | None, raw_rest: float, notes: list[str]) -> float:
    """Multiplier from the file's accelerometer unit to m/s^2."""
    factor = _unit(unit, ACC_UNITS, "accelerometer")
    if factor is not None:
        if scale is not None:
            raise CsvImportError("--acc-scale is for --acc-unit counts; leave it out with --acc-unit g or m/s2")
        return factor
    if scale is None:
        raise CsvImportError("--acc-unit counts needs --acc-scale N (counts per g) or --acc-scale auto")
    if isinstance(scale, str) and scale.strip().lower() == "auto":
        if not raw_rest > 0:
            raise CsvImportError(f"{path}: the accelerometer reads zero at rest; --acc-scale auto cannot work (give --acc-scale N)")
        notes.append(f"accelerometer scale from the magnitude at rest: {raw_rest:.4g} counts per g")
        return G / raw_rest
    try:
        n = float(scale)
    except (TypeError, ValueError):
        raise CsvImportError(f"--acc-scale {scale!r}: give counts per g (a number > 0) or auto") from None
    if not (math.isfinite(n) and n > 0):
        raise CsvImportError(f"--acc-scale {scale!r}: give counts per g (a number > 0) or auto")
    return G / n


def _check_units(path: Path, cols: str, rest_m_s2: float, acc_unit: str, peak_gyr: float, gcols: str, gyr_unit: str) -> None:
    """The magnitude at rest must be 1 g (within 20 %): catches g read as m/s^2, counts read as
    either, and deg/s read as rad/s."""
    if abs(rest_m_s2 / G - 1.0) > REST_TOLERANCE:
        hint = ""
        if abs(rest_m_s2 - 1.0) < REST_TOLERANCE:
            hint = " is the unit g? (--acc-unit g)"
        elif abs(rest_m_s2 / (G * G) - 1.0) < REST_TOLERANCE:
            hint = " is the unit m/s2? (--acc-unit m/s2)"
        else:
            hint = " are these raw counts? (--acc-unit counts --acc-scale auto, or --acc-scale N counts per g)"
        raise CsvImportError(f"{path}: columns {cols}: at rest the accelerometer reads {rest_m_s2:.3g} m/s^2 with --acc-unit {acc_unit}, "
                             f"not about 9.8 m/s^2 (1 g):{hint}")
    if peak_gyr > math.radians(4000):
        raise CsvImportError(f"{path}: columns {gcols}: the gyroscope peaks at {math.degrees(peak_gyr):.0f} deg/s with --gyr-unit {gyr_unit}; "
                             "no body moves that fast: is the unit dps? (--gyr-unit dps)")


def _resample(t: np.ndarray, values: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation onto an even grid from t[0]; grid points farther than 1.5 source
    intervals from any source row are left out (a gap stays a gap). Returns (t, values, source row)."""
    period = 1.0 / rate
    grid = t[0] + np.arange(int(math.floor((t[-1] - t[0]) / period + 1e-9)) + 1) * period
    j = np.clip(np.searchsorted(t, grid), 1, len(t) - 1)
    lo, hi = t[j - 1], t[j]
    span = np.where(hi > lo, hi - lo, 1.0)
    w = np.clip((grid - lo) / span, 0.0, 1.0)[:, None]
    out = values[j - 1] * (1.0 - w) + values[j] * w
    typical = float(np.median(np.diff(t))) if len(t) > 1 else period
    near = np.minimum(np.abs(grid - lo), np.abs(hi - grid)) <= 1.5 * max(typical, period)
    src = np.where(w[:, 0] < 0.5, j - 1, j)
    return grid[near], out[near], src[near]


# ---------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------
@dataclass
class ImportResult:
    """What :func:`import_csv` wrote, and every fix it applied (``notes``)."""

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
    notes: list[str] = field(default_factory=list)


def _choose_fs(peak: float, scales: Sequence[int], unit: float) -> int:
    for fs in scales:
        if peak <= fs * unit * 32767 / 32768:
            return fs
    return scales[-1]


@dataclass
class _Source:
    """One table read into SI arrays (one or two IMUs), before the time base is fixed."""

    t: np.ndarray | None
    acc: dict[str, np.ndarray]
    gyr: dict[str, np.ndarray]
    rows: list
    table: _Table


def _load_source(path: Path, mapping: ColumnMapping | None, *, where, acc_unit, acc_scale, gyr_unit, rot, rate_hint, notes, prefix="") -> tuple[_Source, ColumnMapping]:
    tab = _read_table(path)
    notes.extend(prefix + n for n in tab.notes)
    tab.notes = []
    if mapping is None:
        mapping = default_mapping(tab.header)
        if mapping is None:
            raise CsvImportError(f"{path}: not a spinemon export; say which column is what with --columns (e.g. t=time,ax=accX,ay=accY,az=accZ,gx=gyroX,gy=gyroY,gz=gyroZ)")
    for key, col in mapping.as_dict().items():
        tab.column(col, key)
    _filter_where(tab, where)
    notes.extend(prefix + n for n in tab.notes)
    tab.notes = []
    if not tab.rows:
        raise CsvImportError(f"{path} has a header but no data rows")
    sensors = list(mapping.imu)
    numeric = [(f"t:{col}", col) for col, _ in mapping.times] + [(f"{s}.{a}", mapping.imu[s][a]) for s in sensors for a in AXES]
    data = _numbers(tab, numeric)
    notes.extend(prefix + n for n in tab.notes)
    nt = len(mapping.times)
    t = None
    if nt:
        t = sum(data[:, k] * scale for k, (_, scale) in enumerate(mapping.times))
    gyr_factor = _unit(gyr_unit, GYR_UNITS, "gyroscope")
    raw_acc = {s: data[:, nt + 6 * k : nt + 6 * k + 3] for k, s in enumerate(sensors)}
    gyr = {s: data[:, nt + 6 * k + 3 : nt + 6 * k + 6] * gyr_factor @ rot.T for k, s in enumerate(sensors)}
    rate_guess = rate_hint or (1.0 / float(np.median(np.diff(t))) if t is not None and len(t) > 1 and np.median(np.diff(t)) > 0 else 100.0)
    acc = {}
    for s in sensors:
        raw_rest = _rest_magnitude(raw_acc[s], gyr[s], int(round(rate_guess)))
        factor = _acc_scale(path, acc_unit, acc_scale, raw_rest, notes)
        acc[s] = raw_acc[s] * factor @ rot.T
        cols = "/".join(mapping.imu[s][a] for a in ("ax", "ay", "az"))
        gcols = "/".join(mapping.imu[s][a] for a in ("gx", "gy", "gz"))
        _check_units(path, cols, raw_rest * factor, acc_unit, float(np.max(np.abs(gyr[s]))), gcols, gyr_unit)
    return _Source(t, acc, gyr, tab.rows, tab), mapping


def _fix_time(src: _Source, path: Path, notes: list[str], prefix: str = "") -> None:
    """Sort rows into time order and drop repeated timestamps (both counted in the notes)."""
    t = src.t
    if t is None or len(t) < 2:
        return
    order = np.argsort(t, kind="stable")
    back = int(np.count_nonzero(np.diff(t) < 0))
    if back:
        notes.append(f"{prefix}{back} row(s) were out of time order: sorted by time")
    t = t[order]
    keep = np.ones(len(t), dtype=bool)
    keep[1:] = np.diff(t) > 0
    dup = int(np.count_nonzero(~keep))
    if dup:
        notes.append(f"{prefix}{dup} row(s) repeat the timestamp of the row before: dropped")
    sel = order[keep]
    src.t = t[keep]
    src.acc = {s: a[sel] for s, a in src.acc.items()}
    src.gyr = {s: g[sel] for s, g in src.gyr.items()}
    src.rows = [src.rows[i] for i in sel]


def import_csv(
    path: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    columns: ColumnMapping | str | None = None,
    rate_hz: float | None = None,
    acc_unit: str = "m/s2",
    acc_scale: str | float | None = None,
    gyr_unit: str = "rad/s",
    axes: str | None = None,
    where: Sequence[tuple[str, str]] = (),
    resample_hz: float | None = None,
    sources: dict[str, str | os.PathLike] | None = None,
    settings: PipelineSettings | None = None,
) -> ImportResult:
    """Convert a table of IMU samples into a session recording at ``out``.

    ``columns``: a :class:`ColumnMapping` or its text form (see
    :func:`parse_columns`); None = the column names ``spinemon export`` writes.
    Without a time column ``rate_hz`` is required; with one, the rate is the
    median sample interval (unless ``rate_hz`` is given) and each sample's slot
    (sequence number) is its time / period, so gaps become lost samples.
    ``sources``: two files, ``{"upper": f1, "lower": f2}``, read with the same
    single-IMU mapping (``path`` is then None). Raises :class:`CsvImportError`
    naming the row (file line) and column.
    """
    out = Path(out)
    settings = settings or PipelineSettings()
    if out.exists():
        raise RecordingError(f"{out} already exists; choose another --out or delete it")
    if isinstance(columns, str):
        mapping = parse_columns(columns)
    else:
        mapping = columns
    rot = parse_axes(axes) if axes else np.eye(3)
    for name, hz in (("--rate", rate_hz), ("--resample", resample_hz)):
        if hz is not None and not (isinstance(hz, (int, float)) and math.isfinite(hz) and 1.0 <= hz <= 10000.0):
            raise CsvImportError(f"{name} {hz:g} Hz is out of range (1..10000)")
    notes: list[str] = []
    opts = dict(where=where, acc_unit=acc_unit, acc_scale=acc_scale, gyr_unit=gyr_unit, rot=rot, rate_hint=rate_hz, notes=notes)
    if sources:
        if set(sources) != {"upper", "lower"}:
            raise CsvImportError("two files: give upper=FILE lower=FILE")
        if mapping is not None and "lower" in mapping.imu:
            raise CsvImportError("with upper=FILE lower=FILE, --columns maps one IMU (ax=..., no upper./lower. prefixes); the same mapping reads both files")
        parts = {}
        for s in SENSORS:
            p = Path(sources[s])
            src, mapping = _load_source(p, mapping, prefix=f"{s}: ", **opts)
            _fix_time(src, p, notes, prefix=f"{s}: ")
            parts[s] = src
        src = _merge(parts, rate_hz, notes)
        path = Path(sources["upper"])
        shown = {"upper": Path(sources["upper"]).name, "lower": Path(sources["lower"]).name}
        mapping = ColumnMapping({"upper": mapping.imu["upper"], "lower": mapping.imu["upper"]}, mapping.time, mapping.set, mapping.exercise, mapping.labelled, mapping.time_parts)
    else:
        path = Path(path)
        src, mapping = _load_source(path, mapping, **opts)
        _fix_time(src, path, notes)
        shown = path.name
    if src.t is None and rate_hz is None and src.table.rate_hz is not None and 1.0 <= src.table.rate_hz <= 10000.0:
        rate_hz = src.table.rate_hz
        notes.append(f"sample rate {rate_hz:g} Hz as stated above the header (no time column mapped)")
    if src.t is None and rate_hz is None:
        raise CsvImportError("no time column mapped: give the sample rate with --rate HZ (or map t=COLUMN)")
    sensors = list(src.acc)
    n = len(src.rows)

    # time base
    if src.t is not None:
        t = src.t
        if n < 2 and rate_hz is None:
            raise CsvImportError(f"{path}: one row cannot give a sample rate; pass --rate HZ")
        if rate_hz is None:
            # the mean interval over the steps that skip no sample (under 1.9x the median): exact
            # for jittered host timestamps (the jitter averages out) and for gaps (left out)
            dt = np.diff(t)
            med = float(np.median(dt))
            rate_hz = 1.0 / float(np.mean(dt[dt < 1.9 * med])) if med > 0 else 0.0
            if not (1.0 <= rate_hz <= 10000.0):
                raise CsvImportError(f"{path}: the median sample interval gives {rate_hz:g} Hz; is the time in seconds? (use t_ms=/t_us= for milliseconds or microseconds, or pass --rate HZ)")
    else:
        t = np.arange(n) / rate_hz
    source_row = np.arange(n)
    if src.t is not None and resample_hz is None and n > 1:
        slot = np.rint((t - t[0]) * rate_hz).astype(np.int64)
        if np.any(np.diff(slot) <= 0):
            resample_hz = rate_hz
            notes.append(f"timestamps are irregular (jitter above half a sample period at {rate_hz:.4g} Hz): resampled onto an even {rate_hz:.4g} Hz grid")
        elif resample_hz is None:
            pass
    elif resample_hz is not None:
        notes.append(f"resampled onto an even {resample_hz:.4g} Hz grid (--resample)")
    if resample_hz is not None:
        if src.t is None:
            raise CsvImportError("--resample needs a time column (map t=COLUMN)")
        stacked = np.concatenate([src.acc[s] for s in sensors] + [src.gyr[s] for s in sensors], axis=1)
        t, vals, source_row = _resample(t, stacked, resample_hz)
        k = len(sensors)
        src.acc = {s: vals[:, 3 * i : 3 * i + 3] for i, s in enumerate(sensors)}
        src.gyr = {s: vals[:, 3 * (k + i) : 3 * (k + i) + 3] for i, s in enumerate(sensors)}
        rate_hz = resample_hz
        n = len(t)
    period_us = int(round(1e6 / rate_hz))
    t_offset = 0.0
    if not (0.0 <= t[0] < 3600.0):  # keep a spinemon export's device times; rebase wall-clock stamps
        t_offset = float(t[0])
    t_dev = t - t_offset
    slot = np.rint((t_dev - t_dev[0]) / (period_us * 1e-6)).astype(np.int64)
    same = np.flatnonzero(np.diff(slot) <= 0)
    if len(same):  # only with an explicit --rate that disagrees with the timestamps
        i = int(same[0]) + 1
        raise CsvImportError(f"{path}: row {src.rows[source_row[i]][0]}: time {t[i]:g} falls in the same sample slot as the row before "
                             f"at --rate {rate_hz:g} Hz; leave out --rate (the rate comes from the timestamps) or pass --resample HZ")
    labels = _label_columns(src.table, mapping, [src.rows[j] for j in source_row])
    acc, gyr = src.acc, src.gyr

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
    if clipped:
        notes.append(f"{clipped} value(s) beyond 16 g / 2000 dps were clipped")
    vals = np.clip(vals, -32768, 32767).astype(np.int64)
    per = vals.shape[1] + 1
    packed = np.empty((n, per), dtype="<i2")
    packed[:, :-1] = vals
    packed[:, -1] = proto.ANGLE_NONE
    mask = proto.SENSOR_UPPER | (proto.SENSOR_LOWER if "lower" in sensors else 0)
    spf = min(SAMPLES_PER_FRAME, proto.max_samples_per_frame(mask))
    if t_offset:
        notes.append(f"times rebased by {t_offset:g} s (device time starts at 0)")

    info = {
        "csv": shown,
        "columns": mapping.as_dict(),
        "acc_unit": acc_unit,
        "acc_scale": acc_scale,
        "gyr_unit": gyr_unit,
        "axes": axes or "x,y,z",
        "where": [f"{c}={v}" for c, v in where],
        "rate_hz": round(1e6 / period_us, 6),
        "acc_fs_g": afs,
        "gyr_fs_dps": gfs,
        "rows": len(src.rows),
        "samples": n,
        "clipped_values": clipped,
        "t_offset_s": t_offset,
        "labels": len(labels),
        "notes": list(notes),
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
    return ImportResult(out, n, frames, len(labels), 1e6 / period_us, afs, gfs, clipped, t_offset, hdr, notes)


def _merge(parts: dict[str, _Source], rate_hz: float | None, notes: list[str]) -> _Source:
    """Two one-IMU sources -> one two-IMU source: on time (the lower IMU interpolated onto the
    upper's timestamps over the overlap), or on sample index when there is no time column."""
    up, lo = parts["upper"], parts["lower"]
    if (up.t is None) != (lo.t is None):
        raise CsvImportError("one file has a time column and the other not; map the same columns in both")
    if up.t is None:
        if rate_hz is None:
            raise CsvImportError("two files without a time column are merged on sample index: give the sample rate with --rate HZ")
        n = min(len(up.rows), len(lo.rows))
        if len(up.rows) != len(lo.rows):
            notes.append(f"merged on sample index: the files have {len(up.rows)} and {len(lo.rows)} rows; kept the first {n}")
        return _Source(None, {"upper": up.acc["upper"][:n], "lower": lo.acc["upper"][:n]}, {"upper": up.gyr["upper"][:n], "lower": lo.gyr["upper"][:n]}, up.rows[:n], up.table)
    t0, t1 = max(up.t[0], lo.t[0]), min(up.t[-1], lo.t[-1])
    if not t1 > t0:
        raise CsvImportError("the two files do not overlap in time; check that both use the same clock (or leave out the time column and give --rate)")
    keep = (up.t >= t0) & (up.t <= t1)
    if not keep.all():
        notes.append(f"merged on time: kept the {int(keep.sum())} upper rows inside the lower file's time span")
    sel = np.flatnonzero(keep)
    t = up.t[sel]
    lo_acc = np.stack([np.interp(t, lo.t, lo.acc["upper"][:, k]) for k in range(3)], axis=1)
    lo_gyr = np.stack([np.interp(t, lo.t, lo.gyr["upper"][:, k]) for k in range(3)], axis=1)
    return _Source(t, {"upper": up.acc["upper"][sel], "lower": lo_acc}, {"upper": up.gyr["upper"][sel], "lower": lo_gyr}, [up.rows[i] for i in sel], up.table)


def _label_columns(tab: _Table, mapping: ColumnMapping, rows: list) -> dict[int, dict]:
    """Sample index -> label record, where the lifter's (set, exercise) changes."""
    if mapping.set is None and mapping.exercise is None:
        return {}
    path = tab.path
    index = {h: i for i, h in enumerate(tab.header)}
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
        side = None
        if ex and ex not in PROFILES:  # "lunge left": a unilateral exercise with its side
            try:
                ex, side = parse_exercise(ex)
            except ConfigError as e:
                raise CsvImportError(f"{path}: row {ln}, column {mapping.exercise!r} (exercise): {e}") from None
        key = (number, ex or None, side)
        if key != prev:
            lab: dict = {"type": "label", "set": number}
            if ex:
                lab["exercise"] = ex
            if side:
                lab["side"] = side
            out[i] = lab
        prev = key
    return out


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spinemon import``."""
    parser.add_argument("csv", nargs="+", metavar="FILE",
                        help="a CSV/TSV file of IMU samples (one row per sample, a header row), or two: upper=FILE1 lower=FILE2")
    parser.add_argument("--columns", default=None,
                        help="KEY=COLUMN,... with keys t (seconds; or t_s, t_ms, t_us summed), ax, ay, az, gx, gy, gz "
                             "(upper./lower. prefixes for two IMUs in one file) and optional set, exercise; "
                             "default: the columns 'spinemon export' writes")
    parser.add_argument("--rate", type=float, default=None, metavar="HZ", help="sample rate (required without a time column)")
    parser.add_argument("--resample", type=float, default=None, metavar="HZ", help="resample onto an even grid at HZ (automatic when timestamps are irregular)")
    parser.add_argument("--acc-unit", default="m/s2", help="accelerometer unit: g, m/s2 or counts (default m/s2)")
    parser.add_argument("--acc-scale", default=None, metavar="N|auto", help="with --acc-unit counts: counts per g, or auto (from the magnitude at rest)")
    parser.add_argument("--gyr-unit", default="rad/s", help="gyroscope unit: dps or rad/s (default rad/s)")
    parser.add_argument("--axes", default=None, help="source axes as board x,y,z, a signed permutation, e.g. x,-z,y or --axes=-x,-y,z (default x,y,z)")
    parser.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE", help="keep only rows where COLUMN is VALUE (repeatable), e.g. one person of a combined file")
    parser.add_argument("--exercise", default="generic", choices=sorted(PROFILES), metavar="EXERCISE", help="exercise assumed where the file has no labels (default generic)")
    parser.add_argument("--limit", action="append", type=argtypes.limit_override, default=[], metavar="EXERCISE.LIMIT=VALUE", help="a limit override stored with the recording, e.g. curl.extension_deg=-10 (repeatable)")
    parser.add_argument("--out", default=None, help="recording to write (default: the file's name with .spinrec; must not exist)")


def _split_sources(items: Sequence[str]) -> tuple[Path | None, dict[str, str] | None]:
    named = {}
    plain = []
    for it in items:
        key, sep, value = it.partition("=")
        if sep and key in SENSORS and value:
            if key in named:
                raise ConfigError(f"{key}=FILE is given twice")
            named[key] = value
        else:
            plain.append(it)
    if named:
        if plain or set(named) != set(SENSORS):
            raise ConfigError("two IMUs in two files: give exactly upper=FILE1 lower=FILE2")
        return None, named
    if len(plain) != 1:
        raise ConfigError("give one file, or two as upper=FILE1 lower=FILE2")
    return Path(plain[0]), None


def import_main(args: argparse.Namespace) -> int:
    """``spinemon import FILE --rate HZ --columns ...`` or ``spinemon import upper=F1 lower=F2 ...``."""
    from spinemon.io.profile_store import merge_limit_overrides

    src, sources = _split_sources(args.csv)
    first = Path(sources["upper"]) if sources else src
    out = Path(args.out) if args.out else first.with_suffix(".spinrec")
    overrides = merge_limit_overrides(args.limit)
    # a spinemon export (no --columns) keeps spinemon's guided calibration (neutral, then the
    # range-of-motion bends); another logger's session had no such sweep: neutral only, default range
    settings = PipelineSettings(exercise=args.exercise, limit_overrides=overrides, calibration=CalibrationSettings(rom=args.columns is None))
    res = import_csv(src, out, columns=args.columns, rate_hz=args.rate, acc_unit=args.acc_unit, acc_scale=args.acc_scale, gyr_unit=args.gyr_unit,
                     axes=args.axes, where=parse_where(args.where), resample_hz=args.resample, sources=sources, settings=settings)
    print(f"wrote {res.path}: {res.samples} samples in {res.frames} frames at {res.rate_hz:g} Hz, "
          f"ranges {res.acc_fs_g} g / {res.gyr_fs_dps} dps, {res.labels} set label(s)")
    for note in res.notes:
        print(f"  note: {note}")
    print(f"Replay it: spinemon replay {res.path}   Report: spinemon report {res.path}")
    return 0
