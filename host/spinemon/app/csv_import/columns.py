"""The column mapping of ``spinemon import``: which file columns hold which
sensor's axes, in what units (``columns=`` specs, the default header
names, axis remaps, ``where=`` filters, ``--date``), and the constants
the other parts share.

Part of :mod:`spinemon.app.csv_import` (its module docstring: what files look like).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from spinemon.core.stream import G
from spinemon.errors import CsvUsageError

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
    for k, c in list(xyz.items()) + list(other.items()) + [(TIME_NAMES.get(sc, "t"), c) for c, sc in parts_t]:
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
