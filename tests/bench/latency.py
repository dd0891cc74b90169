"""Closed-loop alert latency over the emulated BLE link, and host cost per frame.

``python -c "from tests.bench import latency; print(latency.run())"``
(or as a ``python -m tests.bench`` section once listed in SECTIONS).

* **Alert latency**: the twin (emulated wearable) notifies the simulated
  session's frames over the emulated radio with 15 ms connection-interval
  pacing (one PDU per direction per connection event: the slowest a real
  controller is); the host runs :class:`spinemon.io.ble.BleTransport` +
  :class:`spinemon.core.pipeline.Pipeline` + :func:`spinemon.app.session.run_live`.
  Per alert: from the moment the twin notified the frame that carries the
  confirming sample (``Event.seq_alert``) to the moment the HAPTIC command
  arrived at the twin; both on the twin's clock (``time.monotonic``). It
  includes the link both ways, bleak/Bumble, decode, fusion, detection and
  the GATT write; it does not include the device's own sampling and
  framing delay or the motor's spin-up.
* **Host cost per frame**: ``Pipeline.on_frame`` (decode + fusion +
  detection + alert) timed frame by frame over the demo workout, offline.
"""

from __future__ import annotations

import asyncio
import platform
import time

import numpy as np

import spinemon_protocol as proto
from spinemon.io import sim
from spinemon.core.calibration import CalibrationSettings
from spinemon.core.pipeline import Pipeline, PipelineSettings

INTERVAL_S = 0.015


def _pct(x: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(x), q)) if x else float("nan")


async def _closed_loop(session: sim.SimSession, exercise: str, speed: float, pdus_per_event: int) -> dict:
    from spinemon.io.ble import BleOptions, BleTransport
    from tests.support.emulated_ble import BumbleClient, EmulatedRadio, LinkFaults, TwinPeripheral
    from spinemon.io.device_link import LinkSetup
    from spinemon.app.session import run_live

    async with EmulatedRadio(LinkFaults(connection_interval_s=INTERVAL_S, pdus_per_event=pdus_per_event)) as radio:
        twin = await TwinPeripheral.create(radio)
        pipeline = Pipeline(PipelineSettings(exercise=exercise, calibration=CalibrationSettings(rom=False)))
        transport = BleTransport(twin.address, options=BleOptions(connect_timeout_s=5.0), backend=BumbleClient, radio=radio)
        transport.on_connected = LinkSetup(pipeline)
        await transport.connect()
        sent: list[tuple[int, int, float]] = []  # (first seq, count, twin time notified)

        async def feed() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            rel = session.frame_times - session.frame_times[0]
            for i, frame in enumerate(session.frames):
                delay = start + rel[i] / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                d = proto.decode(frame)
                t = time.monotonic()
                if await twin.notify_stream(frame):
                    sent.append((d.seq, d.count, t))
            await asyncio.sleep(0.5)
            await transport.close()

        task = asyncio.create_task(feed())
        result = await run_live(transport, pipeline)
        await task
        arrived = {h.counter: h.arrived_s for h in twin.responder.haptics}
        latencies = []
        for alert in result.alerts:
            seq = alert.event.seq_alert
            t_sent = next((t for s, n, t in sent if s <= seq < s + n), None)
            if t_sent is not None and alert.counter in arrived:
                latencies.append(arrived[alert.counter] - t_sent)
        return {
            "alerts": len(result.alerts),
            "measured": len(latencies),
            "latency_ms": [round(x * 1e3, 3) for x in latencies],
            "median_ms": round(_pct(latencies, 50) * 1e3, 2),
            "p95_ms": round(_pct(latencies, 95) * 1e3, 2),
            "max_ms": round(max(latencies) * 1e3, 2) if latencies else float("nan"),
            "lost_samples": result.stats["lost_samples"],
        }


def host_cost(quick: bool = False) -> dict:
    """Pipeline.on_frame wall time per frame over the demo workout (offline)."""
    workout = sim.demo_workout()[:1] if quick else sim.demo_workout()
    session = sim.simulate(workout, seed=11)
    pipeline = Pipeline(PipelineSettings())
    times = []
    for frame, t in zip(session.frames, session.frame_times):
        t0 = time.perf_counter()
        pipeline.on_frame(frame, float(t))
        times.append(time.perf_counter() - t0)
    per_sample = sum(times) / session.n_samples
    return {
        "frames": len(times),
        "samples_per_frame": session.settings.samples_per_frame,
        "median_us": round(_pct(times, 50) * 1e6, 1),
        "p99_us": round(_pct(times, 99) * 1e6, 1),
        "max_us": round(max(times) * 1e6, 1),
        "mean_per_sample_us": round(per_sample * 1e6, 2),
    }


def run(report=None, quick: bool = False) -> dict:
    """Both measurements; adds a section to ``report`` (a
    :class:`tests.bench.report.Report`) if given. Returns the numbers."""
    reps = 4 if quick else 30
    speed = 4.0 if quick else 2.0
    pdus = 1
    sets = [sim.SetSpec("deadlift", reps, {r: "rounding" for r in range(1, reps + 1)}, rest_s=1.0)]
    session = sim.simulate(sets, seed=21, rom=False)
    loop = asyncio.run(asyncio.wait_for(_closed_loop(session, "deadlift", speed, pdus), 60.0 + session.duration_s / speed))
    cost = host_cost(quick)
    data = {
        "platform": f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}",
        "link": {"connection_interval_ms": INTERVAL_S * 1e3, "pdus_per_event": pdus, "playback_speed": speed},
        "closed_loop": loop,
        "host_cost": cost,
    }
    if report is not None:
        body = (
            "Closed-loop alert latency over the emulated BLE link (Bumble, bleak backend over it), "
            f"{INTERVAL_S * 1e3:.0f} ms connection interval, {pdus} PDU per direction per event, "
            f"session played at {speed:g}x real time; from the twin notifying the frame with the confirming "
            "sample to the HAPTIC command arriving at the twin (twin clock).\n\n"
            "| alerts | median | p95 | max |\n|---|---|---|---|\n"
            f"| {loop['measured']} | {loop['median_ms']} ms | {loop['p95_ms']} ms | {loop['max_ms']} ms |\n\n"
            f"Host processing per received frame (`Pipeline.on_frame`: decode + fusion + detection, "
            f"{cost['samples_per_frame']} samples/frame, {cost['frames']} frames of the demo workout): "
            f"median {cost['median_us']} us, p99 {cost['p99_us']} us, max {cost['max_us']} us.\n\n"
            f"Reproduce: `python -c \"from tests.bench import latency; print(latency.run())\"` ({data['platform']})."
        )
        report.section("Alert latency (emulated BLE)", body)
        report.json("latency", data)
    return data


if __name__ == "__main__":
    import json

    print(json.dumps({k: v for k, v in run().items()}, indent=2))
