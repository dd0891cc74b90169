"""Angles -> events.

Exercise profiles turn the lifter's calibrated range of motion into limits;
:class:`EventDetector` watches the lumbar angle (and lateral bend, twist and
the trunk's sagittal angular velocity) block by block and reports
over-flexion, over-extension, twist, lateral bend, swing (momentum) and spine
creep events with hysteresis, a minimum duration and a refractory period, so
one bad rep gives one alert. It is streaming and block-split invariant: the
same samples give the same events however they are cut into blocks.

Profiles (what a coach would watch):

* hinges and squats (deadlift, squat, row): flexion past 50 % of the lifter's
  own full flexion; lockout hyperextension; twist and lateral bend (15 deg);
  spine creep (bottom-of-rep flexion growing by 12 deg over the set's first rep).
* overhead press: arching past 50 % of full extension.
* bench: arching off the bench past 60 % of full extension.
* curl: leaning back (45 % of extension); swinging the weight (trunk
  sagittal rate, e.g. 60 deg/s) is opt-in via an override.
* holds (plank, bird dog, dead bug, glute bridge): sagging/arching into
  extension, piking into flexion, pelvis rotation (twist, lateral).
* unilateral work (single-leg deadlift, lunge, split squat, single-arm
  press, single-arm row): the limits of the bilateral lift each one is a
  variant of (hinge, squat, press, row), the same 15 deg of twist and lateral
  bend; what unilateral work adds is the comparison of the sides
  (:mod:`spinemon.core.unilateral`), not a tighter buzz.
* generic: 70 % of the range either way.

Every limit can be overridden per exercise (:meth:`ExerciseProfile.with_overrides`,
used for the overrides in the user profile file and on the command line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from spinemon.core.stage import StageState
from spinemon.errors import ConfigError

OVER_FLEXION = "over_flexion"
OVER_EXTENSION = "over_extension"
TWIST = "twist"
LATERAL_BEND = "lateral_bend"
SWING = "swing"  # momentum: the trunk's sagittal angular velocity past the limit
SPINE_CREEP = "spine_creep"  # fatigue: flexion grows over the set's first rep
#: one sensor in a squat or lunge: its own forward inclination from standing
#: (trunk or pelvis lean) past the exercise's norm -- lean, not lumbar rounding
FORWARD_LEAN = "forward_lean"
EVENT_KINDS = (OVER_FLEXION, OVER_EXTENSION, TWIST, LATERAL_BEND, SWING, SPINE_CREEP, FORWARD_LEAN)

#: exercises that are static holds (timed, no reps)
HOLD_EXERCISES: tuple[str, ...] = ("plank", "bird_dog", "dead_bug", "glute_bridge")

#: exercises done one side at a time: each rep is tagged left or right
#: (spinemon.core.unilateral) and the report compares the sides
UNILATERAL_EXERCISES: tuple[str, ...] = (
    "single_leg_deadlift",
    "lunge",
    "split_squat",
    "single_arm_press",
    "single_arm_row",
)


@dataclass(frozen=True)
class RangeOfMotion:
    """The lifter's own lumbar range, degrees from neutral
    (flexion positive, extension negative)."""

    flexion_deg: float = 55.0
    extension_deg: float = -25.0

    def __post_init__(self) -> None:
        if not (5.0 <= self.flexion_deg <= 120.0):
            raise ConfigError(f"range of motion: flexion {self.flexion_deg:.1f} deg is implausible (5..120)")
        if not (-60.0 <= self.extension_deg <= -2.0):
            raise ConfigError(
                f"range of motion: extension {self.extension_deg:.1f} deg is implausible (-60..-2)"
            )


#: population default used until the lifter calibrates a range of motion
DEFAULT_ROM = RangeOfMotion()


_OVERRIDABLE = (
    "flexion_share",
    "extension_share",
    "flexion_deg",
    "extension_deg",
    "twist_deg",
    "lateral_deg",
    "swing_deg_s",
    "creep_deg",
    "lean_deg",
)


@dataclass(frozen=True)
class ExerciseProfile:
    """Limits for one exercise. A limit is either a share of the lifter's
    range of motion (``*_share``) or an absolute angle (``*_deg``, which wins
    when set). ``None`` disables that check.

    ``swing_deg_s``: limit on the trunk's sagittal angular velocity (deg/s;
    momentum in curls). ``creep_deg``: spine creep -- warn when a rep's
    flexion exceeds the set's first rep's peak by this much (deg).
    ``hold``: a static hold (timed, no reps). ``lean_deg``: with one sensor,
    its forward inclination from standing past this is excessive forward
    lean (see :func:`one_sensor_limits`); two sensors judge the lumbar angle instead."""

    name: str
    flexion_share: float | None = 0.6
    extension_share: float | None = 0.6
    flexion_deg: float | None = None
    extension_deg: float | None = None
    twist_deg: float | None = None
    lateral_deg: float | None = None
    swing_deg_s: float | None = None
    creep_deg: float | None = None
    hold: bool = False
    lean_deg: float | None = None

    def __post_init__(self) -> None:
        for k in _OVERRIDABLE:
            v = getattr(self, k)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{self.name}: {k} must be a number or null, not {v!r}")
            if k.endswith("_share") and not 0.05 <= v <= 1.5:
                raise ConfigError(
                    f"{self.name}: {k}={v} is outside 0.05..1.5 (a share of your range of motion)"
                )
            if k == "extension_deg" and not -90.0 <= v < 0:
                raise ConfigError(f"{self.name}: extension_deg={v} must be negative (-90..0)")
            if (
                k in ("flexion_deg", "twist_deg", "lateral_deg", "creep_deg", "lean_deg")
                and not 0 < v <= 120.0
            ):
                raise ConfigError(f"{self.name}: {k}={v} is outside 0..120 deg")
            if k == "swing_deg_s" and not 0 < v <= 2000.0:
                raise ConfigError(f"{self.name}: swing_deg_s={v} is outside 0..2000 deg/s")

    def limits(self, rom: RangeOfMotion = DEFAULT_ROM) -> Limits:
        flex = self.flexion_deg
        if flex is None and self.flexion_share is not None:
            flex = self.flexion_share * rom.flexion_deg
        ext = self.extension_deg
        if ext is None and self.extension_share is not None:
            ext = self.extension_share * rom.extension_deg
        return Limits(flex, ext, self.twist_deg, self.lateral_deg, self.swing_deg_s, lean_deg=self.lean_deg)

    def with_overrides(self, overrides: dict | None) -> ExerciseProfile:
        """A copy with some limits replaced, e.g. ``{"flexion_share": 0.55,
        "twist_deg": null}``. Setting ``flexion_deg``/``extension_deg`` makes
        that limit absolute. Unknown keys or bad values raise ConfigError."""
        if not overrides:
            return self
        if not isinstance(overrides, dict):
            raise ConfigError(f"{self.name}: overrides must be a mapping, not {type(overrides).__name__}")
        bad = [k for k in overrides if k not in _OVERRIDABLE]
        if bad:
            raise ConfigError(f"{self.name}: unknown limit {bad[0]!r}; choose from {', '.join(_OVERRIDABLE)}")
        return replace(self, **overrides)


PROFILES: dict[str, ExerciseProfile] = {
    # hinges and squats: rounding is the fault; lockout hyperextension too; fatigue shows as creep
    "deadlift": ExerciseProfile(
        "deadlift", flexion_share=0.5, extension_share=0.6, twist_deg=15.0, lateral_deg=15.0, creep_deg=12.0
    ),
    # lean_deg (one sensor only): a low-bar back squat inclines the trunk 45-55 deg
    # from vertical at parallel; 10 deg past that (a provisional neutral can be a
    # few degrees off) the squat has become a good morning -- hips shooting back,
    # the "excessive forward lean" fault (real lean sets peak ~19 deg above correct ones)
    "squat": ExerciseProfile(
        "squat",
        flexion_share=0.5,
        extension_share=0.6,
        twist_deg=15.0,
        lateral_deg=15.0,
        creep_deg=12.0,
        lean_deg=65.0,
    ),
    "row": ExerciseProfile(
        "row", flexion_share=0.5, extension_share=0.5, twist_deg=15.0, lateral_deg=15.0, creep_deg=12.0
    ),
    # overhead work: arching is the fault
    "overhead_press": ExerciseProfile(
        "overhead_press", flexion_share=0.5, extension_share=0.5, twist_deg=15.0, lateral_deg=15.0
    ),
    # bench: lifting the lower back off the bench (arch past the lifter's usual set-up)
    "bench": ExerciseProfile(
        "bench", flexion_share=0.6, extension_share=0.6, twist_deg=15.0, lateral_deg=15.0
    ),
    # curls: leaning back and swinging the weight
    # (the swing limit is opt-in -- {"curl": {"swing_deg_s": 60}}: a swing that
    # leans back past the extension limit would otherwise buzz twice)
    "curl": ExerciseProfile(
        "curl", flexion_share=0.5, extension_share=0.45, twist_deg=15.0, lateral_deg=15.0
    ),
    # core holds: sag/arch into extension, pike into flexion, pelvis rotation
    "plank": ExerciseProfile(
        "plank", flexion_share=0.35, extension_share=0.35, twist_deg=12.0, lateral_deg=12.0, hold=True
    ),
    "bird_dog": ExerciseProfile(
        "bird_dog", flexion_share=0.4, extension_share=0.35, twist_deg=10.0, lateral_deg=10.0, hold=True
    ),
    "dead_bug": ExerciseProfile(
        "dead_bug", flexion_share=0.5, extension_share=0.3, twist_deg=10.0, lateral_deg=10.0, hold=True
    ),
    "glute_bridge": ExerciseProfile(
        "glute_bridge", flexion_share=0.5, extension_share=0.4, twist_deg=12.0, lateral_deg=12.0, hold=True
    ),
    # unilateral work: each one keeps the limits of the bilateral lift it is a
    # variant of -- the share of the lifter's range is the same principle, and
    # loading one side does not give the lumbar spine more room. Twist and
    # lateral bend stay at the 15 deg of every lift: a one-sided load pulls
    # the trunk a few degrees toward or away from it by design, so a tighter
    # limit would buzz clean reps; the lean shows instead in the comparison
    # of the sides (spinemon.core.unilateral), rep by rep.
    # single-leg deadlift: a hip hinge on one leg (as deadlift: rounding past half the range)
    "single_leg_deadlift": ExerciseProfile(
        "single_leg_deadlift",
        flexion_share=0.5,
        extension_share=0.6,
        twist_deg=15.0,
        lateral_deg=15.0,
        creep_deg=12.0,
    ),
    # lunge and split squat: a squat with the trunk upright; the rear hip's
    # stretch tips the pelvis forward, so arching is watched as in overhead
    # work (half the extension range), rounding as in the squat
    # lean_deg (one sensor only): the trunk stays upright in a lunge (a coach's
    # cue is "chest up"); 20-25 deg of forward lean is usual, past 35 deg it folds over
    "lunge": ExerciseProfile(
        "lunge",
        flexion_share=0.5,
        extension_share=0.5,
        twist_deg=15.0,
        lateral_deg=15.0,
        creep_deg=12.0,
        lean_deg=35.0,
    ),
    "split_squat": ExerciseProfile(
        "split_squat",
        flexion_share=0.5,
        extension_share=0.5,
        twist_deg=15.0,
        lateral_deg=15.0,
        creep_deg=12.0,
        lean_deg=35.0,
    ),
    # single-arm press (one dumbbell overhead): as overhead_press, arching is the fault
    "single_arm_press": ExerciseProfile(
        "single_arm_press", flexion_share=0.5, extension_share=0.5, twist_deg=15.0, lateral_deg=15.0
    ),
    # single-arm row: as row, the hinged trunk must not round; rotating open to pull is the twist limit
    "single_arm_row": ExerciseProfile(
        "single_arm_row",
        flexion_share=0.5,
        extension_share=0.5,
        twist_deg=15.0,
        lateral_deg=15.0,
        creep_deg=12.0,
    ),
    "generic": ExerciseProfile("generic", flexion_share=0.7, extension_share=0.7),
}


#: exercises where the trunk's inclination is the movement itself (hinges and
#: squats): one sensor cannot tell a hip hinge from a rounded back
HINGE_EXERCISES: tuple[str, ...] = (
    "deadlift",
    "squat",
    "row",
    "single_leg_deadlift",
    "lunge",
    "split_squat",
    "single_arm_row",
    "generic",
)

#: what one sensor cannot judge, and why (see :func:`one_sensor_limits`)
NEEDS_TWO_SENSORS = {
    "flexion_deg": "lumbar flexion needs two sensors: one sensor cannot tell a hip hinge from a rounded back",
    "extension_deg": "lumbar extension needs two sensors in a hinge or squat",
    "twist_deg": "lumbar twist needs two sensors: one sensor sees the whole body turn (walking, turning round)",
    "creep_deg": "spine creep is measured on lumbar flexion, which needs two sensors",
    "lean_deg": "forward lean has no norm for this lift (a hinge leans the trunk by design)",
}


def one_sensor_limits(exercise: str, lim: Limits) -> tuple[Limits, dict[str, str]]:
    """The limits one sensor can judge, and the ones switched off with the reason.

    One sensor reads its own inclination (trunk or pelvis), not the lumbar
    angle. Kept: the lean back on curls, presses and holds (inclination
    excursion from neutral: hip swing), swing rate, lateral tilt, and in
    squats and lunges the forward lean past the exercise's norm
    (``lean_deg``: lean, not lumbar rounding). Off: lumbar flexion and
    extension in hinges and squats, twist (heading changes are the whole body
    turning) and creep. With two sensors the lean limit is off: the lumbar
    angle is judged instead."""
    off: dict[str, str] = {}
    changes: dict = {}
    keys: tuple[str, ...] = ("twist_deg", "creep_deg")
    if exercise in HINGE_EXERCISES:
        keys = ("flexion_deg", "extension_deg", "twist_deg", "creep_deg")
        if lim.lean_deg is None:
            keys += ("lean_deg",)
    for k in keys:
        if getattr(lim, k) is not None or k in ("flexion_deg", "extension_deg", "lean_deg"):
            changes[k] = None
            off[k] = NEEDS_TWO_SENSORS[k]
    return replace(lim, **changes), off


def profile(name: str, overrides: dict | None = None) -> ExerciseProfile:
    """The profile of exercise ``name``, with ``overrides`` (a mapping
    ``{exercise: {limit: value}}``) applied if it has an entry for it."""
    try:
        p = PROFILES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown exercise {name!r}; choose one of {', '.join(PROFILES)}") from None
    if overrides:
        if not isinstance(overrides, dict):
            raise ConfigError("limit overrides must map exercise names to {limit: value}")
        for ex in overrides:
            if ex not in PROFILES:
                raise ConfigError(
                    f"limit overrides: unknown exercise {ex!r}; choose one of {', '.join(PROFILES)}"
                )
        p = p.with_overrides(overrides.get(name))
    return p


@dataclass(frozen=True)
class Limits:
    """Degrees. ``extension_deg`` is negative. ``None`` = not checked."""

    flexion_deg: float | None
    extension_deg: float | None
    twist_deg: float | None = None
    lateral_deg: float | None = None
    swing_deg_s: float | None = None  # trunk sagittal angular velocity, deg/s
    creep_deg: float | None = None  # absolute flexion threshold for spine creep (set by the pipeline per set)
    lean_deg: float | None = None  # one sensor: its forward inclination from standing (two sensors: None)

    def as_dict(self) -> dict:
        return {k: (None if v is None else round(float(v), 3)) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class DetectorSettings:
    hysteresis_deg: float = 3.0  # the angle must come back this far inside the limit to end an event
    min_duration_s: float = 0.08  # past the limit this long before an alert fires
    refractory_s: float = 1.5  # a new crossing this soon after an event ends continues it
    #: spine creep must last this long, and is dropped if the hard flexion
    #: limit is crossed meanwhile (one rep, one buzz: the hard limit's)
    creep_min_duration_s: float = 0.35
    #: quick confirmation of the angle limits (flexion, extension, twist,
    #: lateral): a crossing that goes in fast needs less than the minimum
    #: duration, ``min_duration_s * ref_rate / rate`` (rate: how fast the
    #: excursion goes deeper, from its first sample past the limit), never
    #: fewer than ``quick_floor_samples`` sample periods after that sample.
    #: The reference rate is the one that crosses the hysteresis band in the
    #: minimum duration (``hysteresis_deg / min_duration_s``, 37.5 deg/s by
    #: default), so the rule amounts to: confirmed once the excursion is one
    #: hysteresis band deeper than its first sample past the limit -- not
    #: noise hovering at the limit, and not a glitch that jumps and sits (its
    #: rate is 0). A slow crossing still needs the whole minimum duration. The on-device guard
    #: (firmware/guard.py, ``Crossing``) applies the same rule.
    quick_confirm: bool = True
    quick_floor_samples: int = 2

    def __post_init__(self) -> None:
        if (
            self.hysteresis_deg < 0
            or self.min_duration_s < 0
            or self.refractory_s < 0
            or self.creep_min_duration_s < 0
            or self.quick_floor_samples < 0
        ):
            raise ConfigError("detector settings must not be negative")

    @property
    def ref_rate_deg_s(self) -> float:
        """The rate at which the quick rule needs exactly the minimum duration."""
        return self.hysteresis_deg / self.min_duration_s if self.min_duration_s > 0 else math.inf


@dataclass
class Event:
    """One excursion past a limit. ``t_*`` are device times (s).
    ``t_alert`` is when the event was confirmed and an alert issued (the
    sample that completed the minimum duration); ``seq_alert`` its index."""

    kind: str
    t_start: float
    limit_deg: float
    peak_deg: float
    t_alert: float | None = None
    seq_alert: int | None = None
    t_end: float | None = None
    set: int | None = None
    rep: int | None = None
    exercise: str | None = None
    #: a fault that did not buzz: why its limits were not armed (None: armed)
    held_back: str | None = None

    @property
    def t_last(self) -> float:
        """Its end, or its start while it has none (still open, or closed at an unknown time: NaN)."""
        return self.t_start if self.t_end is None or math.isnan(self.t_end) else self.t_end

    def as_dict(self) -> dict:
        d = {
            "kind": self.kind,
            "t_start": round(self.t_start, 4),
            "t_end": None if self.t_end is None else round(self.t_end, 4),
            "peak_deg": round(self.peak_deg, 2),
            "limit_deg": round(self.limit_deg, 2),
            "t_alert": None if self.t_alert is None else round(self.t_alert, 4),
            "set": self.set,
            "rep": self.rep,
            "exercise": self.exercise,
        }
        if self.held_back is not None:
            d["held_back"] = self.held_back
        return d


@dataclass
class _Watch:
    """State of one limit check."""

    kind: str
    sign: float  # +1: signal above limit is bad; -1: below (extension); 0: |signal|
    candidate: Event | None = None  # past the limit, not yet confirmed
    active: Event | None = None  # confirmed; t_end set once released (cooling down)
    blocked: bool = False  # spine creep only: the hard flexion limit took over this excursion
    first_badness: float = 0.0  # the candidate's first sample past the limit
    n_past: int = 0  # samples since that one


#: limits on an angle, where the quick confirmation applies (swing is a rate;
#: spine creep is slow fatigue, confirmed over creep_min_duration_s)
QUICK_KINDS = (OVER_FLEXION, OVER_EXTENSION, TWIST, LATERAL_BEND, FORWARD_LEAN)


@dataclass
class DetectorOutput:
    alerts: list[Event] = field(default_factory=list)  # confirmed in this block: send a haptic now
    finished: list[Event] = field(default_factory=list)  # ended in this block


def _limits_by_kind(lim: Limits) -> dict[str, float | None]:
    return {
        OVER_FLEXION: lim.flexion_deg,
        OVER_EXTENSION: lim.extension_deg,
        TWIST: lim.twist_deg,
        LATERAL_BEND: lim.lateral_deg,
        SWING: lim.swing_deg_s,
        SPINE_CREEP: lim.creep_deg,
        FORWARD_LEAN: lim.lean_deg,
    }


def _signed(sign: float, limit: float | None) -> float | None:
    """A limit as compared with a check's badness (see :class:`_Watch`)."""
    if limit is None:
        return None
    return limit if sign > 0 else -limit if sign < 0 else abs(limit)


