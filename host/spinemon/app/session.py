"""Live sessions and replay.

:func:`run_live` drives a :class:`~spinemon.core.pipeline.Pipeline` from a
:class:`~spinemon.io.transport.Transport`: every frame is recorded as received,
then processed; every alert is sent to the wearable at once and recorded.
:func:`replay` feeds a recording's records through the same pipeline in the
same order, so it reproduces the live events exactly.

A resumed recording (``spinemon live --out FILE --resume``: ``FILE``,
``FILE.seg2``, ...) holds one live session per segment, each with its own
pipeline, calibration and set numbering. :func:`replay` therefore replays
each segment on its own, as it was recorded (:class:`SegmentReplay`: its
result, what live recorded for it, whether they match), and then joins them
into one result: sets numbered on across segments (``set_offset``) and one
device-time line (a segment whose wearable clock restarted is placed right
after the one before, ``t_offset``); every set, rep and event of such a
recording says which ``segment`` it belongs to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Union

import numpy as np

import spinemon_protocol as proto
from spinemon import __version__
from spinemon.core import fusion_kernel, rep_kernel
from spinemon.core.alerts import Alert
from spinemon.core.calibration import Calibration
from spinemon.core.detect import Event
from spinemon.core.pipeline import FrameResult, Pipeline, PipelineSettings
from spinemon.core.stream import FrameDecoder, SampleBlock
from spinemon.core.unilateral import parse_exercise, session_sides
from spinemon.errors import RecordingError
from spinemon.io.commands import ATTEMPT_TIMEOUT_S, CommandQueue, Sent
from spinemon.io.recording import KIND_META, KIND_RX, Record, Recording, RecordingWriter
from spinemon.io.transport import Label, Received, Transport


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
    #: replay: each segment of the recording replayed on its own (one for a recording that was never resumed)
    segments: list[SegmentReplay] = field(default_factory=list)

    @property
    def matches_live(self) -> bool | None:
        """Replay: every segment gave the events its live session reported
        (None: no segment has a live summary, e.g. an imported recording)."""
        verdicts = [s.matches_live for s in self.segments if s.matches_live is not None]
        return None if not verdicts else all(verdicts)

    @property
    def live_comparison(self) -> str | None:
        """Replay: how each segment compares with its own live session
        (:func:`live_comparison`): one segment's verdict, ``yes`` when every
        segment's is, else each as ``session N: ...`` (None: no live summary)."""
        verdicts = [(s.index, s.live_comparison) for s in self.segments if s.live_comparison is not None]
        if not verdicts:
            return None
        if len(verdicts) == 1 or all(v == "yes" for _, v in verdicts):
            return verdicts[0][1] if len(verdicts) == 1 else "yes"
        return "; ".join(f"session {n}: {v}" for n, v in verdicts)


@dataclass
class SegmentReplay:
    """One segment of a recording (one live session) replayed on its own.

    ``result``: the segment through a fresh pipeline with its own header's
    settings, exactly as its live session ran (its own calibration, sets
    numbered from 1, its own device times). ``live_events``: the events its
    live session reported (its closing summary; None without one).
    ``set_offset``/``t_offset``: added to its set numbers and device times
    where the recording is shown as one (:func:`replay`'s joined result)."""

    index: int  # 1 = the first segment
    path: Path | None
    header: dict
    set_offset: int = 0
    t_offset: float = 0.0
    result: SessionResult | None = None
    live_events: list[dict] | None = None

    @property
    def resumed(self) -> bool:
        return self.index > 1

    @property
    def events(self) -> list[dict]:
        return [] if self.result is None else [e.as_dict() for e in self.result.events]

    @property
    def matches_live(self) -> bool | None:
        return None if self.live_events is None else self.live_events == self.events

    @property
    def live_comparison(self) -> str | None:
        """How its events compare with its own live session's (:func:`live_comparison`)."""
        return live_comparison(self.live_events, self.events)

    @property
    def sets(self) -> list[int]:
        """Its set numbers on the recording's numbering."""
        return [
            int(st["set"]) + self.set_offset
            for st in (self.result.summary.get("sets", []) if self.result else [])
            if st.get("set") is not None
        ]

    def as_dict(self) -> dict:
        summ = self.result.summary if self.result else {}
        m = summ.get("monitoring") or {}
        return {
            "segment": self.index,
            "file": None if self.path is None else self.path.name,
            "resumed": self.resumed,
            "set_offset": self.set_offset,
            "t_offset_s": round(self.t_offset, 6),
            "sets": self.sets,
            "reps": len(summ.get("reps", [])),
            "events": len(self.events),
            "calibration": m.get("calibration"),
            "duration_s": m.get("duration_s"),
            "monitored_s": m.get("monitored_s"),
            "matches_live": self.matches_live,
            "live_comparison": self.live_comparison,
        }


