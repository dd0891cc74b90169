"""The recording parser reads clean runs of equal-length records in one go
(issue 27, ``recording._run_of_records``); it must load exactly what the
record-by-record walk loads, whatever the damage (bit flips, cut-off tails,
zeroed or duplicated stretches), with the same records (numbers, offsets)
and the same counts (truncated, lost, skipped bytes, header copies)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinemon.app.simrun import run_simulated
from spinemon.io import recording, sim


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("runs") / "r.spinrec"
    run_simulated([sim.SetSpec("deadlift", 2, {1: "rounding"})], 3, out=path, rom=False)
    return path.read_bytes()


def parsed(data: bytes, runs: bool, monkeypatch) -> tuple:
    monkeypatch.setattr(recording, "_RUN_MIN", 8 if runs else 1 << 40)
    try:
        rec = recording.loads(data)
    except recording.RecordingError as e:
        return ("error", str(e))
    return (
        [(r.kind, r.t_host, r.payload, r.seq, r.offset) for r in rec.records],
        rec.truncated,
        rec.corrupt_records,
        rec.bytes_skipped,
        list(rec.notes),
    )


def test_a_clean_recording_is_read_in_runs(clean, monkeypatch):
    calls = []
    real = recording._run_of_records

    def spy(*a):
        out = real(*a)
        calls.append(len(out))
        return out

    monkeypatch.setattr(recording, "_run_of_records", spy)
    runs = parsed(clean, True, monkeypatch)
    assert runs == parsed(clean, False, monkeypatch)
    assert sum(calls) > 0.9 * len(runs[0])  # nearly every record came in a run


damage = st.lists(
    st.tuples(st.sampled_from(["flip", "zero", "dup", "cut"]), st.floats(0.0, 1.0), st.integers(1, 400)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage)
def test_runs_load_what_the_record_by_record_walk_loads(clean, monkeypatch, ops):
    data = bytearray(clean)
    for op, where, size in ops:
        at = int(where * (len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << (size % 8)
        elif op == "zero":
            data[at : at + size] = bytes(len(data[at : at + size]))
        elif op == "dup":
            data[at:at] = data[at : at + size]
        else:
            del data[at:]
            if not data:
                data = bytearray(clean[:64])
    blob = bytes(data)
    assert parsed(blob, True, monkeypatch) == parsed(blob, False, monkeypatch)
