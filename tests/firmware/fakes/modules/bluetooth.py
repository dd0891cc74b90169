# Stand-in for MicroPython's `bluetooth` module, only for the hal test.
from fake_bluetooth import BLE as _BLE, UUID  # noqa: F401

_radio = None


def BLE():
    global _radio
    if _radio is None:
        _radio = _BLE()
    return _radio
