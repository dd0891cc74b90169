"""Session reports: plots, tables, CSV and one offline HTML page.

``spinemon report FILE [--out DIR] [--lifter NAME]`` re-runs the recording
through the live path (:func:`spinemon.app.export.trace_recording`, the same
walk as replay, with per-sample angles) and writes into DIR:

- ``set-N.png``: lumbar angle over the set, limit bands, events, alerts, rep
  numbers (lateral bend and twist below); ``overview.png``: the whole session
  (sets and timed holds); ``reps.png``: every rep's peak against its limit;
  each also as ``NAME-narrow.png``, drawn for a phone;
- ``sets.csv``, ``reps.csv``, ``events.csv`` (and ``holds.csv`` with timed holds): the tables;
- ``report.html`` (template ``templates/report.html.j2``): who and when (the
  lifter, the date, local clock times), the verdict, the charts (base64 data
  URIs, the phone version on a narrow screen) and the tables, no external resources.

Tables are built generically from the pipeline's summary: fields the pipeline
adds later to ``summary()["sets"]``/``["reps"]``/``["events"]`` (warm-up,
...) and unknown summary sections appear without code changes; unknown
event kinds are drawn and listed like the known ones. A damaged or cut-off
recording says what the loader skipped, as ``replay`` does.

matplotlib and jinja2 are optional (the ``report`` extra): without
matplotlib the CSV files and the page's tables are still written and one
line says the plots were skipped; without jinja2 the page is not written and
one line says so.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from spinemon.app.export import SessionTrace, trace_recording, write_table_csv
from spinemon.app.extras import install_hint
from spinemon.app.plotting import NARROW, WIDE, plot_overview, plot_reps, plot_set, pyplot
from spinemon.app.results import EventLine, RepLine, ReportResult, ReportTables, SetLine
from spinemon.app.session_summary import EventRow, HoldRow, Record, RepRow
from spinemon.app.verdict import event_words
from spinemon.app.words import plural, shown_path
from spinemon.errors import ConfigError, SpinemonError
from spinemon.io.recording import load

__all__ = [
    "ReportResult",
    "ReportTables",
    "build_tables",
    "format_tables",
    "write_report",
]

MISSING_MATPLOTLIB = (
    f"plots skipped: matplotlib is not installed ({install_hint('report')}); wrote the tables only"
)

# summary keys the report shows in their own sections; any other key is shown generically
_KNOWN_SUMMARY_KEYS = {
    "type",
    "events",
    "reps",
    "sets",
    "stats",
    "angle",
    "calibrated",
    "limits",
    "phase",
    "frames",
    "send_failures",
    "monitoring",
    "limits_off",
    "segments",
    "segment_details",
    "side_comparisons",
    "holds",
}
#: rep and set fields of unilateral work, left out of the rows of a session that has none
_SIDE_KEYS = ("side", "side_from", "side_comparison")
# "segment": a resumed recording (live --resume) says which session each set and event belongs to
SET_COLUMNS = ["set", "segment", "exercise", "reps", "t_start", "t_end", "labelled"]
REP_COLUMNS = [
    "set",
    "rep",
    "exercise",
    "t_start",
    "t_end",
    "time_under_tension_s",
    "peak_flexion_deg",
    "peak_extension_deg",
    "range_deg",
]
HOLD_COLUMNS = ["set", "hold", "exercise", "clock", "t_start", "t_end", "duration_s", "faults"]
EVENT_COLUMNS = [
    "kind",
    "what",
    "clock",
    "t_start",
    "t_end",
    "t_alert",
    "peak_deg",
    "limit_deg",
    "set",
    "rep",
    "exercise",
    "segment",
]
# terminal: a compact subset of rep metrics (the CSV and HTML have them all)
_TERMINAL_REP_COLUMNS = [
    "set",
    "rep",
    "exercise",
    "time_under_tension_s",
    "peak_flexion_deg",
    "peak_extension_deg",
    "range_deg",
    "peak_sagittal_velocity_deg_s",
    "events",
]
_SHORT = {
    "time_under_tension_s": "tut_s",
    "peak_flexion_deg": "flex_deg",
    "peak_extension_deg": "ext_deg",
    "peak_sagittal_velocity_deg_s": "vel_deg_s",
    "peak_excursion_deg": "excursion_deg",
}


def _strip_type(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "type"}


def _dicts(rows: Sequence[Record]) -> list[dict]:
    """Typed rows as the dicts a table is written from (CSV, page, terminal): every key each has, in its order."""
    return [r.as_dict() for r in rows]


def _in_rep(e: EventRow, r: RepRow) -> bool:
    return e.set == r.set and e.rep == r.rep


def clock_of(trace: SessionTrace) -> float | None:
    """The wall clock (epoch seconds) at device time 0, or None when the
    recording holds no real time. A frame's host time where it is one (a
    live session stamps each frame as it arrives), else the header's start
    time (written just before the first frame: a simulated or imported
    recording, whose frame times are device times)."""
    from spinemon.app.history import EARLIEST_REAL_TIME, FUTURE_TOLERANCE_S
    from spinemon.io.recording import KIND_META, KIND_RX

    s = trace.samples
    if not len(s):
        return None
    now = time.time() + FUTURE_TOLERANCE_S

    def real(t: float) -> bool:
        return math.isfinite(t) and EARLIEST_REAL_TIME <= t <= now

    recs = trace.recording.records
    first_rx = next((r for r in recs if r.kind == KIND_RX), None)
    if first_rx is not None and real(float(first_rx.t_host)):
        return float(first_rx.t_host) - float(s.t[0])
    head = next((r for r in recs[:1] if r.kind == KIND_META), None)
    if head is not None and real(float(head.t_host)):
        return float(head.t_host) - float(s.t[0])
    return None


def clock_text(clock: float | None, t: Any, fmt: str = "%H:%M:%S") -> str | None:
    """Device time ``t`` as local wall-clock text (None without a clock)."""
    if clock is None or not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
        return None
    return datetime.fromtimestamp(clock + float(t)).astimezone().strftime(fmt)


def when_line(clock: float | None, t0: float, t1: float) -> str | None:
    """``Mon 7 Dec 2026, 18:02-18:47 (UTC+01:00)``: the session's date and local clock times."""
    if clock is None:
        return None
    a = datetime.fromtimestamp(clock + t0).astimezone()
    b = datetime.fromtimestamp(clock + t1).astimezone()
    day = f"{a:%a} {a.day} {a:%b %Y}"
    end = f"{b:%H:%M}" if a.date() == b.date() else f"{b:%a} {b.day} {b:%b %H:%M}"
    off = a.strftime("%z")
    return f"{day}, {a:%H:%M}-{end} (UTC{off[:3]}:{off[3:]})"


