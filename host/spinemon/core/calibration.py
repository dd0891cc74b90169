"""Calibration: neutral standing posture and, optionally, range of motion.

Neutral: the wearer stands tall and still for ``neutral_s`` seconds; any
movement restarts the window (the attempt is rejected and repeated). The mean
accelerometer direction of each sensor over the window defines its mounting
(the rotation that makes that direction body +X, see
:class:`spinemon.core.angles.Mounting`), so every angle reads 0 at neutral.

Range of motion (optional): after neutral, a slow full forward bend and
backward bend; the extreme lumbar angles become the lifter's
:class:`~spinemon.core.detect.RangeOfMotion`, and exercise limits are shares of it.

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
from dataclasses import dataclass, field, fields

import numpy as np

from spinemon.core.angles import Mounting
from spinemon.core.detect import DEFAULT_ROM, RangeOfMotion
from spinemon.core.stage import StageState, plain_value
from spinemon.core.stream import G, SampleBlock
from spinemon.core.unilateral import SIDE_MIN_DEG
from spinemon.errors import CalibrationError, ConfigError


@dataclass(frozen=True)
class CalibrationSettings:
    """How neutral and the range of motion are found (physical units).

    Stillness is judged by *variation*: over the still stretch each sample's
    gyro stays within ``still_gyro_var_dps`` of the stretch's mean and its
    accelerometer within ``still_acc_var_m_s2`` of its mean, so a constant gyro
    offset (up to ``max_gyro_offset_dps``) does not stop calibration; the mean
    gyro of the stretch is that offset, removed from every later sample.
    """

    neutral_s: float = 1.0  # how long the wearer must stand still
    still_gyro_var_dps: float = (
        10.0  # max departure of the gyro from its stretch mean (quiet standing sway stays below)
    )
    still_acc_var_m_s2: float = 0.5  # max departure of the accelerometer from its stretch mean (about 3 deg)
    max_gyro_offset_dps: float = 100.0  # norm; a larger constant gyro reading is not an offset (a steady turn fails the accelerometer test anyway)
    still_gyro_dps: float = 6.0  # standing checks after calibration (offset removed): max gyro norm
    still_acc_dev: float = 0.8  # max | |a| - g | while still, m/s^2
    #: no still stretch by then: a provisional neutral (monitoring never waits
    #: longer for a still start; real lifters start moving within 0.1-2.7 s)
    provisional_after_s: float = 1.5
    #: how the provisional neutral is chosen. "upright": among short windows
    #: (``provisional_window_s``) the one that is quiet and most upright --
    #: least tilted from the upper sensor's +X, the axis mounted up the spine
    #: (docs/hardware.md) -- since standing is the least forward-inclined
    #: posture of any lift and a bend's bottom pause is quiet too; it is
    #: replaced when a clearly better window comes (``provisional_margin``),
    #: and by a real still stretch. "quietest": the quietest ``neutral_s``
    #: window (recordings made before the upright rule)
    provisional_rule: str = "upright"
    provisional_window_s: float = 0.25
    #: score units a later window must beat the provisional one by to replace
    #: it (one unit: a window's whole still tolerance of motion, or 1 deg more upright)
    provisional_margin: float = 1.0
    #: a still stretch must not drift: the mean gravity direction of its last
    #: quarter within this of its first quarter's, half a stretch later (deg).
    #: Real quiet standing sways it by up to 1-2 deg (gait-l5: 1 deg rejects
    #: the standing of 3 of 38 people); a slow return from a bend or an arch
    #: at 4 deg/s or more drifts it further, and its mean gyro is no offset.
    #: None: not checked (recordings made before the rule)
    still_drift_deg: float | None = 2.0
    rom: bool = True  # also calibrate the range of motion
    rom_min_flexion_deg: float = 20.0  # the bend must reach at least this to count
    rom_min_extension_deg: float = -5.0
    rom_settle_s: float = 1.0  # still this long after the bends ends the ROM phase
    rom_start_s: float = 5.0  # no bend past rom_min_flexion_deg this soon after neutral: ROM skipped
    rom_timeout_s: float = 20.0  # give up on ROM (keep defaults) after this
    align_min_bend_deg: float = 15.0  # a sensor must rotate this much in the bend to fix its heading

    def __post_init__(self) -> None:
        if not (isinstance(self.neutral_s, (int, float)) and 0.5 <= self.neutral_s <= 30.0):
            raise ConfigError(f"calibration neutral_s must be between 0.5 and 30 s, not {self.neutral_s!r}")
        if self.provisional_rule == "quietest" and not (
            isinstance(self.provisional_after_s, (int, float)) and self.provisional_after_s >= self.neutral_s
        ):
            raise ConfigError("calibration provisional_after_s must be at least neutral_s")
        if not (
            isinstance(self.provisional_after_s, (int, float)) and 0.25 <= self.provisional_after_s <= 60.0
        ):
            raise ConfigError(
                f"calibration provisional_after_s must be 0.25..60 s, not {self.provisional_after_s!r}"
            )
        if self.provisional_rule not in ("upright", "quietest"):
            raise ConfigError(
                f"calibration provisional_rule must be 'upright' or 'quietest', not {self.provisional_rule!r}"
            )
        if not (
            isinstance(self.provisional_window_s, (int, float))
            and 0.05 <= self.provisional_window_s <= self.neutral_s
        ):
            raise ConfigError("calibration provisional_window_s must be 0.05 s .. neutral_s")


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
    #: per sensor, the mean gyro over the still stretch (rad/s): the zero-rate
    #: offset removed from later samples (empty: none measured)
    gyro_offset: dict[str, np.ndarray] = field(default_factory=dict)
    #: how neutral was found: "still" (a still stretch), "provisional" (no
    #: still stretch: the quietest stretch seen), "stored" (a saved profile)
    source: str = "still"

    @property
    def range_of_motion(self) -> RangeOfMotion:
        return self.rom or DEFAULT_ROM

    def copy(self) -> Calibration:
        """A copy that shares nothing changeable with this one (a mounting
        or a heading set on one later leaves the other as it was)."""
        return Calibration(
            dict(self.mounting),  # Mounting is frozen
            self.t_neutral,
            self.rom,
            self.t_rom,
            {s: dict(a) for s, a in self.alignment.items()},
            {s: np.array(v, dtype=np.float64) for s, v in self.gyro_offset.items()},
            self.source,
        )

    def as_dict(self) -> dict:
        return {
            "type": "calibration",
            "mounting": {s: np.asarray(m.rotation).round(12).tolist() for s, m in self.mounting.items()},
            "t_neutral": list(self.t_neutral),
            "rom": None
            if self.rom is None
            else {"flexion_deg": self.rom.flexion_deg, "extension_deg": self.rom.extension_deg},
            "t_rom": None if self.t_rom is None else list(self.t_rom),
            "alignment": {
                s: {k: round(float(v), 3) for k, v in a.items()} for s, a in self.alignment.items()
            },
            "gyro_offset_dps": {
                s: np.degrees(np.asarray(v)).round(4).tolist() for s, v in self.gyro_offset.items()
            },
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        try:
            mounting = {s: Mounting(np.asarray(m, dtype=float)) for s, m in d["mounting"].items()}
            rom = None if d.get("rom") is None else RangeOfMotion(**d["rom"])
            alignment = {
                str(s): {str(k): float(v) for k, v in a.items()}
                for s, a in (d.get("alignment") or {}).items()
            }
            offset = {
                str(s): np.radians(np.asarray(v, dtype=float).reshape(3))
                for s, v in (d.get("gyro_offset_dps") or {}).items()
            }
            source = str(d.get("source", "still"))
            if source not in ("still", "provisional", "stored"):
                raise ValueError(f"unknown calibration source {source!r}")
            return cls(
                mounting,
                tuple(d["t_neutral"]),
                rom,
                None if d.get("t_rom") is None else tuple(d["t_rom"]),
                alignment,
                offset,
                source,
            )
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as e:
            raise CalibrationError(f"calibration record is malformed: {e}") from None


def still_mask(block: SampleBlock, settings: CalibrationSettings) -> np.ndarray:
    """Per sample: every sensor reads still (low rotation, about 1 g)."""
    ok = np.ones(len(block), dtype=bool)
    lim = np.deg2rad(settings.still_gyro_dps)
    for s in block.sensors:
        g, a = block.gyr[s], block.acc[s]
        ok &= _row_norm(g) < lim
        ok &= np.abs(_row_norm(a) - G) < settings.still_acc_dev
    return ok


def _row_norm(v: np.ndarray) -> np.ndarray:
    """|v| per row of an (n, 3) array as np.linalg.norm(v, axis=1) computes
    it, (x*x + y*y) + z*z (the same bits), without its wrapper's cost on a
    frame's few rows; a long block column by column (a reduction over a
    last axis of 3 is slow there)."""
    if len(v) <= 64:
        return np.sqrt(np.add.reduce(v * v, axis=1))
    out = v[:, 0] * v[:, 0]
    sq = v[:, 1] * v[:, 1]
    out += sq
    np.multiply(v[:, 2], v[:, 2], out=sq)
    out += sq
    return np.sqrt(out, out=out)


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


#: the calibrator's fields that its state leaves out, or copies its own way
_NOT_STATE = ("settings", "result")


@dataclass
class Calibrator:
    """Streaming calibration. Feed every block to :meth:`update_neutral`
    until it returns mountings; then, if ROM is wanted, feed blocks and the
    fused gravity directions to :meth:`update_rom` until :attr:`done`.

    Exposed state (so a test can ask why): ``phase``, ``attempts``,
    ``rom_stage`` (``"forward"`` -> ``"backward"`` -> ``"settle"``),
    ``peak_tilt_deg`` and ``bend_rotation`` per sensor."""

    settings: CalibrationSettings = field(default_factory=CalibrationSettings)
    phase: str = "neutral"  # neutral -> rom -> done; neutral -> provisional -> done
    attempts: int = (
        1  # neutral windows started (a movement that breaks one a quarter under way starts a new one)
    )
    result: Calibration | None = None
    rom_stage: str = "forward"
    peak_tilt_deg: dict = field(default_factory=dict)
    bend_rotation: dict = field(
        default_factory=dict
    )  # integrated gyro (deg) at the deepest bend, neutral frame
    gyro_bias: dict = field(default_factory=dict)  # neutral mean gyro per sensor, rad/s
    _n: int = 0  # samples in the current still stretch
    _snap: list = field(default_factory=list)  # (n, accelerometer sums) at 1/4 and 3/4 of the stretch
    _min_tilt: float = math.inf  # the least tilt of a window so far (upright rule), deg
    _t_first: float = 0.0
    _t_last: float = 0.0
    _sum_a: dict = field(default_factory=dict)
    _sum_g: dict = field(default_factory=dict)
    _t0: float | None = None  # first sample seen
    _win: dict | None = None  # the current fixed window (for a provisional neutral)
    _best: dict | None = None  # the quietest window so far
    _rom_t0: float | None = None
    _rot: dict = field(default_factory=dict)
    _buf: dict = field(default_factory=dict)  # neutral-frame gravity per sensor over the sweep
    rom_skipped: bool = False  # True when no bend started within rom_start_s
    #: index (in the last block) of the sample that completed a step (neutral
    #: or range of motion); None if the block did not complete one. The
    #: samples after it belong to the next phase: the caller goes on with them.
    stopped_at: int | None = None
    _second_peak: float = 0.0
    _rom_still_since: float | None = None

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def state(self) -> StageState:
        """The calibrator's state as a value (every field but its settings;
        the calibration found so far copied)."""
        out = {f.name: plain_value(getattr(self, f.name)) for f in fields(self) if f.name not in _NOT_STATE}
        out["result"] = None if self.result is None else self.result.copy()
        return out

    def restore(self, state: StageState) -> None:
        """Go on from ``state`` (see :meth:`state`)."""
        for f in fields(self):
            if f.name not in _NOT_STATE:
                setattr(self, f.name, plain_value(state[f.name]))
        self.result = None if state["result"] is None else state["result"].copy()

    def update_neutral(self, block: SampleBlock) -> Calibration | None:
        """Look for the first still stretch of ``neutral_s``; returns the
        calibration on the block that completes it. With no still stretch by
        ``provisional_after_s``, returns a *provisional* calibration from the
        quietest stretch seen (``source == "provisional"``) and keeps looking:
        a later still stretch returns the real one. Sample by sample, so any
        split of the stream into blocks finds the same stretch."""
        self.stopped_at = None
        if self.phase not in ("neutral", "provisional") or len(block) == 0:
            return None
        st = self.settings
        sensors = block.sensors
        dt = 1.0 / block.rate_hz
        need = max(2, int(round(st.neutral_s * block.rate_hz)))
        gvar = math.radians(st.still_gyro_var_dps)
        avar = st.still_acc_var_m_s2
        gmax = math.radians(st.max_gyro_offset_dps)
        t = block.t.tolist()
        acc = {s: block.acc[s].tolist() for s in sensors}
        gyr = {s: block.gyr[s].tolist() for s in sensors}
        if self._t0 is None:
            self._t0 = t[0]
        if self._n and set(self._sum_a) != set(sensors):
            self._n = 0  # the sensors changed (a reboot without one): a new stretch
        if self._win is not None and set(self._win["a"]) != set(sensors):
            self._win = None
        if self._best is not None and set(self._best["a"]) != set(sensors):
            self._best = None
        # the sample at which the provisional deadline is reached (neutral phase only)
        i_prov = len(t)
        if self.phase == "neutral":
            late = np.flatnonzero(block.t - self._t0 + dt >= st.provisional_after_s - 1e-9)
            if len(late):
                i_prov = int(late[0])
        for i in range(len(t)):
            fits = True
            for s in sensors:
                a, g = acc[s][i], gyr[s][i]
                if (
                    abs(math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]) - G) >= st.still_acc_dev
                    or math.sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]) >= gmax
                ):
                    fits = False
                    break
                if self._n:
                    sa, sg = self._sum_a[s], self._sum_g[s]
                    n = self._n
                    da = math.sqrt(sum((a[k] - sa[k] / n) ** 2 for k in range(3)))
                    dg = math.sqrt(sum((g[k] - sg[k] / n) ** 2 for k in range(3)))
                    if da >= avar or dg >= gvar:
                        fits = False
                        break
            better = self._window(
                sensors,
                acc,
                gyr,
                i,
                t[i],
                need
                if st.provisional_rule == "quietest"
                else max(2, int(round(st.provisional_window_s * block.rate_hz))),
            )
            if better and self.phase == "provisional" and st.provisional_rule == "upright":
                self.stopped_at = (
                    i  # a clearly more upright quiet moment: the provisional neutral moves there
                )
                assert self._best is not None  # _window set it (better is True)
                return self._finish_neutral(
                    sensors, self._best["a"], self._best["g"], self._best["n"], self._best["t"], "provisional"
                )
            if not fits:
                if self._n and self._t_last - self._t_first >= 0.25 * st.neutral_s:
                    self.attempts += (
                        1  # a still stretch under way was broken (not a moving sample's own brief run)
                    )
                self._n = 0
                # this sample may start the next stretch if it is plausible on its own
                if all(
                    abs(math.sqrt(sum(x * x for x in acc[s][i])) - G) < st.still_acc_dev
                    and math.sqrt(sum(x * x for x in gyr[s][i])) < gmax
                    for s in sensors
                ):
                    self._start_run(sensors, acc, gyr, i, t[i])
                if (
                    st.provisional_rule == "upright" and i >= i_prov
                ):  # the deadline holds while the wearer moves too
                    self._provisional_due(sensors, i)
                    if self.stopped_at is not None:
                        return self.result
                continue
            if self._n == 0:
                self._start_run(sensors, acc, gyr, i, t[i])
            else:
                self._n += 1
                self._t_last = t[i]
                for s in sensors:
                    for k in range(3):
                        self._sum_a[s][k] += acc[s][i][k]
                        self._sum_g[s][k] += gyr[s][i][k]
            if st.still_drift_deg is not None:
                self._snapshots(sensors, dt)
            if self._t_last - self._t_first + dt >= st.neutral_s - 1e-9:
                if st.still_drift_deg is not None and self._drifted(sensors):
                    self.attempts += (
                        1  # the gravity direction moved through the stretch: slow motion, not stillness
                    )
                    self._start_run(sensors, acc, gyr, i, t[i])
                    if i >= i_prov:
                        self._provisional_due(sensors, i)
                        if self.stopped_at is not None:
                            return self.result
                    continue
                self.stopped_at = i
                sum_g = {s: self._sum_g[s] for s in sensors}
                if st.still_drift_deg is not None and len(self._snap) == 2:
                    sum_g = {
                        s: list(np.asarray(sum_g[s]) - self._n * self._turn_rate(s, dt)) for s in sensors
                    }
                return self._finish_neutral(
                    sensors,
                    {s: self._sum_a[s] for s in sensors},
                    sum_g,
                    self._n,
                    (self._t_first, self._t_last),
                    "still",
                )
            if i >= i_prov:
                self._provisional_due(sensors, i)
                if self.stopped_at is not None:
                    return self.result
        return None

    def _provisional_due(self, sensors, i: int) -> None:
        """The provisional deadline has passed at sample ``i``: a provisional
        neutral from the quietest window so far (none yet: keep waiting)."""
        best = self._best
        if best is None or self.phase != "neutral":  # not even one full window yet (very short still spells)
            return
        self.stopped_at = i
        self._finish_neutral(sensors, best["a"], best["g"], best["n"], best["t"], "provisional")

    def _start_run(self, sensors, acc, gyr, i, ti) -> None:
        self._n = 1
        self._t_first = self._t_last = ti
        self._sum_a = {s: list(acc[s][i]) for s in sensors}
        self._sum_g = {s: list(gyr[s][i]) for s in sensors}
        self._snap = []

    def _snapshots(self, sensors, dt: float) -> None:
        """The accelerometer sums when the stretch passes a quarter and three quarters of ``neutral_s``."""
        k = len(self._snap)
        if k < 2 and self._t_last - self._t_first + dt >= (0.25, 0.75)[k] * self.settings.neutral_s - 1e-9:
            self._snap.append((self._n, {s: list(self._sum_a[s]) for s in sensors}))

    def _turn_rate(self, s: str, dt: float) -> np.ndarray:
        """The sensor's rotation rate (rad/s, across gravity) that the
        accelerometer saw over the stretch: its first quarter's mean gravity
        direction to its last quarter's. A world-fixed "up" turns by -w in
        the sensor's frame, so this is minus that turn over the time between
        the quarters; taken off the mean gyro, the offset is the gyro's own,
        not a slow motion's (sway, the tail of a bend)."""
        (n1, a1), (n3, a3) = self._snap
        first = np.asarray(a1[s]) / n1
        last = (np.asarray(self._sum_a[s]) - np.asarray(a3[s])) / max(1, self._n - n3)
        n1, n3 = float(np.linalg.norm(first)), float(np.linalg.norm(last))
        if not (n1 > 0 and n3 > 0 and math.isfinite(n1) and math.isfinite(n3)):
            return np.zeros(3)  # no direction to turn from (a zero reading)
        first, last = first / n1, last / n3
        cross = np.cross(first, last)
        sin = float(np.linalg.norm(cross))
        if sin <= 0:
            return np.zeros(3)
        angle = math.atan2(sin, float(first @ last))
        span = ((n3 + self._n) / 2.0 - (1 + n1) / 2.0) * dt  # between the quarters' centres
        return -(cross / sin) * angle / span if span > 0 else np.zeros(3)

    def _drifted(self, sensors) -> bool:
        """The mean gravity direction of the stretch's last quarter is more
        than ``still_drift_deg`` from its first quarter's, for some sensor."""
        if len(self._snap) < 2:
            return False
        (n1, a1), (n3, a3) = self._snap
        if self.settings.still_drift_deg is None:
            return False
        lim = math.cos(math.radians(self.settings.still_drift_deg))
        for s in sensors:
            first = np.asarray(a1[s]) / n1
            last = (np.asarray(self._sum_a[s]) - np.asarray(a3[s])) / max(1, self._n - n3)
            if float(first @ last) < lim * float(np.linalg.norm(first) * np.linalg.norm(last)):
                return True
        return False

    def _window(self, sensors, acc, gyr, i, ti, need) -> bool:
        """Fixed windows of ``need`` samples: remember the best for a
        provisional neutral (the quietest; with the upright rule, quiet and
        upright). True when a window beat the provisional neutral in force by the margin."""
        w = self._win
        if w is None or w["n"] == 0:
            w = self._win = {
                "n": 0,
                "t0": ti,
                "a": {s: [0.0] * 3 for s in sensors},
                "g": {s: [0.0] * 3 for s in sensors},
                "a2": dict.fromkeys(sensors, 0.0),
                "g2": dict.fromkeys(sensors, 0.0),
            }
        w["n"] += 1
        for s in sensors:
            a, g = acc[s][i], gyr[s][i]
            for k in range(3):
                w["a"][s][k] += a[k]
                w["g"][s][k] += g[k]
            w["a2"][s] += a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
            w["g2"][s] += g[0] * g[0] + g[1] * g[1] + g[2] * g[2]
        if w["n"] < need:
            return False
        n = w["n"]
        spread = 0.0
        for s in sensors:
            va = max(0.0, w["a2"][s] / n - sum((x / n) ** 2 for x in w["a"][s]))
            vg = max(0.0, w["g2"][s] / n - sum((x / n) ** 2 for x in w["g"][s]))
            spread += math.sqrt(va) / self.settings.still_acc_var_m_s2 + math.sqrt(vg) / math.radians(
                self.settings.still_gyro_var_dps
            )
        tilt = 0.0
        if self.settings.provisional_rule == "upright":
            a = w["a"]["upper" if "upper" in w["a"] else sensors[0]]
            norm = math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
            tilt = math.degrees(math.acos(max(-1.0, min(1.0, a[0] / norm)))) if norm > 0 else 180.0
            self._min_tilt = min(self._min_tilt, tilt)
        w["n"] = 0
        best = self._best
        if best is None or self._score(spread, tilt) < self._score(best["quiet"], best["tilt"]):
            in_force = (
                None if best is None else best.get("in_force")
            )  # (quiet, tilt) of the provisional neutral in force
            better = (
                self.phase == "provisional"
                and in_force is not None
                and self._score(spread, tilt) < self._score(*in_force) - self.settings.provisional_margin
            )
            self._best = {
                "quiet": spread,
                "tilt": tilt,
                "spread": self._score(spread, tilt),
                "n": n,
                "t": (w["t0"], ti),
                "a": {s: list(v) for s, v in w["a"].items()},
                "g": {s: list(v) for s, v in w["g"].items()},
                "in_force": in_force,
            }
            return better
        return False

    def _score(self, quiet: float, tilt: float) -> float:
        """A window as a provisional neutral (lower is better): its motion in
        units of the still tolerance, plus (upright rule) a unit for each
        degree it leans past the most upright window seen so far -- relative,
        so however the sensor sits. A bend's quiet bottom 60 deg down scores
        60, a top that is moving (a rep starting at once) 4-10: the top wins,
        and among upright windows the quietest."""
        if self.settings.provisional_rule != "upright":
            return quiet
        return quiet + max(0.0, tilt - self._min_tilt)

    def _finish_neutral(self, sensors, sum_a, sum_g, n, t_span, source) -> Calibration:
        mounting = {}
        offset = {}
        # a provisional window is only quiet, not still: its mean gyro is no zero-rate
        # offset; and a still stretch that replaces a provisional neutral keeps its
        # (none): the fusion has been learning its own bias since the start and goes on
        upright = self.settings.provisional_rule == "upright" and (
            source == "provisional" or self.phase == "provisional"
        )
        if source == "provisional" and upright and self._best is not None:
            self._best["in_force"] = (self._best["quiet"], self._best["tilt"])
        for s in sensors:
            mounting[s] = Mounting.from_neutral(np.asarray(sum_a[s]) / n)
            offset[s] = np.zeros(3) if upright else np.asarray(sum_g[s]) / n
            self.gyro_bias[s] = offset[s]
        self.result = Calibration(
            mounting, (float(t_span[0]), float(t_span[1])), gyro_offset=offset, source=source
        )
        if not (upright and source == "provisional"):
            self._n = 0  # (a provisional window leaves the still stretch under way running)
        if source == "provisional":
            self.phase = "provisional"  # keep looking for a real still stretch
        else:
            self.phase = "rom" if self.settings.rom and self.phase == "neutral" else "done"
        return self.result

    def update_rom(self, block: SampleBlock, gravity: dict) -> bool:
        """Track the bends; returns True when the ROM phase ends, at the
        sample :attr:`stopped_at` (the samples after it are not consumed).
        Sample by sample: any split of the stream ends it at the same sample.

        ``block``: the samples with the gyro offset found at neutral
        (``result.gyro_offset``) removed, as the pipeline fuses them (the
        stillness test and the integrated bend both need it removed once).
        ``gravity``: per sensor, (n, 3) fused gravity directions, sensor frame."""
        self.stopped_at = None
        if self.phase != "rom" or len(block) == 0:
            return self.done
        assert self.result is not None
        st = self.settings
        t = block.t
        n = len(t)
        if self._rom_t0 is None:
            self._rom_t0 = float(t[0])
        dt = 1.0 / block.rate_hz
        per: dict = {}
        for s in block.sensors:
            if s not in self.result.mounting:
                continue  # a sensor that was not there at neutral
            m = self.result.mounting[s]
            u0 = m.to_body(gravity[s])
            w0 = m.to_body(
                block.gyr[s]
            )  # the gyro offset found at neutral is already removed (see the docstring)
            # summed sample by sample from the previous total (the same sums for any split)
            rot = np.cumsum(np.vstack([self._rot.get(s, np.zeros(3))[None, :], np.degrees(w0) * dt]), axis=0)[
                1:
            ]
            tilt = np.degrees(np.arccos(np.clip(u0[:, 0] / np.linalg.norm(u0, axis=1), -1.0, 1.0)))
            per[s] = (u0, rot, tilt)
        assert "upper" in per
        tilt_upper = per["upper"][2]
        peak_upper = np.maximum.accumulate(np.maximum(tilt_upper, self.peak_tilt_deg.get("upper", -1.0)))
        still = still_mask(block, st)
        near = 0.25 * st.rom_min_flexion_deg
        end = None  # (index, complete, skipped)
        for i in range(n):
            tu = float(tilt_upper[i])
            ti = float(t[i])
            if self.rom_stage == "forward":
                if peak_upper[i] >= st.rom_min_flexion_deg and tu < near:
                    self.rom_stage = "backward"
            elif self.rom_stage == "backward":
                self._second_peak = max(self._second_peak, tu)
                if self._second_peak >= abs(st.rom_min_extension_deg) and tu < near:
                    self.rom_stage = "settle"
            if still[i] and tu < near:
                if self._rom_still_since is None:
                    self._rom_still_since = ti
            else:
                self._rom_still_since = None
            if (
                self.rom_stage == "settle"
                and self._rom_still_since is not None
                and ti - self._rom_still_since >= st.rom_settle_s
            ):
                end = (i, True, False)
                break
            if (
                self.rom_stage == "forward"
                and peak_upper[i] < st.rom_min_flexion_deg
                and ti - self._rom_t0 > st.rom_start_s
            ):
                # no bend came: the wearer went straight to lifting (or walking); skip, never block monitoring
                end = (i, False, True)
                break
            if ti - self._rom_t0 > st.rom_timeout_s:
                end = (i, self.rom_stage == "settle", False)
                break
        used = n if end is None else end[0] + 1
        for s, (u0, rot, tilt) in per.items():
            self._rot[s] = rot[used - 1].copy()
            k = int(np.argmax(tilt[:used]))
            if tilt[k] > self.peak_tilt_deg.get(s, -1.0):
                self.peak_tilt_deg[s] = float(tilt[k])
                self.bend_rotation[s] = rot[k].copy()
            self._buf.setdefault(s, []).append(u0[:used])
        for s in self.result.mounting:
            if (
                s not in per
            ):  # a sensor of the neutral missing from this block (a layout change): keep the buffers in step
                self._buf.setdefault(s, []).append(np.full((used, 3), np.nan))
        if end is None:
            return False
        i, complete, skipped = end
        self.stopped_at = i
        if skipped:
            self.rom_skipped = True
            self.bend_rotation = {}
        self._finish_rom(float(t[i]), complete=complete)
        return True

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
                pair = (lumbar - np.degrees(np.arctan2(lo[:, 2], lo[:, 0])) + 180.0) % 360.0 - 180.0
                both = np.isfinite(pair)
                # the lumbar angle from the samples that had both sensors; with none, the upper sensor's own
                lumbar = pair[both] if both.any() else lumbar
            lumbar = lumbar[np.isfinite(lumbar)]
            try:
                res.rom = (
                    RangeOfMotion(round(float(lumbar.max()), 2), round(float(lumbar.min()), 2))
                    if len(lumbar)
                    else None
                )
            except ConfigError:
                res.rom = None
        assert self._rom_t0 is not None  # set by the sweep's first block
        res.t_rom = (float(self._rom_t0), t_end)
        self._buf = {}
        self.phase = "done"


