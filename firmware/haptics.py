# Vibration motor patterns, non-blocking. A pattern is `pulses` x (on_ms on,
# off_ms off) at `strength` (1..255 -> PWM duty). update(now_ms) sets the duty
# from the time alone, so a late call never stretches a pulse beyond its end.
# play() pre-empts the running pattern. run() is the asyncio task: it turns
# the motor off on cancellation or error, so the motor is never left on.

try:
    import asyncio
except ImportError:  # CPython tests that do not use run()
    asyncio = None


class Haptics:
    def __init__(self, pwm, clock):
        self.pwm = pwm
        self.clock = clock
        self.active = False
        self.pulses = 0
        self.on_ms = 0
        self.off_ms = 0
        self.duty = 0
        self.t_start = 0
        self.is_on = False
        self.patterns_played = 0
        self._duty_now = -1
        self._set(0)

    def _set(self, duty):
        if duty != self._duty_now:
            self.pwm.duty_u16(duty)
            self._duty_now = duty
        self.is_on = duty != 0

    def play(self, pulses, on_ms, off_ms, strength):
        """Start a pattern now (pre-empting any running one)."""
        self.pulses = pulses
        self.on_ms = on_ms
        self.off_ms = off_ms
        self.duty = strength * 257 if strength > 0 else 0
        if self.duty > 65535:
            self.duty = 65535
        self.t_start = self.clock.now_ms()
        self.active = pulses > 0 and on_ms > 0
        self.patterns_played += 1
        self.update()

    def stop(self):
        self.active = False
        self._duty_now = -1  # always write: the motor is off after stop()
        self._set(0)

    def update(self):
        """Set the motor from the clock; returns ms until the next edge (or
        None when idle)."""
        if not self.active:
            self._set(0)
            return None
        el = self.clock.now_ms() - self.t_start
        period = self.on_ms + self.off_ms
        i = el // period if period > 0 else 0
        if i >= self.pulses or el < 0:
            self.stop()
            return None
        ph = el - i * period
        if ph < self.on_ms:
            self._set(self.duty)
            return self.on_ms - ph
        self._set(0)
        return period - ph

    async def run(self, tick_ms=5):
        try:
            while True:
                nxt = self.update()
                await asyncio.sleep_ms(tick_ms if nxt is None or nxt > tick_ms else max(1, nxt))
        finally:
            self.stop()
