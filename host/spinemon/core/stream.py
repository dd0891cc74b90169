"""Frames -> samples.

:class:`FrameDecoder` turns protocol frames (bytes, as received) into
:class:`SampleBlock` objects in SI units, unwraps the u32 sequence number and
the u32 microsecond device clock, and keeps :class:`StreamStats`: every bad
frame is counted by reason and skipped, every gap in the sequence is counted
as lost samples, every repeated frame as a duplicate. Nothing here raises on
bad bytes.
"""

from __future__ import annotations

import collections
import math
from binascii import crc_hqx as _crc_hqx  # CRC-16/CCITT-FALSE in C, as proto.crc16
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

import spinemon_protocol as proto

G = 9.80665
SENSORS = ("upper", "lower")
_U32 = 1 << 32
# A frame whose sequence number lies further behind than this is a restart
# of the device (reset, brown-out), not a late duplicate.
RESTART_WINDOW_SAMPLES = 1 << 16
# With host receive times: a frame whose sequence number goes backwards while
# (host time - device time) jumps forward by more than this is a restart too:
# a late duplicate keeps the old clock relation, a rebooted device does not.
RESTART_CLOCK_JUMP_S = 1.0
# The last frames kept (start seq, count, raw device time, period) to judge a
# frame whose sequence number goes backwards: a re-send (the wearable re-sends
# at most RESEND_FRAMES = 16 after a reconnect) lies on the device timeline of
# a remembered frame; a frame further back than all of them, or with another
# device time for the same sequence number, is a new boot's, whatever its
# STATUS boot counter says (a boot counter can repeat; the device clock
# evidence decides).
HISTORY_FRAMES = 64
# A forward step whose device time lies before the last frame's is a restart
# too; trusted only while the step is short enough that the u32 clock cannot
# have wrapped meanwhile (steps of at most 2^30 us at the longest period).
_MAX_PERIOD_US = 1 << 16


def _signed32(d: int) -> int:
    d &= 0xFFFFFFFF
    return d - _U32 if d >= 0x80000000 else d


def sensors_in_mask(mask: int) -> tuple[str, ...]:
    return tuple(s for bit, s in ((proto.SENSOR_UPPER, "upper"), (proto.SENSOR_LOWER, "lower")) if mask & bit)


@dataclass
class SampleBlock:
    """Consecutive samples (one or more frames) in SI units.

    seq: int64 sample index (unwrapped); t: device time in s (unwrapped);
    acc/gyr: sensor id -> (n, 3) m/s^2 and rad/s in the sensor frame;
    device_angle_deg: the wearable's own angle estimate (NaN where absent);
    flags: per-sample copy of the frame's SAMPLES flags.
    """

    seq: np.ndarray
    t: np.ndarray
    acc: dict[str, np.ndarray]
    gyr: dict[str, np.ndarray]
    device_angle_deg: np.ndarray
    flags: np.ndarray
    rate_hz: float

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def sensor_lost(self) -> np.ndarray:
        """Per sample: the wearable had lost one of the IMUs it booted with
        (SF_SENSOR_LOST, firmware 0.4 on); the sample carries the ones left."""
        return (self.flags.astype(np.int64) & proto.SF_SENSOR_LOST) != 0

    @property
    def lost_sensors(self) -> tuple[str, ...]:
        """The sensors the wearable reports lost in this block ("upper",
        "lower"): those missing from it while a sample is flagged
        SF_SENSOR_LOST; () when none is (or a one-sensor wearable)."""
        if not len(self.flags) or not bool(self.sensor_lost.any()):
            return ()
        return tuple(s for s in SENSORS if s not in self.acc)

    @property
    def sensors(self) -> tuple[str, ...]:
        return tuple(self.acc)

    def slice(self, start: int, stop: int | None = None) -> SampleBlock:
        """Samples ``start:stop`` (views, no copy)."""
        sl = slice(start, stop)
        return SampleBlock(
            seq=self.seq[sl],
            t=self.t[sl],
            acc={s: a[sl] for s, a in self.acc.items()},
            gyr={s: g[sl] for s, g in self.gyr.items()},
            device_angle_deg=self.device_angle_deg[sl],
            flags=self.flags[sl],
            rate_hz=self.rate_hz,
        )

    @staticmethod
    def concatenate(blocks: list[SampleBlock]) -> SampleBlock:
        if not blocks:
            raise ValueError("no blocks to concatenate")
        if len(blocks) == 1:
            return blocks[0]
        sensors = blocks[0].sensors
        return SampleBlock(
            seq=np.concatenate([b.seq for b in blocks]),
            t=np.concatenate([b.t for b in blocks]),
            acc={s: np.concatenate([b.acc[s] for b in blocks]) for s in sensors},
            gyr={s: np.concatenate([b.gyr[s] for b in blocks]) for s in sensors},
            device_angle_deg=np.concatenate([b.device_angle_deg for b in blocks]),
            flags=np.concatenate([b.flags for b in blocks]),
            rate_hz=blocks[-1].rate_hz,
        )


