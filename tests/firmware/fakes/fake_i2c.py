# A fake machine.I2C bus and register-map models of the LSM6DSO and the
# MPU-6050/6500, hardware FIFO included. A model produces one sample per ODR
# period from the fake clock (lazily, whenever the bus touches it) using a
# motion function motion(t_s) -> ((ax, ay, az) m/s^2, (gx, gy, gz) rad/s) on
# the board's axes, fills its FIFO and sets the overflow flags when full.
# Runs under MicroPython and CPython.
#
# Faults, as real hardware has them (FakeI2C methods; the fault campaign,
# tests/campaigns/faults.py, injects them at random times):
#   fail(addr, n, errno, after)  the n transactions with `addr` after the next
#                                `after` ones fail: ETIMEDOUT (clock
#                                stretched too long), EIO, or ENODEV (NACK). A
#                                failing read still happened on the chip's
#                                side (a FIFO burst cut by a timeout loses the
#                                words it clocked out); a failing write may or
#                                may not have landed (`wrote`).
#   unplug(addr) / replug(addr)  the chip leaves the bus (every transaction
#                                NACKs); back, it comes up from power-on
#                                (a loose cable browns it out).
#   brownout(addr)               the chip resets to its power-on registers
#                                (FIFO off, no samples), and answers normally.
#   garbage(addr, byte)          every read returns `byte` (0x00: SDA held
#                                low by a dead chip, 0xFF: nobody drives it),
#                                writes are ignored; garbage(addr, None) ends it.
#   stick(True/False)            a stuck bus: every transaction with every
#                                chip times out (and takes `stuck_us`).
# FIFO overflow: do not read for long enough (the models overflow as chips do).

import math
import struct

G = 9.80665
ENODEV = 19
EIO = 5
ETIMEDOUT = 110


def still(t):
    """Standing still, board +X up."""
    return (0.0, 0.0, G), (0.0, 0.0, 0.0)


class Tilt:
    """Sagittal tilt about the board Y axis following a piecewise-linear
    profile [(t_s, deg), ...]: gravity-up u = (cos th, 0, sin th), gyro y = dth/dt.
    (The sign follows du/dt = u x w for a gravity vector fixed in the world.)"""

    def __init__(self, profile):
        self.profile = profile

    def angle(self, t):
        p = self.profile
        if t <= p[0][0]:
            return p[0][1], 0.0
        for i in range(1, len(p)):
            t0, a0 = p[i - 1]
            t1, a1 = p[i]
            if t <= t1:
                rate = (a1 - a0) / (t1 - t0) if t1 > t0 else 0.0
                return a0 + rate * (t - t0), rate
        return p[-1][1], 0.0

    def __call__(self, t):
        deg, rate = self.angle(t)
        th = math.radians(deg)
        return (G * math.cos(th), 0.0, G * math.sin(th)), (0.0, math.radians(rate), 0.0)


def _i16(v):
    v = int(math.floor(v + 0.5))
    if v > 32767:
        return 32767
    if v < -32768:
        return -32768
    return v


class FakeI2C:
    def __init__(self, clock):
        self.clock = clock
        self.devices = {}
        self.transactions = 0
        self.errors = 0  # transactions that raised
        self.unplugged = {}  # addr -> model off the bus
        self._fail = {}  # addr -> [skip, count, errno, wrote]
        self._garbage = {}  # addr -> byte every read returns
        self.stuck = False
        self.stuck_us = 1000  # how long a stuck transaction takes (machine.I2C timeout)

    def add(self, model):
        self.devices[model.address] = model
        return model

    def scan(self):
        if self.stuck:
            return []
        return sorted(self.devices)

    # ---- faults ------------------------------------------------------------------
    def fail(self, addr, n=1, errno=ETIMEDOUT, after=0, wrote=False):
        self._fail[addr] = [after, n, errno, wrote]

    def unplug(self, addr):
        d = self.devices.pop(addr, None)
        if d is not None:
            self.unplugged[addr] = d

    def replug(self, addr, power_cycled=True):
        d = self.unplugged.pop(addr, None)
        if d is not None:
            if power_cycled:
                d.power_on_reset()
            self.devices[addr] = d

    def brownout(self, addr):
        d = self.devices.get(addr) or self.unplugged.get(addr)
        if d is not None:
            d.power_on_reset()

    def garbage(self, addr, byte):
        if byte is None:
            self._garbage.pop(addr, None)
        else:
            self._garbage[addr] = byte

    def stick(self, on=True):
        self.stuck = on

    def clear_faults(self):
        for addr in list(self.unplugged):
            self.replug(addr)
        self._fail = {}
        self._garbage = {}
        self.stuck = False

    def _raise(self, errno):
        self.errors += 1
        raise OSError(errno)

    def _check(self, addr):
        """Raise the injected fault of this transaction, if any. Returns
        (device, fault errno or None) for a fault that still lets the chip
        see the transaction."""
        if self.stuck:
            adv = getattr(self.clock, "advance_us", None)
            if adv is not None:
                adv(self.stuck_us)
            self._raise(ETIMEDOUT)
        d = self.devices.get(addr)
        if d is None:
            self._raise(ENODEV)
        f = self._fail.get(addr)
        if f is not None:
            if f[0] > 0:
                f[0] -= 1
            else:
                f[1] -= 1
                if f[1] <= 0:
                    del self._fail[addr]
                return d, f[2], f[3]
        return d, None, True

    def _dev(self, addr):
        d, err, wrote = self._check(addr)
        self.transactions += 1
        d.advance(self.clock.t_us)
        return d, err, wrote

    def readfrom_mem_into(self, addr, reg, buf):
        d, err, _ = self._dev(addr)
        data = d.read(reg, len(buf))  # clocked out by the chip, even if the master gives up
        if err is not None:
            self._raise(err)
        g = self._garbage.get(addr)
        for i in range(len(buf)):
            buf[i] = data[i] if g is None else g

    def readfrom_mem(self, addr, reg, n):
        b = bytearray(n)
        self.readfrom_mem_into(addr, reg, b)
        return bytes(b)

    def writeto_mem(self, addr, reg, buf):
        d, err, wrote = self._dev(addr)
        if addr not in self._garbage and (err is None or wrote):
            d.write(reg, bytes(buf))
        if err is not None:
            self._raise(err)


