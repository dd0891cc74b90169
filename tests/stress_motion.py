"""Synthetic stress motion with known truth: hard shaking (up to ~10 g, ~12 rad/s), then rest.

The orientation is an analytic function of time; the gyro sample k is the exact
body rate over the period ending at k (the convention of the fusion core), the
accelerometer reads ``R_k^T (a_lin + g z)``. So the true gravity direction in the
sensor frame is ``R_k^T z`` at every sample, whatever the motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinemon.core.fusion import G


@dataclass(frozen=True)
class StressMotion:
    acc: np.ndarray  # (N, 3) m/s^2, sensor frame
    gyr: np.ndarray  # (N, 3) rad/s, sensor frame
    up: np.ndarray  # (N, 3) true gravity direction (up) in the sensor frame
    rate: float
    shaking: np.ndarray  # (N,) bool, True while shaking


def _qmul(a, b):
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def _rotvec_to_quat(v):
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    with np.errstate(invalid="ignore", divide="ignore"):
        axis = np.where(angle > 1e-15, v / angle, 0.0)
    return np.concatenate([np.cos(half), axis * np.sin(half)], axis=-1)


def _quat_to_rotvec(q):
    q = q * np.where(q[..., :1] < 0, -1.0, 1.0)
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 1e-15, q[..., 1:] * angle / s, 2.0 * q[..., 1:])


def _rotate_inverse(q, v):
    """R(q)^T v for sensor->world quaternions q."""
    qc = q * np.array([1.0, -1.0, -1.0, -1.0])
    vq = np.concatenate([np.zeros(v.shape[:-1] + (1,)), v], axis=-1)
    return _qmul(_qmul(qc, vq), q)[..., 1:]


def stress_motion(
    *,
    rate: float = 200.0,
    still_s: float = 3.0,
    shake_s: float = 8.0,
    rest_s: float = 8.0,
    peak_acc_g: float = 10.0,
    peak_gyr_rad_s: float = 12.0,
    seed: int = 0,
    gyro_noise_rad_s: float = 0.01,
    acc_noise_m_s2: float = 0.05,
) -> StressMotion:
    """Still, then ``shake_s`` of shaking at a few Hz (random axes and phases), then rest at a new tilt."""
    rng = np.random.default_rng(seed)
    n_still, n_shake, n_rest = (int(round(x * rate)) for x in (still_s, shake_s, rest_s))
    n = n_still + n_shake + n_rest
    t = np.arange(n) / rate
    ts = np.clip(t - still_s, 0.0, shake_s)  # time inside the shaking phase
    edge = np.clip(np.minimum(ts, shake_s - ts) / 0.5, 0.0, 1.0)
    env = np.sin(0.5 * np.pi * edge) ** 2  # 0.5 s smooth on and off, full strength in between
    # rotation vector: a slow tilt to a new resting pose, plus oscillations of 2-5 Hz
    final = rng.normal(size=3)
    final *= np.radians(rng.uniform(20.0, 60.0)) / np.linalg.norm(final)
    ramp = ts / shake_s
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)
    wobble = np.zeros((n, 3))
    for _ in range(3):
        f = rng.uniform(2.0, 5.0)
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        wobble += (env * np.sin(2.0 * np.pi * f * ts + rng.uniform(0, 2 * np.pi)) / f)[:, None] * axis
    # scale the wobble so the body rate peaks at peak_gyr_rad_s (two passes: the map is nearly linear)
    scale = 1.0
    for _ in range(2):
        q = _rotvec_to_quat(ramp[:, None] * final + scale * wobble)
        peak = np.linalg.norm(_quat_to_rotvec(_qmul(q[:-1] * np.array([1.0, -1.0, -1.0, -1.0]), q[1:])), axis=1).max() * rate
        scale *= peak_gyr_rad_s / peak
    q = _rotvec_to_quat(ramp[:, None] * final + scale * wobble)
    # linear acceleration in the world frame: position oscillations of 2-6 Hz (bounded velocity)
    a_lin = np.zeros((n, 3))
    for _ in range(3):
        f = rng.uniform(2.0, 6.0)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        a_lin += (env * np.sin(2.0 * np.pi * f * ts + rng.uniform(0, 2 * np.pi)))[:, None] * direction
    a_lin *= peak_acc_g * G / np.linalg.norm(a_lin, axis=1).max()
    z = np.array([0.0, 0.0, 1.0])
    up = _rotate_inverse(q, np.broadcast_to(z, (n, 3)))
    acc = _rotate_inverse(q, a_lin + G * z) + rng.normal(scale=acc_noise_m_s2, size=(n, 3))
    dq = _qmul(q[:-1] * np.array([1.0, -1.0, -1.0, -1.0]), q[1:])  # body-frame step from k-1 to k
    gyr = np.zeros((n, 3))
    gyr[1:] = _quat_to_rotvec(dq) * rate
    gyr += rng.normal(scale=gyro_noise_rad_s, size=(n, 3))
    shaking = (t >= still_s) & (t < still_s + shake_s)
    return StressMotion(acc=acc, gyr=gyr, up=up, rate=rate, shaking=shaking)