@dataclass(frozen=True)
class FrameRun:
    """``count`` frames of ``length`` bytes each, laid out in ``data`` one
    every ``stride`` bytes from ``start`` (frames as a recording keeps a run
    of equal-length records): what :meth:`FrameDecoder.feed_run` decodes
    without a ``bytes`` object per frame."""

    data: bytes
    start: int
    stride: int
    length: int
    count: int

    def rows(self) -> np.ndarray:
        """The frames as the rows of a read-only (count, length) uint8 view of ``data``."""
        return np.ndarray(
            (self.count, self.length),
            dtype=np.uint8,
            buffer=self.data,
            offset=self.start,
            strides=(self.stride, 1),
        )

    def frame(self, i: int) -> bytes:
        a = self.start + i * self.stride
        return self.data[a : a + self.length]

    def cut(self, a: int, b: int) -> FrameRun:
        """Frames ``a:b`` (0 <= a <= b <= count)."""
        return FrameRun(self.data, self.start + a * self.stride, self.stride, self.length, b - a)


class _RunFrames:
    """A :class:`FrameRun` as a sequence of ``bytes`` frames (each made when asked for)."""

    def __init__(self, run: FrameRun) -> None:
        self.run = run

    def __len__(self) -> int:
        return self.run.count

    def __getitem__(self, i: int) -> bytes:
        return self.run.frame(i)


@dataclass
class StreamStats:
    """What the decoder saw. `rejected` counts bad frames by reason
    (bad_crc, wrong_version, unknown_type, bad_length, ...)."""

    frames: int = 0
    samples: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    lost_samples: int = 0
    duplicate_frames: int = 0
    duplicate_samples: int = 0
    restarts: int = 0
    layout_changes: int = 0
    status_frames: int = 0
    ack_frames: int = 0
    error_frames: int = 0
    flagged_fifo_overflow: int = 0
    flagged_queue_drop: int = 0
    #: frames flagged SF_SENSOR_LOST (the wearable lost an IMU; firmware 0.4 on)
    flagged_sensor_lost: int = 0

    @property
    def bad_frames(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "rejected"}
        d["rejected"] = dict(self.rejected)
        d["bad_frames"] = self.bad_frames
        return d


