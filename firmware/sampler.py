# IMU FIFOs -> indexed samples -> SAMPLES frames -> bounded send queue.
#
# Sample index k (the SAMPLES `seq`) counts samples since boot; the device
# time of sample k is t_anchor + (k - idx_anchor + 1) * period, where the
# anchor is the moment the IMUs were (re)configured: time comes from the FIFO
# count and the sample period, never from when Python got around to reading.
# After a FIFO overflow the number of lost samples is estimated from the clock
# and the index jumps by it, so the host sees the gap.

import struct

import spinemon_protocol as sp


class FrameQueue:
    """Bounded FIFO of (frame, sample_count); drops the oldest when full."""

    def __init__(self, capacity=32):
        self.capacity = capacity
        self.items = []
        self.frames_dropped = 0
        self.samples_dropped = 0

    def __len__(self):
        return len(self.items)

    def full(self):
        return len(self.items) >= self.capacity

    def drop_oldest(self):
        _, n = self.items.pop(0)
        self.frames_dropped += 1
        self.samples_dropped += n

    def push(self, frame, count):
        self.items.append((frame, count))

    def peek(self):
        return self.items[0][0] if self.items else None

    def pop(self):
        return self.items.pop(0)[0] if self.items else None

    def clear(self):
        self.items = []


class SentRing:
    """The last `capacity` SAMPLES frames handed to the radio, oldest first
    (bounded memory: capacity * MAX_FRAME bytes). A notification the stack
    accepted can still be lost with the link; after a reconnect START
    re-sends these frames first and the host drops the ones it already has
    by sequence number (docs/protocol.md, "After a reconnect")."""

    def __init__(self, capacity=16):
        self.capacity = capacity
        self.items = []

    def __len__(self):
        return len(self.items)

    def add(self, frame):
        self.items.append(frame)
        if len(self.items) > self.capacity:
            self.items.pop(0)

    def frames(self):
        return list(self.items)

    def clear(self):
        self.items = []


