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

import argparse
import base64
import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinemon.app import argtypes
from spinemon.app.export import SessionTrace, trace_recording, write_table_csv
from spinemon.errors import ConfigError, SpinemonError
from spinemon.io.recording import load

__all__ = [
    "ReportResult",
    "ReportTables",
    "add_arguments",
    "build_tables",
    "format_tables",
    "main",
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
KIND_COLOURS = {
    "over_flexion": "#d62728",
    "over_extension": "#1f77b4",
    "twist": "#9467bd",
    "lateral_bend": "#8c564b",
    "forward_lean": "#ff7f0e",
}
OTHER_COLOUR = "#ff7f0e"


@dataclass
class ReportTables:
    """Rows (dicts) of the three tables; columns are the union of the keys."""

    sets: list[dict]
    reps: list[dict]
    events: list[dict]
    session: dict  # one-level key -> value facts about the session
    other: dict = field(default_factory=dict)  # summary sections the report does not know
    monitoring: dict = field(default_factory=dict)  # Pipeline.monitoring(): what was watched
    one_sensor: bool = False
    #: unilateral work: left against right per exercise (``summary()["side_comparisons"]``)
    sides: list[dict] = field(default_factory=list)

    @property
    def verdict(self) -> list[str]:
        """One line per set a coach reads first (spinemon.app.verdict)."""
        from spinemon.app.verdict import session_verdict

        return session_verdict(
            self.sets, self.reps, self.events, self.monitoring, self.one_sensor, self.sides
        )


@dataclass
class ReportResult:
    out_dir: Path
    html: Path
    csv: dict[str, Path]
    plots: list[Path]
    tables: ReportTables
    plots_skipped: str | None = None


def _strip_type(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "type"}


def _in_rep(e: dict, r: dict) -> bool:
    return e.get("set") == r.get("set") and e.get("rep") == r.get("rep")


def build_tables(trace: SessionTrace) -> ReportTables:
    """The report's tables from a traced session (generic in the fields)."""
    summ = trace.summary
    events = [_strip_type(e) for e in summ.get("events", [])]
    reps = []
    for r in summ.get("reps", []):
        row = _without_empty_sides(_strip_type(r))
        evs = [e for e in events if _in_rep(e, r)]
        row["events"] = ";".join(str(e.get("kind")) for e in evs)
        row["alerts"] = sum(1 for e in evs if e.get("t_alert") is not None)
        reps.append(row)
    sets = []
    for s in summ.get("sets", []):
        row = _without_empty_sides(_strip_type(s))
        in_set = [e for e in events if e.get("set") == s.get("set")]
        set_reps = [r for r in reps if r.get("set") == s.get("set")]
        flex = [
            r["peak_flexion_deg"] for r in set_reps if isinstance(r.get("peak_flexion_deg"), (int, float))
        ]
        ext = [
            r["peak_extension_deg"] for r in set_reps if isinstance(r.get("peak_extension_deg"), (int, float))
        ]
        row.setdefault("peak_flexion_deg", round(max(flex), 2) if flex else None)
        row.setdefault("peak_extension_deg", round(min(ext), 2) if ext else None)
        row.setdefault("events", len(in_set))
        row.setdefault("alerts", sum(1 for e in in_set if e.get("t_alert") is not None))
        kinds: dict[str, int] = {}
        for e in in_set:
            kinds[str(e.get("kind"))] = kinds.get(str(e.get("kind")), 0) + 1
        row.setdefault("event_kinds", ";".join(f"{k}={v}" for k, v in kinds.items()))
        sets.append(row)
    s = trace.samples
    stats = summ.get("stats", {})
    cal = trace.result.calibration
    session: dict[str, Any] = {
        "recording": trace.recording.path.name,
        "source": trace.recording.header.get("source"),
        "angle": trace.result.angle_label,
        "sensors": "+".join(s.sensors),
        "rate_hz": round(s.rate_hz, 3),
        "duration_s": round(float(s.t[-1] - s.t[0]), 2) if len(s) else 0.0,
        "frames": summ.get("frames"),
        "samples": stats.get("samples"),
        "lost_samples": stats.get("lost_samples"),
        "bad_frames": stats.get("bad_frames"),
        "calibrated": summ.get("calibrated"),
    }
    if summ.get("monitoring"):
        from spinemon.app.session import monitoring_line

        session["monitored"] = monitoring_line(summ["monitoring"])
    for why in (summ.get("limits_off") or {}).values():
        session.setdefault("limits_off", []).append(why)
    if cal is not None and getattr(cal, "rom", None) is not None:
        session["rom_flexion_deg"] = round(cal.rom.flexion_deg, 1)
        session["rom_extension_deg"] = round(cal.rom.extension_deg, 1)
    session["sets"] = len(sets)
    session["reps"] = len(reps)
    session["events"] = len(events)
    if len(summ.get("segment_details") or []) > 1:
        session["sessions"] = sessions_line(summ["segment_details"])
    other = {k: v for k, v in summ.items() if k not in _KNOWN_SUMMARY_KEYS}
    return ReportTables(
        sets,
        reps,
        events,
        session,
        other,
        dict(summ.get("monitoring") or {}),
        trace.result.angle_label != "lumbar flexion",
        list(summ.get("side_comparisons") or []),
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


# -- plots ---------------------------------------------------------------------
def _pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


_EXTRA_COLOURS = ("#ff7f0e", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#2ca02c")


def kind_colours(events: list[dict]) -> dict[str, str]:
    """A colour per event kind: fixed for the core kinds, the others (added
    later to the pipeline) from a palette in order of appearance."""
    out = dict(KIND_COLOURS)
    extra = 0
    for e in events:
        k = str(e.get("kind"))
        if k not in out:
            out[k] = _EXTRA_COLOURS[extra % len(_EXTRA_COLOURS)]
            extra += 1
    return out


def _kind_label(kind: str) -> str:
    return str(kind).replace("_", "-")


def _angle_at(trace: SessionTrace, t: float) -> float:
    s = trace.samples
    i = int(np.clip(np.searchsorted(s.t, t), 0, len(s) - 1))
    return float(s.flexion_deg[i])


def _draw_limits(ax, trace: SessionTrace, t0: float, t1: float, ylim: tuple[float, float]) -> None:
    """Flexion/extension limits as bands (shaded beyond the limit), as steps
    when the limits change within the window (a new exercise)."""
    changes = [(t, lim) for t, lim in trace.limit_changes]
    segs = []
    for i, (tc, lim) in enumerate(changes):
        tn = changes[i + 1][0] if i + 1 < len(changes) else math.inf
        a, b = max(tc, t0), min(tn, t1)
        if b > a:
            segs.append((a, b, lim))
    first_flex = first_ext = True
    for a, b, lim in segs:
        if lim.flexion_deg is not None:
            ax.fill_between(
                [a, b],
                lim.flexion_deg,
                ylim[1],
                color=KIND_COLOURS["over_flexion"],
                alpha=0.10,
                lw=0,
                label="over-flexion zone" if first_flex else None,
            )
            ax.hlines(lim.flexion_deg, a, b, colors=KIND_COLOURS["over_flexion"], linestyles="--", lw=1)
            first_flex = False
        if lim.extension_deg is not None:
            ax.fill_between(
                [a, b],
                ylim[0],
                lim.extension_deg,
                color=KIND_COLOURS["over_extension"],
                alpha=0.10,
                lw=0,
                label="over-extension zone" if first_ext else None,
            )
            ax.hlines(lim.extension_deg, a, b, colors=KIND_COLOURS["over_extension"], linestyles="--", lw=1)
            first_ext = False
    if segs:  # the value of the limits in effect at the right edge
        lim = segs[-1][2]
        for v, col, va in (
            (lim.flexion_deg, KIND_COLOURS["over_flexion"], "bottom"),
            (lim.extension_deg, KIND_COLOURS["over_extension"], "top"),
        ):
            if v is not None:
                ax.text(segs[-1][1], v, f"limit {v:+.1f}\u00b0 ", color=col, fontsize=8, ha="right", va=va)


def _monitoring_start(trace: SessionTrace) -> float:
    """Device time when calibration ended (neutral + range of motion)."""
    s = trace.samples
    cal = trace.result.calibration
    t_end = None
    for span in (getattr(cal, "t_rom", None), getattr(cal, "t_neutral", None)):
        if span:
            t_end = float(span[1])
            break
    if t_end is None:
        ok = np.flatnonzero(~np.isnan(s.flexion_deg))
        t_end = float(s.t[ok[0]]) if len(ok) else float(s.t[-1])
    return t_end


def _y_limits(y: np.ndarray, trace: SessionTrace) -> tuple[float, float]:
    vals = [v for v in y if v == v]
    lims = [lim for _, lim in trace.limit_changes]
    for lim in lims:
        for v in (lim.flexion_deg, lim.extension_deg):
            if v is not None:
                vals.append(v)
    if not vals:
        return (-30.0, 60.0)
    lo, hi = min(vals), max(vals)
    pad = max(5.0, 0.1 * (hi - lo))
    return (lo - pad, hi + pad)


def _draw_events(ax, trace: SessionTrace, events: list[dict], t0: float, t1: float) -> None:
    seen: set[str] = set()
    colours = kind_colours(events)
    for e in events:
        ts, te = e.get("t_start"), e.get("t_end")
        if ts is None:
            continue
        te = t1 if te is None or te != te else te
        if te < t0 or ts > t1:
            continue
        kind = str(e.get("kind"))
        col = colours.get(kind, OTHER_COLOUR)
        ax.axvspan(max(ts, t0), min(te, t1), color=col, alpha=0.18, lw=0)
        ta = e.get("t_alert")
        if ta is not None and t0 <= ta <= t1:
            y = _angle_at(trace, ta)
            lab = f"alert: {_kind_label(kind)}" if kind not in seen else None
            seen.add(kind)
            ax.plot(
                [ta],
                [y],
                marker="v" if kind != "over_extension" else "^",
                ms=11,
                color=col,
                mec="black",
                mew=0.8,
                ls="none",
                label=lab,
                zorder=5,
            )


def _draw_reps(ax, reps: list[dict], t0: float, t1: float) -> None:
    for i, r in enumerate(reps):
        a, b = r.get("t_start"), r.get("t_end")
        if a is None or b is None or b < t0 or a > t1:
            continue
        if i % 2 == 0:
            ax.axvspan(a, b, color="0.5", alpha=0.08, lw=0)
        ax.text(
            (a + b) / 2,
            0.97,
            str(r.get("rep")),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=10,
            fontweight="bold",
            color="0.25",
        )


def _side_panel(ax, trace: SessionTrace, sl: slice, t0: float, t1: float, limits: bool = True) -> None:
    s = trace.samples
    t = s.t[sl]
    ax.plot(t, s.lateral_deg[sl], color="#2ca02c", lw=1, label="lateral bend (+ right)")
    ax.plot(t, s.twist_deg[sl], color="#9467bd", lw=1, label="twist")
    lim = trace.limits_at((t0 + t1) / 2) if limits else None
    for v, col, name in (
        (getattr(lim, "lateral_deg", None), "#2ca02c", "side-bend limit"),
        (getattr(lim, "twist_deg", None), "#9467bd", "twist limit"),
    ):
        if v is not None:
            ax.axhline(abs(v), color=col, ls="--", lw=0.8, label=f"{name} +-{abs(v):.0f}")
            ax.axhline(-abs(v), color=col, ls="--", lw=0.8)
    ax.set_ylabel("deg", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=2, framealpha=0.8)
    ax.tick_params(labelsize=8)


def _legend_above(ax, title: str) -> None:
    """Legend in rows above the axes, the title above the legend."""
    handles, labels = ax.get_legend_handles_labels()
    ncol = min(len(labels), 4) or 1
    rows = -(-len(labels) // ncol)
    ax.legend(
        handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol, fontsize=8, frameon=False
    )
    ax.set_title(title, fontsize=11, pad=6 + 15 * rows)


def _figure(plt):
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 4.4), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
    )
    return fig, ax, ax2


def _finite_or(v, default: float) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def plot_set(
    plt, trace: SessionTrace, tables: ReportTables, set_row: dict, path: Path, pad_s: float = 2.0
) -> Path:
    """One set: the lumbar angle, limit bands, rep numbers, events and alerts."""
    s = trace.samples
    t0 = _finite_or(set_row.get("t_start"), float(s.t[0]) if len(s) else 0.0) - pad_s
    t1 = _finite_or(set_row.get("t_end"), float(s.t[-1]) if len(s) else t0 + 1.0) + pad_s
    if not t1 > t0:  # a set labelled but never seen moving: show the whole session
        t0, t1 = (float(s.t[0]), float(s.t[-1])) if len(s) > 1 else (t0, t0 + 1.0)
    sl = slice(int(np.searchsorted(s.t, t0)), int(np.searchsorted(s.t, t1, "right")))
    t, y = s.t[sl], s.flexion_deg[sl]
    fig, ax, ax2 = _figure(plt)
    ylim = _y_limits(y, trace)
    _draw_limits(ax, trace, t0, t1, ylim)
    reps = [r for r in tables.reps if r.get("set") == set_row.get("set")]
    _draw_reps(ax, reps, t0, t1)
    ax.plot(t, y, color="black", lw=1.3, label=trace.result.angle_label)
    _draw_events(ax, trace, tables.events, t0, t1)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_ylim(*ylim)
    ax.set_xlim(t0, t1)
    ax.set_ylabel(f"{trace.result.angle_label} (deg)\n+ flexion / - extension", fontsize=9)
    n_alerts = sum(
        1 for e in tables.events if e.get("set") == set_row.get("set") and e.get("t_alert") is not None
    )
    ax.grid(True, alpha=0.3)
    _legend_above(
        ax,
        f"Set {set_row.get('set')}: {set_row.get('exercise', '')}, {len(reps)} rep{'s' if len(reps) != 1 else ''}, "
        f"{n_alerts} alert{'s' if n_alerts != 1 else ''}  (numbers = reps)",
    )
    _side_panel(ax2, trace, sl, t0, t1)
    ax2.set_xlabel("device time (s)", fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _limits_at(trace: SessionTrace, t: float):
    lim = None
    for t0, l in trace.limit_changes:
        if t0 <= t + 1e-9:
            lim = l
    return lim if lim is not None else (trace.limit_changes[0][1] if trace.limit_changes else None)


def plot_reps(plt, trace: SessionTrace, tables: ReportTables, path: Path) -> Path | None:
    """Every rep's peak flexion and extension against the limits of its set:
    creep shows as peaks climbing towards the line, a bad rep crosses it."""
    reps = [r for r in tables.reps if isinstance(r.get("peak_flexion_deg"), (int, float))]
    if not reps:
        return None
    fig, ax = plt.subplots(figsize=(10, 3.4), dpi=100)
    x = 0
    ticks, labels = [], []
    for st in tables.sets or [{"set": None, "exercise": ""}]:
        mine = [r for r in reps if r.get("set") == st.get("set")]
        if not mine:
            continue
        x0 = x
        for r in mine:
            bad = bool(r.get("events"))
            colour = "#d62728" if bad else "#2a7"
            ax.plot(
                [x, x],
                [r.get("peak_extension_deg", 0.0), r["peak_flexion_deg"]],
                color=colour,
                lw=3,
                solid_capstyle="round",
            )
            ax.plot([x], [r["peak_flexion_deg"]], "o", color=colour, ms=5)
            ticks.append(x)
            side = r.get("side")
            labels.append(
                f"{r.get('rep')}{side[0].upper()}" if side in ("left", "right") else str(r.get("rep"))
            )  # 3L: rep 3, left
            x += 1
        lim = _limits_at(trace, float(st.get("t_start") or mine[0].get("t_start") or 0.0))
        if lim is not None:
            for v, name in ((lim.flexion_deg, "flexion limit"), (lim.extension_deg, "extension limit")):
                if v is not None:
                    ax.plot([x0 - 0.4, x - 0.6], [v, v], color="0.3", lw=1.2, ls="--")
                    ax.text(x - 0.55, v, f" {name} {v:+.0f}", fontsize=7, va="center", color="0.3")
        ax.text(
            (x0 + x - 1) / 2,
            1.02,
            f"set {st.get('set')} {st.get('exercise', '')}".strip(),
            transform=ax.get_xaxis_transform(),
            ha="center",
            fontsize=8,
        )
        x += 1  # a gap between sets
    ax.axhline(0, color="0.7", lw=0.6)
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlabel("rep", fontsize=9)
    ax.set_ylabel(f"{trace.result.angle_label}\n(deg, + flexion)", fontsize=9)
    ax.set_title("Every rep's peak against your limit (red: past it)", fontsize=10, pad=16)
    ax.set_xlim(-0.8, max(x - 0.2, 1.0))
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_overview(plt, trace: SessionTrace, tables: ReportTables, path: Path) -> Path:
    """The whole session: angle, limits over time, sets, events and alerts."""
    s = trace.samples
    t0, t1 = float(s.t[0]), float(s.t[-1])
    fig, ax, ax2 = _figure(plt)
    ylim = _y_limits(s.flexion_deg, trace)
    t_mon = _monitoring_start(trace)
    _draw_limits(ax, trace, t_mon, t1, ylim)
    if t_mon > t0:
        ax.axvspan(t0, t_mon, color="#bcbd22", alpha=0.15, lw=0)
        ax.text(
            (t0 + t_mon) / 2,
            0.97,
            "calibration\n(stand, bend)",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=8,
            color="0.2",
        )
    for i, st in enumerate(tables.sets):
        a, b = st.get("t_start"), st.get("t_end")
        if a is None or b is None:
            continue
        ax.axvspan(a, b, color="0.5", alpha=0.10, lw=0)
        ax.text(
            (a + b) / 2,
            0.97,
            f"set {st.get('set')}\n{st.get('exercise', '')}",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=8,
            color="0.2",
        )
    ax.plot(s.t, s.flexion_deg, color="black", lw=0.8, label=trace.result.angle_label)
    _draw_events(ax, trace, tables.events, t0, t1)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_ylim(*ylim)
    ax.set_xlim(t0, t1)
    ax.set_ylabel(f"{trace.result.angle_label} (deg)\n+ flexion / - extension", fontsize=9)
    n_alerts = sum(1 for e in tables.events if e.get("t_alert") is not None)
    ax.grid(True, alpha=0.3)
    n_sets, n_reps = len(tables.sets), len(tables.reps)
    _legend_above(
        ax,
        f"Session overview: {tables.session['duration_s']:.0f} s, {n_sets} set{'s' if n_sets != 1 else ''}, {n_reps} rep{'s' if n_reps != 1 else ''}, "
        f"{n_alerts} alert{'s' if n_alerts != 1 else ''}",
    )
    _side_panel(ax2, trace, slice(None), t0, t1, limits=False)
    ax2.set_xlabel("device time (s)", fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


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
        plt = _pyplot()
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spinemon report``."""
    parser.add_argument(
        "file",
        nargs="+",
        metavar="FILE",
        help="a .spinrec recording; several, or a folder of them, give a report each and an index",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: <recording>-report next to the recording; several: season-report)",
    )
    parser.add_argument(
        "--jobs",
        type=argtypes.count,
        default=None,
        metavar="N",
        help="worker processes for several recordings (default: all cores)",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH",
        help="pain journal for the History section of several recordings (default $SPINEMON_HOME/journal.jsonl or ~/.spinemon/journal.jsonl)",
    )


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


def _main_many(args: argparse.Namespace) -> int:
    import html
    import sys

    from spinemon.app import history, season

    paths = season.expand(args.file)
    out = Path(args.out) if args.out else Path("season-report")
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    entries, info = history.load_journal(getattr(args, "journal", None), notes)
    idents = history.identities(
        paths
    )  # before the replays: a file changed meanwhile is not stored as unchanged
    rows = season.run_many(report_row, paths, str(out), jobs=args.jobs, progress=sys.stderr)
    print(season.format_rows(rows))
    history.store_facts(
        [(p, idents[i], r.get("history")) for i, (p, r) in enumerate(zip(paths, rows))], notes
    )
    facts = [r.pop("history") for r in rows if r.get("history")]
    history_html = ""
    if facts:
        doc = history.build(facts, entries, info)
        png = None
        plt = _pyplot()
        if plt is not None:
            png = history.plot(doc, out / "history.png", plt)
        history_html = history.html_section(doc, png)
        for n in notes:
            print(f"note: {n}")
    cols = [c for c in season.ROW_COLUMNS if c != "recording"]
    body = "".join(
        "<tr><td>"
        + (f'<a href="{html.escape(r["report"])}">' if r.get("report") else "")
        + html.escape(Path(r["recording"]).name)
        + ("</a>" if r.get("report") else "")
        + "</td>"
        + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in cols)
        + "</tr>"
        for r in rows
    )
    page = out / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>spinemon: sessions</title><style>body{font-family:sans-serif;margin:1em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}.scroll{overflow-x:auto;max-width:100%}"
        "img{max-width:100%;height:auto}.verdict{background:#f6f6f0;border-left:5px solid #486;padding:.6em 1em .6em 2em}</style></head><body>"
        "<h1>Sessions</h1>"
        + history_html
        + "<h2>Recordings</h2><div class='scroll'><table><tr><th>recording</th>"
        + "".join(f"<th>{c}</th>" for c in cols)
        + "</tr>"
        + body
        + "</table></div></body></html>\n",
        encoding="utf-8",
    )
    print(f"wrote {page} ({len(rows)} recordings)")
    return 1 if any(r.get("error") for r in rows) else 0


def main(args: argparse.Namespace) -> int:
    """``spinemon report FILE [--out DIR]`` (or several files / a folder)."""
    files = list(args.file) if isinstance(args.file, (list, tuple)) else [args.file]
    if len(files) > 1 or Path(files[0]).is_dir():
        return _main_many(args)
    src = Path(files[0])
    out = Path(args.out) if args.out else src.with_name(src.stem + "-report")
    trace = trace_recording(load(src))
    res = write_report(trace, out)
    print(format_tables(res.tables))
    if res.plots_skipped:
        print(f"note: {res.plots_skipped}")
    print(
        f"wrote {res.html} ({len(res.plots)} plots), {', '.join(p.name for p in res.csv.values())} in {res.out_dir}"
    )
    return 0
