"""Recordings written by earlier versions keep loading and replaying.

The fixtures in tests/fixtures/ were written by the format-1 writer (before
the per-record header checksum and repeated header of format 2) and are
never regenerated:

- ``recording-v1.spinrec``: ``spinemon simulate --exercise deadlift --reps 3
  --fault rounding@2 --seed 1 --out tests/fixtures/recording-v1.spinrec``
- ``segmented-v1.spinrec`` + ``.seg2``: a simulated deadlift set (seed 5,
  two IMUs at 50 Hz, no range of motion) played through ``run_live`` in two
  halves, the second with ``resume=True`` (a resumed session: segment 2).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from spinemon.io.recording import KIND_RX, load
from spinemon.app.replay import recorded_events, replay

RX_DIGEST = "385e2facf0de0fdee7bd7f8f913baf5acd01989cee8226dc686423b2746bc3cd"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_a_format_1_recording_loads_and_replays_its_live_events():
    rec = load(FIXTURES / "recording-v1.spinrec", strict=True)
    assert rec.header["format"] == 1 and rec.header["type"] == "header"
    assert not rec.truncated and rec.corrupt_records == 0 and rec.bytes_skipped == 0
    assert len(rec.segments) == 1
    rx = [r for r in rec.records if r.kind == KIND_RX]
    assert len(rx) == 409
    live = recorded_events(rec)
    assert live is not None and len(live) == 1 and live[0]["kind"] == "over_flexion" and live[0]["rep"] == 2
    res = replay(rec)
    assert res.frames == 409
    # the same event as live, at the same samples; peak and limit within a few
    # hundredths of a degree (the range-of-motion sweep now starts at the sample
    # after neutral and removes the gyro offset once: see test_cli)
    now = [e.as_dict() for e in res.events]
    key = lambda e: (e["kind"], e["set"], e["rep"], e["exercise"], e["t_start"], e["t_alert"], e["t_end"])  # noqa: E731
    assert [key(e) for e in now] == [key(e) for e in live]
    assert abs(now[0]["peak_deg"] - live[0]["peak_deg"]) < 0.1 and abs(now[0]["limit_deg"] - live[0]["limit_deg"]) < 0.1


def test_a_format_1_segmented_recording_loads_as_one_session():
    base = FIXTURES / "segmented-v1.spinrec"
    rec = load(base, strict=True)
    assert [s.path.name for s in rec.segments] == ["segmented-v1.spinrec", "segmented-v1.spinrec.seg2"]
    assert [s.header["segment"] for s in rec.segments] == [1, 2]
    assert rec.segments[0].header["session_id"] == rec.segments[1].header["session_id"]
    assert all(s.header["format"] == 1 for s in rec.segments)
    assert rec.corrupt_records == 0 and not rec.truncated
    rx = [r.payload for r in rec.records if r.kind == KIND_RX]
    assert len(rx) == 115
    # the frames as the format-1 writer stored them (a digest fixed when the fixture was made)
    assert hashlib.sha256(b"".join(rx)).hexdigest() == RX_DIGEST
    res = replay(rec)
    assert res.frames == 115 and res.stats["lost_samples"] == 0 and res.summary["segments"] == 2
    # each segment replays as the live session it was (its own calibration): the
    # alert of segment 1 (outside any set, as live reported it), none in segment 2
    assert [(e.kind, e.set, e.rep) for e in res.events] == [("over_flexion", None, None)]
    # segment 1: the same event as its live session at the same samples, its peak a
    # few hundredths of a degree off (this spinemon calibrates slightly differently,
    # as in the test above); segment 2: none, as its live session
    seg1, seg2 = res.segments
    key = lambda e: (e["kind"], e["set"], e["rep"], e["exercise"], e["t_start"], e["t_alert"], e["t_end"])  # noqa: E731
    assert [key(e) for e in seg1.events] == [key(e) for e in seg1.live_events] and len(seg1.events) == 1
    assert abs(seg1.events[0]["peak_deg"] - seg1.live_events[0]["peak_deg"]) < 0.1
    assert seg1.live_comparison.startswith("NO, but the same 1 event") and seg2.live_comparison == "yes"
    assert res.live_comparison == f"session 1: {seg1.live_comparison}; session 2: yes"
    assert [s.result.summary["monitoring"]["calibration"] for s in res.segments] == ["done", "done"]
    assert [s.t_offset for s in res.segments] == [0.0, 0.0]  # segment 2's device clock went on
