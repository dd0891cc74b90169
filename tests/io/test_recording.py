"""Recordings: append-only, loads up to the last good record, a damaged
record costs that record only, the header survives damage, never lost."""

import os
import random
import struct
import zlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from spinemon.errors import RecordingError, TruncatedRecordingError
from spinemon.io.recording import (
    BLOCK,
    HEAD_SIZE,
    KIND_META,
    KIND_PAD,
    KIND_RX,
    MAGIC,
    MAGIC_V1,
    MARK,
    RECORD_OVERHEAD,
    RecordingWriter,
    RecordRun,
    encode_record,
    header_block,
    load,
    loads,
    records_in,
    segment_path,
)


def write(path, n=50):
    with RecordingWriter(path, {"source": "test"}) as w:
        for i in range(n):
            w.frame_in(bytes([i % 256]) * (10 + i % 7), 1000.0 + i)
            if i % 10 == 0:
                w.meta({"type": "label", "set": i // 10 + 1, "exercise": "deadlift"}, 1000.0 + i)
        w.frame_out(b"\x01\x03cmd", 2000.0)
    return path


def spans(data: bytes) -> list[tuple[int, int, int, int]]:
    """(start, end, kind, seq) of every record of an undamaged format-2 file,
    read with the byte layout of docs/reliability.md (not with the loader)."""
    out, pos = [], len(MAGIC)
    while pos < len(data):
        mark, kind, seq, length, _ = struct.unpack_from("<4sBIId", data, pos)
        assert mark == MARK
        end = pos + HEAD_SIZE + length + 4
        out.append((pos, end, kind, seq))
        pos = end
    assert pos == len(data)
    return out


def test_round_trip_and_byte_layout(tmp_path):
    p = write(tmp_path / "a.spinrec")
    rec = load(p)
    frames = list(rec.frames_in())
    assert len(frames) == 50
    assert frames[3] == (1003.0, bytes([3]) * 13)
    assert rec.header["source"] == "test" and rec.header["format"] == 2
    assert len(rec.meta_of("label")) == 5
    assert list(rec.frames_out()) == [(2000.0, b"\x01\x03cmd")]
    assert not rec.truncated and rec.corrupt_records == 0 and rec.bytes_skipped == 0 and rec.notes == []
    assert rec.segments[0].header_copies == 2 and rec.segments[0].format == 2
    assert [r.seq for r in rec.records] == list(range(len(rec.records)))
    data = p.read_bytes()
    assert data.startswith(MAGIC)
    sp = spans(data)
    # header, PAD up to the block boundary, the header again (byte for byte), then the records
    (h0, h1, k0, s0), (p0, p1, kp, sp_), (c0, c1, kc, sc) = sp[:3]
    assert (h0, k0, s0, kp, sp_, kc, sc) == (len(MAGIC), KIND_META, 0, KIND_PAD, 0, KIND_META, 0)
    assert p0 == h1 and c0 == p1 and c0 % BLOCK == 0 and c0 >= BLOCK
    assert data[h0:h1] == data[c0:c1]
    assert set(data[p0 + HEAD_SIZE : p1 - 4]) <= {0}
    assert [s for _, _, _, s in sp[3:]] == list(range(1, len(sp) - 2))
    # each record: both CRC-32s as documented
    for a, b, kind, seq in sp:
        assert struct.unpack_from("<I", data, a + 21)[0] == zlib.crc32(data[a : a + 21])
        assert struct.unpack_from("<I", data, b - 4)[0] == zlib.crc32(data[a : b - 4])
    assert [r.offset for r in rec.records] == [h0] + [a for a, _, _, _ in sp[3:]]


def test_every_truncation_loads_up_to_the_last_complete_record(tmp_path):
    p = write(tmp_path / "a.spinrec", n=12)
    data = p.read_bytes()
    full = load(p)
    boundaries = {b for _, b, _, _ in spans(data)}
    header_end, pad_end = spans(data)[0][1], spans(data)[1][1]
    ends = []  # records loaded at each cut
    q = tmp_path / "cut.spinrec"
    # every cut, except that inside the PAD's filler only every 53rd
    cuts = [c for c in range(len(MAGIC) + 1, len(data)) if not (header_end + HEAD_SIZE < c < pad_end - 4) or c % 53 == 0]
    for cut in cuts:
        q.write_bytes(data[:cut])
        if cut < header_end:  # cut inside the first header copy: nothing to replay
            with pytest.raises(RecordingError, match="cut off before its first record"):
                load(q)
            continue
        rec = load(q)
        n = len(rec.records)
        assert rec.records == full.records[:n]
        assert rec.corrupt_records == 0
        assert rec.truncated == (cut not in boundaries)  # flagged unless cut exactly between records
        ends.append(n)
    assert ends == sorted(ends)  # never loses a record it had before
    assert ends[-1] == len(full.records) - 1
    q.write_bytes(data[:-3])
    with pytest.raises(TruncatedRecordingError):
        load(q, strict=True)
    for cut in (len(MAGIC), len(MAGIC) - 5):
        q.write_bytes(data[:cut])
        with pytest.raises(RecordingError, match="cut off"):
            load(q)


def _flip(data: bytes, bit: int) -> bytes:
    buf = bytearray(data)
    buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf)


def _cost(full, rec) -> tuple[int, int]:
    """(records of ``full`` that ``rec`` lacks, records of ``rec`` not in ``full``), in order."""
    i = matched = 0
    for r in rec.records:
        while i < len(full.records) and full.records[i] != r:
            i += 1
        if i == len(full.records):
            break
        matched += 1
        i += 1
    return len(full.records) - matched, len(rec.records) - matched


def test_a_single_bit_flip_costs_at_most_the_damaged_record(tmp_path):
    """Every bit of MAGIC, of both header copies, of every record (and of the
    PAD's header plus a sample of its filler): a flip in MAGIC, the PAD or
    one header copy costs nothing, a flip in any other record costs exactly
    that record, is counted as one corrupt record, and nothing else changes."""
    p = write(tmp_path / "a.spinrec", n=12)
    data = p.read_bytes()
    full = load(p)
    sp = spans(data)
    free = [(0, len(MAGIC))] + [(a, b) for a, b, kind, _ in sp[:3]]  # MAGIC, header, PAD, copy
    bits = []
    for a, b, kind, _ in sp:
        if kind == KIND_PAD:
            bits += list(range(a * 8, (a + HEAD_SIZE) * 8)) + list(range((a + HEAD_SIZE) * 8, (b - 4) * 8, 89)) + list(range((b - 4) * 8, b * 8))
        else:
            bits += list(range(a * 8, b * 8))
    bits += list(range(0, len(MAGIC) * 8))
    costs = {0: 0, 1: 0}
    q = tmp_path / "flip.spinrec"
    for i, bit in enumerate(bits):
        if i % 97 == 0:  # the file path too, now and then (loads() is the same loader minus the file)
            q.write_bytes(_flip(data, bit))
            assert load(q).records == loads(_flip(data, bit)).records
        rec = loads(_flip(data, bit))
        lost, extra = _cost(full, rec)
        off = bit // 8
        in_free = any(a <= off < b for a, b in free)
        assert extra == 0, bit
        assert lost == (0 if in_free else 1), (bit, lost)
        assert rec.corrupt_records == lost, bit
        assert not rec.truncated, bit
        assert rec.header == full.header
        costs[lost] += 1
    assert costs[0] > 8 * len(MAGIC) and costs[1] > 8 * 400


def test_a_flipped_length_field_costs_only_its_record(tmp_path):
    """Issue 12: one flipped bit in a record's length lost the rest of the file."""
    p = write(tmp_path / "a.spinrec", n=40)
    data = p.read_bytes()
    full = load(p)
    victim = full.records[20]
    q = tmp_path / "flip.spinrec"
    for bit in range(32):
        q.write_bytes(_flip(data, (victim.offset + 9) * 8 + bit))  # the length field
        rec = load(q)
        assert not rec.truncated and rec.corrupt_records == 1
        assert rec.records == full.records[:20] + full.records[21:]


def test_a_damaged_stretch_is_counted_by_record_numbers(tmp_path):
    p = write(tmp_path / "a.spinrec", n=40)
    data = bytearray(p.read_bytes())
    full = load(p)
    a, b = full.records[10].offset, full.records[14].offset  # records 10..13 overwritten
    data[a + 3 : b - 2] = os.urandom(b - 2 - a - 3)
    p.write_bytes(bytes(data))
    rec = load(p)
    assert rec.corrupt_records == 4 and not rec.truncated
    assert rec.records == full.records[:10] + full.records[14:]
    assert rec.bytes_skipped == b - a


def test_a_payload_full_of_markers_does_not_fool_the_resync(tmp_path):
    p = tmp_path / "a.spinrec"
    fake = encode_record(KIND_RX, b"forged", 5.0, 3)
    with RecordingWriter(p, {"source": "test"}) as w:
        w.frame_in(MARK * 40, 1.0)
        w.frame_in(b"\x00" + fake + MARK, 2.0)  # a whole valid record inside a frame
        w.frame_in(b"after", 3.0)
    full = load(p)
    data = p.read_bytes()
    for victim, at in ((1, 7), (2, 0)):  # record 2: its first byte, not the record inside it
        r = full.records[victim]
        q = tmp_path / f"v{victim}.spinrec"
        q.write_bytes(_flip(data, (r.offset + HEAD_SIZE + at) * 8))  # inside the payload
        rec = load(q)
        assert rec.records == full.records[:victim] + full.records[victim + 1 :] and rec.corrupt_records == 1
    # the marker-filled payload with its header damaged: the scan passes over 40 markers
    q.write_bytes(_flip(data, (full.records[1].offset + 2) * 8))
    rec = load(q)
    assert rec.records == full.records[:1] + full.records[2:] and rec.corrupt_records == 1


def test_a_lying_length_with_a_valid_header_crc_loses_nothing_after_it(tmp_path):
    p = write(tmp_path / "a.spinrec", n=20)
    data = p.read_bytes()
    full = load(p)
    r = full.records[8]
    for length in (0, 1, len(r.payload) + 1, len(data), 1 << 24):
        head = struct.pack("<4sBIId", MARK, r.kind, r.seq, length, r.t_host)
        forged = data[: r.offset] + head + struct.pack("<I", zlib.crc32(head)) + data[r.offset + HEAD_SIZE :]
        q = tmp_path / "lie.spinrec"
        q.write_bytes(forged)
        rec = load(q)
        assert rec.records == full.records[:8] + full.records[9:], length
        assert rec.corrupt_records == 1 and not rec.truncated


def test_the_header_is_read_from_its_copy_and_magic_damage_is_repaired(tmp_path):
    p = write(tmp_path / "a.spinrec", n=5)
    data = bytearray(p.read_bytes())
    full = load(p)
    h0, h1, _, _ = spans(bytes(data))[0]
    first = bytearray(data)
    first[h0 : h1] = bytes(h1 - h0)  # the first copy wiped
    first[3] ^= 0x40  # and the magic damaged
    q = tmp_path / "h.spinrec"
    q.write_bytes(bytes(first))
    rec = load(q)
    assert rec.records == full.records and rec.corrupt_records == 0 and rec.header == full.header
    assert rec.segments[0].header_copies == 1
    assert any("format marker" in n for n in rec.notes) and any("header is damaged" in n for n in rec.notes)
    c0 = spans(bytes(data))[2][0]
    both = bytearray(first)
    both[c0 + 30] ^= 1  # the copy too: nothing to replay, one clear line
    q.write_bytes(bytes(both))
    with pytest.raises(RecordingError, match="no readable session header"):
        load(q)


def test_a_header_of_a_future_format_is_refused_with_one_line(tmp_path):
    p = tmp_path / "f.spinrec"
    import json

    from spinemon.io.recording import header_block

    p.write_bytes(header_block(json.dumps({"type": "header", "format": 3}).encode(), 1.0) + encode_record(KIND_RX, b"x", 2.0, 1))
    with pytest.raises(RecordingError, match=r"format 3; this spinemon reads formats 1 and 2"):
        load(p)


def test_zeros_at_the_end_are_a_cut_not_corruption(tmp_path):
    """A power loss can leave the file's last blocks zero-filled."""
    p = write(tmp_path / "a.spinrec", n=10)
    data = p.read_bytes()
    full = load(p)
    for k in (5, HEAD_SIZE - 1, HEAD_SIZE + 2, len(full.records[-3].payload) + HEAD_SIZE):
        cut = full.records[-3].offset + k  # zeros from inside the third-last record on
        p.write_bytes(data[:cut] + bytes(len(data) - cut))
        rec = load(p)
        assert rec.truncated and rec.corrupt_records == 0 and rec.records == full.records[:-3], k
    p.write_bytes(data + bytes(3000))
    rec = load(p)
    assert rec.truncated and rec.corrupt_records == 0 and rec.records == full.records


def test_garbage_at_the_end_is_corruption_not_a_cut(tmp_path):
    p = write(tmp_path / "a.spinrec", n=10)
    data = p.read_bytes()
    full = load(p)
    p.write_bytes(data + b"\x01" * 100)
    rec = load(p)
    assert not rec.truncated and rec.corrupt_records == 1 and rec.bytes_skipped == 100 and rec.records == full.records


# ---------------------------------------------------------------- segments
def _segments(tmp_path, n=3):
    p = tmp_path / "s.spinrec"
    for k in range(n):
        with RecordingWriter(p, {"source": "t"}, resume=k > 0) as w:
            for i in range(4):
                w.frame_in(bytes([k, i]), 10.0 * k + i)
    return p


def test_one_unreadable_segment_never_loses_the_others(tmp_path):
    p = _segments(tmp_path)
    whole = load(p)
    seg2 = segment_path(p, 2)
    seg2.write_bytes(b"garbage, not a recording at all")
    rec = load(p)
    assert [s.path for s in rec.segments] == [p, segment_path(p, 3)]
    assert [f for _, f in rec.frames_in()] == [bytes([k, i]) for k in (0, 2) for i in range(4)]
    assert rec.unreadable_segments and rec.unreadable_segments[0][0] == seg2
    assert any("s.spinrec.seg2" in n and "not a spinemon recording" in n for n in rec.notes)
    # segment 1 without a readable header: the later segments still load, with their own header
    data = bytearray(p.read_bytes())
    sp = spans(bytes(data))
    for a, b, _, _ in (sp[0], sp[2]):
        data[a + 10] ^= 0x10
    p.write_bytes(bytes(data))
    rec = load(p)
    assert [s.path for s in rec.segments] == [segment_path(p, 3)]
    assert rec.header["segment"] == 3 and rec.header["session_id"] == whole.header["session_id"]
    # nothing readable: segment 1's reason, one line
    segment_path(p, 3).write_bytes(b"")
    with pytest.raises(RecordingError, match="s.spinrec has no readable session header"):
        load(p)


def test_a_segment_of_another_session_is_skipped_not_the_rest(tmp_path):
    p = _segments(tmp_path)
    other = tmp_path / "other.spinrec"
    with RecordingWriter(other, {"source": "x"}) as w:
        w.frame_in(b"\x09\x09", 1.0)
    os.replace(other, segment_path(p, 2))
    rec = load(p)
    assert [s.path for s in rec.segments] == [p, segment_path(p, 3)]
    assert "another session" in rec.unreadable_segments[0][1]


def test_resume_works_when_the_first_segment_lost_its_header(tmp_path):
    p = _segments(tmp_path, n=2)
    sid = load(p).header["session_id"]
    data = bytearray(p.read_bytes())
    sp = spans(bytes(data))
    for a, _, _, _ in (sp[0], sp[2]):
        data[a + 30] ^= 1
    p.write_bytes(bytes(data))
    with RecordingWriter(p, {"source": "t"}, resume=True) as w:
        assert w.segment == 3 and w.session_id == sid


# ---------------------------------------------------------------- format 1
V1 = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "recording-v1.spinrec")


