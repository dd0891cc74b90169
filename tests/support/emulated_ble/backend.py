"""bleak backends over Bumble: the host's BLE code talks to the emulated radio.

Pass them to bleak the way any custom backend is passed; bleak forwards extra
keyword arguments to the backend, so the radio goes along explicitly::

    scanner = BleakScanner(service_uuids=[SERVICE_UUID], backend=BumbleScanner, radio=radio)
    client = BleakClient(device, backend=BumbleClient, radio=radio)

A :class:`~bleak.backends.device.BLEDevice` found by :class:`BumbleScanner`
carries its radio in ``details``, so ``BleakClient(device, backend=BumbleClient)``
works too; failing both, :func:`set_default_radio` is used.

Errors raised here derive from both :class:`bleak.exc.BleakError` (what host
code catches for real backends) and :class:`spinemon.errors.TransportError`.
Like the BlueZ, WinRT and CoreBluetooth backends, ``disconnected_callback``
fires on every disconnection after ``connect()`` succeeded, whoever caused it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuid_module
from collections.abc import Callable
from typing import Any, Literal

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Peer

from spinemon.errors import TransportError

from .link import EmulatedRadio, EmulatedRadioError
from .twin import pairing_config

__all__ = [
    "BumbleScanner",
    "BumbleClient",
    "EmulatedBleError",
    "EmulatedGATTError",
    "EmulatedConnectTimeout",
    "set_default_radio",
    "get_default_radio",
]

logger = logging.getLogger(__name__)

DEFAULT_MTU = 247

_default_radio: EmulatedRadio | None = None



async def _stored_keys(central, address):
    """The central's bond with ``address``, as a phone keeps it: Bumble's key
    store names the keys by the peer's identity address with a type qualifier
    ("/P"), while the connection's peer address is random-typed (a look-up by
    ``str(address)`` found nothing, so the central paired afresh on every
    connection instead of re-encrypting with its bond)."""
    if central.keystore is None:
        return None
    want = str(address).split("/")[0]
    for name, keys in await central.keystore.get_all():
        if name.split("/")[0] == want:  # the peer connects with a random-type address; the keys sit under its identity ("/P")
            return keys
    return None

class EmulatedBleError(BleakError, TransportError):
    """A BLE operation on the emulated radio failed (not connected, link lost, ...)."""


class EmulatedConnectTimeout(EmulatedBleError, TimeoutError):
    """connect() did not complete within its timeout."""


class EmulatedGATTError(BleakGATTProtocolError, TransportError):
    """The peer answered a GATT request with an ATT error (``.code``)."""


def set_default_radio(radio: EmulatedRadio | None) -> None:
    """The radio the backends use when none is passed (tests that cannot pass kwargs)."""
    global _default_radio
    _default_radio = radio


def get_default_radio() -> EmulatedRadio | None:
    return _default_radio


def _resolve_radio(radio: EmulatedRadio | None, device: Any = None) -> EmulatedRadio:
    if radio is not None:
        if not isinstance(radio, EmulatedRadio):
            raise EmulatedRadioError("radio must be an EmulatedRadio")
        return radio
    if isinstance(device, BLEDevice) and isinstance(device.details, tuple) and device.details and isinstance(device.details[0], EmulatedRadio):
        return device.details[0]
    if _default_radio is not None:
        return _default_radio
    raise EmulatedRadioError("no emulated radio: pass radio=... to BleakScanner/BleakClient or call set_default_radio()")


def bleak_uuid(u: core.UUID) -> str:
    """A Bumble UUID as bleak spells it: 128-bit, lower case, dashed."""
    return str(uuid_module.UUID(bytes=bytes(reversed(u.to_bytes(force_128=True)))))


_PROPERTY_NAMES = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)


def _property_names(props: int) -> list[str]:
    return [name for bit, name in _PROPERTY_NAMES if props & bit]


# ---------------------------------------------------------------------------------
class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend: advertisements seen by the radio's central.

    ``BLEDevice.details`` is ``(radio, bumble Advertisement)``;
    ``AdvertisementData.platform_data`` is ``(bumble Advertisement,)``.
    """

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        radio: EmulatedRadio | None = None,
        bluez: Any = None,
        cb: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if scanning_mode not in ("active", "passive"):
            raise EmulatedRadioError("scanning_mode must be 'active' or 'passive'")
        self._radio = _resolve_radio(radio)
        self._active = scanning_mode == "active"
        self._scanning = False

    async def start(self) -> None:
        if self._scanning:
            return
        self.seen_devices = {}
        await self._radio.start()
        self._radio.central.on("advertisement", self._on_advertisement)
        self._scanning = True
        try:
            await self._radio.acquire_scan(active=self._active)
        except BaseException:
            self._radio.central.remove_listener("advertisement", self._on_advertisement)
            self._scanning = False
            raise

    async def stop(self) -> None:
        if not self._scanning:
            return
        self._scanning = False
        self._radio.central.remove_listener("advertisement", self._on_advertisement)
        await self._radio.release_scan()

    def _on_advertisement(self, adv: Advertisement) -> None:
        data = adv.data
        uuids: list[str] = []
        for kind in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            for u in data.get_all(kind) or []:
                for one in u if isinstance(u, list) else [u]:
                    uuids.append(bleak_uuid(one))
        uuids = list(dict.fromkeys(uuids))  # the emulated scan response repeats the data
        if not self.is_allowed_uuid(uuids):
            return
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(AdvertisingData.SHORTENED_LOCAL_NAME)
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        manufacturer: dict[int, bytes] = {}
        for item in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA) or []:
            company, payload = item
            manufacturer[company] = bytes(payload)
        service_data: dict[str, bytes] = {}
        for kind in (
            AdvertisingData.SERVICE_DATA_16_BIT_UUID,
            AdvertisingData.SERVICE_DATA_32_BIT_UUID,
            AdvertisingData.SERVICE_DATA_128_BIT_UUID,
        ):
            for u, payload in data.get_all(kind) or []:
                service_data[bleak_uuid(u)] = bytes(payload)
        tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
        address = str(adv.address).split("/")[0]
        if name:
            self._radio.names_seen[address] = name
        ad = AdvertisementData(
            local_name=name,
            manufacturer_data=manufacturer,
            service_data=service_data,
            service_uuids=uuids,
            tx_power=tx_power,
            rssi=adv.rssi,
            platform_data=(adv,),
        )
        device = self.create_or_update_device(address, address, name, (self._radio, adv), ad)
        self.call_detection_callbacks(device, ad)


