"""The imported samples as series: the mapped columns read from one or
several files (upper/lower, acc/gyr, a long file pivoted), their time base
fixed (sorted, repeats dropped, whole-second times, clock jumps) and
combined onto one time line, and the session's start date.

Part of :mod:`spinemon.app.csv_import` (its module docstring: what files look like).
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from spinemon.app.csv_import.columns import (
    AXES,
    EARLIEST_DATE,
    KINDS,
    SENSORS,
    TIME_NAMES,
    XYZ,
    ColumnMapping,
    default_mapping,
    parse_date,
)
from spinemon.app.csv_import.table import _Columns, _encoding, _Layout, _layout, _stream
from spinemon.app.csv_import.units import _rare, _repair
from spinemon.app.words import plural
from spinemon.errors import CsvImportError, CsvUsageError


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
    rows: int = 0  # data rows read (after --where)
    session_start: float | None = None  # Unix time of the first sample, when the file or --date gave one


def _choose_fs(peak: float, scales: Sequence[int], unit: float) -> int:
    for fs in scales:
        if peak <= fs * unit * 32767 / 32768:
            return fs
    return scales[-1]


@dataclass
class _Series:
    """Samples of one table (or one sensor type of it), in the file's units: ``acc``/``gyr``
    per sensor (upper, lower), one row each."""

    t: np.ndarray | None
    acc: dict[str, np.ndarray]
    gyr: dict[str, np.ndarray]
    rows: np.ndarray  # index into the table's columns
    cols: _Columns
    names: dict[str, list[str]]  # "upper.acc" ... -> the column names (for messages)

    def take(self, sel: np.ndarray) -> None:
        self.t = None if self.t is None else self.t[sel]
        self.acc = {s: a[sel] for s, a in self.acc.items()}
        self.gyr = {s: g[sel] for s, g in self.gyr.items()}
        self.rows = self.rows[sel]

    @property
    def lines(self) -> np.ndarray:
        return self.cols.lines[self.rows]


def _read(
    path: Path, mapping: ColumnMapping | None, *, where, encoding, no_header, notes, prefix="", kind=None
) -> tuple[_Columns, _Layout, ColumnMapping]:
    local: list[str] = []
    enc = _encoding(path, encoding, local)
    lay = _layout(path, enc, no_header, local)
    if mapping is None:
        mapping = None if lay.positional else default_mapping(lay.header)
        if mapping is None:
            if kind:
                raise CsvUsageError(
                    f"{path}: say which column is what with --columns (e.g. t=1,x=2,y=3,z=4: one sensor type per file)"
                )
            hint = (
                "t=1,ax=2,ay=3,az=4,gx=5,gy=6,gz=7"
                if lay.positional
                else "t=time,ax=accX,ay=accY,az=accZ,gx=gyroX,gy=gyroY,gz=gyroZ"
            )
            raise CsvUsageError(
                f"{path}: not a spinemon export; say which column is what with --columns (e.g. {hint})"
            )
    if kind and not mapping.xyz:
        raise CsvUsageError(
            "with acc=FILE gyr=FILE each file holds one sensor type: map it with x=,y=,z= (e.g. --columns t=1,x=2,y=3,z=4)"
        )
    if kind and mapping.is_long:
        raise CsvUsageError("a long file (type=) holds every sensor: give it alone, not as acc=/gyr=")
    for key, col in mapping.columns():
        lay.column(col, key)
    cols = _stream(lay, mapping, where, local)
    notes.extend(prefix + n for n in local)
    return cols, lay, mapping


def _times(cols: _Columns, mapping: ColumnMapping) -> np.ndarray | None:
    if not mapping.times:
        return None
    t = np.zeros(len(cols.lines))
    for col, scale in mapping.times:
        key = "t" if (col, scale) == (mapping.time, 1.0) else TIME_NAMES[scale]
        t = t + cols.num[key] * scale
    return t


def _xyz(
    path: Path, cols: _Columns, keys: Sequence[str], notes: list[str], names: Sequence[str], prefix: str
) -> np.ndarray:
    """Three columns as (n, 3) floats; a few empty cells are filled from their neighbours."""
    x = np.stack([cols.num[k] for k in keys], axis=1)
    miss = sum(cols.missing.get(k, 0) for k in keys)
    if miss:
        bad = ~np.isfinite(x)
        if miss > _rare(x):
            r, c = np.argwhere(bad)[0]
            raise CsvImportError(
                f"{path}: row {int(cols.lines[r])}, column {names[c]!r}: {miss} empty or non-finite cells in {'/'.join(names)}; "
                "too many to fill in: map other columns or clean the file"
            )
        for k in range(3):
            _repair(x[:, k], bad[:, k])
        notes.append(
            f"{prefix}{miss} empty or non-finite cell(s) in {'/'.join(names)} filled from their neighbours"
        )
    return x


def _wide(
    path: Path,
    cols: _Columns,
    t,
    imu: dict[str, dict[str, str]],
    keys_of: dict[str, str],
    notes: list[str],
    prefix: str,
) -> _Series:
    acc, gyr, names = {}, {}, {}
    for s, u in imu.items():
        k = keys_of[s]
        acc[s] = _xyz(path, cols, [f"{k}.{a}" for a in AXES[:3]], notes, [u[a] for a in AXES[:3]], prefix)
        gyr[s] = _xyz(path, cols, [f"{k}.{a}" for a in AXES[3:]], notes, [u[a] for a in AXES[3:]], prefix)
        names[f"{s}.acc"], names[f"{s}.gyr"] = [u[a] for a in AXES[:3]], [u[a] for a in AXES[3:]]
    return _Series(t, acc, gyr, np.arange(len(cols.lines)), cols, names)


SOURCE_KEYS = ("upper", "lower", "acc", "gyr", "upper.acc", "upper.gyr", "lower.acc", "lower.gyr")


def _sources(
    path, sources, mapping, opts, notes
) -> tuple[list[tuple[str, _Series]], Path, object, ColumnMapping, str | None]:
    """Every input file read into series, each (sensor.kind | "wide", series)."""
    kind_of_time = None
    parts: list[tuple[str, _Series]] = []
    if sources:
        shown = {k: Path(v).name for k, v in sources.items()}
        first = Path(next(iter(sources.values())))
        for key, f in sources.items():
            p = Path(f)
            if key in SENSORS:
                sensor, kind = key, ""
            else:
                sensor, _, kind = key.rpartition(".")
                sensor = sensor or "upper"
            cols, _lay, m = _read(p, mapping, notes=notes, prefix=f"{key}: ", kind=kind or None, **opts)
            if not kind and (m.xyz or m.is_long):
                raise CsvUsageError(
                    "with upper=FILE lower=FILE each file holds one IMU: map ax..gz (e.g. --columns t=time,ax=...,gz=...)"
                )
            if not kind and "lower" in m.imu:
                raise CsvUsageError(
                    "with upper=FILE lower=FILE, --columns maps one IMU (ax=..., no upper./lower. prefixes); the same mapping reads both files"
                )
            mapping = m
            t = _times(cols, m)
            kind_of_time = kind_of_time or cols.time_kind
            if kind:
                assert m.xyz is not None  # a one-type file maps x, y, z (checked by _read)
                x = _xyz(p, cols, XYZ, notes, [m.xyz[a] for a in XYZ], f"{key}: ")
                ser = _Series(
                    t,
                    {sensor: x} if kind == "acc" else {},
                    {sensor: x} if kind == "gyr" else {},
                    np.arange(len(cols.lines)),
                    cols,
                    {f"{sensor}.{kind}": [m.xyz[a] for a in XYZ]},
                )
                parts.append((f"{sensor}.{kind}", ser))
            else:
                parts.append(
                    (
                        f"{sensor}.both",
                        _wide(p, cols, t, {sensor: m.imu["upper"]}, {sensor: "upper"}, notes, f"{key}: "),
                    )
                )
        path = first
    else:
        path = Path(path)
        shown = path.name
        cols, _lay, mapping = _read(path, mapping, notes=notes, **opts)
        kind_of_time = cols.time_kind
        t = _times(cols, mapping)
        if mapping.xyz and not mapping.is_long:
            raise CsvUsageError(
                "x=,y=,z= read one sensor type per file: give acc=FILE gyr=FILE (or ax..gz for one file of both, or type= for a long file)"
            )
        if mapping.is_long:
            parts = _pivot(path, cols, t, mapping, notes)
        else:
            parts = [("wide", _wide(path, cols, t, mapping.imu, {s: s for s in mapping.imu}, notes, ""))]
    return parts, path, shown, mapping, kind_of_time


def _pivot(
    path: Path, cols: _Columns, t: np.ndarray | None, mapping: ColumnMapping, notes: list[str]
) -> list[tuple[str, _Series]]:
    """A long file (one row per reading) -> one series per (sensor, type)."""
    if t is None:
        raise CsvUsageError(
            "a long file needs its time column (t=, t_ms=, ...): its readings are matched on time"
        )
    tnames = cols.names["type"]
    kinds: dict[str, int] = {}
    if mapping.types:
        for k in KINDS:
            if mapping.types[k] not in tnames:
                raise CsvImportError(
                    f"{path}: no rows have {mapping.long_type}={mapping.types[k]} ({k}=); the column holds: {', '.join(tnames[:12])}"
                )
            kinds[k] = tnames.index(mapping.types[k])
    else:
        for code, name in enumerate(tnames):
            low = name.lower()
            read_as = (
                "acc"
                if low.startswith("acc") or low in ("a", "accel")
                else "gyr"
                if low.startswith(("gyr", "rot", "ang")) or low in ("g", "w")
                else None
            )
            if read_as and read_as in kinds:
                raise CsvUsageError(
                    f"{path}: the type column holds {tnames[kinds[read_as]]!r} and {name!r}, both read as {read_as}; say which with --columns acc=VALUE,gyr=VALUE"
                )
            if read_as:
                kinds[read_as] = code
        if set(kinds) != set(KINDS):
            raise CsvUsageError(
                f"{path}: cannot tell the accelerometer and gyroscope apart in column {mapping.long_type!r} ({', '.join(tnames[:12])}); "
                "say which with --columns acc=VALUE,gyr=VALUE"
            )
    ids: dict[str, int | None] = {"upper": None}
    if mapping.long_id:
        inames = cols.names["id"]
        ids = {}
        for s, v in mapping.ids.items():
            if v not in inames:
                raise CsvImportError(
                    f"{path}: no rows have {mapping.long_id}={v} ({s}=); the column holds: {', '.join(inames[:12])}"
                )
            ids[s] = inames.index(v)
        unused = [n for c, n in enumerate(inames) if c not in ids.values()]
        if unused:
            notes.append(
                f"long file: sensor id(s) {', '.join(unused[:6])} not mapped to upper/lower: left out"
            )
    xyz = mapping.xyz
    assert xyz is not None  # a long file maps x, y, z (checked by _read)
    x = _xyz(path, cols, XYZ, notes, [xyz[a] for a in XYZ], "")
    parts = []
    for s, icode in ids.items():
        for k, tcode in kinds.items():
            sel = cols.text["type"] == tcode
            if icode is not None:
                sel &= cols.text["id"] == icode
            rows = np.flatnonzero(sel)
            if len(rows) < 2:
                raise CsvImportError(
                    f"{path}: the long file has {plural(len(rows), k + ' row')} for the {s} sensor"
                )
            ser = _Series(
                t[rows],
                {s: x[rows]} if k == "acc" else {},
                {s: x[rows]} if k == "gyr" else {},
                rows,
                cols,
                {f"{s}.{k}": [xyz[a] for a in XYZ]},
            )
            parts.append((f"{s}.{k}", ser))
    notes.append(
        f"long file: {len(cols.lines)} readings pivoted into {'upper and lower' if len(ids) == 2 else 'one sensor'}, "
        "accelerometer and gyroscope rows matched on time"
    )
    return parts


def _clock_fix(t: np.ndarray, kind: str | None, notes: list[str], prefix: str) -> np.ndarray:
    """Clock times that pass midnight go on counting."""
    if kind == "clock" and len(t) > 1:
        back = np.flatnonzero(np.diff(t) < -43200)
        if len(back):
            t = t.copy()
            for i in back:
                t[i + 1 :] += 86400.0
            notes.append(f"{prefix}clock times pass midnight: counted on")
    return t


def _fix_time(s: _Series, rate_hz: float | None, notes: list[str], prefix: str = "") -> float | None:
    """Sort rows into time order; a time column coarser than the samples (whole seconds,
    many rows per second) gets even times from the row count; repeated timestamps are dropped.
    Returns the rate found from the row count (None otherwise)."""
    t = s.t
    if t is None or len(t) < 2:
        return None
    back = int(np.count_nonzero(np.diff(t) < 0))
    order = np.argsort(t, kind="stable")
    if back:
        notes.append(f"{prefix}{back} row(s) were out of time order: sorted by time")
        s.take(order)
        t = s.t
        assert t is not None  # sorting keeps the time column
    d = np.diff(t)
    repeats = int(np.count_nonzero(d == 0))
    if repeats > len(t) / 2:
        steps, _first, counts = np.unique(t, return_index=True, return_counts=True)
        if len(steps) >= 2:
            q = float(np.median(np.diff(steps)))
            full = counts[1:-1] if len(steps) >= 3 else counts
            rate = rate_hz or float(np.sum(full) / (len(full) * q))
            t0 = steps[1] - counts[0] / rate if len(steps) >= 3 else steps[0]
            s.t = t0 + np.arange(len(t)) / rate
            notes.append(
                f"{prefix}the time column steps by {q:g} s with about {np.median(full):.0f} rows per step: "
                f"{'the rate' if rate_hz is None else '--rate'} {rate:.4g} Hz {'comes from the row count' if rate_hz is None else 'given'}, times spread evenly between the steps"
            )
            return rate
    if repeats:
        keep = np.ones(len(t), dtype=bool)
        keep[1:] = d > 0
        notes.append(f"{prefix}{repeats} row(s) repeat the timestamp of the row before: dropped")
        s.take(keep)
    return None


def _on_times(t: np.ndarray, src_t: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(t, src_t, x[:, k]) for k in range(3)], axis=1)


def _overlay(base: _Series, other: _Series, what: str, notes: list[str], rate_hz: float | None) -> None:
    """``other``'s sensors onto ``base``'s rows: on time over the overlap (interpolated), or on
    sample index when neither has a time column."""
    if (base.t is None) != (other.t is None):
        raise CsvImportError("one file has a time column and the other not; map the same columns in both")
    if base.t is None:
        if rate_hz is None:
            raise CsvUsageError(
                "two files without a time column are merged on sample index: give the sample rate with --rate HZ"
            )
        n = min(len(base.rows), len(other.rows))
        if len(base.rows) != len(other.rows):
            notes.append(
                f"merged on sample index: the files have {len(base.rows)} and {len(other.rows)} rows; kept the first {n}"
            )
        base.take(np.arange(n))
        other.take(np.arange(n))
        base.acc.update(other.acc)
        base.gyr.update(other.gyr)
        base.names.update(other.names)
        return
    assert base.t is not None and other.t is not None  # both have one (checked above)
    t0, t1 = max(base.t[0], other.t[0]), min(base.t[-1], other.t[-1])
    if not t1 > t0:
        raise CsvImportError(
            f"the {what} do not overlap in time; check that they use the same clock (or leave out the time column and give --rate)"
        )
    keep = (base.t >= t0) & (base.t <= t1)
    if not keep.all():
        notes.append(
            f"merged on time: kept the {int(keep.sum())} of {len(keep)} rows inside the span of the {what} both"
        )
    base.take(np.flatnonzero(keep))
    bt = base.t
    assert bt is not None
    for s, a in other.acc.items():
        base.acc[s] = _on_times(bt, other.t, a)
    for s, g in other.gyr.items():
        base.gyr[s] = _on_times(bt, other.t, g)
    base.names.update(other.names)


def _combine(parts: list[tuple[str, _Series]], rate_hz: float | None, notes: list[str]) -> _Series:
    """All series -> one: each sensor's gyroscope onto its accelerometer's times, then the
    lower sensor onto the upper's."""
    if len(parts) == 1 and parts[0][0] == "wide":
        return parts[0][1]
    by = dict(parts)
    per: dict[str, _Series] = {}
    for s in SENSORS:
        if f"{s}.both" in by:
            per[s] = by[f"{s}.both"]
            continue
        a, g = by.get(f"{s}.acc"), by.get(f"{s}.gyr")
        if a is None and g is None:
            continue
        if a is None or g is None:
            have = "an accelerometer" if g is None else "a gyroscope"
            raise CsvUsageError(
                f"the {s} sensor has {have} only; give both, e.g. acc=Accelerometer.csv gyr=Gyroscope.csv"
            )
        if a.t is None or g.t is None:
            raise CsvUsageError(
                "an accelerometer and a gyroscope read apart are matched on time: map their time columns (t=...)"
            )
        _overlay(a, g, f"{s} accelerometer and gyroscope readings", notes, rate_hz)
        notes.append(
            f"{s}: gyroscope ({len(g.rows)} readings) matched to the accelerometer's {len(a.rows)} times by interpolation"
        )
        per[s] = a
    if "upper" not in per:
        raise CsvUsageError("no upper sensor: name the first (or only) one upper")
    if "lower" in per:
        _overlay(per["upper"], per["lower"], "two sensors", notes, rate_hz)
    return per["upper"]


def _session_start(
    t: np.ndarray | None, kind: str | None, date: str | None, notes: list[str]
) -> float | None:
    """The Unix time of the first sample: from --date, a date in the time column, or Unix times."""
    first = None if t is None or not len(t) else float(t[0])
    if date:
        d, with_time = parse_date(date)
        if kind == "clock" and not with_time and first is not None:
            day = d.replace(hour=0, minute=0, second=0, microsecond=0)
            start = (day + timedelta(seconds=first)).timestamp()
        else:
            start = d.timestamp()
        notes.append(
            f"session dated {datetime.fromtimestamp(start).astimezone().strftime('%Y-%m-%d %H:%M %Z')} (--date)"
        )
        return start
    if first is None:
        return None
    if kind == "datetime" or (kind == "number" and EARLIEST_DATE <= first <= _time.time() + 86400 * 366):
        what = "dates and times" if kind == "datetime" else "Unix times"
        notes.append(
            f"the time column holds {what}: session dated {datetime.fromtimestamp(first, UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}"
        )
        return first
    if kind == "clock":
        notes.append(
            "the time column holds clock times without a date: the session is dated today (give --date YYYY-MM-DD)"
        )
    return None
