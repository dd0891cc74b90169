"""What reading the IMU FIFOs as each sample is due costs the wearable (issue 27).

The firmware (``Device.poll_imu``: both FIFOs read, samples paired, the guard
run on each, the frame batch filled) is timed under the MicroPython unix port
with the fake IMUs (two LSM6DSO, 104 Hz, guard armed, streaming), per read:
a read that takes one sample (the new cadence), an empty read (the retry
while the reads find the IMU's phase) and a read that takes two samples (the
old 20 ms poll). The per-second cost at 104 Hz follows from how many reads of
each kind a second has (the empty-read count is measured by the same loop the
firmware test runs, on an IMU clock 2 % slow). The fake I2C bus is Python
code: the time spent inside it is measured and left out (the real bus time
is given from the bytes it carries).
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for _d in (_TESTS, _TESTS / "firmware"):  # as pytest's conftest puts them on the path
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))
import mpy_runner  # noqa: E402
from fw_helpers import PATH, PRELUDE, results  # noqa: E402

SCRIPT = r"""
import time
rig = Rig(fresh_store(CFG_DIR), upper_motion=Tilt([(0.0, 0.0), (1.0, 0.0)]), lower_motion=Tilt([(0.0, 0.0), (1.0, 0.0)]))
dev = rig.dev
dev.set_neutral(0, 0)
dev.guard.set_thresholds(4500, -2000, sp.GUARD_ALWAYS)
dev.sampler.start()
P = dev.sampler.period_us
ticks = rig.hw.ticks

class TimedBus:
    # the fake bus, timed: its Python emulation of the chips is not the firmware's cost
    def __init__(self, bus):
        self.bus = bus
        self.us = 0
    def readfrom_mem_into(self, addr, reg, buf):
        t0 = time.ticks_us()
        self.bus.readfrom_mem_into(addr, reg, buf)
        self.us += time.ticks_diff(time.ticks_us(), t0)
    def readfrom_mem(self, addr, reg, n):
        return self.bus.readfrom_mem(addr, reg, n)
    def writeto_mem(self, addr, reg, buf):
        self.bus.writeto_mem(addr, reg, buf)
bus = TimedBus(rig.hw.i2c)
dev.upper.i2c = bus
dev.lower.i2c = bus

def timed(n, advance_us):
    best = []
    for _ in range(n):
        ticks.advance_us(advance_us)
        bus.us = 0
        t0 = time.ticks_us()
        dev.poll_imu()
        best.append(time.ticks_diff(time.ticks_us(), t0) - bus.us)
        dev.queue.clear()
    best.sort()
    return best[len(best) // 2]
timed(200, P)    # warm up
one = timed(N, P)
empty = timed(N, 0)
ticks.advance_us(P // 2)
two = timed(N, 2 * P)
# reads per second of the new cadence, IMU clocks 2 % slow (as the firmware test)
for m in (rig.hw.upper_model, rig.hw.lower_model):
    m.period_us = m.period_us * 102 // 100
reads = 0
got = 0
end = ticks.t_us + 3000000
while ticks.t_us < end:
    n = dev.poll_imu()
    dev.queue.clear()
    reads += 1
    got += n
    ticks.advance_ms(dev.next_read_ms(n))
print("RESULT one_us=%d" % one)
print("RESULT empty_us=%d" % empty)
print("RESULT two_us=%d" % two)
print("RESULT reads=%d" % reads)
print("RESULT samples=%d" % got)
print("RESULT period_us=%d" % P)
"""

# bytes on the I2C bus per IMU (LSM6DSO, 400 kHz, 9 clocks a byte): a FIFO
# status read is address+register+address+2 bytes; a sample is two 7-byte FIFO
# words read in one burst (address+register+address+14 bytes)
I2C_HZ = 400_000
STATUS_BYTES = 5
SAMPLE_BURST_BYTES = 3 + 14


def bus_us(n_bytes: int) -> float:
    return n_bytes * 9 / I2C_HZ * 1e6


def measure(n: int = 2000) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        proc = mpy_runner.run(f"CFG_DIR = {tmp + '/c'!r}\nN = {n}\n" + PRELUDE + SCRIPT, path=PATH, timeout=300)
    out = {k: float(v) for k, v in results(proc.stdout.decode()).items()}
    secs = 3.0
    rate = 1e6 / out["period_us"]
    reads_s = out["reads"] / secs
    samples_s = out["samples"] / secs
    empty_s = reads_s - samples_s  # every read with data took one sample (the firmware test asserts it)
    new_ms = (samples_s * out["one_us"] + empty_s * out["empty_us"]) / 1000
    old_reads_s = 1000 / 20
    old_ms = old_reads_s * out["two_us"] / 1000
    # the bus: per IMU, one status read per read, one burst per read with data
    new_bus = 2 * (reads_s * bus_us(STATUS_BYTES) + samples_s * bus_us(SAMPLE_BURST_BYTES)) / 1000
    old_bus = 2 * (old_reads_s * bus_us(STATUS_BYTES) + old_reads_s * bus_us(3 + 14 * rate / old_reads_s)) / 1000
    return {
        **out,
        "reads_per_s": reads_s,
        "empty_reads_per_s": empty_s,
        "cpu_ms_per_s_new": new_ms,
        "cpu_ms_per_s_old": old_ms,
        "bus_ms_per_s_new": new_bus,
        "bus_ms_per_s_old": old_bus,
    }


def text(m: dict, esp32_slowdown: tuple[int, int] = (20, 40)) -> str:
    lo, hi = esp32_slowdown
    return (
        "Per read, `Device.poll_imu` under the MicroPython unix port (two fake LSM6DSO at 104 Hz, guard armed, "
        "streaming; median of 2000; the time inside the fake I2C bus, Python emulating the chips, left out): one sample %.0f us, empty %.0f us, two samples (the old 20 ms poll) %.0f us. "
        "At 104 Hz the new cadence reads %.0f times a second (%.0f of them empty, IMU clocks 2 %% slow): "
        "%.1f ms of CPU per second here against %.1f ms for the old poll (50 reads of two samples). "
        "Scaling to the ESP32: MicroPython there runs bytecode roughly %d-%dx slower than on this x86 core "
        "(an assumption, not measured here: no board on this machine), so about %.0f-%.0f ms per second "
        "(%.0f-%.0f %% of one core) against %.0f-%.0f ms before; the I2C bus at 400 kHz carries %.1f ms per second "
        "(was %.1f ms: one FIFO status read per IMU per read is the added part, the sample bytes are the same)."
        % (
            m["one_us"], m["empty_us"], m["two_us"], m["reads_per_s"], m["empty_reads_per_s"],
            m["cpu_ms_per_s_new"], m["cpu_ms_per_s_old"], lo, hi,
            m["cpu_ms_per_s_new"] * lo, m["cpu_ms_per_s_new"] * hi,
            m["cpu_ms_per_s_new"] * lo / 10, m["cpu_ms_per_s_new"] * hi / 10,
            m["cpu_ms_per_s_old"] * lo, m["cpu_ms_per_s_old"] * hi,
            m["bus_ms_per_s_new"], m["bus_ms_per_s_old"],
        )
    )


if __name__ == "__main__":
    r = measure()
    print(r)
    print(text(r))
