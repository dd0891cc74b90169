"""Angles from gravity directions: mounting, sagittal/frontal inclination, lumbar angles, twist.

Conventions (docs/architecture.md): body frame X superior, Y to the wearer's
left, Z posterior. From a body-frame gravity direction ``u = (ux, uy, uz)``:
sagittal inclination ``atan2(uz, ux)`` (flexion positive), frontal inclination
``asin(uy)`` (bending to the wearer's right positive). Lumbar flexion = upper
sagittal - lower sagittal, lateral bend = upper frontal - lower frontal, twist
= leaky integral of (upper X-rate - lower X-rate), or (``relative_twist``,
pipeline rules 8) of the upper's rate relative to the lower about the upper's
X (:func:`relative_twist_rate`). With one IMU, the angle is
that sensor's inclination and is labelled ``"single-sensor inclination"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spinemon.core.stage import StageState
from spinemon.errors import AngleInputError, CalibrationError, ConfigError

__all__ = [
    "LABEL_LUMBAR",
    "LABEL_SINGLE",
    "AngleInputError",
    "AngleStage",
    "AngleTracker",
    "LumbarAngles",
    "Mounting",
    "frontal_deg",
    "lumbar_angles",
    "sagittal_deg",
]

LABEL_LUMBAR = "lumbar flexion"
LABEL_SINGLE = "single-sensor inclination"


def _vectors(name: str, v: object) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise AngleInputError(f"{name} must be numeric") from None
    if a.ndim not in (1, 2) or a.shape[-1] != 3:
        raise AngleInputError(f"{name} must have shape (3,) or (N, 3), got {a.shape}")
    if not np.isfinite(a).all():
        raise AngleInputError(f"{name} must be finite")
    return a


@dataclass(frozen=True)
class Mounting:
    """Rotation from a sensor frame to its segment's body frame: ``u_body = rotation @ u_sensor``.

    The default is the nominal mounting (identity: sensor axes = body axes).
    """

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        r = np.asarray(self.rotation, dtype=np.float64)
        if r.shape != (3, 3) or not np.isfinite(r).all():
            raise ConfigError("Mounting.rotation must be a finite 3x3 matrix")
        if np.abs(r @ r.T - np.eye(3)).max() > 1e-6 or np.linalg.det(r) < 0:
            raise ConfigError("Mounting.rotation must be a proper rotation matrix")
        r = r.copy()
        r.setflags(write=False)
        object.__setattr__(self, "rotation", r)

    @classmethod
    def from_neutral(cls, u_sensor_mean: object) -> Mounting:
        """The minimal rotation that takes the standing gravity direction (sensor frame) to body +X.

        ``u_sensor_mean``: mean gravity direction measured while standing tall
        (any length > 0). Heading about X stays as mounted (the nominal axes).

        Raises:
            CalibrationError: the direction is zero or not finite.
        """
        a = np.asarray(u_sensor_mean, dtype=np.float64).reshape(-1)
        if a.shape != (3,) or not np.isfinite(a).all() or not np.linalg.norm(a) > 0:
            raise CalibrationError(
                f"neutral gravity direction must be a finite non-zero 3-vector, got {u_sensor_mean!r}"
            )
        a = a / np.linalg.norm(a)
        b = np.array([1.0, 0.0, 0.0])
        v = np.cross(a, b)
        c = float(a @ b)
        if c < -1.0 + 1e-12:  # upside down: half turn about Z
            return cls(np.diag([-1.0, -1.0, 1.0]))
        vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
        r = np.eye(3) + vx + vx @ vx / (1.0 + c)
        # re-orthonormalise (exact rotations only)
        uu, _, vt = np.linalg.svd(r)
        return cls(uu @ vt)

    def neutral_up(self) -> np.ndarray:
        """Up at neutral (body +X) in the sensor frame: the calibrated neutral gravity direction."""
        return self.rotation.T @ np.array([1.0, 0.0, 0.0])

    def to_body(self, v_sensor: object) -> np.ndarray:
        """Express sensor-frame vectors (3,) or (N, 3) (gravity directions, rates) in the body frame.

        Written out component by component rather than as ``v @ R.T``: BLAS
        picks its kernel by the number of rows, so a matrix product can round
        a row differently in a block of 1 and a block of 1000. Element-wise
        sums round each row the same whatever the block (the pipeline's
        results must not depend on how the stream is cut)."""
        if type(v_sensor) is np.ndarray and v_sensor.ndim == 2 and len(v_sensor) <= _DIRECT_ROWS:
            # a frame's few rows: rotated at once (the same operations per
            # element as below, in the same order: the same bits), quicker
            # than looking for them among the shared rotations
            v = _vectors("v_sensor", v_sensor)
            r = self.rotation
            return v[:, 0:1] * r[:, 0] + v[:, 1:2] * r[:, 1] + v[:, 2:3] * r[:, 2]
        key = _shared_key(v_sensor)
        if key is not None:
            ptr, (n, _), strides = key
            for m, (p0, (n0, _), s0), _v, out0 in _SHARED:
                if m is self and s0 == strides and (ptr - p0) % strides[0] == 0:
                    k = (ptr - p0) // strides[0]  # these rows are rows k.. of a block rotated already
                    if k >= 0 and k + n <= n0:
                        return out0[k : k + n]
        v = _vectors("v_sensor", v_sensor)
        r = self.rotation
        if v.ndim == 1:
            return v[0] * r[:, 0] + v[1] * r[:, 1] + v[2] * r[:, 2]
        out = np.empty_like(v)
        rotate = _rotate_compiled()
        if rotate is not None:  # numba: the same operations per element, in one pass
            rotate(v, r, out)
        else:
            # one output column at a time, in the same order of operations (the
            # same bits), with one scratch row instead of six (N, 3) temporaries
            v0, v1, v2 = v[:, 0], v[:, 1], v[:, 2]
            t = np.empty(len(v))
            u = np.empty(len(v))
            for j in range(3):
                np.multiply(v0, r[j, 0], out=t)
                np.multiply(v1, r[j, 1], out=u)
                t += u
                np.multiply(v2, r[j, 2], out=u)
                t += u
                out[:, j] = t
        if key is not None:
            out.setflags(write=False)  # shared: nobody may change it under the others
            assert isinstance(v_sensor, np.ndarray)  # a key is only made for one
            _SHARED.insert(0, (self, key, v_sensor, out))  # the input kept alive: its memory is not reused
            del _SHARED[_SHARED_MAX:]
        return out


#: the last rotations of read-only blocks (a fused block's gravity and gyro,
#: see ``gravity.Fused``), shared by the stages that rotate the same block or
#: a piece of it (angles, segmenter, drift, watch): (mounting, key, input,
#: output), newest first. Rows are rotated one by one (element-wise), so a
#: piece cut from a rotated block has the bits its own rotation would have
_SHARED: list[tuple[Mounting, tuple, np.ndarray, np.ndarray]] = []
_SHARED_MAX = 8
#: blocks of at most this many rows (a frame's, live) are rotated directly, not shared
_DIRECT_ROWS = 64


def rotate_python(v: np.ndarray, r: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = r @ v[i]`` per row, each element ``(v0*r[j,0] + v1*r[j,1]) +
    v2*r[j,2]``: the operations of :meth:`Mounting.to_body`'s numpy path, in
    their order (the same bits; numba does not fuse them unless told to)."""
    for i in range(v.shape[0]):
        a = v[i, 0]
        b = v[i, 1]
        c = v[i, 2]
        for j in range(3):
            out[i, j] = (a * r[j, 0] + b * r[j, 1]) + c * r[j, 2]


