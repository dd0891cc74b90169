"""No valid frame ends a session, in any phase (issue 23, finding 7).

A wearable that loses or regains its lower IMU, or changes its rate, sends
valid frames with another layout. Whatever phase the session is in (the
neutral search, the range-of-motion sweep, monitoring between sets, inside a
set, inside a timed hold), such frames are followed, never fatal: through the
product's own live path (``live.run`` with the simulated wearable's
transport, frame by frame) and through ``replay`` of the recording it wrote
(long blocks, and frame by frame), which must agree.

Hypothesis draws where (a phase, then a sample inside it: a frame is cut in
two there) and what (the lower IMU gone, the upper IMU gone, another rate, a
rate nothing can fuse, the lower IMU gone for the rest of the session).
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import spinemon_protocol as proto
from spinemon.app.live import LiveOptions, run
from spinemon.app.live_ui import LiveUI
from spinemon.app.replay import replay
from spinemon.app.simrun import labels_for
from spinemon.io import sim
from spinemon.io.recording import KIND_META, KIND_RX, KIND_TX, RecordingWriter, load
from spinemon.io.transport import SimTransport

UPPER, LOWER = proto.SENSOR_UPPER, proto.SENSOR_LOWER
KINDS = ("upper-only", "lower-only", "rate-52", "rate-200", "rate-unfusable", "upper-only-for-good")
PHASES = ("neutral", "range", "standing", "set", "between", "hold")


def _raw(o) -> np.ndarray:
    return np.frombuffer(o.block, dtype="<i2").reshape(o.count, proto.values_per_sample(o.mask))


def _frame(o, raw: np.ndarray, *, seq: int, t_us: int, period_us: int, mask: int) -> bytes:
    if mask != o.mask:  # keep one sensor's six values (and the trailing value every sample carries)
        keep = raw[:, :6] if mask == UPPER else raw[:, 6:12]
        raw = np.concatenate([keep, raw[:, -1:]], axis=1)
    return proto.encode_samples(seq, t_us, period_us, mask, o.ranges, o.flags, len(raw), np.ascontiguousarray(raw).tobytes())


def changed(frame: bytes, kind: str, start: int = 0) -> list[bytes]:
    """``frame`` with its samples from ``start`` on in another layout (the
    samples before it stay a frame of their own): valid frames, both."""
    o = proto.decode(frame)
    raw = _raw(o)
    period, mask = o.period_us, o.mask
    if kind in ("upper-only", "upper-only-for-good"):
        mask = UPPER
    elif kind == "lower-only":
        mask = LOWER
    elif kind == "rate-52":
        period = 19231
    elif kind == "rate-200":
        period = 5000
    elif kind == "rate-unfusable":
        period = 50  # 20 kHz: outside what intake accepts
    out = []
    if start > 0:
        out.append(_frame(o, raw[:start], seq=o.seq, t_us=o.t_us, period_us=o.period_us, mask=o.mask))
    out.append(_frame(o, raw[start:], seq=o.seq + start, t_us=(o.t_us + start * o.period_us) & 0xFFFFFFFF, period_us=period, mask=mask))
    return out


@pytest.fixture(scope="module")
def session():
    """Neutral, a range-of-motion sweep, a set with a rounded rep, a rest, a plank hold, a rest, a set."""
    sets = [
        sim.SetSpec("deadlift", 3, {2: "rounding"}, rest_s=4.0),
        sim.SetSpec("plank", 1, hold_s=6.0, rest_s=4.0),
        sim.SetSpec("deadlift", 2),
    ]
    s = sim.simulate(sets, 5, calibration=True, rom=True)
    cal = s.calibration
    dead = [x for x in s.sets if x.exercise == "deadlift"]
    windows = {
        "neutral": (0.0, cal.neutral[1]),
        "range": cal.rom,
        "standing": (cal.rom[1], s.sets[0].t_start),
        "set": (dead[0].t_start, dead[0].t_end),
        "between": (s.sets[0].t_end, s.sets[1].t_start),
        "hold": (s.holds[0].t_start, s.holds[0].t_end),
    }
    starts = np.array([proto.decode(f).t_us / 1e6 for f in s.frames])
    return s, windows, starts


def with_changes(s, windows, starts, changes) -> list[tuple[bytes, float]]:
    """The session's frames with each change applied at its sample (later changes win on overlap)."""
    plan: dict[int, tuple[str, int]] = {}  # frame index -> (kind, first changed sample)
    for phase, where, kind, n_frames in changes:
        lo, hi = windows[phase]
        t = lo + where * (hi - lo)
        i = max(0, int(np.searchsorted(starts, t, side="right")) - 1)
        o = proto.decode(s.frames[i])
        j = min(o.count - 1, max(0, int(round((t - starts[i]) * 1e6 / o.period_us))))
        last = len(s.frames) if kind == "upper-only-for-good" else min(len(s.frames), i + n_frames)
        for k in range(i, last):
            plan[k] = (kind, j if k == i else 0)
    out = []
    for i, (f, th) in enumerate(zip(s.frames, s.frame_times.tolist())):
        if i in plan:
            out += [(g, th) for g in changed(f, *plan[i])]
        else:
            out.append((f, th))
    return out


