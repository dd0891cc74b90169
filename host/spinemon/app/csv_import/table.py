"""Reading an imported table, streamed: its encoding, its layout (metadata
lines, ``sep=``, header and unit rows, delimiter, decimal mark; or no
header), the time columns' formats, and the rows kept as floats.

Part of :mod:`spinemon.app.csv_import` (its module docstring: what files look like).
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from spinemon.app.csv_import.columns import (
    CLOCK_RE,
    DELIMITERS,
    EU_RE,
    HEAD_LINES,
    ISO_RE,
    LABEL_KEYS,
    LONG_KEYS,
    MISSING,
    SLASH_RE,
    SNIFF_BYTES,
    TIME_NAMES,
    ColumnMapping,
    _show,
)
from spinemon.app.words import plural
from spinemon.errors import CsvImportError, CsvUsageError


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
                for _col, ci, value, fv in filters:
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