_rotate: object = None  # rotate_python compiled (False: numba is not installed)


def _rotate_compiled():
    """:func:`rotate_python` compiled by numba (loaded from its on-disk cache
    after the first time), or None without numba (the `fast` extra)."""
    global _rotate
    if _rotate is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - exercised when numba is absent
            _rotate = False
        else:
            _rotate = numba.njit(cache=True, nogil=True)(rotate_python)
    return _rotate or None


def warm_up() -> None:
    """Compile (or load from numba's cache) the rotation of long blocks now; nothing without numba."""
    rotate = _rotate_compiled()
    if rotate is not None:
        v = np.zeros((1, 3))
        rotate(v, np.eye(3), np.empty_like(v))


def _shared_key(v: object) -> tuple | None:
    """Where an (N, 3) float64 array's numbers are, if nothing can change
    them (it and every array it views are read-only): the same key, the same
    numbers (the entry keeps the array alive, so its memory is not reused)."""
    if not isinstance(v, np.ndarray) or v.ndim != 2 or v.dtype != np.float64:
        return None
    a: object = v
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return None
        a = a.base
    return (v.__array_interface__["data"][0], v.shape, v.strides)


def sagittal_deg(u_body: object) -> np.ndarray | float:
    """Sagittal inclination ``atan2(uz, ux)`` in degrees: flexion (bending forward) positive."""
    u = _vectors("u_body", u_body)
    out = np.degrees(np.arctan2(u[..., 2], u[..., 0]))
    return float(out) if u.ndim == 1 else out


