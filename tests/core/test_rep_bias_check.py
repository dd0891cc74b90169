"""The rep counter's still-learnt gyro bias is provisional for a small lift
(rules 6, ``RepSettings.bias_check``): its stillness test (a steady gyro)
passes on a steady slow turn too, as at the slow start of a curl with no
still start, and a turn of 0.5 deg/s taken for bias, integrated over a curl,
is as large as the curl's trunk motion. The accelerometer tells a turn across
gravity from a bias: a still stretch confirms the bias only when the
accelerometers turned less over it than the tolerance (``enter_deg /
idle_leak_tau_s``) allows.

One sensor, synthetic samples at 100 Hz with a little noise: the gyro reads
the bias plus the turn, the accelerometer turns with the body."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings, strategies as st

from conftest import require_numba
from spinemon.core import rep_kernel as K
from spinemon.core.reps import RepSegmenter, RepSettings

RATE = 100.0
G = 9.81


def _segmenter() -> RepSegmenter:
    """A curl's rep counter as the pipeline builds it with rules 6 (``Segmenter.rep_settings``)."""
    s = RepSettings(exercise="curl", single_min_deg=15.0, exit_relative=True, exit_fraction=0.75, gravity_excursion=True,
                    warmup_s=0.1, tilt_bias=True, tilt_gravity=True, told_reps_confirm=True, bias_check=True)  # fmt: skip
    return RepSegmenter(RATE, s)


def _stream(seconds: float, bias_dps: np.ndarray, turn_dps: np.ndarray, seed: int, t0: float = 0.0,
            up: np.ndarray | None = None) -> tuple[dict, np.ndarray]:  # fmt: skip
    """``seconds`` from ``t0`` of a sensor turning steadily at ``turn_dps``
    (body frame; about an axis across the spine, so across gravity) with gyro
    bias ``bias_dps``, from the accelerometer direction ``up`` (up the spine):
    the segmenter's inputs, and the direction it ends at."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * RATE))
    w = np.radians(turn_dps)
    # the accelerometer seen from the turning body: da/dt = a x w
    a = np.empty((n, 3))
    g = np.array([1.0, 0.0, 0.0]) if up is None else up
    for i in range(n):
        a[i] = g
        g = g + np.cross(g, w) / RATE
        g = g / np.linalg.norm(g)
    return {
        "t": t0 + np.arange(n) / RATE,
        "flexion_deg": np.degrees(np.arctan2(a[:, 2], a[:, 0])),
        "upper_gyr": np.radians(bias_dps + turn_dps) + np.radians(0.1) * rng.standard_normal((n, 3)),
        "upper_gravity": a,
        "upper_acc": G * a + 0.01 * rng.standard_normal((n, 3)),
    }, g


def _update(seg: RepSegmenter, d: dict, edges: list[int]) -> None:
    for a, b in zip(edges[:-1], edges[1:]):
        seg.update(d["t"][a:b], **{k: v[a:b] for k, v in d.items() if k != "t"}, upper_rotation=np.eye(3))


def _feed(seg: RepSegmenter, seconds: float, bias_dps: np.ndarray, turn_dps: np.ndarray, seed: int,
          t0: float = 0.0, up: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """:func:`_stream` fed in frame-sized blocks; returns the direction it ends at."""
    d, g = _stream(seconds, bias_dps, turn_dps, seed, t0, up)
    _update(seg, d, list(range(0, len(d["t"]), 25)) + [len(d["t"])])
    return g


def _tolerance() -> float:
    s = RepSettings(exercise="curl")
    return s.profile("curl").enter_deg / s.idle_leak_tau_s


@settings(max_examples=6, deadline=None)
@given(
    bias=st.tuples(*[st.floats(-0.5, 0.5)] * 3),
    rate=st.floats(4.0, 6.0),
    angle=st.floats(0.0, 2 * math.pi),
    seed=st.integers(0, 2**16),
)
def test_a_steady_slow_turn_is_not_taken_for_the_gyro_bias(bias, rate, angle, seed):
    """Turning 4-6 times the tolerance (0.6-0.9 deg/s for a curl), steady for
    2 s from the first sample: the stillness test passes and the bias is
    learnt, but it is not used to measure the reps (before rules 6 it was,
    from 0.1 s of it: GYRO_MODE 1)."""
    turn = rate * _tolerance() * np.array([0.0, math.cos(angle), math.sin(angle)])
    seg = _segmenter()
    _feed(seg, 2.0, np.array(bias), turn, seed)
    assert seg._I[K.BIAS_N] >= seg._P[K.P_WARMUP_N]  # the stillness test took the turn for stillness ...
    assert seg._I[K.BIAS_OK] == 0  # ... the accelerometers saw it turn
    assert seg._I[K.GYRO_MODE] != 1


@settings(max_examples=6, deadline=None)
@given(bias=st.tuples(*[st.floats(-0.8, 0.8)] * 3), seed=st.integers(0, 2**16))
def test_a_still_stretch_confirms_the_bias_and_the_gyro_measures_the_reps(bias, seed):
    """Still, with a bias within ``quiet_deg_s`` of none (learnt from
    ``still_min_s`` on; a larger one waits ``still_long_s``): the stretch
    confirms it and the excursion is the gyro's within 1.5 s."""
    seg = _segmenter()
    _feed(seg, 1.5, np.array(bias), np.zeros(3), seed)
    assert seg._I[K.BIAS_OK] == 1
    assert seg._I[K.GYRO_MODE] == 1
    assert np.abs(seg._F[K.BU : K.BU + 3] - np.array(bias)).max() < _tolerance()


