"""Session recordings: an append-only file of the frames as received.

Format 2 (written since format 2 exists; little-endian)::

    file    := MAGIC header pad header record*
    MAGIC   := b"SPINEMON-REC\\x00\\x02\\r\\n"  (16 bytes; the last byte pair catches text-mode mangling)
    record  := MARK(4) kind(u8) seq(u32) length(u32) t_host(f64) hcrc(u32) payload(length) crc(u32)

``hcrc`` is the CRC-32 (zlib) of the 21 header bytes before it, ``crc`` the
CRC-32 of the whole record before it (header, ``hcrc`` and payload). ``seq``
numbers the records of a file from 0: the header is record 0 and is written
twice, the second copy at the next 4096-byte boundary after the first (a
PAD record, kind 0, fills the gap), so one damaged disk block or one flipped
bit never loses it. Kinds:

- ``RX``   a frame as received from the wearable (the protocol frame bytes),
- ``TX``   a frame the host sent (COMMAND),
- ``META`` a JSON object ``{"type": ..., ...}``: the session header (record
  0: format version, settings, firmware info, labels), calibration,
  set/exercise labels, alerts, the closing summary,
- ``PAD``  filler (zeros), skipped on load.

A damaged record costs that record only: it fails a CRC-32 (every single-bit
flip does), and the reader goes on at the next header that passes its own
CRC-32, so a damaged length field cannot swallow the records after it; the
record numbers say how many records were lost (``corrupt_records``). A
recording cut off mid-write (power loss, kill -9) loads up to its last
complete record (``truncated``). Format-1 files (``SYNC(2) kind length
t_host payload crc``, one header, no record numbers) still load and replay.
Records are flushed to the OS after every write and fsync'ed at most every
``fsync_interval_s`` seconds and on close (see docs/architecture.md,
"Recording flush policy"). ``on_written(records, offset)`` is called after
each record reached the operating system: from then on a crash of this
process cannot lose it (the kill campaign, ``python -m tests.campaigns.kill``,
checks exactly that).

Segments: a session resumed into an existing recording (``resume=True``)
never touches the old file; it writes the next segment, ``FILE.seg2``,
``FILE.seg3``, ... with its own header (``"segment": n``, the first
segment's ``session_id``). :func:`load` reads a recording and all its
segments in order, as one session; a segment that cannot be read is skipped
(and said so in ``notes``), the others load.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spinemon.errors import RecordingError, TruncatedRecordingError
from spinemon.io.atomic import fsync_dir as _fsync_dir

if TYPE_CHECKING:
    import numpy as np

MAGIC = b"SPINEMON-REC\x00\x02\r\n"
MAGIC_V1 = b"SPINEMON-REC\x00\x01\r\n"
MARK = b"\xd3\x9bRr"  # starts every format-2 record
SYNC_V1 = b"\xa5\x5a"  # started every format-1 record
FORMAT_VERSION = 2
FORMATS = (1, 2)  # what load() reads
KIND_PAD = 0
KIND_RX = 1
KIND_TX = 2
KIND_META = 3
KIND_NAMES = {KIND_RX: "rx", KIND_TX: "tx", KIND_META: "meta"}
_KINDS_V2 = (KIND_PAD, KIND_RX, KIND_TX, KIND_META)
_HEAD = struct.Struct("<4sBIId")  # mark, kind, seq, length, t_host (then hcrc)
_CRC = struct.Struct("<I")
_HEAD_CRC = struct.Struct("<4sBIIdI")  # the header with its CRC-32
HEAD_SIZE = _HEAD.size + _CRC.size  # 25
RECORD_OVERHEAD = HEAD_SIZE + _CRC.size  # 29
_HEAD_V1 = struct.Struct("<2sBId")  # sync, kind, length, t_host
BLOCK = 4096  # the header's copy starts on the next block boundary
MAX_PAYLOAD = 1 << 24
#: the writer refuses to start with less free space than this (a 2 h session
#: of two IMUs at 200 Hz takes about 45 MB; a full disk mid-session is
#: handled too, see RecordingWriter.failed)
MIN_FREE_BYTES = 16 << 20
MAX_SEGMENTS = 999


def encode_record(kind: int, payload: bytes, t_host: float, seq: int) -> bytes:
    """One format-2 record as it is on disk."""
    head = _HEAD.pack(MARK, kind, seq, len(payload), float(t_host))
    head += _CRC.pack(zlib.crc32(head))
    return head + payload + _CRC.pack(zlib.crc32(payload, zlib.crc32(head)))


def header_block(payload: bytes, t_host: float) -> bytes:
    """MAGIC, the header record, PAD up to the next block boundary, the
    header's copy: how every format-2 file starts."""
    rec = encode_record(KIND_META, payload, t_host, 0)
    used = len(MAGIC) + len(rec)
    copy_at = -(-(used + RECORD_OVERHEAD) // BLOCK) * BLOCK
    pad = encode_record(KIND_PAD, bytes(copy_at - used - RECORD_OVERHEAD), 0.0, 0)
    return MAGIC + rec + pad + rec


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
    """Bytes one (format-2) record with a payload of ``payload_len`` bytes takes on disk."""
    return RECORD_OVERHEAD + payload_len


@dataclass(frozen=True)
class Record:
    """One record as loaded. ``seq`` (its number in the file, format 2 only)
    and ``offset`` (where it starts in its file) take no part in equality."""

    kind: int
    t_host: float
    payload: bytes
    seq: int | None = field(default=None, compare=False)
    offset: int | None = field(default=None, compare=False)

    @property
    def meta(self) -> dict:
        """The META record's JSON. Raises ValueError (also for JSON nested
        too deeply to parse) so callers can skip a bad record."""
        try:
            return json.loads(self.payload.decode("utf-8"))
        except RecursionError:
            raise ValueError("META record nests too deeply") from None


_new = object.__new__


def _record(kind: int, t_host: float, payload: bytes, seq: int | None, offset: int) -> Record:
    """``Record(kind, t_host, payload, seq=seq, offset=offset)`` for the
    loader, a few times quicker: a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__`` (about 4.6 us a record here, the
    largest part of loading a long recording); Record has no checks in its
    ``__init__`` to skip."""
    r = _new(Record)
    r.__dict__.update(kind=kind, t_host=t_host, payload=payload, seq=seq, offset=offset)
    return r


class RecordRun:
    """Consecutive RX records of one payload length, as the loader's columnar
    path found them (each passed every check the record-by-record loop
    makes): where they stand in the file's bytes, their host times as one
    float64 array, and their numbers ``seq0``, ``seq0 + 1``, ... Nothing is
    built per record: :meth:`payloads` gives the frames as the rows of one
    array (a view of the file's bytes), :meth:`records` the :class:`Record`
    objects the record-by-record loop would have made (a
    :class:`Recording` builds them only when its ``records`` are used)."""

    kind = KIND_RX
    __slots__ = ("data", "seq0", "size", "start", "t_host")

    def __init__(self, data: bytes, start: int, size: int, seq0: int, t_host: np.ndarray) -> None:
        self.data = data  # the file's bytes
        self.start = start  # where the first record starts in them
        self.size = size  # bytes per record (RECORD_OVERHEAD + the payload's length)
        self.seq0 = seq0  # the first record's number
        self.t_host = t_host  # float64, one per record

    def __len__(self) -> int:
        return len(self.t_host)

    @property
    def length(self) -> int:
        """Bytes in each record's payload (the frame)."""
        return self.size - RECORD_OVERHEAD

    def payloads(self) -> np.ndarray:
        """The frames, one row each: a read-only (n, length) uint8 view of the file's bytes."""
        import numpy as np

        return np.ndarray(
            (len(self), self.length),
            dtype=np.uint8,
            buffer=self.data,
            offset=self.start + HEAD_SIZE,
            strides=(self.size, 1),
        )

    def cut(self, a: int, b: int) -> RecordRun:
        """Records ``a:b`` of the run (0 <= a < b <= len)."""
        return RecordRun(self.data, self.start + a * self.size, self.size, self.seq0 + a, self.t_host[a:b])

    def records(self) -> list[Record]:
        """Their :class:`Record` objects (with ``seq`` and ``offset``)."""
        data, size, length, new, cls = self.data, self.size, self.length, _new, Record
        out = []
        body = self.start + HEAD_SIZE
        for t_host, seq, a in zip(
            self.t_host.tolist(),
            range(self.seq0, self.seq0 + len(self)),
            range(body, body + len(self) * size, size),
        ):
            r = new(cls)
            r.__dict__.update(
                kind=KIND_RX, t_host=t_host, payload=data[a : a + length], seq=seq, offset=a - HEAD_SIZE
            )
            out.append(r)
        return out


#: what a loaded recording holds, in order: single records and runs of RX records
Piece = Record | RecordRun


def records_in(pieces: list[Piece]) -> list[Record]:
    """The records of ``pieces``, in order."""
    out: list[Record] = []
    for p in pieces:
        if isinstance(p, RecordRun):
            out.extend(p.records())
        else:
            out.append(p)
    return out


def _cut_pieces(pieces: list[Piece], first: int, count: int) -> list[Piece]:
    """Records ``first:first+count`` of ``pieces`` (a run cut where the range cuts it)."""
    out: list[Piece] = []
    at, stop = 0, first + count
    for p in pieces:
        if at >= stop:
            break
        n = len(p) if isinstance(p, RecordRun) else 1
        if at + n > first:
            if isinstance(p, RecordRun) and (at < first or at + n > stop):
                p = p.cut(max(first - at, 0), min(stop - at, n))
            out.append(p)
        at += n
    return out


def _count(pieces: list[Piece]) -> int:
    return sum(len(p) if isinstance(p, RecordRun) else 1 for p in pieces)


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
    format: int = FORMAT_VERSION
    header_copies: int = 1  # readable copies of the header (format 2 writes 2, format 1 had 1)


@dataclass
class Recording:
    """A loaded recording (all its segments, in order). ``header`` is the
    first readable segment's header (its record 0). ``corrupt_records``:
    records lost to damage (skipped); ``bytes_skipped``: the bytes of the
    damaged stretches.

    ``pieces``: the records as the loader found them, runs of RX frames kept
    as columns (:class:`RecordRun`) between single records. When given, they
    stand for ``records``: the :class:`Record` list is built from them the
    first time ``records`` is used, and from then on that list is the
    recording (``pieces`` becomes None: a caller may change the list). Replay
    reads the pieces through :meth:`pieces_in` and never builds it."""

    path: Path
    header: dict
    records: list[Record]
    truncated: bool = False
    corrupt_records: int = 0
    bytes_skipped: int = 0
    meta: list[dict] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    #: segment files that could not be read (path, why); the others loaded
    unreadable_segments: list[tuple[Path, str]] = field(default_factory=list)
    #: one line per repair the loader made (damaged magic, a header read from its copy, a segment skipped)
    notes: list[str] = field(default_factory=list)
    pieces: list[Piece] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pieces is not None:
            del self.records  # built from the pieces on first use (__getattr__)

    def __getattr__(self, name: str) -> Any:
        # only called for an attribute not found the usual way: ``records`` not built yet
        pieces = self.__dict__.get("pieces")
        if name != "records" or pieces is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.records = records_in(pieces)
        self.pieces = None
        return self.records

    def pieces_in(self, first: int = 0, count: int | None = None) -> list[Piece]:
        """Records ``first:first+count`` (all from ``first`` without a count):
        as runs and single records while the recording still has its pieces,
        else as single records."""
        if self.pieces is None:
            return list(self.records[first : None if count is None else first + count])
        return _cut_pieces(self.pieces, first, _count(self.pieces) if count is None else count)

    def frames_in(self) -> Iterator[tuple[float, bytes]]:
        for p in self.pieces_in():
            if isinstance(p, RecordRun):
                yield from ((r.t_host, r.payload) for r in p.records())
            elif p.kind == KIND_RX:
                yield p.t_host, p.payload

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
    and the file offset they end at). ``t_start``: the session's start as
    Unix time, stamped on the header (default: now; ``import`` gives the
    file's own date). ``overwrite``: an existing recording at ``path`` (and its
    later segments) is replaced by the new one when the new file's header is
    on the disk (``--force``); without it an existing ``path`` is refused.

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
        t_start: float | None = None,
        overwrite: bool = False,
    ) -> None:
        base = Path(path)
        self.base_path = base
        self.segment = 1
        session_id = uuid.uuid4().hex
        if base.exists() and not (overwrite and not resume):
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
        self.records_written = 0  # records (the header once, not its copy nor the PAD)
        self.offset = 0  # bytes in the file that hold complete records (and MAGIC)
        self.synced_offset = 0  # bytes known to be on the disk (fsync'ed)
        self.failed: str | None = None
        self.session_id = session_id
        self._seq = 0  # the next record's number
        hdr = {
            "type": "header",
            "format": FORMAT_VERSION,
            **header,
            "session_id": session_id,
            "segment": self.segment,
        }
        # the header's host time dates the session (``history``); an import gives the file's own date
        block = header_block(_json_bytes(hdr), time.time() if t_start is None else float(t_start))
        # The file appears under its name only with MAGIC and the header
        # (both copies) on the disk: written to a temporary name, fsync'ed,
        # then linked (never replaces an existing file). A crash before that
        # leaves at most a stray temporary file, never a recording without a
        # header.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self._f = open(tmp, "xb", buffering=0)  # noqa: SIM115 (held open for the session)
        except OSError as e:
            raise RecordingError(f"cannot create {self.path}: {e.strerror}; choose another --out") from e
        try:
            self._write_raw(block, sync=True)
            self._seq = 1
            try:
                if overwrite and not resume:
                    if self.path.is_dir():
                        raise IsADirectoryError(errno.EISDIR, "is a directory")
                    for old in segment_paths(base)[1:]:  # the old recording's later segments go with it
                        os.unlink(old)
                    os.replace(tmp, self.path)
                else:
                    os.link(tmp, self.path)
            except FileExistsError:
                self._f.close()
                raise RecordingError(
                    f"{self.path} appeared while this recording was created (two sessions on one --out?); choose another --out"
                ) from None
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

    def _write_raw(self, data: bytes, sync: bool = False) -> None:
        """Append ``data`` (whole records) with one write() system call."""
        if self.failed is not None:
            raise RecordingError(self.failed)
        if self._f.closed:
            raise RecordingError(f"{self.path} is closed")
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

    def _write(self, kind: int, payload: bytes, t_host: float, sync: bool = False) -> None:
        self._write_raw(encode_record(kind, payload, t_host, self._seq), sync)
        self._seq += 1

    def frame_in(self, frame: bytes, t_host: float) -> None:
        self._write(KIND_RX, bytes(frame), t_host)

    def frame_out(self, frame: bytes, t_host: float) -> None:
        self._write(KIND_TX, bytes(frame), t_host)

    def meta(self, data: dict[str, Any], t_host: float | None = None, *, sync: bool = False) -> None:
        if "type" not in data:
            raise ValueError("META records need a 'type'")
        self._write(KIND_META, _json_bytes(data), time.time() if t_host is None else t_host, sync=sync)

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

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def free_bytes(directory: str | os.PathLike) -> int | None:
    """Bytes free for an unprivileged writer on the file system of ``directory``
    (None where the platform cannot tell)."""
    try:
        st = os.statvfs(directory)
    except (AttributeError, OSError):
        return None
    return st.f_bavail * st.f_frsize


