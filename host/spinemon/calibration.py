"""Calibration: neutral standing posture and, optionally, range of motion.

Neutral: the wearer stands tall and still for ``neutral_s`` seconds; any
movement restarts the window (the attempt is rejected and repeated). The mean
accelerometer direction of each sensor over the window defines its mounting
(the rotation that makes that direction body +X, see
:class:`spinemon.angles.Mounting`), so every angle reads 0 at neutral.

Range of motion (optional): after neutral, a slow full forward bend and
backward bend; the extreme lumbar angles become the lifter's
:class:`~spinemon.detect.RangeOfMotion`, and exercise limits are shares of it.
"""

from __future__ import annotations

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
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        try:
            mounting = {s: Mounting(np.asarray(m, dtype=float)) for s, m in d["mounting"].items()}
            rom = None if d.get("rom") is None else RangeOfMotion(**d["rom"])
            return cls(mounting, tuple(d["t_neutral"]), rom, None if d.get("t_rom") is None else tuple(d["t_rom"]))
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"calibration record is malformed: {e}") from None


def still_mask(block: SampleBlock, settings: CalibrationSettings) -> np.ndarray:
    """Per sample: every sensor reads still (low rotation, about 1 g)."""
    ok = np.ones(len(block), dtype=bool)
    lim = np.deg2rad(settings.still_gyro_dps)
    for s in block.sensors:
        ok &= np.linalg.norm(block.gyr[s], axis=1) < lim
        ok &= np.abs(np.linalg.norm(block.acc[s], axis=1) - G) < settings.still_acc_dev
    return ok


@dataclass
class Calibrator:
    """Streaming calibration. Feed every block to :meth:`update_neutral`
    until it returns mountings; then, if ROM is wanted, feed lumbar angles to
    :meth:`update_rom` until :attr:`done`."""

    settings: CalibrationSettings = field(default_factory=CalibrationSettings)
    phase: str = "neutral"  # neutral -> rom -> done
    attempts: int = 1  # neutral windows started (a movement starts a new one)
    result: Calibration | None = None
    _run: list = field(default_factory=list)  # blocks of the current still run
    _run_len: int = 0
    _rom_t0: float | None = None
    _rom_max: float = 0.0
    _rom_min: float = 0.0
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
            self._run.append((block.t[start:], {s: block.acc[s][start:] for s in block.sensors}))
            self._run_len += len(block) - start
        if self._run_len == 0:
            return None
        t_first = self._run[0][0][0]
        t_last = self._run[-1][0][-1]
        if t_last - t_first + 1.0 / block.rate_hz < self.settings.neutral_s:
            return None
        mounting = {}
        for s in block.sensors:
            acc = np.concatenate([a[s] for _, a in self._run])
            mounting[s] = Mounting.from_neutral(acc.mean(axis=0))
        self.result = Calibration(mounting, (float(t_first), float(t_last)))
        self._run = []
        self.phase = "rom" if self.settings.rom else "done"
        return self.result

    def update_rom(self, t: np.ndarray, lumbar_deg: np.ndarray, still: np.ndarray) -> bool:
        """Track the bends; returns True when the ROM phase ends."""
        if self.phase != "rom" or len(t) == 0:
            return self.done
        st = self.settings
        if self._rom_t0 is None:
            self._rom_t0 = float(t[0])
        self._rom_max = max(self._rom_max, float(np.max(lumbar_deg)))
        self._rom_min = min(self._rom_min, float(np.min(lumbar_deg)))
        bent = self._rom_max >= st.rom_min_flexion_deg and self._rom_min <= st.rom_min_extension_deg
        for i in range(len(t)):
            if still[i] and abs(lumbar_deg[i]) < 0.25 * st.rom_min_flexion_deg:
                if self._rom_still_since is None:
                    self._rom_still_since = float(t[i])
            else:
                self._rom_still_since = None
            if bent and self._rom_still_since is not None and t[i] - self._rom_still_since >= st.rom_settle_s:
                self._finish_rom(float(t[i]))
                return True
        if t[-1] - self._rom_t0 > st.rom_timeout_s:
            self._finish_rom(float(t[-1]), complete=bent)
            return True
        return False

    def _finish_rom(self, t_end: float, complete: bool = True) -> None:
        assert self.result is not None
        if complete:
            try:
                self.result.rom = RangeOfMotion(round(self._rom_max, 2), round(self._rom_min, 2))
            except ConfigError:
                self.result.rom = None
        self.result.t_rom = (float(self._rom_t0), t_end)
        self.phase = "done"