class FrameDecoder:
    """Stateful decoder for one wearable's frame stream.

    ``feed(frame)`` returns a list of decoded items: :class:`SampleBlock`
    for samples (duplicates removed), or the protocol's Status/Ack/Error
    objects. Bad frames are counted in :attr:`stats` and skipped.
    """

    #: take the shortcut for the frame the stream expects next (what the
    #: general rules decide for it, in fewer steps); off: the general rules
    #: only (tests compare the two)
    fast_path: bool = True

    def __init__(self) -> None:
        self.stats = StreamStats()
        self._next_seq: int | None = None  # unwrapped index of the next expected sample
        self._seq_base = 0  # unwrapped seq = seq_base + raw seq (rebased on wrap/restart)
        self._last_raw_seq = 0
        self._t_base = 0  # unwrapped us = t_base + raw t
        self._last_raw_t = 0
        self._t_started = False
        self._next_t_us = 0
        self._offset: float | None = None  # host time - raw device time of the last frame
        self._boot: int | None = None  # boot counter of the last STATUS
        self._status_verdict: str | None = None  # "same"/"restart": a STATUS since the last SAMPLES said so
        self._layout: tuple[int, int] | None = None
        self.last_status: proto.Status | None = None
        self._history: collections.deque[tuple[int, int, int, int]] = collections.deque(maxlen=HISTORY_FRAMES)

    # -- sequence/time unwrapping ------------------------------------------
    def _unwrap_seq(self, raw: int) -> int:
        if self._next_seq is None:
            self._seq_base = 0
            self._last_raw_seq = raw
            return raw
        d = _signed32(raw - self._last_raw_seq)
        unwrapped = self._seq_base + self._last_raw_seq + d
        return unwrapped

    def _unwrap_t(self, raw: int) -> int:
        if not self._t_started:
            self._t_started = True
            self._t_base = 0
            self._last_raw_t = raw
            return raw
        unwrapped = self._t_base + self._last_raw_t + _signed32(raw - self._last_raw_t)
        return unwrapped

    def _commit_position(self, raw_seq: int, seq: int, raw_t: int, t_us: int) -> None:
        self._seq_base = seq - raw_seq
        self._last_raw_seq = raw_seq
        self._t_base = t_us - raw_t
        self._last_raw_t = raw_t

    def _clock_jumped(self, f: proto.Samples, t_host: float | None) -> bool:
        if t_host is None or self._offset is None:
            return False
        return (t_host - f.t_us * 1e-6) - self._offset > RESTART_CLOCK_JUMP_S

    def _on_known_timeline(self, seq: int, f: proto.Samples) -> bool:
        """Does a frame starting at (unwrapped) ``seq`` lie on the device
        timeline of a remembered frame? Inside one: its time for that
        sequence number; in a hole between two: extrapolated from the one
        before at the same period (within half a period)."""
        hist = self._history
        if not hist or seq < hist[0][0]:
            return False  # further back than anything a re-send could reach
        for h_seq, h_count, h_t, h_period in reversed(hist):
            if h_seq <= seq:
                if seq >= h_seq + h_count and f.period_us != h_period:
                    return False
                expected = (h_t + (seq - h_seq) * h_period) & 0xFFFFFFFF
                return abs(_signed32(f.t_us - expected)) <= h_period // 2
        return False

    def _clock_went_back(self, f: proto.Samples, d: int) -> bool:
        """A frame at or past the expected sequence number whose device time
        is before the last frame's: the clock began again (a new boot)."""
        if not self._history or d * _MAX_PERIOD_US >= (1 << 30):
            return False
        return _signed32(f.t_us - self._history[-1][2]) < 0

    # -- decoding --------------------------------------------------------------
    def feed(self, frame: bytes, t_host: float | None = None) -> list:
        """Decode one frame. ``t_host`` (the host receive time, s) lets the
        decoder tell a rebooted wearable from late duplicates."""
        try:
            obj = proto.decode(frame)
        except proto.ProtocolError as e:
            self.stats.rejected[e.reason] = self.stats.rejected.get(e.reason, 0) + 1
            return []
        if obj.kind == proto.T_SAMPLES:
            self.stats.frames += 1
            block = self._samples(obj, t_host)
            return [block] if block is not None else []
        return self._other(obj)

    def _other(self, obj) -> list:
        """A decoded frame that carries no samples (STATUS, ACK, ERROR)."""
        self.stats.frames += 1
        if obj.kind == proto.T_STATUS:
            self.stats.status_frames += 1
            self.last_status = obj
            # the boot counter says whether the device restarted: the verdict
            # settles the next backward jump of the sequence number
            if self._boot is not None:
                self._status_verdict = "same" if obj.boot_count == self._boot else "restart"
            elif self._next_seq is not None:
                # no earlier STATUS: the device's uptime tells whether the last
                # samples could come from this boot (u32 microsecond arithmetic)
                uptime_us = (obj.uptime_ms * 1000) & 0xFFFFFFFF
                self._status_verdict = "restart" if _signed32(uptime_us - self._last_raw_t) < 0 else "same"
            self._boot = obj.boot_count
        elif obj.kind == proto.T_ACK:
            self.stats.ack_frames += 1
        elif obj.kind == proto.T_ERROR:
            self.stats.error_frames += 1
        return [obj]

    def _samples(self, f: proto.Samples, t_host: float | None = None) -> SampleBlock | None:
        pos = self._position(f, t_host)
        if pos is None:
            return None
        seq, t0_us, skip = pos
        return _block(f, seq, t0_us, skip)

    def _position(self, f: proto.Samples, t_host: float | None) -> tuple[int, int, int] | None:
        """Where a SAMPLES frame's samples lie (unwrapped sequence number and
        device time of its first sample, samples to skip as duplicates), with
        every count and the decoder's position updated; None for a frame that
        is all duplicate."""
        st = self.stats
        hist = self._history
        if (
            self.fast_path
            and self._next_seq is not None
            and hist
            and (self._next_seq - self._seq_base) & 0xFFFFFFFF == f.seq
            and (f.t_us - hist[-1][2]) & 0xFFFFFFFF < 0x80000000
            and self._layout == (f.mask, f.ranges)
        ):
            # the frame the stream expects next, its device time moving on: the
            # general rules below come to exactly this (d == 0, no restart)
            seq = self._next_seq
            t0_us = self._unwrap_t(f.t_us)
            self._status_verdict = None
            self._settle(f, seq, t0_us, 0, t_host)
            return seq, t0_us, 0
        layout = (f.mask, f.ranges)
        if self._layout is not None and layout != self._layout:
            st.layout_changes += 1
        self._layout = layout
        seq = self._unwrap_seq(f.seq)
        t0_us = self._unwrap_t(f.t_us)
        n = f.count
        skip = 0
        # a STATUS verdict holds until the stream is back in order (a re-sent
        # run of frames after a reconnect is all "same boot"), or, for a new
        # boot, for the one frame that restarts the stream
        verdict = self._status_verdict
        if self._next_seq is not None:
            d = seq - self._next_seq
            if verdict == "restart" and d != 0:
                d = -(RESTART_WINDOW_SAMPLES + 1)  # a new boot: its counters began again, whatever they read
            elif d >= 0 and self._clock_went_back(f, d):
                d = -(RESTART_WINDOW_SAMPLES + 1)  # ahead in sequence, behind in time: a new boot
            if d >= 0:
                self._status_verdict = None
            if d > 0:
                st.gaps += 1
                st.lost_samples += d
            elif d < 0:
                # a restart: a new boot said so, or the step back is longer
                # than any re-send, or the frame is on no remembered device
                # timeline (an equal boot counter does not make it a
                # duplicate), or, with no STATUS saying "same boot", it is on
                # one but the host clock says it came much later
                restart = (
                    verdict == "restart" or -d > RESTART_WINDOW_SAMPLES or not self._on_known_timeline(seq, f)
                )
                if not restart and verdict != "same" and self._clock_jumped(f, t_host):
                    restart = True
                if restart:
                    # the device restarted: its counters began again
                    st.restarts += 1
                    self._status_verdict = None
                    self._history.clear()
                    seq = self._next_seq
                    t0_us = self._next_t_us
                else:
                    skip = min(-d, n)
                    st.duplicate_samples += skip
                    if skip == n:
                        st.duplicate_frames += 1
                        return None
        self._settle(f, seq, t0_us, skip, t_host)
        return seq, t0_us, skip

    def _settle(self, f: proto.Samples, seq: int, t0_us: int, skip: int, t_host: float | None) -> None:
        """A SAMPLES frame placed at (unwrapped) ``seq``/``t0_us``: the decoder
        moves past it and counts its flags and new samples."""
        st = self.stats
        n = f.count
        self._commit_position(f.seq, seq, f.t_us, t0_us)
        self._history.append((seq, n, f.t_us, f.period_us))
        if t_host is not None:
            self._offset = t_host - f.t_us * 1e-6
        if f.flags & proto.SF_FIFO_OVERFLOW:
            st.flagged_fifo_overflow += 1
        if f.flags & proto.SF_QUEUE_DROP:
            st.flagged_queue_drop += 1
        if f.flags & proto.SF_SENSOR_LOST:
            st.flagged_sensor_lost += 1
        self._next_seq = seq + n
        self._next_t_us = t0_us + n * f.period_us
        st.samples += n - skip

    def feed_many(
        self, frames: list[bytes], t_hosts: list[float], max_samples: int = 1 << 16
    ) -> list[tuple[object, np.ndarray | None]]:
        """Decode frames received one after another, as :meth:`feed` would
        frame by frame (the same counts and decisions), and return
        ``(item, t_host)`` pairs: consecutive SAMPLES frames of one layout
        whose device time moves on come back as one :class:`SampleBlock` (of
        up to about ``max_samples``), identical to the frames' blocks
        concatenated, with the receive time of each of its samples (a block
        comes where its run ends); other frames as they decode, with None.

        With :attr:`fast_path` on, a stretch of frames that each follow the
        one before exactly (a :class:`_Chain`: checked for all frames at once
        with numpy, CRC included) is placed in one step after its first frame
        has been placed by the rules; the tests compare this with
        frame-by-frame decoding."""
        chain = _Chain.of_frames(frames) if self.fast_path and len(frames) > 2 else None
        return self._feed_frames(frames, t_hosts, max_samples, chain)

    def feed_run(
        self, frames: FrameRun, t_hosts: list[float], max_samples: int = 1 << 16
    ) -> list[tuple[object, np.ndarray | None]]:
        """:meth:`feed_many` for frames of one length laid out at a fixed stride
        (a recording's run of RX records): the same items, counts and state
        as ``feed_many([the frames as bytes], t_hosts)``, but the chains of
        frames that follow one another are checked and placed from the rows
        of one array; only a frame that starts a chain (or follows none) is
        decoded on its own."""
        chain = _Chain.of_run(frames) if self.fast_path and frames.count > 2 else None
        return self._feed_frames(_RunFrames(frames), t_hosts, max_samples, chain)

    def _feed_frames(
        self, frames: Any, t_hosts: list, max_samples: int, chain: _Chain | None
    ) -> list[tuple[object, np.ndarray | None]]:
        """The loop of :meth:`feed_many` (``frames``: indexable, giving bytes)."""
        out: list = []
        run = _Run()

        def close_run() -> None:
            if run.pieces:
                out.append(run.take())

        i, n_frames = 0, len(frames)
        while i < n_frames:
            frame, t_host = frames[i], t_hosts[i]
            i += 1
            try:
                obj = proto.decode(frame)
            except proto.ProtocolError as e:
                self.stats.rejected[e.reason] = self.stats.rejected.get(e.reason, 0) + 1
                continue
            if obj.kind != proto.T_SAMPLES:  # in order among themselves; a block comes where its run ends
                out.extend((item, None) for item in self._other(obj))
                continue
            self.stats.frames += 1
            pos = self._position(obj, t_host)
            if pos is None:
                continue
            seq, t0_us, skip = pos
            if run.pieces:
                assert run.layout is not None  # set with its first piece
                moves_on = t0_us > run.t_last + (run.count_last - 1) * run.layout[2]
                if (
                    skip
                    or not moves_on
                    or (obj.mask, obj.ranges, obj.period_us) != run.layout
                    or run.n >= max_samples
                ):
                    close_run()
            if skip:  # part duplicate: a block of its own
                out.append(
                    (_block(obj, seq, t0_us, skip), np.full(obj.count - skip, t_host, dtype=np.float64))
                )
                continue
            run.add_frame(obj, seq, t0_us, t_host)
            if chain is not None:
                end = chain.end_of(i)  # frames i..end-1 each follow the one before
                if end > i:
                    self._settle_chain(chain, i, end, seq, t0_us, obj.count, t_hosts, run, max_samples, out)
                    i = end
        close_run()
        return out

    def _settle_chain(
        self,
        chain: _Chain,
        a: int,
        b: int,
        seq: int,
        t0_us: int,
        count: int,
        t_hosts: list,
        run: _Run,
        max_samples: int,
        out: list,
    ) -> None:
        """Frames a..b-1 of a :class:`_Chain`, each the one the stream expects
        next after the frame placed just before (unwrapped ``seq``, ``t0_us``,
        ``count``): what :meth:`_position`'s in-order shortcut and
        :meth:`_settle` do for each, for all at once, and their samples added
        to ``run`` (closing blocks at ``max_samples`` as frame-by-frame would)."""
        st = self.stats
        counts = chain.count[a:b]
        n = int(counts.sum())
        seqs = seq + count + np.concatenate(([0], np.cumsum(counts[:-1])))
        dt = (chain.t_us[a:b] - chain.t_us[a - 1 : b - 1]) & 0xFFFFFFFF
        t0s = t0_us + np.cumsum(dt)
        raw_t = chain.t_us[a:b]
        period = int(chain.period[a])
        keep = min(b - a, HISTORY_FRAMES)
        self._history.extend(
            zip(seqs[-keep:].tolist(), counts[-keep:].tolist(), raw_t[-keep:].tolist(), [period] * keep)
        )
        last_seq, last_t0 = int(seqs[-1]), int(t0s[-1])
        self._commit_position(int(chain.seq[b - 1]), last_seq, int(raw_t[-1]), last_t0)
        for k in range(b - 1, a - 1, -1):
            if t_hosts[k] is not None:
                self._offset = t_hosts[k] - int(chain.t_us[k]) * 1e-6
                break
        flags = chain.flags[a:b]
        st.flagged_fifo_overflow += int(np.count_nonzero(flags & proto.SF_FIFO_OVERFLOW))
        st.flagged_queue_drop += int(np.count_nonzero(flags & proto.SF_QUEUE_DROP))
        st.flagged_sensor_lost += int(np.count_nonzero(flags & proto.SF_SENSOR_LOST))
        st.frames += b - a
        st.samples += n
        self._status_verdict = None
        self._next_seq = last_seq + int(counts[-1])
        self._next_t_us = last_t0 + int(counts[-1]) * period
        # the samples, into the run; a frame is added while the run holds fewer than max_samples
        raw = chain.samples(a, b)
        th = np.repeat(np.asarray(t_hosts[a:b], dtype=np.float64), counts)
        idx = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        sample_seq = np.repeat(seqs, counts) + idx
        sample_t = np.repeat(t0s, counts) + idx * period
        sample_flags = np.repeat(flags.astype(np.uint8), counts)
        ends = np.cumsum(counts)
        start_frame = 0
        while start_frame < b - a:
            if run.n >= max_samples:
                out.append(run.take())
            room = max_samples - run.n  # frames are added until the run holds >= max_samples
            done = int(ends[start_frame - 1]) if start_frame else 0
            stop_frame = int(np.searchsorted(ends, done + room, side="left")) + 1
            stop_frame = min(stop_frame, b - a)
            lo, hi = done, int(ends[stop_frame - 1])
            run.add(
                raw[lo:hi],
                sample_seq[lo:hi],
                sample_t[lo:hi],
                sample_flags[lo:hi],
                th[lo:hi],
                int(t0s[stop_frame - 1]),
                int(counts[stop_frame - 1]),
            )
            start_frame = stop_frame


