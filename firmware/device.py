# The wearable, built from injected hardware: clock, IMU drivers, motor PWM,
# config store, and optionally battery ADC, button pin, BLE radio and a serial
# port. step() does one pass of all the work (tests call it with a fake
# clock); app.py runs the same methods as asyncio tasks on the board.
#
# Data flow: IMU FIFO -> Sampler (indexed samples) -> Guard (angle, may fire
# the motor) -> Sampler batches -> FrameQueue -> BLE notify / serial.
# Commands: link -> handle_command() -> ACK/ERROR (+ STATUS) back on that link.

import math

try:
    from gc import mem_free as _mem_free  # MicroPython: free heap, bytes (STATUS heap_free)
except ImportError:  # CPython runs these modules in some tests: no MicroPython heap to report
    def _mem_free():
        return 0

import spinemon_protocol as sp
from config_store import DEFAULTS, random_u32
from guard import Guard
from haptics import Haptics
from sampler import FrameQueue, Sampler, SentRing

FW_VERSION = (0, 5, 0)  # 0.2: STATUS carries heap_free; 0.3: SF_GUARD_BUZZED, HAPTIC ACK value, guard confirmation rule; 0.4: hardware faults (SF_SENSOR_LOST, STATUS fault fields, E_STORAGE); 0.5: the guard runs the host's gravity filter (config fusion_tau_acc_s, fusion_acc_rejection_m_s2)
BUTTON_DEBOUNCE_MS = 50
BATTERY_PERIOD_MS = 10000
STATUS_PERIOD_MS = 1000
CONFIRM_PATTERN = (1, 80, 0, 200)
# the host is gone after this long without an accepted COMMAND (it sends
# TIME_SYNC every HEARTBEAT_MS while streaming; see docs/protocol.md)
HOST_SILENCE_US = sp.HOST_SILENCE_MS * 1000
# BLE command counter persistence (docs/security.md): the floor is written
# when an accepted counter gets COUNTER_SAVE_EVERY past the saved one (before
# that command acts; if the write fails the command is refused), and on
# disconnect; after a reboot the floor jumps by COUNTER_SAVE_EVERY, so every
# counter accepted before the reboot stays refused. A BLE counter must also be
# within sp.COUNTER_WINDOW of the last accepted one. With no valid saved floor
# (missing or corrupt counter file) the device fails closed: every BLE command
# but GET_STATUS is refused (E_STALE) until a bonded host's GET_STATUS makes
# it draw a fresh random floor, persist it and report it in that STATUS
# (`last_counter`); the host continues from it + 1.
COUNTER_SAVE_EVERY = 64
# button: held this long -> BLE pairing mode; this long -> forget every bond
PAIRING_HOLD_MS = 3000
FORGET_HOLD_MS = 10000
PAIRING_PATTERN = (2, 80, 80, 200)
FORGET_PATTERN = (1, 600, 0, 255)
# SAMPLES frames kept after the BLE stack took them (docs/protocol.md, "After
# a reconnect"): START on a new connection re-sends them; <= 16 * 244 bytes
RESEND_FRAMES = 16
# an IMU lost (docs/reliability.md, "Hardware faults"): this pattern (five
# short pulses, unlike any other) when the guard is armed, again every
# SENSOR_LOST_REMIND_MS while the guard has no angle at all (upper IMU lost)
SENSOR_LOST_PATTERN = (5, 60, 60, 200)
SENSOR_LOST_REMIND_MS = 30000
# answers (ACK/ERROR/STATUS) a congested BLE stack refused (notify ENOMEM)
# wait here and go out first on the next pump; bounded, emptied on disconnect
PENDING_ANSWERS = 8
# When the IMU FIFOs are read (issue 27): as each sample is due, so the guard
# judges a sample within a few ms of the IMU taking it (a fixed 20 ms poll
# left the confirming sample waiting up to 20 ms). The device keeps an
# estimate of when the next sample is due (`next_due_us`, on its own clock)
# and reads READ_EARLY_US before it; an empty read is tried again
# READ_RETRY_MS later. Each read corrects the estimate: every read drains the
# FIFOs, so the newest sample a read gets became due after the read before
# it and no later than this one, and an empty read shows the next one is not
# due yet; so the estimate follows the IMU's own clock (a little off the
# nominal rate) and, after a read that came late (the loop held up by other
# work), the next read is again on time rather than a period after the late
# one (reads a fixed period apart caught up only by the period's last
# fraction of a ms per sample, so one 6 ms hold-up delayed the next ten or
# more). After a read with samples the next waits at least READ_MIN_MS (at
# high rates a read takes several samples), and at most READ_IDLE_MS. With no
# IMU delivering (none configured, all lost, or no sample for longer than two
# periods and READ_IDLE_MS) every READ_IDLE_MS.
READ_EARLY_US = 500
READ_RETRY_MS = 1
READ_MIN_MS = 2
READ_IDLE_MS = 20
# the IMU's own period is learnt from samples at least this many apart, the
# reference moved on after this many (next_read_ms)
PERIOD_SPAN_MIN = 64
PERIOD_SPAN_MAX = 2048
# how far an IMU's oscillator may be off the nominal rate: 1/32 of a period (3 %)
DRIFT_PER_PERIOD = 32
# two reads at most this far apart pin when the sample the second got was due
TIGHT_US = 2000
# while the host watches with the guard armed, a partial batch goes out this
# often (and at once when the guard buzzed), not on every read
EARLY_FLUSH_MS = 20


