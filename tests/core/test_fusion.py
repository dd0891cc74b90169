"""Fusion core: batch vs streaming, convergence, bias, degenerate input, errors.

Every test runs on both engines (``engine=`` of each filter; the module's
``gravity``, ``run`` and ``GravityFilter`` below pass the one under test): the per-sample
kernel compiled by numba for every block, and the chunked numpy path for long
blocks with the kernel as plain Python for short ones; the last tests compare
the two on the same data, real recordings included."""

import math

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from conftest import require_numba
from spinemon.core import fusion
from spinemon.errors import ConfigError, SpinemonError
from stress_motion import stress_motion
from spinemon.core.fusion import (
    G,
    FusionInputError,
    FusionSettings,
    FusionState,
)
from tests.support.zero_phase import gravity_zero_phase

ENGINE = {"name": "compiled"}  # the engine under test (the module fixture sets it)


def gravity(*args, **kw):
    return fusion.gravity(*args, engine=ENGINE["name"], **kw)


def run(*args, **kw):
    return fusion.run(*args, engine=ENGINE["name"], **kw)


def GravityFilter(*args, **kw):  # noqa: N802  (stands for the class)
    return fusion.GravityFilter(*args, engine=ENGINE["name"], **kw)


RATE = 100.0


@pytest.fixture(autouse=True, scope="module", params=fusion.ENGINES)
def engine(request):
    """Run the module's tests once per engine (module scope: hypothesis allows it)."""
    if request.param == "compiled":
        require_numba()
    ENGINE["name"] = request.param
    assert fusion.engine(request.param) == request.param
    yield request.param
    ENGINE["name"] = "compiled"

CHUNK = 16  # the filter latches its low-pass output, trust weight and bias every 16 samples
WEIGHTED = FusionSettings(acc_rejection_m_s2=4.0)  # the optional trust weight, off by default


