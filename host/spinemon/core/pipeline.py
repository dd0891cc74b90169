"""The one path live and replay share: frames -> samples -> angles -> events -> alerts.

:class:`Pipeline` takes frames one at a time (``on_frame``) and the lifter's
labels (``on_label``) in the order they happened. Live sessions feed it from
a transport; replay feeds it the same records from a recording, so replay
reproduces the live events exactly.

What the lifter gets on top of the limits (all here, so live and replay agree):

* **Gentle**: limits are watched only inside a set (``RepSegmenter.in_set``:
  a labelled set, a confirmed one, or the next rep of a run) or a timed hold,
  unless ``PipelineSettings.monitor_between_sets`` is set. Walking, sitting
  down and picking plates off the floor between sets give no buzz; what
  would have fired is kept in ``suppressed`` (and the summary) so a test or
  a coach can see why nothing buzzed.
* **Spine creep**: once a set's first rep is known, a rep whose flexion
  exceeds it by the profile's ``creep_deg`` (below the hard limit) gives a
  ``spine_creep`` event with a gentle haptic.
* **Holds** (plank, bird dog, dead bug, glute bridge, by label): timed from
  settling into the lying/horizontal posture to getting up; faults during
  the hold are listed with it (``summary()["holds"]``).
* **Warm-up**: each set is marked ``warmed_up`` when an earlier set of the
  same exercise, or ``warmup_moves`` bends past ``warmup_share`` of the
  range of motion, came before it (``summary()["sets"]``).
* **Sides** (unilateral work: single-leg deadlift, lunge, split squat,
  single-arm press and row): each rep is tagged left or right from the
  set's label, else from the direction of its lateral bend and twist
  (:mod:`spinemon.core.unilateral`); each set and the session compare the sides
  (``summary()["sets"][i]["side_comparison"]``, ``summary()["side_comparisons"]``).
* **Drift check**: at the start of each set, the last still standing gravity
  direction is compared with the calibrated one (``summary()["drift_checks"]``);
  past ``drift_limit_deg`` it is flagged and, with ``rezero_on_drift``, the
  mounting is re-zeroed.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace

import numpy as np

import spinemon_protocol as proto
from spinemon.core.alerts import Alert, AlertPolicy
from spinemon.core.angles import AngleTracker, LumbarAngles, sagittal_deg
from spinemon.core.calibration import Calibration, CalibrationSettings, Calibrator, drift_deg, rezero, still_mask
from spinemon.core.drift import DriftMonitor, WarmupBends
from spinemon.core.detect import OVER_EXTENSION, OVER_FLEXION, UNILATERAL_EXERCISES, DetectorSettings, Event, EventDetector, Limits, profile
from spinemon.errors import ConfigError
from spinemon.core.fusion import FusionSettings, FusionState, GravityFilter
from spinemon.core.device_buzz import DeviceBuzzWatch
from spinemon.core.limits import LimitPlan
from spinemon.core.holds import HoldTimer
from spinemon.core.reps import RepRecord, RepSegmenter, RepSettings, SetRecord, pelvis_share
from spinemon.core.stream import FrameDecoder, MonotonicClock, SampleBlock
from spinemon.core.unilateral import check_side, compare_sides, parse_exercise, rep_side, session_sides

PHASE_NEUTRAL = "calibrating-neutral"
PHASE_ROM = "calibrating-range"
PHASE_MONITOR = "monitoring"

#: the limits the host pushes to the wearable's own guard (SET_GUARD)
DEVICE_GUARDED_KINDS = (OVER_FLEXION, OVER_EXTENSION)

#: sample rates the pipeline can fuse (a valid frame outside them is counted and skipped)
MIN_RATE_HZ = 1.0
MAX_RATE_HZ = 10000.0


@dataclass(frozen=True)
class PipelineSettings:
    """Everything that decides what the pipeline reports. Stored in each
    recording's header so replay runs with the same settings."""

    exercise: str = "generic"
    #: the working side of a unilateral ``exercise`` ("left"/"right"), for its
    #: reps outside a labelled set (``live --exercise "lunge left"``); None: from the motion
    side: str | None = None
    fusion: FusionSettings = field(default_factory=FusionSettings)
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    twist_leak_tau_s: float = 10.0
    #: {exercise: {limit: value}} from the user profile / CLI (see ExerciseProfile.with_overrides)
    limit_overrides: dict = field(default_factory=dict)
    #: opt in: watch limits between sets too (walking, plate loading, sitting)
    monitor_between_sets: bool = False
    #: a stored calibration (Calibration.as_dict()) to start from, skipping calibration
    stored_calibration: dict | None = None
    drift_limit_deg: float = 5.0  # standing gravity this far off the calibrated one is flagged
    rezero_on_drift: bool = False
    warmup_share: float = 0.6  # a warm-up bend reaches this share of the flexion range...
    warmup_moves: int = 3  # ...this many times before the set

    def __post_init__(self) -> None:
        profile(self.exercise, self.limit_overrides)  # raises ConfigError for an unknown exercise
        if self.side is not None:
            object.__setattr__(self, "side", parse_exercise(f"{self.exercise} {check_side(self.side)}")[1])  # ConfigError: a side for a lift done with both
        for ex in self.limit_overrides or {}:
            profile(ex, self.limit_overrides)  # ... and for a bad override
        if not (isinstance(self.drift_limit_deg, (int, float)) and 0 < self.drift_limit_deg <= 45):
            raise ConfigError(f"drift_limit_deg must be in (0, 45], not {self.drift_limit_deg!r}")
        if not (isinstance(self.warmup_share, (int, float)) and 0 < self.warmup_share <= 1.5):
            raise ConfigError(f"warmup_share must be in (0, 1.5], not {self.warmup_share!r}")
        if isinstance(self.warmup_moves, bool) or not isinstance(self.warmup_moves, int) or self.warmup_moves < 1:
            raise ConfigError(f"warmup_moves must be an integer >= 1, not {self.warmup_moves!r}")
        if self.stored_calibration is not None:
            Calibration.from_dict(self.stored_calibration)  # CalibrationError if malformed

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
                side=d.get("side"),
                fusion=FusionSettings(**fusion),
                detector=_detector_settings(d.get("detector")),
                calibration=CalibrationSettings(**d.get("calibration", {})),
                twist_leak_tau_s=d.get("twist_leak_tau_s", 10.0),
                limit_overrides=d.get("limit_overrides") or {},
                monitor_between_sets=bool(d.get("monitor_between_sets", False)),
                stored_calibration=d.get("stored_calibration"),
                drift_limit_deg=d.get("drift_limit_deg", 5.0),
                rezero_on_drift=bool(d.get("rezero_on_drift", False)),
                warmup_share=d.get("warmup_share", 0.6),
                warmup_moves=d.get("warmup_moves", 3),
            )
        except TypeError as e:
            raise ConfigError(f"settings in the recording are not understood: {e}") from None