def battery_percent(mv):
    """Rough Li-ion state of charge: linear 3300 mV (0 %) .. 4200 mV (100 %)."""
    if mv <= 0:
        return sp.BATTERY_UNKNOWN
    p = (mv - 3300) * 100 // 900
    return 0 if p < 0 else (100 if p > 100 else p)


class Device:
    def __init__(
        self,
        clock,
        upper,
        lower,
        motor_pwm,
        store,
        battery_adc=None,
        battery_divider=2.0,
        button=None,
        radio=None,
        uuid=None,
        serial_port=None,
        link=None,
        mac=b"",
        queue_frames=32,
        resend_frames=RESEND_FRAMES,
        log=None,
    ):
        self.clock = clock
        self.upper = upper
        self.lower = lower
        self.store = store
        self.battery_adc = battery_adc
        self.battery_divider = battery_divider
        self.button = button
        self.radio = radio
        self.uuid = uuid
        self.serial_port = serial_port
        self.link_override = link
        self.mac = mac
        self.log_lines = []
        self._log = log
        self.queue = FrameQueue(queue_frames)
        self.sampler = Sampler(upper, lower, self.queue)
        self.haptics = Haptics(motor_pwm, clock)
        self.cfg = dict(DEFAULTS)
        self.guard = None
        self.ble = None
        self.serial = None
        self.boot_count = 0
        self.config_defaults = False
        self.last_counter = None  # the last accepted counter (any link), for STATUS
        self.last_host_us = 0  # device time of the last accepted COMMAND
        self.link_counters = {}  # link -> last accepted counter (BLE: persisted, see COUNTER_SAVE_EVERY)
        self.counter_saved = None  # the BLE counter floor last written to flash
        self.counter_writes = 0
        self.counter_resync = False  # no valid BLE floor: refuse all but GET_STATUS
        self.counter_resyncs = 0
        self.commands_rejected = 0
        self.frames_sent = 0
        self.stream_link = None
        # BLE only (a serial line has no connection the device sees drop):
        # frames the radio took, kept for a resume after a link loss
        self.sent_ring = SentRing(resend_frames)
        self.ring_unconfirmed = False  # the link dropped since the ring's frames went out
        self.resend = []  # ring frames still to re-send (before the queue)
        self.frames_resent = 0
        self.resumes = 0
        self.battery_mv = 0
        self.t_boot_ms = 0
        self._ble_connects = 0
        self._next_battery_ms = 0
        self._next_status_ms = 0
        self._button_state = 1
        self._button_since = 0
        self._button_handled = True
        self._press_start = None
        self._hold_level = 0
        self._ble_disconnects = 0
        self.task_errors = 0
        # faults (STATUS): set by main.py's boot loop / the board's reset cause
        self.boot_retries = 0
        self.reset_cause = 0
        self.save_failures = 0
        self.lost_seen = 0  # the sampler's lost mask the guard and STATUS last followed
        self.sensor_lost_events = 0
        self._resyncs_seen = 0
        self._remind_ms = None
        self.pending_answers = []  # BLE answers the stack refused (ENOMEM), oldest first
        self.answers_retried = 0
        self.empty_reads = 0  # reads in a row that got no sample (next_read_ms)
        self.next_due_us = None  # when the next sample is due, as far as the reads tell (next_read_ms)
        self._read_us = None  # when poll_imu last read the FIFOs
        self._prev_read_us = None  # and the read before it
        self._timing = None  # the sampler's (anchor, period) the estimate is for
        self.imu_period_us = None  # the IMUs' period as their own clock keeps it, once learnt
        self._untight = 0  # reads with samples since one that pinned the phase (TIGHT_US)
        self._period_ref = None  # (due time, index) of a sample read tightly, to learn it from
        self._flushed_ms = None  # when poll_imu last sent a partial batch early

    def log(self, msg):
        self.log_lines.append(msg)
        if len(self.log_lines) > 20:
            self.log_lines.pop(0)
        if self._log:
            self._log(msg)

    # ---- boot ------------------------------------------------------------------------
    def boot(self):
        self.t_boot_ms = self.clock.now_ms()
        self.cfg = self.store.load()
        self.config_defaults = self.store.defaults_used
        if self.config_defaults:
            self.log("config defaults in use: %s" % self.store.problem)
        self.boot_count = self.store.bump_boot_count()
        saved = self.store.load_counter()
        if saved is not None:
            # commands accepted since the last write are at most COUNTER_SAVE_EVERY past it
            floor = sp.wrap32(saved + COUNTER_SAVE_EVERY)
            self.link_counters["ble"] = floor
            self.last_counter = floor
            self._save_counter(floor)
        else:
            # fail closed: no floor is not "anything goes"
            self.counter_resync = True
            self.log("command counter %s: BLE commands refused until the host resyncs (GET_STATUS)" % self.store.counter_state)
        c = self.cfg
        self.guard = Guard(self.lower is not None, c["fusion_tau_acc_s"], c["fusion_acc_rejection_m_s2"])
        self.guard.set_thresholds(c["guard_flex_cdeg"], c["guard_ext_cdeg"], c["guard_mode"])
        if c["calibrated"]:
            self.guard.set_calibration(c["offset_upper"], c["offset_lower"])
        self._configure_imus(c["rate_hz"])
        link = self.link_override or c["link"]
        if self.radio is not None and link in ("ble", "both"):
            from ble_link import BleLink, BondStore

            fw = "%d.%d.%d" % FW_VERSION
            bonds = BondStore(getattr(self.store, "bonds_path", None))
            self.ble = BleLink(self.radio, self.uuid, self.clock, self.device_name(), fw_revision=fw, log=self.log, bonds=bonds)
            self.ble.start()
        if self.serial_port is not None and link in ("serial", "both"):
            from serial_link import SerialLink

            self.serial = SerialLink(self.serial_port)
        self.read_battery()
        self.log("boot %d: %s" % (self.boot_count, self.device_name()))

    def device_name(self):
        suffix = self.cfg.get("name_suffix") or ""
        if not suffix:
            m = bytes(self.mac)
            suffix = "%02X%02X" % (m[-2], m[-1]) if len(m) >= 2 else "0000"
        return sp.DEVICE_NAME_PREFIX + "-" + suffix

    def _configure_imus(self, rate_hz):
        c = self.cfg
        if self.sampler.configured:
            # deliver every sample taken at the old rate: hold both FIFOs,
            # then drain them (configure clears them). Not at boot: what a
            # FIFO holds then is left over from before a reset.
            self.sampler.hold_fifos()
            self.poll_imu()
        period = self.sampler.configure(self.clock.now_us(), rate_hz, c["accel_fs_g"], c["gyro_fs_dps"])
        self.guard.set_scales(c["accel_fs_g"], c["gyro_fs_dps"], period)
        return period

    # ---- state ----------------------------------------------------------------------------
    def host_watching(self):
        """The host link is up: streaming to a host that can receive it, and
        the host has been heard from lately (any accepted COMMAND; the host
        sends TIME_SYNC as a heartbeat). A serial line has no connection
        state, and a crashed host app can leave a BLE connection up, so
        silence longer than HOST_SILENCE_US counts as the link being down."""
        if not self.sampler.streaming:
            return False
        if self.clock.now_us() - self.last_host_us > HOST_SILENCE_US:
            return False
        if self.stream_link == "serial":
            return self.serial is not None
        return self.ble is not None and self.ble.connected()

    def state_flags(self):
        s = 0
        if self.sampler.streaming:
            s |= sp.ST_STREAMING
        if self.ble is not None and self.ble.connected():
            s |= sp.ST_CONNECTED
        if self.config_defaults:
            s |= sp.ST_CONFIG_DEFAULTS
        if self.guard.armed and not self.sampler.lost & sp.SENSOR_UPPER:
            s |= sp.ST_GUARD_ACTIVE
        if self.sampler.lost:
            s |= sp.ST_SENSOR_LOST
        if self.serial is not None:
            s |= sp.ST_SERIAL
        if self.ble is not None:
            if self.ble.bonded():
                s |= sp.ST_BONDED
            if self.ble.pairing():
                s |= sp.ST_PAIRING
        return s

    def status_frame(self):
        g = self.guard
        q = self.queue
        return sp.encode_status(
            fw_version=FW_VERSION,
            battery_mv=self.battery_mv,
            battery_pct=battery_percent(self.battery_mv),
            imu_upper=self.upper.kind,
            imu_lower=self.lower.kind if self.lower is not None else sp.IMU_NONE,
            ranges=self.sampler.ranges,
            period_us=self.sampler.period_us,
            samples_per_frame=self.sampler.spf,
            guard_flex_cdeg=g.flex_cdeg,
            guard_ext_cdeg=g.ext_cdeg,
            guard_mode=g.mode,
            state=self.state_flags(),
            boot_count=self.boot_count,
            uptime_ms=self.clock.now_ms() - self.t_boot_ms,
            last_counter=self.last_counter or 0,
            frames_sent=self.frames_sent,
            samples_dropped=q.samples_dropped,
            samples_lost_fifo=self.sampler.samples_lost_fifo,
            fifo_overflows=self.sampler.fifo_overflows,
            frames_dropped=q.frames_dropped,
            commands_rejected=self.commands_rejected,
            guard_alerts=g.alerts,
            heap_free=_mem_free(),
            imu_lost=self.sampler.lost,
            i2c_errors=self.sampler.i2c_errors,
            imu_resyncs=self.sampler.resyncs,
            faults=sp.fault_bits(self.reset_cause == sp.RESET_WATCHDOG, self.save_failures > 0, self.boot_retries),
        )

    # ---- work -------------------------------------------------------------------------------
    def _follow_faults(self, now_ms, link_down):
        """The sampler lost an IMU, or got one back: the guard falls back (or
        returns), the wearer feels the "sensor lost" pattern if the guard is
        armed, and the host is told at once (an unsolicited STATUS)."""
        lost = self.sampler.lost
        g = self.guard
        if lost != self.lost_seen:
            newly = lost & ~self.lost_seen
            self.lost_seen = lost
            g.set_lost(lost)
            self.log("imu lost mask now %d" % lost)
            self._remind_ms = None
            if newly:
                self.sensor_lost_events += 1
                if g.calibrated and (g.flex_cdeg or g.ext_cdeg) and (g.mode == sp.GUARD_ALWAYS or (g.mode == sp.GUARD_WHEN_LINK_DOWN and link_down)):
                    self.haptics.play(*SENSOR_LOST_PATTERN)
                    self._remind_ms = now_ms + SENSOR_LOST_REMIND_MS
            self.push_status()
        elif self._remind_ms is not None and lost & sp.SENSOR_UPPER and now_ms - self._remind_ms >= 0:
            self._remind_ms = now_ms + SENSOR_LOST_REMIND_MS
            if g.mode == sp.GUARD_ALWAYS or (g.mode == sp.GUARD_WHEN_LINK_DOWN and link_down):
                self.haptics.play(*SENSOR_LOST_PATTERN)

    def push_status(self):
        """A STATUS now, unasked: the readable value, a notification to a
        trusted BLE host, and on the serial stream while it streams."""
        st = self.status_frame()
        if self.ble is not None:
            self.ble.send_status(st)
        if self.serial is not None and self.stream_link == "serial":
            self.serial.send(st)

    def poll_imu(self):
        """Drain the IMU FIFOs, run the guard on every sample, batch frames."""
        now_us = self.clock.now_us()
        samples = self.sampler.read(now_us)
        self._prev_read_us = self._read_us
        self._read_us = now_us
        now_ms = now_us // 1000
        if self.sampler.lost != self.lost_seen or self._remind_ms is not None:
            self._follow_faults(now_ms, not self.host_watching())
        faults = self.sampler.resyncs + self.sampler.i2c_errors
        if faults != self._resyncs_seen:
            # an I2C error or a resync (samples dropped to stay in step): the
            # readable STATUS says so now, not at the next once-a-second refresh
            self._resyncs_seen = faults
            if self.ble is not None:
                self.ble.set_status_value(self.status_frame())
        if not samples:
            return 0
        link_down = not self.host_watching()
        g = self.guard
        c = self.cfg
        base = sp.SF_LINK_GUARD if link_down else 0
        if self.sampler.lost:
            base |= sp.SF_SENSOR_LOST
        buzzed = False
        for idx, up, low in samples:
            f = base
            if g.update(up, low, now_ms, link_down):
                self.haptics.play(c["guard_pulses"], c["guard_on_ms"], c["guard_off_ms"], c["guard_strength"])
                self.log("guard fired at %d cdeg" % g.angle_cdeg)
                f |= sp.SF_GUARD_BUZZED
                buzzed = True
            if g.armed:
                f |= sp.SF_GUARD_ARMED
            if g.over:
                f |= sp.SF_GUARD_FIRING
            if self.haptics.is_on:
                f |= sp.SF_MOTOR_ON
            self.sampler.add(idx, up, low, g.angle_cdeg, f)
        if g.armed and not link_down and not len(self.queue):
            # the host armed the guard while it watches (a set is on): the
            # samples read go out every EARLY_FLUSH_MS (at once after a buzz)
            # if the link has nothing waiting, so the host sees the device's
            # buzz (SF_GUARD_BUZZED) and the angle without waiting for a full
            # batch; while frames wait (notify pacing), the batch grows
            # instead, and never outpaces the link
            last = self._flushed_ms
            if buzzed or last is None or now_ms - last >= EARLY_FLUSH_MS:
                self.sampler.flush()
                self._flushed_ms = now_ms
        return len(samples)

    def next_read_ms(self, got):
        """ms until the IMU FIFOs are read again, after a read that got `got`
        samples: READ_EARLY_US before the next sample is due (the comment
        above READ_EARLY_US)."""
        s = self.sampler
        nominal = s.period_us
        period_ms = nominal // 1000
        r = self._read_us
        timing = (s.t_anchor, nominal) if s.configured else None
        if timing != self._timing or r is None:
            self._timing = timing  # (re)configured, resynced: the old phase and period say nothing
            self.next_due_us = None
            self._period_ref = None
            self.imu_period_us = None
            self._untight = 0
        if got:
            period = self._imu_period(nominal)
            # the newest sample became due after the read before this one (lo) and by this one (hi)
            hi = r
            prev = self._prev_read_us
            lo = hi - got * period if prev is None else prev + (got - 1) * period
            due = self.next_due_us
            if got == 1 and hi - lo <= TIGHT_US:
                d = (lo + hi) // 2  # a read just before found nothing: a tight bracket, take its middle
                self._learn_period(d, s.index - 1, nominal)
                self._untight = 0
            else:
                self._untight += 1
                d = hi if due is None else due + (got - 1) * period  # the estimate, kept within the bracket
                if d < lo:
                    d = lo
                if d > hi:
                    d = hi
            self.empty_reads = 0
            self.next_due_us = d + period
            # a read that finds its sample at once only says it came late enough: the estimate
            # may be late by the IMU clock's error each period, so read earlier the longer
            # since a read last found nothing (until one does and pins the phase again)
            early = READ_EARLY_US + self._untight * (period // DRIFT_PER_PERIOD)
            if early > period // 2:
                early = period // 2
            wait = (self.next_due_us - early - self.clock.now_us() + 999) // 1000
            if wait < READ_MIN_MS:
                return READ_MIN_MS
            return READ_IDLE_MS if wait > READ_IDLE_MS else wait
        self.empty_reads += 1
        if self.next_due_us is not None and r is not None and r > self.next_due_us:
            self.next_due_us = r  # not due yet at this read
        patience = 2 * period_ms if 2 * period_ms > READ_IDLE_MS else READ_IDLE_MS
        if not s.configured or not s.imus or self.empty_reads * READ_RETRY_MS > patience:
            return READ_IDLE_MS
        return READ_RETRY_MS

    def _imu_period(self, nominal):
        """The IMUs' sample period as their own clock keeps it (learnt by
        _learn_period; the nominal one until then)."""
        p = self.imu_period_us
        return nominal if p is None else p

    def _learn_period(self, due_us, index, nominal):
        """The IMU's oscillator is off the nominal rate by up to a few %: its
        period from two sample times read tightly (a read that found nothing
        just before), PERIOD_SPAN_MIN or more samples apart, so the estimate
        of when a sample is due does not slip by that much each period. The
        reference moves on every PERIOD_SPAN_MAX samples (the oscillator
        drifts with temperature)."""
        ref = self._period_ref
        if ref is None:
            self._period_ref = (due_us, index)
            return
        n = index - ref[1]
        if n >= PERIOD_SPAN_MIN:
            p = (due_us - ref[0]) // n
            if 0.9 * nominal < p < 1.1 * nominal:
                self.imu_period_us = p
            if n >= PERIOD_SPAN_MAX:
                self._period_ref = (due_us, index)

    def pump_links(self):
        """Commands in, responses and queued frames out."""
        if self.ble is not None:
            b = self.ble
            if b.connects != self._ble_connects:
                self._ble_connects = b.connects  # the counter carries on: a replay on a new link is stale
            if b.disconnects != self._ble_disconnects:
                self._ble_disconnects = b.disconnects
                self.pending_answers = []  # for a host that is gone
                if self.stream_link == "ble":
                    # the stream waits for START on the next connection: the
                    # host subscribes first (frames before that would be
                    # lost without the device knowing), then STARTs
                    self.stream_link = None
                self.resend = []
                if len(self.sent_ring):
                    self.ring_unconfirmed = True
                last = self.link_counters.get("ble")
                if last is not None and last != self.counter_saved:
                    self._save_counter(last)
                # the next host reads this on connecting: exact, not up to 1 s old
                b.set_status_value(self.status_frame())
            if b.mtu_changed:
                b.mtu_changed = False
                fit = (b.max_payload() - sp.SAMPLES_HEADER_SIZE - sp.CRC_SIZE) // self.sampler.ss
                self.sampler.set_samples_per_frame(fit)
            self._send_answers(b)
            for data in b.poll():
                answer = self.handle_command(data, "ble")
                self.send_frames()  # the frames built before the answer go first
                self.pending_answers.extend(answer)
                self._send_answers(b)
        if self.serial is not None:
            for data in self.serial.poll():
                answer = self.handle_command(data, "serial")
                # Frames queued before or while the command ran (SET_RATE and
                # STOP flush the last old batch) go out before its answer, so
                # on the stream every frame after SET_RATE's ACK has the new
                # period and none follows STOP's ACK.
                self.send_frames()
                for r in answer:
                    self.serial.send(r)
        self.send_frames()

    def _send_answers(self, b):
        """The answers waiting, in order. One the stack refuses for want of
        buffers (ENOMEM: notify_errors goes up) stays first in line and is
        tried again on the next pump, never lost; one that cannot go at all
        (no trusted host, too long for the MTU) is dropped."""
        q = self.pending_answers
        while q:
            before = b.notify_errors
            if b.send_status(q[0]) or b.notify_errors == before:
                q.pop(0)
                continue
            if len(q) > PENDING_ANSWERS:
                q.pop(0)  # bounded: the oldest goes
                continue
            self.answers_retried += 1
            return

    def _send_one(self, frame):
        """One SAMPLES frame on the stream link: "sent", "busy" or "dropped"."""
        if self.stream_link == "serial" and self.serial is not None:
            return "sent" if self.serial.send(frame) else "busy"
        if self.stream_link == "ble" and self.ble is not None:
            return self.ble.send_stream(frame)
        return "busy"

    def send_frames(self):
        """Re-sent ring frames first (after a resume), then the queue."""
        while self.resend:
            res = self._send_one(self.resend[0])
            if res == "busy":
                return
            self.resend.pop(0)  # sent, or too long for this MTU: it was sent once
            if res == "sent":
                self.frames_resent += 1
        q = self.queue
        while len(q):
            res = self._send_one(q.peek())
            if res == "busy":
                return
            if res == "dropped":
                q.drop_oldest()
                continue
            if self.stream_link == "ble":
                self.sent_ring.add(q.peek())
            q.pop()
            self.frames_sent += 1

    def read_battery(self):
        if self.battery_adc is None:
            self.battery_mv = 0
            return
        self.battery_mv = int(self.battery_adc.read_uv() * self.battery_divider / 1000)
        if self.ble is not None:
            self.ble.set_battery(battery_percent(self.battery_mv) & 0xFF)

    def poll_button(self):
        """Button (active low). Short press, on release: neutral calibration +
        a confirming buzz. Held PAIRING_HOLD_MS: BLE pairing mode (two
        buzzes). Held FORGET_HOLD_MS: every bond forgotten, then pairing mode
        (one long buzz)."""
        if self.button is None:
            return
        now = self.clock.now_ms()
        v = self.button.value()
        if v != self._button_state:
            self._button_state = v
            self._button_since = now
            self._button_handled = False
        elif not self._button_handled and now - self._button_since >= BUTTON_DEBOUNCE_MS:
            self._button_handled = True
            if v == 0:
                self._press_start = self._button_since
                self._hold_level = 0
            elif self._press_start is not None:
                held = self._button_since - self._press_start
                self._press_start = None
                if held < PAIRING_HOLD_MS and self.calibrate_neutral() is not None:
                    self.haptics.play(*CONFIRM_PATTERN)
        if v == 0 and self._press_start is not None and self._button_handled and self.ble is not None:
            held = now - self._press_start
            if held >= FORGET_HOLD_MS and self._hold_level < 2:
                self._hold_level = 2
                self.ble.forget_bonds()
                self.ble.enter_pairing_mode()
                self.haptics.play(*FORGET_PATTERN)
            elif held >= PAIRING_HOLD_MS and self._hold_level < 1:
                self._hold_level = 1
                self.ble.enter_pairing_mode()
                self.haptics.play(*PAIRING_PATTERN)

    def housekeeping(self):
        now = self.clock.now_ms()
        if now >= self._next_battery_ms:
            self._next_battery_ms = now + BATTERY_PERIOD_MS
            self.read_battery()
        if now >= self._next_status_ms:
            self._next_status_ms = now + STATUS_PERIOD_MS
            if self.ble is not None:
                self.ble.set_status_value(self.status_frame())
        self.poll_button()

    def step(self):
        """One pass of everything (tests; the asyncio app runs these as tasks)."""
        self.poll_imu()
        self.pump_links()
        self.haptics.update()
        self.housekeeping()

    def shutdown(self):
        self.haptics.stop()

    # ---- commands ---------------------------------------------------------------------------
    def save_config(self):
        """Write the settings; False (counted; STATUS faults FAULT_SAVE_FAILED) if the
        flash refused (full or failing): the command that asked is answered
        E_STORAGE, never ACK."""
        if self.store.save(self.cfg):
            return True
        self.save_failures += 1
        self.log("settings not saved: %s" % self.store.problem)
        return False

    def calibrate_neutral(self):
        """Neutral from the current orientation: None if the guard cannot
        (no data, a sensor lost), else whether it was saved to flash."""
        if not self.guard.calibrate():
            return None
        self.cfg["calibrated"] = True
        self.cfg["offset_upper"] = self.guard.offset_upper
        self.cfg["offset_lower"] = self.guard.offset_lower
        return self.save_config()

    def set_neutral(self, upper_cdeg, lower_cdeg):
        """SET_NEUTRAL: the host's calibrated neutral (each sensor's sagittal
        angle at neutral, centidegrees), kept in flash like a button calibration."""
        k = math.pi / 18000.0
        self.guard.set_calibration(upper_cdeg * k, lower_cdeg * k)
        self.guard.latched = False
        self.cfg["calibrated"] = True
        self.cfg["offset_upper"] = self.guard.offset_upper
        self.cfg["offset_lower"] = self.guard.offset_lower
        return self.save_config()

    def _start_stream(self, link):
        """START: stream on `link`. On a device already streaming whose BLE
        link dropped since the ring's frames went out (the host resumes after
        a reconnect), the ring is re-sent first: frames lost in flight reach
        the host, which drops the ones it has by sequence number. A START on
        a stopped device begins afresh (the ring is emptied)."""
        if self.sampler.streaming and self.ring_unconfirmed:
            self.resend = self.sent_ring.frames()
            self.resumes += 1
        elif not self.sampler.streaming:
            self.sent_ring.clear()
            self.resend = []
        self.ring_unconfirmed = False
        self.stream_link = link
        self.sampler.start()

    def _save_counter(self, n):
        if self.store.save_counter(n):
            self.counter_saved = n
            self.counter_writes += 1
            return True
        return False

    def _resync_counter(self, cmd):
        """GET_STATUS over BLE with no valid floor: draw a fresh one, persist
        it, report it. Anything else is refused until then."""
        if cmd.opcode != sp.OP_GET_STATUS:
            self.commands_rejected += 1
            return [sp.encode_error(cmd.counter, cmd.opcode, sp.E_STALE)]
        floor = random_u32()
        if not self._save_counter(floor):
            self.commands_rejected += 1
            return [sp.encode_error(cmd.counter, cmd.opcode, sp.E_STATE)]
        self.counter_resync = False
        self.counter_resyncs += 1
        self.link_counters["ble"] = floor
        self.last_counter = floor
        self.last_host_us = self.clock.now_us()
        self.log("command counter resynced")
        return [sp.encode_ack(cmd.counter, cmd.opcode, 0), self.status_frame()]

    def handle_command(self, data, link):
        """One COMMAND frame -> the response frames (ACK or ERROR, plus STATUS
        for GET_STATUS). A bad frame changes nothing."""
        try:
            cmd = sp.decode_command(data)
        except sp.ProtocolError as e:
            self.commands_rejected += 1
            return [sp.encode_error(e.counter or 0, e.opcode or 0, e.code)]
        if link == "ble":
            if self.counter_resync:
                return self._resync_counter(cmd)
            last = self.link_counters.get("ble")
            if last is None or not sp.counter_in_window(cmd.counter, last):
                self.commands_rejected += 1
                return [sp.encode_error(cmd.counter, cmd.opcode, sp.E_STALE)]
            saved = self.counter_saved
            if saved is None or not sp.counter_is_newer(sp.wrap32(saved + COUNTER_SAVE_EVERY), cmd.counter):
                # persisted before the command acts, or not taken: every
                # counter accepted stays at most COUNTER_SAVE_EVERY past flash
                if not self._save_counter(cmd.counter):
                    self.commands_rejected += 1
                    return [sp.encode_error(cmd.counter, cmd.opcode, sp.E_STATE)]
        else:
            # USB serial (physical access): per boot, only "newer" (a host
            # that restarts can step past a counter it does not know)
            last = self.link_counters.get(link)
            if last is not None and not sp.counter_is_newer(cmd.counter, last):
                self.commands_rejected += 1
                return [sp.encode_error(cmd.counter, cmd.opcode, sp.E_STALE)]
        self.link_counters[link] = cmd.counter
        self.last_counter = cmd.counter
        self.last_host_us = self.clock.now_us()
        op = cmd.opcode
        a = cmd.args
        value = 0
        stored = True
        if op == sp.OP_START:
            self._start_stream(link)
        elif op == sp.OP_STOP:
            self.sampler.stop()
        elif op == sp.OP_SET_RATE:
            value = self._configure_imus(a[0])
            self.cfg["rate_hz"] = a[0]
            stored = self.save_config()
        elif op == sp.OP_SET_GUARD:
            self.guard.set_thresholds(a[0], a[1], a[2])
            self.cfg["guard_flex_cdeg"] = a[0]
            self.cfg["guard_ext_cdeg"] = a[1]
            self.cfg["guard_mode"] = a[2]
            stored = self.save_config()
        elif op == sp.OP_TIME_SYNC:
            value = sp.wrap32(self.clock.now_us())
        elif op == sp.OP_CALIBRATE:
            stored = self.calibrate_neutral()
            if stored is None:
                self.commands_rejected += 1
                return [sp.encode_error(cmd.counter, op, sp.E_STATE)]
        elif op == sp.OP_SET_NEUTRAL:
            stored = self.set_neutral(a[0], a[1])
        elif op == sp.OP_GET_STATUS:
            return [sp.encode_ack(cmd.counter, op, 0), self.status_frame()]
        elif op == sp.OP_HAPTIC:
            if self.guard.buzzed_excursion:
                # the guard buzzed for the excursion the wearer is in: this is
                # the host's alert for the same fault (one buzz per fault)
                value = sp.HAPTIC_SKIPPED_GUARD_BUZZED
            else:
                self.haptics.play(a[0], a[1], a[2], a[3])
                self.guard.host_buzzed(self.clock.now_ms())
        if not stored:
            # in force until the next reboot, but not on flash: never ACKed
            self.commands_rejected += 1
            return [sp.encode_error(cmd.counter, op, sp.E_STORAGE)]
        return [sp.encode_ack(cmd.counter, op, value)]
