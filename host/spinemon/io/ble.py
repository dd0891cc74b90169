"""BLE transport (bleak): scan for wearables, connect, stream, command.

The GATT table is the protocol's (docs/protocol.md section 10): SAMPLES are
notified on the stream characteristic; COMMAND frames are written with
response to the command characteristic; STATUS is read from, and STATUS /
ACK / ERROR are notified on, the status characteristic.

bleak's ``backend=`` and any extra keyword arguments are passed through to
:class:`bleak.BleakScanner` / :class:`bleak.BleakClient` untouched:
production uses bleak's default backend for the platform; tests pass
``backend=BumbleScanner`` / ``BumbleClient`` with ``radio=...`` (the
emulated radio in :mod:`tests.support.emulated_ble`).

Reconnecting, the setup hook and command/ACK matching come from
:class:`spinemon.io.transport.LinkTransport`; this module only knows BLE.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import bleak
from bleak.exc import BleakError

import spinemon_protocol as proto
from spinemon.errors import ConfigError, DisconnectedError, TransportError
from spinemon.io.transport import LinkOptions, LinkTransport

if TYPE_CHECKING:
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import BaseBleakScanner

__all__ = ["BATTERY_LEVEL_UUID", "BATTERY_SERVICE_UUID", "BleOptions", "BleTransport", "FoundDevice", "scan"]

logger = logging.getLogger(__name__)


def _uuid16(u: int) -> str:
    return f"0000{u:04x}-0000-1000-8000-00805f9b34fb"


BATTERY_SERVICE_UUID = _uuid16(proto.BATTERY_SERVICE_UUID16)
BATTERY_LEVEL_UUID = _uuid16(proto.BATTERY_LEVEL_UUID16)

#: what bleak and the OS may raise for a failed BLE operation
_BLE_ERRORS = (BleakError, TransportError, OSError, TimeoutError, EOFError)


@dataclass(frozen=True)
class FoundDevice:
    """A wearable seen while scanning. ``battery_pct`` comes from the
    advertisement's Battery service data if present, else from reading
    Battery Level when ``scan(read_battery=True)``, else None."""

    name: str | None
    address: str
    rssi: int | None
    battery_pct: int | None = None


@dataclass(frozen=True)
class BleOptions(LinkOptions):
    """:class:`~spinemon.io.transport.LinkOptions` plus BLE specifics (seconds).

    ``gatt_timeout_s`` bounds each GATT operation (subscribe, read);
    ``scan_timeout_s`` bounds the search when connecting by name;
    ``request_mtu``: ask for a large ATT MTU where the platform needs asking
    (BlueZ); elsewhere the OS negotiates it.
    ``pair``: pair (LE Secure Connections, bonding) when connecting if not
    bonded yet; the wearable serves samples and takes commands only over an
    encrypted, bonded link (docs/security.md). Put the wearable in pairing
    mode (hold its button 3 s) the first time.
    """

    gatt_timeout_s: float = 5.0
    scan_timeout_s: float = 10.0
    request_mtu: bool = True
    pair: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("gatt_timeout_s", "scan_timeout_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 < v <= 600.0):
                raise ConfigError(f"{name} must be in (0, 600] s, not {v!r}")


def _battery_from_advertisement(adv) -> int | None:
    data = (getattr(adv, "service_data", None) or {}).get(BATTERY_SERVICE_UUID)
    if data and 0 <= data[0] <= 100:
        return int(data[0])
    return None


NO_ADAPTER_HINT = (
    "no Bluetooth adapter could be used ({why}); check that the laptop has one and it is on "
    "(Linux: bluetoothd running, 'bluetoothctl show'), or connect over USB with --port, or try --sim"
)


def _scan_error(e: BaseException, what: str) -> TransportError:
    """One line that says what is missing and what to do (no adapter, no BlueZ/D-Bus: errno 2 or 'adapter')."""
    text = str(e) or type(e).__name__
    missing = (
        isinstance(e, FileNotFoundError)
        or (isinstance(e, OSError) and e.errno == 2)
        or "adapter" in text.lower()
        or "bluez" in text.lower()
    )
    if missing:
        return TransportError(NO_ADAPTER_HINT.format(why=text))
    return TransportError(f"{what} failed: {text}")


async def scan(
    timeout: float = 5.0,
    *,
    read_battery: bool = False,
    battery_timeout_s: float = 5.0,
    backend: type[BaseBleakScanner] | None = None,
    client_backend: type[BaseBleakClient] | None = None,
    **bleak_kwargs: Any,
) -> list[FoundDevice]:
    """Wearables advertising the spinemon service, strongest signal first.

    ``read_battery``: connect to each device found without battery data in
    its advertisement and read Battery Level (each within
    ``battery_timeout_s``; a failure leaves None). ``backend`` (the
    scanner backend), ``client_backend`` (the client backend, for the
    battery reads) and ``bleak_kwargs`` go to bleak unchanged."""
    if not (isinstance(timeout, (int, float)) and 0.0 < timeout <= 600.0):
        raise ConfigError(f"scan timeout must be in (0, 600] s, not {timeout!r}")
    if read_battery and backend is not None and client_backend is None:
        raise ConfigError("read_battery with a custom scanner backend needs client_backend too")
    extra: dict[str, Any] = dict(bleak_kwargs, backend=backend) if backend is not None else bleak_kwargs
    try:
        found = await asyncio.wait_for(
            bleak.BleakScanner.discover(
                timeout=timeout,
                return_adv=True,
                service_uuids=[proto.SERVICE_UUID],
                **extra,
            ),
            timeout + 10.0,
        )
    except _BLE_ERRORS as e:
        raise _scan_error(e, "BLE scan") from e
    out = []
    for address, (device, adv) in found.items():
        if proto.SERVICE_UUID not in (adv.service_uuids or []):
            continue  # a backend that does not filter
        battery = _battery_from_advertisement(adv)
        if battery is None and read_battery:
            battery = await _read_battery(device, battery_timeout_s, client_backend, bleak_kwargs)
        out.append(FoundDevice(adv.local_name or device.name, address, adv.rssi, battery))
    out.sort(key=lambda d: -(d.rssi if d.rssi is not None else -999))
    return out


async def _read_battery(device, timeout: float, backend, bleak_kwargs: dict) -> int | None:
    client = bleak.BleakClient(device, timeout=timeout, backend=backend, **bleak_kwargs)
    try:
        async with asyncio.timeout(timeout):
            await client.connect()
            value = await client.read_gatt_char(BATTERY_LEVEL_UUID)
        return int(value[0]) if len(value) == 1 and value[0] <= 100 else None
    except _BLE_ERRORS as e:
        logger.info("battery of %s not read: %s", getattr(device, "address", device), e)
        return None
    finally:
        try:
            await asyncio.wait_for(client.disconnect(), timeout)
        except Exception:
            pass


class BleTransport(LinkTransport):
    """The wearable over BLE. Give ``address`` or ``name`` (the advertised
    local name, e.g. ``spinemon-1A2B``; found by scanning for the service).
    ``backend`` is bleak's client backend, ``scanner_backend`` its scanner
    backend (used to find ``name``); ``bleak_kwargs`` go to both unchanged.

    After :meth:`connect`: ``mtu`` (the negotiated ATT MTU), ``address``
    (resolved), ``stats`` and ``state``; the link is kept up until
    :meth:`close` (see :class:`~spinemon.io.transport.LinkTransport`).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        name: str | None = None,
        options: BleOptions | None = None,
        backend: type[BaseBleakClient] | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        **bleak_kwargs: Any,
    ) -> None:
        if (address is None) == (name is None):
            raise ConfigError("give exactly one of address or name")
        if options is not None and not isinstance(options, BleOptions):
            raise ConfigError("options must be a BleOptions")
        super().__init__(options or BleOptions())
        self.address = address
        self.name = name
        self.mtu: int | None = None
        self._backend = backend
        self._scanner_backend = scanner_backend
        self._bleak_kwargs = bleak_kwargs
        self._client: bleak.BleakClient | None = None
        self._device: BLEDevice | None = None  # found by name (first connect only)

    @property
    def ble_options(self) -> BleOptions:
        return self.options  # type: ignore[return-value]

    # -- link ------------------------------------------------------------------------
    async def _find(self, timeout: float):
        want = self.name

        def match(device, adv) -> bool:
            return (adv.local_name or device.name) == want

        extra: dict[str, Any] = dict(self._bleak_kwargs)
        if self._scanner_backend is not None:
            extra["backend"] = self._scanner_backend
        try:
            device = await asyncio.wait_for(
                bleak.BleakScanner.find_device_by_filter(
                    match,
                    timeout=timeout,
                    service_uuids=[proto.SERVICE_UUID],
                    **extra,
                ),
                timeout + 5.0,
            )
        except _BLE_ERRORS as e:
            raise _scan_error(e, f"BLE scan for {want!r}") from e
        if device is None:
            raise TransportError(f"no wearable named {want!r} found within {timeout:.3g} s")
        return device

    async def _open(self, timeout: float) -> None:
        opts = self.ble_options
        target: Any = self.address
        if target is None:
            self._device = await self._find(min(timeout, opts.scan_timeout_s))
            self.address = self._device.address
            target = self._device
        elif self._device is not None and self._device.address == self.address:
            target = self._device
        client = bleak.BleakClient(
            target,
            self._on_disconnect,
            timeout=timeout,
            pair=opts.pair,
            backend=self._backend,
            **self._bleak_kwargs,
        )
        self._client = client
        g = opts.gatt_timeout_s
        try:
            await asyncio.wait_for(client.connect(), timeout)
            if opts.request_mtu:
                await self._acquire_mtu(client, g)
            self.mtu = client.mtu_size
            if self.mtu - 3 < proto.MAX_FRAME:
                logger.warning(
                    "ATT MTU %d: frames over %d bytes will not fit; the wearable must send fewer samples per frame",
                    self.mtu,
                    self.mtu - 3,
                )
            for uuid in (proto.STREAM_CHAR_UUID, proto.COMMAND_CHAR_UUID, proto.STATUS_CHAR_UUID):
                if client.services.get_characteristic(uuid) is None:
                    raise TransportError(
                        f"{self.address} is not a spinemon wearable (characteristic {uuid} missing)"
                    )
            await asyncio.wait_for(client.start_notify(proto.STREAM_CHAR_UUID, self._on_stream), g)
            await asyncio.wait_for(client.start_notify(proto.STATUS_CHAR_UUID, self._on_status), g)
        except TransportError:
            raise
        except _BLE_ERRORS as e:
            raise TransportError(f"connecting to {self.address} failed: {e or type(e).__name__}") from e

    @staticmethod
    async def _acquire_mtu(client: bleak.BleakClient, timeout: float) -> None:
        """BlueZ reports 23 until asked; other platforms negotiate by themselves."""
        backend = getattr(client, "_backend", None)
        acquire = getattr(backend, "_acquire_mtu", None)
        if acquire is None or type(backend).__name__ != "BleakClientBlueZDBus":
            return
        try:
            await asyncio.wait_for(acquire(), timeout)
        except Exception as e:
            logger.info("could not acquire the MTU: %s", e)

    def _on_disconnect(self, client: bleak.BleakClient) -> None:
        if client is self._client:
            self._link_lost("BLE link lost")

    def _on_stream(self, _char, data: bytearray) -> None:
        self._frame_in(bytes(data))

    def _on_status(self, _char, data: bytearray) -> None:
        self._frame_in(bytes(data))

    async def _write(self, frame: bytes) -> None:
        client = self._client
        if client is None or not client.is_connected:
            raise DisconnectedError("the wearable is not connected")
        try:
            await asyncio.wait_for(
                client.write_gatt_char(proto.COMMAND_CHAR_UUID, frame, response=True),
                self.ble_options.gatt_timeout_s,
            )
        except _BLE_ERRORS as e:
            if not client.is_connected:
                raise DisconnectedError(f"the wearable disconnected during a write: {e}") from e
            raise TransportError(f"write of a COMMAND failed: {e or type(e).__name__}") from e

    async def _shutdown(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await asyncio.wait_for(client.disconnect(), self.ble_options.gatt_timeout_s)
        except Exception as e:
            logger.debug("disconnect: %s", e)

    # -- reads ------------------------------------------------------------------------
    async def read_status(self, counter=None, timeout: float = 2.0) -> proto.Status:
        """Read the STATUS characteristic (no command needed; ``counter`` is
        not used). The frame also goes to ``items()`` like any other."""
        client = self._client
        if client is None or not self._link_up:
            raise DisconnectedError("the wearable is not connected")
        try:
            data = bytes(await asyncio.wait_for(client.read_gatt_char(proto.STATUS_CHAR_UUID), timeout))
        except _BLE_ERRORS as e:
            raise TransportError(f"reading STATUS failed: {e or type(e).__name__}") from e
        try:
            status = proto.decode(data)
        except proto.ProtocolError as e:
            raise TransportError(f"the STATUS characteristic holds a bad frame: {e}") from e
        if not isinstance(status, proto.Status):
            raise TransportError("the STATUS characteristic holds a frame that is not STATUS")
        self._frame_in(data)
        return status

    async def read_battery(self, timeout: float = 2.0) -> int | None:
        """Battery Level (percent), or None if the wearable has none."""
        client = self._client
        if client is None or not self._link_up:
            raise DisconnectedError("the wearable is not connected")
        try:
            value = await asyncio.wait_for(client.read_gatt_char(BATTERY_LEVEL_UUID), timeout)
        except _BLE_ERRORS:
            return None
        return int(value[0]) if len(value) == 1 else None
