"""Session reports: plots, tables, CSV and one offline HTML page.

``spinemon report FILE [--out DIR]`` re-runs the recording through the live
path (:func:`spinemon.app.export.trace_recording`, the same walk as replay, with
per-sample angles) and writes into DIR:

- ``set-N.png``: lumbar angle over the set, limit bands, events, alerts, rep
  numbers (lateral bend and twist below); ``overview.png``: the whole session;
- ``sets.csv``, ``reps.csv``, ``events.csv``: the tables;
- ``report.html``: plots (base64 data URIs) and tables, no external resources.

Tables are built generically from the pipeline's summary: fields the pipeline
adds later to ``summary()["sets"]``/``["reps"]``/``["events"]`` (holds,
warm-up, ...) and unknown summary sections appear without code changes;
unknown event kinds are drawn and listed like the known ones.

matplotlib is optional (the ``report`` extra); without it the CSV files and
the HTML tables are still written and one line says the plots were skipped.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spinemon.app.export import SessionTrace, trace_recording, write_table_csv
from spinemon.app.plotting import plot_overview, plot_reps, plot_set, pyplot
from spinemon.app.results import ReportResult, ReportTables
from spinemon.app.session_summary import EventRow, RepRow
from spinemon.errors import ConfigError, SpinemonError
from spinemon.io.recording import load

__all__ = [
    "ReportResult",
    "ReportTables",
    "build_tables",
    "format_tables",
    "write_report",
]

MISSING_MATPLOTLIB = "plots skipped: matplotlib is not installed (in the checkout: pip install -e '.[report]'); wrote the tables only"

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
EVENT_COLUMNS = [
    "kind",
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


def _in_rep(e: EventRow, r: RepRow) -> bool:
    return e.set == r.set and e.rep == r.rep


def build_tables(trace: SessionTrace) -> ReportTables:
    """The report's tables from a traced session (generic in the fields: a
    row has every key its summary row has, so fields the pipeline adds later
    show up without code changes)."""
    summ = trace.session
    events = [_strip_type(e.as_dict()) for e in summ.events]
    reps = []
    for r in summ.reps:
        row = _without_empty_sides(_strip_type(r.as_dict()))
        evs = [e for e in summ.events if _in_rep(e, r)]
        row["events"] = ";".join(str(e.kind) for e in evs)
        row["alerts"] = sum(1 for e in evs if e.t_alert is not None)
        reps.append(row)
    sets = []
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
        sets.append(row)
    s = trace.samples
    stats = summ.stats
    cal = trace.result.calibration
    session: dict[str, Any] = {
        "recording": trace.recording.path.name,
        "source": trace.recording.header.get("source"),
        "angle": trace.result.angle_label,
        "sensors": "+".join(s.sensors),
        "rate_hz": round(s.rate_hz, 3),
        "duration_s": round(float(s.t[-1] - s.t[0]), 2) if len(s) else 0.0,
        "frames": summ.frames if summ.has("frames") else None,
        "samples": stats.get("samples"),
        "lost_samples": stats.get("lost_samples"),
        "bad_frames": stats.get("bad_frames"),
        "calibrated": summ.calibrated if summ.has("calibrated") else None,
    }
    if summ.has("monitoring"):
        session["monitored"] = summ.monitoring.line()
    for why in summ.limits_off.values():
        session.setdefault("limits_off", []).append(why)
    if cal is not None and getattr(cal, "rom", None) is not None:
        session["rom_flexion_deg"] = round(cal.rom.flexion_deg, 1)
        session["rom_extension_deg"] = round(cal.rom.extension_deg, 1)
    session["sets"] = len(sets)
    session["reps"] = len(reps)
    session["events"] = len(events)
    if len(summ.segment_details) > 1:
        session["sessions"] = sessions_line(list(summ.segment_details))
    other = {k: v for k, v in summ.as_dict().items() if k not in _KNOWN_SUMMARY_KEYS}  # shown as they are
    return ReportTables(
        sets,
        reps,
        events,
        session,
        other,
        summ.monitoring.as_dict() if summ.has("monitoring") else {},
        trace.result.angle_label != "lumbar flexion",
        list(summ.side_comparisons),
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


def side_rows(cmp: dict) -> list[dict]:
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
            bits.append(f"restarted {dev['restarts']} time(s)")
        lost = dev.get("samples_lost_device")
        if lost is not None:
            bits.append(f"{lost} sample(s) lost on the wearable")
        if dev.get("samples_lost_link") is not None:
            bits.append(f"{dev['samples_lost_link']} lost on the link")
        if dev.get("guard_alerts"):
            bits.append(f"its own guard buzzed {dev['guard_alerts']} time(s)")
        if dev.get("heap_free_min") is not None:
            bits.append(f"free memory never below {dev['heap_free_min'] / 1024:.0f} KB")
        if bits:
            out.append("The wearable: " + ", ".join(bits) + ".")
    return out


#: summary keys :func:`sensor_checks` puts in words (not repeated in the technical details)
_IN_WORDS = ("drift_checks", "drift_flagged", "alignment", "device")


# -- text ----------------------------------------------------------------------
def _text(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
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


def format_tables(tables: ReportTables) -> str:
    """The summary for the terminal: sets (every field), reps (compact), events."""
    lines = [
        f"Session: {tables.session['recording']}: {tables.session['duration_s']:.0f} s, {tables.session['angle']}, "
        f"{tables.session['sets']} set{'s' if tables.session['sets'] != 1 else ''}, {tables.session['reps']} reps, {tables.session['events']} events"
    ]
    if "sessions" in tables.session:
        lines.append(f"  {tables.session['sessions']}")
    lines += ["  " + v for v in tables.verdict]
    if "monitored" in tables.session:
        lines.append(f"  {tables.session['monitored']}")
    for why in tables.session.get("limits_off", []):
        lines.append(f"  limit off: {why}")
    if "rom_flexion_deg" in tables.session:
        lines.append(
            f"  range of motion: flexion {tables.session['rom_flexion_deg']:+.1f} deg, extension {tables.session['rom_extension_deg']:+.1f} deg"
        )
    lines.append(f"Sets ({len(tables.sets)}):")
    lines += (
        _text_table(tables.sets, [c for c in _columns(tables.sets, SET_COLUMNS) if c != "side_comparison"])
        if tables.sets
        else ["  (none found)"]
    )
    for cmp in tables.sides:
        lines.append(f"Left and right, {cmp.get('exercise')} (mean of the reps' peaks, deg):")
        lines += _text_table(side_rows(cmp), ["", "left", "right", "left - right"])
    lines.append(f"Reps ({len(tables.reps)}):")
    if tables.reps:
        known = set(REP_COLUMNS) | {
            "t_start",
            "t_end",
            "peak_excursion_deg",
            "peak_lateral_deg",
            "peak_twist_deg",
            "peak_trunk_deg",
            "labelled",
            "alerts",
            "peak_sagittal_velocity_deg_s",
        }
        extra = [c for c in _columns(tables.reps, ()) if c not in known and c not in _TERMINAL_REP_COLUMNS]
        lines += _text_table(tables.reps, [c for c in _TERMINAL_REP_COLUMNS] + extra)
    else:
        lines.append("  (none found)")
    lines.append(f"Events ({len(tables.events)}):")
    lines += (
        _text_table(tables.events, _columns(tables.events, EVENT_COLUMNS)) if tables.events else ["  (none)"]
    )
    checks = sensor_checks(tables.other)
    if checks:
        lines.append("Sensor checks:")
        lines += ["  " + c for c in checks]
    for k, v in tables.other.items():
        if k in _IN_WORDS or v in (None, [], {}, "", 0, False):
            continue
        if isinstance(v, list):
            lines.append(f"{k}: {len(v)} (listed in the HTML)")
        else:
            lines.append(f"{k}: {_text(v)}")
    return "\n".join(lines)


# -- HTML ----------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;margin:0 auto;padding:1em;max-width:1100px;color:#222;line-height:1.4}
h1{font-size:1.4em}h2{margin-top:1.4em;border-bottom:1px solid #ccc;font-size:1.15em}
#verdict{background:#f6f6f0;border-left:5px solid #486;padding:.6em 1em;margin:1em 0}
#verdict li{margin:.3em 0}.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}th{background:#eee}
td.l,th.l{text-align:left}img{max-width:100%;height:auto;border:1px solid #ddd;display:block}
details{margin:1.5em 0}summary{cursor:pointer;font-weight:bold}.note{color:#a33}"""

