"""What came before higher pain: the pain journal against the sessions.

:func:`summarize` compares pain after sessions that had a pattern (an event
kind in an exercise, e.g. over-flexion in deadlifts = "rounding in
deadlifts") with pain after sessions that did not, and shows pain by week;
:func:`format_summary` is its text. That is an association in one person's
journal, never proof of cause; the output says so and says when there is too
little data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from spinemon.app.journal import PAIR_BEFORE_WINDOW, Entry, SessionLink, format_time, parse_time
from spinemon.app.red_flags import RedFlag, red_flag_message, red_flags
from spinemon.app.words import plural
from spinemon.errors import ConfigError

#: fewer sessions than this in either group: "too little data"
MIN_SESSIONS_PER_GROUP = 3


KIND_NAMES = {
    "over_flexion": "rounding",
    "over_extension": "arching",
    "twist": "twisting",
    "lateral_bend": "side bending",
    "swing": "swinging",
    "spine_creep": "flexion creeping up",
    "forward_lean": "leaning too far forward",
}


EXERCISE_PLURALS = {
    "deadlift": "deadlifts",
    "squat": "squats",
    "overhead_press": "overhead presses",
    "curl": "curls",
    "single_leg_deadlift": "single-leg deadlifts",
    "lunge": "lunges",
    "split_squat": "split squats",
    "single_arm_press": "single-arm presses",
    "single_arm_row": "single-arm rows",
    "generic": "unlabelled lifting",
    "unlabelled": "unlabelled lifting",
}


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------
def pattern_name(kind: str, exercise: str) -> str:
    """Plain words for an event kind in an exercise, e.g. "rounding in deadlifts", "arching overhead"."""
    if kind == "over_extension" and exercise == "overhead_press":
        return "arching overhead"
    what = KIND_NAMES.get(kind, kind.replace("_", " "))
    return f"{what} in {EXERCISE_PLURALS.get(exercise, exercise.replace('_', ' ') + 's')}"


def exercise_name(exercise: str) -> str:
    return EXERCISE_PLURALS.get(exercise, exercise.replace("_", " ") + "s")


@dataclass
class SessionPain:
    """One linked session with the pain logged around it."""

    path: str
    time: datetime
    link: SessionLink
    before: list[int] = field(default_factory=list)
    during: list[int] = field(default_factory=list)
    after: list[int] = field(default_factory=list)
    before_paired: bool = False

    @property
    def pain_before(self) -> float | None:
        return _mean(self.before)

    @property
    def pain_after(self) -> float | None:
        return _mean(self.after)

    @property
    def change(self) -> float | None:
        b, a = self.pain_before, self.pain_after
        return None if a is None or b is None else a - b


def _mean(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def sessions_from(entries: Sequence[Entry]) -> list[SessionPain]:
    """Group linked entries by recording; pair each session with the latest
    unlinked ``before`` entry up to 12 h before its first linked entry when it
    has no linked ``before`` entry (the recording does not exist yet when
    pain before is logged)."""
    by_path: dict[str, SessionPain] = {}
    for e in entries:
        if e.session is None:
            continue
        sp = by_path.get(e.session.path)
        if sp is None:
            sp = by_path[e.session.path] = SessionPain(e.session.path, e.time, e.session)
        sp.time = min(sp.time, e.time)
        getattr(sp, e.phase if e.phase in ("before", "during", "after") else "during").append(e.pain)
    sessions = sorted(by_path.values(), key=lambda s: s.time)
    used: set[int] = set()
    unlinked_before = [(i, e) for i, e in enumerate(entries) if e.session is None and e.phase == "before"]
    for sp in sessions:
        if sp.before:
            continue
        cands = [
            (i, e)
            for i, e in unlinked_before
            if i not in used and sp.time - PAIR_BEFORE_WINDOW <= e.time <= sp.time
        ]
        if cands:
            i, e = max(cands, key=lambda ie: ie[1].time)
            used.add(i)
            sp.before.append(e.pain)
            sp.before_paired = True
    return sessions


def _group(sessions: Sequence[SessionPain]) -> dict:
    after = [s.pain_after for s in sessions if s.pain_after is not None]
    change = [s.change for s in sessions if s.change is not None]
    return {
        "sessions": len(sessions),
        "with_pain_after": len(after),
        "mean_pain_after": _round(_mean(after)),
        "with_change": len(change),
        "mean_change": _round(_mean(change)),
    }


def _compare(name: str, key: dict, with_: list[SessionPain], without: list[SessionPain]) -> dict:
    gw, go = _group(with_), _group(without)
    enough = (
        gw["with_pain_after"] >= MIN_SESSIONS_PER_GROUP and go["with_pain_after"] >= MIN_SESSIONS_PER_GROUP
    )
    enough_change = (
        gw["with_change"] >= MIN_SESSIONS_PER_GROUP and go["with_change"] >= MIN_SESSIONS_PER_GROUP
    )
    diff = gw["mean_pain_after"] - go["mean_pain_after"] if enough else None
    diff_change = gw["mean_change"] - go["mean_change"] if enough_change else None
    return {
        "name": name,
        **key,
        "with": gw,
        "without": go,
        "enough_data": enough,
        "difference_pain_after": _round(diff),
        "difference_change": _round(diff_change),
    }


def summarize(entries: Sequence[Entry], *, weeks: int | None = None, now: datetime | None = None) -> dict:
    """The journal summary as a JSON-ready dict.

    Over the window (the last ``weeks`` weeks, or everything): per exercise
    and per pattern (event kind x exercise), pain after sessions that had it
    vs sessions that did not (mean pain after; mean change after - before
    where both were logged; counts), a difference only when each group has at
    least ``MIN_SESSIONS_PER_GROUP`` sessions; pain by ISO week; red flags."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if weeks is not None and weeks <= 0:
        raise ConfigError(f"--weeks must be a positive whole number, got {weeks}")
    since = now - timedelta(weeks=weeks) if weeks is not None else None
    window = [e for e in entries if since is None or e.time >= since]
    sessions = sessions_from(window)
    exercises = sorted({ex for s in sessions for ex in s.link.exercises})
    patterns = sorted({p for s in sessions for p in s.link.patterns}, key=lambda p: (p[1], p[0]))
    ex_rows = [
        _compare(
            exercise_name(ex),
            {"exercise": ex},
            [s for s in sessions if ex in s.link.exercises],
            [s for s in sessions if ex not in s.link.exercises],
        )
        for ex in exercises
    ]
    pat_rows = []
    for kind, ex in patterns:
        with_ = [s for s in sessions if (kind, ex) in s.link.patterns]
        row = _compare(
            pattern_name(kind, ex),
            {"kind": kind, "exercise": ex},
            with_,
            [s for s in sessions if (kind, ex) not in s.link.patterns],
        )
        row["events"] = sum(s.link.events.get(kind, {}).get(ex, 0) for s in with_)
        pat_rows.append(row)
    pat_rows.sort(
        key=lambda r: (r["difference_pain_after"] is None, -(r["difference_pain_after"] or 0.0), r["name"])
    )
    weeks_rows = []
    by_week: dict[date, list[Entry]] = {}
    for e in window:
        d = e.time.date()
        by_week.setdefault(d - timedelta(days=d.weekday()), []).append(e)
    for monday in sorted(by_week):
        es = by_week[monday]
        iso = monday.isocalendar()
        weeks_rows.append(
            {
                "week": f"{iso[0]}-W{iso[1]:02d}",
                "monday": monday.isoformat(),
                "entries": len(es),
                "mean_pain": _round(_mean(e.pain for e in es)),
                "max_pain": max(e.pain for e in es),
                "mean_before": _round(_mean(e.pain for e in es if e.phase == "before")),
                "mean_after": _round(_mean(e.pain for e in es if e.phase == "after")),
                "sessions": sum(
                    1 for s in sessions if s.time.date() - timedelta(days=s.time.weekday()) == monday
                ),
            }
        )
    flags = red_flags(window)
    return {
        "window": {
            "weeks": weeks,
            "since": None if since is None else format_time(since),
            "until": format_time(now),
        },
        "entries": len(window),
        "sessions": len(sessions),
        "sessions_with_pain_after": sum(1 for s in sessions if s.pain_after is not None),
        "sessions_with_change": sum(1 for s in sessions if s.change is not None),
        "min_sessions_per_group": MIN_SESSIONS_PER_GROUP,
        "exercises": ex_rows,
        "patterns": pat_rows,
        "weeks": weeks_rows,
        "red_flags": [f.as_dict() for f in flags],
        "caveat": "Association, not cause: a pattern that came before higher pain in your journal did not necessarily cause it.",
    }


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.1f}" if signed else f"{x:.1f}"


