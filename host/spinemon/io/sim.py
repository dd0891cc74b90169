"""Simulated wearer: a seeded, deterministic lifter wearing one or two IMUs.

The model produces what the real wearable would send -- int16 samples packed
into SAMPLES frames exactly as the firmware packs them -- and keeps the ground
truth beside them (angles, gravity directions, mounting rotations, rep and
fault labels), so every later stage can be checked against it.

Model (see docs/architecture.md for the conventions it follows):

* **World frame W**: ``x`` forward (the way the lifter faces at the start),
  ``y`` to the lifter's left, ``z`` up. Standing tall, each body frame
  (``X`` superior, ``Y`` left, ``Z`` posterior) maps to W as X->z, Y->y, Z->-x.
* **Pelvis** (lower sensor): ``R_wp = Rz_W(yaw) R_WB0 Ry(pitch) Rz(-roll)``
  -- pitch about body +Y is a forward hip hinge (flexion positive), roll is a
  lateral tilt to the wearer's right.
* **Thorax** (upper sensor): ``R_wt = R_wp R_pt`` with the lumbar rotation
  ``R_pt = Ry(flexion) Rz(-bend) Rx(twist)``: flexion positive forward, bend
  positive to the wearer's right, twist positive counter-clockwise seen from
  above (about body +X).
* **Sensors**: ``R_ws = R_wb R_bs``; ``R_bs`` (body from sensor) is a random
  misalignment of a few degrees, and for the sacrum sensor also a forward
  pitch of 15-25 deg (the sensor reads that much "flexion" standing tall).
* **Ground truth angles** come from the true gravity-up direction in each
  true body frame, with the same formulas the host uses: sagittal
  ``atan2(uz, ux)``, frontal ``asin(uy)``; lumbar flexion = upper sagittal -
  lower sagittal; lateral bend = upper frontal - lower frontal; twist = the
  twist part (swing-twist decomposition about body X) of ``R_pt``. The input
  curves (pitch, roll, yaw, lumbar flexion/bend/twist) are kept as well; they
  differ from the measured-style truth when motions combine (e.g. twist in a
  hinge).
* **Accelerometer** = specific force in the sensor frame,
  ``R_ws^T (a_world + [0, 0, G])``. ``a_world`` is the second derivative of
  each sensor's position (hip translation + lever arms from the hip joint:
  lower ~0.1 m, upper ~0.35 m) plus half-sine bursts (pull start, lockout,
  bar set-down, foot strikes).
* **Gyroscope** sample ``k`` = the mean angular velocity over the sample
  period ending at ``t_k``, in the sensor frame:
  ``rotvec(R_ws(t_{k-1})^T R_ws(t_k)) / T``. Integrating it with
  ``R_k = R_{k-1} exp(w_k T)`` reproduces the orientation exactly (before
  noise, bias and quantisation).
* **Sensor errors**: white noise, a constant gyro bias per axis, full scale
  +-8 g / +-1000 dps, ``raw = round(value / LSB)`` clamped to int16.
* **Unilateral sets** (single-leg deadlift, lunge, split squat, single-arm
  press and row; ``SetSpec.side``): every rep also bends and twists the
  lumbar spine toward its working side by ``SIDE_LEAN_DEG`` (6-9 deg each,
  drawn per rep: bend to the left negative, chest turning left positive),
  plus ``SetSpec.asymmetry_deg`` on one side (the asymmetry fault: one side
  compensating). A single-arm row hinges into position and holds still
  ``ROW_SETTLE_S`` before its first pull, and stands up after its last.
* **Device angle** in every sample is ``spinemon_protocol.ANGLE_NONE`` (the
  simulator does not run the firmware's guard filter).

Times in the ground truth are device times in seconds, unwrapped:
``time_start_us / 1e6 + k * period_us / 1e6`` for sample ``k``.

Long sessions: :func:`iter_frames` renders the session in fixed chunks and
yields frames without keeping the sample arrays; :func:`simulate` uses the
same chunks, so both give byte-identical frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from scipy.spatial.transform import Rotation

import spinemon_protocol as proto
from spinemon.errors import ConfigError

__all__ = [
    "EXERCISES",
    "FAULTS",
    "FAULTS_BY_EXERCISE",
    "HOLD_EXERCISES",
    "SET_SIDES",
    "SIDE_LEAN_DEG",
    "UNILATERAL_EXERCISES",
    "CalibrationTruth",
    "Exercise",
    "Fault",
    "G",
    "HoldTruth",
    "ImuSignals",
    "RepTruth",
    "SetSpec",
    "SetTruth",
    "SimSession",
    "SimSettings",
    "Wearer",
    "demo_workout",
    "iter_frames",
    "simulate",
]

G = 9.80665

Exercise = Literal[
    "deadlift", "squat", "overhead_press", "curl", "plank", "bird_dog", "dead_bug", "glute_bridge",
    "single_leg_deadlift", "lunge", "split_squat", "single_arm_press", "single_arm_row",
]  # fmt: skip
Fault = Literal[
    "rounding", "arching", "hip_swing", "twisting", "creep", "sag", "pike", "pelvis_rotation", "forward_lean"
]
#: unilateral lifts: one side at a time (SetSpec.side); the same names as spinemon.core.detect.UNILATERAL_EXERCISES
UNILATERAL_EXERCISES: tuple[str, ...] = (
    "single_leg_deadlift",
    "lunge",
    "split_squat",
    "single_arm_press",
    "single_arm_row",
)
#: lifts (counted in reps)
EXERCISES: tuple[str, ...] = ("deadlift", "squat", "overhead_press", "curl") + UNILATERAL_EXERCISES
#: core holds (timed): plank face down, bird dog on all fours, dead bug on the back, glute bridge
HOLD_EXERCISES: tuple[str, ...] = ("plank", "bird_dog", "dead_bug", "glute_bridge")
FAULTS: tuple[str, ...] = (
    "rounding",
    "arching",
    "hip_swing",
    "twisting",
    "creep",
    "sag",
    "pike",
    "pelvis_rotation",
    "forward_lean",
)
#: which faults each exercise can show. ``creep``: fatigue -- the rep rounds
#: 15-18 deg more than the set's first rep (whose flexion is then kept small),
#: but stays below half the range
FAULTS_BY_EXERCISE: dict[str, tuple[Fault, ...]] = {
    "deadlift": ("rounding", "twisting", "creep"),
    # forward_lean: the hips shoot back, the trunk inclines 68-82 deg (a good
    # morning) with the lumbar spine neutral: one sensor sees it, two see no rounding
    "squat": ("rounding", "twisting", "creep", "forward_lean"),
    "overhead_press": ("arching", "twisting"),
    "curl": ("hip_swing", "twisting"),
    "single_leg_deadlift": ("rounding", "twisting"),
    "lunge": ("arching", "twisting"),
    "split_squat": ("arching", "twisting"),
    "single_arm_press": ("arching", "twisting"),
    "single_arm_row": ("rounding", "twisting"),
    "plank": ("sag", "pike"),
    "bird_dog": ("pelvis_rotation", "arching"),
    "dead_bug": ("pelvis_rotation", "arching"),
    "glute_bridge": ("arching",),
}
IMU_NAMES = ("upper", "lower")  # protocol mask bit 0, bit 1

#: SetSpec.side: the working side of every rep, or "alternate" (left, right, left, ...)
SET_SIDES: tuple[str, ...] = ("left", "right", "alternate")
#: how far the trunk of the simulated wearer yields toward the working side
#: in a clean unilateral rep, lumbar lateral bend and twist each (deg, drawn
#: per rep): a one-sided load pulls the trunk a little toward it. 6-9 deg is
#: past spinemon.core.unilateral.SIDE_MIN_DEG (5) and well inside the 15 deg limits.
SIDE_LEAN_DEG: tuple[float, float] = (6.0, 9.0)

#: a single-arm row starts by hinging into position and holding still this
#: long (s): a real lifter sets up before the first pull
ROW_SETTLE_S = 3.5

#: samples rendered per chunk; a multiple of every samples-per-frame value so
#: frames never straddle chunks (8 for two IMUs, 16 for one)
CHUNK = 4096

_D2R = math.pi / 180.0


# ---------------------------------------------------------------------------
# settings, wearer, workout description
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SetSpec:
    """One set: ``reps`` repetitions of ``exercise``. ``faults`` maps a rep
    number (from 1) to a fault name, e.g. ``{4: "rounding"}``. ``rest_s`` of
    rest follow the set: standing still, or if ``walk_during_rest`` walking
    about (turning round in each walk of 4 s or more; a rest of 9 s or more
    also loads a plate: a 3 s hip hinge with a neutral spine). After the last
    set the wearer just stands for 2 s."""

    exercise: Exercise
    reps: int
    faults: dict[int, Fault] = field(default_factory=dict)
    rest_s: float = 5.0
    walk_during_rest: bool = False
    #: rest sitting down: walk 2 s to a bench, sit slumped (lumbar flexion
    #: 55-65 % of the range, past hinge limits), walk 2 s back; rest_s >= 8
    sit_during_rest: bool = False
    #: how the plate is picked up in a walking rest: "neutral" (hip hinge) or
    #: "rounded" (lumbar flexion 60-75 % of the range: past the flexion limit)
    plate_pickup: str = "neutral"
    #: unrack and walk out (squat-style) before the first rep, walk in after the last
    unrack: bool = False
    #: holds (core exercises): seconds each hold lasts; ``reps`` holds per set
    hold_s: float = 20.0
    #: rep duration multiplier (1.5: slow reps, e.g. three slow flexions in about 12 s)
    tempo: float = 1.0
    #: unilateral lifts only: the working side ("left", "right", or
    #: "alternate": rep 1 left, rep 2 right, ...); None = "alternate"
    side: str | None = None
    #: the lifter names the side when marking the set ("lunge left"); an
    #: alternating set has no one side to name
    name_side: bool = True
    #: the asymmetry fault: left reps bend and twist this many degrees more
    #: toward their side than right reps do (negative: the right side more)
    asymmetry_deg: float = 0.0
    #: reps back to back, no pause at the top (real squat sets)
    back_to_back: bool = False
    #: the pelvis stays this far tilted forward between reps (deg; real squat
    #: sets: 23-37 deg), settling into it before the first rep and out of it after the last
    top_tilt_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.exercise not in EXERCISES + HOLD_EXERCISES:
            raise ConfigError(
                f"unknown exercise {self.exercise!r}; choose one of {', '.join(EXERCISES + HOLD_EXERCISES)}"
            )
        if self.exercise in UNILATERAL_EXERCISES:
            if self.side is None:
                object.__setattr__(self, "side", "alternate")
            if self.side not in SET_SIDES:
                raise ConfigError(f"side must be one of {', '.join(SET_SIDES)}, not {self.side!r}")
            if not (
                isinstance(self.asymmetry_deg, (int, float))
                and not isinstance(self.asymmetry_deg, bool)
                and -20.0 <= self.asymmetry_deg <= 20.0
            ):
                raise ConfigError(f"asymmetry_deg must be -20..20 deg, not {self.asymmetry_deg!r}")
        elif self.side is not None or self.asymmetry_deg:
            raise ConfigError(
                f"{self.exercise} is done with both sides: side and asymmetry_deg go with {', '.join(UNILATERAL_EXERCISES)}"
            )
        if self.plate_pickup not in ("neutral", "rounded"):
            raise ConfigError(f"plate_pickup must be 'neutral' or 'rounded', not {self.plate_pickup!r}")
        if not (isinstance(self.tempo, (int, float)) and 0.5 <= self.tempo <= 3.0):
            raise ConfigError(f"tempo must be 0.5..3 (a rep duration multiplier), not {self.tempo!r}")
        if self.sit_during_rest and (self.walk_during_rest or self.rest_s < 8.0):
            raise ConfigError("sit_during_rest needs rest_s >= 8 and excludes walk_during_rest")
        if not (isinstance(self.hold_s, (int, float)) and 5.0 <= self.hold_s <= 600.0):
            raise ConfigError(f"hold_s must be 5..600 s, not {self.hold_s!r}")
        if isinstance(self.reps, bool) or not isinstance(self.reps, int) or not 1 <= self.reps <= 100:
            raise ConfigError(f"reps must be an integer 1..100, not {self.reps!r}")
        if not isinstance(self.faults, dict):
            raise ConfigError("faults must be a dict {rep number: fault name}")
        for rep, fault in self.faults.items():
            if isinstance(rep, bool) or not isinstance(rep, int) or not 1 <= rep <= self.reps:
                raise ConfigError(f"fault rep number {rep!r} is not in 1..{self.reps}")
            if fault not in FAULTS_BY_EXERCISE[self.exercise]:
                allowed = ", ".join(FAULTS_BY_EXERCISE[self.exercise])
                raise ConfigError(f"fault {fault!r} does not apply to {self.exercise} (choose {allowed})")
        if not (isinstance(self.rest_s, (int, float)) and 0.0 <= self.rest_s <= 3600.0):
            raise ConfigError(f"rest_s must be 0..3600 s, not {self.rest_s!r}")
        if not (
            isinstance(self.top_tilt_deg, (int, float))
            and not isinstance(self.top_tilt_deg, bool)
            and 0.0 <= self.top_tilt_deg <= 45.0
        ):
            raise ConfigError(f"top_tilt_deg must be 0..45 deg, not {self.top_tilt_deg!r}")
        if self.top_tilt_deg and self.exercise != "squat":
            raise ConfigError(
                "top_tilt_deg goes with squat sets (a deadlift returns the bar to the floor each rep)"
            )

    def as_dict(self) -> dict:
        return {
            "exercise": self.exercise,
            "reps": self.reps,
            "faults": [[r, f] for r, f in sorted(self.faults.items())],
            "rest_s": float(self.rest_s),
            "walk_during_rest": bool(self.walk_during_rest),
            # newer options only when used (older recordings stay as they were)
            **({"sit_during_rest": True} if self.sit_during_rest else {}),
            **({"plate_pickup": self.plate_pickup} if self.plate_pickup != "neutral" else {}),
            **({"unrack": True} if self.unrack else {}),
            **({"hold_s": float(self.hold_s)} if self.exercise in HOLD_EXERCISES else {}),
            **({"tempo": float(self.tempo)} if self.tempo != 1.0 else {}),
            **({"side": self.side, "name_side": bool(self.name_side)} if self.side is not None else {}),
            **({"asymmetry_deg": float(self.asymmetry_deg)} if self.asymmetry_deg else {}),
            **({"back_to_back": True} if self.back_to_back else {}),
            **({"top_tilt_deg": float(self.top_tilt_deg)} if self.top_tilt_deg else {}),
        }

    def rep_side(self, rep: int) -> str | None:
        """The working side of rep ``rep`` (from 1); None for a lift done with both sides."""
        if self.side is None:
            return None
        if self.side == "alternate":
            return "left" if rep % 2 == 1 else "right"
        return self.side

    @property
    def named_side(self) -> str | None:
        """The side the lifter names in the set's label (None: not named, or alternating)."""
        return self.side if self.name_side and self.side in ("left", "right") else None