def live(s, frames, out: Path):
    transport = SimTransport(frames, labels=labels_for(s), speed=0.0)
    options = LiveOptions(sim=True, exercise="deadlift", out=str(out))
    return asyncio.run(asyncio.wait_for(run(options, LiveUI(io.StringIO()), transport=transport), 120.0))


def _events(result) -> list[dict]:
    return [e.as_dict() for e in result.events]


change = st.tuples(st.sampled_from(PHASES), st.floats(0.0, 0.999), st.sampled_from(KINDS), st.integers(1, 8))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=st.lists(change, min_size=1, max_size=3))
def test_no_valid_frame_ends_a_session_live_or_in_replay(session, tmp_path_factory, changes):
    s, windows, starts = session
    frames = with_changes(s, windows, starts, changes)
    out = tmp_path_factory.mktemp("nofatal") / "s.spinrec"
    result = live(s, frames, out)
    assert result.frames == len(frames)  # every frame was processed, none ended the session
    assert result.summary["phase"] == "monitoring"  # neutral was found despite the changes
    rec = load(out)
    assert len(list(rec.frames_in())) == len(frames)
    again = replay(rec)  # long blocks (live went frame by frame: the two splits of the same frames agree)
    assert _events(again) == _events(result)
    assert again.summary["layout_changes"] == result.summary["layout_changes"]


GRID = [(k, PHASES) for k in KINDS if k != "upper-only-for-good"] + [
    ("upper-only-for-good", (p,)) for p in PHASES  # it lasts to the end: one session per phase
]


@pytest.mark.parametrize(("kind", "phases"), GRID, ids=[f"{k}-{'-'.join(p) if len(p) == 1 else 'every-phase'}" for k, p in GRID])
def test_each_change_in_each_phase(session, tmp_path, kind, phases):
    """The grid hypothesis samples from: each change in each phase, at the
    phase's first third (a change that ends after 3 frames: in every phase of
    one session)."""
    s, windows, starts = session
    frames = with_changes(s, windows, starts, [(phase, 1 / 3, kind, 3) for phase in phases])
    result = live(s, frames, tmp_path / "s.spinrec")
    assert result.frames == len(frames)
    again = replay(load(tmp_path / "s.spinrec"))
    assert _events(again) == _events(result)


def _rewrite(rec, path: Path, change) -> None:
    with RecordingWriter(path, rec.header) as w:
        for i, r in enumerate(rec.records):
            if r.kind == KIND_RX:
                for f in change(i, r.payload):
                    w.frame_in(f, r.t_host)
            elif r.kind == KIND_TX:
                w.frame_out(r.payload, r.t_host)
            elif r.kind == KIND_META:
                w.meta(r.meta, r.t_host)


def test_the_issue_repro_one_upper_only_frame_a_third_into_the_sweep(session, tmp_path):
    """The issue's repro: a 2-IMU recording, one SAMPLES frame a third of the
    way into the range-of-motion sweep carrying only the upper sensor:
    replay died in ``_finish_rom`` (operands could not be broadcast)."""
    s, windows, starts = session
    src = tmp_path / "src.spinrec"
    live(s, list(zip(s.frames, s.frame_times.tolist())), src)
    rec = load(src)
    lo, hi = windows["range"]
    rx = [i for i, r in enumerate(rec.records) if r.kind == KIND_RX]
    i0 = next(i for i in rx if proto.decode(rec.records[i].payload).t_us / 1e6 > lo + (hi - lo) / 3)
    bad = tmp_path / "bad.spinrec"
    _rewrite(rec, bad, lambda i, f: changed(f, "upper-only") if i == i0 else [f])
    res = replay(load(bad))
    assert res.calibration is not None and res.calibration.t_rom is not None  # the sweep finished
    assert res.calibration.rom is not None  # from the samples that had both sensors
    base = replay(rec).calibration.rom
    assert abs(res.calibration.rom.flexion_deg - base.flexion_deg) < 1.0
    assert [c["sensors"] for c in res.summary["layout_changes"]] == ["upper", "upper+lower"]
