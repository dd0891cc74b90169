"""The wearable's guard measures with the host's gravity filter (issue 27).

The guard once had a filter of its own (first-order, 1 s): after each bend
its angle sat up to a degree off the host's, so it crossed a limit a sample
after the host in about a third of the full-chain bench's bends, and the
buzz came 9.6 ms later. Now firmware/guard.py runs the host's filter
(spinemon.core.fusion_kernel) sample by sample; these tests hold the two
equal under MicroPython, and the guard's first sample past a limit on the
host pipeline's."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from fw_helpers import mpy, results
from mpy_runner import FIRMWARE_DIR

from spinemon.core.fusion import FusionSettings, GravityFilter

pytestmark = pytest.mark.micropython

PERIOD_US = 9615  # the LSM6DSO's 104 Hz (firmware/imu/lsm6dso.py)
DT = PERIOD_US / 1e6
G = 9.80665


# The wearer, computed alike by both interpreters (no data to pass): bends
# with steps in the turn rate (as the bench's fake IMUs give them), a wobble on
# the other axes once moving, a gyro bias small enough to be learnt at rest
# (the first 1.9 s are still), a jerk that takes |a| far from g, and a
# deterministic jitter for noise.
WEARER = r"""
import math
def wearer(n, dt):
    g = 9.80665
    rows = []
    th = 0.0
    for k in range(1, n + 1):
        t = k * dt
        rate = 0.0
        for t0 in (2.0, 3.5):
            if t0 < t <= t0 + 0.35:
                rate = 60.0 / 0.35
            elif t0 + 0.8 < t <= t0 + 1.15:
                rate = -60.0 / 0.35
        th += math.radians(rate) * dt
        m = 1.0 if t > 1.9 else 0.0
        j = 0.05 * math.sin(k * 12.9898)
        ax = g * math.cos(th) * (1.6 if 4.7 < t < 4.9 else 1.0) + j
        ay = m * 0.4 * math.sin(3 * t) + 0.7 * j
        az = g * math.sin(th) - j
        gx = m * 0.05 * math.cos(3 * t) + 0.004 + 0.04 * j
        gy = math.radians(rate) - 0.006 + 0.03 * j
        gz = m * 0.02 * math.sin(t) + 0.003
        rows.append((ax, ay, az, gx, gy, gz))
    return rows
"""
N = 520  # 5 s


@pytest.mark.parametrize("tau_s, rejection", [(3.0, 0.0), (1.5, 2.0)])
def test_the_guards_gravity_filter_is_the_hosts_under_micropython(tau_s, rejection):
    script = (
        WEARER
        + "from guard import GravityFilter\nf = GravityFilter(%r, %r)\nout = []\n" % (tau_s, rejection)
        + "for r in wearer(%d, %r):\n" % (N, DT)
        + "    f.update(r[0], r[1], r[2], r[3], r[4], r[5], %r)\n" % DT
        + "    out.append('%r,%r,%r' % (f.ux, f.uy, f.uz))\n"
        + "print('RESULT u=' + ';'.join(out))\n"
        + "print('RESULT bias=%r,%r,%r' % (f.bx, f.by, f.bz))\n"
    )
    res = results(mpy(script))
    device = np.array([[float(v) for v in row.split(",")] for row in res["u"].split(";")])
    space: dict = {}
    exec(WEARER, space)
    rows = np.array(space["wearer"](N, DT))
    settings = FusionSettings(tau_acc_s=tau_s, acc_rejection_m_s2=rejection or None)
    # the host's streaming filter, fed as frames come (short blocks take the per-sample kernel)
    f = GravityFilter(1e6 / PERIOD_US, settings, engine="numpy")
    host = np.concatenate([f.update(rows[i : i + 8, :3], rows[i : i + 8, 3:]) for i in range(0, N, 8)])
    assert device.shape == host.shape == (N, 3)
    worst = float(np.abs(device - host).max())
    assert worst < 1e-9, worst
    # the gyro bias was learnt in the still start (the rest detection runs, not only the integration)
    bias = [float(v) for v in res["bias"].split(",")]
    assert abs(bias[0] - 0.004) < 0.001 and abs(bias[1] + 0.006) < 0.001, bias


def bend_profile(n: int) -> list[tuple[float, float]]:
    """tests/system/test_full_chain.py's bends (importing it costs 2 s): to 60 deg in 0.35 s, held 0.45 s, back, 1.2 s rest."""
    pts, t = [(0.0, 0.0), (0.5, 0.0)], 0.5
    for _ in range(n):
        pts += [(t + 0.35, 60.0), (t + 0.8, 60.0), (t + 1.15, 0.0), (t + 2.35, 0.0)]
        t += 2.35
    return pts