class _Chain:
    """Received frames, checked all at once (numpy): which are valid SAMPLES
    frames (length, version, type, CRC, header ranges, as ``proto.decode``
    checks them) and which follow the frame before exactly: the next
    sequence number, the same layout, period and sample count, the device
    time moving on past the last sample of the frame before (by less than
    half the u32 range). Their header fields and samples come from here.
    Made from a list of frames (:meth:`of_frames`) or from a run of
    equal-length frames in one buffer (:meth:`of_run`: no copy, no
    ``bytes`` per frame)."""

    def __init__(
        self,
        lengths: np.ndarray,
        h: np.ndarray,
        crc_ok: Callable[[np.ndarray], np.ndarray],
        rows: Callable[[int, int], np.ndarray],
    ) -> None:
        """``lengths``: each frame's length; ``h``: (m, SAMPLES_HEADER_SIZE)
        int64, each frame's header bytes (anything for a frame too short or
        too long); ``crc_ok(ks)``: whether frames ``ks`` (an index array)
        pass their CRC-16 (a bool array);
        ``rows(a, b)``: frames a..b-1 (of one length) as the rows of a
        uint8 array."""
        m = len(lengths)
        self.length = lengths
        self._rows = rows
        hdr_ok = (lengths >= proto.SAMPLES_HEADER_SIZE + proto.CRC_SIZE) & (lengths <= proto.MAX_FRAME)
        self.seq = h[:, 2] | h[:, 3] << 8 | h[:, 4] << 16 | h[:, 5] << 24
        self.t_us = h[:, 6] | h[:, 7] << 8 | h[:, 8] << 16 | h[:, 9] << 24
        self.period = h[:, 10] | h[:, 11] << 8
        mask, ranges, count, self.flags = h[:, 12], h[:, 13], h[:, 14], h[:, 15]
        self.count = count
        per_sample = ((mask & 1) + ((mask >> 1) & 1)) * proto.AXES_PER_IMU * 2 + 2
        valid = (
            hdr_ok
            & (h[:, 0] == proto.PROTOCOL_VERSION)
            & (h[:, 1] == proto.T_SAMPLES)
            & (mask >= 1) & (mask <= 3)
            & (count > 0) & (self.period > 0)
            & ((ranges & 0x0C) == 0) & ((ranges >> 4) <= 4)
            & (lengths - proto.SAMPLES_HEADER_SIZE - proto.CRC_SIZE == count * per_sample)
        )  # fmt: skip
        follows = np.zeros(m, dtype=bool)
        dt = (self.t_us[1:] - self.t_us[:-1]) & 0xFFFFFFFF
        follows[1:] = (
            valid[1:] & valid[:-1]
            & (self.seq[1:] == (self.seq[:-1] + count[:-1]) & 0xFFFFFFFF)
            & (dt < 0x80000000) & (dt > (count[:-1] - 1) * self.period[:-1])
            & (mask[1:] == mask[:-1]) & (ranges[1:] == ranges[:-1]) & (self.period[1:] == self.period[:-1]) & (count[1:] == count[:-1])
        )  # fmt: skip
        # the CRC last, and only where it decides something (the frame after
        # a bad one never starts a stretch: the rules place it first)
        checked = np.flatnonzero(follows)
        if len(checked):
            follows[checked[~crc_ok(checked)]] = False
        self.follows = follows
        nxt = np.flatnonzero(~follows)
        self._next_break = np.append(nxt, m)

    @classmethod
    def of_frames(cls, frames: list[bytes]) -> _Chain:
        """Frames as a list of ``bytes`` (any lengths)."""
        m = len(frames)
        lengths = np.fromiter(map(len, frames), dtype=np.int64, count=m)
        buf = np.frombuffer(b"".join(frames), dtype=np.uint8)
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        hdr_ok = (lengths >= proto.SAMPLES_HEADER_SIZE + proto.CRC_SIZE) & (lengths <= proto.MAX_FRAME)
        at = np.where(hdr_ok, offsets, 0)[:, None] + np.arange(proto.SAMPLES_HEADER_SIZE)
        h = (
            buf[at].astype(np.int64)
            if len(buf) >= proto.SAMPLES_HEADER_SIZE
            else np.zeros((m, proto.SAMPLES_HEADER_SIZE), np.int64)
        )

        def crc_ok(ks: np.ndarray) -> np.ndarray:
            return np.array(
                [
                    _crc_hqx(frames[k][:-2], 0xFFFF) == (frames[k][-2] | (frames[k][-1] << 8))
                    for k in ks.tolist()
                ],
                dtype=bool,
            )

        def rows(a: int, b: int) -> np.ndarray:
            length, start = int(lengths[a]), int(offsets[a])
            return buf[start : start + (b - a) * length].reshape(b - a, length)

        return cls(lengths, h, crc_ok, rows)

    @classmethod
    def of_run(cls, run: FrameRun) -> _Chain:
        """Frames of one length at a fixed stride in one buffer."""
        m, length = run.count, run.length
        every = run.rows()
        h = (
            every[:, : proto.SAMPLES_HEADER_SIZE].astype(np.int64)
            if length >= proto.SAMPLES_HEADER_SIZE
            else np.zeros((m, proto.SAMPLES_HEADER_SIZE), np.int64)
        )

        def crc_ok(ks: np.ndarray) -> np.ndarray:
            body = length - proto.CRC_SIZE
            sent = every[ks, body] | every[ks, body + 1].astype(np.uint16) << 8  # little-endian, as proto
            k0, k1 = (
                int(ks[0]),
                int(ks[-1]) + 1,
            )  # the CRC of every frame from the first to the last asked for
            if k1 - k0 >= _ROWS_CRC_MIN:  # all at once
                got = _crc16_rows(every[k0:k1, :body])
            else:  # a few: one call each is quicker
                data, stride, start = run.data, run.stride, run.start
                got = np.array(
                    [
                        _crc_hqx(data[a : a + body], 0xFFFF)
                        for a in range(start + k0 * stride, start + k1 * stride, stride)
                    ],
                    dtype=np.uint16,
                )
            return got[ks - k0] == sent

        return cls(np.full(m, length, dtype=np.int64), h, crc_ok, lambda a, b: every[a:b])

    def end_of(self, i: int) -> int:
        """The end of the stretch of frames from ``i`` that each follow the one before (``i`` if none does)."""
        return int(self._next_break[np.searchsorted(self._next_break, i)])

    def samples(self, a: int, b: int) -> np.ndarray:
        """The int16 sample values of frames a..b-1 (one layout), one row per sample."""
        length = int(self.length[a])
        rows = self._rows(a, b)
        body = rows[:, proto.SAMPLES_HEADER_SIZE : length - proto.CRC_SIZE]
        per = (length - proto.SAMPLES_HEADER_SIZE - proto.CRC_SIZE) // int(self.count[a]) // 2
        return np.ascontiguousarray(body).view("<i2").reshape(-1, per)


