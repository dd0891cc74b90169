# Monotonic device clock in microseconds.
#
# MicroPython's ticks_us() wraps (2**30 on the ESP32), so the device keeps an
# unwrapped counter by accumulating ticks_diff() between calls. It must be read
# at least every few minutes (every loop does). On the wire device time is the
# low 32 bits of this counter (spinemon_protocol.wrap32).


class Clock:
    """Wraps a ticks source: ticks_us() and ticks_diff(a, b) (time module on
    the board, a fake in tests). now_us()/now_ms() never go backwards."""

    def __init__(self, ticks_us, ticks_diff):
        self._ticks_us = ticks_us
        self._ticks_diff = ticks_diff
        self._last = ticks_us()
        self._us = 0

    def now_us(self):
        t = self._ticks_us()
        d = self._ticks_diff(t, self._last)
        if d > 0:
            self._us += d
        self._last = t
        return self._us

    def now_ms(self):
        return self.now_us() // 1000
