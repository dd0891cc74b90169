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
#   FAULT <t_us> <fault> on|off          a hardware fault injected / ended
#                                        (hil.scenario.FAULTS; device clock)
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


class FaultPlayer:
    """Injects the scenario's hardware faults through the fakes at their
    world times (t_offset_us + device clock), and ends them after duration_s."""

    def __init__(self, hw, faults, t_offset_us):
        self.hw = hw
        self.t_offset_us = t_offset_us
        self.todo = []  # (world us, fault dict, on?)
        for f in faults:
            t = int(f["at_s"] * 1000000)
            self.todo.append((t, f, True))
            if f.get("duration_s", 0) > 0 and f["fault"] not in ("brownout", "i2c_glitch"):
                self.todo.append((t + int(f["duration_s"] * 1000000), f, False))
        self.todo.sort(key=lambda x: x[0])

    def _addr(self, f):
        return self.hw.addresses[0 if f.get("imu", "lower") == "upper" else 1]

    def apply(self, f, on):
        i2c = self.hw.i2c
        k = f["fault"]
        a = self._addr(f)
        if k == "unplug":
            i2c.unplug(a) if on else i2c.replug(a)
        elif k == "i2c_glitch":
            i2c.fail(a, f.get("count", 1), 110)
        elif k == "brownout":
            i2c.brownout(a)
        elif k == "stuck_bus":
            i2c.stick(on)
        elif k in ("garbage_ff", "garbage_00"):
            i2c.garbage(a, (0xFF if k == "garbage_ff" else 0x00) if on else None)
        elif k == "full_flash":
            import config_store
            import fault_fs

            if on:
                fault_fs.install(config_store, fault_fs.FullFS())
            else:
                fault_fs.uninstall(config_store)
        _err("FAULT %d %s %s" % (self.hw.clock.now_us(), k, "on" if on else "off"))

    async def run(self):
        clock = self.hw.clock
        while self.todo:
            t, f, on = self.todo[0]
            wait_ms = (t - self.t_offset_us - clock.now_us()) // 1000
            if wait_ms > 0:
                await asyncio.sleep_ms(min(wait_ms, 50))
                continue
            self.todo.pop(0)
            self.apply(f, on)


def run(spec, config_dir="/tmp", t_offset_us=0, duration_ms=None, chip="lsm6dso", two=True, faults=()):
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
    player = FaultPlayer(hw, faults, t_offset_us)

    async def board():
        t = asyncio.create_task(player.run())
        try:
            await App(dev).run(duration_ms)
        finally:
            t.cancel()

    asyncio.run(board())