_CRC16_TABLES: list[tuple[np.ndarray, np.ndarray]] = []
#: frames from which a run's CRC-16s are computed all at once (:func:`_crc16_rows`,
#: ~0.3-0.5 us a frame) rather than one ``crc_hqx`` call each (~0.8 us; quicker
#: below about 400 frames, where numpy's per-call cost dominates)
_ROWS_CRC_MIN = 512


def _crc16_tables() -> tuple[np.ndarray, np.ndarray]:
    """CRC-16/CCITT-FALSE (``proto.crc16``) tables: one byte (256 entries) and
    two bytes (65,536) of message shifted through a zero register."""
    if not _CRC16_TABLES:
        t8 = np.array([_crc_hqx(bytes((i,)), 0) for i in range(256)], dtype=np.uint16)
        hi = t8[np.arange(65536) >> 8]  # the first byte, then the second
        t16 = ((hi << 8) ^ t8[(hi >> 8) ^ (np.arange(65536) & 0xFF)]).astype(np.uint16)
        _CRC16_TABLES.append((t8, t16))
    return _CRC16_TABLES[0]


def _crc16_rows(rows: np.ndarray) -> np.ndarray:
    """``proto.crc16`` (``binascii.crc_hqx(row, 0xFFFF)``) of each row of an
    (m, n) uint8 array, all rows at once: a 16-bit register takes two
    message bytes per step (register' = T16[register ^ the next big-endian
    word]), one numpy pass over the m rows per word; exactly the bytewise CRC."""
    t8, t16 = _crc16_tables()
    m, n = rows.shape
    crc = np.full(m, 0xFFFF, dtype=np.uint16)
    if n % 2:  # an odd byte first, through the one-byte table
        crc = (crc << 8) ^ t8[(crc >> 8) ^ rows[:, 0]]
        rows = rows[:, 1:]
    words = (
        np.ascontiguousarray(rows).view(">u2").T.astype(np.uint16)
    )  # one row per word position, native order
    tmp = np.empty(m, dtype=np.uint16)
    for w in words:
        np.bitwise_xor(crc, w, out=tmp)
        t16.take(tmp, out=crc)
    return crc


