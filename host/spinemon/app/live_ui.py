"""What ``spinemon live`` tells the lifter.

:class:`LiveUI`: the display, written to any text stream: guided calibration
prompts (stand tall and still -> bend forward, then backward, then stand
still -> done), then one status line (angle and its label, zone, set/rep when
known, alerts, link quality and state; on a terminal also the keys being
typed, whose echo is off: :mod:`spinemon.app.typed_line`) refreshed in place
on a terminal and fitted to its width (drawn by :mod:`spinemon.app.live_screen`),
or printed as plain lines every few seconds of device time when the stream
is not a TTY; every alert (and its excursion's final peak) and every link
state change on a line of its own; the session's summary at its end, Ctrl-C
included. The keyboard's set marks: :mod:`spinemon.app.live_keys`.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import sys
import time
from typing import TextIO

from spinemon.app.live_screen import RichScreen, fit_status, have_rich
from spinemon.app.results import SessionResult
from spinemon.app.verdict import event_words, past_limit
from spinemon.app.words import plural
from spinemon.core.alerts import Alert
from spinemon.core.calibration import Calibration
from spinemon.core.detect import Event, Limits
from spinemon.core.pipeline import (
    PHASE_MONITOR,
    PHASE_NEUTRAL,
    PHASE_ROM,
    FrameResult,
    Pipeline,
)

PROMPT_NEUTRAL = "Stand tall and still."


PROMPT_ROM = "Now bend slowly forward as far as comfortable, then backward, then stand still."


NEAR_SHARE = 0.8  # "near limit" from this share of a limit on


# ---------------------------------------------------------------------------
# the display
# ---------------------------------------------------------------------------
def _fmt_limit(v: float | None) -> str:
    return "off" if v is None else f"{v:+.1f}"


class LiveUI:
    """What the lifter sees, written to ``stream`` (stdout by default).

    On a TTY the status line is refreshed in place (at most every
    ``refresh_s`` host seconds), fitted to the terminal's width
    (:func:`fit_status`): drawn by rich when it is installed (the ``screen``
    extra: the status line with the last alert pinned under it), else with
    a carriage return and an ANSI erase (``screen="plain"``, or ``--plain``);
    otherwise a plain status line is printed every ``plain_every_s`` seconds
    of device time. Prompts, alerts and link state changes always get their
    own line. ``lines`` keeps every line written (without the in-place
    refreshes), for tests."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        refresh_s: float = 0.1,
        plain_every_s: float = 5.0,
        width: int | None = None,
        screen: str = "auto",
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty()) if callable(isatty) else False
        self.tty = tty
        self.refresh_s = refresh_s
        self.plain_every_s = plain_every_s
        self.lines: list[str] = []
        self.link_state = "connecting"
        self.alerts = 0
        self.connected_once = False
        self.set_offset = 0  # sets of the sessions before this one in a resumed recording (shown numbered on)
        self._last_set = None  # the set and rep shown on the status line (the rep stays up between reps)
        self._last_rep = None
        self._status_shown = False
        self._last_refresh = -math.inf
        self._last_plain_t: float | None = None
        self._phase: str | None = None
        self.typing = ""  # the keys typed since the last Enter (a TTY with echo off: see SetMarker.attach)
        self._status_text: list[tuple[str, str]] | None = (
            None  # the status line last drawn, without the typing
        )
        #: the terminal's width in columns: the status line is fitted to it (None: asked of the terminal
        #: at each refresh, so a resized window is followed; a plain, non-TTY stream is never cut)
        self.width = width
        self._side: tuple[float, float] | None = None  # the last lateral bend and twist (deg)
        self._alerted: dict[int, Alert] = {}  # id(event) -> its alert, until the excursion ends
        self.last_alert: str | None = None  # the last alert in a few words, kept on the status line
        self.pinned: str | None = None  # the last alert in full, pinned under the status line (rich)
        self._pinned_event: int | None = None  # id() of the pinned alert's event
        if screen not in ("auto", "rich", "plain"):
            raise ValueError(f"screen must be auto, rich or plain, not {screen!r}")
        #: the rich screen on a TTY when rich is installed (``screen="auto"``), else the plain one
        self.rich: RichScreen | None = (
            RichScreen(self.stream, width)
            if self.tty and (screen == "rich" or (screen == "auto" and have_rich()))
            else None
        )

    # -- output ----------------------------------------------------------------------
    def line(self, text: str) -> None:
        """A line of its own (clears an in-place status line first)."""
        self.lines.append(text)
        if self.rich is not None:
            self.rich.line(text)
            return
        if self.tty and self._status_shown:
            self.stream.write("\r\x1b[2K")
            self._status_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def _status(self, text: str | list[tuple[str, str]]) -> None:
        parts = text if isinstance(text, list) else [("", text)]
        if self.rich is not None:
            self._status_text = parts
            self.rich.draw(self.screen_line(parts), self.pinned)
        elif self.tty:
            self._status_text = parts
            self.stream.write("\r\x1b[2K" + self.screen_line(parts))
            self.stream.flush()
            self._status_shown = True
        else:
            self.line(" | ".join(t for _, t in parts))

    def columns(self) -> int:
        """The terminal's width (``width`` if given; else the terminal's, 80 if unknown)."""
        if self.width is not None:
            return self.width
        if self.rich is not None:
            return self.rich.width
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return shutil.get_terminal_size((80, 24)).columns

    def screen_line(self, status: str | list[tuple[str, str]]) -> str:
        """The status line as drawn on a TTY: fitted to the terminal's width
        (one column spare, so it never wraps and a refresh never scrolls the
        alerts above it away), with what is being typed at its end."""
        parts = status if isinstance(status, list) else [("", status)]
        width = max(20, self.columns() - 1)
        typed = f" | > {self.typing}" if self.typing else ""
        if len(typed) > width // 2:  # a long typed line keeps its end (what is being typed now)
            typed = " | > ..." + self.typing[-(width // 2 - 8) :]
        return fit_status(parts, width - len(typed)) + typed

    def show_typing(self, text: str) -> None:
        """What the lifter has typed so far (echo is off): drawn at once on the status line."""
        if text == self.typing:
            return
        self.typing = text
        if self.tty and self._status_text is not None:
            self._status(self._status_text)

    # -- events from the session ----------------------------------------------------------
    def prompt(self, text: str) -> None:
        self.line(">> " + text)

    def on_state(self, state: str) -> None:
        if state == "connected":
            self.connected_once = True
        if state == "closed" and not self.connected_once:
            self.link_state = state
            return  # nothing was ever open: no "link closed" for a link that never came up
        if state != self.link_state:
            self.link_state = state
            self.line(f"-- link {state}")

    def on_alert(self, alert: Alert) -> None:
        self.alerts += 1
        ev = alert.event
        where = "".join(
            [
                f" set {ev.set + self.set_offset}" if ev.set is not None else "",
                f" rep {ev.rep}" if ev.rep is not None else "",
                f" ({ev.exercise})" if ev.exercise else "",
            ]
        )
        if alert.buzzed_by == "device":
            sent = "the wearable's guard buzzed"
        else:
            sent = (
                "buzz sent"
                if alert.t_sent_host is not None
                else "NOT delivered (link down: the wearable's guard covers)"
            )
        limit, past = past_limit(ev.peak_deg, ev.limit_deg)
        unit = "deg/s" if ev.kind == "swing" else "deg"
        self.line(
            f"!! ALERT {ev.kind.replace('_', '-')} ({event_words(ev.kind, ev.exercise)}): {ev.peak_deg:+.1f} {unit} when confirmed, limit {limit:+.1f}, "
            f"{past:.1f} past, at t={alert.t_trigger_device:.2f} s{where}: {sent}"
        )
        self._alerted[id(ev)] = alert
        self.last_alert = f"{ev.kind.replace('_', '-')}{where}"
        self.pinned = f"!! last alert{where}: {ev.kind.replace('_', '-')} {ev.peak_deg:+.1f} {unit}, {past:.1f} past {limit:+.1f}"
        self._pinned_event = id(ev)

    def _peaked(self, ev: Event) -> None:
        """An alerted excursion ended: its peak, the number the trace and ``replay`` show."""
        alert = self._alerted.pop(id(ev), None)
        if alert is None:
            return
        limit, past = past_limit(ev.peak_deg, ev.limit_deg)
        unit = "deg/s" if ev.kind == "swing" else "deg"
        where = "".join(
            [
                f" set {ev.set + self.set_offset}" if ev.set is not None else "",
                f" rep {ev.rep}" if ev.rep is not None else "",
            ]
        )
        self.line(
            f"-- {ev.kind.replace('_', '-')}{where} (alert at t={alert.t_trigger_device:.2f} s) peaked at "
            f"{ev.peak_deg:+.1f} {unit}, {past:.1f} past the limit {limit:+.1f}"
        )
        if self._pinned_event == id(ev):  # the pinned alert (rich) shows its final peak from now on
            self.pinned = f"!! last alert{where}: {ev.kind.replace('_', '-')} peaked at {ev.peak_deg:+.1f} {unit}, {past:.1f} past {limit:+.1f}"

    def on_calibrated(self, cal: Calibration, pipeline: Pipeline) -> None:
        pass  # the phase changes drive the prompts (see on_frame)

    def on_frame(self, res: FrameResult, pipeline: Pipeline, link: dict) -> None:
        if pipeline.phase != self._phase:
            self._phase_changed(pipeline)
        for text in res.notices:
            self.line(f"!! NOTE {text}")
        for ev in res.held_back:  # a fault past a limit that did not buzz: say why, now
            unit = "deg/s" if ev.kind == "swing" else "deg"
            limit, past = past_limit(ev.peak_deg, ev.limit_deg)
            self.line(
                f"!! NO BUZZ {ev.kind.replace('_', '-')}: {ev.peak_deg:+.1f} {unit}, {past:.1f} past the limit {limit:+.1f} at t={ev.t_alert:.2f} s, "
                f"held back: {ev.held_back}"
            )
        for ev in res.finished:
            self._peaked(ev)
        if res.angles is not None and len(res.angles.lateral_deg):
            self._side = (float(res.angles.lateral_deg[-1]), float(res.angles.twist_deg[-1]))
        if res.t is None or not len(res.t):
            return
        t_dev = float(res.t[-1])
        parts = self.status_parts(pipeline, link)
        if self.tty:
            now = time.monotonic()
            if now - self._last_refresh >= self.refresh_s:
                self._last_refresh = now
                self._status(parts)
        elif pipeline.phase == PHASE_MONITOR and (
            self._last_plain_t is None or t_dev - self._last_plain_t >= self.plain_every_s
        ):
            self._last_plain_t = t_dev
            self._status(parts)

    def _phase_changed(self, pipeline: Pipeline) -> None:
        old, self._phase = self._phase, pipeline.phase
        if pipeline.phase == PHASE_NEUTRAL:
            self.prompt(PROMPT_NEUTRAL)
        elif pipeline.phase == PHASE_ROM:
            self.prompt("Neutral posture captured.")
            self.prompt(PROMPT_ROM)
        elif pipeline.phase == PHASE_MONITOR:
            cal = pipeline.calibration
            rom = cal.range_of_motion if cal is not None else None
            rom_text = (
                f"range of motion {rom.flexion_deg:+.1f} / {rom.extension_deg:+.1f} deg; "
                if rom is not None and old == PHASE_ROM
                else ""
            )
            lim = pipeline.limits
            self.prompt(
                f"Calibration done: {rom_text}limits flexion {_fmt_limit(lim.flexion_deg)}, extension {_fmt_limit(lim.extension_deg)} deg "
                f"({pipeline.angle_label}). Monitoring; Ctrl-C to stop."
            )

    @staticmethod
    def zone(angle: float, limits: Limits) -> str:
        if not math.isfinite(angle):
            return "-"
        f, e = limits.flexion_deg, limits.extension_deg
        if (f is not None and angle > f) or (e is not None and angle < e):
            return "past limit"
        if (f is not None and angle > NEAR_SHARE * f) or (e is not None and angle < NEAR_SHARE * e):
            return "near limit"
        return "ok"

    @staticmethod
    def room(angle: float, limits: Limits, width: int = 10) -> tuple[float, float, str] | None:
        """(the limit on the side the spine is bent to, room left in deg, a bar filling towards it)."""
        if not math.isfinite(angle):
            return None
        limit = limits.flexion_deg if angle >= 0 else limits.extension_deg
        if limit is None or limit == 0:
            return None
        share = max(0.0, min(1.0, angle / limit))
        filled = int(round(share * width))
        return limit, abs(limit) - abs(angle), "[" + "#" * filled + "." * (width - filled) + "]"

    def status_text(self, pipeline: Pipeline, link: dict) -> str:
        """The whole status line, as a plain (non-TTY) stream gets it."""
        return " | ".join(t for _, t in self.status_parts(pipeline, link))

    def status_parts(self, pipeline: Pipeline, link: dict) -> list[tuple[str, str]]:
        """The status line's parts, each ``(key, text)``; :func:`fit_status`
        drops or shortens them by key to fit a terminal's width."""
        angle = pipeline.last_angle_deg
        stats = pipeline.decoder.stats
        expected = stats.samples + stats.lost_samples
        lost_pct = 100.0 * stats.lost_samples / expected if expected else 0.0
        ctx = pipeline.detector.context
        parts: list[tuple[str, str]] = [
            (
                "angle",
                f"{pipeline.angle_label} {angle:+6.1f} deg"
                if math.isfinite(angle)
                else f"{pipeline.angle_label}    --- deg",
            )
        ]
        held = pipeline.held_reason
        if pipeline.phase != PHASE_MONITOR:
            zone = "calibrating: no alerts"
        elif held is None:
            zone = self.zone(angle, pipeline.limits)
        else:
            zone = f"not watched: {held}"
        parts.append(("zone", zone))
        room = self.room(angle, pipeline.limits) if pipeline.phase == PHASE_MONITOR else None
        if room is not None:
            limit, left, bar = room
            parts.append(("room", f"limit {limit:+.0f} {bar} room {left:+.0f}"))
        if self._side is not None and pipeline.phase == PHASE_MONITOR:
            parts.append(("side", f"side {self._side[0]:+.0f} twist {self._side[1]:+.0f}"))
        if ctx.get("set") is not None:
            if ctx.get("set") != self._last_set:
                self._last_set, self._last_rep = ctx.get("set"), None
            if ctx.get("rep") is not None:
                self._last_rep = ctx["rep"]  # the rep number stays up between reps
            s = f"set {ctx['set'] + self.set_offset}"
            if self._last_rep is not None:
                s += f" rep {self._last_rep}"
            if ctx.get("exercise"):
                s += f" {ctx['exercise']}"
            parts.append(("set", s))
        parts.append(
            ("alerts", f"alerts {self.alerts}" + (f" (last: {self.last_alert})" if self.last_alert else ""))
        )
        parts.append(
            ("lost", f"lost {lost_pct:.2f}% bad {stats.bad_frames + int(link.get('framing_errors', 0))}")
        )
        parts.append(("link", self.link_state))
        return parts

    def close_screen(self) -> None:
        """The live region (rich) goes; what follows are plain lines."""
        if self.rich is not None:
            self.rich.stop()

    def finish(self, result: SessionResult | None, out: str | None, cancelled: bool) -> None:
        self.close_screen()
        for alert in list(
            self._alerted.values()
        ):  # an excursion still open at the end (Ctrl-C in it): its peak
            self._peaked(alert.event)
        if result is None and not self.connected_once:
            return  # the session never started (no wearable reached): the error says why
        head = "Stopped (Ctrl-C)." if cancelled else "Session ended."
        if result is not None:
            st = result.stats
            summ = result.session
            n_sets, n_reps = len(summ.sets), len(summ.reps)
            head += (
                f" {plural(n_sets, 'set')}, {plural(n_reps, 'rep')}, {plural(len(result.alerts), 'alert')}"
                f" ({plural(result.frames, 'frame')}, lost samples {st.get('lost_samples', 0)}, bad frames {st.get('bad_frames', 0)})."
            )
        if out:
            head += f" Recording: {out}"
        self.line(head)
        if result is not None and result.session.has("monitoring"):
            self.line("  " + result.session.monitoring.line())