def _v1_spans(data: bytes) -> list[tuple[int, int]]:
    out, pos = [], len(MAGIC_V1)
    while pos < len(data):
        length = struct.unpack_from("<I", data, pos + 3)[0]
        out.append((pos, pos + 15 + length + 4))
        pos = out[-1][1]
    return out


def test_format_1_damage_costs_one_record_except_in_its_single_header(tmp_path):
    data = open(V1, "rb").read()
    full = load(V1)
    sp = _v1_spans(data)
    assert len(sp) == len(full.records)
    rng = random.Random(12)
    q = tmp_path / "v1.spinrec"
    header_end = sp[0][1]
    for bit in rng.sample(range(header_end * 8, len(data) * 8), 150) + list(range((sp[7][0] + 3) * 8, (sp[7][0] + 7) * 8)):
        q.write_bytes(_flip(data, bit))
        rec = load(q)
        lost, extra = _cost(full, rec)
        assert (lost, extra, rec.corrupt_records, rec.truncated) == (1, 0, 1, False), bit
    # a flip in format 1's magic is repaired; in its only header, the file is lost (format 2 keeps a copy)
    q.write_bytes(_flip(data, 5))
    assert load(q).records == full.records
    q.write_bytes(_flip(data, (sp[0][0] + 40) * 8))
    with pytest.raises(RecordingError, match="header"):
        load(q)


