"""A seeded byte mutator over valid frames, byte streams and recordings.

Byte-level mutations: bit flips, bytes set to interesting values (0, 0xFF,
0x7F, 0x80, ...), insert/delete/duplicate ranges, splice two inputs,
truncate/extend. Structure-aware mutations: the length-carrying fields of a
frame (SAMPLES count/mask/ranges/period, COMMAND opcode and arguments at and
past their limits, with the length adjusted to match or not), and most
mutated frames get their CRC re-sealed so the mutation reaches past the CRC
check. Recordings (format 2, and format 1 as earlier versions wrote it):
raw byte damage (the loader must resynchronise), or one record's
payload/kind/length/record number changed with its CRC-32s re-sealed,
records dropped/duplicated/swapped, the header's JSON replaced by hostile
JSON.

Everything draws from one ``random.Random(seed)``: a campaign is reproducible
from its seed.
"""

from __future__ import annotations

import json
import random
import struct
import zlib

import spinemon_protocol as sp

INTERESTING8 = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x81)
INTERESTING16 = (0x0000, 0xFFFF, 0x7FFF, 0x8000, 0x0001, 0x00FF, 0xFF00)
INTERESTING32 = (0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 1)
RESEAL_P = 0.85  # share of mutated frames whose CRC is recomputed


def reseal(frame: bytes) -> bytes:
    """Recompute the trailing CRC-16 of a frame (anything of >= 2 bytes)."""
    if len(frame) < 2:
        return frame
    c = sp.crc16(frame[:-2])
    return frame[:-2] + bytes((c & 0xFF, c >> 8))


