"""Sees real lifts (issue 22): the alert stands on its own, calibration never
gates, reps are counted as real people do them, one sensor judges what it can.

The harsher simulated wearer is shaped by what real lifting showed (no still
start, reps back to back with the pelvis still tilted at the top, a sensor
mounted 30 deg off, 20-200 Hz, clock jitter, single lifts, a stale stored
calibration); the real recordings in ../shared/data are the judge of what
must not happen (gait-l5: walking and turning give no reps and no alerts
whatever the exercise; BROAD and gait-l5: monitoring from within 1.5 s).
Credit: gait-l5 (C. Voisard et al., IPOL, GNU AGPL 3.0); BROAD (D. Laidig
et al., Data 6(7):72, 2021, CC BY 4.0).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from spinemon.app import cli
from spinemon.app.replay import replay
from spinemon.app.simrun import run_simulated
from spinemon.core import rep_kernel
from spinemon.core.calibration import CalibrationSettings
from spinemon.core.detect import FORWARD_LEAN, LATERAL_BEND, OVER_EXTENSION, OVER_FLEXION, PROFILES, TWIST
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.core.segment import (
    HELD_BACK,
    HELD_BEFORE_NEUTRAL,
    HELD_LATERAL_HEADING,
    HELD_PROVISIONAL,
    HELD_TWIST_AXIS,
    HELD_TWIST_BIAS,
)
from spinemon.core.stream import SampleBlock
from spinemon.io import sim
from spinemon.io.recording import load

NO_ROM = PipelineSettings(calibration=CalibrationSettings(rom=False))


def unlabelled(sets, seed, ex, **kw):
    """A simulated session through the live path, no set labels, no guided sweep."""
    return run_simulated(sets, seed, sim_settings=sim.SimSettings(**kw), settings=replace(NO_ROM, exercise=ex), rom=False, labels=False)


def not_monitored_s(summary) -> float:
    m = summary["monitoring"]
    return m["duration_s"] - m["monitored_s"]


def faulty_reps_alerted(run) -> tuple[int, int]:
    """(faulty reps with an alert during them, faulty reps)."""
    faults = [r for r in run.session.reps if r.fault]
    hit = sum(1 for r in faults if any(r.t_start - 0.3 <= a.t_trigger_device <= r.t_end + 0.3 for a in run.result.alerts))
    return hit, len(faults)


# -- reps as real people do them -----------------------------------------------------------


@pytest.mark.parametrize("exercise,fault", [("deadlift", "rounding"), ("squat", "rounding"), ("lunge", "arching"), ("split_squat", "arching"),
                                            ("single_leg_deadlift", "rounding"), ("single_arm_row", "rounding"), ("overhead_press", "arching"), ("curl", "hip_swing")])
def test_no_still_start_and_a_crooked_sensor_every_rep_counted_and_the_fault_buzzes(exercise, fault):
    """The first rep starts within 0.1 s of the recording, the sensors sit 30 deg
    off about the spine, nobody labels the set: every rep is counted, the
    faulty one buzzes, monitoring starts within 1.5 s."""
    run = unlabelled([sim.SetSpec(exercise, 5, {3: fault})], 3, exercise, stand_s=0, mount_yaw_deg=30)
    summ = run.result.summary
    assert run.session.sets[0].t_start < 0.1  # the set begins at once (a row: the hinge into it)
    assert [(r["set"], r["rep"]) for r in summ["reps"]] == [(1, k) for k in range(1, 6)]
    assert faulty_reps_alerted(run) == (1, 1)
    assert not_monitored_s(summ) <= 1.5 + 1e-9


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("imus", [("upper", "lower"), ("upper",)])
def test_back_to_back_squats_with_the_pelvis_tilted_at_the_top(seed, imus):
    """Ten squats, no pause at the top, the pelvis staying 30 deg forward
    between reps so each rep swings only 6-16 deg: ten reps, and each
    boundary within 0.3 s of where the rep turned."""
    run = unlabelled([sim.SetSpec("squat", 10, back_to_back=True, top_tilt_deg=30.0)], seed, "squat", stand_s=0, imus=imus)
    reps = run.result.summary["reps"]
    assert len(reps) == 10 and {r["set"] for r in reps} == {1}
    # where a person marks the boundary between two reps: the middle of the
    # brief stop at the top (the true trunk inclination turning slower than 5 deg/s)
    s = run.session
    slow = np.abs(np.gradient(s.upper_sagittal_deg, s.t)) < 5.0
    marks = []
    for a, b in zip(s.reps[:-1], s.reps[1:]):
        top = (s.t > a.t_start + 0.5 * (a.t_end - a.t_start)) & (s.t < b.t_start + 0.5 * (b.t_end - b.t_start)) & slow
        tt = s.t[top]
        near = tt[np.abs(tt - a.t_end) < 0.6]  # the stop around the junction, not the bottom pauses
        marks.append(0.5 * (near.min() + near.max()))
    inner = [abs(r["t_end"] - m) for r, m in zip(reps[:-1], marks)]
    assert max(inner) <= 0.3, inner



def one_sensor_back_to_back(seed: int, rules: int, reps: int = 3, out=None):
    """Back-to-back squats, the pelvis tipping 30 deg forward as the first begins at once, one sensor, 50 Hz."""
    return run_simulated([sim.SetSpec("squat", reps, back_to_back=True, top_tilt_deg=30.0)], seed, out=out,
                         sim_settings=sim.SimSettings(stand_s=0, imus=("upper",), rate_hz=50.0),
                         settings=replace(NO_ROM, exercise="squat", rules=rules), rom=False, labels=False)


def true_peaks(run) -> list[float]:
    s = run.session
    return [float(s.upper_sagittal_deg[(s.t >= r.t_start) & (s.t <= r.t_end)].max()) for r in s.reps]


def test_a_provisional_neutral_taken_as_the_first_squat_begins_reads_the_lean_as_it_is():
    """No still start: the provisional neutral is the first quarter second,
    as the pelvis tips forward. The accelerometer's mean there read 9.5 deg
    backward of where the sensor was (that tip's acceleration), so every
    rep's lean 10-12 deg too far forward (rules 4; false forward-lean buzzes
    on the harsh bench, seeds 7, 9, 10). Rules 5 take the window's gravity
    from the fusion: each rep's peak within 3 deg of the simulated truth."""
    run = one_sensor_back_to_back(7, rules=5)
    got = [r["peak_flexion_deg"] for r in run.result.summary["reps"]]
    assert len(got) == 3 and run.result.alerts == []
    assert np.abs(np.subtract(got, true_peaks(run))).max() < 3.0, (got, true_peaks(run))


