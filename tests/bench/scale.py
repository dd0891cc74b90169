"""Replay throughput per core and with --jobs (issue 27): copies of one
recorded session (2 IMUs, 104 Hz) replayed with ``season.run_many`` (what
``spinemon replay DIR --jobs N`` and ``history`` use) at 1 and 2 workers, and
what a study of N hours of recordings costs from that."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from spinemon.app import season
from spinemon.app.simrun import run_simulated
from spinemon.io import sim


def run(report, quick: bool = False) -> dict:
    copies, sets = (4, 2) if quick else (8, 10)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        one = d / "c000.spinrec"
        specs = [sim.SetSpec(("deadlift", "squat", "overhead_press")[k % 3], 8, {}) for k in range(sets)]
        run_simulated(specs, 5, out=one, sim_settings=sim.SimSettings(rate_hz=104.0), rom=False)
        paths = [one] + [shutil.copy(one, d / f"c{k:03d}.spinrec") for k in range(1, copies)]
        paths = [Path(p) for p in paths]
        row = season.replay_row(str(one))  # warm, and the session's length
        hours = row["duration_s"] / 3600.0
        wall = {}
        for jobs in (1, 2):
            t = time.perf_counter()
            rows = season.run_many(season.replay_row, paths, jobs=jobs, progress=None)
            wall[jobs] = time.perf_counter() - t
            assert not any(r.get("error") for r in rows)
    rec_h = hours * copies
    per_core = {j: rec_h / wall[j] / j for j in wall}  # recording hours replayed per second per worker
    out = {"copies": copies, "session_s": hours * 3600, "wall_s": wall, "hours_per_s_per_core": per_core,
           "speedup_2_jobs": wall[1] / wall[2], "cpus": os.cpu_count()}
    s1 = 1.0 / per_core[1]  # seconds of one core per hour of recording
    body = (
        f"{copies} copies of a {hours * 60:.1f}-minute session (2 IMUs, 104 Hz), replayed by `season.run_many` "
        f"(`spinemon replay DIR --jobs N`, `history`) on this {os.cpu_count()}-core machine (shared; load average "
        f"{os.getloadavg()[0]:.2f}):\n\n"
        "| --jobs | wall (s) | recording hours per second | per core |\n|---:|---:|---:|---:|\n"
        + "\n".join(f"| {j} | {wall[j]:.2f} | {rec_h / wall[j]:.2f} | {per_core[j]:.2f} |" for j in wall)
        + f"\n\n2 workers: {wall[1] / wall[2]:.2f}x the speed of one (2 cores; worker start-up and the machine's other "
        f"jobs take the rest). One core replays an hour of 2-IMU recording in about {s1:.2f} s "
        "(start-up, load and decode included, short sessions: the per-file costs weigh more than in one long one).\n\n"
        "What a study costs: N hours of recordings take N x "
        f"{s1:.2f} s of one core: 1,000 hours {1000 * s1 / 60:.0f} core-minutes, 100,000 hours "
        f"{100000 * s1 / 3600:.1f} core-hours; on this machine (2 cores, {wall[1] / wall[2]:.1f}x with 2 jobs) "
        f"{1000 * s1 / (wall[1] / wall[2]) / 60:.0f} and {100000 * s1 / (wall[1] / wall[2]) / 3600:.1f} hours of wall clock. "
        "Each replay is independent (one file in, one row out), so throughput grows with cores until the disk "
        "is the limit: a 1-hour 2-IMU recording is about 24 MB, so 1,000 files a minute need ~400 MB/s of reads. "
        "One machine stops being enough when a study must be re-analysed faster than its hours x "
        f"{s1:.2f} s / cores (a 100,000-hour cohort overnight needs about "
        f"{100000 * s1 / (8 * 3600):.0f} cores), or when its recordings no longer fit one disk; then the files are "
        "split between machines (nothing is shared between replays but the code). A second analysis of unchanged "
        "files costs nothing with the session index (`history`).\n\n"
        "Reproduce: `.venv/bin/python -m tests.bench scale`."
    )
    report.section("Replay throughput per core and with --jobs", body)
    report.json("scale", out)
    return out