class Mutator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # ---- byte level ---------------------------------------------------------
    def _range(self, n: int) -> tuple[int, int]:
        r = self.rng
        a = r.randrange(n + 1)
        b = min(n, a + r.choice((1, 1, 2, 4, 8, r.randrange(1, 64))))
        return a, b

    def byte_op(self, buf: bytearray, pool: list[bytes]) -> str:
        r = self.rng
        n = len(buf)
        op = r.randrange(9)
        if n == 0 and op < 5:
            op = 6
        if op == 0:  # bit flip
            i = r.randrange(n)
            buf[i] ^= 1 << r.randrange(8)
            return "bitflip"
        if op == 1:  # interesting byte
            buf[r.randrange(n)] = r.choice(INTERESTING8)
            return "interesting"
        if op == 2:  # random byte
            buf[r.randrange(n)] = r.randrange(256)
            return "random_byte"
        if op == 3:  # delete a range
            a, b = self._range(n)
            del buf[a:b]
            return "delete"
        if op == 4:  # duplicate a range
            a, b = self._range(n)
            buf[a:a] = buf[a:b]
            return "duplicate"
        if op == 5:  # insert random / interesting bytes
            i = r.randrange(n + 1)
            k = r.choice((1, 2, 4, r.randrange(1, 32)))
            buf[i:i] = bytes(r.choice(INTERESTING8) if r.random() < 0.5 else r.randrange(256) for _ in range(k))
            return "insert"
        if op == 6:  # splice with another input
            other = r.choice(pool) if pool else b""
            i = r.randrange(n + 1)
            j = r.randrange(len(other) + 1)
            if r.random() < 0.5:
                buf[i:] = other[j:]
            else:
                buf[i:i] = other[j : j + r.randrange(1, 64)]
            return "splice"
        if op == 7:  # truncate
            del buf[r.randrange(n + 1) :]
            return "truncate"
        # extend
        k = r.choice((1, 2, 16, r.randrange(1, 300)))
        buf.extend(bytes(r.choice((0, 0xFF, r.randrange(256))) for _ in range(k)))
        return "extend"

    def bytes_(self, data: bytes, pool: list[bytes], max_ops: int = 4) -> bytes:
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, max_ops)):
            self.byte_op(buf, pool)
        return bytes(buf)

    # ---- frames -----------------------------------------------------------------
    def field_op(self, buf: bytearray) -> None:
        """Change a length-carrying or range-checked field of a frame."""
        r = self.rng
        if len(buf) < 2:
            return
        ftype = buf[1]
        if r.random() < 0.1:
            buf[r.randrange(2)] = r.choice(INTERESTING8 + (sp.PROTOCOL_VERSION, sp.T_SAMPLES, sp.T_STATUS, sp.T_COMMAND, sp.T_ACK, sp.T_ERROR, 6))
            return
        if ftype == sp.T_SAMPLES and len(buf) >= sp.SAMPLES_HEADER_SIZE:
            which = r.randrange(5)
            if which == 0:  # count, with the block resized to match (or not)
                count = r.choice((0, 1, 2, 255, r.randrange(256), (buf[14] + 1) & 0xFF, max(0, buf[14] - 1)))
                buf[14] = count
                if r.random() < 0.7:
                    want = sp.SAMPLES_HEADER_SIZE + count * sp.sample_size(buf[12] & 3) + sp.CRC_SIZE
                    if want <= 400:
                        del buf[want:]
                        buf.extend(bytes(r.randrange(256) for _ in range(want - len(buf))))
            elif which == 1:  # mask
                buf[12] = r.choice((0, 1, 2, 3, 4, 0xFF))
            elif which == 2:  # ranges
                buf[13] = r.choice((0x00, 0x04, 0x0C, 0x40, 0x43, 0x50, 0xF0, 0xFF, r.randrange(256)))
            elif which == 3:  # period
                struct.pack_into("<H", buf, 10, r.choice(INTERESTING16))
            else:  # seq / t_us
                struct.pack_into("<I", buf, r.choice((2, 6)), r.choice(INTERESTING32 + (r.getrandbits(32),)))
        elif ftype == sp.T_COMMAND and len(buf) >= sp.COMMAND_HEADER_SIZE:
            which = r.randrange(4)
            if which == 0:  # opcode (valid or not), arguments resized to the new opcode's
                op = r.choice((0, 9, 0xFF, r.randrange(256)) + tuple(sp.OPCODE_ARGS))
                buf[6] = op
                fmt = sp.OPCODE_ARGS.get(op)
                if fmt is not None and r.random() < 0.7:
                    want = sp.COMMAND_HEADER_SIZE + struct.calcsize(fmt) + sp.CRC_SIZE
                    del buf[want:]
                    buf[len(buf) - 2 : len(buf) - 2] = bytes(want - len(buf))
            elif which == 1:  # an argument at / just past its limits
                op = buf[6]
                fmt = sp.OPCODE_ARGS.get(op)
                lims = sp.OPCODE_LIMITS.get(op, ())
                if fmt is not None and lims:
                    codes = fmt[1:]
                    i = r.randrange(len(lims))
                    lo, hi = lims[i]
                    v = r.choice((lo, hi, lo - 1, hi + 1, 0, -1, 0x7FFF, -0x8000, 0xFFFF))
                    off = sp.COMMAND_HEADER_SIZE + struct.calcsize("<" + codes[:i])
                    c = codes[i]
                    size = struct.calcsize("<" + c)
                    if off + size <= len(buf) - 2:
                        bits = 8 * size
                        struct.pack_into("<" + c.upper(), buf, off, v & ((1 << bits) - 1))
            elif which == 2:  # counter
                struct.pack_into("<I", buf, 2, r.choice(INTERESTING32 + (r.getrandbits(32),)))
            else:  # argument bytes added/removed
                if r.random() < 0.5 and len(buf) > 4:
                    del buf[len(buf) - 3]
                else:
                    buf.insert(len(buf) - 2, r.randrange(256))
        else:
            self.byte_op(buf, [])

    def frame(self, data: bytes, pool: list[bytes]) -> bytes:
        """A mutated frame; most get their CRC re-sealed."""
        r = self.rng
        buf = bytearray(data)
        for _ in range(r.randint(1, 3)):
            if r.random() < 0.5:
                self.field_op(buf)
            else:
                self.byte_op(buf, pool)
        out = bytes(buf)
        return reseal(out) if r.random() < RESEAL_P else out

    def frame_from(self, pool: list[bytes]) -> bytes:
        """A corpus frame, mutated (one in twenty left valid)."""
        r = self.rng
        f = r.choice(pool)
        return f if r.random() < 0.05 else self.frame(f, pool)

    # ---- COBS byte streams ----------------------------------------------------------
    def stream(self, streams: list[bytes], frames: list[bytes]) -> bytes:
        r = self.rng
        if r.random() < 0.4:  # mutated frames, properly COBS-framed
            out = b"".join(sp.stream_frame(self.frame_from(frames)) for _ in range(r.randint(1, 4)))
            return self.bytes_(out, streams, 2) if r.random() < 0.3 else out
        return self.bytes_(r.choice(streams), streams)

    def chunks(self, data: bytes) -> list[bytes]:
        """Split a byte stream at random points (how reads arrive)."""
        r = self.rng
        out, i = [], 0
        while i < len(data):
            k = r.choice((1, 2, 7, 64, 300, len(data)))
            out.append(data[i : i + k])
            i += k
        return out

    # ---- recordings ---------------------------------------------------------------------
    def recording(self, data: bytes, pool: list[bytes], frames: list[bytes]) -> bytes:
        from spinemon.io import recording as rec

        from .corpus import record_spans

        r = self.rng
        choice = r.randrange(10)
        if choice <= 2:  # raw byte damage, CRCs left as they are
            buf = bytearray(data)
            for _ in range(r.randint(1, 3)):
                self.byte_op(buf, pool)
            return bytes(buf)
        if choice == 3:  # truncate anywhere
            return data[: r.randrange(len(data) + 1)]
        spans = record_spans(data)
        recs = [bytearray(data[a:b]) for a, b in spans]
        tail = data[spans[-1][1] :] if spans else data[len(rec.MAGIC) :]
        if not recs:
            return self.bytes_(data, pool)
        magic = data[: len(rec.MAGIC)]
        v1 = magic == rec.MAGIC_V1
        if choice == 4:  # drop / duplicate / swap records
            i, j = r.randrange(len(recs)), r.randrange(len(recs))
            k = r.randrange(3)
            if k == 0:
                del recs[i]
            elif k == 1:
                recs.insert(j, bytearray(recs[i]))
            else:
                recs[i], recs[j] = recs[j], recs[i]
            return magic + b"".join(recs) + tail
        i = r.randrange(len(recs)) if r.random() < 0.7 else r.choice((0, 0, 2))  # the header is record 0 (format 2: its copy is 2)
        one = recs[i]
        if v1:
            kind, length, t_host = one[2], struct.unpack_from("<I", one, 3)[0], struct.unpack_from("<d", one, 7)[0]
            hs, seq = rec._HEAD_V1.size, 0
        else:
            _, kind, seq, length, t_host = rec._HEAD.unpack_from(one, 0)
            hs = rec.HEAD_SIZE
        payload = bytes(one[hs : hs + length])
        lie = None
        if choice <= 6:  # the payload: a mutated frame, or hostile JSON for META
            if kind == rec.KIND_META or r.random() < 0.2:
                payload = self.json_payload(payload)
            else:
                payload = self.frame(payload, frames)
        elif choice == 7:  # kind
            kind = r.choice((0, 1, 2, 3, 4, 0xFF))
        elif choice == 8:  # t_host, or (format 2) the record number
            if v1 or r.random() < 0.6:
                t_host = r.choice((float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e308, t_host + 1e-9))
            else:
                seq = r.choice((0, 1, max(0, seq - 1), seq + 1, seq + 1000, 0xFFFFFFFF))
        else:  # the length field lies (every CRC sealed over what the record really holds)
            lie = r.choice((0, 1, length + 1, max(0, length - 1), rec.MAX_PAYLOAD, rec.MAX_PAYLOAD + 1, 0xFFFFFFFF))
        recs[i] = bytearray(_v1_record(kind, payload, t_host, lie) if v1 else _v2_record(kind, payload, t_host, seq, lie))
        return magic + b"".join(recs) + tail

    def json_payload(self, payload: bytes) -> bytes:
        r = self.rng
        k = r.randrange(12)
        try:
            obj = json.loads(payload)
        except Exception:
            obj = None
        if k == 0 and isinstance(obj, dict):
            obj.pop(r.choice(list(obj) or ["type"]), None)
            return json.dumps(obj).encode()
        if k == 1 and isinstance(obj, dict):
            obj[r.choice(("format", "type", "settings"))] = r.choice((2, "1", None, [], {}, 1.0, True, -1, 10**30))
            return json.dumps(obj).encode()
        if k == 2:
            return r.choice((b"[]", b"null", b"1", b'"header"', b"{}", b'{"type":"header"}', b'{"type":"header","format":1}'))
        if k == 3:  # deep nesting
            depth = r.choice((100, 1000, 5000, 100000))
            return b"[" * depth + b"]" * depth if r.random() < 0.5 else b'{"a":' * depth + b"1" + b"}" * depth
        if k == 4:
            return b'{"type":"header","format":1,"x":NaN,"y":Infinity,"z":1e999}'
        if k == 5:
            return b"\xff\xfe" + payload  # not UTF-8
        if k == 6:
            return payload[: r.randrange(len(payload) + 1)]
        if k == 7:
            return b'{"type":"header","format":1,"type":"alert"}'
        return self.bytes_(payload, [])


def _v1_record(kind: int, payload: bytes, t_host: float, length: int | None = None) -> bytes:
    """A format-1 record, CRC sealed; ``length`` makes the length field lie."""
    head = struct.pack("<2sBId", b"\xa5\x5a", kind, len(payload) if length is None else length, t_host)
    return head + payload + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head[2:])))


def _v2_record(kind: int, payload: bytes, t_host: float, seq: int, length: int | None = None) -> bytes:
    """A format-2 record, both CRCs sealed; ``length`` makes the length field lie."""
    from spinemon.io import recording as rec

    if length is None:
        return rec.encode_record(kind, payload, t_host, seq)
    head = rec._HEAD.pack(rec.MARK, kind, seq, length, t_host)
    head += struct.pack("<I", zlib.crc32(head))
    return head + payload + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head)))
