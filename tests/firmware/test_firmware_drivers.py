"""IMU drivers and the sampler against the register-map models, under MicroPython."""

import pytest

from fw_helpers import mpy

pytestmark = pytest.mark.micropython

CHIPS = ["lsm6dso", "mpu6050"]


@pytest.mark.parametrize("chip", CHIPS)
def test_driver_scaling_axes_and_rate(chip):
    mpy(
        r"""
import math
from fake_clock import FakeClock
from fake_i2c import FakeI2C, Lsm6dsoModel, Mpu6050Model, G
import imu
CHIP = "%s"
c = FakeClock()
bus = FakeI2C(c)
def motion(t):
    # accel (0.5 g, -0.25 g, 0.75 g); gyro (100, -200, 300) dps
    return (0.5 * G, -0.25 * G, 0.75 * G), (math.radians(100), math.radians(-200), math.radians(300))
addr = 0x6A if CHIP == "lsm6dso" else 0x68
bus.add(Lsm6dsoModel(addr, motion) if CHIP == "lsm6dso" else Mpu6050Model(addr, motion))
d = imu.probe(bus, addr)
assert d is not None and d.name == ("LSM6DSO" if CHIP == "lsm6dso" else "MPU-6050"), d
assert imu.probe(bus, 0x11) is None
period = d.configure(100, 4, 500)
assert period == (9615 if CHIP == "lsm6dso" else 10000), period
c.advance_ms(500)  # the MPU-6050 FIFO (1024 B) holds 850 ms at 100 Hz
out = []
n, ovf = d.read(out)
assert not ovf
assert n == 500000 // period and len(out) == n, (n, len(out))
ax, ay, az, gx, gy, gz = out[-1]
# protocol scale: physical = raw * FS / 32768
def phys(v, fs):
    return v * fs / 32768.0
assert abs(phys(ax, 4) - 0.5) < 0.002 and abs(phys(ay, 4) + 0.25) < 0.002 and abs(phys(az, 4) - 0.75) < 0.002, out[-1]
for v, want in ((gx, 100), (gy, -200), (gz, 300)):
    assert abs(phys(v, 500) - want) < 0.05, (v, phys(v, 500), want)
# nearest supported rate
assert d.configure(30, 4, 500) == (38462 if CHIP == "lsm6dso" else 33000)
assert d.configure(1000, 4, 500) == (1200 if CHIP == "lsm6dso" else 1000)
assert d.configure(25, 2, 2000) == (38462 if CHIP == "lsm6dso" else 40000)
print("ok")
"""
        % chip
    )


def test_lsm6dso_gyro_rescale_clamps_at_full_scale():
    mpy(
        r"""
import math
from fake_clock import FakeClock
from fake_i2c import FakeI2C, Lsm6dsoModel
import imu
c = FakeClock(); bus = FakeI2C(c)
# 2100 dps fits the chip's raw range at FS 2000 (70 mdps/LSB -> 30000 LSB)
# but is beyond the protocol's +-2000 dps: it must clamp, not wrap
bus.add(Lsm6dsoModel(0x6A, lambda t: ((0.0, 0.0, 9.80665), (math.radians(2100), math.radians(-1000), 0.0))))
d = imu.probe(bus, 0x6A)
d.configure(104, 4, 2000)
c.advance_ms(100)
out = []
d.read(out)
assert out[-1][3] == 32767, out[-1]
assert abs(out[-1][4] * 2000 / 32768 + 1000) < 0.1, out[-1]
print("ok")
"""
    )


