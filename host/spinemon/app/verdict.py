"""What a coach reads in ten seconds: one sentence per set, in words.

"Set 1, deadlift: rep 4 rounded 9 deg past your limit; reps 1-3 and 5 clean;
flexion crept 4 deg over the set." Built from the replayed session's sets,
reps, events and holds (the summary's typed rows,
:mod:`spinemon.app.session_summary`, or the report's, which extend them),
nothing else. Also the hip-or-back number of a hinge: the share of the trunk's
forward lean that came from the pelvis (:func:`spinemon.core.reps.pelvis_share`), and for
unilateral work the two sides against each other ("left reps bend 6 deg
more to the side than right": :mod:`spinemon.core.unilateral`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from spinemon.app.session_summary import EventRow, HoldRow, Monitoring, RepRow, SetRow
from spinemon.core.reps import pelvis_share

__all__ = [
    "EXTENSION_LIFTS",
    "HINGES",
    "WORDS",
    "clean_ranges",
    "event_words",
    "hold_verdict",
    "limits_off_for",
    "pelvis_share",
    "session_verdict",
    "set_verdict",
    "sides_verdict",
]

#: exercises whose reps are a forward lean of the trunk (hip hinge or squat)
HINGES = ("deadlift", "squat", "row", "single_leg_deadlift", "single_arm_row")

#: exercises whose fault is an arch (over-extension), not a rounding: history
#: and charts plot their peak extension against the extension limit
EXTENSION_LIFTS = ("overhead_press", "single_arm_press", "curl", "bench")

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
    # timed holds: named by the hold's own fault, not by the angle's direction
    ("plank", "over_extension"): "sagged (hips dropped)",
    ("plank", "over_flexion"): "piked (hips up)",
    ("plank", "twist"): "rotated the hips",
    ("plank", "lateral_bend"): "dropped a hip to the side",
    ("bird_dog", "over_extension"): "arched the lower back",
    ("bird_dog", "over_flexion"): "rounded the back",
    ("bird_dog", "twist"): "rotated the pelvis",
    ("bird_dog", "lateral_bend"): "tipped the pelvis to the side",
    ("dead_bug", "over_extension"): "arched the lower back off the floor",
    ("dead_bug", "over_flexion"): "curled up",
    ("dead_bug", "twist"): "rotated the pelvis",
    ("dead_bug", "lateral_bend"): "tipped the pelvis to the side",
    ("glute_bridge", "over_extension"): "over-arched at the top",
    ("glute_bridge", "over_flexion"): "let the hips sink",
    ("glute_bridge", "twist"): "rotated the hips",
    ("glute_bridge", "lateral_bend"): "dropped a hip to the side",
}

#: a limit switched off (one sensor) -> the fault it would have judged
OFF_WORDS = {
    "flexion_deg": "rounding",
    "extension_deg": "arching",
    "twist_deg": "twisting",
    "lateral_deg": "side bending",
    "lean_deg": "forward lean",
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
    nums = sorted({int(n) for n in numbers})
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


def _past(kind: Any, peak: Any, lim: Any) -> str:
    if isinstance(peak, (int, float)) and isinstance(lim, (int, float)):
        over = past_limit(peak, lim)[1]
        unit = "deg/s" if kind == "swing" else "deg"
        return f" {over:.0f} {unit} past your limit"
    return ""


def _event_past(e: EventRow) -> str:
    return _past(e.kind, e.peak_deg, e.limit_deg)


def _share(r: RepRow) -> float | None:
    """The hips' share of the rep's lean (:func:`pelvis_share`)."""
    return pelvis_share({"peak_trunk_deg": r.peak_trunk_deg, "peak_flexion_deg": r.peak_flexion_deg})


def limits_off_for(exercise: str | None) -> dict[str, str]:
    """The limits one sensor cannot judge in ``exercise`` and why
    (:func:`spinemon.core.detect.one_sensor_limits`): empty for an unknown exercise."""
    from spinemon.core.detect import DEFAULT_ROM, one_sensor_limits, profile
    from spinemon.errors import SpinemonError

    try:
        lim = profile(exercise or "generic").limits(DEFAULT_ROM)
    except SpinemonError:
        return {}
    return {k: why for k, why in one_sensor_limits(exercise or "generic", lim)[1].items() if k in OFF_WORDS}


def _words_list(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _not_judged(ex: str) -> tuple[bool, str]:
    """One sensor: (was the lift's main fault judged at all, the words of what was not and why)."""
    off = limits_off_for(ex)
    if not off:
        return True, ""
    main = "flexion_deg" in off or "extension_deg" in off
    why = off.get("flexion_deg") or next(iter(off.values()))
    return not main, f"not judged for {_words_list([OFF_WORDS[k] for k in off])} ({why})"


def set_verdict(
    st: SetRow, reps: Sequence[RepRow], events: Sequence[EventRow], one_sensor: bool = False
) -> str:
    """One sentence for one set. With one sensor, the faults it cannot judge
    in this lift are said to be "not judged", and why: clean reps are not
    called clean when their main fault was not watched."""
    n = st.set
    ex = st.exercise or "lift"
    mine = sorted((r for r in reps if r.set == n), key=lambda r: r.rep or 0)
    evs = [e for e in events if e.set == n]
    head = f"Set {n}, {ex}" + (f" ({st.side})" if st.side else "")
    if not mine:
        return head + ": no reps found."
    parts: list[str] = []
    bad: set[int] = set()
    for r in mine:
        k = r.rep
        if k is None:
            continue  # a rep row always has its number
        in_rep = [e for e in evs if e.rep == k and e.kind != "spine_creep"]
        if in_rep:
            bad.add(k)
            words = "; ".join(f"{event_words(e.kind, ex)}{_event_past(e)}" for e in in_rep[:2])
            parts.append(f"rep {k} {words}")
    clean = [r.rep for r in mine if r.rep is not None and r.rep not in bad]
    judged, not_judged = _not_judged(ex) if one_sensor else (True, "")
    if clean and not judged:
        parts.append(f"rep{'s' if len(clean) > 1 else ''} {clean_ranges(clean)} {not_judged}")
    else:
        if clean and bad:
            parts.append(f"rep{'s' if len(clean) > 1 else ''} {clean_ranges(clean)} clean")
        elif not bad:
            parts.append("the one rep clean" if len(mine) == 1 else f"all {len(mine)} reps clean")
        if not_judged:
            parts.append(not_judged)
    flex = [float(v) for r in mine if isinstance(v := r.peak_flexion_deg, (int, float))]
    if not one_sensor and len(flex) >= 3 and flex[-1] - flex[0] >= CREEP_NOTE_DEG:
        parts.append(f"flexion crept {flex[-1] - flex[0]:.0f} deg over the set")
    if ex in HINGES and not one_sensor:
        shares = [s for s in (_share(r) for r in mine) if s is not None]
        if len(shares) >= 2:
            parts.append(
                f"hips did {shares[0]:.0%} of the lean on rep 1, {shares[-1]:.0%} on rep {mine[-1].rep}"
            )
            if shares[0] - shares[-1] >= SHARE_DROP or min(shares) < 0.5:
                parts.append("cue: push the hips back and keep the chest up, the back took over")
    sides = st.side_comparison
    if sides and sides.get("asymmetry_deg") is not None:  # both sides in this set (alternating reps)
        parts.append(sides["words"])
    return head + ": " + "; ".join(parts) + "."


def hold_verdict(
    set_no: int | None, holds: Sequence[HoldRow], events: Sequence[EventRow], one_sensor: bool = False
) -> str:
    """One sentence for the timed holds (plank, bird dog, ...) of one set:
    how long each was held, and each fault named as that hold's fault
    ("hold 1 sagged (hips dropped) 7 deg past your limit, 8 s in")."""
    mine = sorted((h for h in holds if h.set == set_no), key=lambda h: h.hold or 0)
    ex = (mine[0].exercise if mine else None) or "hold"
    head = f"Set {set_no}, {ex}" if set_no is not None else ex[0].upper() + ex[1:]
    durs = [h.duration_s for h in mine]
    known = [float(d) for d in durs if isinstance(d, (int, float))]
    n = len(mine)
    what = f"{n} hold{'s' if n != 1 else ''}"
    if known:
        what += (
            f" of {known[0]:.0f} s"
            if len(known) == 1
            else f" of {min(known):.0f}-{max(known):.0f} s ({sum(known):.0f} s in all)"
            if round(min(known)) != round(max(known))
            else f" of {known[0]:.0f} s each ({sum(known):.0f} s in all)"
        )
    if len(known) < n:
        what += f" ({n - len(known)} not ended when the recording stopped)"
    parts = [what]
    bad: set[int] = set()
    for h in mine:
        k = int(h.hold or 0)
        faults = h.faults or ()
        if faults:
            bad.add(k)
            words = []
            for f in faults[:2]:
                ev = next(
                    (
                        e
                        for e in events
                        if e.set == set_no
                        and e.kind == f.get("kind")
                        and f.get("t_alert") is not None
                        and e.t_alert == f.get("t_alert")
                    ),
                    None,
                )
                past = (
                    _past(f.get("kind"), f.get("peak_deg"), f.get("limit_deg"))
                    if ev is None
                    else _event_past(ev)
                )
                into = ""
                if isinstance(f.get("t_alert"), (int, float)) and isinstance(h.t_start, (int, float)):
                    into = f", {f['t_alert'] - h.t_start:.0f} s in"
                words.append(f"{event_words(str(f.get('kind')), ex)}{past}{into}")
            parts.append(f"hold {k} " + "; ".join(words))
    clean = [int(h.hold or 0) for h in mine if int(h.hold or 0) not in bad]
    if clean:
        if bad:
            parts.append(f"hold{'s' if len(clean) > 1 else ''} {clean_ranges(clean)} clean")
        else:
            parts.append("clean" if n == 1 else "all clean")
        if one_sensor:
            _, not_judged = _not_judged(ex)
            if not_judged:
                parts.append(not_judged)
    return head + ": " + "; ".join(parts) + "."


def sides_verdict(cmp: Mapping[str, Any], sets: Sequence[SetRow]) -> str | None:
    """One line for a unilateral exercise done a side per set (a left set,
    then a right one): the sides over the session. None when a set held both
    sides (its own line says it) or only one side was done."""
    ex = cmp.get("exercise")
    mine = [s for s in sets if s.exercise == ex]
    if cmp.get("asymmetry_deg") is None or any(
        (s.side_comparison or {}).get("asymmetry_deg") is not None for s in mine
    ):
        return None
    n_l, n_r = cmp["left"]["reps"], cmp["right"]["reps"]
    return f"{ex}, left against right over the session ({n_l} left, {n_r} right reps): {cmp['words']}."


def session_verdict(
    sets: Sequence[SetRow],
    reps: Sequence[RepRow],
    events: Sequence[EventRow],
    monitoring: Monitoring | None = None,
    one_sensor: bool = False,
    sides: Sequence[Mapping[str, Any]] = (),
    holds: Sequence[HoldRow] = (),
) -> list[str]:
    """The verdict lines of a session: how much was watched, then one per
    set (lifts, and timed holds: ``summary()["holds"]``), then left against
    right for unilateral work done a side per set
    (``sides``: ``summary()["side_comparisons"]``)."""
    lines: list[str] = []
    if monitoring is not None and monitoring.key_order():  # (an empty section says nothing)
        cal = monitoring.calibration
        dur, mon = monitoring.duration_s or 0.0, monitoring.monitored_s or 0.0
        waiting = (monitoring.not_monitored or {}).get("waiting for a still stretch to set neutral", 0.0)
        if cal in ("none", "provisional") or waiting > 5.0:  # the guided calibration itself is not news
            why = ", ".join(f"{v:.0f} s {k}" for k, v in (monitoring.not_monitored or {}).items())
            lines.append(
                f"Watched {mon:.0f} of {dur:.0f} s"
                + (f" (not watched: {why})" if why else "")
                + (f"; calibration {cal}" if cal in ("none", "provisional") else "")
                + "."
            )
    hold_sets = list(dict.fromkeys(h.set for h in holds))
    if not sets and not holds:
        lines.append("No sets or holds found in this session.")
    order: list[tuple[float, int, str]] = [
        (float(st.t_start or 0.0), i, set_verdict(st, reps, events, one_sensor)) for i, st in enumerate(sets)
    ]
    for n in hold_sets:
        t0 = min(float(h.t_start or 0.0) for h in holds if h.set == n)
        order.append((t0, len(order), hold_verdict(n, holds, events, one_sensor)))
    lines += [line for _, _, line in sorted(order)]
    for cmp in sides:
        line = sides_verdict(cmp, sets)
        if line is not None:
            lines.append(line[0].upper() + line[1:])
    held = {(h.set, f.get("t_alert")) for h in holds for f in h.faults or ()}
    outside = [e for e in events if e.set is None and (None, e.t_alert) not in held]
    if outside:
        lines.append(f"{len(outside)} alert{'s' if len(outside) != 1 else ''} outside any set.")
    return lines
