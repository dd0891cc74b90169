# Stand-in for MicroPython's `machine` module on the unix port, only for the
# hal test (tests/firmware/test_firmware_app.py): real class names and
# constructor signatures, backed by the fakes.
from fake_io import FakeADC, FakePin, FakePWM
from fake_i2c import FakeI2C, Lsm6dsoModel
from fake_clock import FakeClock

CLOCK = FakeClock()


class Pin(FakePin):
    def __init__(self, ident, mode=-1, pull=-1, value=1):
        FakePin.__init__(self, ident, mode, pull, value)


class I2C(FakeI2C):
    def __init__(self, ident, scl=None, sda=None, freq=400000):
        FakeI2C.__init__(self, CLOCK)
        self.add(Lsm6dsoModel(0x6A))


class PWM(FakePWM):
    def __init__(self, pin, freq=200, duty_u16=0):
        FakePWM.__init__(self, pin, freq, duty_u16, CLOCK)


class ADC(FakeADC):
    ATTN_11DB = 3

    def __init__(self, pin):
        FakeADC.__init__(self, pin)
        self.attn = None

    def atten(self, a):
        self.attn = a


PWRON_RESET = 1
WDT_RESET = 3
resets = []


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


def reset():
    resets.append(1)


def reset_cause():
    return PWRON_RESET
