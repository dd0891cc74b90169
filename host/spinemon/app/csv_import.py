"""Real loggers' files -> a spinemon recording (``spinemon import``).

One job: read a table of IMU samples as another logger wrote it, fix what can
be fixed with one note per fix, refuse what cannot with one line that says
what to do, and write a normal recording (real SAMPLES frames, int16 with
ranges chosen to fit the data, RX records with synthetic host times, label
records from set/exercise columns, header ``source`` = ``"import"``, the
header's host time = the session's own date when the file gives one).

The file is streamed (read row by row with the standard library's ``csv``
module; only the mapped columns are kept, as floats), so memory follows the
samples kept, not the file's text. What a file may look like (each fix is
reported in :attr:`ImportResult.notes`; the formats of real loggers are listed
in docs/import.md):

- any encoding: UTF-8 (with or without a BOM), UTF-16 with a BOM, else
  Windows-1252/Latin-1 (a ``°`` in a header), or ``encoding=`` named;
- metadata lines before the column header (``Acquisition frequency: 100 Hz``),
  an Excel ``sep=`` line, unit rows under the header (``CAL``, ``m/(s^2)``),
  quoted header names, a nameless first column of row numbers (R's
  ``write.csv``), ``NA`` in unused columns; tab, comma, semicolon, bar or
  space delimiters (found from the data rows), decimal commas, blank lines,
  trailing delimiters, extra columns, a cut-off last row;
- no header row at all: columns are named by position (``ax=2``, from 1);
- several people or sets in one file: ``where=[("subject", "3")]``;
- time as seconds (``t``), split across columns (``t_s``, ``t_ms``, ``t_us``,
  ``t_ns``, summed), clock times (``12:00:00.125``), dates and times (ISO 8601
  ``2026-12-06T10:15:30.125Z``, ``06.12.2026 10:15:30,125``) or Unix times:
  a date becomes the session's date (``history`` files it in its week);
  a time in whole seconds (many rows per second) gets its rate from the row
  count; rows out of order are sorted, repeats dropped, irregular timestamps
  resampled;
- the accelerometer in g, m/s^2 or raw counts (``acc_scale`` N or auto), the
  gyroscope in dps, rad/s or raw counts (``gyr_scale`` N counts per dps or
  auto: from the accelerometer's tilt while the sensor turns). Units are
  checked: |a| at rest must be 1 g, and the gyroscope must turn as fast as the
  accelerometer tilts;
- single glitched cells (a 1e6 among normal values, ``inf``, an empty cell)
  are replaced from their neighbours and counted; a logger whose first seconds
  read a fraction of the rest (its range still settling) has them dropped;
- two IMUs in two files (``upper=F1 lower=F2``), accelerometer and gyroscope
  in two files (``acc=F1 gyr=F2``: phone apps), or a long ("tidy") file with
  one row per reading and sensor type/id columns, pivoted into upper/lower.
"""

from __future__ import annotations

import codecs
import csv
import errno
import math
import os
import re
import time as _time
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

import spinemon_protocol as proto
from spinemon.app.session import header_for
from spinemon.app.words import plural
from spinemon.core.detect import PROFILES
from spinemon.core.pipeline import PipelineSettings
from spinemon.core.stream import G
from spinemon.core.unilateral import parse_exercise
from spinemon.errors import ConfigError, CsvImportError, CsvUsageError, RecordingError, SpinemonError
from spinemon.io.recording import RecordingWriter, segment_paths

__all__ = [
    "ColumnMapping",
    "CsvImportError",
    "CsvUsageError",
    "ImportResult",
    "default_mapping",
    "import_csv",
    "parse_axes",
    "parse_columns",
    "parse_date",
    "parse_where",
]

AXES = ("ax", "ay", "az", "gx", "gy", "gz")
XYZ = ("x", "y", "z")
SENSORS = ("upper", "lower")
KINDS = ("acc", "gyr")
SAMPLES_PER_FRAME = 8  # what the firmware sends (fits one notification with two IMUs)
HOST_LATENCY_S = 0.01  # synthetic host receive time = device time of the frame's last sample + this
ACC_UNITS = {"g": G, "m/s2": 1.0, "m/s^2": 1.0, "ms2": 1.0, "m_s2": 1.0, "counts": None}
GYR_UNITS = {"dps": math.pi / 180.0, "deg/s": math.pi / 180.0, "rad/s": 1.0, "rad_s": 1.0, "counts": None}
ACC_FS_G = (2, 4, 8, 16)
GYR_FS_DPS = (125, 250, 500, 1000, 2000)
#: counts per dps of common MEMS gyroscopes (InvenSense/Bosch 16-bit at 125..2000 dps, ST at 8.75..70 mdps/LSB)
GYR_SENSITIVITIES = (262.4, 131.0, 65.5, 32.8, 16.4, 114.29, 57.14, 28.57, 14.29)
LABEL_KEYS = ("set", "exercise", "labelled")
TIME_KEYS = {"t": 1.0, "time": 1.0, "t_s": 1.0, "t_ms": 1e-3, "t_us": 1e-6, "t_ns": 1e-9}
TIME_NAMES = {1.0: "t_s", 1e-3: "t_ms", 1e-6: "t_us", 1e-9: "t_ns"}
LONG_KEYS = ("type", "id")
DELIMITERS = {"\t": "tab", ";": "semicolon", ",": "comma", "|": "bar", " ": "space"}
MISSING = {"", "na", "nan", "null", "none", "n/a", "#n/a", "#div/0!", "#value!", "-", "--", "?"}
REST_TOLERANCE = 0.2  # the magnitude at rest must be within 20 % of 1 g
GLITCH_ACC = 32 * G  # no body-worn accelerometer reads this: a glitch
GLITCH_GYR = math.radians(4000.0)  # no body turns this fast
HEAD_LINES = 400  # lines read to find the layout (delimiter, header, decimal mark)
SNIFF_BYTES = 1 << 20  # bytes read to guess the encoding
MAX_CELL = 131072  # the csv module's field limit (128 KiB)
EARLIEST_DATE = 946684800.0  # 2000-01-01: a Unix time before this is not a date
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
EU_RE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?$")
SLASH_RE = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?$")
CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})(?:[.,:](\d+))?$")