def _order(out: DetectorOutput) -> None:
    """The same order however the stream is cut into blocks."""
    if len(out.alerts) > 1:
        out.alerts.sort(key=lambda e: (e.t_alert, EVENT_KINDS.index(e.kind)))
        out.finished.sort(key=lambda e: (e.t_end, EVENT_KINDS.index(e.kind)))


class EventDetector:
    """Streaming limit watcher.

    ``update(t, seq, lumbar, lateral, twist)`` takes arrays for one block of
    samples (degrees) and returns the alerts to send now and the events that
    ended. ``set_limits`` changes the limits between blocks (new exercise);
    ``context`` (set, rep, exercise) is stamped on new events.
    """

    def __init__(self, limits: Limits, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        self.limits = limits
        self._watches = {
            OVER_FLEXION: _Watch(OVER_FLEXION, +1.0),
            OVER_EXTENSION: _Watch(OVER_EXTENSION, -1.0),
            TWIST: _Watch(TWIST, 0.0),
            LATERAL_BEND: _Watch(LATERAL_BEND, 0.0),
            SWING: _Watch(SWING, 0.0),
            SPINE_CREEP: _Watch(SPINE_CREEP, +1.0),
            FORWARD_LEAN: _Watch(FORWARD_LEAN, +1.0),
        }
        self.events: list[Event] = []
        self.context: dict = {"set": None, "rep": None, "exercise": None}

    def set_limits(self, limits: Limits) -> None:
        self.limits = limits

    def state(self) -> StageState:
        """The detector's state as a value: copies of its events, each
        limit check's candidate and the index (in ``events``) of its active
        event, the context stamped on new events and the limits."""
        at = {id(e): i for i, e in enumerate(self.events)}
        return {
            "limits": self.limits,
            "events": [replace(e) for e in self.events],
            "watches": {
                k: (
                    None if w.candidate is None else replace(w.candidate),
                    None if w.active is None else at[id(w.active)],
                    w.blocked,
                    w.first_badness,
                    w.n_past,
                )
                for k, w in self._watches.items()
            },
            "context": dict(self.context),
        }

    def restore(self, state: StageState) -> None:
        """Go on from ``state`` (see :meth:`state`); the events are copied again, so the state stays as it was."""
        self.limits = state["limits"]
        self.events = [replace(e) for e in state["events"]]
        for k, (candidate, active, blocked, first_badness, n_past) in state["watches"].items():
            w = self._watches[k]
            w.candidate = None if candidate is None else replace(candidate)
            w.active = None if active is None else self.events[active]
            w.blocked, w.first_badness, w.n_past = blocked, first_badness, n_past
        self.context = dict(state["context"])

    def update(
        self,
        t: np.ndarray,
        seq: np.ndarray,
        lumbar: np.ndarray,
        lateral: np.ndarray,
        twist: np.ndarray,
        sagittal_rate: np.ndarray | None = None,
    ) -> DetectorOutput:
        """``sagittal_rate``: the trunk's (upper sensor's) body-Y angular
        velocity, deg/s, for the swing limit (not checked when None)."""
        return self.update_runs(
            t, seq, (lumbar, lateral, twist, sagittal_rate), ((len(t), self.limits, self.context),)
        )

    def update_runs(
        self,
        t: np.ndarray,
        seq: np.ndarray,
        signals: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None],
        runs: Sequence[tuple[int, Limits, dict]],
    ) -> DetectorOutput:
        """A block cut into runs, each with its own limits and context: run
        ``k`` is samples ``runs[k-1][0]:runs[k][0]`` (from 0 for the first),
        watched with ``runs[k][1]`` and stamped with ``runs[k][2]``. The same
        as :meth:`set_limits`, setting :attr:`context` and :meth:`update` run
        by run (the same events, alerts and finished events, in the same
        order), in a few numpy passes over the block where nothing is past a
        limit: each limit check runs on its own, and only the checks with
        something going on look at the runs one by one. ``signals``: lumbar,
        lateral, twist, sagittal rate (as :meth:`update`). :attr:`limits` and
        :attr:`context` are left as they are (the caller sets them)."""
        lumbar, lateral, twist, sagittal_rate = signals
        by_kind = {
            OVER_FLEXION: lumbar,
            OVER_EXTENSION: lumbar,
            TWIST: twist,
            LATERAL_BEND: lateral,
            SWING: sagittal_rate,
            SPINE_CREEP: lumbar,
            FORWARD_LEAN: lumbar,
        }
        if len(runs) == 1:  # (a frame, live: no per-run bookkeeping)
            return self._update_run(t, seq, by_kind, runs[0][1], runs[0][2])
        bounds = [0, *(r[0] for r in runs)]
        run_limits = [_limits_by_kind(r[1]) for r in runs]  # once per run, not per kind
        outs: dict[int, DetectorOutput] = {}  # by run: what each run gave, as update() would per run
        for kind, w in self._watches.items():
            sig = by_kind[kind]
            limits = [lk[kind] for lk in run_limits]
            idle = w.candidate is None and w.active is None and not w.blocked
            if idle and (sig is None or all(limit is None for limit in limits)):
                continue  # nothing open to close, nothing to watch
            x = None if sig is None else np.asarray(sig, dtype=np.float64)
            badness = None if x is None else (x if w.sign > 0 else -x if w.sign < 0 else np.abs(x))
            if idle and badness is not None:
                # nothing going on and nothing past the limit anywhere in the block
                if all(limit == limits[0] for limit in limits):
                    one = _signed(w.sign, limits[0])
                    if one is None or not (badness > one).any():
                        continue
                else:
                    lims = [_signed(w.sign, limit) for limit in limits]
                    per = np.repeat(np.array([np.nan if v is None else v for v in lims]), np.diff(bounds))
                    if not (badness > per).any():
                        continue
            for k, run in enumerate(runs):
                a, b = bounds[k], bounds[k + 1]
                limit = limits[k]
                if limit is None or x is None or badness is None:
                    if limit is None and (w.candidate is not None or w.active is not None) and b > a:
                        # the limit went away (new set/exercise): close what was open
                        self._drop(w, float(t[a]), outs.setdefault(k, DetectorOutput()))
                    continue
                lim = _signed(w.sign, limit)
                assert lim is not None
                bad = badness[a:b]
                # fast path: nothing going on and nothing past the limit in this run
                if w.candidate is None and w.active is None and not w.blocked and not (bad > lim).any():
                    continue
                hard = run[1].flexion_deg if kind == SPINE_CREEP else None
                out = outs.setdefault(k, DetectorOutput())
                self._scan(w, limit, lim, bad, x[a:b], t[a:b], seq[a:b], out, run[2], hard)
        if len(outs) == 1:
            k, out = next(iter(outs.items()))
            _order(out)
            self.events.extend(out.alerts)
            return out
        total = DetectorOutput()
        for k in sorted(outs):
            out = outs[k]
            _order(out)
            self.events.extend(out.alerts)
            total.alerts.extend(out.alerts)
            total.finished.extend(out.finished)
        return total

    def _update_run(
        self, t: np.ndarray, seq: np.ndarray, by_kind: dict, limits: Limits, ctx: dict
    ) -> DetectorOutput:
        """:meth:`update_runs` for one run."""
        out = DetectorOutput()
        by_limit = _limits_by_kind(limits)
        for kind, w in self._watches.items():
            limit = by_limit[kind]
            sig = by_kind[kind]
            if limit is None or sig is None:
                if limit is None and (w.candidate is not None or w.active is not None) and len(t):
                    # the limit went away (new set/exercise): close what was open
                    self._drop(w, float(t[0]), out)
                continue
            x = np.asarray(sig, dtype=np.float64)
            badness = x if w.sign > 0 else -x if w.sign < 0 else np.abs(x)
            lim = limit if w.sign > 0 else -limit if w.sign < 0 else abs(limit)
            # fast path: nothing going on and nothing past the limit in this block
            if w.candidate is None and w.active is None and not w.blocked and not (badness > lim).any():
                continue
            hard = limits.flexion_deg if kind == SPINE_CREEP else None
            self._scan(w, limit, lim, badness, x, t, seq, out, ctx, hard)
        _order(out)
        self.events.extend(out.alerts)
        return out

    def _drop(self, w: _Watch, t: float, out: DetectorOutput) -> None:
        w.candidate = None
        ev = w.active
        if ev is not None:
            if ev.t_end is None:
                ev.t_end = t
            out.finished.append(ev)
            w.active = None

    def _scan(
        self,
        w: _Watch,
        limit: float,
        lim: float,
        badness,
        x,
        t,
        seq,
        out: DetectorOutput,
        ctx: dict,
        hard: float | None,
    ) -> None:
        """One run of one limit check, sample by sample; ``ctx``: stamped on a
        new event; ``hard``: spine creep only, the hard flexion limit in force."""
        s = self.settings
        release = lim - s.hysteresis_deg
        min_dur = s.min_duration_s
        quick = s.quick_confirm and w.kind in QUICK_KINDS
        ref_depth = min_dur * s.ref_rate_deg_s  # the quick rule: elapsed * rate >= this
        if w.kind == SPINE_CREEP:
            min_dur = s.creep_min_duration_s
        for i in range(len(badness)):
            b = badness[i]
            ti = float(t[i])
            xi = float(x[i])
            if hard is not None:
                if xi > hard:
                    w.blocked = True
                    w.candidate = None
                elif w.blocked and b < release:
                    w.blocked = False
                if w.blocked and w.active is None:
                    continue
            ev = w.active
            if ev is not None:
                if ev.t_end is not None:  # cooling down after release
                    if b > lim:  # back past the limit within the refractory period: same event
                        ev.t_end = None
                    elif ti - ev.t_end > s.refractory_s:
                        w.active = None
                        out.finished.append(ev)
                        continue
                    else:
                        continue
                if abs(xi) > abs(ev.peak_deg):
                    ev.peak_deg = xi
                if b < release:
                    ev.t_end = ti
                continue
            if w.candidate is None:
                if not b > lim:
                    continue
                w.candidate = Event(
                    kind=w.kind,
                    t_start=ti,
                    limit_deg=float(limit),
                    peak_deg=xi,
                    set=ctx.get("set"),
                    rep=ctx.get("rep"),
                    exercise=ctx.get("exercise"),
                )
                w.first_badness = float(b)
                w.n_past = 0
            else:
                w.n_past += 1
            ev = w.candidate
            if b < release:
                w.candidate = None  # too short to count
                continue
            if abs(xi) > abs(ev.peak_deg):
                ev.peak_deg = xi
            elapsed = ti - ev.t_start
            if elapsed < min_dur and not (quick and self._quick(w, float(b), elapsed, ref_depth)):
                continue
            w.candidate = None
            ev.t_alert = ti
            ev.seq_alert = int(seq[i])
            w.active = ev
            out.alerts.append(ev)

    def _quick(self, w: _Watch, b: float, elapsed: float, ref_depth: float) -> bool:
        """The quick rule: elapsed >= min_duration * ref_rate / rate, at least
        ``quick_floor_samples`` samples after the first one past the limit."""
        if w.n_past < self.settings.quick_floor_samples or elapsed <= 0.0:
            return False
        rate = (b - w.first_badness) / elapsed  # how fast the excursion goes deeper
        return rate > 0.0 and elapsed >= ref_depth / rate  # = min_duration * ref_rate / rate

    def finish(self, t_end: float) -> list[Event]:
        """Close events still open at the end of a session."""
        done = []
        for w in self._watches.values():
            ev = w.active
            if ev is not None:
                if ev.t_end is None:
                    ev.t_end = t_end
                done.append(ev)
                w.active = None
            w.candidate = None
        return done


__all__ = [
    "DEFAULT_ROM",
    "EVENT_KINDS",
    "HOLD_EXERCISES",
    "LATERAL_BEND",
    "OVER_EXTENSION",
    "OVER_FLEXION",
    "PROFILES",
    "SPINE_CREEP",
    "SWING",
    "TWIST",
    "UNILATERAL_EXERCISES",
    "DetectorOutput",
    "DetectorSettings",
    "Event",
    "EventDetector",
    "ExerciseProfile",
    "Limits",
    "RangeOfMotion",
    "profile",
]