def frontal_deg(u_body: object) -> np.ndarray | float:
    """Frontal inclination ``asin(uy)`` in degrees (of the normalised vector): bending to the right positive."""
    u = _vectors("u_body", u_body)
    if u.ndim == 1:
        return float(_frontal_rows(u[None])[0])
    return _frontal_rows(u)


def _frontal_rows(u: np.ndarray) -> np.ndarray:
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    # |u| per row as np.linalg.norm(u, axis=-1) computes it, (x*x + y*y) + z*z
    # (the same bits), column by column: a reduction over a last axis of 3 is slow
    n = x * x
    sq = y * y
    n += sq
    np.multiply(z, z, out=sq)
    n += sq
    np.sqrt(n, out=n)
    pos = n > 0
    if pos.all():
        s = np.divide(y, n, out=sq)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(pos, y / np.where(pos, n, 1.0), 0.0)
    np.clip(s, -1.0, 1.0, out=s)
    return np.degrees(np.arcsin(s, out=s), out=s)


@dataclass
class LumbarAngles:
    """Angles for a block of samples, degrees.

    Attributes:
        flexion_deg: (N,) lumbar flexion (upper - lower sagittal), or with one IMU
            that sensor's sagittal inclination.
        lateral_deg: (N,) lateral bend (upper - lower frontal), or the one sensor's frontal inclination.
        twist_deg: (N,) relative axial rotation (leaky integral of the upper's
            X-rate less the lower's: :class:`AngleTracker`), or with one IMU the leaky integral of its own X-rate.
        single_sensor: True when computed from one IMU.
        label: ``"lumbar flexion"`` or ``"single-sensor inclination"``.
    """

    flexion_deg: np.ndarray
    lateral_deg: np.ndarray
    twist_deg: np.ndarray
    single_sensor: bool
    label: str

    def __len__(self) -> int:
        return len(self.flexion_deg)

    def slice(self, start: int, stop: int | None = None) -> LumbarAngles:
        if start == 0 and (stop is None or stop >= len(self)):
            return self
        return LumbarAngles(
            self.flexion_deg[start:stop],
            self.lateral_deg[start:stop],
            self.twist_deg[start:stop],
            self.single_sensor,
            self.label,
        )

    @staticmethod
    def concatenate(parts: list[LumbarAngles]) -> LumbarAngles:
        """Consecutive blocks' angles as one (mode and label of the last)."""
        if len(parts) == 1:
            return parts[0]
        return LumbarAngles(
            np.concatenate([p.flexion_deg for p in parts]),
            np.concatenate([p.lateral_deg for p in parts]),
            np.concatenate([p.twist_deg for p in parts]),
            parts[-1].single_sensor,
            parts[-1].label,
        )


