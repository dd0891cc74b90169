"""The harsher simulated wearer (issue 22): reps counted, faults buzzed, false
alerts and the start of monitoring, as real lifting showed it to be (no still
start, reps back to back with the pelvis still tilted at the top, sensors
mounted 30 deg off, 20-200 Hz with clock jitter, single lifts), and the same
figures on the real gait-l5 walks (C. Voisard et al., IPOL, GNU AGPL 3.0).

The simulator is our own model; the real recordings are the judge of what
must not happen (reps or alerts while walking and turning).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np

from spinemon.app.simrun import run_simulated
from spinemon.core.calibration import CalibrationSettings
from spinemon.core.pipeline import RULES, PipelineSettings
from spinemon.io import sim

SEEDS = (1, 2, 3)
#: ``SPINEMON_HARSH_SEEDS=FIRST-LAST`` runs the section over more seeds (the
#: issue 22 closing figures: 1-10 looked at while building, 11-30 kept back)
SEEDS_ENV = "SPINEMON_HARSH_SEEDS"


def seeds_from_env() -> tuple[int, ...]:
    """The seeds to run: :data:`SEEDS`, or the range named in :data:`SEEDS_ENV`."""
    given = os.environ.get(SEEDS_ENV, "").strip()
    if not given:
        return SEEDS
    first, _, last = given.partition("-")
    return tuple(range(int(first), int(last or first) + 1))


def _run(sets, seed, exercise, **kw):
    settings = PipelineSettings(exercise=exercise, calibration=CalibrationSettings(rom=False))
    return run_simulated(sets, seed, sim_settings=sim.SimSettings(**kw), settings=settings, rom=False, labels=False)


def _score(run) -> dict:
    truth = run.session.reps
    summ = run.result.summary
    faults = [r for r in truth if r.fault]
    alerted = sum(1 for r in faults if any(r.t_start - 0.3 <= a.t_trigger_device <= r.t_end + 0.3 for a in run.result.alerts))
    false = sum(1 for a in run.result.alerts if not any(r.t_start - 0.3 <= a.t_trigger_device <= r.t_end + 0.3 for r in faults))
    m = summ["monitoring"]
    held = summ["held_back"]
    return {"reps": len(summ["reps"]), "truth_reps": len(truth), "faults": len(faults), "alerted": alerted, "false_alerts": false,
            "not_monitored_s": m["duration_s"] - m["monitored_s"], "held_back_faults": sum(held["faults"].values()),
            "held_back_s": held["seconds"]}


def _seed_text(seeds: tuple[int, ...]) -> str:
    if len(seeds) > 3 and seeds == tuple(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _scenarios(quick: bool):
    seeds = SEEDS[:1] if quick else seeds_from_env()
    for ex in sim.EXERCISES:
        fault = (sim.FAULTS_BY_EXERCISE.get(ex) or (None,))[0]
        for stand in (3.0, 0.0):
            for yaw in (0.0, 30.0):
                yield f"{ex}", f"stand {stand:g} s, yaw {yaw:g}", [sim.SetSpec(ex, 5, {3: fault} if fault else {})], ex, seeds, dict(stand_s=stand, mount_yaw_deg=yaw)
    for imus in (("upper", "lower"), ("upper",)):
        yield "squat back to back, top tilted 30 deg", f"{len(imus)} IMU", [sim.SetSpec("squat", 10, back_to_back=True, top_tilt_deg=30.0)], "squat", seeds, dict(stand_s=0.0, imus=imus)
    yield "squat, forward lean (one IMU)", "stand 0 s", [sim.SetSpec("squat", 5, {3: "forward_lean"})], "squat", seeds, dict(stand_s=0.0, imus=("upper",))
    for rate, jitter in ((20.0, 0.0), (110.0, 0.002), (200.0, 0.001)):
        yield "deadlift", f"{rate:g} Hz, clock jitter {jitter * 1000:g} ms", [sim.SetSpec("deadlift", 4, {2: "rounding"})], "deadlift", seeds, dict(stand_s=0.0, rate_hz=rate, clock_jitter_s=jitter)
    for ex in ("deadlift", "squat"):
        yield f"{ex} single lift", "110 Hz", [sim.SetSpec(ex, 1)], ex, seeds, dict(rate_hz=110.0)


def _gait(report) -> dict | None:
    from pathlib import Path

    from spinemon.app import cli
    from spinemon.app.replay import replay
    from spinemon.core.detect import PROFILES
    from spinemon.io.recording import load

    gait_dir = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gait-l5"
    files = sorted(gait_dir.glob("*_lb.txt"))
    if not files:
        return None
    import contextlib
    import io
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        recs = []
        for f in files:
            out = Path(tmp) / f"{f.stem}.spinrec"
            with contextlib.redirect_stdout(io.StringIO()):
                cli.main(["import", str(f), "--columns", "ax=Acc_X,ay=Acc_Y,az=Acc_Z,gx=Gyr_X,gy=Gyr_Y,gz=Gyr_Z", "--out", str(out)])
            recs.append(load(out))
        per = {}
        starts = []
        done = 0
        for ex in PROFILES:
            alerts = reps = held = 0
            for rec in recs:
                res = replay(rec, replace(PipelineSettings.from_dict(rec.header["settings"]), exercise=ex))
                alerts += len(res.alerts)
                reps += len(res.summary["reps"])
                held += sum(res.summary["held_back"]["faults"].values())
                if ex == "generic":
                    m = res.summary["monitoring"]
                    starts.append(m["duration_s"] - m["monitored_s"])
                    done += m["calibration"] == "done"
            per[ex] = {"alerts": alerts, "reps": reps, "held_back_faults": held}
    # the same walks with their standing start cut off (2 s): a small lift's rep counter
    # learns its gyro bias in motion (rules 3), which must not count the walk
    from spinemon.core import rep_kernel
    from spinemon.core.pipeline import Pipeline
    from spinemon.core.stream import SampleBlock

    walks = [np.loadtxt(f, skiprows=2)[200:] for f in files]
    cut = {}
    def cut_run(ex: str, rules: int) -> tuple[int, int, int]:
        reps = alerts = tilt = 0
        for a in walks:
            acc, gyr = a[:, 1:4], a[:, 4:7]
            p = Pipeline(PipelineSettings(exercise=ex, calibration=CalibrationSettings(rom=False), rules=rules))
            for i in range(0, len(acc), 512):
                j = min(len(acc), i + 512)
                k = np.arange(i, j)
                p.on_block(SampleBlock(k, k / 100.0, {"upper": acc[i:j]}, {"upper": gyr[i:j]}, np.full(j - i, np.nan), np.zeros(j - i, dtype=np.uint8), 100.0), j / 100.0)
            p.finish()
            reps += len(p.rep_records)
            alerts += len(p.alerts)
            tilt += int(p.segmenter.reps._I[rep_kernel.GYRO_MODE]) == 2
        return reps, alerts, tilt

    for ex in ("overhead_press", "single_arm_press", "curl", "bench"):
        reps, alerts, tilt = cut_run(ex, RULES)
        cut[ex] = {"reps": reps, "alerts": alerts, "bias_learnt_in_motion": tilt, "reps_rules_2": cut_run(ex, 2)[0]}
    return {"trials": len(recs), "per_exercise": per, "not_monitored_s_max": max(starts), "not_monitored_s_mean": float(np.mean(starts)), "calibrated_still": done,
            "cut_start": cut}


def run(report, quick: bool = False) -> None:
    t0 = time.perf_counter()
    rows = []
    data = []
    used: tuple[int, ...] = ()
    for name, how, sets, ex, seeds, kw in _scenarios(quick):
        used = tuple(seeds)
        scores = [_score(_run(sets, seed, ex, **kw)) for seed in seeds]
        exact = sum(s["reps"] == s["truth_reps"] for s in scores)
        alerted = sum(s["alerted"] for s in scores)
        faults = sum(s["faults"] for s in scores)
        false = sum(s["false_alerts"] for s in scores)
        start = max(s["not_monitored_s"] for s in scores)
        # every seed's count when they are few; else only the seeds that missed
        if len(scores) <= 5:
            got = ", ".join(f"{s['reps']}/{s['truth_reps']}" for s in scores)
        else:
            got = "; ".join(f"seed {sd}: {s['reps']}/{s['truth_reps']}" for sd, s in zip(seeds, scores) if s["reps"] != s["truth_reps"]) or "all exact"
        held = sum(s["held_back_faults"] for s in scores)
        rows.append(f"| {name} | {how} | {exact}/{len(scores)} ({got}) | {alerted}/{faults} | {false} | {held} | {start:.2f} |")
        data.append({"scenario": name, "how": how, "kw": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}, "per_seed": scores})
    gait = _gait(report)
    lines = [
        "The harsher simulated wearer (issue 22), through the live path (`run_simulated`), unlabelled sets, no guided "
        f"range sweep, seeds {_seed_text(used)}. *Reps exact*: sessions whose rep count "
        "equals the truth (reps found / true, per seed). *Faults buzzed*: faulty reps with an alert during them. "
        "*False alerts*: alerts outside every faulty rep. *Held back*: faults past a limit that did not buzz, each named "
        "(summed over the seeds; e.g. the twist while a gyro's bias is not learnt, lateral bend in a lunge while a heading is "
        "not known). *Monitoring from*: the latest first monitored sample over the seeds (s).",
        "",
        "| lift | how | reps exact | faults buzzed | false alerts | held back (named) | monitoring from (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "How the rows came to pass (docs/architecture.md, the rules): curls with no still start are measured, before "
        "any gyro bias is known, on the rep counter's own tilt filter (rules 4), and a bias learnt while standing is "
        "confirmed by a later still stretch before it is trusted (rules 6); a press with no still start restarts the "
        "fusion at its first still neutral (rules 5); a moving provisional neutral takes its gravity from the fusion "
        "(rules 5). Lunges and split squats with crooked sensors and no range sweep: each sensor's heading is found "
        "from a left and a right rep, each rep's side read from its own twist even while the gyro biases are unknown "
        "(rules 7); until then lateral bend waits, and an arch the unknown heading may hide is told by name (held "
        "back), never silent. Rules 8: a press's arch or a curl's swing the unknown heading may hide is told by name "
        "too; the twist is measured relative to the pelvis, and the twist an unknown gyro bias built is dropped once "
        "it is known; a small lift rests only where its excursion stood still, its first reps measured again once "
        "the bias is known. Rules 9: a small lift's still bias is checked against the tilt filter's between reps; a "
        "lunge's heading found from a rep on each side carries a band, and an arch only the band reaches is told.",
        "",
    ]
    if gait is not None:
        lines += [
            f"Real walks (gait-l5, {gait['trials']} trials, imported as they come, replayed with each exercise's profile; "
            "limits armed everywhere but where a named reason holds them back): monitoring from at most "
            f"{gait['not_monitored_s_max']:.2f} s (mean {gait['not_monitored_s_mean']:.2f} s); neutral from a real still stretch in "
            f"{gait['calibrated_still']} of {gait['trials']}.",
            "",
            "| profile | alerts | reps | faults past a limit held back (named) |",
            "|---|---:|---:|---:|",
            *[f"| {ex} | {v['alerts']} | {v['reps']} | {v['held_back_faults']} |" for ex, v in gait["per_exercise"].items()],
            "",
            "The same walks with their standing start cut off (from 2 s in): the rep counter of a small lift has no still "
            f"moment before the walk, so it learns its gyro bias across gravity in motion (rules 3 on; here rules {RULES}).",
            "",
            "| profile | reps | alerts | walks whose counter learnt the bias in motion | reps with rules 2 |",
            "|---|---:|---:|---:|---:|",
            *[f"| {ex} | {v['reps']} | {v['alerts']} | {v['bias_learnt_in_motion']} | {v['reps_rules_2']} |" for ex, v in gait["cut_start"].items()],
            "",
        ]
    more = f"`{SEEDS_ENV}={_seed_text(used)} python -m tests.bench harsh`" if used != SEEDS and not quick else "`python -m tests.bench harsh`"
    lines.append(f"Run time {time.perf_counter() - t0:.0f} s. Reproduce: {more} (`make bench` runs seeds {_seed_text(SEEDS)}; `{SEEDS_ENV}=FIRST-LAST` runs more).")
    report.section("Real lifting, on the harsher simulator and real walks (issue 22)", "\n".join(lines))
    report.json("harsh", {"scenarios": data, "gait_l5": gait})
