"""The session index (issue 27): ``spinemon history`` over a season, run
twice in one folder with a fresh spinemon home; the second run reads every
session's facts from the index and replays none. Then one new session: one
replay. Target: the second run at most 10 % of the first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spinemon.app.simrun import run_simulated
from spinemon.io import sim

TARGET = 0.10


def _history(d: Path, home: Path) -> tuple[float, dict]:
    env = {**os.environ, "SPINEMON_HOME": str(home)}
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "spinemon.app.cli", "history", str(d), "--json", "--jobs", "2", "--journal", os.devnull],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return time.perf_counter() - t, json.loads(p.stdout)


def run(report, quick: bool = False) -> dict:
    from tests.bench.replay import _session

    sessions, minutes = (4, 3.0) if quick else (16, 20.0)
    with tempfile.TemporaryDirectory() as tmp:
        d, home = Path(tmp) / "season", Path(tmp) / "home"
        d.mkdir()
        one = d / "s000.spinrec"
        # sets of deadlifts, squats and presses with faults, rests walking about (as the replay section's hour)
        run_simulated(_session(minutes), 3, out=one, sim_settings=sim.SimSettings(rate_hz=104.0), rom=False)
        for k in range(1, sessions):
            shutil.copy(one, d / f"s{k:03d}.spinrec")
        first, doc1 = _history(d, home)
        second, doc2 = _history(d, home)
        shutil.copy(one, d / "new.spinrec")
        third, doc3 = _history(d, home)
    ratio = second / first
    out = {
        "sessions": sessions,
        "first_s": first,
        "second_s": second,
        "one_new_s": third,
        "ratio_second_to_first": ratio,
        "ratio_to_target": ratio / TARGET,
        "replayed": [doc1["index"]["replayed"], doc2["index"]["replayed"], doc3["index"]["replayed"]],
    }
    body = (
        f"{sessions} recorded sessions of {minutes:.0f} minutes ({sessions * minutes / 60:.1f} hours; simulated, 2 IMUs at 104 Hz, "
        "sets of deadlifts, squats and presses with faults, rests walking about), "
        "`spinemon history DIR --json --jobs 2` in a fresh process each time, wall clock (start-up included):\n\n"
        "| run | seconds | recordings replayed |\n|---|---:|---:|\n"
        f"| first (empty index) | {first:.2f} | {out['replayed'][0]} |\n"
        f"| second (unchanged) | {second:.2f} | {out['replayed'][1]} |\n"
        f"| third (one new session) | {third:.2f} | {out['replayed'][2]} |\n\n"
        f"Second run / first: {ratio:.3f}; target (issue 27) <= {TARGET:.2f}: **{ratio / TARGET:.2f}x** the target. "
        "The second run's time is Python start-up, the index look-ups (a stat and a 64 KiB hash per recording) and the "
        "history itself; it does not grow with the length of the sessions.\n\n"
        "Reproduce: `.venv/bin/python -m tests.bench history_index`."
    )
    report.section("History over a season: the session index", body)
    report.json("history_index", out)
    return out
