"""Session recordings: an append-only file of the frames as received.

Layout (little-endian)::

    file   := MAGIC record*
    MAGIC  := b"SPINEMON-REC\\x00\\x01\\r\\n"   (16 bytes; the last byte pair catches text-mode mangling)
    record := SYNC(2) kind(u8) length(u32) t_host(f64) payload(length) crc32(u32)

``crc32`` (zlib) covers kind, length, t_host and payload. Kinds:

- ``RX``   a frame as received from the wearable (the protocol frame bytes),
- ``TX``   a frame the host sent (COMMAND),
- ``META`` a JSON object ``{"type": ..., ...}``: the session header (first
  record: format version, settings, firmware info, labels), calibration,
  set/exercise labels, alerts, the closing summary.

A recording cut off mid-write (power loss, kill -9) loads up to its last
complete record; a corrupted record is counted and skipped (the reader
resynchronises on the next SYNC whose record checks out). Records are
flushed to the OS after every write and fsync'ed at most every
``fsync_interval_s`` seconds and on close (see docs/architecture.md).
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from spinemon.errors import RecordingError, TruncatedRecordingError

MAGIC = b"SPINEMON-REC\x00\x01\r\n"
SYNC = b"\xa5\x5a"
FORMAT_VERSION = 1
KIND_RX = 1
KIND_TX = 2
KIND_META = 3
KIND_NAMES = {KIND_RX: "rx", KIND_TX: "tx", KIND_META: "meta"}
_HEAD = struct.Struct("<2sBId")  # sync, kind, length, t_host
_CRC = struct.Struct("<I")
MAX_PAYLOAD = 1 << 24


@dataclass(frozen=True)
class Record:
    kind: int
    t_host: float
    payload: bytes

    @property
    def meta(self) -> dict:
        return json.loads(self.payload.decode("utf-8"))


@dataclass
class Recording:
    """A loaded recording. ``header`` is the first META record."""

    path: Path
    header: dict
    records: list[Record]
    truncated: bool = False
    corrupt_records: int = 0
    bytes_skipped: int = 0
    meta: list[dict] = field(default_factory=list)

    def frames_in(self) -> Iterator[tuple[float, bytes]]:
        for r in self.records:
            if r.kind == KIND_RX:
                yield r.t_host, r.payload

    def frames_out(self) -> Iterator[tuple[float, bytes]]:
        for r in self.records:
            if r.kind == KIND_TX:
                yield r.t_host, r.payload

    def meta_of(self, type_: str) -> list[dict]:
        return [m for m in self.meta if m.get("type") == type_]


class RecordingWriter:
    """Append records to a new recording file. Use as a context manager."""

    def __init__(self, path: str | os.PathLike, header: dict[str, Any], *, fsync_interval_s: float = 1.0) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise RecordingError(f"{self.path} already exists; choose another --out or delete it")
        parent = self.path.parent
        if not parent.exists():
            raise RecordingError(f"directory {parent} does not exist; create it first")
        if not os.access(parent, os.W_OK):
            raise RecordingError(f"directory {parent} is not writable; choose another --out")
        try:
            self._f = open(self.path, "xb")
        except OSError as e:
            raise RecordingError(f"cannot create {self.path}: {e.strerror}") from e
        self._fsync_interval = fsync_interval_s
        self._last_sync = time.monotonic()
        self.records_written = 0
        self._f.write(MAGIC)
        hdr = {"type": "header", "format": FORMAT_VERSION, **header}
        self.meta(hdr, time.time(), sync=True)

    def _write(self, kind: int, payload: bytes, t_host: float, sync: bool = False) -> None:
        head = _HEAD.pack(SYNC, kind, len(payload), float(t_host))
        crc = zlib.crc32(payload, zlib.crc32(head[2:]))
        try:
            self._f.write(head + payload + _CRC.pack(crc))
            self._f.flush()
            now = time.monotonic()
            if sync or now - self._last_sync >= self._fsync_interval:
                os.fsync(self._f.fileno())
                self._last_sync = now
        except OSError as e:
            raise RecordingError(f"cannot write {self.path}: {e.strerror}") from e
        self.records_written += 1

    def frame_in(self, frame: bytes, t_host: float) -> None:
        self._write(KIND_RX, bytes(frame), t_host)

    def frame_out(self, frame: bytes, t_host: float) -> None:
        self._write(KIND_TX, bytes(frame), t_host)

    def meta(self, data: dict[str, Any], t_host: float | None = None, *, sync: bool = False) -> None:
        if "type" not in data:
            raise ValueError("META records need a 'type'")
        payload = json.dumps(data, separators=(",", ":"), allow_nan=False, default=_json_default).encode()
        self._write(KIND_META, payload, time.time() if t_host is None else t_host, sync=sync)

    def close(self) -> None:
        if self._f.closed:
            return
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
        finally:
            self._f.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _parse(data: bytes) -> tuple[list[Record], bool, int, int]:
    """Records from the bytes after MAGIC: (records, truncated, corrupt, skipped)."""
    records: list[Record] = []
    pos, n = 0, len(data)
    truncated = False
    corrupt = 0
    skipped = 0
    hs, cs = _HEAD.size, _CRC.size
    while pos < n:
        if n - pos < hs:
            truncated = True
            break
        sync, kind, length, t_host = _HEAD.unpack_from(data, pos)
        end = pos + hs + length + cs
        ok = sync == SYNC and kind in KIND_NAMES and length <= MAX_PAYLOAD
        if ok and end > n:
            truncated = True
            break
        if ok:
            payload = data[pos + hs : pos + hs + length]
            (crc,) = _CRC.unpack_from(data, pos + hs + length)
            ok = crc == zlib.crc32(payload, zlib.crc32(data[pos + 2 : pos + hs]))
        if ok:
            records.append(Record(kind, t_host, bytes(payload)))
            pos = end
            continue
        # corrupt: resynchronise on the next SYNC
        corrupt += 1
        nxt = data.find(SYNC, pos + 1)
        if nxt < 0:
            skipped += n - pos
            break
        skipped += nxt - pos
        pos = nxt
    return records, truncated, corrupt, skipped


def load(path: str | os.PathLike, *, strict: bool = False) -> Recording:
    """Load a recording. A file cut off mid-record loads up to its last
    complete record (``truncated`` is set; with ``strict=True`` that raises
    :class:`TruncatedRecordingError`). Raises :class:`RecordingError` for a
    missing, empty or foreign file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise RecordingError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{p} is a directory, not a recording") from None
    except OSError as e:
        raise RecordingError(f"{p}: cannot read ({e.strerror})") from None
    if not data:
        raise RecordingError(f"{p} is empty, not a spinemon recording")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise RecordingError(f"{p} was cut off before its first record")
        raise RecordingError(f"{p} is not a spinemon recording (bad magic); record one with 'spinemon simulate' or 'spinemon live'")
    records, truncated, corrupt, skipped = _parse(memoryview(data)[len(MAGIC) :].tobytes())
    if strict and truncated:
        raise TruncatedRecordingError(f"{p} ends mid-record")
    meta = []
    for r in records:
        if r.kind == KIND_META:
            try:
                m = r.meta
            except (UnicodeDecodeError, json.JSONDecodeError):
                corrupt += 1
                continue
            if isinstance(m, dict):
                meta.append(m)
    if not meta or meta[0].get("type") != "header":
        raise RecordingError(f"{p} has no readable session header")
    header = meta[0]
    if header.get("format") != FORMAT_VERSION:
        raise RecordingError(f"{p} uses recording format {header.get('format')!r}; this spinemon reads format {FORMAT_VERSION}")
    return Recording(p, header, records, truncated, corrupt, skipped, meta)
