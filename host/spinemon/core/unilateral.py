"""Unilateral work: which side each rep was, and how the sides compare.

Lifting advice keeps coming back to one side compensating for the other: a
lunge on the left leg that bends the trunk further to the side than the one
on the right. This module gives each rep of a unilateral exercise
(:data:`spinemon.core.detect.UNILATERAL_EXERCISES`) a side and compares the sides.

Which side, in order:

1. **The label.** The lifter names the side with the exercise: ``lunge left``,
   ``split_squat:right``, ``single-arm-press R`` (:func:`parse_exercise`; the
   words ``left``/``right`` or ``l``/``r`` after a space, ``:``, ``_``, ``-``
   or ``/``). The side is the *working* side: the front (standing) leg of a
   lunge, split squat or single-leg deadlift, the hand holding the dumbbell in
   a single-arm press or row. A named side always wins.
2. **The motion.** Otherwise the direction of the rep's peak lateral bend and
   peak twist (docs/architecture.md: lateral bend positive to the wearer's
   right, twist positive when the chest turns to the left, about body +X):
   a one-sided load pulls the trunk toward the working side, so a bend to the
   left (negative) or a twist to the left (positive) says "left". Each of the
   two counts only past :data:`SIDE_MIN_DEG`; when both count they must
   agree. In the hinged lifts (single-leg deadlift, single-arm row:
   :data:`HINGED`) only the twist counts: with the trunk pitched forward the
   frontal inclination the lateral bend is measured from is mostly the
   twist (a chest turning left lifts the left shoulder, which reads as a
   tilt to the right: at 50 deg of lean, sin 50 = 0.77 of the twist against
   cos 50 = 0.64 of a bend). Real lifters differ (some lean away from the
   load), which is why the label wins; with one sensor only the bend is used
   (one sensor's twist is the whole body turning), so a hinged lift needs the label.
3. Otherwise ``"unknown"``.

The comparison (:func:`compare_sides`) is on the reps of each side: the mean
of their peak lateral bend and twist (magnitudes: how far to the side,
whichever way) and of their peak flexion, and the asymmetry left minus right
in degrees, in words for a coach ("left reps bend 6 deg more to the side
than right").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from spinemon.core.detect import PROFILES, UNILATERAL_EXERCISES, profile
from spinemon.errors import ConfigError

__all__ = [
    "EVEN_DEG",
    "HINGED",
    "LEFT",
    "RIGHT",
    "SIDES",
    "SIDE_MIN_DEG",
    "UNKNOWN",
    "check_side",
    "compare_sides",
    "parse_exercise",
    "rep_side",
    "session_sides",
    "side_from_motion",
    "side_words",
]

LEFT, RIGHT, UNKNOWN = "left", "right", "unknown"
SIDES = (LEFT, RIGHT)

#: unilateral lifts done with the trunk hinged forward: their side comes from the twist alone
HINGED: tuple[str, ...] = ("single_leg_deadlift", "single_arm_row")

#: a rep's lateral bend or twist says a side only past this (deg). A
#: symmetric rep sways a little either way (breathing, balance: the
#: simulated wearer +-2 deg of bend and +-3 deg of twist), the fusion's
#: frontal inclination is good to about 1-2 deg and the twist integrator
#: drifts by a degree or two between leaks: 5 deg is clear of all of them
#: together, and a third of the 15 deg lateral and twist limits.
SIDE_MIN_DEG = 5.0

#: sides that differ by less than this (deg) are called even: the rep-to-rep
#: spread of one side's peaks in a clean set is about that much
EVEN_DEG = 3.0

_SIDE_WORDS = {"left": LEFT, "l": LEFT, "right": RIGHT, "r": RIGHT}
_WITH_SIDE = re.compile(r"(?P<name>.+?)[\s:_/\-]+(?P<side>left|right|l|r)")


def check_side(side: object) -> str | None:
    """``side`` as stored (None, "left" or "right"); ConfigError otherwise."""
    if side is None:
        return None
    if isinstance(side, str) and side.strip().lower() in _SIDE_WORDS:
        return _SIDE_WORDS[side.strip().lower()]
    raise ConfigError(f"side {side!r}: use left or right")


def parse_exercise(text: str) -> tuple[str, str | None]:
    """An exercise name as typed or labelled, with an optional side:
    ``"lunge left"`` -> ``("lunge", "left")``, ``"Split-Squat:R"`` ->
    ``("split_squat", "right")``, ``"deadlift"`` -> ``("deadlift", None)``.

    Raises ConfigError (one line) for an unknown exercise, or a side given
    with an exercise done with both sides at once."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"exercise {text!r}: give an exercise name, e.g. lunge left")
    s = text.strip().lower()
    side = None
    name = s
    m = _WITH_SIDE.fullmatch(s)
    if m is not None:
        name, side = m.group("name"), _SIDE_WORDS[m.group("side")]
    name = re.sub(r"[\s\-]+", "_", name.strip())
    if name not in PROFILES:
        whole = re.sub(r"[\s\-]+", "_", s)
        if whole in PROFILES:  # a name that only looks as if it ended in a side
            name, side = whole, None
        profile(name)  # ConfigError: unknown exercise, with the list
    if side is not None and name not in UNILATERAL_EXERCISES:
        raise ConfigError(
            f"{name} is done with both sides, so it takes no side ({text.strip()!r}); a side goes with {', '.join(UNILATERAL_EXERCISES)}"
        )
    return name, side


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def side_from_motion(peak_lateral_deg: float | None, peak_twist_deg: float | None) -> str:
    """The side a rep leaned and turned to (see the module docstring):
    bend left is negative, twist left is positive; each counts past
    :data:`SIDE_MIN_DEG`, and the two must agree. ``None`` for one not
    measured (the twist with one sensor)."""
    votes = []
    lat, tw = _num(peak_lateral_deg), _num(peak_twist_deg)
    if lat is not None and abs(lat) >= SIDE_MIN_DEG:
        votes.append(LEFT if lat < 0 else RIGHT)
    if tw is not None and abs(tw) >= SIDE_MIN_DEG:
        votes.append(LEFT if tw > 0 else RIGHT)
    if votes and all(v == votes[0] for v in votes):
        return votes[0]
    return UNKNOWN