#: column and fact names as a coach reads them (anything else: underscores to spaces, units in brackets)
NICE_NAMES = {
    "t_start": "start (s)",
    "t_end": "end (s)",
    "t_alert": "buzz at (s)",
    "kind": "what",
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
    "limits_off",
)


def nice(name: str) -> str:
    if name in NICE_NAMES:
        return NICE_NAMES[name]
    for suffix, unit in (("_deg_s", "deg/s"), ("_deg", "deg"), ("_s", "s")):
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("_", " ") + f" ({unit})"
    return name.replace("_", " ")


def _html_table(rows: list[dict], cols: Sequence[str]) -> str:
    if not rows:
        return "<p>(none)</p>"
    out = [
        '<div class="scroll"><table><tr>'
        + "".join(f"<th>{html.escape(nice(str(c)))}</th>" for c in cols)
        + "</tr>"
    ]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cls = "" if isinstance(v, (int, float)) and not isinstance(v, bool) else ' class="l"'
            cells.append(f"<td{cls}>{html.escape(_text(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(tables: ReportTables, plots: dict[str, Path], note: str | None = None) -> str:
    """The report page: the verdict first, then the charts, then the details
    folded away. Everything inline (no external CSS, scripts or images), so it
    opens offline, on a phone-width screen as on a laptop."""
    sess = tables.session
    p = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>spinemon report: {html.escape(str(sess['recording']))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Session {html.escape(str(sess['recording']))}</h1>",
    ]
    if note:
        p.append(f'<p class="note">{html.escape(note)}</p>')
    p.append(
        '<section id="verdict"><ul>'
        + "".join(f"<li>{html.escape(v)}</li>" for v in tables.verdict)
        + "</ul></section>"
    )
    if "reps" in plots:
        p.append(_img(plots["reps"], "peak angle of every rep against your limit"))
    for st in tables.sets:
        n = st.get("set")
        key = f"set-{n}"
        if key in plots:
            side = f" ({st['side']})" if st.get("side") else ""
            p.append(f"<h2>Set {html.escape(_text(n))}: {html.escape(_text(st.get('exercise')) + side)}</h2>")
            p.append(_img(plots[key], f"set {n}"))
    if tables.sides:
        p.append('<section id="sides"><h2>Left and right</h2>')
        p.append(
            "<p>Mean of the reps' peaks on each side (side bend and twist: how far, whichever way); left minus right in degrees.</p>"
        )
        for cmp in tables.sides:
            p.append(
                f"<p><b>{html.escape(_text(cmp.get('exercise')).replace('_', ' '))}</b>: {html.escape(cmp.get('words', ''))}.</p>"
            )
            p.append(_html_table(side_rows(cmp), ["", "left", "right", "left - right"]))
        p.append("</section>")
    if "overview" in plots:
        p.append("<h2>Whole session</h2>")
        p.append(_img(plots["overview"], "session overview"))
    p.append("<details><summary>Details: sets, reps and alerts</summary>")
    facts = {k: sess[k] for k in _FACTS if k in sess}
    p.append(_html_table([facts], list(facts)))
    p.append("<h3>Sets</h3>")
    p.append(
        _html_table(
            tables.sets,
            [c for c in _columns(tables.sets, SET_COLUMNS) if c not in ("event_kinds", "side_comparison")],
        )
    )
    p.append("<h3>Reps</h3>")
    rep_cols = REP_COLUMNS + ["side", "pelvis_share", "events", "alerts"]
    p.append(
        _html_table(
            tables.reps,
            [
                c
                for c in _columns(tables.reps, REP_COLUMNS + ["side", "pelvis_share", "events"])
                if c in rep_cols
            ],
        )
    )
    p.append("<h3>Alerts and events</h3>")
    p.append(
        _html_table(tables.events, _columns(tables.events, EVENT_COLUMNS))
        if tables.events
        else "<p>None.</p>"
    )
    p.append("</details>")
    checks = sensor_checks(tables.other)
    if checks:
        p.append("<h2>Sensor checks</h2>")
        p.extend(f"<p>{html.escape(c)}</p>" for c in checks)
    tech = {k: v for k, v in sess.items() if k not in _FACTS}
    extra = {
        k: v for k, v in tables.other.items() if v not in (None, [], {}, "", 0, False) and k not in _IN_WORDS
    }
    if tech or extra:
        p.append("<details><summary>Technical details</summary>")
        if tech:
            p.append(_html_table([tech], list(tech)))
        for k, v in extra.items():
            p.append(f"<h3>{html.escape(nice(str(k)))}</h3>")
            if isinstance(v, list) and all(isinstance(x, dict) for x in v):
                p.append(_html_table(v, _columns(v, ())))
            elif isinstance(v, dict):
                p.append(_html_table([v], list(v)))
            else:
                p.append(f"<p>{html.escape(_text(v))}</p>")
        p.append("</details>")
    p.append(
        "<p>Angles in degrees (flexion positive, extension negative), times in device seconds. Generated by spinemon report.</p>"
    )
    p.append("</body></html>")
    return "\n".join(p)


# -- the whole report --------------------------------------------------------
def write_report(trace: SessionTrace, out_dir: str | os.PathLike, *, plots: bool = True) -> ReportResult:
    """Write the CSV tables, the PNGs (if matplotlib is available and
    ``plots``) and ``report.html`` into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the report folder {out}: {e.strerror}") from None
    if not out.is_dir():
        raise ConfigError(f"{out} is not a folder; choose another --out")
    tables = build_tables(trace)
    csvs = {
        "sets": out / "sets.csv",
        "reps": out / "reps.csv",
        "events": out / "events.csv",
    }
    write_table_csv(csvs["sets"], tables.sets, SET_COLUMNS)
    write_table_csv(csvs["reps"], tables.reps, REP_COLUMNS)
    write_table_csv(csvs["events"], tables.events, EVENT_COLUMNS)
    pngs: dict[str, Path] = {}
    skipped = None
    if plots:
        plt = pyplot()
        if plt is None:
            skipped = MISSING_MATPLOTLIB
        else:
            reps_png = plot_reps(plt, trace, tables, out / "reps.png")
            if reps_png is not None:
                pngs["reps"] = reps_png
            pngs["overview"] = plot_overview(plt, trace, tables, out / "overview.png")
            for st in tables.sets:
                if st.get("t_start") is None or st.get("t_end") is None:
                    continue
                pngs[f"set-{st.get('set')}"] = plot_set(
                    plt, trace, tables, st, out / f"set-{st.get('set')}.png"
                )
    page = out / "report.html"
    try:
        page.write_text(render_html(tables, pngs, skipped), encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write {page}: {e.strerror}") from None
    return ReportResult(out, page, csvs, list(pngs.values()), tables, skipped)


def report_row(path: str, out_dir: str) -> dict:
    """One recording's report into ``out_dir``/<name>/ (a worker of :func:`main` for several recordings)."""
    from spinemon.app.season import replay_row

    row = replay_row(path)
    if row.get("error"):
        return row
    from spinemon.app.history import facts_from

    try:
        rec = load(path)
        trace = trace_recording(rec)
        res = write_report(trace, Path(out_dir) / Path(path).stem)
        row["report"] = f"{Path(path).stem}/{res.html.name}"  # relative to out_dir
        row["history"] = facts_from(rec, trace.result, path)  # for the index's History section
    except SpinemonError as e:
        row["error"] = str(e)
    return row