#: STATUS counters of samples the wearable itself lost (never sent)
DEVICE_LOSS_FIELDS = ("samples_dropped", "samples_lost_fifo")
DEVICE_COUNTER_FIELDS = (
    "samples_dropped",
    "samples_lost_fifo",
    "fifo_overflows",
    "frames_dropped",
    "frames_sent",
    "commands_rejected",
    "guard_alerts",
)


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
            self.heap_free_min = (
                int(heap) if self.heap_free_min is None else min(self.heap_free_min, int(heap))
            )
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
        d = {
            "status_frames": self.status_frames,
            "boots": list(self.order),
            "restarts": self.restarts,
            **self.totals(),
        }
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
    send_timeout: float | None = None,
    commands: CommandQueue | None = None,
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
    (``send_failures``). At the end the queue gets a moment to finish."""
    rep_kernel.warm_up()  # compiled now, not at the first monitored frame (~0.5 s)
    fusion_kernel.warm_up()  # the same for the fusion filter, which the first frame runs
    frames = 0
    send_failures = 0
    t_last = None
    device = device if device is not None else DeviceAccounting()
    recording_error: str | None = None
    own_queue = commands is None
    if commands is None:
        kw = (
            {} if send_timeout is None else {"attempt_timeout_s": min(float(send_timeout), ATTEMPT_TIMEOUT_S)}
        )
        commands = CommandQueue(transport, pipeline.alert_policy.counter, **kw)

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
            if device.on_frame(item.frame):
                boot = device.order[-1]
                rec(RecordingWriter.meta, {"type": "device_restart", "boot_count": boot}, item.t_host)
                if on_device_restart:
                    on_device_restart(boot)
            res = pipeline.on_frame(item.frame, item.t_host)
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
                    done=lambda sent, alert=alert, t_rx=item.t_host: alert_sent(alert, t_rx, sent),
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
        summary = pipeline.summary()
        summary["frames"] = frames
        summary["send_failures"] = send_failures
        summary["commands"] = commands.stats.as_dict()
        summary["device"] = (
            device.as_dict(pipeline.decoder.stats.lost_samples) if device.status_frames else None
        )
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
        pipeline.events,
        pipeline.alerts,
        pipeline.decoder.stats.as_dict(),
        pipeline.calibration,
        pipeline.angle_label,
        frames,
        send_failures,
        summary,
    )


SettingsSource = Union[PipelineSettings, Callable[[dict], PipelineSettings], None]


def _settings_for(settings: SettingsSource, header: dict) -> PipelineSettings:
    """The pipeline settings for a segment with this header: its own (None),
    the given ones, or ``settings(header)``."""
    if settings is None:
        return PipelineSettings.from_dict(header.get("settings", {}))
    if isinstance(settings, PipelineSettings):
        return settings
    return settings(header)


def segment_records(recording: Recording) -> list[tuple[SegmentReplay, list[Record]]]:
    """The recording cut into its segments (one live session each): a
    :class:`SegmentReplay` to fill and the segment's records."""
    if not recording.segments:  # a Recording made by hand: one session
        return [(SegmentReplay(1, recording.path, recording.header), list(recording.records))]

    def number(seg, k: int) -> int:  # as its header says (a skipped segment leaves a gap), else its place
        n = seg.header.get("segment")
        return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else k

    return [
        (
            SegmentReplay(number(seg, k), seg.path, seg.header),
            recording.records[seg.first : seg.first + seg.count],
        )
        for k, seg in enumerate(recording.segments, 1)
    ]


def _live_events(records: list[Record]) -> list[dict] | None:
    """The events of the last closing summary among ``records``."""
    found = None
    for r in records:
        if r.kind != KIND_META:
            continue
        try:
            m = r.meta
        except ValueError:
            continue
        if isinstance(m, dict) and m.get("type") == "summary" and isinstance(m.get("events"), list):
            found = m["events"]
    return found


