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
   constant ``tau_bias_s`` - held during motion.
3. **Strapdown integration**: the bias-corrected gyro is integrated into
   quaternions ``P_k`` (sensor orientation relative to an almost-inertial
   frame I fixed at the start of the stream). Gyro sample k is the rate over
   the sample period *ending* at k: ``P_k = P_{k-1} exp(omega_k dt / 2)``.
4. **Accelerometer low-pass in I**: each accelerometer sample is rotated into
   I (``b_k = P_k a_k``) and low-passed with a second-order Butterworth
   filter with time constant ``tau_acc_s``. The gravity direction is
   ``normalize(P_k^T h)``. As in VQF, every sample counts fully: linear
   acceleration integrates to a bounded velocity in I and the low-pass
   removes it. (An optional trust weight, ``acc_rejection_m_s2``, is off by
   default: shrinking the low-pass input lets the filter's undershoot carry
   the estimate through zero under sustained shaking.)

**Chunks.** The stream is cut into chunks of ``L = 16`` samples at fixed
positions (sample index 0, 16, 32, ... from the start of the stream). The
low-pass state is exact at every sample, but its *output* ``h``, the trust
weight ``w`` and the gyro bias used for integration are latched at chunk ends
and used for the next 16 samples; the bias estimate learns from each chunk's
rest samples at its end (as the per-sample IIR would for equal samples). The
lag this adds (<= 15 samples) is small against the 3 s filter constants and
does not touch the gyro integration. It lets the batch path work on whole
chunks:

- **Batch path** (blocks of >= 64 samples): segments of 2,048 chunks are laid
  out as (16, 2048) arrays (column = one chunk), so each numpy call advances
  all chunks by one sample. Quaternions are complex pairs
  ``(w + x i, y + z i)``; in-chunk prefix products take 15 steps, chunk starts
  come from a short scan over the chunk totals. The low-pass state at chunk
  ends comes from impulse-response matrices times each chunk plus a
  recurrence over chunk ends (exact, not a decimation).
- **Per-sample path** (:mod:`spinemon.core.fusion_kernel`: blocks shorter than 64
  samples, e.g. streaming frames, and the ragged head and tail of a block):
  the same filter in plain float arithmetic, one sample after another. Two
  independent implementations: the tests check they agree to 1e-9.

**Engines** (:func:`set_engine`). With numba installed (the ``fast`` extra)
the per-sample kernel runs compiled and takes every block, long or short
(``"compiled"``, the default: about 7x VQF's ``updateBatch``, and batch and
streaming are then one loop, equal bit for bit for any split). Without numba,
or with ``set_engine("numpy")``, long blocks take the chunked numpy path above
and short ones the kernel as plain Python. The tests run both engines.

Entry points: :func:`gravity` (batch, unit vectors), :func:`run` (batch with
flags and the final :class:`FusionState`), :class:`GravityFilter`
(streaming, block by block). Batch and streaming agree to ~1e-12 for any
block split; :func:`gravity_zero_phase` is a separate, non-causal variant for
replay analysis only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from spinemon.core import fusion_kernel as fk
from spinemon.errors import ConfigError, SpinemonError