def test_format_1_truncations_load_up_to_the_last_complete_record(tmp_path):
    data = open(V1, "rb").read()
    full = load(V1)
    ends = {b for _, b in _v1_spans(data)}
    q = tmp_path / "cut.spinrec"
    rng = random.Random(3)
    for cut in sorted(rng.sample(range(_v1_spans(data)[0][1], len(data)), 120)):
        q.write_bytes(data[:cut])
        rec = load(q)
        n = len(rec.records)
        assert rec.records == full.records[:n] and rec.corrupt_records == 0
        assert rec.truncated == (cut not in ends)
        assert sum(1 for b in ends if b <= cut) == n


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "content,msg",
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"hello world, not a recording", "not a spinemon recording", id="text"),
        pytest.param(MAGIC[:5], "cut off", id="cut-magic"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(64), "not a spinemon recording", id="png"),
        pytest.param(MAGIC + b"\x01" * 300, "no readable session header", id="magic-then-garbage"),
        # a foreign file that happens to hold the record marker (and a known kind) is still foreign
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(24) + MARK + b"\x01" + bytes(40), "not a spinemon recording", id="png-with-marker"),
    ],
)
def test_foreign_files_give_a_clear_error(tmp_path, content, msg):
    p = tmp_path / "x.spinrec"
    p.write_bytes(content)
    with pytest.raises(RecordingError, match=msg) as e:
        load(p)
    assert "\n" not in str(e.value)


