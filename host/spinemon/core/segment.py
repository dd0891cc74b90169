"""The segmentation stage: sets, reps, holds and warm-up bends.

The lifter's labels (:meth:`Segmenter.on_label`: ``{"set": n, "exercise":
name}``, a side for unilateral work) start sets and timed holds; without
labels, sets are found from runs of reps. Each block of angles gives a
:class:`Segments`: per sample whether the limits are *armed* (inside a set or
a running hold, or everywhere with ``monitor_between_sets``), and the points
inside the block where a rep or set became known and where the set and rep
in progress changed. The detection stage runs the block in those pieces
(:meth:`Segments.pieces`), so what a rep changes (the creep limit, the set
and rep stamped on an event, the drift check of an unlabelled set) starts
at its own sample: any split of the stream gives the same results.

Sets and reps come from :class:`~spinemon.core.reps.RepSegmenter` (raw
body-frame gyros: it learns its own residual bias while the wearer stands),
holds from :class:`~spinemon.core.holds.HoldTimer` (the upper sensor's tilt),
warm-up bends from :class:`~spinemon.core.drift.WarmupBends`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spinemon.core.angles import LumbarAngles, sagittal_deg
from spinemon.core.calibration import Calibration
from spinemon.core.detect import profile
from spinemon.core.drift import WarmupBends
from spinemon.core.gravity import Fused
from spinemon.core.holds import HoldTimer
from spinemon.core.reps import RepRecord, RepSegmenter, RepSettings, SetRecord
from spinemon.core.stage import StageState, fields_of, set_fields
from spinemon.core.unilateral import check_side, parse_exercise

__all__ = [
    "HELD_ARCH_BAND",
    "HELD_ARCH_HEADING",
    "HELD_ARCH_PRESS_HEADING",
    "HELD_BACK",
    "HELD_BEFORE_NEUTRAL",
    "HELD_LATERAL_HEADING",
    "HELD_SWING_HEADING",
    "HELD_TWIST_AXIS",
    "HELD_TWIST_BIAS",
    "HELD_WALKING",
    "Piece",
    "Segmenter",
    "Segments",
]

#: why a monitored sample's limits are not armed (``Segments.held``: 0 = armed).
#: Each is named to the lifter at the moment a fault is held back by it, and
#: counted by reason in the summary: a miss is never silent.
HELD_WALKING, HELD_AFTER_WALK, HELD_NO_HOLD, HELD_BETWEEN_SETS = 1, 2, 3, 4
#: one limit held back while what it needs is not known yet (rules 3; the
#: others stay armed: :class:`~spinemon.core.watch.LimitWatch`)
HELD_TWIST_BIAS, HELD_LATERAL_HEADING = 5, 6
#: a fault in the samples before the first neutral (rules 3): seen once neutral is set, too late to buzz
HELD_BEFORE_NEUTRAL = 7
#: a fault read under a provisional neutral taken mid-motion (rules 3): the
#: still neutral that replaced it shows the angle was past the limit
HELD_PROVISIONAL = 8
#: rules 7: an arch that did not read past the extension limit but may be past
#: it: a sensor's heading about the spine is unknown (a lunge or split squat)
HELD_ARCH_HEADING = 9
#: rules 8: the same for an overhead press: a sensor turned about the spine
#: reads part of the arch as lateral bend, and nothing in a press tells its heading
HELD_ARCH_PRESS_HEADING = 10
#: rules 8: the twist while neutral was taken bent over (the upper sensor's
#: standing gravity more than ``watch.TWIST_AXIS_TILT_DEG`` from its +X, the
#: spine as worn): the twist is measured about neutral's vertical, then not the spine
HELD_TWIST_AXIS = 11
#: rules 8: the same for a curl's lean back (a hip swing): no bend and no one-sided lean in it tells a heading
HELD_SWING_HEADING = 12
#: rules 9: an arch that did not read past the extension limit but may be past
#: it: a lunge's heading found from a rep on each side is off by up to its band
#: (``LeanHeadingFinder``), and the one-sided lean reads partly as flexion
HELD_ARCH_BAND = 13

HELD_BACK: dict[int, str] = {
    HELD_WALKING: "walking",
    HELD_AFTER_WALK: "stepping into a bend straight after walking (handling gear, sitting down)",
    HELD_NO_HOLD: "outside the timed hold (getting into or out of position)",
    HELD_BETWEEN_SETS: "between sets (recorded with limits watched inside sets only)",
    HELD_TWIST_BIAS: "twist: a gyro's bias is not learnt yet (stand still for 2 s)",
    HELD_LATERAL_HEADING: (
        "lateral bend: a sensor's heading about the spine is not known (no range sweep;"
        " a lunge tells it after a rep on each side)"
    ),
    HELD_BEFORE_NEUTRAL: "before neutral was set (the session's first moments): seen once it was, too late to buzz",
    HELD_PROVISIONAL: (
        "neutral was provisional (taken while moving): the still neutral found later shows this fault, too late to buzz"
    ),
    HELD_ARCH_HEADING: (
        "over-extension may be hidden: a sensor's heading about the spine is not known, so the one-sided lean"
        " reads partly as flexion (no range sweep yet; a rep on each side tells it)"
    ),
    HELD_ARCH_PRESS_HEADING: (
        "over-extension may be hidden: a sensor's heading about the spine is not known, so part of the arch"
        " reads as lateral bend (no range sweep; a press cannot tell it)"
    ),
    HELD_SWING_HEADING: (
        "over-extension may be hidden: a sensor's heading about the spine is not known, so a lean back"
        " reads partly as a side bend (no range sweep, stored calibration or hinge this session)"
    ),
    HELD_ARCH_BAND: (
        "over-extension may be hidden: the sensors' heading found from a rep on each side may be a few degrees off,"
        " so the one-sided lean reads partly as flexion"
    ),
    HELD_TWIST_AXIS: (
        "twist: neutral was taken bent over, so the twist is not measured about the spine"
        " (stand tall and still for 2 s to set it again)"
    ),
}


@dataclass(frozen=True)
class Piece:
    """Samples ``a:b`` of a block, between two points where something became known."""

    a: int
    b: int
    context: tuple | None  # (set, rep) in progress from sample a on; None: unchanged
    records: tuple  # reps and sets that became known at sample a
    set_starts: tuple  # (set, t_start): unlabelled sets whose first rep became known at sample a


@dataclass(frozen=True)
class Segments:
    """One block through the segmentation stage."""

    n: int
    armed: np.ndarray  # (n,) bool: the limits are watched
    held: np.ndarray  # (n,) int8: why not (0: armed; else a key of HELD_BACK)
    hold_on: np.ndarray | None  # (n,) bool: a hold is running (None: not a hold exercise)
    records_at: dict  # sample -> [RepRecord | SetRecord] that became known there
    context_at: dict  # sample -> (set, rep) in progress from there on

    def pieces(self):
        """The block cut where a record became known or the set/rep in progress changed."""
        cuts = sorted({0, *self.records_at, *self.context_at})
        for k, a in enumerate(cuts):
            b = cuts[k + 1] if k + 1 < len(cuts) else self.n
            recs = tuple(self.records_at.get(a, ()))
            starts = tuple(
                (r.set, r.t_start) for r in recs if isinstance(r, RepRecord) and r.rep == 1 and not r.labelled
            )
            yield Piece(a, b, self.context_at.get(a), recs, starts)


class Segmenter:
    """See the module. ``exercise`` and ``set_number``: as last labelled
    (the session's exercise before any label)."""

    def __init__(
        self,
        exercise: str,
        *,
        limit_overrides: dict | None = None,
        monitor_between_sets: bool = False,
        warmup_share: float = 0.6,
        arming: str = "exercise",
        tilt_bias: bool = False,
        tilt_gravity: bool = False,
        bias_check: bool = False,
        no_still_start: bool = False,
        bias_idle: bool = False,
    ) -> None:
        #: rules 3: the rep counter learns the gyro bias across gravity from the
        #: accelerometers, so small lifts are measured on the gyro without a still start
        self.tilt_bias = tilt_bias
        #: rules 4: that filter runs in each sensor's frame, and measures a small lift's first reps
        self.tilt_gravity = tilt_gravity
        #: rules 6: a small lift's still-learnt gyro bias is used only once the tilt filter confirms it
        self.bias_check = bias_check
        #: rules 8: a small lift with no still start: at rest only where it came to rest
        #: (RepSettings.rest_away), its first reps measured again once the bias is known (remeasure)
        self.no_still_start = no_still_start
        #: rules 9: with that, the still bias is checked against the tilt filter's on every idle sample
        self.bias_idle = bias_idle
        self.limit_overrides = limit_overrides or {}
        self.monitor_between_sets = monitor_between_sets
        #: "exercise": the limits are armed on every monitored sample but the
        #: ones a named reason holds back (walking, stepping into a bend
        #: straight after walking, outside a timed hold); "sets": inside sets
        #: only (recordings made before sets stopped deciding, replayed as they ran)
        self.arming = arming
        self.held_now = 0  # why the limits are not armed as of the last sample (0: armed)
        self._held_samples: dict[tuple[int, float], int] = {}  # (reason, rate) -> samples
        self.exercise = exercise
        self.set_number: int | None = None
        #: the side each labelled set was named with (None: not named)
        self.label_sides: dict[int, str | None] = {}
        self.reps: RepSegmenter | None = None  # starts with the first monitored block
        self.holds = HoldTimer()
        self.warmup = WarmupBends(warmup_share)
        self._pending_label: dict | None = None  # a set labelled before the first monitored block
        if self.profile.hold:
            self.holds.start(self.exercise, None, float("-inf"))

    @property
    def profile(self):
        return profile(self.exercise, self.limit_overrides)

    #: what :meth:`state` carries of its own (the rest: the rep segmenter, holds and warm-up bends)
    _STATE_FIELDS = ("held_now", "_held_samples", "exercise", "set_number", "label_sides", "_pending_label")

    def state(self) -> StageState:
        """The stage's state as a value (:class:`spinemon.core.stage.Stage`):
        its own fields and those of the rep segmenter (with its rate and
        settings), the hold timer and the warm-up bends."""
        out = fields_of(self, self._STATE_FIELDS)
        r = self.reps
        out["reps"] = None if r is None else (r.rate, r.settings, r.state())
        out["holds"] = self.holds.state()
        out["warmup"] = self.warmup.state()
        return out

    def restore(self, state: StageState) -> None:
        """Go on from :meth:`state` (of a segmenter built with the same settings)."""
        set_fields(self, state, self._STATE_FIELDS)
        if state["reps"] is None:
            self.reps = None
        else:
            rate, settings, reps = state["reps"]
            if self.reps is None or self.reps.rate != rate or self.reps.settings != settings:
                self.reps = RepSegmenter(rate, settings)
            self.reps.restore(reps)
        self.holds.restore(state["holds"])
        self.warmup.restore(state["warmup"])

    @property
    def armed_now(self) -> bool:
        """The limits are watched as of the last sample."""
        return self.held_now == 0

    @property
    def held_reason(self) -> str | None:
        """Why the limits are not watched as of the last sample (None: they are)."""
        return HELD_BACK.get(self.held_now)

    def on_label(self, label: dict, t: float) -> None:
        """The lifter starts a set at ``t`` (a hold for a hold exercise).
        ConfigError for an unknown exercise or a side for a lift done with both."""
        ex = label.get("exercise")
        side = check_side(label.get("side"))
        if ex is not None:
            ex, named = parse_exercise(ex)
            side = side or named
            profile(ex, self.limit_overrides)
            self.exercise = ex
        if side is not None:
            parse_exercise(f"{self.exercise} {side}")
        if label.get("set") is not None:
            self.set_number = int(label["set"])
            self.label_sides[self.set_number] = side
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

    def update(self, fused: Fused, ang: LumbarAngles, calibration: Calibration) -> Segments:
        """One monitored block: its fused samples, angles and the calibration in force."""
        block = fused.block
        n = len(block)
        m = calibration.mounting
        self.warmup.update(block.t, ang.flexion_deg, calibration.range_of_motion.flexion_deg)
        hold_on = None
        records_at: dict[int, list] = {}
        context_at: dict[int, tuple] = {}
        trunk_body = m["upper"].to_body(fused.gravity["upper"])
        held = np.zeros(n, dtype=np.int8)
        if self.profile.hold:
            upper_body_gyr = m["upper"].to_body(fused.gyr["upper"])
            tilt = np.degrees(np.arccos(np.clip(trunk_body[:, 0], -1.0, 1.0)))
            hold_on = self.holds.update(
                block.t, tilt, np.degrees(np.linalg.norm(upper_body_gyr, axis=1)), block.rate_hz
            )
            held[~hold_on] = HELD_NO_HOLD
        else:
            new = self._update_reps(fused, ang, calibration, np.asarray(sagittal_deg(trunk_body)))
            reps = self.reps
            assert reps is not None  # _update_reps starts one
            held[reps.after_walk_mask] = HELD_AFTER_WALK
            held[reps.walking_mask] = HELD_WALKING
            if self.arming == "sets":
                held = np.where(reps.in_set_mask, 0, np.where(held == 0, HELD_BETWEEN_SETS, held)).astype(
                    np.int8
                )
            for rec, i in zip(new, reps.emitted_at):
                records_at.setdefault(i, []).append(rec)
            for i, cs, cr in reps.context_changes:
                context_at[i] = (cs, cr)
        if self.monitor_between_sets:
            held[:] = 0
        if n:
            self.held_now = int(held[-1])
            codes, counts = np.unique(held[held > 0], return_counts=True)
            for c, k in zip(codes.tolist(), counts.tolist()):
                key = (c, block.rate_hz)
                self._held_samples[key] = self._held_samples.get(key, 0) + k
        return Segments(n, held == 0, held, hold_on, records_at, context_at)

    def rep_settings(self) -> RepSettings:
        """The rep counter's settings. Rules 2 (``arming == "exercise"``): a
        set of one counts when it is a clear lift (15 deg: a heavy single, a
        box picked up from a stance) that did not begin straight after walking
        (a plate picked up on the way: rejected "after_walking"); reps back to back turn at their
        own valley; the excursion is the tilt of the fused gravity, so no rep
        waits for a gyro bias to be learnt (a set that starts at once is counted)."""
        if self.arming == "sets":
            return RepSettings(exercise=self.exercise)
        # a rep turns once it has come a quarter of the way back from its peak
        # toward where it began: the first rep of a real squat set starts
        # upright and comes up to a top still tilted 23-37 deg, a third of the way
        return RepSettings(
            exercise=self.exercise,
            single_min_deg=15.0,
            exit_relative=True,
            exit_fraction=0.75,
            gravity_excursion=True,
            warmup_s=0.1,
            tilt_bias=self.tilt_bias,
            tilt_gravity=self.tilt_gravity,
            told_reps_confirm=self.tilt_gravity,
            bias_check=self.bias_check,
            rest_away=self.no_still_start,
            remeasure=self.no_still_start,
            bias_idle=self.bias_idle,
        )

    def _update_reps(
        self, fused: Fused, ang: LumbarAngles, calibration: Calibration, trunk_deg: np.ndarray
    ) -> list:
        """Sets and reps, from the raw body-frame gyros (offset-free, with the
        fusion's bias left in: the segmenter learns its own); returns the
        records that became known (``self.reps.emitted_at``: at which sample)."""
        block = fused.block
        m = calibration.mounting
        if self.reps is None or abs(self.reps.rate - block.rate_hz) > 1e-6 * block.rate_hz:
            self.reps = RepSegmenter(block.rate_hz, self.rep_settings())
            if self._pending_label is not None:
                self.reps.start_set(self._pending_label["exercise"], self._pending_label["set"])
                self._pending_label = None
        if (
            self.arming != "sets"
        ):  # a lone bend through the range is a warm-up move (toe touch), not a set of one
            self.reps.single_max_flexion_deg = (
                None if ang.single_sensor else self.warmup.share * calibration.range_of_motion.flexion_deg
            )
        return self.reps.update(
            block.t,
            flexion_deg=ang.flexion_deg,
            upper_gyr=m["upper"].to_body(block.gyr["upper"]),
            lower_gyr=None if ang.single_sensor else m["lower"].to_body(block.gyr["lower"]),
            trunk_deg=trunk_deg,
            lateral_deg=ang.lateral_deg,
            twist_deg=ang.twist_deg,
            upper_gravity=fused.gravity["upper"],
            lower_gravity=None if ang.single_sensor else fused.gravity["lower"],
            upper_acc=m["upper"].to_body(block.acc["upper"]) if self.tilt_bias else None,
            lower_acc=None
            if ang.single_sensor or not self.tilt_bias
            else m["lower"].to_body(block.acc["lower"]),
            upper_rotation=m["upper"].rotation if self.tilt_gravity else None,
            lower_rotation=None if ang.single_sensor or not self.tilt_gravity else m["lower"].rotation,
        )

    @property
    def held_s(self) -> dict[str, float]:
        """Seconds of monitored samples whose limits were held back, by reason (words)."""
        out: dict[str, float] = {}
        for (code, rate), k in sorted(self._held_samples.items()):
            out[HELD_BACK[code]] = round(out.get(HELD_BACK[code], 0.0) + k / rate, 3)
        return out

    def finish(self, t_end: float, t_last: float | None) -> None:
        """The session ended: an open hold closes (at ``t_end``, else the last sample), sets and reps too."""
        if self.holds.current is not None:
            self.holds._close(t_end if not math.isnan(t_end) else (t_last if t_last is not None else t_end))
        if self.reps is not None:
            self.reps.finish()

    @property
    def rep_records(self) -> list[RepRecord]:
        return [] if self.reps is None else list(self.reps.reps)

    @property
    def set_records(self) -> list[SetRecord]:
        return [] if self.reps is None else list(self.reps.sets)
