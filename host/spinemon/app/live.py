"""The engine of ``spinemon live``: connect, calibrate with guided prompts, monitor.

:func:`run` takes a :class:`LiveOptions` and a
:class:`~spinemon.app.live_ui.LiveUI` (the display), builds the transport
(BLE, serial or the simulated wearer: :func:`make_transport`), installs
:class:`~spinemon.io.device_link.LinkSetup` as the transport's
``on_connected`` hook and drives :func:`spinemon.app.session.run_live`. The
pipeline does not know which transport it has. Cancelling (Ctrl-C) ends
cleanly: the recording is closed with its summary and stays loadable.

With ``--view`` the coach's page (:mod:`spinemon.app.view`) is served on
127.0.0.1 before connecting (its address is the screen's first line) and
fed from the same ``on_frame``/``on_alert``/``on_state`` hooks as the
status line; it only observes them. The command line is
:mod:`spinemon.app.commands.live`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import spinemon_protocol as proto
from spinemon.app import lean_history
from spinemon.app.live_keys import SetMarker
from spinemon.app.live_ui import LiveUI
from spinemon.app.results import SessionResult
from spinemon.app.session import header_for, run_live
from spinemon.app.session_summary import Summary
from spinemon.app.simrun import sim_sets_for
from spinemon.app.view import ViewUsageError
from spinemon.core.alerts import Alert
from spinemon.core.calibration import Calibration, CalibrationSettings
from spinemon.core.pipeline import (
    FrameResult,
    Pipeline,
    PipelineSettings,
)
from spinemon.errors import ConfigError, SpinemonError
from spinemon.io import profile_store, sim
from spinemon.io.atomic import ExistingOutputError, refuse_existing
from spinemon.io.commands import CommandQueue
from spinemon.io.device_link import LinkSetup
from spinemon.io.recording import RecordingWriter
from spinemon.io.transport import Label, SimTransport, Transport

__all__ = [
    "LinkSetup",
    "LiveOptions",
    "LiveUI",
    "make_transport",
    "run",
    "sim_sets_for",
]


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
    force: bool = False  # an existing --out recording (and its segments) is replaced (else refused)
    limits: tuple[str, ...] = ()  # "EXERCISE.LIMIT=VALUE" overrides for this session
    view: bool = False  # serve the live page for a coach on 127.0.0.1 (spinemon.app.view; the `view` extra)
    view_port: int = 0  # its port; 0: one the OS chooses
    #: --view-lan: serve the page on every interface (a coach's phone on the local network), not 127.0.0.1 only
    view_lan: bool = False
    #: say on screen where the session is recorded (or that it is not): the `live` command; calibrate does not record
    announce_recording: bool = False

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
        if self.view_lan and not self.view:
            raise ViewUsageError("--view-lan needs --view")
        if self.force and self.resume:
            raise ExistingOutputError("--force replaces --out and --resume continues it: give one of them")
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


def sets_recorded(path: str | Path) -> int:
    """Sets the live sessions already in a recording reported (their closing
    summaries); a session resumed after them numbers its sets on from there.
    0 when the file cannot be read (the writer then says what is wrong)."""
    from spinemon.io.recording import load

    try:
        return sum(
            len(Summary.from_dict(m).sets) for m in load(path).meta_of("summary") if isinstance(m, dict)
        )
    except (SpinemonError, OSError):
        return 0


# ---------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------
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
        # the lifter's usual forward lean (one sensor, squats and hinges) from the session index
        found, index_notes = lean_history.from_index()
        by_hand = settings.limit_overrides
        settings = lean_history.apply(settings, found)
        for line in index_notes:
            ui.prompt(line)
        # said once the wearable is seen to stream one sensor (from the start, or
        # when a sensor is lost): with two, the lumbar limits apply and lean is not judged
        lean_lines = lean_history.lines(found, settings.exercise, by_hand)
        pipeline = Pipeline(settings)
    else:
        found = {}
        lean_lines = []

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
    if options.out:
        refuse_existing(
            options.out,
            options.resume or options.force,
            "choose another --out, pass --resume to continue it in a new segment, or --force to replace it",
        )
    if options.out:
        if Path(options.out).exists() and not options.force:
            ui.set_offset = sets_recorded(options.out)  # the screen numbers sets on, as replay will
        # an existing recording is resumed in a new segment (--resume), or replaced with --force
        recorder = RecordingWriter(
            options.out,
            header_for(
                pipeline.settings,
                options.source,
                {"live": {"guard_mode": options.guard_mode}, **lean_history.header(found)},
            ),
            resume=not options.force,
            overwrite=options.force,
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
        return {} if transport.stats is None else transport.stats.as_dict()

    def on_frame(res: FrameResult, pl: Pipeline) -> None:
        nonlocal guard_task, lean_lines
        if lean_lines and pl.single_sensor:
            for line in lean_lines:
                ui.prompt(line)
            lean_lines = []
        ui.on_frame(res, pl, link_stats())
        if feed is not None:
            feed.on_frame(res, pl)  # reads what the frame and the pipeline hold; never waits
        if (
            transport.connected
            and setup.runs
            and setup.needs_update()
            and (guard_task is None or guard_task.done())
        ):
            guard_task = asyncio.get_running_loop().create_task(_update_guard(setup, transport))

    def on_result(res: SessionResult) -> None:
        nonlocal result
        result = res

    try:
        if options.view:  # before connecting: the page's address is on the screen's first lines
            from spinemon.app.view import ViewFeed
            from spinemon.app.view_server import ViewServer

            view = ViewServer(
                ViewFeed(set_offset=lambda: ui.set_offset), options.view_port, lan=options.view_lan
            )
            url = await view.start()
            if options.view_lan:
                ui.prompt(f"Live view for a coach: {url} (open it on a phone or computer on this network)")
                ui.line(
                    "!! WARNING the live view is open to this whole network: anyone who has this link (its token) "
                    "can watch your angles and alerts, and the page is plain HTTP (not encrypted). "
                    "Use it on a network you trust; leave --view-lan out to keep it on this computer."
                )
            else:
                ui.prompt(f"Live view for a coach: {url} (open it on this computer)")
            feed = view.feed
        if options.announce_recording:
            ui.prompt(
                f"Recording to {recorder.path}"
                if recorder is not None
                else "Not recording this session (--no-record)."
            )
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
            try:
                detach_keys = marker.attach(keys)
            except (ImportError, NotImplementedError, OSError):
                # the keys need a POSIX terminal (termios, the event loop's add_reader): not on Windows
                ui.line(
                    "-- marking sets from the keyboard needs a POSIX terminal (Linux, macOS); "
                    "sets are found from the motion alone, alerts are not affected"
                )
            else:
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
            on_result=on_result,
        )
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        if recorder is not None:
            recorder.close()  # run_live closed it already, unless connect failed first
            if result is None or result.frames == 0:
                # nothing was received (no adapter, no wearable, Ctrl-C while connecting): no
                # recording of nothing is left behind, so the same command can simply be run again
                with contextlib.suppress(OSError):
                    recorder.path.unlink()
                ui.line(f"-- nothing was received: {recorder.path} not kept")
                recorder = None
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
        if recorder is not None and options.out and not options.sim:
            _index_session(Path(options.out), ui)
        ui.finish(result, None if recorder is None else options.out, cancelled)
    return result


def _index_session(path: Path, ui: LiveUI) -> None:
    """Put the session just recorded into the session index (its replay's
    facts, as ``history`` keeps them), so the lifter's history, and with it
    the usual lean a one-sensor squat or hinge is judged against, grows with
    every session without running ``history``. The simulated wearer's
    sessions are not the lifter's and are not indexed. A failure is said and
    costs nothing else: the recording is kept either way."""
    from spinemon.app.history import indexed_facts

    notes: list[str] = []
    try:
        facts, _ = indexed_facts([path], 1, notes)
    except (SpinemonError, OSError) as e:
        notes.append(f"the session was not added to the session index: {e}")
    else:
        if facts and facts[0].get("error"):
            notes.append(f"the session was not added to the session index: {facts[0]['error']}")
    for note in notes:
        ui.line(f"-- {note}")


async def _update_guard(setup: LinkSetup, transport: Transport) -> None:
    try:
        await setup.update_guard(transport)
    except SpinemonError as e:  # the next (re)connect sends the current limits anyway
        setup.log.append((time.time(), f"guard update failed: {e}"))
