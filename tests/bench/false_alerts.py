"""False alerts, to print beside the alert latency: what buzzes when nothing is wrong.

Two sources, nothing tuned on either:

* the simulated wearer, per exercise (as the ``lifting`` section simulates
  it: calibration, 2 sets x 6 reps with the exercise's first fault on rep 4
  of set 1, walking about between sets), seeds 1-3, fed frame by frame with
  no set labels (as over BLE). An alert outside every faulty rep (0.3 s
  either side) is false; a faulty rep with none is missed.
* the real gait-l5 walks (as the ``realdata`` section imports them): 38
  trials of standing, walking and turning, one sensor at L5, replayed with
  each of its exercises: every alert there is false.

Counted three ways: the host's detector with the 80 ms hold only (the rule
before the quick confirmation), the host's detector as it is, and the
wearable's own guard (firmware/guard.py, run under CPython on the same raw
samples) armed with the host's limits and neutral whenever the host watches
the limits (what ``spinemon live`` sends: GUARD_ALWAYS during a set).
"""

from __future__ import annotations

import importlib.util
import json
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import spinemon_protocol as proto
from spinemon.io import sim
from spinemon.core.calibration import CalibrationSettings
from spinemon.io.device_link import guard_args, neutral_args
from spinemon.core.pipeline import Pipeline, PipelineSettings

ROOT = Path(__file__).resolve().parents[2]
GUARD_SOURCE = ROOT / "firmware" / "guard.py"
SEEDS = (1, 2, 3)
FAULT_MARGIN_S = 0.3
RULES = ("hold_only", "quick")  # the host detector without / with the quick confirmation


def _guard_module():
    spec = importlib.util.spec_from_file_location("spinemon_firmware_guard", GUARD_SOURCE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class DeviceGuard:
    """The firmware's guard fed the frames the host gets, set up as
    ``spinemon live`` sets it up: the host's neutral (SET_NEUTRAL) and, while
    the pipeline watches the limits, its limits with GUARD_ALWAYS
    (SET_GUARD); between sets it is off (the host is watching, the link is
    up). ``fires``: device times (s) of its buzzes."""

    def __init__(self) -> None:
        self._mod = _guard_module()
        self.guard = None
        self.fires: list[float] = []
        self._neutral: tuple[int, int] | None = None

    def on_frame(self, frame: bytes, pipeline: Pipeline) -> None:
        if len(frame) < 2 or frame[1] != proto.T_SAMPLES:
            return
        s = proto.decode(frame)
        two = bool(s.mask & proto.SENSOR_LOWER)
        g = self.guard
        if g is None:
            g = self.guard = self._mod.Guard(two)
        g.set_scales(proto.accel_fs_g(s.ranges), proto.gyro_fs_dps(s.ranges), s.period_us)
        neutral = neutral_args(pipeline.calibration)
        if neutral is not None and neutral != self._neutral:
            k = math.pi / 18000.0
            g.set_calibration(neutral[0] * k, neutral[1] * k)
            self._neutral = neutral
        flex, ext, mode = guard_args(pipeline.limits, proto.GUARD_ALWAYS if pipeline.watching else proto.GUARD_OFF)
        g.set_thresholds(flex, ext, mode)
        v = s.values()
        per = proto.values_per_sample(s.mask)
        for i in range(s.count):
            o = i * per
            up = v[o : o + 6]
            low = v[o + 6 : o + 12] if two else None
            t = (s.t_us + i * s.period_us) / 1e6
            if g.update(up, low, int(t * 1000), False):
                self.fires.append(t)


def _sim_sessions(quick: bool):
    seeds = SEEDS[:1] if quick else SEEDS
    for ex in sim.EXERCISES:
        fault = (sim.FAULTS_BY_EXERCISE.get(ex) or (None,))[0]
        sets = [
            sim.SetSpec(ex, reps=6, faults={4: fault} if fault else {}, rest_s=8.0, walk_during_rest=True),
            sim.SetSpec(ex, reps=6, rest_s=3.0),
        ]
        for seed in seeds:
            yield ex, seed, sim.simulate(sets, seed=seed)


def _settings(exercise: str, rule: str) -> PipelineSettings:
    s = PipelineSettings(exercise=exercise)
    return replace(s, detector=replace(s.detector, quick_confirm=rule == "quick"))


def simulated(quick: bool = False) -> dict:
    """Per rule (and the device): alerts outside the faulty reps, faulty reps missed, faulty reps."""
    out = {k: {"false": 0, "missed": 0} for k in (*RULES, "device")}
    faulty_reps = 0
    for ex, _seed, session in _sim_sessions(quick):
        windows = [(r.t_start - FAULT_MARGIN_S, r.t_end + FAULT_MARGIN_S) for r in session.reps if r.fault]
        faulty_reps += len(windows)
        for rule in RULES:
            pipeline = Pipeline(_settings(ex, rule))
            device = DeviceGuard() if rule == "quick" else None
            for frame, t in zip(session.frames, session.frame_times.tolist()):
                pipeline.on_frame(frame, t)
                if device is not None:
                    device.on_frame(frame, pipeline)
            counted = [(rule, [a.t_trigger_device for a in pipeline.alerts])]
            if device is not None:
                counted.append(("device", device.fires))
            for key, times in counted:
                out[key]["false"] += sum(not any(a <= t <= b for a, b in windows) for t in times)
                out[key]["missed"] += sum(not any(a <= t <= b for t in times) for a, b in windows)
    for v in out.values():
        v["faulty_reps"] = faulty_reps
    return out


def gait(gait_dir: Path, exercises: tuple[str, ...], columns: str, quick: bool = False) -> dict | None:
    """Alerts on the gait-l5 walks (all false), per rule and the device; None without the data."""
    from spinemon.app.csv_import import import_csv
    from spinemon.io.recording import load
    from spinemon.app.replay import replay

    if not (gait_dir / "README.md").exists():
        return None
    files = sorted(gait_dir.glob("*_lb.txt"))[: 4 if quick else None]
    out = {k: 0 for k in (*RULES, "device")}
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            path = Path(tmp) / f"{f.stem}.spinrec"
            import_csv(f, path, columns=columns, settings=PipelineSettings(calibration=CalibrationSettings(rom=False)))
            rec = load(path)
            for ex in exercises:
                for rule in RULES:
                    settings = replace(_settings(ex, rule), calibration=CalibrationSettings(rom=False))
                    device = DeviceGuard() if rule == "quick" else None
                    hook = (lambda frame, _t, _res, pl, d=device: d.on_frame(frame, pl)) if device is not None else None
                    res = replay(rec, settings, on_frame=hook)
                    out[rule] += len(res.alerts)
                    if device is not None:
                        out["device"] += len(device.fires)
    out["trials"] = len(files)
    out["exercises"] = list(exercises)
    return out


if __name__ == "__main__":  # a quick look: python -m tests.bench.false_alerts
    print(json.dumps(simulated(quick=True), indent=1))