def angle_deg(a, b):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def rot_x(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def tumbling_recording(n=3000, seed=0, bias=(0.0, 0.0, 0.0), still=400):
    """Sensor rotating about its X axis (after `still` samples at rest), gravity starting along +Z.

    Returns acc, gyr (with an additive bias) and the true up direction in the sensor frame.
    """
    rng = np.random.default_rng(seed)
    rate_x = np.zeros(n)
    rate_x[still:] = 0.8 * np.sin(np.arange(n - still) / RATE * 1.3)
    angle = np.concatenate([[0.0], np.cumsum(rate_x[1:]) / RATE])
    # sensor rotates by `angle` about X: up in the sensor frame turns by -angle
    up = np.stack([np.zeros(n), np.sin(angle), np.cos(angle)], axis=1)
    acc = G * up + rng.normal(0, 0.05, (n, 3))
    gyr = np.stack([rate_x, np.zeros(n), np.zeros(n)], axis=1) + rng.normal(0, 0.002, (n, 3)) + np.array(bias)
    return acc, gyr, up


def test_sensor_rotation_sign_convention():
    """The synthetic recording is consistent: integrating the gyro reproduces the truth."""
    acc, gyr, up = tumbling_recording(still=0)
    u = gravity(acc, gyr, RATE)
    assert angle_deg(u, up)[200:].max() < 2.0


def test_tracks_rotation_without_lag():
    acc, gyr, up = tumbling_recording()
    u = gravity(acc, gyr, RATE)
    assert np.allclose(np.linalg.norm(u, axis=1), 1.0)
    assert angle_deg(u, up).max() < 1.5


def test_output_is_unit_and_shape():
    acc, gyr, _ = tumbling_recording(n=500)
    u = gravity(acc, gyr, RATE)
    assert u.shape == (500, 3)
    assert np.allclose(np.linalg.norm(u, axis=1), 1.0, atol=1e-12)


def test_zero_length_input():
    u = gravity(np.empty((0, 3)), np.empty((0, 3)), RATE)
    assert u.shape == (0, 3)
    f = GravityFilter(RATE)
    assert f.update(np.empty((0, 3)), np.empty((0, 3))).shape == (0, 3)
    r = run(np.empty((0, 3)), np.empty((0, 3)), RATE)
    assert r.rest.shape == (0,) and r.bias.shape == (0, 3)


def test_free_fall_gives_no_nan():
    n = 2000
    acc = np.zeros((n, 3))
    acc[:200] = [0, 0, G]
    gyr = np.zeros((n, 3))
    gyr[:, 1] = 0.3
    u = gravity(acc, gyr, RATE)
    assert np.isfinite(u).all()
    assert np.allclose(np.linalg.norm(u, axis=1), 1.0)
    # all zero from the very first sample
    u0 = gravity(np.zeros((50, 3)), np.zeros((50, 3)), RATE)
    assert np.isfinite(u0).all()


def test_default_trusts_every_accelerometer_sample():
    """Rejection is off by default (as in VQF): the weight stays 1 however hard the shaking."""
    acc, gyr, _ = tumbling_recording(n=1500)
    acc[800:900] *= 2.5
    r = run(acc, gyr, RATE)
    assert FusionSettings().acc_rejection_m_s2 is None
    assert r.acc_weight.min() == 1.0 == r.acc_weight.max()


def test_a_drop_is_carried_by_the_gyro():
    """Half a second of free fall (a dropped sensor) while turning: the gyro carries the direction."""
    n = 150
    acc = np.zeros((n, 3))
    acc[:100] = [0, 0, G]
    gyr = np.zeros((n, 3))
    gyr[100:, 0] = 1.0  # 0.5 s of 1 rad/s about X, no gravity seen
    u = gravity(acc, gyr, RATE)
    expected = rot_x(-0.5) @ np.array([0, 0, 1.0])
    assert angle_deg(u[-1], expected) < 3.0


def test_free_fall_weight_drops_and_gyro_carries_direction():
    """With the optional rejection on, free fall is not trusted; the gyro keeps turning the estimate."""
    n = 300
    acc = np.zeros((n, 3))
    acc[:100] = [0, 0, G]
    gyr = np.zeros((n, 3))
    gyr[100:, 0] = 1.0  # 2 s of 1 rad/s about X
    r = run(acc, gyr, RATE, WEIGHTED)
    assert r.acc_weight[:100].min() == 1.0
    assert r.acc_weight[-1] < 0.5
    expected = rot_x(-2.0) @ np.array([0, 0, 1.0])
    assert angle_deg(r.gravity[-1], expected) < 3.0


def test_static_convergence_from_a_wrong_start():
    n = int(60 * RATE)
    acc = np.tile([0.0, 0.0, G], (n, 1))
    gyr = np.zeros((n, 3))
    wrong = FusionState.from_gravity([1.0, 0.0, 1.0], RATE)  # 45 deg off
    r = run(acc, gyr, RATE, state=wrong)
    err = angle_deg(r.gravity, [0, 0, 1])
    assert err[0] > 40.0
    assert err[int(5 * RATE)] < err[int(1 * RATE)] < err[0]
    assert err[-1] < 0.1
    # second-order Butterworth: a small overshoot (about 4 %), no ringing
    assert err.max() <= err[0] + 1e-9
    assert err[int(10 * RATE) :].max() < 0.05 * 45.0


def test_bias_estimation_recovers_injected_bias():
    bias = np.radians([0.8, -0.5, 0.3])  # deg/s, below the rest threshold
    n = int(40 * RATE)
    rng = np.random.default_rng(3)
    acc = np.tile([0.0, 0.0, G], (n, 1)) + rng.normal(0, 0.02, (n, 3))
    gyr = bias + rng.normal(0, 0.003, (n, 3))
    r = run(acc, gyr, RATE)
    assert not r.rest[: int(1.4 * RATE)].any()  # rest_min_s = 1.5 s
    assert r.rest[int(2 * RATE) :].all()
    assert np.abs(r.state.bias - bias).max() < np.radians(0.02)
    assert np.abs(r.bias[-1] - bias).max() < np.radians(0.02)


def test_bias_is_held_during_motion_and_improves_tracking():
    bias = np.radians([0.0, 0.0, 0.0])
    injected = np.radians([1.0, 0.5, -0.7])
    acc, gyr, up = tumbling_recording(n=int(60 * RATE), bias=injected, still=int(10 * RATE))
    r = run(acc, gyr, RATE, FusionSettings(initial_bias_rad_s=tuple(bias)))
    moving = ~r.rest
    moving[: int(10 * RATE)] = False
    # during motion the estimate is frozen at what rest taught it (integration uses the
    # estimate latched at chunk ends, so it settles within one chunk after rest ends)
    held = r.bias[moving][CHUNK:]
    assert np.ptp(held, axis=0).max() == 0.0
    assert np.abs(held[0] - injected).max() < np.radians(0.05)
    # and it helps: compare with a filter that is not allowed to learn (rest never reached)
    no_rest = FusionSettings(rest_min_s=1e6)
    u_no = gravity(acc, gyr, RATE, no_rest)
    err = angle_deg(r.gravity, up)[int(10 * RATE) :]
    err_no = angle_deg(u_no, up)[int(10 * RATE) :]
    assert np.sqrt(np.mean(err**2)) < 0.7 * np.sqrt(np.mean(err_no**2))


def test_flags_explain_rejection():
    acc, gyr, _ = tumbling_recording(n=1500)
    acc[800:900] *= 2.5  # sustained 1.5 g excess
    r = run(acc, gyr, RATE, WEIGHTED)
    assert r.acc_weight[:700].min() > 0.99
    assert r.acc_weight[899] < 0.6
    assert r.acc_weight.min() >= 0.0 and r.acc_weight.max() <= 1.0


@hsettings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cuts=st.lists(st.integers(0, 700), min_size=0, max_size=12),
    weighted=st.booleans(),
)
def test_batch_equals_streaming_over_random_block_splits(seed, cuts, weighted):
    rng = np.random.default_rng(seed)
    n = 700
    acc, gyr, _ = tumbling_recording(n=n, seed=seed, still=int(rng.integers(0, 400)))
    acc[rng.integers(0, n, 20)] *= 3.0  # some impacts
    settings = WEIGHTED if weighted else FusionSettings()
    batch = run(acc, gyr, RATE, settings)
    bounds = sorted(set([0, n, *cuts]))
    f = GravityFilter(RATE, settings)
    parts, rest = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        res = f.update_detailed(acc[a:b], gyr[a:b])
        parts.append(res.gravity)
        rest.append(res.rest)
        f.update(acc[b:b], gyr[b:b])  # empty blocks change nothing
    stream = np.concatenate(parts)
    assert stream.shape == (n, 3)
    assert np.abs(stream - batch.gravity).max() <= 1e-9
    assert np.array_equal(np.concatenate(rest), batch.rest)
    assert np.abs(f.state.bias - batch.state.bias).max() <= 1e-12


