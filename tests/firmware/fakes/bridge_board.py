# A simulated board on the emulated BLE radio: the real firmware
# (main.build_device + app.App) with fake IMUs, in real time, whose
# `bluetooth` is bluetooth_bridge.BLE, connected over a Unix socket to the
# host's FirmwareBridge (tests.support.emulated_ble.firmware_bridge). The motor
# PWM reports every duty change, in the firmware's own clock, over the same
# socket. Run under the MicroPython unix port with
# MICROPYPATH=protocol:firmware:tests/firmware/fakes:
#   micropython -c "import bridge_board; bridge_board.run('/tmp/x/bridge.sock', '/tmp/x')"
#
# The wearer stands still (both boards +X up the spine) until the host sends
# a motion over the bridge (H_HARNESS): sensor u8 (0 upper, 1 lower), u16 n,
# n x (f32 t_s, f32 deg) - a fake_i2c.Tilt profile whose times count from
# the moment the message arrives.

import asyncio
import socket
import struct
import sys

from app import App
from config_store import ConfigStore
from fake_board import make_hardware
from fake_clock import RealTimeClock
from fake_i2c import Tilt
from fake_io import FakePin, FakePWM
import bluetooth_bridge
import main

STANDING = [(0.0, 0.0), (1.0, 0.0)]  # Tilt profile: board +X up, still


class ReportingPWM(FakePWM):
    """The motor PWM: every duty change goes to the host with the device time."""

    def __init__(self, pin, radio, freq=200, duty_u16=0, clock=None):
        self.radio = radio
        FakePWM.__init__(self, pin, freq, duty_u16, clock, history_max=0)  # reported, not kept

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        changed = int(d) != self._duty
        FakePWM.duty_u16(self, d)
        if changed:
            self.radio.report_motor(self._duty)

    def deinit(self):
        FakePWM.deinit(self)
        self.radio.report_motor(0)


def unix_sockaddr(path):
    return struct.pack("H", socket.AF_UNIX) + path.encode() + b"\x00"


class Wearer:
    """Applies the host's motion messages to the fake IMU models."""

    def __init__(self, hw):
        self.hw = hw
        self.started = []  # (sensor, t_start_s in the fake ticks' time)

    def on_message(self, payload):
        which, n = struct.unpack_from("<BH", payload, 0)
        t0 = self.hw.ticks.t_us / 1000000.0
        prof = []
        for i in range(n):
            t, deg = struct.unpack_from("<ff", payload, 3 + 8 * i)
            prof.append((t0 + t, deg))
        model = self.hw.upper_model if which == 0 else self.hw.lower_model
        if model is None or not prof:
            return
        model.motion = Tilt(prof)
        self.started.append((which, t0))


async def _run(dev, radio, max_ms):
    app_task = asyncio.create_task(App(dev).run(max_ms))
    serve_task = asyncio.create_task(radio.serve())
    while not (app_task.done() or serve_task.done()):
        await asyncio.sleep_ms(20)
    for t in (app_task, serve_task):
        if not t.done():
            t.cancel()
    for t in (app_task, serve_task):
        try:
            await t
        except asyncio.CancelledError:
            pass
    dev.shutdown()


def run(sock_path, config_dir, max_ms=120000, two=True, chip="lsm6dso"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(unix_sockaddr(sock_path))
    hw = make_hardware(chip=chip, two=two, clock=RealTimeClock(), upper_motion=Tilt(STANDING), lower_motion=Tilt(STANDING), ble=False)
    radio = bluetooth_bridge.BLE(s, hw.clock, hw.ticks, hw.mac)
    hw.radio = radio
    hw.uuid = bluetooth_bridge.UUID
    hw.pwm = ReportingPWM(FakePin(25), radio, freq=200, duty_u16=0, clock=hw.ticks)
    wearer = Wearer(hw)
    radio.on_harness = wearer.on_message

    def log(msg):
        sys.stderr.write(msg + "\n")
        radio.log(msg)

    store = ConfigStore(config_dir + "/spinemon_bridge_config.json", config_dir + "/spinemon_bridge_boot.txt")
    dev = main.build_device(hw, store, link="ble", log=log)
    dev.boot()
    try:
        asyncio.run(_run(dev, radio, max_ms))
    finally:
        dev.shutdown()
        if not radio.eof:
            radio.bye()
        s.close()