def lifter_of(trace: SessionTrace, given: str | None = None) -> str | None:
    """The lifter's name: ``given`` (``report --lifter``), else the recording header's ``lifter``."""
    name = given if given is not None else trace.recording.header.get("lifter")
    return name.strip() if isinstance(name, str) and name.strip() else None


def damage_line(rec: Any) -> str | None:
    """What the loader skipped in a damaged or cut-off recording, as replay says it (None: intact)."""
    parts = []
    if getattr(rec, "corrupt_records", 0):
        parts.append(f"{plural(rec.corrupt_records, 'corrupt record')} skipped")
    if getattr(rec, "truncated", False):
        parts.append("cut off mid-record (read up to its last complete record)")
    if not parts:
        return None
    return "Damaged recording: " + "; ".join(parts) + ". The report shows what could be read."


def hold_rows(tables: ReportTables) -> list[dict]:
    """The holds as the rows of their table (CSV, page, terminal): each fault in words (the hold's own fault)."""
    return [_hold_row(h, tables.clock) for h in tables.holds]


def _hold_row(h: HoldRow, clock: float | None) -> dict:
    row = _strip_type(h.as_dict())
    ex = row.get("exercise")
    row["clock"] = clock_text(clock, row.get("t_start"))
    row["faults"] = "; ".join(
        event_words(str(f.get("kind")), ex)
        + (f" at {f['t_alert']:.1f} s" if isinstance(f.get("t_alert"), (int, float)) else "")
        for f in h.faults or ()
    )
    return row


