"""Live sessions and replay.

:func:`run_live` drives a :class:`~spinemon.pipeline.Pipeline` from a
:class:`~spinemon.transport.Transport`: every frame is recorded as received,
then processed; every alert is sent to the wearable at once and recorded.
:func:`replay` feeds a recording's records through the same pipeline in the
same order, so it reproduces the live events exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

import spinemon_protocol as proto
from spinemon import __version__
from spinemon.alerts import Alert
from spinemon.calibration import Calibration
from spinemon.detect import Event
from spinemon.errors import RecordingError, SpinemonError
from spinemon.pipeline import FrameResult, Pipeline, PipelineSettings
from spinemon.recording import KIND_META, KIND_RX, Recording, RecordingWriter
from spinemon.stream import SampleBlock
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


#: STATUS counters of samples the wearable itself lost (never sent)
DEVICE_LOSS_FIELDS = ("samples_dropped", "samples_lost_fifo")
DEVICE_COUNTER_FIELDS = ("samples_dropped", "samples_lost_fifo", "fifo_overflows", "frames_dropped", "frames_sent", "commands_rejected", "guard_alerts")


class DeviceAccounting:
    """The wearable's own drop counters (from every STATUS the session saw),
    next to the host's gap accounting.

    The device's counters start at 0 on every boot, so they are kept per
    ``boot_count`` (the latest STATUS of each boot wins) and summed.
    ``restarts`` counts boots after the first one seen: a brown-out or a
    reset of the wearable mid-session.
    """

    def __init__(self) -> None:
        self.boots: dict[int, dict] = {}
        self.order: list[int] = []
        self.status_frames = 0
        #: the least free MicroPython heap any STATUS reported (bytes; None:
        #: the firmware does not report it): a wearable running low on memory shows here
        self.heap_free_min: int | None = None

    def on_status(self, status: proto.Status) -> bool:
        """Take one STATUS; True if it came from a boot not seen before
        (after the first): the wearable restarted."""
        self.status_frames += 1
        heap = getattr(status, "heap_free", None)
        if heap:  # 0 / None: not known
            self.heap_free_min = int(heap) if self.heap_free_min is None else min(self.heap_free_min, int(heap))
        b = int(status.boot_count)
        new = b not in self.boots
        cur = self.boots.get(b)
        if cur is None or status.uptime_ms >= cur["uptime_ms"]:
            self.boots[b] = {k: int(getattr(status, k)) for k in DEVICE_COUNTER_FIELDS + ("uptime_ms",)}
        if new:
            self.order.append(b)
        return new and len(self.order) > 1

    def on_frame(self, frame: bytes) -> bool:
        """A received frame: a STATUS is taken (see :meth:`on_status`)."""
        if len(frame) < proto.MIN_FRAME or frame[1] != proto.T_STATUS:
            return False
        try:
            st = proto.decode(frame)
        except proto.ProtocolError:
            return False  # the stream decoder counts it
        return self.on_status(st)

    @property
    def restarts(self) -> int:
        return max(0, len(self.order) - 1)

    def totals(self) -> dict:
        return {k: sum(v[k] for v in self.boots.values()) for k in DEVICE_COUNTER_FIELDS}

    @property
    def samples_lost(self) -> int:
        """Samples the wearable lost itself: dropped from its send queue or lost in an IMU FIFO."""
        t = self.totals()
        return sum(t[k] for k in DEVICE_LOSS_FIELDS)

    def as_dict(self, host_lost_samples: int | None = None) -> dict:
        d = {"status_frames": self.status_frames, "boots": list(self.order), "restarts": self.restarts, **self.totals()}
        d["samples_lost_device"] = self.samples_lost
        d["heap_free_min"] = self.heap_free_min
        if host_lost_samples is not None:
            # what the host missed that the wearable did send: lost on the link
            d["host_lost_samples"] = host_lost_samples
            d["samples_lost_link"] = host_lost_samples - self.samples_lost
        return d


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
    send_timeout: float = 2.0,
) -> SessionResult:
    """Run until the transport's stream ends (or the task is cancelled:
    Ctrl-C). The recording stays valid whatever happens.

    A recording that cannot be written any more (disk full) stops with one
    message (``on_recording_error``, and ``recording_error`` in the summary);
    monitoring and alerts go on. Every STATUS frame in the stream feeds
    ``device`` (a :class:`DeviceAccounting`, made here if not given): the
    summary's ``device`` section puts the wearable's drop counters next to
    the host's ``lost_samples``; a STATUS from a new boot calls
    ``on_device_restart(boot_count)`` and is recorded (``device_restart``)."""
    frames = 0
    send_failures = 0
    t_last = None
    device = device if device is not None else DeviceAccounting()
    recording_error: str | None = None

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

    try:
        async for item in transport.items():
            if isinstance(item, Label):
                rec(RecordingWriter.meta, item.as_dict())
                pipeline.on_label(item.as_dict())
                continue
            assert isinstance(item, Received)
            frames += 1
            rec(RecordingWriter.frame_in, item.frame, item.t_host)
            if device.on_frame(item.frame):
                boot = device.order[-1]
                rec(RecordingWriter.meta, {"type": "device_restart", "boot_count": boot}, item.t_host)
                if on_device_restart:
                    on_device_restart(boot)
            res = pipeline.on_frame(item.frame, item.t_host)
            if res.t is not None and len(res.t):
                t_last = float(res.t[-1])
            for alert in res.alerts:
                try:
                    if alert.command is not None:  # None: the wearable's guard buzzed for it already
                        alert.t_sent_host = await transport.send(alert.command, timeout=send_timeout)
                except SpinemonError:
                    send_failures += 1  # the firmware guard covers a dead link
                    alert.t_sent_host = None
                if alert.t_sent_host is not None:
                    rec(RecordingWriter.frame_out, alert.command, alert.t_sent_host)
                rec(RecordingWriter.meta, alert.as_dict(), item.t_host)
                if on_alert:
                    on_alert(alert)
            if res.calibrated is not None:
                rec(RecordingWriter.meta, res.calibrated.as_dict(), item.t_host)
                if on_calibrated:
                    on_calibrated(res.calibrated)
            if on_frame:
                on_frame(res, pipeline)
    finally:
        pipeline.finish(t_last)
        summary = pipeline.summary()
        summary["frames"] = frames
        summary["send_failures"] = send_failures
        summary["device"] = device.as_dict(pipeline.decoder.stats.lost_samples) if device.status_frames else None
        summary["recording_error"] = recording_error
        rec(RecordingWriter.meta, summary, time.time(), sync=True)
        if recorder is not None:
            try:
                recorder.close()
            except RecordingError as e:
                recording_error = summary["recording_error"] = str(e)
                if on_recording_error:
                    on_recording_error(recording_error)
    return SessionResult(
        pipeline.events, pipeline.alerts, pipeline.decoder.stats.as_dict(), pipeline.calibration, pipeline.angle_label, frames, send_failures, summary
    )


def replay(
    recording: Recording,
    settings: PipelineSettings | None = None,
    *,
    on_frame: Callable[[bytes, float, FrameResult, Pipeline], None] | None = None,
    on_label: Callable[[dict, Pipeline], None] | None = None,
    block_samples: int = 1 << 16,
) -> SessionResult:
    """Re-run detection on a recording through the live code path.
    ``on_frame(frame, t_host, result, pipeline)`` and ``on_label(label,
    pipeline)`` let a caller look at each step (reports collect per-sample
    angles).

    Without ``on_frame`` the frames' samples go through the pipeline in
    blocks of up to ``block_samples`` (cut at every label, layout change and
    clock step): the same results as frame by frame (``Pipeline.on_block``
    gives the same for any split), much faster. ``block_samples=1`` feeds
    frame by frame, as live did."""
    if settings is None:
        settings = PipelineSettings.from_dict(recording.header.get("settings", {}))
    pipeline = Pipeline(settings)
    device = DeviceAccounting()
    frames = 0
    t_last = None
    batch = _Batch(pipeline) if on_frame is None and block_samples > 1 else None
    for rec in recording.records:
        if rec.kind == KIND_RX:
            frames += 1
            device.on_frame(rec.payload)
            if batch is not None:
                # no caller looks at each frame: decode now, run the samples in long blocks
                batch.feed(rec.payload, rec.t_host, block_samples)
                continue
            res = pipeline.on_frame(rec.payload, rec.t_host)
            if res.t is not None and len(res.t):
                t_last = float(res.t[-1])
            if on_frame is not None:
                on_frame(rec.payload, rec.t_host, res, pipeline)
        elif rec.kind == KIND_META:
            if batch is not None:
                batch.flush()  # a label takes effect between the samples around it, as live
            try:
                m = rec.meta
            except ValueError:
                continue
            if isinstance(m, dict) and m.get("type") == "label":
                pipeline.on_label(m)
                if on_label is not None:
                    on_label(m, pipeline)
    if batch is not None:
        batch.flush()
        t_last = batch.t_last
    pipeline.finish(t_last)
    summary = pipeline.summary()
    summary["frames"] = frames
    summary["device"] = device.as_dict(pipeline.decoder.stats.lost_samples) if device.status_frames else None
    summary["segments"] = len(recording.segments)
    return SessionResult(
        pipeline.events, pipeline.alerts, pipeline.decoder.stats.as_dict(), pipeline.calibration, pipeline.angle_label, frames, 0, summary
    )


class _Batch:
    """Replay's decoded samples, gathered into long blocks for
    :meth:`Pipeline.on_block`. A block is cut where the stream would not
    continue it: another sensor set or rate, the device clock not moving on
    (a restart or a clock fault: the pipeline sees it as live did), a label."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.blocks: list[SampleBlock] = []
        self.t_host: list[np.ndarray] = []
        self.samples = 0
        self.t_last: float | None = None

    def feed(self, frame: bytes, t_host: float, limit: int) -> None:
        for item in self.pipeline.decoder.feed(frame, t_host):
            if not isinstance(item, SampleBlock) or not len(item):
                continue
            if self.blocks:
                last = self.blocks[-1]
                if item.sensors != last.sensors or item.rate_hz != last.rate_hz or item.t[0] <= last.t[-1] or self.samples >= limit:
                    self.flush()
            self.blocks.append(item)
            self.t_host.append(np.full(len(item), t_host))
            self.samples += len(item)

    def flush(self) -> None:
        if not self.blocks:
            return
        block = SampleBlock.concatenate(self.blocks)
        th = self.t_host[0] if len(self.t_host) == 1 else np.concatenate(self.t_host)
        self.blocks, self.t_host, self.samples = [], [], 0
        res = self.pipeline.on_block(block, th)
        if res.t is not None and len(res.t):
            self.t_last = float(res.t[-1])


