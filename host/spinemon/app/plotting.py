"""Every matplotlib figure spinemon draws, for ``report`` and ``history``.

:func:`pyplot` imports matplotlib (the optional ``report`` extra) with the
file-only backend, or gives None; :func:`plot_set`, :func:`plot_reps` and
:func:`plot_overview` draw one session's report figures, :func:`plot` the
weeks of ``spinemon history``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from spinemon.app.export import SessionTrace
from spinemon.app.history import MISSING_MATPLOTLIB, _week_name, nice_exercise
from spinemon.app.pages import FONT_KEY
from spinemon.app.results import ReportTables
from spinemon.app.session_summary import EventRow, RepRow, SetRow
from spinemon.app.verdict import event_words
from spinemon.errors import ConfigError
from spinemon.io.atomic import atomic_write, cannot_write

KIND_COLOURS = {
    "over_flexion": "#d62728",
    "over_extension": "#1f77b4",
    "twist": "#9467bd",
    "lateral_bend": "#8c564b",
    "forward_lean": "#ff7f0e",
}


OTHER_COLOUR = "#ff7f0e"


@dataclass(frozen=True)
class Style:
    """Sizes of one figure: ``wide`` for a laptop (1000 px at 100 dpi, text
    8-11 pt = 11-15 px), ``narrow`` for a phone (a 3.9 in figure at 150 dpi,
    about 600 px with its labels, shown about 340 px wide: text of 10 pt
    and more stays 11 px or more)."""

    narrow: bool = False

    @property
    def dpi(self) -> int:
        return 150 if self.narrow else 100

    @property
    def width_in(self) -> float:
        return 3.9 if self.narrow else 10.0

    @property
    def small(self) -> float:  # ticks, legends, notes on the plot
        return 10.0 if self.narrow else 8.0

    @property
    def label(self) -> float:
        return 10.0 if self.narrow else 9.0

    @property
    def title(self) -> float:
        return 11.0


WIDE, NARROW = Style(False), Style(True)


def min_font_px(fig, dpi: float) -> float:
    """The smallest visible text of a figure, in pixels of an image saved at
    ``dpi``: every text with words in it, and the tick labels of every axis
    that shows them (read from the figure as built: no extra drawing)."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_major_ticks()
            if ticks and (ticks[0].label1.get_visible() or ticks[0].label2.get_visible()):
                sizes.append(ticks[0].label1.get_fontsize())
    return round(min(sizes) * dpi / 72.0, 2) if sizes else 0.0


def save(plt, fig, path: Path, dpi: float, **kw) -> Path:
    """Save ``fig`` as a PNG whose metadata holds its smallest text in image
    pixels (:data:`FONT_KEY`; the report's page and its browser test read it), and close it."""
    meta = {FONT_KEY: f"{min_font_px(fig, dpi):.2f}"}
    try:  # whole or not at all: a temporary file renamed over the name
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, metadata=meta, **kw))
    finally:
        plt.close(fig)
    return path


def clock_axis(ax, clock: float | None, style: Style = WIDE) -> None:
    """The x axis in local clock time (HH:MM:SS) when the recording holds a
    real time, else in device seconds; labelled to say which."""
    if clock is None:
        ax.set_xlabel("device time (s)", fontsize=style.label)
        return
    from datetime import datetime

    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def fmt(t: float, _pos: int) -> str:
        try:
            return datetime.fromtimestamp(clock + t).strftime("%H:%M:%S")
        except (OverflowError, OSError, ValueError):
            return ""

    ax.xaxis.set_major_locator(MaxNLocator(nbins=3 if style.narrow else 8, min_n_ticks=2))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt))
    ax.set_xlabel("clock time (local)", fontsize=style.label)


# -- plots ---------------------------------------------------------------------
def pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