class AngleTracker:
    """Streaming angles: feed blocks of gravity directions (and gyros for twist).

    The only state is the twist integrator (``twist_deg``; with
    ``relative_twist`` also ``axial_deg``), so the output is
    the same for any split of the stream into blocks; :func:`lumbar_angles`
    is the batch form.

    Args:
        rate: sample rate, Hz.
        upper: mounting of the upper (T12/L1) sensor.
        lower: mounting of the lower (sacrum) sensor, or ``None`` for a one-IMU wearable.
        twist_leak_tau_s: time constant of the twist's leak back to 0, s.
        relative_twist: the twist's rate is the upper segment's rate about its
            spine axis less the lower segment's angular velocity turned into
            the upper's frame by the lumbar flexion and lateral bend (rules 8,
            :func:`relative_twist_rate`); False: less the lower's rate about
            its own spine axis.
    """

    def __init__(
        self,
        rate: float,
        upper: Mounting | None = None,
        lower: Mounting | None = None,
        *,
        single_sensor: bool = False,
        twist_leak_tau_s: float = 10.0,
        relative_twist: bool = False,
    ):
        if not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise ConfigError(f"rate must be a finite number > 0 Hz, got {rate!r}")
        if (
            not isinstance(twist_leak_tau_s, (int, float))
            or not math.isfinite(twist_leak_tau_s)
            or twist_leak_tau_s <= 0
        ):
            raise ConfigError(f"twist_leak_tau_s must be a finite number > 0, got {twist_leak_tau_s!r}")
        self.rate = float(rate)
        self.upper = upper or Mounting()
        self.lower = lower or Mounting()
        self.single_sensor = bool(single_sensor)
        self.twist_leak_tau_s = float(twist_leak_tau_s)
        self.relative_twist = bool(relative_twist)
        dt = 1.0 / self.rate
        self._leak = math.exp(-dt / self.twist_leak_tau_s)
        self._b = np.array([math.degrees(dt)])
        self._a = np.array([1.0, -self._leak])
        self.twist_deg = 0.0
        #: with ``relative_twist``: the leaky integral of the gyros' difference
        #: about their own spine axes (the rules 1-7 twist), which turns the
        #: upper's gravity about its spine in :func:`spine_axis_in_lower`
        self.axial_deg = 0.0

    @property
    def label(self) -> str:
        return LABEL_SINGLE if self.single_sensor else LABEL_LUMBAR

    def _leaky_integral(self, rate_x: np.ndarray, y0: float) -> np.ndarray:
        """twist_k = leak * twist_(k-1) + dt * rate_k (deg), from ``y0``; the
        same recurrence as ``scipy.signal.lfilter`` (used for long blocks only: the
        streaming path never imports scipy.signal)."""
        if len(rate_x) > 64:
            from scipy import signal

            return signal.lfilter(self._b, self._a, rate_x, zi=np.array([self._leak * y0]))[0]
        out = np.empty(len(rate_x))
        y, k, b0 = y0, self._leak, float(self._b[0])
        for i, x in enumerate(rate_x.tolist()):
            y = k * y + b0 * x
            out[i] = y
        return out

    def update(
        self,
        upper_u: object,
        upper_gyr: object = None,
        lower_u: object = None,
        lower_gyr: object = None,
    ) -> LumbarAngles:
        """Angles for one block. Gravity directions (n, 3) sensor frame; gyros (n, 3) rad/s.

        Without gyros the twist is held (leaks toward 0 only while gyros arrive).
        """
        uu = _vectors("upper_u", upper_u).reshape(-1, 3)
        n = uu.shape[0]
        ub = self.upper.to_body(uu) if n else uu
        flex = sagittal_deg(ub) if n else np.empty(0)
        lat = frontal_deg(ub) if n else np.empty(0)
        rate_x = None
        if upper_gyr is not None:
            gu = _vectors("upper_gyr", upper_gyr).reshape(-1, 3)
            if gu.shape[0] != n:
                raise AngleInputError("upper_gyr must have as many rows as upper_u")
            rate_x = self.upper.to_body(gu)[:, 0] if n else np.empty(0)
        if not self.single_sensor:
            if lower_u is None:
                raise AngleInputError("two-sensor tracker needs lower_u (or use single_sensor=True)")
            lu = _vectors("lower_u", lower_u).reshape(-1, 3)
            if lu.shape[0] != n:
                raise AngleInputError("lower_u must have as many rows as upper_u")
            if n:
                lb = self.lower.to_body(lu)
                flex = flex - sagittal_deg(lb)
                lat = lat - frontal_deg(lb)
                # wrap the difference of two atan2 angles into (-180, 180]
                flex = (flex + 180.0) % 360.0 - 180.0
            if rate_x is not None:
                if lower_gyr is None:
                    raise AngleInputError("twist needs both gyros (lower_gyr missing)")
                gl = _vectors("lower_gyr", lower_gyr).reshape(-1, 3)
                if gl.shape[0] != n:
                    raise AngleInputError("lower_gyr must have as many rows as upper_u")
                if n:
                    wl = self.lower.to_body(gl)
                    axial_rate = rate_x - wl[:, 0]
                    if self.relative_twist:
                        axial = self._leaky_integral(axial_rate, self.axial_deg)
                        self.axial_deg = float(axial[-1])
                        rate_x = relative_twist_rate(rate_x, wl, spine_axis_in_lower(ub, lb, axial))
                    else:
                        rate_x = axial_rate
        if rate_x is None or n == 0:
            twist = np.full(n, self.twist_deg)
        else:
            twist = self._leaky_integral(rate_x, self.twist_deg)
            self.twist_deg = float(twist[-1])
        return LumbarAngles(
            flexion_deg=np.asarray(flex, dtype=np.float64),
            lateral_deg=np.asarray(lat, dtype=np.float64),
            twist_deg=twist,
            single_sensor=self.single_sensor,
            label=self.label,
        )