# ---------------------------------------------------------------------------------
class BumbleClient(BaseBleakClient):
    """bleak client backend: a GATT client on the radio's central.

    Extra keyword arguments: ``radio`` (the :class:`EmulatedRadio`), ``mtu``
    (ATT MTU to request, default 247), ``gatt_timeout`` (seconds allowed for
    each GATT operation, default 10).
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        radio: EmulatedRadio | None = None,
        mtu: int = DEFAULT_MTU,
        gatt_timeout: float = 10.0,
        services: set[str] | None = None,
        bluez: Any = None,
        winrt: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, **kwargs)
        self._radio = _resolve_radio(radio, address_or_ble_device)
        if not (23 <= int(mtu) <= 517):
            raise EmulatedRadioError("mtu must be in 23..517")
        if not (0.0 < gatt_timeout <= 600.0):
            raise EmulatedRadioError("gatt_timeout must be in (0, 600] s")
        self._requested_mtu = int(mtu)
        self._gatt_timeout = float(gatt_timeout)
        self._service_filter = services
        self._name = address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # -- identity ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name or self._radio.names_seen.get(self.address.upper()) or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        if self._connection is None:
            return att.ATT_DEFAULT_MTU
        return self._connection.att_mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # -- connection ------------------------------------------------------------------
    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect; with ``pair`` (bleak's ``BleakClient(..., pair=True)``)
        secure the link before discovery, as bleak on BlueZ does."""
        if self._connection is not None:
            return
        radio = await self._radio.start()
        try:
            peer_address = hci.Address(self.address.upper(), hci.Address.RANDOM_DEVICE_ADDRESS)
        except (ValueError, core.InvalidArgumentError) as e:
            raise EmulatedBleError("not a Bluetooth address: %r" % (self.address,)) from e
        timeout = float(kwargs.get("timeout", self._timeout))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with radio.connect_lock:
                # Bumble cancels the pending HCI connection itself on timeout.
                connection = await radio.central.connect(peer_address, timeout=max(0.001, deadline - loop.time()))
        except (core.TimeoutError, TimeoutError) as e:
            raise EmulatedConnectTimeout("could not connect to %s within %.3g s" % (self.address, timeout)) from e
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            raise EmulatedBleError("connect to %s failed: %s" % (self.address, e)) from e
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(connection, reason))
        self._connection = connection
        self._peer = Peer(connection)
        try:
            async with asyncio.timeout_at(deadline):
                if pair:
                    await self._secure(connection)
                await self._gatt(self._peer.request_mtu(self._requested_mtu))
                self.services = await self._discover()
        except BaseException as e:
            self._connection = None
            self._peer = None
            if connection.handle in radio.central.connections:
                await self._quiet_disconnect(connection)
            if isinstance(e, TimeoutError):
                raise EmulatedConnectTimeout("MTU exchange and discovery of %s did not finish within %.3g s" % (self.address, timeout)) from e
            raise

    @staticmethod
    async def _quiet_disconnect(connection: Connection) -> None:
        try:
            await asyncio.wait_for(connection.disconnect(), 2.0)
        except Exception:  # noqa: BLE001
            pass

    async def _discover(self) -> BleakGATTServiceCollection:
        assert self._peer is not None
        peer = self._peer
        await self._gatt(peer.discover_services())
        collection = BleakGATTServiceCollection()
        for sp in peer.services:
            s_uuid = bleak_uuid(sp.uuid)
            if self._service_filter and s_uuid not in self._service_filter:
                continue
            service = BleakGATTService(sp, sp.handle, s_uuid)
            collection.add_service(service)
            await self._gatt(peer.discover_characteristics(service=sp))
            for cp in sp.characteristics:
                char = BleakGATTCharacteristic(
                    cp, cp.handle, bleak_uuid(cp.uuid), _property_names(int(cp.properties)), lambda: self.mtu_size - 3, service
                )
                collection.add_characteristic(char)
                await self._gatt(peer.discover_descriptors(characteristic=cp))
                for dp in cp.descriptors:
                    collection.add_descriptor(BleakGATTDescriptor(dp, dp.handle, bleak_uuid(dp.type), char))
        return collection

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is not connection:
            return
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        self.services = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            await asyncio.wait_for(connection.disconnect(), self._gatt_timeout)
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            if self._connection is not None:
                raise EmulatedBleError("disconnect failed: %s" % e) from e
        except TimeoutError as e:
            raise EmulatedBleError("disconnect did not complete in time") from e

    async def _secure(self, connection: Connection) -> None:
        """Encrypt with the stored bond if the central holds one, else pair
        (LE Secure Connections, bonding, Just Works: the wearable has no
        display or keyboard)."""
        central = self._radio.central
        central.pairing_config_factory = lambda _c: pairing_config(bonding=True, le_secure=True, mitm=False, io_capability=3)
        keys = await _stored_keys(central, connection.peer_address)
        try:
            if keys is not None:
                if await central.keystore.get(str(connection.peer_address)) is None:
                    await central.keystore.update(str(connection.peer_address), keys)  # where Bumble's encrypt() looks
                await asyncio.wait_for(connection.encrypt(), self._gatt_timeout)
            else:
                await asyncio.wait_for(connection.pair(), self._gatt_timeout)
        except TimeoutError as e:
            raise EmulatedBleError("securing the link to %s timed out" % self.address) from e
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            what = "encryption with the stored bond" if keys is not None else "pairing"
            raise EmulatedBleError("%s with %s failed: %s" % (what, self.address, e)) from e
        if not connection.encryption:
            raise EmulatedBleError("the link to %s is not encrypted after pairing" % self.address)

    @property
    def encrypted(self) -> bool:
        """The link is up and encrypted."""
        return self._connection is not None and bool(self._connection.encryption)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair (or re-encrypt with a stored bond) on the open connection."""
        if self._connection is None:
            raise EmulatedBleError("not connected")
        await self._secure(self._connection)

    async def unpair(self) -> None:
        """Forget the central's bond with this device and disconnect (as bleak does)."""
        central = self._radio.central
        name = None
        if self._connection is not None:
            name = str(self._connection.peer_address)
        else:
            name = str(hci.Address(self.address.upper(), hci.Address.RANDOM_DEVICE_ADDRESS))
        if central.keystore is not None:
            for n in (name, name + "/P"):  # Bumble names a public address's keys with a "/P" qualifier
                try:
                    await central.keystore.delete(n)
                except KeyError:
                    pass
        await self.disconnect()

    # -- GATT ---------------------------------------------------------------------------
    async def _gatt(self, awaitable):
        """Run one GATT procedure with a timeout, mapping errors to bleak's."""
        try:
            return await asyncio.wait_for(awaitable, self._gatt_timeout)
        except att.ATT_Error as e:
            raise EmulatedGATTError(e.error_code) from e
        except asyncio.CancelledError:
            # Bumble cancels a pending request when the link drops; that is a
            # failed operation, not a cancellation of our caller.
            task = asyncio.current_task()
            if self._connection is None and task is not None and task.cancelling() == 0:
                raise EmulatedBleError("disconnected during a GATT operation") from None
            raise
        except TimeoutError as e:
            raise EmulatedBleError("GATT operation timed out after %.3g s" % self._gatt_timeout) from e
        except (core.BaseBumbleError, hci.HCI_Error) as e:
            if self._connection is None:
                raise EmulatedBleError("disconnected during a GATT operation") from e
            raise EmulatedBleError("GATT operation failed: %s" % e) from e

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise EmulatedBleError("not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any) -> bytearray:
        peer = self._require_peer()
        if use_cached:
            cached = peer.gatt_client.cached_values.get(characteristic.handle)
            if cached is not None:
                return bytearray(cached[1])
        return bytearray(await self._gatt(peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._gatt(peer.read_value(descriptor.handle)))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool) -> None:
        peer = self._require_peer()
        await self._gatt(peer.write_value(characteristic.handle, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        peer = self._require_peer()
        await self._gatt(peer.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any) -> None:
        peer = self._require_peer()
        if "notify" not in characteristic.properties and "indicate" not in characteristic.properties:
            raise EmulatedBleError("characteristic %s does not notify" % characteristic.uuid)
        old = self._subscribers.pop(characteristic.handle, None)
        if old is not None:
            await self._gatt(peer.gatt_client.unsubscribe(characteristic.obj, old))

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = on_value
        try:
            await self._gatt(peer.subscribe(characteristic.obj, on_value))
        except BaseException:
            self._subscribers.pop(characteristic.handle, None)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        if subscriber is None:
            return
        await self._gatt(peer.gatt_client.unsubscribe(characteristic.obj, subscriber))