def test_missing_file_and_existing_output(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        load(tmp_path / "nope.spinrec")
    p = write(tmp_path / "a.spinrec", n=1)
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(p, {})
    with pytest.raises(RecordingError, match="does not exist"):
        RecordingWriter(tmp_path / "no-dir" / "x.spinrec", {})


def test_read_only_directory(tmp_path, monkeypatch):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    if os.access(d, os.W_OK):  # root ignores permissions: pretend the mount is read-only
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real(p, mode))
    with pytest.raises(RecordingError, match="not writable"):
        RecordingWriter(d / "x.spinrec", {})
    assert not (d / "x.spinrec").exists()


def test_record_overhead_is_as_documented():
    assert RECORD_OVERHEAD == 29 and HEAD_SIZE == 25 and len(MARK) == 4
    assert len(encode_record(KIND_RX, b"abc", 1.0, 7)) == 32


@pytest.mark.parametrize("fmt", [1, 2])
@pytest.mark.parametrize("edit", ["delete", "insert", "flip"])
def test_a_damaged_magic_loses_nothing(tmp_path, fmt, edit):
    """Found by the fuzz campaign: a format-1 file with one byte of its magic
    deleted was refused as 'not a spinemon recording'."""
    data = open(V1, "rb").read() if fmt == 1 else write(tmp_path / "a.spinrec", n=8).read_bytes()
    full = loads(data)
    damaged = {"delete": data[:2] + data[3:], "insert": data[:5] + b"?" + data[5:], "flip": _flip(data, 8 * 9 + 3)}[edit]
    rec = loads(damaged)
    assert rec.records == full.records and rec.corrupt_records == 0 and rec.segments[0].format == fmt
    assert rec.notes == [f"<bytes>: its first 16 bytes (the format marker) are damaged; read as format {fmt}"]