def build_tables(trace: SessionTrace, lifter: str | None = None) -> ReportTables:
    """The report's tables from a traced session (generic in the fields: a
    row has every key its summary row has, so fields the pipeline adds later
    show up without code changes). ``lifter``: the lifter's name when the
    recording does not hold one."""
    summ = trace.session
    clock = clock_of(trace)
    events: list[EventLine] = []
    for e in summ.events:
        row = _strip_type(e.as_dict())
        kind = row.pop("kind", None)
        row = {
            "kind": kind,
            "what": event_words(str(kind), row.get("exercise")),
            "clock": clock_text(clock, row.get("t_start")),
            **row,
        }
        events.append(EventLine.from_dict(row))
    reps: list[RepLine] = []
    for r in summ.reps:
        row = _without_empty_sides(_strip_type(r.as_dict()))
        evs = [e for e in summ.events if _in_rep(e, r)]
        row["events"] = ";".join(str(e.kind) for e in evs)
        row["alerts"] = sum(1 for e in evs if e.t_alert is not None)
        reps.append(RepLine.from_dict(row))
    sets: list[SetLine] = []
    for s in summ.sets:
        row = _without_empty_sides(_strip_type(s.as_dict()))
        in_set = [e for e in summ.events if e.set == s.set]
        set_reps = [r for r in summ.reps if r.set == s.set]
        flex = [r.peak_flexion_deg for r in set_reps if isinstance(r.peak_flexion_deg, (int, float))]
        ext = [r.peak_extension_deg for r in set_reps if isinstance(r.peak_extension_deg, (int, float))]
        row.setdefault("peak_flexion_deg", round(max(flex), 2) if flex else None)
        row.setdefault("peak_extension_deg", round(min(ext), 2) if ext else None)
        row.setdefault("events", len(in_set))
        row.setdefault("alerts", sum(1 for e in in_set if e.t_alert is not None))
        kinds: dict[str, int] = {}
        for e in in_set:
            kinds[str(e.kind)] = kinds.get(str(e.kind), 0) + 1
        row.setdefault("event_kinds", ";".join(f"{k}={v}" for k, v in kinds.items()))
        sets.append(SetLine.from_dict(row))
    samples = trace.samples
    stats = summ.stats
    cal = trace.result.calibration
    session: dict[str, Any] = {
        "recording": trace.recording.path.name,
        "lifter": lifter_of(trace, lifter),
        "when": when_line(clock, float(samples.t[0]), float(samples.t[-1])) if len(samples) else None,
        "source": trace.recording.header.get("source"),
        "angle": trace.result.angle_label,
        "sensors": "+".join(samples.sensors),
        "rate_hz": round(samples.rate_hz, 3),
        "duration_s": round(float(samples.t[-1] - samples.t[0]), 2) if len(samples) else 0.0,
        "frames": summ.frames if summ.has("frames") else None,
        "samples": stats.get("samples"),
        "lost_samples": stats.get("lost_samples"),
        "bad_frames": stats.get("bad_frames"),
        "damaged_records": int(getattr(trace.recording, "corrupt_records", 0)),
        "truncated": bool(getattr(trace.recording, "truncated", False)),
        "calibrated": summ.calibrated if summ.has("calibrated") else None,
    }
    damage = damage_line(trace.recording)
    if damage:
        session["damage"] = damage
    holds = [HoldRow.from_dict(_strip_type(h.as_dict())) for h in summ.holds]
    session["holds"] = len(holds)
    if summ.has("monitoring"):
        session["monitored"] = summ.monitoring.line()
    for why in summ.limits_off.values():
        session.setdefault("limits_off", []).append(why)
    if (
        trace.result.angle_label != "lumbar flexion"
    ):  # one sensor: the lean limit, the lifter's usual or the norm
        from spinemon.app import lean_history
        from spinemon.core.pipeline import PipelineSettings as _Settings

        head = trace.recording.header
        try:
            recorded = _Settings.from_dict(head.get("settings", {}))
            lean = lean_history.lines(
                lean_history.from_header(head), recorded.exercise, recorded.limit_overrides
            )
        except (SpinemonError, TypeError, ValueError):
            lean = []
        if lean:
            session["lean_limits"] = lean
    rom = None if cal is None else getattr(cal, "rom", None)
    if rom is not None:
        session["rom_flexion_deg"] = round(rom.flexion_deg, 1)
        session["rom_extension_deg"] = round(rom.extension_deg, 1)
    session["sets"] = len(sets)
    session["reps"] = len(reps)
    session["events"] = len(events)
    if len(summ.segment_details) > 1:
        session["sessions"] = sessions_line([dict(d) for d in summ.segment_details])
    other = {k: v for k, v in summ.as_dict().items() if k not in _KNOWN_SUMMARY_KEYS}  # shown as they are
    return ReportTables(
        sets,
        reps,
        events,
        session,
        other,
        summ.monitoring if summ.has("monitoring") else None,
        trace.result.angle_label != "lumbar flexion",
        [dict(c) for c in summ.side_comparisons],
        holds,
        clock,
    )


