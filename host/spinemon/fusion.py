"""Fusion core: the gravity direction of one IMU, in its sensor frame.

A complementary filter that tracks the *gravity direction* (not Euler angles)
from a gyroscope (rad/s) and an accelerometer (m/s^2). Conventions follow
docs/architecture.md: the result is a unit vector ``u`` in the sensor frame
that points the way the accelerometer points at rest (up, away from earth).

How it works (the same structure as VQF's inclination part, Laidig & Seel
2023, written so that numpy does the work and no Python loop runs per sample):

1. **Rest detection** (causal): a sample is a rest candidate when ``|gyr|``
   is below ``rest_gyr_deg_s`` and ``|a|`` is within ``rest_acc_m_s2`` of g;
   *rest* means candidates for at least ``rest_min_s`` without a break (run
   length via a running maximum, carried across blocks).
2. **Gyro bias** (causal): an estimate fed only by rest samples - a running
   mean for the first ``tau_bias_s`` of rest, then a first-order IIR with time
   constant ``tau_bias_s`` - held during motion. Sample k is integrated with
   the estimate from samples before k.
3. **Strapdown integration**: the bias-corrected gyro is integrated into
   quaternions ``P_k`` (sensor orientation relative to an almost-inertial
   frame I fixed at the start of the stream) with a chunked parallel prefix
   product (O(sqrt N) Python iterations, each vectorised across chunks).
4. **Accelerometer low-pass in I**: each accelerometer sample is rotated into
   I (``b_k = P_k a_k``), weighted by the trust ``w_k`` (1 while ``| |a_k| - g |``
   is within ``acc_rejection_m_s2``, falling off as the inverse square of
   the excess beyond it) and low-passed with a second-order Butterworth
   filter with time constant ``tau_acc_s`` (``scipy.signal.lfilter`` with the
   state carried in ``zi``). The gravity direction is ``normalize(P_k^T h_k)``.

Entry points: :func:`gravity` (batch, unit vectors), :func:`run` (batch with
flags and the final :class:`FusionState`), :class:`GravityFilter`
(streaming, block by block). Batch and streaming agree to ~1e-12 for any
block split; :func:`gravity_zero_phase` is a separate, non-causal variant for
replay analysis only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import signal

from spinemon.errors import ConfigError, SpinemonError

__all__ = [
    "G",
    "FusionSettings",
    "FusionState",
    "FusionResult",
    "FusionInputError",
    "GravityFilter",
    "gravity",
    "run",
    "gravity_zero_phase",
]

G = 9.80665
"""Standard gravity, m/s^2."""

_DEFAULT_UP = (1.0, 0.0, 0.0)  # nominal mounting, standing: sensor +X is up


class FusionInputError(SpinemonError, ValueError):
    """Sample arrays given to the fusion core have the wrong shape or are not finite."""


@dataclass(frozen=True)
class FusionSettings:
    """Fusion parameters, all in physical units (the sample rate is passed separately).

    Attributes:
        tau_acc_s: time constant of the accelerometer correction (second-order
            Butterworth low-pass in the gyro-integrated frame), s. VQF uses 3 s.
        acc_rejection_m_s2: how far ``|a|`` may depart from ``gravity_m_s2``
            before trust in the accelerometer drops, m/s^2. Beyond it the
            weight falls as ``(threshold / deviation)**2``.
        rest_gyr_deg_s: a rest candidate has ``|gyr|`` below this, deg/s (so a gyro
            bias larger than this cannot be learnt at rest: set ``initial_bias_rad_s``).
        rest_acc_m_s2: a rest candidate has ``| |a| - g |`` below this, m/s^2.
        rest_min_s: the rest conditions must hold this long before a sample counts as rest, s.
        tau_bias_s: time constant of the gyro-bias estimate (over rest samples only), s.
        initial_bias_rad_s: gyro bias assumed until the first rest, rad/s (x, y, z).
        gravity_m_s2: magnitude of gravity, m/s^2.
    """

    tau_acc_s: float = 3.0
    acc_rejection_m_s2: float = 4.0
    acc_rejection_tau_s: float = 3.0
    rest_gyr_deg_s: float = 2.0
    rest_acc_m_s2: float = 0.5
    rest_min_s: float = 1.5
    tau_bias_s: float = 5.0
    initial_bias_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gravity_m_s2: float = G

    def __post_init__(self) -> None:
        positive = {
            "tau_acc_s": self.tau_acc_s,
            "acc_rejection_m_s2": self.acc_rejection_m_s2,
            "acc_rejection_tau_s": self.acc_rejection_tau_s,
            "rest_gyr_deg_s": self.rest_gyr_deg_s,
            "rest_acc_m_s2": self.rest_acc_m_s2,
            "tau_bias_s": self.tau_bias_s,
            "gravity_m_s2": self.gravity_m_s2,
        }
        for name, value in positive.items():
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"FusionSettings.{name} must be a finite number > 0, got {value!r}")
        if not _is_real(self.rest_min_s) or not math.isfinite(self.rest_min_s) or self.rest_min_s < 0:
            raise ConfigError(f"FusionSettings.rest_min_s must be a finite number >= 0, got {self.rest_min_s!r}")
        try:
            bias = tuple(float(v) for v in self.initial_bias_rad_s)
        except (TypeError, ValueError):
            raise ConfigError(f"FusionSettings.initial_bias_rad_s must be 3 numbers, got {self.initial_bias_rad_s!r}") from None
        if len(bias) != 3 or not all(math.isfinite(v) for v in bias):
            raise ConfigError(f"FusionSettings.initial_bias_rad_s must be 3 finite numbers, got {self.initial_bias_rad_s!r}")
        object.__setattr__(self, "initial_bias_rad_s", bias)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass
class FusionState:
    """Everything the filter carries from one block to the next.

    Attributes:
        samples: number of samples processed so far.
        quat: (4,) w, x, y, z: sensor orientation relative to the frame I of the
            start of the stream (integrated, bias-corrected gyro). Not unit-norm
            exactly; only its direction matters.
        acc_lp_zi: (2, 3) state of the Butterworth low-pass of the weighted
            accelerometer in frame I (``scipy.signal.lfilter`` ``zi``).
        gravity: (3,) last gravity direction (unit, sensor frame).
        acc_dev_ms: low-passed squared deviation of ``|a|`` from g, (m/s^2)^2.
        rest_run: how many consecutive rest candidates end the stream so far.
        bias: (3,) current gyro-bias estimate, rad/s.
        bias_count: number of rest samples that have fed the bias estimate.
    """

    samples: int
    quat: np.ndarray
    acc_lp_zi: np.ndarray
    gravity: np.ndarray
    acc_dev_ms: float
    rest_run: int
    bias: np.ndarray
    bias_count: int

    @classmethod
    def from_gravity(
        cls,
        up: object,
        rate: float,
        settings: FusionSettings | None = None,
        bias: object = None,
    ) -> "FusionState":
        """A state at rest whose gravity direction is ``up`` (sensor frame, any length > 0).

        Use it to start the filter from a known (or deliberately wrong) direction;
        without it the filter starts from the first accelerometer sample.
        ``bias`` (rad/s) overrides ``settings.initial_bias_rad_s``.
        """
        settings = settings or FusionSettings()
        coeffs = _coefficients(_check_rate(rate), settings)
        u = np.asarray(up, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(u)) if u.shape == (3,) else 0.0
        if u.shape != (3,) or not math.isfinite(norm) or norm == 0.0:
            raise FusionInputError(f"initial gravity direction must be a finite non-zero 3-vector, got {up!r}")
        u = u / norm
        b = np.array(settings.initial_bias_rad_s if bias is None else bias, dtype=np.float64).reshape(-1)
        if b.shape != (3,) or not np.isfinite(b).all():
            raise FusionInputError(f"initial bias must be 3 finite numbers, got {bias!r}")
        g = settings.gravity_m_s2
        return cls(
            samples=0,
            quat=np.array([1.0, 0.0, 0.0, 0.0]),
            acc_lp_zi=coeffs.acc_zi_unit[:, None] * (g * u)[None, :],
            gravity=u.copy(),
            acc_dev_ms=0.0,
            rest_run=0,
            bias=b,
            bias_count=0,
        )

    def copy(self) -> "FusionState":
        """A deep copy (arrays are copied)."""
        return FusionState(
            samples=self.samples,
            quat=self.quat.copy(),
            acc_lp_zi=self.acc_lp_zi.copy(),
            gravity=self.gravity.copy(),
            acc_dev_ms=self.acc_dev_ms,
            rest_run=self.rest_run,
            bias=self.bias.copy(),
            bias_count=self.bias_count,
        )


@dataclass
class FusionResult:
    """Output of :func:`run`: gravity plus the flags that explain it.

    Attributes:
        gravity: (N, 3) unit gravity direction, sensor frame.
        rest: (N,) bool, the sample counted as rest (fed the bias estimate).
        acc_weight: (N,) trust in the accelerometer sample, 0..1.
        bias: (N, 3) gyro bias (rad/s) subtracted from each sample.
        state: the state after the last sample (pass it to continue).
    """

    gravity: np.ndarray
    rest: np.ndarray
    acc_weight: np.ndarray
    bias: np.ndarray
    state: FusionState = field(repr=False)


# ---------------------------------------------------------------- coefficients


@dataclass(frozen=True)
class _Coefficients:
    dt: float
    half_dt: float
    acc_b: np.ndarray  # Butterworth, tau_acc
    acc_a: np.ndarray
    acc_zi_unit: np.ndarray  # steady-state zi for a unit step
    rest_gyr_th2: float
    rest_acc_th2: float
    rest_min_n: int
    bias_alpha: float
    bias_mean_n: int
    g: float
    rej2: float
    rej_k: float
    rej_b: np.ndarray
    rej_a: np.ndarray


@lru_cache(maxsize=32)
def _coefficients(rate: float, settings: FusionSettings) -> _Coefficients:
    dt = 1.0 / rate
    fc = math.sqrt(2.0) / (2.0 * math.pi * settings.tau_acc_s)  # as VQF
    if fc >= 0.5 * rate:
        raise ConfigError(f"tau_acc_s={settings.tau_acc_s} is too short for a sample rate of {rate} Hz")
    b, a = signal.butter(2, fc, fs=rate)
    rej_k = 1.0 - math.exp(-dt / settings.acc_rejection_tau_s)
    return _Coefficients(
        dt=dt,
        half_dt=0.5 * dt,
        acc_b=b,
        acc_a=a,
        acc_zi_unit=signal.lfilter_zi(b, a),
        rest_gyr_th2=math.radians(settings.rest_gyr_deg_s) ** 2,
        rest_acc_th2=settings.rest_acc_m_s2**2,
        rest_min_n=max(1, int(round(settings.rest_min_s * rate))),
        bias_alpha=1.0 - math.exp(-dt / settings.tau_bias_s),
        bias_mean_n=max(1, int(round(settings.tau_bias_s * rate))),
        g=settings.gravity_m_s2,
        rej2=settings.acc_rejection_m_s2**2,
        rej_k=rej_k,
        rej_b=np.array([rej_k]),
        rej_a=np.array([1.0, rej_k - 1.0]),
    )


def _check_rate(rate: object) -> float:
    if not _is_real(rate) or not math.isfinite(rate) or rate <= 0:
        raise ConfigError(f"sample rate must be a finite number > 0 Hz, got {rate!r}")
    return float(rate)


def _check_samples(acc: object, gyr: object) -> tuple[np.ndarray, np.ndarray]:
    try:
        acc = np.asarray(acc, dtype=np.float64)
        gyr = np.asarray(gyr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FusionInputError(f"samples must be numeric arrays: {exc}") from None
    if acc.ndim != 2 or acc.shape[1] != 3 or gyr.ndim != 2 or gyr.shape[1] != 3:
        raise FusionInputError(f"acc and gyr must have shape (N, 3), got {acc.shape} and {gyr.shape}")
    if acc.shape[0] != gyr.shape[0]:
        raise FusionInputError(f"acc and gyr must have the same length, got {acc.shape[0]} and {gyr.shape[0]}")
    # a finite sum means every term is finite; otherwise check element-wise (the sum may just overflow)
    finite = math.isfinite(float(acc.sum())) and math.isfinite(float(gyr.sum()))
    if not finite and not (np.isfinite(acc).all() and np.isfinite(gyr).all()):
        raise FusionInputError("acc and gyr must be finite (NaN or inf found)")
    return acc, gyr


# ---------------------------------------------------------------- quaternions


def _qmul(a, b):
    """Hamilton product of quaternions given as 4 component arrays (broadcasting)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