class Sampler:
    """Reads one or two IMU drivers (upper, lower-or-None), pairs their
    samples by index and packs SAMPLES frames.

    read(now_us) -> list of (index, upper6, lower6-or-None), new samples in order.
    add(index, upper6, lower6, angle_cdeg, flags) puts one sample in the
    current batch; a full batch becomes a frame in `queue` (only while
    `streaming`). flush() emits a partial batch.
    """

    def __init__(self, upper, lower=None, queue=None):
        self.imus = [upper] if lower is None else [upper, lower]
        self.mask = sp.SENSOR_UPPER | (sp.SENSOR_LOWER if lower is not None else 0)
        self.queue = queue if queue is not None else FrameQueue()
        self.ss = sp.sample_size(self.mask)
        self.max_spf = sp.max_samples_per_frame(self.mask)
        self.spf = self.max_spf
        self._block = bytearray(self.ss * self.max_spf)
        self._mv = memoryview(self._block)
        self.index = 0  # index of the next combined sample
        self.period_us = 10000
        self.ranges = 0
        self.t_anchor = 0
        self.idx_anchor = 0
        self.pend = [[] for _ in self.imus]
        self.pend_start = [0 for _ in self.imus]
        self.configured = False  # the IMUs run at period_us (set by configure)
        self.streaming = False
        # batch
        self.b_seq = 0
        self.b_count = 0
        self.b_flags = 0
        # counters (STATUS)
        self.fifo_overflows = 0
        self.samples_lost_fifo = 0
        self.frames_built = 0
        self._gap_flag = False
        self._drop_flag = False

    # ---- configuration ---------------------------------------------------------
    def hold_fifos(self):
        """Stop every IMU from putting new samples in its FIFO, keeping what
        is there. Before a reconfigure: hold, read() until empty, configure,
        and every sample both IMUs took at the old rate is delivered (the
        IMUs are read one after the other, so without the hold one of them
        can take a sample after its last read whose partner the other IMU
        already gave; configure then clears it and the pair is lost)."""
        for drv in self.imus:
            drv.hold_fifo()

    def configure(self, now_us, rate_hz, accel_fs_g, gyro_fs_dps):
        """(Re)configure every IMU; flushes the current batch first. Returns
        the sample period in us (the nearest rate the upper IMU supports).
        Samples still unpaired are dropped: their partner was never taken
        (see hold_fifos), so no index is skipped."""
        self.flush()
        period = 0
        for drv in self.imus:
            p = drv.configure(rate_hz, accel_fs_g, gyro_fs_dps)
            if not period:
                period = p
        self.period_us = period
        self.ranges = sp.ranges_byte(accel_fs_g, gyro_fs_dps)
        self.t_anchor = now_us
        self.idx_anchor = self.index
        self.configured = True
        for i in range(len(self.imus)):
            self.pend[i] = []
            self.pend_start[i] = self.index
        return period

    def set_samples_per_frame(self, n):
        if n < 1:
            n = 1
        if n > self.max_spf:
            n = self.max_spf
        if n != self.spf:
            self.flush()
            self.spf = n

    def time_of(self, index):
        return self.t_anchor + (index - self.idx_anchor + 1) * self.period_us

    def produced_by(self, now_us):
        """Index of the next sample the IMUs will produce after now_us."""
        return self.idx_anchor + (now_us - self.t_anchor) // self.period_us

    # ---- reading ---------------------------------------------------------------
    def read(self, now_us):
        for i in range(len(self.imus)):
            out = []
            n, overflowed = self.imus[i].read(out)
            end = self.pend_start[i] + len(self.pend[i])
            if overflowed:
                self.fifo_overflows += 1
                expected = self.produced_by(now_us)
                new_start = expected - n
                if new_start < end:
                    new_start = end
                if new_start > end:
                    # a gap: older unpaired samples of this IMU are kept only
                    # if the gap leaves them contiguous (never), so drop them
                    self.pend[i] = []
                    self.pend_start[i] = new_start
            self.pend[i].extend(out)
        start = self.pend_start[0]
        stop = start + len(self.pend[0])
        for i in range(1, len(self.imus)):
            if self.pend_start[i] > start:
                start = self.pend_start[i]
            e = self.pend_start[i] + len(self.pend[i])
            if e < stop:
                stop = e
        if start > self.index:
            self.flush()  # the samples before the gap go out unflagged
            self.samples_lost_fifo += start - self.index
            self._gap_flag = True
            self.index = start
        res = []
        if stop <= start:
            # nothing to pair yet; drop what can never pair (before start)
            for i in range(len(self.imus)):
                k = start - self.pend_start[i]
                if k > 0:
                    del self.pend[i][: min(k, len(self.pend[i]))]
                    self.pend_start[i] += k
            return res
        two = len(self.imus) == 2
        p0 = self.pend[0]
        o0 = start - self.pend_start[0]
        if two:
            p1 = self.pend[1]
            o1 = start - self.pend_start[1]
        for j in range(stop - start):
            res.append((start + j, p0[o0 + j], p1[o1 + j] if two else None))
        for i in range(len(self.imus)):
            k = stop - self.pend_start[i]
            del self.pend[i][:k]
            self.pend_start[i] = stop
        self.index = stop
        return res

    # ---- frames ------------------------------------------------------------------
    def add(self, index, up, low, angle_cdeg, flags):
        if not self.streaming:
            return
        if self.b_count and index != self.b_seq + self.b_count:
            self.flush()
        if self.b_count == 0:
            self.b_seq = index
            self.b_flags = 0
        off = self.b_count * self.ss
        pi = struct.pack_into
        pi("<hhhhhh", self._block, off, up[0], up[1], up[2], up[3], up[4], up[5])
        off += 12
        if low is not None:
            pi("<hhhhhh", self._block, off, low[0], low[1], low[2], low[3], low[4], low[5])
            off += 12
        pi("<h", self._block, off, angle_cdeg)
        self.b_flags |= flags
        self.b_count += 1
        if self.b_count >= self.spf:
            self.flush()

    def flush(self, extra_flags=0):
        """Encode the current batch (if any) and queue it."""
        n = self.b_count
        if n == 0:
            return
        self.b_count = 0
        if self.queue.full():
            self.queue.drop_oldest()
            self._drop_flag = True
        flags = self.b_flags | extra_flags
        if self._gap_flag:
            flags |= sp.SF_FIFO_OVERFLOW
            self._gap_flag = False
        if self._drop_flag:
            flags |= sp.SF_QUEUE_DROP
            self._drop_flag = False
        frame = sp.encode_samples(
            self.b_seq,
            self.time_of(self.b_seq),
            self.period_us,
            self.mask,
            self.ranges,
            flags,
            n,
            self._mv[: n * self.ss],
        )
        self.queue.push(frame, n)
        self.frames_built += 1

    def start(self):
        self.streaming = True
        self._gap_flag = False

    def stop(self):
        self.flush()
        self.streaming = False