def _without_empty_sides(row: dict) -> dict:
    """A rep or set row without the side fields when it has no side (a lift done with both sides)."""
    return {k: v for k, v in row.items() if not (k in _SIDE_KEYS and v is None)}


#: the side comparison as table rows: what, and its key in spinemon.core.unilateral.compare_sides
_SIDE_ROWS = (
    ("peak side bend (deg)", "peak_lateral_deg"),
    ("peak twist (deg)", "peak_twist_deg"),
    ("peak flexion (deg)", "peak_flexion_deg"),
)


def side_rows(cmp: Mapping[str, Any]) -> list[dict]:
    """One comparison (a set's or an exercise's) as rows a coach reads:
    per measure, the left reps' mean peak, the right's, and left minus right."""
    asym = cmp.get("asymmetry_deg") or {}
    rows = [{"": "reps", "left": cmp["left"]["reps"], "right": cmp["right"]["reps"], "left - right": None}]
    for name, key in _SIDE_ROWS:
        rows.append(
            {
                "": name,
                "left": cmp["left"].get(key),
                "right": cmp["right"].get(key),
                "left - right": asym.get(key),
            }
        )
    return rows


def sessions_line(details: list[dict]) -> str:
    """What a resumed recording holds: one live session per segment, each
    calibrated on its own, its sets numbered on from the one before."""
    parts = []
    for d in details:
        sets = d.get("sets") or []
        where = (
            "no sets" if not sets else f"set {sets[0]}" if len(sets) == 1 else f"sets {sets[0]}-{sets[-1]}"
        )
        text = f"{d.get('file') or 'segment ' + str(d.get('segment'))}: {where}"
        if d.get("resumed") and d.get("t_offset_s"):
            text += f" (its clock began again; shown from {d['t_offset_s']:.1f} s)"
        parts.append(text)
    return f"{len(details)} sessions (resumed with --resume), each with its own calibration: " + "; ".join(
        parts
    )


def sensor_checks(other: dict) -> list[str]:
    """The sensors' own checks in words: did they stay where calibration
    found them (the still standing before each set), how each was mounted
    (from the calibration bend), what the wearable reported about itself."""
    out = []
    for c in other.get("drift_checks") or []:
        moved = ", ".join(f"{s} {v:.1f} deg" for s, v in (c.get("drift_deg") or {}).items())
        verdict = "moved: re-attach the sensors and calibrate again" if c.get("flagged") else "in place"
        if c.get("rezeroed"):
            verdict += " (neutral taken again from that standing)"
        out.append(
            f"Before set {c.get('set')}: standing still, the sensors were {moved} from where calibration found them: {verdict}."
        )
    align = other.get("alignment") or {}
    if align:
        parts = [
            f"{s} {a['heading_deg']:+.1f} deg (over a {a['bend_deg']:.0f} deg bend)"
            for s, a in align.items()
            if isinstance(a, dict) and "heading_deg" in a and "bend_deg" in a
        ]
        if parts:
            out.append(
                "Sensor heading on the back, found from the calibration bend and taken out of every angle: "
                + "; ".join(parts)
                + "."
            )
    dev = other.get("device")
    if isinstance(dev, dict):
        bits = []
        if dev.get("restarts"):
            bits.append(f"restarted {plural(dev['restarts'], 'time')}")
        lost = dev.get("samples_lost_device")
        if lost is not None:
            bits.append(f"{plural(lost, 'sample')} lost on the wearable")
        if dev.get("samples_lost_link") is not None:
            bits.append(f"{dev['samples_lost_link']} lost on the link")
        if dev.get("guard_alerts"):
            bits.append(f"its own guard buzzed {plural(dev['guard_alerts'], 'time')}")
        if dev.get("heap_free_min") is not None:
            bits.append(f"free memory never below {dev['heap_free_min'] / 1024:.0f} KB")
        if bits:
            out.append("The wearable: " + ", ".join(bits) + ".")
    return out


#: summary keys :func:`sensor_checks` puts in words (not repeated in the technical details)
_IN_WORDS = ("drift_checks", "drift_flagged", "alignment", "device", "held_back")


# -- text ----------------------------------------------------------------------
def _text(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.2f}"
    if isinstance(v, (list, tuple)):
        return ";".join(_text(x) for x in v)
    if isinstance(v, dict):
        return ";".join(f"{k}={_text(x)}" for k, x in v.items())
    return str(v) if str(v) != "" else "-"