_SHORT_SCAN = 24  # up to this many quaternions, a plain loop beats the vectorised scan


def _quat_scan_short(dq: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """The same prefix product for a few quaternions (small streaming blocks, chunk totals)."""
    out = np.empty_like(dq)
    aw, ax, ay, az = (float(v) for v in q0)
    for i, (bw, bx, by, bz) in enumerate(dq.T.tolist()):
        aw, ax, ay, az = (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        )
        out[:, i] = (aw, ax, ay, az)
    return out


_SCAN_CHUNK = 8  # samples per chunk in the vectorised scan


def _quat_scan(dq: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """Inclusive prefix product ``P_k = q0 * dq_0 * ... * dq_k`` for dq of shape (4, N).

    Chunked scan: split into C chunks of L = 8 consecutive samples, scan inside
    all chunks at once (L - 1 steps, each a handful of numpy calls on C-long
    contiguous arrays), prefix the chunk totals (recursively, down to a short
    loop over at most 24 totals), then combine. Python iterations grow as
    O(log N), never per sample.
    """
    n = dq.shape[1]
    if n <= _SHORT_SCAN:
        return _quat_scan_short(dq, q0)
    length = _SCAN_CHUNK
    chunks = -(-n // length)
    pad = chunks * length - n
    if pad:
        ident = np.zeros((4, pad))
        ident[0] = 1.0
        dq = np.concatenate([dq, ident], axis=1)
    # (4, L, C) layout: position-in-chunk major, so each step reads contiguous lanes
    d = np.ascontiguousarray(dq.reshape(4, chunks, length).transpose(0, 2, 1))
    q = np.empty_like(d)
    q[:, 0] = d[:, 0]
    t = np.empty(chunks)
    for i in range(1, length):
        aw, ax, ay, az = q[:, i - 1]
        bw, bx, by, bz = d[:, i]
        ow, ox, oy, oz = q[:, i]
        np.multiply(aw, bw, out=ow)
        ow -= np.multiply(ax, bx, out=t)
        ow -= np.multiply(ay, by, out=t)
        ow -= np.multiply(az, bz, out=t)
        np.multiply(aw, bx, out=ox)
        ox += np.multiply(ax, bw, out=t)
        ox += np.multiply(ay, bz, out=t)
        ox -= np.multiply(az, by, out=t)
        np.multiply(aw, by, out=oy)
        oy -= np.multiply(ax, bz, out=t)
        oy += np.multiply(ay, bw, out=t)
        oy += np.multiply(az, bx, out=t)
        np.multiply(aw, bz, out=oz)
        oz += np.multiply(ax, by, out=t)
        oz -= np.multiply(ay, bx, out=t)
        oz += np.multiply(az, bw, out=t)
    # exclusive prefix of the chunk totals, starting from q0
    incl = _quat_scan(q[:, -1], q0)
    starts = np.concatenate([q0[:, None], incl[:, :-1]], axis=1)
    # combine: P = start_of_chunk * Q, written back in time order
    out = np.empty((4, chunks, length))
    ew, ex, ey, ez = starts[:, None, :]
    qw, qx, qy, qz = q
    tt = np.empty((length, chunks))
    for comp, terms in enumerate(
        (
            ((ew, qw, 1), (ex, qx, -1), (ey, qy, -1), (ez, qz, -1)),
            ((ew, qx, 1), (ex, qw, 1), (ey, qz, 1), (ez, qy, -1)),
            ((ew, qy, 1), (ex, qz, -1), (ey, qw, 1), (ez, qx, 1)),
            ((ew, qz, 1), (ex, qy, 1), (ey, qx, -1), (ez, qw, 1)),
        )
    ):
        acc = np.multiply(terms[0][0], terms[0][1])
        for e_c, q_c, sign in terms[1:]:
            np.multiply(e_c, q_c, out=tt)
            if sign > 0:
                acc += tt
            else:
                acc -= tt
        out[comp] = acc.T
    return out.reshape(4, chunks * length)[:, :n]


def _delta_quats(omega: np.ndarray, half_dt: float) -> np.ndarray:
    """(4, N) rotation quaternions for body rates omega (N, 3) over one sample."""
    hx = omega[:, 0] * half_dt
    hy = omega[:, 1] * half_dt
    hz = omega[:, 2] * half_dt
    h2 = hx * hx + hy * hy + hz * hz  # (theta/2)^2
    # cos(t) and sin(t)/t by Taylor series, exact to < 1e-16 for t < 0.02 rad
    # (7 deg/sample); larger angles take the exact route.
    c = 1.0 - h2 * (0.5 - h2 * (1.0 / 24.0 - h2 * (1.0 / 720.0)))
    s = 1.0 - h2 * (1.0 / 6.0 - h2 * (1.0 / 120.0 - h2 * (1.0 / 5040.0)))
    big = h2 > 4e-4
    if big.any():
        t = np.sqrt(h2[big])
        c[big] = np.cos(t)
        s[big] = np.sin(t) / t
    return np.stack([c, s * hx, s * hy, s * hz])


def _rotation_rows(p: np.ndarray):
    """Rotation matrix entries of (4, N) quaternions, scaled by |p|^2 (homogeneous form)."""
    w, x, y, z = p
    ww, xx, yy, zz = w * w, x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    r00 = ww + xx - yy - zz
    r11 = ww - xx + yy - zz
    r22 = ww - xx - yy + zz
    r01 = 2.0 * (xy - wz)
    r10 = 2.0 * (xy + wz)
    r02 = 2.0 * (xz + wy)
    r20 = 2.0 * (xz - wy)
    r12 = 2.0 * (yz - wx)
    r21 = 2.0 * (yz + wx)
    return (r00, r01, r02), (r10, r11, r12), (r20, r21, r22)


# ---------------------------------------------------------------- the filter

_SEGMENT = 16384  # samples per internal step: keeps the working set in cache


def _initial_state(acc: np.ndarray, rate: float, settings: FusionSettings) -> FusionState:
    """Start at rest, gravity along the first usable accelerometer sample."""
    head = acc[:4096]
    usable = np.flatnonzero(np.einsum("ij,ij->i", head, head) > (0.1 * settings.gravity_m_s2) ** 2)
    up = head[usable[0]] if usable.size else np.array(_DEFAULT_UP)
    return FusionState.from_gravity(up, rate, settings)


def run(
    acc: object,
    gyr: object,
    rate: float,
    settings: FusionSettings | None = None,
    state: FusionState | None = None,
) -> FusionResult:
    """Fuse a block of samples; the batch entry point with flags and the final state.

    Args:
        acc: (N, 3) accelerometer, m/s^2, sensor frame.
        gyr: (N, 3) gyroscope, rad/s, sensor frame.
        rate: sample rate, Hz.
        settings: filter settings (defaults: :class:`FusionSettings`).
        state: state to continue from (not modified); ``None`` starts at rest
            with gravity along the first accelerometer sample.

    Returns:
        A :class:`FusionResult`; ``result.state`` continues the stream.

    Raises:
        ConfigError: bad rate or settings.
        FusionInputError: arrays of the wrong shape, different lengths or non-finite values.
    """
    settings = settings or FusionSettings()
    rate = _check_rate(rate)
    acc, gyr = _check_samples(acc, gyr)
    return _run_checked(acc, gyr, rate, settings, state)


def _run_checked(acc: np.ndarray, gyr: np.ndarray, rate: float, settings: FusionSettings, state: FusionState | None) -> FusionResult:
    co = _coefficients(rate, settings)
    n = acc.shape[0]
    if state is None:
        state = _initial_state(acc, rate, settings) if n else FusionState.from_gravity(_DEFAULT_UP, rate, settings)
    out_u = np.empty((n, 3))
    out_rest = np.empty(n, dtype=bool)
    out_w = np.empty(n)
    out_bias = np.empty((n, 3))
    state = state.copy()
    for s in range(0, n, _SEGMENT):
        e = min(n, s + _SEGMENT)
        _step(acc[s:e], gyr[s:e], co, state, out_u[s:e], out_rest[s:e], out_w[s:e], out_bias[s:e])
    return FusionResult(gravity=out_u, rest=out_rest, acc_weight=out_w, bias=out_bias, state=state)


def _step(acc, gyr, co: _Coefficients, state: FusionState, out_u, out_rest, out_w, out_bias) -> None:
    """Fuse one segment (n >= 1), writing into the output views and updating ``state`` in place."""
    n = acc.shape[0]

    # accelerometer magnitude: trust weight and rest condition share it
    dev = np.sqrt(np.einsum("ij,ij->i", acc, acc))
    dev -= co.g
    dev *= dev  # (|a| - g)^2
    ms, zf_ms = signal.lfilter(co.rej_b, co.rej_a, dev, zi=np.array([(1.0 - co.rej_k) * state.acc_dev_ms]))
    weight = np.maximum(ms, co.rej2, out=out_w)
    np.divide(co.rej2, weight, out=weight)

    # 1. rest: gyro and |a| near 1 g, held for rest_min_n samples in a row
    cand = np.einsum("ij,ij->i", gyr, gyr) < co.rest_gyr_th2
    cand &= dev < co.rest_acc_th2
    idx = np.arange(n)
    last_break = np.maximum.accumulate(np.where(cand, -1 - state.rest_run, idx))
    run_len = idx - last_break
    rest = np.greater_equal(run_len, co.rest_min_n, out=out_rest)

    # 2. gyro bias from rest samples only (running mean, then IIR), held during motion;
    #    sample k is integrated with the estimate from samples before k
    m = int(np.count_nonzero(rest))
    c0 = state.bias_count
    if m == 0:
        out_bias[:] = state.bias
        omega = gyr - state.bias
    else:
        x = gyr[rest]
        y = np.empty((m, 3))
        n_mean = min(m, max(0, co.bias_mean_n - c0))
        if n_mean:
            counts = np.arange(c0 + 1, c0 + n_mean + 1, dtype=np.float64)[:, None]
            y[:n_mean] = (c0 * state.bias + np.cumsum(x[:n_mean], axis=0)) / counts
        if m > n_mean:
            prev = y[n_mean - 1] if n_mean else state.bias
            al = co.bias_alpha
            y[n_mean:], _ = signal.lfilter([al], [1.0, al - 1.0], x[n_mean:], axis=0, zi=((1.0 - al) * prev)[None, :])
        bias_hist = np.concatenate([state.bias[None, :], y])
        n_before = np.cumsum(rest)
        n_before -= rest
        np.take(bias_hist, n_before, axis=0, out=out_bias)
        omega = gyr - out_bias
        state.bias = y[-1].copy()
        state.bias_count = c0 + m

    # 3. strapdown integration of the bias-corrected gyro
    p = _quat_scan(_delta_quats(omega, co.half_dt), state.quat)

    # 4. accelerometer in I, weighted, low-passed; back to the sensor frame
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = _rotation_rows(p)
    ax = acc[:, 0] * weight
    ay = acc[:, 1] * weight
    az = acc[:, 2] * weight
    b_i = np.empty((n, 3))
    b_i[:, 0] = r00 * ax + r01 * ay + r02 * az
    b_i[:, 1] = r10 * ax + r11 * ay + r12 * az
    b_i[:, 2] = r20 * ax + r21 * ay + r22 * az
    h, zf = signal.lfilter(co.acc_b, co.acc_a, b_i, axis=0, zi=state.acc_lp_zi)
    hx, hy, hz = h[:, 0], h[:, 1], h[:, 2]
    u = out_u
    u[:, 0] = r00 * hx + r10 * hy + r20 * hz
    u[:, 1] = r01 * hx + r11 * hy + r21 * hz
    u[:, 2] = r02 * hx + r12 * hy + r22 * hz
    norm = np.sqrt(np.einsum("ij,ij->i", u, u))
    good = norm > 1e-150
    if good.all():
        u /= norm[:, None]
    else:  # degenerate (h decayed to 0): hold the last good direction
        u[good] /= norm[good, None]
        last = np.maximum.accumulate(np.where(good, idx, -1))
        held = np.concatenate([state.gravity[None, :], u])
        u[:] = held[last + 1]

    q_end = p[:, -1]
    state.samples += n
    state.quat = q_end / math.sqrt(float(q_end @ q_end))
    state.acc_lp_zi = zf
    state.gravity = u[-1].copy()
    state.acc_dev_ms = float(ms[-1])
    state.rest_run = int(run_len[-1])


def gravity(
    acc: object,
    gyr: object,
    rate: float,
    settings: FusionSettings | None = None,
) -> np.ndarray:
    """Gravity direction (N, 3), unit vectors in the sensor frame (causal, batch).

    ``acc`` (N, 3) m/s^2, ``gyr`` (N, 3) rad/s, ``rate`` Hz. Zero-length input
    gives shape (0, 3). See :func:`run` for flags and the final state.
    """
    return run(acc, gyr, rate, settings).gravity


class GravityFilter:
    """Streaming form of :func:`run`: feed blocks of any size, state carries across.

    >>> f = GravityFilter(rate=104.0)
    >>> u = f.update(acc_block, gyr_block)   # (n, 3)

    The output equals :func:`gravity` on the concatenated input (to ~1e-12).
    """

    def __init__(self, rate: float, settings: FusionSettings | None = None, state: FusionState | None = None):
        self.rate = _check_rate(rate)
        self.settings = settings or FusionSettings()
        _coefficients(self.rate, self.settings)  # validate early
        self.state: FusionState | None = state.copy() if state is not None else None
        self.last_result: FusionResult | None = None

    def update(self, acc: object, gyr: object) -> np.ndarray:
        """Fuse one block; returns its (n, 3) gravity directions."""
        return self.update_detailed(acc, gyr).gravity

    def update_detailed(self, acc: object, gyr: object) -> FusionResult:
        """Fuse one block; returns gravity with its flags (rest, acc_weight, bias)."""
        acc, gyr = _check_samples(acc, gyr)
        if acc.shape[0] == 0 and self.state is None:
            result = FusionResult(np.empty((0, 3)), np.zeros(0, bool), np.empty(0), np.empty((0, 3)), None)  # type: ignore[arg-type]
        else:
            result = _run_checked(acc, gyr, self.rate, self.settings, self.state)
            self.state = result.state
        self.last_result = result
        return result

    @property
    def bias(self) -> np.ndarray:
        """Current gyro-bias estimate, rad/s."""
        if self.state is None:
            return np.array(self.settings.initial_bias_rad_s)
        return self.state.bias.copy()


def gravity_zero_phase(
    acc: object,
    gyr: object,
    rate: float,
    settings: FusionSettings | None = None,
) -> np.ndarray:
    """NON-CAUSAL gravity direction for replay analysis only (never live).

    Same as :func:`gravity`, but the accelerometer low-pass in the
    gyro-integrated frame runs forward and backward (zero phase, so no lag;
    a first-order Butterworth each way). Gyro bias and accelerometer weights
    are those of the causal pass. Uses future samples.
    """
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
