"""Issue 12: the test fakes must not inflate the firmware's measured heap.
The fake IMU FIFO ring kept a reference to every popped entry (a drained
512-word LSM6DSO FIFO still held ~64 KB alive on the 64-bit unix port), and
the fake PWM logged every motor change for ever. Measured under MicroPython
with gc.mem_alloc()."""

import pytest

from fw_helpers import mpy, results

pytestmark = pytest.mark.micropython


def test_a_drained_fake_imu_fifo_holds_no_memory_and_the_fake_pwm_log_is_bounded():
    out = results(
        mpy(
            r"""
import gc
from fake_clock import FakeClock
from fake_i2c import Lsm6dsoModel, Mpu6050Model, still
from fake_io import FakePin, FakePWM

def alloc():
    gc.collect()
    return gc.mem_alloc()

# the LSM6DSO model fills its FIFO (512 words of 7 bytes), the driver drains it
m = Lsm6dsoModel(0x6A, still)
m.regs[0x0A] = 6; m.regs[0x10] = 0x40; m.regs[0x09] = 0x44  # FIFO continuous, 104 Hz, batching on
m.restart(0)
base = alloc()
m.advance(10 * 1000000)  # 10 s at 104 Hz: FIFO full (and overflowing)
assert m.fifo.count >= m.fifo.capacity - 1
full = alloc()
while m.fifo.count:
    m.read(0x78, 7)
drained = alloc()
held = sum(1 for x in m.fifo.items if x is not None)
print("RESULT lsm_full_bytes=%d" % (full - base))
print("RESULT lsm_drained_bytes=%d" % (drained - base))
print("RESULT lsm_popped_refs=%d" % held)

mp = Mpu6050Model(0x68, still)
for i in range(1024):
    mp.fifo.push(i & 0xFF)
while mp.fifo.count:
    mp.fifo.pop()
print("RESULT mpu_popped_refs=%d" % sum(1 for x in mp.fifo.items if x is not None))

# a motor switched on and off 20,000 times (a long session of guard pulses)
clk = FakeClock()
pwm = FakePWM(FakePin(25), clock=clk)
before = alloc()
for i in range(20000):
    clk.advance_ms(1)
    pwm.duty_u16(65535 if i % 2 == 0 else 0)
after = alloc()
print("RESULT pwm_history=%d" % len(pwm.history))
print("RESULT pwm_changes=%d" % getattr(pwm, "changes", -1))
print("RESULT pwm_growth_bytes=%d" % (after - before))
print("RESULT pwm_intervals=%d" % len(pwm.on_intervals()))
"""
        )
    )
    # full, the FIFO holds its words; drained, nothing of them is left alive
    assert int(out["lsm_full_bytes"]) > 16_000, out
    assert int(out["lsm_popped_refs"]) == 0 and int(out["mpu_popped_refs"]) == 0, out
    assert int(out["lsm_drained_bytes"]) < 2_000, out
    # every change counted, only the last few hundred kept
    assert int(out["pwm_changes"]) == 20_000
    assert int(out["pwm_history"]) <= 512 and int(out["pwm_intervals"]) <= 256
    assert int(out["pwm_growth_bytes"]) < 40_000, out
