"""Replay: a recording's records through the live pipeline, again.

:func:`replay` feeds a recording's ``RX`` and label records through the same
:class:`~spinemon.core.pipeline.Pipeline` in the same order, so it reproduces
the live events exactly. Without a per-frame hook the samples go through in
long blocks (:class:`_Batch`: cut only at labels, layout changes and clock
steps), an order of magnitude faster, with the same results.

A resumed recording (``spinemon live --out FILE --resume``: ``FILE``,
``FILE.seg2``, ...) holds one live session per segment, each with its own
pipeline, calibration and set numbering. :func:`replay` therefore replays
each segment on its own, as it was recorded (:class:`SegmentReplay`: its
result, what live recorded for it, whether they match), and then joins them
into one result (:func:`~spinemon.app.results.join_segments`): sets numbered on across segments
(``set_offset``) and one device-time line (a segment whose wearable clock
restarted is placed right after the one before, ``t_offset``); every set, rep
and event of such a recording says which ``segment`` it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from spinemon.app.results import SegmentReplay, SessionResult, join_segments, summary_of
from spinemon.core.device_status import DeviceAccounting
from spinemon.core.pipeline import FrameResult, Pipeline, PipelineSettings
from spinemon.core.stream import FrameDecoder, FrameRun, SampleBlock
from spinemon.core.unilateral import parse_exercise
from spinemon.io.recording import (
    HEAD_SIZE,
    KIND_META,
    KIND_RX,
    Piece,
    Record,
    Recording,
    RecordRun,
    records_in,
)

SettingsSource = PipelineSettings | Callable[[dict], PipelineSettings] | None


def _settings_for(settings: SettingsSource, header: dict) -> PipelineSettings:
    """The pipeline settings for a segment with this header: its own (None),
    the given ones, or ``settings(header)``."""
    if settings is None:
        return PipelineSettings.from_dict(header.get("settings", {}))
    if isinstance(settings, PipelineSettings):
        return settings
    return settings(header)


def segment_records(recording: Recording) -> list[tuple[SegmentReplay, list[Piece]]]:
    """The recording cut into its segments (one live session each): a
    :class:`SegmentReplay` to fill and the segment's records (runs of RX
    records as columns while the recording has them, see
    :meth:`Recording.pieces_in`)."""
    if not recording.segments:  # a Recording made by hand: one session
        return [(SegmentReplay(1, recording.path, recording.header), recording.pieces_in())]

    def number(seg, k: int) -> int:  # as its header says (a skipped segment leaves a gap), else its place
        n = seg.header.get("segment")
        return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else k

    return [
        (
            SegmentReplay(number(seg, k), seg.path, seg.header),
            recording.pieces_in(seg.first, seg.count),
        )
        for k, seg in enumerate(recording.segments, 1)
    ]


def _live_events(records: list[Piece]) -> list[dict] | None:
    """The events of the last closing summary among ``records``."""
    found = None
    for r in records:
        if not isinstance(r, Record) or r.kind != KIND_META:
            continue
        try:
            m = r.meta
        except ValueError:
            continue
        if isinstance(m, dict) and m.get("type") == "summary" and isinstance(m.get("events"), list):
            found = m["events"]
    return found


def _frame_run(run: RecordRun) -> FrameRun:
    """A recording's run of RX records as the decoder takes it (the frames are the records' payloads)."""
    return FrameRun(run.data, run.start + HEAD_SIZE, run.size, run.length, len(run))


def _first_samples(records: list[Piece]) -> tuple[float, float] | None:
    """(device time, sample period) of the first samples among ``records``."""
    dec = FrameDecoder()
    rx: Iterator[tuple[bytes, float]]
    for r in records:
        if isinstance(r, RecordRun):
            frames = _frame_run(r)
            rx = ((frames.frame(i), t) for i, t in enumerate(r.t_host.tolist()))
        elif r.kind == KIND_RX:
            rx = iter([(r.payload, r.t_host)])
        else:
            continue
        for payload, t_host in rx:
            for b in dec.feed(payload, t_host):
                if isinstance(b, SampleBlock) and len(b):
                    return float(b.t[0]), 1.0 / float(b.rate_hz)
    return None


def _label_of(rec: Piece) -> dict | None:
    """The set label a record holds, if it is one (a META record of type "label")."""
    if not isinstance(rec, Record) or rec.kind != KIND_META:
        return None
    try:
        m = rec.meta
    except ValueError:
        return None
    return m if isinstance(m, dict) and m.get("type") == "label" else None


def _what_if(label: dict, label_exercise: str | None) -> dict:
    """``label`` with its exercise replaced by ``label_exercise`` (``replay
    --exercise``: every labelled set as this exercise), if given."""
    if label_exercise is None or label.get("exercise") is None:
        return label
    return {**label, "exercise": label_exercise, "side": None}


def _replay_records(
    records: list[Piece],
    settings: PipelineSettings,
    on_frame: Callable[[bytes, float, FrameResult, Pipeline], None] | None,
    on_label: Callable[[dict, Pipeline], None] | None,
    block_samples: int,
    label_exercise: str | None = None,
) -> tuple[SessionResult, float | None]:
    """One live session's records (single ones and runs of RX records)
    through a fresh pipeline; (result, last device time). Without
    ``on_frame`` the samples go through in long blocks (see :func:`replay`)."""
    pipeline = Pipeline(settings)
    device = DeviceAccounting()
    frames = 0
    t_last = None
    batch = _Batch(pipeline, block_samples, device) if on_frame is None and block_samples > 1 else None
    if batch is not None:
        # no caller looks at each frame: the RX records between two other
        # records go to the decoder together (a run of them as columns, the
        # few single ones as a list) and their samples through the pipeline
        # in long blocks; only a label cuts a block (it takes effect between
        # the samples around it, as live)
        single: list[Record] = []  # RX records waiting for the decoder

        def feed_single() -> None:
            if single:
                batch.feed_many([r.payload for r in single], [r.t_host for r in single])
                single.clear()

        for p in records:
            if isinstance(p, RecordRun):
                feed_single()
                frames += len(p)
                batch.feed_run(_frame_run(p), p.t_host.tolist())  # the device's STATUS as decoded
                continue
            if p.kind == KIND_RX:
                frames += 1
                single.append(p)
                continue
            m = _label_of(p)
            if m is not None:
                feed_single()
                batch.flush()
                m = _what_if(m, label_exercise)
                pipeline.on_label(m)
                if on_label is not None:
                    on_label(m, pipeline)
        feed_single()
    for rec in records_in(records) if batch is None else ():
        if rec.kind == KIND_RX:
            frames += 1
            res = pipeline.on_frame(rec.payload, rec.t_host)
            device.on_items(res.other)  # the STATUS the pipeline's decoder decoded
            if res.t is not None and len(res.t):
                t_last = float(res.t[-1])
            if on_frame is not None:
                on_frame(rec.payload, rec.t_host, res, pipeline)
        else:
            m = _label_of(rec)
            if m is not None:
                m = _what_if(m, label_exercise)
                pipeline.on_label(m)
                if on_label is not None:
                    on_label(m, pipeline)
    if batch is not None:
        batch.flush()
        t_last = batch.t_last
    pipeline.finish(t_last)
    result = SessionResult.of(pipeline, frames, summary_of(pipeline, device, frames=frames))
    return result, t_last


def replay(
    recording: Recording,
    settings: SettingsSource = None,
    *,
    on_frame: Callable[[bytes, float, FrameResult, Pipeline], None] | None = None,
    on_label: Callable[[dict, Pipeline], None] | None = None,
    on_segment: Callable[[SegmentReplay], None] | None = None,
    block_samples: int = 1 << 16,
    label_exercise: str | None = None,
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
    ``label_exercise``: the lifter's labelled sets replayed as this exercise
    (``replay --exercise``: a what-if on the same data), not as labelled.

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
            records, _settings_for(settings, part.header), on_frame, on_label, block_samples, label_exercise
        )
        part.live_events = _live_events(records)
        n_sets = max([n_sets, *part.sets])
        if t_last is not None:
            prev_end = t_last + part.t_offset
    segs = [p for p, _ in parts]
    if len(segs) == 1:
        res = segs[0].result
        assert res is not None  # every segment was replayed above
        res.session = res.session.evolve(segments=len(recording.segments))
        res.segments = segs
        return res
    return join_segments(segs)


class _Batch:
    """Replay's decoded samples, gathered into long blocks for
    :meth:`Pipeline.on_block`. A block is cut where the stream would not
    continue it: another sensor set or rate, the device clock not moving on
    (a restart or a clock fault: the pipeline sees it as live did), a label."""

    def __init__(self, pipeline: Pipeline, limit: int, device: DeviceAccounting) -> None:
        self.pipeline = pipeline
        self.device = device  # takes the STATUS frames as the decoder decodes them
        self.limit = limit  # samples per block, about
        self.frames: list[bytes] = []
        self.frame_t: list[float] = []
        self.blocks: list[SampleBlock] = []
        self.t_host: list[np.ndarray] = []
        self.samples = 0
        self.t_last: float | None = None

    def feed_many(self, frames: list[bytes], t_hosts: list[float]) -> None:
        """Frames received one after another (decoded 4096 at a time)."""
        self.frames.extend(frames)
        self.frame_t.extend(t_hosts)
        while len(self.frames) >= 4096:
            frames, t_hosts = self.frames, self.frame_t
            self.frames, self.frame_t = frames[:4096], t_hosts[:4096]
            self._decode()
            self.frames, self.frame_t = frames[4096:], t_hosts[4096:]

    def feed_run(self, run: FrameRun, t_hosts: list[float]) -> None:
        """Frames of one length, received one after another after those fed
        so far (decoded 4096 at a time, from the run's buffer)."""
        if self.frames:
            self._decode()
        decoder = self.pipeline.decoder
        for a in range(0, run.count, 4096):
            b = min(a + 4096, run.count)
            self._take(decoder.feed_run(run.cut(a, b), t_hosts[a:b], self.limit))

    def _decode(self) -> None:
        """The frames so far, decoded in one go (runs of frames become one block)."""
        items = self.pipeline.decoder.feed_many(self.frames, self.frame_t, self.limit)
        self.frames, self.frame_t = [], []
        self._take(items)

    def _take(self, items: list) -> None:
        """Decoded items into blocks (cut where the stream would not continue one)."""
        for item, th in items:
            if not isinstance(item, SampleBlock):
                self.device.on_items((item,))
                continue
            if not len(item):
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
            assert th is not None  # a block comes with its samples' receive times
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


def labelled_exercises(recording: Recording) -> list[str]:
    """The exercises the lifter's set labels name in ``recording``, in order of first use."""
    seen: list[str] = []
    for m in recording.meta_of("label"):
        ex = m.get("exercise")
        if isinstance(ex, str) and ex not in seen:
            seen.append(ex)
    return seen


def recorded_events(recording: Recording) -> list[dict] | None:
    """The events the live session reported (its closing summary), if any.
    A resumed recording holds one live session per segment: this is the last
    one's; compare a replay with :attr:`SessionResult.matches_live`, which
    checks each segment against its own."""
    summaries = recording.meta_of("summary")
    return summaries[-1]["events"] if summaries else None
