"""The NON-CAUSAL gravity direction (a zero-phase low-pass), for replay
analysis in the tests and benchmarks only: it uses future samples, so it can
never run live, and nothing in the installed package needs it (it moved here
from ``spinemon.core.fusion``)."""

from __future__ import annotations

import math

import numpy as np

from spinemon.core.fusion import FusionSettings, run
from spinemon.core.fusion_numpy import _delta_quats, _quat_scan, _rotation_rows
from spinemon.core.fusion_settings import _check_rate, _check_samples, _coefficients

__all__ = ["gravity_zero_phase"]


def gravity_zero_phase(
    acc: object,
    gyr: object,
    rate: float,
    settings: FusionSettings | None = None,
) -> np.ndarray:
    """NON-CAUSAL gravity direction for replay analysis only (never live).

    Same as :func:`spinemon.core.fusion.gravity`, but the accelerometer low-pass in the
    gyro-integrated frame runs forward and backward (zero phase, so no lag;
    a first-order Butterworth each way). Gyro bias and accelerometer weights
    are those of the causal pass. Uses future samples.
    """
    from scipy import signal  # replay analysis only

    settings = settings or FusionSettings()
    rate = _check_rate(rate)
    acc, gyr = _check_samples(acc, gyr)
    n = acc.shape[0]
    if n == 0:
        return np.empty((0, 3))
    co = _coefficients(rate, settings)
    causal = run(acc, gyr, rate, settings)
    bias = causal.bias
    dq = _delta_quats(gyr - bias, co.half_dt)
    p = _quat_scan(dq, np.array([1.0, 0.0, 0.0, 0.0]))
    weight = causal.acc_weight
    r0, r1, r2 = _rotation_rows(p)
    ax, ay, az = acc[:, 0] * weight, acc[:, 1] * weight, acc[:, 2] * weight
    b_i = np.stack(
        [
            r0[0] * ax + r0[1] * ay + r0[2] * az,
            r1[0] * ax + r1[1] * ay + r1[2] * az,
            r2[0] * ax + r2[1] * ay + r2[2] * az,
        ],
        axis=1,
    )
    # a first-order Butterworth forward and backward ~ the causal second order's magnitude
    b1, a1 = signal.butter(1, math.sqrt(2.0) / (2.0 * math.pi * settings.tau_acc_s), fs=rate)
    zi = signal.lfilter_zi(b1, a1)[:, None]
    fwd, _ = signal.lfilter(b1, a1, b_i, axis=0, zi=zi * b_i[0])
    h, _ = signal.lfilter(b1, a1, fwd[::-1], axis=0, zi=zi * fwd[-1])
    h = h[::-1]
    u = np.stack(
        [
            r0[0] * h[:, 0] + r1[0] * h[:, 1] + r2[0] * h[:, 2],
            r0[1] * h[:, 0] + r1[1] * h[:, 1] + r2[1] * h[:, 2],
            r0[2] * h[:, 0] + r1[2] * h[:, 1] + r2[2] * h[:, 2],
        ],
        axis=1,
    )
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    bad = ~(norm[:, 0] > 1e-150)
    norm[bad] = 1.0
    u = u / norm
    u[bad] = causal.gravity[bad]
    return u
