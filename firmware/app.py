# The asyncio side: runs a Device's work as tasks. A task that raises is
# logged, counted (device.task_errors) and restarted after a short pause:
# never a silent hang. The motor is switched off when the app stops.
# Watchdog: every loop notes when it last came round (`beats`); the watchdog
# task feeds the hardware watchdog (machine.WDT, from main.py) only while
# each of them came round within STALE_MS. A task stuck in an await, or code
# that blocks the event loop, stops the feeding and the board resets.

import asyncio

LINK_INTERVAL_MS = 10
HOUSEKEEPING_INTERVAL_MS = 100
RESTART_DELAY_MS = 200
WDT_FEED_MS = 1000
STALE_MS = 3000
WATCHED = ("imu", "links", "housekeeping")


class App:
    def __init__(self, device, log=None, watchdog=None):
        self.device = device
        self.log = log or device.log
        self.tasks = []
        self.watchdog = watchdog
        self.beats = {}  # loop name -> device ms when it last came round
        self.feeds = 0
        self.starved = 0  # watchdog periods not fed (a loop stale)

    def _beat(self, name):
        self.beats[name] = self.device.clock.now_ms()

    async def _watchdog(self):
        clock = self.device.clock
        while True:
            now = clock.now_ms()
            fresh = True
            for name in WATCHED:
                t = self.beats.get(name)
                if t is None or now - t > STALE_MS:
                    fresh = False
            if fresh:
                self.watchdog.feed()
                self.feeds += 1
            else:
                if not self.starved:
                    self.log("watchdog not fed: a task is stuck (%r)" % (self.beats,))
                self.starved += 1
            await asyncio.sleep_ms(WDT_FEED_MS)

    async def _supervise(self, name, fn):
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a task must never die silently
                self.device.task_errors += 1
                self.log("task %s failed: %r; restarting" % (name, e))
                await asyncio.sleep_ms(RESTART_DELAY_MS)

    async def _imu(self):
        d = self.device
        while True:
            self._beat("imu")
            n = d.poll_imu()
            # read again as the next sample is due (device.READ_EARLY_US)
            await asyncio.sleep_ms(d.next_read_ms(n))

    async def _links(self):
        d = self.device
        while True:
            self._beat("links")
            d.pump_links()
            await asyncio.sleep_ms(LINK_INTERVAL_MS)

    async def _housekeeping(self):
        d = self.device
        while True:
            self._beat("housekeeping")
            d.housekeeping()
            await asyncio.sleep_ms(HOUSEKEEPING_INTERVAL_MS)

    async def run(self, duration_ms=None):
        """Run until cancelled (board) or for duration_ms (tests)."""
        d = self.device
        self.tasks = [
            asyncio.create_task(self._supervise("imu", self._imu)),
            asyncio.create_task(self._supervise("links", self._links)),
            asyncio.create_task(self._supervise("haptics", d.haptics.run)),
            asyncio.create_task(self._supervise("housekeeping", self._housekeeping)),
        ]
        if self.watchdog is not None:
            # not supervised: if it dies, nothing feeds the watchdog and the board resets
            self.tasks.append(asyncio.create_task(self._watchdog()))
        try:
            if duration_ms is None:
                while True:
                    await asyncio.sleep_ms(1000)
            else:
                await asyncio.sleep_ms(duration_ms)
        finally:
            for t in self.tasks:
                t.cancel()
            await asyncio.sleep_ms(0)
            d.shutdown()
