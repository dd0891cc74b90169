"""Progress over weeks: ``spinemon history [DIR]`` (issue 14).

Every recording in DIR is replayed through the product's replay path, in
parallel across cores (:mod:`spinemon.app.season`), and summarised per exercise
and ISO week: sessions, sets, reps, alerts per 100 reps, peak flexion at the
bottom of the rep (the median of each rep's peak lumbar flexion), creep (the
mean rise of rep peak flexion from a set's first rep to its last) and the
hips' share of the lean (mean ``pelvis_share`` of hinge and squat reps), with
the pain journal beside it (entries of that week, mean and max pain, and the
entries linked to the week's sessions with ``journal add --session``).

The date of a session is the start time in its header (the time the
recording's header record was written: ``RecordingWriter`` stamps it with the
host clock when ``live``, ``simulate`` or ``import`` start writing), unless
that is not a real date (before 2000 or in the future: a host whose clock was
never set), then the file's modification time; every session says which.
Weeks are ISO weeks of the UTC date, as in ``spinemon journal summary``.

Angles need two sensors: a one-sensor recording counts its sessions, sets,
reps and alerts, but its inclination is not the lumbar angle, so it adds
nothing to peak flexion, creep or the hips' share.

One job per piece: :func:`session_facts` (a worker: one recording -> a small
picklable dict), :func:`build` (facts + journal -> weekly rows, pure),
:func:`format_text`, :func:`verdict` and :func:`html_section`
(output), the command is :mod:`spinemon.app.commands.history`; the chart is :func:`spinemon.app.plotting.plot`.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from spinemon.app.extras import install_hint
from spinemon.app.session_summary import EventRow, RepRow, SetRow
from spinemon.app.verdict import EXTENSION_LIFTS
from spinemon.app.words import plural
from spinemon.errors import ConfigError, SpinemonError, UsageProblem

__all__ = [
    "MISSING_MATPLOTLIB",
    "UsageProblem",
    "build",
    "facts_from",
    "format_text",
    "html_section",
    "identities",
    "indexed_facts",
    "session_date",
    "session_facts",
    "store_facts",
    "table_rows",
    "verdict",
]

MISSING_MATPLOTLIB = f"--png needs matplotlib, which is not installed: {install_hint('report')}"
#: a header start time before this (2000-01-01 UTC) is a host clock that was never set
EARLIEST_REAL_TIME = 946684800.0
FUTURE_TOLERANCE_S = 86400.0


# ---------------------------------------------------------------------------
# one recording (runs in a worker process)
# ---------------------------------------------------------------------------
def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_date(rec, path: Path, now: float | None = None) -> tuple[str, str, str | None]:
    """``(UTC time, "header" | "mtime", why the header was not used)`` of a loaded recording."""
    from spinemon.io.recording import KIND_META

    now = time.time() if now is None else now
    why = "its header has no start time"
    heads = [r for r in rec.pieces_in(0, 1) if r.kind == KIND_META]  # no Record list built for it
    if heads:
        t = float(heads[0].t_host)
        if math.isfinite(t) and EARLIEST_REAL_TIME <= t <= now + FUTURE_TOLERANCE_S:
            return _utc(t), "header", None
        why = "its header start time is not a real date (the recording host's clock was wrong)"
    try:
        return _utc(path.stat().st_mtime), "mtime", why
    except OSError as e:  # the file went away after loading
        raise ConfigError(f"{path}: cannot read its modification time ({e.strerror})") from None


def facts_from(rec, result, path: str | os.PathLike) -> dict:
    """What the history needs of one replayed recording (``result`` is the
    :class:`~spinemon.app.results.SessionResult` of replay or of a report's trace)."""
    from spinemon.app.verdict import HINGES
    from spinemon.core.detect import DEFAULT_ROM, profile
    from spinemon.core.pipeline import PipelineSettings

    p = Path(path)
    summ = result.session
    when, date_from, why = session_date(rec, p)
    one_sensor = result.angle_label != "lumbar flexion"
    try:
        settings = PipelineSettings.from_dict(rec.header.get("settings", {}))
    except (SpinemonError, TypeError, ValueError):
        settings = PipelineSettings()
    default_ex = settings.exercise or "generic"

    def ex_of(row: SetRow | RepRow | EventRow) -> str:
        ex = row.exercise
        return ex if isinstance(ex, str) and ex else default_ex

    per: dict[str, dict] = {}

    def slot(ex: str) -> dict:
        return per.setdefault(
            ex,
            {
                "sets": 0,
                "reps": 0,
                "alerts": 0,
                "events": 0,
                "peaks": [],
                "ext_peaks": [],
                "lean_peaks": [],
                "creeps": [],
                "shares": [],
                "flexion_limit_deg": None,
                "extension_limit_deg": None,
            },
        )

    for s in summ.sets:
        slot(ex_of(s))["sets"] += 1
    by_set: dict[tuple[str, Any], list[RepRow]] = {}
    for r in summ.reps:
        ex = ex_of(r)
        d = slot(ex)
        d["reps"] += 1
        peak = r.peak_flexion_deg
        if one_sensor and isinstance(peak, (int, float)):
            d["lean_peaks"].append(
                round(float(peak), 2)
            )  # the sensor's inclination: lean (core.lean_baseline)
        if one_sensor or not isinstance(peak, (int, float)):
            continue
        d["peaks"].append(float(peak))
        ext = r.peak_extension_deg
        if isinstance(ext, (int, float)):
            d["ext_peaks"].append(float(ext))
        share = r.pelvis_share
        if ex in HINGES and isinstance(share, (int, float)):
            d["shares"].append(float(share))
        if r.set is not None:
            by_set.setdefault((ex, r.set), []).append(r)
    for (ex, _), reps in by_set.items():
        reps = sorted(reps, key=lambda r: r.rep or 0)
        if len(reps) >= 2:
            per[ex]["creeps"].append(float(reps[-1].peak_flexion_deg) - float(reps[0].peak_flexion_deg))
    for e in summ.events:
        d = slot(ex_of(e))
        d["events"] += 1
        d["alerts"] += e.t_alert is not None
    if not per:
        slot(default_ex)  # a session with nothing found still happened (walking, a rest day on the wearable)
    rom = result.calibration.range_of_motion if result.calibration is not None else DEFAULT_ROM
    for ex, d in per.items():
        if not one_sensor:
            try:
                lim = profile(ex, settings.limit_overrides).limits(rom)
                d["flexion_limit_deg"], d["extension_limit_deg"] = lim.flexion_deg, lim.extension_deg
            except SpinemonError:
                pass
    return {
        "recording": str(p),
        "resolved": str(p.resolve()),
        "error": None,
        "time": when,
        "date_from": date_from,
        "date_note": why,
        "truncated": bool(rec.truncated),
        "corrupt_records": int(rec.corrupt_records),
        "one_sensor": one_sensor,
        "exercises": per,
    }


def session_facts(path: str) -> dict:
    """Load and replay one recording (the product's replay path) -> :func:`facts_from`, or a row with its error."""
    from spinemon.app.replay import replay
    from spinemon.io.recording import load

    try:
        rec = load(path)
        return facts_from(rec, replay(rec), path)
    except SpinemonError as e:
        return {"recording": str(path), "error": str(e)}


#: what :func:`facts_from` gives, for the session index (an entry keeps only for the same kind)
FACTS_KIND = "history-facts-2"


def indexed_facts(
    paths: Sequence[Path], jobs: int | None, notes: list[str], index=None
) -> tuple[list[dict], int]:
    """:func:`session_facts` of every recording, in order, taken from the
    session index (:mod:`spinemon.io.session_index`) where the recording and
    the analysis are unchanged, replayed (in parallel) and stored where not.
    Returns the facts and how many recordings were replayed."""
    import sys

    from spinemon.app import season
    from spinemon.io import session_index

    own = index is None
    idx = session_index.SessionIndex() if own else index
    try:
        analysis = session_index.analysis_key(FACTS_KIND)
        out: list[dict | None] = [None] * len(paths)
        todo: list[tuple[int, Any]] = []
        for i, (p, ident) in enumerate(zip(paths, identities(paths))):
            # a recording that cannot be read is replayed: its error comes from there
            hit = idx.get(p, ident, analysis) if ident is not None else None
            if hit is not None:
                out[i] = {**hit, "recording": str(p), "resolved": str(Path(p).resolve())}
            else:
                todo.append((i, ident))
        todo_paths = [paths[i] for i, _ in todo]
        fresh = season.run_many(
            session_facts,
            todo_paths,
            jobs=jobs,
            progress=sys.stderr if todo_paths and (sys.stderr.isatty() or len(todo_paths) > 1) else None,
        )
        for (i, ident), f in zip(todo, fresh):
            out[i] = f
            if ident is not None and not f.get("error"):
                idx.put(paths[i], ident, analysis, f)
        notes.extend(idx.notes)
    finally:
        if own:
            idx.close()
    return [f for f in out if f is not None], len(todo)


def identities(paths: Sequence[Path]) -> list:
    """:func:`spinemon.io.session_index.identify` of each recording (None where it cannot be read)."""
    from spinemon.io import session_index

    out: list[session_index.Identity | None] = []
    for p in paths:
        try:
            out.append(session_index.identify(p))
        except OSError:
            out.append(None)
    return out


def store_facts(items: Sequence[tuple[Path, Any, dict | None]], notes: list[str]) -> None:
    """Keep facts computed elsewhere (``spinemon report`` of several
    recordings) in the session index: ``(path, identity, facts)``; a later
    ``history`` over the same recordings replays none of them."""
    from spinemon.io import session_index

    with session_index.SessionIndex() as idx:
        analysis = session_index.analysis_key(FACTS_KIND)
        for p, ident, f in items:
            if ident is not None and f and not f.get("error"):
                idx.put(p, ident, analysis, f)
        notes.extend(idx.notes)


# ---------------------------------------------------------------------------
# weeks
# ---------------------------------------------------------------------------
def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _week_name(monday: date) -> str:
    iso = monday.isocalendar()
    return f"{iso[0]}-W{iso[1]:02d}"


def _parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def nice_exercise(ex: str) -> str:
    return str(ex).replace("_", " ")


def build(facts: Sequence[dict], entries: Sequence = (), journal_info: dict | None = None) -> dict:
    """Weekly rows per exercise from :func:`facts_from` dicts (readable ones),
    with the journal ``entries`` (:class:`spinemon.app.journal.Entry`) beside them."""
    sessions = sorted(
        (dict(f) for f in facts if not f.get("error")), key=lambda f: (f["time"], f["recording"])
    )
    for f in sessions:
        f["monday"] = _monday(_parse_utc(f["time"]).date())
        f["week"] = _week_name(f["monday"])
    # journal: entries by the week they were logged in; linked entries to their session
    by_path = {f["resolved"]: f for f in sessions}
    by_start = {f["time"]: f for f in sessions if f["date_from"] == "header"}
    week_entries: dict[date, list] = {}
    linked: dict[int, list[tuple[Any, dict]]] = {}  # id(session facts) -> [(entry, facts)]
    for e in entries:
        week_entries.setdefault(_monday(e.time.date()), []).append(e)
        if e.session is not None:
            found = by_path.get(e.session.path) or (
                by_start.get(e.session.start) if e.session.start else None
            )
            if found is not None:
                linked.setdefault(id(found), []).append(e)

    def link_dict(e, f: dict | None) -> dict:
        return {
            "time": e.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pain": e.pain,
            "phase": e.phase,
            "recording": Path(e.session.path).name,
            "path": e.session.path,
            "in_history": f is not None,
            **({"session_week": f["week"]} if f is not None else {}),
        }

    def journal_week(monday: date) -> dict:
        es = week_entries.get(monday, [])
        return {
            "entries": len(es),
            "mean_pain": _r(_mean([e.pain for e in es])),
            "max_pain": max((e.pain for e in es), default=None),
        }

    groups: dict[tuple[str, date], list[dict]] = {}
    for f in sessions:
        for ex in f["exercises"]:
            groups.setdefault((ex, f["monday"]), []).append(f)
    rows = []
    for ex, monday in sorted(groups, key=lambda k: (k[0], k[1])):
        fs = groups[(ex, monday)]
        ds = [f["exercises"][ex] for f in fs]
        reps = sum(d["reps"] for d in ds)
        alerts = sum(d["alerts"] for d in ds)
        peaks = [p for d in ds for p in d["peaks"]]
        creeps = [c for d in ds for c in d["creeps"]]
        shares = [s for d in ds for s in d["shares"]]
        limits = [d["flexion_limit_deg"] for d in ds if d.get("flexion_limit_deg") is not None]
        ext_peaks = [p for d in ds for p in d.get("ext_peaks", [])]
        ext_limits = [d["extension_limit_deg"] for d in ds if d.get("extension_limit_deg") is not None]
        extension = ex in EXTENSION_LIFTS
        peak = (
            _r(statistics.median(ext_peaks if extension else peaks))
            if (ext_peaks if extension else peaks)
            else None
        )
        limit_list = ext_limits if extension else limits
        limit = _r(statistics.median(limit_list)) if limit_list else None
        links = [link_dict(e, f) for f in fs for e in linked.get(id(f), [])]
        links.sort(key=lambda x: x["time"])
        rows.append(
            {
                "exercise": ex,
                "week": _week_name(monday),
                "monday": monday.isoformat(),
                "sessions": len(fs),
                "sets": sum(d["sets"] for d in ds),
                "reps": reps,
                "alerts": alerts,
                "events": sum(d["events"] for d in ds),
                "alerts_per_100_reps": _r(100.0 * alerts / reps) if reps else None,
                "peak_flexion_deg": _r(statistics.median(peaks)) if peaks else None,
                "creep_deg": _r(_mean(creeps)),
                "pelvis_share": _r(_mean(shares), 3),
                "flexion_limit_deg": _r(statistics.median(limits)) if limits else None,
                # the angle of the exercise's fault: extension for presses and curls (an arch), else flexion
                "watched": "extension" if extension else "flexion",
                "peak_deg": peak,
                "limit_deg": limit,
                "one_sensor_sessions": sum(1 for f in fs if f["one_sensor"]),
                "dated_by": {k: sum(1 for f in fs if f["date_from"] == k) for k in ("header", "mtime")},
                "recordings": [Path(f["recording"]).name for f in fs],
                "journal": {**journal_week(monday), "linked": links},
            }
        )
    mondays = sorted({f["monday"] for f in sessions} | set(week_entries))
    weeks = []
    for monday in mondays:
        es = week_entries.get(monday, [])
        weeks.append(
            {
                "week": _week_name(monday),
                "monday": monday.isoformat(),
                "sessions": sum(1 for f in sessions if f["monday"] == monday),
                "journal": {
                    **journal_week(monday),
                    "links": [
                        link_dict(e, by_path.get(e.session.path) or by_start.get(e.session.start or ""))
                        for e in es
                        if e.session is not None
                    ],
                },
            }
        )
    doc: dict[str, Any] = {
        "sessions": [
            {
                "recording": f["recording"],
                "time": f["time"],
                "week": f["week"],
                "date_from": f["date_from"],
                "date_note": f["date_note"],
                "truncated": f["truncated"],
                "corrupt_records": f["corrupt_records"],
                "one_sensor": f["one_sensor"],
                "exercises": sorted(f["exercises"]),
            }
            for f in sessions
        ],
        "rows": rows,
        "weeks": weeks,
        "unreadable": [{"recording": f["recording"], "error": f["error"]} for f in facts if f.get("error")],
        "dates": {k: sum(1 for f in sessions if f["date_from"] == k) for k in ("header", "mtime")},
        "journal": journal_info or {"path": None, "exists": False, "entries": len(entries)},
        "definitions": {
            "week": "ISO week of the session's UTC date (as in 'spinemon journal summary')",
            "alerts_per_100_reps": "alerts (buzzes) in the exercise / its reps x 100",
            "peak_flexion_deg": "median of each rep's peak lumbar flexion at the bottom of the rep (two sensors)",
            "creep_deg": "mean rise of rep peak flexion from a set's first rep to its last (two sensors)",
            "pelvis_share": "mean share of the trunk's forward lean that came from the hips, hinge and squat reps (two sensors), 0..1",
            "flexion_limit_deg": "the flexion limit in effect (median over the week's sessions)",
            "watched": "the angle of the exercise's fault: extension for presses and curls (an arch), flexion for the others",
            "peak_deg": "median of each rep's peak in the watched angle (extension negative), two sensors",
            "limit_deg": "the limit of the watched angle in effect (median over the week's sessions)",
        },
    }
    for ex in doc["rows"]:
        ex["journal"]["linked_mean_pain"] = _r(_mean([x["pain"] for x in ex["journal"]["linked"]]))
    doc["verdict"] = verdict(doc)
    return doc


# ---------------------------------------------------------------------------
# words
# ---------------------------------------------------------------------------
def _trend(name: str, a: float, b: float, unit: str = "", fmt: str = "{:.0f}") -> str:
    sa, sb = fmt.format(a), fmt.format(b)
    if sa == sb:
        return f"{name} stayed at {sa}{unit}"
    return f"{name} {'fell' if b < a else 'rose'} from {sa} to {sb}{unit}"


def verdict(doc: dict) -> list[str]:
    """One sentence per exercise (first week with reps against the last), then one for the pain journal."""
    lines = []
    by_ex: dict[str, list[dict]] = {}
    for r in doc["rows"]:
        by_ex.setdefault(r["exercise"], []).append(r)
    for ex, rows in by_ex.items():
        name = nice_exercise(ex)
        with_reps = [r for r in rows if r["reps"]]
        if not with_reps:
            n = len(rows)
            n_s, n_a = sum(r["sessions"] for r in rows), sum(r["alerts"] for r in rows)
            lines.append(
                f"{name}: no reps in {plural(n, 'week')} ({plural(n_s, 'session')}); {plural(n_a, 'alert')}."
            )
            continue
        a, b = with_reps[0], with_reps[-1]
        if a is b:
            parts = [
                f"one week so far ({a['week']}): {a['alerts_per_100_reps']:.0f} alerts per 100 reps ({a['alerts']} in {plural(a['reps'], 'rep')})"
            ]
            if a.get("peak_deg") is not None:
                parts.append(f"peak {a['watched']} at the bottom {a['peak_deg']:.0f} deg")
            lines.append(f"{name}: " + "; ".join(parts) + ".")
            continue
        span = (date.fromisoformat(b["monday"]) - date.fromisoformat(a["monday"])).days // 7 + 1
        trained = len(with_reps)
        over = f" over {span} weeks" + (f" ({trained} with reps)" if trained != span else "")
        parts = [_trend("alerts per 100 reps", a["alerts_per_100_reps"], b["alerts_per_100_reps"]) + over]
        if a.get("peak_deg") is not None and b.get("peak_deg") is not None:
            parts.append(f"peak {a['watched']} at the bottom {a['peak_deg']:.0f} -> {b['peak_deg']:.0f} deg")
        if a["creep_deg"] is not None and b["creep_deg"] is not None:
            parts.append(f"creep over a set {a['creep_deg']:+.0f} -> {b['creep_deg']:+.0f} deg")
        if a["pelvis_share"] is not None and b["pelvis_share"] is not None:
            parts.append(f"hips' share of the lean {a['pelvis_share']:.0%} -> {b['pelvis_share']:.0%}")
        lines.append(f"{name}: " + "; ".join(parts) + ".")
    pain_weeks = [w for w in doc["weeks"] if w["journal"]["entries"]]
    if len(pain_weeks) >= 2:
        a, b = pain_weeks[0], pain_weeks[-1]
        lines.append(
            f"pain journal: mean pain {a['journal']['mean_pain']:.1f} in {a['week']} -> {b['journal']['mean_pain']:.1f} in {b['week']} "
            f"(an association, not proof of cause)."
        )
    elif len(pain_weeks) == 1:
        w = pain_weeks[0]
        lines.append(
            f"pain journal: {w['journal']['entries']} entr{'ies' if w['journal']['entries'] != 1 else 'y'} in {w['week']}, mean pain {w['journal']['mean_pain']:.1f}."
        )
    return lines


#: (key, heading), most important first: the terminal takes them while they fit (80 columns off a terminal)
TEXT_COLUMNS = (
    ("exercise", "exercise"),
    ("week", "week"),
    ("reps", "reps"),
    ("alerts_per_100_reps", "alerts/100"),
    ("peak_deg", "peak"),
    ("limit_deg", "limit"),
    ("pain_mean", "pain"),
    ("sessions", "sess"),
    ("alerts", "alerts"),
    ("creep_deg", "creep"),
    ("pelvis_share", "hips%"),
    ("sets", "sets"),
    ("pain_max", "pain max"),
    ("pain_entries", "entries"),
    ("linked", "linked"),
    ("monday", "from"),
)
#: what the short headings mean, said under the table
TEXT_KEY = (
    "alerts/100: alerts per 100 reps; peak: median of each rep's peak at the bottom, in the angle of the "
    "exercise's fault (flexion; extension, negative, for presses and curls) against its limit; "
    "pain: mean pain (0-10) in the journal that week; sess: sessions; creep: mean rise of rep peak flexion "
    "from a set's first rep to its last; hips%: the hips' share of the trunk's lean in hinge and squat reps; "
    "angles need two sensors."
)


def _cell(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if key == "pelvis_share":
        return f"{100 * v:.0f}"
    if key == "creep_deg":
        return f"{v:+.1f}"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def table_rows(doc: dict) -> list[dict]:
    """The rows of the text/HTML table: one per exercise x week, and a row per
    journal week without a session (pain in a week without training)."""
    out = []
    for r in doc["rows"]:
        j = r["journal"]
        out.append(
            {
                **r,
                "exercise": nice_exercise(r["exercise"]),
                "pain_entries": j["entries"],
                "pain_mean": j["mean_pain"],
                "pain_max": j["max_pain"],
                "linked": len(j["linked"]),
            }
        )
    for w in doc["weeks"]:
        if not w["sessions"]:
            j = w["journal"]
            out.append(
                {
                    "exercise": "(no session)",
                    "week": w["week"],
                    "monday": w["monday"],
                    "pain_entries": j["entries"],
                    "pain_mean": j["mean_pain"],
                    "pain_max": j["max_pain"],
                }
            )
    return out


def format_text(doc: dict, width: int | None = None) -> str:
    """The weekly table (its most important columns, no wider than ``width``:
    the terminal's, 80 off a terminal), the verdict and where the dates came from."""
    from spinemon.app.tables import fit_table, terminal_width, wrap

    width = terminal_width() if width is None else width
    lines, dropped = fit_table(
        table_rows(doc),
        [k for k, _ in TEXT_COLUMNS],
        _cell,
        dict(TEXT_COLUMNS),
        width,
        indent="",
        left=("exercise", "week", "monday"),
    )
    if dropped:
        lines += wrap(f"(not shown for width: {', '.join(dropped)}; all in --json)", width, "", "  ")
    lines.append("")
    for v in doc["verdict"]:
        lines += wrap(v, width, "", "  ")
    d = doc["dates"]
    dated = [f"{d['header']} from the recording header's start time"]
    if d["mtime"]:
        names = [Path(s["recording"]).name for s in doc["sessions"] if s["date_from"] == "mtime"]
        dated.append(
            f"{d['mtime']} from the file's modification time ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}: no real start time in the header)"
        )
    lines += wrap("dates: " + "; ".join(dated) + "; weeks are ISO weeks (UTC).", width, "", "  ")
    lines += wrap(TEXT_KEY, width, "", "  ")
    return "\n".join(lines)


#: the weekly table on the index page: every column but the Monday, named in full
HTML_COLUMNS = [
    ("exercise", "exercise"),
    ("week", "week"),
    ("sessions", "sessions"),
    ("sets", "sets"),
    ("reps", "reps"),
    ("alerts", "alerts"),
    ("alerts_per_100_reps", "alerts per 100 reps"),
    ("watched", "angle watched"),
    ("peak_deg", "peak (deg)"),
    ("limit_deg", "limit (deg)"),
    ("creep_deg", "creep (deg)"),
    ("pelvis_share", "hips' share (%)"),
    ("pain_entries", "pain entries"),
    ("pain_mean", "pain mean (0-10)"),
    ("pain_max", "pain max"),
    ("linked", "linked"),
]


def section_context(doc: dict, png: Path | None = None, narrow: Path | None = None) -> dict:
    """What the History section's template (``history_section.html.j2``) shows."""
    from spinemon.app import pages

    heads = dict(HTML_COLUMNS)
    chart = None
    if png is not None and png.exists():
        chart = pages.plot(
            png,
            narrow if narrow is not None and narrow.exists() else None,
            "peak and alerts per 100 reps per week, per exercise",
        )
    return {
        "verdict": doc["verdict"],
        "chart": chart,
        "weeks": pages.table(table_rows(doc), [k for k, _ in HTML_COLUMNS], lambda k: heads[k], _cell),
        "dates": doc["dates"],
    }


def html_section(doc: dict, png: Path | None = None, narrow: Path | None = None) -> str:
    """The History section of the season index (a template): the verdict in
    words, the chart (``narrow``: its phone-width version), the weekly table."""
    from spinemon.app import pages

    return pages.render("history_section.html.j2", **section_context(doc, png, narrow))


# ---------------------------------------------------------------------------
# the journal
# ---------------------------------------------------------------------------
def load_journal(path: str | None, notes: list[str]) -> tuple[list, dict]:
    """Journal entries for the history, and what was read. A missing default
    journal is a note (the pain columns stay empty); a missing ``--journal``
    is a command-line error (:class:`UsageProblem`)."""
    from spinemon.app.journal import Journal, JournalError

    j = Journal(path)
    rep = j.load()
    info = {
        "path": str(j.path),
        "exists": rep.exists,
        "entries": len(rep.entries),
        "skipped_lines": rep.skipped_lines,
    }
    if not rep.exists:
        if path is not None:
            raise UsageProblem(
                f"--journal {path} does not exist; give your journal file (written by 'spinemon journal add') or leave --journal out"
            )
        notes.append(
            f"no pain journal at {j.path}: the pain columns stay empty (log pain with 'spinemon journal add --pain N --session FILE')"
        )
    elif rep.skipped_lines and not rep.entries and not (rep.torn_last_line and len(rep.skipped_lines) == 1):
        raise JournalError(
            f"{j.path} has no readable journal entries ({plural(len(rep.skipped_lines), 'unreadable line')}); check that --journal points at a spinemon journal (.jsonl)"
        )
    elif rep.skipped_lines:
        notes.append(f"skipped {plural(len(rep.skipped_lines), 'unreadable line')} in {j.path}")
    return rep.entries, info
