"""SET_RATE mid-stream: nothing is lost and nothing is out of order.

On the board the two IMUs are read one after the other and every I2C
transaction takes time, and a command arrives between two IMU polls. These
tests model that (a bus whose every transaction advances the fake clock;
uneven steps; commands handled on their own) and run under MicroPython and
CPython.
"""

import pytest

from fw_helpers import PRELUDE, cpy, mpy

pytestmark = pytest.mark.micropython

HELPERS = r"""
class SlowBus:
    # the I2C bus as on the board: every transaction takes `us` microseconds
    def __init__(self, bus, ticks, us):
        self.bus = bus
        self.ticks = ticks
        self.us = us
    def readfrom_mem_into(self, addr, reg, buf):
        self.ticks.advance_us(self.us)
        self.bus.readfrom_mem_into(addr, reg, buf)
    def readfrom_mem(self, addr, reg, n):
        self.ticks.advance_us(self.us)
        return self.bus.readfrom_mem(addr, reg, n)
    def writeto_mem(self, addr, reg, buf):
        self.ticks.advance_us(self.us)
        self.bus.writeto_mem(addr, reg, buf)

def slow_bus(rig, us):
    bus = SlowBus(rig.hw.i2c, rig.hw.ticks, us)
    rig.dev.upper.i2c = bus
    if rig.dev.lower is not None:
        rig.dev.lower.i2c = bus

def check_contiguous(frames, first=0):
    nxt = first
    for f in frames:
        assert f.seq == nxt, ("gap", nxt, f.seq)
        assert not f.flags & (sp.SF_FIFO_OVERFLOW | sp.SF_QUEUE_DROP), f.flags
        nxt = f.seq + f.count
    return nxt
"""

SCRIPT_PAIRS = r"""
# Every sample both IMUs took at the old rate is delivered: per rate epoch
# (configure .. next SET_RATE) the device indexes exactly
# min(samples produced by the upper, by the lower) samples. Before the
# FIFOs were held during the drain, an IMU could take a sample after its last
# read whose partner the other IMU had given, and configure cleared it.
rates = (50, 200, 104, 26, 100, 416, 52, 208)
steps_us = (7000, 13000, 3100, 11000, 17300, 5000)
for chip in ("lsm6dso", "mpu6050"):
    for bus_us in (90, 230):
        rig = Rig(fresh_store(CFG_DIR), chip=chip)
        slow_bus(rig, bus_us)
        rig.connect()
        rig.cmd(sp.OP_START)
        models = (rig.hw.upper_model, rig.hw.lower_model)
        s = rig.dev.sampler
        marks = [(s.index, [m.produced for m in models])]
        for i in range(14):
            for j in range(4 + i % 4):
                rig.hw.ticks.advance_us(steps_us[(i + j) % len(steps_us)] + 137 * i)
                rig.dev.step()
            rig.hw.ticks.advance_us(500 + 613 * i)  # the command arrives between two IMU polls
            rig.cmd(sp.OP_SET_RATE, (rates[i % len(rates)],))
            marks.append((s.index, [m.produced for m in models]))
        for (i0, p0), (i1, p1) in zip(marks, marks[1:]):
            made = min(p1[0] - p0[0], p1[1] - p0[1])
            assert i1 - i0 == made, (chip, bus_us, "indexed", i1 - i0, "pairs taken", made, p0, p1)
        rig.run_ms(300, step_ms=20)
        rig.cmd(sp.OP_STOP)
        idx_stop = s.index
        rig.run_ms(2000, step_ms=50)  # the BLE link paces notifications: let the queue drain
        fr = [f for f in rig.frames() if f.kind == sp.T_SAMPLES]
        end = check_contiguous(fr)
        assert end == idx_stop, (end, idx_stop)
        assert sum(m.lost for m in models) == 0
        st = rig.dev.status_frame()
        st = sp.decode(st)
        assert (st.samples_lost_fifo, st.fifo_overflows, st.samples_dropped, st.frames_dropped) == (0, 0, 0, 0), st
print("ok")
"""

SCRIPT_ORDER = r"""
# On the one serial stream the answer to SET_RATE comes after every frame of
# samples taken at the old rate: frames after the ACK carry the new period,
# and after STOP's ACK no SAMPLES frame follows. (The old-rate remainder used
# to be queued while the command ran and sent right behind the ACK; a host
# that stops reading at the ACK lost it, one sample or a few, every SET_RATE.)
for chip in ("lsm6dso", "mpu6050"):
    rig = Rig(fresh_store(CFG_DIR), link="serial", ble=False, serial=True, chip=chip)
    slow_bus(rig, 150)
    port = rig.hw.port
    def send(op, args=()):
        rig.counter += 1
        port.feed(sp.stream_frame(sp.encode_command(rig.counter, op, args)))
        rig.hw.ticks.advance_us(3000)
        rig.dev.pump_links()  # the link task runs between two IMU polls
    send(sp.OP_START)
    for k, rate in enumerate((50, 200, 26, 100)):
        rig.run_ms(290 + 30 * k, step_ms=10)
        send(sp.OP_SET_RATE, (rate,))
    rig.run_ms(200)
    send(sp.OP_STOP)
    idx_stop = rig.dev.sampler.index
    rig.run_ms(100)
    out = [sp.decode(f) for f in sp.StreamDecoder().feed(port.take_tx())]
    period = out[[f.kind for f in out].index(sp.T_SAMPLES)].period_us
    stopped = False
    partial_before_ack = 0
    prev = None
    for f in out:
        if f.kind == sp.T_SAMPLES:
            assert not stopped, "a SAMPLES frame after STOP's ACK"
            assert f.period_us == period, (chip, "frame after the ACK with the old period", f.seq, f.period_us, period)
        elif f.kind == sp.T_ACK and f.opcode == sp.OP_SET_RATE:
            if prev is not None and prev.kind == sp.T_SAMPLES and prev.count < rig.dev.sampler.spf:
                partial_before_ack += 1
            period = f.value
        elif f.kind == sp.T_ACK and f.opcode == sp.OP_STOP:
            stopped = True
        prev = f
    assert stopped
    assert partial_before_ack >= 2, partial_before_ack  # the test saw old-rate remainders
    samples = [f for f in out if f.kind == sp.T_SAMPLES]
    end = check_contiguous(samples)
    assert end == idx_stop, (end, idx_stop)
    assert sorted(set(f.period_us for f in samples)) == sorted(set([samples[0].period_us] + [f.value for f in out if f.kind == sp.T_ACK and f.opcode == sp.OP_SET_RATE]))
print("ok")
"""


def _run(interp, tmp_path, body):
    script = "CFG_DIR = %r\n" % str(tmp_path) + PRELUDE + HELPERS + body
    out = mpy(script) if interp == "micropython" else cpy(script)
    assert out.strip().endswith("ok"), out[-2000:]


@pytest.mark.parametrize("interp", ["micropython", "cpython"])
def test_rate_change_delivers_every_pair_taken_at_the_old_rate(tmp_path, interp):
    _run(interp, tmp_path, SCRIPT_PAIRS)


@pytest.mark.parametrize("interp", ["micropython", "cpython"])
def test_set_rate_ack_follows_the_old_rate_frames_on_the_serial_stream(tmp_path, interp):
    _run(interp, tmp_path, SCRIPT_ORDER)