# ---------------------------------------------------------------- checks that must each hold (mutation run)
def _records_file(tmp_path, frames, name="r.spinrec"):
    p = tmp_path / name
    with RecordingWriter(p, {"source": "test"}) as w:
        for i, f in enumerate(frames):
            w.frame_in(f, 1.0 + i)
    return p


def test_a_damaged_last_record_is_corruption_even_if_its_crc_ends_in_zeros(tmp_path):
    """The zero-tail rule (a cut) needs the whole CRC field zero, not its last bytes."""
    frame = next(bytes([7, i % 256, i // 256]) for i in range(1 << 16) if encode_record(KIND_RX, bytes([7, i % 256, i // 256]), 3.0, 3)[-2:] == b"\0\0")
    p = _records_file(tmp_path, [b"a", b"b", frame])
    full = load(p)
    data = p.read_bytes()
    assert data.endswith(b"\0\0")
    rec = loads(_flip(data, (full.records[-1].offset + HEAD_SIZE + 1) * 8))
    assert rec.records == full.records[:-1] and rec.corrupt_records == 1 and not rec.truncated


def test_records_of_an_unknown_kind_or_a_forged_number_are_not_taken(tmp_path):
    p = _records_file(tmp_path, [b"a", b"b", b"c"])
    full = load(p)
    data = p.read_bytes()
    b = full.records[2]
    unknown = encode_record(9, b.payload, b.t_host, b.seq)  # valid CRCs, unknown kind
    rec = loads(data[: b.offset] + unknown + data[b.offset + len(unknown) :])
    assert rec.records == full.records[:2] + full.records[3:] and rec.corrupt_records == 1
    # a record with the number of the one before it but other content is a record, not a copy
    twin = encode_record(KIND_RX, b"z", 9.0, full.records[1].seq)
    rec = loads(data[: b.offset] + twin + data[b.offset :])
    assert [r.payload for r in rec.records[1:]] == [b"a", b"z", b"b", b"c"]


def test_a_forged_record_zero_before_the_header_does_not_stand_in_for_it(tmp_path):
    p = _records_file(tmp_path, [b"a", b"b"])
    full = load(p)
    data = p.read_bytes()
    h0, h1, _, _ = spans(data)[0]
    forged = encode_record(KIND_RX, b"x" * (h1 - h0 - RECORD_OVERHEAD), 1.0, 0)  # same size, record number 0
    rec = loads(data[:h0] + forged + data[h1:])
    assert rec.records == full.records and rec.header == full.header and rec.corrupt_records == 1


def test_the_first_record_decides_the_format_over_the_magic(tmp_path):
    p = _records_file(tmp_path, [b"a"])
    data = bytearray(p.read_bytes())
    data[13] = 0x01  # the magic now says format 1
    rec = loads(bytes(data))
    assert rec.segments[0].format == 2 and rec.records == load(p).records and len(rec.notes) == 1


def test_a_marker_whose_header_fails_its_crc_is_no_resync_point(tmp_path):
    """A frame holding a record-like header (marker, known kind, a length that
    ends exactly at a later record): its header CRC is wrong, so when the
    record holding it is damaged the reader does not jump over the record
    after it."""
    p = _records_file(tmp_path, [b"A" * 80, b"B" * 30, b"C" * 30])
    full = load(p)
    a, b, c = full.records[1:4]
    inner = a.offset + HEAD_SIZE + 10  # where the fake header will stand
    fake = struct.pack("<4sBIId", MARK, KIND_RX, 2, c.offset - (inner + HEAD_SIZE + 4), 2.0) + b"\0\0\0\0"
    p2 = _records_file(tmp_path, [b"A" * 10 + fake + b"A" * (70 - len(fake)), b"B" * 30, b"C" * 30], "fake.spinrec")
    full = load(p2)
    data = p2.read_bytes()
    rec = loads(_flip(data, (full.records[1].offset + 2) * 8))  # the holder's header damaged
    assert rec.records == full.records[:1] + full.records[2:] and rec.corrupt_records == 1


def test_the_header_is_on_the_disk_before_the_file_appears(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_link = os.fsync, os.link
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.fstat(fd).st_size)), real_fsync(fd))[1])
    monkeypatch.setattr(os, "link", lambda a, b: (calls.append(("link", os.stat(a).st_size)), real_link(a, b))[1])
    with RecordingWriter(tmp_path / "a.spinrec", {"source": "t"}) as w:
        size = w.offset
    first_link = calls.index(next(c for c in calls if c[0] == "link"))
    assert ("fsync", size) in calls[:first_link] and calls[first_link] == ("link", size)
    assert size == spans((tmp_path / "a.spinrec").read_bytes())[2][1]  # both header copies before the link