def test_a_recording_made_with_rules_4_replays_as_it_ran(tmp_path):
    """Rules 4 took a provisional neutral from the accelerometer: here its
    false forward-lean buzz (rep 2 read 65.2 deg, the truth 52.3), and the
    replay gives it again."""
    out = tmp_path / "r4.spinrec"
    run = one_sensor_back_to_back(9, rules=4, reps=2, out=out)
    assert [(a.event.kind, a.event.rep) for a in run.result.alerts] == [(FORWARD_LEAN, 2)]
    got = [r["peak_flexion_deg"] for r in run.result.summary["reps"]]
    assert min(np.subtract(got, true_peaks(run))) > 8.0
    res = replay(load(out))
    assert res.matches_live and [(a.event.kind, a.event.rep) for a in res.alerts] == [(FORWARD_LEAN, 2)]

def test_back_to_back_deadlifts_are_counted():
    run = unlabelled([sim.SetSpec("deadlift", 10, back_to_back=True)], 2, "deadlift", stand_s=0)
    assert len(run.result.summary["reps"]) == 10


@pytest.mark.parametrize("rate,jitter", [(20.0, 0.0), (110.0, 0.002), (200.0, 0.001)])
def test_rates_from_20_to_200_hz_with_clock_jitter(rate, jitter):
    run = unlabelled([sim.SetSpec("deadlift", 4, {2: "rounding"})], 5, "deadlift", stand_s=0, rate_hz=rate, clock_jitter_s=jitter)
    assert len(run.result.summary["reps"]) == 4
    assert faulty_reps_alerted(run) == (1, 1)


@pytest.mark.parametrize("exercise", ["deadlift", "squat"])
def test_a_single_lift_is_a_set_of_one(exercise):
    """A heavy single from a stance is a set of one; toe touches through the
    lumbar range are no set (their bends go to the warm-up note)."""
    run = unlabelled([sim.SetSpec(exercise, 1)], 4, exercise, rate_hz=110.0)
    summ = run.result.summary
    assert [(s["set"], s["reps"]) for s in summ["sets"]] == [(1, 1)]


def test_toe_touches_are_no_set_of_one_but_a_rounded_single_still_buzzes():
    session = sim.simulate([sim.SetSpec("deadlift", 1, {1: "rounding"})], 4, warmup=3)
    p = Pipeline(PipelineSettings(exercise="deadlift"))
    for f, t in zip(session.frames, session.frame_times):
        p.on_frame(f, float(t))
    p.finish()
    summ = p.summary()
    reasons = [r["reason"] for r in summ["rejected_reps"]]
    assert reasons.count("through_the_range") == 4  # three toe touches and the rounded single
    rounded = session.reps[0]
    assert any(rounded.t_start <= a.t_trigger_device <= rounded.t_end and a.event.kind == OVER_FLEXION for a in p.alerts)