def test_streaming_one_sample_blocks_long_stream():
    """Many blocks of 1 and 10 samples against one batch call (the small-block code path)."""
    acc, gyr, _ = tumbling_recording(n=3000, seed=7, bias=(0.01, 0.0, -0.01))
    batch = gravity(acc, gyr, RATE)
    f = GravityFilter(RATE)
    out = [f.update(acc[i : i + 1], gyr[i : i + 1]) for i in range(500)]
    out += [f.update(acc[i : i + 10], gyr[i : i + 10]) for i in range(500, 3000, 10)]
    assert np.abs(np.concatenate(out) - batch).max() <= 1e-9


def test_long_batch_crosses_internal_segments():
    """Longer than one internal segment: the segment loop carries state exactly like streaming."""
    acc, gyr, _ = tumbling_recording(n=40_000, seed=2)
    batch = gravity(acc, gyr, RATE)
    f = GravityFilter(RATE)
    out = [f.update(acc[i : i + 7000], gyr[i : i + 7000]) for i in range(0, 40_000, 7000)]
    assert np.abs(np.concatenate(out) - batch).max() <= 1e-9


def test_zero_phase_is_separate_and_sane():
    acc, gyr, up = tumbling_recording()
    u = gravity_zero_phase(acc, gyr, RATE)
    assert u.shape == acc.shape and np.isfinite(u).all()
    assert angle_deg(u, up).max() < 1.5
    assert gravity_zero_phase(np.empty((0, 3)), np.empty((0, 3)), RATE).shape == (0, 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tau_acc_s": 0},
        {"tau_acc_s": -1.0},
        {"tau_acc_s": float("nan")},
        {"acc_rejection_m_s2": 0},
        {"rest_min_s": -1},
        {"tau_bias_s": float("inf")},
        {"initial_bias_rad_s": (0, 0)},
        {"initial_bias_rad_s": (0, 0, float("nan"))},
        {"gravity_m_s2": "9.8"},
    ],
)
def test_settings_are_validated(kwargs):
    with pytest.raises(ConfigError):
        FusionSettings(**kwargs)


