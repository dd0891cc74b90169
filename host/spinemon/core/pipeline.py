"""The one path live and replay share: frames -> samples -> angles -> events -> alerts.

:class:`Pipeline` takes frames one at a time (``on_frame``) and the lifter's
labels (``on_label``) in the order they happened. Live sessions feed it from
a transport; replay feeds it the same records from a recording, so replay
reproduces the live events exactly.

What the lifter gets on top of the limits, and the stage that owns it (the
pipeline only wires the stages and holds no logic of its own):

* **Gentle** (:mod:`~spinemon.core.segment` arms, :mod:`~spinemon.core.watch`
  detects): limits are watched only inside a set (``RepSegmenter.in_set``:
  a labelled set, a confirmed one, or the next rep of a run) or a timed hold,
  unless ``PipelineSettings.monitor_between_sets`` is set. Walking, sitting
  down and picking plates off the floor between sets give no buzz; what
  would have fired is kept in ``suppressed`` (and the summary) so a test or
  a coach can see why nothing buzzed.
* **Spine creep** (:mod:`~spinemon.core.limits`, in the watch): once a set's first rep is known, a rep whose flexion
  exceeds it by the profile's ``creep_deg`` (below the hard limit) gives a
  ``spine_creep`` event with a gentle haptic.
* **Holds** (plank, bird dog, dead bug, glute bridge, by label;
  :mod:`~spinemon.core.holds`, in the segmenter): timed from
  settling into the lying/horizontal posture to getting up; faults during
  the hold are listed with it (``summary()["holds"]``).
* **Warm-up** (bends counted by the segmenter, judged in :mod:`~spinemon.core.summary`): each set is marked ``warmed_up`` when an earlier set of the
  same exercise, or ``warmup_moves`` bends past ``warmup_share`` of the
  range of motion, came before it (``summary()["sets"]``).
* **Sides** (unilateral work: single-leg deadlift, lunge, split squat,
  single-arm press and row): each rep is tagged left or right from the
  set's label, else from the direction of its lateral bend and twist
  (:mod:`spinemon.core.unilateral`); each set and the session compare the sides
  (``summary()["sets"][i]["side_comparison"]``, ``summary()["side_comparisons"]``).
* **Drift check** (:mod:`~spinemon.core.drift`): at the start of each set, the last still standing gravity
  direction is compared with the calibrated one (``summary()["drift_checks"]``);
  past ``drift_limit_deg`` it is flagged and, with ``rezero_on_drift``, the
  mounting is re-zeroed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from spinemon.core.alerts import Alert, AlertPolicy
from spinemon.core.angles import AngleStage, LumbarAngles, Mounting
from spinemon.core.calibration import (
    Calibration,
    CalibrationSettings,
    HeadingFinder,
    LeanHeadingFinder,
    turned,
)
from spinemon.core.detect import TWIST, DetectorSettings, Event, EventDetector, Limits, profile
from spinemon.core.drift import DriftMonitor
from spinemon.core.fusion import FusionSettings
from spinemon.core.gravity import Fused, GravityStage
from spinemon.core.intake import MAX_RATE_HZ, MIN_RATE_HZ, Intake
from spinemon.core.phases import PHASE_MONITOR, PHASE_NEUTRAL, PHASE_ROM, SessionPhases
from spinemon.core.reps import RepRecord, SetRecord
from spinemon.core.segment import HELD_BACK, HELD_BEFORE_NEUTRAL, HELD_PROVISIONAL, Segmenter
from spinemon.core.stream import FrameDecoder, SampleBlock
from spinemon.core.summary import session_summary
from spinemon.core.unilateral import check_side, parse_exercise
from spinemon.core.watch import DEVICE_GUARDED_KINDS, LATERAL_NEEDS_HEADING, LimitWatch
from spinemon.errors import ConfigError

#: the current rules version (see PipelineSettings.rules)
RULES = 9

#: exercises whose bends tell a sensor's heading about the spine: hinges and
#: squats, whose trunk and pelvis bend tens of degrees in the sagittal plane
#: (a one-sided hinge leans toward its side by 6-9 deg of 40-60: a few degrees
#: off). Not lunges, presses or curls: the trunk barely bends, so a side lean
#: or sway would read as the heading.
#: rules 3: how long the samples judged under a provisional neutral are kept
#: to be judged again when a still neutral replaces it (a lifter stands
#: still between sets well within this; memory: ~1 MB at 200 Hz, 2 sensors)
PROVISIONAL_KEEP_S = 120.0
HEADING_EXERCISES = ("deadlift", "squat", "row", "single_leg_deadlift", "single_arm_row", "generic")
#: rules 5: one-sided presses whose headings come from a left and a right rep
#: (``LeanHeadingFinder`` with ``rep_twist``): the trunk stays upright, so
#: their bends cannot tell it, and each rep leans 6-9 deg toward the loaded side
LEAN_HEADING_PRESSES = ("single_arm_press",)

__all__ = [
    "DEVICE_GUARDED_KINDS",
    "MAX_RATE_HZ",
    "MIN_RATE_HZ",
    "PHASE_MONITOR",
    "PHASE_NEUTRAL",
    "PHASE_ROM",
    "RULES",
    "FrameResult",
    "Pipeline",
    "PipelineSettings",
]


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
    #: the rules a recording was made with, so its replay runs as it ran live.
    #: 2: the limits are armed on every monitored sample but those a named
    #: reason holds back (sets and reps only count), one sensor watches
    #: forward lean, the provisional neutral is the most upright quiet moment
    #: and comes within ``provisional_after_s``; 3: as 2, and a limit waits
    #: (named) for what it needs: the twist for each gyro's bias, lateral bend
    #: in lunges for each sensor's heading; 4: as 3, and the rep counter's
    #: tilt filter runs in each sensor's frame and measures a small lift's
    #: reps before its gyro bias is known (not the fusion's drifting gravity),
    #: whose reps then need ``min_reps_unlabelled`` reps told from sway to
    #: make a set, and a lunge's or split squat's headings come from a left
    #: and a right rep (``LeanHeadingFinder``); 5: as 4, and a still stretch
    #: that replaces a provisional neutral restarts each fusion filter that has
    #: not learnt its gyro bias at rest from the neutral gravity, with the bias
    #: the rep counter's tilt filter learnt across gravity in motion
    #: (``_restart_fusion_at_still``); a provisional neutral's standing gravity
    #: is the fusion's over its window where the sensor moved in it, not the
    #: accelerometer's mean (:func:`_fused_neutral`); 6: as 5, and a small
    #: lift's still-learnt gyro bias measures its reps only once a still
    #: stretch whose accelerometers did not turn confirms it, and, once the
    #: tilt filter has learnt, while the two agree across gravity
    #: (``RepSettings.bias_check``); 7: as 6, and a lunge's or split squat's
    #: lean heading with no still start: its reps told from the valley each
    #: began at, each rep's side from its own twist where the gyro biases are
    #: not known, the reps before the first neutral counted too; while the
    #: heading is unknown an arch it may hide is told, held back by name
    #: (``LimitWatch.hidden_arch``); 1 (recordings without the key):
    #: limits inside sets only, no lean, the quietest stretch.
    #: rules 8 (press arch): as 7, and the same hidden-arch check for an
    #: overhead or single-arm press (two sensors) while a sensor's heading about
    #: the spine is unknown: an arch the crooked sensor may read as lateral
    #: bend (or a single-arm press's lean, as less extension) is told, held
    #: back by name (``LimitWatch.hidden_arch_presses``), never silent;
    #: rules 8 (twist): as 7, and the twist's rate is the upper segment's
    #: angular velocity relative to the lower's, about the upper's spine axis
    #: (the upper's axis in the lower's frame from the two gravities:
    #: ``angles.spine_axis_in_lower``), not the difference of each gyro about
    #: its own axis, which read part of a hinge bent sideways as twist; and the
    #: twist integrated while a gyro's bias was unknown (held back, named) is
    #: dropped where both become known (``AngleStage.twist_bias_known``); the
    #: twist is held back (named) while neutral was taken bent over
    #: (``LimitWatch.twist_axis``);
    #: rules 8 (curls with no still start): a small lift measured on the gyro
    #: with its bias known rests only where its excursion stood still
    #: (``RepSettings.rest_away``), its first reps, measured on the gravity
    #: excursion before the tilt filter has learnt, are measured again with
    #: that bias once it has (``remeasure``), and a curl's lean back the
    #: unknown heading may hide is told, held back by name (``LimitWatch.hidden_swing``)
    #: rules 9 (small lift's still bias): as 8, and with ``rest_away`` the
    #: still-learnt gyro bias is checked against the tilt filter's on every
    #: idle sample, not only at rest, and gives way to it once the two part by
    #: more than rules 6's tolerance (``RepSettings.bias_idle``): a bias off by
    #: more moves the excursion by itself, so the rest where it was checked
    #: never came and the reps after it ran into one "stuck" candidate
    #: rules 9 (lunge arch band): as 8, and once a lunge's or split squat's
    #: headings are found from a rep on each side, the hidden-arch check goes
    #: on with each found sensor turned by up to its heading's band (the lean's
    #: asymmetry over the forward tip: ``LeanHeadingFinder._band``), an arch
    #: there that the reading did not give told by name (``HELD_ARCH_BAND``)
    rules: int = RULES

    def __post_init__(self) -> None:
        profile(self.exercise, self.limit_overrides)  # raises ConfigError for an unknown exercise
        if self.side is not None:
            object.__setattr__(
                self, "side", parse_exercise(f"{self.exercise} {check_side(self.side)}")[1]
            )  # ConfigError: a side for a lift done with both
        for ex in self.limit_overrides or {}:
            profile(ex, self.limit_overrides)  # ... and for a bad override
        if not (isinstance(self.drift_limit_deg, (int, float)) and 0 < self.drift_limit_deg <= 45):
            raise ConfigError(f"drift_limit_deg must be in (0, 45], not {self.drift_limit_deg!r}")
        if not (isinstance(self.warmup_share, (int, float)) and 0 < self.warmup_share <= 1.5):
            raise ConfigError(f"warmup_share must be in (0, 1.5], not {self.warmup_share!r}")
        if (
            isinstance(self.warmup_moves, bool)
            or not isinstance(self.warmup_moves, int)
            or self.warmup_moves < 1
        ):
            raise ConfigError(f"warmup_moves must be an integer >= 1, not {self.warmup_moves!r}")
        if self.stored_calibration is not None:
            Calibration.from_dict(self.stored_calibration)  # CalibrationError if malformed
        if isinstance(self.rules, bool) or self.rules not in range(1, RULES + 1):
            raise ConfigError(f"rules must be 1 to {RULES}, not {self.rules!r}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fusion"]["initial_bias_rad_s"] = list(self.fusion.initial_bias_rad_s)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PipelineSettings:
        try:
            fusion = dict(d.get("fusion", {}))
            if "initial_bias_rad_s" in fusion:
                fusion["initial_bias_rad_s"] = tuple(fusion["initial_bias_rad_s"])
            rules = d.get("rules", 1)
            calibration = dict(d.get("calibration", {}))
            if rules == 1:  # the calibration rules before issue 22, for recordings made with them
                calibration.setdefault("provisional_rule", "quietest")
                calibration.setdefault("still_drift_deg", None)
                calibration.setdefault("provisional_after_s", 5.0)
            return cls(
                exercise=d.get("exercise", "generic"),
                side=d.get("side"),
                fusion=FusionSettings(**fusion),
                detector=_detector_settings(d.get("detector")),
                calibration=CalibrationSettings(**calibration),
                twist_leak_tau_s=d.get("twist_leak_tau_s", 10.0),
                limit_overrides=d.get("limit_overrides") or {},
                monitor_between_sets=bool(d.get("monitor_between_sets", False)),
                stored_calibration=d.get("stored_calibration"),
                drift_limit_deg=d.get("drift_limit_deg", 5.0),
                rezero_on_drift=bool(d.get("rezero_on_drift", False)),
                warmup_share=d.get("warmup_share", 0.6),
                warmup_moves=d.get("warmup_moves", 3),
                rules=rules,
            )
        except TypeError as e:
            raise ConfigError(f"settings in the recording are not understood: {e}") from None


def _turn_mounting(cal: Calibration, sensor: str, alpha: float) -> None:
    """``sensor``'s mounting turned ``alpha`` deg about the spine, as found from
    the bends; its alignment records the heading it now has and that turn."""
    cal.mounting[sensor] = turned(cal.mounting[sensor], alpha)
    cal.alignment[sensor] = {
        "heading_deg": round(alpha + cal.alignment.get(sensor, {}).get("heading_deg", 0.0), 3),
        "from_lifts_deg": round(alpha, 3),
    }


def _fused_neutral(cal: Calibration, pieces: list[Fused], settings: CalibrationSettings) -> None:
    """Rules 5: a provisional neutral's mountings, in place, from the fusion's
    gravity over its window (``cal.t_neutral``) for each sensor that moved
    in it; a sensor still in it (every sample within the still stretch's
    tolerances of the window's mean: ``still_acc_var_m_s2``,
    ``still_gyro_var_dps``), or with no fused sample there, keeps the
    accelerometer's mean.

    A provisional window is the quietest, most upright quarter second, not
    a still one: with no still start the lifter may be starting a rep in it.
    The accelerometer reads gravity plus the sensor's linear acceleration,
    and over a quarter second its mean keeps that acceleration's mean (the
    change of velocity over the window): a squat begun at the first sample,
    the pelvis tipping 30 deg forward in 0.6 s, read the window 8-13 deg
    backward of where the sensor was (the simulated truth), and every rep
    after it that much too far forward. The fusion holds the direction by
    the gyro through the motion (its accelerometer correction is low-passed
    over ``tau_acc_s``, 3 s): within 1.2 deg of the truth over the same
    windows. At rest the accelerometer is gravity, while the fusion, its
    gyro bias not yet learnt, can sit a few degrees off (3.2 deg for a
    sacrum sensor 2.5 s into a lunge set), so a still sensor keeps it."""
    a, b = cal.t_neutral
    avar, gvar = settings.still_acc_var_m_s2, np.radians(settings.still_gyro_var_dps)
    for s in list(cal.mounting):
        rows = [(f, (f.block.t >= a) & (f.block.t <= b)) for f in pieces if s in f.gravity]
        g = np.concatenate([f.gravity[s][m] for f, m in rows]) if rows else np.empty((0, 3))
        if not len(g):
            continue
        acc = np.concatenate([f.block.acc[s][m] for f, m in rows])
        gyr = np.concatenate([f.block.gyr[s][m] for f, m in rows])
        still = (
            np.linalg.norm(acc - acc.mean(axis=0), axis=1).max() < avar
            and np.linalg.norm(gyr - gyr.mean(axis=0), axis=1).max() < gvar
        )
        if not still:
            cal.mounting[s] = Mounting.from_neutral(g.mean(axis=0))


def _without_offset(f: Fused, offset: dict) -> Fused:
    """A block fused before neutral, with the zero-rate offsets neutral found
    taken off its gyros, as every later block's are (the rep counter learns
    the residual bias, the heading reads the turn axis)."""
    if not offset:
        return f
    block = replace(f.block, gyr={s: (g - offset[s] if s in offset else g) for s, g in f.block.gyr.items()})
    return Fused(
        block, f.gravity, {s: (g - offset[s] if s in offset else g) for s, g in f.gyr.items()}, f.bias_learnt
    )


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
    #: faults past a limit that did not buzz, each with ``held_back``: why (say it now)
    held_back: list[Event] = field(default_factory=list)
    #: what the lifter must be told now (a stale stored calibration re-zeroed, a heading corrected)
    notices: list[str] = field(default_factory=list)


class Pipeline:
    """Frames in, alerts out: the stages wired in order. Not thread-safe; one per wearable.

    decode (:class:`FrameDecoder`) -> intake (:class:`Intake`) -> calibration
    phases (:class:`SessionPhases`) around fusion (:class:`GravityStage`) ->
    angles (:class:`AngleStage`) -> segmentation (:class:`Segmenter`) ->
    detection and alerts (:class:`LimitWatch`, with the drift check
    :class:`DriftMonitor`) -> summary (:func:`session_summary`). Each stage
    owns its state and what it follows; the pipeline passes each block on and
    tells the stages downstream when a calibration step, a layout change or a
    label happened (at its sample: see :meth:`on_block`)."""

    def __init__(
        self,
        settings: PipelineSettings | None = None,
        *,
        calibration: Calibration | None = None,
        alerts: AlertPolicy | None = None,
    ) -> None:
        self.settings = s = settings or PipelineSettings()
        if calibration is None and s.stored_calibration is not None:
            calibration = Calibration.from_dict(s.stored_calibration)
            calibration.source = "stored"
        self.decoder = FrameDecoder()
        self.intake = Intake()
        self.phases = SessionPhases(s.calibration, calibration)
        self.gravity = GravityStage(s.fusion)
        self.angles = AngleStage(
            s.twist_leak_tau_s, relative_twist=s.rules >= 8, twist_bias_known=s.rules >= 8
        )
        self.segmenter = Segmenter(
            s.exercise,
            limit_overrides=s.limit_overrides,
            monitor_between_sets=s.monitor_between_sets,
            warmup_share=s.warmup_share,
            arming="exercise" if s.rules >= 2 else "sets",
            tilt_bias=s.rules >= 3,
            tilt_gravity=s.rules >= 4,
            bias_check=s.rules >= 6,
            no_still_start=s.rules >= 8,
            bias_idle=s.rules >= 9,
        )
        self.watch = LimitWatch(
            s.exercise,
            s.detector,
            alerts or AlertPolicy(),
            limit_overrides=s.limit_overrides,
            lean=s.rules >= 2,
            hold_unknown=s.rules >= 3,
            hidden_arch=s.rules >= 7,
            hidden_arch_presses=s.rules >= 8,
            hidden_swing=s.rules >= 8,
            twist_axis=s.rules >= 8,
            hidden_band=s.rules >= 9,
        )
        self.drift = DriftMonitor(s.calibration, s.drift_limit_deg, s.rezero_on_drift)
        self.last_angle_deg: float = float("nan")
        #: each sensor's heading about the spine from the lifter's bends (rules 2)
        self.heading = HeadingFinder()
        #: rules 4: the headings from one-sided lifts (lunges, split squats), balanced over the working sides
        self.lean_heading = LeanHeadingFinder()
        #: what the lifter must be told now, beyond alerts (a stale stored
        #: calibration, a heading corrected from the bends): (device time, text)
        self.notices: list[tuple[float, str]] = []
        #: the events confirmed while a timed hold ran, by the hold's key (``Hold.key``)
        self.hold_faults: dict[tuple, list[Event]] = {}
        #: before the first neutral (at most ``provisional_after_s``): the fused
        #: blocks, so a bend or a rep that began before neutral was known still
        #: gives its heading and is counted
        self._before_neutral: list[Fused] = []
        #: rules 3: the samples judged under a provisional neutral (fused, and
        #: whether the limits were armed), judged again when a still neutral
        #: replaces it (:meth:`_rejudge_provisional`); at most PROVISIONAL_KEEP_S
        self._provisional_kept: deque[tuple[Fused, np.ndarray]] = deque()
        self._provisional_n = 0  # samples in it (kept as a count: this runs on every monitored block)
        self._provisional_dropped_t: float | None = None  # the last sample time dropped from it
        self._lost: tuple[str, ...] = ()  # the sensors the wearable reports lost, as of the last block
        if s.rules >= 2 and calibration is not None and calibration.source == "stored":
            self.phases.check_stored(s.drift_limit_deg)
        if calibration is not None:
            self.watch.follow(calibration, None)

    # -- inputs ------------------------------------------------------------
    def on_frame(self, frame: bytes, t_host: float) -> FrameResult:
        res = FrameResult()
        for item in self.decoder.feed(frame, t_host):
            if isinstance(item, SampleBlock):
                self.on_block(item, t_host, res)
            else:
                res.other.append(item)
        return res

    def on_label(self, label: dict) -> None:
        """The lifter starts a set: ``{"set": n, "exercise": name}``, with
        ``"side": "left"|"right"`` for unilateral work (or the side in the
        name: ``"lunge left"``). ConfigError for an unknown exercise."""
        t = self.intake.t_last if self.intake.t_last is not None else float("-inf")
        seg = self.segmenter
        seg.on_label(label, t)
        self.watch.on_label(seg.exercise, seg.set_number)
        if (
            seg.set_number is not None
            and not seg.profile.hold
            and self.phases.phase == PHASE_MONITOR
            and self._check_drift(seg.set_number, t)
            and self.angles.tracker is not None
        ):
            self._restart_angles(self.angles.tracker.rate, self._calibrated())

    def on_block(
        self, block: SampleBlock, t_host: float | np.ndarray, res: FrameResult | None = None
    ) -> FrameResult:
        """Decoded samples in stream order: one frame's or many frames' worth
        (replay pushes a recording through in long blocks). Every result is
        the same for any split of the stream into blocks: a step that ends
        inside a block (calibration, a rep that sets the creep limit, the
        set or rep in progress) takes effect at its own sample, not at the
        block's end. ``t_host``: host receive time, one number or one per sample."""
        res = res if res is not None else FrameResult()
        if len(block):
            self._follow_lost(block, res)
        taken = self.intake.update(block)
        self.gravity.forget(self.intake.gone)
        if taken is None:
            return res
        block = taken
        if self.angles.follow_layout(block.sensors, self.phases.calibration):
            self._reframe_reps()
            self.watch.follow(self.phases.calibration, self.angles.single_sensor)
        n = len(block)
        th = np.broadcast_to(np.asarray(t_host, dtype=np.float64), (n,))
        t_parts: list[np.ndarray] = []
        ang_parts: list[LumbarAngles] = []
        i = 0
        while i < n:  # one calibration phase (or the rest of the block) at a time
            piece = block if i == 0 else block.slice(i)
            used, ang = self._through_phase(piece, th[i:], res)
            if ang is not None:
                t_parts.append(piece.t[:used])
                ang_parts.append(ang)
            i += used
        if ang_parts:
            res.t = t_parts[0] if len(t_parts) == 1 else np.concatenate(t_parts)
            res.angles = LumbarAngles.concatenate(ang_parts)
            self.last_angle_deg = float(res.angles.flexion_deg[-1])
        return res

    # -- wiring --------------------------------------------------------------
    def _through_phase(
        self, block: SampleBlock, th: np.ndarray, res: FrameResult
    ) -> tuple[int, LumbarAngles | None]:
        """The samples of ``block`` up to the next neutral (or all of it)
        through the stages; returns how many were used and their angles (None
        before neutral is set)."""
        ph = self.phases
        n, neutral = ph.find_neutral(block)
        block = block.slice(0, n)
        phase = ph.phase
        fused = self.gravity.update(block, ph.gyro_offset)
        if phase == PHASE_NEUTRAL:
            ph.account(phase, block)
            if self.settings.rules >= 2 and len(
                fused
            ):  # the gyros before neutral, for the headings (see _new_neutral)
                self._before_neutral.append(fused)
            if neutral is not None:
                self._new_neutral(neutral, block.rate_hz, res)
            return n, None  # angles start with the next sample
        angles = []
        if phase == PHASE_ROM:
            m = ph.update_range(fused)
            sweep, fused = fused.slice(0, m), fused.slice(m)
            ph.account(PHASE_ROM, sweep.block)
            angles.append(self.angles.update(sweep, self._calibrated()))
            if ph.phase == PHASE_MONITOR:  # the sweep ended: the mountings now carry each sensor's heading
                res.calibrated = ph.calibration
                self._restart_angles(block.rate_hz, self._calibrated())
                self.watch.follow(ph.calibration, self.angles.single_sensor)
        if len(fused) and ph.phase == PHASE_MONITOR:
            ph.account(PHASE_MONITOR, fused.block)
            angles.append(self._monitor(fused, th[n - len(fused) : n], res))
        if (
            neutral is not None
        ):  # a provisional neutral replaced at its last sample (or a stale stored one re-zeroed)
            self._new_neutral(neutral, block.rate_hz, res)
        return n, LumbarAngles.concatenate(angles)

    def _turn(self, found: dict[str, float], t: float, rate: float, res: FrameResult) -> None:
        """Headings found from the bends: each sensor's mounting turned about the spine."""
        if not found:
            return  # the bend was no heading (HeadingFinder.rejected)
        cal = self._calibrated()
        for s, alpha in found.items():
            if "bend_deg" in cal.alignment.get(s, {}) and abs(alpha) <= self.settings.drift_limit_deg:
                continue  # a stored sweep heading that still holds
            _turn_mounting(cal, s, alpha)
            if abs(alpha) > self.settings.drift_limit_deg:
                what = "sits turned" if self.phases.given else "is mounted turned"
                self._notice(
                    t,
                    f"the {s} sensor {what} {alpha:+.0f} deg about the spine from its calibration (found from the bends): corrected from here on",
                    res,
                )
        self._restart_angles(rate, cal)
        self.watch.follow(cal, self.angles.single_sensor)
        self._follow_band()

    def _follow_band(self) -> None:
        """Rules 9: the watch is told each lean-found heading's band."""
        if self.settings.rules >= 9:
            self.watch.heading_band = {
                s: float(f["band_deg"]) for s, f in self.lean_heading.found.items() if "band_deg" in f
            }

    def _heading_gyros(self, gyr: dict, cal: Calibration) -> dict:
        """The gyros the heading is found from: the sensors whose heading no
        guided bend fixed (the range sweep's is a pure sagittal bend), while
        the exercise is one of :data:`HEADING_EXERCISES`."""
        if self.segmenter.exercise not in HEADING_EXERCISES:
            return {}
        # a stored calibration's sweep heading is checked too: the sensors may have been re-attached
        return {
            s: g
            for s, g in gyr.items()
            if s in cal.mounting and ("bend_deg" not in cal.alignment.get(s, {}) or self.phases.given)
        }

    def _lean_heading_on(self, cal: Calibration) -> bool:
        """Rules 4: a lunge or split squat, two sensors, a sensor's heading not known (no
        sweep, none stored, none found): its headings are found from the reps, balanced over the sides.
        Rules 5: a single-arm press too (:data:`LEAN_HEADING_PRESSES`), each rep's side from its own twist."""
        ex = self.segmenter.exercise
        return (
            (
                (self.settings.rules >= 4 and ex in LATERAL_NEEDS_HEADING)
                or (self.settings.rules >= 5 and ex in LEAN_HEADING_PRESSES)
            )
            and self.angles.single_sensor is False
            and any("heading_deg" not in cal.alignment.get(s, {}) for s in ("upper", "lower"))
        )

    def _lean_heading(self, fused: Fused, cal: Calibration) -> dict[str, float] | None:
        seg = self.segmenter
        side = seg.label_sides.get(seg.set_number) if seg.set_number is not None else self.settings.side
        held = self.watch.limit_held(fused, cal).get(TWIST)
        known = np.ones(len(fused), dtype=bool) if held is None else ~held
        self._lean_heading_rule(seg.exercise)
        found = self.lean_heading.update(
            fused.gravity, fused.gyr, cal.mounting, fused.block.t, fused.block.rate_hz, side, known
        )
        if found:  # a sweep's or a stored heading stays (the finder only runs while one is missing)
            found = {s: a for s, a in found.items() if "heading_deg" not in cal.alignment.get(s, {})}
        return found

    def _lean_heading_rule(self, exercise: str) -> None:
        """How a one-sided lift's reps tell their sides: rules 5, a single-arm
        press by its own twist; rules 7, a lunge or split squat too, its reps
        told from the valley each began at (no still start: neither the twist's
        bias nor upright is known)."""
        lunge = self.settings.rules >= 7 and exercise in LATERAL_NEEDS_HEADING
        self.lean_heading.rep_twist = lunge or (self.settings.rules >= 5 and exercise in LEAN_HEADING_PRESSES)
        self.lean_heading.from_valley = lunge

    def _lean_headings_before(self, kept: list[Fused], cal: Calibration) -> None:
        """Rules 7: a lunge's or split squat's reps before the first neutral (a
        set begun at once) go to its lean heading finder too, so that the reps
        on each side can tell the headings before the set's third rep; found
        ones turn the mountings from the start of monitoring."""
        seg = self.segmenter
        if self.settings.rules < 7 or seg.exercise not in LATERAL_NEEDS_HEADING:
            return
        if any(
            s not in cal.mounting or "heading_deg" in cal.alignment.get(s, {}) for s in ("upper", "lower")
        ):
            return
        self._lean_heading_rule(seg.exercise)
        side = seg.label_sides.get(seg.set_number) if seg.set_number is not None else self.settings.side
        for f in kept:
            t, grav, gyr = f.block.t, f.gravity, f.gyr
            while len(t) and len(self.lean_heading.found) < 2:
                known = np.zeros(len(t), dtype=bool)
                found = self.lean_heading.update(grav, gyr, cal.mounting, t, f.block.rate_hz, side, known)
                if found is None:
                    break
                for s, alpha in found.items():
                    _turn_mounting(cal, s, alpha)
                self._follow_band()
                assert self.lean_heading.stopped_at is not None
                k = self.lean_heading.stopped_at + 1
                t, grav, gyr = t[k:], {s: g[k:] for s, g in grav.items()}, {s: g[k:] for s, g in gyr.items()}

    def _headings_before(self, kept: list[Fused], cal: Calibration) -> None:
        """The first neutral: the bends before it (a set that started at once)
        tell the headings too; found ones turn the mountings from the start of monitoring."""
        for f in kept:
            t, gyr, rate = f.block.t, f.gyr, f.block.rate_hz
            while len(t):
                found = self.heading.update(self._heading_gyros(gyr, cal), cal.mounting, t, rate)
                if found is None:
                    break
                for s, alpha in found.items():
                    _turn_mounting(cal, s, alpha)
                assert self.heading.stopped_at is not None  # set with every heading found
                k = self.heading.stopped_at + 1
                t, gyr = t[k:], {s: g[k:] for s, g in gyr.items()}

    def _restart_angles(self, rate: float, cal: Calibration) -> None:
        """The angles restart with ``cal``'s mountings; the rep counter is told the angle was re-expressed."""
        self.angles.restart(rate, cal)
        self._reframe_reps()

    def _reframe_reps(self) -> None:
        if self.segmenter.reps is not None:
            self.segmenter.reps.reframe()

    def _follow_lost(self, block: SampleBlock, res: FrameResult) -> None:
        """The wearable says an IMU it booted with is lost (SF_SENSOR_LOST), or
        that it is back: said at once (a notice), and what it costs."""
        lost = block.lost_sensors
        if lost == self._lost:
            return
        t = float(block.t[0])
        if lost:
            what = (
                "monitoring stops until it is back (the upper sensor carries every angle)"
                if "upper" in lost
                else "one-sensor mode: the limits that need two sensors are off"
            )
            self._notice(
                t,
                f"the wearable lost the {' and '.join(lost)} sensor (it left the bus or stopped answering): {what}",
                res,
            )
        else:
            self._notice(t, f"the {' and '.join(self._lost)} sensor is back", res)
        self._lost = lost

    def _notice(self, t: float, text: str, res: FrameResult) -> None:
        self.notices.append((t, text))
        res.notices.append(text)

    def _keeping_provisional(self) -> bool:
        """The samples judged now are kept to be judged again (rules 3, a provisional neutral)."""
        cal = self.phases.calibration
        return self.settings.rules >= 3 and cal is not None and cal.source == "provisional"

    def _keep_provisional(self, fused: Fused, armed: np.ndarray) -> None:
        """Samples judged under a provisional neutral, kept to be judged again (rules 3)."""
        if not self._keeping_provisional() or not len(fused):
            return
        self._provisional_kept.append((fused, np.asarray(armed, dtype=bool).copy()))
        self._provisional_n += len(fused)
        while (
            self._provisional_n > PROVISIONAL_KEEP_S * fused.block.rate_hz and len(self._provisional_kept) > 1
        ):
            f, _ = self._provisional_kept.popleft()
            self._provisional_n -= len(f)
            self._provisional_dropped_t = float(f.block.t[-1])

    def _forget_provisional(self) -> tuple[list[tuple[Fused, np.ndarray]], float | None]:
        """The samples kept under a provisional neutral, and the last time dropped from them; both cleared."""
        out = list(self._provisional_kept), self._provisional_dropped_t
        self._provisional_kept.clear()
        self._provisional_n, self._provisional_dropped_t = 0, None
        return out

    def _rejudge_provisional(self, cal: Calibration, res: FrameResult) -> None:
        """A still neutral replaced a provisional one (rules 3). The provisional
        one is a quiet moment that may have been mid-motion (a lunge begun at
        the first sample, with its arch): the flexion read under it is judged
        again against the limits with the still neutral, and a fault found
        there that neither buzzed nor was told is told now, held back with
        :data:`HELD_PROVISIONAL` (its time to buzz has passed). Flexion only: a
        neutral taken mid-motion is off mostly in the sagittal plane."""
        kept, dropped = self._forget_provisional()
        if not kept:
            return
        if dropped is not None:
            self._notice(
                float(kept[0][0].block.t[0]),
                f"neutral stayed provisional over {PROVISIONAL_KEEP_S:.0f} s: the samples up to "
                f"{dropped:.1f} s are not judged again with the still neutral",
                res,
            )
        before = self.angles.state()
        self.angles.restart(kept[0][0].block.rate_hz, cal)
        det = EventDetector(self.watch.limits, self.watch.settings)
        det.context.update(exercise=self.watch.exercise)
        for f, armed in kept:
            f = _without_offset(f, cal.gyro_offset)
            flex = self.angles.update(f, cal).flexion_deg
            zero = np.zeros(len(f))
            det.update(f.block.t, f.block.seq, np.where(armed, flex, 0.0), zero, zero)
        det.finish(float(kept[-1][0].block.t[-1]))
        self.angles.restore(before)

        def overlaps(a: Event, b: Event) -> bool:
            return a.kind == b.kind and a.t_start <= b.t_last and b.t_start <= a.t_last

        said = [a.event for a in self.watch.alerts] + self.watch.shadow.events
        for ev in det.events:
            if ev.t_alert is None or any(overlaps(ev, e) for e in said):
                continue
            ev.held_back = HELD_BACK[HELD_PROVISIONAL]
            shadow = self.watch.shadow.events
            shadow.insert(sum(1 for e in shadow if e.t_start <= ev.t_start), ev)
            res.held_back.append(ev)

    def _new_neutral(self, cal: Calibration, rate: float, res: FrameResult) -> None:
        """A neutral found (the offset is removed upstream from now on): every stage that depends on it follows."""
        first = self.phases.calibration is None
        was_provisional = not first and self._calibrated().source == "provisional"
        if self.settings.rules >= 5 and cal.source == "provisional":
            _fused_neutral(
                cal,
                [*self._before_neutral, *(f for f, _ in self._provisional_kept)],
                self.settings.calibration,
            )
        self.phases.neutral_found(cal)
        res.calibrated = cal
        check = self.phases.stale_found
        if check is not None:
            self.phases.stale_found = None
            self.heading.reset()  # re-attached: relearn the headings from the bends
            self.lean_heading.reset()
            self._follow_band()
            self._notice(check["t"], check["text"], res)
        # a first neutral from a still stretch (within provisional_after_s) leaves
        # no time before it for a bend; a provisional one may come mid-set
        kept = (
            [_without_offset(f, cal.gyro_offset) for f in self._before_neutral]
            if self.settings.rules >= 2 and not self.phases.last_step_still
            else []
        )
        self._before_neutral = []
        if kept:
            self._headings_before(kept, cal)
            self._lean_headings_before(kept, cal)
        if self.settings.rules >= 2:
            for (
                s,
                f,
            ) in [
                *self.heading.found.items(),
                *self.lean_heading.found.items(),
            ]:  # headings found from the bends (or one-sided reps) carry over to the new neutral
                if s in cal.mounting and "from_lifts_deg" not in cal.alignment.get(s, {}):
                    _turn_mounting(cal, s, f["heading_deg"])
        if self.settings.rules < 2 or (self.phases.last_step_still and (first or self.phases.given)):
            # a still neutral ends with the wearer standing at it; a provisional
            # one is a moment in the past (the wearer may be mid-bend now), with
            # no offset of its own: the filters go on as they are
            self.gravity.restart_from(cal, rate)
        elif self.settings.rules >= 5 and was_provisional and self.phases.last_step_still:
            self._restart_fusion_at_still(cal, rate)
        self._restart_angles(rate, cal)
        self.watch.follow(cal, self.angles.single_sensor)
        if kept and self.phases.phase == PHASE_MONITOR:
            self._segment_before(kept, cal, res)
        if self.settings.rules >= 3 and cal.source != "provisional":
            if was_provisional:
                self._rejudge_provisional(cal, res)
            self._forget_provisional()

    def _restart_fusion_at_still(self, cal: Calibration, rate: float) -> None:
        """Rules 5: a still stretch replaced a provisional neutral. With no still
        start a filter that has had no rest of ``rest_min_s`` (the pauses between
        presses are shorter) has not learnt its gyro bias, so its gravity sits
        about bias x ``tau_acc_s`` off the accelerometer (1-3 deg), while the new
        neutral is the accelerometer's: standing read as flexion. The stretch
        ends with the wearer standing at it, as a first still neutral does, so
        each such filter restarts from the neutral gravity, with the bias the
        rep counter's tilt filter has learnt across gravity in motion (the part
        that tilts gravity; the stretch's own mean gyro is no bias: it holds the
        slow end of a rep, 0.5-3 deg/s off on the simulator). The rep counter is
        told its gravity input stepped (not the body). A filter that learnt its
        bias at rest, or one with no tilt bias to take, goes on as it is."""
        reps = self.segmenter.reps
        if reps is None:
            return
        tilt = reps.tilt_bias()
        if tilt and self.gravity.restart_from(cal, rate, bias=tilt):
            reps.regravity()

    def _segment_before(self, kept: list[Fused], cal: Calibration, res: FrameResult) -> None:
        """Monitoring starts: the samples before neutral go through the angles
        and the rep counter, so a rep that began at the first sample is
        counted as the lifter did it; their time for a buzz has passed, so
        (rules 3) a fault among them is told, held back with that reason."""
        for f in kept:
            self._keep_provisional(
                f, np.ones(len(f), dtype=bool)
            )  # judged again if a still neutral replaces cal
            ang = self.angles.update(f, cal)
            segs = self.segmenter.update(f, ang, cal)
            for p in segs.pieces():
                self.watch.begin_piece(p.context, p.records)
                if self.settings.rules >= 3:
                    g, k = f.slice(p.a, p.b), p.b - p.a
                    out = self.watch.update(
                        g,
                        ang.slice(p.a, p.b),
                        cal,
                        np.zeros(k, dtype=bool),
                        None,
                        g.block.t,
                        np.full(k, HELD_BEFORE_NEUTRAL, dtype=np.int8),
                        HELD_BACK,
                    )
                    res.held_back.extend(out.held_back)

    def _monitor(self, fused: Fused, th: np.ndarray, res: FrameResult) -> LumbarAngles:
        """Angles, segmentation, then drift and detection in the pieces the
        segmenter cut; returns the angles.

        A drift check that re-zeroes a mounting when an unlabelled set's first
        rep becomes known (``rezero_on_drift``) takes effect from the next
        sample, for any split: the angle stage and the segmenter run the
        samples up to it again from their state before the block (kept only
        while re-zeroing is on) with the old mountings, then go on with the
        new ones from there."""
        cal = self._calibrated()
        parts = []
        while len(fused):
            before = None
            if self.settings.rezero_on_drift:
                before = (
                    self.angles.state(),
                    self.segmenter.state(),
                    dict(cal.mounting),
                    self.heading.state(),
                    self.lean_heading.state(),
                )
            # a sensor's heading found from the bends (rules 2) ends this step at its sample
            found = (
                self.heading.update(
                    self._heading_gyros(fused.gyr, cal), cal.mounting, fused.block.t, fused.block.rate_hz
                )
                if self.settings.rules >= 2
                else None
            )
            stopped = self.heading.stopped_at
            if found is None and self._lean_heading_on(cal):
                found = self._lean_heading(fused, cal)
                stopped = self.lean_heading.stopped_at
            step = len(fused) if found is None or stopped is None else stopped + 1
            part = fused.slice(0, step)
            ang = self.angles.update(part, cal)
            segs = self.segmenter.update(part, ang, cal)
            used, rezeroed = self._watch_pieces(part, ang, segs, cal, th, res)
            parts.append(ang.slice(0, used))
            if used < step:
                assert before is not None  # a re-zero cuts a block only while re-zeroing is on
                angles, segmenter, mounting, heading, lean_heading = before
                self.angles.restore(angles)
                self.segmenter.restore(segmenter)
                was = replace(cal, mounting=mounting)
                self.segmenter.update(
                    fused.slice(0, used), self.angles.update(fused.slice(0, used), was), was
                )
                self.heading.restore(heading)
                if (
                    self.settings.rules >= 2
                ):  # the heading's moments up to the cut, with the mountings they were formed with
                    self.heading.update(
                        {k: g[:used] for k, g in self._heading_gyros(fused.gyr, was).items()},
                        mounting,
                        fused.block.t[:used],
                        fused.block.rate_hz,
                    )
                self.lean_heading.restore(lean_heading)
                if self._lean_heading_on(was):
                    self._lean_heading(fused.slice(0, used), was)
                found = None  # the heading step lay after the re-zero: found again with the new mounting
            if found is not None:
                self._turn(found, float(part.block.t[-1]), part.block.rate_hz, res)
            if rezeroed and self.angles.tracker is not None:
                self._restart_angles(self.angles.tracker.rate, cal)
            fused, th = fused.slice(used), th[used:]
        return LumbarAngles.concatenate(parts)

    def _watch_pieces(
        self, fused: Fused, ang: LumbarAngles, segs, cal: Calibration, th: np.ndarray, res: FrameResult
    ) -> tuple[int, bool]:
        """Drift and detection over the pieces the segmenter cut; returns how
        many samples were watched (all, unless a re-zero cut the block after
        its sample) and whether one happened.

        The same as piece by piece, in as few passes as that allows: the
        watch takes a run of pieces at once (the limits and the set and rep
        in force per piece), and the drift monitor runs up to each piece
        where an unlabelled set begins (its drift check needs the standing
        stretches up to that sample, and may re-zero the mountings there)."""
        # still and upright per sample, once for the block: every piece is
        # drift-checked with the mounting in force at the block's start (a
        # re-zero ends the loop at its piece)
        standing = self.drift.standing_mask(fused.block, fused.gravity, cal.mounting["upper"])
        pieces = list(segs.pieces())
        keep = self._keeping_provisional()
        k = 0
        while k < len(pieces):
            e = k + 1  # the run: pieces k..e-1, up to the next set start
            while e < len(pieces) and not pieces[e].set_starts:
                e += 1
            run = pieces[k:e]
            p = run[0]
            formed_with = (
                replace(cal, mounting=dict(cal.mounting)) if p.set_starts else cal
            )  # the mountings this run's angles were formed with
            # every set start is checked (a list, not a generator: any() must not stop early)
            rezeroed = any([self._check_drift(s, t0) for s, t0 in p.set_starts])  # noqa: C419
            if rezeroed:  # the new mounting from the next sample on
                run = [replace(p, b=p.a + 1)]
            a, b = run[0].a, run[-1].b
            if keep:
                for q in run:
                    self._keep_provisional(fused.slice(q.a, q.b), segs.armed[q.a : q.b])
            f = fused.slice(a, b)
            self.drift.update(f.block, f.gravity, formed_with.mounting["upper"], standing[a:b])
            out = self.watch.update_pieces(
                f,
                ang.slice(a, b),
                formed_with,
                segs.armed[a:b],
                None if segs.hold_on is None else segs.hold_on[a:b],
                th[a:b],
                segs.held[a:b],
                HELD_BACK,
                run,
                a,
            )
            self._collect_hold_faults(out.hold_faults)
            res.alerts.extend(out.alerts)
            res.held_back.extend(out.held_back)
            res.finished.extend(out.finished)
            if rezeroed:
                return b, True
            k = e
        return len(fused), False

    def _collect_hold_faults(self, events: list[Event]) -> None:
        """Events alerted while a hold was running: listed with the hold they fell in."""
        for ev in events:
            h = None if ev.t_alert is None else self.segmenter.holds.hold_at(ev.t_alert)
            if h is not None:
                self.hold_faults.setdefault(h.key, []).append(ev)

    def _calibrated(self) -> Calibration:
        """The calibration in force, where there must be one (the range sweep, monitoring)."""
        cal = self.phases.calibration
        assert cal is not None, "a calibration is in force from neutral on"
        return cal

    def _check_drift(self, set_number: int, t_set: float) -> bool:
        """The drift check before a set; True if it re-zeroed a mounting (the angles restart with it)."""
        cal = self.phases.calibration
        if cal is None:
            return False
        check = self.drift.check(set_number, t_set, cal.mounting)
        return check is not None and check["rezeroed"]

    def finish(self, t_end: float | None = None) -> list[Event]:
        """Close open events at the end of the session; returns all events.
        Events that fired before their set/rep was known get the numbers of
        the rep they overlap."""
        t_end = float("nan") if t_end is None else t_end
        self.segmenter.finish(t_end, self.intake.t_last)
        self.drift.finish()
        return self.watch.finish(t_end, self.segmenter.rep_records)

    def summary(self) -> dict:
        out = session_summary(
            self.settings,
            decoder=self.decoder,
            intake=self.intake,
            phases=self.phases,
            angles=self.angles,
            segmenter=self.segmenter,
            watch=self.watch,
            drift=self.drift,
            hold_faults=self.hold_faults,
        )
        out["notices"] = [{"t": round(t, 4), "text": text} for t, text in self.notices]
        return out

    # -- what the stages know (read-only views for the CLI, live screen and tests) --
    @property
    def phase(self) -> str:
        return self.phases.phase

    @property
    def calibration(self) -> Calibration | None:
        return self.phases.calibration

    @property
    def calibrator(self):
        return self.phases.calibrator

    @property
    def calibration_state(self) -> str:
        return self.phases.calibration_state

    def monitoring(self) -> dict:
        return self.phases.monitoring()

    @property
    def watching(self) -> bool:
        """Limits are watched now (as of the last sample): while monitoring,
        unless a named reason holds them back (:attr:`held_reason`). `spinemon
        live` arms the wearable's own guard with the limits meanwhile."""
        return self.phases.phase == PHASE_MONITOR and self.segmenter.armed_now

    @property
    def held_reason(self) -> str | None:
        """Why the limits are not watched now, in words (None: they are)."""
        if self.phases.phase != PHASE_MONITOR:
            return (
                "finding neutral"
                if self.phases.phase == PHASE_NEUTRAL
                else "range-of-motion sweep (calibration bends)"
            )
        return self.segmenter.held_reason

    @property
    def exercise(self) -> str:
        return self.segmenter.exercise

    @property
    def set_number(self) -> int | None:
        return self.segmenter.set_number

    @property
    def profile(self):
        return self.segmenter.profile

    @property
    def single_sensor(self) -> bool | None:
        return self.angles.single_sensor

    @property
    def angle_label(self) -> str:
        return self.angles.label

    @property
    def limits(self) -> Limits:
        return self.watch.limits

    @property
    def limits_off(self) -> dict[str, str]:
        """Limits one sensor cannot watch, and why."""
        return self.watch.plan.off

    @property
    def detector(self) -> EventDetector:
        return self.watch.detector

    @property
    def alert_policy(self) -> AlertPolicy:
        return self.watch.policy

    @property
    def alerts(self) -> list[Alert]:
        return self.watch.alerts

    @property
    def events(self) -> list[Event]:
        return self.watch.events

    @property
    def rep_records(self) -> list[RepRecord]:
        return self.segmenter.rep_records

    @property
    def set_records(self) -> list[SetRecord]:
        return self.segmenter.set_records