def _first_samples(records: list[Record]) -> tuple[float, float] | None:
    """(device time, sample period) of the first samples among ``records``."""
    dec = FrameDecoder()
    for r in records:
        if r.kind != KIND_RX:
            continue
        for b in dec.feed(r.payload, r.t_host):
            if isinstance(b, SampleBlock) and len(b):
                return float(b.t[0]), 1.0 / float(b.rate_hz)
    return None


def _replay_records(
    records: list[Record],
    settings: PipelineSettings,
    on_frame: Callable[[bytes, float, FrameResult, Pipeline], None] | None,
    on_label: Callable[[dict, Pipeline], None] | None,
    block_samples: int,
) -> tuple[SessionResult, float | None]:
    """One live session's records through a fresh pipeline; (result, last
    device time). Without ``on_frame`` the samples go through in long blocks
    (see :func:`replay`)."""
    pipeline = Pipeline(settings)
    device = DeviceAccounting()
    frames = 0
    t_last = None
    batch = _Batch(pipeline, block_samples) if on_frame is None and block_samples > 1 else None
    for rec in records:
        if rec.kind == KIND_RX:
            frames += 1
            device.on_frame(rec.payload)
            if batch is not None:
                # no caller looks at each frame: decode now, run the samples in long blocks
                batch.feed(rec.payload, rec.t_host)
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
    result = SessionResult(
        pipeline.events,
        pipeline.alerts,
        pipeline.decoder.stats.as_dict(),
        pipeline.calibration,
        pipeline.angle_label,
        frames,
        0,
        summary,
    )
    return result, t_last


def replay(
    recording: Recording,
    settings: SettingsSource = None,
    *,
    on_frame: Callable[[bytes, float, FrameResult, Pipeline], None] | None = None,
    on_label: Callable[[dict, Pipeline], None] | None = None,
    on_segment: Callable[[SegmentReplay], None] | None = None,
    block_samples: int = 1 << 16,
) -> SessionResult:
    """Re-run detection on a recording through the live code path.
    ``on_frame(frame, t_host, result, pipeline)`` and ``on_label(label,
    pipeline)`` let a caller look at each step (reports collect per-sample
    angles); ``on_segment(segment)`` is called before each segment's first
    record (its ``set_offset`` and ``t_offset`` are known then; the
    pipeline, and so the device times in ``result``, start afresh).

    Without ``on_frame`` the frames' samples go through the pipeline in
    blocks of up to ``block_samples`` (cut at every label, layout change and
    clock step, and at every segment: each has its own pipeline): the same
    results as frame by frame (``Pipeline.on_block`` gives the same for any
    split), much faster. ``block_samples=1`` feeds frame by frame, as live did.

    ``settings``: None replays every segment with the settings its header
    recorded; a :class:`PipelineSettings` is used for all; a function of the
    segment's header gives each its own (:func:`replay_settings`).

    Each segment is replayed as the live session it was (see the module
    docstring); a recording of several segments is joined with sets
    numbered on and device times on one line (``segments`` has each one)."""
    parts = segment_records(recording)
    n_sets = 0
    prev_end: float | None = None
    for part, records in parts:
        part.set_offset = n_sets
        if prev_end is not None:
            first = _first_samples(records)
            if (
                first is not None and first[0] <= prev_end
            ):  # its clock began again (a reboot, the simulator): follow on
                part.t_offset = prev_end + first[1] - first[0]
        if on_segment is not None:
            on_segment(part)
        part.result, t_last = _replay_records(
            records, _settings_for(settings, part.header), on_frame, on_label, block_samples
        )
        part.live_events = _live_events(records)
        n_sets = max([n_sets, *part.sets])
        if t_last is not None:
            prev_end = t_last + part.t_offset
    segs = [p for p, _ in parts]
    if len(segs) == 1:
        res = segs[0].result
        res.summary["segments"] = len(recording.segments)
        res.segments = segs
        return res
    return _join(segs)


# -- a recording of several segments shown as one -----------------------------------
_CALIBRATION_ORDER = ("none", "provisional", "stored", "done")


def _moved(d: dict, part: SegmentReplay) -> dict:
    """A summary row (set, rep, event, hold, ...) on the recording's
    numbering and time line, tagged with its segment."""
    out = dict(d)
    for k, v in d.items():
        if (
            (k == "t" or k.startswith("t_"))
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
            and part.t_offset
        ):
            out[k] = round(v + part.t_offset, 6)
    if isinstance(d.get("set"), int) and not isinstance(d.get("set"), bool):
        out["set"] = d["set"] + part.set_offset
    out["segment"] = part.index
    return out