def test_bad_input_raises_spinemon_errors():
    ok = np.zeros((5, 3))
    with pytest.raises(ConfigError):
        gravity(ok, ok, 0)
    with pytest.raises(ConfigError):
        GravityFilter(float("nan"))
    with pytest.raises(ConfigError):
        gravity(ok, ok, 100.0, FusionSettings(tau_acc_s=0.001))  # cutoff above Nyquist
    for acc, gyr in [(np.zeros((5, 2)), ok), (ok, np.zeros((4, 3))), (np.zeros(3), np.zeros(3)), ("abc", ok)]:
        with pytest.raises(FusionInputError):
            gravity(acc, gyr, 100.0)
    bad = ok.copy()
    bad[2, 1] = np.nan
    with pytest.raises(SpinemonError):
        gravity(bad, ok, 100.0)
    with pytest.raises(FusionInputError):
        FusionState.from_gravity([0, 0, 0], 100.0)


def test_batch_equals_streaming_through_bias_learning_phases():
    """Long rest spells (running mean, then IIR bias phase), motion, impacts; random block sizes.

    The streaming filter takes the per-sample path for short blocks and the chunked path for long
    ones; both must give the batch result.
    """
    rng = np.random.default_rng(11)
    bias = np.radians([0.6, -0.4, 0.3])
    n = 16_000
    acc, gyr, _ = tumbling_recording(n=n, seed=5, bias=tuple(bias), still=0)
    for a, b in [(0, 900), (4000, 7500), (11000, 12500)]:  # rest spells of 9, 35 and 15 s
        acc[a:b] = G * np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.02, (b - a, 3))
        gyr[a:b] = bias + rng.normal(0, 0.003, (b - a, 3))
    acc[rng.integers(0, n, 40)] *= 2.5
    batch = run(acc, gyr, RATE)
    assert batch.rest.sum() > 3 * 500  # beyond the running-mean phase (tau_bias_s * rate samples)
    f = GravityFilter(RATE)
    parts, rests, biases = [], [], []
    i = 0
    while i < n:
        k = int(rng.choice([1, 3, 10, 17, 63, 64, 65, 200, 1500]))
        res = f.update_detailed(acc[i : i + k], gyr[i : i + k])
        parts.append(res.gravity)
        rests.append(res.rest)
        biases.append(res.bias)
        i += k
    assert np.abs(np.concatenate(parts) - batch.gravity).max() <= 1e-9
    assert np.array_equal(np.concatenate(rests), batch.rest)
    assert np.abs(np.concatenate(biases) - batch.bias).max() <= 1e-12
    assert np.abs(f.state.bias - batch.state.bias).max() <= 1e-12
    assert np.abs(batch.state.bias - bias).max() < np.radians(0.05)