def spine_axis_in_lower(upper_u: np.ndarray, lower_u: np.ndarray, axial_deg: np.ndarray) -> np.ndarray:
    """(n, 3): the upper segment's spine axis (its body X) in the lower
    segment's body frame, from the two body-frame gravity directions
    (``upper_u``, ``lower_u``: (n, 3), any length) and the turn about the spine
    ``axial_deg`` (n,). The lumbar rotation ``R`` (lower from upper) maps
    ``upper_u`` to ``lower_u``; it is taken as the turn about the upper's X
    followed by the smallest rotation taking the upper's gravity, so turned,
    onto the lower's (no turn about the vertical between the segments: the
    spine bends and twists, the two segments do not yaw apart about gravity
    beyond the twist itself). Returns ``R e_x``."""
    ux, uy, uz = upper_u.T
    lx, ly, lz = lower_u.T
    nu = np.sqrt(ux * ux + uy * uy + uz * uz)
    t = np.radians(axial_deg)
    ct, st = np.cos(t), np.sin(t)
    # the upper's gravity turned about its X by the axial turn, unit
    w0, w1, w2 = ux / nu, (ct * uy - st * uz) / nu, (st * uy + ct * uz) / nu
    nl = np.sqrt(lx * lx + ly * ly + lz * lz)
    lx, ly, lz = lx / nl, ly / nl, lz / nl
    k0, k1, k2 = w1 * lz - w2 * ly, w2 * lx - w0 * lz, w0 * ly - w1 * lx  # w x l: axis * sin(angle)
    c = w0 * lx + w1 * ly + w2 * lz  # cos(angle)
    # Rodrigues: M x = c x + k x x + (k . x) k / (1 + c), at x = e_x
    q = k0 / np.maximum(1.0 + c, 1e-6)
    return np.stack([c + q * k0, k2 + q * k1, q * k2 - k1], axis=1)