_EXTRA_COLOURS = ("#ff7f0e", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#2ca02c")


def kind_colours(events: Sequence[EventRow]) -> dict[str, str]:
    """A colour per event kind: fixed for the core kinds, the others (added
    later to the pipeline) from a palette in order of appearance."""
    out = dict(KIND_COLOURS)
    extra = 0
    for e in events:
        k = str(e.kind)
        if k not in out:
            out[k] = _EXTRA_COLOURS[extra % len(_EXTRA_COLOURS)]
            extra += 1
    return out


def _angle_at(trace: SessionTrace, t: float) -> float:
    s = trace.samples
    i = int(np.clip(np.searchsorted(s.t, t), 0, len(s) - 1))
    return float(s.flexion_deg[i])


def _draw_limits(
    ax, trace: SessionTrace, t0: float, t1: float, ylim: tuple[float, float], style: Style = WIDE
) -> None:
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
                ax.text(
                    segs[-1][1],
                    v,
                    f"limit {v:+.1f}\u00b0 ",
                    color=col,
                    fontsize=style.small,
                    ha="right",
                    va=va,
                )


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
    vals = [v for v in y if not math.isnan(v)]
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


def _draw_events(ax, trace: SessionTrace, events: Sequence[EventRow], t0: float, t1: float) -> None:
    """Each event as a shaded span, its alert as a marker; the legend names
    it as the coach would ("sagged (hips dropped)" for a plank's over-extension)."""
    seen: set[str] = set()
    colours = kind_colours(events)
    for e in events:
        ts, te = e.t_start, e.t_end
        if ts is None:
            continue
        te = t1 if te is None or math.isnan(te) else te
        if te < t0 or ts > t1:
            continue
        kind = str(e.kind)
        col = colours.get(kind, OTHER_COLOUR)
        ax.axvspan(max(ts, t0), min(te, t1), color=col, alpha=0.18, lw=0)
        ta = e.t_alert
        if ta is not None and t0 <= ta <= t1:
            y = _angle_at(trace, ta)
            words = event_words(kind, e.exercise)
            lab = f"alert: {words}" if words not in seen else None
            seen.add(words)
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


def _draw_reps(ax, reps: Sequence[RepRow], t0: float, t1: float, style: Style = WIDE) -> None:
    for i, r in enumerate(reps):
        a, b = r.t_start, r.t_end
        if a is None or b is None or b < t0 or a > t1:
            continue
        if i % 2 == 0:
            ax.axvspan(a, b, color="0.5", alpha=0.08, lw=0)
        ax.text(
            (a + b) / 2,
            0.97,
            str(r.rep),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=style.title,
            fontweight="bold",
            color="0.25",
        )


def _side_panel(
    ax, trace: SessionTrace, sl: slice, t0: float, t1: float, limits: bool = True, style: Style = WIDE
) -> None:
    s = trace.samples
    t = s.t[sl]
    ax.plot(
        t,
        s.lateral_deg[sl],
        color="#2ca02c",
        lw=1,
        label="side bend" if style.narrow else "lateral bend (+ right)",
    )
    ax.plot(t, s.twist_deg[sl], color="#9467bd", lw=1, label="twist")
    lim = trace.limits_at((t0 + t1) / 2) if limits else None
    for v, col, name in (
        (getattr(lim, "lateral_deg", None), "#2ca02c", "side limit" if style.narrow else "side-bend limit"),
        (getattr(lim, "twist_deg", None), "#9467bd", "twist limit"),
    ):
        if v is not None:
            ax.axhline(abs(v), color=col, ls="--", lw=0.8, label=f"{name} +-{abs(v):.0f}")
            ax.axhline(-abs(v), color=col, ls="--", lw=0.8)
    ax.set_ylabel("deg", fontsize=style.label)
    ax.grid(True, alpha=0.3)
    if style.narrow:  # below the panel: a legend inside would hide the curves of a narrow plot
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.45), fontsize=style.small, ncol=2, frameon=False
        )
    else:
        ax.legend(loc="upper left", fontsize=style.small, ncol=2, framealpha=0.8)
    ax.tick_params(labelsize=style.small)


def _legend_above(ax, title: str, style: Style = WIDE) -> None:
    """Legend in rows above the axes, the title above the legend (wrapped on a narrow figure)."""
    import textwrap

    handles, labels = ax.get_legend_handles_labels()
    if style.narrow:  # long names (a one-sensor forward lean) on two lines rather than wider than a phone
        labels = ["\n".join(textwrap.wrap(lab, 30)) for lab in labels]
    ncol = min(len(labels), 1 if style.narrow else 4) or 1
    rows = -(-len(labels) // ncol)
    ax.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=ncol,
        fontsize=style.small,
        frameon=False,
    )
    if style.narrow:
        title = "\n".join(textwrap.wrap(title, 40))
    ax.set_title(title, fontsize=style.title, pad=6 + (style.small * 1.9) * rows)
    ax.tick_params(labelsize=style.small)


def _figure(plt, style: Style = WIDE):
    fig, (ax, ax2) = plt.subplots(
        2,
        1,
        figsize=(style.width_in, 5.6 if style.narrow else 4.4),
        dpi=style.dpi,
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08},
    )
    return fig, ax, ax2


