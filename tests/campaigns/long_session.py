"""Long-session campaign: a simulated 2-hour session (2 IMUs, 200 Hz)
through the live path (SimTransport -> run_live -> RecordingWriter +
Pipeline), with the sequence number and the device clock starting close to
2**32 so both wrap during the session (the u32 microsecond clock wraps again
every 71.6 min by itself).

Frames are generated chunk by chunk (``sim.iter_frames``), so the generator
holds no session-sized arrays. Reports the resident memory (VmRSS, and the
peak VmHWM) at 10 min and at the end of device time, and checks that every
sample arrived once, in order, with the unwrapped index and time continuing
exactly across both wraps.

    python -m tests.campaigns.long_session [--minutes 120] [--rate 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in kB (Linux)."""
    vals = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


def workout(minutes: float):
    from spinemon.io import sim

    sets = []
    t = 0.0
    k = 0
    while not sets or t < minutes * 60.0 - 60.0:
        faults = {3: "rounding"} if k % 3 == 0 else {}
        sets.append(sim.SetSpec("deadlift", 5, faults, rest_s=min(180.0, max(5.0, minutes * 60.0 - t - 80.0))))
        t += 5 * 5.0 + sets[-1].rest_s
        k += 1
    # the estimate above is rough: add sets until the plan covers the time
    while True:
        _, _, _, rend = sim._prepare(sets, 11, sim.SimSettings(rate_hz=200), True, False, None)
        if rend.n >= minutes * 60.0 * 200:
            return sets
        sets.append(sim.SetSpec("deadlift", 5, {}, rest_s=180.0))


def run(minutes: float, rate: int, out_dir: Path, seq_start: int, time_start_us: int) -> dict:
    from spinemon.io import sim
    from spinemon.core.calibration import CalibrationSettings
    from spinemon.core.pipeline import Pipeline, PipelineSettings
    from spinemon.io.recording import RecordingWriter, load
    from spinemon.app.session import header_for, run_live
    from spinemon.io.transport import SimTransport

    settings = sim.SimSettings(rate_hz=rate, seq_start=seq_start, time_start_us=time_start_us)
    sets = workout(minutes)
    pipeline = Pipeline(PipelineSettings(exercise="deadlift", calibration=CalibrationSettings(rom=False)))
    out = out_dir / "long.spinrec"
    recorder = RecordingWriter(out, header_for(pipeline.settings, "sim:long-session"))
    frames = sim.iter_frames(sets, seed=11, settings=settings, rom=False)
    transport = SimTransport(frames, speed=0)
    period = 1.0 / rate
    state = {"next_seq": None, "next_t": None, "bad_steps": 0, "samples": 0, "t0": None, "marks": {}, "t_dev": 0.0}
    marks_at = {"10 min": 600.0}
    t_wall0 = time.monotonic()

    from spinemon.core.stream import SampleBlock

    decoder_feed = pipeline.decoder.feed

    def checked_feed(frame, t_host=None):
        """The decoder's output, checked: the unwrapped index and time of
        every block continue exactly where the last one ended."""
        out = decoder_feed(frame, t_host)
        for blk in out:
            if not isinstance(blk, SampleBlock):
                continue
            seq, t = blk.seq, blk.t
            if state["t0"] is None:
                state["t0"] = float(t[0])
                state["seq0"] = int(seq[0])
            elif int(seq[0]) != state["next_seq"] or abs(float(t[0]) - state["next_t"]) > 1e-6:
                state["bad_steps"] += 1
            if len(t) > 1 and (np.any(np.diff(seq) != 1) or np.max(np.abs(np.diff(t) - period)) > 1e-6):
                state["bad_steps"] += 1
            state["next_seq"] = int(seq[-1]) + 1
            state["next_t"] = float(t[-1]) + period
            state["samples"] += len(t)
            before = state["t_dev"]
            state["t_dev"] = float(t[-1]) - state["t0"]
            for name, at in marks_at.items():
                if name not in state["marks"] and state["t_dev"] >= at:
                    rss, hwm = rss_kb()
                    state["marks"][name] = {"device_s": round(state["t_dev"], 1), "rss_mb": round(rss / 1024, 1), "peak_rss_mb": round(hwm / 1024, 1), "wall_s": round(time.monotonic() - t_wall0, 1)}
                    print(f"{name}: RSS {rss / 1024:.1f} MB, peak {hwm / 1024:.1f} MB", flush=True)
            if int(state["t_dev"]) // 600 != int(before) // 600:
                rss, hwm = rss_kb()
                print(f"  device {state['t_dev'] / 60:6.1f} min: RSS {rss / 1024:.1f} MB, peak {hwm / 1024:.1f} MB, wall {time.monotonic() - t_wall0:.0f} s", flush=True)
                state["curve"].append((round(state["t_dev"] / 60, 1), round(rss / 1024, 1)))
        return out

    pipeline.decoder.feed = checked_feed
    state["curve"] = []

    async def main():
        await transport.connect()
        return await run_live(transport, pipeline, recorder)

    result = asyncio.run(main())
    rss, hwm = rss_kb()
    st = pipeline.decoder.stats
    expected = int(round(state["t_dev"] * rate)) + 1
    last_seq = state["next_seq"] - 1
    summary = {
        "device_minutes": round(state["t_dev"] / 60.0, 2),
        "rate_hz": rate,
        "imus": 2,
        "frames": result.frames,
        "samples": st.samples,
        "samples_expected_from_time": expected,
        "lost_samples": st.lost_samples,
        "duplicate_samples": st.duplicate_samples,
        "restarts": st.restarts,
        "bad_frames": st.bad_frames,
        "time_steps_not_one_period": state["bad_steps"],
        "seq_start": seq_start,
        "first_unwrapped_seq": state["seq0"],
        "last_unwrapped_seq": last_seq,
        "seq_wrapped": last_seq > 0xFFFFFFFF,
        "clock_wraps": int((time_start_us + state["t_dev"] * 1e6) // 2**32),
        "events": len(result.events),
        "alerts": len(result.alerts),
        "rss": {**state["marks"], "end": {"device_s": round(state["t_dev"], 1), "rss_mb": round(rss / 1024, 1), "peak_rss_mb": round(hwm / 1024, 1)}},
        "rss_curve_min_mb": state["curve"],
        "recording_mb": round(out.stat().st_size / 1e6, 1),
        "wall_s": round(time.monotonic() - t_wall0, 1),
    }
    rec = load(out)
    summary["recording_loads"] = not rec.truncated and rec.corrupt_records == 0
    ok = (
        st.lost_samples == 0
        and st.duplicate_samples == 0
        and st.restarts == 0
        and st.bad_frames == 0
        and state["bad_steps"] == 0
        and st.samples == expected
        and state["seq0"] == seq_start
        and last_seq == seq_start + st.samples - 1
        and summary["seq_wrapped"]
        and summary["clock_wraps"] >= 1
        and summary["recording_loads"]
    )
    summary["ok"] = bool(ok)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.campaigns.long_session", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--json", help="write the summary here")
    ns = ap.parse_args(argv)
    rate = ns.rate
    # the index wraps 30 min in, the clock 20 min in (and every 71.6 min after)
    seq_start = 2**32 - int(min(30.0, ns.minutes / 2) * 60 * rate)
    time_start_us = 2**32 - int(min(20.0, ns.minutes / 3) * 60e6)
    with tempfile.TemporaryDirectory(prefix="spinemon-long-") as tmp:
        summary = run(ns.minutes, rate, Path(tmp), seq_start, time_start_us)
    print(json.dumps(summary, indent=2))
    if ns.json:
        Path(ns.json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
