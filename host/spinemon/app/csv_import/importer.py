"""``import_csv``: one imported session, from its file(s) to a recording
(the checks and fixes in order, one note each; frames, labels, header).

Part of :mod:`spinemon.app.csv_import` (its module docstring: what files look like).
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

import spinemon_protocol as proto
from spinemon.app.csv_import.columns import (
    ACC_FS_G,
    ACC_UNITS,
    GLITCH_ACC,
    GLITCH_GYR,
    GYR_FS_DPS,
    GYR_UNITS,
    HOST_LATENCY_S,
    REST_TOLERANCE,
    SAMPLES_PER_FRAME,
    SENSORS,
    ColumnMapping,
    _show,
    parse_axes,
    parse_columns,
    parse_date,
)
from spinemon.app.csv_import.series import (
    SOURCE_KEYS,
    ImportResult,
    _choose_fs,
    _clock_fix,
    _combine,
    _fix_time,
    _session_start,
    _sources,
)
from spinemon.app.csv_import.table import _Columns, _encoding, _layout
from spinemon.app.csv_import.units import (
    _acc_scale,
    _glitches,
    _gyr_factor,
    _gyr_hint,
    _resample,
    _rest_magnitude,
    _settling,
    _tilt_ratio,
    _unit,
)
from spinemon.app.session import header_for
from spinemon.app.words import plural
from spinemon.core.detect import PROFILES
from spinemon.core.pipeline import PipelineSettings
from spinemon.core.stream import G
from spinemon.core.unilateral import parse_exercise
from spinemon.errors import ConfigError, CsvImportError, CsvUsageError, RecordingError
from spinemon.io.recording import RecordingWriter, segment_paths


def import_csv(
    path: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    columns: ColumnMapping | str | None = None,
    rate_hz: float | None = None,
    acc_unit: str = "m/s2",
    acc_scale: str | float | None = None,
    gyr_unit: str = "rad/s",
    gyr_scale: str | float | None = None,
    axes: str | None = None,
    where: Sequence[tuple[str, str]] = (),
    resample_hz: float | None = None,
    sources: Mapping[str, str | os.PathLike] | None = None,
    settings: PipelineSettings | None = None,
    encoding: str | None = None,
    no_header: bool = False,
    date: str | None = None,
    overwrite: bool = False,
) -> ImportResult:
    """Convert a table of IMU samples into a session recording at ``out``
    (``overwrite``: replace an existing one, ``--force``; else it is refused).

    ``columns``: a :class:`ColumnMapping` or its text form (see
    :func:`parse_columns`); None = the column names ``spinemon export`` writes.
    Without a time column ``rate_hz`` is required; with one, the rate is the
    mean sample interval (unless ``rate_hz`` is given) and each sample's slot
    (sequence number) is its time / period, so gaps become lost samples.
    ``sources``: several files, keyed ``upper``/``lower`` (one IMU each, the
    same single-IMU mapping) or ``acc``/``gyr`` (``upper.acc`` ...: one sensor
    type each, mapped with x, y, z); ``path`` is then None. ``date``: the
    session's date (``--date``). The recording appears whole or not at all.
    Raises :class:`CsvImportError` naming the row (file line) and column.
    """
    out = Path(out)
    settings = settings or PipelineSettings()
    if out.exists() and not overwrite:
        raise RecordingError(f"{out} already exists; choose another --out, or pass --force to replace it")
    mapping = parse_columns(columns) if isinstance(columns, str) else columns
    rot = parse_axes(axes) if axes else np.eye(3)
    if date:
        parse_date(date)
    for name, hz in (("--rate", rate_hz), ("--resample", resample_hz)):
        if hz is not None and not (
            isinstance(hz, (int, float)) and math.isfinite(hz) and 1.0 <= hz <= 10000.0
        ):
            raise CsvUsageError(f"{name} {hz:g} Hz is out of range (1..10000)")
    _unit(acc_unit, ACC_UNITS, "accelerometer")
    _unit(gyr_unit, GYR_UNITS, "gyroscope")
    notes: list[str] = []
    if sources:
        bad = [k for k in sources if k not in SOURCE_KEYS]
        if bad:
            raise CsvUsageError(
                f"{bad[0]}=FILE: name each file upper=, lower= (one IMU each) or acc=, gyr= (upper.acc=, lower.gyr=, ...: one sensor type each)"
            )
    opts = {"where": where, "encoding": encoding, "no_header": no_header}
    (
        parts,
        path,
        shown,
        mapping,
        kind,
    ) = _sources(path, sources, mapping, opts, notes)
    for key, ser in parts:
        pre = "" if key == "wide" else f"{key.replace('.both', '')}: "
        if ser.t is not None:
            ser.t = _clock_fix(ser.t, kind, notes, pre)
    quantized_rate = None
    for key, ser in parts:
        r = _fix_time(ser, rate_hz, notes, "" if key == "wide" else f"{key.replace('.both', '')}: ")
        quantized_rate = quantized_rate or r
    src = _combine(parts, rate_hz, notes)
    rate_hz = rate_hz or quantized_rate
    session_start = _session_start(src.t, kind, date, notes)
    sensors = [s for s in SENSORS if s in src.acc]
    n = len(src.rows)
    stated = None
    if src.t is None and rate_hz is None:
        try:
            stated = _layout(path, _encoding(path, encoding, []), no_header, []).rate_hz
        except CsvImportError:
            stated = None
        if stated is not None and 1.0 <= stated <= 10000.0:
            rate_hz = stated
            notes.append(f"sample rate {rate_hz:g} Hz as stated above the header (no time column mapped)")
    if src.t is None and rate_hz is None:
        raise CsvUsageError("no time column mapped: give the sample rate with --rate HZ (or map t=COLUMN)")

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
                raise CsvImportError(
                    f"{path}: the median sample interval gives {rate_hz:g} Hz; is the time in seconds? "
                    "(use t_ms=/t_us=/t_ns= for milliseconds, microseconds or nanoseconds, or pass --rate HZ)"
                )
    else:
        assert rate_hz is not None  # given, or stated above the header (checked above)
        t = np.arange(n) / rate_hz
    assert rate_hz is not None

    # units, a settling start, glitches, checks
    with np.errstate(over="ignore", invalid="ignore"):  # a 1e300 cell is a glitch, not a warning
        for s in sensors:
            raw = src.acc[s]
            names = src.names.get(f"{s}.acc", ["ax", "ay", "az"])
            gnames = src.names.get(f"{s}.gyr", ["gx", "gy", "gz"])
            raw_rest = _rest_magnitude(raw, int(round(rate_hz)))
            drop = _settling(raw, rate_hz, raw_rest)
            if drop:
                lines = src.lines
                ratio = float(np.median(np.linalg.norm(raw[:drop], axis=1))) / raw_rest
                notes.append(
                    f"the first {drop} rows (lines {int(lines[0])}-{int(lines[drop - 1])}, {drop / rate_hz:.1f} s) read {ratio:.2g} of the rest of "
                    f"the file at rest (the {s} logger's range was still settling): dropped"
                )
                src.take(np.arange(drop, len(src.rows)))
                t = t[drop:]
                n = len(src.rows)
                raw = src.acc[s]
            factor = _acc_scale(path, acc_unit, acc_scale, raw_rest, notes)
            acc = raw * factor
            rest = raw_rest * factor
            if abs(rest / G - 1.0) > REST_TOLERANCE:
                if abs(rest - 1.0) < REST_TOLERANCE:
                    hint = " is the unit g? (--acc-unit g)"
                elif abs(rest / (G * G) - 1.0) < REST_TOLERANCE:
                    hint = " is the unit m/s2? (--acc-unit m/s2)"
                else:
                    hint = " are these raw counts? (--acc-unit counts --acc-scale auto, or --acc-scale N counts per g)"
                raise CsvImportError(
                    f"{path}: columns {'/'.join(names)}: at rest the accelerometer reads {rest:.3g} m/s^2 with --acc-unit {acc_unit}, "
                    f"not about 9.8 m/s^2 (1 g):{hint}"
                )
            _glitches(
                path,
                "accelerometer",
                names,
                acc,
                GLITCH_ACC,
                src.lines,
                "m/s^2",
                notes,
                f"check --acc-unit ({acc_unit}) and the columns mapped to ax, ay, az",
            )
            gfactor = _gyr_factor(path, gyr_unit, gyr_scale, acc, src.gyr[s], rate_hz, notes)
            with np.errstate(over="ignore", invalid="ignore"):
                gyr = src.gyr[s] * gfactor
            ratio, used = _tilt_ratio(
                acc, np.where(np.isfinite(gyr) & (np.abs(gyr) < 1e12), gyr, 0.0), rate_hz
            )
            _glitches(
                path,
                "gyroscope",
                gnames,
                gyr,
                GLITCH_GYR,
                src.lines,
                "rad/s",
                notes,
                f"no body turns that fast with --gyr-unit {gyr_unit}: "
                + (_gyr_hint(ratio) if math.isfinite(ratio) else "is the unit dps? (--gyr-unit dps)"),
            )
            if math.isfinite(ratio) and not (
                1 / 30 < ratio < 8
            ):  # walking reads 0.14..0.35 (linear acceleration tilts the gravity estimate)
                raise CsvImportError(
                    f"{path}: columns {'/'.join(gnames)}: with --gyr-unit {gyr_unit} the gyroscope turns {ratio:.3g} times as fast as the "
                    f"accelerometer tilts ({used / rate_hz:.1f} s of tilting): {_gyr_hint(ratio)}"
                )
            src.acc[s] = acc @ rot.T
            src.gyr[s] = gyr @ rot.T

    rows_read = len(src.cols.lines)
    source_row = np.arange(n)
    if src.t is not None and resample_hz is None and n > 1:
        slot = np.rint((t - t[0]) * rate_hz).astype(np.int64)
        if np.any(np.diff(slot) <= 0):
            resample_hz = rate_hz
            notes.append(
                f"timestamps are irregular (jitter above half a sample period at {rate_hz:.4g} Hz): resampled onto an even {rate_hz:.4g} Hz grid"
            )
    elif resample_hz is not None:
        notes.append(f"resampled onto an even {resample_hz:.4g} Hz grid (--resample)")
    if resample_hz is not None:
        if src.t is None:
            raise CsvUsageError("--resample needs a time column (map t=COLUMN)")
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
        raise CsvImportError(
            f"{path}: row {int(src.lines[source_row[i]])}: time {t[i]:g} falls in the same sample slot as the row before "
            f"at --rate {rate_hz:g} Hz; leave out --rate (the rate comes from the timestamps) or pass --resample HZ"
        )
    labels = (
        _label_columns(path, src.cols, mapping, src.rows[source_row])
        if mapping.set or mapping.exercise
        else {}
    )
    acc_of, gyr_of = src.acc, src.gyr

    # ranges to fit the data, then int16
    peak_acc = max(float(np.max(np.abs(acc_of[s]))) for s in sensors)
    peak_gyr = max(float(np.max(np.abs(gyr_of[s]))) for s in sensors)
    afs = _choose_fs(peak_acc, ACC_FS_G, G)
    gfs = _choose_fs(peak_gyr, GYR_FS_DPS, math.pi / 180.0)
    ranges = proto.ranges_byte(afs, gfs)
    acc_lsb = afs / 32768.0 * G
    gyr_lsb = gfs / 32768.0 * (math.pi / 180.0)
    scaled: list[np.ndarray] = []
    for s in sensors:
        scaled += [acc_of[s] / acc_lsb, gyr_of[s] / gyr_lsb]
    vals = np.rint(np.concatenate(scaled, axis=1))
    clipped = int(np.count_nonzero((vals > 32767) | (vals < -32768)))
    if clipped:
        notes.append(
            f"{plural(clipped, 'value')} beyond 16 g / 2000 dps {'was' if clipped == 1 else 'were'} clipped"
        )
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
        "gyr_scale": gyr_scale,
        "axes": axes or "x,y,z",
        "where": [f"{c}={v}" for c, v in where],
        "rate_hz": round(1e6 / period_us, 6),
        "acc_fs_g": afs,
        "gyr_fs_dps": gfs,
        "rows": rows_read,
        "samples": n,
        "clipped_values": clipped,
        "t_offset_s": t_offset,
        "labels": len(labels),
        "session_start": session_start,
        "notes": list(notes),
    }
    hdr = header_for(settings, "import", {"import": info})
    frames = 0
    t_us0 = int(round(t_dev[0] * 1e6))
    # written under a temporary name and linked into place when whole: never a half-written recording
    tmp = out.with_name(f".{out.name}.{os.getpid()}.importing")
    try:
        with RecordingWriter(tmp, hdr, t_start=session_start, fsync_interval_s=3600.0) as w:
            i = 0
            while i < n:
                # a frame holds consecutive slots, at most spf, aligned to the slot grid
                # (as the firmware's frames are), and ends where a label takes effect
                j = i + 1
                while (
                    j < n
                    and j - i < spf
                    and slot[j] == slot[j - 1] + 1
                    and (slot[j] % spf) != 0
                    and j not in labels
                ):
                    j += 1
                if i in labels:
                    w.meta(labels[i], float(t_dev[i]) + HOST_LATENCY_S - 1e-3)
                seq = int(slot[i])
                frame = proto.encode_samples(
                    seq, t_us0 + seq * period_us, period_us, mask, ranges, 0, j - i, packed[i:j].tobytes()
                )
                w.frame_in(frame, float(t_dev[j - 1]) + HOST_LATENCY_S)
                frames += 1
                i = j
        try:
            if overwrite:
                if out.is_dir():
                    raise IsADirectoryError(errno.EISDIR, "is a directory")
                for old in segment_paths(out)[1:]:  # an old recording's later segments go with it
                    os.unlink(old)
                os.replace(tmp, out)
            else:
                os.link(tmp, out)
        except FileExistsError:
            raise RecordingError(f"{out} appeared while it was written; choose another --out") from None
        except OSError as e:
            raise RecordingError(f"cannot create {out}: {e.strerror}; choose another --out") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return ImportResult(
        out,
        n,
        frames,
        len(labels),
        1e6 / period_us,
        afs,
        gfs,
        clipped,
        t_offset,
        hdr,
        notes,
        rows_read,
        session_start,
    )


def _label_columns(path: Path, cols: _Columns, mapping: ColumnMapping, rows: np.ndarray) -> dict[int, dict]:
    """Sample index -> label record, where the lifter's (set, exercise) changes."""

    def cell(key: str, r: int) -> str:
        if key not in cols.text:
            return ""
        return cols.names[key][int(cols.text[key][r])]

    out: dict[int, dict] = {}
    prev = None
    for i, r in enumerate(rows):
        ln = int(cols.lines[r])
        if mapping.labelled is not None and cell("labelled", r) not in ("1", "true", "yes"):
            prev = None
            continue
        st, ex = cell("set", r), cell("exercise", r)
        if not st and not ex:
            prev = None
            continue
        number = None
        if st:
            try:
                number = int(float(st))
            except ValueError:
                raise CsvImportError(
                    f"{path}: row {ln}, column {mapping.set!r} (set): {_show(st)} is not a set number"
                ) from None
            if number < 1 or number != float(st):
                raise CsvImportError(
                    f"{path}: row {ln}, column {mapping.set!r} (set): {_show(st)} is not a set number (1, 2, ...)"
                )
        side = None
        if ex and ex not in PROFILES:  # "lunge left": a unilateral exercise with its side
            try:
                ex, side = parse_exercise(ex)
            except ConfigError as e:
                raise CsvImportError(
                    f"{path}: row {ln}, column {mapping.exercise!r} (exercise): {e}"
                ) from None
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
