# Builds the hardware a Device needs from fakes (what hal.board() builds on
# the ESP32). Used by the firmware tests and by sim_board-style runs.

from clock import Clock
from fake_bluetooth import BLE, UUID
from fake_clock import FakeClock
from fake_i2c import FakeI2C, Lsm6dsoModel, Mpu6050Model, still
from fake_io import FakeADC, FakePin, FakePort, FakePWM, FakeWDT


class Hardware:
    pass


def make_hardware(chip="lsm6dso", two=True, upper_motion=still, lower_motion=still, clock=None, ble=True, serial=False):
    hw = Hardware()
    hw.ticks = clock if clock is not None else FakeClock()  # tests advance this
    hw.clock = Clock(hw.ticks.ticks_us, hw.ticks.ticks_diff)  # what the firmware reads
    hw.i2c = FakeI2C(hw.ticks)
    if chip == "lsm6dso":
        hw.upper_model = hw.i2c.add(Lsm6dsoModel(0x6A, upper_motion))
        hw.lower_model = hw.i2c.add(Lsm6dsoModel(0x6B, lower_motion)) if two else None
        hw.addresses = (0x6A, 0x6B)
    else:
        hw.upper_model = hw.i2c.add(Mpu6050Model(0x68, upper_motion))
        hw.lower_model = hw.i2c.add(Mpu6050Model(0x69, lower_motion)) if two else None
        hw.addresses = (0x68, 0x69)
    hw.pwm = FakePWM(FakePin(25), freq=200, duty_u16=0, clock=hw.ticks)
    hw.adc = FakeADC(uv=1950000)
    hw.button = FakePin(0, value=1)
    hw.radio = BLE(hw.ticks) if ble else None
    hw.uuid = UUID
    hw.port = FakePort() if serial else None
    hw.mac = b"\x24\x6f\x28\xa1\xb2\xc3"
    # faults (main.main): the watchdog, the reset after failed boots, the reset cause
    hw.wdts = []
    hw.resets = 0

    def watchdog(timeout_ms):
        w = FakeWDT(hw.ticks, timeout_ms)
        hw.wdts.append(w)
        return w

    def reset():
        hw.resets += 1

    hw.watchdog = watchdog
    hw.reset = reset
    hw.reset_cause = 1  # power on
    hw.sleep_ms = getattr(hw.ticks, "sleep_ms", None)
    return hw
