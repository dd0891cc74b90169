# Fakes of machine.Pin, machine.PWM, machine.ADC and a byte-stream port.
# PWM records duty changes with the fake clock's time: the last
# `history_max` of them (a long run must not grow without bound; older ones
# are counted in `history_dropped`).


class FakePin:
    IN = 0
    OUT = 1
    PULL_UP = 1

    def __init__(self, ident, mode=-1, pull=-1, value=1):
        self.id = ident
        self._value = value

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0
        return None

    def __call__(self, v=None):
        return self.value(v)


class FakePWM:
    HISTORY_MAX = 512

    def __init__(self, pin, freq=200, duty_u16=0, clock=None, history_max=None):
        self.pin = pin
        self._freq = freq
        self._duty = duty_u16
        self.clock = clock
        self.history_max = self.HISTORY_MAX if history_max is None else history_max
        self.history = [(self._now(), duty_u16)] if self.history_max else []  # (t_us unwrapped, duty)
        self.history_dropped = 0
        self.changes = 0
        self.deinited = False

    def _now(self):
        return self.clock.t_us if self.clock is not None else 0

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        d = int(d)
        if d < 0 or d > 65535:
            raise ValueError("duty out of range")
        if d != self._duty:
            self.changes += 1
            if self.history_max:
                self.history.append((self._now(), d))
                if len(self.history) > self.history_max:
                    self.history.pop(0)
                    self.history_dropped += 1
        self._duty = d

    def deinit(self):
        self.deinited = True
        self._duty = 0

    def on_intervals(self):
        """[(t_on_us, t_off_us or None, duty)] from the history kept."""
        out = []
        start = None
        duty = 0
        for t, d in self.history:
            if start is not None and d != duty:
                out.append((start, t, duty))
                start = None
            if d and start is None:
                start, duty = t, d
        if start is not None:
            out.append((start, None, duty))
        return out


class FakeADC:
    def __init__(self, pin=None, uv=2000000):
        self.uv = uv

    def read_uv(self):
        return self.uv

    def read_u16(self):
        return min(65535, self.uv * 65535 // 3300000)


class FakePort:
    """A byte stream like machine.UART with timeout=0: read() returns the
    bytes waiting or None; write() appends to `tx`."""

    def __init__(self):
        self.rx = bytearray()
        self.tx = bytearray()

    def read(self, n=-1):
        if not self.rx:
            return None
        if n is None or n < 0 or n >= len(self.rx):
            data = bytes(self.rx)
            self.rx = bytearray()
        else:
            data = bytes(self.rx[:n])
            self.rx = self.rx[n:]
        return data

    def write(self, data):
        self.tx.extend(data)
        return len(data)

    def feed(self, data):
        self.rx.extend(data)

    def take_tx(self):
        data = bytes(self.tx)
        self.tx = bytearray()
        return data


class FakeWDT:
    """machine.WDT(timeout=ms) on a fake or real-time clock (`t_us`). The
    chip resets the board when `timeout_ms` pass without feed(); the fake
    cannot interrupt the interpreter, so it records it instead: `fired` is
    set at the first feed() (or check()) that comes too late, `longest_ms`
    is the longest gap between feeds seen."""

    def __init__(self, clock, timeout_ms):
        self.clock = clock
        self.timeout_ms = timeout_ms
        self.started_us = clock.t_us
        self.last_us = clock.t_us
        self.feeds = 0
        self.fired = False
        self.longest_ms = 0

    def check(self):
        gap = (self.clock.t_us - self.last_us) // 1000
        if gap > self.longest_ms:
            self.longest_ms = gap
        if gap > self.timeout_ms:
            self.fired = True
        return self.fired

    def feed(self):
        self.check()
        self.last_us = self.clock.t_us
        self.feeds += 1