def relative_twist_rate(upper_x: np.ndarray, lower_gyr: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The lumbar spine's rate of twist (rad/s): the upper segment's angular
    velocity relative to the lower's, about the upper's spine axis.

    ``upper_x``: (n,) the upper segment's rate about its own X; ``lower_gyr``:
    (n, 3) the lower segment's angular velocity in its body frame; ``axis``:
    (n, 3) the upper's X in the lower's frame (:func:`spine_axis_in_lower`).
    The upper turns at ``R^T w_lower + w_relative``, so the relative rate about
    its X is ``upper_x - (R e_x) . w_lower``. Taking only the lower's own
    X-rate off (``upper_x - w_lower_x``, rules 1-7) counts part of the
    pelvis's hinge as twist whenever the two spine axes are not parallel:
    ``(R e_x)_y`` of its pitch rate, about sin 7 deg (0.12) of a 50 deg hinge
    in a single-leg deadlift's rep bent 6-7 deg sideways, 5 deg of twist that
    is not there (harsh bench, seed 22)."""
    return upper_x - (
        axis[:, 0] * lower_gyr[:, 0] + axis[:, 1] * lower_gyr[:, 1] + axis[:, 2] * lower_gyr[:, 2]
    )


def lumbar_angles(
    rate: float,
    upper_u: object,
    upper_gyr: object = None,
    lower_u: object = None,
    lower_gyr: object = None,
    *,
    upper: Mounting | None = None,
    lower: Mounting | None = None,
    twist_leak_tau_s: float = 10.0,
) -> LumbarAngles:
    """Batch form of :class:`AngleTracker`: angles for whole recordings.

    With ``lower_u=None`` the result is the upper sensor's inclination,
    labelled ``"single-sensor inclination"``.
    """
    tracker = AngleTracker(
        rate, upper, lower, single_sensor=lower_u is None, twist_leak_tau_s=twist_leak_tau_s
    )
    return tracker.update(upper_u, upper_gyr, lower_u, lower_gyr)


def twist_biases_known(fused, calibration) -> np.ndarray:
    """(n,) bool: both sensors' gyro biases are known at each sample of
    ``fused`` (a :class:`spinemon.core.gravity.Fused`): each sensor's
    zero-rate offset was measured in a still stretch this session (a still
    neutral: a non-zero ``Calibration.gyro_offset``; a stored
    calibration's), or its filter learnt its bias at rest
    (``Fused.bias_learnt``). The twist integrates the difference of the two
    gyros, so an unknown offset (1-2 deg/s) drifts it past its limit within
    seconds (``LimitWatch.limit_held``, the angle stage). Here, not in the
    gravity stage, so this helper imports no stage."""
    n = len(fused)
    known = np.ones(n, dtype=bool)
    for s in ("upper", "lower"):
        # (a still stretch that replaced a provisional neutral measures none: zeros)
        offset = calibration.gyro_offset.get(s)
        measured = calibration.source != "provisional" and offset is not None and bool(np.any(offset))
        if not measured:
            known &= fused.bias_learnt.get(s, np.zeros(n, dtype=bool))
    return known


class AngleStage:
    """The angles stage: fused gravity and gyros in, lumbar angles out.

    Wraps an :class:`AngleTracker` and follows what changes it: the
    calibration's mountings (a new neutral, the heading found in the range
    sweep, a re-zero after drift), the sensor layout (one-sensor mode while
    the lower IMU, or its calibration, is missing) and the sample rate. A
    restart keeps the twist where it was, so the twist does not jump at a
    calibration step. Exact under any split: the tracker is, and a restart
    happens between samples.

    Exposed state: ``tracker``, ``single_sensor`` (None before the first block).
    """

    def __init__(
        self, twist_leak_tau_s: float = 10.0, *, relative_twist: bool = False, twist_bias_known: bool = False
    ) -> None:
        self.twist_leak_tau_s = twist_leak_tau_s
        #: rules 8: the twist's rate relative to the pelvis (:func:`relative_twist_rate`)
        self.relative_twist = relative_twist
        #: rules 8: the twist integrated while a gyro's bias was not known is
        #: dropped at the first sample where both are (:func:`twist_biases_known`)
        self.twist_bias_known = twist_bias_known
        self.tracker: AngleTracker | None = None
        self.single_sensor: bool | None = None
        #: whether the last sample's twist had both gyro biases known (``twist_bias_known``)
        self.biases_known = True

    @property
    def label(self) -> str:
        return LABEL_SINGLE if self.single_sensor else LABEL_LUMBAR

    def state(self) -> StageState:
        """The stage's state as a value (:class:`spinemon.core.stage.Stage`):
        one-sensor mode and the tracker's rate, mountings and twist."""
        t = self.tracker
        return {
            "single_sensor": self.single_sensor,
            "biases_known": self.biases_known,
            "tracker": None
            if t is None
            else {
                "rate": t.rate,
                "upper": t.upper,
                "lower": t.lower,
                "single_sensor": t.single_sensor,
                "twist_deg": t.twist_deg,
                "axial_deg": t.axial_deg,
            },
        }

    def restore(self, state: StageState) -> None:
        """Go on from :meth:`state`."""
        self.single_sensor = state["single_sensor"]
        self.biases_known = state["biases_known"]
        t = state["tracker"]
        if t is None:
            self.tracker = None
            return
        self.tracker = AngleTracker(
            t["rate"],
            t["upper"],
            t["lower"],
            single_sensor=t["single_sensor"],
            twist_leak_tau_s=self.twist_leak_tau_s,
            relative_twist=self.relative_twist,
        )
        self.tracker.twist_deg = t["twist_deg"]
        self.tracker.axial_deg = t["axial_deg"]

    def follow_layout(self, sensors: tuple[str, ...], calibration) -> bool:
        """The sensors of the next block; True if one-sensor mode changed
        (the limits one sensor cannot watch change with it)."""
        single = "lower" not in sensors or (calibration is not None and "lower" not in calibration.mounting)
        if single == self.single_sensor:
            return False
        self.single_sensor = single
        if self.tracker is not None:
            self.restart(self.tracker.rate, calibration)
        return True

    def restart(self, rate: float, calibration) -> None:
        """Start again with ``calibration``'s mountings (the twist carries over)."""
        m = calibration.mounting
        twist = self.tracker.twist_deg if self.tracker is not None else 0.0
        axial = self.tracker.axial_deg if self.tracker is not None else 0.0
        self.tracker = AngleTracker(
            rate,
            m.get("upper"),
            m.get("lower"),
            single_sensor=bool(self.single_sensor),
            twist_leak_tau_s=self.twist_leak_tau_s,
            relative_twist=self.relative_twist,
        )
        self.tracker.twist_deg = twist
        self.tracker.axial_deg = axial

    def update(self, fused, calibration) -> LumbarAngles:
        """Angles of one fused block (:class:`spinemon.core.gravity.Fused`)."""
        rate = fused.block.rate_hz
        if self.tracker is None or abs(self.tracker.rate - rate) > 1e-6 * rate:
            self.restart(rate, calibration)
        tracker = self.tracker
        assert tracker is not None  # restart made one
        g, w = fused.gravity, fused.gyr
        if self.single_sensor:
            return tracker.update(g["upper"], w["upper"])
        if not self.twist_bias_known or not len(fused):
            return tracker.update(g["upper"], w["upper"], g["lower"], w["lower"])
        known = twist_biases_known(fused, calibration)
        # the first sample of each stretch with both biases known, after one without
        starts = np.flatnonzero(known & ~np.concatenate(([self.biases_known], known[:-1])))
        self.biases_known = bool(known[-1])
        if not len(starts):
            return tracker.update(g["upper"], w["upper"], g["lower"], w["lower"])
        parts, a = [], 0
        for b in [*starts.tolist(), len(fused)]:
            if b > a:
                parts.append(
                    tracker.update(g["upper"][a:b], w["upper"][a:b], g["lower"][a:b], w["lower"][a:b])
                )
            if b < len(fused):
                tracker.twist_deg = tracker.axial_deg = 0.0  # what the unknown biases built up is dropped
            a = b
        return LumbarAngles.concatenate(parts)
