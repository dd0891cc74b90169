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


# Faults (docs/reliability.md, "Hardware faults"). An I2C error while
# reading an IMU, or an IMU that stops producing samples (a brown-out leaves
# it at its power-on registers, FIFO off) breaks the one thing pairing by
# index relies on: that both FIFOs hold every sample since the same moment.
# So the sampler never guesses: it drops every unpaired sample of both IMUs,
# restarts both together (resync: configure() clears and starts the FIFOs at
# the same moment) and jumps the index by the samples the clock says were
# taken meanwhile (counted in samples_lost_fifo, flagged SF_FIFO_OVERFLOW on
# the next frame). An IMU that cannot be configured, or fails its check()
# (identity and settings read back), or stalls again right after a resync,
# is *lost*: the sampler goes on with the other one (its frames carry only
# that sensor's mask) and tries the lost one again every PROBE_US.
STALL_US = 150000  # an IMU with no new sample for this long (and 4 periods) is suspect
PROBE_US = 1000000  # a lost IMU is tried again this often
CONFIGURE_TRIES = 2
MAX_PEND = 300  # unpaired samples one IMU may hold (> STALL_US at the highest rate) before a resync


class Sampler:
    """Reads one or two IMU drivers (upper, lower-or-None), pairs their
    samples by index and packs SAMPLES frames.

    read(now_us) -> list of (index, upper6-or-None, lower6-or-None), new
    samples in order (upper None only while the upper IMU is lost; lower
    None with one IMU fitted or while the lower one is lost).
    add(index, upper6, lower6, angle_cdeg, flags) puts one sample in the
    current batch; a full batch becomes a frame in `queue` (only while
    `streaming`). flush() emits a partial batch.
    `lost`: sensor mask of the IMUs lost now; `i2c_errors`, `resyncs`: counters.
    """

    def __init__(self, upper, lower=None, queue=None):
        self.drivers = [upper] if lower is None else [upper, lower]
        self.bits = [sp.SENSOR_UPPER, sp.SENSOR_LOWER]
        self.fitted = sp.SENSOR_UPPER | (sp.SENSOR_LOWER if lower is not None else 0)
        self.lost = 0
        self.queue = queue if queue is not None else FrameQueue()
        self.max_payload = None  # bytes of samples one frame may carry (set_samples_per_frame)
        self.index = 0  # index of the next combined sample
        self.spf = None
        self._layout()
        self.spf = self.max_spf
        self.period_us = 10000
        self.ranges = 0
        self.t_anchor = 0
        self.idx_anchor = 0
        self.configured = False  # the IMUs run at period_us (set by configure)
        self.streaming = False
        self._settings = None  # (rate_hz, accel_fs_g, gyro_fs_dps) of the last configure
        # batch
        self.b_seq = 0
        self.b_count = 0
        self.b_flags = 0
        # counters (STATUS)
        self.fifo_overflows = 0
        self.samples_lost_fifo = 0
        self.frames_built = 0
        self.i2c_errors = 0
        self.resyncs = 0
        self._gap_flag = False
        self._drop_flag = False
        self._next_probe_us = 0

    def _layout(self):
        """The IMUs in use (not lost), the frame mask and sizes for them."""
        self.imus = [self.drivers[i] for i in range(len(self.drivers)) if not self.lost & self.bits[i]]
        self.slots = [i for i in range(len(self.drivers)) if not self.lost & self.bits[i]]
        self.mask = self.fitted & ~self.lost
        self.pend = [[] for _ in self.imus]
        self.pend_start = [self.index for _ in self.imus]
        self.last_data_us = [0 for _ in self.imus]
        self.last_read_us = [None for _ in self.imus]
        self.stalls = [0 for _ in self.imus]
        if not self.mask:
            return  # nothing to frame
        self.ss = sp.sample_size(self.mask)
        self.max_spf = sp.max_samples_per_frame(self.mask)
        self._block = bytearray(self.ss * self.max_spf)
        self._mv = memoryview(self._block)
        if self.spf is not None:
            n = self.max_spf if self.max_payload is None else self.max_payload // self.ss
            self.spf = 1 if n < 1 else (self.max_spf if n > self.max_spf else n)

    # ---- configuration ---------------------------------------------------------
    def hold_fifos(self):
        """Stop every IMU from putting new samples in its FIFO, keeping what
        is there. Before a reconfigure: hold, read() until empty, configure,
        and every sample both IMUs took at the old rate is delivered (the
        IMUs are read one after the other, so without the hold one of them
        can take a sample after its last read whose partner the other IMU
        already gave; configure then clears it and the pair is lost).
        An I2C error here is counted; configure() restarts every FIFO anyway."""
        for drv in self.imus:
            try:
                drv.hold_fifo()
            except OSError:
                self.i2c_errors += 1

    def _start_imus(self, rate_hz, accel_fs_g, gyro_fs_dps):
        """Configure every IMU not lost (then the lost ones are marked).
        Returns the period of the first that started, or 0."""
        period = 0
        lost = self.lost
        for i in range(len(self.drivers)):
            if lost & self.bits[i]:
                continue
            drv = self.drivers[i]
            ok = False
            for _ in range(CONFIGURE_TRIES):
                try:
                    p = drv.configure(rate_hz, accel_fs_g, gyro_fs_dps)
                    if drv.check():
                        ok = True
                        break
                except OSError:
                    self.i2c_errors += 1
            if ok:
                if not period:
                    period = p
            else:
                lost |= self.bits[i]
        if lost != self.lost:
            self.lost = lost
            self._next_probe_us = 0
        return period

    def configure(self, now_us, rate_hz, accel_fs_g, gyro_fs_dps):
        """(Re)configure every IMU; flushes the current batch first. Returns
        the sample period in us (the nearest rate the upper IMU supports).
        Samples still unpaired are dropped: their partner was never taken
        (see hold_fifos), so no index is skipped. An IMU that cannot be
        configured is marked lost (the others go on)."""
        self.flush()
        self._settings = (rate_hz, accel_fs_g, gyro_fs_dps)
        period = self._start_imus(rate_hz, accel_fs_g, gyro_fs_dps)
        if period:
            self.period_us = period
        self.ranges = sp.ranges_byte(accel_fs_g, gyro_fs_dps)
        self.t_anchor = now_us
        self.idx_anchor = self.index
        self.configured = True
        self._layout()
        for i in range(len(self.imus)):
            self.last_data_us[i] = now_us
        return self.period_us

    def resync(self, now_us):
        """Restart every IMU together after a fault: the samples not yet
        paired are dropped, the index jumps by the samples taken meanwhile
        (counted as lost, flagged SF_FIFO_OVERFLOW)."""
        self.flush()
        self.resyncs += 1
        skip_to = self.produced_by(now_us)
        if skip_to < self.index:
            skip_to = self.index
        if skip_to > self.index:
            self.samples_lost_fifo += skip_to - self.index
            self.index = skip_to
        # flagged even when no sample was due yet (a read just as the next one is due): the
        # IMUs restart, and the host must know the stream was cut here, whatever it lost
        self._gap_flag = True
        rate, afs, gfs = self._settings
        period = self._start_imus(rate, afs, gfs)
        if period:
            self.period_us = period
        self.t_anchor = now_us
        self.idx_anchor = self.index
        self._layout()
        for i in range(len(self.imus)):
            self.last_data_us[i] = now_us

    def _probe_lost(self, now_us):
        """Every PROBE_US: is a lost IMU back (its identity answers)? Then
        restart all together with it."""
        self._next_probe_us = now_us + PROBE_US
        back = 0
        for i in range(len(self.drivers)):
            if self.lost & self.bits[i]:
                try:
                    if self.drivers[i].read_identity():
                        back |= self.bits[i]
                except OSError:
                    self.i2c_errors += 1
        if back:
            self.lost &= ~back
            self.resync(now_us)

    def set_samples_per_frame(self, n):
        if n < 1:
            n = 1
        if n > self.max_spf:
            n = self.max_spf
        self.max_payload = n * self.ss
        if n != self.spf:
            self.flush()
            self.spf = n

    def time_of(self, index):
        return self.t_anchor + (index - self.idx_anchor + 1) * self.period_us

    def produced_by(self, now_us):
        """Index of the next sample the IMUs will produce after now_us."""
        return self.idx_anchor + (now_us - self.t_anchor) // self.period_us

    def _stall_us(self):
        s = 4 * self.period_us
        return STALL_US if s < STALL_US else s

    # ---- reading ---------------------------------------------------------------
    def read(self, now_us):
        if self.lost and self.configured and now_us - self._next_probe_us >= 0:
            self._probe_lost(now_us)
        if not self.imus:
            return []
        fault = False
        stall = self._stall_us()
        for i in range(len(self.imus)):
            out = []
            try:
                n, overflowed = self.imus[i].read(out)
            except OSError:
                # what this read took out of the FIFO is gone: the pairing
                # cannot be trusted past here
                self.i2c_errors += 1
                fault = True
                continue
            prev = self.last_read_us[i]
            self.last_read_us[i] = now_us
            polled = prev is not None and now_us - prev < stall  # read lately: an empty FIFO means something
            if n or (overflowed and not polled):
                # data, or an overflow the loop's own delay explains
                self.last_data_us[i] = now_us
                self.stalls[i] = 0
            elif polled and now_us - self.last_data_us[i] > stall:
                # no sample for too long: reset to its power-on registers,
                # or dead. A second stall with no sample since: lost
                self.stalls[i] += 1
                fault = True
                if self.stalls[i] >= 2:
                    self.lost |= self.bits[self.slots[i]]
                    self._next_probe_us = now_us + PROBE_US
                continue
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
        if fault:
            stalls = list(self.stalls)
            self.resync(now_us)
            if len(stalls) == len(self.stalls):
                self.stalls = stalls  # a stall counts until the IMU gives a sample again
            return []
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
                if len(self.pend[i]) > MAX_PEND:
                    # bounded memory: its partner gives nothing (the stall
                    # check names which one), never a growing queue
                    self.resync(now_us)
                    return res
            return res
        two = len(self.imus) == 2
        p0 = self.pend[0]
        o0 = start - self.pend_start[0]
        if two:
            p1 = self.pend[1]
            o1 = start - self.pend_start[1]
        lower_only = self.slots[0] == 1
        for j in range(stop - start):
            if two:
                res.append((start + j, p0[o0 + j], p1[o1 + j]))
            elif lower_only:
                res.append((start + j, None, p0[o0 + j]))
            else:
                res.append((start + j, p0[o0 + j], None))
        for i in range(len(self.imus)):
            k = stop - self.pend_start[i]
            del self.pend[i][:k]
            self.pend_start[i] = stop
        self.index = stop
        return res

    # ---- frames ------------------------------------------------------------------
    def add(self, index, up, low, angle_cdeg, flags):
        if not self.streaming or not self.mask:
            return
        if self.b_count and index != self.b_seq + self.b_count:
            self.flush()
        if self.b_count == 0:
            self.b_seq = index
            self.b_flags = 0
        off = self.b_count * self.ss
        pi = struct.pack_into
        if up is not None:
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
