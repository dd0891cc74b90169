"""The engine of ``spinemon calibrate``: guided calibration, stored in the lifter's profile.

::

    spinemon calibrate [--address A | --name N | --port URL | --sim] [--profile PATH] [--no-rom]
                       [--limit EXERCISE.LIMIT=VALUE ...] [--timeout S] [--speed X] [--seed N] [--mount-yaw DEG]

1. "Stand tall and still" (3 s; rejected and repeated if the wearer moves),
2. "Bend slowly forward as far as comfortable, then backward, then stand
   still": the range of motion, and each sensor's heading about the spine
   from the forward bend (a crooked sensor still gives sagittal angles),
3. the result goes into the profile file (``~/.spinemon/profile.json`` or
   ``--profile``/``$SPINEMON_PROFILE``) with any ``--limit`` overrides;
   ``spinemon live`` reuses it until the sensors are re-attached.

The same :class:`~spinemon.core.pipeline.Pipeline` as ``live`` does the work;
:func:`calibrate_frames` runs it over frames without a transport (tests,
recordings).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from spinemon.app.live import LiveOptions
from spinemon.app.live import run as live_run
from spinemon.app.live_ui import PROMPT_NEUTRAL, PROMPT_ROM, LiveUI
from spinemon.app.results import SessionResult
from spinemon.app.words import plural
from spinemon.core.calibration import Calibration, CalibrationSettings
from spinemon.core.pipeline import PHASE_MONITOR, PHASE_ROM, FrameResult, Pipeline, PipelineSettings
from spinemon.errors import CalibrationError
from spinemon.io import sim
from spinemon.io.transport import SimTransport

__all__ = ["CalibrationOutcome", "calibrate_frames", "describe", "run_calibration"]


@dataclass
class CalibrationOutcome:
    """A finished calibration and how it went (``attempts``: neutral windows
    started; more than 1 means the wearer moved and was asked again)."""

    calibration: Calibration
    attempts: int
    t_done: float | None


def _settings(rom: bool) -> PipelineSettings:
    return PipelineSettings(calibration=CalibrationSettings(rom=rom))


def calibrate_frames(frames: Iterable[tuple[bytes, float]], *, rom: bool = True) -> CalibrationOutcome:
    """Calibrate from ``(frame, t_host)`` pairs; stops at the first frame
    after calibration completed.

    Raises:
        CalibrationError: the frames ended before calibration was complete.
    """
    p = Pipeline(_settings(rom))
    for frame, t in frames:
        res = p.on_frame(frame, float(t))
        if p.phase == PHASE_MONITOR and p.calibration is not None:
            t_done = float(res.t[-1]) if res.t is not None and len(res.t) else None
            return CalibrationOutcome(p.calibration, p.calibrator.attempts, t_done)
    if p.calibration is None:
        raise CalibrationError(
            "the stream ended before the wearer stood still long enough (stand tall and still for 3 s)"
        )
    raise CalibrationError(
        "the stream ended during the range-of-motion bends (bend forward, then backward, then stand still)"
    )


def describe(outcome: CalibrationOutcome) -> list[str]:
    """Human-readable lines about a calibration."""
    cal = outcome.calibration
    lines = [
        f"neutral: {cal.t_neutral[1] - cal.t_neutral[0]:.1f} s still"
        + (f" (after {plural(outcome.attempts - 1, 'restart')}: keep still)" if outcome.attempts > 1 else "")
    ]
    if cal.rom is not None:
        lines.append(
            f"range of motion: flexion {cal.rom.flexion_deg:+.1f} deg, extension {cal.rom.extension_deg:+.1f} deg"
        )
    else:
        lines.append("range of motion: not measured (population defaults are used)")
    for s in sorted(cal.mounting):
        a = cal.alignment.get(s)
        if a is None:
            lines.append(f"{s} sensor: heading as mounted (no bend seen to check it)")
        else:
            lines.append(
                f"{s} sensor: turned {a['heading_deg']:+.0f} deg about the spine (found from a {a['bend_deg']:.0f} deg bend)"
            )
    return lines


class _CalibrationUI(LiveUI):
    """The live display, ending the session once calibration is done."""

    def __init__(self, stream: TextIO | None, done: asyncio.Event) -> None:
        super().__init__(stream)
        self._done = done
        self._rom_prompted = False
        self.pipeline: Pipeline | None = None

    def on_frame(self, res: FrameResult, pipeline: Pipeline, link: dict) -> None:
        self.pipeline = pipeline
        if pipeline.phase == PHASE_ROM and not self._rom_prompted:
            self._rom_prompted = True
        if pipeline.phase == PHASE_MONITOR and pipeline.calibration is not None:
            self._done.set()
            return
        super().on_frame(res, pipeline, link)

    def finish(self, result: SessionResult | None, out: str | None, cancelled: bool) -> None:
        """Nothing more: the session was only the calibration; ``spinemon calibrate`` says how it went."""
        self.close_screen()


async def run_calibration(
    options: LiveOptions, stream: TextIO | None = None, *, timeout_s: float = 120.0, transport=None
) -> CalibrationOutcome:
    """Connect as ``spinemon live`` does, run the guided calibration, disconnect.

    Raises:
        CalibrationError: not calibrated within ``timeout_s`` or the stream ended first.
    """
    done = asyncio.Event()
    ui = _CalibrationUI(stream, done)
    pipeline = Pipeline(_settings(options.calibrate_rom))
    task = asyncio.get_running_loop().create_task(
        live_run(options, ui, transport=transport, pipeline=pipeline)
    )
    waiter = asyncio.get_running_loop().create_task(done.wait())
    try:
        finished, _ = await asyncio.wait(
            {task, waiter}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    if pipeline.phase == PHASE_MONITOR and pipeline.calibration is not None:
        return CalibrationOutcome(pipeline.calibration, pipeline.calibrator.attempts, None)
    if not finished:
        raise CalibrationError(
            f"not calibrated within {timeout_s:.0f} s: {PROMPT_NEUTRAL} {PROMPT_ROM if options.calibrate_rom else ''}".strip()
        )
    raise CalibrationError("the wearable stopped streaming before calibration was complete")


def _sim_transport(seed: int, speed: float, rom: bool, mount_yaw_deg: float) -> SimTransport:
    session = sim.simulate([], seed, sim.SimSettings(mount_yaw_deg=mount_yaw_deg), calibration=True, rom=rom)
    return SimTransport(list(zip(session.frames, session.frame_times.tolist())), [], speed=speed)