def _moved_event(e: Event, part: SegmentReplay) -> Event:
    dt = part.t_offset

    def sh(t: float | None) -> float | None:
        return None if t is None else t + dt

    return replace(
        e,
        t_start=e.t_start + dt,
        t_alert=sh(e.t_alert),
        t_end=sh(e.t_end),
        set=None if e.set is None else e.set + part.set_offset,
    )


def _sum_counts(dicts: list[dict]) -> dict:
    """Numbers added up key by key (nested dicts too); other values: the last one's."""
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            if isinstance(v, bool) or not isinstance(v, (int, float, dict)):
                out[k] = v
            elif isinstance(v, dict):
                out[k] = _sum_counts([out.get(k) or {}, v]) if isinstance(out.get(k, {}), dict) else v
            else:
                out[k] = round(out.get(k, 0) + v, 6) if isinstance(v, float) else out.get(k, 0) + v
    return out


def _join(segs: list[SegmentReplay]) -> SessionResult:
    """The segments' results as one: sets numbered on, one time line."""
    results = [p.result for p in segs]
    summs = [r.summary for r in results]
    events = [_moved_event(e, p) for p in segs for e in p.result.events]
    alerts = [
        replace(a, event=_moved_event(a.event, p), t_trigger_device=a.t_trigger_device + p.t_offset)
        for p in segs
        for a in p.result.alerts
    ]
    stats = _sum_counts([r.stats for r in results])
    rows = {
        k: [_moved(d, p) for p, sm in zip(segs, summs) for d in sm.get(k, []) if isinstance(d, dict)]
        for k in (
            "events",
            "reps",
            "sets",
            "holds",
            "drift_checks",
            "suppressed",
            "layout_changes",
            "rejected_reps",
            "notices",
        )
    }
    monitoring = [sm.get("monitoring") or {} for sm in summs]
    cal_states = [m.get("calibration") for m in monitoring]
    worst = min(cal_states, key=lambda c: _CALIBRATION_ORDER.index(c) if c in _CALIBRATION_ORDER else -1)
    devices = [sm["device"] for sm in summs if sm.get("device")]
    device = None
    if devices:
        device = _sum_counts(devices)
        device["boots"] = [b for d in devices for b in d.get("boots", [])]
        heaps = [d["heap_free_min"] for d in devices if d.get("heap_free_min")]
        device["heap_free_min"] = min(heaps) if heaps else None
    last = summs[-1]
    summary = {
        "type": "summary",
        **rows,
        "side_comparisons": session_sides(rows["reps"]),
        "drift_flagged": any(sm.get("drift_flagged") for sm in summs),
        "held_back": {
            "seconds": _sum_counts([(sm.get("held_back") or {}).get("seconds") or {} for sm in summs]),
            "faults": _sum_counts([(sm.get("held_back") or {}).get("faults") or {} for sm in summs]),
        },
        "stats": stats,
        "monitoring": {
            "calibration": worst,
            "duration_s": round(sum(m.get("duration_s", 0.0) for m in monitoring), 3),
            "monitored_s": round(sum(m.get("monitored_s", 0.0) for m in monitoring), 3),
            "not_monitored": _sum_counts([m.get("not_monitored") or {} for m in monitoring]),
        },
        "skipped_samples": _sum_counts([sm.get("skipped_samples") or {} for sm in summs]),
        "clock_backsteps": sum(sm.get("clock_backsteps", 0) for sm in summs),
        "angle": summs[0].get("angle"),
        "calibrated": all(sm.get("calibrated") for sm in summs),
        "alignment": summs[0].get("alignment"),
        "limits": last.get("limits"),
        "limits_off": {k: v for sm in summs for k, v in (sm.get("limits_off") or {}).items()},
        "phase": last.get("phase"),
        "frames": sum(r.frames for r in results),
        "device": device,
        "segments": len(segs),
        "segment_details": [p.as_dict() for p in segs],
    }
    return SessionResult(
        events,
        alerts,
        stats,
        results[0].calibration,
        results[0].angle_label,
        summary["frames"],
        0,
        summary,
        segs,
    )