class HeadingFinder:
    """Each sensor's heading about the spine, found from the lifter's own bends.

    Neutral standing fixes only a sensor's up axis; a sensor stuck on turned
    about the spine (crooked, or re-attached differently from a stored
    calibration) leaks flexion into lateral bend. Bends are sagittal: while a
    sensor turns faster than ``min_rate_deg_s`` about an axis across the
    spine, that axis (its gyro's body Y, Z part with the mounting in force)
    is the mediolateral one, body Y. The principal axis of those directions
    (second moments, so going down and coming up agree) is found once the
    sensor has turned so for ``min_bend_s``; its angle from body Y gives the
    heading error ``alpha`` (deg), corrected by turning the mounting
    ``Rx(alpha)``. The gyro, not the tilt: a strap that slips or a neutral
    that is off tilts the sensor without turning it. A turn that was not in
    one plane near the sagittal one (walking, a twist, a lateral bend) is
    forgotten. Once per sensor per session (:meth:`reset` to relearn). Sample
    by sample: any split of the stream finds it at the same sample.

    Exposed state: ``found`` (sensor -> {"heading_deg", "bend_s", "t"}),
    ``rejected`` (turns that were no heading)."""

    def __init__(
        self,
        min_rate_deg_s: float = 20.0,
        min_bend_s: float = 0.15,
        min_turn_deg: float = 10.0,
        max_heading_deg: float = 45.0,
    ) -> None:
        self.min_rate_deg_s = (
            min_rate_deg_s  # well past gyro bias and standing sway; a hinge's way down turns at 40-100 deg/s
        )
        self.min_bend_s = (
            min_bend_s  # found early on the way down, before a leak into lateral bend can reach its limit
        )
        self.min_turn_deg = min_turn_deg  # and after turning this far: a bend, not a sway
        self.max_heading_deg = max_heading_deg
        self.rejected = 0
        self.found: dict[str, dict] = {}
        self._m: dict[
            str, np.ndarray
        ] = {}  # sensor -> [seconds, syy, szz, syz, degrees turned] of the unit turn axis
        self.stopped_at: int | None = None

    def reset(self) -> None:
        self.found = {}
        self._m = {}

    def state(self) -> tuple:
        """The finder's state as a value (see :meth:`restore`)."""
        return (
            {k: dict(v) for k, v in self.found.items()},
            {k: v.copy() for k, v in self._m.items()},
            self.rejected,
        )

    def restore(self, state: tuple) -> None:
        found, m, rejected = state
        self.found, self._m, self.rejected = (
            {k: dict(v) for k, v in found.items()},
            {k: v.copy() for k, v in m.items()},
            rejected,
        )

    def update(self, gyr: dict, mounting: dict, t: np.ndarray, rate: float) -> dict[str, float] | None:
        """One block of gyros (rad/s, sensor frame, per sensor). Returns
        ``{sensor: alpha_deg}`` for the sensors whose heading was found at the
        sample :attr:`stopped_at` (the samples after it are not consumed: the
        caller goes on with them under the corrected mounting; ``{}``: a turn
        there was no heading), else None."""
        self.stopped_at = None
        dt = 1.0 / rate
        w_min = math.radians(self.min_rate_deg_s)
        first: int | None = None
        hits: dict[str, int] = {}
        cums: dict[str, np.ndarray] = {}
        for s in sorted(gyr):
            if s in self.found or s not in mounting or not len(t):
                continue
            w = mounting[s].to_body(gyr[s])
            n = np.hypot(w[:, 1], w[:, 2])
            turning = n > w_min
            safe = np.where(turning, n, 1.0)
            y, z = w[:, 1] / safe, w[:, 2] / safe
            parts = np.stack(
                [
                    turning * dt,
                    turning * y * y,
                    turning * z * z,
                    turning * y * z,
                    turning * np.degrees(n) * dt,
                ],
                axis=1,
            )
            c = np.cumsum(np.vstack([self._m.get(s, np.zeros(5))[None, :], parts]), axis=0)[1:]
            cums[s] = c
            k = np.flatnonzero((c[:, 0] >= self.min_bend_s - 1e-12) & (c[:, 4] >= self.min_turn_deg - 1e-9))
            if len(k):
                hits[s] = int(k[0])
                first = hits[s] if first is None else min(first, hits[s])
        used = len(t) if first is None else first + 1
        out: dict[str, float] = {}
        for s, c in cums.items():
            self._m[s] = c[used - 1].copy()
            if first is None or hits.get(s) != first:
                continue
            sec, syy, szz, syz, _ = self._m[s]
            alpha = -0.5 * math.degrees(math.atan2(2.0 * syz, syy - szz))
            spread = math.hypot(syy - szz, 2.0 * syz)
            minor, major = 0.5 * (syy + szz - spread), 0.5 * (syy + szz + spread)
            if abs(alpha) > self.max_heading_deg or minor > 0.2 * major:
                self.rejected += 1  # not one sagittal plane: forget it, wait for the next bend
                self._m[s] = np.zeros(5)
                continue
            self.found[s] = {
                "heading_deg": round(alpha, 3),
                "bend_s": round(float(sec), 3),
                "t": round(float(t[first]), 4),
            }
            out[s] = alpha
        if first is None:
            return None
        self.stopped_at = first
        return out