def test_lumbar_angle_on_simulated_deadlifts():
    """Causal fusion of the simulated wearer's raw samples (bursts at pull start and lockout,
    gyro bias, mounting error): lumbar flexion within 2 deg RMSE of the sim's truth."""
    from spinemon.core import angles
    from spinemon.io import sim

    session = sim.simulate([sim.SetSpec("deadlift", reps=5, faults={3: "rounding"})], seed=4)
    rate = session.settings.rate_hz
    t0, t1 = session.calibration.neutral
    neutral = (session.t >= t0) & (session.t <= t1)
    u, mounts = {}, {}
    for name, imu in session.imus.items():
        u[name] = gravity(imu.acc, imu.gyr, rate)
        mounts[name] = angles.Mounting.from_neutral(imu.acc[neutral].mean(axis=0))
    la = angles.lumbar_angles(rate, u["upper"], None, u["lower"], None, upper=mounts["upper"], lower=mounts["lower"])
    s = session.sets[0]
    phase = (session.t >= s.t_start) & (session.t <= s.t_end)
    truth = session.lumbar_flexion_deg[phase]
    assert truth.max() > 20.0  # the faulty rep rounds the back
    err = la.flexion_deg[phase] - truth
    assert np.sqrt(np.mean(err**2)) < 2.0
    # the gyro sample is the rate over the period ending at it: shifting it by one sample is worse
    upper = session.imus["upper"]
    shifted = np.concatenate([upper.gyr[1:], upper.gyr[-1:]])
    e_ok = angle_deg(u["upper"], upper.gravity)[phase].mean()
    e_shift = angle_deg(gravity(upper.acc, shifted, rate), upper.gravity)[phase].mean()
    assert e_ok < e_shift


def test_fast_spin_beyond_the_taylor_range():
    """30 rad/s at 100 Hz is 0.15 rad of half-angle per sample: the exact sin/cos branch (both paths)."""
    n = 2000
    rate_x = np.zeros(n)
    rate_x[300:1300] = 30.0 * np.sin(np.linspace(0.0, np.pi, 1000))
    angle = np.concatenate([[0.0], np.cumsum(rate_x[1:]) / RATE])
    up = np.stack([np.zeros(n), np.sin(angle), np.cos(angle)], axis=1)
    acc = G * up
    gyr = np.stack([rate_x, np.zeros(n), np.zeros(n)], axis=1)
    batch = gravity(acc, gyr, RATE)
    assert angle_deg(batch, up).max() < 0.5
    f = GravityFilter(RATE)
    stream = np.concatenate([f.update(acc[i : i + 10], gyr[i : i + 10]) for i in range(0, n, 10)])
    assert np.abs(stream - batch).max() <= 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_stress_shaking_never_flips_and_recovers(seed):
    """8 s of shaking at up to 10 g and 12 rad/s (random axes, 2-6 Hz), then rest at a new tilt.

    With the old trust weight (4 m/s^2) this motion turns gravity upside down
    (error up to ~175 deg); the test below guards the fix.
    """
    m = stress_motion(seed=seed)
    assert np.linalg.norm(m.acc, axis=1).max() > 9.5 * G
    assert np.linalg.norm(m.gyr, axis=1).max() > 11.5
    for u in (gravity(m.acc, m.gyr, m.rate), _streamed(m, 8)):
        err = angle_deg(u, m.up)
        assert err[m.shaking].max() < 5.0  # bounded while shaking
        end = np.flatnonzero(m.shaking)[-1]
        assert err[end + int(3 * m.rate) :].max() < 3.0  # recovered 3 s into the rest
        assert err[-int(m.rate) :].max() < 1.0