def _detector_settings(d: dict | None) -> DetectorSettings:
    """A recording's detector settings. One written before the quick
    confirmation existed (no ``quick_confirm`` key) was run without it, so
    its replay is too."""
    if d is None:
        return DetectorSettings()
    d = dict(d)
    d.setdefault("quick_confirm", False)
    return DetectorSettings(**d)


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
        self.limit_plan = LimitPlan(self.settings.limit_overrides)
        self.single_sensor: bool | None = None
        #: limits switched off because one sensor cannot judge them: {limit: why}
        self.detector = EventDetector(self._limits(), self.settings.detector)
        self.detector.context.update(exercise=self.exercise)
        #: what would have fired outside sets/holds (not sent: the lifter did not ask)
        self.shadow = EventDetector(self._limits(), self.settings.detector)
        self.alerts: list[Alert] = []
        self.reps: RepSegmenter | None = None  # starts with monitoring
        self._pending_label: dict | None = None
        #: the side each labelled set was named with (None: not named)
        self._label_sides: dict[int, str | None] = {}
        self.last_angle_deg: float = float("nan")
        self.holds = HoldTimer()
        self.drift = DriftMonitor(self.settings.calibration, self.settings.drift_limit_deg, self.settings.rezero_on_drift)
        self.warmup = WarmupBends(self.settings.warmup_share)
        self._t_last: float | None = None
        self._phase_samples: dict[tuple[str, float], int] = {}  # (phase, rate) -> samples (see time_s)
        self._reps_set: int | None = None  # the segmenter's set in progress, as of the last sample
        self._last_gravity: dict = {}
        #: layout changes mid-session: {t, sensors, rate_hz} each
        self.layout_changes: list[dict] = []
        self._layout: tuple | None = None
        #: samples that could not be used, by reason (valid frames the pipeline cannot follow)
        self.skipped_samples: dict[str, int] = {}
        self.clock = MonotonicClock()  # device time never goes back (clock.backsteps: how often it tried)
        self.device_buzz = DeviceBuzzWatch()  # the wearable's guard buzzed for this excursion already
        if calibration is None and self.settings.stored_calibration is not None:
            calibration = Calibration.from_dict(self.settings.stored_calibration)
            calibration.source = "stored"
        self._given_calibration = calibration is not None
        if calibration is not None:
            self._apply_calibration(calibration)
            self.calibrator.phase = "done"
        if profile(self.exercise).hold:
            self.holds.start(self.exercise, None, float("-inf"))

    # -- configuration -----------------------------------------------------
    @property
    def limits(self) -> Limits:
        return self.detector.limits

    @property
    def watching(self) -> bool:
        """Limits are watched now (as of the last sample): inside a set or a
        timed hold, or everywhere with ``monitor_between_sets``. `spinemon
        live` arms the wearable's own guard with the limits meanwhile."""
        if self.phase != PHASE_MONITOR:
            return False
        if self.settings.monitor_between_sets:
            return True
        if self.profile.hold:
            return self.holds.current is not None
        return self.reps is not None and self.reps.in_set

    @property
    def profile(self):
        return profile(self.exercise, self.settings.limit_overrides)

    @property
    def limits_off(self) -> dict[str, str]:
        """Limits one sensor cannot watch, and why."""
        return self.limit_plan.off

    def _limits(self) -> Limits:
        rom = self.calibration.range_of_motion if self.calibration else None
        return self.limit_plan.limits(self.exercise, rom, self.single_sensor)

    def _set_limits(self) -> None:
        lim = self._limits()
        self.detector.set_limits(lim)
        self.shadow.set_limits(lim)

    def on_label(self, label: dict) -> None:
        """The lifter starts a set: ``{"set": n, "exercise": name}``, with
        ``"side": "left"|"right"`` for unilateral work (or the side in the
        name: ``"lunge left"``)."""
        ex = label.get("exercise")
        side = check_side(label.get("side"))
        if ex is not None:
            ex, named = parse_exercise(ex)
            side = side or named
            profile(ex, self.settings.limit_overrides)
            self.exercise = ex
        if side is not None:
            parse_exercise(f"{self.exercise} {side}")  # ConfigError: a side for a lift done with both
        if label.get("set") is not None:
            self.set_number = int(label["set"])
            self._label_sides[self.set_number] = side
        self.detector.context.update(set=self.set_number, exercise=self.exercise, rep=None)
        self.limit_plan.new_label()
        self._set_limits()
        t = self._t_last if self._t_last is not None else float("-inf")
        if self.profile.hold:
            self.holds.start(self.exercise, self.set_number, t)
            if self.reps is not None:
                self.reps.end_set()
            self._pending_label = None
        else:
            self.holds.stop(t)
            if self.reps is not None:
                self.reps.start_set(self.exercise, self.set_number)
            else:
                self._pending_label = {"exercise": self.exercise, "set": self.set_number}
            if self.set_number is not None and self.phase == PHASE_MONITOR:
                self._drift_check(self.set_number, t)

    def _apply_calibration(self, cal: Calibration) -> None:
        self.calibration = cal
        self.phase = PHASE_MONITOR if self.calibrator.settings.rom is False or cal.rom is not None else self.phase
        self._set_limits()

    # -- data path -----------------------------------------------------------
    def on_frame(self, frame: bytes, t_host: float) -> FrameResult:
        res = FrameResult()
        for item in self.decoder.feed(frame, t_host):
            if isinstance(item, SampleBlock):
                self._on_samples(item, t_host, res)
            else:
                res.other.append(item)
        return res

    def on_block(self, block: SampleBlock, t_host: float | np.ndarray, res: FrameResult | None = None) -> FrameResult:
        """Decoded samples in stream order: one frame's or many frames' worth
        (replay pushes a recording through in long blocks). Every result is
        the same for any split of the stream into blocks: a step that ends
        inside a block (calibration, a rep that sets the creep limit, the
        set or rep in progress) takes effect at its own sample, not at the
        block's end. ``t_host``: host receive time, one number or one per sample."""
        res = res if res is not None else FrameResult()
        self._on_samples(block, t_host, res)
        return res

    def _on_samples(self, block: SampleBlock, t_host: float | np.ndarray, res: FrameResult) -> None:
        if not (MIN_RATE_HZ <= block.rate_hz <= MAX_RATE_HZ):
            # a valid frame with a rate nothing can fuse: counted, skipped, the session goes on
            self.skipped_samples["rate out of range"] = self.skipped_samples.get("rate out of range", 0) + len(block)
            return
        if "upper" not in block.sensors:
            # the upper IMU is missing (not detected at a reboot): no angle can be formed
            self.skipped_samples["upper sensor missing"] = self.skipped_samples.get("upper sensor missing", 0) + len(block)
            self._follow_layout(block)
            return
        self._follow_layout(block)
        block = self.clock.update(block)
        n = len(block)
        if n == 0:
            return
        th = np.broadcast_to(np.asarray(t_host, dtype=np.float64), (n,))
        parts: list[tuple[np.ndarray, LumbarAngles]] = []
        i = 0
        while i < n:
            piece = block if i == 0 else block.slice(i)
            used, ang = self._segment(piece, th[i:], res)
            if ang is not None:
                parts.append((piece.t[:used], ang))
            i += used
        if parts:
            res.t = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
            res.angles = parts[0][1] if len(parts) == 1 else LumbarAngles(
                np.concatenate([p[1].flexion_deg for p in parts]),
                np.concatenate([p[1].lateral_deg for p in parts]),
                np.concatenate([p[1].twist_deg for p in parts]),
                parts[-1][1].single_sensor,
                parts[-1][1].label,
            )
            self.last_angle_deg = float(res.angles.flexion_deg[-1])

    def _fuse(self, block: SampleBlock) -> tuple[SampleBlock, dict]:
        """The gyro offsets removed, each sensor's gravity filter run over the block."""
        block = self._without_offset(block)
        for s in block.sensors:
            f = self._filters.get(s)
            if f is None:
                self._filters[s] = GravityFilter(block.rate_hz, self.settings.fusion)
            elif abs(f.rate - block.rate_hz) > 1e-6 * block.rate_hz:
                self._follow_rate(s, block.rate_hz)
        fused = {s: self._filters[s].update_detailed(block.acc[s], block.gyr[s]) for s in block.sensors}
        self._last_gravity = {s: fused[s].gravity for s in block.sensors}
        self._t_last = float(block.t[-1])
        return block, fused

    def _fuse_angles(self, block: SampleBlock) -> tuple[SampleBlock, LumbarAngles, dict]:
        """Fusion, then angles: the offset-free block, its angles and the
        gyros with each filter's bias removed too."""
        clean, fused = self._fuse(block)
        gyr = {s: clean.gyr[s] - fused[s].bias for s in clean.sensors}
        return clean, self._angles(fused, gyr), gyr

    def _segment(self, block: SampleBlock, th: np.ndarray, res: FrameResult) -> tuple[int, LumbarAngles | None]:
        """Run the samples of ``block`` up to the end of the current phase;
        returns how many were used and their angles (None before neutral is set)."""
        n = len(block)
        rate = block.rate_hz
        if self.phase == PHASE_NEUTRAL:
            cal = None
            if self.calibration is None:
                cal = self.calibrator.update_neutral(block)
                if cal is not None:
                    n = self.calibrator.stopped_at + 1
                    block = block.slice(0, n)
            self._account(block)
            self._fuse(block)
            if self.calibration is None and cal is None:
                return n, None
            if cal is not None:
                self.calibration = cal
                res.calibrated = cal
                self._restart_filters(rate)
            self._start_tracker(rate)
            self.phase = PHASE_ROM if self.calibrator.phase == "rom" else PHASE_MONITOR
            self._set_limits()
            return n, None  # angles start with the next sample

        if self._tracker is None or abs(self._tracker.rate - rate) > 1e-6 * rate:
            self._start_tracker(rate)
        if self.phase == PHASE_ROM:
            saved = (copy.deepcopy(self._filters), copy.deepcopy(self._tracker))
            clean, ang, _ = self._fuse_angles(block)
            done = self.calibrator.update_rom(clean, self._last_gravity)
            stop = self.calibrator.stopped_at
            if done and stop is not None and stop + 1 < n:
                # it ended inside the block: the rest is monitored (run again up to the end)
                n = stop + 1
                block = block.slice(0, n)
                self._filters, self._tracker = saved
                clean, ang, _ = self._fuse_angles(block)
            self._account(block)
            if done:
                # the mountings now include each sensor's heading from the bend
                res.calibrated = self.calibration
                self.phase = PHASE_MONITOR
                self._start_tracker(rate)
                self._set_limits()
            return n, ang

        # monitoring; a provisional neutral is replaced when a real still stretch comes
        recal = None
        if self.calibrator.phase == "provisional" and self.calibration is not None and self.calibration.source == "provisional":
            recal = self.calibrator.update_neutral(block)
            if recal is not None:
                n = self.calibrator.stopped_at + 1
                block = block.slice(0, n)
        th = th[:n]
        self._account(block)
        clean, ang, gyr = self._fuse_angles(block)
        self._monitor(clean, th, ang, gyr, res)
        if recal is not None:
            self._apply_calibration(recal)
            res.calibrated = recal
            self._restart_filters(rate)
            self._start_tracker(rate)
        return n, ang

    def _monitor(self, block: SampleBlock, th: np.ndarray, ang: LumbarAngles, gyr: dict, res: FrameResult) -> None:
        """Moves, standing, sets and reps, holds, then the limits: the detector
        runs in pieces so that what a rep changes (the creep limit, the set
        and rep stamped on events) starts at the sample where it became known."""
        n = len(block)
        self.warmup.update(block.t, ang.flexion_deg, self.calibration.range_of_motion.flexion_deg)
        m = self.calibration.mounting
        upper_body_gyr = m["upper"].to_body(gyr["upper"])
        sig = (ang.flexion_deg, ang.lateral_deg, ang.twist_deg, np.degrees(upper_body_gyr[:, 1]))
        hold_on = None
        rec_at: dict[int, list] = {}
        ctx_at: dict[int, tuple] = {}
        if self.profile.hold:
            tilt = np.degrees(np.arccos(np.clip(m["upper"].to_body(self._last_gravity["upper"])[:, 0], -1.0, 1.0)))
            armed = hold_on = self.holds.update(block.t, tilt, np.degrees(np.linalg.norm(upper_body_gyr, axis=1)), block.rate_hz)
        else:
            new = self._update_reps(block, ang)
            armed = self.reps.in_set_mask
            for rec, i in zip(new, self.reps.emitted_at):
                rec_at.setdefault(i, []).append(rec)
            for i, cs, cr in self.reps.context_changes:
                ctx_at[i] = (cs, cr)
        if self.settings.monitor_between_sets:
            armed = np.ones(n, dtype=bool)
        cuts = sorted({0, *rec_at, *ctx_at})
        for k, a in enumerate(cuts):
            b = cuts[k + 1] if k + 1 < len(cuts) else n
            if a in ctx_at:
                cs, cr = ctx_at[a]
                self.detector.context["rep"] = cr
                if self.set_number is None:  # no labels: sets found automatically
                    self.detector.context["set"] = cs
                self._reps_set = cs
            for rec in rec_at.get(a, ()):
                self._on_record(rec)
            if self.limit_plan.reps_of_set(self._reps_set):
                self._set_limits()
            piece = block if (a == 0 and b == n) else block.slice(a, b)
            self.drift.update(piece, {s: g[a:b] for s, g in self._last_gravity.items()}, m["upper"])
            self._detect(piece, th[a:b], tuple(x[a:b] for x in sig), armed[a:b], None if hold_on is None else hold_on[a:b], res)

    def _detect(self, block: SampleBlock, th: np.ndarray, sig: tuple, armed: np.ndarray, hold_on: np.ndarray | None, res: FrameResult) -> None:
        out = self.detector.update(block.t, block.seq, *(np.where(armed, x, 0.0) for x in sig))
        # what would have fired outside sets/holds (not sent): the same samples, the other way round
        self.shadow.context.update(self.detector.context)
        self.shadow.update(block.t, block.seq, *(np.where(armed, 0.0, x) for x in sig))
        res.finished.extend(out.finished)
        for ev in out.alerts:
            j = int(np.searchsorted(block.seq, ev.seq_alert))
            j = min(j, len(block) - 1)
            if hold_on is not None and hold_on[j]:
                for h in reversed(self.holds.holds):
                    if h.t_start <= ev.t_alert:
                        h.faults.append(ev)
                        break
            device_buzzed = ev.kind in DEVICE_GUARDED_KINDS and self.device_buzz.as_of(block.flags, sig[0], j, self.limits, self.settings.detector.hysteresis_deg)
            alert = self.alert_policy.alert_for(ev, float(th[j]), device_buzzed)
            if alert is not None:
                res.alerts.append(alert)
                self.alerts.append(alert)
        self.device_buzz.update(block.flags, sig[0], self.limits, self.settings.detector.hysteresis_deg)

    def _on_record(self, rec) -> None:
        """A rep or set became known: spine creep is measured against each set's first rep."""
        if isinstance(rec, RepRecord) and rec.rep == 1:
            self.limit_plan.first_rep(self.exercise, rec.set, rec.peak_flexion_deg)
            self._set_limits()
            if not rec.labelled and not self.drift.checked(rec.set):
                self._drift_check(rec.set, rec.t_start)

    def _follow_layout(self, block: SampleBlock) -> None:
        """A change of sensors or rate mid-session (a reboot without the lower
        IMU, SET_RATE) is counted, recorded in the summary and followed:
        one-sensor mode while the lower IMU (or its calibration) is missing,
        filters restarted for a sensor that comes back."""
        key = (block.sensors, round(block.rate_hz, 6))
        if self._layout is not None and key != self._layout:
            self.layout_changes.append({"t": round(float(block.t[0]), 4) if len(block) else None, "sensors": "+".join(block.sensors), "rate_hz": round(block.rate_hz, 3)})
            for s in list(self._filters):
                if s not in block.sensors:
                    del self._filters[s]  # restarted from its first sample if it comes back
        self._layout = key
        if "upper" not in block.sensors:
            return
        cal = self.calibration
        single = "lower" not in block.sensors or (cal is not None and "lower" not in cal.mounting)
        if single != self.single_sensor:
            self.single_sensor = single
            self._set_limits()
            if self._tracker is not None:
                self._start_tracker(self._tracker.rate)

    def _without_offset(self, block: SampleBlock) -> SampleBlock:
        """The block with the calibration's gyro zero-rate offsets removed."""
        off = {} if self.calibration is None else self.calibration.gyro_offset
        if not off or not len(block):
            return block
        gyr = {s: (g - off[s] if s in off else g) for s, g in block.gyr.items()}
        return replace(block, gyr=gyr)

    def _restart_filters(self, rate: float) -> None:
        """After (re)calibration the gyro offset is removed upstream: restart each
        filter from the neutral gravity direction with no bias of its own."""
        cal = self.calibration
        for s, m in cal.mounting.items():
            if s in self._filters:
                state = FusionState.from_gravity(m.neutral_up(), rate, self.settings.fusion, bias=np.zeros(3))
                self._filters[s] = GravityFilter(rate, self.settings.fusion, state)

    def _account(self, block: SampleBlock) -> None:
        """Samples per phase and rate (what was monitored, and why the rest
        was not): counts, so the times do not depend on how the stream was cut."""
        key = (self.phase, block.rate_hz)
        self._phase_samples[key] = self._phase_samples.get(key, 0) + len(block)

    @property
    def time_s(self) -> dict[str, float]:
        """Seconds of samples per phase (PHASE_NEUTRAL, PHASE_ROM, PHASE_MONITOR)."""
        out: dict[str, float] = {}
        for (phase, rate), count in sorted(self._phase_samples.items()):
            out[phase] = out.get(phase, 0.0) + count / rate
        return out

    def _angles(self, fused: dict, gyr: dict) -> LumbarAngles:
        if self.single_sensor:
            return self._tracker.update(fused["upper"].gravity, gyr["upper"])
        return self._tracker.update(fused["upper"].gravity, gyr["upper"], fused["lower"].gravity, gyr["lower"])

    def _update_reps(self, block: SampleBlock, ang: LumbarAngles) -> list:
        """Sets and reps, from the raw body-frame gyros (the segmenter learns
        its own residual bias while the wearer stands still); returns the
        records that became known (``self.reps.emitted_at``: at which sample)."""
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
        return self.reps.update(
            block.t,
            flexion_deg=ang.flexion_deg,
            upper_gyr=upper_gyr,
            lower_gyr=lower_gyr,
            trunk_deg=trunk,
            lateral_deg=ang.lateral_deg,
            twist_deg=ang.twist_deg,
        )

    # -- warm-up and drift -------------------------------------------------------
    def _drift_check(self, set_number: int, t_set: float) -> None:
        """The drift check before a set; a re-zeroed mounting restarts the angles."""
        if self.calibration is None:
            return
        check = self.drift.check(set_number, t_set, self.calibration.mounting)
        if check is not None and check["rezeroed"] and self._tracker is not None:
            self._start_tracker(self._tracker.rate)

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
        self.shadow.finish(t_end)
        if self.holds.current is not None:
            self.holds._close(t_end if t_end == t_end else (self._t_last if self._t_last is not None else t_end))
        self.drift.finish()
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

    def warmup_for(self, st: SetRecord) -> dict:
        """Whether a warm-up came before set ``st``: an earlier set of the same
        exercise, or ``warmup_moves`` bends through ``warmup_share`` of the range."""
        earlier = [o.set for o in self.set_records if o.exercise == st.exercise and o.t_end < st.t_start]
        moves = self.warmup.before(st.t_start)
        if earlier:
            how = f"after set {earlier[-1]} of {st.exercise}"
        elif moves >= self.settings.warmup_moves:
            how = f"{moves} bends through {self.settings.warmup_share:.0%} of the range"
        else:
            how = None
        return {"warmed_up": how is not None, "warmup": how, "range_moves_before": moves}

    @property
    def calibration_state(self) -> str:
        """``done`` (found this session), ``stored`` (given: a saved profile),
        ``provisional`` (no still stretch: the quietest one) or ``none``."""
        if self.calibration is None:
            return "none"
        if self._given_calibration:
            return "stored"
        return "provisional" if self.calibration.source == "provisional" else "done"

    def monitoring(self) -> dict:
        """How much of the session was monitored, and why the rest was not."""
        why = {PHASE_NEUTRAL: "waiting for a still stretch to set neutral", PHASE_ROM: "range-of-motion calibration"}
        total = sum(self.time_s.values())
        return {
            "calibration": self.calibration_state,
            "duration_s": round(total, 3),
            "monitored_s": round(self.time_s.get(PHASE_MONITOR, 0.0), 3),
            "not_monitored": {why[k]: round(v, 3) for k, v in self.time_s.items() if k != PHASE_MONITOR and v > 0},
        }

    def _named_side(self, exercise: str, set_number: int, labelled: bool) -> str | None:
        """The side the lifter named for a set: its label's, or for reps
        outside labelled sets the session's (``PipelineSettings.side``, for its exercise)."""
        if labelled:
            return self._label_sides.get(set_number)
        return self.settings.side if exercise == self.settings.exercise else None

    def _rep_dict(self, r: RepRecord) -> dict:
        d = r.as_dict()
        if not self.single_sensor:
            share = pelvis_share(d)  # lumbopelvic rhythm: the hips' share of the trunk's lean
            d["pelvis_share"] = None if share is None else round(share, 3)
        d["side"], d["side_from"] = rep_side(d, self._named_side(r.exercise, r.set, r.labelled), bool(self.single_sensor))
        return d

    def summary(self) -> dict:
        sets = []
        rep_rows = [self._rep_dict(r) for r in self.rep_records]
        for st in self.set_records:
            d = st.as_dict()
            reps = [r for r in self.rep_records if r.set == st.set]
            d["peak_flexion_deg"] = round(max(r.peak_flexion_deg for r in reps), 2) if reps else None
            d.update(self.warmup_for(st))
            rows = [r for r in rep_rows if r["set"] == st.set]
            d["side"] = self._named_side(st.exercise, st.set, st.labelled) if st.exercise in UNILATERAL_EXERCISES else None
            d["side_comparison"] = compare_sides(rows)
            sets.append(d)
        return {
            "type": "summary",
            "events": [e.as_dict() for e in self.events],
            "reps": rep_rows,
            "sets": sets,
            "side_comparisons": session_sides(rep_rows),
            "holds": [h.as_dict() for h in self.holds.holds],
            "drift_checks": list(self.drift.checks),
            "drift_flagged": any(c["flagged"] for c in self.drift.checks),
            "suppressed": [e.as_dict() for e in self.shadow.events],
            "stats": self.decoder.stats.as_dict(),
            "monitoring": self.monitoring(),
            "layout_changes": list(self.layout_changes),
            "skipped_samples": dict(self.skipped_samples),
            "clock_backsteps": self.clock.backsteps,
            "angle": self.angle_label,
            "calibrated": self.calibration is not None,
            "alignment": None if self.calibration is None else self.calibration.alignment,
            "limits": self.limits.as_dict(),
            "limits_off": dict(self.limits_off),
            "phase": self.phase,
        }
