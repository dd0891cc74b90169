"""The lifter's usual lean from the session index (issue 22 item 4).

``spinemon history`` (and a report of several recordings) keeps per
recording the one-sensor rep peaks of each exercise in the session index
(:mod:`spinemon.io.session_index`, ``lean_peaks``). :func:`baselines` turns
the sessions before now into a :class:`~spinemon.core.lean_baseline.LeanBaseline`
per squat or hinge (:mod:`spinemon.core.lean_baseline` says the rule);
:func:`apply` puts them into the limits (``lean_deg``) and says on one line
per exercise what is judged against what. ``live`` applies them at the
start of a session and records them in the header (``lean_baseline``), so
its replay and report judge and say the same.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

from spinemon.core.detect import profile
from spinemon.core.lean_baseline import (
    LEAN_BASELINE_EXERCISES,
    LeanBaseline,
    lean_baseline,
    too_little,
    with_baselines,
)
from spinemon.core.pipeline import PipelineSettings

__all__ = ["HEADER_KEY", "apply", "baselines", "from_header", "lines"]

#: the recording header's key for the baselines a session was judged with
HEADER_KEY = "lean_baseline"


def baselines(
    facts: list[dict], *, exclude: str | os.PathLike | None = None, before: str | None = None
) -> dict[str, LeanBaseline]:
    """Per exercise, the baseline from one-sensor sessions' facts (newest
    first), leaving out the recording ``exclude`` and sessions at or after
    ``before`` (UTC ``YYYY-MM-DDTHH:MM:SSZ``)."""
    skip = str(Path(exclude).resolve()) if exclude is not None else None
    rows = [
        f
        for f in facts
        if f.get("one_sensor")
        and not f.get("error")
        and isinstance(f.get("time"), str)
        and (skip is None or f.get("resolved") != skip)
        and (before is None or f["time"] < before)
    ]
    rows.sort(key=lambda f: f["time"], reverse=True)
    out: dict[str, LeanBaseline] = {}
    for ex in LEAN_BASELINE_EXERCISES:
        sessions = []
        for f in rows:
            per = f.get("exercises")
            mine = per.get(ex) if isinstance(per, dict) else None
            peaks = mine.get("lean_peaks") if isinstance(mine, dict) else None
            if not isinstance(peaks, list):
                continue  # facts of an older kind, or damaged: not history of this lift
            peaks = [float(p) for p in peaks if _number(p)]
            if peaks:
                sessions.append(peaks)
        b = lean_baseline(ex, sessions, profile(ex).lean_deg)
        if b is not None:
            out[ex] = b
    return out


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def from_index(**kw) -> tuple[dict[str, LeanBaseline], list[str]]:
    """:func:`baselines` from the user's session index, and its notes (an index that cannot be used)."""
    from spinemon.io.session_index import SessionIndex

    with SessionIndex() as idx:
        facts = idx.latest_facts()
        notes = list(idx.notes)
    return baselines(facts, **kw), notes


def apply(settings: PipelineSettings, found: dict[str, LeanBaseline]) -> PipelineSettings:
    """``settings`` with each baseline's limit as the exercise's ``lean_deg``
    (a ``lean_deg`` set by hand wins)."""
    if not found:
        return settings
    return replace(settings, limit_overrides=with_baselines(settings.limit_overrides, found))


def lines(found: dict[str, LeanBaseline], exercise: str, overrides: dict | None = None) -> list[str]:
    """What is said at the start: each baseline (with where it comes from),
    and for ``exercise``, a squat or hinge without one, that it is judged
    against the norm. One sensor only: two sensors judge the lumbar angle.
    A ``lean_deg`` in ``overrides`` other than the baseline's was set by hand and is kept."""
    out = []
    for ex, b in found.items():
        mine = ((overrides or {}).get(ex) or {}).get("lean_deg", round(b.limit_deg, 2))
        if mine != round(b.limit_deg, 2):
            out.append(
                f"{ex.replace('_', ' ')}: your own lean_deg limit is kept (a usual lean from history was found)"
            )
        else:
            out.append(b.describe() + "; it buzzes like any limit")
    if exercise in LEAN_BASELINE_EXERCISES and exercise not in found:
        out.append(too_little(exercise, profile(exercise).lean_deg))
    return [f"with one sensor, {s}" for s in out]


def header(found: dict[str, LeanBaseline]) -> dict:
    """The recording header's entry (:data:`HEADER_KEY`)."""
    return {HEADER_KEY: {ex: b.as_dict() for ex, b in found.items()}}


def from_header(head: dict) -> dict[str, LeanBaseline]:
    """The baselines a recording was judged with (empty: the norms)."""
    raw = head.get(HEADER_KEY)
    out: dict[str, LeanBaseline] = {}
    if isinstance(raw, dict):
        for ex, d in raw.items():
            try:
                b = LeanBaseline.from_dict(d)
            except (KeyError, TypeError):
                continue  # a damaged header entry: not said, not used
            nums = (b.usual_deg, b.spread_deg, b.personal_deg, b.limit_deg, b.sessions, b.reps)
            if all(_number(x) for x in nums) and (b.norm_deg is None or _number(b.norm_deg)):
                out[str(ex)] = b
    return out
