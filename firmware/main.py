# Board entry point. Builds the real hardware through hal and runs the app.
# Tests import build_device() and run it against fakes instead.

import asyncio

import imu
from app import App
from config_store import ConfigStore
from device import Device


def build_device(hw, store=None, link=None, log=None):
    """A Device from a hardware bundle (hal.board() on the ESP32, fakes in
    tests): clock, i2c, addresses, pwm, adc, button, radio, uuid, port, mac."""
    upper = imu.probe(hw.i2c, hw.addresses[0], log)
    lower = imu.probe(hw.i2c, hw.addresses[1], log)
    if upper is None:
        upper, lower = lower, None  # a single IMU is always "upper"
    if upper is None:
        raise OSError("no IMU found on the I2C bus")
    return Device(
        hw.clock,
        upper,
        lower,
        hw.pwm,
        store if store is not None else ConfigStore(),
        battery_adc=hw.adc,
        button=hw.button,
        radio=hw.radio,
        uuid=hw.uuid,
        serial_port=hw.port,
        link=link if link is not None else getattr(hw, "link", None),
        mac=hw.mac,
        log=log,
    )


def main():
    import hal.board

    hw = hal.board.board()
    dev = build_device(hw, ConfigStore(), log=hw.log)
    dev.boot()
    try:
        asyncio.run(App(dev).run())
    finally:
        dev.shutdown()


if __name__ == "__main__":
    main()
