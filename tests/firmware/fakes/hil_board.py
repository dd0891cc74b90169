# The simulated board of the HIL bench (hil/urlhandler/protocol_mpsim.py
# starts it on a pseudo-terminal): the real firmware (main.build_device +
# app.App, serial link on stdin/stdout) with fake IMUs playing a motion script
# (motion_script.SegmentMotion), in real time.
#
# Side channel on stderr, one line each, read by the bench:
#   BOOT <boot_count> <t_offset_us>      after boot
#   MOTOR <t_us> <duty_u16>              every motor duty change ("the motor
#                                        pin wired back to a bench input"),
#                                        t_us on the device clock, the same
#                                        clock as the SAMPLES t_us
#   LOG <text>                           firmware log lines
#
#   micropython -c "import hil_board; hil_board.run({...motion script...})"

import asyncio
import sys

import main
from app import App
from config_store import ConfigStore
from fake_board import make_hardware
from fake_clock import RealTimeClock
from fake_io import FakePin, FakePWM
from hal.stdio import StdioPort
from motion_script import SegmentMotion


def _err(line):
    sys.stderr.write(line + "\n")


class MotorLogPWM(FakePWM):
    """A fake motor PWM that reports every duty change on stderr with the
    device clock's time."""

    def __init__(self, pin, device_clock):
        self.device_clock = device_clock
        FakePWM.__init__(self, pin, freq=200, duty_u16=0, clock=None, history_max=0)  # reported, not kept

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        changed = int(d) != self._duty
        FakePWM.duty_u16(self, d)
        if changed:
            _err("MOTOR %d %d" % (self.device_clock.now_us(), int(d)))


def run(spec, config_dir="/tmp", t_offset_us=0, duration_ms=None, chip="lsm6dso", two=True):
    off = t_offset_us / 1000000.0
    hw = make_hardware(
        chip=chip,
        two=two,
        clock=RealTimeClock(),
        upper_motion=SegmentMotion(spec, "upper", off),
        lower_motion=SegmentMotion(spec, "lower", off),
        ble=False,
    )
    hw.port = StdioPort()
    hw.pwm = MotorLogPWM(FakePin(25), hw.clock)
    store = ConfigStore(config_dir + "/spinemon_hil_config.json", config_dir + "/spinemon_hil_boot.txt")
    dev = main.build_device(hw, store, link="serial", log=lambda m: _err("LOG " + m))
    dev.boot()
    _err("BOOT %d %d" % (dev.boot_count, t_offset_us))
    asyncio.run(App(dev).run(duration_ms))
