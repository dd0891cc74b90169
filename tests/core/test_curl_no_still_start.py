"""Curls with no still start (rules 8, issue 22).

A clean curl moves the trunk 0.5-5 deg over a rise of about a second: slower
than ``quiet_deg_s`` (1.5 deg/s) at times all along, and the rep counter's
reference followed it as if the body were at rest, so a small, slow rep was
never seen (harsh bench seed 25: the last rep, 1.0 deg in a second; seed 26:
a rep that read 0.595 deg against the curl's 0.6). Measured on the gyro with
its bias known, the body now rests only where its excursion stood still
(``RepSettings.rest_away``). Before the tilt filter has learnt the bias the
first reps are measured on its gravity, off by its bias error x 1 s (as large
as a curl): they were found out of phase or split (seeds 10 and 19), so they
are measured again once the bias is known (``RepSettings.remeasure``). A
curl's hip swing that the sensors' unknown heading hides under the limit is
told by name (``LimitWatch.hidden_swing``).

Synthetic samples (one sensor, 100 Hz, a little noise) for the rules
themselves; the simulated wearer for the cases the bench found."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spinemon.app.simrun import run_simulated
from spinemon.core.calibration import CalibrationSettings
from spinemon.core.pipeline import PipelineSettings
from spinemon.core.reps import RepSegmenter, RepSettings
from spinemon.io import sim

RATE = 100.0
G = 9.81


def _segmenter(rules: int) -> RepSegmenter:
    """A curl's rep counter as ``Segmenter.rep_settings`` builds it with ``rules`` (7, 8 or 9)."""
    s = RepSettings(exercise="curl", single_min_deg=15.0, exit_relative=True, exit_fraction=0.75, gravity_excursion=True,
                    warmup_s=0.1, tilt_bias=True, tilt_gravity=True, told_reps_confirm=True, bias_check=True,
                    rest_away=rules >= 8, remeasure=rules >= 8, bias_idle=rules >= 9)  # fmt: skip
    return RepSegmenter(RATE, s)


def _curls(still_s: float, reps: int, amp_deg: float, rise_s: float, bias_dps: np.ndarray, seed: int) -> dict:
    """``still_s`` of standing, then ``reps`` curls: the trunk tips ``amp_deg``
    back about body Y over ``rise_s`` (smoothly), holds 0.3 s, comes back over
    ``rise_s`` and stands 1 s (2 s more at the end). The gyro reads the turn plus ``bias_dps``; the
    accelerometer turns with the body."""
    rng = np.random.default_rng(seed)
    prof = [np.zeros(int(still_s * RATE))]
    k = int(rise_s * RATE)
    bump = np.sin(np.linspace(0.0, np.pi, k)) ** 2 * 2.0 * amp_deg / rise_s  # integrates to amp_deg
    for _ in range(reps):
        prof += [bump, np.zeros(int(0.3 * RATE)), -bump, np.zeros(int(1.0 * RATE))]
    prof.append(np.zeros(int(2.0 * RATE)))
    wy = np.concatenate(prof)
    n = len(wy)
    w = np.zeros((n, 3))
    w[:, 1] = wy
    a = np.empty((n, 3))
    g = np.array([1.0, 0.0, 0.0])
    for i in range(n):  # the accelerometer seen from the turning body: da/dt = a x w
        a[i] = g
        g = g + np.cross(g, np.radians(w[i])) / RATE
        g = g / np.linalg.norm(g)
    return {
        "t": np.arange(n) / RATE,
        "flexion_deg": np.degrees(np.arctan2(a[:, 2], a[:, 0])),
        "upper_gyr": np.radians(bias_dps + w) + np.radians(0.1) * rng.standard_normal((n, 3)),
        "upper_gravity": a,
        "upper_acc": G * a + 0.01 * rng.standard_normal((n, 3)),
    }


