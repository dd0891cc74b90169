"""No valid frame ends a session (issue 12, defect 2).

A reboot in which the lower IMU is not detected sends valid frames with
another sensor mask; a frame may carry a period nothing can fuse. Through the
product's own `spinemon live` path (``live.run`` with the simulated wearable's
transport) the session keeps monitoring, counts and records the change, and
the recording replays and reports.
"""

from __future__ import annotations

import asyncio
import io

import numpy as np

import spinemon_protocol as proto
from spinemon.app import cli
from spinemon.io import sim
from spinemon.app.live import LiveOptions, run
from spinemon.app.live_ui import LiveUI
from spinemon.io.recording import load
from spinemon.app.replay import replay
from spinemon.io.transport import SimTransport


def reframe(frame: bytes, *, mask: int | None = None, period_us: int | None = None) -> bytes:
    """The same samples as a valid frame with another sensor mask (upper only) or period."""
    o = proto.decode(frame)
    raw = np.frombuffer(o.block, dtype="<i2").reshape(o.count, proto.values_per_sample(o.mask))
    if mask == proto.SENSOR_UPPER and o.mask == proto.SENSOR_UPPER | proto.SENSOR_LOWER:
        raw = np.concatenate([raw[:, :6], raw[:, -1:]], axis=1)
    return proto.encode_samples(o.seq, o.t_us, period_us or o.period_us, mask or o.mask, o.ranges, o.flags, o.count, np.ascontiguousarray(raw).tobytes())


def _session():
    s = sim.simulate([sim.SetSpec("deadlift", 4, {4: "rounding"}, rest_s=3.0), sim.SetSpec("curl", 4, {3: "hip_swing"})], seed=2)
    return s, list(zip(s.frames, s.frame_times.tolist()))


def _live(frames, out):
    transport = SimTransport(frames, labels=(), speed=0.0)
    options = LiveOptions(sim=True, exercise="deadlift", out=str(out))
    return asyncio.run(asyncio.wait_for(run(options, LiveUI(io.StringIO()), transport=transport), 60.0))


def test_losing_the_lower_imu_mid_session_is_followed_not_fatal(tmp_path, capsys):
    s, frames = _session()
    half = next(i for i, (_, t) in enumerate(frames) if t > s.sets[1].t_start - 2.0)  # the lower IMU is gone from set 2 on
    changed = [(reframe(f, mask=proto.SENSOR_UPPER) if i >= half else f, t) for i, (f, t) in enumerate(frames)]
    changed.insert(half + 5, (reframe(changed[half + 5][0], period_us=50), changed[half + 5][1]))  # a period nothing can fuse
    out = tmp_path / "layout.spinrec"
    result = _live(changed, out)
    assert result.frames == len(changed)  # every frame was processed, none ended the session
    summ = result.summary
    assert summ["layout_changes"] and summ["layout_changes"][0]["sensors"] == "upper"
    assert summ["skipped_samples"] == {"rate out of range": proto.decode(changed[half + 5][0]).count}
    # set 1 (two sensors) judged the lumbar angle; set 2 runs in one-sensor mode and says so
    assert any(e.kind == "over_flexion" and e.rep == 4 for e in result.events)
    assert "twist_deg" in summ["limits_off"]
    rec = load(out)
    assert len(list(rec.frames_in())) == len(changed)
    again = replay(rec)
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in result.events]
    assert cli.main(["replay", str(out)]) == 0
    assert "same as the live session: yes" in capsys.readouterr().out
    assert cli.main(["report", str(out), "--out", str(tmp_path / "rep")]) == 0


def test_the_lower_imu_coming_back_is_followed_too(tmp_path):
    s, frames = _session()
    third = len(frames) // 3
    changed = [(reframe(f, mask=proto.SENSOR_UPPER) if third <= i < 2 * third else f, t) for i, (f, t) in enumerate(frames)]
    result = _live(changed, tmp_path / "back.spinrec")
    assert result.frames == len(changed)
    assert [c["sensors"] for c in result.summary["layout_changes"]] == ["upper", "upper+lower"]
    assert result.summary["phase"] == "monitoring"


def test_a_live_session_fed_mutated_valid_frames_keeps_running_and_replays(tmp_path):
    """run_live through `spinemon live`'s path, one frame in five replaced by a mutated valid frame."""
    import random
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz.valid_frames import mutate_valid

    s, frames = _session()
    r = random.Random(11)
    mixed = [((mutate_valid(f, r) if i % 5 == 4 and proto.decode(f).kind == proto.T_SAMPLES else f), t) for i, (f, t) in enumerate(frames)]
    out = tmp_path / "mutants.spinrec"
    result = _live(mixed, out)
    assert result.frames == len(mixed)
    assert result.summary["phase"] == "monitoring"
    again = replay(load(out))
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in result.events]