class _Batch:
    """Replay's decoded samples, gathered into long blocks for
    :meth:`Pipeline.on_block`. A block is cut where the stream would not
    continue it: another sensor set or rate, the device clock not moving on
    (a restart or a clock fault: the pipeline sees it as live did), a label."""

    def __init__(self, pipeline: Pipeline, limit: int) -> None:
        self.pipeline = pipeline
        self.limit = limit  # samples per block, about
        self.frames: list[bytes] = []
        self.frame_t: list[float] = []
        self.blocks: list[SampleBlock] = []
        self.t_host: list[np.ndarray] = []
        self.samples = 0
        self.t_last: float | None = None

    def feed(self, frame: bytes, t_host: float) -> None:
        self.frames.append(frame)
        self.frame_t.append(t_host)
        if len(self.frames) >= 4096:
            self._decode()

    def _decode(self) -> None:
        """The frames so far, decoded in one go (runs of frames become one block)."""
        items = self.pipeline.decoder.feed_many(self.frames, self.frame_t, self.limit)
        self.frames, self.frame_t = [], []
        for item, th in items:
            if not isinstance(item, SampleBlock) or not len(item):
                continue
            if self.blocks:
                last = self.blocks[-1]
                if (
                    item.sensors != last.sensors
                    or item.rate_hz != last.rate_hz
                    or item.t[0] <= last.t[-1]
                    or self.samples >= self.limit
                ):
                    self._run()
            self.blocks.append(item)
            self.t_host.append(th)
            self.samples += len(item)

    def flush(self) -> None:
        self._decode()
        self._run()

    def _run(self) -> None:
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
    if len(live) == len(events) and all(
        all(a.get(k) == b.get(k) for k in keys) for a, b in zip(live, events)
    ):

        def off(a, b, k):
            x, y = a.get(k), b.get(k)
            return (
                0.0 if x is None and y is None else (float("inf") if x is None or y is None else abs(x - y))
            )

        dt = max(
            [off(a, b, k) for a, b in zip(live, events) for k in ("t_start", "t_alert", "t_end")] or [0.0]
        )
        dd = max([off(a, b, k) for a, b in zip(live, events) for k in ("peak_deg", "limit_deg")] or [0.0])
        if dt <= 0.1:
            return f"NO, but the same {len(events)} event(s): peaks and limits within {dd:.2f} deg, times within {dt:.2f} s (the recording's spinemon calibrated slightly differently)"
    return "NO"


def monitoring_line(m: dict) -> str:
    """``monitored 52.1 of 60.0 s (calibration: done); not monitored: 7.9 s waiting for ...``."""
    names = {
        "done": "done",
        "stored": "stored profile",
        "provisional": "PROVISIONAL (no still stretch found: neutral from the quietest moment)",
        "none": "NOT DONE",
    }
    text = f"monitored {m['monitored_s']:.1f} of {m['duration_s']:.1f} s (calibration: {names.get(m['calibration'], m['calibration'])})"
    rest = [f"{v:.1f} s {k}" for k, v in m.get("not_monitored", {}).items()]
    if rest:
        text += "; not monitored: " + ", ".join(rest)
    if m["calibration"] == "none":
        text += "; stand still for 1 s at the start so neutral can be set"
    return text


def replay_settings(
    recording: Recording, exercise: str | None = None, limits=()
) -> Callable[[dict], PipelineSettings] | None:
    """Each segment's own settings with another default exercise and/or limit
    overrides on top (``replay --exercise/--limit``), as a function of the
    segment's header for :func:`replay`; None when neither is given."""
    if not exercise and not limits:
        return None
    from spinemon.io.profile_store import merge_limit_overrides

    name, side = (
        parse_exercise(exercise) if exercise else (None, None)
    )  # "lunge left": a unilateral lift and its side

    def for_segment(header: dict) -> PipelineSettings:
        settings = PipelineSettings.from_dict(header.get("settings", {}))
        if name is not None and (name, side) != (settings.exercise, settings.side):
            settings = replace(
                settings, exercise=name, side=side
            )  # another exercise: the recorded side went with the recorded one
        return replace(settings, limit_overrides=merge_limit_overrides(limits, settings.limit_overrides))

    for_segment(recording.header)  # a bad exercise or override fails here, before the replay
    return for_segment


def recorded_events(recording: Recording) -> list[dict] | None:
    """The events the live session reported (its closing summary), if any.
    A resumed recording holds one live session per segment: this is the last
    one's; compare a replay with :attr:`SessionResult.matches_live`, which
    checks each segment against its own."""
    summaries = recording.meta_of("summary")
    return summaries[-1]["events"] if summaries else None