def _finite_or(v, default: float) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def plot_set(
    plt,
    trace: SessionTrace,
    tables: ReportTables,
    set_row: SetRow,
    path: Path,
    pad_s: float = 2.0,
    style: Style = WIDE,
) -> Path:
    """One set: the lumbar angle, limit bands, rep numbers, events and alerts."""
    s = trace.samples
    t0 = _finite_or(set_row.t_start, float(s.t[0]) if len(s) else 0.0) - pad_s
    t1 = _finite_or(set_row.t_end, float(s.t[-1]) if len(s) else t0 + 1.0) + pad_s
    if not t1 > t0:  # a set labelled but never seen moving: show the whole session
        t0, t1 = (float(s.t[0]), float(s.t[-1])) if len(s) > 1 else (t0, t0 + 1.0)
    sl = slice(int(np.searchsorted(s.t, t0)), int(np.searchsorted(s.t, t1, "right")))
    t, y = s.t[sl], s.flexion_deg[sl]
    fig, ax, ax2 = _figure(plt, style)
    ylim = _y_limits(y, trace)
    _draw_limits(ax, trace, t0, t1, ylim, style)
    reps = [r for r in tables.reps if r.set == set_row.set]
    _draw_reps(ax, reps, t0, t1, style)
    ax.plot(t, y, color="black", lw=1.3, label=trace.result.angle_label)
    _draw_events(ax, trace, tables.events, t0, t1)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_ylim(*ylim)
    ax.set_xlim(t0, t1)
    ax.set_ylabel(f"{trace.result.angle_label} (deg)\n+ flexion / - extension", fontsize=style.label)
    n_alerts = sum(1 for e in tables.events if e.set == set_row.set and e.t_alert is not None)
    ax.grid(True, alpha=0.3)
    _legend_above(
        ax,
        f"Set {set_row.set}: {set_row.exercise}, {len(reps)} rep{'s' if len(reps) != 1 else ''}, "
        f"{n_alerts} alert{'s' if n_alerts != 1 else ''}  (numbers = reps)",
        style,
    )
    _side_panel(ax2, trace, sl, t0, t1, style=style)
    clock_axis(ax2, tables.clock, style)
    return save(plt, fig, path, style.dpi, bbox_inches="tight")


def _limits_at(trace: SessionTrace, t: float):
    lim = None
    for t0, l in trace.limit_changes:
        if t0 <= t + 1e-9:
            lim = l
    return lim if lim is not None else (trace.limit_changes[0][1] if trace.limit_changes else None)


def plot_reps(plt, trace: SessionTrace, tables: ReportTables, path: Path, style: Style = WIDE) -> Path | None:
    """Every rep's peak flexion and extension against the limits of its set:
    creep shows as peaks climbing towards the line, a bad rep crosses it.
    Each limit's label sits above (flexion) or below (extension) the start
    of its own dashed line, on a white ground: no line runs through it."""
    reps = [r for r in tables.reps if isinstance(r.peak_flexion_deg, (int, float))]
    if not reps:
        return None
    fig, ax = plt.subplots(figsize=(style.width_in, 4.2 if style.narrow else 3.4), dpi=style.dpi)
    x = 0
    ticks, labels = [], []
    limit_lines: list[tuple[float, float, float, str, str]] = []  # x from, x to, value, name, va
    sets: Sequence[SetRow] = tables.sets or [SetRow.from_dict({"set": None, "exercise": ""})]
    for st in sets:
        mine = [r for r in reps if r.set == st.set]
        if not mine:
            continue
        x0 = x
        for r in mine:
            bad = bool(r.events)
            colour = "#d62728" if bad else "#2a7"
            ax.plot(
                [x, x],
                [r.peak_extension_deg, r.peak_flexion_deg],
                color=colour,
                lw=3,
                solid_capstyle="round",
            )
            ax.plot([x], [r.peak_flexion_deg], "o", color=colour, ms=5)
            ticks.append(x)
            side = r.side
            labels.append(
                f"{r.rep}{side[0].upper()}" if side in ("left", "right") else str(r.rep)
            )  # 3L: rep 3, left
            x += 1
        lim = _limits_at(trace, float(st.t_start or mine[0].t_start or 0.0))
        if lim is not None:
            for v, name, va in (
                (lim.flexion_deg, "flexion limit", "bottom"),
                (lim.extension_deg, "extension limit", "top"),
            ):
                if v is not None:
                    ax.plot([x0 - 0.4, x - 0.6], [v, v], color="0.3", lw=1.2, ls="--")
                    limit_lines.append((x0 - 0.4, x - 0.6, v, name, va))
        ax.text(
            (x0 + x - 1) / 2,
            1.02,
            f"set {st.set} {st.exercise}".strip(),
            transform=ax.get_xaxis_transform(),
            ha="center",
            fontsize=style.small,
        )
        x += 1  # a gap between sets
    ax.axhline(0, color="0.7", lw=0.6)
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=style.small)
    ax.tick_params(labelsize=style.small)
    ax.set_xlabel("rep", fontsize=style.label)
    ax.set_ylabel(f"{trace.result.angle_label}\n(deg, + flexion)", fontsize=style.label)
    ax.set_title(
        "Every rep's peak against your limit\n(red: past it)"
        if style.narrow
        else "Every rep's peak against your limit (red: past it)",
        fontsize=style.title,
        pad=16,
    )
    ax.set_xlim(-0.8, max(x - 0.2, 1.0))
    lo, hi = ax.get_ylim()
    span = hi - lo
    ax.set_ylim(lo - 0.12 * span, hi + 0.12 * span)  # room for a label below or above its line
    for xa, xb, v, name, va in limit_lines:
        ax.text(
            xa,
            v + (0.02 if va == "bottom" else -0.02) * span,
            f"{'limit' if style.narrow or xb - xa < 2 else name} {v:+.0f}",
            fontsize=style.small,
            ha="left",
            va=va,
            color="0.25",
            zorder=6,
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.9},
        )
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return save(plt, fig, path, style.dpi)


