"""The device-control side of the link: what the host tells the wearable on every (re)connect.

:class:`LinkSetup` is a session's ``on_connected`` hook: it reads STATUS,
continues the command counter past the device's ``last_counter`` (a stale
counter is resynchronised), sends SET_NEUTRAL, SET_GUARD, SET_RATE and the
heartbeat period, and keeps the guard's limits current while the session
runs. :func:`guard_args` and :func:`neutral_args` turn the host's limits and
calibration into the commands' arguments. Used by ``spinemon live``,
``spinemon calibrate`` and the bench (``hil/runner.py``).
"""

from __future__ import annotations

import asyncio
import math
import time

import spinemon_protocol as proto
from spinemon.core.calibration import Calibration
from spinemon.core.detect import Limits
from spinemon.core.pipeline import (
    Pipeline,
)
from spinemon.errors import CommandError, SpinemonError
from spinemon.io.commands import CommandQueue
from spinemon.io.transport import Transport, in_setup


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

    async def _request_status(self, transport: Transport) -> proto.Status:
        """A fresh STATUS (the transport :attr:`~Transport.can_request_status`), in the queue's control lane when there is one."""
        q = self._queued(transport)
        if q is not None:
            return await q.call(
                lambda: transport.request_status(self.counter, timeout=self.command_timeout_s)
            )
        return await transport.request_status(self.counter, timeout=self.command_timeout_s)

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
            if e.code != proto.E_STALE or not transport.can_request_status:
                raise
            # refused as stale: the wearable has no counter floor (new, or its
            # counter file was lost: it fails closed) or ours is outside its
            # window. GET_STATUS resyncs: such a device draws a fresh floor and
            # reports it; continue from there (docs/security.md)
            status = await transport.request_status(self.counter, timeout=self.command_timeout_s)
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
        if not transport.can_request_status:
            return None
        status = await self._request_status(transport)
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
            if not transport.connected or not self.runs:
                continue
            if transport.pending:
                continue  # a command is in flight: it is the heartbeat
            try:
                if (
                    self.status_every_s
                    and time.monotonic() - last_poll >= self.status_every_s
                    and transport.can_request_status
                ):
                    last_poll = time.monotonic()
                    await self.poll_status(transport)
                elif (q := self._queued(transport)) is not None:
                    await q.send(proto.OP_TIME_SYNC)
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
        if not transport.can_request_status:
            return None
        status = await self._request_status(transport)
        self._take_status(status)
        return status
