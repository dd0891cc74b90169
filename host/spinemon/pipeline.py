"""The one path live and replay share: frames -> samples -> angles -> events -> alerts.

:class:`Pipeline` takes frames one at a time (``on_frame``) and the lifter's
labels (``on_label``) in the order they happened. Live sessions feed it from
a transport; replay feeds it the same records from a recording, so replay
reproduces the live events exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

import spinemon_protocol as proto
from spinemon.alerts import Alert, AlertPolicy
from spinemon.angles import AngleTracker, LumbarAngles, sagittal_deg
from spinemon.calibration import Calibration, CalibrationSettings, Calibrator, still_mask
from spinemon.detect import DetectorSettings, Event, EventDetector, Limits, profile
from spinemon.errors import ConfigError
from spinemon.fusion import FusionSettings, FusionState, GravityFilter
from spinemon.reps import RepRecord, RepSegmenter, RepSettings, SetRecord
from spinemon.stream import FrameDecoder, SampleBlock

PHASE_NEUTRAL = "calibrating-neutral"
PHASE_ROM = "calibrating-range"
PHASE_MONITOR = "monitoring"


@dataclass(frozen=True)
class PipelineSettings:
    """Everything that decides what the pipeline reports. Stored in each
    recording's header so replay runs with the same settings."""

    exercise: str = "generic"
    fusion: FusionSettings = field(default_factory=FusionSettings)
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    twist_leak_tau_s: float = 10.0

    def __post_init__(self) -> None:
        profile(self.exercise)  # raises ConfigError for an unknown exercise

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fusion"]["initial_bias_rad_s"] = list(self.fusion.initial_bias_rad_s)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PipelineSettings":
        try:
            fusion = dict(d.get("fusion", {}))
            if "initial_bias_rad_s" in fusion:
                fusion["initial_bias_rad_s"] = tuple(fusion["initial_bias_rad_s"])
            return cls(
                exercise=d.get("exercise", "generic"),
                fusion=FusionSettings(**fusion),
                detector=DetectorSettings(**d.get("detector", {})),
                calibration=CalibrationSettings(**d.get("calibration", {})),
                twist_leak_tau_s=d.get("twist_leak_tau_s", 10.0),
            )
        except TypeError as e:
            raise ConfigError(f"settings in the recording are not understood: {e}") from None


@dataclass
class FrameResult:
    """What one frame produced."""

    alerts: list[Alert] = field(default_factory=list)
    finished: list[Event] = field(default_factory=list)
    calibrated: Calibration | None = None  # set on the frame that completed a calibration step
    angles: LumbarAngles | None = None
    t: np.ndarray | None = None
    other: list = field(default_factory=list)  # STATUS / ACK / ERROR objects


