"""The session summary: what each stage found, as one dict (JSON-ready).

Read-only over the stages' state, at any time (live prints it at the end,
replay and reports read it from the recording's last record). What it adds
is presentation: per rep the hips' share of the trunk's lean (two sensors)
and the side worked; per set its peak flexion, whether a warm-up came before
it, and the comparison of its sides.
"""

from __future__ import annotations

from spinemon.core.detect import UNILATERAL_EXERCISES
from spinemon.core.reps import RepRecord, SetRecord, pelvis_share
from spinemon.core.segment import HELD_BACK
from spinemon.core.unilateral import compare_sides, rep_side, session_sides

__all__ = ["named_side", "rep_row", "session_summary", "set_rows", "warmup_for"]


def named_side(segmenter, settings, exercise: str, set_number: int, labelled: bool) -> str | None:
    """The side the lifter named for a set: its label's, or for reps outside
    labelled sets the session's (``PipelineSettings.side``, for its exercise)."""
    if labelled:
        return segmenter.label_sides.get(set_number)
    return settings.side if exercise == settings.exercise else None


def rep_row(r: RepRecord, side: str | None, single_sensor: bool) -> dict:
    d = r.as_dict()
    if not single_sensor:
        share = pelvis_share(d)  # lumbopelvic rhythm: the hips' share of the trunk's lean
        d["pelvis_share"] = None if share is None else round(share, 3)
    d["side"], d["side_from"] = rep_side(d, side, single_sensor)
    return d


def warmup_for(st: SetRecord, sets: list[SetRecord], warmup, share: float, moves_needed: int) -> dict:
    """Whether a warm-up came before set ``st``: an earlier set of the same
    exercise, or ``moves_needed`` bends through ``share`` of the range."""
    earlier = [o.set for o in sets if o.exercise == st.exercise and o.t_end < st.t_start]
    moves = warmup.before(st.t_start)
    if earlier:
        how = f"after set {earlier[-1]} of {st.exercise}"
    elif moves >= moves_needed:
        how = f"{moves} bends through {share:.0%} of the range"
    else:
        how = None
    return {"warmed_up": how is not None, "warmup": how, "range_moves_before": moves}


def set_rows(segmenter, settings, single_sensor: bool) -> tuple[list[dict], list[dict]]:
    """(rep rows, set rows) of the session so far."""
    reps, sets = segmenter.rep_records, segmenter.set_records
    rep_rows = [
        rep_row(r, named_side(segmenter, settings, r.exercise, r.set, r.labelled), single_sensor)
        for r in reps
    ]
    rows = []
    for st in sets:
        d = st.as_dict()
        mine = [r for r in reps if r.set == st.set]
        d["peak_flexion_deg"] = round(max(r.peak_flexion_deg for r in mine), 2) if mine else None
        d.update(warmup_for(st, sets, segmenter.warmup, settings.warmup_share, settings.warmup_moves))
        d["side"] = (
            named_side(segmenter, settings, st.exercise, st.set, st.labelled)
            if st.exercise in UNILATERAL_EXERCISES
            else None
        )
        d["side_comparison"] = compare_sides([r for r in rep_rows if r["set"] == st.set])
        rows.append(d)
    return rep_rows, rows


def _held_back(segmenter, watch) -> dict:
    """What held the limits back: seconds per reason, and the faults past a limit that did not buzz, per reason."""
    faults: dict[str, int] = {}
    for e in watch.shadow.events:
        if e.t_alert is not None:
            why = e.held_back or "not armed"
            faults[why] = faults.get(why, 0) + 1
    seconds = dict(segmenter.held_s)
    for code, secs in watch.limit_held_s.items():  # one limit held back while the rest were armed (rules 3)
        why = HELD_BACK[code]
        seconds[why] = round(seconds.get(why, 0.0) + secs, 3)
    return {"seconds": seconds, "faults": faults}


def _rejected(r) -> dict:
    return {
        "t_start": round(r.t_start, 4),
        "t_end": round(r.t_end, 4),
        "peak_excursion_deg": round(r.peak_excursion_deg, 2),
        "reason": r.reason,
    }


def session_summary(
    settings, *, decoder, intake, phases, angles, segmenter, watch, drift, hold_faults: dict | None = None
) -> dict:
    """The summary of a session from its stages (see :class:`spinemon.core.pipeline.Pipeline`);
    ``hold_faults``: the events confirmed during each hold, by :attr:`Hold.key`."""
    hold_faults = hold_faults or {}
    single = bool(angles.single_sensor)
    rep_rows, sets = set_rows(segmenter, settings, single)
    cal = phases.calibration
    return {
        "type": "summary",
        "events": [e.as_dict() for e in watch.events],
        "reps": rep_rows,
        "sets": sets,
        "side_comparisons": session_sides(rep_rows),
        "holds": [h.as_dict(hold_faults.get(h.key, ())) for h in segmenter.holds.holds],
        "drift_checks": list(drift.checks),
        "drift_flagged": any(c["flagged"] for c in drift.checks),
        "suppressed": [e.as_dict() for e in watch.shadow.events],
        "held_back": _held_back(segmenter, watch),
        "rejected_reps": [_rejected(r) for r in ([] if segmenter.reps is None else segmenter.reps.rejected)],
        "stats": decoder.stats.as_dict(),
        "monitoring": phases.monitoring(),
        "layout_changes": list(intake.layout_changes),
        "skipped_samples": dict(intake.skipped_samples),
        "clock_backsteps": intake.clock.backsteps,
        "angle": angles.label,
        "calibrated": cal is not None,
        "alignment": None if cal is None else cal.alignment,
        "limits": watch.limits.as_dict(),
        "limits_off": dict(watch.plan.off),
        "phase": phases.phase,
    }
