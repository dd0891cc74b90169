"""Closed-loop alert latency through the whole chain, measured on the real firmware.

The chain is the one ``tests/system/test_full_chain.py`` drives: the firmware under
MicroPython (fake IMUs: the wearer bends forward past the limit again and
again) -> bluetooth bridge -> twin peripheral on the emulated radio (Bumble,
15 ms connection interval) -> bleak -> host pipeline -> HAPTIC command
written back -> the firmware's motor. Per alert, from the device timestamp of
the first sample past the threshold to the moment the firmware starts the
motor (both on the firmware's clock), broken down into detection hold,
device batching, link, host processing, command write and firmware.

Beside the latency it counts false alerts (:mod:`tests.bench.false_alerts`):
on the simulated sessions and on the real gait-l5 walks, for the host's
detector with and without the quick confirmation and for the wearable's
guard armed with the host's limits during sets.

This section runs that test with more bends (``SPINEMON_FULL_CHAIN_BENDS``)
and reads the figures it records (pytest ``record_property`` in a JUnit XML
file), so the measurement code exists once. It needs the repository checkout
(tests/ and firmware/) and the MicroPython unix port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from spinemon.io import sim

ROOT = Path(__file__).resolve().parents[2]
BUZZ_P95_TARGET_MS = 30.0  # issue 27: first sample past the limit -> motor on
TEST = ROOT / "tests" / "system" / "test_full_chain.py"
STAGES = (
    ("total", "first sample past the limit -> motor on (every fault)"),
    ("detect_hold", "host confirmation (quick rule: 3 deg deeper than the first sample past, >= 2 samples)"),
    ("guard_lag", "device-buzzed: the guard's first sample past the limit, after the host's (negative: before)"),
    ("guard_hold", "device-buzzed: the guard's confirmation (its first sample past -> the sample it confirmed on)"),
    ("read_to_motor", "device-buzzed: the IMU takes the confirming sample -> the firmware reads it, the guard fires, motor on"),
    ("device_batch", "host-buzzed only: device batching (samples per frame, IMU poll, notify pacing)"),
    ("link_up", "host-buzzed only: link, device -> host"),
    ("host", "host-buzzed only: host processing (decode, fusion, detection)"),
    ("command_write", "host-buzzed only: command write, host -> device"),
    ("firmware", "host-buzzed only: firmware (command -> motor)"),
    ("confirm_to_motor", "host-buzzed only: alert confirmed -> motor on"),
)


def measure(bends: int, timeout_s: float = 600.0) -> dict:
    """Run the full-chain test with ``bends`` alerts; return the recorded figures (ms)."""
    if not TEST.exists():
        raise RuntimeError(f"{TEST} not found: run the bench from a repository checkout")
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "fullchain.xml"
        env = {**os.environ, "SPINEMON_FULL_CHAIN_BENDS": str(bends)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEST), "-k", "forward_bend", f"--junitxml={xml}", "-o", "junit_family=xunit1"]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not xml.exists():
            raise RuntimeError("the full-chain run failed:\n" + proc.stdout[-3000:] + proc.stderr[-2000:])
        props = {p.get("name"): float(p.get("value")) for p in ET.parse(xml).iter("property")}
    return {"bends": bends, **props}


def run(report, quick: bool = False) -> dict:
    from tests.bench import false_alerts
    from tests.bench.realdata import COLUMNS, EXERCISES, GAIT_DIR

    from tests.bench import readcost

    bends = 8 if quick else 30
    data = measure(bends)
    cost = readcost.measure(500 if quick else 2000)
    data["read_cost"] = cost
    p95 = data.get("latency_total_p95_ms")
    if p95 is not None:
        data["buzz_p95_ratio_to_target"] = p95 / BUZZ_P95_TARGET_MS
    print(f"fullchain: {int(data.get('faults', 0))} faults, {int(data.get('buzzed_by_device', 0))} buzzed by the device; counting false alerts", flush=True)
    sim_counts = false_alerts.simulated(quick)
    gait_counts = false_alerts.gait(GAIT_DIR, EXERCISES, COLUMNS, quick)
    data["false_alerts"] = {"simulated": sim_counts, "gait_l5": gait_counts}
    rows = ["| stage | median (ms) | p95 (ms) | faults |", "|---|---:|---:|---:|"]
    for key, text in STAGES:
        med, q95 = data.get(f"latency_{key}_median_ms"), data.get(f"latency_{key}_p95_ms")
        if med is None:
            continue
        rows.append(f"| {text} | {med:.1f} | {q95:.1f} | {int(data.get(f'latency_{key}_n', 0))} |")
    sim_reps = sim_counts["quick"]["faulty_reps"]
    fa = ["| who buzzes | simulated sessions: false alerts | simulated: faulty reps missed (of %d) | gait-l5 walks: false alerts |" % sim_reps, "|---|---:|---:|---:|"]
    names = {"hold_only": "host, 80 ms hold only (before)", "quick": "host, quick confirmation (now)", "device": "the wearable's guard, armed with the host's limits in sets (now)"}
    for key in ("hold_only", "quick", "device"):
        g = "-" if gait_counts is None else str(gait_counts[key])
        fa.append(f"| {names[key]} | {sim_counts[key]['false']} | {sim_counts[key]['missed']} | {g} |")
    gait_text = (
        "gait-l5 not found (../shared/data/gait-l5): walks not counted"
        if gait_counts is None
        else f"gait-l5: {gait_counts['trials']} trials x {len(gait_counts['exercises'])} exercises ({', '.join(gait_counts['exercises'])}), one sensor, every alert false"
    )
    body = (
        f"Real firmware under MicroPython (fake IMUs, {bends} forward bends past the limit, one every 2.35 s) -> emulated BLE "
        "(Bumble, 15 ms connection interval, paired and encrypted) -> bleak -> host pipeline -> the firmware's motor. "
        "The host arms the wearable's guard with its neutral and limits while the set is on (SET_NEUTRAL, SET_GUARD "
        "GUARD_ALWAYS, as `spinemon live` does); the guard buzzes on its own estimate once the crossing is confirmed "
        "(the host's rule), flags the frame (SF_GUARD_BUZZED), and the host's confirmed alert for that fault is recorded "
        "without a second buzz (a HAPTIC already on its way is acknowledged as skipped). Per fault, from the device "
        "timestamp of the first sample past the limit (the host's estimate) to the firmware starting the motor, both on the "
        "firmware's clock. Measured on the unix port with fake IMUs: ESP32 timing will differ (slower Python, real radio).\n\n"
        + "\n".join(rows)
        + (
            f"\n\nTarget (issue 27): p95 <= {BUZZ_P95_TARGET_MS:.0f} ms: measured {p95:.1f} ms, "
            f"**{p95 / BUZZ_P95_TARGET_MS:.2f}x** the target."
            if p95 is not None
            else ""
        )
        + "\n\nThe IMU FIFOs are read as each sample is due (firmware/device.py `next_read_ms`), no longer every 20 ms, "
        "and since firmware 0.5 the guard measures with the host's own gravity filter (firmware/guard.py), so its first "
        "sample past the limit is the host's (the guard-lag row; the device-buzzed rows come from the device angle each "
        "sample carries, confirmed by the guard's rule). "
        + readcost.text(cost)
        + f"\n\nBuzzed by the device's guard: {int(data.get('buzzed_by_device', 0))} of {int(data.get('faults', 0))} faults "
        "(the host-path rows appear only when the host buzzed some).\n\n"
        "False alerts beside it (nothing tuned on these): simulated sessions per exercise "
        f"({', '.join(sim.EXERCISES)}; calibration, 2 sets x 6 reps with the exercise's first fault on rep 4 of set 1, "
        f"walking between sets; seeds {'1' if quick else '1-3'}; no set labels), an alert outside every faulty rep "
        f"(+-{false_alerts.FAULT_MARGIN_S} s) counted false; {gait_text}. The guard row runs firmware/guard.py under CPython "
        "on the same raw samples, armed whenever the host watches the limits.\n\n"
        + "\n".join(fa)
        + "\n\nReproduce: `SPINEMON_FULL_CHAIN_BENDS=30 .venv/bin/python -m tests.bench fullchain` "
        "(or `SPINEMON_FULL_CHAIN_BENDS=30 .venv/bin/pytest -s -n 0 tests/system/test_full_chain.py -k forward_bend` for the latency alone)."
    )
    report.section("Closed-loop alert latency: firmware over emulated BLE", body)
    report.json("fullchain", data)
    return data