__all__ = [
    "ENGINES",
    "FusionInputError",
    "FusionResult",
    "FusionSettings",
    "FusionState",
    "G",
    "GravityFilter",
    "engine",
    "gravity",
    "gravity_zero_phase",
    "run",
    "set_engine",
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
        acc_rejection_m_s2: ``None`` (the default): every accelerometer sample
            counts fully, as in VQF. A number (m/s^2) turns on a trust weight:
            once ``|a|`` departs from ``gravity_m_s2`` by more than this (mean
            square over ``acc_rejection_tau_s``), the weight falls as
            ``(threshold / deviation)**2``. Off by default because in frame I
            linear acceleration integrates to a bounded velocity and the
            ``tau_acc_s`` low-pass removes it on its own, while shrinking the
            low-pass input towards zero lets the Butterworth's undershoot carry
            the estimate through zero: on BROAD trial 18 (sustained 10 g
            shaking) a 4.0 m/s^2 threshold flipped gravity upside down for
            seconds at a time (docs/performance.md).
        rest_gyr_deg_s: a rest candidate has ``|gyr|`` below this, deg/s (so a gyro
            bias larger than this cannot be learnt at rest: set ``initial_bias_rad_s``).
        rest_acc_m_s2: a rest candidate has ``| |a| - g |`` below this, m/s^2.
        rest_min_s: the rest conditions must hold this long before a sample counts as rest, s.
        tau_bias_s: time constant of the gyro-bias estimate (over rest samples only), s.
        initial_bias_rad_s: gyro bias assumed until the first rest, rad/s (x, y, z).
        gravity_m_s2: magnitude of gravity, m/s^2.
    """

    tau_acc_s: float = 3.0
    acc_rejection_m_s2: float | None = None
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
            "acc_rejection_tau_s": self.acc_rejection_tau_s,
            "rest_gyr_deg_s": self.rest_gyr_deg_s,
            "rest_acc_m_s2": self.rest_acc_m_s2,
            "tau_bias_s": self.tau_bias_s,
            "gravity_m_s2": self.gravity_m_s2,
        }
        if self.acc_rejection_m_s2 is not None:
            positive["acc_rejection_m_s2"] = self.acc_rejection_m_s2
        for name, value in positive.items():
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"FusionSettings.{name} must be a finite number > 0, got {value!r}")
        if not _is_real(self.rest_min_s) or not math.isfinite(self.rest_min_s) or self.rest_min_s < 0:
            raise ConfigError(
                f"FusionSettings.rest_min_s must be a finite number >= 0, got {self.rest_min_s!r}"
            )
        try:
            bias = tuple(float(v) for v in self.initial_bias_rad_s)
        except (TypeError, ValueError):
            raise ConfigError(
                f"FusionSettings.initial_bias_rad_s must be 3 numbers, got {self.initial_bias_rad_s!r}"
            ) from None
        if len(bias) != 3 or not all(math.isfinite(v) for v in bias):
            raise ConfigError(
                f"FusionSettings.initial_bias_rad_s must be 3 finite numbers, got {self.initial_bias_rad_s!r}"
            )
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
        acc_lp_out: (3,) low-pass output latched at the last chunk end (frame I).
        gravity: (3,) last gravity direction (unit, sensor frame).
        acc_dev_ms: low-passed squared deviation of ``|a|`` from g, (m/s^2)^2.
        acc_weight: trust weight latched at the last chunk end, 0..1.
        rest_run: how many consecutive rest candidates end the stream so far.
        bias: (3,) live gyro-bias estimate (as of the last chunk end), rad/s.
        bias_held: (3,) bias used for integration until the next chunk end, rad/s.
        bias_partial: (4,) sum of the rest gyro samples (x, y, z) and their count
            in the current, unfinished chunk.
        bias_count: number of rest samples that have fed the bias estimate.
    """

    samples: int
    quat: np.ndarray
    acc_lp_zi: np.ndarray
    acc_lp_out: np.ndarray
    gravity: np.ndarray
    acc_dev_ms: float
    acc_weight: float
    rest_run: int
    bias: np.ndarray
    bias_held: np.ndarray
    bias_partial: np.ndarray
    bias_count: int

    @classmethod
    def from_gravity(
        cls,
        up: object,
        rate: float,
        settings: FusionSettings | None = None,
        bias: object = None,
    ) -> FusionState:
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
            raise FusionInputError(
                f"initial gravity direction must be a finite non-zero 3-vector, got {up!r}"
            )
        u = u / norm
        b = np.array(settings.initial_bias_rad_s if bias is None else bias, dtype=np.float64).reshape(-1)
        if b.shape != (3,) or not np.isfinite(b).all():
            raise FusionInputError(f"initial bias must be 3 finite numbers, got {bias!r}")
        g = settings.gravity_m_s2
        return cls(
            samples=0,
            quat=np.array([1.0, 0.0, 0.0, 0.0]),
            acc_lp_zi=coeffs.acc_zi_unit[:, None] * (g * u)[None, :],
            acc_lp_out=g * u,
            gravity=u.copy(),
            acc_dev_ms=0.0,
            acc_weight=1.0,
            rest_run=0,
            bias=b,
            bias_held=b.copy(),
            bias_partial=np.zeros(4),
            bias_count=0,
        )

    def copy(self) -> FusionState:
        """A deep copy (arrays are copied)."""
        return FusionState(
            samples=self.samples,
            quat=self.quat.copy(),
            acc_lp_zi=self.acc_lp_zi.copy(),
            acc_lp_out=self.acc_lp_out.copy(),
            gravity=self.gravity.copy(),
            acc_dev_ms=self.acc_dev_ms,
            acc_weight=self.acc_weight,
            rest_run=self.rest_run,
            bias=self.bias.copy(),
            bias_held=self.bias_held.copy(),
            bias_partial=self.bias_partial.copy(),
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
    bias_keep_pow: np.ndarray  # (1 - bias_alpha) ** k for k = 0..L
    ones_l: np.ndarray  # (L,) ones

    # the chunk-parallel filters of the batch path, built on first use (they need
    # scipy.signal, which the per-sample path of streaming frames never does)
    @cached_property
    def acc_iir(self) -> _ChunkIIR:
        return _ChunkIIR(self.acc_b, self.acc_a, _L)

    @cached_property
    def kernel_coefficients_list(self) -> list:
        """The coefficients as the per-sample kernel's flat vector (spinemon.core.fusion_kernel.C_*)."""
        c = [0.0] * fk.N_COEF
        c[fk.C_G] = self.g
        c[fk.C_REJ_K] = self.rej_k
        c[fk.C_REJ2] = self.rej2
        c[fk.C_TH_GYR2] = self.rest_gyr_th2
        c[fk.C_TH_ACC2] = self.rest_acc_th2
        c[fk.C_REST_MIN_N] = float(self.rest_min_n)
        c[fk.C_HALF_DT] = self.half_dt
        c[fk.C_BIAS_KEEP] = 1.0 - self.bias_alpha
        c[fk.C_BIAS_MEAN_N] = float(self.bias_mean_n)
        c[fk.C_B0], c[fk.C_B1], c[fk.C_B2] = (float(v) for v in self.acc_b)
        c[fk.C_A1], c[fk.C_A2] = float(self.acc_a[1]), float(self.acc_a[2])
        c[fk.C_CHUNK] = float(_L)
        c[fk.C_TAYLOR_MAX] = _TAYLOR_MAX
        return c

    @cached_property
    def kernel_coefficients(self) -> np.ndarray:
        return np.array(self.kernel_coefficients_list)

    @cached_property
    def rej_iir(self) -> _ChunkIIR:
        return _ChunkIIR(np.array([self.rej_k]), np.array([1.0, self.rej_k - 1.0]), _L)


def _butter2_lowpass(fc: float, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.butter(2, fc, fs=rate)`` in closed form (bilinear transform
    with pre-warping), so the live path never imports scipy.signal (~1 s)."""
    k = math.tan(math.pi * fc / rate)
    k2 = k * k
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k2)
    b0 = k2 * norm
    return np.array([b0, 2.0 * b0, b0]), np.array(
        [1.0, 2.0 * (k2 - 1.0) * norm, (1.0 - math.sqrt(2.0) * k + k2) * norm]
    )


def _lfilter_zi2(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``scipy.signal.lfilter_zi(b, a)`` for a second-order filter (``a[0] == 1``)."""
    i_minus_a = np.array([[1.0 + a[1], -1.0], [a[2], 1.0]])
    return np.linalg.solve(i_minus_a, b[1:] - a[1:] * b[0])


@lru_cache(maxsize=32)
def _coefficients(rate: float, settings: FusionSettings) -> _Coefficients:
    dt = 1.0 / rate
    fc = math.sqrt(2.0) / (2.0 * math.pi * settings.tau_acc_s)  # as VQF
    if fc >= 0.5 * rate:
        raise ConfigError(f"tau_acc_s={settings.tau_acc_s} is too short for a sample rate of {rate} Hz")
    b, a = _butter2_lowpass(fc, rate)
    rej_k = 1.0 - math.exp(-dt / settings.acc_rejection_tau_s)
    bias_alpha = 1.0 - math.exp(-dt / settings.tau_bias_s)
    return _Coefficients(
        dt=dt,
        half_dt=0.5 * dt,
        acc_b=b,
        acc_a=a,
        acc_zi_unit=_lfilter_zi2(b, a),
        rest_gyr_th2=math.radians(settings.rest_gyr_deg_s) ** 2,
        rest_acc_th2=settings.rest_acc_m_s2**2,
        rest_min_n=max(1, int(round(settings.rest_min_s * rate))),
        bias_alpha=bias_alpha,
        bias_mean_n=max(1, int(round(settings.tau_bias_s * rate))),
        g=settings.gravity_m_s2,
        rej2=math.inf if settings.acc_rejection_m_s2 is None else settings.acc_rejection_m_s2**2,
        rej_k=rej_k,
        bias_keep_pow=(1.0 - bias_alpha) ** np.arange(_L + 1, dtype=np.float64),
        ones_l=np.ones(_L),
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
        raise FusionInputError(
            f"acc and gyr must have the same length, got {acc.shape[0]} and {gyr.shape[0]}"
        )
    # a finite sum means every term is finite; otherwise check element-wise (the sum may just overflow)
    finite = math.isfinite(float(acc.sum())) and math.isfinite(float(gyr.sum()))
    if not finite and not (np.isfinite(acc).all() and np.isfinite(gyr).all()):
        raise FusionInputError("acc and gyr must be finite (NaN or inf found)")
    return acc, gyr


# ---------------------------------------------------------------- quaternions


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

# ---------------------------------------------------------------- chunk-parallel building blocks
#
# The batch path works on segments of S = L * C samples laid out as (L, C)
# arrays: column c holds the L consecutive samples of chunk c, so that one
# numpy call on a row advances all C chunks by one sample. Element-wise work
# is layout-blind; the two sequential parts (the quaternion prefix product and
# the IIR filters) run L steps down the rows, then stitch the chunks together
# with a short recurrence over the C chunk ends.

_L = 16  # samples per chunk; the low-pass output, trust weight and bias are latched at chunk ends
_SEGMENT_CHUNKS = 2048  # chunks per internal segment (S = 32768 samples)
_SMALL = 64  # blocks shorter than this take the per-sample path (plain floats)
_SHORT_TOTALS = 128  # chunk totals up to this many are chained by a plain loop
_TAYLOR_MAX = 1e-2  # (half rotation angle per sample)^2 up to which the Taylor series is exact (t < 0.1 rad)


class _ChunkIIR:
    """State and output of ``scipy.signal.lfilter(b, a)`` at chunk ends, chunk-parallel.

    Exact reformulation: with the lfilter state ``s`` (transposed direct form II,
    length p) at the start of a chunk of L inputs x, the state at its end is
    ``A s + K x`` and the output at its last sample ``o . s + t . x``. The
    chunk-start states follow ``s_{c+1} = A s_c + K x_c``: a recurrence over
    the C chunks that decouples in A's eigenbasis into p first-order (complex)
    recurrences, one ``lfilter`` call on C values each.
    """

    def __init__(self, b: np.ndarray, a: np.ndarray, length: int) -> None:
        from scipy import signal  # batch path only (see _Coefficients.acc_iir)

        p = len(a) - 1
        eye = np.eye(length)
        drive = np.empty((p + 1, length))  # rows: K (state), then t (last output)
        for j in range(length):
            y, zf = signal.lfilter(b, a, eye[j], zi=np.zeros(p))
            drive[:p, j] = zf
            drive[p, j] = y[-1]
        a_l = np.empty((p, p))
        o = np.empty(p)
        for i in range(p):
            zi = np.zeros(p)
            zi[i] = 1.0
            y, a_l[:, i] = signal.lfilter(b, a, np.zeros(length), zi=zi)
            o[i] = y[-1]
        lam, v = np.linalg.eig(a_l)
        self.p = p
        self.a_l = a_l
        self.obs_inv = None
        if p == 2:
            obs = np.array([o, o @ a_l])
            if np.linalg.cond(obs) < 1e6:
                self.obs_inv = np.linalg.inv(obs)
        self.drive = drive
        self.o = o
        self.lam = lam.astype(complex)
        self.v = v.astype(complex)
        self.v_inv = np.linalg.inv(self.v)

    def run(self, kx: np.ndarray, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chunk-end outputs from the per-chunk drives.

        Args:
            kx: (m, p + 1, C): ``self.drive @ x_c`` for m signals and C chunks
                (rows 0..p-1 drive the state, row p is the zero-state output).
            zi: (m, p) states before the first chunk.

        Returns:
            y_end (m, C), the output at the last sample of each chunk, and the
            states after the last chunk (m, p).
        """
        from scipy import signal

        m, _, c = kx.shape
        p = self.p
        if p == 1:  # real pole: the states themselves
            lam = self.lam[0].real
            ends, _ = signal.lfilter([1.0], [1.0, -lam], kx[:, 0, :], axis=-1, zi=lam * zi)
            s0 = np.empty((m, c))
            s0[:, 0] = zi[:, 0]
            s0[:, 1:] = ends[:, :-1]
            y_end = kx[:, 1, :] + self.o[0] * s0
            return y_end, ends[:, -1:].copy()
        if p == 2 and self.obs_inv is not None and c > 2:
            # the chunk-end outputs z_c = o . s_c obey z_{c+2} = tr z_{c+1} - det z_c + drive
            # (Cayley-Hamilton); one scalar recurrence per signal, then the final state
            # from the last two outputs (observability matrix [o; o A], well conditioned)
            a_l, o = self.a_l, self.o
            tr = a_l[0, 0] + a_l[1, 1]
            det = a_l[0, 0] * a_l[1, 1] - a_l[0, 1] * a_l[1, 0]
            pa = o @ (a_l - tr * np.eye(2))
            f0, f1 = kx[:, 0, :], kx[:, 1, :]
            z = np.empty((m, c + 1))  # o . s at chunk starts 0..C-1, then after the last chunk
            s1 = zi @ a_l.T + kx[:, :2, 0]  # state after chunk 0
            z[:, 0] = zi @ o
            z[:, 1] = s1 @ o
            drive = o[0] * f0[:, 1:]
            drive += o[1] * f1[:, 1:]
            drive += pa[0] * f0[:, :-1]
            drive += pa[1] * f1[:, :-1]
            zf = np.stack([tr * z[:, 1] - det * z[:, 0], -det * z[:, 1]], axis=-1)
            z[:, 2:], _ = signal.lfilter([1.0], [1.0, -tr, det], drive, axis=-1, zi=zf)
            y_end = kx[:, 2, :] + z[:, :-1]
            # state before the last chunk from its output and the next: [o; o A] s = [z, z' - o . f]
            rhs = np.stack([z[:, c - 1], z[:, c] - kx[:, :2, c - 1] @ o], axis=-1)
            s_last = rhs @ self.obs_inv.T
            return y_end, s_last @ a_l.T + kx[:, :2, c - 1]
        if p == 2:  # each state component obeys s_{c+2} = tr s_{c+1} - det s_c + drive (Cayley-Hamilton)
            a_l = self.a_l
            tr = a_l[0, 0] + a_l[1, 1]
            det = a_l[0, 0] * a_l[1, 1] - a_l[0, 1] * a_l[1, 0]
            f0, f1 = kx[:, 0, :], kx[:, 1, :]
            s = np.empty((m, 2, c + 1))  # states at chunk starts, then the final one
            s[:, :, 0] = zi
            s[:, 0, 1] = a_l[0, 0] * zi[:, 0] + a_l[0, 1] * zi[:, 1] + f0[:, 0]
            s[:, 1, 1] = a_l[1, 0] * zi[:, 0] + a_l[1, 1] * zi[:, 1] + f1[:, 0]
            if c > 1:
                drive = np.empty((m, 2, c - 1))
                drive[:, 0] = f0[:, 1:]
                drive[:, 0] += (a_l[0, 0] - tr) * f0[:, :-1]
                drive[:, 0] += a_l[0, 1] * f1[:, :-1]
                drive[:, 1] = f1[:, 1:]
                drive[:, 1] += a_l[1, 0] * f0[:, :-1]
                drive[:, 1] += (a_l[1, 1] - tr) * f1[:, :-1]
                s1, s0 = s[:, :, 1], s[:, :, 0]
                z = np.stack(
                    [tr * s1 - det * s0, -det * s1], axis=-1
                )  # lfilter state for y_-1 = s_1, y_-2 = s_0
                s[:, :, 2:], _ = signal.lfilter([1.0], [1.0, -tr, det], drive, axis=-1, zi=z)
            y_end = kx[:, 2, :] + self.o[0] * s[:, 0, :-1]
            y_end += self.o[1] * s[:, 1, :-1]
            return y_end, s[:, :, -1].copy()
        f = np.einsum("ij,mjc->mic", self.v_inv, kx[:, :p, :])  # modal drive
        mz = zi.astype(complex) @ self.v_inv.T  # (m, p) modal start states
        starts = np.empty((m, p, c), dtype=complex)
        last = np.empty((m, p), dtype=complex)
        for i, lam in enumerate(self.lam):
            ends, _ = signal.lfilter([1.0], [1.0, -lam], f[:, i, :], axis=-1, zi=(lam * mz[:, i])[:, None])
            starts[:, i, 0] = mz[:, i]
            starts[:, i, 1:] = ends[:, :-1]
            last[:, i] = ends[:, -1]
        s = np.einsum("ij,mjc->mic", self.v, starts).real  # (m, p, C) states at chunk starts
        y_end = kx[:, p, :] + np.einsum("j,mjc->mc", self.o, s)
        return y_end, (last @ self.v.T).real


def _cscan_short(d1, d2, q1, q2):
    """Prefix product of a few quaternions in complex pair form (plain Python)."""
    o1 = []
    o2 = []
    for b1, b2 in zip(d1.tolist(), d2.tolist()):
        q1, q2 = q1 * b1 - q2 * b2.conjugate(), q1 * b2 + q2 * b1.conjugate()
        o1.append(q1)
        o2.append(q2)
    return np.array(o1, dtype=complex), np.array(o2, dtype=complex)


def _cscan_1d(d1, d2, q1, q2):
    """Inclusive prefix product ``q0 * d_0 * ... * d_k`` of time-ordered complex-pair quaternions."""
    n = len(d1)
    if n <= _SHORT_TOTALS:
        return _cscan_short(d1, d2, q1, q2)
    chunks = -(-n // _L)
    pad = chunks * _L - n
    if pad:
        d1 = np.concatenate([d1, np.ones(pad, dtype=complex)])
        d2 = np.concatenate([d2, np.zeros(pad, dtype=complex)])
    l1, l2 = _chunk_products(
        np.ascontiguousarray(d1.reshape(chunks, _L).T), np.ascontiguousarray(d2.reshape(chunks, _L).T)
    )
    s1, s2 = _chunk_starts(l1[-1], l2[-1], q1, q2)
    p1, p2 = _qmul_pair(s1, s2, l1, l2)
    return p1.T.reshape(-1)[:n], p2.T.reshape(-1)[:n]


def _qmul_pair(a1, a2, b1, b2):
    """Hamilton product in complex pair form: ``(a1 b1 - a2 conj(b2), a1 b2 + a2 conj(b1))``."""
    return a1 * b1 - a2 * np.conjugate(b2), a1 * b2 + a2 * np.conjugate(b1)


def _chunk_products(d1, d2, ws: _Work | None = None):
    """In-chunk prefix products ``Q_l = d_0 ... d_l`` for (L, C) complex-pair quaternions.

    A quaternion ``w + x i + y j + z k`` is the pair ``(w + x i, y + z i)``;
    the Hamilton product then takes six complex numpy calls instead of 28 real
    ones. Row l of the result is the product of the first l + 1 rows.
    """
    ws = ws or _Work()
    length, chunks = d1.shape
    q1 = ws("q1", d1.shape, complex)
    q2 = ws("q2", d1.shape, complex)
    q1[0] = d1[0]
    q2[0] = d2[0]
    c1 = np.conjugate(d1[1:], out=ws("c1", (length - 1, chunks), complex))
    c2 = np.conjugate(d2[1:], out=ws("c2", (length - 1, chunks), complex))
    t = ws("ct", (chunks,), complex)
    for i in range(1, length):
        a1, a2 = q1[i - 1], q2[i - 1]
        o1, o2 = q1[i], q2[i]
        np.multiply(a1, d1[i], out=o1)
        o1 -= np.multiply(a2, c2[i - 1], out=t)
        np.multiply(a1, d2[i], out=o2)
        o2 += np.multiply(a2, c1[i - 1], out=t)
    return q1, q2


def _chunk_starts(t1, t2, q1, q2):
    """Orientation at the start of each chunk: ``q0`` times the totals of all earlier chunks."""
    e1, e2 = _cscan_1d(t1, t2, q1, q2)
    s1 = np.empty(len(t1) + 1, dtype=complex)
    s2 = np.empty(len(t1) + 1, dtype=complex)
    s1[0], s2[0] = q1, q2
    s1[1:], s2[1:] = e1, e2
    return s1[:-1], s2[:-1]  # the last total is the end state; callers that need it read e1/e2


class _Work:
    """Reusable scratch arrays for the chunked path (fresh large arrays cost page faults)."""

    def __init__(self) -> None:
        self._bufs: dict = {}

    def __call__(self, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
        buf = self._bufs.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[name] = np.empty(shape, dtype=dtype)
        return buf


def _lc(a: np.ndarray, chunks: int, out: np.ndarray) -> np.ndarray:
    """(S, 3) time-ordered samples -> (3, L, C) chunk layout, into ``out``."""
    for i in range(3):
        np.copyto(out[i], a[:, i].reshape(chunks, _L).T)
    return out


def _rotation_pair(p1, p2, ws: _Work | None = None, key: str = "r"):
    """Rotation matrix entries of unit complex-pair quaternions (homogeneous form except r00).

    With ``p1 = w + x i`` and ``p2 = y + z i``: ``p1^2``, ``p2^2``, ``2 p1 p2``
    and ``2 p1 conj(p2)`` hold all the products the matrix needs, in their
    real and imaginary parts (some entries are returned as views).
    """
    ws = ws or _Work()
    shape = p1.shape
    c = ws(key + "c", shape, complex)
    a = ws(key + "a", shape, complex)
    b = ws(key + "b", shape, complex)
    s1 = ws(key + "s1", shape, complex)
    s2 = ws(key + "s2", shape, complex)
    f = ws(key + "f", shape[:-1] + (2 * shape[-1],))
    d = ws(key + "d", shape)
    r11 = ws(key + "11", shape)
    r22 = ws(key + "22", shape)
    r12 = ws(key + "12", shape)
    r21 = ws(key + "21", shape)
    r20 = ws(key + "20", shape)
    np.square(p1.view(np.float64), out=f)
    np.add(f[..., 0::2], f[..., 1::2], out=d)  # w^2 + x^2
    d += d
    d -= 1.0  # w^2 + x^2 - y^2 - z^2 for unit p (products of unit quaternions: |p| = 1 to ~1e-15)
    np.add(p1, p1, out=b)
    np.multiply(b, p2, out=a)  # 2(wy - xz) + 2(wz + xy) i
    np.conjugate(p2, out=c)
    b *= c  # 2(wy + xz) + 2(xy - wz) i
    np.multiply(p1, p1, out=s1)  # w^2 - x^2 + 2wx i
    np.multiply(p2, p2, out=s2)  # y^2 - z^2 + 2yz i
    np.add(s1.real, s2.real, out=r11)
    np.subtract(s1.real, s2.real, out=r22)
    np.subtract(s2.imag, s1.imag, out=r12)
    np.add(s2.imag, s1.imag, out=r21)
    np.negative(a.real, out=r20)
    return (
        (d, b.imag, b.real),
        (a.imag, r11, r12),
        (r20, r21, r22),
    )


def _mat_vec(r, v, out, tmp):
    """out_i = sum_j r[i][j] v_j for 3x3 entries r (broadcasting arrays) and 3 arrays v."""
    for i in range(3):
        o = np.multiply(r[i][0], v[0], out=out[i])
        o += np.multiply(r[i][1], v[1], out=tmp)
        o += np.multiply(r[i][2], v[2], out=tmp)
    return out


def _mat_t_vec(r, v, out, tmp):
    """out_i = sum_j r[j][i] v_j (the transpose)."""
    for i in range(3):
        o = np.multiply(r[0][i], v[0], out=out[i])
        o += np.multiply(r[1][i], v[1], out=tmp)
        o += np.multiply(r[2][i], v[2], out=tmp)
    return out


def _step_chunked(acc, gyr, co, state, out_u, out_rest, out_w, out_bias, ws: _Work) -> None:
    """Fuse one chunk-aligned segment (length a multiple of L, starting at a chunk end).

    Writes the outputs (the flags ``out_rest``, ``out_w``, ``out_bias`` may be
    None) and updates ``state``. Layout: (L, C) arrays, column c = the L
    consecutive samples of chunk c, so each numpy call advances all chunks.
    """
    n = acc.shape[0]
    chunks = n // _L
    lc = (_L, chunks)
    a = _lc(acc, chunks, ws("a", (3,) + lc))
    g = _lc(gyr, chunks, ws("g", (3,) + lc))
    ax, ay, az = a
    gx, gy, gz = g
    tmp = ws("tmp", lc)
    w2 = ws("w2", lc)

    # accelerometer magnitude: trust weight and rest condition share it
    dev2 = np.multiply(ax, ax, out=ws("dev2", lc))
    dev2 += np.multiply(ay, ay, out=tmp)
    dev2 += np.multiply(az, az, out=tmp)
    np.sqrt(dev2, out=dev2)
    dev2 -= co.g
    dev2 *= dev2  # (|a| - g)^2
    ms_end, _ = co.rej_iir.run(
        (co.rej_iir.drive @ dev2)[None], np.array([[(1.0 - co.rej_k) * state.acc_dev_ms]])
    )
    ms_end = ms_end[0]
    w_end = np.ones(chunks) if co.rej2 == math.inf else co.rej2 / np.maximum(ms_end, co.rej2)
    weight = np.empty(chunks)  # latched: chunk c uses the weight at the end of chunk c - 1
    weight[0] = state.acc_weight
    weight[1:] = w_end[:-1]

    # 1. rest (time order): gyro and |a| near 1 g, held for rest_min_n samples in a row
    np.multiply(gx, gx, out=w2)
    w2 += np.multiply(gy, gy, out=tmp)
    w2 += np.multiply(gz, gz, out=tmp)
    cand_lc = np.less(w2, co.rest_gyr_th2, out=ws("cand", lc, bool))
    cand_lc &= np.less(dev2, co.rest_acc_th2, out=ws("cand2", lc, bool))
    cand = ws("cand_t", (chunks, _L), bool)
    np.copyto(cand, cand_lc.T)
    cand = cand.reshape(-1)
    if out_rest is None:
        out_rest = ws("rest", (n,), bool)
    run0 = min(state.rest_run, co.rest_min_n)  # longer runs behave alike
    if not cand.any():
        out_rest[:] = False
        run_end = 0
    elif cand.all():
        np.greater_equal(np.arange(run0 + 1, run0 + n + 1, dtype=np.int32), co.rest_min_n, out=out_rest)
        run_end = state.rest_run + n
    else:
        idx = np.arange(n, dtype=np.int32)
        last_break = np.where(cand, np.int32(-1 - run0), idx)
        np.maximum.accumulate(last_break, out=last_break)
        run_len = np.subtract(idx, last_break, out=last_break)
        np.greater_equal(run_len, co.rest_min_n, out=out_rest)
        run_end = int(run_len[-1])
    rest = out_rest

    # 2. gyro bias: at each chunk end the live estimate learns from the chunk's rest samples
    #    (running mean, then IIR); integration uses the estimate latched at the previous chunk end
    m = int(np.count_nonzero(rest))
    bias_c = np.empty((3, chunks))
    bias_c[:, 0] = state.bias_held
    if m == 0:
        bias_c[:, 1:] = state.bias[:, None]
    else:
        rest_lc = tmp
        np.copyto(rest_lc, rest.reshape(chunks, _L).T)  # as 0.0 / 1.0
        n_rest = co.ones_l @ rest_lc
        rsum = np.einsum("ilc,lc->ic", g, rest_lc)
        ends = _bias_at_chunk_ends(rsum, n_rest, state.bias, state.bias_count, co)
        bias_c[:, 1:] = ends[:, :-1]
        state.bias = ends[:, -1].copy()
        state.bias_count += m
    state.bias_held = state.bias.copy()
    for i in range(3):
        g[i] -= bias_c[i]
    if out_bias is not None:  # flags: per-sample bias and weight
        for i in range(3):
            np.copyto(out_bias[:, i].reshape(chunks, _L), bias_c[i][:, None])
        np.copyto(out_w.reshape(chunks, _L), weight[:, None])

    # 3. strapdown integration: in-chunk products, then chunk starts (omega = g now)
    w2 = np.multiply(gx, gx, out=w2)  # |omega|^2; (theta/2)^2 = hd2 |omega|^2
    w2 += np.multiply(gy, gy, out=tmp)
    w2 += np.multiply(gz, gz, out=tmp)
    hd2 = co.half_dt * co.half_dt
    # cos(t) and sin(t)/t * dt/2 by Taylor series in t^2 = hd2 |omega|^2 (coefficients
    # scaled by powers of hd2), exact to < 1e-16 for t < 0.1 rad; larger t exactly
    cs = np.multiply(w2, hd2**4 / 40320.0, out=dev2)
    cs -= hd2**3 / 720.0
    cs *= w2
    cs += hd2**2 / 24.0
    cs *= w2
    cs -= 0.5 * hd2
    cs *= w2
    cs += 1.0
    h = co.half_dt
    sn = np.multiply(w2, h * hd2**4 / 362880.0, out=tmp)
    sn -= h * hd2**3 / 5040.0
    sn *= w2
    sn += h * hd2**2 / 120.0
    sn *= w2
    sn -= h * hd2 / 6.0
    sn *= w2
    sn += h
    if float(w2.max()) * hd2 > _TAYLOR_MAX:
        big = w2 * hd2 > _TAYLOR_MAX
        t = np.sqrt(w2[big] * hd2)
        cs[big] = np.cos(t)
        sn[big] = np.sin(t) / t * h
    d1 = ws("d1", lc, complex)
    d2 = ws("d2", lc, complex)
    d1.real = cs
    np.multiply(sn, gx, out=d1.imag)
    np.multiply(sn, gy, out=d2.real)
    np.multiply(sn, gz, out=d2.imag)
    q1, q2 = _chunk_products(d1, d2, ws)
    q0 = state.quat
    e1, e2 = _cscan_1d(q1[-1], q2[-1], complex(q0[0], q0[1]), complex(q0[2], q0[3]))
    s1 = np.empty(chunks, dtype=complex)
    s2 = np.empty(chunks, dtype=complex)
    s1[0], s2[0] = complex(q0[0], q0[1]), complex(q0[2], q0[3])
    s1[1:], s2[1:] = e1[:-1], e2[:-1]
    rq = _rotation_pair(q1, q2, ws, "rq")  # in-chunk: sensor at sample l -> frame at the chunk start
    rs = _rotation_pair(s1, s2)  # per chunk: frame at the chunk start -> I

    # 4. accelerometer in I, weighted, low-passed (state exact at chunk ends); back to the sensor frame.
    #    The weight is constant over a chunk, so it scales the per-chunk drives.
    v = _mat_vec(rq, a, g, tmp)  # g is free now
    kv = co.acc_iir.drive @ v  # (3, p + 1, C): per-chunk drives, in the chunk-start frames
    kv *= weight
    rs = np.array(rs)  # (3, 3, C)
    kx = np.einsum("ijc,jrc->irc", rs, kv)
    y_end, zf = co.acc_iir.run(kx, state.acc_lp_zi.T)
    hl = np.empty((3, chunks))  # latched low-pass output per chunk, frame I
    hl[:, 0] = state.acc_lp_out
    hl[:, 1:] = y_end[:, :-1]
    hs = np.einsum("jic,jc->ic", rs, hl)
    # |Rq^T hs| = |q|^2 |hs| and the in-chunk products q are unit to ~1e-15: normalise per chunk
    norm = np.sqrt(np.einsum("ic,ic->c", hs, hs))
    ok_c = norm > 1e-150
    if ok_c.all():
        hs /= norm
    else:
        hs[:, ok_c] /= norm[ok_c]
    u = _mat_t_vec(rq, hs, a, tmp)
    for i in range(3):
        np.copyto(out_u[:, i].reshape(chunks, _L), u[i].T)
    if not ok_c.all():  # degenerate (h decayed to 0): hold the last good direction
        ok = np.repeat(ok_c, _L)
        idx = np.arange(n)
        last = np.maximum.accumulate(np.where(ok, idx, -1))
        held = np.concatenate([state.gravity[None, :], out_u])
        out_u[:] = held[last + 1]

    w_, x_, y_, z_ = e1[-1].real, e1[-1].imag, e2[-1].real, e2[-1].imag
    nq = math.sqrt(w_ * w_ + x_ * x_ + y_ * y_ + z_ * z_)
    state.samples += n
    state.quat = np.array([w_ / nq, x_ / nq, y_ / nq, z_ / nq])
    state.acc_lp_zi = zf.T.copy()
    state.acc_lp_out = y_end[:, -1].copy()
    state.gravity = out_u[-1].copy()
    state.acc_dev_ms = float(ms_end[-1])
    state.acc_weight = float(w_end[-1])
    state.rest_run = run_end


def _bias_at_chunk_ends(
    rsum: np.ndarray, n_rest: np.ndarray, bias: np.ndarray, count: int, co: _Coefficients
) -> np.ndarray:
    """The live gyro-bias estimate at each chunk end (3, C).

    Chunk c brings ``n_c`` rest samples summing to ``rsum_c``. While fewer than
    ``bias_mean_n`` rest samples have been seen before the chunk, the estimate
    is their running mean; after that ``b <- D b + (1 - D) rsum_c / n_c`` with
    ``D = (1 - alpha)^n_c`` (the per-sample IIR for n_c equal samples).
    """
    chunks = len(n_rest)
    out = np.empty((3, chunks))
    k_after = count + np.cumsum(n_rest)
    k_before = k_after - n_rest
    c_m = int(np.searchsorted(k_before, co.bias_mean_n - 0.5, side="left"))  # running-mean chunks
    b = bias
    if c_m:
        total = np.cumsum(rsum[:, :c_m], axis=1)
        total += (count * bias)[:, None]
        k = k_after[:c_m]
        np.divide(total, np.maximum(k, 1), out=out[:, :c_m])
        if k[0] == 0:  # no rest sample yet: keep the initial estimate
            out[:, :c_m][:, k == 0] = bias[:, None]
        b = out[:, c_m - 1]
    if c_m == chunks:
        return out
    d = 1.0 - co.bias_alpha
    n = n_rest[c_m:]
    dn = co.bias_keep_pow.take(n.astype(np.intp))  # d ** n
    e = rsum[:, c_m:] * ((1.0 - dn) / np.maximum(n, 1))  # b_c = D_c b_{c-1} + e_c
    # closed form per block: b_j = P_j (b_s + sum_{i<=j} e_i / P_i), P = cumulative product of D;
    # blocks hold at most 8/alpha rest samples, so 1/P stays below e^8 (< 1e-12 relative error)
    limit = max(float(_L), 8.0 / co.bias_alpha)
    log_d = math.log(d)
    cum_n = np.cumsum(n)
    start = 0
    total = len(n)
    while start < total:
        base = cum_n[start - 1] if start else 0
        stop = int(np.searchsorted(cum_n, base + limit, side="right"))
        stop = max(stop, start + 1)
        p = np.exp((cum_n[start:stop] - base) * log_d)
        seg = np.divide(e[:, start:stop], p)
        np.cumsum(seg, axis=1, out=seg)
        seg += b[:, None]
        seg *= p
        out[:, c_m + start : c_m + stop] = seg
        b = seg[:, -1]
        start = stop
    return out


def _pack_state(state: FusionState) -> list:
    """The state as the per-sample kernel's flat vector (layout: spinemon.core.fusion_kernel.S_*)."""
    st = [0.0] * fk.N_STATE
    st[fk.S_Q : fk.S_Q + 4] = state.quat.tolist()
    st[fk.S_ZI : fk.S_ZI + 6] = state.acc_lp_zi.reshape(-1).tolist()
    st[fk.S_LP : fk.S_LP + 3] = state.acc_lp_out.tolist()
    st[fk.S_U : fk.S_U + 3] = state.gravity.tolist()
    st[fk.S_MS] = float(state.acc_dev_ms)
    st[fk.S_W] = float(state.acc_weight)
    st[fk.S_RUN] = float(state.rest_run)
    st[fk.S_BIAS : fk.S_BIAS + 3] = state.bias.tolist()
    st[fk.S_HELD : fk.S_HELD + 3] = state.bias_held.tolist()
    st[fk.S_PART : fk.S_PART + 4] = state.bias_partial.tolist()
    st[fk.S_COUNT] = float(state.bias_count)
    st[fk.S_PHASE] = float(state.samples % _L)
    return st


def _unpack_state(st, state: FusionState, n: int) -> None:
    st = [float(v) for v in st]
    state.samples += n
    state.quat = np.array(st[fk.S_Q : fk.S_Q + 4])
    state.acc_lp_zi = np.array(st[fk.S_ZI : fk.S_ZI + 6]).reshape(2, 3)
    state.acc_lp_out = np.array(st[fk.S_LP : fk.S_LP + 3])
    state.gravity = np.array(st[fk.S_U : fk.S_U + 3])
    state.acc_dev_ms = st[fk.S_MS]
    state.acc_weight = st[fk.S_W]
    state.rest_run = int(st[fk.S_RUN])
    state.bias = np.array(st[fk.S_BIAS : fk.S_BIAS + 3])
    state.bias_held = np.array(st[fk.S_HELD : fk.S_HELD + 3])
    state.bias_partial = np.array(st[fk.S_PART : fk.S_PART + 4])
    state.bias_count = int(st[fk.S_COUNT])


def _step_small(acc, gyr, co, state, out_u, out_rest, out_w, out_bias, kernel=None) -> None:
    """The same filter, sample by sample (:func:`spinemon.core.fusion_kernel.step_python`).

    ``kernel`` is the numba-compiled step (any block length, writes into the
    output arrays), or ``None``: plain Python on lists, for short streaming
    blocks. ``out_rest`` None: gravity only (the flags are not written). A
    second, independent implementation of :func:`_step_chunked` (any start
    phase, any length): the tests check that both agree to 1e-9, vqf-style.
    """
    n = acc.shape[0]
    flags = out_rest is not None
    st = _pack_state(state)
    if kernel is not None:
        st = np.array(st)
        u = out_u.reshape(-1)
        assert np.shares_memory(u, out_u)
        if flags:
            b = out_bias.reshape(-1)
            assert np.shares_memory(b, out_bias)
            kernel(acc.reshape(-1), gyr.reshape(-1), co.kernel_coefficients, st, u, out_rest, out_w, b, True)
        else:
            none_b, none_f = np.empty(0, dtype=np.bool_), np.empty(0)
            kernel(
                acc.reshape(-1), gyr.reshape(-1), co.kernel_coefficients, st, u, none_b, none_f, none_f, False
            )
    else:
        u_flat = [0.0] * (3 * n)
        bias_flat = [0.0] * (3 * n) if flags else []
        rest_l = [False] * n if flags else []
        w_l = [0.0] * n if flags else []
        fk.step_python(
            acc.reshape(-1).tolist(),
            gyr.reshape(-1).tolist(),
            co.kernel_coefficients_list,
            st,
            u_flat,
            rest_l,
            w_l,
            bias_flat,
            flags,
        )
        out_u[:] = np.array(u_flat).reshape(n, 3)
        if flags:
            out_rest[:] = rest_l
            out_w[:] = w_l
            out_bias[:] = np.array(bias_flat).reshape(n, 3)
    _unpack_state(st, state, n)


ENGINES = ("compiled", "numpy")
_engine = "compiled"


def set_engine(name: str) -> None:
    """Which form runs: ``"compiled"`` (default; the per-sample kernel
    compiled by numba, for every block, when numba is installed; without
    numba the same as ``"numpy"``) or ``"numpy"`` (the chunked numpy path for
    blocks of >= 64 samples, the kernel as plain Python for shorter ones).
    Both give the same result to ~1e-12; tests and benchmarks run both."""
    global _engine
    if name not in ENGINES:
        raise ConfigError(f"fusion engine must be one of {ENGINES}, got {name!r}")
    _engine = name


def engine() -> str:
    """The form that runs now: "compiled" only if numba is installed."""
    return "compiled" if _engine == "compiled" and fk.compiled_step() is not None else "numpy"


def _kernel():
    return fk.compiled_step() if _engine == "compiled" else None


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


def _run_checked(
    acc: np.ndarray,
    gyr: np.ndarray,
    rate: float,
    settings: FusionSettings,
    state: FusionState | None,
    flags: bool = True,
    co: _Coefficients | None = None,
) -> FusionResult:
    co = co or _coefficients(rate, settings)
    n = acc.shape[0]
    if state is None:
        state = (
            _initial_state(acc, rate, settings)
            if n
            else FusionState.from_gravity(_DEFAULT_UP, rate, settings)
        )
    out_u = np.empty((n, 3))
    if flags:
        out_rest = np.empty(n, dtype=bool)
        out_w = np.empty(n)
        out_bias = np.empty((n, 3))
    else:  # gravity only: the chunked path skips writing the flags
        out_rest = out_w = out_bias = None
    state = state.copy()
    kernel = _kernel()
    head = min(n, (-state.samples) % _L)  # up to the next chunk boundary
    if n - head < _SMALL or (kernel is not None and n):
        head = n  # compiled: every block sample by sample
    whole = head + (n - head) // _L * _L

    def small(sl: slice) -> None:
        if flags:
            _step_small(acc[sl], gyr[sl], co, state, out_u[sl], out_rest[sl], out_w[sl], out_bias[sl], kernel)
        else:
            _step_small(acc[sl], gyr[sl], co, state, out_u[sl], None, None, None, kernel)

    if head:
        small(slice(0, head))
    ws = _Work()
    segment = _L * _SEGMENT_CHUNKS
    for s in range(head, whole, segment):
        e = min(whole, s + segment)
        if flags:
            _step_chunked(
                acc[s:e], gyr[s:e], co, state, out_u[s:e], out_rest[s:e], out_w[s:e], out_bias[s:e], ws
            )
        else:
            _step_chunked(acc[s:e], gyr[s:e], co, state, out_u[s:e], None, None, None, ws)
    if whole < n:
        small(slice(whole, n))
    return FusionResult(gravity=out_u, rest=out_rest, acc_weight=out_w, bias=out_bias, state=state)


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
    settings = settings or FusionSettings()
    rate = _check_rate(rate)
    acc, gyr = _check_samples(acc, gyr)
    return _run_checked(acc, gyr, rate, settings, None, flags=False).gravity


class GravityFilter:
    """Streaming form of :func:`run`: feed blocks of any size, state carries across.

    >>> f = GravityFilter(rate=104.0)
    >>> u = f.update(acc_block, gyr_block)   # (n, 3)

    The output equals :func:`gravity` on the concatenated input (to ~1e-12).
    """

    def __init__(self, rate: float, settings: FusionSettings | None = None, state: FusionState | None = None):
        self.rate = _check_rate(rate)
        self.settings = settings or FusionSettings()
        self._co = _coefficients(self.rate, self.settings)  # validates early
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
            result = _run_checked(acc, gyr, self.rate, self.settings, self.state, co=self._co)
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