def _comparison_lines(row: dict, label: str) -> list[str]:
    w, o = row["with"], row["without"]
    lines = [
        f"  {row['name']}" + (f"  ({plural(row['events'], 'flagged event')})" if "events" in row else "")
    ]
    lines.append(
        f"    pain after: {_fmt(w['mean_pain_after'])} with {label} (n={w['with_pain_after']}) vs "
        f"{_fmt(o['mean_pain_after'])} without (n={o['with_pain_after']})"
    )
    if w["with_change"] or o["with_change"]:
        lines.append(
            f"    change after-before: {_fmt(w['mean_change'], True)} with (n={w['with_change']}) vs "
            f"{_fmt(o['mean_change'], True)} without (n={o['with_change']})"
        )
    if not row["enough_data"]:
        lines.append(
            f"    too little data to compare (need at least {MIN_SESSIONS_PER_GROUP} sessions with pain logged after, in each group)"
        )
    else:
        d = row["difference_pain_after"]
        if d >= 1.0:
            lines.append(
                f"    -> came before higher pain: {d:+.1f} points after sessions with {label} (an association, not proof of cause)"
            )
        elif d <= -1.0:
            lines.append(
                f"    -> came before lower pain: {d:+.1f} points (an association, not proof of cause)"
            )
        else:
            lines.append(f"    -> no clear difference ({d:+.1f} points)")
    return lines