def _columns(rows: list[dict], first: Sequence[str]) -> list[str]:
    cols = [c for c in first if any(c in r for r in rows)]
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def _text_table(rows: list[dict], cols: Sequence[str]) -> list[str]:
    heads = [_SHORT.get(c, c) for c in cols]
    cells = [[_text(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
    out = ["  " + "  ".join(h.rjust(w) for h, w in zip(heads, widths))]
    for row in cells:
        out.append("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)))
    return out


#: terminal columns, most important first (a table takes them while they fit the terminal)
_TERM_SET_COLUMNS = [
    "set",
    "exercise",
    "side",
    "reps",
    "clock",
    "alerts",
    "peak_flexion_deg",
    "peak_extension_deg",
    "t_start",
    "t_end",
    "segment",
    "labelled",
    "events",
    "event_kinds",
]
_TERM_REP_COLUMNS = [
    "set",
    "rep",
    "side",
    "peak_flexion_deg",
    "peak_extension_deg",
    "events",
    "time_under_tension_s",
    "range_deg",
    "peak_sagittal_velocity_deg_s",
    "exercise",
    "pelvis_share",
]
_TERM_HOLD_COLUMNS = ["set", "hold", "exercise", "clock", "duration_s", "faults", "t_start", "t_end"]
_TERM_EVENT_COLUMNS = [
    "set",
    "rep",
    "what",
    "kind",
    "clock",
    "peak_deg",
    "limit_deg",
    "t_start",
    "t_alert",
    "t_end",
    "exercise",
    "segment",
]
_TERM_SHORT = {
    **_SHORT,
    "peak_deg": "peak",
    "limit_deg": "limit",
    "t_start": "start_s",
    "t_end": "end_s",
    "t_alert": "buzz_s",
    "duration_s": "held_s",
    "pelvis_share": "hips",
}
_TERM_LEFT = ("exercise", "kind", "events", "faults", "what", "side", "clock", "event_kinds")


def _term_table(rows: list[dict], cols: Sequence[str], where: str, width: int | None) -> list[str]:
    from spinemon.app.tables import fit_table, wrap

    lines, dropped = fit_table(rows, cols, lambda _c, v: _text(v), _TERM_SHORT, width, left=_TERM_LEFT)
    if dropped:
        lines += wrap(f"(not shown for width: {', '.join(dropped)}; all in {where})", width)
    return lines


def format_tables(tables: ReportTables, width: int | None = None) -> str:
    """The summary for the terminal, no wider than ``width`` (the terminal's;
    80 when it is not one): the session, the verdict, then the sets, reps,
    holds and events with their most important columns (all of them are in
    the CSV files and the HTML page)."""
    from spinemon.app.tables import terminal_width, wrap

    width = terminal_width() if width is None else width
    ses = tables.session
    n_sets, n_reps, n_ev = ses["sets"], ses["reps"], ses["events"]
    who = f" ({ses['lifter']})" if ses.get("lifter") else ""
    counts = [
        f"{ses['duration_s']:.0f} s",
        str(ses["angle"]),
        f"{n_sets} set{'s' if n_sets != 1 else ''}",
        f"{n_reps} rep{'s' if n_reps != 1 else ''}",
    ]
    if ses.get("holds"):
        counts.append(f"{ses['holds']} hold{'s' if ses['holds'] != 1 else ''}")
    counts.append(f"{n_ev} event{'s' if n_ev != 1 else ''}")
    lines = wrap(
        f"Session {ses['recording']}{who}: "
        + (ses.get("when") or "no wall-clock time in this recording (device seconds below)"),
        width,
        "",
        "  ",
    )
    lines += wrap(", ".join(counts), width)
    if ses.get("damage"):
        lines += wrap(str(ses["damage"]), width)
    if "sessions" in ses:
        lines += wrap(str(ses["sessions"]), width)
    for v in tables.verdict:
        lines += wrap(v, width)
    if "monitored" in ses:
        lines += wrap(str(ses["monitored"]), width)
    for why in ses.get("limits_off", []):
        lines += wrap(f"limit off: {why}", width)
    for line in ses.get("lean_limits", []):
        lines += wrap(line, width)
    if "rom_flexion_deg" in ses:
        lines += wrap(
            f"range of motion: flexion {ses['rom_flexion_deg']:+.1f} deg, extension {ses['rom_extension_deg']:+.1f} deg",
            width,
        )
    set_rows, rep_rows, event_rows = _dicts(tables.sets), _dicts(tables.reps), _dicts(tables.events)
    clocked = [dict(r, clock=clock_text(tables.clock, r.get("t_start"))) for r in set_rows]
    if tables.sets or not tables.holds:
        lines.append(f"Sets ({len(tables.sets)}):")
        lines += (
            _term_table(
                clocked,
                _TERM_SET_COLUMNS
                + [
                    c for c in _columns(set_rows, ()) if c not in _TERM_SET_COLUMNS and c != "side_comparison"
                ],
                "sets.csv",
                width,
            )
            if tables.sets
            else ["  (none found)"]
        )
    for cmp in tables.sides:
        lines.append(f"Left and right, {cmp.get('exercise')} (mean of the reps' peaks, deg):")
        lines += _term_table(side_rows(cmp), ["", "left", "right", "left - right"], "report.html", width)
    if tables.reps or not tables.holds:
        lines.append(f"Reps ({len(tables.reps)}):")
        lines += (
            _term_table(rep_rows, _TERM_REP_COLUMNS, "reps.csv", width) if tables.reps else ["  (none found)"]
        )
    if tables.holds:
        lines.append(f"Holds ({len(tables.holds)}):")
        lines += _term_table(hold_rows(tables), _TERM_HOLD_COLUMNS, "holds.csv", width)
    lines.append(f"Events ({len(tables.events)}):")
    lines += (
        _term_table(event_rows, _TERM_EVENT_COLUMNS, "events.csv", width) if tables.events else ["  (none)"]
    )
    held = tables.other.get("held_back") or {}
    for why, secs in (held.get("seconds") or {}).items():
        n_held = (held.get("faults") or {}).get(why, 0)
        faults = (
            f"; {n_held} fault{'s' if n_held != 1 else ''} past a limit held back (no buzz)" if n_held else ""
        )
        lines += wrap(f"Limits held back {secs:.1f} s: {why}{faults}.", width, "", "  ")
    checks = sensor_checks(tables.other)
    if checks:
        lines.append("Sensor checks:")
        for c in checks:
            lines += wrap(c, width)
    for k, v in tables.other.items():
        if k in _IN_WORDS or v in (None, [], {}, "", 0, False):
            continue
        if isinstance(v, list):
            lines += wrap(f"{k}: {len(v)} (listed in the HTML)", width, "", "  ")
        else:
            lines += wrap(f"{k}: {_text(v)}", width, "", "  ")
    return "\n".join(lines)


# -- HTML ----------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;margin:0 auto;padding:1em;max-width:1100px;color:#222;line-height:1.4}
h1{font-size:1.4em;margin-bottom:.2em}.sub{margin-top:0;color:#555}h2{margin-top:1.4em;border-bottom:1px solid #ccc;font-size:1.15em}
#verdict{background:#f6f6f0;border-left:5px solid #486;padding:.6em 1em;margin:1em 0}
#verdict li{margin:.3em 0}.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}th{background:#eee}
td.l,th.l{text-align:left}img{max-width:100%;height:auto;border:1px solid #ddd;display:block}
.damage{font-weight:bold;border-left:5px solid #a33;padding-left:.6em}
details{margin:1.5em 0}summary{cursor:pointer;font-weight:bold}.note{color:#a33}"""

#: column and fact names as a coach reads them (anything else: underscores to spaces, units in brackets)
NICE_NAMES = {
    "t_start": "start (s)",
    "t_end": "end (s)",
    "t_alert": "buzz at (s)",
    "kind": "kind",
    "what": "what happened",
    "clock": "clock time",
    "peak_deg": "peak (deg)",
    "limit_deg": "limit (deg)",
    "time_under_tension_s": "time under tension (s)",
    "peak_flexion_deg": "peak flexion (deg)",
    "peak_extension_deg": "peak extension (deg)",
    "range_deg": "range (deg)",
    "peak_sagittal_velocity_deg_s": "peak trunk speed (deg/s)",
    "peak_excursion_deg": "movement (deg)",
    "peak_lateral_deg": "peak side bend (deg)",
    "peak_twist_deg": "peak twist (deg)",
    "peak_trunk_deg": "peak trunk lean (deg)",
    "pelvis_share": "hips' share of the lean",
    "range_moves_before": "warm-up bends before",
    "warmed_up": "warmed up",
    "labelled": "marked by you",
    "rate_hz": "sample rate (Hz)",
    "duration_s": "length (s)",
    "lost_samples": "samples lost",
    "bad_frames": "damaged frames",
    "rom_flexion_deg": "your flexion range (deg)",
    "rom_extension_deg": "your extension range (deg)",
    "event_kinds": "what happened",
    "alerts": "buzzes",
    "side_from": "side found from",
}
#: session facts shown up front; the rest go to the folded technical details
_FACTS = (
    "lifter",
    "when",
    "recording",
    "sessions",
    "angle",
    "sensors",
    "duration_s",
    "monitored",
    "sets",
    "reps",
    "events",
    "rom_flexion_deg",
    "rom_extension_deg",
    "holds",
    "damaged_records",
    "limits_off",
    "lean_limits",
)


def nice(name: str) -> str:
    if name in NICE_NAMES:
        return NICE_NAMES[name]
    for suffix, unit in (("_deg_s", "deg/s"), ("_deg", "deg"), ("_s", "s")):
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("_", " ") + f" ({unit})"
    return name.replace("_", " ")


def _table(rows: list[dict], cols: Sequence[str]) -> dict:
    from spinemon.app import pages

    return pages.table(rows, cols, nice, lambda _c, v: _text(v))


def page_title(tables: ReportTables) -> str:
    """``Ana: Mon 7 Dec 2026, 18:02-18:47 (UTC+01:00)``: who and when (the file name without a clock)."""
    sess = tables.session
    when = sess.get("when") or f"session {sess['recording']}"
    return f"{sess['lifter']}: {when}" if sess.get("lifter") else when[0].upper() + when[1:]


def render_html(tables: ReportTables, plots: dict[str, Path], note: str | None = None) -> str:
    """The report page (template ``report.html.j2``): who and when, the
    verdict first, then the charts (each with a phone-width version where
    drawn: key ``NAME-narrow``), the holds, then the details folded away.
    Everything inline (no external CSS, scripts or images), so it opens
    offline, on a phone-width screen as on a laptop."""
    from spinemon.app import pages

    sess = tables.session

    def chart(key: str, alt: str) -> dict | None:
        return pages.plot(plots[key], plots.get(f"{key}-narrow"), alt) if key in plots else None

    set_rows, rep_rows = _dicts(tables.sets), _dicts(tables.reps)
    set_plots = []
    for st in set_rows:
        n = st.get("set")
        c = chart(f"set-{n}", f"set {n}")
        if c is not None:
            side = f" ({st['side']})" if st.get("side") else ""
            clock = clock_text(tables.clock, st.get("t_start"), "%H:%M")
            at = f", {clock}" if clock else ""
            set_plots.append({"heading": f"Set {_text(n)}: {_text(st.get('exercise'))}{side}{at}", "plot": c})
    counts = f"{sess['sets']} set{'s' if sess['sets'] != 1 else ''}, {sess['reps']} rep{'s' if sess['reps'] != 1 else ''}"
    if sess.get("holds"):
        counts += f", {sess['holds']} hold{'s' if sess['holds'] != 1 else ''}"
    facts = {k: sess[k] for k in _FACTS if k in sess and sess[k] is not None}
    tech = {k: v for k, v in sess.items() if k not in _FACTS and k != "damage"}
    extra: list[dict[str, Any]] = []
    for k, v in tables.other.items():
        if v in (None, [], {}, "", 0, False) or k in _IN_WORDS:
            continue
        if isinstance(v, list) and all(isinstance(x, dict) for x in v):
            extra.append({"name": nice(str(k)), "table": _table(v, _columns(v, ())), "text": ""})
        elif isinstance(v, dict):
            extra.append({"name": nice(str(k)), "table": _table([v], list(v)), "text": ""})
        else:
            extra.append({"name": nice(str(k)), "table": None, "text": _text(v)})
    rep_cols = REP_COLUMNS + ["side", "pelvis_share", "events", "alerts"]
    return pages.render(
        "report.html.j2",
        css=_CSS,
        title=page_title(tables),
        subtitle=f"Recording {sess['recording']}: {sess['duration_s']:.0f} s, {sess['angle']}, {counts}.",
        damage=sess.get("damage"),
        note=note,
        verdict=tables.verdict,
        plots={
            "reps": chart("reps", "peak angle of every rep against your limit"),
            "overview": chart("overview", "session overview"),
        },
        set_plots=set_plots,
        holds=_table(hold_rows(tables), _columns(hold_rows(tables), HOLD_COLUMNS)) if tables.holds else None,
        sides=[
            {
                "exercise": _text(c.get("exercise")).replace("_", " "),
                "words": c.get("words", ""),
                "table": _table(side_rows(c), ["", "left", "right", "left - right"]),
            }
            for c in tables.sides
        ],
        facts=_table([facts], list(facts)),
        sets=_table(
            set_rows,
            [c for c in _columns(set_rows, SET_COLUMNS) if c not in ("event_kinds", "side_comparison")],
        ),
        reps=_table(
            rep_rows,
            [
                c
                for c in _columns(rep_rows, REP_COLUMNS + ["side", "pelvis_share", "events"])
                if c in rep_cols
            ],
        ),
        events=_table(_dicts(tables.events), _columns(_dicts(tables.events), EVENT_COLUMNS)),
        checks=sensor_checks(tables.other),
        tech=_table([tech], list(tech)) if tech else None,
        extra=extra,
        times=(
            "times of day in local time (the tables' seconds are the wearable's clock)"
            if tables.clock is not None
            else "times in device seconds (this recording holds no wall-clock time)"
        ),
    )


# -- the whole report --------------------------------------------------------
def write_report(
    trace: SessionTrace,
    out_dir: str | os.PathLike,
    *,
    plots: bool = True,
    lifter: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Write the CSV tables, the PNGs (if matplotlib is available and
    ``plots``: each chart at laptop width, ``NAME.png``, and at phone width,
    ``NAME-narrow.png``) and ``report.html`` (if jinja2 is available) into
    ``out_dir`` (created if needed). ``lifter``: the lifter's name where the
    recording holds none; ``progress(step)`` is called before each chart."""
    from spinemon.app import pages

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the report folder {out}: {e.strerror}") from None
    if not out.is_dir():
        raise ConfigError(f"{out} is not a folder; choose another --out")
    tables = build_tables(trace, lifter)
    csvs = {
        "sets": out / "sets.csv",
        "reps": out / "reps.csv",
        "events": out / "events.csv",
    }
    write_table_csv(csvs["sets"], _dicts(tables.sets), SET_COLUMNS)
    write_table_csv(csvs["reps"], _dicts(tables.reps), REP_COLUMNS)
    write_table_csv(csvs["events"], _dicts(tables.events), EVENT_COLUMNS)
    if tables.holds:
        csvs["holds"] = out / "holds.csv"
        write_table_csv(csvs["holds"], hold_rows(tables), HOLD_COLUMNS)
    pngs: dict[str, Path] = {}
    skipped = []
    if plots:
        plt = pyplot()
        if plt is None:
            skipped.append(MISSING_MATPLOTLIB)
        else:
            for style, suffix in ((WIDE, ""), (NARROW, "-narrow")):
                if progress is not None:
                    progress(f"charts{' (phone width)' if style.narrow else ''}")
                reps_png = plot_reps(plt, trace, tables, out / f"reps{suffix}.png", style)
                if reps_png is not None:
                    pngs[f"reps{suffix}"] = reps_png
                pngs[f"overview{suffix}"] = plot_overview(
                    plt, trace, tables, out / f"overview{suffix}.png", style
                )
                for st in tables.sets:
                    if st.t_start is None or st.t_end is None:
                        continue
                    name = f"set-{st.set}{suffix}"
                    pngs[name] = plot_set(plt, trace, tables, st, out / f"{name}.png", style=style)
    page: Path | None = None
    if not pages.available():
        skipped.append(f"report.html not written: {pages.MISSING_JINJA2}; wrote the tables and charts")
    else:
        page = out / "report.html"
        try:
            # a file name that is not UTF-8 (its bytes kept as surrogates) shows as U+FFFD, never a half-written page
            page.write_text(
                shown_path(render_html(tables, pngs, "; ".join(skipped) or None)), encoding="utf-8"
            )
        except OSError as e:
            raise ConfigError(f"cannot write {page}: {e.strerror}") from None
    return ReportResult(out, page, csvs, list(pngs.values()), tables, "; ".join(skipped) or None)


def report_row(path: str, out_dir: str, lifter: str | None = None) -> dict:
    """One recording's report into ``out_dir``/<name>/ (a worker of :func:`main` for several recordings)."""
    from spinemon.app.season import replay_row

    row = replay_row(path)
    if row.get("error"):
        return row
    from spinemon.app.history import facts_from

    try:
        rec = load(path)
        trace = trace_recording(rec)
        res = write_report(trace, Path(out_dir) / Path(path).stem, lifter=lifter)
        if res.html is not None:
            row["report"] = f"{Path(path).stem}/{res.html.name}"  # relative to out_dir
        row["history"] = facts_from(rec, trace.result, path)  # for the index's History section
    except SpinemonError as e:
        row["error"] = str(e)
    return row
