"""Live sessions: :func:`run_live` drives a :class:`~spinemon.core.pipeline.Pipeline`
from a :class:`~spinemon.io.transport.Transport`: every frame is recorded as
received, then processed; every alert is sent to the wearable at once and
recorded. Replaying a recording is :mod:`spinemon.app.replay`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable

import spinemon_protocol as proto
from spinemon import __version__
from spinemon.app.results import SessionResult, summary_of
from spinemon.core import fusion_kernel, rep_kernel
from spinemon.core.alerts import Alert
from spinemon.core.calibration import Calibration
from spinemon.core.device_status import DeviceAccounting
from spinemon.core.pipeline import FrameResult, Pipeline, PipelineSettings
from spinemon.errors import RecordingError
from spinemon.io.commands import ATTEMPT_TIMEOUT_S, CommandQueue, Sent
from spinemon.io.recording import RecordingWriter
from spinemon.io.transport import Label, Received, Transport


def header_for(settings: PipelineSettings, source: str, extra: dict | None = None) -> dict:
    return {"spinemon": __version__, "source": source, "settings": settings.as_dict(), **(extra or {})}


async def run_live(
    transport: Transport,
    pipeline: Pipeline,
    recorder: RecordingWriter | None = None,
    *,
    on_alert: Callable[[Alert], None] | None = None,
    on_frame: Callable[[FrameResult, Pipeline], None] | None = None,
    on_calibrated: Callable[[Calibration], None] | None = None,
    on_recording_error: Callable[[str], None] | None = None,
    on_device_restart: Callable[[int], None] | None = None,
    device: DeviceAccounting | None = None,
    send_timeout: float | None = None,
    commands: CommandQueue | None = None,
    on_result: Callable[[SessionResult], None] | None = None,
) -> SessionResult:
    """Run until the transport's stream ends (or the task is cancelled:
    Ctrl-C). The recording stays valid whatever happens.

    A recording that cannot be written any more (disk full) stops with one
    message (``on_recording_error``, and ``recording_error`` in the summary);
    monitoring and alerts go on. Every STATUS frame in the stream feeds
    ``device`` (a :class:`DeviceAccounting`, made here if not given): the
    summary's ``device`` section puts the wearable's drop counters next to
    the host's ``lost_samples``; a STATUS from a new boot calls
    ``on_device_restart(boot_count)`` and is recorded (``device_restart``).

    The loop never waits on the radio: each alert's HAPTIC goes to
    ``commands`` (a :class:`~spinemon.io.commands.CommandQueue`, made here
    if not given; ``send_timeout`` caps its wait for each ACK), which sends
    it in the background with retries. The alert is recorded and reported
    (``on_alert``) when its delivery is known: sent (``t_sent_host``; a
    lost ACK whose retry shows the wearable had it counts as sent) or not
    (``send_failures``). At the end the queue gets a moment to finish.

    ``on_result`` gets the session's result however it ends, also when the
    task is cancelled (Ctrl-C), where nothing is returned: the screen prints
    the same summary either way."""
    rep_kernel.warm_up()  # compiled now, not at the first monitored frame (~0.5 s)
    fusion_kernel.warm_up()  # the same for the fusion filter, which the first frame runs
    frames = 0
    send_failures = 0
    t_last = None
    device = device if device is not None else DeviceAccounting()
    recording_error: str | None = None
    own_queue = commands is None
    if commands is None:
        counter = pipeline.alert_policy.counter
        commands = (
            CommandQueue(transport, counter)
            if send_timeout is None
            else CommandQueue(
                transport, counter, attempt_timeout_s=min(float(send_timeout), ATTEMPT_TIMEOUT_S)
            )
        )

    def rec(fn, *args, **kw) -> None:
        nonlocal recorder, recording_error
        if recorder is None:
            return
        try:
            fn(recorder, *args, **kw)
        except RecordingError as e:
            recording_error = str(e)
            recorder = None  # the writer keeps what it wrote; monitoring goes on
            if on_recording_error:
                on_recording_error(recording_error)

    def alert_known(alert: Alert, t_rx: float) -> None:
        if alert.t_sent_host is not None:
            rec(RecordingWriter.frame_out, alert.command, alert.t_sent_host)
        rec(RecordingWriter.meta, alert.as_dict(), t_rx)
        if on_alert:
            on_alert(alert)

    def alert_sent(alert: Alert, t_rx: float, sent: Sent) -> None:
        nonlocal send_failures
        if sent.frame is not None:  # the counter it went out with (taken when written)
            alert.command, alert.counter = sent.frame, sent.counter
        alert.t_sent_host = sent.t_sent
        if not sent.ok:
            send_failures += 1  # the firmware guard covers a dead link
        alert_known(alert, t_rx)

    try:
        async for item in transport.items():
            if isinstance(item, Label):
                rec(RecordingWriter.meta, item.as_dict())
                pipeline.on_label(item.as_dict())
                continue
            assert isinstance(item, Received)
            frames += 1
            rec(RecordingWriter.frame_in, item.frame, item.t_host)
            res = pipeline.on_frame(item.frame, item.t_host)
            if device.on_items(res.other):  # the STATUS the pipeline's decoder decoded
                boot = device.order[-1]
                rec(RecordingWriter.meta, {"type": "device_restart", "boot_count": boot}, item.t_host)
                if on_device_restart:
                    on_device_restart(boot)
            if res.t is not None and len(res.t):
                t_last = float(res.t[-1])
            for alert in res.alerts:
                if alert.command is None:  # the wearable's guard buzzed for it already
                    alert_known(alert, item.t_host)
                    continue
                cmd = proto.decode_command(alert.command)
                commands.submit(
                    cmd.opcode,
                    cmd.args,
                    counter=cmd.counter,
                    done=functools.partial(alert_sent, alert, item.t_host),
                )
            if res.calibrated is not None:
                rec(RecordingWriter.meta, res.calibrated.as_dict(), item.t_host)
                if on_calibrated:
                    on_calibrated(res.calibrated)
            if on_frame:
                on_frame(res, pipeline)
    finally:
        try:  # the last alerts' commands: a moment to be delivered (or given up) and recorded
            await commands.drain(commands.attempt_timeout_s * commands.attempts + 0.2)
        except asyncio.CancelledError:
            pass
        if own_queue:
            await asyncio.shield(commands.close())
        pipeline.finish(t_last)
        summary = summary_of(
            pipeline, device, frames=frames, send_failures=send_failures, commands=commands.stats.as_dict()
        ).evolve(recording_error=recording_error)
        rec(RecordingWriter.meta, summary.as_dict(), time.time(), sync=True)  # the recording's closing record
        if recorder is not None:
            try:
                recorder.close()
            except RecordingError as e:
                recording_error = str(e)
                summary = summary.evolve(recording_error=recording_error)
                if on_recording_error:
                    on_recording_error(recording_error)
        result = SessionResult.of(pipeline, frames, summary, send_failures)
        if on_result is not None:
            on_result(result)
    return result