@dataclass(frozen=True)
class SimSettings:
    """Device and sensor-error settings, physical units."""

    rate_hz: float = 100.0
    imus: tuple[str, ...] = ("upper", "lower")
    accel_noise: float = 0.03  # m/s^2 rms per axis
    gyro_noise: float = 0.004  # rad/s rms per axis
    gyro_bias_dps: float = 1.0  # each axis' constant bias is uniform in +-this
    misalignment_deg: float = 4.0  # each sensor is off by 0.5..1 x this, random axis
    #: crooked mounting: each sensor is also turned about the spine axis (X),
    #: upper by +this, lower by -0.6 x this (deg; 30..90 leaks flexion into
    #: lateral bend unless calibration finds the heading)
    mount_yaw_deg: float = 0.0
    sacrum_tilt_deg: tuple[float, float] = (15.0, 25.0)  # lower sensor pitch, range
    accel_fs_g: int = 8
    gyro_fs_dps: int = 1000
    bursts: bool = True  # linear-acceleration bursts (pull, lockout, set-down, steps)
    time_start_us: int = 0  # device clock (u32) at the first sample
    seq_start: int = 0  # sequence number (u32) of the first sample
    radio_delay_s: float = 0.008  # frame leaves this long after its last sample...
    radio_jitter_s: float = 0.007  # ...plus uniform 0..this
    #: the wearer stands still this long at the start, then moves (real people
    #: start after about 1 s; calibration needs 1 s)
    stand_s: float = 3.0
    #: each frame's device timestamp is late by up to this much (s, uniform):
    #: a real clock read late; the samples inside a frame keep the period
    clock_jitter_s: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.rate_hz, (int, float)) and 20 <= self.rate_hz <= 1000):
            raise ConfigError(f"rate_hz must be 20..1000, not {self.rate_hz!r}")
        imus = tuple(self.imus)
        if not imus or len(set(imus)) != len(imus) or any(i not in IMU_NAMES for i in imus):
            raise ConfigError(f"imus must be a non-empty subset of {IMU_NAMES}, not {self.imus!r}")
        object.__setattr__(self, "imus", imus)
        if not (isinstance(self.mount_yaw_deg, (int, float)) and -180.0 <= self.mount_yaw_deg <= 180.0):
            raise ConfigError(f"mount_yaw_deg must be -180..180, not {self.mount_yaw_deg!r}")
        if not (
            isinstance(self.stand_s, (int, float)) and (self.stand_s == 0 or 0.5 <= self.stand_s <= 60.0)
        ):
            raise ConfigError(
                f"stand_s must be 0 (no still start: the first rep at once) or 0.5..60 s, not {self.stand_s!r}"
            )
        for name in (
            "accel_noise",
            "gyro_noise",
            "gyro_bias_dps",
            "misalignment_deg",
            "radio_delay_s",
            "radio_jitter_s",
            "clock_jitter_s",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v < 1e3 and math.isfinite(v)):
                raise ConfigError(f"{name} must be a finite number >= 0, not {v!r}")
        lo, hi = self.sacrum_tilt_deg
        if not (-45 <= lo <= hi <= 45):
            raise ConfigError(
                f"sacrum_tilt_deg must be an ordered range within -45..45, not {self.sacrum_tilt_deg!r}"
            )
        try:
            proto.ranges_byte(self.accel_fs_g, self.gyro_fs_dps)
        except proto.ProtocolError:
            raise ConfigError(
                f"unsupported full scale {self.accel_fs_g} g / {self.gyro_fs_dps} dps"
            ) from None
        for name in ("time_start_us", "seq_start"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
                raise ConfigError(f"{name} must be a u32, not {v!r}")

    @property
    def mask(self) -> int:
        return (proto.SENSOR_UPPER if "upper" in self.imus else 0) | (
            proto.SENSOR_LOWER if "lower" in self.imus else 0
        )

    @property
    def ranges(self) -> int:
        return proto.ranges_byte(self.accel_fs_g, self.gyro_fs_dps)

    @property
    def period_us(self) -> int:
        return int(round(1e6 / self.rate_hz))

    @property
    def samples_per_frame(self) -> int:
        return proto.max_samples_per_frame(self.mask)

    @property
    def accel_lsb(self) -> float:
        """m/s^2 per count."""
        return self.accel_fs_g * G / 32768.0

    @property
    def gyro_lsb(self) -> float:
        """rad/s per count."""
        return self.gyro_fs_dps * _D2R / 32768.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["imus"] = list(self.imus)
        d["sacrum_tilt_deg"] = list(self.sacrum_tilt_deg)
        return d


@dataclass(frozen=True)
class Wearer:
    """The person and their device, drawn from the seed: personal lumbar
    range of motion, body dimensions, how the sensors sit, gyro biases."""

    rom_flexion_deg: float  # full forward bend, lumbar (positive)
    rom_extension_deg: float  # full backward bend, lumbar (negative)
    sacrum_tilt_deg: float  # lower sensor pitch on the sacrum
    misalignment_upper: tuple[float, float, float]  # rotation vector, deg
    misalignment_lower: tuple[float, float, float]
    gyro_bias_upper: tuple[float, float, float]  # rad/s, sensor frame
    gyro_bias_lower: tuple[float, float, float]
    hip_to_lumbar_m: float = 0.15  # hip joint -> lumbar pivot, along pelvis X
    lumbar_to_upper_m: float = 0.20  # lumbar pivot -> upper sensor, along thorax X
    hip_to_lower_m: float = 0.10  # hip joint -> lower sensor, along pelvis X
    skin_depth_m: float = 0.08  # sensors sit this far posterior of the joints
    mount_yaw_upper_deg: float = 0.0  # crooked mounting about the spine axis
    mount_yaw_lower_deg: float = 0.0

    @classmethod
    def from_seed(cls, seed: int, settings: SimSettings = SimSettings()) -> Wearer:
        rng = np.random.default_rng(np.random.SeedSequence(_check_seed(seed), spawn_key=(0,)))

        def misalignment() -> tuple[float, float, float]:
            axis = rng.standard_normal(3)
            axis /= np.linalg.norm(axis)
            angle = settings.misalignment_deg * rng.uniform(0.5, 1.0)
            x, y, z = (float(v) for v in axis * angle)
            return (x, y, z)

        def bias() -> tuple[float, float, float]:
            x, y, z = (float(v) for v in rng.uniform(-1, 1, 3) * settings.gyro_bias_dps * _D2R)
            return (x, y, z)

        scale = rng.uniform(0.9, 1.1)
        return cls(
            rom_flexion_deg=float(rng.uniform(55.0, 65.0)),
            rom_extension_deg=float(-rng.uniform(22.0, 30.0)),
            sacrum_tilt_deg=float(rng.uniform(*settings.sacrum_tilt_deg)),
            misalignment_upper=misalignment(),
            misalignment_lower=misalignment(),
            gyro_bias_upper=bias(),
            gyro_bias_lower=bias(),
            hip_to_lumbar_m=float(0.15 * scale),
            lumbar_to_upper_m=float(0.20 * scale),
            hip_to_lower_m=float(0.10 * scale),
            skin_depth_m=float(rng.uniform(0.06, 0.10)),
            mount_yaw_upper_deg=float(settings.mount_yaw_deg),
            mount_yaw_lower_deg=float(-0.6 * settings.mount_yaw_deg),
        )

    def body_from_sensor(self, imu: str) -> np.ndarray:
        """The true mounting rotation ``R_bs`` (3x3): v_body = R_bs @ v_sensor."""
        if imu == "upper":
            yaw = _rx(np.array([self.mount_yaw_upper_deg * _D2R]))[0]
            return Rotation.from_rotvec(np.array(self.misalignment_upper) * _D2R).as_matrix() @ yaw
        if imu == "lower":
            tilt = _ry(np.array([self.sacrum_tilt_deg * _D2R]))[0]
            yaw = _rx(np.array([self.mount_yaw_lower_deg * _D2R]))[0]
            return tilt @ Rotation.from_rotvec(np.array(self.misalignment_lower) * _D2R).as_matrix() @ yaw
        raise ConfigError(f"unknown imu {imu!r}")

    def gyro_bias(self, imu: str) -> np.ndarray:
        return np.array(self.gyro_bias_upper if imu == "upper" else self.gyro_bias_lower)

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def demo_workout() -> list[SetSpec]:
    """A short default workout (~2 minutes with calibration)."""
    return [
        SetSpec("deadlift", 5, {4: "rounding"}),
        SetSpec("overhead_press", 5, {3: "arching"}),
        SetSpec("squat", 5),
        SetSpec("curl", 6, {5: "hip_swing"}, rest_s=2.0),
    ]


# ---------------------------------------------------------------------------
# ground-truth records
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RepTruth:
    """One rep. Times are device seconds; peaks from the ground-truth angles."""

    set: int
    rep: int
    exercise: str
    t_start: float
    t_end: float
    fault: str | None
    peak_flexion_deg: float  # max lumbar flexion during the rep
    peak_extension_deg: float  # min lumbar flexion (most extended) during the rep
    peak_twist_deg: float  # twist of largest magnitude during the rep (signed)
    peak_lateral_deg: float  # lateral bend of largest magnitude (signed)
    side: str | None = None  # unilateral lifts: the working side of this rep


@dataclass(frozen=True)
class SetTruth:
    """One set, from the start of its first rep to the end of its last."""

    set: int
    exercise: str
    t_start: float
    t_end: float
    reps: int
    faults: tuple[tuple[int, str], ...]
    side: str | None = None  # unilateral lifts: left, right or alternate
    named_side: str | None = None  # the side the lifter names in the set's label


@dataclass(frozen=True)
class HoldTruth:
    """One hold of a core exercise: ``t_start``..``t_end`` in the posture
    (after getting down, before getting up); the fault, if any, and when."""

    set: int
    hold: int
    exercise: str
    t_start: float
    t_end: float
    fault: str | None
    fault_interval: tuple[float, float] | None


@dataclass(frozen=True)
class CalibrationTruth:
    """The calibration phase: neutral standing, then the optional range-of-
    motion sweep (slow full flexion, then extension), then standing again."""

    neutral: tuple[float, float] | None
    rom: tuple[float, float] | None
    standing_after: tuple[float, float] | None
    rom_flexion_deg: float | None  # peak lumbar flexion reached in the sweep (truth)
    rom_extension_deg: float | None


@dataclass(frozen=True, eq=False)
class ImuSignals:
    """One sensor's signals, per sample (arrays of n rows)."""

    name: str
    acc: np.ndarray  # (n,3) m/s^2, what was quantised (noise included)
    gyr: np.ndarray  # (n,3) rad/s, what was quantised (noise and bias included)
    acc_raw: np.ndarray  # (n,3) int16
    gyr_raw: np.ndarray  # (n,3) int16
    acc_true: np.ndarray  # (n,3) specific force, no noise
    gyr_true: np.ndarray  # (n,3) angular velocity, no noise, no bias
    gravity: np.ndarray  # (n,3) true gravity-up unit vector, sensor frame
    orientation: np.ndarray  # (n,4) world-from-sensor quaternion, scalar last (x,y,z,w)
    body_from_sensor: np.ndarray  # (3,3) true mounting rotation
    gyro_bias: np.ndarray  # (3,) rad/s


@dataclass(frozen=True, eq=False)
class SimSession:
    """Everything one simulation produced. Per-sample arrays have n rows."""

    seed: int
    settings: SimSettings
    wearer: Wearer
    set_specs: tuple[SetSpec, ...]
    frames: list[bytes]
    frame_times: np.ndarray  # s, device time when each frame leaves the device
    t: np.ndarray  # device time of each sample, s (unwrapped)
    seq: np.ndarray  # sample index (unwrapped sequence number), int64
    imus: dict[str, ImuSignals]  # only the sensors that are encoded
    lumbar_flexion_deg: np.ndarray
    lateral_bend_deg: np.ndarray
    twist_deg: np.ndarray
    upper_sagittal_deg: np.ndarray
    lower_sagittal_deg: np.ndarray
    upper_frontal_deg: np.ndarray
    lower_frontal_deg: np.ndarray
    inputs: dict[str, np.ndarray]  # the input curves (deg; hip translation in m)
    reps: list[RepTruth]
    sets: list[SetTruth]
    calibration: CalibrationTruth
    holds: list[HoldTruth] = field(default_factory=list)
    #: between-set activities: (kind, t_start, t_end), kind in walk, plate, sit, unrack, warmup
    activities: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return len(self.t)

    @property
    def duration_s(self) -> float:
        return self.n_samples * self.settings.period_us / 1e6

    def metadata(self) -> dict:
        """A JSON-able description to store in a recording beside the frames."""
        cal = self.calibration
        return {
            "generator": "spinemon.io.sim",
            "protocol_version": proto.PROTOCOL_VERSION,
            "seed": self.seed,
            "settings": self.settings.as_dict(),
            "mask": self.settings.mask,
            "ranges": self.settings.ranges,
            "period_us": self.settings.period_us,
            "n_samples": self.n_samples,
            "n_frames": len(self.frames),
            "wearer": self.wearer.as_dict(),
            "set_specs": [s.as_dict() for s in self.set_specs],
            "sets": [_record(s) for s in self.sets],
            "reps": [_record(r) for r in self.reps],
            "calibration": _record(cal),
            "holds": [_record(h) for h in self.holds],
            "mounting": {name: imu.body_from_sensor.round(12).tolist() for name, imu in self.imus.items()},
        }


def _record(obj) -> dict:
    out = {}
    for k, v in asdict(obj).items():
        if isinstance(v, tuple):
            v = [list(x) if isinstance(x, tuple) else x for x in v]
        elif isinstance(v, float):
            v = round(v, 6)
        out[k] = v
    return out


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, not {seed!r}")
    return int(seed)


# ---------------------------------------------------------------------------
# rotation helpers (stacks of 3x3 matrices)
# ---------------------------------------------------------------------------
def _rot(axis: int, a: np.ndarray) -> np.ndarray:
    """Right-handed rotations by angles ``a`` (any shape) about body axis
    ``axis`` (0 = x, 1 = y, 2 = z), as stacked 3x3 matrices."""
    c, s = np.cos(a), np.sin(a)
    i, j = ((1, 2), (2, 0), (0, 1))[axis]
    r = np.zeros(a.shape + (3, 3))
    r[..., axis, axis] = 1
    r[..., i, i] = c
    r[..., i, j] = -s
    r[..., j, i] = s
    r[..., j, j] = c
    return r


def _rx(a: np.ndarray) -> np.ndarray:
    return _rot(0, a)


def _ry(a: np.ndarray) -> np.ndarray:
    return _rot(1, a)


def _rz(a: np.ndarray) -> np.ndarray:
    return _rot(2, a)


#: body frame of a segment standing tall, in the world: X->z, Y->y, Z->-x
_R_WB0 = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


# ---------------------------------------------------------------------------
# motion timeline: a sum of smooth components on named channels
# ---------------------------------------------------------------------------
(
    PELVIS_PITCH,
    PELVIS_ROLL,
    PELVIS_YAW,
    LUMBAR_FLEX,
    LUMBAR_BEND,
    LUMBAR_TWIST,
    HIP_FWD,
    HIP_LEFT,
    HIP_UP,
    ACC_FWD,
    ACC_LEFT,
    ACC_UP,
) = range(12)
_NCH = 12
_INPUT_NAMES = {
    PELVIS_PITCH: "pelvis_pitch_deg",
    PELVIS_ROLL: "pelvis_roll_deg",
    PELVIS_YAW: "pelvis_yaw_deg",
    LUMBAR_FLEX: "lumbar_flexion_input_deg",
    LUMBAR_BEND: "lumbar_bend_input_deg",
    LUMBAR_TWIST: "lumbar_twist_input_deg",
    HIP_FWD: "hip_forward_m",
    HIP_LEFT: "hip_left_m",
    HIP_UP: "hip_up_m",
}
_ANGLE_CHANNELS = (PELVIS_PITCH, PELVIS_ROLL, PELVIS_YAW, LUMBAR_FLEX, LUMBAR_BEND, LUMBAR_TWIST)

_BUMP, _OSC, _PULSE, _STEP = range(4)


def _mj(x: np.ndarray) -> np.ndarray:
    """Minimum-jerk ramp 0 -> 1 on [0, 1], clipped outside (C2 smooth)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


class _Timeline:
    """Components ``(kind, channel, ts, te, params)``, summed per channel.
    BUMP (amp, a, b): ramp up ts->a, hold, ramp down b->te.
    OSC (amp, freq_hz, phase, ramp_s): sine with ramped envelope on [ts, te].
    PULSE (amp,): half sine on [ts, te].  STEP (amp,): ramp ts->te, then holds."""

    def __init__(self, comps: list[tuple]) -> None:
        self.comps = sorted(comps, key=lambda c: c[2])
        self.ts = np.array([c[2] for c in self.comps])
        self.end = np.array([math.inf if c[0] == _STEP else c[3] for c in self.comps])

    def eval(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros((_NCH, len(t)))
        if len(t) == 0 or not self.comps:
            return out
        sel = np.nonzero((self.ts <= t[-1]) & (self.end >= t[0]))[0]
        for j in sel:
            kind, ch, ts, te, p = self.comps[j]
            i0 = np.searchsorted(t, ts, "left")
            i1 = len(t) if kind == _STEP else np.searchsorted(t, te, "right")
            if i1 <= i0:
                continue
            tt = t[i0:i1]
            if kind == _BUMP:
                amp, a, b = p
                v = amp * _mj((tt - ts) / (a - ts)) * _mj((te - tt) / (te - b))
            elif kind == _OSC:
                amp, f, ph, ramp = p
                v = (
                    amp
                    * np.sin(2 * math.pi * f * (tt - ts) + ph)
                    * _mj((tt - ts) / ramp)
                    * _mj((te - tt) / ramp)
                )
            elif kind == _PULSE:
                v = p[0] * np.sin(math.pi * (tt - ts) / (te - ts))
            else:  # _STEP
                v = p[0] * _mj((tt - ts) / (te - ts))
            out[ch, i0:i1] += v
        return out


@dataclass
class _RepPlan:
    set: int
    rep: int
    exercise: str
    t_start: float
    t_end: float
    fault: str | None
    side: str | None = None


@dataclass
class _Plan:
    timeline: _Timeline
    duration_s: float
    reps: list[_RepPlan]
    sets: Sequence[tuple[int, str, float, float, int, tuple, str | None, str | None]]
    neutral: tuple[float, float] | None
    rom: tuple[float, float] | None
    standing_after: tuple[float, float] | None
    holds: list = field(default_factory=list)
    activities: list = field(default_factory=list)


def _bump(ch: int, amp: float, t0: float, dur: float, fr: tuple[float, float, float, float]) -> tuple:
    s, a, b, e = fr
    return (_BUMP, ch, t0 + s * dur, t0 + e * dur, (amp, t0 + a * dur, t0 + b * dur))


def _pulse(ch: int, amp: float, t0: float, dur: float) -> tuple:
    return (_PULSE, ch, t0, t0 + dur, (amp,))


def _creep_flex(
    fault: str | None, rng: np.random.Generator, w: Wearer, set_state: dict | None
) -> float | None:
    """Lumbar flexion of a rep in a set with spine creep (None: not such a set)."""
    if set_state is None or not set_state.get("creep"):
        return None
    if fault == "creep":
        return min(set_state["base"] + rng.uniform(15.0, 18.0), 0.45 * w.rom_flexion_deg)
    flex = rng.uniform(5.0, 9.0)
    if set_state.get("base") is None:
        set_state["base"] = flex
    return flex


def _rep_components(
    ex: str,
    fault: str | None,
    t0: float,
    rng: np.random.Generator,
    w: Wearer,
    bursts: bool,
    set_state: dict | None = None,
    tempo: float = 1.0,
    top_tilt_deg: float = 0.0,
) -> tuple[list, float]:
    """Components of one rep starting at t0; returns (components, duration)."""
    U = rng.uniform
    d = _D2R
    comps: list[tuple] = []
    rom_f, rom_e = w.rom_flexion_deg, -w.rom_extension_deg  # both positive here
    # small sway every rep
    side = (0.1, 0.4, 0.55, 0.9)
    if ex == "deadlift":
        dur = tempo * U(2.6, 3.6)
        main = (0.0, 0.38, 0.46, 0.92)
        pitch = U(50, 70)
        creep = _creep_flex(fault, rng, w, set_state)
        if fault == "rounding":
            flex = rom_f * U(0.66, 0.78)
            pitch -= U(5, 12)
        elif creep is not None:
            flex = creep
        else:
            flex = min(U(5, 15), 0.27 * rom_f)
        comps += [
            _bump(PELVIS_PITCH, pitch * d, t0, dur, main),
            _bump(LUMBAR_FLEX, flex * d, t0, dur, (0.04, 0.40, 0.48, 0.90)),
            _bump(HIP_UP, -U(0.15, 0.25), t0, dur, main),
            _bump(HIP_FWD, -U(0.08, 0.15), t0, dur, main),
        ]
        pull, lock = 0.46, 0.86
    elif ex == "squat":
        dur = tempo * U(2.8, 4.0)
        main = (0.0, 0.40, 0.50, 0.92)
        pitch = U(30, 45)
        creep = _creep_flex(fault, rng, w, set_state)
        if fault == "forward_lean":
            pitch = U(60, 70)
        if (
            fault == "forward_lean"
        ):  # the lumbar spine stays as in a clean squat; the trunk ends 68-82 deg forward
            flex = U(8, 12)
            fr = (0.04, 0.40, 0.50, 0.90)
        elif fault == "rounding":  # "butt wink": the pelvis tucks under at the bottom
            flex = rom_f * U(0.64, 0.72)
            fr = (0.22, 0.42, 0.50, 0.72)
            comps.append(_bump(PELVIS_PITCH, -U(5, 10) * d, t0, dur, fr))
        elif creep is not None:
            flex = creep
            fr = (0.04, 0.40, 0.50, 0.90)
        else:
            flex = U(3, 12)
            fr = (0.04, 0.40, 0.50, 0.90)
        pitch = (
            max(pitch - top_tilt_deg, U(6.0, 16.0)) if top_tilt_deg else pitch
        )  # from a tilted top (real sets: 6-16 deg swings)
        comps += [
            _bump(PELVIS_PITCH, pitch * d, t0, dur, main),
            _bump(LUMBAR_FLEX, flex * d, t0, dur, fr),
            _bump(HIP_UP, -U(0.35, 0.50), t0, dur, main),
            _bump(HIP_FWD, -U(0.10, 0.20), t0, dur, main),
        ]
        pull, lock = 0.50, 0.88
    elif ex in ("overhead_press", "single_arm_press"):
        dur = tempo * U(2.2, 3.2)
        main = (0.02, 0.35, 0.50, 0.92)
        if fault == "arching":
            ext = rom_e * U(0.80, 1.0)
            pitch = U(3, 8)
        else:
            ext = min(U(5, 8), 0.3 * rom_e)
            pitch = U(0, 3)
        comps += [
            _bump(PELVIS_PITCH, pitch * d, t0, dur, main),
            _bump(LUMBAR_FLEX, -ext * d, t0, dur, main),
            _bump(HIP_UP, -U(0.01, 0.03), t0, dur, (0.0, 0.10, 0.12, 0.20)),  # dip and drive
        ]
        pull, lock = 0.05, 0.33
    elif ex == "single_leg_deadlift":  # a hip hinge on one leg, the free leg going back
        dur = tempo * U(3.0, 4.0)
        main = (0.0, 0.40, 0.50, 0.92)
        pitch = U(40, 60)
        if fault == "rounding":
            flex = rom_f * U(0.66, 0.78)
            pitch -= U(5, 12)
        else:
            flex = min(U(5, 12), 0.25 * rom_f)
        comps += [
            _bump(PELVIS_PITCH, pitch * d, t0, dur, main),
            _bump(LUMBAR_FLEX, flex * d, t0, dur, (0.04, 0.42, 0.50, 0.90)),
            _bump(HIP_UP, -U(0.05, 0.12), t0, dur, main),
            _bump(HIP_FWD, -U(0.05, 0.10), t0, dur, main),
        ]
        pull, lock = 0.50, 0.88
    elif ex in ("lunge", "split_squat"):  # the hips drop, the trunk stays upright, the pelvis tips a little
        dur = tempo * U(2.6, 3.6)
        main = (0.0, 0.40, 0.50, 0.92)
        if fault == "arching":  # the rear hip's stretch tips the pelvis and arches the lower back
            flex = -rom_e * U(0.60, 0.75)
        else:
            flex = U(-3, 4)
        comps += [
            _bump(PELVIS_PITCH, U(8, 15) * d, t0, dur, main),
            _bump(LUMBAR_FLEX, flex * d, t0, dur, (0.04, 0.40, 0.50, 0.90)),
            _bump(HIP_UP, -U(0.30, 0.45), t0, dur, main),
        ]
        if ex == "lunge":  # a step forward and back
            comps.append(_bump(HIP_FWD, U(0.25, 0.40), t0, dur, main))
        pull, lock = 0.45, 0.88
    elif ex == "single_arm_row":  # from the hinged stance held through the set (see _plan): pull and lower
        dur = tempo * U(1.8, 2.6)
        fr = (0.05, 0.40, 0.50, 0.90)
        flex = rom_f * U(0.62, 0.72) if fault == "rounding" else U(2, 5)
        comps += [
            _bump(LUMBAR_FLEX, flex * d, t0, dur, fr),
            _bump(PELVIS_PITCH, -U(2, 5) * d, t0, dur, fr),
        ]
        pull, lock = 0.10, 0.45
    else:  # curl
        dur = tempo * U(2.0, 3.0)
        if fault == "hip_swing":  # a fast lean back to swing the weight up
            fr = (0.0, 0.18, 0.28, 0.60)
            comps += [
                _bump(LUMBAR_FLEX, -rom_e * U(0.70, 0.85) * d, t0, dur, fr),
                _bump(PELVIS_PITCH, -U(5, 10) * d, t0, dur, fr),
                _bump(HIP_FWD, U(0.03, 0.06), t0, dur, fr),
            ]
            pull, lock = 0.0, 0.25
        else:
            fr = (0.05, 0.40, 0.50, 0.90)
            comps += [
                _bump(LUMBAR_FLEX, U(-2, 3) * d, t0, dur, fr),
                _bump(PELVIS_PITCH, U(-2, 2) * d, t0, dur, fr),
            ]
            pull, lock = 0.05, 0.40
    if fault == "twisting":
        comps.append(
            _bump(LUMBAR_TWIST, rng.choice((-1.0, 1.0)) * U(20, 30) * d, t0, dur, (0.1, 0.45, 0.55, 0.9))
        )
    else:
        comps.append(_bump(LUMBAR_TWIST, U(-3, 3) * d, t0, dur, side))
    comps += [
        _bump(LUMBAR_BEND, U(-2, 2) * d, t0, dur, side),
        _bump(PELVIS_ROLL, U(-1.5, 1.5) * d, t0, dur, side),
        _bump(PELVIS_YAW, U(-2, 2) * d, t0, dur, side),
    ]
    if bursts:
        big = ex in ("deadlift", "squat") or fault == "hip_swing"
        hi = 6.0 if big else 3.5
        comps += [
            _pulse(ACC_UP, U(2.0, hi), t0 + pull * dur, U(0.05, 0.15)),
            _pulse(ACC_FWD, U(-1.0, 1.0) * hi / 2, t0 + pull * dur, U(0.05, 0.15)),
            _pulse(ACC_FWD, U(2.0, hi) * rng.choice((-1.0, 1.0)), t0 + lock * dur, U(0.05, 0.15)),
            _pulse(ACC_UP, -U(1.0, 3.0), t0 + lock * dur, U(0.05, 0.15)),
        ]
    return comps, dur


def _side_components(
    side: str, asymmetry_deg: float, t0: float, dur: float, rng: np.random.Generator
) -> list[tuple]:
    """The trunk yielding toward the working side in a unilateral rep: lumbar
    lateral bend and twist of :data:`SIDE_LEAN_DEG` each, toward ``side``
    (bend to the left is negative, a twist of the chest to the left positive:
    docs/architecture.md), plus the asymmetry fault on one side."""
    U = rng.uniform
    sign = -1.0 if side == "left" else 1.0  # lateral bend: + to the right
    extra = max(asymmetry_deg, 0.0) if side == "left" else max(-asymmetry_deg, 0.0)
    bend = U(*SIDE_LEAN_DEG) + extra
    twist = U(*SIDE_LEAN_DEG) + extra
    fr = (0.05, 0.40, 0.52, 0.90)
    return [
        _bump(LUMBAR_BEND, sign * bend * _D2R, t0, dur, fr),
        _bump(LUMBAR_TWIST, -sign * twist * _D2R, t0, dur, fr),
    ]


def _walk_components(t0: float, dur: float, rng: np.random.Generator, bursts: bool) -> list[tuple]:
    """Walking about between sets (turning round half way if there is time)."""
    U = rng.uniform
    d = _D2R
    f = U(0.85, 1.0)  # stride frequency; a step every 1/(2f) s
    ramp = min(0.6, dur / 3)
    te = t0 + dur
    comps = [
        (_OSC, HIP_UP, t0, te, (0.02, 2 * f, 0.0, ramp)),
        (_OSC, PELVIS_YAW, t0, te, (4 * d, f, 0.0, ramp)),
        (_OSC, PELVIS_ROLL, t0, te, (3 * d, f, 0.5, ramp)),
        (_OSC, LUMBAR_TWIST, t0, te, (-6 * d, f, 0.0, ramp)),
        (_OSC, LUMBAR_BEND, t0, te, (2 * d, f, 0.5, ramp)),
        _bump(PELVIS_PITCH, U(2, 5) * d, t0, dur, (0.0, ramp / dur, 1 - ramp / dur, 1.0)),
    ]
    if dur >= 4.0:
        tm = t0 + dur / 2 - 0.8
        comps.append((_STEP, PELVIS_YAW, tm, tm + 1.6, (math.pi,)))
    if bursts:
        step = 1.0 / (2 * f)
        ts = t0 + ramp
        while ts + 0.1 < te - ramp:
            comps.append(_pulse(ACC_UP, U(2.0, 4.0), ts, U(0.05, 0.08)))
            ts += step
    return comps


def _plate_components(t0: float, rng: np.random.Generator, bursts: bool) -> list[tuple]:
    """Picking up a plate: a 3 s hip hinge with a neutral spine."""
    U = rng.uniform
    d = _D2R
    fr = (0.05, 0.4, 0.5, 0.9)
    comps = [
        _bump(PELVIS_PITCH, U(50, 65) * d, t0, 3.0, fr),
        _bump(LUMBAR_FLEX, U(3, 12) * d, t0, 3.0, fr),
        _bump(HIP_UP, -U(0.15, 0.25), t0, 3.0, fr),
        _bump(HIP_FWD, -U(0.05, 0.10), t0, 3.0, fr),
    ]
    if bursts:
        comps.append(_pulse(ACC_UP, U(2.0, 4.0), t0 + 0.5 * 3.0, U(0.05, 0.15)))
    return comps


def _plate_rounded(t0: float, rng: np.random.Generator, w: Wearer, bursts: bool) -> list[tuple]:
    """Picking up a plate with a rounded back: lumbar flexion 60-75 % of the range."""
    U = rng.uniform
    d = _D2R
    fr = (0.05, 0.4, 0.5, 0.9)
    comps = [
        _bump(PELVIS_PITCH, U(30, 45) * d, t0, 3.0, fr),
        _bump(LUMBAR_FLEX, w.rom_flexion_deg * U(0.60, 0.75) * d, t0, 3.0, fr),
        _bump(HIP_UP, -U(0.10, 0.20), t0, 3.0, fr),
        _bump(HIP_FWD, -U(0.05, 0.10), t0, 3.0, fr),
    ]
    if bursts:
        comps.append(_pulse(ACC_UP, U(2.0, 4.0), t0 + 0.5 * 3.0, U(0.05, 0.15)))
    return comps


def _sit_components(t0: float, dur: float, rng: np.random.Generator, w: Wearer, bursts: bool) -> list[tuple]:
    """Sitting down on a bench for ``dur`` s: lean forward to sit (1.5 s),
    sit slumped (pelvis tucked back, lumbar flexion 55-65 % of the range),
    lean forward to stand up (1.5 s)."""
    U = rng.uniform
    d = _D2R
    r = 1.5 / dur
    comps = [
        _bump(PELVIS_PITCH, -U(10, 18) * d, t0, dur, (0.0, r, 1 - r, 1.0)),
        _bump(LUMBAR_FLEX, w.rom_flexion_deg * U(0.55, 0.65) * d, t0, dur, (0.0, r, 1 - r, 1.0)),
        _bump(HIP_UP, -U(0.40, 0.50), t0, dur, (0.0, r, 1 - r, 1.0)),
        _bump(PELVIS_PITCH, U(25, 35) * d, t0, 1.5, (0.0, 0.5, 0.5, 1.0)),
        _bump(PELVIS_PITCH, U(25, 35) * d, t0 + dur - 1.5, 1.5, (0.0, 0.5, 0.5, 1.0)),
    ]
    if bursts:
        comps.append(_pulse(ACC_UP, -U(2.0, 4.0), t0 + 1.4, U(0.08, 0.15)))
    return comps


def _unrack_components(t0: float, rng: np.random.Generator, bursts: bool) -> tuple[list[tuple], float]:
    """Unrack (a small dip and drive, 1.2 s) and walk out three steps (2 s), then stand 1 s."""
    U = rng.uniform
    d = _D2R
    fr = (0.0, 0.4, 0.6, 1.0)
    comps = [_bump(HIP_UP, -U(0.04, 0.07), t0, 1.2, fr), _bump(PELVIS_PITCH, U(4, 8) * d, t0, 1.2, fr)]
    comps += _walk_components(t0 + 1.2, 2.0, rng, bursts)
    return comps, 4.2


_HOLD_POSTURE = {  # pelvis pitch (deg), hip height change (m)
    "plank": (90.0, -0.75),
    "bird_dog": (90.0, -0.45),
    "dead_bug": (-90.0, -0.85),
    "glute_bridge": (-90.0, -0.85),
}


def _hold_components(
    ex: str, fault: str | None, t0: float, hold_s: float, rng: np.random.Generator, w: Wearer
) -> tuple[list[tuple], float, tuple[float, float], tuple[float, float] | None]:
    """Get down (3 s), hold ``hold_s`` s, get up (3 s). Returns
    (components, duration, hold interval, fault interval)."""
    U = rng.uniform
    d = _D2R
    ramp = 3.0
    dur = 2 * ramp + hold_s
    fr = (0.0, ramp / dur, (ramp + hold_s) / dur, 1.0)
    pitch, hip = _HOLD_POSTURE[ex]
    comps = [_bump(PELVIS_PITCH, pitch * d, t0, dur, fr), _bump(HIP_UP, hip, t0, dur, fr)]
    h0, h1 = t0 + ramp, t0 + ramp + hold_s
    if ex == "glute_bridge":  # hips up (pelvis and thorax in line), held
        comps.append(
            _bump(
                PELVIS_PITCH,
                U(20, 28) * d,
                h0 + 0.5,
                hold_s - 1.0,
                (0.0, 1.5 / (hold_s - 1.0), 1 - 1.5 / (hold_s - 1.0), 1.0),
            )
        )
    # small wobble (breathing, limbs moving)
    wob = (0.0, 0.2, 0.8, 1.0)
    comps += [
        (_OSC, LUMBAR_FLEX, h0, h1, (U(0.5, 1.5) * d, U(0.2, 0.3), 0.0, 1.0)),
        (_OSC, LUMBAR_TWIST, h0, h1, (U(0.5, 2.0) * d, U(0.2, 0.3), 0.5, 1.0)),
        (_OSC, PELVIS_ROLL, h0, h1, (U(0.5, 2.0) * d, U(0.2, 0.3), 1.0, 1.0)),
        _bump(LUMBAR_FLEX, U(-2, 2) * d, h0, hold_s, wob),
    ]
    fault_iv = None
    if fault is not None:
        fdur = min(6.0, hold_s - 4.0)
        f0 = h0 + (hold_s - fdur) / 2
        ffr = (0.0, 0.3, 0.7, 1.0)
        rom_f, rom_e = w.rom_flexion_deg, -w.rom_extension_deg
        if fault == "sag":
            comps.append(_bump(LUMBAR_FLEX, -rom_e * U(0.55, 0.70) * d, f0, fdur, ffr))
        elif fault == "pike":
            comps.append(_bump(LUMBAR_FLEX, rom_f * U(0.50, 0.60) * d, f0, fdur, ffr))
            comps.append(_bump(PELVIS_PITCH, U(8, 12) * d * (1 if pitch > 0 else -1), f0, fdur, ffr))
        elif fault == "arching":
            share = (0.60, 0.75) if ex == "glute_bridge" else (0.55, 0.70)
            comps.append(_bump(LUMBAR_FLEX, -rom_e * U(*share) * d, f0, fdur, ffr))
        elif fault == "pelvis_rotation":
            comps.append(_bump(LUMBAR_TWIST, rng.choice((-1.0, 1.0)) * U(18, 25) * d, f0, fdur, ffr))
        fault_iv = (f0 + 0.3 * fdur, f0 + 0.7 * fdur)
    return comps, dur, (h0, h1), fault_iv


def _plan(
    sets: Sequence[SetSpec],
    seed: int,
    w: Wearer,
    settings: SimSettings,
    calibration: bool,
    rom: bool,
    warmup: int = 0,
) -> _Plan:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    U = rng.uniform
    d = _D2R
    comps: list[tuple] = []
    t = 0.0
    neutral = rom_iv = after = None
    if calibration and settings.stand_s == 0:
        t = 0.0  # no still start (real sets start moving within 0.1-2.7 s): no neutral, no sweep
    elif calibration:
        neutral = (0.0, settings.stand_s)
        t = settings.stand_s
        if rom:
            t_rom = t
            # slow full forward bend: the pelvis hinges too, the lumbar reaches its range
            comps.append(_bump(LUMBAR_FLEX, w.rom_flexion_deg * d, t, 7.0, (0.0, 3.0 / 7, 4.0 / 7, 1.0)))
            comps.append(_bump(PELVIS_PITCH, U(35, 50) * d, t, 7.0, (0.0, 3.0 / 7, 4.0 / 7, 1.0)))
            t += 7.5
            comps.append(_bump(LUMBAR_FLEX, w.rom_extension_deg * d, t, 6.0, (0.0, 2.5 / 6, 3.5 / 6, 1.0)))
            comps.append(_bump(PELVIS_PITCH, -U(2, 6) * d, t, 6.0, (0.0, 2.5 / 6, 3.5 / 6, 1.0)))
            t += 6.0
            rom_iv = (t_rom, t)
            after = (t, t + 2.0)
            t += 2.0
    else:
        t = 1.0
    holds: list = []
    acts: list = []
    if warmup:
        # slow toe touches through the range, far enough apart not to form a set
        wrng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(4,)))
        t += 1.0
        for _ in range(int(warmup)):
            fr = (0.0, 0.4, 0.5, 1.0)
            comps.append(_bump(LUMBAR_FLEX, w.rom_flexion_deg * wrng.uniform(0.70, 0.80) * d, t, 4.0, fr))
            comps.append(_bump(PELVIS_PITCH, wrng.uniform(40, 60) * d, t, 4.0, fr))
            acts.append(("warmup", t, t + 4.0))
            t += 4.0 + 6.5
    reps: list[_RepPlan] = []
    set_rows = []
    for i, spec in enumerate(sets, 1):
        if i == 1 and calibration and settings.stand_s == 0:
            t += U(0.0, 0.1)  # no still start: the first rep begins at once
        else:
            t += U(1.0, 2.0)  # set up, grip the bar
        if spec.unrack:
            c, dur = _unrack_components(t, rng, settings.bursts)
            comps += c
            acts.append(("unrack", t, t + dur))
            t += dur
        first = t
        set_state = {"creep": "creep" in spec.faults.values(), "base": None}
        if spec.exercise in HOLD_EXERCISES:
            for r in range(1, spec.reps + 1):
                fault = spec.faults.get(r)
                c, dur, hiv, fiv = _hold_components(spec.exercise, fault, t, float(spec.hold_s), rng, w)
                comps += c
                holds.append((i, r, spec.exercise, hiv[0], hiv[1], fault, fiv))
                t += dur
                if r < spec.reps:
                    t += U(2.0, 3.0)
        else:
            if spec.exercise == "single_arm_row":  # hinge into the row and hold still before the first rep
                pitch_row = U(40.0, 55.0) * d
                comps.append((_STEP, PELVIS_PITCH, t, t + 1.5, (pitch_row,)))
                t += 1.5 + ROW_SETTLE_S
            if (
                spec.top_tilt_deg
            ):  # the pelvis tips forward into the set's top position (during the first rep's start)
                comps.append((_STEP, PELVIS_PITCH, t, t + 0.6, (spec.top_tilt_deg * d,)))
            for r in range(1, spec.reps + 1):
                fault = spec.faults.get(r)
                c, dur = _rep_components(
                    spec.exercise, fault, t, rng, w, settings.bursts, set_state, spec.tempo, spec.top_tilt_deg
                )
                comps += c
                side = spec.rep_side(r)
                if side is not None:
                    comps += _side_components(side, spec.asymmetry_deg, t, dur, rng)
                reps.append(_RepPlan(i, r, spec.exercise, t, t + dur, fault, side))
                t += dur
                if r < spec.reps and not spec.back_to_back:
                    t += U(0.4, 1.0)
            if spec.top_tilt_deg:  # and back upright after the last
                comps.append((_STEP, PELVIS_PITCH, t, t + 0.8, (-spec.top_tilt_deg * d,)))
                t += 0.8
        if spec.exercise == "single_arm_row":  # stand up again
            t += U(0.5, 1.0)
            comps.append((_STEP, PELVIS_PITCH, t, t + 1.5, (-pitch_row,)))
            t += 1.5
        set_rows.append(
            (
                i,
                spec.exercise,
                first,
                t,
                spec.reps,
                tuple(sorted(spec.faults.items())),
                spec.side,
                spec.named_side,
            )
        )
        t += U(0.2, 0.5)
        if settings.bursts and spec.exercise not in HOLD_EXERCISES:  # the bar goes down
            comps.append(_pulse(ACC_UP, U(3.0, 6.0), t, U(0.05, 0.15)))
        t += 1.0
        if spec.unrack:  # walk the bar back in and rack it
            comps += _walk_components(t, 2.0, rng, settings.bursts)
            acts.append(("walk", t, t + 2.0))
            t += 2.0
        last = i == len(sets)
        rest = 2.0 if last else float(spec.rest_s)
        if spec.walk_during_rest and not last and rest >= 2.0:
            if rest >= 9.0:  # walk to the plates, load one, walk back
                leg = (rest - 3.0) / 2
                comps += _walk_components(t, leg, rng, settings.bursts)
                if spec.plate_pickup == "rounded":
                    comps += _plate_rounded(t + leg, rng, w, settings.bursts)
                else:
                    comps += _plate_components(t + leg, rng, settings.bursts)
                comps += _walk_components(t + leg + 3.0, leg, rng, settings.bursts)
                acts += [
                    ("walk", t, t + leg),
                    ("plate", t + leg, t + leg + 3.0),
                    ("walk", t + leg + 3.0, t + rest),
                ]
            else:
                comps += _walk_components(t, rest, rng, settings.bursts)
                acts.append(("walk", t, t + rest))
        elif spec.sit_during_rest and not last:
            comps += _walk_components(t, 2.0, rng, settings.bursts)
            comps += _sit_components(t + 2.0, rest - 4.0, rng, w, settings.bursts)
            comps += _walk_components(t + rest - 2.0, 2.0, rng, settings.bursts)
            acts += [
                ("walk", t, t + 2.0),
                ("sit", t + 2.0, t + rest - 2.0),
                ("walk", t + rest - 2.0, t + rest),
            ]
        t += rest
    return _Plan(_Timeline(comps), t, reps, set_rows, neutral, rom_iv, after, holds, acts)


# ---------------------------------------------------------------------------
# rendering: timeline -> orientations -> sensor signals -> frames
# ---------------------------------------------------------------------------
class _Renderer:
    def __init__(self, plan: _Plan, wearer: Wearer, settings: SimSettings, seed: int) -> None:
        self.plan = plan
        self.w = wearer
        self.s = settings
        self.seed = seed
        self.period_s = settings.period_us / 1e6
        self.n = int(math.floor(plan.duration_s / self.period_s)) + 1
        self.R_bs = {name: wearer.body_from_sensor(name) for name in IMU_NAMES}
        self.bias = {name: wearer.gyro_bias(name) for name in IMU_NAMES}

    def _orient(self, ch: np.ndarray):
        R_wp = _rz(ch[PELVIS_YAW]) @ _R_WB0 @ _ry(ch[PELVIS_PITCH]) @ _rz(-ch[PELVIS_ROLL])
        R_pt = _ry(ch[LUMBAR_FLEX]) @ _rz(-ch[LUMBAR_BEND]) @ _rx(ch[LUMBAR_TWIST])
        return R_wp, R_wp @ R_pt, R_pt

    def _positions(self, ch: np.ndarray, R_wp: np.ndarray, R_wt: np.ndarray):
        w = self.w
        c, s = np.cos(ch[PELVIS_YAW]), np.sin(ch[PELVIS_YAW])
        fwd, left = ch[HIP_FWD], ch[HIP_LEFT]
        hip = np.stack([c * fwd - s * left, s * fwd + c * left, ch[HIP_UP]], axis=-1)
        lower = hip + R_wp @ np.array([w.hip_to_lower_m, 0.0, w.skin_depth_m])
        upper = (
            hip
            + R_wp @ np.array([w.hip_to_lumbar_m, 0.0, 0.0])
            + R_wt @ np.array([w.lumbar_to_upper_m, 0.0, w.skin_depth_m])
        )
        return {"upper": upper, "lower": lower}

    def render(self, chunk: int) -> dict:
        """Samples [chunk*CHUNK, ...) of the session: truth, clean and noisy signals."""
        k0 = chunk * CHUNK
        k1 = min(self.n, k0 + CHUNK)
        k = np.arange(k0, k1, dtype=np.int64)
        T = self.period_s
        h = T / 2
        t = k * T
        tl = self.plan.timeline
        ch = tl.eval(t)
        ch_prev, ch_m, ch_p = tl.eval(t - T), tl.eval(t - h), tl.eval(t + h)
        R_wp, R_wt, R_pt = self._orient(ch)
        Rp_prev, Rt_prev, _ = self._orient(ch_prev)
        pos0 = self._positions(ch, R_wp, R_wt)
        pos_m = self._positions(ch_m, *self._orient(ch_m)[:2])
        pos_p = self._positions(ch_p, *self._orient(ch_p)[:2])
        c, s = np.cos(ch[PELVIS_YAW]), np.sin(ch[PELVIS_YAW])
        a_burst = np.stack(
            [c * ch[ACC_FWD] - s * ch[ACC_LEFT], s * ch[ACC_FWD] + c * ch[ACC_LEFT], ch[ACC_UP]], axis=-1
        )
        out: dict = {"k": k, "t": t, "inputs": ch[: HIP_UP + 1]}
        up = np.array([0.0, 0.0, 1.0])
        noise_rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(2, chunk)))
        noise = noise_rng.standard_normal((len(k), 2, 6))
        for j, (name, R_wb, R_wb_prev) in enumerate((("upper", R_wt, Rt_prev), ("lower", R_wp, Rp_prev))):
            R_ws = R_wb @ self.R_bs[name]
            R_ws_prev = R_wb_prev @ self.R_bs[name]
            a_lin = (pos_p[name] - 2 * pos0[name] + pos_m[name]) / (h * h) + a_burst
            f_world = a_lin + G * up
            acc_true = np.einsum("nji,nj->ni", R_ws, f_world)
            gyr_true = Rotation.from_matrix(np.swapaxes(R_ws_prev, 1, 2) @ R_ws).as_rotvec() / T
            acc = acc_true + self.s.accel_noise * noise[:, j, :3]
            gyr = gyr_true + self.bias[name] + self.s.gyro_noise * noise[:, j, 3:]
            out[name] = {
                "acc": acc,
                "gyr": gyr,
                "acc_raw": _quantise(acc, self.s.accel_lsb),
                "gyr_raw": _quantise(gyr, self.s.gyro_lsb),
                "acc_true": acc_true,
                "gyr_true": gyr_true,
                "gravity": R_ws[:, 2, :].copy(),  # R_ws^T e_z
                "orientation": Rotation.from_matrix(R_ws).as_quat(),
            }
            u_b = R_wb[:, 2, :]  # gravity-up in the true body frame
            out[name + "_sagittal"] = np.degrees(np.arctan2(u_b[:, 2], u_b[:, 0]))
            out[name + "_frontal"] = np.degrees(np.arcsin(np.clip(u_b[:, 1], -1.0, 1.0)))
        q = Rotation.from_matrix(R_pt).as_quat()
        out["twist"] = np.degrees(_wrap(2 * np.arctan2(q[:, 0], q[:, 3])))
        out["lumbar"] = _wrap_deg(out["upper_sagittal"] - out["lower_sagittal"])
        out["lateral"] = out["upper_frontal"] - out["lower_frontal"]
        return out

    def n_chunks(self) -> int:
        return (self.n + CHUNK - 1) // CHUNK

    def frames(self, chunk: int, r: dict) -> tuple[list[bytes], np.ndarray]:
        """Encode one rendered chunk as the firmware would."""
        s = self.s
        cols = [r[name][key] for name in IMU_NAMES if name in s.imus for key in ("acc_raw", "gyr_raw")]
        n = len(r["k"])
        cols.append(np.full((n, 1), proto.ANGLE_NONE, dtype=np.int16))
        values = np.concatenate(cols, axis=1).astype("<i2")
        spf = s.samples_per_frame
        mask, ranges, period = s.mask, s.ranges, s.period_us
        frames = []
        last_k = []
        # each frame's timestamp late by up to clock_jitter_s (a device clock read late)
        clock_rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(5, chunk)))
        jit_us = np.round(clock_rng.uniform(0.0, 1.0, (n + spf - 1) // spf) * s.clock_jitter_s * 1e6).astype(
            np.int64
        )
        for i in range(0, n, spf):
            count = min(spf, n - i)
            kf = int(r["k"][i])
            frames.append(
                proto.encode_samples(
                    s.seq_start + kf,
                    (s.time_start_us + kf * period + int(jit_us[i // spf])) & 0xFFFFFFFF,
                    period,
                    mask,
                    ranges,
                    0,
                    count,
                    values[i : i + count].tobytes(),
                )
            )
            last_k.append(kf + count - 1)
        jitter_rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(3, chunk)))
        delay = s.radio_delay_s + jitter_rng.uniform(0.0, 1.0, len(frames)) * s.radio_jitter_s
        times = (s.time_start_us + np.array(last_k, dtype=np.int64) * period) / 1e6 + delay
        return frames, times


def _quantise(x: np.ndarray, lsb: float) -> np.ndarray:
    return np.clip(np.round(x / lsb), -32768, 32767).astype(np.int16)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _wrap_deg(a: np.ndarray) -> np.ndarray:
    return (a + 180.0) % 360.0 - 180.0


def _prepare(sets, seed, settings, calibration, rom, wearer, warmup=0):
    seed = _check_seed(seed)
    if not isinstance(settings, SimSettings):
        raise ConfigError("settings must be a SimSettings")
    sets = tuple(sets)
    for s in sets:
        if not isinstance(s, SetSpec):
            raise ConfigError(f"sets must be SetSpec objects, not {type(s).__name__}")
    if wearer is None:
        wearer = Wearer.from_seed(seed, settings)
    elif not isinstance(wearer, Wearer):
        raise ConfigError("wearer must be a Wearer")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= 20:
        raise ConfigError(f"warmup must be an integer 0..20 (toe touches), not {warmup!r}")
    plan = _plan(sets, seed, wearer, settings, bool(calibration), bool(rom), warmup)
    return seed, sets, wearer, _Renderer(plan, wearer, settings, seed)


def iter_frames(
    sets: Sequence[SetSpec],
    seed: int,
    settings: SimSettings = SimSettings(),
    calibration: bool = True,
    rom: bool = True,
    wearer: Wearer | None = None,
    warmup: int = 0,
) -> Iterator[tuple[bytes, float]]:
    """Yield ``(frame, send_time_s)`` for the session, rendering it chunk by
    chunk (memory stays bounded for sessions of hours). Same frames as
    ``simulate(...).frames``."""
    _, _, _, rend = _prepare(sets, seed, settings, calibration, rom, wearer, warmup)
    for c in range(rend.n_chunks()):
        frames, times = rend.frames(c, rend.render(c))
        yield from zip(frames, times.tolist())


def simulate(
    sets: Sequence[SetSpec],
    seed: int,
    settings: SimSettings = SimSettings(),
    calibration: bool = True,
    rom: bool = True,
    wearer: Wearer | None = None,
    warmup: int = 0,
) -> SimSession:
    """Simulate a session: calibration (neutral standing for 3 s, then, if
    ``rom``, a range-of-motion sweep), then ``sets``. Deterministic: the same
    arguments give byte-identical frames. ``wearer`` overrides the one drawn
    from the seed. ``warmup``: that many slow toe touches (70-80 % of the
    flexion range, 10.5 s apart) after calibration, before the first set."""
    seed, sets, wearer, rend = _prepare(sets, seed, settings, calibration, rom, wearer, warmup)
    parts, frames, ftimes = [], [], []
    for c in range(rend.n_chunks()):
        r = rend.render(c)
        f, ft = rend.frames(c, r)
        parts.append(r)
        frames += f
        ftimes.append(ft)

    def cat(*keys):
        arrs = []
        for p in parts:
            v = p
            for key in keys:
                v = v[key]
            arrs.append(v)
        return np.concatenate(arrs, axis=-1 if keys == ("inputs",) else 0)

    k = cat("k")
    t = (settings.time_start_us + k * settings.period_us) / 1e6
    t0_dev = settings.time_start_us / 1e6
    imus = {}
    for name in settings.imus:
        imus[name] = ImuSignals(
            name=name,
            **{
                key: cat(name, key)
                for key in (
                    "acc",
                    "gyr",
                    "acc_raw",
                    "gyr_raw",
                    "acc_true",
                    "gyr_true",
                    "gravity",
                    "orientation",
                )
            },
            body_from_sensor=rend.R_bs[name],
            gyro_bias=rend.bias[name],
        )
    inp = cat("inputs")
    inputs = {_INPUT_NAMES[i]: (np.degrees(inp[i]) if i in _ANGLE_CHANNELS else inp[i]) for i in _INPUT_NAMES}
    lumbar, lateral, twist = cat("lumbar"), cat("lateral"), cat("twist")

    def window(t_a: float, t_b: float) -> slice:
        return slice(
            int(np.searchsorted(t, t0_dev + t_a, "left")), int(np.searchsorted(t, t0_dev + t_b, "right"))
        )

    def signed_peak(x: np.ndarray) -> float:
        return float(x[np.argmax(np.abs(x))]) if len(x) else 0.0

    reps = []
    for rp in rend.plan.reps:
        sl = window(rp.t_start, rp.t_end)
        reps.append(
            RepTruth(
                rp.set,
                rp.rep,
                rp.exercise,
                t0_dev + rp.t_start,
                t0_dev + rp.t_end,
                rp.fault,
                float(lumbar[sl].max()),
                float(lumbar[sl].min()),
                signed_peak(twist[sl]),
                signed_peak(lateral[sl]),
                rp.side,
            )
        )
    set_truth = [
        SetTruth(i, ex, t0_dev + a, t0_dev + b, n, faults, side, named)
        for i, ex, a, b, n, faults, side, named in rend.plan.sets
    ]
    p = rend.plan
    shift = lambda iv: None if iv is None else (t0_dev + iv[0], t0_dev + iv[1])  # noqa: E731
    rom_f = rom_e = None
    if p.rom is not None:
        sl = window(*p.rom)
        rom_f, rom_e = float(lumbar[sl].max()), float(lumbar[sl].min())
    cal = CalibrationTruth(shift(p.neutral), shift(p.rom), shift(p.standing_after), rom_f, rom_e)
    return SimSession(
        seed=seed,
        settings=settings,
        wearer=wearer,
        set_specs=tuple(sets),
        frames=frames,
        frame_times=np.concatenate(ftimes),
        t=t,
        seq=settings.seq_start + k,
        imus=imus,
        lumbar_flexion_deg=lumbar,
        lateral_bend_deg=lateral,
        twist_deg=twist,
        upper_sagittal_deg=cat("upper_sagittal"),
        lower_sagittal_deg=cat("lower_sagittal"),
        upper_frontal_deg=cat("upper_frontal"),
        lower_frontal_deg=cat("lower_frontal"),
        inputs=inputs,
        reps=reps,
        sets=set_truth,
        calibration=cal,
        holds=[
            HoldTruth(i, r, ex, t0_dev + a, t0_dev + b, f, shift(fiv)) for i, r, ex, a, b, f, fiv in p.holds
        ],
        activities=[(k, t0_dev + a, t0_dev + b) for k, a, b in p.activities],
    )