def test_replay_json_lists_the_rejected_candidates_and_why(tmp_path, capsys):
    path = tmp_path / "walk.spinrec"
    sets = [sim.SetSpec("deadlift", 3, rest_s=12.0, walk_during_rest=True), sim.SetSpec("deadlift", 3)]
    run_simulated(sets, 1, out=path, labels=False)
    assert cli.main(["replay", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rejected_reps"], "a plate picked up on the way is a rejected candidate"
    assert {r["reason"] for r in out["rejected_reps"]} <= {"too_short", "too_long", "stuck", "walking", "after_walking", "through_the_range", "isolated", "gap", "incomplete"}
    assert all({"t_start", "t_end", "peak_excursion_deg", "reason"} <= set(r) for r in out["rejected_reps"])


# -- the alert stands on its own --------------------------------------------------------------


def test_a_rounded_rep_buzzes_with_no_set_recognised():
    """One rounded deadlift, alone, unlabelled: no set was recognised when it
    rounded, and it buzzes all the same."""
    run = unlabelled([sim.SetSpec("deadlift", 1, {1: "rounding"})], 7, "deadlift")
    assert faulty_reps_alerted(run) == (1, 1)


def test_what_holds_an_alert_back_is_named_and_counted(tmp_path):
    """Walking between sets holds the limits back; a fault past them then is
    said on the live screen at that moment, with why, and counted by reason."""
    out = tmp_path / "s.spinrec"
    run_simulated([sim.SetSpec("deadlift", 3, rest_s=12.0, walk_during_rest=True, plate_pickup="rounded"), sim.SetSpec("deadlift", 3)], 1, out=out)
    rec = load(out)
    settings = replace(PipelineSettings.from_dict(rec.header["settings"]), limit_overrides={"deadlift": {"flexion_deg": 5.0}})
    lines = []
    res = replay(rec, settings, on_frame=lambda f, t, r, p: lines.extend(e for e in r.held_back))
    held = res.summary["held_back"]
    assert "walking" in held["seconds"] and held["faults"], held
    assert held["seconds"], held
    assert set(held["seconds"]) <= set(HELD_BACK.values())
    assert sum(held["faults"].values()) == len(lines) == sum(1 for e in res.summary["suppressed"] if e["t_alert"] is not None)
    assert all(e.held_back in HELD_BACK.values() for e in lines)


def test_the_stale_calibration_repro(tmp_path, capsys):
    """The issue's repro: calibrated with the sensors 30 deg crooked, then a
    session with them re-attached straight, reusing the stored calibration."""
    prof = tmp_path / "p.json"
    assert cli.main(["calibrate", "--sim", "--speed", "0", "--mount-yaw", "30", "--profile", str(prof)]) == 0
    capsys.readouterr()
    out = tmp_path / "s.spinrec"
    assert cli.main(["live", "--sim", "--speed", "200", "--profile", str(prof), "--exercise", "deadlift", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "!! NOTE the sensors sit differently from the stored calibration" in text
    assert "!! ALERT over-flexion" in text
    assert "lateral-bend" not in text
    summ = replay(load(out)).summary
    assert summ["monitoring"]["stored_check"]["stale"]
    rounded = [e for e in summ["events"] if e["kind"] == OVER_FLEXION]
    assert len(rounded) == 1 and rounded[0]["peak_deg"] > rounded[0]["limit_deg"]


def test_a_stored_calibration_that_still_fits_is_kept(tmp_path, capsys):
    prof = tmp_path / "p.json"
    assert cli.main(["calibrate", "--sim", "--speed", "0", "--profile", str(prof)]) == 0
    out = tmp_path / "s.spinrec"
    assert cli.main(["live", "--sim", "--speed", "200", "--profile", str(prof), "--exercise", "deadlift", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NOTE" not in text
    summ = replay(load(out)).summary
    assert summ["monitoring"]["stored_check"]["stale"] is False


# -- one sensor judges what it can ------------------------------------------------------------


@pytest.mark.parametrize("rate", [100.0, 20.0])
def test_one_sensor_flags_forward_lean_in_squats_as_lean(rate):
    run = unlabelled([sim.SetSpec("squat", 5, {3: "forward_lean"})], 3, "squat", stand_s=0, imus=("upper",), rate_hz=rate)
    kinds = [(a.event.kind, a.event.rep) for a in run.result.alerts]
    assert kinds == [(FORWARD_LEAN, 3)]
    assert run.result.summary["limits"]["lean_deg"] == PROFILES["squat"].lean_deg
    assert "flexion_deg" in run.result.summary["limits_off"]


def test_two_sensors_see_no_rounding_in_a_forward_lean():
    run = unlabelled([sim.SetSpec("squat", 5, {3: "forward_lean"})], 3, "squat", stand_s=0)
    assert run.result.alerts == [] and run.result.summary["limits"]["lean_deg"] is None


# -- every phase, any start: a fault buzzes or is named ----------------------------------------


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# a lunge begun at the first sample, arched in rep 1, at 20 Hz: the provisional neutral comes from inside the arch
@example(exercise="lunge", stand_s=0.0, rate=20.0, imus=("upper", "lower"), seed=2, fault_rep=1, walk=False)
@given(
    exercise=st.sampled_from(["deadlift", "squat", "single_leg_deadlift", "lunge"]),
    stand_s=st.sampled_from([0.0, 0.5, 3.0]),
    rate=st.sampled_from([20.0, 52.0, 104.0, 200.0]),
    imus=st.sampled_from([("upper", "lower"), ("upper",)]),
    seed=st.integers(1, 50),
    fault_rep=st.integers(1, 2),
    walk=st.booleans(),
)
def test_every_fault_past_a_limit_buzzes_or_is_said_why_not(exercise, stand_s, rate, imus, seed, fault_rep, walk):
    """Across calibration (from the first sample: no still start, a short one,
    a long one), sets, rests with walking and one or two sensors: every
    faulty rep buzzes or is held back by a named reason; every fault the
    detectors saw is either an alert or a held-back event with a reason."""
    fault = sim.FAULTS_BY_EXERCISE[exercise][0]
    if len(imus) == 1:  # one sensor cannot judge lumbar rounding (limits_off says so): its fault is a squat's forward lean
        exercise, fault = "squat", "forward_lean"
    sets = [sim.SetSpec(exercise, 2, {fault_rep: fault}, rest_s=9.0 if walk else 3.0, walk_during_rest=walk), sim.SetSpec(exercise, 1)]
    run = unlabelled(sets, seed, exercise, stand_s=stand_s, rate_hz=rate, imus=imus)
    summ = run.result.summary
    assert not_monitored_s(summ) <= 1.5 + 2.0 / rate + 1e-6  # the deadline's sample, on the device's sample grid
    events = [e for e in summ["suppressed"] if e["t_alert"] is not None]
    assert all(e.get("held_back") in HELD_BACK.values() for e in events)
    for r in (r for r in run.session.reps if r.fault):
        alerted = any(r.t_start - 0.3 <= a.t_trigger_device <= r.t_end + 0.3 for a in run.result.alerts)
        told = any(r.t_start - 0.3 <= e["t_alert"] <= r.t_end + 0.3 for e in events)
        assert alerted or told, (r, summ["events"], events)


def test_a_fault_read_under_a_provisional_neutral_taken_mid_arch_is_told_once_a_still_one_comes():
    """The provisional neutral (1.5 s in, no still start) lies inside rep 1's
    arch, so the arch reads as under the limit: when the lifter later stands
    still, the stretch is judged again with the still neutral and the arch is
    told, named (too late to buzz), never silent."""
    # seed 5: rules 7 does not read the arch as one the unknown heading may
    # hide (with seed 2 it does, and tells it by that name during the rep)
    sets = [sim.SetSpec("lunge", 2, {1: "arching"}, rest_s=3.0), sim.SetSpec("lunge", 1)]
    run = unlabelled(sets, 5, "lunge", stand_s=0.0, rate_hz=20.0)
    summ = run.result.summary
    assert summ["monitoring"]["calibration"] == "done"
    told = [e for e in summ["suppressed"] if e.get("held_back") == HELD_BACK[HELD_PROVISIONAL]]
    r1 = run.session.reps[0]
    assert len(told) == 1 and told[0]["kind"] == OVER_EXTENSION
    assert r1.t_start <= told[0]["t_alert"] <= r1.t_end and told[0]["peak_deg"] < told[0]["limit_deg"]
    assert summ["held_back"]["faults"].get(HELD_BACK[HELD_PROVISIONAL]) == 1
    assert not any(r1.t_start - 0.3 <= a.t_trigger_device <= r1.t_end + 0.3 for a in run.result.alerts)


# -- real recordings: the judge ------------------------------------------------------------------

GAIT_COLUMNS = "ax=Acc_X,ay=Acc_Y,az=Acc_Z,gx=Gyr_X,gy=Gyr_Y,gz=Gyr_Z"


@pytest.fixture(scope="module")
def gait_walks(tmp_path_factory, request):
    gait_dir = request.getfixturevalue("gait_dir")
    out_dir = tmp_path_factory.mktemp("gait22")
    recs = []
    for f in sorted(gait_dir.glob("*_lb.txt")):
        out = out_dir / f"{f.stem}.spinrec"
        assert cli.main(["import", str(f), "--columns", GAIT_COLUMNS, "--out", str(out)]) == 0
        recs.append(out)
    assert len(recs) == 38
    return [load(p) for p in recs]


def test_real_walks_are_monitored_from_within_1_5_s(gait_walks):
    for rec in gait_walks:
        summ = replay(rec).summary
        assert not_monitored_s(summ) <= 1.5 + 1e-9, (rec.path, summ["monitoring"])
        assert summ["monitoring"]["calibration"] == "done", rec.path  # a real still stretch replaced the provisional neutral


@pytest.mark.parametrize("exercise", sorted(PROFILES))
def test_real_walks_give_no_alert_and_no_rep_whatever_the_exercise(gait_walks, exercise):
    """With the limits armed everywhere but where a named reason holds them back."""
    alerts = reps = 0
    for rec in gait_walks:
        res = replay(rec, replace(PipelineSettings.from_dict(rec.header["settings"]), exercise=exercise))
        alerts += len(res.alerts)
        reps += len(res.summary["reps"])
    assert (alerts, reps) == (0, 0)


def test_broad_recordings_are_monitored_from_within_1_5_s(broad_dir):
    """BROAD: an IMU moved by hand from the first sample of some trials;
    monitoring (one sensor) begins within 1.5 s of each."""
    from tests.support.broad import load_trials

    trials = load_trials(broad_dir)
    assert len(trials) == 9
    for tr in trials:
        p = Pipeline(replace(NO_ROM, exercise="generic"))
        n = len(tr.acc)
        for a in range(0, n, 256):
            b = min(n, a + 256)
            k = np.arange(a, b)
            block = SampleBlock(k, k / tr.rate, {"upper": tr.acc[a:b]}, {"upper": tr.gyr[a:b]}, np.full(b - a, np.nan), np.zeros(b - a, dtype=np.uint8), float(tr.rate))
            p.on_block(block, float(b / tr.rate))
        m = p.monitoring()
        assert m["duration_s"] - m["monitored_s"] <= 1.5 + 1e-6, (tr.name, m)



def test_a_provisional_neutral_taken_in_motion_is_where_the_sensor_was_broad(broad_dir):
    """BROAD, the fast translations cut to begin at their first movement (no
    still start): each provisional neutral's standing gravity against the
    optical reference over its window. The accelerometer's mean there (rules
    4) was off by 34-70 deg in four of the five windows (the hand's
    acceleration); the fusion's (rules 5) by 0.1-0.3 deg. Over all nine trials
    cut so, 59 windows: 3.8 deg in the median and up to 70, against 0.6 and 2.1."""
    from tests.support.broad import list_trials, load_trial, tilt_error_deg, up_from_quat

    tr = load_trial(next(p for p in list_trials(broad_dir) if p.name.startswith("15_")))
    i0, n = int(np.argmax(tr.movement)), int(25 * tr.rate)
    acc, gyr, up = tr.acc[i0 : i0 + n], tr.gyr[i0 : i0 + n], up_from_quat(tr.opt_quat[i0 : i0 + n])
    t = np.arange(n) / tr.rate
    p = Pipeline(replace(NO_ROM, exercise="generic"))
    errors = []
    for a in range(0, n, 256):
        b = min(n, a + 256)
        k = np.arange(a, b)
        res = p.on_block(SampleBlock(k, t[a:b], {"upper": acc[a:b]}, {"upper": gyr[a:b]}, np.full(b - a, np.nan), np.zeros(b - a, dtype=np.uint8), float(tr.rate)), float(t[b - 1]))
        cal = res.calibrated
        if cal is not None and cal.source == "provisional":
            w = (t >= cal.t_neutral[0]) & (t <= cal.t_neutral[1])
            errors.append(float(tilt_error_deg(cal.mounting["upper"].neutral_up(), np.nanmean(up[w], axis=0))))
    assert len(errors) >= 3 and max(errors) < 2.0, errors

def test_the_live_screen_and_the_live_view_say_a_held_back_fault_at_once(tmp_path):
    """The product's screen and page, fed the frames of a session whose walk
    between sets held a fault back: the screen prints a NO BUZZ line with the
    reason the moment it happens, the page gets a held_back message and the
    status says what is not watched."""
    import asyncio
    import io

    from spinemon.app.live_ui import LiveUI
    from spinemon.app.view import ViewFeed

    out = tmp_path / "s.spinrec"
    run_simulated([sim.SetSpec("deadlift", 3, rest_s=12.0, walk_during_rest=True, plate_pickup="rounded"), sim.SetSpec("deadlift", 3)], 1, out=out)
    rec = load(out)
    settings = replace(PipelineSettings.from_dict(rec.header["settings"]), limit_overrides={"deadlift": {"flexion_deg": 5.0}})
    screen = io.StringIO()
    ui = LiveUI(screen, tty=False, plain_every_s=0.5)

    async def run() -> tuple[list, list]:
        feed = ViewFeed()
        sub = feed.subscribe()
        statuses = []

        def on_frame(frame, t, res, p):
            ui.on_frame(res, p, {})
            feed.on_frame(res, p)
            statuses.append(ui.status_text(p, {}))

        replay(rec, settings, on_frame=on_frame)
        return [json.loads(text) for kind, text in sub.items if kind == "held_back"], statuses

    held, statuses = asyncio.run(run())
    text = screen.getvalue()
    assert "!! NO BUZZ over-flexion" in text and "held back: " in text
    assert held and all(m["why"] in HELD_BACK.values() for m in held)
    assert any("not watched: walking" in s for s in statuses)


# -- a limit waits for what it needs, named (rules 3) -------------------------------------------

TWIST_HELD = HELD_BACK[HELD_TWIST_BIAS]
LATERAL_HELD = HELD_BACK[HELD_LATERAL_HEADING]


@pytest.mark.parametrize("seed", [1, 2])
def test_no_still_start_the_twist_waits_for_the_gyro_bias_and_says_so(seed):
    """Single-leg deadlifts from the first sample: the twist integrates the two
    gyros' zero-rate offsets, unlearnt until the lifter stands still, so it is
    held back (named, counted) until then instead of buzzing falsely; the
    rounded rep still buzzes."""
    run = unlabelled([sim.SetSpec("single_leg_deadlift", 5, {3: "rounding"})], seed, "single_leg_deadlift", stand_s=0)
    summ = run.result.summary
    assert [a.event.kind for a in run.result.alerts] == [OVER_FLEXION]
    assert faulty_reps_alerted(run) == (1, 1)
    assert summ["held_back"]["seconds"][TWIST_HELD] > 10.0


def test_a_twisting_rep_before_the_bias_is_learnt_is_said_not_dropped_and_buzzes_once_it_is():
    ex = "single_leg_deadlift"
    run = unlabelled([sim.SetSpec(ex, 4, {2: "twisting"})], 3, ex, stand_s=0)
    r = next(r for r in run.session.reps if r.fault)
    told = [e for e in run.result.summary["suppressed"] if e["kind"] == TWIST and e["t_alert"] is not None and r.t_start - 0.3 <= e["t_alert"] <= r.t_end + 0.3]
    assert told and all(e["held_back"] == TWIST_HELD for e in told)
    still = unlabelled([sim.SetSpec(ex, 4, {2: "twisting"})], 3, ex, stand_s=3.0)  # a still start: the offsets are measured
    assert TWIST_HELD not in still.result.summary["held_back"]["seconds"]
    assert TWIST in [a.event.kind for a in still.result.alerts]


@pytest.mark.parametrize("exercise,stand_s", [("lunge", 0.0), ("split_squat", 0.0)])
def test_a_crooked_sensor_in_lunges_holds_lateral_bend_back_until_the_heading_is_known(exercise, stand_s):
    """Sensors 30 deg off about the spine, no range sweep: a lunge's pelvis
    tilt leaks into lateral bend, and one bend cannot tell the heading, so
    lateral bend waits (named) rather than buzz falsely, at least until a rep
    on each side is done (rules 7 reads each rep's side from its own twist,
    the gyro biases unknown); the arched rep buzzes."""
    run = unlabelled([sim.SetSpec(exercise, 5, {3: "arching"})], 1, exercise, stand_s=stand_s, mount_yaw_deg=30)
    assert LATERAL_BEND not in [a.event.kind for a in run.result.alerts]
    first_two = run.session.reps[1].t_end - not_monitored_s(run.result.summary)
    assert run.result.summary["held_back"]["seconds"][LATERAL_HELD] >= first_two - 1.0
    assert faulty_reps_alerted(run) == (1, 1)


@pytest.mark.parametrize("exercise", ["split_squat", "lunge"])
def test_a_crooked_sensor_is_straightened_from_a_left_and_a_right_rep(tmp_path, exercise):
    """Still start, no range sweep, the upper sensor 30 deg off about the
    spine and the lower -18 deg (rules 4): the upper sensor's heading turned
    the one-sided lean into flexion and hid part of the arch (split squats:
    0 of 3 seeds buzzed). Each sensor's gravity at the bottom of a left and a
    right rep (sides from the twist), averaged over the sides, leaves the
    sagittal tip: its heading. The arch buzzes, lateral bend is watched
    from then on with no false buzz, and replay in long blocks finds the
    headings at the same sample."""
    out = tmp_path / "crooked.spinrec"
    run = run_simulated([sim.SetSpec(exercise, 5, {3: "arching"})], 1, out=out, sim_settings=sim.SimSettings(stand_s=3, mount_yaw_deg=30),
                        settings=replace(NO_ROM, exercise=exercise), rom=False, labels=False)
    summ = run.result.summary
    # within 15 deg: what is left of a 9 deg lean in the flexion, sin 15 x 9, is 2.3 deg
    # (seeds 1-3: upper 33, 28, 25 deg in split squats, 19, 23, 31 in lunges; lower -15 to -20)
    assert abs(summ["alignment"]["upper"]["heading_deg"] - 30.0) < 15.0
    assert abs(summ["alignment"]["lower"]["heading_deg"] + 18.0) < 15.0
    assert faulty_reps_alerted(run) == (1, 1) and len(run.result.alerts) == 1
    assert summ["held_back"]["seconds"][LATERAL_HELD] < 12.0  # until the second rep's end
    res = replay(load(out))
    assert res.matches_live and res.summary["alignment"] == summ["alignment"]


def test_with_a_range_sweep_lunges_watch_lateral_bend():
    run = run_simulated([sim.SetSpec("lunge", 3)], 1, sim_settings=sim.SimSettings(mount_yaw_deg=30), settings=PipelineSettings(exercise="lunge"), labels=False)
    held = run.result.summary["held_back"]["seconds"]
    assert LATERAL_HELD not in held and run.result.summary["alignment"]["upper"]["bend_deg"] > 0
    assert run.result.alerts == []


def test_a_recording_made_with_rules_3_replays_as_it_ran(tmp_path):
    """Rules 4 measure a curl's first reps on the rep counter's tilt filter;
    a rules-3 recording replays with the fusion's gravity, as it ran: here
    the first two curls merged (4 of 5)."""
    out = tmp_path / "r3.spinrec"
    run = run_simulated([sim.SetSpec("curl", 5, {3: "hip_swing"})], 1, out=out, sim_settings=sim.SimSettings(stand_s=0),
                        settings=replace(NO_ROM, exercise="curl", rules=3), rom=False, labels=False)
    assert len(run.result.summary["reps"]) == 4
    res = replay(load(out))
    assert res.matches_live and len(res.summary["reps"]) == 4


def test_a_recording_made_with_rules_2_replays_as_it_ran(tmp_path):
    """The holds above are rules 3; a rules-2 recording (no holds) gives on
    replay what it gave live: here the false twist buzz those rules gave."""
    out = tmp_path / "r2.spinrec"
    run = run_simulated([sim.SetSpec("single_leg_deadlift", 5, {3: "rounding"})], 1, out=out, sim_settings=sim.SimSettings(stand_s=0),
                        settings=replace(NO_ROM, exercise="single_leg_deadlift", rules=2), rom=False, labels=False)
    assert TWIST in [a.event.kind for a in run.result.alerts]
    res = replay(load(out))
    assert res.matches_live and [a.event.kind for a in res.alerts] == [a.event.kind for a in run.result.alerts]


# -- the twist relative to the pelvis, and not the drift of an unknown gyro bias (rules 8) ---------


def test_a_hinge_bent_sideways_is_no_twist_and_a_rules_7_recording_replays_as_it_ran(tmp_path):
    """Harsh bench, single-leg deadlifts with a still start, seed 22: the
    fourth rep (clean; true twist -10.1 deg, lateral bend -6.2, the pelvis
    hinged 59 deg) read -15.6 and buzzed twist with rules 7 (the pelvis's
    hinge counted as twist: tests/core/test_angles.py). Rules 8 read it as
    it is; the rounded rep still buzzes. The rules 7 recording replays as it ran."""
    out = tmp_path / "r7.spinrec"
    ex = "single_leg_deadlift"
    run = run_simulated([sim.SetSpec(ex, 5, {3: "rounding"})], 22, out=out, sim_settings=sim.SimSettings(stand_s=3, rate_hz=50.0),
                        settings=replace(NO_ROM, exercise=ex, rules=7), rom=False, labels=False)
    assert [a.event.kind for a in run.result.alerts] == [OVER_FLEXION, TWIST]
    rec = load(out)
    res = replay(rec)
    assert res.matches_live and [a.event.kind for a in res.alerts] == [OVER_FLEXION, TWIST]
    now = replay(rec, replace(PipelineSettings.from_dict(rec.header["settings"]), rules=8))
    assert [(a.event.kind, a.event.rep) for a in now.alerts] == [(OVER_FLEXION, 3)]


def test_the_twist_an_unknown_gyro_bias_built_does_not_buzz_once_the_bias_is_learnt():
    """Back-to-back squats with no still start (harsh bench, seed 11): the
    twist is held back (named) until the fusion learns each gyro's bias at
    the rest after the set, but it integrated the offsets meanwhile (15.7 deg
    after 6 squats, true 0), and rules 7 buzzed it 1.6 s after the hold
    ended. Rules 8 start the twist again where both biases are known."""
    run = unlabelled([sim.SetSpec("squat", 6, back_to_back=True, top_tilt_deg=30.0)], 11, "squat", stand_s=0, rate_hz=50.0)
    assert run.result.alerts == []
    assert run.result.summary["held_back"]["seconds"][TWIST_HELD] > 20.0


def test_a_neutral_taken_bent_over_holds_the_twist_back_by_name():
    """A single-arm row with no still start: its first still stretch is the
    hinged hold before the first pull, so neutral is taken bent over (the
    upper sensor's gravity 52 deg from its +X, seed 15) and the twist is
    measured about that vertical, not the spine: a clean rep (true -11.1
    deg) read -15.1 with rules 8's twist and buzzed on the harsh bench (-14.5
    with rules 7, the unknown biases' drift offsetting 0.6 deg of it). Rules
    8 hold the twist back, named, while such a neutral stands; a twisting rep
    is told by that name, and still buzzes as the lateral bend it reads as."""
    why = HELD_BACK[HELD_TWIST_AXIS]
    clean = unlabelled([sim.SetSpec("single_arm_row", 5, {3: "rounding"})], 15, "single_arm_row", stand_s=0)
    assert [a.event.kind for a in clean.result.alerts] == [OVER_FLEXION]
    assert clean.result.summary["held_back"]["seconds"][why] > 20.0
    run = unlabelled([sim.SetSpec("single_arm_row", 4, {2: "twisting"})], 15, "single_arm_row", stand_s=0, rate_hz=50.0)
    r = next(r for r in run.session.reps if r.fault)
    told = [e for e in run.result.summary["suppressed"] if e["kind"] == TWIST and e["t_alert"] is not None and r.t_start - 0.3 <= e["t_alert"] <= r.t_end + 0.3]
    assert told and all(e["held_back"] == why for e in told)
    assert [a.event.kind for a in run.result.alerts if r.t_start - 0.3 <= a.t_trigger_device <= r.t_end + 0.3] == [LATERAL_BEND]


# -- a still neutral after a provisional one: the fusion restarts on it (rules 5) ------------------


def _standing_error_deg(run, frames) -> float:
    """Mean read flexion minus the simulated truth while the wearer stands after the set."""
    t = np.concatenate([f[0] for f in frames])
    flex = np.concatenate([f[1] for f in frames])
    s = run.session
    m = t > s.reps[-1].t_end + 0.5
    return float(np.mean(flex[m] - np.interp(t[m], s.t, s.lumbar_flexion_deg)))


def _crooked_press(rules: int | None = None, out=None):
    frames = []

    def on_frame(res, p):
        if res.t is not None:
            frames.append((res.t, res.angles.flexion_deg))

    ex = "single_arm_press"
    run = run_simulated([sim.SetSpec(ex, 5, {3: "arching"})], 8, out=out, sim_settings=sim.SimSettings(stand_s=0, mount_yaw_deg=30),
                        settings=replace(NO_ROM, exercise=ex, **({} if rules is None else {"rules": rules})), rom=False, labels=False,
                        on_frame=on_frame)
    return run, frames


def test_a_crooked_single_arm_press_with_no_still_start_reads_standing_as_standing(tmp_path):
    """Seed 8, sensors 30 deg off, no still start (rules 4: two false
    over-extension buzzes, right-side reps read -13.7 and -13.4 deg where the
    truth is -6.7 and -6.2). The pauses between presses are shorter than the
    fusion's rest, so it never learnt its gyro bias and its gravity sat 2-3 deg
    off the accelerometer's neutral. When the still stretch replaces the
    provisional neutral the fusion restarts from it with the bias the rep
    counter's tilt filter learnt in motion: standing reads within 1.5 deg of
    the truth (rules 4: -2.8), no false buzz, the arched rep still buzzes;
    replay in long blocks gives what ran live frame by frame."""
    out = tmp_path / "r5.spinrec"
    run, frames = _crooked_press(out=out)  # the current rules
    assert faulty_reps_alerted(run) == (1, 1) and len(run.result.alerts) == 1
    assert abs(_standing_error_deg(run, frames)) < 1.5
    assert len(run.result.summary["reps"]) == 5
    assert replay(load(out)).matches_live


def test_a_recording_made_with_rules_4_replays_as_it_ran(tmp_path):
    """The same press recorded with rules 4 (the fusion goes on through the
    still stretch) replays with its two false buzzes, as it ran live."""
    out = tmp_path / "r4.spinrec"
    run, frames = _crooked_press(4, out)
    assert len(run.result.alerts) == 3 and faulty_reps_alerted(run) == (1, 1)
    assert _standing_error_deg(run, frames) < -2.0
    res = replay(load(out))
    assert res.matches_live and [a.t_trigger_device for a in res.alerts] == [a.t_trigger_device for a in run.result.alerts]


# -- small lifts with no still start: the gyro bias learnt in motion (rules 3) -------------------


@pytest.mark.parametrize("exercise,seed", [("overhead_press", 1), ("single_arm_press", 2), ("curl", 1)])
def test_small_lifts_with_no_still_start_are_counted_on_the_gyro(exercise, seed):
    """Presses and curls move the trunk less than real standing sways, so the
    gravity excursion alone does not count them; with no still moment the
    gyro's bias across gravity is learnt from the accelerometers in motion,
    and the set is counted on the gyro. Curl seed 1 (rules 4): its first rep
    ends before any bias is learnt; measured on the fusion's gravity, which
    drifted 3 deg from that bias, it ran into the second (4 of 5 counted); on
    the rep counter's own tilt filter it turns where it turns."""
    fault = sim.FAULTS_BY_EXERCISE[exercise][0]
    run = unlabelled([sim.SetSpec(exercise, 5, {3: fault})], seed, exercise, stand_s=0)
    assert [(r["set"], r["rep"]) for r in run.result.summary["reps"]] == [(1, k) for k in range(1, 6)]
    assert faulty_reps_alerted(run) == (1, 1)


def test_a_slow_first_curl_is_not_taken_for_the_gyro_bias():
    """Curls with no still start, seed 4: the rep counter's stillness test
    passed during the slow start of the first curl and took its 0.5 deg/s
    turn for gyro bias; integrated, that error is as large as a curl's trunk
    motion, and the reps ran together (rules 4 and 5: none of these 3
    counted, 3 of 5 in the harsh bench's set). With rules 6 that bias waits
    for a still stretch whose accelerometers did not turn
    (tests/core/test_rep_bias_check.py)."""
    run = unlabelled([sim.SetSpec("curl", 3)], 4, "curl", stand_s=0)
    assert [(r["set"], r["rep"]) for r in run.result.summary["reps"]] == [(1, 1), (1, 2), (1, 3)]


def test_a_recording_made_with_rules_5_replays_as_it_ran_curls(tmp_path):
    """The same curls recorded with rules 5 replay as they ran: no set."""
    out = tmp_path / "r5.spinrec"
    run = run_simulated([sim.SetSpec("curl", 3)], 4, out=out, sim_settings=sim.SimSettings(stand_s=0),
                        settings=replace(NO_ROM, exercise="curl", rules=5), rom=False, labels=False)
    assert run.result.summary["reps"] == []
    res = replay(load(out))
    assert res.matches_live and res.summary["reps"] == []


def test_real_walks_with_no_still_start_give_no_small_lift_reps(gait_dir):
    """gait-l5 with its standing start cut off (2 s): the rep counter of a
    press has no still moment to learn its gyro bias from until the walker
    stops, so it learns it in motion; that must not count the walk, its
    turns or the standing at its end as reps, nor alert."""
    walks = []
    for f in sorted(gait_dir.glob("*_lb.txt")):
        a = np.loadtxt(f, skiprows=2)[200:]
        walks.append((a[:, 1:4], a[:, 4:7]))
    assert len(walks) == 38
    for ex in ("overhead_press", "single_arm_press"):
        reps = alerts = tilt = 0
        for acc, gyr in walks:
            p = Pipeline(replace(NO_ROM, exercise=ex))
            n = len(acc)
            for a in range(0, n, 512):
                b = min(n, a + 512)
                k = np.arange(a, b)
                p.on_block(SampleBlock(k, k / 100.0, {"upper": acc[a:b]}, {"upper": gyr[a:b]}, np.full(b - a, np.nan), np.zeros(b - a, dtype=np.uint8), 100.0), b / 100.0)
            p.finish()
            reps += len(p.rep_records)
            alerts += len(p.alerts)
            tilt += int(p.segmenter.reps._I[rep_kernel.GYRO_MODE]) == 2
        assert (reps, alerts) == (0, 0), ex
        assert tilt >= 1  # some walks were counted with the bias learnt in motion


def test_a_fault_before_neutral_is_told_once_neutral_is_set():
    """A hip swing in the first curl, 0.3 s into a session with no still
    start: it is over before monitoring begins (neutral within 1.5 s), so it
    cannot buzz; once neutral is set, it is told, held back by name."""
    run = unlabelled([sim.SetSpec("curl", 3, {1: "hip_swing"})], 1, "curl", stand_s=0)
    r = run.session.reps[0]
    told = [e for e in run.result.summary["suppressed"] if e["t_alert"] is not None and r.t_start <= e["t_alert"] <= r.t_end]
    assert [e["held_back"] for e in told] == [HELD_BACK[HELD_BEFORE_NEUTRAL]]
    assert told[0]["kind"] == OVER_EXTENSION


@pytest.mark.parametrize("exercise", ["squat", "deadlift"])
def test_real_walks_give_no_alert_with_a_lean_baseline_present(gait_walks, exercise):
    """An upright lifter's usual lean (squats and hinges peaking at 25 +- 1 deg
    over 3 sessions: a limit of 35 deg, lower than most lifters' would be) is
    the lean limit of these one-sensor walks; still no alert and no rep."""
    from spinemon.app import lean_history
    from spinemon.core.lean_baseline import lean_baseline

    b = lean_baseline(exercise, [[24.0, 25.0, 26.0, 25.0, 25.0]] * 3, PROFILES[exercise].lean_deg)
    assert b.limit_deg == 35.0
    alerts = reps = 0
    for rec in gait_walks:
        settings = replace(PipelineSettings.from_dict(rec.header["settings"]), exercise=exercise)
        res = replay(rec, lean_history.apply(settings, {exercise: b}))
        assert res.summary["limits"]["lean_deg"] == 35.0, rec.path
        alerts += len(res.alerts)
        reps += len(res.summary["reps"])
    assert (alerts, reps) == (0, 0)
