"""What a coach reads in ten seconds: one sentence per set, in words.

"Set 1, deadlift: rep 4 rounded 9 deg past your limit; reps 1-3 and 5 clean;
flexion crept 4 deg over the set." Built from the replayed session's sets,
reps and events (the same dictionaries ``replay --json`` prints), nothing
else. Also the hip-or-back number of a hinge: the share of the trunk's
forward lean that came from the pelvis (:func:`spinemon.core.reps.pelvis_share`), and for
unilateral work the two sides against each other ("left reps bend 6 deg
more to the side than right": :mod:`spinemon.core.unilateral`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from spinemon.core.reps import pelvis_share

__all__ = [
    "HINGES",
    "WORDS",
    "clean_ranges",
    "event_words",
    "pelvis_share",
    "session_verdict",
    "set_verdict",
    "sides_verdict",
]

#: exercises whose reps are a forward lean of the trunk (hip hinge or squat)
HINGES = ("deadlift", "squat", "row", "single_leg_deadlift", "single_arm_row")

#: event kind -> what the coach says happened
WORDS = {
    "over_flexion": "rounded",
    "over_extension": "arched",
    "twist": "twisted",
    "lateral_bend": "bent sideways",
    "swing": "swung",
    "spine_creep": "crept",
    "forward_lean": "leaned too far forward (one sensor: trunk lean, not lumbar rounding)",
}

#: what an event means in a given exercise, where the kind alone says it badly
EXERCISE_WORDS = {
    ("curl", "over_extension"): "leaned back (hip swing)",
    ("curl", "swing"): "swung the weight",
    ("overhead_press", "over_extension"): "arched the lower back",
    ("single_arm_press", "over_extension"): "arched the lower back",
}


def event_words(kind: str | None, exercise: str | None) -> str:
    """How a coach says what happened: "leaned back (hip swing)" for a curl's over-extension."""
    if kind is None:
        return "None"  # an event row without its kind (as str(None) said before)
    return EXERCISE_WORDS.get((exercise or "", kind), WORDS.get(kind, kind.replace("_", " ")))


CREEP_NOTE_DEG = 3.0  # flexion growing by at least this over a set is said
SHARE_DROP = 0.15  # the hips' share falling by this much over a set gets the cue


def clean_ranges(numbers: Sequence[int]) -> str:
    """[1, 2, 3, 5] -> "1-3 and 5"."""
    nums = sorted(set(int(n) for n in numbers))
    parts: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def past_limit(peak: float, limit: float) -> tuple[float, float]:
    """(the limit on the side the peak went to, how far past it the peak went).

    Twist, lateral bend and swing have one limit for both sides (stored
    positive): a left bend of -17.8 deg against 15 is 2.8 past the limit
    -15, not 32.8 past +15. Flexion and extension limits already carry
    their side's sign, so the rule is the same for every kind."""
    side = math.copysign(abs(limit), peak)
    return side, abs(peak) - abs(limit)


def _past(e: dict) -> str:
    peak, lim = e.get("peak_deg"), e.get("limit_deg")
    if isinstance(peak, (int, float)) and isinstance(lim, (int, float)):
        over = past_limit(peak, lim)[1]
        unit = "deg/s" if e.get("kind") == "swing" else "deg"
        return f" {over:.0f} {unit} past your limit"
    return ""