def _count(seg: RepSegmenter, d: dict, edges: list[int]) -> list:
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        out += seg.update(d["t"][a:b], **{k: v[a:b] for k, v in d.items() if k != "t"}, upper_rotation=np.eye(3))
    out += seg.finish()
    return [(round(r.t_start, 6), round(r.t_end, 6)) for r in out if hasattr(r, "rep")]


def _frames(n: int) -> list[int]:
    return list(range(0, n, 25)) + [n]


def test_a_slow_small_curl_on_the_gyro_is_counted():
    """After a still start (the bias known), four curls of 1 deg, each rising
    in 1 s and coming back in 1 s (1 deg/s on average, under ``quiet_deg_s``
    but at the middle of each stroke): rules 7 let the reference follow them
    and found none; rules 8 find the four, each from where it began (the end
    comes early, where the return slows under ``quiet_deg_s``)."""
    d = _curls(2.0, 4, 1.0, 1.0, np.array([0.3, -0.6, 0.2]), seed=1)
    starts = [2.0 + k * (2 * 1.0 + 1.3) for k in range(4)]
    assert _count(_segmenter(7), d, _frames(len(d["t"]))) == []
    reps = _count(_segmenter(8), d, _frames(len(d["t"])))
    assert len(reps) == 4
    assert all(abs(r[0] - s) < 0.5 and r[1] > s + 1.3 for r, s in zip(reps, starts))


@settings(max_examples=5, deadline=None)
@given(
    bias=st.tuples(*[st.floats(-1.0, 1.0)] * 3),
    cut=st.lists(st.integers(1, 60), min_size=1, max_size=30),
)
def test_standing_still_after_a_still_start_starts_no_rep_whatever_the_bias_and_the_split(bias, cut):
    """Standing 20 s: the reference may no longer follow every slow turn, yet
    a body that stands still (the bias learnt at rest, then any residual
    noise) never starts a rep, in any split of the stream into blocks."""
    d = _curls(20.0, 0, 0.0, 1.0, np.array(bias), seed=2)
    n = len(d["t"])
    edges = sorted({0, n, *np.cumsum(cut).tolist()} - {x for x in np.cumsum(cut).tolist() if x >= n})
    for rules in (8, 9):
        seg = _segmenter(rules)
        assert _count(seg, d, edges) == [] and seg.rejected == []


@settings(max_examples=4, deadline=None)
@given(cut=st.lists(st.integers(1, 90), min_size=1, max_size=40))
def test_curls_from_the_first_sample_are_measured_again_the_same_in_every_split(cut):
    """No still start, a bias of about 1 deg/s: the first reps (gravity
    excursion) are measured again once the tilt filter has learnt; the reps
    and where each is reported do not depend on how the stream is cut."""
    d = _curls(0.0, 6, 2.0, 1.0, np.array([0.4, -0.9, 0.5]), seed=3)
    n = len(d["t"])
    whole = _count(_segmenter(8), d, _frames(n))
    assert len(whole) == 6
    steps = np.cumsum(cut).tolist()
    edges = sorted({0, n, *[x for x in steps if x < n]})
    assert _count(_segmenter(8), d, edges) == whole


def _curl_set(seed: int, yaw: float, rules: int, out=None):
    """The harsh bench's curl row: 5 curls, the third a hip swing, no still start, unlabelled, no sweep."""
    return run_simulated([sim.SetSpec("curl", 5, {3: "hip_swing"})], seed, out=out,
                         sim_settings=sim.SimSettings(stand_s=0.0, mount_yaw_deg=yaw),
                         settings=PipelineSettings(exercise="curl", calibration=CalibrationSettings(rom=False), rules=rules),
                         rom=False, labels=False)  # fmt: skip