def test_the_mutation_checks_still_apply_to_the_source():
    """``make mutate-recording`` edits recording.py by text: each edit must
    still find its text exactly once (a stale list would test nothing)."""
    from campaigns import mutants

    source = mutants.SOURCE.read_text()
    for mid, _, old, new in mutants.MUTANTS:
        assert mutants.mutate(source, old, new) != source, mid
    assert len({m[0] for m in mutants.MUTANTS}) == len(mutants.MUTANTS) >= 30


def _equal_frames_file(n: int = 80) -> bytes:
    """A recording whose RX frames are all one length (as the wearable's are),
    with a label and a TX frame among them: long runs for the columnar path."""
    out = bytearray(header_block(b'{"type":"header","format":2,"session_id":"s","segment":1}', 1.0))
    seq = 1
    for i in range(n):
        out += encode_record(KIND_RX, bytes([i % 251]) * 40, 1000.0 + i / 8, seq)
        seq += 1
        if i % 25 == 24:
            out += encode_record(KIND_META, b'{"type":"label","set":1}', 1000.0 + i / 8, seq)
            out += encode_record(2, b"\x01\x03cmd", 1000.0 + i / 8, seq + 1)
            seq += 2
    return bytes(out)


def _as_loaded(rec) -> tuple:
    return (
        [(r.kind, r.t_host, r.payload, r.seq, r.offset) for r in rec.records],
        rec.truncated,
        rec.corrupt_records,
        rec.bytes_skipped,
        [s.header_copies for s in rec.segments],
    )