def live_comparison(live: list[dict] | None, events: list[dict]) -> str | None:
    """How the replayed events compare with those the live session recorded:
    ``yes``; or, for a recording made by an earlier spinemon whose
    calibration or angles differ slightly, the same events (kind, set, rep,
    times within 0.1 s) with how far peaks and limits moved; or ``NO``."""
    if live is None:
        return None
    if live == events:
        return "yes"
    keys = ("kind", "set", "rep", "exercise")
    if len(live) == len(events) and all(all(a.get(k) == b.get(k) for k in keys) for a, b in zip(live, events)):
        def off(a, b, k):
            x, y = a.get(k), b.get(k)
            return 0.0 if x is None and y is None else (float("inf") if x is None or y is None else abs(x - y))

        dt = max([off(a, b, k) for a, b in zip(live, events) for k in ("t_start", "t_alert", "t_end")] or [0.0])
        dd = max([off(a, b, k) for a, b in zip(live, events) for k in ("peak_deg", "limit_deg")] or [0.0])
        if dt <= 0.1:
            return f"NO, but the same {len(events)} event(s): peaks and limits within {dd:.2f} deg, times within {dt:.2f} s (the recording's spinemon calibrated slightly differently)"
    return "NO"


def monitoring_line(m: dict) -> str:
    """``monitored 52.1 of 60.0 s (calibration: done); not monitored: 7.9 s waiting for ...``."""
    names = {"done": "done", "stored": "stored profile", "provisional": "PROVISIONAL (no still stretch found: neutral from the quietest moment)", "none": "NOT DONE"}
    text = f"monitored {m['monitored_s']:.1f} of {m['duration_s']:.1f} s (calibration: {names.get(m['calibration'], m['calibration'])})"
    rest = [f"{v:.1f} s {k}" for k, v in m.get("not_monitored", {}).items()]
    if rest:
        text += "; not monitored: " + ", ".join(rest)
    if m["calibration"] == "none":
        text += "; stand still for 1 s at the start so neutral can be set"
    return text


def replay_settings(recording: Recording, exercise: str | None = None, limits=()) -> PipelineSettings | None:
    """The recording's own settings with another default exercise and/or limit
    overrides on top (``replay --exercise/--limit``); None when neither is given."""
    if not exercise and not limits:
        return None
    from spinemon.profile_store import merge_limit_overrides

    settings = PipelineSettings.from_dict(recording.header.get("settings", {}))
    return replace(settings, exercise=exercise or settings.exercise, limit_overrides=merge_limit_overrides(limits, settings.limit_overrides))


def recorded_events(recording: Recording) -> list[dict] | None:
    """The events the live session reported (its closing summary), if any."""
    summaries = recording.meta_of("summary")
    return summaries[-1]["events"] if summaries else None