def test_stress_shaking_flips_the_optional_trust_weight():
    """The failure the default avoids, kept visible: rejection on, the same motion flips."""
    m = stress_motion(seed=0)
    err = angle_deg(gravity(m.acc, m.gyr, m.rate, WEIGHTED), m.up)
    assert err.max() > 90.0


def _streamed(m, frame):
    f = GravityFilter(m.rate)
    return np.concatenate([f.update(m.acc[i : i + frame], m.gyr[i : i + frame]) for i in range(0, len(m.acc), frame)])


@pytest.mark.parametrize("rate,tau", [(25.0, 3.0), (104.0, 3.0), (285.7, 1.0), (1000.0, 0.5)])
def test_closed_form_butterworth_equals_scipy(rate, tau):
    from scipy import signal

    from spinemon.core.fusion_settings import _butter2_lowpass, _lfilter_zi2

    fc = math.sqrt(2.0) / (2.0 * math.pi * tau)
    b, a = _butter2_lowpass(fc, rate)
    bs, as_ = signal.butter(2, fc, fs=rate)
    assert np.allclose(b, bs, rtol=1e-12, atol=0) and np.allclose(a, as_, rtol=1e-12, atol=1e-15)
    assert np.allclose(_lfilter_zi2(b, a), signal.lfilter_zi(bs, as_), rtol=1e-10)


def test_the_live_path_does_not_import_scipy_signal():
    """scipy.signal costs about a second to import; streaming frames never need it."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from spinemon.app import cli, session, live; from spinemon.core import pipeline\n"
        "from spinemon.core.fusion import GravityFilter\n"
        "from spinemon.core.angles import AngleTracker\n"
        "f = GravityFilter(100.0)\n"
        "for _ in range(20): f.update(np.tile([0, 0, 9.81], (8, 1)), np.zeros((8, 3)))\n"
        "t = AngleTracker(100.0, single_sensor=True)\n"
        "t.update(np.tile([1.0, 0, 0], (8, 1)), np.zeros((8, 3)))\n"
        "print('scipy.signal' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_warm_up_compiles_the_signature_the_filter_uses():
    """spinemon live warms the kernel up before the link comes up: that is only
    worth it if the first frame then finds its types compiled (no second
    compile; with the numpy engine the frames do not call it at all)."""
    require_numba()
    from spinemon.core import fusion_kernel

    fusion_kernel.warm_up()
    step = fusion_kernel.compiled_step()
    before = list(step.signatures)
    f = GravityFilter(RATE)
    f.update(np.tile([0.0, 0.0, G], (8, 1)), np.zeros((8, 3)))
    gravity(np.tile([0.0, 0.0, G], (200, 1)), np.zeros((200, 3)), RATE)
    assert len(before) == 1 and step.signatures == before


def test_the_engine_is_chosen_per_filter_not_per_process():
    """Two filters with different engines side by side each run their own
    (VQF's VQF/PyVQF/BasicVQF choice), and an unknown engine is refused."""
    m = stress_motion(rate=RATE, still_s=1.0, shake_s=2.0, rest_s=1.0, seed=5)
    acc, gyr = m.acc, m.gyr
    a = fusion.GravityFilter(RATE, engine="numpy")
    b = fusion.GravityFilter(RATE, engine="compiled")
    assert (a.engine, b.engine) == ("numpy", "compiled")
    assert np.array_equal(a.update(acc, gyr), fusion.gravity(acc, gyr, RATE, engine="numpy"))
    assert np.array_equal(b.update(acc, gyr), fusion.gravity(acc, gyr, RATE, engine="compiled"))
    for bad in ("fast", None):
        with pytest.raises(ConfigError, match="fusion engine"):
            fusion.GravityFilter(RATE, engine=bad)
        with pytest.raises(ConfigError, match="fusion engine"):
            fusion.run(acc, gyr, RATE, engine=bad)
