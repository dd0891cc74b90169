"""Measure the emulated link: connect + discovery time, notification
throughput and per-notification latency (twin notify -> bleak callback).

Run ``python -m tests.support.emulated_ble.bench``. Figures are wall-clock on the
machine at hand; they describe the emulator's overhead, not a real radio.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import bleak

import spinemon_protocol as P

from .backend import BumbleClient
from .link import EmulatedRadio, LinkFaults
from .twin import TwinPeripheral


def _p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


async def measure(n_throughput: int = 2000, n_latency: int = 200, paced_interval_s: float = 0.015, n_paced: int = 100) -> dict:
    """Return a dict of measured figures (seconds, frames/s, bytes/s)."""
    out: dict = {}
    async with EmulatedRadio() as radio:
        twin = await TwinPeripheral.create(radio)
        t0 = time.perf_counter()
        client = bleak.BleakClient(twin.address, backend=BumbleClient, radio=radio, timeout=10.0)
        await client.connect()
        out["connect_and_discover_s"] = time.perf_counter() - t0

        loop = asyncio.get_running_loop()
        rx_times: list[float] = []
        done = asyncio.Event()
        target = [0]

        def on_frame(_c, _d: bytearray) -> None:
            rx_times.append(loop.time())
            if len(rx_times) >= target[0]:
                done.set()

        await client.start_notify(P.STREAM_CHAR_UUID, on_frame)
        await twin.wait_subscribed("stream")
        frame = bytes(range(244))

        # throughput: back to back, unpaced
        rx_times.clear()
        done.clear()
        target[0] = n_throughput
        t_start = loop.time()
        for _ in range(n_throughput):
            await twin.notify_stream(frame)
        await asyncio.wait_for(done.wait(), 60)
        dt = rx_times[-1] - t_start
        out["throughput_frames_per_s"] = n_throughput / dt
        out["throughput_bytes_per_s"] = n_throughput * len(frame) / dt

        async def latencies(n: int, spacing_s: float) -> list[float]:
            rx_times.clear()
            done.clear()
            target[0] = n
            sent = []
            for _ in range(n):
                sent.append(loop.time())
                await twin.notify_stream(frame)
                await asyncio.sleep(spacing_s)
            await asyncio.wait_for(done.wait(), 60)
            return [r - s for s, r in zip(sent, rx_times)]

        lat = await latencies(n_latency, 0.002)
        out["latency_unpaced_median_s"] = statistics.median(lat)
        out["latency_unpaced_p95_s"] = _p95(lat)

        radio.set_faults(LinkFaults(connection_interval_s=paced_interval_s))
        lat = await latencies(n_paced, paced_interval_s * 1.37)
        out["paced_interval_s"] = paced_interval_s
        out["latency_paced_median_s"] = statistics.median(lat)
        out["latency_paced_p95_s"] = _p95(lat)
        await client.disconnect()
    return out


def main() -> None:
    for k, v in asyncio.run(measure()).items():
        print("%-28s %.6g" % (k, v))


if __name__ == "__main__":
    main()