def test_a_turn_then_a_still_stretch_the_still_one_replaces_the_turn():
    """The slow start taken for bias first (0.8 deg/s about the body Y axis),
    a quicker move, then the body stops: the still stretch's own mean replaces
    the estimate, which the running mean would have pulled only part of the way."""
    bias = np.array([0.3, -0.4, 0.2])
    seg = _segmenter()
    up = _feed(seg, 1.0, bias, np.array([0.0, 0.8, 0.0]), 1)
    assert seg._I[K.BIAS_OK] == 0 and abs(seg._F[K.BU + 1] - bias[1]) > 0.5  # the turn was learnt as bias
    up = _feed(seg, 0.3, bias, np.array([0.0, -8.0, 0.0]), 2, t0=1.0, up=up)
    _feed(seg, 1.5, bias, np.zeros(3), 3, t0=1.3, up=up)
    assert seg._I[K.BIAS_OK] == 1
    assert np.abs(seg._F[K.BU : K.BU + 3] - bias).max() < _tolerance()


def _turn_move_still() -> dict:
    """The slow turn taken for bias, a quicker move, a still stretch: every branch of the check."""
    bias = np.array([0.3, -0.4, 0.2])
    d1, up = _stream(1.0, bias, np.array([0.0, 0.8, 0.0]), 1)
    d2, up = _stream(0.3, bias, np.array([0.0, -8.0, 0.0]), 2, t0=1.0, up=up)
    d3, _ = _stream(1.5, bias, np.zeros(3), 3, t0=1.3, up=up)
    return {k: np.concatenate([d1[k], d2[k], d3[k]]) for k in d1}


@settings(max_examples=5, deadline=None)
@given(cuts=st.lists(st.integers(1, 279), max_size=12, unique=True))
def test_the_check_gives_the_same_state_for_any_split(cuts):
    d = _turn_move_still()
    n = len(d["t"])
    whole, split = _segmenter(), _segmenter()
    _update(whole, d, [0, n])
    _update(split, d, [0, *sorted(cuts), n])
    assert whole._I[K.BIAS_OK] == 1  # (the check ran to the end)
    assert np.array_equal(whole._F, split._F, equal_nan=True) and np.array_equal(whole._I, split._I)


def test_the_check_compiled_and_in_python_agree_to_the_bit(monkeypatch):
    require_numba()
    d = _turn_move_still()
    compiled = _segmenter()
    _update(compiled, d, [0, len(d["t"])])
    monkeypatch.setattr(K, "advance", K.advance_python)
    python = _segmenter()
    _update(python, d, [0, len(d["t"])])
    assert np.array_equal(compiled._F, python._F, equal_nan=True) and np.array_equal(compiled._I, python._I)
