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
``fsync_interval_s`` seconds and on close (see docs/architecture.md,
"Recording flush policy"). ``on_written(records, offset)`` is called after
each record reached the operating system: from then on a crash of this
process cannot lose it (the kill campaign, ``python -m tests.campaigns.kill``,
checks exactly that).

Segments: a session resumed into an existing recording (``resume=True``)
never touches the old file; it writes the next segment, ``FILE.seg2``,
``FILE.seg3``, ... with its own header (``"segment": n``, the first
segment's ``session_id``). :func:`load` reads a recording and all its
segments in order, as one session.

Disk space: the writer refuses to start below ``min_free_bytes`` free on the
target file system, and a write that fails mid-session (``ENOSPC``, I/O
error) cuts the file back to its last complete record and stops the writer
(:attr:`RecordingWriter.failed`); what was written stays loadable.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

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
#: the writer refuses to start with less free space than this (a 2 h session
#: of two IMUs at 200 Hz takes about 45 MB; a full disk mid-session is
#: handled too, see RecordingWriter.failed)
MIN_FREE_BYTES = 16 << 20
MAX_SEGMENTS = 999


def segment_path(path: str | os.PathLike, n: int) -> Path:
    """The file of segment ``n`` (from 1) of the recording at ``path``."""
    p = Path(path)
    return p if n == 1 else p.with_name(f"{p.name}.seg{n}")


def segment_paths(path: str | os.PathLike) -> list[Path]:
    """The existing segment files of a recording, in order (segment 1 first)."""
    out = []
    for n in range(1, MAX_SEGMENTS + 1):
        q = segment_path(path, n)
        if not q.exists():
            break
        out.append(q)
    return out


def record_size(payload_len: int) -> int:
    """Bytes one record with a payload of ``payload_len`` bytes takes on disk."""
    return _HEAD.size + payload_len + _CRC.size


@dataclass(frozen=True)
class Record:
    kind: int
    t_host: float
    payload: bytes

    @property
    def meta(self) -> dict:
        """The META record's JSON. Raises ValueError (also for JSON nested
        too deeply to parse) so callers can skip a bad record."""
        try:
            return json.loads(self.payload.decode("utf-8"))
        except RecursionError:
            raise ValueError("META record nests too deeply") from None


@dataclass(frozen=True)
class Segment:
    """One file of a recording: its records are ``records[first:first+count]``
    of the loaded :class:`Recording`."""

    path: Path
    header: dict
    first: int
    count: int
    truncated: bool
    corrupt_records: int
    bytes_skipped: int


@dataclass
class Recording:
    """A loaded recording (all its segments, in order). ``header`` is the
    first segment's header (the first META record)."""

    path: Path
    header: dict
    records: list[Record]
    truncated: bool = False
    corrupt_records: int = 0
    bytes_skipped: int = 0
    meta: list[dict] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)

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
    """Append records to a new recording file. Use as a context manager.

    ``resume``: if ``path`` is already a recording, write its next segment
    (``path.segN``) instead of refusing; the old files are never opened for
    writing. ``min_free_bytes``: refuse to start (:class:`RecordingError`)
    with less free space than this. ``on_written(records, offset)``: called
    after every record reached the operating system (the number of records
    and the file offset they end at).

    After a failed write the writer is stopped: :attr:`failed` holds the
    reason, the file ends at its last complete record, and every further
    write raises :class:`RecordingError`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        header: dict[str, Any],
        *,
        fsync_interval_s: float = 1.0,
        resume: bool = False,
        min_free_bytes: int = MIN_FREE_BYTES,
        on_written: Callable[[int, int], None] | None = None,
    ) -> None:
        base = Path(path)
        self.base_path = base
        self.segment = 1
        session_id = uuid.uuid4().hex
        if base.exists():
            if not resume:
                raise RecordingError(f"{base} already exists; choose another --out or delete it")
            first = load_header(base)  # RecordingError if it is not a recording
            session_id = str(first.get("session_id") or session_id)
            self.segment = len(segment_paths(base)) + 1
            if self.segment > MAX_SEGMENTS:
                raise RecordingError(f"{base} has {MAX_SEGMENTS} segments already; start a new recording")
        self.path = segment_path(base, self.segment)
        parent = self.path.parent
        if not parent.exists():
            raise RecordingError(f"directory {parent} does not exist; create it first")
        if not parent.is_dir():
            raise RecordingError(f"{parent} is not a directory; choose another --out")
        if not os.access(parent, os.W_OK):
            raise RecordingError(f"directory {parent} is not writable; choose another --out")
        free = free_bytes(parent)
        if free is not None and free < min_free_bytes:
            raise RecordingError(
                f"only {free / 1e6:.1f} MB free on the file system of {parent}; a recording needs at least "
                f"{min_free_bytes / 1e6:.1f} MB: free some space or choose another --out"
            )
        self._fsync_interval = fsync_interval_s
        self._last_sync = time.monotonic()
        self._on_written = None
        self.records_written = 0
        self.offset = 0  # bytes in the file that hold complete records (and MAGIC)
        self.synced_offset = 0  # bytes known to be on the disk (fsync'ed)
        self.failed: str | None = None
        self.session_id = session_id
        # The file appears under its name only with MAGIC and the header
        # on the disk: written to a temporary name, fsync'ed, then linked
        # (never replaces an existing file). A crash before that leaves at
        # most a stray temporary file, never a recording without a header.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self._f = open(tmp, "xb", buffering=0)
        except OSError as e:
            raise RecordingError(f"cannot create {self.path}: {e.strerror}; choose another --out") from e
        try:
            try:
                self._f.write(MAGIC)
            except OSError as e:
                self._fail(e)
                raise RecordingError(self.failed) from e
            self.offset = len(MAGIC)
            hdr = {"type": "header", "format": FORMAT_VERSION, **header, "session_id": session_id, "segment": self.segment}
            self.meta(hdr, time.time(), sync=True)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                self._f.close()
                raise RecordingError(f"{self.path} appeared while this recording was created (two sessions on one --out?); choose another --out") from None
            except OSError as e:
                self._f.close()
                raise RecordingError(f"cannot create {self.path}: {e.strerror}; choose another --out") from e
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        _fsync_dir(parent)
        self._on_written = on_written
        if on_written is not None:
            on_written(self.records_written, self.offset)

    def _fail(self, e: OSError) -> None:
        why = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
        self.failed = f"recording stopped: cannot write {self.path} ({why}); the {self.records_written} records written so far are kept"
        try:  # drop a torn record so the file ends at a record boundary
            os.ftruncate(self._f.fileno(), self.offset)
        except OSError:
            pass  # the loader drops a torn last record anyway
        try:
            self._f.close()
        except OSError:
            pass

    def _write(self, kind: int, payload: bytes, t_host: float, sync: bool = False) -> None:
        if self.failed is not None:
            raise RecordingError(self.failed)
        if self._f.closed:
            raise RecordingError(f"{self.path} is closed")
        head = _HEAD.pack(SYNC, kind, len(payload), float(t_host))
        crc = zlib.crc32(payload, zlib.crc32(head[2:]))
        data = head + payload + _CRC.pack(crc)
        try:
            n = self._f.write(data)  # unbuffered: one write() system call
            if n != len(data):  # a short write: the file system is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            now = time.monotonic()
            if sync or now - self._last_sync >= self._fsync_interval:
                os.fsync(self._f.fileno())
                self._last_sync = now
                self.synced_offset = self.offset + len(data)
        except OSError as e:
            self._fail(e)
            raise RecordingError(self.failed) from e
        self.offset += len(data)
        self.records_written += 1
        if self._on_written is not None:
            self._on_written(self.records_written, self.offset)

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
            os.fsync(self._f.fileno())
            self.synced_offset = self.offset
        except OSError as e:
            if self.failed is None:
                self._fail(e)
                raise RecordingError(self.failed) from e
        finally:
            self._f.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (where the platform allows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def free_bytes(directory: str | os.PathLike) -> int | None:
    """Bytes free for an unprivileged writer on the file system of ``directory``
    (None where the platform cannot tell)."""
    try:
        st = os.statvfs(directory)
    except (AttributeError, OSError):
        return None
    return st.f_bavail * st.f_frsize


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


def _read(p: Path) -> bytes:
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise RecordingError(f"{p}: no such file; check the path") from None
    except IsADirectoryError:
        raise RecordingError(f"{p} is a directory, not a recording; give the recording file") from None
    except OSError as e:
        raise RecordingError(f"{p}: cannot read ({e.strerror}); check its permissions") from None
    if not data:
        raise RecordingError(f"{p} is empty, not a spinemon recording; record one with 'spinemon simulate' or 'spinemon live'")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise RecordingError(f"{p} was cut off before its first record; nothing in it can be replayed (use a complete recording)")
        raise RecordingError(f"{p} is not a spinemon recording (bad magic); record one with 'spinemon simulate' or 'spinemon live'")
    return data


def _meta_of(records: list[Record]) -> tuple[list[dict], int]:
    meta, bad = [], 0
    for r in records:
        if r.kind == KIND_META:
            try:
                m = r.meta
            except ValueError:  # not UTF-8, not JSON, or nested too deeply
                bad += 1
                continue
            if isinstance(m, dict):
                meta.append(m)
    return meta, bad


def _load_segment(p: Path) -> tuple[list[Record], list[dict], bool, int, int]:
    data = _read(p)
    records, truncated, corrupt, skipped = _parse(memoryview(data)[len(MAGIC) :].tobytes())
    meta, bad = _meta_of(records)
    if not meta or meta[0].get("type") != "header":
        raise RecordingError(f"{p} has no readable session header; it cannot be replayed (give a recording written by 'spinemon live' or 'spinemon simulate')")
    header = meta[0]
    if header.get("format") != FORMAT_VERSION:
        raise RecordingError(f"{p} uses recording format {header.get('format')!r}; this spinemon reads format {FORMAT_VERSION} (use the spinemon version that wrote it)")
    return records, meta, truncated, corrupt + bad, skipped


def load_header(path: str | os.PathLike) -> dict:
    """The header of the recording at ``path`` (its first segment)."""
    return _load_segment(Path(path))[1][0]


def load(path: str | os.PathLike, *, strict: bool = False) -> Recording:
    """Load a recording with all its segments (``path``, ``path.seg2``, ...),
    as one session. A file cut off mid-record loads up to its last complete
    record (``truncated`` is set; with ``strict=True`` that raises
    :class:`TruncatedRecordingError`). Raises :class:`RecordingError` for a
    missing, empty or foreign file."""
    p = Path(path)
    paths = segment_paths(p) or [p]  # a missing file: _read says so
    records: list[Record] = []
    meta: list[dict] = []
    segments: list[Segment] = []
    for q in paths:
        recs, m, truncated, corrupt, skipped = _load_segment(q)
        if strict and truncated:
            raise TruncatedRecordingError(f"{q} ends mid-record; run without --strict to load it up to its last complete record")
        if segments and m[0].get("session_id") != segments[0].header.get("session_id"):
            break  # a stray file that belongs to another session
        segments.append(Segment(q, m[0], len(records), len(recs), truncated, corrupt, skipped))
        records.extend(recs)
        meta.extend(m)
    return Recording(
        p,
        segments[0].header,
        records,
        any(s.truncated for s in segments),
        sum(s.corrupt_records for s in segments),
        sum(s.bytes_skipped for s in segments),
        meta,
        segments,
    )
