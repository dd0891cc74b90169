"""Fusion settings and state: what the filter is told (:class:`FusionSettings`),
what it carries from one block to the next (:class:`FusionState`), what it
gives (:class:`FusionResult`), and the coefficients both engines derive from
the settings and the rate. The filter itself: :mod:`spinemon.core.fusion`
(the public facade), :mod:`spinemon.core.fusion_kernel` (the per-sample
kernel, compiled by numba when installed) and
:mod:`spinemon.core.fusion_numpy` (the chunked numpy engine)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TypeGuard

import numpy as np

from spinemon.core import fusion_kernel as fk
from spinemon.errors import ConfigError, FusionInputError

__all__ = ["FusionInputError", "FusionResult", "FusionSettings", "FusionState", "G"]

_L = 16  # samples per chunk; the low-pass output, trust weight and bias are latched at chunk ends
_TAYLOR_MAX = 1e-2  # (half rotation angle per sample)^2 up to which the Taylor series is exact (t < 0.1 rad)

G = 9.80665
"""Standard gravity, m/s^2."""

_DEFAULT_UP = (1.0, 0.0, 0.0)  # nominal mounting, standing: sensor +X is up


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


def _is_real(value: object) -> TypeGuard[float]:
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
    #: the chunk-parallel filters of the numpy engine, built there on first use
    #: (they need scipy.signal, which the per-sample path of streaming frames never does)
    batch_filters: dict = field(default_factory=dict, compare=False, repr=False)

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
