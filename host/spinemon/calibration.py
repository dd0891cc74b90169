"""Calibration: neutral standing posture and, optionally, range of motion.

Neutral: the wearer stands tall and still for ``neutral_s`` seconds; any
movement restarts the window (the attempt is rejected and repeated). The mean
accelerometer direction of each sensor over the window defines its mounting
(the rotation that makes that direction body +X, see
:class:`spinemon.angles.Mounting`), so every angle reads 0 at neutral.

Range of motion (optional): after neutral, a slow full forward bend and
backward bend; the extreme lumbar angles become the lifter's
:class:`~spinemon.detect.RangeOfMotion`, and exercise limits are shares of it.

Mounting alignment (with the range of motion): neutral fixes only each
sensor's up axis; a sensor stuck on rotated about the spine (crooked, even by
90 deg) would leak flexion into lateral bend. The slow forward bend is a
rotation about the body's mediolateral axis (+Y for flexion), so the
integrated gyro (neutral-mean bias removed) from the start of the sweep to
the moment of deepest bend, seen in the neutral-aligned frame, points along
+Y; the rotation about X that takes it there completes each sensor's
mounting. The sweep's phases are found from the tilt away from neutral
(independent of heading), and the range of motion is computed at the end
with the completed mountings over the buffered sweep.

Drift: :func:`drift_deg` compares a later standing gravity direction with
the calibrated one (0 = still as calibrated); :func:`rezero` re-zeroes a
mounting on it, keeping the heading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spinemon.angles import Mounting
from spinemon.detect import DEFAULT_ROM, RangeOfMotion
from spinemon.errors import CalibrationError, ConfigError
from spinemon.stream import G, SampleBlock


@dataclass(frozen=True)
class CalibrationSettings:
    neutral_s: float = 2.5  # how long the wearer must stand still
    still_gyro_dps: float = 6.0  # max gyro norm while still (bias included)
    still_acc_dev: float = 0.8  # max | |a| - g | while still, m/s^2
    rom: bool = True  # also calibrate the range of motion
    rom_min_flexion_deg: float = 20.0  # the bend must reach at least this to count
    rom_min_extension_deg: float = -5.0
    rom_settle_s: float = 1.0  # still this long after the bends ends the ROM phase
    rom_timeout_s: float = 45.0  # give up on ROM (keep defaults) after this
    align_min_bend_deg: float = 15.0  # a sensor must rotate this much in the bend to fix its heading

    def __post_init__(self) -> None:
        if self.neutral_s <= 0.5:
            raise ConfigError("calibration neutral_s must be more than 0.5 s")


@dataclass
class Calibration:
    """Result of calibration, stored in recordings and profiles."""

    mounting: dict[str, Mounting]
    t_neutral: tuple[float, float]
    rom: RangeOfMotion | None = None
    t_rom: tuple[float, float] | None = None
    #: per sensor, from the forward bend: ``heading_deg`` (rotation about X
    #: applied to the neutral mounting) and ``bend_deg`` (how far it rotated);
    #: empty when no bend was seen (heading as mounted, nominal axes)
    alignment: dict[str, dict] = field(default_factory=dict)

    @property
    def range_of_motion(self) -> RangeOfMotion:
        return self.rom or DEFAULT_ROM

    def as_dict(self) -> dict:
        return {
            "type": "calibration",
            "mounting": {s: np.asarray(m.rotation).round(12).tolist() for s, m in self.mounting.items()},
            "t_neutral": list(self.t_neutral),
            "rom": None if self.rom is None else {"flexion_deg": self.rom.flexion_deg, "extension_deg": self.rom.extension_deg},
            "t_rom": None if self.t_rom is None else list(self.t_rom),
            "alignment": {s: {k: round(float(v), 3) for k, v in a.items()} for s, a in self.alignment.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        try:
            mounting = {s: Mounting(np.asarray(m, dtype=float)) for s, m in d["mounting"].items()}
            rom = None if d.get("rom") is None else RangeOfMotion(**d["rom"])
            alignment = {str(s): {str(k): float(v) for k, v in a.items()} for s, a in (d.get("alignment") or {}).items()}
            return cls(mounting, tuple(d["t_neutral"]), rom, None if d.get("t_rom") is None else tuple(d["t_rom"]), alignment)
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as e:
            raise CalibrationError(f"calibration record is malformed: {e}") from None


def still_mask(block: SampleBlock, settings: CalibrationSettings) -> np.ndarray:
    """Per sample: every sensor reads still (low rotation, about 1 g)."""
    ok = np.ones(len(block), dtype=bool)
    lim = np.deg2rad(settings.still_gyro_dps)
    for s in block.sensors:
        ok &= np.linalg.norm(block.gyr[s], axis=1) < lim
        ok &= np.abs(np.linalg.norm(block.acc[s], axis=1) - G) < settings.still_acc_dev
    return ok


def drift_deg(mounting: Mounting, u_sensor: object) -> float:
    """Angle (deg) between a standing gravity direction (sensor frame, any
    length) and the calibrated neutral (body +X)."""
    u = mounting.to_body(np.asarray(u_sensor, dtype=np.float64).reshape(3))
    n = float(np.linalg.norm(u))
    if not n > 0:
        raise CalibrationError("gravity direction for the drift check is zero")
    return float(np.degrees(np.arccos(np.clip(u[0] / n, -1.0, 1.0))))


def rezero(mounting: Mounting, u_sensor: object) -> Mounting:
    """The mounting re-zeroed so that ``u_sensor`` (standing tall) reads as
    neutral; the heading about the spine axis is kept."""
    fix = Mounting.from_neutral(mounting.to_body(np.asarray(u_sensor, dtype=np.float64).reshape(3)))
    return Mounting(fix.rotation @ mounting.rotation)


def heading_from_bend(rotation_vector: object) -> float | None:
    """The rotation about X (deg) that takes a forward bend's integrated
    gyro (neutral-aligned frame) onto +Y; None if the bend is too small to tell."""
    v = np.asarray(rotation_vector, dtype=np.float64).reshape(3)
    ay, az = float(v[1]), float(v[2])
    if math.hypot(ay, az) <= 0:
        return None
    return -math.degrees(math.atan2(az, ay))


def _rx_deg(a: float) -> np.ndarray:
    c, s_ = math.cos(math.radians(a)), math.sin(math.radians(a))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s_], [0.0, s_, c]])


@dataclass
class Calibrator:
    """Streaming calibration. Feed every block to :meth:`update_neutral`
    until it returns mountings; then, if ROM is wanted, feed blocks and the
    fused gravity directions to :meth:`update_rom` until :attr:`done`.

    Exposed state (so a test can ask why): ``phase``, ``attempts``,
    ``rom_stage`` (``"forward"`` -> ``"backward"`` -> ``"settle"``),
    ``peak_tilt_deg`` and ``bend_rotation`` per sensor."""

    settings: CalibrationSettings = field(default_factory=CalibrationSettings)
    phase: str = "neutral"  # neutral -> rom -> done
    attempts: int = 1  # neutral windows started (a movement starts a new one)
    result: Calibration | None = None
    rom_stage: str = "forward"
    peak_tilt_deg: dict = field(default_factory=dict)
    bend_rotation: dict = field(default_factory=dict)  # integrated gyro (deg) at the deepest bend, neutral frame
    gyro_bias: dict = field(default_factory=dict)  # neutral mean gyro per sensor, rad/s
    _run: list = field(default_factory=list)  # blocks of the current still run
    _run_len: int = 0
    _rom_t0: float | None = None
    _rot: dict = field(default_factory=dict)
    _buf: dict = field(default_factory=dict)  # neutral-frame gravity per sensor over the sweep
    _second_peak: float = 0.0
    _rom_still_since: float | None = None

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def update_neutral(self, block: SampleBlock) -> Calibration | None:
        if self.phase != "neutral" or len(block) == 0:
            return None
        still = still_mask(block, self.settings)
        moving = np.flatnonzero(~still)
        if len(moving):
            if self._run_len:
                self.attempts += 1
            start = moving[-1] + 1
            self._run = []
            self._run_len = 0
        else:
            start = 0
        if start < len(block):
            self._run.append((block.t[start:], {s: block.acc[s][start:] for s in block.sensors}, {s: block.gyr[s][start:] for s in block.sensors}))
            self._run_len += len(block) - start
        if self._run_len == 0:
            return None
        t_first = self._run[0][0][0]
        t_last = self._run[-1][0][-1]
        if t_last - t_first + 1.0 / block.rate_hz < self.settings.neutral_s:
            return None
        mounting = {}
        for s in block.sensors:
            acc = np.concatenate([a[s] for _, a, _ in self._run])
            mounting[s] = Mounting.from_neutral(acc.mean(axis=0))
            self.gyro_bias[s] = np.concatenate([g[s] for _, _, g in self._run]).mean(axis=0)
        self.result = Calibration(mounting, (float(t_first), float(t_last)))
        self._run = []
        self.phase = "rom" if self.settings.rom else "done"
        return self.result

    def update_rom(self, block: SampleBlock, gravity: dict) -> bool:
        """Track the bends; returns True when the ROM phase ends.

        ``gravity``: per sensor, (n, 3) fused gravity directions, sensor frame."""
        if self.phase != "rom" or len(block) == 0:
            return self.done
        assert self.result is not None
        st = self.settings
        t = block.t
        if self._rom_t0 is None:
            self._rom_t0 = float(t[0])
        dt = 1.0 / block.rate_hz
        tilt_upper = None
        for s in block.sensors:
            m = self.result.mounting[s]
            u0 = m.to_body(gravity[s])
            w0 = m.to_body(block.gyr[s] - self.gyro_bias.get(s, 0.0))
            rot = self._rot.get(s, np.zeros(3)) + np.cumsum(np.degrees(w0) * dt, axis=0)
            self._rot[s] = rot[-1].copy()
            tilt = np.degrees(np.arccos(np.clip(u0[:, 0] / np.linalg.norm(u0, axis=1), -1.0, 1.0)))
            k = int(np.argmax(tilt))
            if tilt[k] > self.peak_tilt_deg.get(s, -1.0):
                self.peak_tilt_deg[s] = float(tilt[k])
                self.bend_rotation[s] = rot[k].copy()
            self._buf.setdefault(s, []).append(u0)
            if s == "upper":
                tilt_upper = tilt
        assert tilt_upper is not None
        still = still_mask(block, st)
        near = 0.25 * st.rom_min_flexion_deg
        for i in range(len(t)):
            tu = float(tilt_upper[i])
            if self.rom_stage == "forward":
                if self.peak_tilt_deg["upper"] >= st.rom_min_flexion_deg and tu < near:
                    self.rom_stage = "backward"
            elif self.rom_stage == "backward":
                self._second_peak = max(self._second_peak, tu)
                if self._second_peak >= abs(st.rom_min_extension_deg) and tu < near:
                    self.rom_stage = "settle"
            if still[i] and tu < near:
                if self._rom_still_since is None:
                    self._rom_still_since = float(t[i])
            else:
                self._rom_still_since = None
            if self.rom_stage == "settle" and self._rom_still_since is not None and t[i] - self._rom_still_since >= st.rom_settle_s:
                self._finish_rom(float(t[i]))
                return True
        if t[-1] - self._rom_t0 > st.rom_timeout_s:
            self._finish_rom(float(t[-1]), complete=self.rom_stage == "settle")
            return True
        return False

    def _finish_rom(self, t_end: float, complete: bool = True) -> None:
        assert self.result is not None
        st = self.settings
        res = self.result
        # complete each mounting with the heading found from the forward bend
        for s, rot in self.bend_rotation.items():
            bend = float(np.linalg.norm(rot[1:]))
            heading = heading_from_bend(rot) if bend >= st.align_min_bend_deg else None
            if heading is None:
                continue
            fix = _rx_deg(heading)
            res.mounting[s] = Mounting(fix @ res.mounting[s].rotation)
            res.alignment[s] = {"heading_deg": heading, "bend_deg": bend}
            self._buf[s] = [u @ fix.T for u in self._buf.get(s, [])]
        if complete and "upper" in self._buf:
            up = np.concatenate(self._buf["upper"])
            lumbar = np.degrees(np.arctan2(up[:, 2], up[:, 0]))
            if "lower" in self._buf:
                lo = np.concatenate(self._buf["lower"])
                lumbar = (lumbar - np.degrees(np.arctan2(lo[:, 2], lo[:, 0])) + 180.0) % 360.0 - 180.0
            try:
                res.rom = RangeOfMotion(round(float(lumbar.max()), 2), round(float(lumbar.min()), 2))
            except ConfigError:
                res.rom = None
        res.t_rom = (float(self._rom_t0), t_end)
        self._buf = {}
        self.phase = "done"