def _json_bytes(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False, default=_json_default).encode()


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


def _header_at(data: bytes, pos: int) -> tuple[int, int, int, float] | None:
    """``(kind, seq, length, t_host)`` of the format-2 record header at
    ``pos`` if it passes its checks (marker, header CRC-32, a known kind, a
    length within MAX_PAYLOAD), else None."""
    if len(data) - pos < HEAD_SIZE:
        return None
    mark, kind, seq, length, t_host, hcrc = _HEAD_CRC.unpack_from(data, pos)
    if (
        mark != MARK
        or hcrc != zlib.crc32(data[pos : pos + _HEAD.size])
        or kind not in _KINDS_V2
        or length > MAX_PAYLOAD
    ):
        return None
    return kind, seq, length, t_host


def _next_header(data: bytes, pos: int) -> int:
    """Offset of the next format-2 record header at or after ``pos`` that
    passes its checks, or -1."""
    while True:
        pos = data.find(MARK, pos)
        if pos < 0 or _header_at(data, pos) is not None:
            return pos
        pos += 1


@dataclass
class _Parsed:
    records: list[Piece]  # single records and runs of RX records, in order
    count: int = 0  # records in them
    truncated: bool = False
    lost: int = (
        0  # records lost to damage (format 2: from the record numbers; format 1: one per damaged stretch)
    )
    skipped: int = 0  # bytes in damaged stretches
    header_copies: int = 0