def rep_side(rep: dict, label_side: str | None, one_sensor: bool = False) -> tuple[str | None, str | None]:
    """``(side, how)`` of one rep (a ``RepRecord.as_dict()``): ``how`` is
    ``"label"`` or ``"motion"``; ``(None, None)`` for an exercise done with
    both sides."""
    if rep.get("exercise") not in UNILATERAL_EXERCISES:
        return None, None
    if label_side is not None:
        return check_side(label_side), "label"
    lateral = None if rep.get("exercise") in HINGED else rep.get("peak_lateral_deg")
    return side_from_motion(lateral, None if one_sensor else rep.get("peak_twist_deg")), "motion"


#: what is compared: rep field -> (key in the comparison, a magnitude?)
_METRICS = (("peak_lateral_deg", True), ("peak_twist_deg", True), ("peak_flexion_deg", False))


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 2) if xs else None


def compare_sides(reps: Sequence[dict]) -> dict | None:
    """The sides of some reps (tagged by :func:`rep_side`: a ``side`` key):
    per side the number of reps and the mean of their peaks (lateral bend and
    twist as magnitudes, flexion signed); ``asymmetry_deg``: left minus right
    for each (None unless both sides have reps); ``words``: the same for a
    coach. None when no rep has a side."""
    sided = [r for r in reps if r.get("side") is not None]
    if not sided:
        return None
    out: dict = {}
    for side in SIDES:
        mine = [r for r in sided if r.get("side") == side]
        row: dict = {"reps": len(mine), "rep_numbers": [r.get("rep") for r in mine]}
        for key, magnitude in _METRICS:
            xs = [abs(v) if magnitude else v for v in (_num(r.get(key)) for r in mine) if v is not None]
            row[key] = _mean(xs)
        out[side] = row
    out["unknown"] = sum(1 for r in sided if r.get("side") == UNKNOWN)
    asym: dict | None = None
    if out[LEFT]["reps"] and out[RIGHT]["reps"]:
        asym = {}
        for key, _ in _METRICS:
            a, b = out[LEFT][key], out[RIGHT][key]
            asym[key] = None if a is None or b is None else round(a - b, 2)
    out["asymmetry_deg"] = asym
    out["words"] = side_words(out)
    return out


_PHRASES = {
    "peak_lateral_deg": "bend {d} deg more to the side",
    "peak_twist_deg": "twist {d} deg more",
    "peak_flexion_deg": "flex (round) {d} deg more",
}
_NAMES = {"peak_lateral_deg": "side bend", "peak_twist_deg": "twist", "peak_flexion_deg": "flexion"}


def side_words(cmp: dict) -> str:
    """A comparison in words: "left reps bend 6 deg more to the side than
    right; twist even (within 3 deg)"."""
    n_l, n_r, n_u = cmp[LEFT]["reps"], cmp[RIGHT]["reps"], cmp.get("unknown", 0)
    unknown = f"; {n_u} rep{'s' if n_u != 1 else ''} with no clear side" if n_u else ""
    asym = cmp.get("asymmetry_deg")
    if asym is None:
        if not n_l and not n_r:
            return f"no rep leaned or turned clearly to one side ({n_u} rep{'s' if n_u != 1 else ''})"
        only = LEFT if n_l else RIGHT
        return f"{only} side only ({n_l or n_r} rep{'s' if (n_l or n_r) != 1 else ''}): nothing to compare{unknown}"
    said, even = [], []
    for key, _ in _METRICS:
        d = asym.get(key)
        if d is None:
            continue
        if abs(d) < EVEN_DEG:
            even.append(_NAMES[key])
            continue
        more, less = (LEFT, RIGHT) if d > 0 else (RIGHT, LEFT)
        said.append(f"{more} reps {_PHRASES[key].format(d=f'{abs(d):.0f}')} than {less}")
    if even:
        names = even[0] if len(even) == 1 else ", ".join(even[:-1]) + " and " + even[-1]
        said.append(f"{names} even (within {EVEN_DEG:.0f} deg)")
    return "; ".join(said) + unknown


def session_sides(reps: Sequence[dict]) -> list[dict]:
    """One comparison per unilateral exercise over the whole session (a left
    set and a right set of lunges compare here), in the order first done."""
    out = []
    seen: list[str] = []
    for r in reps:
        ex = r.get("exercise")
        if r.get("side") is not None and ex is not None and ex not in seen:
            seen.append(ex)
    for ex in seen:
        cmp = compare_sides([r for r in reps if r.get("exercise") == ex])
        if cmp is not None:
            out.append({"exercise": ex, **cmp})
    return out