class _Ring:
    """Fixed-capacity FIFO of items with O(1) push/pop. Holds references to
    the entries it holds only (a popped or cleared slot is None), so a
    drained FIFO keeps no memory alive."""

    def __init__(self, capacity):
        self.items = [None] * capacity
        self.capacity = capacity
        self.head = 0
        self.count = 0

    def clear(self):
        for i in range(self.capacity):
            self.items[i] = None  # no reference to what was in it
        self.head = 0
        self.count = 0

    def push(self, x):
        """Append; returns True if the oldest item was overwritten."""
        lost = False
        if self.count == self.capacity:
            self.head = (self.head + 1) % self.capacity
            self.count -= 1
            lost = True
        self.items[(self.head + self.count) % self.capacity] = x
        self.count += 1
        return lost

    def pop(self):
        if self.count == 0:
            return None
        x = self.items[self.head]
        self.items[self.head] = None  # a popped entry is the reader's, not the ring's
        self.head = (self.head + 1) % self.capacity
        self.count -= 1
        return x


class ImuModel:
    """Shared timing: samples at t_start + k * period (k >= 1)."""

    WRITES_KEPT = 32

    def __init__(self, address, motion=still):
        self.address = address
        self.motion = motion
        self.regs = bytearray(128)
        self.period_us = 0
        self.t_next = None
        self.produced = 0
        self.lost = 0  # samples overwritten in the FIFO
        self.writes = []  # (reg, value)
        self._now = 0

    def _log_write(self, reg, b):
        # the last WRITES_KEPT register writes (a long run of resyncs must
        # not grow the fake's memory: issue 12, fakes do not inflate the heap)
        self.writes.append((reg, b))
        if len(self.writes) > self.WRITES_KEPT:
            del self.writes[: len(self.writes) - self.WRITES_KEPT]

    def power_on_reset(self):
        """Registers back to their power-on values, FIFO empty: what a
        brown-out leaves (the chip answers, but produces nothing)."""
        self._por()
        self.period_us = 0
        self.t_next = None

    def restart(self, now_us):
        p = self.current_period_us()
        self.period_us = p
        self.t_next = now_us + p if p else None

    def advance(self, now_us):
        if self.t_next is None or not self.producing():
            return
        while self.t_next <= now_us:
            acc, gyr = self.motion(self.t_next / 1000000.0)
            self.push_sample(acc, gyr)
            self.produced += 1
            self.t_next += self.period_us