def test_the_guard_crosses_a_limit_on_the_hosts_sample(monkeypatch):
    """The bench's bends (fake IMUs: a rate step at each end of a ramp, which
    the accelerometer then corrects): at every phase of the bend against the
    sample clock the guard's first sample past the limit, and so its buzz,
    is the host pipeline's."""
    from fw_helpers import FAKES

    import spinemon_protocol as P

    monkeypatch.syspath_prepend(str(FAKES))
    from fake_i2c import Tilt

    from spinemon.core.calibration import CalibrationSettings
    from spinemon.core.pipeline import Pipeline, PipelineSettings
    from spinemon.io.device_link import guard_args, neutral_args

    bends = 3
    acc_k, gyr_k = 32768 / (4 * G), 32768 / math.radians(2000)
    spec = importlib.util.spec_from_file_location("spinemon_firmware_guard", FIRMWARE_DIR / "guard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    guard = mod.Guard(True)
    guard.set_scales(4, 2000, PERIOD_US)
    pipeline = Pipeline(PipelineSettings(exercise="generic", calibration=CalibrationSettings(rom=False)))
    still, motion, t_motion, t_end = Tilt([(0.0, 0.0)]), None, 0.0, math.inf
    guard_first: list[int] = []
    device: dict[int, float] = {}
    host: dict[int, float] = {}
    k = 0
    while k * DT < t_end:
        block = []
        for _ in range(8):
            k += 1
            t = k * DT
            au, gu = still(t) if motion is None else motion(t - t_motion)
            al, gl = still(t)
            up = [round(v * acc_k) for v in au] + [round(v * gyr_k) for v in gu]
            low = [round(v * acc_k) for v in al] + [round(v * gyr_k) for v in gl]
            was = guard.flexion.start_from
            guard.update(up, low, int(t * 1000), False)
            if was is None and guard.flexion.start_from is not None:
                guard_first.append(k)
            block += up + low + [guard.angle_cdeg]
            if motion is not None:
                device[k] = guard.angle_cdeg / 100.0
        frame = P.encode_samples(k - 8, int((k - 7) * PERIOD_US), PERIOD_US, 3, P.ranges_byte(4, 2000), 0, 8, P.pack_values(block))
        res = pipeline.on_frame(frame, k * DT)
        if res.angles is not None and motion is not None:
            host.update(zip((round(t * 1e6 / PERIOD_US) for t in res.t.tolist()), res.angles.flexion_deg.tolist()))
        if res.calibrated is not None and motion is None:
            pipeline.on_label({"set": 1, "exercise": "generic"})
            n = neutral_args(pipeline.calibration)
            guard.set_calibration(n[0] * math.pi / 18000, n[1] * math.pi / 18000)
            guard.set_thresholds(*guard_args(pipeline.limits, P.GUARD_ALWAYS))
            profile = bend_profile(bends)
            motion, t_motion = Tilt(profile), k * DT + 0.37 * DT
            t_end = t_motion + profile[-1][0]
    host_first = [round(e.t_start * 1e6 / PERIOD_US) for e in pipeline.events]
    assert len(host_first) == bends
    assert guard_first == host_first
    # the same angle throughout, not only at the crossings (the old filter: up to 1.3 deg off after a bend)
    common = sorted(set(device) & set(host))
    assert len(common) > 600
    worst = max(abs(device[i] - host[i]) for i in common)
    assert worst < 0.1, worst