_EQUAL = _equal_frames_file()
_EQUAL_SPANS = spans(_EQUAL)


@settings(max_examples=60, deadline=None)
@example([("drop", 20, 1)], len(_EQUAL))  # a record missing from a run: counted lost
@example([("cut", 0, 1), ("flip", 79696)], 17)  # a flip past the end of a file a cut shortened
@example([("copy", 20, 1)], len(_EQUAL))  # a record written twice: folded
@example([("copy", 20, 3)], len(_EQUAL))  # records numbered again: taken, as the loop takes them
@example([("flip", (_EQUAL_SPANS[30][0] + 9) * 8)], len(_EQUAL))  # a length field
@example([], _EQUAL_SPANS[40][1] - 7)  # cut off inside a run
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("flip"), st.integers(0, len(_EQUAL) * 8 - 1)),
            st.tuples(st.just("byte"), st.integers(0, len(_EQUAL) - 1), st.integers(0, 255)),
            st.tuples(st.just("cut"), st.integers(0, len(_EQUAL) - 1), st.integers(1, 300)),
            st.tuples(st.just("again"), st.integers(0, len(_EQUAL) - 1), st.integers(1, 300)),
            st.tuples(st.sampled_from(["drop", "copy"]), st.integers(3, len(_EQUAL_SPANS) - 1), st.integers(1, 3)),
        ),
        max_size=3,
    ),
    st.integers(len(MAGIC) + 1, len(_EQUAL)),
)
def test_the_columnar_parser_loads_exactly_what_the_record_loop_loads(edits, keep):
    """Runs of equal-length records are checked and built column by column;
    under any damage (flipped bits, overwritten bytes, a stretch cut out or
    repeated, the file cut off) the result is the record-by-record loop's:
    the same records, numbers and offsets, the same losses, skipped bytes
    and truncation."""
    import spinemon.io.recording as recording

    buf = bytearray(_EQUAL)
    whole = sorted((e for e in edits if e[0] in ("drop", "copy")), key=lambda e: -e[1])
    for kind, i, count in whole:  # whole records, the last first (the spans before it stay put)
        a, b = _EQUAL_SPANS[i][0], _EQUAL_SPANS[min(i + count, len(_EQUAL_SPANS)) - 1][1]
        buf[a:b] = b"" if kind == "drop" else buf[a:b] * 2
    for e in edits:
        if e[0] in ("drop", "copy"):
            continue
        if e[0] == "flip":
            bit = e[1] % (8 * len(buf))  # an earlier cut may have shortened the file
            buf[bit // 8] ^= 1 << (bit % 8)
        elif e[0] == "byte":
            buf[e[1] % len(buf)] = e[2]
        elif e[0] == "cut":
            del buf[e[1] : e[1] + e[2]]
        else:
            buf[e[1] : e[1]] = buf[e[1] : e[1] + e[2]]
    data = bytes(buf[: max(keep, len(MAGIC) + 1)])

    def load_or_error(d: bytes):
        try:
            rec = loads(d)
        except RecordingError as e:
            return str(e)
        cut = records_in(rec.pieces_in(3, 30))  # a stretch, cut from the runs before any Record is built
        loaded = _as_loaded(rec)
        assert [(r.kind, r.t_host, r.payload, r.seq, r.offset) for r in cut] == loaded[0][3:33]
        return loaded

    old_min = recording._MIN_RUN
    try:
        columnar = load_or_error(data)
        recording._MIN_RUN = 1 << 30  # the record-by-record loop alone
        plain = load_or_error(data)
    finally:
        recording._MIN_RUN = old_min
    assert columnar == plain


def test_the_columnar_parser_takes_the_long_runs_and_a_flip_costs_one_record(monkeypatch):
    """The three long runs of equal frames go the columnar way; a flip inside
    one: that record is lost (counted), the run's records before and after it
    load, as the record loop does."""
    import spinemon.io.recording as recording

    runs = []
    clean_run = recording._clean_run

    def spy(*a):
        got = clean_run(*a)
        runs.append(got)
        return got

    monkeypatch.setattr(recording, "_clean_run", spy)
    full = loads(_EQUAL)
    assert sum(1 for r in runs if r is not None) == 3
    sp = spans(_EQUAL)
    a, b, kind, _ = sp[20]
    assert kind == KIND_RX
    for bit in (a * 8 + 3, (a + HEAD_SIZE + 5) * 8, (b - 1) * 8):
        rec = loads(_flip(_EQUAL, bit))
        lost, extra = _cost(full, rec)
        assert (lost, extra, rec.corrupt_records, rec.truncated) == (1, 0, 1, False)


def _forge(data: bytes, start: int, **fields) -> bytes:
    """The record at ``start`` with header fields replaced (``hcrc`` too, if
    given) and its whole-record CRC-32 made right again."""
    mark, kind, seq, length, t_host, hcrc = struct.unpack_from("<4sBIIdI", data, start)
    head = struct.pack("<4sBIId", mark, fields.get("kind", kind), fields.get("seq", seq), length, fields.get("t_host", t_host))
    hcrc = fields.get("hcrc", zlib.crc32(head))
    body = head + struct.pack("<I", hcrc) + data[start + HEAD_SIZE : start + HEAD_SIZE + length]
    return data[:start] + body + struct.pack("<I", zlib.crc32(body)) + data[start + len(body) + 4 :]


@pytest.mark.parametrize(
    "fields",
    [
        {"hcrc": 0x12345678},  # the record's CRC-32 right, its header's wrong
        {"seq": 5},  # both CRCs right, numbered out of turn
        {"t_host": 7.0},  # another host time, both CRCs right: taken
        {"kind": KIND_META},  # a frame turned into a META record of the same length
    ],
)
def test_a_forged_record_inside_a_run_is_judged_as_the_record_loop_judges_it(fields):
    """The columnar path checks every header's CRC-32 at once (from the
    bytes that differ between records) and each record's CRC-32 by its
    residue: a record whose CRC-32 is right but whose header's is not, one
    numbered out of turn, one of another kind, must fare as in the record
    loop (the CRC-32 of the whole record cannot tell)."""
    import spinemon.io.recording as recording

    sp = spans(_EQUAL)
    data = _forge(_EQUAL, sp[30][0], **fields)
    columnar = loads(data)
    assert any(isinstance(p, RecordRun) for p in columnar.pieces)
    old_min = recording._MIN_RUN
    try:
        recording._MIN_RUN = 1 << 30  # the record-by-record loop alone
        plain = loads(data)
    finally:
        recording._MIN_RUN = old_min
    assert _as_loaded(columnar) == _as_loaded(plain)
    if "t_host" in fields:
        assert [r.t_host for r in columnar.records if r.seq == sp[30][3]] == [7.0]
    elif "hcrc" in fields:
        assert sp[30][3] not in [r.seq for r in columnar.records] and columnar.corrupt_records == 1


def test_records_are_built_only_when_used_and_then_are_the_recording(tmp_path):
    """A loaded recording keeps its runs of frames as columns; ``records``
    builds the Record list the first time it is used (equal to what the
    record loop loads), and from then on that list is the recording: a
    change a caller makes to it is what replay and ``pieces_in`` see."""
    rec = loads(_EQUAL)
    assert rec.pieces is not None and "records" not in vars(rec)
    runs = [p for p in rec.pieces if isinstance(p, RecordRun)]
    assert runs and sum(len(p) for p in runs) > 60
    run = runs[0]
    rows = run.payloads()
    assert rows.shape == (len(run), 40) and not rows.flags.writeable
    assert [bytes(r) for r in rows] == [r.payload for r in run.records()]
    assert list(rec.frames_in()) == [(r.t_host, r.payload) for r in records_in(rec.pieces) if r.kind == KIND_RX]
    records = rec.records
    assert rec.pieces is None and rec.records is records
    assert len(records) == len(spans(_EQUAL)) - 2  # the header's copy is folded, the PAD skipped
    records[5] = records[6]
    assert rec.pieces_in(5, 1) == [records[6]]
    assert rec == rec and loads(_EQUAL) != rec  # equality compares the records (built for it)