def plot_overview(plt, trace: SessionTrace, tables: ReportTables, path: Path, style: Style = WIDE) -> Path:
    """The whole session: angle, limits over time, sets, holds, events and alerts."""
    s = trace.samples
    t0, t1 = float(s.t[0]), float(s.t[-1])
    fig, ax, ax2 = _figure(plt, style)
    ylim = _y_limits(s.flexion_deg, trace)
    t_mon = _monitoring_start(trace)
    _draw_limits(ax, trace, t_mon, t1, ylim, style)
    if t_mon > t0:
        ax.axvspan(t0, t_mon, color="#bcbd22", alpha=0.15, lw=0)
        ax.text(
            (t0 + t_mon) / 2,
            0.97,
            "calibration\n(stand, bend)" if not style.narrow else "calib-\nration",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=style.small,
            color="0.2",
        )
    spans: list[tuple[float | None, float | None, str, str]] = [
        (st.t_start, st.t_end, f"set {st.set}", st.exercise) for st in tables.sets
    ]
    spans += [(h.t_start, h.t_end, f"hold {h.hold}", h.exercise) for h in tables.holds]
    for a, b, name, ex in spans:
        if a is None or b is None:
            continue
        ax.axvspan(a, b, color="0.5", alpha=0.10, lw=0)
        if style.narrow and len(spans) > 3:
            continue  # no room for names on a phone: the verdict above names them
        ax.text(
            (a + b) / 2,
            0.97,
            f"{name}\n{ex}",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=style.small,
            color="0.2",
        )
    ax.plot(s.t, s.flexion_deg, color="black", lw=0.8, label=trace.result.angle_label)
    _draw_events(ax, trace, tables.events, t0, t1)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_ylim(*ylim)
    ax.set_xlim(t0, t1)
    ax.set_ylabel(f"{trace.result.angle_label} (deg)\n+ flexion / - extension", fontsize=style.label)
    n_alerts = sum(1 for e in tables.events if e.t_alert is not None)
    ax.grid(True, alpha=0.3)
    n_sets, n_reps, n_holds = len(tables.sets), len(tables.reps), len(tables.holds)
    holds = f", {n_holds} hold{'s' if n_holds != 1 else ''}" if n_holds else ""
    _legend_above(
        ax,
        f"Session overview: {tables.session['duration_s']:.0f} s, {n_sets} set{'s' if n_sets != 1 else ''}, {n_reps} rep{'s' if n_reps != 1 else ''}{holds}, "
        f"{n_alerts} alert{'s' if n_alerts != 1 else ''}",
        style,
    )
    _side_panel(ax2, trace, slice(None), t0, t1, limits=False, style=style)
    clock_axis(ax2, tables.clock, style)
    return save(plt, fig, path, style.dpi, bbox_inches="tight")


