"""The screen and keys of ``spinemon live``.

:class:`LiveUI`: the display, written to any text stream: guided calibration
prompts (stand tall and still -> bend forward, then backward, then stand
still -> done), then one status line (angle and its label, zone, set/rep when
known, alerts, link quality and state; on a terminal also the keys being
typed, whose echo is off: :mod:`spinemon.app.typed_line`) refreshed in place
on a terminal, or printed as plain lines every few seconds of device time
when the stream is not a TTY; every alert and every link state change on a
line of its own. :class:`SetMarker`: the keyboard, marking sets while the
session runs.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from spinemon.app.results import SessionResult
from spinemon.core.alerts import Alert
from spinemon.core.calibration import Calibration
from spinemon.core.detect import PROFILES, Limits
from spinemon.core.pipeline import (
    PHASE_MONITOR,
    PHASE_NEUTRAL,
    PHASE_ROM,
    FrameResult,
    Pipeline,
)
from spinemon.core.unilateral import parse_exercise
from spinemon.errors import ConfigError, SpinemonError
from spinemon.io.transport import Label, Transport

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

    On a TTY the status line is refreshed in place (carriage return, at most
    every ``refresh_s`` host seconds); otherwise a plain status line is
    printed every ``plain_every_s`` seconds of device time. Prompts, alerts
    and link state changes always get their own line. ``lines`` keeps every
    line written (without the in-place refreshes), for tests."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        refresh_s: float = 0.1,
        plain_every_s: float = 5.0,
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
        self._status_text: str | None = None  # the status line last drawn, without the typing

    # -- output ----------------------------------------------------------------------
    def line(self, text: str) -> None:
        """A line of its own (clears an in-place status line first)."""
        if self.tty and self._status_shown:
            self.stream.write("\r\x1b[2K")
            self._status_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()
        self.lines.append(text)

    def _status(self, text: str) -> None:
        if self.tty:
            self._status_text = text
            self.stream.write("\r\x1b[2K" + self.screen_line(text))
            self.stream.flush()
            self._status_shown = True
        else:
            self.line(text)

    def screen_line(self, status: str) -> str:
        """The status line as drawn on a TTY: with what is being typed at its end."""
        return f"{status} | > {self.typing}" if self.typing else status

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
        from spinemon.app.verdict import event_words

        past = abs(ev.peak_deg - ev.limit_deg)
        unit = "deg/s" if ev.kind == "swing" else "deg"
        self.line(
            f"!! ALERT {ev.kind.replace('_', '-')} ({event_words(ev.kind, ev.exercise)}): peak {ev.peak_deg:+.1f} {unit}, limit {ev.limit_deg:+.1f}, "
            f"{past:.1f} past, at t={alert.t_trigger_device:.2f} s{where}: {sent}"
        )

    def on_calibrated(self, cal: Calibration, pipeline: Pipeline) -> None:
        pass  # the phase changes drive the prompts (see on_frame)

    def on_frame(self, res: FrameResult, pipeline: Pipeline, link: dict) -> None:
        if pipeline.phase != self._phase:
            self._phase_changed(pipeline)
        for text in res.notices:
            self.line(f"!! NOTE {text}")
        for ev in res.held_back:  # a fault past a limit that did not buzz: say why, now
            unit = "deg/s" if ev.kind == "swing" else "deg"
            self.line(
                f"!! NO BUZZ {ev.kind.replace('_', '-')}: peak {ev.peak_deg:+.1f} {unit} past the limit {ev.limit_deg:+.1f} at t={ev.t_alert:.2f} s, "
                f"held back: {ev.held_back}"
            )
        if res.t is None or not len(res.t):
            return
        t_dev = float(res.t[-1])
        text = self.status_text(pipeline, link)
        if self.tty:
            now = time.monotonic()
            if now - self._last_refresh >= self.refresh_s:
                self._last_refresh = now
                self._status(text)
        elif pipeline.phase == PHASE_MONITOR and (
            self._last_plain_t is None or t_dev - self._last_plain_t >= self.plain_every_s
        ):
            self._last_plain_t = t_dev
            self._status(text)

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
        angle = pipeline.last_angle_deg
        stats = pipeline.decoder.stats
        expected = stats.samples + stats.lost_samples
        lost_pct = 100.0 * stats.lost_samples / expected if expected else 0.0
        ctx = pipeline.detector.context
        parts = [
            f"{pipeline.angle_label} {angle:+6.1f} deg"
            if math.isfinite(angle)
            else f"{pipeline.angle_label}    --- deg"
        ]
        held = pipeline.held_reason
        parts.append(
            self.zone(angle, pipeline.limits)
            if pipeline.phase == PHASE_MONITOR and held is None
            else f"not watched: {held}"
        )
        room = self.room(angle, pipeline.limits) if pipeline.phase == PHASE_MONITOR else None
        if room is not None:
            limit, left, bar = room
            parts.append(f"limit {limit:+.0f} {bar} room {left:+.0f}")
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
            parts.append(s)
        parts.append(f"alerts {self.alerts}")
        parts.append(f"lost {lost_pct:.2f}% bad {stats.bad_frames + int(link.get('framing_errors', 0))}")
        parts.append(self.link_state)
        return " | ".join(parts)

    def finish(self, result: SessionResult | None, out: str | None, cancelled: bool) -> None:
        if result is None and not self.connected_once:
            return  # the session never started (no wearable reached): the error says why
        head = "Stopped." if cancelled else "Session ended."
        if result is not None:
            st = result.stats
            summ = result.session
            n_sets, n_reps = len(summ.sets), len(summ.reps)
            head += (
                f" {n_sets} set{'s' if n_sets != 1 else ''}, {n_reps} rep{'s' if n_reps != 1 else ''}, {len(result.alerts)} alert{'s' if len(result.alerts) != 1 else ''}"
                f" ({result.frames} frames, lost samples {st.get('lost_samples', 0)}, bad frames {st.get('bad_frames', 0)})."
            )
        if out:
            head += f" Recording: {out}"
        self.line(head)
        if result is not None and result.session.has("monitoring"):
            self.line("  " + result.session.monitoring.line())


class SetMarker:
    """The lifter marks sets from the keyboard: Enter starts the next set of
    the current exercise; an exercise name then Enter switches exercise and
    starts a set; for unilateral work the side may follow the name
    (``lunge left``, ``lunge right``, ``left`` alone switches the side of the
    same exercise). Each mark is a :class:`Label` announced through the
    transport, so it is recorded and replayed in order with the frames.
    (Limits are watched inside sets; without marks, a set is recognised
    from its second rep on.)"""

    def __init__(self, transport: Transport, ui: LiveUI, exercise: str, side: str | None = None) -> None:
        self.transport = transport
        self.ui = ui
        self.exercise = exercise
        self.side = side
        self.next_set = 1
        self.labels: list[Label] = []

    def line(self, text: str) -> Label | None:
        typed = text.strip()
        if typed:
            if typed.lower() in ("left", "right", "l", "r"):  # the other side of the same exercise
                typed = f"{self.exercise} {typed}"
            try:
                name, side = parse_exercise(typed)
            except ConfigError as e:
                if not str(e).startswith("unknown exercise"):
                    self.ui.line(f"-- {e}")
                    return None
                self.ui.line(
                    f"-- unknown exercise {text.strip()!r}; type one of {', '.join(PROFILES)} (or just Enter for the next set)"
                )
                return None
            self.exercise, self.side = name, side
        label = Label(self.next_set, self.exercise, self.side)
        self.next_set += 1
        self.transport.announce(label)
        self.labels.append(label)
        self.ui.line(
            f"-- set {label.set + self.ui.set_offset}: {label.exercise}"
            + (f" ({label.side})" if label.side else "")
        )
        return label

    def _mark(self, text: str) -> None:
        try:
            self.line(text)
        except SpinemonError as e:
            self.ui.line(f"-- could not mark the set: {e}")

    def attach(self, stream: TextIO) -> Callable[[], None]:
        """Read lines from ``stream`` (a TTY's stdin) without blocking the
        session; returns a function that detaches. When both ``stream`` and
        the screen are a terminal, the keys are not echoed (the echo would
        land in the status line): the line being typed is shown on the status
        line instead, until detached (:class:`~spinemon.app.typed_line.TypedLine`)."""
        loop = asyncio.get_running_loop()
        fd = stream.fileno()
        if self.ui.tty and os.isatty(fd):
            return self._attach_terminal(loop, fd)

        def readable() -> None:
            text = stream.readline()
            if text == "":  # end of input: stop listening
                loop.remove_reader(fd)
                return
            self._mark(text)

        loop.add_reader(fd, readable)
        return lambda: loop.remove_reader(fd)

    def _attach_terminal(self, loop: asyncio.AbstractEventLoop, fd: int) -> Callable[[], None]:
        from spinemon.app.typed_line import TypedLine  # termios: POSIX terminals only

        typed = TypedLine(fd)
        typed.start()

        def readable() -> None:
            lines = typed.read()
            if lines is None:  # end of input: stop listening
                loop.remove_reader(fd)
                lines = []
            for text in lines:
                self.ui.show_typing("")
                self._mark(text)
            self.ui.show_typing(typed.pending)

        def detach() -> None:
            loop.remove_reader(fd)
            typed.stop()
            self.ui.show_typing("")

        try:
            loop.add_reader(fd, readable)
        except BaseException:
            typed.stop()
            raise
        return detach
