"""CPython fuzz targets. Each ``run(input)`` returns an outcome label
("accepted:SAMPLES", "rejected:bad_crc", ...) and raises :class:`Finding`
when an invariant breaks; any other exception escaping a target is a crash.

Targets and their invariants:

- ``protocol``: ``spinemon_protocol.decode`` and ``decode_command`` raise only
  ProtocolError; an accepted SAMPLES/COMMAND/ACK/ERROR re-encodes to the very
  same bytes; ``decode_command`` accepts exactly the frames ``decode`` reads as
  a COMMAND and rejects the rest with the same reason.
- ``cobs_stream``: ``cobs_decode`` raises only ProtocolError and what it
  accepts round-trips; ``StreamDecoder.feed`` never raises, returns the same
  frames and framing-error count however the bytes are split into reads, and
  never returns a frame longer than MAX_ENCODED.
- ``stream_decoder``: ``spinemon.core.stream.FrameDecoder.feed`` never raises; a
  rejected frame changes only the rejection counters; accepted + rejected ==
  fed; every SampleBlock is consistent (lengths, finite values, increasing seq).
- ``recording``: ``spinemon.io.recording.load`` on mutated files raises only
  RecordingError, and only when no copy of the header is undamaged; the
  loaded records are well-formed records that stand in the file where they
  say, in order; every undamaged record loads: each record of the original
  that lies wholly in the unchanged prefix or the unchanged suffix of the
  file (not only the prefix).
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

import spinemon_protocol as sp


class Finding(Exception):
    """An invariant broke (not an exception from the code under test)."""


KIND_NAMES = {sp.T_SAMPLES: "SAMPLES", sp.T_STATUS: "STATUS", sp.T_COMMAND: "COMMAND", sp.T_ACK: "ACK", sp.T_ERROR: "ERROR"}


def reencode(obj) -> bytes | None:
    if obj.kind == sp.T_SAMPLES:
        return sp.encode_samples(obj.seq, obj.t_us, obj.period_us, obj.mask, obj.ranges, obj.flags, obj.count, obj.block)
    if obj.kind == sp.T_COMMAND:
        return sp.encode_command(obj.counter, obj.opcode, obj.args)
    if obj.kind == sp.T_ACK:
        return sp.encode_ack(obj.counter, obj.opcode, obj.value)
    if obj.kind == sp.T_ERROR:
        return sp.encode_error(obj.counter, obj.opcode, obj.code)
    return None  # STATUS: the encoder clamps (period_us >= 1), the decoder reports what came


def protocol_outcome(frame: bytes) -> str:
    """The CPython decoder's verdict, in the same words the MicroPython server uses."""
    try:
        obj = sp.decode(frame)
    except sp.ProtocolError as e:
        return "rejected:" + e.reason
    return "accepted:" + KIND_NAMES[obj.kind]


class ProtocolTarget:
    name = "protocol (CPython)"

    def run(self, frame: bytes) -> str:
        try:
            obj = sp.decode(frame)
        except sp.ProtocolError as e:
            if e.code not in sp.ERROR_NAMES:
                raise Finding(f"unknown reason code {e.code}")
            outcome = "rejected:" + e.reason
            try:
                ftype = sp.check_frame(frame)
            except sp.ProtocolError:
                ftype = None  # rejected before the type is read: the same reason everywhere
            want = sp.E_TYPE if ftype is not None and ftype != sp.T_COMMAND else e.code
            try:
                sp.decode_command(frame)
            except sp.ProtocolError as e2:
                if e2.code != want:
                    raise Finding(f"decode says {e.reason}, decode_command says {e2.reason}")
            else:
                raise Finding("decode_command accepted a frame decode rejects")
            return outcome
        if obj.kind not in KIND_NAMES:
            raise Finding(f"decoded kind {obj.kind!r}")
        again = reencode(obj)
        if again is not None and again != bytes(frame):
            raise Finding(f"{KIND_NAMES[obj.kind]} does not re-encode to the same bytes")
        try:
            cmd = sp.decode_command(frame)
        except sp.ProtocolError as e:
            if obj.kind == sp.T_COMMAND or e.code != sp.E_TYPE:
                raise Finding(f"decode_command rejected ({e.reason}) a frame decode read as {KIND_NAMES[obj.kind]}")
        else:
            if obj.kind != sp.T_COMMAND or (cmd.counter, cmd.opcode, tuple(cmd.args)) != (obj.counter, obj.opcode, tuple(obj.args)):
                raise Finding("decode_command and decode disagree")
        return "accepted:" + KIND_NAMES[obj.kind]


