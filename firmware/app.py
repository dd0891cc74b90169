# The asyncio side: runs a Device's work as tasks. A task that raises is
# logged, counted (device.task_errors) and restarted after a short pause:
# never a silent hang. The motor is switched off when the app stops.

import asyncio

IMU_INTERVAL_MS = 20
LINK_INTERVAL_MS = 10
HOUSEKEEPING_INTERVAL_MS = 100
RESTART_DELAY_MS = 200


class App:
    def __init__(self, device, log=None):
        self.device = device
        self.log = log or device.log
        self.tasks = []

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
            d.poll_imu()
            await asyncio.sleep_ms(IMU_INTERVAL_MS)

    async def _links(self):
        d = self.device
        while True:
            d.pump_links()
            await asyncio.sleep_ms(LINK_INTERVAL_MS)

    async def _housekeeping(self):
        d = self.device
        while True:
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
