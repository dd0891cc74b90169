# A fake clock with MicroPython's ticks API. Ticks wrap at 2**30 like the
# ESP32 port, and start close to the wrap so the firmware's unwrapping is
# exercised in every test. Tests move time with advance_us()/advance_ms().

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
TICKS_HALF = TICKS_PERIOD // 2


class FakeClock:
    def __init__(self, start_us=TICKS_PERIOD - 3000000):
        self.t_us = 0  # unwrapped, since the fake was made
        self.offset = start_us

    # -- MicroPython time-module API --
    def ticks_us(self):
        return (self.t_us + self.offset) & TICKS_MAX

    def ticks_ms(self):
        return ((self.t_us + self.offset) // 1000) & TICKS_MAX

    def ticks_diff(self, a, b):
        return ((a - b + TICKS_HALF) & TICKS_MAX) - TICKS_HALF

    def ticks_add(self, a, d):
        return (a + d) & TICKS_MAX

    def sleep_ms(self, ms):
        self.t_us += int(ms) * 1000

    def sleep_us(self, us):
        self.t_us += int(us)

    # -- test control --
    def advance_us(self, us):
        self.t_us += int(us)

    def advance_ms(self, ms):
        self.t_us += int(ms * 1000)

    def now_s(self):
        return self.t_us / 1000000.0


class RealTimeClock:
    """Follows the interpreter's real clock (MicroPython only): for tests that
    run the asyncio app, whose sleeps take real time. `t_us` is unwrapped
    time since creation, like FakeClock.t_us."""

    def __init__(self):
        import time

        self._time = time
        self._t0 = time.ticks_us()

    @property
    def t_us(self):
        return self._time.ticks_diff(self._time.ticks_us(), self._t0)

    def ticks_us(self):
        return self._time.ticks_us()

    def ticks_diff(self, a, b):
        return self._time.ticks_diff(a, b)
