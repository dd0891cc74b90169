"""Whole-firmware checks: every file compiles with mpy-cross, main.py's app
runs under asyncio against the fakes, hal builds with machine/bluetooth
stand-ins, the motor is never left on."""

import subprocess

import pytest

import mpy_runner
from fw_helpers import FAKE_MODULES, PATH, PRELUDE, mpy

pytestmark = pytest.mark.micropython


def test_mpy_cross_compiles_every_firmware_and_protocol_file(tmp_path):
    exe = mpy_runner.require(mpy_runner.mpy_cross_binary(), "mpy-cross")
    files = sorted(mpy_runner.FIRMWARE_DIR.rglob("*.py")) + [mpy_runner.PROTOCOL_DIR / "spinemon_protocol.py"]
    assert len(files) >= 14
    for f in files:
        out = tmp_path / (f.stem + ".mpy")
        proc = subprocess.run([exe, "-o", str(out), str(f)], capture_output=True)
        assert proc.returncode == 0, f"{f}: {proc.stderr.decode()}"
        assert out.stat().st_size > 0


@pytest.mark.realtime
def test_main_app_runs_under_asyncio_against_fakes(tmp_path):
    """IMU -> frames out over the fake radio and the serial port, commands in
    -> motor, for ~2 s of (real-time) device time, through App.run()."""
    mpy(
        "CFG_DIR = %r\n" % str(tmp_path)
        + PRELUDE
        + r"""
import asyncio
from fake_clock import RealTimeClock
from app import App
hw = make_hardware(clock=RealTimeClock(), serial=True, upper_motion=Tilt([(0, 0), (0.5, 10), (5, 10)]))
dev = main.build_device(hw, fresh_store(CFG_DIR), link="both")
dev.boot()
r = hw.radio
U = hw.uuid
h_cmd = r.handle_of(U(sp.COMMAND_CHAR_UUID))
h_stream = r.handle_of(U(sp.STREAM_CHAR_UUID))
h_status = r.handle_of(U(sp.STATUS_CHAR_UUID))

async def central():
    await asyncio.sleep_ms(100)
    r.central_connect(); r.exchange_mtu()
    # a new wearable has no counter floor: the host resyncs with GET_STATUS first
    r.central_write(h_cmd, sp.encode_command(1, sp.OP_GET_STATUS))
    for _ in range(50):
        await asyncio.sleep_ms(10)
        st = [sp.decode(f) for f in r.notified(h_status) if f[1] == sp.T_STATUS]
        if st:
            break
    floor = st[0].last_counter
    r.central_write(h_cmd, sp.encode_command(floor + 1, sp.OP_START))
    hw.port.feed(sp.stream_frame(sp.encode_command(1, sp.OP_GET_STATUS)))
    await asyncio.sleep_ms(800)
    r.central_write(h_cmd, sp.encode_command(floor + 2, sp.OP_HAPTIC, (2, 100, 100, 200)))
    await asyncio.sleep_ms(40)
    assert hw.pwm.duty_u16() == 200 * 257, "motor runs while the app runs"
    hw.port.feed(sp.stream_frame(sp.encode_command(2, sp.OP_START)))   # serial takes over the stream

async def test():
    t = asyncio.create_task(central())
    await App(dev).run(duration_ms=2000)
    await t

asyncio.run(test())
ble_frames = [sp.decode(f) for f in r.notified(h_stream)]
replies = [sp.decode(f) for f in r.notified(h_status)]
serial = [sp.decode(f) for f in sp.StreamDecoder().feed(hw.port.take_tx())]
assert len(ble_frames) >= 8, len(ble_frames)
for a, b in zip(ble_frames, ble_frames[1:]):
    assert b.seq == a.seq + a.count
assert [x.opcode for x in replies if x.kind == sp.T_ACK] == [sp.OP_GET_STATUS, sp.OP_START, sp.OP_HAPTIC]
kinds = [x.kind for x in serial]
assert kinds[:2] == [sp.T_ACK, sp.T_STATUS], kinds[:3]
assert kinds.count(sp.T_SAMPLES) >= 5, kinds
assert len(hw.pwm.on_intervals()) == 2
assert hw.pwm.duty_u16() == 0
assert dev.task_errors == 0
print("ok")
"""
    )


