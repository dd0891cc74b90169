"""The engine of ``spinemon live``: connect, calibrate with guided prompts, monitor.

::

    spinemon live [--address A | --name N | --port URL | --sim] [--exercise E] [--out FILE] [--speed X] [--view [--view-port P]]

:func:`run` takes a :class:`LiveOptions` and a :class:`LiveUI` (the display,
written to any text stream), builds the transport (BLE, serial or the
simulated wearer), installs :class:`LinkSetup` as the transport's
``on_connected`` hook and drives :func:`spinemon.app.session.run_live`. The
pipeline does not know which transport it has.

The display: guided calibration prompts (stand tall and still -> bend
forward, then backward, then stand still -> done), then one status line
(angle and its label, zone, set/rep when known, alerts, link quality and
state; on a terminal also the keys being typed, whose echo is off:
:mod:`spinemon.app.typed_line`) refreshed in place on a terminal, or printed as plain lines every few
seconds of device time when the stream is not a TTY; every alert and every
link state change on a line of its own. Cancelling (Ctrl-C) ends cleanly:
the recording is closed with its summary and stays loadable.

With ``--view`` the coach's page (:mod:`spinemon.app.view`) is served on
127.0.0.1 before connecting (its address is the screen's first line) and
fed from the same ``on_frame``/``on_alert``/``on_state`` hooks as the
status line; it only observes them.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import spinemon_protocol as proto
from spinemon.app import argtypes
from spinemon.app.session import SessionResult, header_for, run_live
from spinemon.app.view import ViewUsageError
from spinemon.core.alerts import Alert
from spinemon.core.calibration import Calibration, CalibrationSettings
from spinemon.core.detect import PROFILES, Limits
from spinemon.core.pipeline import (
    PHASE_MONITOR,
    PHASE_NEUTRAL,
    PHASE_ROM,
    FrameResult,
    Pipeline,
    PipelineSettings,
)
from spinemon.core.unilateral import parse_exercise
from spinemon.errors import CommandError, ConfigError, SpinemonError
from spinemon.io import profile_store, sim
from spinemon.io.commands import CommandQueue
from spinemon.io.recording import RecordingWriter
from spinemon.io.transport import Label, SimTransport, Transport, in_setup

__all__ = [
    "LinkSetup",
    "LiveOptions",
    "LiveUI",
    "add_arguments",
    "guard_args",
    "main",
    "make_transport",
    "run",
    "scan_main",
    "sim_sets_for",
]

PROMPT_NEUTRAL = "Stand tall and still."
PROMPT_ROM = "Now bend slowly forward as far as comfortable, then backward, then stand still."
NEAR_SHARE = 0.8  # "near limit" from this share of a limit on


@dataclass(frozen=True)
class LiveOptions:
    """One live session. Exactly one source: ``address`` / ``name`` (BLE),
    ``port`` (serial URL) or ``sim``. ``speed`` and ``seed`` apply to the
    simulated wearer only (``speed`` x real time). ``ble_backend`` and
    ``ble_kwargs`` go to bleak unchanged (tests: the emulated radio)."""

    address: str | None = None
    name: str | None = None
    port: str | None = None
    sim: bool = False
    exercise: str = "generic"
    #: the working side of a unilateral exercise (``--exercise "lunge left"``), given to each set marked
    side: str | None = None
    out: str | None = None
    speed: float = 1.0
    seed: int = 1
    calibrate_rom: bool = True
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 2.0
    guard_mode: int = proto.GUARD_WHEN_LINK_DOWN
    ble_backend: type | None = None
    ble_kwargs: dict = field(default_factory=dict)
    #: the lifter's profile (stored calibration, limit overrides); ``None``:
    #: the default path for a real wearable, none for the simulated wearer
    profile: str | None = None
    recalibrate: bool = False  # ignore the stored calibration (sensors re-attached)
    resume: bool = False  # an existing --out recording is continued in a new segment (else refused)
    limits: tuple[str, ...] = ()  # "EXERCISE.LIMIT=VALUE" overrides for this session
    view: bool = False  # serve the live page for a coach on 127.0.0.1 (spinemon.app.view; the `view` extra)
    view_port: int = 0  # its port; 0: one the OS chooses

    @property
    def uses_profile(self) -> bool:
        return self.profile is not None or not self.sim

    def __post_init__(self) -> None:
        sources = [x for x in (self.address, self.name, self.port) if x] + ([True] if self.sim else [])
        if len(sources) != 1:
            raise ConfigError("choose exactly one of --address, --name, --port or --sim")
        PipelineSettings(exercise=self.exercise)  # ConfigError for an unknown exercise
        if not (
            isinstance(self.speed, (int, float)) and 0.0 < self.speed <= 10000.0 and math.isfinite(self.speed)
        ):
            raise ConfigError(f"speed must be in (0, 10000], not {self.speed!r}")
        if self.guard_mode not in (proto.GUARD_OFF, proto.GUARD_WHEN_LINK_DOWN, proto.GUARD_ALWAYS):
            raise ConfigError(f"guard mode must be 0, 1 or 2, not {self.guard_mode!r}")
        if not (isinstance(self.view_port, int) and 0 <= self.view_port <= 65535):
            raise ConfigError(f"view port must be 0 (any free port) .. 65535, not {self.view_port!r}")
        if self.view_port and not self.view:
            raise ViewUsageError("--view-port needs --view")
        for name in ("connect_timeout_s", "command_timeout_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 < v <= 600.0):
                raise ConfigError(f"{name} must be in (0, 600] s, not {v!r}")

    @property
    def source(self) -> str:
        if self.sim:
            return "sim"
        if self.port:
            return f"serial:{self.port}"
        return f"ble:{self.address or self.name}"


# ---------------------------------------------------------------------------
# the setup hook
# ---------------------------------------------------------------------------
def guard_args(limits: Limits, mode: int) -> tuple[int, int, int]:
    """SET_GUARD arguments (centidegrees) for the pipeline's limits; an
    unchecked limit becomes the widest the protocol accepts."""
    (flo, fhi), (elo, ehi), _ = proto.OPCODE_LIMITS[proto.OP_SET_GUARD]
    flex = fhi if limits.flexion_deg is None else min(fhi, max(flo, int(round(limits.flexion_deg * 100))))
    ext = elo if limits.extension_deg is None else min(ehi, max(elo, int(round(limits.extension_deg * 100))))
    return (flex, ext, mode)


def neutral_args(cal: Calibration | None) -> tuple[int, int] | None:
    """SET_NEUTRAL arguments for the host's calibration: each sensor's sagittal
    angle at neutral (``atan2(u_z, u_x)`` of the neutral gravity direction in the
    sensor frame, as the wearable's guard measures it), centidegrees. None
    before calibration."""
    if cal is None or "upper" not in cal.mounting:
        return None

    def sagittal_cdeg(m) -> int:
        u = m.neutral_up()
        return int(round(math.degrees(math.atan2(u[2], u[0])) * 100.0))

    lower = cal.mounting.get("lower")
    return (sagittal_cdeg(cal.mounting["upper"]), 0 if lower is None else sagittal_cdeg(lower))


class LinkSetup:
    """The session's ``on_connected`` hook, run after every (re)connect:
    read STATUS, continue the command counter past the device's
    ``last_counter``, send SET_NEUTRAL (the host's calibrated neutral, once
    there is one, so the wearable's own guard measures from the same posture),
    SET_GUARD (the wearable guards while the link is down, with the
    pipeline's current limits; while a set is on it guards always, see
    :meth:`guard_mode_now`), SET_RATE if ``rate_hz`` is given and the
    device runs at another rate, and START.

    A STATUS with another ``boot_count`` than before means the wearable
    restarted (brown-out, reset): ``device_restarts`` counts it and the
    settings above are applied again (the neutral calibration of the
    device's guard is kept in its flash, see firmware/config_store.py). Over
    a link that survives a reboot (serial) the heartbeat notices it: every
    ``status_every_s`` it asks for STATUS instead of TIME_SYNC and sets the
    device up again when the boot changed or it stopped streaming.

    A wearable without a command-counter floor (new, or its counter file
    lost) refuses every command as stale until a GET_STATUS: then it draws a
    fresh floor and reports it in that STATUS. So a setup refused as stale
    asks for STATUS once (``request_status``), continues from its
    ``last_counter`` (``counter_resyncs``) and applies the settings again.

    ``log`` keeps ``(time, what)`` for every run so a test can ask what
    happened; :meth:`update_guard` re-sends SET_GUARD when the limits or the
    guard mode change (after calibration, a new exercise, a set starting or
    ending); :meth:`finish` ends the stream
    (STOP: the device sends what it still holds) and reads the final STATUS."""

    def __init__(
        self,
        pipeline: Pipeline,
        guard_mode: int = proto.GUARD_WHEN_LINK_DOWN,
        command_timeout_s: float = 2.0,
        *,
        rate_hz: int | None = None,
        status_every_s: float = 2.0,
    ) -> None:
        self.pipeline = pipeline
        self.guard_mode = guard_mode
        self.command_timeout_s = command_timeout_s
        self.rate_hz = rate_hz
        self.status_every_s = status_every_s
        self.runs = 0
        self.heartbeats = 0
        self.status_polls = 0
        self.status: proto.Status | None = None
        self.boot_count: int | None = None
        self.device_restarts = 0
        self.guard_sent: tuple[int, int, int] | None = None
        self.neutral_sent: tuple[int, int] | None = None
        self.counter_resyncs = 0  # GET_STATUS resyncs after a refusal as stale
        self.log: list[tuple[float, str]] = []
        #: the session's :class:`~spinemon.io.commands.CommandQueue` once the link is up:
        #: commands outside the setup hook (guard updates, the heartbeat, STATUS polls) go through it
        self.queue: CommandQueue | None = None

    @property
    def counter(self):
        return self.pipeline.alert_policy.counter

    def _queued(self, transport: Transport) -> CommandQueue | None:
        """The queue for a command now: none inside the setup hook (it runs
        before the link counts as up, and owns the link until it is done)."""
        q = self.queue
        return q if q is not None and q.transport is transport and not in_setup(transport) else None

    async def _command(self, transport: Transport, opcode: int, args: tuple = ()) -> None:
        q = self._queued(transport)
        if q is not None:
            await q.send(opcode, args)
        else:
            frame = proto.encode_command(self.counter.next(), opcode, args)
            await transport.send(frame, timeout=self.command_timeout_s)
        self.log.append((time.time(), proto.OPCODE_NAMES[opcode]))

    async def _request_status(self, transport: Transport, request) -> proto.Status:
        q = self._queued(transport)
        if q is not None:
            return await q.call(lambda: request(self.counter, timeout=self.command_timeout_s))
        return await request(self.counter, timeout=self.command_timeout_s)

    def _take_status(self, status: proto.Status) -> bool:
        """Keep a STATUS; True if it is from a new boot of the device."""
        self.status = status
        restarted = self.boot_count is not None and status.boot_count != self.boot_count
        if restarted:
            self.device_restarts += 1
            self.log.append(
                (time.time(), f"device restarted (boot {self.boot_count} -> {status.boot_count})")
            )
        self.boot_count = status.boot_count
        return restarted

    async def __call__(self, transport: Transport) -> None:
        status = await transport.read_status(self.counter, timeout=self.command_timeout_s)
        if status is not None:
            self.counter.resume_after(status.last_counter)
            self.log.append((time.time(), "STATUS"))
            self._take_status(status)
        try:
            await self._apply(transport, status)
        except CommandError as e:
            request = getattr(transport, "request_status", None)
            if e.code != proto.E_STALE or request is None:
                raise
            # refused as stale: the wearable has no counter floor (new, or its
            # counter file was lost: it fails closed) or ours is outside its
            # window. GET_STATUS resyncs: such a device draws a fresh floor and
            # reports it; continue from there (docs/security.md)
            status = await request(self.counter, timeout=self.command_timeout_s)
            self.counter.resume_after(status.last_counter)
            self.counter_resyncs += 1
            self.log.append((time.time(), "counter resynced"))
            self._take_status(status)
            await self._apply(transport, status)
        self.runs += 1

    def guard_mode_now(self) -> int:
        """The guard mode for the device now: ``GUARD_ALWAYS`` while the
        pipeline watches the limits (a set or hold is on), so the wearable
        buzzes on its own estimate at once and the host's confirmed alert for
        the same fault only records it (one buzz per fault); otherwise the
        session's ``guard_mode`` (by default the device guards only while the
        link is down). ``GUARD_OFF`` stays off."""
        if self.guard_mode != proto.GUARD_OFF and self.pipeline.watching:
            return proto.GUARD_ALWAYS
        return self.guard_mode

    def _guard_args(self) -> tuple[int, int, int]:
        return guard_args(self.pipeline.limits, self.guard_mode_now())

    def needs_update(self) -> bool:
        """The device's neutral, limits or guard mode differ from the pipeline's now (after calibration, a new exercise, a set starting or ending)."""
        return (
            neutral_args(self.pipeline.calibration) not in (None, self.neutral_sent)
            or self._guard_args() != self.guard_sent
        )

    async def _push_neutral(self, transport: Transport) -> bool:
        args = neutral_args(self.pipeline.calibration)
        if args is None or args == self.neutral_sent:
            return False
        await self._command(transport, proto.OP_SET_NEUTRAL, args)
        self.neutral_sent = args
        return True

    async def _apply(self, transport: Transport, status: proto.Status | None) -> None:
        self.neutral_sent = (
            None  # after every (re)connect: the device may have rebooted or been recalibrated by its button
        )
        await self._push_neutral(transport)
        args = self._guard_args()
        await self._command(transport, proto.OP_SET_GUARD, args)
        self.guard_sent = args
        if self.rate_hz is not None and (status is None or status.period_us != round(1e6 / self.rate_hz)):
            await self._command(transport, proto.OP_SET_RATE, (int(self.rate_hz),))
        await self._command(transport, proto.OP_START)

    async def poll_status(self, transport: Transport) -> proto.Status | None:
        """Ask for STATUS now (None if the transport cannot); set the device
        up again if it restarted or stopped streaming since the last one."""
        request = getattr(transport, "request_status", None)
        if request is None:
            return None
        status = await self._request_status(transport, request)
        self.status_polls += 1
        restarted = self._take_status(status)
        if restarted or not status.state & proto.ST_STREAMING:
            self.log.append((time.time(), "set up again"))
            await self._apply(transport, status)
        return status

    async def heartbeat(self, transport: Transport) -> None:
        """Send TIME_SYNC every ``HEARTBEAT_MS`` while connected, so the
        wearable knows the host is watching (after ``HOST_SILENCE_MS`` of
        silence its own guard takes over); every ``status_every_s`` the
        heartbeat is a STATUS request instead (see :meth:`poll_status`).
        Failures are logged, not raised: a dead link is the transport's
        business."""
        period = proto.HEARTBEAT_MS / 1000.0
        last_poll = time.monotonic()
        while True:
            await asyncio.sleep(period)
            if not getattr(transport, "connected", True) or not self.runs:
                continue
            if getattr(transport, "_pending", None):
                continue  # a command is in flight: it is the heartbeat
            try:
                if (
                    self.status_every_s
                    and time.monotonic() - last_poll >= self.status_every_s
                    and hasattr(transport, "request_status")
                ):
                    last_poll = time.monotonic()
                    await self.poll_status(transport)
                elif self._queued(transport) is not None:
                    await self.queue.send(proto.OP_TIME_SYNC)
                else:
                    await transport.send(
                        proto.encode_command(self.counter.next(), proto.OP_TIME_SYNC),
                        timeout=self.command_timeout_s,
                    )
                self.heartbeats += 1
            except SpinemonError as e:
                self.log.append((time.time(), f"heartbeat failed: {e}"))

    async def update_guard(self, transport: Transport) -> bool:
        """Send SET_NEUTRAL and SET_GUARD if the calibration or the limits
        changed since the last ones; True if anything was sent."""
        sent = await self._push_neutral(transport)
        args = self._guard_args()
        if args == self.guard_sent:
            return sent
        await self._command(transport, proto.OP_SET_GUARD, args)
        self.guard_sent = args
        return True

    async def finish(self, transport: Transport) -> proto.Status | None:
        """End of the session: STOP (the device flushes its last batch and
        sends every frame it holds before the ACK), then the final STATUS,
        whose drop counters go next to the host's gap accounting. None if
        the transport cannot ask for STATUS."""
        await self._command(transport, proto.OP_STOP)
        request = getattr(transport, "request_status", None)
        if request is None:
            return None
        status = await self._request_status(transport, request)
        self._take_status(status)
        return status


# ---------------------------------------------------------------------------
# the display
# ---------------------------------------------------------------------------
def _fmt_limit(v: float | None) -> str:
    return "off" if v is None else f"{v:+.1f}"


def sets_recorded(path: str | Path) -> int:
    """Sets the live sessions already in a recording reported (their closing
    summaries); a session resumed after them numbers its sets on from there.
    0 when the file cannot be read (the writer then says what is wrong)."""
    from spinemon.io.recording import load

    try:
        return sum(len(m.get("sets", [])) for m in load(path).meta_of("summary") if isinstance(m, dict))
    except (SpinemonError, OSError):
        return 0


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
            summ = result.summary or {}
            n_sets, n_reps = len(summ.get("sets") or []), len(summ.get("reps") or [])
            head += (
                f" {n_sets} set{'s' if n_sets != 1 else ''}, {n_reps} rep{'s' if n_reps != 1 else ''}, {len(result.alerts)} alert{'s' if len(result.alerts) != 1 else ''}"
                f" ({result.frames} frames, lost samples {st.get('lost_samples', 0)}, bad frames {st.get('bad_frames', 0)})."
            )
        if out:
            head += f" Recording: {out}"
        self.line(head)
        if result is not None and result.summary.get("monitoring"):
            from spinemon.app.session import monitoring_line

            self.line("  " + monitoring_line(result.summary["monitoring"]))


# ---------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------
def sim_sets_for(exercise: str, side: str | None = None) -> list[sim.SetSpec]:
    """The simulated workout: the demo workout, or for one exercise a set of
    5 reps with its first typical fault on rep 3 (a unilateral lift: on
    ``side``, or a set on each side when none is named)."""
    if exercise == "generic":
        return sim.demo_workout()
    if exercise not in sim.EXERCISES:
        raise ConfigError(
            f"the simulated wearer cannot do {exercise!r}; choose one of {', '.join(sim.EXERCISES)}"
        )
    fault = {3: sim.FAULTS_BY_EXERCISE[exercise][0]}
    if exercise in sim.UNILATERAL_EXERCISES:
        sides = [side] if side is not None else ["left", "right"]
        return [
            sim.SetSpec(exercise, 5, fault if i == 0 else {}, rest_s=3.0, side=s) for i, s in enumerate(sides)
        ]
    return [sim.SetSpec(exercise, 5, fault, rest_s=3.0)]


def make_transport(options: LiveOptions, *, calibrated: bool = False) -> Transport:
    """The transport for ``options`` (not connected yet). ``calibrated``: the
    session starts from a stored calibration, so the simulated wearer does not
    go through the calibration bends (a calibrated lifter just lifts)."""
    if options.sim:
        session = sim.simulate(
            sim_sets_for(options.exercise, options.side),
            seed=options.seed,
            rom=options.calibrate_rom and not calibrated,
        )
        frames = list(zip(session.frames, session.frame_times.tolist()))
        labels = []
        if options.exercise == "generic":  # several exercises: the lifter says which set starts
            t0 = float(session.frame_times[0])
            labels = [
                (max(t0, s.t_start - 0.5), Label(s.set, s.exercise, s.named_side)) for s in session.sets
            ]
        return SimTransport(frames, labels, speed=options.speed)
    if options.port:
        from spinemon.io.serial_link import SerialTransport
        from spinemon.io.transport import LinkOptions

        return SerialTransport(
            options.port,
            options=LinkOptions(
                connect_timeout_s=options.connect_timeout_s, command_timeout_s=options.command_timeout_s
            ),
        )
    from spinemon.io.ble import BleOptions, BleTransport

    opts = BleOptions(
        connect_timeout_s=options.connect_timeout_s, command_timeout_s=options.command_timeout_s
    )
    return BleTransport(
        options.address, name=options.name, options=opts, backend=options.ble_backend, **options.ble_kwargs
    )


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


async def run(
    options: LiveOptions,
    ui: LiveUI | None = None,
    *,
    transport: Transport | None = None,
    pipeline: Pipeline | None = None,
    keys: TextIO | None = None,
) -> SessionResult:
    """One live session until the stream ends or the task is cancelled
    (Ctrl-C; the CancelledError propagates after the recording is closed)."""
    ui = ui or LiveUI()
    prof = None
    if pipeline is None:
        settings = PipelineSettings(
            exercise=options.exercise,
            side=options.side,
            calibration=CalibrationSettings(rom=options.calibrate_rom),
        )
        overrides = profile_store.merge_limit_overrides(options.limits)
        if overrides:
            settings = replace(settings, limit_overrides=overrides)
        if options.uses_profile:
            prof = profile_store.load_profile(options.profile)
            settings = prof.pipeline_settings(settings, recalibrate=options.recalibrate)
            if settings.stored_calibration is not None:
                ui.prompt(
                    f"Using the calibration stored in {profile_store.profile_path(options.profile)} ({prof.calibrated_at}); run with --recalibrate after re-attaching the sensors."
                )
        pipeline = Pipeline(settings)

    def on_calibrated(cal: Calibration) -> None:
        nonlocal prof
        if prof is None or (pipeline.settings.calibration.rom and cal.rom is None and cal.t_rom is None):
            return  # not using a profile, or the range-of-motion part is still to come
        prof = prof.with_calibration(cal, device=options.source)
        try:
            where = profile_store.save_profile(prof, options.profile)
            ui.line(f"-- calibration saved to {where}")
        except SpinemonError as e:
            ui.line(f"!! {e}")

    view = None  # the coach's page (spinemon.app.view): it observes the hooks below, nothing else
    feed = None

    def on_state(state: str) -> None:
        ui.on_state(state)
        if feed is not None:
            feed.on_state(state)

    def on_alert(alert: Alert) -> None:
        ui.on_alert(alert)
        if feed is not None:
            feed.on_alert(alert)

    transport = transport or make_transport(options, calibrated=pipeline.calibration is not None)
    setup = LinkSetup(pipeline, options.guard_mode, options.command_timeout_s)
    transport.on_connected = setup
    transport.on_state = on_state
    recorder = None
    if options.out and not options.resume and Path(options.out).exists():
        raise ConfigError(
            f"{options.out} already exists; choose another --out, or pass --resume to continue it in a new segment"
        )
    if options.out:
        if Path(options.out).exists():
            ui.set_offset = sets_recorded(options.out)  # the screen numbers sets on, as replay will
        # an existing recording is resumed in a new segment (--resume), never overwritten
        recorder = RecordingWriter(
            options.out,
            header_for(pipeline.settings, options.source, {"live": {"guard_mode": options.guard_mode}}),
            resume=True,
        )
        if recorder.segment > 1:
            ui.line(
                f"-- {options.out} exists: this session continues it in segment {recorder.segment} ({recorder.path.name})"
            )
    guard_task: asyncio.Task | None = None
    heartbeat_task: asyncio.Task | None = None
    commands: CommandQueue | None = None
    detach_keys: Callable[[], None] | None = None
    result: SessionResult | None = None
    cancelled = False

    def link_stats() -> dict:
        st = getattr(transport, "stats", None)
        return st.as_dict() if st is not None and hasattr(st, "as_dict") else {}

    def on_frame(res: FrameResult, pl: Pipeline) -> None:
        nonlocal guard_task
        ui.on_frame(res, pl, link_stats())
        if feed is not None:
            feed.on_frame(res, pl)  # reads what the frame and the pipeline hold; never waits
        connected = getattr(transport, "connected", True)
        if connected and setup.runs and setup.needs_update() and (guard_task is None or guard_task.done()):
            guard_task = asyncio.get_running_loop().create_task(_update_guard(setup, transport))

    try:
        if options.view:  # before connecting: the page's address is on the screen's first lines
            from spinemon.app.view import ViewFeed, ViewServer

            view = ViewServer(ViewFeed(set_offset=lambda: ui.set_offset), options.view_port)
            ui.prompt(f"Live view for a coach: {await view.start()} (open it on this computer)")
            feed = view.feed
        ui.prompt(f"Connecting to {options.source} ...")
        await transport.connect(options.connect_timeout_s)
        if recorder is not None and setup.status is not None:
            recorder.meta({"type": "device_status", **setup.status.as_dict()})
        commands = setup.queue = CommandQueue(transport, pipeline.alert_policy.counter)
        heartbeat_task = asyncio.get_running_loop().create_task(setup.heartbeat(transport))
        if (
            keys is None and sys.stdin is not None and sys.stdin.isatty()
        ):  # --sim too: Enter and exercise names work as on hardware
            keys = sys.stdin
        if keys is not None:
            marker = SetMarker(transport, ui, pipeline.exercise, pipeline.settings.side)
            detach_keys = marker.attach(keys)
            ui.prompt(
                "Press Enter at the start of each set (type an exercise name first to switch, e.g. squat)."
            )
        result = await run_live(
            transport,
            pipeline,
            recorder,
            on_alert=on_alert,
            on_frame=on_frame,
            on_calibrated=on_calibrated,
            on_recording_error=lambda msg: ui.line("!! " + msg + "; monitoring goes on"),
            on_device_restart=lambda boot: ui.line(
                f"-- the wearable restarted (boot {boot}); settings sent again, the session continues"
            ),
            commands=commands,
        )
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        if recorder is not None:
            recorder.close()  # run_live closed it already, unless connect failed first
        if detach_keys is not None:
            detach_keys()
        for task in (guard_task, heartbeat_task):
            if task is not None and not task.done():
                task.cancel()
        if commands is not None:
            await asyncio.shield(commands.close())
        try:
            await asyncio.shield(transport.close())
        except SpinemonError:
            pass
        if view is not None:
            await asyncio.shield(view.stop())
        ui.finish(result, options.out, cancelled)
    return result


async def _update_guard(setup: LinkSetup, transport: Transport) -> None:
    try:
        await setup.update_guard(transport)
    except SpinemonError as e:  # the next (re)connect sends the current limits anyway
        setup.log.append((time.time(), f"guard update failed: {e}"))


# ---------------------------------------------------------------------------
# command-line entry points (wired by spinemon.app.cli)
# ---------------------------------------------------------------------------
def add_source_arguments(parser: Any) -> None:
    """Which wearable: exactly one of --address/--name (BLE), --port (serial) or --sim."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--address", help="BLE address of the wearable")
    src.add_argument("--name", help="advertised BLE name of the wearable (e.g. spinemon-1A2B)")
    src.add_argument("--port", help="serial port or pyserial URL (e.g. /dev/ttyACM0, socket://host:port)")
    src.add_argument("--sim", action="store_true", help="the simulated wearer")


def add_arguments(parser: Any) -> None:
    """The ``spinemon live`` options, for an argparse (sub)parser."""
    add_source_arguments(parser)
    parser.add_argument(
        "--exercise",
        default="generic",
        type=argtypes.exercise_side,
        metavar="EXERCISE",
        help=f"exercise profile: {', '.join(PROFILES)} (default generic); a unilateral one may name the working side, e.g. 'lunge left' or split_squat:right",
    )
    parser.add_argument("--out", help="write the session recording here (must not exist, unless --resume)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an existing --out recording in a new segment (a new session, numbered on)",
    )
    parser.add_argument(
        "--speed",
        type=argtypes.live_speed,
        default=1.0,
        help="--sim only: play the simulated wearer this many times faster than real time (above 0)",
    )
    parser.add_argument("--seed", type=argtypes.seed, default=1, help="--sim only: simulated wearer seed")
    parser.add_argument("--no-rom", action="store_true", help="skip the range-of-motion part of calibration")
    parser.add_argument(
        "--profile",
        help="your profile file (stored calibration and limits; default $SPINEMON_PROFILE or ~/.spinemon/profile.json; --sim uses none unless given)",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="calibrate again (after re-attaching the sensors) instead of using the stored calibration",
    )
    parser.add_argument(
        "--limit",
        action="append",
        type=argtypes.limit_override,
        default=[],
        metavar="EXERCISE.LIMIT=VALUE",
        help="override a limit for this session, e.g. deadlift.flexion_share=0.55 (repeatable)",
    )
    parser.add_argument(
        "--view",
        action="store_true",
        help="serve a live page for a coach (angle trace against the limits, set/rep, alerts) on 127.0.0.1; its address, with a random token, is printed first (needs the 'view' extra: pip install -e '.[view]')",
    )
    parser.add_argument(
        "--view-port",
        type=argtypes.port,
        default=0,
        metavar="PORT",
        help="--view only: the page's port on 127.0.0.1 (default: a free one the OS chooses)",
    )


def options_from(ns: Any) -> LiveOptions:
    exercise, side = parse_exercise(getattr(ns, "exercise", None) or "generic")
    return LiveOptions(
        address=getattr(ns, "address", None),
        name=getattr(ns, "name", None),
        port=getattr(ns, "port", None),
        sim=bool(getattr(ns, "sim", False)),
        exercise=exercise,
        side=side,
        out=getattr(ns, "out", None),
        speed=getattr(ns, "speed", None) or 1.0,
        seed=getattr(ns, "seed", None) or 1,
        calibrate_rom=not getattr(ns, "no_rom", False),
        profile=getattr(ns, "profile", None),
        recalibrate=bool(getattr(ns, "recalibrate", False)),
        resume=bool(getattr(ns, "resume", False)),
        limits=tuple(getattr(ns, "limit", None) or ()),
        view=bool(getattr(ns, "view", False)),
        view_port=getattr(ns, "view_port", None) or 0,
    )


def main(ns: Any, stream: TextIO | None = None) -> int:
    """``spinemon live``: 0 when the stream ended or Ctrl-C stopped it, 1 on an error."""
    ui = LiveUI(stream)
    options = options_from(ns)  # ConfigError -> the CLI's one-line error
    if options.view:
        from spinemon.app.view import MISSING_AIOHTTP, have_aiohttp

        if not have_aiohttp():
            raise ViewUsageError(MISSING_AIOHTTP)  # a command-line error: exit 2, before anything runs
    try:
        asyncio.run(run(options, ui))
    except KeyboardInterrupt:
        return 0
    return 0


def scan_main(ns: Any, stream: TextIO | None = None) -> int:
    """``spinemon scan [--timeout S] [--battery]``: list wearables in range."""
    from spinemon.io.ble import scan

    out = stream if stream is not None else sys.stdout
    found = asyncio.run(
        scan(float(getattr(ns, "timeout", None) or 5.0), read_battery=bool(getattr(ns, "battery", False)))
    )
    if not found:
        out.write("no spinemon wearable found\n")
        return 0
    for d in found:
        batt = "?" if d.battery_pct is None else f"{d.battery_pct}%"
        rssi = "?" if d.rssi is None else f"{d.rssi} dBm"
        out.write(f"{d.address}  {d.name or '-':20s}  RSSI {rssi:>8s}  battery {batt}\n")
    return 0