class CobsStreamTarget:
    """One input = one byte stream plus how it is split into reads."""

    name = "COBS + StreamDecoder (CPython)"

    def run(self, item: tuple[bytes, list[bytes]]) -> str:
        data, chunks = item
        try:
            payload = sp.cobs_decode(data.split(sp.DELIMITER, 1)[0])
        except sp.ProtocolError as e:
            if e.code != sp.E_FRAMING:
                raise Finding(f"cobs_decode raised {e.reason}")
            cobs = "rejected:bad_framing"
        else:
            if sp.cobs_decode(sp.cobs_encode(payload)) != payload:
                raise Finding("COBS round trip failed")
            cobs = "accepted"
        whole = sp.StreamDecoder()
        out_whole = whole.feed(data)
        split = sp.StreamDecoder()
        out_split = []
        for c in chunks:
            out_split.extend(split.feed(c))
        if out_whole != out_split or whole.framing_errors != split.framing_errors:
            raise Finding("StreamDecoder output depends on how the bytes were split")
        if any(len(f) > sp.MAX_ENCODED for f in out_whole):
            raise Finding("StreamDecoder returned a frame longer than MAX_ENCODED")
        return f"cobs {cobs}; stream {'frames' if out_whole else 'no frame'}{', framing errors' if whole.framing_errors else ''}"


class FrameDecoderTarget:
    """One long-lived FrameDecoder (renewed every ``renew`` frames) fed one
    frame per input, with a host time that mostly advances."""

    name = "FrameDecoder.feed (CPython)"

    def __init__(self, renew: int = 2000) -> None:
        from spinemon.core.stream import FrameDecoder

        self._cls = FrameDecoder
        self.renew = renew
        self._n = 0
        self._t = 0.0
        self.dec = FrameDecoder()

    def run(self, item: tuple[bytes, float]) -> str:
        frame, dt = item
        self._n += 1
        if self._n % self.renew == 0:
            self.dec = self._cls()
        self._t += dt
        st = self.dec.stats
        before = st.as_dict()
        out = self.dec.feed(frame, self._t)
        after = st.as_dict()
        if after["frames"] + after["bad_frames"] != before["frames"] + before["bad_frames"] + 1:
            raise Finding("stats: accepted + rejected != frames fed")
        if not out:
            if after["bad_frames"] == before["bad_frames"] + 1:
                changed = {k for k in after if after[k] != before[k]} - {"rejected", "bad_frames"}
                if changed:
                    raise Finding(f"a rejected frame changed {sorted(changed)}")
                (reason,) = [k for k in after["rejected"] if after["rejected"][k] != before["rejected"].get(k, 0)]
                return "rejected:" + reason
            return "accepted:duplicate"
        (item_out,) = out
        if hasattr(item_out, "seq") and hasattr(item_out, "acc"):
            b = item_out
            n = len(b.seq)
            if n == 0 or len(b.t) != n or len(b.flags) != n or len(b.device_angle_deg) != n:
                raise Finding("SampleBlock lengths disagree")
            for s in b.sensors:
                if b.acc[s].shape != (n, 3) or b.gyr[s].shape != (n, 3):
                    raise Finding("SampleBlock array shapes")
                if not (np.isfinite(b.acc[s]).all() and np.isfinite(b.gyr[s]).all()):
                    raise Finding("non-finite samples")
            if n > 1 and not (np.diff(b.seq) == 1).all():
                raise Finding("seq not consecutive inside a block")
            if not (math.isfinite(b.rate_hz) and b.rate_hz > 0):
                raise Finding("bad rate_hz")
            return "accepted:SAMPLES"
        return "accepted:" + KIND_NAMES.get(item_out.kind, "?")


def _serialised(r, fmt: int) -> bytes:
    """A loaded record as it must stand in a file of format ``fmt``."""
    from spinemon.io import recording as rec

    if fmt == 1:
        head = rec._HEAD_V1.pack(rec.SYNC_V1, r.kind, len(r.payload), r.t_host)
        return head + r.payload + rec._CRC.pack(zlib.crc32(r.payload, zlib.crc32(head[2:])))
    return rec.encode_record(r.kind, r.payload, r.t_host, r.seq)


def common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    lo = 0
    step = 4096
    while lo + step <= n and a[lo : lo + step] == b[lo : lo + step]:
        lo += step
    while lo < n and a[lo] == b[lo]:
        lo += 1
    return lo