# ---------------------------------------------------------------- LSM6DSO ----
class Lsm6dsoModel(ImuModel):
    WORDS = 512  # FIFO capacity in 7-byte words assumed by the model

    def __init__(self, address=0x6A, motion=still):
        ImuModel.__init__(self, address, motion)
        self.fifo = _Ring(self.WORDS)
        self._por()

    def _por(self):
        for i in range(len(self.regs)):
            self.regs[i] = 0
        self.regs[0x0F] = 0x6C
        self.fifo.clear()
        self.ovr_latched = False
        self.ovr = False
        self.word = bytearray(7)
        self.ptr_in_word = 7

    def producing(self):
        return (self.regs[0x0A] & 0x07) == 6 and (self.regs[0x10] >> 4) != 0 and (self.regs[0x09] & 0x0F) != 0

    def current_period_us(self):
        code = self.regs[0x10] >> 4
        if code == 0:
            return 0
        # datasheet ODRs: 12.5, 26, 52, 104, 208, 416, 833, 1666 Hz
        hz = (12.5, 26.0, 52.0, 104.0, 208.0, 416.0, 833.0, 1666.0)[min(code, 8) - 1]
        return int(1000000 / hz + 0.5)

    def _sens(self):
        fs_xl = {0: 2, 1: 16, 2: 4, 3: 8}[(self.regs[0x10] >> 2) & 3]
        g = self.regs[0x11]
        if g & 0x02:
            gsens = 4.375
        else:
            gsens = 8.75 * (1 << ((g >> 2) & 3))
        return 0.061 * fs_xl / 2, gsens  # mg/LSB, mdps/LSB

    def push_sample(self, acc, gyr):
        asens, gsens = self._sens()
        ga = [_i16(a / G * 1000.0 / asens) for a in acc]
        gg = [_i16(math.degrees(w) * 1000.0 / gsens) for w in gyr]
        lost = False
        if self.fifo.count + 2 > self.fifo.capacity:
            self.fifo.pop()
            self.fifo.pop()
            lost = True
        self.fifo.push(struct.pack("<Bhhh", 0x01 << 3, gg[0], gg[1], gg[2]))
        self.fifo.push(struct.pack("<Bhhh", 0x02 << 3, ga[0], ga[1], ga[2]))
        if lost:
            self.lost += 1
            self.ovr = True
            self.ovr_latched = True

    def write(self, reg, data):
        now = None
        for b in data:
            self._log_write(reg, b)
            self.regs[reg] = b
            if reg == 0x0A and (b & 7) == 0:
                self.fifo.clear()
                self.ovr = False
            if reg in (0x09, 0x0A, 0x10, 0x11):
                now = True
            reg += 1
        if now:
            self.restart(self._now)

    def advance(self, now_us):
        self._now = now_us
        ImuModel.advance(self, now_us)

    def read(self, reg, n):
        out = bytearray(n)
        for i in range(n):
            if reg == 0x3A:
                out[i] = self.fifo.count & 0xFF
            elif reg == 0x3B:
                v = (self.fifo.count >> 8) & 0x03
                if self.ovr:
                    v |= 0x40
                if self.ovr_latched:
                    v |= 0x08
                if self.fifo.count >= self.fifo.capacity - 1:
                    v |= 0x20
                self.ovr_latched = False
                out[i] = v
            elif 0x78 <= reg <= 0x7E:
                if reg == 0x78:
                    w = self.fifo.pop()
                    self.word = bytearray(w) if w is not None else bytearray(7)
                    self.ovr = False
                out[i] = self.word[reg - 0x78]
                reg += 1
                if reg > 0x7E:
                    reg = 0x78  # FIFO burst rollback
                continue
            else:
                out[i] = self.regs[reg]
            reg += 1
        return out


# ---------------------------------------------------------------- MPU-6050 ---
class Mpu6050Model(ImuModel):
    def __init__(self, address=0x68, motion=still, who_am_i=0x68, fifo_bytes=1024):
        ImuModel.__init__(self, address, motion)
        self.who_am_i = who_am_i
        self.fifo = _Ring(fifo_bytes)
        self._por()

    def _por(self):
        for i in range(len(self.regs)):
            self.regs[i] = 0
        self.regs[0x75] = self.who_am_i
        self.regs[0x6B] = 0x40  # asleep after power-up
        self.fifo.clear()
        self.int_status = 0

    def producing(self):
        return not (self.regs[0x6B] & 0x40) and (self.regs[0x6A] & 0x40) and (self.regs[0x23] & 0x78) == 0x78

    def current_period_us(self):
        dlpf = self.regs[0x1A] & 7
        base = 1000 if 1 <= dlpf <= 6 else 8000
        return int(1000000 * (1 + self.regs[0x19]) / base + 0.5)

    def push_sample(self, acc, gyr):
        afs = 2 << ((self.regs[0x1C] >> 3) & 3)
        gfs = 250 << ((self.regs[0x1B] >> 3) & 3)
        ga = [_i16(a / G * 32768.0 / afs) for a in acc]
        gg = [_i16(math.degrees(w) * 131.0 * 250 / gfs) for w in gyr]
        lost = False
        for b in struct.pack(">hhhhhh", ga[0], ga[1], ga[2], gg[0], gg[1], gg[2]):
            if self.fifo.push(b):
                lost = True  # the oldest byte was overwritten: alignment is gone
        if lost:
            self.lost += 1
            self.int_status |= 0x10

    def write(self, reg, data):
        for b in data:
            self._log_write(reg, b)
            if reg == 0x6B and b & 0x80:
                self.regs[0x6B] = 0x40
                self.fifo.clear()
            elif reg == 0x6A:
                if b & 0x04:
                    self.fifo.clear()
                self.regs[0x6A] = b & ~0x04
                self.restart(self._now)
            else:
                self.regs[reg] = b
                if reg in (0x19, 0x1A, 0x23, 0x6B):
                    self.restart(self._now)
            reg += 1

    def advance(self, now_us):
        self._now = now_us
        ImuModel.advance(self, now_us)

    def read(self, reg, n):
        out = bytearray(n)
        for i in range(n):
            if reg == 0x74:
                b = self.fifo.pop()
                out[i] = b if b is not None else 0
                continue  # FIFO_R_W does not auto-increment
            if reg == 0x3A:
                out[i] = self.int_status
                self.int_status = 0
            elif reg == 0x72:
                out[i] = (self.fifo.count >> 8) & 0xFF
            elif reg == 0x73:
                out[i] = self.fifo.count & 0xFF
            else:
                out[i] = self.regs[reg]
            reg += 1
        return out
