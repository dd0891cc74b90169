"""A lifter's own usual forward lean (issue 22 item 4): one sensor, squats and hinges.

With one sensor on the trunk or the sacrum, a rep's peak is the sensor's
forward inclination from standing: lean, not lumbar rounding. The exercise's
norm (``lean_deg`` in :mod:`spinemon.core.detect`) fits everyone; once the
lifter has history, the rep is also judged against their own usual rep.

The baseline of one exercise is taken from the one-sensor rep peaks of the
lifter's last :data:`LAST_SESSIONS` sessions of it (newest first), and
applies only with at least :data:`MIN_SESSIONS` sessions and
:data:`MIN_REPS` reps: fewer say too little about what is usual. Usual is
the median of the rep peaks; the spread is their median absolute deviation
scaled to a standard deviation (x 1.4826), both robust to the odd bad rep
already in the history. A rep leans more than usual when its peak exceeds
the median by more than :data:`K_SPREADS` spreads (about 1 rep in 700 of a
lifter's usual reps if they are roughly normal) and by at least
:data:`FLOOR_DEG`: the same 10 deg the norm allows past a typical squat,
since a provisional neutral can be a few degrees off and a lifter whose
reps are very alike must not be buzzed for a few degrees (the real
excessive-lean sets peaked 7-26 deg, 19 on average, above each person's
correct ones). The limit in force is the lower of that and the exercise's
norm, where it has one (a hinge leans by design and has none: there the
lifter's own usual is the only measure). None of these numbers were fitted
to a recording.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "FLOOR_DEG",
    "K_SPREADS",
    "LAST_SESSIONS",
    "LEAN_BASELINE_EXERCISES",
    "MIN_REPS",
    "MIN_SESSIONS",
    "LeanBaseline",
    "lean_baseline",
    "with_baselines",
]

LAST_SESSIONS = 10
MIN_SESSIONS = 3
MIN_REPS = 15
K_SPREADS = 3.0
FLOOR_DEG = 10.0
MAD_TO_SD = 1.4826

#: squats and hinges: where forward lean is the one-sensor measure of the lift
LEAN_BASELINE_EXERCISES: tuple[str, ...] = (
    "squat",
    "deadlift",
    "single_leg_deadlift",
    "lunge",
    "split_squat",
)


@dataclass(frozen=True)
class LeanBaseline:
    """A lifter's usual one-sensor peak lean in one exercise, and the limit it gives."""

    exercise: str
    sessions: int
    reps: int
    usual_deg: float
    spread_deg: float
    personal_deg: float  # usual + max(K_SPREADS * spread, FLOOR_DEG)
    norm_deg: float | None  # the exercise's norm, None for a hinge
    limit_deg: float  # the lower of the two

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> LeanBaseline:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        """One line: the limit, where it comes from, and that it is lean."""
        ex = self.exercise.replace("_", " ")
        mine = self.norm_deg is None or self.personal_deg < self.norm_deg
        which = "from your usual rep" if mine else "the exercise's norm, lower than your usual allows"
        norm = "this lift has no norm" if self.norm_deg is None else f"the norm is {self.norm_deg:.0f} deg"
        return (
            f"{ex}: forward lean limit {self.limit_deg:.0f} deg, {which}; "
            f"your usual rep over your last {self.sessions} one-sensor {ex} sessions ({self.reps} reps) "
            f"peaks at {self.usual_deg:.0f} +- {self.spread_deg:.0f} deg, so past {self.personal_deg:.0f} deg "
            f"is more than usual; {norm}. This is lean (one sensor), not lumbar rounding"
        )


def lean_baseline(
    exercise: str, sessions: Sequence[Sequence[float]], norm_deg: float | None
) -> LeanBaseline | None:
    """The baseline from the rep peaks of each session (newest first), or None
    with too little history (see the module)."""
    recent = [[float(p) for p in s] for s in sessions if len(s)][:LAST_SESSIONS]
    peaks = [p for s in recent for p in s]
    if len(recent) < MIN_SESSIONS or len(peaks) < MIN_REPS:
        return None
    usual = statistics.median(peaks)
    spread = MAD_TO_SD * statistics.median(abs(p - usual) for p in peaks)
    personal = usual + max(K_SPREADS * spread, FLOOR_DEG)
    limit = personal if norm_deg is None else min(personal, norm_deg)
    return LeanBaseline(exercise, len(recent), len(peaks), usual, spread, personal, norm_deg, limit)


def too_little(exercise: str, norm_deg: float | None) -> str:
    """What is said when an exercise has no baseline yet."""
    ex = exercise.replace("_", " ")
    need = f"needs {MIN_SESSIONS} one-sensor {ex} sessions with {MIN_REPS} reps in the session index"
    if norm_deg is None:
        return f"{ex}: forward lean is not judged: a hinge leans by design, so only your usual rep can judge it, and there is none yet ({need})"
    return f"{ex}: forward lean judged against the exercise's norm only ({norm_deg:.0f} deg): no usual rep of yours yet ({need})"


def with_baselines(overrides: dict | None, baselines: dict[str, LeanBaseline]) -> dict:
    """Limit overrides with each baseline's ``lean_deg``; a ``lean_deg`` the
    lifter set by hand for an exercise wins over the baseline."""
    out = {ex: dict(v) for ex, v in (overrides or {}).items()}
    for ex, b in baselines.items():
        mine = out.setdefault(ex, {})
        if "lean_deg" not in mine:
            mine["lean_deg"] = round(b.limit_deg, 2)
    return out