def common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common tail of ``a`` and ``b`` (at most ``limit``)."""
    n = min(len(a), len(b), limit)
    k = 0
    step = 4096
    while k + step <= n and a[len(a) - k - step : len(a) - k] == b[len(b) - k - step : len(b) - k]:
        k += step
    while k < n and a[len(a) - k - 1] == b[len(b) - k - 1]:
        k += 1
    return k


class RecordingTarget:
    """One input = (original recording, mutated bytes); the mutated bytes are
    written to a file in ``workdir`` and loaded from there.

    Invariants: ``load`` raises only RecordingError, and only when no copy of
    the header is undamaged; every loaded record stands in the file, whole,
    at the offset it reports, in file order; and **every undamaged record
    loads**: each record of the original (PAD excepted) that lies wholly in
    the file's unchanged prefix or unchanged suffix is loaded from where it
    now stands (or was folded into an identical copy before it, as the
    header's copy is)."""

    name = "recording.load (CPython)"

    def __init__(self, workdir: str | os.PathLike) -> None:
        self.path = Path(workdir) / "fuzz.spinrec"
        self._spans: dict[bytes, list[tuple[int, int, bool]]] = {}

    def _original_records(self, original: bytes) -> list[tuple[int, int, bool]]:
        """(start, end, is_pad) of every record of the (valid) original."""
        from .corpus import record_spans

        got = self._spans.get(original)
        if got is None:
            from spinemon.io import recording as rec

            v2 = not original.startswith(rec.MAGIC_V1)
            got = [(a, b, v2 and original[a + 4] == rec.KIND_PAD) for a, b in record_spans(original)]
            self._spans[original] = got
        return got

    def run(self, item: tuple[bytes, bytes]) -> str:
        from spinemon.io import recording as rec
        from spinemon.errors import RecordingError

        original, data = item
        self.path.write_bytes(data)
        spans = self._original_records(original)
        prefix = common_prefix(original, data)
        suffix = common_suffix(original, data, min(len(original), len(data)) - prefix)
        shift = len(data) - len(original)
        undamaged = []  # (offset in data, raw bytes) of the original's records the mutation left alone
        for a, b, pad in spans:
            if pad:
                continue
            if b <= prefix:
                undamaged.append((a, original[a:b]))
            elif a >= len(original) - suffix:
                undamaged.append((a + shift, original[a:b]))
        header = original[spans[0][0] : spans[0][1]] if spans else b""
        header_intact = any(raw == header for _, raw in undamaged)
        try:
            loaded = rec.load(self.path)
        except RecordingError as e:
            if header_intact:
                raise Finding(f"an undamaged copy of the header, yet RecordingError: {e}")
            msg = str(e).split(": ", 1)[-1] if str(e).startswith(str(self.path)) else str(e).replace(str(self.path), "FILE")
            return "rejected:" + _reason(msg)
        fmt = loaded.segments[0].format
        if loaded.header.get("format") not in rec.FORMATS or loaded.header.get("format") != fmt:
            raise Finding("loaded a recording of another format")
        pos = 0
        at: dict[int, bytes] = {}
        raws = set()
        for r in loaded.records:
            raw = _serialised(r, fmt)
            if r.offset is None or r.offset < pos or data[r.offset : r.offset + len(raw)] != raw:
                raise Finding("a loaded record does not stand (in order) in the file where it says")
            pos = r.offset + len(raw)
            at[r.offset] = raw
        for off, raw in undamaged:
            if at.get(off) == raw:
                continue
            if any(o < off and v == raw for o, v in at.items()):
                continue  # folded into an identical copy before it
            raise Finding("an undamaged record was not loaded")
        tags = []
        if loaded.truncated:
            tags.append("truncated")
        if loaded.corrupt_records:
            tags.append("corrupt records skipped")
        if loaded.notes:
            tags.append("repaired")
        return "accepted" + (" (" + ", ".join(tags) + ")" if tags else "")


def _reason(msg: str) -> str:
    for key in ("no such file", "is empty", "cut off before", "bad magic", "no readable session header", "recording format"):
        if key in msg:
            return key.replace(" ", "_")
    return "other"


class PipelineTarget:
    """A long-lived Pipeline (renewed every ``renew`` frames, half of them with a
    stored calibration so monitoring runs at once) fed one *valid* frame per
    input (tests/fuzz/valid_frames.py), then a known-good frame: no exception
    but the project's own errors, and the next good frame is still processed."""

    name = "Pipeline.on_frame with mutated valid frames (CPython)"

    def __init__(self, good: list[bytes], renew: int = 400) -> None:
        from spinemon.core.angles import Mounting
        from spinemon.core.calibration import Calibration
        from spinemon.core.pipeline import Pipeline, PipelineSettings

        self._make = lambda stored: Pipeline(
            PipelineSettings(exercise="deadlift", stored_calibration=Calibration({"upper": Mounting(), "lower": Mounting()}, (0.0, 1.0)).as_dict() if stored else None)
        )
        self.good = good
        self.renew = renew
        self._n = 0
        self._t = 0.0
        self.p = self._make(False)

    def run(self, frame: bytes) -> str:
        from spinemon.errors import SpinemonError

        self._n += 1
        if self._n % self.renew == 0:
            self.p = self._make(self._n // self.renew % 2 == 1)
        self._t += 0.02
        try:
            self.p.on_frame(frame, self._t)
        except SpinemonError as e:
            return f"rejected:{type(e).__name__}"
        before = self.p.decoder.stats.frames
        self.p.on_frame(self.good[self._n % len(self.good)], self._t + 0.01)  # the session goes on
        if self.p.decoder.stats.frames != before + 1:
            raise Finding("the pipeline stopped taking frames after a valid one")
        return f"accepted:{self.p.phase}"
