"""Scenarios as data: one TOML file each in ``hil/scenarios/``.

A scenario has a motion script (``[motion]``: what the rig, or the simulated
board's IMU fakes, do to the sensors; see
``tests/firmware/fakes/motion_script.py`` for the fields), the device set-up
(``rate_hz``, ``exercise``), timed bench ``[[actions]]`` (link loss, corrupted
bytes, DUT reset, rate change) and ``[expect]`` pass/fail limits.

:class:`Truth` is the bench's own implementation of the motion script
(numpy), independent of the MicroPython player the simulated board runs;
``tests/system/test_hil.py`` checks that both agree.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spinemon.core.detect import profile
from spinemon.errors import ConfigError

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

ACTIONS = {
    "link_loss": ("duration_s",),  # the bench stops reading and writing the line
    "corrupt_rx": ("frames",),  # flip one bit in each of the next N SAMPLES frames received
    "corrupt_tx": ("commands",),  # send N commands with one bit flipped
    "reset": (),  # reset the DUT and resynchronise
    "set_rate": ("rate_hz",),  # SET_RATE command
    "resave_guard": (),  # SET_GUARD again (a flash write); an ERROR answer is recorded, not raised
}
# hardware faults the simulated board injects (mpsim://, its `faults`
# parameter; tests/firmware/fakes/hil_board.py); on a real board the
# scenario's `by_hand` text says how to provoke the same fault
FAULTS = {
    "unplug": "the IMU leaves the bus (every transaction NACKs); back after duration_s, browned out",
    "i2c_glitch": "the next `count` transactions with the IMU time out (ETIMEDOUT)",
    "brownout": "the IMU resets to its power-on registers (no samples, no error)",
    "stuck_bus": "every I2C transaction times out for duration_s",
    "garbage_ff": "every read from the IMU returns 0xFF for duration_s",
    "garbage_00": "every read from the IMU returns 0x00 for duration_s",
    "full_flash": "every flash write fails with ENOSPC for duration_s",
}
MOTION_KEYS = {
    "pelvis_deg",
    "lumbar_deg",
    "mount_upper_deg",
    "mount_lower_deg",
    "noise_acc_m_s2",
    "noise_gyr_rad_s",
    "bias_gyr_upper",
    "bias_gyr_lower",
    "lin_acc",
    "seed",
}
EXPECT_KEYS = {
    "host_angle_mean_deg",  # mean |host lumbar - truth| at most this
    "host_angle_max_deg",  # max |host lumbar - truth| at most this
    "device_angle_mean_deg",
    "device_angle_max_deg",
    "host_alerts",  # list of event kinds, in order, the host must alert (and nothing else)
    "alert_windows",  # [[t0, t1], ...] world time window each alert's crossing must lie in
    "latency_max_s",  # every alert: motor on at most this long after the first sample past the limit
    "guard_fires",  # list of [t0, t1]: the device guard must buzz the motor in each window
    "frames_lost_max",  # samples the host lost (sequence gaps), not counting injected corruption
    "resync_max_s",  # after a reset: first sample again within this long
    "report_max_s",  # every fault (and link loss): the host sees it (flag, STATUS, ERROR) within this long
    "no_guard_max_s",  # every fault: the device guard without an angle at most this long
    "storage_errors",  # resave_guard answers ERROR storage_failed this many times
}


@dataclass(frozen=True)
class Action:
    at_s: float
    kind: str
    params: dict

    def as_dict(self) -> dict:
        return {"at_s": self.at_s, "action": self.kind, **self.params}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    exercise: str
    rate_hz: int
    motion: dict
    actions: tuple[Action, ...]
    expect: dict
    needs_rig: bool = True  # the scenario moves the sensors
    guard_mode: int = 1  # GUARD_WHEN_LINK_DOWN
    path: Path | None = field(default=None, compare=False)
    faults: tuple = ()  # dicts: at_s, fault, imu, duration_s, count (FAULTS)
    by_hand: str = ""  # how to provoke the faults on a real board

    @property
    def truth(self) -> "Truth":
        return Truth(self.motion)


class Truth:
    """The commanded motion, evaluated with numpy: lumbar angle (deg) and
    segment inclinations at world times."""

    def __init__(self, motion: dict) -> None:
        self.pelvis = np.asarray(motion.get("pelvis_deg") or [[0.0, 0.0]], dtype=float)
        self.lumbar = np.asarray(motion.get("lumbar_deg") or [[0.0, 0.0]], dtype=float)
        self.mount_upper = float(motion.get("mount_upper_deg", 0.0))
        self.mount_lower = float(motion.get("mount_lower_deg", 0.0))

    def lumbar_deg(self, t: np.ndarray | float) -> np.ndarray:
        return np.interp(t, self.lumbar[:, 0], self.lumbar[:, 1])

    def pelvis_deg(self, t: np.ndarray | float) -> np.ndarray:
        return np.interp(t, self.pelvis[:, 0], self.pelvis[:, 1])

    def sensor_tilt_deg(self, segment: str, t: np.ndarray | float) -> np.ndarray:
        if segment == "upper":
            return self.pelvis_deg(t) + self.lumbar_deg(t) + self.mount_upper
        return self.pelvis_deg(t) + self.mount_lower


def _keyframes(name: str, v: object) -> list[list[float]]:
    if not isinstance(v, list) or not v:
        raise ConfigError(f"motion.{name} must be a non-empty list of [t_s, deg] pairs")
    out = []
    last = -math.inf
    for p in v:
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float)) for x in p)):
            raise ConfigError(f"motion.{name}: {p!r} is not a [t_s, deg] pair")
        t, d = float(p[0]), float(p[1])
        if not (math.isfinite(t) and math.isfinite(d)) or t < last:
            raise ConfigError(f"motion.{name}: times must be finite and non-decreasing ({p!r})")
        if abs(d) > 170:
            raise ConfigError(f"motion.{name}: {d} deg is outside +-170")
        last = t
        out.append([t, d])
    return out


def check_motion(m: object, where: str = "motion") -> dict:
    if not isinstance(m, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(m) - MOTION_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    out = dict(m)
    for k in ("pelvis_deg", "lumbar_deg"):
        if k in m:
            out[k] = _keyframes(k, m[k])
    for k in ("mount_upper_deg", "mount_lower_deg", "noise_acc_m_s2", "noise_gyr_rad_s"):
        if k in m and (not isinstance(m[k], (int, float)) or not math.isfinite(m[k])):
            raise ConfigError(f"{where}.{k} must be a number")
        if k in m:
            out[k] = float(m[k])
    for k in ("bias_gyr_upper", "bias_gyr_lower"):
        if k in m:
            v = m[k]
            if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
                raise ConfigError(f"{where}.{k} must be [x, y, z] in rad/s")
            out[k] = [float(x) for x in v]
    if "lin_acc" in m:
        v = m["lin_acc"]
        if not isinstance(v, list) or not all(isinstance(s, list) and len(s) == 4 for s in v):
            raise ConfigError(f"{where}.lin_acc must be a list of [t0, t1, amp_m_s2, hz]")
        out["lin_acc"] = [[float(x) for x in s] for s in v]
    if "seed" in m and not isinstance(m["seed"], int):
        raise ConfigError(f"{where}.seed must be an integer")
    return out


def parse(d: dict, name: str, path: Path | None = None) -> Scenario:
    """A checked :class:`Scenario` from a parsed TOML table."""
    try:
        duration = float(d["duration_s"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"scenario {name}: duration_s (seconds) is required") from None
    if not 1.0 <= duration <= 600.0:
        raise ConfigError(f"scenario {name}: duration_s must be 1..600 s")
    exercise = d.get("exercise", "generic")
    profile(exercise)  # ConfigError for an unknown exercise
    rate = d.get("rate_hz", 100)
    if not isinstance(rate, int) or not 25 <= rate <= 1000:
        raise ConfigError(f"scenario {name}: rate_hz must be an integer 25..1000")
    motion = check_motion(d.get("motion", {}), f"scenario {name}: motion")
    actions = []
    for a in d.get("actions", []):
        kind = a.get("action")
        if kind not in ACTIONS:
            raise ConfigError(f"scenario {name}: unknown action {kind!r}; known: {', '.join(ACTIONS)}")
        if not isinstance(a.get("at_s"), (int, float)) or not 0 <= a["at_s"] < duration:
            raise ConfigError(f"scenario {name}: action {kind} needs at_s inside the scenario")
        params = {k: v for k, v in a.items() if k not in ("action", "at_s")}
        if set(params) != set(ACTIONS[kind]):
            raise ConfigError(f"scenario {name}: action {kind} takes {', '.join(ACTIONS[kind]) or 'no parameters'}")
        actions.append(Action(float(a["at_s"]), kind, params))
    actions.sort(key=lambda a: a.at_s)
    expect = d.get("expect", {})
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise ConfigError(f"scenario {name}: unknown expect key(s) {', '.join(sorted(unknown))}")
    faults = check_faults(d.get("faults", []), f"scenario {name}", duration)
    guard_mode = d.get("guard_mode", 1)
    if guard_mode not in (0, 1, 2):
        raise ConfigError(f"scenario {name}: guard_mode must be 0, 1 or 2")
    return Scenario(
        name=name,
        description=str(d.get("description", "")).strip(),
        duration_s=duration,
        exercise=exercise,
        rate_hz=rate,
        motion=motion,
        actions=tuple(actions),
        expect=dict(expect),
        needs_rig=bool(d.get("needs_rig", True)),
        guard_mode=guard_mode,
        path=path,
        faults=faults,
        by_hand=str(d.get("by_hand", "")).strip(),
    )


def check_faults(v: object, where: str, duration: float = 600.0) -> tuple:
    """The checked `faults` list of a scenario (or of an mpsim:// URL)."""
    if not isinstance(v, list):
        raise ConfigError(f"{where}: faults must be a list of tables")
    out = []
    for f in v:
        if not isinstance(f, dict) or f.get("fault") not in FAULTS:
            raise ConfigError(f"{where}: unknown fault {f.get('fault') if isinstance(f, dict) else f!r}; known: {', '.join(FAULTS)}")
        unknown = set(f) - {"at_s", "fault", "imu", "duration_s", "count"}
        if unknown:
            raise ConfigError(f"{where}: fault {f['fault']}: unknown key(s) {', '.join(sorted(unknown))}")
        at = f.get("at_s")
        if not isinstance(at, (int, float)) or not 0 <= at < duration:
            raise ConfigError(f"{where}: fault {f['fault']} needs at_s inside the scenario")
        imu = f.get("imu", "lower")
        if imu not in ("upper", "lower"):
            raise ConfigError(f"{where}: fault {f['fault']}: imu must be upper or lower")
        dur = f.get("duration_s", 0.0)
        if not isinstance(dur, (int, float)) or not 0 <= dur <= 600:
            raise ConfigError(f"{where}: fault {f['fault']}: duration_s must be 0..600")
        count = f.get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= 1000:
            raise ConfigError(f"{where}: fault {f['fault']}: count must be 1..1000")
        out.append({"at_s": float(at), "fault": f["fault"], "imu": imu, "duration_s": float(dur), "count": count})
    return tuple(sorted(out, key=lambda f: f["at_s"]))


def load_faults(name: str | None = None, path: str | Path | None = None) -> tuple:
    """The faults of a scenario (by name, or a scenario file); () for a bare motion table."""
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
            d = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read {p}: {e}") from None
        return check_faults(d.get("faults", []), str(p), float(d.get("duration_s", 600.0) or 600.0))
    return load(name).faults


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load(name: str | None = None, path: str | Path | None = None) -> Scenario:
    """A scenario by name (``hil/scenarios/NAME.toml``) or from a file."""
    if path is None:
        if name is None or name not in scenario_names():
            raise ConfigError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
        path = SCENARIO_DIR / f"{name}.toml"
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read scenario {p}: {e.strerror}") from None
    try:
        d = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"scenario {p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {e}") from None
    return parse(d, p.stem, p)


def load_motion(name: str | None = None, path: str | Path | None = None) -> dict:
    """Only the motion script (for the simulated board). A file may be a
    whole scenario or just a motion table."""
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
            d = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read motion script {p}: {e}") from None
        return check_motion(d.get("motion", d), f"motion script {p}")
    return load(name).motion