class _Run:
    """The samples of consecutive SAMPLES frames of one layout waiting to
    become one block: pieces of rows with their sequence numbers, device
    times, flags and receive times, and what the next frame is checked
    against (layout, the last frame's first-sample time and count)."""

    def __init__(self) -> None:
        self.pieces: list[tuple] = []
        self.n = 0
        self.layout: tuple[int, int, int] | None = None
        self.t_last = 0
        self.count_last = 0

    def add_frame(self, f: proto.Samples, seq: int, t0_us: int, t_host: float | None) -> None:
        self.layout = (f.mask, f.ranges, f.period_us)
        self.add(*_frame_rows(f, seq, t0_us), np.full(f.count, t_host, dtype=np.float64), t0_us, f.count)

    def add(self, raw, seq, t_us, flags, th, t_last: int, count_last: int) -> None:
        self.pieces.append((raw, seq, t_us, flags, th))
        self.n += len(seq)
        self.t_last = t_last
        self.count_last = count_last

    def take(self) -> tuple[SampleBlock, np.ndarray]:
        """The run as one block with each sample's receive time; the run is empty afterwards."""
        assert self.layout is not None, "take() of an empty run"
        mask, ranges, period = self.layout
        cols = list(zip(*self.pieces))
        raw, seq, t_us, flags, th = (c[0] if len(c) == 1 else np.concatenate(c) for c in cols)
        self.pieces = []
        self.n = 0
        return _samples_block(mask, ranges, period, raw, seq, t_us, flags), th