def set_verdict(st: dict, reps: Sequence[dict], events: Sequence[dict], one_sensor: bool = False) -> str:
    """One sentence for one set."""
    n = st.get("set")
    ex = st.get("exercise") or "lift"
    mine = sorted((r for r in reps if r.get("set") == n), key=lambda r: r.get("rep") or 0)
    evs = [e for e in events if e.get("set") == n]
    head = f"Set {n}, {ex}" + (f" ({st['side']})" if st.get("side") else "")
    if not mine:
        return head + ": no reps found."
    parts: list[str] = []
    bad: set[int] = set()
    for r in mine:
        k = r.get("rep")
        if k is None:
            continue  # a rep row always has its number
        in_rep = [e for e in evs if e.get("rep") == k and e.get("kind") != "spine_creep"]
        if in_rep:
            bad.add(k)
            words = "; ".join(f"{event_words(e.get('kind'), ex)}{_past(e)}" for e in in_rep[:2])
            parts.append(f"rep {k} {words}")
    clean = [r["rep"] for r in mine if r.get("rep") is not None and r["rep"] not in bad]
    if clean and bad:
        parts.append(f"rep{'s' if len(clean) > 1 else ''} {clean_ranges(clean)} clean")
    elif not bad:
        parts.append("the one rep clean" if len(mine) == 1 else f"all {len(mine)} reps clean")
    flex = [float(v) for r in mine if isinstance(v := r.get("peak_flexion_deg"), (int, float))]
    if not one_sensor and len(flex) >= 3 and flex[-1] - flex[0] >= CREEP_NOTE_DEG:
        parts.append(f"flexion crept {flex[-1] - flex[0]:.0f} deg over the set")
    if ex in HINGES and not one_sensor:
        shares = [s for s in (pelvis_share(r) for r in mine) if s is not None]
        if len(shares) >= 2:
            parts.append(
                f"hips did {shares[0]:.0%} of the lean on rep 1, {shares[-1]:.0%} on rep {mine[-1].get('rep')}"
            )
            if shares[0] - shares[-1] >= SHARE_DROP or min(shares) < 0.5:
                parts.append("cue: push the hips back and keep the chest up, the back took over")
    sides = st.get("side_comparison")
    if sides and sides.get("asymmetry_deg") is not None:  # both sides in this set (alternating reps)
        parts.append(sides["words"])
    return head + ": " + "; ".join(parts) + "."


def sides_verdict(cmp: dict, sets: Sequence[dict]) -> str | None:
    """One line for a unilateral exercise done a side per set (a left set,
    then a right one): the sides over the session. None when a set held both
    sides (its own line says it) or only one side was done."""
    ex = cmp.get("exercise")
    mine = [s for s in sets if s.get("exercise") == ex]
    if cmp.get("asymmetry_deg") is None or any(
        (s.get("side_comparison") or {}).get("asymmetry_deg") is not None for s in mine
    ):
        return None
    n_l, n_r = cmp["left"]["reps"], cmp["right"]["reps"]
    return f"{ex}, left against right over the session ({n_l} left, {n_r} right reps): {cmp['words']}."


def session_verdict(
    sets: Sequence[dict],
    reps: Sequence[dict],
    events: Sequence[dict],
    monitoring: dict | None = None,
    one_sensor: bool = False,
    sides: Sequence[dict] = (),
) -> list[str]:
    """The verdict lines of a session: how much was watched, then one per
    set, then left against right for unilateral work done a side per set
    (``sides``: ``summary()["side_comparisons"]``)."""
    lines: list[str] = []
    if monitoring:
        cal = monitoring.get("calibration")
        dur, mon = monitoring.get("duration_s") or 0.0, monitoring.get("monitored_s") or 0.0
        waiting = (monitoring.get("not_monitored") or {}).get(
            "waiting for a still stretch to set neutral", 0.0
        )
        if cal in ("none", "provisional") or waiting > 5.0:  # the guided calibration itself is not news
            why = ", ".join(f"{v:.0f} s {k}" for k, v in (monitoring.get("not_monitored") or {}).items())
            lines.append(
                f"Watched {mon:.0f} of {dur:.0f} s"
                + (f" (not watched: {why})" if why else "")
                + (f"; calibration {cal}" if cal in ("none", "provisional") else "")
                + "."
            )
    if not sets:
        lines.append("No sets found in this session.")
    for st in sets:
        lines.append(set_verdict(st, reps, events, one_sensor))
    for cmp in sides:
        line = sides_verdict(cmp, sets)
        if line is not None:
            lines.append(line[0].upper() + line[1:])
    outside = [e for e in events if e.get("set") is None]
    if outside:
        lines.append(f"{len(outside)} alert{'s' if len(outside) != 1 else ''} outside any set.")
    return lines