def test_task_errors_are_logged_and_restarted_and_motor_left_off():
    mpy(
        r"""
import asyncio
from fake_clock import RealTimeClock
from fake_io import FakePWM, FakePin
from clock import Clock
from haptics import Haptics
import app

class Dev:
    task_errors = 0
    def __init__(self):
        self.calls = 0
        self.logs = []
        t = RealTimeClock()
        self.clock = Clock(t.ticks_us, t.ticks_diff)
        self.haptics = Haptics(FakePWM(FakePin(1), clock=t), self.clock)
    def log(self, m):
        self.logs.append(m)
    def poll_imu(self):
        self.calls += 1
        if self.calls in (3, 4):
            raise ValueError("boom")
        return 0
    def next_read_ms(self, got):
        return 20
    def pump_links(self):
        pass
    def housekeeping(self):
        pass
    def shutdown(self):
        self.haptics.stop()

d = Dev()
async def go():
    d.haptics.play(1, 2000, 0, 255)   # a long pulse, still on when the app stops
    await app.App(d).run(duration_ms=800)
asyncio.run(go())
assert d.task_errors == 2 and len([l for l in d.logs if "boom" in l]) == 2, d.logs
assert d.calls > 5, "the imu task was restarted"
assert d.haptics.pwm.duty_u16() == 0 and not d.haptics.is_on

# cancelling the haptics task alone also turns the motor off
h = Haptics(FakePWM(FakePin(2), clock=RealTimeClock()), d.clock)
async def cancel_it():
    t = asyncio.create_task(h.run())
    h.play(3, 500, 500, 100)
    await asyncio.sleep_ms(50)
    assert h.pwm.duty_u16() == 100 * 257
    t.cancel()
    await asyncio.sleep_ms(10)
asyncio.run(cancel_it())
assert h.pwm.duty_u16() == 0
print("ok")
"""
    )


def test_haptic_pattern_preempts_and_keeps_time():
    mpy(
        r"""
from fake_clock import FakeClock
from fake_io import FakePWM, FakePin
from clock import Clock
from haptics import Haptics
t = FakeClock()
h = Haptics(FakePWM(FakePin(1), clock=t), Clock(t.ticks_us, t.ticks_diff))
h.play(3, 100, 100, 255)
for _ in range(25):
    t.advance_ms(10); h.update()
h.play(1, 50, 0, 10)   # pre-empts mid-pattern
for _ in range(100):
    t.advance_ms(10); h.update()
on = [(a // 1000, b // 1000, d) for a, b, d in h.pwm.on_intervals()]
assert on == [(0, 100, 65535), (200, 250, 65535), (250, 300, 2570)], on
# a late update never stretches a pulse: it ends the pattern
h.play(1, 100, 0, 255)
t.advance_ms(500); h.update()
assert not h.is_on and h.pwm.duty_u16() == 0
print("ok")
"""
    )


def test_hal_board_builds_with_machine_and_bluetooth_standins(tmp_path):
    mpy_runner.run(
        r"""
import hal.board
hw = hal.board.board()
assert hw.addresses == (0x6A, 0x6B)
assert hw.radio.active() and len(hw.mac) == 6
assert hw.adc.attn == 3 and hw.pwm.duty_u16() == 0
import main
dev = main.build_device(hw, main.ConfigStore(%r + "/c.json", %r + "/b.txt"), log=hw.log)
dev.boot()
assert dev.upper.name == "LSM6DSO" and dev.lower is None
assert dev.ble is not None and hw.radio.adv is not None
print("ok")
"""
        % (str(tmp_path), str(tmp_path)),
        path=PATH + [FAKE_MODULES],
    )


@pytest.mark.realtime
def test_sim_board_streams_over_stdio(tmp_path):
    import spinemon_protocol as sp

    cmds = sp.stream_frame(sp.encode_command(1, sp.OP_START)) + sp.stream_frame(sp.encode_command(2, sp.OP_GET_STATUS))
    proc = mpy_runner.run(
        "import sim_board; sim_board.run(1200, config_dir=%r)" % str(tmp_path), path=PATH, stdin=cmds
    )
    frames = [sp.decode(f) for f in sp.StreamDecoder().feed(proc.stdout)]
    kinds = [f.kind for f in frames]
    assert kinds[:1] == [sp.T_ACK]
    assert sp.T_STATUS in kinds
    samples = [f for f in frames if f.kind == sp.T_SAMPLES]
    assert sum(f.count for f in samples) >= 80  # ~1.1 s at 104 Hz
    for a, b in zip(samples, samples[1:]):
        assert b.seq == a.seq + a.count