def _frame_rows(
    f: proto.Samples, seq: int, t0_us: int, skip: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One frame's samples, the first ``skip`` left out: raw int16 rows, their
    (unwrapped) sequence numbers and device times (us), and flags."""
    n = f.count
    raw = np.frombuffer(f.block, dtype="<i2").reshape(n, proto.values_per_sample(f.mask))[skip:]
    idx = np.arange(skip, n, dtype=np.int64)
    return raw, seq + idx, t0_us + idx * f.period_us, np.full(n - skip, f.flags, dtype=np.uint8)


def _block(f: proto.Samples, seq: int, t0_us: int, skip: int) -> SampleBlock:
    """The samples of one frame (the first ``skip`` left out) in SI units."""
    return _samples_block(f.mask, f.ranges, f.period_us, *_frame_rows(f, seq, t0_us, skip))


def _samples_block(
    mask: int,
    ranges: int,
    period_us: int,
    raw: np.ndarray,
    seq: np.ndarray,
    t_us: np.ndarray,
    flags: np.ndarray,
) -> SampleBlock:
    """Raw int16 rows (one layout) with their sequence numbers, device times
    and flags, in SI units."""
    acc_scale = proto.accel_fs_g(ranges) / 32768.0 * G
    gyr_scale = proto.gyro_fs_dps(ranges) / 32768.0 * (math.pi / 180.0)
    acc, gyr = {}, {}
    for i, s in enumerate(sensors_in_mask(mask)):
        acc[s] = raw[:, 6 * i : 6 * i + 3] * acc_scale
        gyr[s] = raw[:, 6 * i + 3 : 6 * i + 6] * gyr_scale
    angle = raw[:, -1].astype(np.float64) / 100.0
    angle[raw[:, -1] == proto.ANGLE_NONE] = np.nan
    return SampleBlock(
        seq=seq, t=t_us * 1e-6, acc=acc, gyr=gyr, device_angle_deg=angle, flags=flags, rate_hz=1e6 / period_us
    )


class MonotonicClock:
    """Device time never goes back after decoding: a valid frame whose clock
    stepped back (a firmware clock fault; a real reboot is rebased by
    :class:`FrameDecoder`) shifts the rest of the stream to continue one
    sample period after the last sample; each step back is counted in
    :attr:`backsteps`. The state (the shift and the last sample's time)
    carries from block to block, so any split gives the same times."""

    def __init__(self) -> None:
        self.shift_s = 0.0
        self.backsteps = 0
        self.t_last: float | None = None

    def update(self, block: SampleBlock) -> SampleBlock:
        if not len(block):
            return block
        if self.t_last is not None and block.t[0] + self.shift_s <= self.t_last:
            self.shift_s = self.t_last + 1.0 / block.rate_hz - float(block.t[0])
            self.backsteps += 1
        if self.shift_s:
            block = replace(block, t=block.t + self.shift_s)
        self.t_last = float(block.t[-1])
        return block
