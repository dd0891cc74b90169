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

**Engines**, chosen per filter (``engine=`` of :func:`run`, :func:`gravity`
and :class:`GravityFilter`, as VQF offers VQF, PyVQF and BasicVQF). With
numba installed (the ``fast`` extra) the per-sample kernel runs compiled and
takes every block, long or short (``"compiled"``, the default: about 7x VQF's
``updateBatch``, and batch and streaming are then one loop, equal bit for bit
for any split). Without numba, or with ``engine="numpy"``, long blocks take
the chunked numpy path above and short ones the kernel as plain Python. The
tests run both engines.

**Modules.** This module is the facade (the batch and streaming entry
points, the engine choice); :mod:`spinemon.core.fusion_settings` holds the
settings, state, result and coefficients, :mod:`spinemon.core.fusion_numpy`
the chunked numpy engine and :mod:`spinemon.core.fusion_kernel` the
per-sample kernel.

Entry points: :func:`gravity` (batch, unit vectors), :func:`run` (batch with
flags and the final :class:`FusionState`), :class:`GravityFilter`
(streaming, block by block). Batch and streaming agree to ~1e-12 for any
block split.
"""

from __future__ import annotations

import numpy as np

from spinemon.core import fusion_kernel as fk
from spinemon.core.fusion_numpy import _SEGMENT_CHUNKS, _SMALL, _step_chunked, _Work
from spinemon.core.fusion_settings import (
    _DEFAULT_UP,
    _L,
    FusionInputError,
    FusionResult,
    FusionSettings,
    FusionState,
    G,
    _check_rate,
    _check_samples,
    _Coefficients,
    _coefficients,
)
from spinemon.errors import ConfigError

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
    "run",
]


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
    st: list | np.ndarray = _pack_state(state)
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


def _check_engine(name: str) -> str:
    if name not in ENGINES:
        raise ConfigError(f"fusion engine must be one of {ENGINES}, got {name!r}")
    return name


def engine(name: str = "compiled") -> str:
    """The form that runs when ``name`` is asked for: ``"compiled"`` (the
    default; the per-sample kernel compiled by numba, for every block) only
    if numba is installed, else ``"numpy"`` (the chunked numpy path for
    blocks of >= 64 samples, the kernel as plain Python for shorter ones).
    Both give the same result to ~1e-12; tests and benchmarks run both."""
    return "compiled" if _check_engine(name) == "compiled" and fk.compiled_step() is not None else "numpy"


def _kernel(name: str):
    return fk.compiled_step() if name == "compiled" else None


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
    *,
    engine: str = "compiled",
) -> FusionResult:
    """Fuse a block of samples; the batch entry point with flags and the final state.

    Args:
        acc: (N, 3) accelerometer, m/s^2, sensor frame.
        gyr: (N, 3) gyroscope, rad/s, sensor frame.
        rate: sample rate, Hz.
        settings: filter settings (defaults: :class:`FusionSettings`).
        state: state to continue from (not modified); ``None`` starts at rest
            with gravity along the first accelerometer sample.
        engine: ``"compiled"`` or ``"numpy"`` (see :func:`engine`).

    Returns:
        A :class:`FusionResult`; ``result.state`` continues the stream.

    Raises:
        ConfigError: bad rate or settings.
        FusionInputError: arrays of the wrong shape, different lengths or non-finite values.
    """
    settings = settings or FusionSettings()
    rate = _check_rate(rate)
    acc, gyr = _check_samples(acc, gyr)
    return _run_checked(acc, gyr, rate, settings, state, kernel=_kernel(_check_engine(engine)))


def _run_checked(
    acc: np.ndarray,
    gyr: np.ndarray,
    rate: float,
    settings: FusionSettings,
    state: FusionState | None,
    flags: bool = True,
    co: _Coefficients | None = None,
    kernel=None,
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
    # gravity only (flags False): the flags are not written, and come back empty
    out_rest = np.empty(n if flags else 0, dtype=bool)
    out_w = np.empty(n if flags else 0)
    out_bias = np.empty((n if flags else 0, 3))
    state = state.copy()
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
    *,
    engine: str = "compiled",
) -> np.ndarray:
    """Gravity direction (N, 3), unit vectors in the sensor frame (causal, batch).

    ``acc`` (N, 3) m/s^2, ``gyr`` (N, 3) rad/s, ``rate`` Hz. Zero-length input
    gives shape (0, 3). See :func:`run` for flags, the final state and ``engine``.
    """
    settings = settings or FusionSettings()
    rate = _check_rate(rate)
    acc, gyr = _check_samples(acc, gyr)
    kernel = _kernel(_check_engine(engine))
    return _run_checked(acc, gyr, rate, settings, None, flags=False, kernel=kernel).gravity


class GravityFilter:
    """Streaming form of :func:`run`: feed blocks of any size, state carries across.

    >>> f = GravityFilter(rate=104.0)
    >>> u = f.update(acc_block, gyr_block)   # (n, 3)

    The output equals :func:`gravity` on the concatenated input (to ~1e-12).
    ``engine``: ``"compiled"`` or ``"numpy"`` (see :func:`engine`), this filter's own.
    """

    def __init__(
        self,
        rate: float,
        settings: FusionSettings | None = None,
        state: FusionState | None = None,
        *,
        engine: str = "compiled",
    ):
        self.engine = _check_engine(engine)
        self._kernel = _kernel(engine)
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
            result = _run_checked(
                acc, gyr, self.rate, self.settings, self.state, co=self._co, kernel=self._kernel
            )
            self.state = result.state
        self.last_result = result
        return result

    @property
    def bias(self) -> np.ndarray:
        """Current gyro-bias estimate, rad/s."""
        if self.state is None:
            return np.array(self.settings.initial_bias_rad_s)
        return self.state.bias.copy()