def format_summary(s: dict) -> str:
    """The summary as text."""
    win = (
        "all entries" if s["window"]["weeks"] is None else f"the last {plural(s['window']['weeks'], 'week')}"
    )
    out = [
        f"Pain journal summary, {win}: {plural(s['entries'], 'entry')}, {plural(s['sessions'], 'linked session')} "
        f"({s['sessions_with_pain_after']} with pain logged after, {s['sessions_with_change']} with before and after)."
    ]
    msg = red_flag_message(
        [
            RedFlag(f["category"], f["urgent"], f["evidence"], parse_time(f["time"]) if f["time"] else None)
            for f in s["red_flags"]
        ]
    )
    if msg:
        out += ["", msg]
    if s["sessions"] == 0:
        out += [
            "",
            "No sessions linked yet: add pain after a session with 'spinemon journal add --pain N --session FILE'.",
        ]
    else:
        out += ["", "Exercises (pain after sessions that included it vs sessions that did not):"]
        for row in s["exercises"]:
            out += _comparison_lines(row, "it")
        out += [
            "",
            "Flagged patterns (pain after sessions where spinemon flagged it vs sessions where it did not):",
        ]
        if not s["patterns"]:
            out.append("  none: no linked session had a flagged event")
        for row in s["patterns"]:
            out += _comparison_lines(row, "it")
    if s["weeks"]:
        out += [
            "",
            "By week:",
            f"  {'week':<9} {'entries':>7} {'mean':>5} {'max':>4} {'before':>6} {'after':>6} {'sessions':>8}",
        ]
        for w in s["weeks"]:
            out.append(
                f"  {w['week']:<9} {w['entries']:>7} {_fmt(w['mean_pain']):>5} {w['max_pain']:>4} "
                f"{_fmt(w['mean_before']):>6} {_fmt(w['mean_after']):>6} {w['sessions']:>8}"
            )
    out += ["", s["caveat"]]
    return "\n".join(out)
