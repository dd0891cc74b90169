"""The live path on the simulated wearer: faulty reps flagged, clean ones not, replay == live."""

import numpy as np
import pytest

from spinemon.io import sim
from spinemon.io.recording import load
from spinemon.app.replay import recorded_events, replay
from spinemon.app.simrun import run_simulated


def overlaps(e, r, slack=0.3):
    return e.t_start <= r.t_end + slack and (e.t_end is None or e.t_end >= r.t_start - slack)


def check_flagging(session, events):
    for r in session.reps:
        hit = [e for e in events if overlaps(e, r)]
        if r.fault in ("rounding", "arching", "hip_swing"):
            assert hit, f"faulty rep missed: set {r.set} rep {r.rep} {r.exercise} {r.fault}"
            assert (hit[0].set, hit[0].rep, hit[0].exercise) == (r.set, r.rep, r.exercise), hit[0].as_dict()
        elif r.fault is None:
            assert not hit, f"clean rep flagged: set {r.set} rep {r.rep} {r.exercise}: {[e.as_dict() for e in hit]}"
    for e in events:  # and no alert outside any rep
        assert any(overlaps(e, r) for r in session.reps), f"alert outside every rep: {e.as_dict()}"


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_every_faulty_rep_is_flagged_and_no_clean_rep_is(seed, tmp_path):
    run = run_simulated(sim.demo_workout(), seed, out=tmp_path / "s.spinrec")
    res = run.result
    assert res.calibration is not None and res.calibration.rom is not None
    check_flagging(run.session, res.events)
    # the faulty reps' kinds are right
    kinds = {(e.set, e.kind) for e in res.events}
    assert (1, "over_flexion") in kinds and (2, "over_extension") in kinds and (4, "over_extension") in kinds
    # every alert reached the simulated wearable as a HAPTIC command
    assert len(run.transport.motor.haptics) == len(res.alerts) == len(res.events)
    assert run.transport.motor.rejected == []


def test_more_exercises_and_faults_with_walking_between_sets(tmp_path):
    sets = [
        sim.SetSpec("squat", 6, {2: "rounding", 5: "rounding"}, rest_s=10.0, walk_during_rest=True),
        sim.SetSpec("deadlift", 4, {}, rest_s=10.0, walk_during_rest=True),
        sim.SetSpec("overhead_press", 4, {4: "arching"}),
    ]
    run = run_simulated(sets, 7, out=tmp_path / "s.spinrec")
    check_flagging(run.session, run.result.events)
    assert sum(1 for e in run.result.events if e.kind == "over_flexion") == 2


def test_replay_reproduces_the_live_events_exactly(tmp_path):
    path = tmp_path / "s.spinrec"
    run = run_simulated(sim.demo_workout(), 5, out=path)
    rec = load(path)
    live = [e.as_dict() for e in run.result.events]
    assert recorded_events(rec) == live
    again = replay(rec)
    assert [e.as_dict() for e in again.events] == live
    assert [a.counter for a in again.alerts] == [a.counter for a in run.result.alerts]
    assert [a.command for a in again.alerts] == [f for _, f in rec.frames_out()]


def test_truncated_recording_replays_up_to_its_last_record(tmp_path):
    path = tmp_path / "s.spinrec"
    run = run_simulated(sim.demo_workout(), 1, out=path)
    data = path.read_bytes()
    cut = tmp_path / "cut.spinrec"
    cut.write_bytes(data[: int(len(data) * 0.6) + 3])
    rec = load(cut)
    assert rec.truncated
    res = replay(rec)
    full = [e.as_dict() for e in run.result.events]
    got = [e.as_dict() for e in res.events]
    # the events that ended before the cut are the same
    t_cut = max(e["t_end"] or 0 for e in got) if got else 0
    assert [e for e in got if e["t_end"] is not None] == [e for e in full if e["t_end"] is not None and e["t_end"] <= t_cut]


def test_corrupted_frames_are_counted_and_skipped_and_detection_still_works():
    session = sim.simulate(sim.demo_workout(), 2)
    rng = np.random.default_rng(0)
    frames = []
    corrupted = 0
    for f in session.frames:
        if rng.random() < 0.02:
            b = bytearray(f)
            b[rng.integers(0, len(b))] ^= 1 << int(rng.integers(0, 8))
            frames.append(bytes(b))
            corrupted += 1
        else:
            frames.append(f)
    from spinemon.core.pipeline import Pipeline
    from spinemon.app.simrun import labels_for

    p = Pipeline()
    labels = labels_for(session)
    li = 0
    for f, t in zip(frames, session.frame_times):
        while li < len(labels) and labels[li][0] <= t:
            p.on_label(labels[li][1].as_dict())
            li += 1
        p.on_frame(f, float(t))
    p.finish()
    st = p.decoder.stats
    assert st.rejected == {"bad_crc": corrupted}
    assert st.lost_samples == corrupted * session.settings.samples_per_frame
    check_flagging(session, p.events)


def test_single_imu_is_labelled_single_sensor_inclination(tmp_path):
    settings = sim.SimSettings(imus=("upper",))
    run = run_simulated([sim.SetSpec("overhead_press", 3, {2: "arching"})], 3, sim_settings=settings, out=tmp_path / "one.spinrec")
    assert run.result.angle_label == "single-sensor inclination"
    rec = load(tmp_path / "one.spinrec")
    assert replay(rec).angle_label == "single-sensor inclination"


def test_pipeline_follows_a_sample_rate_change():
    # 100 Hz, then the wearable is told SET_RATE 50: frames carry the new period
    a = sim.simulate([sim.SetSpec("deadlift", 2)], 11, sim.SimSettings(rate_hz=100.0))
    start_us = int(round(a.t[-1] * 1e6)) + a.settings.period_us
    b = sim.simulate(
        [sim.SetSpec("deadlift", 3, {2: "rounding"})], 12,
        sim.SimSettings(rate_hz=50.0, seq_start=len(a.t), time_start_us=start_us), wearer=a.wearer,
    )
    from spinemon.core.pipeline import Pipeline

    p = Pipeline()
    p.on_label({"set": 1, "exercise": "deadlift"})
    for f, t in zip(a.frames + b.frames, list(a.frame_times) + list(b.frame_times)):
        p.on_frame(f, float(t))
    p.finish()
    assert p.decoder.stats.lost_samples == 0 and p.decoder.stats.restarts == 0
    # the rounded rep in the 50 Hz part is caught, nothing else
    flagged = [r for r in b.reps if any(overlaps(e, r) for e in p.events)]
    assert [(r.rep, r.fault) for r in flagged] == [(2, "rounding")]


def test_stored_calibration_skips_the_calibration_phase():
    from dataclasses import replace

    from spinemon.core.pipeline import Pipeline, PipelineSettings

    first = run_simulated([sim.SetSpec("squat", 2)], 21)
    cal = first.result.calibration
    session = sim.simulate([sim.SetSpec("squat", 4, {3: "rounding"})], 22, wearer=first.session.wearer)
    settings = PipelineSettings(exercise="squat")
    settings = replace(settings, calibration=replace(settings.calibration, rom=False))
    p = Pipeline(settings, calibration=cal)
    for f, t in zip(session.frames, session.frame_times):
        p.on_frame(f, float(t))
    p.finish()
    assert p.phase == "monitoring"
    flagged = [r for r in session.reps if any(overlaps(e, r) for e in p.events)]
    assert [(r.rep, r.fault) for r in flagged] == [(3, "rounding")]
