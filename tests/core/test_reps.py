"""Rep and set segmentation on the simulated wearer, through the real fusion.

The main tests run :mod:`spinemon.core.fusion` and :mod:`spinemon.core.angles` on the
simulator's noisy samples (not its ground truth) and compare the segmenter's
reps and sets with the simulator's RepTruth/SetTruth records.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pytest

from spinemon.io import sim
from spinemon.core.angles import Mounting, lumbar_angles, sagittal_deg
from spinemon.errors import ConfigError, SpinemonError
from spinemon.core.fusion import run
from spinemon.core.reps import RepInputError, RepRecord, RepSegmenter, RepSettings, SetRecord

RATE = 100.0


def _workout(ex: str) -> list[sim.SetSpec]:
    """Four sets with faults: a 12 s walking rest (walk, load a plate, walk),
    a 5 s walking rest, a 5 s standing rest."""
    f = sim.FAULTS_BY_EXERCISE[ex]
    return [
        sim.SetSpec(ex, 5, {2: f[0], 4: f[1]}, rest_s=12.0, walk_during_rest=True),
        sim.SetSpec(ex, 4, {1: f[1]}, rest_s=5.0, walk_during_rest=True),
        sim.SetSpec(ex, 3, {3: f[0]}, rest_s=5.0),
        sim.SetSpec(ex, 3),
    ]


def _inputs(s: sim.SimSession) -> tuple[np.ndarray, dict]:
    """What the pipeline has in monitoring: fused angles and body-frame gyros,
    from the end of the calibration on."""
    neutral = s.t < s.calibration.neutral[1] - 0.3
    fused = {n: run(s.imus[n].acc, s.imus[n].gyr, RATE) for n in s.imus}
    mount = {n: Mounting.from_neutral(s.imus[n].acc[neutral].mean(axis=0)) for n in s.imus}
    gyr = {n: s.imus[n].gyr - fused[n].bias for n in s.imus}
    ang = lumbar_angles(
        RATE, fused["upper"].gravity, gyr["upper"], fused["lower"].gravity, gyr["lower"], upper=mount["upper"], lower=mount["lower"]
    )
    d = {
        "flexion_deg": ang.flexion_deg,
        "lateral_deg": ang.lateral_deg,
        "twist_deg": ang.twist_deg,
        "trunk_deg": sagittal_deg(mount["upper"].to_body(fused["upper"].gravity)),
        # raw gyro, mapped to the body frame (see RepSegmenter.update)
        "upper_gyr": mount["upper"].to_body(s.imus["upper"].gyr),
        "lower_gyr": mount["lower"].to_body(s.imus["lower"].gyr),
    }
    k = int(np.searchsorted(s.t, s.calibration.standing_after[0]))
    return s.t[k:], {key: v[k:] for key, v in d.items()}


@lru_cache(maxsize=None)
def _session(ex: str, seed: int):
    s = sim.simulate(_workout(ex), seed=seed)
    t, d = _inputs(s)
    return s, t, d


def _segment(t, d, ex, blocks=None, labels=()):
    """Feed in blocks (frame-sized by default); labels: [(t, exercise, set)]."""
    seg = RepSegmenter(RATE, RepSettings(exercise=ex))
    out: list = []
    if blocks is None:
        blocks = range(0, len(t), 8)
    edges = list(blocks) + [len(t)]
    labels = list(labels)
    for a, b in zip(edges[:-1], edges[1:]):
        while labels and labels[0][0] <= t[a]:
            _, lex, n = labels.pop(0)
            seg.start_set(lex, n, t=float(t[a]))
        out += seg.update(t[a:b], **{k: v[a:b] for k, v in d.items()})
    out += seg.finish()
    return seg, out


def _overlaps(a0, a1, b0, b1) -> bool:
    return a0 < b1 and b0 < a1


# ---------------------------------------------------------------------------
# the main test: every exercise, several seeds, faults, walking and plates
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ex", sim.EXERCISES)
def test_reps_and_sets_found_automatically(ex, seed):
    s, t, d = _session(ex, seed)
    seg, out = _segment(t, d, ex)

    # sets: same count and same reps per set, numbered from 1
    assert [x.reps for x in seg.sets] == [x.reps for x in s.sets]
    assert [x.set for x in seg.sets] == [1, 2, 3, 4]
    # every detected rep overlaps the true rep with the same (set, rep) number
    truth = {(r.set, r.rep): r for r in s.reps}
    got = {(r.set, r.rep): r for r in seg.reps}
    assert got.keys() == truth.keys()
    for key, r in got.items():
        tr = truth[key]
        assert _overlaps(r.t_start, r.t_end, tr.t_start, tr.t_end), (key, r, tr)
        assert r.t_start >= tr.t_start - 0.3 and r.t_end <= tr.t_end + 0.6
        assert not r.labelled and r.exercise == ex
    # no ghost: no rep anywhere in a rest (walking, plate loading, standing)
    for a, b in zip(s.sets[:-1], s.sets[1:]):
        assert not any(_overlaps(r.t_start, r.t_end, a.t_end + 0.3, b.t_start - 0.3) for r in seg.reps)
    # the plate hinge (first rest: 12 s) was seen and refused, with its reason
    rest0 = (s.sets[0].t_end, s.sets[1].t_start)
    plate = [c for c in seg.rejected if _overlaps(c.t_start, c.t_end, *rest0) and c.peak_excursion_deg > 30.0]
    assert plate and all(c.reason in ("walking", "isolated") for c in plate)
    # the stream returns each record once, in order
    assert [r for r in out if isinstance(r, RepRecord)] == seg.reps
    assert [r for r in out if isinstance(r, SetRecord)] == seg.sets


def test_rep_metrics_follow_the_truth():
    s, t, d = _session("deadlift", 0)
    seg, _ = _segment(t, d, "deadlift")
    truth = {(r.set, r.rep): r for r in s.reps}
    for r in seg.reps:
        tr = truth[(r.set, r.rep)]
        assert abs(r.peak_flexion_deg - tr.peak_flexion_deg) < 4.0
        assert r.range_deg == pytest.approx(r.peak_flexion_deg - r.peak_extension_deg)
        assert 0.7 * (tr.t_end - tr.t_start) < r.time_under_tension_s <= tr.t_end - tr.t_start
        assert r.peak_trunk_deg > 40.0  # a hinge
        assert r.peak_sagittal_velocity_deg_s > 30.0
        if tr.fault == "twisting":
            assert abs(r.peak_twist_deg) > 12.0
        else:
            assert abs(r.peak_twist_deg) < 8.0
    rounded = [r for r in seg.reps if truth[(r.set, r.rep)].fault == "rounding"]
    clean = [r for r in seg.reps if truth[(r.set, r.rep)].fault is None]
    assert min(r.peak_flexion_deg for r in rounded) > max(r.peak_flexion_deg for r in clean) + 10.0


# ---------------------------------------------------------------------------
# streaming
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("ex", ["curl", "deadlift"])
def test_same_records_for_any_block_split(ex):
    s, t, d = _session(ex, 1)
    _, whole = _segment(t, d, ex, blocks=[0])
    rng = np.random.default_rng(7)
    for _ in range(3):
        cuts = np.unique(np.concatenate([[0], rng.integers(1, len(t), size=rng.integers(5, 400))]))
        _, parts = _segment(t, d, ex, blocks=cuts.tolist())
        assert parts == whole


def test_current_rep_numbers_reps_in_real_time_in_a_labelled_set():
    s, t, d = _session("squat", 2)
    seg = RepSegmenter(RATE, RepSettings(exercise="squat"))
    labels = [(st.t_start - 0.8, st.set) for st in s.sets]
    seen: dict[float, int | None] = {}
    for i in range(0, len(t), 8):
        while labels and labels[0][0] <= t[i]:
            seg.start_set("squat", labels.pop(0)[1])
        seg.update(t[i : i + 8], **{k: v[i : i + 8] for k, v in d.items()})
        seen[float(t[min(i + 7, len(t) - 1)])] = seg.current_rep
    seg.finish()
    assert [x.reps for x in seg.sets] == [x.reps for x in s.sets]
    assert all(r.labelled for r in seg.reps)
    # in the middle of every true rep the rep in progress has the right number
    times = np.array(list(seen))
    for tr in s.reps:
        mid = 0.5 * (tr.t_start + tr.t_end)
        assert seen[float(times[np.argmin(np.abs(times - mid))])] == tr.rep
    # between sets nothing is in progress
    for a, b in zip(s.sets[:-1], s.sets[1:]):
        mid = 0.5 * (a.t_end + b.t_start)
        assert seen[float(times[np.argmin(np.abs(times - mid))])] is None


def test_labels_set_exercise_and_numbers_of_a_mixed_workout():
    specs = [
        sim.SetSpec("deadlift", 3, rest_s=6.0),
        sim.SetSpec("curl", 4, {2: "hip_swing"}, rest_s=6.0),
        sim.SetSpec("overhead_press", 3, {3: "arching"}),
    ]
    s = sim.simulate(specs, seed=5)
    t, d = _inputs(s)
    labels = [(st.t_start - 1.0, st.exercise, 10 + st.set) for st in s.sets]
    seg, _ = _segment(t, d, "generic", labels=labels)
    assert [(x.set, x.exercise, x.reps, x.labelled) for x in seg.sets] == [
        (11, "deadlift", 3, True),
        (12, "curl", 4, True),
        (13, "overhead_press", 3, True),
    ]
    assert [(r.set, r.rep) for r in seg.reps] == [(10 + r.set, r.rep) for r in s.reps]


# ---------------------------------------------------------------------------
# the ghost-rep rule on its own: one hinge is not a set unless labelled
# ---------------------------------------------------------------------------
def _single_hinge(label: bool):
    s = sim.simulate([sim.SetSpec("deadlift", 1)], seed=3)
    t, d = _inputs(s)
    labels = [(s.sets[0].t_start - 1.0, "deadlift", None)] if label else []
    return s, _segment(t, d, "deadlift", labels=labels)[0]


def test_a_lone_unlabelled_hinge_is_not_a_set():
    s, seg = _single_hinge(label=False)
    assert seg.reps == [] and seg.sets == []
    assert [c.reason for c in seg.rejected] == ["isolated"]
    assert _overlaps(seg.rejected[0].t_start, seg.rejected[0].t_end, s.reps[0].t_start, s.reps[0].t_end)


def test_a_labelled_single_counts():
    s, seg = _single_hinge(label=True)
    assert [(r.set, r.rep) for r in seg.reps] == [(1, 1)]
    assert [(x.set, x.reps, x.labelled) for x in seg.sets] == [(1, 1, True)]


def test_standing_still_and_walking_give_no_reps():
    rng = np.random.default_rng(0)
    n = 3000
    t = np.arange(n) / RATE
    g = rng.normal(0.0, 0.004, (n, 3)) + np.radians([0.8, -0.6, 0.5])  # noise + a raw bias
    # walking from 10 s to 25 s: pelvis yaw and roll at ~0.9 Hz, trunk with them
    w = (t > 10) & (t < 25)
    f = 0.9
    g[w, 0] += np.radians(25.0) * np.sin(2 * math.pi * f * t[w])
    g[w, 2] += np.radians(18.0) * np.cos(2 * math.pi * f * t[w])
    seg = RepSegmenter(RATE, RepSettings(exercise="curl"))  # the most sensitive profile
    out = seg.update(t, flexion_deg=np.zeros(n), upper_gyr=g, lower_gyr=g * 0.9)
    out += seg.finish()
    assert out == [] and seg.reps == []
    assert all(c.reason == "walking" for c in seg.rejected)


# ---------------------------------------------------------------------------
# bad input: clear errors from the SpinemonError tree
# ---------------------------------------------------------------------------
def test_bad_input_raises_rep_input_error():
    seg = RepSegmenter(RATE)
    t = np.arange(10) / RATE
    z = np.zeros((10, 3))
    with pytest.raises(RepInputError):
        seg.update(t, flexion_deg=np.zeros(9), upper_gyr=z)
    with pytest.raises(RepInputError):
        seg.update(t, flexion_deg=np.zeros(10), upper_gyr=np.zeros((10, 2)))
    with pytest.raises(RepInputError):
        seg.update(t, flexion_deg=np.full(10, np.nan), upper_gyr=z)
    with pytest.raises(RepInputError):
        seg.update(t[::-1], flexion_deg=np.zeros(10), upper_gyr=z)
    with pytest.raises(RepInputError):
        seg.update(t, flexion_deg="abc", upper_gyr=z)
    seg.update(t, flexion_deg=np.zeros(10), upper_gyr=z)
    with pytest.raises(RepInputError):  # time must go on across blocks
        seg.update(t, flexion_deg=np.zeros(10), upper_gyr=z)
    assert issubclass(RepInputError, SpinemonError)
    assert seg.update(np.empty(0), flexion_deg=np.empty(0), upper_gyr=np.empty((0, 3))) == []


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError):
        RepSettings(exercise="bench_press")
    with pytest.raises(ConfigError):
        RepSettings(rest_gap_s=-1.0)
    with pytest.raises(ConfigError):
        RepSettings(min_reps_unlabelled=0)
    with pytest.raises(ConfigError):
        RepSettings(exit_fraction=1.5)
    with pytest.raises(ConfigError):
        RepSegmenter(float("nan"))
    seg = RepSegmenter(RATE)
    with pytest.raises(ConfigError):
        seg.start_set("bench_press")
    with pytest.raises(ConfigError):
        seg.start_set("curl", 0)
