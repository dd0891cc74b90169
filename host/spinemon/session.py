"""Live sessions and replay.

:func:`run_live` drives a :class:`~spinemon.pipeline.Pipeline` from a
:class:`~spinemon.transport.Transport`: every frame is recorded as received,
then processed; every alert is sent to the wearable at once and recorded.
:func:`replay` feeds a recording's records through the same pipeline in the
same order, so it reproduces the live events exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from spinemon import __version__
from spinemon.alerts import Alert
from spinemon.calibration import Calibration
from spinemon.detect import Event
from spinemon.errors import SpinemonError
from spinemon.pipeline import FrameResult, Pipeline, PipelineSettings
from spinemon.recording import KIND_META, KIND_RX, Recording, RecordingWriter
from spinemon.transport import Label, Received, Transport


@dataclass
class SessionResult:
    events: list[Event]
    alerts: list[Alert]
    stats: dict
    calibration: Calibration | None
    angle_label: str
    frames: int = 0
    send_failures: int = 0
    summary: dict = field(default_factory=dict)


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
    send_timeout: float = 2.0,
) -> SessionResult:
    """Run until the transport's stream ends (or the task is cancelled:
    Ctrl-C). The recording stays valid whatever happens."""
    frames = 0
    send_failures = 0
    t_last = None
    try:
        async for item in transport.items():
            if isinstance(item, Label):
                if recorder:
                    recorder.meta(item.as_dict())
                pipeline.on_label(item.as_dict())
                continue
            assert isinstance(item, Received)
            frames += 1
            if recorder:
                recorder.frame_in(item.frame, item.t_host)
            res = pipeline.on_frame(item.frame, item.t_host)
            if res.t is not None and len(res.t):
                t_last = float(res.t[-1])
            for alert in res.alerts:
                try:
                    alert.t_sent_host = await transport.send(alert.command, timeout=send_timeout)
                except SpinemonError:
                    send_failures += 1  # the firmware guard covers a dead link
                    alert.t_sent_host = None
                if recorder:
                    if alert.t_sent_host is not None:
                        recorder.frame_out(alert.command, alert.t_sent_host)
                    recorder.meta(alert.as_dict(), item.t_host)
                if on_alert:
                    on_alert(alert)
            if res.calibrated is not None:
                if recorder:
                    recorder.meta(res.calibrated.as_dict(), item.t_host)
                if on_calibrated:
                    on_calibrated(res.calibrated)
            if on_frame:
                on_frame(res, pipeline)
    finally:
        pipeline.finish(t_last)
        summary = pipeline.summary()
        summary["frames"] = frames
        summary["send_failures"] = send_failures
        if recorder:
            recorder.meta(summary, time.time(), sync=True)
            recorder.close()
    return SessionResult(
        pipeline.events, pipeline.alerts, pipeline.decoder.stats.as_dict(), pipeline.calibration, pipeline.angle_label, frames, send_failures, summary
    )


def replay(recording: Recording, settings: PipelineSettings | None = None) -> SessionResult:
    """Re-run detection on a recording through the live code path."""
    if settings is None:
        settings = PipelineSettings.from_dict(recording.header.get("settings", {}))
    pipeline = Pipeline(settings)
    frames = 0
    t_last = None
    for rec in recording.records:
        if rec.kind == KIND_RX:
            frames += 1
            res = pipeline.on_frame(rec.payload, rec.t_host)
            if res.t is not None and len(res.t):
                t_last = float(res.t[-1])
        elif rec.kind == KIND_META:
            try:
                m = rec.meta
            except ValueError:
                continue
            if isinstance(m, dict) and m.get("type") == "label":
                pipeline.on_label(m)
    pipeline.finish(t_last)
    summary = pipeline.summary()
    summary["frames"] = frames
    return SessionResult(
        pipeline.events, pipeline.alerts, pipeline.decoder.stats.as_dict(), pipeline.calibration, pipeline.angle_label, frames, 0, summary
    )


def recorded_events(recording: Recording) -> list[dict] | None:
    """The events the live session reported (its closing summary), if any."""
    summaries = recording.meta_of("summary")
    return summaries[-1]["events"] if summaries else None
