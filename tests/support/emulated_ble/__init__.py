"""An emulated BLE radio for tests: a real Bluetooth stack (Google's Bumble)
in software, a bleak backend over it, and a "twin" wearable peripheral.

Production code uses bleak's default backend; tests pass ours::

    import asyncio, bleak
    from tests.support.emulated_ble import EmulatedRadio, TwinPeripheral, BumbleClient, BumbleScanner

    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            async with bleak.BleakClient(twin.address, backend=BumbleClient, radio=radio) as client:
                ...

Modules: :mod:`.link` (the radio, the virtual link and its fault hooks),
:mod:`.backend` (bleak scanner and client backends), :mod:`.twin` (the
emulated wearable), :mod:`.commands` (its default COMMAND handling),
:mod:`.bench` (`python -m tests.support.emulated_ble.bench`: connect time,
throughput, latency).
"""

from .backend import (
    BumbleClient,
    BumbleScanner,
    EmulatedBleError,
    EmulatedConnectTimeout,
    EmulatedGATTError,
    get_default_radio,
    set_default_radio,
)
from .commands import CommandRecord, CommandResponder, HapticRecord
from .link import EmulatedRadio, EmulatedRadioError, LinkFaults, LinkStats
from .twin import TwinInfo, TwinPeripheral, timed_frames

__all__ = [
    "EmulatedRadio",
    "EmulatedRadioError",
    "LinkFaults",
    "LinkStats",
    "BumbleScanner",
    "BumbleClient",
    "EmulatedBleError",
    "EmulatedConnectTimeout",
    "EmulatedGATTError",
    "set_default_radio",
    "get_default_radio",
    "TwinPeripheral",
    "TwinInfo",
    "timed_frames",
    "CommandResponder",
    "CommandRecord",
    "HapticRecord",
]
