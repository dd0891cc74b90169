"""Real recordings through the product's path: gait-l5 per person.

gait-l5 (C. Voisard et al., "A Reference Data Set for the Study of Healthy
Subject Gait with Inertial Measurements Units", IPOL; GNU AGPL 3.0): 38 trials
of 19 people standing, walking 10 m, turning round and walking back, one IMU at
L5. Each file is imported as it comes (``spinemon import``) and replayed as a
user would; nothing here is tuned on it. The BROAD figures are in the fusion
section.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from spinemon.core.calibration import CalibrationSettings
from spinemon.app.csv_import import import_csv
from spinemon.core.pipeline import PipelineSettings
from spinemon.io.recording import load
from spinemon.app.replay import replay

GAIT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gait-l5"
COLUMNS = "ax=Acc_X,ay=Acc_Y,az=Acc_Z,gx=Gyr_X,gy=Gyr_Y,gz=Gyr_Z"
EXERCISES = ("generic", "deadlift", "squat", "curl", "overhead_press")


def run(report, quick: bool = False) -> None:
    if not (GAIT_DIR / "README.md").exists():
        print(f"realdata: {GAIT_DIR} not found; section skipped", flush=True)
        return
    files = sorted(GAIT_DIR.glob("*_lb.txt"))[: 4 if quick else None]
    people: dict[int, dict] = {}
    raw = {}
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            out = Path(tmp) / f"{f.stem}.spinrec"
            import_csv(f, out, columns=COLUMNS, settings=PipelineSettings(calibration=CalibrationSettings(rom=False)))
            meta = json.loads((GAIT_DIR / f"{f.stem[:-3]}.json").read_text())
            rec = load(out)
            row = {"walk_start_s": meta["TrialBoundaries"][0] / 100.0}
            for ex in EXERCISES:
                for between in (False, True):
                    settings = PipelineSettings(exercise=ex, monitor_between_sets=between, calibration=CalibrationSettings(rom=False))
                    res = replay(rec, settings)
                    key = f"{ex}{'+between' if between else ''}"
                    row[key] = {"reps": len(res.summary["reps"]), "alerts": len(res.alerts), "events": len(res.events)}
                    if ex == "generic" and not between:
                        row["monitoring"] = res.summary["monitoring"]
                        row["t_neutral"] = list(res.calibration.t_neutral) if res.calibration else None
            raw[f.stem] = row
            people.setdefault(int(meta["Subject"]), []).append(row)
    lines = [
        "gait-l5 (Voisard et al., IPOL; GNU AGPL 3.0): 38 trials of 19 people standing, walking 10 m, turning round "
        "and walking back, one IMU on the lower back (L5, strapped on tilted). Each file imported as it comes "
        "(`spinemon import FILE --columns ...`: metadata line, tabs, rate stated above the header) and replayed "
        "through the product's pipeline (one sensor; neutral only, no range-of-motion sweep in these recordings). "
        "Walking and turning must give no reps and no alerts.",
        "",
        "| person | trials | calibration | neutral found at (s) | walk starts (s) | monitored | reps (5 exercises) | alerts (default) | events with monitor_between_sets |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|",
    ]
    totals = {"reps": 0, "alerts": 0, "between": 0, "monitored": 0.0, "duration": 0.0, "done": 0, "trials": 0}
    for p, rows in sorted(people.items()):
        cal = ",".join(r["monitoring"]["calibration"] for r in rows)
        neutral = ", ".join(f"{r['t_neutral'][0]:.1f}-{r['t_neutral'][1]:.1f}" if r["t_neutral"] else "-" for r in rows)
        walk = ", ".join(f"{r['walk_start_s']:.1f}" for r in rows)
        mon = sum(r["monitoring"]["monitored_s"] for r in rows)
        dur = sum(r["monitoring"]["duration_s"] for r in rows)
        reps = sum(r[ex]["reps"] for r in rows for ex in EXERCISES)
        alerts = sum(r[ex]["alerts"] for r in rows for ex in EXERCISES)
        between = sum(r[f"{ex}+between"]["events"] for r in rows for ex in EXERCISES)
        lines.append(f"| {p} | {len(rows)} | {cal} | {neutral} | {walk} | {mon:.1f} of {dur:.1f} s | {reps} | {alerts} | {between} |")
        totals["reps"] += reps
        totals["alerts"] += alerts
        totals["between"] += between
        totals["monitored"] += mon
        totals["duration"] += dur
        totals["done"] += sum(r["monitoring"]["calibration"] == "done" for r in rows)
        totals["trials"] += len(rows)
    kinds = {}
    for row in raw.values():
        for ex in EXERCISES:
            kinds[ex] = kinds.get(ex, 0) + row[f"{ex}+between"]["events"]
    lines += [
        "",
        f"- {totals['trials']} trials: calibration from a still stretch in {totals['done']}; monitored "
        f"{totals['monitored']:.0f} of {totals['duration']:.0f} s ({100 * totals['monitored'] / max(totals['duration'], 1e-9):.0f} %; "
        f"the rest is the standing before the first still second completes: at most "
        f"{max(r['monitoring']['duration_s'] - r['monitoring']['monitored_s'] for r in raw.values()):.1f} s in a trial, always before the walk starts).",
        f"- Reps over all trials and the exercises {', '.join(EXERCISES)}: **{totals['reps']}**; alerts with the default "
        f"settings: **{totals['alerts']}**.",
        f"- With `monitor_between_sets` (opt in: limits watched outside sets too): {totals['between']} events in all "
        f"({', '.join(f'{k} {v}' for k, v in kinds.items())}); with one sensor the limits that need two sensors are off "
        "(lumbar flexion/extension in hinges and squats, twist), what remains is the lean back of curls and presses.",
        "",
        "Reproduce: `.venv/bin/python -m tests.bench realdata`.",
    ]
    report.section("Real recordings: walking and turning (gait-l5)", "\n".join(lines))
    report.json("realdata", {"trials": raw, "totals": totals})
