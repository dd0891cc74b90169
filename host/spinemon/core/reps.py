"""Angles and motion -> reps and sets, streaming.

:class:`RepSegmenter` takes blocks of samples (device time, lumbar angle,
body-frame gyros) and finds repetitions and sets by itself; the lifter's
labels ("a new set of E starts now", :meth:`RepSegmenter.start_set`) can be
given as well and always win. It is streaming and block-split invariant: all
state advances sample by sample, so the same samples give the same records
however they are cut into blocks.

How a rep is found (the rule, in order)
---------------------------------------
1. **Excursion.** Each body-frame gyro (rad/s, minus a residual bias the
   segmenter learns while the wearer is still) is integrated
   into a small-angle rotation vector relative to a *reference posture*:
   ``v_upper``, ``v_lower`` and the relative rotation ``v_upper - v_lower``.
   The excursion ``e`` is the largest of their magnitudes, in degrees. While
   no rep is in progress the reference follows the body whenever it is quiet
   (smoothed ``|gyro|`` below ``quiet_deg_s``: ``v`` is reset to 0), and ``v``
   leaks back to 0 with ``idle_leak_tau_s``; during a rep the reference is
   frozen. A rep is one down-up cycle, so ``e`` rises from ~0, peaks, and
   returns to ~0. Using the gyros (not inclination) makes the small trunk
   motion of presses and curls visible -- in the simulated wearer a clean
   curl moves the trunk and pelvis by only 0.5-5 deg in pitch, roll and
   heading, which inclination alone can miss.
2. **Candidate.** A candidate starts when ``e`` exceeds the exercise's
   ``enter_deg`` (its start time is the last sample where ``e`` was below a
   quarter of that, i.e. where the motion began), it turns back when ``e``
   falls below ``exit_fraction`` of its peak, and it ends where the body
   comes to rest (quiet for ``rest_quiet_s``; at most ``settle_s`` after the
   turn) or where ``e`` starts rising again (the next rep, without a pause).
   Candidates shorter than ``min_rep_s``, longer than ``max_rep_s``, or stuck
   away from the reference while quiet for ``stuck_s`` are rejected.
3. **Walking.** ``W`` = RMS (exponential window ``walk_tau_s``) of the
   off-sagittal rates (body X and Z) of the lower sensor (the upper one with
   a single IMU). ``W > walk_deg_s`` for ``walk_min_s`` is walking; it starts
   at the first crossing. While walking no candidate can start; a candidate
   overlapping ``walk_margin_s`` before the walking onset is rejected
   (``"walking"``); walking closes the current set. Every candidate waits
   ``confirm_delay_s`` after its end before it is accepted, so walking that
   starts right after it can still veto it.
4. **Sets.** Accepted candidates closer than ``rest_gap_s`` (end to next
   start), with no walking between, form a run. A run becomes a set when it
   has ``min_reps_unlabelled`` reps (default 2) -- or at once when the lifter
   labelled the set. A run that ends with fewer reps is rejected
   (``"isolated"``). **This is the ghost-rep rule for plate loading**: picking
   up a plate is a hip hinge indistinguishable from a deadlift rep by
   amplitude and tempo, but it is a single hinge with walking before and
   after (and ``rest_gap_s`` away from any rep), so it never forms a set.
   The price: an unlabelled single (a 1-rep set) is not counted; label it.
   A small lift's rep measured on the gravity excursion (before its gyro
   bias is known) cannot be told from standing sway: it joins a set but is no
   evidence of one (``RepSettings.told_reps_confirm``).

Numbers: sets and reps count from 1 (docs/architecture.md). Auto-detected sets
continue the numbering after the last label. :attr:`RepSegmenter.current_rep`
is the number of the rep in progress *when it is known* -- in a labelled or
already confirmed set; during the first ``min_reps_unlabelled`` reps of an
unlabelled set it is ``None`` (those reps are reported, with their times, as
soon as the set is confirmed, so events can be matched to them by time).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from spinemon.core import rep_kernel as K
from spinemon.core.stage import StageState, fields_of, set_fields
from spinemon.errors import ConfigError, RepInputError

__all__ = [
    "EXERCISES",
    "REP_PROFILES",
    "RejectedCandidate",
    "RepInputError",
    "RepProfile",
    "RepRecord",
    "RepSegmenter",
    "RepSettings",
    "SetRecord",
]

#: exercises the segmenter knows (same names as :data:`spinemon.core.detect.PROFILES`)
EXERCISES: tuple[str, ...] = (
    "deadlift", "squat", "overhead_press", "curl", "row", "bench",
    "single_leg_deadlift", "lunge", "split_squat", "single_arm_press", "single_arm_row", "generic",
)  # fmt: skip

_R2D = 180.0 / math.pi


def _is_real(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


@dataclass(frozen=True)
class RepProfile:
    """Amplitude and tempo rules for one exercise.

    Attributes:
        enter_deg: the excursion (deg) a candidate must reach. Deadlifts and
            squats tilt the trunk 30-80 deg, overhead presses arch the lumbar
            spine 5-8 deg, curls sway the trunk 0.5-5 deg.
        min_rep_s: shortest rep, s.
        max_rep_s: longest rep, s.
    """

    name: str
    enter_deg: float
    min_rep_s: float = 0.6
    max_rep_s: float = 12.0

    def __post_init__(self) -> None:
        for k in ("enter_deg", "min_rep_s", "max_rep_s"):
            v = getattr(self, k)
            if not _is_real(v) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"RepProfile.{k} must be a finite number > 0, got {v!r}")
        if self.min_rep_s >= self.max_rep_s:
            raise ConfigError("RepProfile.min_rep_s must be less than max_rep_s")


REP_PROFILES: dict[str, RepProfile] = {
    "deadlift": RepProfile("deadlift", enter_deg=20.0),
    # squat: real back-squat sets swing the lower back only 6-16 deg per rep
    # once the pelvis stays tilted between reps back to back (issue 22)
    "squat": RepProfile("squat", enter_deg=5.0),
    "overhead_press": RepProfile("overhead_press", enter_deg=3.0),
    "curl": RepProfile("curl", enter_deg=0.6),
    # not in the simulated wearer yet (tempo/amplitude are estimates): a
    # bent-over row moves the hinged trunk a little, a bench press barely
    "row": RepProfile("row", enter_deg=1.5),
    "bench": RepProfile("bench", enter_deg=0.6),
    # unilateral work, by the movement it shares with a bilateral lift: a
    # single-leg deadlift hinges the trunk 40-70 deg (as a deadlift, a little
    # shallower); a lunge or split squat keeps the trunk upright, the pelvis
    # tips 8-20 deg as the hips drop; a single-arm press moves the trunk as an
    # overhead press does; a single-arm row, as a row, barely moves the hinged trunk
    "single_leg_deadlift": RepProfile("single_leg_deadlift", enter_deg=15.0),
    "lunge": RepProfile("lunge", enter_deg=5.0),
    "split_squat": RepProfile("split_squat", enter_deg=5.0),
    "single_arm_press": RepProfile("single_arm_press", enter_deg=3.0),
    "single_arm_row": RepProfile("single_arm_row", enter_deg=1.5),
    # unknown exercise: a clear trunk motion; the smallest curls are missed
    "generic": RepProfile("generic", enter_deg=3.0),
}


@dataclass(frozen=True)
class RepSettings:
    """All segmenter parameters, physical units.

    Attributes:
        exercise: exercise assumed until a label says otherwise.
        rest_gap_s: reps further apart than this (end to next start) are in
            different sets. The simulated wearer leaves ``rest_s`` + 2.2..3.5 s
            between sets and at most ~2 s between reps.
        min_reps_unlabelled: reps an unlabelled run needs to count as a set.
        quiet_deg_s: smoothed ``|gyro|`` below this is "quiet" (deg/s).
        quiet_tau_s: smoothing time constant of ``|gyro|``, s.
        rest_quiet_s: between reps, the reference posture follows the body
            once it has been quiet this long, s.
        still_std_deg_s, still_max_deg_s, still_tau_s, still_min_s: a sensor is
            still when its raw gyro is steady -- standard deviation (exponential
            window ``still_tau_s``) below ``still_std_deg_s`` and mean below
            ``still_max_deg_s`` -- for ``still_min_s`` with the mean within
            ``quiet_deg_s`` of the current estimate, or for ``still_long_s``
            whatever the mean (the first estimate, or after the caller's bias
            correction jumped); still samples between reps feed the
            residual gyro-bias estimate (running mean, then time constant
            ``bias_tau_s``, or ``bias_jump_tau_s`` after a jump), which is
            removed before anything else. Needed
            because the fusion learns its bias only below its ``rest_gyr_deg_s``
            (2 deg/s on the raw norm; the simulated wearer's bias reaches
            1.7 deg/s) and its estimate can jump when it does: left in, a 3 s
            rep drifts by more than a curl moves. Steadiness, not smallness,
            so that a jump in the caller's bias correction is relearnt.
        warmup_s: no rep starts until the bias estimate has this much still
            data (stand still ~1 s at the start) or ``warmup_timeout_s`` has passed, s.
        idle_leak_tau_s: between reps the excursion leaks to 0 with this time constant, s.
        exit_fraction: a rep turns back when the excursion falls below this share of its peak.
        settle_s: after turning back, a rep ends where the body comes to rest
            (quiet for ``rest_quiet_s``) or this long after the turn, s.
        stuck_s: a candidate that stays away from the reference, quiet, this long is dropped, s.
        walk_deg_s: off-sagittal RMS rate above which the wearer may be walking, deg/s.
        walk_release_deg_s: walking ends below this, deg/s.
        walk_tau_s: RMS window (exponential) for walking, s.
        walk_min_s: the rate must stay above ``walk_deg_s`` this long to count as walking, s.
        walk_margin_s: a candidate ending less than this before a walking onset is rejected, s.
        confirm_delay_s: a candidate is accepted this long after its end, s.
        arm_after_walk_s: a rep in progress counts as inside a set (limits
            watched, the first bad rep of an unlabelled set alerts) unless it
            began less than this after walking: stepping straight into a bend
            is handling gear (a plate), a set starts from a stance, s.
        max_gap_s: a hole in the stream longer than this resets the state, s.
        profiles: per-exercise amplitude and tempo rules.
    """

    exercise: str = "generic"
    rest_gap_s: float = 5.0
    min_reps_unlabelled: int = 2
    quiet_deg_s: float = 1.5
    quiet_tau_s: float = 0.05
    rest_quiet_s: float = 0.25
    still_std_deg_s: float = 0.8
    still_max_deg_s: float = 3.0
    still_tau_s: float = 0.25
    still_min_s: float = 0.4
    still_long_s: float = 1.5
    bias_tau_s: float = 5.0
    bias_jump_tau_s: float = 0.5
    warmup_s: float = 0.5
    warmup_timeout_s: float = 10.0
    idle_leak_tau_s: float = 4.0
    exit_fraction: float = 0.25
    stuck_s: float = 3.0
    settle_s: float = 1.5
    walk_deg_s: float = 12.0
    walk_release_deg_s: float = 8.0
    walk_tau_s: float = 0.5
    walk_min_s: float = 0.6
    walk_margin_s: float = 0.5
    confirm_delay_s: float = 1.0
    arm_after_walk_s: float = 1.0
    max_gap_s: float = 0.5
    #: reps back to back (rules 2): a rep turns back once the excursion falls
    #: ``exit_fraction`` of the way from its peak to where *it* began (a valley
    #: between reps, the pelvis still tilted), not to the standing reference
    exit_relative: bool = False
    #: a run of one rep, unlabelled, counts as a set of one (a heavy single, a
    #: box picked up from a stance) when its excursion reached this (deg): a
    #: clear lift, not a shift of stance, a fidget or the lean that starts a
    #: walk (real standing: 1-10 deg). None: never (``min_reps_unlabelled`` rules)
    single_min_deg: float | None = None
    #: measure the excursion as the tilt of the fused gravity directions away
    #: from the reference posture (and "quiet" as a low tilt rate), not as the
    #: integrated gyro: no gyro bias enters, so reps count from the first
    #: sample, with no still start to learn it (rules 2)
    gravity_excursion: bool = False
    #: the gravity excursion tells reps that enter at this excursion or more
    #: (deg: hinges, squats, lunges) from standing sway; a smaller rep it finds
    #: (a curl, a press: real standing sways 1-5 deg, gait-l5) counts only in a
    #: set that a rep measured on the gyro (once its bias is learnt) confirms
    gravity_min_enter_deg: float = 5.0
    #: gravity mode: the gravity directions are low-passed with this time
    #: constant before their tilt rate is taken for "quiet" (s)
    tilt_tau_s: float = 0.1
    #: rules 3: learn the gyro bias across gravity in motion too, from the
    #: accelerometers (``upper_acc``/``lower_acc`` given to :meth:`RepSegmenter.update`):
    #: a Mahony filter per sensor, its gravity pulled toward the accelerometer
    #: with time constant ``tilt_pull_tau_s`` (a rep's jolts of 0.1 s barely
    #: move it) and its bias following the pull that persists with time
    #: constant ``tilt_bias_tau_s`` (damping 0.7). After three of those
    #: (``3 * tilt_bias_tau_s`` of data, not walking: 5 % of the first error
    #: left) a small lift (``enter_deg`` under ``gravity_min_enter_deg``: a
    #: press, a curl) is measured on the gyro about the axes across the spine,
    #: with no still start (see :mod:`spinemon.core.rep_kernel`); a larger
    #: one keeps the gravity excursion, which needs no bias
    tilt_bias: bool = False
    tilt_pull_tau_s: float = 1.0
    tilt_bias_tau_s: float = 2.0
    #: the disagreement (deg) a bias of ``tilt_clip_deg / tilt_pull_tau_s`` (2
    #: deg/s: a MEMS gyro's zero-rate offset) builds; a larger one is linear
    #: acceleration (a rep's jolt) and is clipped to it (a larger bias is learnt, more slowly)
    tilt_clip_deg: float = 2.0
    #: rules 4: the tilt-bias filter runs in each sensor's own frame (the
    #: rotations given to :meth:`RepSegmenter.update`), so a new neutral or
    #: heading neither restarts it nor turns its bias, and in gravity mode a
    #: small lift's excursion (and its lumbar angle) is measured on the tilt
    #: filters' gravity, not the fusion's: the fusion learns its bias only at
    #: rest and trusts its gyros for ``tau_acc_s`` (3 s), so before a still
    #: moment its gravity drifts by about bias x 3 s (~3 deg for 1 deg/s),
    #: more than a clean curl moves the trunk; the tilt filter pulls toward the
    #: accelerometer within a second and learns the bias across gravity in
    #: motion, so its drift is the part of the bias not yet learnt, for a second
    tilt_gravity: bool = False
    #: rules 4: an unlabelled run becomes a set once ``min_reps_unlabelled``
    #: of its reps can be told from standing sway (not ``unconfirmed``: measured
    #: on the gyro, or a lift the gravity excursion resolves); the sway-sized
    #: reps the gravity excursion found before then join it, but are no
    #: evidence of a set (rules 3: one such rep with any number of them)
    told_reps_confirm: bool = False
    #: rules 6: the residual bias learnt on still stretches is provisional for
    #: a small lift (with ``tilt_bias``): its stillness test (a steady gyro)
    #: passes on a steady slow turn too (the slow start of a curl read as 0.5
    #: deg/s of bias). A turn across gravity turns the accelerometers, a bias
    #: does not: the bias measures the reps (``GYRO_MODE`` 1) only once a still
    #: stretch confirms it, its accelerometers (low-passed over
    #: ``still_tau_s``, less that lag) having turned less than the tolerance
    #: ``enter_deg / idle_leak_tau_s`` x its length (a constant error the idle
    #: leak holds under ``enter_deg``: it can never start a rep by itself);
    #: that stretch's mean replaces an estimate further off. Once the tilt
    #: filter has learnt, only while the two agree across gravity within the
    #: tolerance; else its bias (``GYRO_MODE`` 2). Before either, the gravity
    #: excursion
    bias_check: bool = False
    #: rules 8: a small lift measured on the gyro (its bias known: ``GYRO_MODE``
    #: 1 or 2) is at rest at the reference only while its excursion stays
    #: under a quarter of ``enter_deg`` (where a rep is taken to begin): a
    #: quiet stretch farther away is motion, however slow. A clean curl moves
    #: the trunk 0.5-5 deg over a rise of about a second, under
    #: ``quiet_deg_s`` (1.5 deg/s) at times all along; the reference followed
    #: it and the rep was lost. The idle leak still takes out a slow drift: a
    #: bias error within rules 6's tolerance (``enter_deg / idle_leak_tau_s``)
    #: holds the excursion under ``enter_deg``
    rest_away: bool = False
    #: rules 8: a small lift's reps measured on the gravity excursion before
    #: the tilt filter has learnt the bias (its first ``3 * tilt_bias_tau_s``)
    #: are measured again once it has, on the gyro with that bias from the
    #: first sample on, as long as nothing was reported yet (a set is
    #: confirmed only by reps measured on the gyro, so before then nothing
    #: is): while learning, the filter's gravity is off by its bias error x
    #: ``tilt_pull_tau_s`` (0.5 deg for 0.5 deg/s), as large as a curl's trunk
    #: motion, and the first reps were found out of phase or split. The reps
    #: found again are reported at the sample where the bias became known
    remeasure: bool = False
    #: rules 9: with ``rest_away``, a still-learnt bias (``GYRO_MODE`` 1) is
    #: checked against the tilt filter's (``bias_check``) on every idle
    #: sample, not only at rest, and gives way to it (``GYRO_MODE`` 2) once
    #: they part by more than the tolerance: a bias error past the tolerance
    #: moves the excursion by itself, so with ``rest_away`` the rest where it
    #: was checked never came (harsh seed 35: a still bias learnt from a
    #: curl's slow start, 0.4-0.5 deg/s off per sensor, moved the excursion
    #: 0.9 deg/s with the body still; two curls were lost as "stuck")
    bias_idle: bool = False
    profiles: dict[str, RepProfile] = field(default_factory=lambda: dict(REP_PROFILES))

    def __post_init__(self) -> None:
        positive = (
            "rest_gap_s", "quiet_deg_s", "quiet_tau_s", "still_long_s", "tilt_pull_tau_s", "tilt_bias_tau_s", "tilt_clip_deg", "bias_jump_tau_s", "still_std_deg_s", "still_max_deg_s", "still_tau_s", "bias_tau_s", "warmup_timeout_s", "idle_leak_tau_s", "stuck_s", "settle_s", "walk_deg_s",
            "walk_release_deg_s", "walk_tau_s", "max_gap_s",
        )  # fmt: skip
        for k in positive:
            v = getattr(self, k)
            if not _is_real(v) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"RepSettings.{k} must be a finite number > 0, got {v!r}")
        for k in (
            "walk_min_s",
            "walk_margin_s",
            "confirm_delay_s",
            "arm_after_walk_s",
            "still_min_s",
            "rest_quiet_s",
            "warmup_s",
        ):
            v = getattr(self, k)
            if not _is_real(v) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"RepSettings.{k} must be a finite number >= 0, got {v!r}")
        if not _is_real(self.exit_fraction) or not 0.0 < self.exit_fraction < 1.0:
            raise ConfigError(f"RepSettings.exit_fraction must be in (0, 1), got {self.exit_fraction!r}")
        if self.walk_release_deg_s > self.walk_deg_s:
            raise ConfigError("RepSettings.walk_release_deg_s must not exceed walk_deg_s")
        m = self.min_reps_unlabelled
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ConfigError(f"RepSettings.min_reps_unlabelled must be an integer >= 1, got {m!r}")
        if not isinstance(self.profiles, dict) or not all(
            isinstance(p, RepProfile) for p in self.profiles.values()
        ):
            raise ConfigError("RepSettings.profiles must map exercise names to RepProfile")
        self.profile(self.exercise)

    def profile(self, exercise: str) -> RepProfile:
        """The rules for ``exercise``; ConfigError if unknown."""
        try:
            return self.profiles[exercise]
        except (KeyError, TypeError):
            raise ConfigError(
                f"unknown exercise {exercise!r} for rep counting; choose one of {', '.join(self.profiles)}"
            ) from None


@dataclass(frozen=True)
class RepRecord:
    """One rep, with its metrics. Times are device seconds; angles degrees.

    ``peak_extension_deg`` is the smallest lumbar angle in the rep (negative =
    extended); ``range_deg`` = peak flexion - peak extension. ``time_under_tension_s``
    is the rep's duration (eccentric + pause + concentric). Peaks of lateral
    bend, twist and trunk inclination are ``None`` when those inputs were not
    given; lateral and twist peaks are signed (the value of largest magnitude).
    """

    set: int
    rep: int
    exercise: str
    t_start: float
    t_end: float
    time_under_tension_s: float
    peak_flexion_deg: float
    peak_extension_deg: float
    range_deg: float
    peak_sagittal_velocity_deg_s: float
    peak_excursion_deg: float
    peak_lateral_deg: float | None
    peak_twist_deg: float | None
    peak_trunk_deg: float | None
    labelled: bool  # the set came from the lifter's label (else found automatically)

    def as_dict(self) -> dict:
        d: dict[str, Any] = {"type": "rep"}
        for k, v in asdict(self).items():
            d[k] = round(v, 4) if isinstance(v, float) else v
        return d


@dataclass(frozen=True)
class SetRecord:
    """One set, reported when it closes (rest gap, walking, a new label, or :meth:`RepSegmenter.finish`)."""

    set: int
    exercise: str
    t_start: float  # start of its first rep (or the label time if it has none)
    t_end: float  # end of its last rep
    reps: int
    labelled: bool

    def as_dict(self) -> dict:
        d: dict[str, Any] = {"type": "set"}
        for k, v in asdict(self).items():
            d[k] = round(v, 4) if isinstance(v, float) else v
        return d


@dataclass(frozen=True)
class RejectedCandidate:
    """A motion that looked like a rep but was not counted, and why:
    ``"too_short"``, ``"too_long"``, ``"stuck"``, ``"walking"``, ``"after_walking"``,
    ``"through_the_range"`` (a lone bend through the lumbar range: a warm-up
    stretch, or a rounded lift, whose alert stands on its own), ``"isolated"``
    (an unlabelled run with too few reps), ``"gap"`` (hole in the stream),
    ``"incomplete"`` (the stream ended mid-rep)."""

    t_start: float
    t_end: float
    peak_excursion_deg: float
    reason: str


# ---------------------------------------------------------------------------
# internal state
# ---------------------------------------------------------------------------
_IDLE, _REP, _SETTLE = 0, 1, 2


class _Stats:
    """Peaks of one motion, frozen when its candidate ended (from the kernel's event)."""

    __slots__ = ("emax", "fmax", "fmin", "lat", "trunk", "tw", "wy")

    def __init__(
        self, fmax: float, fmin: float, wy: float, lat: float, tw: float, trunk: float, emax: float
    ) -> None:
        self.fmax = fmax
        self.fmin = fmin
        self.wy = wy
        self.lat = None if math.isnan(lat) else lat
        self.tw = None if math.isnan(tw) else tw
        self.trunk = None if math.isnan(trunk) else trunk
        self.emax = emax


@dataclass
class _Candidate:
    t_start: float
    t_end: float
    stats: _Stats
    exercise: str
    after_walk: bool = False  # it began straight after walking (never a set of one on its own)
    #: measured on the gravity excursion for a lift whose reps are smaller than it
    #: resolves (a curl, a press): it counts only in a set a gyro-measured rep confirms
    unconfirmed: bool = False


@dataclass
class _Run:
    """Reps that belong together (a set, or an unlabelled run not yet confirmed)."""

    exercise: str
    number: int | None  # None until confirmed (unlabelled)
    labelled: bool
    t_label: float | None
    reps: list[_Candidate] = field(default_factory=list)


class RepSegmenter:
    """Streaming rep and set segmentation.

    >>> seg = RepSegmenter(rate=100.0, settings=RepSettings(exercise="deadlift"))
    >>> for block in blocks:
    ...     for rec in seg.update(block.t, flexion_deg=..., upper_gyr=..., lower_gyr=...):
    ...         print(rec)
    >>> seg.finish()

    Args:
        rate: sample rate, Hz (sets the filter coefficients).
        settings: :class:`RepSettings`.

    Attributes:
        reps: every :class:`RepRecord` so far; ``sets``: every closed :class:`SetRecord`;
        rejected: every :class:`RejectedCandidate` (why a motion was not counted);
        walking: the wearer is walking now; excursion_deg: the excursion at the last sample.
    """

    def __init__(self, rate: float, settings: RepSettings | None = None) -> None:
        if not _is_real(rate) or not math.isfinite(rate) or not 1.0 <= rate <= 10000.0:
            raise ConfigError(f"rate must be a finite number in 1..10000 Hz, got {rate!r}")
        self.rate = float(rate)
        self.settings = settings or RepSettings()
        self.exercise = self.settings.exercise
        self._profile = self.settings.profile(self.exercise)
        self.reps: list[RepRecord] = []
        self.sets: list[SetRecord] = []
        self.rejected: list[RejectedCandidate] = []
        self._next_set = 1
        self._run: _Run | None = None
        self._pending: list[_Candidate] = []  # ended, waiting confirm_delay_s
        self._out: list[RepRecord | SetRecord] = []
        # the numeric state lives in two arrays the kernel advances (rep_kernel)
        self._F, self._I = K.new_state()
        self._P = self._parameters()
        #: per sample of the last block given to :meth:`update`: inside a set
        #: (see :attr:`in_set`) -- the pipeline watches limits only there
        self.in_set_mask: np.ndarray = np.zeros(0, dtype=bool)
        #: per sample of the last block: the wearer is walking
        self.walking_mask: np.ndarray = np.zeros(0, dtype=bool)
        #: per sample of the last block: less than ``arm_after_walk_s`` after
        #: walking, or a motion is in progress that began then (stepping
        #: straight into a bend: handling gear, sitting down)
        self.after_walk_mask: np.ndarray = np.zeros(0, dtype=bool)
        #: for the last block: the index of the sample at which each record
        #: :meth:`update` returned became known (same order as the records)
        self.emitted_at: list[int] = []
        #: for the last block: ``(index, current_set, current_rep)`` at every
        #: sample where the set or rep in progress changed (after that sample's step)
        self.context_changes: list[tuple[int, int | None, int | None]] = []
        self._context_prev: tuple[int | None, int | None] = (None, None)
        #: a lone bend whose lumbar flexion reached this went through the range
        #: (a toe touch, or a rounded lift whose alert stands on its own): no
        #: set of one (None: not told; the segmenter sets it from the range
        #: of motion and the warm-up share, two sensors only)
        self.single_max_flexion_deg: float | None = None
        #: rules 8 (``RepSettings.remeasure``): the calls since the first block,
        #: kept to measure them again once the tilt filter has learnt (None: not kept)
        self._log: list[tuple[str, dict]] | None = [] if self.settings.remeasure else None
        #: rules 8: a rep measured again that ended before this (where the bias became known)
        #: is no evidence of a set: a walk's first lean sways the trunk as a curl does (gait-l5 14-2)
        self._told_from = -math.inf

    def _parameters(self) -> np.ndarray:
        s, p = self.settings, self._profile
        dt = 1.0 / self.rate
        P = np.zeros(K.N_PARAM)
        P[K.P_RATE] = self.rate
        P[K.P_MAX_GAP] = s.max_gap_s
        P[K.P_A_QUIET] = 1.0 - math.exp(-dt / s.quiet_tau_s)
        P[K.P_A_WALK] = 1.0 - math.exp(-dt / s.walk_tau_s)
        P[K.P_LEAK] = math.exp(-dt / s.idle_leak_tau_s)
        P[K.P_A_BIAS] = 1.0 - math.exp(-dt / s.bias_tau_s)
        P[K.P_A_BIAS_FAST] = 1.0 - math.exp(-dt / s.bias_jump_tau_s)
        P[K.P_A_STILL] = 1.0 - math.exp(-dt / s.still_tau_s)
        P[K.P_QUIET] = s.quiet_deg_s
        P[K.P_STILL_STD2] = s.still_std_deg_s**2
        P[K.P_STILL_MAX2] = s.still_max_deg_s**2
        P[K.P_QUIET2] = s.quiet_deg_s**2
        P[K.P_STILL_MIN] = s.still_min_s
        P[K.P_STILL_LONG] = s.still_long_s
        P[K.P_WALK] = s.walk_deg_s
        P[K.P_WALK_MIN] = s.walk_min_s
        P[K.P_WALK_RELEASE] = s.walk_release_deg_s
        P[K.P_REST_QUIET] = s.rest_quiet_s
        P[K.P_EXIT_FRACTION] = s.exit_fraction
        P[K.P_STUCK] = s.stuck_s
        P[K.P_SETTLE] = s.settle_s
        P[K.P_WARMUP_N] = s.warmup_s * self.rate
        P[K.P_WARMUP_TIMEOUT] = s.warmup_timeout_s
        P[K.P_ARM_AFTER_WALK] = s.arm_after_walk_s
        P[K.P_ENTER] = p.enter_deg
        P[K.P_MAX_REP] = p.max_rep_s
        P[K.P_EXIT_RELATIVE] = 1.0 if s.exit_relative else 0.0
        P[K.P_A_TILT] = 1.0 - math.exp(-dt / s.tilt_tau_s)
        # the tilt-bias filter: s^2 + kp s + ki, ki = kp / tau_b (kp = 1/tau_p)
        P[K.P_TILT_KP] = 1.0 / s.tilt_pull_tau_s
        P[K.P_TILT_KI] = P[K.P_TILT_KP] / s.tilt_bias_tau_s
        P[K.P_TILT_LEARNT_S] = 3.0 * s.tilt_bias_tau_s
        P[K.P_TILT_CLIP] = math.radians(s.tilt_clip_deg)
        P[K.P_BIAS_TOL] = p.enter_deg / s.idle_leak_tau_s if s.bias_check and s.tilt_bias else 0.0
        P[K.P_STILL_TAU] = s.still_tau_s
        small = p.enter_deg < s.gravity_min_enter_deg
        P[K.P_REST_AWAY] = 0.25 * p.enter_deg if s.rest_away and s.tilt_bias and small else 0.0
        P[K.P_BIAS_IDLE] = 1.0 if s.bias_idle and P[K.P_REST_AWAY] > 0.0 and P[K.P_BIAS_TOL] > 0.0 else 0.0
        return P

    # -- public state ------------------------------------------------------
    @property
    def walking(self) -> bool:
        """The wearer is walking now."""
        return bool(self._I[K.WALKING])

    def tilt_bias(self) -> dict[str, np.ndarray]:
        """The gyro bias the tilt filter has learnt across gravity in motion
        (``RepSettings.tilt_bias`` with ``tilt_gravity``: each sensor's own
        frame), rad/s per sensor (``"upper"``, and ``"lower"`` with two); the
        part along gravity it cannot see stays near 0. Empty when the filter
        has not run (a big lift, or no data yet)."""
        F = self._F
        if not (self.settings.tilt_bias and self.settings.tilt_gravity) or not F[K.T_TILT] > 0.0:
            return {}
        out = {}
        for name, g, b in (("upper", K.MGU, K.MBU), ("lower", K.MGL, K.MBL)):
            if not math.isnan(F[g]):  # (a sensor the filter never saw: no gravity estimate)
                out[name] = np.radians(np.array(F[b : b + 3], dtype=np.float64))
        return out

    @property
    def excursion_deg(self) -> float:
        """The excursion at the last sample, deg."""
        return float(self._F[K.EXCURSION])

    @property
    def _state(self) -> int:
        return int(self._I[K.STATE])

    @property
    def _t_last(self) -> float | None:
        t = float(self._F[K.T_LAST])
        return None if math.isnan(t) else t

    @property
    def current_set(self) -> int | None:
        """Number of the open set when it is known (labelled or confirmed), else None."""
        r = self._run
        return r.number if r is not None else None

    @property
    def current_rep(self) -> int | None:
        """Number of the rep in progress, when known; None between reps or while the set is unconfirmed."""
        r = self._run
        if r is None or r.number is None or self._state == _IDLE:
            return None
        return len(r.reps) + len(self._pending) + 1

    @property
    def in_set(self) -> bool:
        """The lifter is inside a set now: a labelled set is open, or an
        automatically found one is confirmed, or this motion follows an
        accepted/pending rep closely enough to be its set's next rep (so the
        second rep of an unlabelled set is watched already), or a rep is in
        progress that began from a stance (not within ``arm_after_walk_s`` of
        walking): so the first bad rep of an unlabelled set alerts. False while
        walking, and between sets (after walking or ``rest_gap_s`` of no reps):
        a plate picked up on the way, sitting down or walking are not in a set."""
        if self.walking:
            return False
        if self._run_known():
            return True
        F = self._F
        t_walk_last = F[K.T_WALK_LAST]
        if self._state != _IDLE and (
            math.isnan(t_walk_last) or F[K.T_START] - t_walk_last >= self.settings.arm_after_walk_s
        ):
            return True  # a rep in progress from a stance: its set is not known yet, its limits are
        return self._reps_waiting() >= self._armed_after

    @property
    def _armed_after(self) -> int:
        return max(1, self.settings.min_reps_unlabelled - 1)

    def _run_known(self) -> bool:
        r = self._run
        return r is not None and (r.labelled or r.number is not None)

    def _reps_waiting(self) -> int:
        r = self._run
        return len(self._pending) + (len(r.reps) if r is not None else 0)

    @property
    def ready(self) -> bool:
        """The residual gyro bias has been learnt (``warmup_s`` of stillness) or
        ``warmup_timeout_s`` of data has passed; no rep starts before."""
        F, P = self._F, self._P  # the rule the kernel applies, on its parameters
        if self._I[K.BIAS_N] >= P[K.P_WARMUP_N]:
            return True
        return not math.isnan(F[K.T_FIRST]) and F[K.T_LAST] - F[K.T_FIRST] >= P[K.P_WARMUP_TIMEOUT]

    @property
    def motion(self) -> str:
        """``"walking"``, ``"idle"``, ``"rep"`` (going out) or ``"settling"`` (coming back)."""
        if self.walking:
            return "walking"
        return ("idle", "rep", "settling")[self._state]

    #: what :meth:`state` carries: everything but the settings (``rate``, ``settings``)
    _STATE_FIELDS = (
        "exercise", "_profile", "reps", "sets", "rejected", "_next_set", "_pending", "_out",
        "_F", "_I", "_P", "in_set_mask", "walking_mask", "after_walk_mask", "emitted_at",
        "context_changes", "_context_prev", "single_max_flexion_deg", "_log", "_told_from",
    )  # fmt: skip

    def state(self) -> StageState:
        """The segmenter's state as a value (:class:`spinemon.core.stage.Stage`):
        the kernel's arrays, the records, the open run and the waiting reps."""
        out = fields_of(self, self._STATE_FIELDS)
        r = self._run
        out["_run"] = None if r is None else replace(r, reps=list(r.reps))
        return out

    def restore(self, state: StageState) -> None:
        """Go on from :meth:`state` (of a segmenter with the same rate and settings)."""
        set_fields(self, state, self._STATE_FIELDS)
        r = state["_run"]
        self._run = None if r is None else replace(r, reps=list(r.reps))

    def reframe(self) -> None:
        """The lumbar angle given from the next sample on is expressed anew (a
        new neutral, a heading found): the body did not move, so the rep
        counter's reference angle moves with it (gravity mode)."""
        self._I[K.REFRAME] = 1
        if self._log is not None:
            self._log.append(("reframe", {}))

    def regravity(self) -> None:
        """The gravity directions given from the next sample on were estimated
        anew (rules 5: the fusion restarted on a still neutral), the body did
        not move: the tilt rate that tells quiet starts again from the next
        sample rather than read the step as motion."""
        self._F[K.PGU : K.PGL + 3] = math.nan
        if self._log is not None:
            self._log.append(("regravity", {}))

    # -- labels --------------------------------------------------------------
    def start_set(
        self, exercise: str | None = None, set_number: int | None = None, t: float | None = None
    ) -> None:
        """The lifter says a new set starts now (of ``exercise``; numbered
        ``set_number`` or the next number). Reps are numbered from 1 within it.
        ``t``: device time of the label (defaults to the last sample's time).
        Reps already finished belong to the set before; a rep in progress counts in the new one."""
        self._log = None  # (rules 8) a labelled set reports its reps as they come: not measured again
        if exercise is not None:
            self.settings.profile(exercise)
        if set_number is not None and (
            isinstance(set_number, bool) or not isinstance(set_number, (int, np.integer)) or set_number < 1
        ):
            raise ConfigError(f"set_number must be an integer >= 1, got {set_number!r}")
        t_label = float(t) if t is not None else (self._t_last if self._t_last is not None else math.nan)
        for c in self._pending:
            self._accept(c, t_label)
        self._pending = []
        self._close_run(t_label)
        if exercise is not None:
            self.exercise = exercise
            self._profile = self.settings.profile(exercise)
            self._P = self._parameters()
        number = int(set_number) if set_number is not None else self._next_set
        self._next_set = max(self._next_set, number + 1)
        self._run = _Run(self.exercise, number, True, t_label)

    def end_set(self, t: float | None = None) -> list[RepRecord | SetRecord]:
        """Close the open set now (the lifter moved on to something that is
        not counted in reps, e.g. a plank); returns the records that became known."""
        self._log = None
        t_end = float(t) if t is not None else (self._t_last if self._t_last is not None else math.nan)
        for c in self._pending:
            self._accept(c, t_end)
        self._pending = []
        self._close_run(t_end)
        out, self._out = self._out, []
        return out

    # -- data path -----------------------------------------------------------
    def update(self, t: object, **kw: Any) -> list[RepRecord | SetRecord]:
        """Feed one block (see :meth:`_update` for the arguments); returns the
        reps and sets that became known in it. With ``RepSettings.remeasure``
        (rules 8), a small lift's first blocks are kept until the tilt filter
        has learnt the bias, then measured again with it (:meth:`_remeasure`)."""
        log = self._log
        if log is not None:
            log.append(
                ("update", {"t": np.array(t, dtype=np.float64), **{k: _kept(v) for k, v in kw.items()}})
            )
        out = self._update(t, **kw)
        if log is None or self._log is None:
            return out
        F = self._F
        tt = np.asarray(t, dtype=np.float64)
        switched = not math.isnan(F[K.T_MODE2])
        j = int(np.searchsorted(tt, F[K.T_MODE2])) if switched else len(tt)
        # reported before the bias was known (or a label, a still-learnt bias, too long a wait): as it is
        reported = [i for i in self.emitted_at if i < j]
        t_span = float(tt[-1]) - float(log[0][1]["t"][0]) if len(tt) and len(log[0][1]["t"]) else 0.0
        if reported or int(self._I[K.GYRO_MODE]) == 1 or t_span > _REMEASURE_MAX_S:
            self._log = None
            return out
        if not switched:
            return out
        return self._remeasure(j, len(tt))

    def _remeasure(self, j: int, n: int) -> list[RepRecord | SetRecord]:
        """Rules 8: the blocks since the first, measured again by a new
        segmenter on the gyro with the tilt bias known at sample ``j`` of the
        last block (where it became known) from the first sample on. Its
        records are reported at ``j`` (those that became known by then) or
        where they became known; before ``j`` the last block keeps this
        segmenter's per-sample masks, from ``j`` on the new one's."""
        log, self._log = self._log, None
        assert log is not None
        F, P = self._F, self._P
        new = RepSegmenter(self.rate, self.settings)
        new._log = None
        new._told_from = float(F[K.T_MODE2])
        new.single_max_flexion_deg = self.single_max_flexion_deg
        G = new._F
        G[K.MBU : K.MBU + 3] = F[K.MB2U : K.MB2U + 3]
        G[K.MBL : K.MBL + 3] = F[K.MB2L : K.MB2L + 3]
        G[K.T_TILT] = P[K.P_TILT_LEARNT_S]
        G[K.T_MODE2] = F[K.T_MODE2]
        G[K.MB2U : K.MB2L + 3] = F[K.MB2U : K.MB2L + 3]
        new._I[K.GYRO_MODE] = 2
        early: list[RepRecord | SetRecord] = []
        last = len(log) - 1
        while log[last][0] != "update":
            last -= 1
        ctx_before = new._context_prev
        recs: list[RepRecord | SetRecord] = []
        for k, (what, kw) in enumerate(log):
            if what == "reframe":
                new.reframe()
            elif what == "regravity":
                new.regravity()
            elif k < last:
                early += new._update(**kw)
            else:
                ctx_before = new._context_prev
                recs = new._update(**kw)
        old_in_set, old_after = self.in_set_mask, self.after_walk_mask
        old_changes = [c for c in self.context_changes if c[0] < j]
        self.restore(new.state())
        self._log = None
        self.in_set_mask = np.concatenate([old_in_set[:j], new.in_set_mask[j:]])
        self.after_walk_mask = np.concatenate([old_after[:j], new.after_walk_mask[j:]])
        ctx = ctx_before
        for c in new.context_changes:
            if c[0] <= j:
                ctx = (c[1], c[2])
        changes = old_changes + ([(j, *ctx)] if j < n and ctx != (None, None) else [])
        self.context_changes = changes + [c for c in new.context_changes if c[0] > j]
        self.emitted_at = [j] * len(early) + [max(i, j) for i in new.emitted_at]
        return early + recs

    def _update(
        self,
        t: object,
        *,
        flexion_deg: object,
        upper_gyr: object,
        lower_gyr: object = None,
        trunk_deg: object = None,
        lateral_deg: object = None,
        twist_deg: object = None,
        upper_gravity: object = None,
        lower_gravity: object = None,
        upper_acc: object = None,
        lower_acc: object = None,
        upper_rotation: object = None,
        lower_rotation: object = None,
    ) -> list[RepRecord | SetRecord]:
        """Feed one block; returns the reps and sets that became known in it.

        Args:
            t: (n,) device time, s, increasing.
            flexion_deg: (n,) lumbar flexion (or single-sensor inclination), deg.
            upper_gyr: (n, 3) upper sensor's gyro in its body frame, rad/s
                (``mounting.to_body(block.gyr["upper"])``). Pass the *raw*
                gyro: the segmenter learns the residual bias itself, and the
                fusion's bias estimate jumps when it first learns, which looks
                like motion for a second (handled, but it can cost a set).
            lower_gyr: (n, 3) lower sensor's, likewise; None with one IMU.
            trunk_deg: (n,) upper sagittal inclination (for ``peak_trunk_deg``), optional.
            lateral_deg, twist_deg: (n,) for the lateral/twist peaks, optional.
            upper_gravity, lower_gravity: (n, 3) unit gravity directions, each
                sensor's frame; with ``RepSettings.gravity_excursion`` the excursion is
                measured on them (see :mod:`spinemon.core.rep_kernel`).
            upper_acc, lower_acc: (n, 3) accelerometers, body frame (m/s^2);
                with ``RepSettings.tilt_bias`` the gyro bias across gravity is
                learnt from them (``lower_acc`` with ``lower_gyr``).
            upper_rotation, lower_rotation: (3, 3) each sensor's body_from_sensor
                rotation (its mounting) for this block; with
                ``RepSettings.tilt_gravity`` (and ``tilt_bias``) the tilt filter
                runs in the sensor frames (see :attr:`RepSettings.tilt_gravity`).

        Raises:
            RepInputError: shapes disagree, values are not finite, or time goes back.
        """
        tt = _array("t", t, 1)
        n = tt.shape[0]
        fl = _array("flexion_deg", flexion_deg, 1, n)
        gu = _array("upper_gyr", upper_gyr, 2, n)
        gl = None if lower_gyr is None else _array("lower_gyr", lower_gyr, 2, n)
        tr = None if trunk_deg is None else _array("trunk_deg", trunk_deg, 1, n)
        la = None if lateral_deg is None else _array("lateral_deg", lateral_deg, 1, n)
        tw = None if twist_deg is None else _array("twist_deg", twist_deg, 1, n)
        if n and (np.any(np.diff(tt) <= 0) or (self._t_last is not None and tt[0] <= self._t_last)):
            raise RepInputError("t must be strictly increasing across blocks")
        # the numbers, sample by sample (rep_kernel) ...
        gu_d = np.ascontiguousarray(gu * _R2D)
        gl_d = gu_d if gl is None else np.ascontiguousarray(gl * _R2D)
        # the gravity excursion resolves a degree or two (linear acceleration, sway): the reps
        # of a lift whose reps are smaller (curls, presses, rows) it finds are unconfirmed
        # until a gyro-measured rep joins their set (_Candidate.unconfirmed)
        c = np.ascontiguousarray  # one compiled signature: contiguous float arrays
        grav = self.settings.gravity_excursion and upper_gravity is not None
        ug = _array("upper_gravity", upper_gravity, 2, n) if grav else gu
        lg = (
            (_array("lower_gravity", lower_gravity, 2, n) if lower_gravity is not None else ug)
            if grav
            else gu
        )
        # (only for the lifts whose reps the gravity excursion cannot tell from sway: a
        # hinge's or a squat's it measures with no bias at all)
        small = self._profile.enter_deg < self.settings.gravity_min_enter_deg
        tilt = (
            self.settings.tilt_bias
            and small
            and upper_acc is not None
            and (gl is None or lower_acc is not None)
        )
        ua = c(_array("upper_acc", upper_acc, 2, n)) if tilt else gu_d
        lac = c(_array("lower_acc", lower_acc, 2, n)) if tilt and gl is not None else ua
        # rules 4: the sensors' mountings, for the tilt filter in their own frames
        sensor_frame = tilt and self.settings.tilt_gravity and upper_rotation is not None
        if not sensor_frame:
            self._log = (
                None  # (rules 8) only a small lift's tilt filter in the sensor frames is measured again
            )
        rot = np.zeros((6, 3))
        if sensor_frame:
            rot[:3] = _rotation("upper_rotation", upper_rotation)
            rot[3:] = rot[:3] if gl is None else _rotation("lower_rotation", lower_rotation)
        has = np.array(
            [
                gl is not None,
                tr is not None,
                la is not None,
                tw is not None,
                grav and (gl is None or lower_gravity is not None),
                tilt,
                sensor_frame,
            ],
            dtype=np.int64,
        )
        state_mid = np.empty(n, dtype=np.int8)
        state_out = np.empty(n, dtype=np.int8)
        walking = np.empty(n, dtype=np.bool_)
        stance = np.empty(n, dtype=np.bool_)
        cap = K.MAX_EVENTS_PER_SAMPLE * n + 1
        ev_i = np.empty(cap, dtype=np.int64)
        ev_code = np.empty(cap, dtype=np.int64)
        ev_f = np.empty((cap, K.N_EVENT_FIELDS))
        t_walk_before = float(self._F[K.T_WALK_LAST])
        tt, fl = c(tt), c(fl)
        ne = K.advance(
            tt, fl, gu_d, gl_d, fl if tr is None else c(tr), fl if la is None else c(la), fl if tw is None else c(tw),
            has, self._F, self._I, self._P, state_mid, state_out, walking, stance, ev_i, ev_code, ev_f, c(ug), c(lg), ua, lac, rot,
        )  # fmt: skip
        # ... then the bookkeeping, event by event (candidates, runs, sets)
        book = _Bookkeeping(self, tt, state_mid)
        k = 0
        lo = 0
        while True:
            i = int(ev_i[k]) if k < ne else n
            book.checks(lo, i)
            if i == n:
                break
            while k < ne and ev_i[k] == i and K.PHASE[ev_code[k]] < 2:
                self._on_event(int(ev_code[k]), ev_f[k], i, book)
                k += 1
            book.checks(i, i + 1)
            while k < ne and ev_i[k] == i:
                self._on_event(int(ev_code[k]), ev_f[k], i, book)
                k += 1
            lo = i + 1
        self.in_set_mask, self.context_changes = book.per_sample(state_out, walking, stance)
        self.walking_mask = walking
        # the last walking sample as of each sample (NaN: none yet), for the moments straight after walking
        idx = np.maximum.accumulate(np.where(walking, np.arange(n), -1)) if n else np.zeros(0, dtype=np.int64)
        last_walk = np.where(idx >= 0, tt[np.maximum(idx, 0)], t_walk_before)
        with np.errstate(invalid="ignore"):
            just_after = tt - last_walk < self.settings.arm_after_walk_s
        self.after_walk_mask = ((state_out != _IDLE) & ~stance | just_after) & ~walking
        self.emitted_at = book.emitted
        out, self._out = self._out, []
        return out

    def finish(self) -> list[RepRecord | SetRecord]:
        """End of the stream: accept waiting reps, drop a rep in progress, close the open set."""
        t = self._t_last if self._t_last is not None else math.nan
        F = self._F
        if self._state == _SETTLE:
            self._end_candidate(self._candidate_now(t))
        elif self._state == _REP:
            self._reject(F[K.T_START], t, F[K.ST_EMAX], "incomplete")
        K.reset_motion(F, self._I, t)
        for c in self._pending:
            self._accept(c, t)
        self._pending = []
        self._close_run(t)
        out, self._out = self._out, []
        return out

    # -- internals -------------------------------------------------------------
    def _candidate_now(self, t_end: float) -> _Candidate:
        F = self._F
        stats = _Stats(
            *(float(F[j]) for j in (K.ST_FMAX, K.ST_FMIN, K.ST_WY, K.ST_LAT, K.ST_TW, K.ST_TRUNK, K.ST_EMAX))
        )
        return _Candidate(float(F[K.T_START]), t_end, stats, self.exercise)

    def _on_event(self, code: int, f: np.ndarray, i: int, book: _Bookkeeping) -> None:
        if code == K.EV_GAP_REJECT:
            self._reject(f[0], f[1], f[2], "gap")
        elif code == K.EV_WALK_REJECT:
            self._reject(f[0], f[1], f[2], "walking")
        elif code == K.EV_WALK:
            self._start_walking(float(f[0]), float(f[1]))
        elif code == K.EV_TOO_LONG:
            self._reject(f[0], f[1], f[2], "too_long")
        elif code == K.EV_STUCK:
            self._reject(f[0], f[1], f[2], "stuck")
        else:
            stats = _Stats(*(float(x) for x in f[2:9]))
            small = self._profile.enter_deg < self.settings.gravity_min_enter_deg
            self._end_candidate(
                _Candidate(
                    float(f[0]),
                    float(f[1]),
                    stats,
                    self.exercise,
                    after_walk=bool(f[9]),
                    unconfirmed=(bool(f[10]) or float(f[1]) < self._told_from) and small,
                )
            )
        book.changed(i)

    def _end_candidate(self, c: _Candidate) -> None:
        if c.t_end - c.t_start < self._profile.min_rep_s:
            self._reject(c.t_start, c.t_end, c.stats.emax, "too_short")
            return
        self._pending.append(c)

    def _start_walking(self, onset: float, t: float) -> None:
        """The kernel found walking (and rejected a motion in progress, and reset it)."""
        s = self.settings
        keep = []
        for c in self._pending:
            if c.t_end >= onset - s.walk_margin_s:
                self._reject(c.t_start, c.t_end, c.stats.emax, "walking")
            else:
                keep.append(c)
        for c in keep:
            self._accept(c, t)
        self._pending = []
        r = self._run
        if r is not None and not (r.labelled and not r.reps):
            self._close_run(onset)

    def _accept(self, c: _Candidate, t: float) -> None:
        s = self.settings
        r = self._run
        if r is not None and r.reps and c.t_start - r.reps[-1].t_end > s.rest_gap_s:
            self._close_run(t)
            r = None
        if r is None:
            r = self._run = _Run(c.exercise, None, False, None)
        r.reps.append(c)
        if r.number is None:
            told = sum(not x.unconfirmed for x in r.reps)
            if len(r.reps) >= s.min_reps_unlabelled and (
                told >= s.min_reps_unlabelled if s.told_reps_confirm else told > 0
            ):
                r.number = self._next_set
                self._next_set += 1
                for k, cc in enumerate(r.reps, 1):
                    self._emit_rep(r, k, cc)
        else:
            self._emit_rep(r, len(r.reps), c)

    def _emit_rep(self, r: _Run, k: int, c: _Candidate) -> None:
        st = c.stats
        assert r.number is not None
        rec = RepRecord(
            set=r.number,
            rep=k,
            exercise=r.exercise,
            t_start=c.t_start,
            t_end=c.t_end,
            time_under_tension_s=c.t_end - c.t_start,
            peak_flexion_deg=st.fmax,
            peak_extension_deg=st.fmin,
            range_deg=st.fmax - st.fmin,
            peak_sagittal_velocity_deg_s=st.wy,
            peak_excursion_deg=st.emax,
            peak_lateral_deg=st.lat,
            peak_twist_deg=st.tw,
            peak_trunk_deg=st.trunk,
            labelled=r.labelled,
        )
        self.reps.append(rec)
        self._out.append(rec)

    def _close_run(self, t: float) -> None:
        r = self._run
        self._run = None
        if r is None:
            return
        if r.number is None:
            s_min = self.settings.single_min_deg
            one = r.reps[0]
            warmup = self.single_max_flexion_deg is not None and one.stats.fmax >= self.single_max_flexion_deg
            if (
                s_min is not None
                and len(r.reps) == 1
                and one.stats.emax >= s_min
                and not one.after_walk
                and not warmup
            ):
                r.number = self._next_set  # a set of one
                self._next_set += 1
                self._emit_rep(r, 1, r.reps[0])
            else:
                for c in r.reps:
                    why = "isolated"
                    if all(x.unconfirmed for x in r.reps):
                        why = "sway"  # too small for the gravity excursion to tell from standing sway, and no gyro-measured rep followed
                    elif len(r.reps) == 1 and c.after_walk:
                        why = "after_walking"
                    elif len(r.reps) == 1 and warmup:
                        why = "through_the_range"
                    self._reject(c.t_start, c.t_end, c.stats.emax, why)
                return
        if r.reps:
            t0, t1 = r.reps[0].t_start, r.reps[-1].t_end
        else:
            t0 = t1 = r.t_label if r.t_label is not None else t
        rec = SetRecord(r.number, r.exercise, t0, t1, len(r.reps), r.labelled)
        self.sets.append(rec)
        self._out.append(rec)

    def _reject(self, t0, t1, emax, reason: str) -> None:
        self.rejected.append(
            RejectedCandidate(float(t0) if t0 is not None else math.nan, float(t1), float(emax), reason)
        )


class _Bookkeeping:
    """The segmenter's Python side for one block: each sample's bookkeeping
    point (waiting candidates accepted once ``confirm_delay_s`` old, a run
    with nothing new for ``rest_gap_s`` closed), found with array searches
    between the kernel's events instead of sample by sample; and what the
    sets and reps were after every sample (for ``in_set_mask`` and
    ``context_changes``)."""

    def __init__(self, seg: RepSegmenter, t: np.ndarray, state_mid: np.ndarray) -> None:
        self.seg = seg
        self.t = t
        self.state_mid = state_mid
        self.emitted: list[int] = []
        self._n_out = len(seg._out)
        self._initial = self._snapshot()
        self._marks: list[tuple[int, tuple[bool, int, int]]] = []

    def _snapshot(self) -> tuple[bool, int, int]:
        seg = self.seg
        r = seg._run
        number = r.number if r is not None and r.number is not None else -1
        return (seg._run_known(), seg._reps_waiting(), number)

    def changed(self, i: int) -> None:
        """The Python state may have changed at sample ``i``."""
        out = self.seg._out
        if len(out) != self._n_out:
            self.emitted.extend([i] * (len(out) - self._n_out))
            self._n_out = len(out)
        snap = self._snapshot()
        if self._marks and self._marks[-1][0] == i:
            self._marks[-1] = (i, snap)
        else:
            self._marks.append((i, snap))

    def checks(self, lo: int, hi: int) -> None:
        """The bookkeeping point of samples ``lo..hi-1`` (no kernel event among them)."""
        seg, t, s = self.seg, self.t, self.seg.settings
        while lo < hi:
            if seg._pending:
                hit = np.flatnonzero(t[lo:hi] - seg._pending[0].t_end >= s.confirm_delay_s)
                if not hit.size:
                    return
                j = lo + int(hit[0])
                tj = float(t[j])
                while seg._pending and tj - seg._pending[0].t_end >= s.confirm_delay_s:
                    seg._accept(seg._pending.pop(0), tj)
                r = seg._run
                if (
                    r is not None
                    and r.reps
                    and self.state_mid[j] == _IDLE
                    and not seg._pending
                    and tj - r.reps[-1].t_end > s.rest_gap_s
                ):
                    seg._close_run(tj)
            else:
                r = seg._run
                if r is None or not r.reps:
                    return
                hit = np.flatnonzero(
                    (self.state_mid[lo:hi] == _IDLE) & (t[lo:hi] - r.reps[-1].t_end > s.rest_gap_s)
                )
                if not hit.size:
                    return
                j = lo + int(hit[0])
                seg._close_run(float(t[j]))
            self.changed(j)
            lo = j + 1

    def per_sample(
        self, state_out: np.ndarray, walking: np.ndarray, stance: np.ndarray
    ) -> tuple[np.ndarray, list]:
        """``in_set`` after every sample, and where ``(current_set, current_rep)`` changed."""
        n = len(self.t)
        snaps = [self._initial] + [m[1] for m in self._marks]
        at = np.array([m[0] for m in self._marks], dtype=np.int64)
        pos = np.searchsorted(at, np.arange(n), side="right")  # 0 = the state before the block
        known = np.array([x[0] for x in snaps], dtype=bool)[pos]
        waiting = np.array([x[1] for x in snaps], dtype=np.int64)[pos]
        number = np.array([x[2] for x in snaps], dtype=np.int64)[pos]
        seg = self.seg
        in_set = ~walking & (known | stance | (waiting >= seg._armed_after))
        rep = np.where((number >= 0) & (state_out != _IDLE), waiting + 1, -1)
        p_set, p_rep = seg._context_prev
        prev_set = np.empty(n, dtype=np.int64)
        prev_rep = np.empty(n, dtype=np.int64)
        if n:
            prev_set[0] = -1 if p_set is None else p_set
            prev_rep[0] = -1 if p_rep is None else p_rep
            prev_set[1:] = number[:-1]
            prev_rep[1:] = rep[:-1]
        changes = []
        for i in np.flatnonzero((number != prev_set) | (rep != prev_rep)).tolist():
            cs, cr = int(number[i]), int(rep[i])
            changes.append((i, None if cs < 0 else cs, None if cr < 0 else cr))
        if n:
            cs, cr = int(number[-1]), int(rep[-1])
            seg._context_prev = (None if cs < 0 else cs, None if cr < 0 else cr)
        return in_set, changes


#: rules 8: the longest a small lift's first blocks are kept to be measured
#: again (s; the tilt filter learns in ``3 * tilt_bias_tau_s`` of data not walking)
_REMEASURE_MAX_S = 30.0


def _kept(v: object) -> object:
    """An input of :meth:`RepSegmenter.update` kept to be fed again: arrays copied."""
    return np.array(v, dtype=np.float64) if isinstance(v, (np.ndarray, list, tuple)) else v


def _rotation(name: str, v: object) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise RepInputError(f"{name} must be numeric") from None
    if a.shape != (3, 3) or not np.isfinite(a).all():
        raise RepInputError(f"{name} must be a finite (3, 3) rotation")
    return a


def _array(name: str, v: object, ndim: int, n: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise RepInputError(f"{name} must be numeric") from None
    if ndim == 1 and a.ndim != 1:
        raise RepInputError(f"{name} must have shape (n,), got {a.shape}")
    if ndim == 2 and (a.ndim != 2 or a.shape[1] != 3):
        raise RepInputError(f"{name} must have shape (n, 3), got {a.shape}")
    if n is not None and a.shape[0] != n:
        raise RepInputError(f"{name} has {a.shape[0]} rows, t has {n}")
    if not np.isfinite(a).all():
        raise RepInputError(f"{name} must be finite")
    return a


# ---- lumbopelvic rhythm: the hips' share of a hinge ------------------------------

MIN_LEAN_DEG = 15.0  # below this trunk lean the share of the hips is not meaningful


def pelvis_share(rep: dict) -> float | None:
    """Lumbopelvic rhythm of one rep: the share of the trunk's forward lean at
    the bottom that came from the pelvis (hip hinge) rather than the lumbar
    spine, 0..1. ``peak_trunk_deg`` is the upper sensor's lean, ``peak_flexion_deg``
    the lumbar angle between the sensors; None for one sensor or a small lean."""
    trunk = rep.get("peak_trunk_deg")
    flex = rep.get("peak_flexion_deg")
    if not isinstance(trunk, (int, float)) or not isinstance(flex, (int, float)) or trunk < MIN_LEAN_DEG:
        return None
    return max(0.0, min(1.0, (trunk - max(flex, 0.0)) / trunk))
