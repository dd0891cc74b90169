"""Recordings: append-only, loads up to the last good record, never lost."""

import os

import pytest

from spinemon.errors import RecordingError, TruncatedRecordingError
from spinemon.recording import MAGIC, RecordingWriter, load


def write(path, n=50):
    with RecordingWriter(path, {"source": "test"}) as w:
        for i in range(n):
            w.frame_in(bytes([i % 256]) * (10 + i % 7), 1000.0 + i)
            if i % 10 == 0:
                w.meta({"type": "label", "set": i // 10 + 1, "exercise": "deadlift"}, 1000.0 + i)
        w.frame_out(b"\x01\x03cmd", 2000.0)
    return path


def test_round_trip(tmp_path):
    rec = load(write(tmp_path / "a.spinrec"))
    frames = list(rec.frames_in())
    assert len(frames) == 50
    assert frames[3] == (1003.0, bytes([3]) * 13)
    assert rec.header["source"] == "test" and rec.header["format"] == 1
    assert len(rec.meta_of("label")) == 5
    assert list(rec.frames_out()) == [(2000.0, b"\x01\x03cmd")]
    assert not rec.truncated and rec.corrupt_records == 0


def test_every_truncation_loads_up_to_the_last_complete_record(tmp_path):
    p = write(tmp_path / "a.spinrec", n=12)
    data = p.read_bytes()
    full = load(p)
    ends = []  # byte offsets where each record ends
    q = tmp_path / "cut.spinrec"
    for cut in range(len(MAGIC) + 1, len(data)):
        q.write_bytes(data[:cut])
        try:
            rec = load(q)
        except RecordingError as e:
            assert "header" in str(e) or "cut off" in str(e)  # cut inside the header record
            continue
        n = len(rec.records)
        assert rec.records == full.records[:n]
        complete = len(MAGIC) + sum(2 + 1 + 4 + 8 + len(r.payload) + 4 for r in rec.records)
        assert rec.truncated == (complete != cut)  # flagged unless cut exactly between records
        ends.append(n)
    assert ends == sorted(ends)  # never loses a record it had before
    q.write_bytes(data[:-3])
    with pytest.raises(TruncatedRecordingError):
        load(q, strict=True)


def test_corrupt_record_is_counted_and_skipped(tmp_path):
    p = write(tmp_path / "a.spinrec", n=20)
    data = bytearray(p.read_bytes())
    full = load(p)
    # flip a byte inside the 6th record's payload
    off = len(MAGIC)
    for r in full.records[:6]:
        off += 2 + 1 + 4 + 8 + len(r.payload) + 4
    data[off + 16] ^= 0xFF
    p.write_bytes(bytes(data))
    rec = load(p)
    assert rec.corrupt_records == 1
    assert len(rec.records) == len(full.records) - 1
    assert [r for r in full.records if r not in rec.records] == [full.records[6]]


@pytest.mark.parametrize(
    "content,msg",
    [(b"", "empty"), (b"hello world, not a recording", "not a spinemon recording"), (MAGIC[:5], "cut off")],
)
def test_foreign_files_give_a_clear_error(tmp_path, content, msg):
    p = tmp_path / "x.spinrec"
    p.write_bytes(content)
    with pytest.raises(RecordingError, match=msg):
        load(p)


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