class LeanHeadingFinder:
    """Each sensor's heading about the spine from one-sided lifts (lunges,
    split squats; rules 4), where :class:`HeadingFinder` cannot look: the
    upper sensor's turning there is mostly the lean toward the working side.

    The lean is mirrored between the working sides; what is common to both is
    the sagittal tip of the pelvis (and the trunk over it) as the hips drop.
    So each sensor's gravity at the bottom of each rep (the sample where the
    upper sensor is tilted furthest from standing; the tilt is the same
    whatever the heading) is summed per working side, and once both sides
    have a rep, the mean of the two sides' means lies in the sagittal plane:
    its angle from body Z in the Y-Z plane is the heading error ``alpha``,
    corrected by turning the mounting ``Rx(alpha)`` as the bends' heading is.
    The side is the label's, else the rep's peak twist (the relative turn
    of the two gyros about the spine, a leaky integral as the angles' twist
    (``twist_tau_s``), which no heading changes; past :data:`SIDE_MIN_DEG`, and only while each gyro's
    bias is known; a one-sided load turns the trunk toward its side, as
    :mod:`spinemon.core.unilateral` reads it). A rep is a tilt past ``enter_deg`` (standing sways less,
    gait-l5), over when it falls below half of that. The mean must tilt at
    least ``min_tilt_deg`` and ``alpha`` stay within ``max_heading_deg``,
    else both sides are forgotten. Two sensors only (one has no twist to
    tell the side by; a label does). Sample by sample, carried across blocks:
    any split finds it at the same sample (``stopped_at``).

    On the simulated wearer's truth (split squats alternating sides, the
    upper sensor mounted 30 deg off): 32.8, 32.2 and 26.0 deg over seeds
    1-3; one rep's bottom alone reads 1 to 78 deg.

    ``rep_twist`` (rules 5, single-arm presses, where no still start may
    come): the side is the twist the rep itself makes, whether or not the
    gyro biases are known. The two gyros' relative turn about the spine is
    summed from the last sample the upper sensor stood within half
    ``enter_deg`` of upright to the rep's end, and the straight line from its
    start to its end is taken off: the rep ends upright as it began, so what
    is left at its end is the gyros' unlearnt offsets integrated (1-2 deg/s,
    2-5 deg over a rep, on the order of the 6-9 deg turn toward the loaded
    side; the leaky integral from the start of the session drifts by offset
    x ``twist_tau_s``). Its peak, past :data:`SIDE_MIN_DEG`, tells the side.
    And the sagittal plane is an axis: a press tips the trunk back
    (extension), so the mean of the sides is taken whichever way it points.

    ``from_valley`` (rules 7, lunges and split squats with no still start):
    a rep rises ``enter_deg`` above the valley it began from (the least tilt
    since the last rep ended) and ends when it falls back within half of
    that of the valley, not of upright; its turn is counted from the valley.
    With no still start the upright tilt is a provisional neutral and a
    fusion that has not learnt its gyro bias: standing read 3 deg tilted
    between a crooked lunge's reps (seed 7), never below half ``enter_deg``,
    so every rep after the first ran into one. A new neutral or heading
    (the fusion may restart with it) drops the rep in progress and the
    valley is taken afresh. A rep longer than ``max_rep_s`` is
    dropped (the valley is then taken afresh). A rep's side is the session's
    twist where each gyro's bias was known throughout the rep (as rules 4),
    else the rep's own twist (as ``rep_twist``): a lunge's one-sided turn
    (6-9 deg toward the working side) tells it whether or not the biases are
    known, and its pelvis tip (8-15 deg, about the mediolateral axis) does
    not turn the sensors about the spine."""

    def __init__(
        self,
        enter_deg: float = 5.0,
        min_tilt_deg: float = 5.0,
        max_heading_deg: float = 45.0,
        twist_tau_s: float = 10.0,
        rep_twist: bool = False,
        from_valley: bool = False,
        max_rep_s: float = 12.0,
    ) -> None:
        self.rep_twist = rep_twist
        self.from_valley = from_valley
        self.max_rep_s = max_rep_s
        self.enter_deg = enter_deg
        self.min_tilt_deg = min_tilt_deg
        self.max_heading_deg = max_heading_deg
        self.twist_tau_s = twist_tau_s
        self.found: dict[str, dict] = {}
        self.rejected = 0
        self.stopped_at: int | None = None
        self._sums: dict[str, np.ndarray] = {}  # "sensor side" -> [reps, gx, gy, gz] (sensor frame)
        self._rep: dict | None = None  # the rep in progress: peak tilt, gravity there, peak twist
        self._twist = 0.0  # the twist (deg): a leaky integral, as the angles' (``twist_tau_s``)
        #: (rep_twist) the relative turn about the spine (deg, not leaky) since the
        #: upper sensor last stood upright, and the time of that sample
        self._turn = 0.0
        self._t_upright = 0.0
        #: (from_valley) the least tilt since the last rep ended (deg; None: none yet)
        self._valley: float | None = None
        self._mounting: Mounting | None = None  # (from_valley) the upper mounting the valley was read with

    def reset(self) -> None:
        self.found, self._sums, self._rep, self._twist = {}, {}, None, 0.0
        self._turn = self._t_upright = 0.0
        self._valley, self._mounting = None, None

    def state(self) -> tuple:
        """The finder's state as a value (see :meth:`restore`)."""
        rep = (
            None
            if self._rep is None
            else {k: (v.copy() if isinstance(v, (np.ndarray, list)) else v) for k, v in self._rep.items()}
        )
        return (
            {k: dict(v) for k, v in self.found.items()},
            {k: v.copy() for k, v in self._sums.items()},
            rep,
            self.rejected,
            self._twist,
            self._turn,
            self._t_upright,
            self._valley,
            self._mounting,
        )

    def restore(self, state: tuple) -> None:
        (
            found,
            sums,
            rep,
            self.rejected,
            self._twist,
            self._turn,
            self._t_upright,
            self._valley,
            self._mounting,
        ) = state
        self.found = {k: dict(v) for k, v in found.items()}
        self._sums = {k: v.copy() for k, v in sums.items()}
        self._rep = (
            None
            if rep is None
            else {k: (v.copy() if isinstance(v, (np.ndarray, list)) else v) for k, v in rep.items()}
        )

    def update(
        self,
        gravity: dict,
        gyr: dict,
        mounting: dict,
        t: np.ndarray,
        rate: float,
        side: str | None,
        twist_known: np.ndarray,
    ) -> dict[str, float] | None:
        """One block (sensor-frame unit gravity and gyros, rad/s, of both
        sensors; ``side``: the label's working side or None; ``twist_known``:
        (n,) each gyro's bias known). Returns ``{sensor: alpha_deg}`` at the
        sample :attr:`stopped_at` where a rep ended and headings were found
        (``{}``: rejected), else None (see :class:`HeadingFinder`)."""
        self.stopped_at = None
        sensors = ("upper", "lower")
        if any(s not in gravity or s not in mounting for s in sensors) or len(self.found) == 2 or not len(t):
            return None
        up = mounting["upper"].to_body(gravity["upper"])
        tilt = np.degrees(np.arctan2(np.hypot(up[:, 1], up[:, 2]), up[:, 0]))
        if self.from_valley:
            was, self._mounting = self._mounting, mounting["upper"]
            if was is not None and was is not mounting["upper"]:
                # a new neutral or heading (and the fusion restarted with it): the tilt
                # before it is not comparable, so the rep in progress is dropped
                self._rep, self._valley = None, None
        wx = np.degrees(
            mounting["upper"].to_body(gyr["upper"])[:, 0] - mounting["lower"].to_body(gyr["lower"])[:, 0]
        )
        dt = 1.0 / rate
        leak = math.exp(-dt / self.twist_tau_s)
        for i in range(len(t)):
            self._twist = tw = leak * self._twist + float(wx[i]) * dt
            r = self._rep
            self._turn += float(wx[i]) * dt
            base = 0.0
            if self.from_valley:
                if r is None and (self._valley is None or tilt[i] <= self._valley):
                    self._valley = float(tilt[i])  # the valley: the next rep's turn is counted from here
                    self._turn, self._t_upright = 0.0, float(t[i])
                base = self._valley if self._valley is not None else 0.0
            if r is None:
                if not self.from_valley and tilt[i] <= 0.5 * self.enter_deg:
                    self._turn, self._t_upright = (
                        0.0,
                        float(t[i]),
                    )  # upright: the next rep's turn is counted from here
                if tilt[i] <= base + self.enter_deg:
                    continue
                self._rep = r = {"peak": -1.0, "g": None, "tw_peak": 0.0, "known": True}
                if self.rep_twist:
                    r.update(t0=self._t_upright, tau=[], turn=[])
            if self.rep_twist:
                r["tau"].append(float(t[i]) - r["t0"])
                r["turn"].append(self._turn)
            if not self.rep_twist or self.from_valley:
                r["known"] = r["known"] and bool(twist_known[i])
                if abs(tw) > abs(r["tw_peak"]):
                    r["tw_peak"] = tw
            if tilt[i] > r["peak"]:
                r["peak"] = float(tilt[i])
                r["g"] = np.concatenate([gravity["upper"][i], gravity["lower"][i]])
            if self.from_valley and float(t[i]) - r.get("t0", float(t[i])) > self.max_rep_s:
                self._rep, self._valley = None, float(tilt[i])  # no rep: the valley afresh
                self._turn, self._t_upright = 0.0, float(t[i])
                continue
            if tilt[i] >= base + 0.5 * self.enter_deg:
                continue
            self._rep = None  # the rep is over: its bottom goes to its side
            if self.from_valley:
                self._valley = float(tilt[i])  # the next rep starts from the valley after this one
            if self.rep_twist and not (self.from_valley and r["known"]):
                # the rep's own twist; (from_valley) only where the twist's bias was not known throughout
                r["tw_peak"], r["known"] = self._rep_turn(r), True
            which = side
            if which is None and r["known"] and abs(r["tw_peak"]) >= SIDE_MIN_DEG:
                which = "left" if r["tw_peak"] > 0 else "right"
            if which not in ("left", "right"):
                continue
            out = self._add(r["g"], which, mounting, float(t[i]))
            if out is not None:
                self.stopped_at = i
                return out
        return None

    @staticmethod
    def _rep_turn(r: dict) -> float:
        """(``rep_twist``) the rep's own twist at its peak: the turn since the
        last upright sample less the straight line from its start to its end
        (the rep ends upright as it began, so what is left at its end is the
        gyros' offset, integrated)."""
        tau, turn = np.asarray(r["tau"]), np.asarray(r["turn"])
        if len(tau) < 2 or tau[-1] <= 0:
            return 0.0
        d = turn - turn[-1] * tau / tau[-1]
        return float(d[np.argmax(np.abs(d))])

    def _add(self, g: np.ndarray, side: str, mounting: dict, t: float) -> dict[str, float] | None:
        out: dict[str, float] = {}
        tried = False
        for k, s in enumerate(("upper", "lower")):
            if s in self.found:
                continue
            acc = self._sums.setdefault(f"{s} {side}", np.zeros(4))
            acc += np.concatenate([[1.0], g[3 * k : 3 * k + 3]])
            left, right = self._sums.get(f"{s} left"), self._sums.get(f"{s} right")
            if left is None or right is None or not left[0] or not right[0]:
                continue
            v = mounting[s].to_body(left[1:] / left[0]) + mounting[s].to_body(right[1:] / right[0])
            if math.degrees(math.atan2(math.hypot(v[1], v[2]), v[0])) < self.min_tilt_deg:
                continue  # no tip to take the heading from: wait for more reps
            tried = True
            if self.rep_twist and v[2] < 0:
                v = -v  # the sagittal plane, whichever way the mean tips (a press: back)
            alpha = math.degrees(math.atan2(v[1], v[2]))
            if abs(alpha) > self.max_heading_deg:
                self.rejected += 1
                del self._sums[f"{s} left"], self._sums[f"{s} right"]
                continue
            self.found[s] = {
                "heading_deg": round(alpha, 3),
                "t": round(t, 4),
                "band_deg": self._band(mounting[s], alpha, left, right),
            }
            out[s] = alpha
        return out if (out or tried) else None

    def _band(self, mounting: Mounting, alpha: float, left: np.ndarray, right: np.ndarray) -> float:
        """How far off the heading ``alpha`` may be (deg, at most
        ``max_heading_deg``): the sides' mean lies in the sagittal plane only
        if the lean toward the working side is the same on both; what it is not
        turns the mean by ``atan(half the difference / the tip)``. A side's lean
        is toward its side, so half the difference is at most half the larger
        lean: ``atan(max |lean| / 2 / tip)``, the leans and the mean's forward
        tip read with ``alpha`` applied. Split squat seed 23 (a still start):
        leans 9.3 and 2.4 deg, tip 14 deg: band 18 deg; the heading was 12 deg
        off, and the arch's 10 deg lean read as 2 deg less extension."""
        m = turned(mounting, alpha)
        ul, ur = m.to_body(left[1:] / left[0]), m.to_body(right[1:] / right[0])
        ul, ur = ul / np.linalg.norm(ul), ur / np.linalg.norm(ur)
        tip = 0.5 * (ul[2] + ur[2])
        lean = 0.5 * max(abs(ul[1]), abs(ur[1]))
        if tip <= 0.0:
            return self.max_heading_deg
        return round(min(self.max_heading_deg, math.degrees(math.atan2(lean, tip))), 3)


def turned(mounting: Mounting, alpha_deg: float) -> Mounting:
    """``mounting`` turned by ``alpha_deg`` about the spine axis (body X)."""
    return Mounting(_rx_deg(alpha_deg) @ mounting.rotation)