class Pipeline:
    """Frames in, alerts out. Not thread-safe; one per wearable."""

    def __init__(self, settings: PipelineSettings | None = None, *, calibration: Calibration | None = None, alerts: AlertPolicy | None = None) -> None:
        self.settings = settings or PipelineSettings()
        self.decoder = FrameDecoder()
        self.alert_policy = alerts or AlertPolicy()
        self.calibrator = Calibrator(self.settings.calibration)
        self.calibration: Calibration | None = None
        self._filters: dict[str, GravityFilter] = {}
        self._tracker: AngleTracker | None = None
        self.phase = PHASE_NEUTRAL
        self.exercise = self.settings.exercise
        self.set_number: int | None = None
        self.detector = EventDetector(self._limits(), self.settings.detector)
        self.detector.context.update(exercise=self.exercise)
        self.alerts: list[Alert] = []
        self.reps: RepSegmenter | None = None  # starts with monitoring
        self._pending_label: dict | None = None
        self.single_sensor: bool | None = None
        self.last_angle_deg: float = float("nan")
        if calibration is not None:
            self._apply_calibration(calibration)
            self.calibrator.phase = "done"

    # -- configuration -----------------------------------------------------
    @property
    def limits(self) -> Limits:
        return self.detector.limits

    def _limits(self) -> Limits:
        rom = self.calibration.range_of_motion if self.calibration else None
        p = profile(self.exercise)
        return p.limits(rom) if rom is not None else p.limits()

    def on_label(self, label: dict) -> None:
        """The lifter starts a set: ``{"set": n, "exercise": name}``."""
        ex = label.get("exercise")
        if ex is not None:
            profile(ex)
            self.exercise = ex
        if label.get("set") is not None:
            self.set_number = int(label["set"])
        self.detector.context.update(set=self.set_number, exercise=self.exercise, rep=None)
        self.detector.set_limits(self._limits())
        if self.reps is not None:
            self.reps.start_set(self.exercise, self.set_number)
        else:
            self._pending_label = {"exercise": self.exercise, "set": self.set_number}

    def _apply_calibration(self, cal: Calibration) -> None:
        self.calibration = cal
        self.phase = PHASE_MONITOR if self.calibrator.settings.rom is False or cal.rom is not None else self.phase
        self.detector.set_limits(self._limits())

    # -- data path -----------------------------------------------------------
    def on_frame(self, frame: bytes, t_host: float) -> FrameResult:
        res = FrameResult()
        for item in self.decoder.feed(frame, t_host):
            if isinstance(item, SampleBlock):
                self._on_samples(item, t_host, res)
            else:
                res.other.append(item)
        return res

    def _on_samples(self, block: SampleBlock, t_host: float, res: FrameResult) -> None:
        sensors = block.sensors
        if self.single_sensor is None:
            self.single_sensor = "lower" not in sensors
        for s in sensors:
            f = self._filters.get(s)
            if f is None:
                self._filters[s] = GravityFilter(block.rate_hz, self.settings.fusion)
            elif abs(f.rate - block.rate_hz) > 1e-6 * block.rate_hz:
                self._follow_rate(s, block.rate_hz)
        fused = {s: self._filters[s].update_detailed(block.acc[s], block.gyr[s]) for s in sensors}
        self._last_gravity = {s: fused[s].gravity for s in sensors}

        if self.phase == PHASE_NEUTRAL:
            if self.calibration is None:
                cal = self.calibrator.update_neutral(block)
                if cal is None:
                    return
                self.calibration = cal
                res.calibrated = cal
            self._start_tracker(block.rate_hz)
            self.phase = PHASE_ROM if self.calibrator.phase == "rom" else PHASE_MONITOR
            self.detector.set_limits(self._limits())
            return  # angles start with the next frame

        if self._tracker is None or abs(self._tracker.rate - block.rate_hz) > 1e-6 * block.rate_hz:
            self._start_tracker(block.rate_hz)
        gyr = {s: block.gyr[s] - fused[s].bias for s in sensors}
        if self.single_sensor:
            ang = self._tracker.update(fused["upper"].gravity, gyr["upper"])
        else:
            ang = self._tracker.update(fused["upper"].gravity, gyr["upper"], fused["lower"].gravity, gyr["lower"])
        res.angles, res.t = ang, block.t
        if len(block):
            self.last_angle_deg = float(ang.flexion_deg[-1])

        if self.phase == PHASE_ROM:
            if self.calibrator.update_rom(block.t, ang.flexion_deg, still_mask(block, self.settings.calibration)):
                res.calibrated = self.calibration
                self.phase = PHASE_MONITOR
                self.detector.set_limits(self._limits())
            return

        self._update_reps(block, ang)
        out = self.detector.update(block.t, block.seq, ang.flexion_deg, ang.lateral_deg, ang.twist_deg)
        res.finished.extend(out.finished)
        for ev in out.alerts:
            alert = self.alert_policy.alert_for(ev, t_host)
            if alert is not None:
                res.alerts.append(alert)
                self.alerts.append(alert)

    def _update_reps(self, block: SampleBlock, ang: LumbarAngles) -> None:
        """Sets and reps, from the raw body-frame gyros (the segmenter learns
        its own residual bias while the wearer stands still)."""
        assert self.calibration is not None
        m = self.calibration.mounting
        if self.reps is None or abs(self.reps.rate - block.rate_hz) > 1e-6 * block.rate_hz:
            self.reps = RepSegmenter(block.rate_hz, RepSettings(exercise=self.exercise))
            if self._pending_label is not None:
                self.reps.start_set(self._pending_label["exercise"], self._pending_label["set"])
                self._pending_label = None
        upper_gyr = m["upper"].to_body(block.gyr["upper"])
        lower_gyr = None if self.single_sensor else m["lower"].to_body(block.gyr["lower"])
        trunk = sagittal_deg(m["upper"].to_body(self._last_gravity["upper"]))
        self.reps.update(
            block.t,
            flexion_deg=ang.flexion_deg,
            upper_gyr=upper_gyr,
            lower_gyr=lower_gyr,
            trunk_deg=trunk,
            lateral_deg=ang.lateral_deg,
            twist_deg=ang.twist_deg,
        )
        ctx = self.detector.context
        ctx["rep"] = self.reps.current_rep
        if self.set_number is None:  # no labels: sets found automatically
            ctx["set"] = self.reps.current_set

    def _follow_rate(self, sensor: str, rate: float) -> None:
        """The wearable changed its sample rate (SET_RATE): carry the
        filter's gravity direction and bias over to a filter at the new rate."""
        old = self._filters[sensor]
        state = None
        if old.state is not None:
            state = FusionState.from_gravity(old.state.gravity, rate, self.settings.fusion, bias=old.bias)
        self._filters[sensor] = GravityFilter(rate, self.settings.fusion, state)

    def _start_tracker(self, rate: float) -> None:
        assert self.calibration is not None
        m = self.calibration.mounting
        twist = self._tracker.twist_deg if self._tracker is not None else 0.0
        self._tracker = AngleTracker(
            rate,
            m.get("upper"),
            m.get("lower"),
            single_sensor=bool(self.single_sensor),
            twist_leak_tau_s=self.settings.twist_leak_tau_s,
        )
        self._tracker.twist_deg = twist

    # -- results ---------------------------------------------------------------
    @property
    def events(self) -> list[Event]:
        return self.detector.events

    @property
    def angle_label(self) -> str:
        return "single-sensor inclination" if self.single_sensor else "lumbar flexion"

    @property
    def rep_records(self) -> list[RepRecord]:
        return [] if self.reps is None else list(self.reps.reps)

    @property
    def set_records(self) -> list[SetRecord]:
        return [] if self.reps is None else list(self.reps.sets)

    def finish(self, t_end: float | None = None) -> list[Event]:
        """Close open events at the end of the session; returns all events.
        Events that fired before their set/rep was known get the numbers of
        the rep they overlap."""
        if t_end is None:
            t_end = float("nan")
        self.detector.finish(t_end)
        if self.reps is not None:
            self.reps.finish()
            for ev in self.events:
                if ev.rep is not None:
                    continue
                end = ev.t_end if ev.t_end is not None and ev.t_end == ev.t_end else ev.t_start
                for r in self.reps.reps:
                    if r.t_start <= end and r.t_end >= ev.t_start:
                        ev.rep = r.rep
                        if ev.set is None:
                            ev.set = r.set
                        break
        return self.events

    def summary(self) -> dict:
        return {
            "type": "summary",
            "events": [e.as_dict() for e in self.events],
            "reps": [r.as_dict() if hasattr(r, "as_dict") else _record(r) for r in self.rep_records],
            "sets": [s.as_dict() if hasattr(s, "as_dict") else _record(s) for s in self.set_records],
            "stats": self.decoder.stats.as_dict(),
            "angle": self.angle_label,
            "calibrated": self.calibration is not None,
            "limits": self.limits.as_dict(),
            "phase": self.phase,
        }


def _record(obj) -> dict:
    d = asdict(obj)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def status_summary(status: proto.Status) -> dict:
    d = status.as_dict()
    d["type"] = "status"
    return d