def _show(cell: str, width: int = 40) -> str:
    """A cell for a message: quoted, at most ``width`` characters."""
    return repr(cell if len(cell) <= width else cell[: width - 3] + "...")


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds what. ``imu[sensor][axis]`` for axis in ax..gz (a
    wide file); or ``xyz`` (x, y, z) for a file of one sensor type (``acc=F
    gyr=F``) or a long file with ``long_type`` (the sensor type column) and
    optionally ``long_id`` (the sensor id column; ``ids`` maps upper/lower to
    id values, ``types`` acc/gyr to type values). ``time``: the seconds
    column (key ``t``); ``time_parts``: (column, scale to seconds) summed;
    label columns ``set``/``exercise``/``labelled`` (optional). A column may be
    a header name or, when the header has no such name, a position from 1."""

    imu: dict[str, dict[str, str]]
    time: str | None = None
    set: str | None = None
    exercise: str | None = None
    labelled: str | None = None
    time_parts: tuple[tuple[str, float], ...] = ()
    xyz: dict[str, str] | None = None
    long_type: str | None = None
    long_id: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def times(self) -> tuple[tuple[str, float], ...]:
        """All time columns with their scale to seconds (empty: no time column)."""
        return ((self.time, 1.0),) + self.time_parts if self.time else self.time_parts

    @property
    def is_long(self) -> bool:
        return self.long_type is not None

    def as_dict(self) -> dict:
        d: dict[str, str] = {}
        if self.time:
            d["t"] = self.time
        for col, scale in self.time_parts:
            d[TIME_NAMES[scale]] = col
        for s, axes in self.imu.items():
            for a, c in axes.items():
                d[f"{s}.{a}"] = c
        for a, c in (self.xyz or {}).items():
            d[a] = c
        if self.long_type:
            d["type"] = self.long_type
        if self.long_id:
            d["id"] = self.long_id
        for k in LABEL_KEYS:
            if getattr(self, k):
                d[k] = getattr(self, k)
        return d

    def columns(self) -> list[tuple[str, str]]:
        """(key, column) of every column the mapping reads (labels included)."""
        return list(self.as_dict().items())


def parse_columns(spec: str) -> ColumnMapping:
    """Parse ``t=time,ax=accX,...`` (one IMU) or ``upper.ax=...,lower.ax=...``
    (two); ``t_s=``/``t_ms=``/``t_us=``/``t_ns=`` split the time over columns
    (summed); ``set=``, ``exercise=``, ``labelled=`` name optional label
    columns. ``x=,y=,z=`` read a file of one sensor type (``acc=F gyr=F``);
    with ``type=COLUMN`` (and ``id=COLUMN``) a long file: one row per reading,
    ``upper=ID,lower=ID`` say which sensor id is which, ``acc=VALUE,gyr=VALUE``
    which type value is which (default: found from names like ``acc``/``gyro``).
    A column may be given by position (from 1) when it has no header name.
    Every mistake is a :class:`CsvUsageError` (exit 2)."""
    imu: dict[str, dict[str, str]] = {}
    other: dict[str, str] = {}
    xyz: dict[str, str] = {}
    ids: dict[str, str] = {}
    types: dict[str, str] = {}
    parts_t: list[tuple[str, float]] = []
    seen: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, col = part.partition("=")
        key, col = key.strip(), col.strip()
        if not sep or not key or not col:
            raise CsvUsageError(
                f"--columns: {_show(part)} is not KEY=COLUMN (e.g. ax=accX, or ax=2 for the second column)"
            )
        sensor, dot, axis = key.rpartition(".")
        if not dot:
            sensor, axis = "", key
        if axis in AXES:
            sensor = sensor or "upper"
            if sensor not in SENSORS:
                raise CsvUsageError(f"--columns: {key!r}: the IMU prefix must be 'upper.' or 'lower.'")
            full = f"{sensor}.{axis}"
        elif not dot and key in TIME_KEYS:
            full = "t" if key in ("t", "time") else key
        elif not dot and key in LABEL_KEYS + XYZ + LONG_KEYS + SENSORS + KINDS:
            full = key
        else:
            raise CsvUsageError(
                f"--columns: unknown key {key!r}; use t (or t_s, t_ms, t_us, t_ns), ax, ay, az, gx, gy, gz "
                "(upper./lower. prefixes for two IMUs), set, exercise; x, y, z with acc=F gyr=F files; type, id for long files"
            )
        if full in seen:
            raise CsvUsageError(f"--columns: {key!r} is given twice")
        seen.add(full)
        if full.startswith(("upper.", "lower.")):
            s, a = full.split(".")
            imu.setdefault(s, {})[a] = col
        elif full in TIME_NAMES.values():
            parts_t.append((col, TIME_KEYS[full]))
        elif full in XYZ:
            xyz[full] = col
        elif full in SENSORS:
            ids[full] = col
        elif full in KINDS:
            types[full] = col
        else:
            other[full] = col
    if "t" in other and parts_t:
        raise CsvUsageError(
            "--columns: give the time either as t=COLUMN or split as t_s=/t_ms=/t_us=/t_ns=, not both"
        )
    # one column, one meaning: an axis column read twice (as ax and gx, say) is a typo, never a layout
    owner: dict[str, str] = {}
    for s, axes in imu.items():
        for a, c in axes.items():
            pre = f"{s}." if len(imu) > 1 or s != "upper" else ""
            if c in owner:
                raise CsvUsageError(
                    f"--columns: column {_show(c)} is mapped to both {owner[c]} and {pre}{a}; each column holds one axis"
                )
            owner[c] = pre + a
    for k, c in (
        list(xyz.items())
        + [(k, c) for k, c in other.items()]
        + [(TIME_NAMES.get(sc, "t"), c) for c, sc in parts_t]
    ):
        if k in LABEL_KEYS:
            continue
        if c in owner:
            raise CsvUsageError(
                f"--columns: column {_show(c)} is mapped to both {owner[c]} and {k}; each column holds one quantity"
            )
        owner[c] = k
    long_type, long_id = other.pop("type", None), other.pop("id", None)
    if xyz or long_type or long_id or ids or types:
        if imu:
            raise CsvUsageError(
                "--columns: give either ax..gz (one row per sample) or x, y, z (one sensor type per file, or a long file with type=), not both"
            )
        missing = [a for a in XYZ if a not in xyz]
        if missing:
            raise CsvUsageError(f"--columns: x, y, z go together; {', '.join(missing)} is missing")
        if long_id and not long_type:
            raise CsvUsageError(
                "--columns: id= needs type= (a long file: one row per reading, with the sensor type in a column)"
            )
        if (ids or types) and not long_type:
            raise CsvUsageError(
                "--columns: upper=/lower=/acc=/gyr= name the values of a long file's id= and type= columns; give type=COLUMN"
            )
        if ids and not long_id:
            raise CsvUsageError(
                "--columns: upper=ID/lower=ID name values of the sensor id column; give id=COLUMN"
            )
        if long_id and "upper" not in ids:
            raise CsvUsageError(
                "--columns: with id=COLUMN say which sensor is which: upper=ID (and lower=ID for a second sensor)"
            )
        if set(types) not in (set(), set(KINDS)):
            raise CsvUsageError(
                "--columns: give both acc=VALUE and gyr=VALUE (the type column's values), or neither"
            )
        return ColumnMapping(
            {},
            other.get("t"),
            other.get("set"),
            other.get("exercise"),
            other.get("labelled"),
            tuple(parts_t),
            dict(xyz),
            long_type,
            long_id,
            ids,
            types,
        )
    if "upper" not in imu:
        raise CsvUsageError("--columns: the upper (or only) IMU needs ax, ay, az, gx, gy, gz")
    for s, axes in imu.items():
        missing = [a for a in AXES if a not in axes]
        if missing:
            pre = "" if s == "upper" and "lower" not in imu else f"{s}."
            raise CsvUsageError(f"--columns: {s} IMU lacks {', '.join(pre + a for a in missing)}")
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

    def label(k: str) -> str | None:
        return k if k in header else None

    return ColumnMapping(imu, "t_s", set=label("set"), exercise=label("exercise"), labelled=label("labelled"))


def parse_axes(spec: str) -> np.ndarray:
    """``x,-z,y`` -> the 3x3 matrix M with board = M @ source: board x is
    source x, board y is -source z, board z is source y. Only rotations
    (no mirror images) are accepted."""
    parts = [p.strip().lower() for p in spec.split(",")]
    if len(parts) != 3:
        raise CsvUsageError(f"--axes {spec!r}: give three signed source axes, e.g. x,-z,y")
    m = np.zeros((3, 3))
    used = set()
    for i, p in enumerate(parts):
        sign = -1.0 if p.startswith("-") else 1.0
        name = p.lstrip("+-")
        if name not in ("x", "y", "z") or name in used:
            raise CsvUsageError(f"--axes {spec!r}: each of x, y, z must appear once (with an optional '-')")
        used.add(name)
        m[i, "xyz".index(name)] = sign
    if np.linalg.det(m) < 0:
        raise CsvUsageError(
            f"--axes {spec!r} is a mirror image, not a rotation; flip one more sign (both frames are right-handed)"
        )
    return m


def parse_where(items: Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    """``["subject=3", "set=2"]`` -> ``(("subject", "3"), ("set", "2"))``."""
    out = []
    for item in items or ():
        col, sep, value = item.partition("=")
        if not sep or not col.strip():
            raise CsvUsageError(f"--where {item!r}: give COLUMN=VALUE, e.g. --where subject=3")
        out.append((col.strip(), value.strip()))
    return tuple(out)


def parse_date(text: str) -> tuple[datetime, bool]:
    """``--date``: ``2026-12-06`` or ``2026-12-06T10:15[:30]`` (local time
    unless it names a zone) -> (aware datetime, whether a time of day was given)."""
    t = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            return datetime.fromisoformat(t).replace(hour=12).astimezone(), False
        d = datetime.fromisoformat(t)
    except ValueError:
        raise CsvUsageError(
            f"--date {_show(text)}: give YYYY-MM-DD or YYYY-MM-DDTHH:MM (e.g. --date 2026-12-06)"
        ) from None
    return (d if d.tzinfo else d.astimezone()), True


# ---------------------------------------------------------------------------
# reading the table (streamed)
# ---------------------------------------------------------------------------
def _encoding(path: Path, named: str | None, notes: list[str]) -> str:
    """The file's text encoding: ``named``, a BOM, UTF-8 when the first MiB
    decodes as UTF-8, else Windows-1252 (a superset of Latin-1's printable
    characters), with a note. A binary file is refused."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise CsvImportError(f"{path}: no such file; check the path (give a CSV of IMU samples)") from None
    except IsADirectoryError:
        raise CsvImportError(f"{path} is a directory, not a CSV file; give the CSV file itself") from None
    except OSError as e:
        raise CsvImportError(f"{path}: cannot read ({e.strerror}); check its permissions") from None
    if named:
        try:
            return codecs.lookup(named).name
        except LookupError:
            raise CsvUsageError(
                f"--encoding {_show(named)} is not an encoding Python knows (e.g. utf-8, cp1252, latin-1, utf-16)"
            ) from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        notes.append("read as UTF-16 (it starts with a UTF-16 byte order mark)")
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in head:
        raise CsvImportError(
            f"{path} is a binary file, not a CSV text file; give a CSV of IMU samples (see 'spinemon import --help')"
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        raise CsvImportError(
            f"{path} is neither UTF-8 nor Windows-1252 text; name its encoding with --encoding (e.g. --encoding latin-1)"
        ) from None
    notes.append("not UTF-8: read as Windows-1252 (Latin-1); name another with --encoding")
    return "cp1252"


def _open(path: Path, enc: str):
    return open(path, encoding=enc, newline="", errors="strict")


def _number(cell: str, comma: bool) -> float | None:
    c = cell.strip()
    if comma:
        c = c.replace(",", ".")
    try:
        return float(c)
    except ValueError:
        return None


def _timelike(cell: str) -> bool:
    c = cell.strip()
    return bool(CLOCK_RE.match(c) or ISO_RE.match(c) or EU_RE.match(c) or SLASH_RE.match(c))


@dataclass
class _Layout:
    """What the first lines of a file tell: how to read the rest."""

    path: Path
    encoding: str
    delimiter: str
    comma: bool  # decimal commas
    header: list[str]  # column names ("1", "2", ... when the file has none)
    positional: bool  # no header row: columns named by position
    data_line: int  # the file line of the first data row
    notes: list[str]
    rate_hz: float | None = None  # a sample rate stated above the header ("... 100 Hz")

    def column(self, name: str, what: str) -> int:
        if name in self.header:
            return self.header.index(name)
        if name.isdigit() and 1 <= int(name) <= len(self.header):
            return int(name) - 1
        if self.positional:
            raise CsvUsageError(
                f"{self.path} has no header row; columns go by position 1..{len(self.header)}, and {name!r} (for {what}) is not one"
            )
        shown = ", ".join(repr(h) if h != h.strip() or not h else h for h in self.header[:40]) + (
            ", ..." if len(self.header) > 40 else ""
        )
        raise CsvImportError(
            f"{self.path}: column {name!r} (for {what}) is not in the header; columns are: {shown} (or give a position from 1)"
        )


def _reader(f, delimiter: str):
    return csv.reader(f, delimiter=delimiter, skipinitialspace=delimiter == " ")


def _csv_error(path: Path, line: int, e: csv.Error) -> CsvImportError:
    text = str(e)
    if "field larger than field limit" in text:
        return CsvImportError(
            f"{path}: line {line}: a cell is longer than 128 KiB (a quote never closed, or not a table of IMU samples); fix that line or give another file"
        )
    if "NUL" in text:
        return CsvImportError(
            f"{path}: line {line} holds a NUL byte: this is a binary file, not a CSV text file"
        )
    return CsvImportError(f"{path}: line {line}: {text}; is this a CSV file?")


def _head_rows(path: Path, enc: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """The first HEAD_LINES non-blank rows, split with ``delimiter``."""
    out: list[tuple[int, list[str]]] = []
    try:
        with _open(path, enc) as f:
            r = _reader(f, delimiter)
            while len(out) < HEAD_LINES:
                try:
                    cells = next(r)
                except StopIteration:
                    break
                except csv.Error as e:
                    raise _csv_error(path, r.line_num, e) from None
                if delimiter == " ":
                    cells = [c for c in cells if c != ""]
                if any(c.strip() for c in cells):
                    out.append((r.line_num, cells))
    except UnicodeDecodeError:
        raise CsvImportError(
            f"{path} is not {enc} text; name its encoding with --encoding (e.g. --encoding cp1252)"
        ) from None
    return out


def _is_data(cells: list[str], comma: bool) -> bool:
    """A row of numbers: among its non-missing cells, most are numbers or times, at least one a number."""
    vals = [c.strip() for c in cells if c.strip().lower() not in MISSING]
    if len(vals) < 2:
        return False
    nums = sum(1 for c in vals if _number(c, comma) is not None)
    times = sum(1 for c in vals if _timelike(c))
    return nums >= 1 and nums + times > len(vals) / 2


def _layout(path: Path, enc: str, no_header: bool, notes: list[str]) -> _Layout:
    try:
        with _open(path, enc) as f:
            first = f.readline()
    except UnicodeDecodeError:
        raise CsvImportError(
            f"{path} is not {enc} text; name its encoding with --encoding (e.g. --encoding cp1252)"
        ) from None
    sep_line = re.fullmatch(r"\s*\"?sep=(.)\"?\s*", first.rstrip("\r\n"))
    candidates = [sep_line.group(1)] if sep_line else list(DELIMITERS)
    best = None
    for d in candidates:
        rows = _head_rows(path, enc, d)
        if sep_line:
            rows = rows[1:]
        if not rows:
            continue
        tail = [r for _, r in rows[-min(len(rows), 100) :]]
        counts = [len(r) for r in tail]
        width = max(set(counts), key=counts.count)
        cells = [c.strip() for r in tail[-20:] for c in r]
        numeric = sum(
            1 for c in cells if _number(c, False) is not None or _number(c, True) is not None or _timelike(c)
        ) / max(len(cells), 1)
        # the most consistent rows first, then the split whose cells read as numbers ('1,5;2,5' is not split at the comma)
        score = (counts.count(width) if width > 1 else 0, round(numeric, 1), width if d != " " else 0)
        if best is None or score > best[0]:
            best = (score, d, rows)
    if best is None:
        raise CsvImportError(f"{path} is empty; give a CSV of IMU samples (see 'spinemon import --help')")
    _, delim, rows = best
    # decimal commas: a ';' or tab file whose data cells read "1,25"
    comma = False
    if delim != ",":
        cells = [c.strip() for _, r in rows[-50:] for c in r]
        with_comma = sum(1 for c in cells if re.fullmatch(r"-?\d+,\d+([eE][-+]?\d+)?", c))
        with_point = sum(1 for c in cells if re.fullmatch(r"-?\d*\.\d+([eE][-+]?\d+)?", c))
        comma = with_comma > with_point
    first_data = next((k for k, (_, r) in enumerate(rows) if _is_data(r, comma)), None)
    if first_data is None:
        raise CsvImportError(
            f"{path} has no data rows (no rows of numbers in its first {len(rows)} rows); give a CSV of IMU samples"
        )
    data_width = len(rows[first_data][1])
    # a row above the data much narrower than it ('MPU6050 connection successful') is no header
    positional = no_header or first_data == 0 or len(rows[first_data - 1][1]) < max(2, (data_width + 1) // 2)
    skipped = first_data
    if positional:
        header = [str(k + 1) for k in range(max(len(r) for _, r in rows[first_data:]))]
        pre = rows[:first_data]
        if first_data:
            skipped = first_data
        if not no_header:
            notes.append(
                f"no header row: columns are named by position, 1..{len(header)} (e.g. --columns t=1,ax=2,...)"
            )
        else:
            notes.append(f"--no-header: columns are named by position, 1..{len(header)}")
    else:
        # the header: the first of the rows of the data's width just above the data
        # (a unit row such as 'CAL' or 'm/(s^2)' may sit between it and the data)
        k = first_data - 1
        while (
            k - 1 >= 0
            and len(rows[k - 1][1]) == len(rows[k][1])
            and len(rows[k][1]) >= min(data_width, 2)
            and not _is_data(rows[k - 1][1], comma)
        ):
            k -= 1
        units = first_data - 1 - k
        header = [c.strip() for c in rows[k][1]]
        pre = rows[:k]
        skipped = k
        if units:
            notes.append(f"skipped {plural(units, 'unit row')} under the column header (line {rows[k][0]})")
        if sum(1 for h in header if h.startswith('"') or h.endswith('"')):
            header = [h.strip('"') for h in header]
        if header and header[0] == "":
            header[0] = "row"
            notes.append(
                "the first column has no name (row numbers, as R's write.csv writes them): called 'row'"
            )
        while header and header[-1] == "" and len(header) > data_width - 1:
            header.pop()
        for i, h in enumerate(header):
            if h == "":
                header[i] = str(i + 1)
    if sep_line:
        notes.append(f"an Excel 'sep={delim}' line names the delimiter")
    stated = None
    for _, r in pre:
        m = re.search(r"(\d+(?:[.,]\d+)?)\s*Hz\b", ",".join(r), re.IGNORECASE)
        if m:
            stated = float(m.group(1).replace(",", "."))
            break
    if skipped:
        notes.append(f"skipped {plural(skipped, 'line')} before the column header (line {rows[skipped][0]})")
    if delim != ",":
        notes.append(f"columns separated by {DELIMITERS[delim]}s")
    if comma:
        notes.append("decimal commas (1,5 = 1.5)")
    return _Layout(path, enc, delim, comma, header, positional, rows[first_data][0], notes, stated)


@dataclass
class _Columns:
    """The columns a mapping reads, streamed out of the file: floats, and codes for text columns."""

    lines: np.ndarray  # file line of each kept row
    num: dict[str, np.ndarray]  # key -> floats (NaN: missing)
    text: dict[str, np.ndarray]  # key -> int codes into names[key]
    names: dict[str, list[str]]
    missing: dict[str, int]  # key -> cells that were empty / NA / nan / inf
    time_kind: str | None = None  # "number", "clock", "datetime"


def _time_parser(cell: str, comma: bool):
    """A function cell -> seconds for the kind of ``cell`` (and the kind's name)."""
    c = cell.strip()
    if _number(c, comma) is not None:
        return "number", lambda x: _number(x, comma)
    if CLOCK_RE.match(c):

        def clock(x: str) -> float | None:
            m = CLOCK_RE.match(x.strip())
            if not m:
                return None
            frac = m.group(4) or "0"
            return (
                int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)) + int(frac) / 10 ** len(frac)
            )

        return "clock", clock

    cache: dict[str, float] = {}

    def stamp(x: str) -> float | None:
        x = x.strip()
        m = EU_RE.match(x) or SLASH_RE.match(x)
        try:
            if m:
                g = m.groups()
                if EU_RE.match(x):
                    dd, mo, yy = int(g[0]), int(g[1]), int(g[2])
                else:
                    yy, mo, dd = int(g[0]), int(g[1]), int(g[2])
                frac = g[6] or "0"
                day = cache.get(x[:10])
                if day is None:
                    day = cache[x[:10]] = datetime(yy, mo, dd).astimezone().timestamp()
                return day + int(g[3]) * 3600 + int(g[4]) * 60 + int(g[5] or 0) + int(frac) / 10 ** len(frac)
            d = datetime.fromisoformat(x.replace(",", ".").replace("Z", "+00:00"))
        except ValueError:
            return None
        return (d if d.tzinfo else d.astimezone()).timestamp()

    return "datetime", stamp


def _stream(
    lay: _Layout, mapping: ColumnMapping, where: Sequence[tuple[str, str]], notes: list[str], prefix: str = ""
) -> _Columns:
    """Read the data rows once, keeping only the mapped columns (and the --where filter)."""
    path = lay.path
    keys = mapping.columns()
    idx = {key: lay.column(col, key) for key, col in keys}
    text_keys = [k for k in idx if k in LABEL_KEYS + LONG_KEYS]
    time_keys = [k for k in idx if k in ("t",) + tuple(TIME_NAMES.values())]
    num_keys = [k for k in idx if k not in text_keys]
    filters = []
    for col, value in where:
        ci = lay.column(col, "--where")
        filters.append((col, ci, value, _number(value, lay.comma)))
    nums = {k: array("d") for k in num_keys}
    codes = {k: array("i") for k in text_keys}
    names: dict[str, dict[str, int]] = {k: {} for k in text_keys}
    missing = dict.fromkeys(num_keys, 0)
    lines = array("l")
    need = max(idx.values()) + 1
    cols = mapping.as_dict()

    def lacking(cells: int) -> str:
        """The first mapped column a row of ``cells`` cells has no value in, by its name."""
        ci, key = min((i, k) for k, i in idx.items() if i >= cells)
        return repr(cols.get(key, ci + 1))

    kept = seen_rows = wider = blank = 0
    where_seen: dict[int, set] = {ci: set() for _, ci, _, _ in filters}
    parsers: dict[str, Callable[[str], float | None]] = {}
    kind = None
    short: tuple[int, int] | None = None  # (line, cells) of a short row: an error unless it is the last
    comma = lay.comma
    header_width = len(lay.header)
    try:
        with _open(path, lay.encoding) as f:
            r = _reader(f, lay.delimiter)
            line = 0
            while True:
                try:
                    cells = next(r)
                except StopIteration:
                    break
                except csv.Error as e:
                    raise _csv_error(path, r.line_num, e) from None
                line = r.line_num
                if line < lay.data_line:
                    continue
                if lay.delimiter == " ":
                    cells = [c for c in cells if c != ""]
                if not cells or not any(c.strip() for c in cells):
                    blank += 1
                    continue
                if short is not None:
                    raise CsvImportError(
                        f"{path}: row {short[0]} has no value in column {lacking(short[1])} (only {short[1]} cells)"
                    )
                seen_rows += 1
                if len(cells) < need:
                    short = (line, len(cells))
                    continue
                if len(cells) > header_width and any(c.strip() for c in cells[header_width:]):
                    wider += 1
                ok = True
                for col, ci, value, fv in filters:
                    cell = cells[ci].strip()
                    if len(where_seen[ci]) < 50:
                        where_seen[ci].add(cell)
                    if cell != value and not (fv is not None and _number(cell, comma) == fv):
                        ok = False
                        break
                if not ok:
                    continue
                for k in num_keys:
                    cell = cells[idx[k]]
                    if k in time_keys:
                        p = parsers.get(k)
                        if p is None:
                            kind_k, p = _time_parser(cell, comma)
                            parsers[k] = p
                            if kind is None or kind_k != "number":
                                kind = kind_k
                            if kind_k != "number" and len(time_keys) > 1:
                                raise CsvUsageError(
                                    f"--columns: {k}={mapping.as_dict()[k]} holds {kind_k} values ({_show(cell)}); a clock or date time goes in t= alone"
                                )
                        v = p(cell)
                        if v is None:
                            raise CsvImportError(
                                f"{path}: row {line}, column {mapping.as_dict()[k]!r} ({k}): {_show(cell)} is not a {'number' if kind == 'number' else 'time like the rows before'}"
                            )
                        nums[k].append(v)
                        continue
                    v = _number(cell, comma)
                    if v is None or not math.isfinite(v):
                        if v is None and cell.strip().lower() not in MISSING:
                            raise CsvImportError(
                                f"{path}: row {line}, column {mapping.as_dict()[k]!r} ({k}): {_show(cell.strip())} is not a number"
                            )
                        missing[k] += 1
                        v = math.nan
                    nums[k].append(v)
                for k in text_keys:
                    cell = cells[idx[k]].strip()
                    book = names[k]
                    code = book.get(cell)
                    if code is None:
                        code = book[cell] = len(book)
                    codes[k].append(code)
                lines.append(line)
                kept += 1
    except UnicodeDecodeError:
        raise CsvImportError(
            f"{path} is not {lay.encoding} text past its start; name its encoding with --encoding (e.g. --encoding cp1252)"
        ) from None
    if short is not None:
        if seen_rows > 1:
            notes.append(f"{prefix}dropped the last row (line {short[0]}): it is cut off")
        else:
            raise CsvImportError(
                f"{path}: row {short[0]} has no value in column {lacking(short[1])} (only {short[1]} cells)"
            )
    if blank:
        notes.append(f"{prefix}skipped {plural(blank, 'blank line')}")
    if wider:
        notes.append(
            f"{prefix}{wider} row(s) have more cells than the header; the extra trailing cells were ignored"
        )
    for col, ci, value, _ in filters:
        if not kept:
            shown = ", ".join(sorted(where_seen[ci])[:12]) + (", ..." if len(where_seen[ci]) > 12 else "")
            raise CsvImportError(f"{path}: no rows have {col}={value} (--where); the column holds: {shown}")
    if filters:
        notes.append(
            f"{prefix}--where {', '.join(f'{c}={v}' for c, v, *_ in [(f[0], f[2]) for f in filters])}: kept {kept} of {seen_rows} rows"
        )
    if not kept:
        raise CsvImportError(f"{path} has a header but no data rows")
    return _Columns(
        np.frombuffer(lines, dtype=np.int64 if lines.itemsize == 8 else np.int32).astype(np.int64),
        {k: np.frombuffer(v, dtype=np.float64).copy() for k, v in nums.items()},
        {k: np.frombuffer(v, dtype=np.int32).copy() for k, v in codes.items()},
        {k: list(b) for k, b in names.items()},
        missing,
        kind,
    )


# ---------------------------------------------------------------------------
# units and checks
# ---------------------------------------------------------------------------
def _unit(name: str, table: dict, what: str) -> float | None:
    try:
        return table[name.strip().lower()]
    except KeyError:
        names = [k for k in table if "^" not in k and "_" not in k and k != "ms2"]
        raise CsvUsageError(f"unknown {what} unit {name!r}; use {' or '.join(names)}") from None


def _windows(x: np.ndarray, n_win: int) -> np.ndarray:
    n_win = max(2, min(n_win, len(x)))
    k = len(x) // n_win
    return x[: k * n_win].reshape(k, n_win) if k else x[None, :]


def _rest_magnitude(acc: np.ndarray, n_win: int) -> float:
    """|a| at rest, in the file's units: the median magnitude over the quieter half of the
    one-second windows. (The quietest tenth alone was fooled by a logger whose first seconds
    read a quarter of the scale: a quarter of the signal has a quarter of the noise.)"""
    mag = np.linalg.norm(acc, axis=1)
    mag = mag[np.isfinite(mag)]
    if len(mag) == 0:
        return 0.0
    win = _windows(mag, n_win)
    if len(win) < 2:
        return float(np.median(mag))
    spread = win.std(axis=1) / np.maximum(np.median(win, axis=1), 1e-12)
    quiet = spread <= np.median(spread)
    return float(np.median(np.median(win[quiet], axis=1)))


def _settling(acc: np.ndarray, rate: float, rest: float) -> int:
    """Rows at the start whose magnitude reads a fraction (or a multiple) of the rest of the
    file: a logger whose range is still being set. 0 when there are none."""
    mag = np.linalg.norm(acc, axis=1)
    n = len(mag)
    w = max(5, int(rate // 4))
    if n < 8 * w or not rest > 0:
        return 0
    k = n // w
    med = np.median(mag[: k * w].reshape(k, w), axis=1) / rest
    off = (med < 0.7) | (med > 1.45)
    if not off[0]:
        return 0
    j = int(np.argmin(off)) if not off.all() else k
    if j == k or j * w > n // 2:  # most of the file: not a settling start (a wrong unit, said elsewhere)
        return 0
    # the first row of the first good stretch of 5 rows
    start = max(0, (j - 1) * w)
    r = mag[start : (j + 1) * w] / rest
    good = (r > 0.7) & (r < 1.45)
    for i in range(len(r) - 4):
        if good[i : i + 5].all():
            return start + i
    return j * w


def _acc_scale(path: Path, unit: str, scale: str | float | None, raw_rest: float, notes: list[str]) -> float:
    """Multiplier from the file's accelerometer unit to m/s^2."""
    factor = _unit(unit, ACC_UNITS, "accelerometer")
    if factor is not None:
        if scale is not None:
            raise CsvUsageError(
                "--acc-scale is for --acc-unit counts; leave it out with --acc-unit g or m/s2"
            )
        return factor
    if scale is None:
        raise CsvUsageError("--acc-unit counts needs --acc-scale N (counts per g) or --acc-scale auto")
    if isinstance(scale, str) and scale.strip().lower() == "auto":
        if not raw_rest > 0:
            raise CsvImportError(
                f"{path}: the accelerometer reads zero at rest; --acc-scale auto cannot work (give --acc-scale N)"
            )
        notes.append(f"accelerometer scale from the magnitude at rest: {raw_rest:.4g} counts per g")
        return G / raw_rest
    n = _positive(scale, "--acc-scale", "counts per g")
    return G / n


def _positive(scale, flag: str, what: str) -> float:
    try:
        n = float(scale)
    except (TypeError, ValueError):
        raise CsvUsageError(f"{flag} {_show(str(scale))}: give {what} (a number > 0) or auto") from None
    if not (math.isfinite(n) and n > 0):
        raise CsvUsageError(f"{flag} {_show(str(scale))}: give {what} (a number > 0) or auto")
    return n


def _tilt_ratio(acc_si: np.ndarray, gyr: np.ndarray, rate: float) -> tuple[float, int]:
    """How fast the gyroscope says the sensor turns (in its units, about the axes across
    gravity) over how fast the accelerometer's gravity direction tilts (rad/s), on the
    quasi-static samples that tilt; (ratio, samples used). 1 for a gyroscope in rad/s."""
    n = len(acc_si)
    w = max(3, int(round(rate / 10)))
    if n < 4 * w:
        return math.nan, 0
    kern = np.ones(w) / w
    a = np.stack([np.convolve(acc_si[:, k], kern, mode="same") for k in range(3)], axis=1)
    g = np.stack([np.convolve(gyr[:, k], kern, mode="same") for k in range(3)], axis=1)
    mag = np.linalg.norm(a, axis=1)
    u = a / np.maximum(mag, 1e-9)[:, None]
    du = np.gradient(u, 1.0 / rate, axis=0)
    tilt = np.linalg.norm(du, axis=1)
    perp = g - np.sum(g * u, axis=1)[:, None] * u
    turn = np.linalg.norm(perp, axis=1)
    ok = (np.abs(mag / G - 1.0) < 0.05) & (tilt > 0.15) & (tilt < 6.0) & np.isfinite(turn)
    ok[: 2 * w] = False
    ok[-2 * w :] = False
    used = int(ok.sum())
    if used < max(10, int(rate / 2)):
        return math.nan, used
    return float(np.median(turn[ok] / tilt[ok])), used


def _repair(x: np.ndarray, bad: np.ndarray) -> None:
    """Replace ``bad`` rows of one column by linear interpolation from the good ones (in place)."""
    good = ~bad
    if not good.any():
        return
    i = np.arange(len(x))
    x[bad] = np.interp(i[bad], i[good], x[good])


def _rare(x: np.ndarray) -> int:
    """How many bad cells of ``x`` (rows x axes) may be repaired from their
    neighbours: 1 in 1000 rows (at least 3), never more than 1 % of the values
    (a short file has none to spare)."""
    return min(max(3, len(x) // 1000), x.size // 100)


def _glitches(
    path: Path,
    what: str,
    cols: list[str],
    x: np.ndarray,
    bound: float,
    lines: np.ndarray,
    unit: str,
    notes: list[str],
    advice: str,
) -> None:
    """Single glitched cells (beyond ``bound``, or not finite): few are replaced from their
    neighbours with a note; many mean a wrong unit or column, refused with ``advice``."""
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isfinite(x) | (np.abs(x) > bound)
    count = int(bad.sum())
    if not count:
        return
    allowed = _rare(x)
    r, c = np.argwhere(bad)[0]
    where = f"line {int(lines[r])}, column {cols[c]!r}"
    val = x[r, c]
    shown = "empty" if not np.isfinite(val) and math.isnan(val) else f"{val:.3g} {unit}"
    if count > allowed:
        raise CsvImportError(
            f"{path}: {count} {what} values are beyond {bound:.4g} {unit} or missing (first at {where}: {shown}); too many to be glitches: {advice}"
        )
    for k in range(x.shape[1]):
        _repair(x[:, k], bad[:, k])
    notes.append(
        f"{plural(count, 'glitched ' + what + ' value')} (beyond {bound:.4g} {unit}, or empty; first at {where}: {shown}) replaced from their neighbours"
    )


def _gyr_hint(ratio: float) -> str:
    if 40 < ratio < 80:
        return "is the unit dps? (--gyr-unit dps)"
    if 1 / 80 < ratio < 1 / 40:
        return "is the unit rad/s? (--gyr-unit rad/s)"
    if ratio > 8:
        return "are these raw counts? (--gyr-unit counts --gyr-scale auto, or --gyr-scale N counts per dps, e.g. 131 for an MPU-6050 at 250 dps)"
    return "check --gyr-unit and the columns mapped to gx, gy, gz"


def _gyr_factor(
    path: Path, unit: str, scale, acc_si: np.ndarray, gyr_raw: np.ndarray, rate: float, notes: list[str]
) -> float:
    """Multiplier from the file's gyroscope unit to rad/s."""
    factor = _unit(unit, GYR_UNITS, "gyroscope")
    if factor is not None:
        if scale is not None:
            raise CsvUsageError(
                "--gyr-scale is for --gyr-unit counts; leave it out with --gyr-unit dps or rad/s"
            )
        return factor
    if scale is None:
        raise CsvUsageError(
            "--gyr-unit counts needs --gyr-scale N (counts per dps, e.g. 131 for an MPU-6050 at 250 dps) or --gyr-scale auto"
        )
    if isinstance(scale, str) and scale.strip().lower() == "auto":
        ratio, used = _tilt_ratio(acc_si, np.where(np.isfinite(gyr_raw), gyr_raw, 0.0), rate)
        if not math.isfinite(ratio) or ratio <= 0:
            raise CsvImportError(
                f"{path}: --gyr-scale auto needs the sensor to tilt for a while (found {used / rate:.1f} s); give --gyr-scale N (counts per dps)"
            )
        per_dps = ratio * math.pi / 180.0
        near = min(GYR_SENSITIVITIES, key=lambda s: abs(math.log(per_dps / s)))
        if abs(per_dps / near - 1.0) < 0.12:
            notes.append(
                f"gyroscope scale from the accelerometer's tilt: {per_dps:.4g} counts per dps, taken as the standard {near:g} (full scale {32768 / near:.0f} dps)"
            )
            per_dps = near
        else:
            notes.append(
                f"gyroscope scale from the accelerometer's tilt: {per_dps:.4g} counts per dps (no standard sensitivity within 12 %)"
            )
        return math.pi / 180.0 / per_dps
    return math.pi / 180.0 / _positive(scale, "--gyr-scale", "counts per dps")


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
            cols, lay, m = _read(p, mapping, notes=notes, prefix=f"{key}: ", kind=kind or None, **opts)
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
        cols, lay, mapping = _read(path, mapping, notes=notes, **opts)
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
        steps, first, counts = np.unique(t, return_index=True, return_counts=True)
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
    opts = dict(where=where, encoding=encoding, no_header=no_header)
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


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".log")


def import_one_row(path: str, out: str, opts: dict) -> dict:
    """One file of a batch (runs in a worker process): its row, or its error."""
    row: dict = {"recording": out, "file": path}
    try:
        res = import_csv(path, out, **opts)
    except SpinemonError as e:
        row["error"] = str(e)
        return row
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {e}"
        return row
    row.update(
        samples=res.samples,
        rows=res.rows,
        rate_hz=round(res.rate_hz, 3),
        notes=len(res.notes),
        error=None,
        kept=f"{100.0 * res.samples / max(res.rows, 1):.1f}%",
    )
    return row


def _run_pair(pair: str, opts: dict) -> dict:
    f, o = pair.split("\x00")
    return import_one_row(f, o, opts)
