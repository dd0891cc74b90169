"""Closed-loop alert latency through the whole chain, measured on the real firmware.

The chain is the one ``tests/test_full_chain.py`` drives: the firmware under
MicroPython (fake IMUs: the wearer bends forward past the limit again and
again) -> bluetooth bridge -> twin peripheral on the emulated radio (Bumble,
15 ms connection interval) -> bleak -> host pipeline -> HAPTIC command
written back -> the firmware's motor. Per alert, from the device timestamp of
the first sample past the threshold to the moment the firmware starts the
motor (both on the firmware's clock), broken down into detection hold,
device batching, link, host processing, command write and firmware.

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

ROOT = Path(__file__).resolve().parents[3]
TEST = ROOT / "tests" / "test_full_chain.py"
STAGES = (
    ("total", "first sample past the limit -> motor on"),
    ("detect_hold", "detection hold (minimum duration + sample spacing)"),
    ("device_batch", "device batching (samples per frame, IMU poll, notify pacing)"),
    ("link_up", "link, device -> host"),
    ("host", "host processing (decode, fusion, detection)"),
    ("command_write", "command write, host -> device"),
    ("firmware", "firmware (command -> motor)"),
    ("confirm_to_motor", "alert confirmed -> motor on"),
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
    bends = 8 if quick else 30
    data = measure(bends)
    rows = ["| stage | median (ms) | p95 (ms) |", "|---|---:|---:|"]
    for key, text in STAGES:
        med, p95 = data.get(f"latency_{key}_median_ms"), data.get(f"latency_{key}_p95_ms")
        if med is None:
            continue
        rows.append(f"| {text} | {med:.1f} | {p95:.1f} |")
    body = (
        f"Real firmware under MicroPython (fake IMUs, {bends} forward bends past the limit) -> emulated BLE "
        "(Bumble, 15 ms connection interval, paired and encrypted) -> bleak -> host pipeline -> HAPTIC -> the firmware's motor. "
        "Per alert, from the device timestamp of the first sample past the threshold to the firmware starting the motor, "
        "both on the firmware's clock; host times mapped onto it with the bridge's clock offset. "
        "Measured on the unix port with fake IMUs: ESP32 timing will differ (slower Python, real radio).\n\n"
        + "\n".join(rows)
        + "\n\nThe detection hold (80 ms minimum duration) and the device's batching (8 samples per frame at 104 Hz) dominate; "
        "the link, the host and the firmware add a few ms each.\n\n"
        "Reproduce: `.venv/bin/python -m spinemon.bench fullchain` "
        "(or `SPINEMON_FULL_CHAIN_BENDS=30 .venv/bin/pytest -s tests/test_full_chain.py -k forward_bend`)."
    )
    report.section("Closed-loop alert latency: firmware over emulated BLE", body)
    report.json("fullchain", data)
    return data
