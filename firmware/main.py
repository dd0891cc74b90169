# Board entry point. Builds the real hardware through hal and runs the app.
# Tests import build_device() / boot_device() and run them against fakes
# instead, or main(hw) with a fake hardware bundle.
#
# Faults (docs/reliability.md, "Hardware faults"): a machine.WDT (through
# hal) is started first and fed only while every task of the app makes
# progress (app.App), so a hung firmware resets; an error while booting (an
# I2C glitch while probing or configuring the IMUs, a flash error) is logged
# and the boot is tried again, BOOT_TRIES times with a growing pause; if it
# still fails the board resets (machine.reset) and starts over.

import asyncio

import imu
from app import App
from config_store import ConfigStore
from device import Device

BOOT_TRIES = 5
BOOT_RETRY_MS = 200  # pause after the n-th failed attempt: n * this
PROBE_TRIES = 3  # an IMU address is asked this often before it counts as empty
WDT_TIMEOUT_MS = 8000  # the slowest boot step (flash + BLE start) takes ~2 s


def probe(i2c, address, log=None, tries=PROBE_TRIES):
    """imu.probe, asked again on silence: one glitch while probing must not
    leave a two-IMU wearable running on one sensor until the next boot."""
    for k in range(tries):
        d = imu.probe(i2c, address, log if k == tries - 1 else None)
        if d is not None:
            return d
    return None


def build_device(hw, store=None, link=None, log=None):
    """A Device from a hardware bundle (hal.board() on the ESP32, fakes in
    tests): clock, i2c, addresses, pwm, adc, button, radio, uuid, port, mac."""
    upper = probe(hw.i2c, hw.addresses[0], log)
    lower = probe(hw.i2c, hw.addresses[1], log)
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


def boot_device(hw, store, link=None, log=None, sleep_ms=None, watchdog=None, tries=BOOT_TRIES):
    """build_device + boot, tried `tries` times; raises the last error when
    every attempt failed. The device reports the failed attempts in STATUS
    (`faults`: the boot retries, and whether the watchdog caused the last reset)."""
    last = None
    for attempt in range(tries):
        if watchdog is not None:
            watchdog.feed()
        dev = None
        try:
            dev = build_device(hw, store, link=link, log=log)
            dev.boot_retries = attempt
            dev.reset_cause = getattr(hw, "reset_cause", 0)
            dev.boot()
            return dev
        except Exception as e:  # any failure at boot is retried, never a dead wearable
            last = e
            if log:
                log("boot attempt %d failed: %r" % (attempt + 1, e))
            if dev is not None:
                try:
                    dev.shutdown()
                except Exception:
                    pass
            if sleep_ms is not None and attempt + 1 < tries:
                sleep_ms(BOOT_RETRY_MS * (attempt + 1))
    raise last


def main(hw=None, store=None, duration_ms=None):
    """The board's program. `hw`, `store`, `duration_ms`: tests only."""
    if hw is None:
        import hal.board

        hw = hal.board.board()
    log = getattr(hw, "log", None)
    wdt = hw.watchdog(WDT_TIMEOUT_MS) if getattr(hw, "watchdog", None) is not None else None
    try:
        dev = boot_device(hw, store if store is not None else ConfigStore(), log=log, sleep_ms=getattr(hw, "sleep_ms", None), watchdog=wdt)
    except Exception as e:
        if log:
            log("boot failed %d times (%r): resetting" % (BOOT_TRIES, e))
        if getattr(hw, "reset", None) is not None:
            hw.reset()  # start over from scratch; does not return on the board
        return None
    try:
        asyncio.run(App(dev, watchdog=wdt).run(duration_ms))
    finally:
        dev.shutdown()
    return dev


if __name__ == "__main__":
    main()