# ---------------------------------------------------------------------------
# chart and HTML
# ---------------------------------------------------------------------------
def plot(doc: dict, path: str | os.PathLike, plt=None, style: Style | None = None) -> Path:
    """Per exercise: the peak per week against its limit (left axis) --
    flexion, or extension for presses and curls (their fault is an arch) --
    and alerts per 100 reps as bars (right axis, one scale for every panel,
    so 100 and 20 per 100 reps look as different as they are). The title on
    top, one legend for all panels at the bottom (constrained layout: nothing
    covers anything). Raises
    :class:`ConfigError` without matplotlib."""
    plt = plt or pyplot()
    if plt is None:
        raise ConfigError(MISSING_MATPLOTLIB)
    style = style or Style(False)
    out = Path(path)
    by_ex: dict[str, list[dict]] = {}
    for r in doc["rows"]:
        by_ex.setdefault(r["exercise"], []).append(r)
    n = max(1, len(by_ex))
    mondays = sorted({date.fromisoformat(r["monday"]) for r in doc["rows"]})
    first = mondays[0] if mondays else date.today()
    span = (mondays[-1] - first).days // 7 + 1 if mondays else 1
    step = max(
        1, math.ceil(span / (4 if style.narrow else 12))
    )  # at most about 12 week labels (4 on a phone)
    per100_all = [r["alerts_per_100_reps"] or 0.0 for r in doc["rows"]]
    alerts_top = max([10.0] + per100_all) * 1.15  # one scale for every panel
    width = style.width_in if style.narrow else 8.0
    fig, axes = plt.subplots(
        n, 1, figsize=(width, (3.2 if style.narrow else 2.8) * n + 1.0), squeeze=False, layout="constrained"
    )
    handles: dict[str, Any] = {}
    for ax, (ex, rows) in zip(axes[:, 0], by_ex.items() or [("(no sessions)", [])]):
        x = [
            (date.fromisoformat(r["monday"]) - first).days // 7 for r in rows
        ]  # weeks without a session stay gaps
        watched = rows[0].get("watched", "flexion") if rows else "flexion"
        ax2 = ax.twinx()
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
        per100 = [r["alerts_per_100_reps"] if r["alerts_per_100_reps"] is not None else 0.0 for r in rows]
        bars = ax2.bar(x, per100, width=0.5, color="#d62728", alpha=0.35)
        handles.setdefault("alerts per 100 reps (right axis, one scale)", bars)
        ax2.set_ylabel("alerts / 100 reps", fontsize=style.small, color="#a11")
        ax2.set_ylim(0, alerts_top)
        ax2.tick_params(labelsize=style.small)
        peaks = [r.get("peak_deg", r.get("peak_flexion_deg")) for r in rows]
        if any(p is not None for p in peaks):
            (line,) = ax.plot(x, [math.nan if p is None else p for p in peaks], "o-", color="black")
            handles.setdefault("peak at the bottom of the rep (median)", line)
        limits = [r.get("limit_deg", r.get("flexion_limit_deg")) for r in rows]
        for i, v in zip(x, limits):  # the limit of each week, as a short line across its slot
            if v is not None:
                lc = ax.hlines(
                    v,
                    i - 0.45,
                    i + 0.45,
                    colors="#d62728" if watched == "flexion" else "#1f77b4",
                    linestyles="--",
                    lw=1.5,
                )
                handles.setdefault(f"{watched} limit", lc)
        vals = [v for v in peaks + limits if v is not None]
        if watched == "extension":  # an arch is negative: the limit below zero, past it further down
            bottom = min([-10.0] + vals)
            ax.set_ylim(bottom * 1.25, max([0.0] + vals) + 2.0)
        else:
            ax.set_ylim(min([0.0] + vals) - 2.0, max([10.0] + vals) * 1.25)
        if not any(r["reps"] for r in rows):
            ax.text(
                0.5,
                0.5,
                "no reps",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="0.4",
                fontsize=style.small,
            )
        ticks = list(range(0, span, step))
        ax.set_xticks(ticks)
        ax.set_xticklabels([_week_name(first + timedelta(weeks=k)) for k in ticks], fontsize=style.small)
        ax.tick_params(labelsize=style.small)
        ax.set_xlim(-0.6, max(span - 0.4, 0.6))
        ax.set_ylabel(f"lumbar {watched} (deg)", fontsize=style.small)
        ax.set_title(nice_exercise(ex), fontsize=style.label, loc="left", fontweight="bold")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Progress over weeks", fontsize=style.title)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncol=1 if style.narrow else 2,
            fontsize=style.small,
            frameon=False,
        )
    try:
        return save(plt, fig, out, style.dpi if style.narrow else 100)
    except OSError as e:
        raise ConfigError(
            cannot_write(out, e).replace("choose another place", "choose another --png")
        ) from None
