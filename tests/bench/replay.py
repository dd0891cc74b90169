"""Replay at the speed of the data (issue 13): a long 2-IMU 104 Hz session,
recorded through the live path, replayed end to end in one process.

Measured, interleaved in the same process: ``spinemon replay``'s path in
long blocks (``session.replay``: load, decode, fuse, calibrate, angles,
reps, detection), the same frame by frame (as live ran it, and as replay did
before), and VQF's ``updateBatch`` fusing the same samples of both IMUs
(the reference the issue names). The events of the block replay are
asserted equal to the frame-by-frame replay's and to the summary the live
run recorded.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from spinemon.io import sim
from spinemon.io.recording import KIND_RX, RecordRun, load
from spinemon.app.replay import replay
from spinemon.app.simrun import run_simulated
from spinemon.core.stream import FrameDecoder, SampleBlock


def _session(minutes: float) -> list[sim.SetSpec]:
    """Sets of deadlifts, squats and presses with faults, 60 s rests walking about."""
    specs = []
    kinds = ["deadlift", "squat", "overhead_press"]
    faults = {"deadlift": {3: "rounding"}, "squat": {}, "overhead_press": {4: "arching"}}
    t = 0.0
    i = 0
    while t < minutes * 60.0:
        ex = kinds[i % 3]
        specs.append(sim.SetSpec(ex, 5, faults[ex] if i % 2 == 0 else {}, rest_s=60.0, walk_during_rest=True))
        t += 5 * 4.0 + 60.0
        i += 1
    return specs


def _samples(rec) -> tuple[dict, float]:
    dec = FrameDecoder()
    blocks = [b for r in rec.records if r.kind == KIND_RX for b in dec.feed(r.payload, r.t_host) if isinstance(b, SampleBlock) and len(b)]
    blk = SampleBlock.concatenate(blocks)
    return blk, blk.rate_hz


def _decode_all(rec) -> int:
    """Every RX frame of a freshly loaded recording through a decoder as the
    block replay hands them over (runs from the loader's columns, 4096 frames
    at a time; single records as lists); the samples decoded."""
    from spinemon.app.replay import _frame_run

    dec = FrameDecoder()
    for p in rec.pieces_in():
        if isinstance(p, RecordRun):
            frames, t_hosts = _frame_run(p), p.t_host.tolist()
            for a in range(0, len(p), 4096):
                b = min(a + 4096, len(p))
                dec.feed_run(frames.cut(a, b), t_hosts[a:b])
        elif p.kind == KIND_RX:
            dec.feed_many([p.payload], [p.t_host])
    return dec.stats.samples


def run(report, quick: bool = False) -> None:
    minutes = 5.0 if quick else 60.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hour.spinrec"
        t0 = time.perf_counter()
        run_simulated(_session(minutes), 11, out=path, sim_settings=sim.SimSettings(rate_hz=104.0), rom=False)
        t_make = time.perf_counter() - t0
        rec = load(path)
        n_frames = sum(1 for r in rec.records if r.kind == KIND_RX)
        live = rec.meta_of("summary")[-1]
        blk, rate = _samples(rec)
        n = len(blk)
        try:
            import vqf
        except ImportError:
            vqf = None

        cpu: dict[str, list[float]] = {"block": [], "vqf": []}  # process CPU time: steadier than wall time on a shared machine

        def vqf_run() -> float:
            t, c = time.perf_counter(), time.process_time()
            for s in blk.sensors:
                f = vqf.VQF(1.0 / rate)
                f.updateBatch(np.ascontiguousarray(blk.gyr[s]), np.ascontiguousarray(blk.acc[s]))
            cpu["vqf"].append(time.process_time() - c)
            return time.perf_counter() - t

        def block_run() -> tuple[float, dict]:
            t, c = time.perf_counter(), time.process_time()
            r = replay(load(path))
            cpu["block"].append(time.process_time() - c)
            return time.perf_counter() - t, r.summary

        def frame_run() -> tuple[float, dict]:
            t = time.perf_counter()
            r = replay(load(path), block_samples=1)
            return time.perf_counter() - t, r.summary

        def parts_run() -> tuple[float, float]:
            t = time.perf_counter()
            fresh = load(path)
            t_load = time.perf_counter() - t
            t = time.perf_counter()
            _decode_all(fresh)
            return t_load, time.perf_counter() - t

        times = {"block": [], "frame": [], "vqf": [], "load": [], "decode": []}
        summaries = {}
        rounds = 3
        load_before = os.getloadavg()[0]
        for _ in range(rounds):
            dt, summaries["block"] = block_run()
            times["block"].append(dt)
            if vqf is not None:
                times["vqf"].append(vqf_run())
            t_load, t_decode = parts_run()
            times["load"].append(t_load)
            times["decode"].append(t_decode)
        load_after = os.getloadavg()[0]
        dt, summaries["frame"] = frame_run()  # once: it is the slow one
        times["frame"].append(dt)
        for key in ("events", "reps", "sets", "suppressed"):
            assert summaries["block"][key] == summaries["frame"][key], f"block and frame replays differ in {key}"
        assert summaries["block"]["events"] == live["events"] and summaries["block"]["reps"] == live["reps"], "replay differs from the live run"
        tracemalloc.start()
        replay(load(path))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        prof = cProfile.Profile()
        prof.enable()
        replay(load(path))
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(8)
        top = [ln for ln in buf.getvalue().splitlines() if ln.strip() and ln.strip()[0].isdigit()][:8]

    best = {k: min(v) for k, v in times.items() if v}
    ratio = best["block"] / best["vqf"] if "vqf" in best else float("nan")
    ratio_cpu = min(cpu["block"]) / min(cpu["vqf"]) if cpu["vqf"] else float("nan")
    lines = [
        f"A {minutes:.0f}-minute session, 2 IMUs at 104 Hz ({n:,} samples per IMU, {len(summaries['block']['reps'])} reps, "
        f"{len(summaries['block']['events'])} events), simulated and recorded through the live path ({t_make:.0f} s to make). "
        f"Best of {rounds} in one process (frame by frame: once):",
        "",
        "| path | seconds | x VQF updateBatch |",
        "|---|---|---|",
        f"| `spinemon replay` (long blocks) | {best['block']:.2f} | {ratio:.1f} |",
        f"| frame by frame (as live; replay before issue 13): {1e6 * best['frame'] / n_frames:.0f} us per frame of {n / n_frames:.0f} samples | {best['frame']:.2f} | {best['frame'] / best['vqf']:.1f} |" if "vqf" in best else "",
        f"| VQF `updateBatch`, both IMUs | {best.get('vqf', float('nan')):.2f} | 1.0 |",
        "",
        f"In CPU time (the process's, best of {rounds}): replay {min(cpu['block']):.2f} s, VQF {min(cpu['vqf']) if cpu['vqf'] else float('nan'):.2f} s, "
        f"{ratio_cpu:.1f}x. Load average on this 2-core machine: {load_before:.1f} before the timed runs, {load_after:.1f} after "
        "(above 2, other work shared the cores: wall times stretch, CPU times less so).",
        "",
        f"Of the block replay: loading the recording {best['load']:.3f} s (runs of frames kept as columns), "
        f"decoding its frames {best['decode']:.3f} s (best of {rounds}, timed apart).",
        "",
        f"Events, reps, sets and suppressed events: block replay == frame-by-frame replay == the live run's summary (asserted). "
        f"Peak traced memory of one block replay: {peak / 1e6:.0f} MB. Where the block replay's time goes (cProfile, tottime):",
        "",
        "```",
        *top,
        "```",
    ]
    report.section("Replay at the speed of the data", "\n".join(x for x in lines if x is not None))
    report.json("replay", {"minutes": minutes, "samples_per_imu": n, "frames": n_frames, "frame_us": 1e6 * best["frame"] / n_frames, "seconds": times, "cpu_seconds": cpu, "ratio_vqf": ratio, "ratio_vqf_cpu": ratio_cpu, "load": [load_before, load_after], "peak_bytes": peak, "profile_top": top})
