# The real hardware bundle for main.py. Imports machine and bluetooth.

import sys
import time

import bluetooth
from machine import ADC, I2C, PWM, WDT, Pin, reset, reset_cause

from clock import Clock
from hal import pins


class Hardware:
    pass


def _log(msg):
    # stdout may be the serial link: logs go to stderr
    try:
        sys.stderr.write(msg + "\n")
    except Exception:
        pass


def board():
    p = pins.ESP32S3 if "S3" in sys.implementation._machine else pins.ESP32
    hw = Hardware()
    hw.log = _log
    hw.clock = Clock(time.ticks_us, time.ticks_diff)
    hw.i2c = I2C(p["i2c_id"], scl=Pin(p["scl"]), sda=Pin(p["sda"]), freq=pins.I2C_FREQ)
    found = hw.i2c.scan()
    hw.addresses = pins.MPU_ADDRESSES if pins.MPU_ADDRESSES[0] in found or pins.MPU_ADDRESSES[1] in found else pins.IMU_ADDRESSES
    hw.pwm = PWM(Pin(p["motor"], Pin.OUT), freq=pins.MOTOR_PWM_FREQ, duty_u16=0)
    hw.adc = ADC(Pin(p["battery"]))
    try:
        hw.adc.atten(ADC.ATTN_11DB)
    except AttributeError:
        pass
    hw.button = Pin(p["button"], Pin.IN, Pin.PULL_UP)
    hw.radio = bluetooth.BLE()
    hw.radio.active(True)
    hw.uuid = bluetooth.UUID
    hw.mac = bytes(hw.radio.config("mac")[1])
    # link selection at boot: hold the button while resetting -> serial
    hw.link = "serial" if hw.button.value() == 0 else None
    from hal.stdio import StdioPort

    hw.port = StdioPort()
    # faults (main.py): the watchdog, a full reset after failed boots, and
    # why we last reset (machine.WDT_RESET: STATUS faults FAULT_WATCHDOG_RESET)
    hw.watchdog = lambda timeout_ms: WDT(timeout=timeout_ms)
    hw.reset = reset
    hw.reset_cause = reset_cause()
    hw.sleep_ms = time.sleep_ms
    return hw