#: the columnar path takes runs of at least this many RX records; after a
#: shorter one the loop goes record by record for _SCALAR_STEPS records,
#: twice as many after each further miss (up to _SCALAR_MAX), so a file of
#: ever-changing lengths costs little more than the plain loop (a record of
#: another kind is no miss: it goes record by record and the columnar path
#: is tried again at the record after it)
_MIN_RUN = 8
_SCALAR_STEPS = 8
_SCALAR_MAX = 1024
#: records checked at once by the columnar path (bounds its scratch memory)
_RUN_CHUNK = 4096
_HEAD_DTYPES: dict[int, Any] = {}


def _head_dtype(size: int) -> Any:
    """A numpy record type over format-2 records of ``size`` bytes: the header's fields."""
    dt = _HEAD_DTYPES.get(size)
    if dt is None:
        import numpy as np

        dt = np.dtype(
            {
                "names": ["mark", "kind", "seq", "length", "t_host", "hcrc"],
                "formats": ["<u4", "u1", "<u4", "<u4", "<f8", "<u4"],
                "offsets": [0, 4, 5, 9, 13, 21],
                "itemsize": size,
            }
        )
        _HEAD_DTYPES[size] = dt
    return dt


_MARK_U32 = struct.unpack("<I", MARK)[0]
#: CRC-32 of a record followed by its own CRC-32 (little-endian): what every
#: intact record gives, whatever it holds (its CRC is the only one that does)
_RESIDUE = zlib.crc32(b"\0\0\0\0")
#: the header bytes that differ from record to record in a run: seq and t_host
_VARYING = (5, 6, 7, 8, 13, 14, 15, 16, 17, 18, 19, 20)
_HEAD_CRC_TABLES: list[Any] = []


