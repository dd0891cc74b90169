"""The simulated wearer made as harsh as the real recordings showed (issue 11, part 6):
moving 1.2 s after the start, gyro zero-rate offsets up to 35 deg/s, 25-50 Hz,
unlabelled sets whose very first rep is the bad one.

The simulator is not the judge (tests/real/test_real_gait.py and tests/real/test_broad.py
are); these check that what real data showed does not break the product's path
(``run_simulated`` drives the real pipeline through the live transport).
"""

from __future__ import annotations

import pytest

from spinemon.io import sim
from spinemon.core.detect import OVER_FLEXION
from spinemon.app.simrun import run_simulated


def harsh(rate, imus=("upper", "lower")):
    return sim.SimSettings(rate_hz=rate, gyro_bias_dps=35.0, stand_s=1.2, imus=imus)


@pytest.mark.parametrize("rate", [25.0, 50.0])
def test_moving_after_a_second_with_big_gyro_offsets_still_calibrates_and_counts(rate):
    run = run_simulated([sim.SetSpec("deadlift", 4, {3: "rounding"})], 4, sim_settings=harsh(rate), rom=False)
    m = run.result.summary["monitoring"]
    assert m["calibration"] == "done"
    assert m["duration_s"] - m["monitored_s"] < 1.5  # neutral from the first still second
    cal = run.result.calibration
    wearer = run.session.wearer
    # the offsets were measured (within 1.5 deg/s of the true bias, +-35 deg/s per axis)
    import numpy as np

    got = np.degrees(cal.gyro_offset["upper"])
    assert np.abs(got).max() > 5.0
    true = np.degrees(np.asarray(wearer.gyro_bias_upper))
    assert np.abs(got - true).max() < 1.5
    assert [(r.set, r.rep) for r in run.session.reps] == [(x["set"], x["rep"]) for x in run.result.summary["reps"]]
    flagged = {e.rep for e in run.result.events if e.kind == OVER_FLEXION}
    assert flagged == {3}


@pytest.mark.parametrize("seed", [2, 5])
def test_the_first_bad_rep_of_an_unlabelled_set_alerts(seed):
    """No label: the segmenter cannot know a set has started, yet the rounded first rep buzzes."""
    run = run_simulated([sim.SetSpec("deadlift", 4, {1: "rounding"})], seed, rom=False, labels=False)
    rep1 = next(r for r in run.session.reps if r.rep == 1)
    alerts = [a for a in run.result.alerts if rep1.t_start - 0.3 <= a.t_trigger_device <= rep1.t_end + 0.3]
    assert alerts, (run.result.alerts, rep1)
    assert run.result.summary["suppressed"] == []


@pytest.mark.parametrize("imus", [("upper", "lower"), ("upper",)])
def test_slow_flexions_three_in_about_twelve_seconds_are_three_reps(imus):
    run = run_simulated([sim.SetSpec("deadlift", 3, tempo=1.4)], 6, sim_settings=sim.SimSettings(imus=imus), rom=False)
    s = run.session
    assert 9.0 <= s.sets[0].t_end - s.sets[0].t_start <= 16.0
    assert [(r["set"], r["rep"]) for r in run.result.summary["reps"]] == [(1, 1), (1, 2), (1, 3)]


@pytest.mark.parametrize("imus", [("upper", "lower"), ("upper",)])
def test_curls_at_25_hz_with_offsets_are_counted_and_the_swing_is_caught(imus):
    run = run_simulated([sim.SetSpec("curl", 5, {4: "hip_swing"})], 3, sim_settings=harsh(25.0, imus), rom=False)
    assert [(r["set"], r["rep"]) for r in run.result.summary["reps"]] == [(1, k) for k in range(1, 6)]
    assert {e.rep for e in run.result.events} == {4}
