"""``spinemon scan``: list the wearables in BLE range."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from spinemon.app import argtypes

    parser.add_argument(
        "--timeout",
        type=argtypes.scan_timeout,
        default=5.0,
        help="seconds to scan, above 0 .. 600 (default 5)",
    )
    parser.add_argument(
        "--battery", action="store_true", help="connect to each device briefly to read its battery level"
    )


def main(ns: Any, stream: TextIO | None = None) -> int:
    """``spinemon scan [--timeout S] [--battery]``: list wearables in range."""
    from spinemon.io.ble import scan

    out = stream if stream is not None else sys.stdout
    found = asyncio.run(
        scan(float(getattr(ns, "timeout", None) or 5.0), read_battery=bool(getattr(ns, "battery", False)))
    )
    if not found:
        out.write("no spinemon wearable found\n")
        return 0
    for d in found:
        batt = "?" if d.battery_pct is None else f"{d.battery_pct}%"
        rssi = "?" if d.rssi is None else f"{d.rssi} dBm"
        out.write(f"{d.address}  {d.name or '-':20s}  RSSI {rssi:>8s}  battery {batt}\n")
    return 0