def _head_crc_table() -> Any:
    """(12, 256) uint32: what byte value ``v`` at the ``k``-th of the varying
    header positions adds to the header's CRC-32. CRC-32 is affine over
    GF(2): for messages of one length, crc(a ^ b) = crc(a) ^ crc(b) ^
    crc(zeros), so a header's CRC-32 is that of its fixed bytes with the
    varying ones zeroed, XOR each varying byte's entry here; exact, not a
    hash of the CRC."""
    if not _HEAD_CRC_TABLES:
        import numpy as np

        zero = bytes(_HEAD.size)
        base = zlib.crc32(zero)
        table = np.empty((len(_VARYING), 256), dtype=np.uint32)
        for k, j in enumerate(_VARYING):
            for v in range(256):
                table[k, v] = zlib.crc32(zero[:j] + bytes((v,)) + zero[j + 1 :]) ^ base
        _HEAD_CRC_TABLES.append(table)
    return _HEAD_CRC_TABLES[0]


def _clean_run(data: bytes, pos: int, prev: int, pieces: list[Piece]) -> tuple[int, int, int] | None:
    """The columnar path of :func:`_parse_v2`: from ``pos``, the longest run
    of RX records as long as the one at ``pos`` that each pass every check
    the record-by-record loop makes (marker, header CRC-32, the kind, the
    length, the whole record's CRC-32) and are numbered ``prev + 1``,
    ``prev + 2``, ... (so none is lost, folded or out of order). Appends
    them to ``pieces`` as one :class:`RecordRun` (no Record built) and
    returns (the last one's number, where it starts, where it ends), or None
    for a run shorter than ``_MIN_RUN`` (nothing appended). Only RX records:
    the few others (labels, alerts, commands) go record by record, so a run
    is all frames."""
    import numpy as np

    n = len(data)
    if n - pos < HEAD_SIZE:
        return None
    length = _HEAD.unpack_from(data, pos)[3]
    size = RECORD_OVERHEAD + length
    if length > MAX_PAYLOAD or (n - pos) // size < _MIN_RUN:
        return None
    crc32, residue = zlib.crc32, _RESIDUE
    table = _head_crc_table()
    which = np.arange(len(_VARYING))
    total = 0
    first_pos, first_seq = pos, prev + 1
    t_hosts = []
    last_start = pos
    chunk = 4 * _MIN_RUN  # small at first: a short run costs little
    while True:
        k = min((n - pos) // size, chunk)
        chunk = min(4 * chunk, _RUN_CHUNK)
        if k < 1:
            break
        heads = np.frombuffer(data, dtype=_head_dtype(size), count=k, offset=pos)
        ok = (
            (heads["mark"] == _MARK_U32)
            & (heads["length"] == length)
            & (heads["kind"] == KIND_RX)
            & (heads["seq"] == np.arange(prev + 1, prev + 1 + k, dtype=np.int64))
        )
        m = k if ok.all() else int(np.argmin(ok))
        if m:
            # each header's CRC-32, all at once: the fixed bytes' (mark,
            # kind and length, equal in the run) and each varying byte's part
            rows = np.frombuffer(data, dtype=np.uint8, count=m * size, offset=pos).reshape(m, size)
            fixed = crc32(data[pos : pos + 5] + bytes(4) + data[pos + 9 : pos + 13] + bytes(8))
            hcrc = np.bitwise_xor.reduce(table[which, rows[:, _VARYING]], axis=1) ^ fixed
            ok = hcrc == heads["hcrc"][:m]
            m = m if ok.all() else int(np.argmin(ok))
        if m:
            # the whole record's CRC-32, record by record (its own CRC after it gives the residue)
            crcs = np.array(
                [crc32(data[a : a + size]) for a in range(pos, pos + m * size, size)], dtype=np.uint32
            )
            ok = crcs == residue
            m = m if ok.all() else int(np.argmin(ok))
        if total == 0 and m < _MIN_RUN:
            return None
        if m:
            t_hosts.append(heads["t_host"][:m])
            total += m
            prev += m
            last_start = pos + (m - 1) * size
            pos += m * size
        if m < k:
            break
    t_host = t_hosts[0].copy() if len(t_hosts) == 1 else np.concatenate(t_hosts)
    pieces.append(RecordRun(data, first_pos, size, first_seq, t_host))
    return prev, last_start, pos


def _parse_v2(data: bytes, start: int) -> _Parsed:
    """Format-2 records from ``data[start:]``.

    A record that fails a check costs that record only: the reader goes on at
    the next header that passes its own CRC-32 (found by its marker), so a
    damaged length cannot swallow what follows. Record numbers (``seq``) say
    how many records a damaged stretch held; a record identical to the one
    before it (the header's copy) is folded into it; PAD records are skipped.
    A file ending inside a record whose header checks out, inside a header,
    or in zero bytes (what a power loss can leave) is ``truncated``.
    """
    out = _Parsed([])
    n = len(data)
    view = memoryview(data)
    pos = start
    prev = None  # the highest record number loaded so far
    last = (0, 0)  # where the last record loaded stands (to fold copies)
    damaged = False  # bytes were damaged since the last record loaded
    stretch = None  # where the current damaged stretch starts
    hs, head, known, max_payload = HEAD_SIZE, _HEAD.size, _KINDS_V2, MAX_PAYLOAD
    crc32, unpack_head, unpack_crc = zlib.crc32, _HEAD_CRC.unpack_from, _CRC.unpack_from
    columnar_from = 0  # the columnar path is tried again from this many records loaded
    scalar_steps = _SCALAR_STEPS
    while pos < n:
        if (
            prev is not None
            and stretch is None
            and not damaged
            and out.count >= columnar_from
            and n - pos > 4
            and data[pos + 4] == KIND_RX  # the kind byte (a label or alert between runs: no miss)
        ):
            # nothing damaged since the last record: the run of RX records
            # that follows it, numbered on and as long as the next one, is
            # checked column by column (the same checks as below) and kept
            # as one RecordRun
            run = _clean_run(data, pos, prev, out.records)
            if run is not None:
                out.count += run[0] - prev  # numbered prev + 1 .. run[0]
                prev, last = run[0], (run[1], run[2])
                pos = run[2]
                scalar_steps = _SCALAR_STEPS
                continue
            columnar_from = out.count + scalar_steps
            scalar_steps = min(2 * scalar_steps, _SCALAR_MAX)
        h = None
        if n - pos >= hs:  # _header_at, inlined: this is the loop every record goes through
            mark, kind, seq, length, t_host, hcrc = unpack_head(data, pos)
            if (
                mark == MARK
                and hcrc == crc32(view[pos : pos + head])
                and kind in known
                and length <= max_payload
            ):
                h = kind, seq, length, t_host
        torn = False
        if h is not None:
            body = pos + hs
            end = body + length + _CRC.size
            if end > n:
                torn = True
            elif unpack_crc(data, body + length)[0] == crc32(view[pos : body + length]):
                if stretch is not None:
                    out.skipped += pos - stretch
                    stretch = None
                if kind != KIND_PAD:
                    if (
                        seq == prev and view[pos:end] == view[last[0] : last[1]]
                    ):  # a copy of the record before
                        if seq == 0:
                            out.header_copies += 1
                    else:
                        if prev is None:
                            out.lost += seq
                        elif seq > prev:
                            out.lost += seq - prev - 1
                        elif damaged:
                            out.lost += 1
                        out.records.append(_record(kind, t_host, data[body : body + length], seq, pos))
                        out.count += 1
                        if seq == 0 and out.count == 1:
                            out.header_copies = 1
                        if prev is None or seq > prev:
                            prev = seq
                        last = (pos, end)
                    damaged = False
                pos = end
                continue
        if h is not None and not torn and (end == n or _header_at(data, end) is not None):
            nxt = (
                end if end < n else -1
            )  # only the payload is damaged: the next record is where the header says
        else:
            nxt = _next_header(data, pos + 1)
        if nxt < 0:  # nothing valid after pos: a torn last record, or damage
            z = pos + len(data[pos:].rstrip(b"\0"))  # zeros from z on (a power loss can leave them)
            if torn or (z - pos < HEAD_SIZE if h is None else z <= end - _CRC.size):
                out.truncated = True
                tail = pos
            else:
                damaged = True
                stretch = pos if stretch is None else stretch
                tail = n
            if stretch is not None:
                out.skipped += tail - stretch
            if damaged:
                out.lost += 1
            break
        damaged = True
        stretch = pos if stretch is None else stretch
        pos = nxt
    return out


def _valid_v1_at(data: bytes, pos: int) -> int:
    """End offset of the complete, CRC-checked format-1 record at ``pos``, or -1."""
    n = len(data)
    if n - pos < _HEAD_V1.size:
        return -1
    sync, kind, length, _ = _HEAD_V1.unpack_from(data, pos)
    end = pos + _HEAD_V1.size + length + _CRC.size
    if sync != SYNC_V1 or kind not in KIND_NAMES or length > MAX_PAYLOAD or end > n:
        return -1
    body = pos + _HEAD_V1.size
    (crc,) = _CRC.unpack_from(data, body + length)
    view = memoryview(data)
    return end if crc == zlib.crc32(view[body : body + length], zlib.crc32(view[pos + 2 : body])) else -1


def _next_v1(data: bytes, pos: int) -> int:
    """Offset of the next complete, CRC-checked format-1 record at or after ``pos``, or -1."""
    while True:
        pos = data.find(SYNC_V1, pos)
        if pos < 0 or _valid_v1_at(data, pos) >= 0:
            return pos
        pos += 1


def _parse_v1(data: bytes, start: int) -> _Parsed:
    """Format-1 records (written by spinemon before format 2) from
    ``data[start:]``: a damaged stretch is skipped up to the next SYNC that
    starts a complete record whose CRC-32 checks out (one lost record
    counted per stretch: format 1 has no record numbers)."""
    out = _Parsed([])
    n = len(data)
    pos = start
    stretch = None
    hs = _HEAD_V1.size
    while pos < n:
        end = _valid_v1_at(data, pos)
        if end >= 0:
            if stretch is not None:
                out.skipped += pos - stretch
                stretch = None
            _, kind, length, t_host = _HEAD_V1.unpack_from(data, pos)
            out.records.append(_record(kind, t_host, bytes(data[pos + hs : pos + hs + length]), None, pos))
            out.count += 1
            pos = end
            continue
        torn = False
        if n - pos >= hs:
            sync, kind, length, _ = _HEAD_V1.unpack_from(data, pos)
            torn = (
                sync == SYNC_V1
                and kind in KIND_NAMES
                and length <= MAX_PAYLOAD
                and pos + hs + length + _CRC.size > n
            )
        nxt = _next_v1(data, pos + 1)
        if nxt < 0:
            if torn or n - pos < hs or data.count(0, pos) == n - pos:
                out.truncated = True
                if stretch is not None:
                    out.skipped += pos - stretch
            else:
                out.skipped += n - (pos if stretch is None else stretch)
                if stretch is None:
                    out.lost += 1
            break
        if stretch is None:
            stretch = pos
            out.lost += 1
        pos = nxt
    out.header_copies = 1 if out.records else 0
    return out


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
        raise RecordingError(
            f"{p} is empty, not a spinemon recording; record one with 'spinemon simulate' or 'spinemon live'"
        )
    return data


def _format_of(p: Path, data: bytes) -> tuple[int, int, list[str]]:
    """(format, offset of the first record, notes) of a recording's bytes;
    RecordingError for a file that is none. The first record decides (a
    format-2 header that passes its CRC-32, or a format-1 record whose CRC-32
    checks out, right after the 16 magic bytes), then the magic; a damaged
    magic does not lose the file: a format-2 record header that passes its
    CRC-32, or a format-1 record whose CRC-32 checks out, anywhere in it says
    what it is."""
    m = len(MAGIC)
    note = f"{p.name}: its first {m} bytes (the format marker) are damaged; read as format %d"
    if _header_at(data, m) is not None:
        fmt = 2
    elif _valid_v1_at(data, m) >= 0:
        fmt = 1
    elif data.startswith(MAGIC):
        return 2, m, []
    elif data.startswith(MAGIC_V1):
        return 1, m, []
    elif MAGIC.startswith(data) or MAGIC_V1.startswith(data):
        raise RecordingError(
            f"{p} was cut off before its first record; nothing in it can be replayed (use a complete recording)"
        )
    else:
        first = _next_header(data, 0)
        if first >= 0:
            return 2, first, [note % 2]
        first = _next_v1(data, 0)
        if first >= 0:
            return 1, first, [note % 1]
        raise RecordingError(
            f"{p} is not a spinemon recording (bad magic); record one with 'spinemon simulate' or 'spinemon live'"
        )
    return fmt, m, [] if data.startswith(MAGIC if fmt == 2 else MAGIC_V1) else [note % fmt]


def _meta_of(records: list[Piece]) -> tuple[list[dict], int]:
    meta, bad = [], 0
    for r in records:
        if isinstance(r, Record) and r.kind == KIND_META:
            try:
                m = r.meta
            except ValueError:  # not UTF-8, not JSON, or nested too deeply
                bad += 1
                continue
            if isinstance(m, dict):
                meta.append(m)
    return meta, bad


def _no_header(p: Path, why: str = "") -> RecordingError:
    return RecordingError(
        f"{p} has no readable session header{why}; it cannot be replayed (give a recording written by 'spinemon live' or 'spinemon simulate')"
    )


def _wrong_format(p: Path, header: dict) -> RecordingError:
    return RecordingError(
        f"{p} uses recording format {header.get('format')!r}; this spinemon reads formats "
        f"{', '.join(map(str, FORMATS[:-1]))} and {FORMATS[-1]} (use the spinemon version that wrote it)"
    )


def _load_segment(
    p: Path, data: bytes | None = None
) -> tuple[list[Piece], list[dict], _Parsed, int, list[str]]:
    """One segment file (or its bytes): (its records as pieces, META dicts,
    parse result, format, notes)."""
    if data is None:
        data = _read(p)
    elif not data:
        raise RecordingError(
            f"{p} is empty, not a spinemon recording; record one with 'spinemon simulate' or 'spinemon live'"
        )
    fmt, start, notes = _format_of(p, data)
    parsed = _parse_v2(data, start) if fmt == 2 else _parse_v1(data, start)
    records = parsed.records
    if fmt == 2:
        # the header is record 0 (the first copy that reads as this format's header)
        at, other = None, None
        first = records_in(_cut_pieces(records, 0, 8))
        for i, r in enumerate(first[:8]):  # a forged record or two may stand before it
            if r.seq != 0:
                continue
            try:
                h = r.meta if r.kind == KIND_META else None
            except ValueError:  # not UTF-8, not JSON, or nested too deeply
                continue
            if isinstance(h, dict) and h.get("type") == "header":
                if h.get("format") == fmt:
                    at = i
                    break
                other = other or h
        if at is None:
            if other is not None:
                raise _wrong_format(p, other)
            if not records and parsed.lost == 0:
                raise RecordingError(
                    f"{p} was cut off before its first record; nothing in it can be replayed (use a complete recording)"
                )
            raise _no_header(p, " (both copies are damaged)" if not records or first[0].seq != 0 else "")
        if at:  # records numbered 0 before it are not the header: damage that passed the CRC
            parsed.lost += at
            records = parsed.records = _cut_pieces(records, at, parsed.count - at)
            parsed.count -= at
        if parsed.header_copies < 2:
            notes.append(f"{p.name}: one copy of its header is damaged or missing; the other was used")
    meta, bad = _meta_of(records)
    parsed.lost += bad  # META records that passed the CRC but do not read as JSON objects
    if fmt == 1 and (not meta or meta[0].get("type") != "header"):
        raise _no_header(p)
    header = meta[0]
    if header.get("format") != fmt:
        raise _wrong_format(p, header)
    return records, meta, parsed, fmt, notes


def load_header(path: str | os.PathLike) -> dict:
    """The session header of the recording at ``path`` (of its first
    readable segment)."""
    return load(path).header


def loads(data: bytes, name: str = "<bytes>", *, strict: bool = False) -> Recording:
    """Load one recording file's bytes (one segment) as :func:`load` loads a
    file; ``name`` stands for the file in messages."""
    return _assemble(Path(name), [(Path(name), bytes(data))], strict)


def load(path: str | os.PathLike, *, strict: bool = False) -> Recording:
    """Load a recording with all its segments (``path``, ``path.seg2``, ...),
    as one session. A file cut off mid-record loads up to its last complete
    record (``truncated`` is set; with ``strict=True`` that raises
    :class:`TruncatedRecordingError`); damaged records are skipped and
    counted (``corrupt_records``); a segment that cannot be read at all, or
    that belongs to another session, is skipped (``unreadable_segments``,
    ``notes``) and the others load. Raises :class:`RecordingError` for a
    missing, empty or foreign file, or when no segment can be read."""
    p = Path(path)
    paths = segment_paths(p) or [p]  # a missing file: _read says so
    return _assemble(p, [(q, None) for q in paths], strict)


def _assemble(p: Path, files: list[tuple[Path, bytes | None]], strict: bool) -> Recording:
    records: list[Piece] = []
    n_records = 0
    meta: list[dict] = []
    segments: list[Segment] = []
    unreadable: list[tuple[Path, str]] = []
    notes: list[str] = []
    first_error: RecordingError | None = None
    for q, data in files:
        try:
            recs, m, parsed, fmt, seg_notes = _load_segment(q, data)
        except RecordingError as e:
            first_error = first_error or e
            unreadable.append((q, str(e)))
            continue
        if strict and parsed.truncated:
            raise TruncatedRecordingError(
                f"{q} ends mid-record; run without --strict to load it up to its last complete record"
            )
        if segments and m[0].get("session_id") != segments[0].header.get("session_id"):
            unreadable.append((q, f"{q} belongs to another session"))
            continue
        notes.extend(seg_notes)
        segments.append(
            Segment(
                q,
                m[0],
                n_records,
                parsed.count,
                parsed.truncated,
                parsed.lost,
                parsed.skipped,
                fmt,
                parsed.header_copies,
            )
        )
        records.extend(recs)
        n_records += parsed.count
        meta.extend(m)
    if not segments:
        assert first_error is not None
        raise first_error
    notes.extend(f"segment {q.name} skipped: {why}" for q, why in unreadable)
    return Recording(
        p,
        segments[0].header,
        [],  # built from the pieces when first used
        any(s.truncated for s in segments),
        sum(s.corrupt_records for s in segments),
        sum(s.bytes_skipped for s in segments),
        meta,
        segments,
        unreadable,
        notes,
        pieces=records,
    )