def test_a_whole_curl_set_with_no_still_start_is_counted_and_a_rules_7_recording_replays_as_it_ran(tmp_path):
    """Harsh bench seed 25: with rules 7 only the fourth rep was measured on
    the gyro (the first three on the gravity excursion, the last one followed
    by the reference): no set, 0 of 5. Rules 8 count 5 of 5. The rules 7
    recording replays as it ran."""
    from dataclasses import replace

    from spinemon.app.replay import replay
    from spinemon.io.recording import load

    out = tmp_path / "r7.spinrec"
    assert _curl_set(25, 0.0, 7, out=out).result.summary["reps"] == []
    rec = load(out)
    res = replay(rec)
    assert res.matches_live and res.summary["reps"] == []
    now = replay(rec, replace(PipelineSettings.from_dict(rec.header["settings"]), rules=8))
    assert len(now.summary["reps"]) == 5


@pytest.mark.parametrize(("seed", "yaw"), [(10, 30.0), (19, 30.0), (26, 0.0)])
def test_curls_with_no_still_start_are_each_found_once(seed, yaw):
    """Rules 7: seed 10 merged reps 2 and 3 (4 of 5), seed 19 split the first
    two into three (6 of 5), seed 26 missed a slow rep (4 of 5). Rules 8: each
    true rep is found once, its middle inside the found one."""
    run = _curl_set(seed, yaw, 8)
    found = run.result.summary["reps"]
    assert len(found) == 5
    for r, f in zip(run.session.reps, found):
        assert f["t_start"] <= (r.t_start + r.t_end) / 2 <= f["t_end"]


def test_a_hip_swing_the_unknown_heading_hides_is_told_by_name():
    """Harsh bench seed 17, sensors 30 deg off: the swing (true -16.4 deg,
    limit -11.25) read -10.8 (the fusion's unlearnt gyro bias left standing
    +2.5 deg, the upper sensor's heading turned 3 deg of the lean into side
    bend), a silent miss with rules 7. Rules 8 tell it, held back by name,
    during the swing; no buzz on a clean rep."""
    from spinemon.core.segment import HELD_BACK, HELD_SWING_HEADING

    why = HELD_BACK[HELD_SWING_HEADING]
    old = _curl_set(17, 30.0, 7)
    assert old.result.alerts == [] and old.result.summary["held_back"]["faults"] == {}
    run = _curl_set(17, 30.0, 8)
    assert run.result.alerts == [] and run.result.summary["held_back"]["faults"] == {why: 1}
    swing = run.session.reps[2]
    (ev,) = [e for e in run.result.summary["suppressed"] if e.get("held_back") == why]
    assert swing.t_start <= ev["t_alert"] <= swing.t_end


def test_a_still_bias_the_tilt_filter_disowns_gives_way_between_reps_not_only_at_rest(tmp_path):
    """Harsh bench seed 35 (kept back), no still start: the still bias was
    learnt over 0.8 s where the second curl began slowly (0.4-0.5 deg/s off
    per sensor); the tilt filter had the bias within 0.1 deg/s. With rules 8
    the reference rests only where the excursion stands still, the wrong bias
    moved it 0.9 deg/s with the body still, so the rest where the two biases
    are compared never came: the last two curls ran into one candidate
    dropped as "stuck", 3 of 5. Rules 9 compare them on every idle sample: 5
    of 5, each true rep's middle inside a found one. The rules 8 recording
    replays as it ran."""
    from spinemon.app.replay import replay
    from spinemon.io.recording import load

    out = tmp_path / "r8.spinrec"
    old = _curl_set(35, 0.0, 8, out=out).result.summary
    assert len(old["reps"]) == 3 and [r["reason"] for r in old["rejected_reps"]] == ["stuck"]
    res = replay(load(out))
    assert res.matches_live and len(res.summary["reps"]) == 3
    run = _curl_set(35, 0.0, 9)
    found = run.result.summary["reps"]
    assert len(found) == 5 and run.result.summary["rejected_reps"] == []
    for r, f in zip(run.session.reps, found):
        assert f["t_start"] <= (r.t_start + r.t_end) / 2 <= f["t_end"]