@pytest.mark.parametrize("chip", CHIPS)
def test_stalled_loop_500ms_loses_no_samples(chip):
    mpy(
        r"""
from fake_clock import FakeClock
from fake_i2c import FakeI2C, Lsm6dsoModel, Mpu6050Model, Tilt
from sampler import Sampler
import spinemon_protocol as sp
import imu
CHIP = "%s"
c = FakeClock(); bus = FakeI2C(c)
M = Lsm6dsoModel if CHIP == "lsm6dso" else Mpu6050Model
a0, a1 = (0x6A, 0x6B) if CHIP == "lsm6dso" else (0x68, 0x69)
mu = bus.add(M(a0, Tilt([(0, 0), (5, 40)])))
ml = bus.add(M(a1, Tilt([(0, 0), (5, -10)])))
s = Sampler(imu.probe(bus, a0), imu.probe(bus, a1))
s.start()
period = s.configure(0, 100, 4, 2000)  # MPU-6050: 1024 B FIFO = 85 samples = 850 ms at 100 Hz
t = 0
def now():
    return c.t_us
got = []
for step in range(200):
    stall = 500 if step in (20, 90, 150) else 10  # the event loop stalls for 500 ms three times
    c.advance_ms(stall)
    for idx, up, low in s.read(now()):
        got.append(idx)
        s.add(idx, up, low, 0, 0)
s.flush()
assert got == list(range(len(got))), "indices not contiguous"
assert len(got) == mu.produced == ml.produced, (len(got), mu.produced, ml.produced)
assert s.samples_lost_fifo == 0 and s.fifo_overflows == 0
frames = [sp.decode(f) for f, n in s.queue.items]
assert sum(f.count for f in frames) == len(got) or s.queue.frames_dropped
# time stamps from the index and the period, not from when we read
for f in frames:
    assert f.t_us == sp.wrap32((f.seq + 1) * period), (f.seq, f.t_us)
    assert f.flags & sp.SF_FIFO_OVERFLOW == 0
print("ok")
"""
        % chip
    )


@pytest.mark.parametrize("chip", CHIPS)
def test_fifo_overflow_detected_counted_and_seq_jumps(chip):
    mpy(
        r"""
from fake_clock import FakeClock
from fake_i2c import FakeI2C, Lsm6dsoModel, Mpu6050Model, still
from sampler import Sampler, FrameQueue
import spinemon_protocol as sp
import imu
CHIP = "%s"
c = FakeClock(); bus = FakeI2C(c)
M = Lsm6dsoModel if CHIP == "lsm6dso" else Mpu6050Model
addr = 0x6A if CHIP == "lsm6dso" else 0x68
m = bus.add(M(addr, still))
s = Sampler(imu.probe(bus, addr), None, FrameQueue(1000))
period = s.configure(0, 100, 4, 2000)
s.start()
def pump(ms):
    for _ in range(ms // 10):
        c.advance_ms(10)
        for idx, up, low in s.read(c.t_us):
            s.add(idx, up, low, 0, 0)
pump(1000)
before = s.index
c.advance_ms(8000)   # far longer than the FIFO holds
pump(1000)
s.flush()
assert m.lost > 0, "the model must have overflowed"
assert s.fifo_overflows == 1, s.fifo_overflows
produced = m.produced
# what the host gets + what was lost == what the IMU produced (+-1 for the clock estimate)
frames = [sp.decode(f) for f, n in s.queue.items]
delivered = sum(f.count for f in frames)
assert abs(delivered + s.samples_lost_fifo - produced) <= 1, (delivered, s.samples_lost_fifo, produced)
if CHIP == "lsm6dso":
    assert abs(s.samples_lost_fifo - m.lost) <= 1, (s.samples_lost_fifo, m.lost)
# the sequence jumps by the number of lost samples, and that frame is flagged
gaps = []
for a, b in zip(frames, frames[1:]):
    if b.seq != a.seq + a.count:
        gaps.append((b.seq - (a.seq + a.count), b.flags))
assert len(gaps) == 1, gaps
assert gaps[0][0] == s.samples_lost_fifo and gaps[0][1] & sp.SF_FIFO_OVERFLOW, gaps
assert sum(1 for f in frames if f.flags & sp.SF_FIFO_OVERFLOW) == 1
# device time stays on the sample grid across the gap
for f in frames:
    assert f.t_us == sp.wrap32((f.seq + 1) * period)
print("ok")
"""
        % chip
    )
