"""The "twin": an emulated spinemon wearable as a Bumble GATT peripheral.

Its GATT table is built from the constants of :mod:`spinemon_protocol`:

* spinemon service ``SERVICE_UUID``: ``STREAM_CHAR_UUID`` (notify: SAMPLES),
  ``COMMAND_CHAR_UUID`` (write with response: COMMAND), ``STATUS_CHAR_UUID``
  (read + notify: STATUS; ACK and ERROR frames are notified here too);
* Battery service 0x180F: Battery Level 0x2A19 (read, notify);
* Device Information 0x180A: manufacturer 0x2A29, model 0x2A24, firmware
  revision 0x2A26.

It advertises ``DEVICE_NAME_PREFIX + "-XXXX"`` and the service UUID.

Where frames come from is pluggable: :meth:`TwinPeripheral.stream_from`
notifies whatever an async iterable of frames yields (:func:`timed_frames`
replays a list of frames at given send times, e.g. from the simulated
wearer); a future bridge to the real firmware under MicroPython would be
another async iterable, with :attr:`TwinPeripheral.on_command` forwarding
COMMAND writes to it and returning ``None`` (the firmware answers itself,
through :meth:`TwinPeripheral.notify_status`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import struct
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Union

from bumble import att, gatt
from bumble.core import UUID, AdvertisingData
from bumble.device import AdvertisingEventProperties, AdvertisingParameters, Connection, Device
from bumble.keys import MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate

import spinemon_protocol as P

from .commands import CommandResponder
from .link import EmulatedRadio, EmulatedRadioError

__all__ = ["TwinPeripheral", "TwinInfo", "TwinSecurity", "CommandHandler", "timed_frames", "pairing_config"]

logger = logging.getLogger(__name__)

CommandHandler = Callable[[bytes], Union[bytes, None, Awaitable[Union[bytes, None]]]]
"""Called with each COMMAND write; returns the response frame to notify on
STATUS (ACK/ERROR), or ``None`` to notify nothing. May be a coroutine."""


@dataclasses.dataclass(frozen=True)
class TwinInfo:
    """What the twin says about itself (Device Information, battery, STATUS)."""

    suffix: str = "0001"  # name is DEVICE_NAME_PREFIX + "-" + suffix
    manufacturer: str = "spinemon project"
    model: str = "spinemon twin"
    firmware_revision: str = "0.1.0"
    battery_pct: int = 87
    advertising_interval_ms: float = 20.0

    def __post_init__(self) -> None:
        if not (len(self.suffix) == 4 and self.suffix.isalnum()):
            raise EmulatedRadioError("suffix must be 4 letters or digits")
        if not (0 <= self.battery_pct <= 100):
            raise EmulatedRadioError("battery_pct must be 0..100")
        if not (20.0 <= self.advertising_interval_ms <= 10240.0):
            raise EmulatedRadioError("advertising_interval_ms must be 20..10240")

    @property
    def name(self) -> str:
        return P.DEVICE_NAME_PREFIX + "-" + self.suffix

    @property
    def fw_version(self) -> tuple[int, int, int]:
        try:
            parts = tuple(int(x) for x in self.firmware_revision.split("."))
        except ValueError:
            return (0, 0, 0)
        return (parts + (0, 0, 0))[:3]  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class TwinSecurity:
    """The twin's Security Manager and attribute permissions.

    Attributes:
        require_encryption: the spinemon characteristics (stream and status
            subscriptions, STATUS reads, COMMAND writes) answer
            INSUFFICIENT_ENCRYPTION on a link that is not encrypted (what the
            firmware's ``_FLAG_*_ENCRYPTED`` flags make NimBLE do). Battery
            and Device Information stay open. Off by default for the
            stand-alone twin; the firmware bridge sets it from the firmware's
            registered flags.
        bonding, le_secure, mitm: the pairing the twin offers (the firmware's
            ``BLE.config(bond=, le_secure=, mitm=)``).
        io_capability: SMP IO capability (3 = NoInputNoOutput: "Just Works").
    """

    require_encryption: bool = False
    bonding: bool = True
    le_secure: bool = True
    mitm: bool = False
    io_capability: int = 3

    def __post_init__(self) -> None:
        if self.io_capability not in (0, 1, 2, 3, 4):
            raise EmulatedRadioError("io_capability must be 0..4 (SMP IO capabilities)")


def pairing_config(bonding: bool = True, le_secure: bool = True, mitm: bool = False, io_capability: int = 3) -> PairingConfig:
    """A Bumble PairingConfig with a delegate that accepts and confirms by
    itself (neither side has a display or keyboard)."""
    delegate = PairingDelegate(io_capability=PairingDelegate.IoCapability(io_capability))
    return PairingConfig(sc=le_secure, mitm=mitm, bonding=bonding, delegate=delegate)


async def timed_frames(frames: Sequence[bytes], send_times_s: Sequence[float] | None = None) -> AsyncIterable[bytes]:
    """Yield ``frames`` at ``send_times_s`` (seconds after the first
    iteration; non-decreasing), or back to back if no times are given."""
    if send_times_s is not None and len(send_times_s) != len(frames):
        raise EmulatedRadioError("frames and send_times_s differ in length")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i, frame in enumerate(frames):
        if send_times_s is not None:
            delay = t0 + send_times_s[i] - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        yield frame


def _not_readable(_connection) -> bytes:
    raise att.ATT_Error(att.ErrorCode.READ_NOT_PERMITTED)



class AddressKeyStore(MemoryKeyStore):
    """Bumble's memory key store, keyed by the peer's address without its
    type qualifier: Bumble stores a bond under "ADDR/P" (the identity
    address) and looks it up, when the central re-encrypts, under the
    address the central connected with (random-typed here), so the default
    store never found it and every reconnect had to pair afresh."""

    @staticmethod
    def _name(name: str) -> str:
        return name.split("/")[0]

    async def get(self, name: str):
        return await super().get(self._name(name))

    async def update(self, name: str, keys) -> None:
        await super().update(self._name(name), keys)

    async def delete(self, name: str) -> None:
        await super().delete(self._name(name))

class TwinPeripheral:
    """An emulated wearable on an :class:`EmulatedRadio`. Create with
    ``await TwinPeripheral.create(radio)``.

    Inspectable state: ``connected``, ``subscribed`` (characteristic name ->
    bool), ``responder`` (the default :class:`CommandResponder`, with the
    HAPTIC log), ``command_writes`` (raw COMMAND bytes with arrival times),
    ``frames_notified`` / ``frames_not_sent`` (stream frames with no
    subscriber are counted, not sent), ``connection_events`` (a log of
    ``("connect"|"disconnect", time, reason)``).
    """

    def __init__(self, radio: EmulatedRadio, device: Device, info: TwinInfo, security: TwinSecurity | None = None) -> None:
        self.radio = radio
        self.device = device
        self.info = info
        self.security = security or TwinSecurity()
        sec = self.security
        device.pairing_config_factory = lambda _connection: pairing_config(sec.bonding, sec.le_secure, sec.mitm, sec.io_capability)
        device.keystore = AddressKeyStore()  # keeps its bonds as a wearable does, found again when the central re-encrypts
        self.responder = CommandResponder()
        self.on_command: CommandHandler | None = self.responder
        self.on_connection_change: Callable[[bool], None] | None = None
        self.command_writes: list[tuple[float, bytes]] = []
        self.frames_notified = 0
        self.frames_not_sent = 0
        self.connection_events: list[tuple[str, float, int | None]] = []
        self.subscribed = {"stream": False, "status": False, "battery": False}
        self._connection: Connection | None = None
        self._connected_event = asyncio.Event()
        self._disconnected_event = asyncio.Event()
        self._disconnected_event.set()
        self._subscription_events = {k: asyncio.Event() for k in self.subscribed}
        self._battery_pct = info.battery_pct
        self._status_frame: bytes | None = None
        self._tasks: set[asyncio.Task] = set()
        self._advertising_set = None
        self._build_gatt()
        device.on(device.EVENT_CONNECTION, self._on_connection)

    # -- construction ----------------------------------------------------------
    @classmethod
    async def create(
        cls, radio: EmulatedRadio, info: TwinInfo | None = None, *, advertise: bool = True, security: TwinSecurity | None = None
    ) -> TwinPeripheral:
        """Add a twin to ``radio`` (its own controller) and start advertising."""
        info = info or TwinInfo()
        device = await radio.add_device(info.name)
        twin = cls(radio, device, info, security)
        if advertise:
            await twin.start_advertising()
        return twin

    def _build_gatt(self) -> None:
        Props = gatt.Characteristic.Properties
        R = gatt.Characteristic.READABLE
        W = gatt.Characteristic.WRITEABLE
        enc = self.security.require_encryption
        RE = R | (gatt.Characteristic.READ_REQUIRES_ENCRYPTION if enc else 0)
        WE = W | (gatt.Characteristic.WRITE_REQUIRES_ENCRYPTION if enc else 0)
        # Bumble does not enforce permissions on reads; a real stack answers
        # READ_NOT_PERMITTED for these, so the twin does too.
        self.stream_char = gatt.Characteristic(P.STREAM_CHAR_UUID, Props.NOTIFY, 0, gatt.CharacteristicValue(read=_not_readable))
        self.command_char = gatt.Characteristic(
            P.COMMAND_CHAR_UUID, Props.WRITE, WE, gatt.CharacteristicValue(read=_not_readable, write=self._on_command_write)
        )
        self.status_char = gatt.Characteristic(
            P.STATUS_CHAR_UUID, Props.READ | Props.NOTIFY, RE, gatt.CharacteristicValue(read=lambda _c: self.status_frame())
        )
        self.battery_char = gatt.Characteristic(
            UUID.from_16_bits(P.BATTERY_LEVEL_UUID16),
            Props.READ | Props.NOTIFY,
            R,
            gatt.CharacteristicValue(read=lambda _c: bytes([self._battery_pct])),
        )
        info = self.info
        dis = [
            gatt.Characteristic(UUID.from_16_bits(uuid16), Props.READ, R, text.encode("utf-8"))
            for uuid16, text in (
                (P.MANUFACTURER_NAME_UUID16, info.manufacturer),
                (P.MODEL_NUMBER_UUID16, info.model),
                (P.FIRMWARE_REVISION_UUID16, info.firmware_revision),
            )
        ]
        self.device.add_services(
            [
                gatt.Service(P.SERVICE_UUID, [self.stream_char, self.command_char, self.status_char]),
                gatt.Service(UUID.from_16_bits(P.BATTERY_SERVICE_UUID16), [self.battery_char]),
                gatt.Service(UUID.from_16_bits(P.DEVICE_INFO_SERVICE_UUID16), dis),
            ]
        )
        for key, char in (("stream", self.stream_char), ("status", self.status_char), ("battery", self.battery_char)):
            char.on(char.EVENT_SUBSCRIPTION, lambda _bearer, notify, _indicate, key=key: self._on_subscription(key, notify))
        if enc:
            # Bumble adds each CCCD itself, readable and writable by anyone;
            # subscribing to the spinemon characteristics needs encryption.
            self._protect_cccds((self.stream_char, self.status_char))

    def _protect_cccds(self, chars: Sequence[gatt.Characteristic]) -> None:
        attrs = self.device.gatt_server.attributes
        cccd = UUID.from_16_bits(0x2902)
        for char in chars:
            i = attrs.index(char)
            for a in attrs[i + 1 : i + 3]:
                if isinstance(a, gatt.Descriptor) and a.type == cccd:
                    a.permissions |= att.Attribute.READ_REQUIRES_ENCRYPTION | att.Attribute.WRITE_REQUIRES_ENCRYPTION
                    break
            else:
                raise EmulatedRadioError("no CCCD found for %s" % char.uuid)

    @property
    def encrypted(self) -> bool:
        """The current link is encrypted."""
        return self._connection is not None and bool(self._connection.encryption)

    def advertising_data(self) -> bytes:
        """Flags, the 128-bit service UUID and the complete local name (an
        extended advertisement: 36 bytes do not fit a legacy one)."""
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),  # LE general discoverable, no BR/EDR
                    (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, UUID(P.SERVICE_UUID).to_bytes()),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.info.name.encode("utf-8")),
                ]
            )
        )

    async def start_advertising(self) -> None:
        """Advertise (connectable, extended); restarts by itself after each disconnection."""
        if self._advertising_set is not None:
            return
        params = AdvertisingParameters(
            advertising_event_properties=AdvertisingEventProperties(is_connectable=True, is_scannable=False, is_legacy=False),
            primary_advertising_interval_min=self.info.advertising_interval_ms,
            primary_advertising_interval_max=self.info.advertising_interval_ms,
        )
        self._advertising_set = await asyncio.wait_for(
            self.device.create_advertising_set(advertising_parameters=params, advertising_data=self.advertising_data(), auto_restart=True),
            5.0,
        )

    async def stop_advertising(self) -> None:
        if self._advertising_set is not None:
            adv, self._advertising_set = self._advertising_set, None
            await asyncio.wait_for(adv.stop(), 5.0)
            await asyncio.wait_for(adv.remove(), 5.0)

    # -- identity --------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def address(self) -> str:
        """The address a host connects to (``AA:BB:...`` string)."""
        return str(self.device.random_address).split("/")[0]

    # -- connection state --------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connection is not None

    @property
    def mtu(self) -> int:
        """The ATT MTU of the current connection (23 until exchanged)."""
        if self._connection is None:
            raise EmulatedRadioError("twin is not connected")
        return self._connection.att_mtu

    async def wait_connected(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._connected_event.wait(), timeout)

    async def wait_disconnected(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._disconnected_event.wait(), timeout)

    async def wait_subscribed(self, which: str = "stream", timeout: float = 5.0) -> None:
        """Wait until the host enabled notifications on ``which`` ("stream", "status" or "battery")."""
        if which not in self._subscription_events:
            raise EmulatedRadioError("which must be one of %s" % sorted(self._subscription_events))
        await asyncio.wait_for(self._subscription_events[which].wait(), timeout)

    async def disconnect(self, reason: int = 0x13) -> None:
        """The twin's host ends the connection (HCI Disconnect)."""
        if self._connection is not None:
            await asyncio.wait_for(self._connection.disconnect(reason), 5.0)

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        self.connection_events.append(("connect", time.monotonic(), None))
        self._disconnected_event.clear()
        self._connected_event.set()
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(connection, reason))
        if self.on_connection_change is not None:
            self.on_connection_change(True)

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is not connection:
            return
        self._connection = None
        self.connection_events.append(("disconnect", time.monotonic(), reason))
        for key in self.subscribed:
            self.subscribed[key] = False
            self._subscription_events[key].clear()
        self._connected_event.clear()
        self._disconnected_event.set()
        if self.on_connection_change is not None:
            self.on_connection_change(False)

    def _on_subscription(self, key: str, notify: bool) -> None:
        self.subscribed[key] = bool(notify)
        if notify:
            self._subscription_events[key].set()
        else:
            self._subscription_events[key].clear()

    # -- values ------------------------------------------------------------------
    def status_frame(self) -> bytes:
        """What a read of STATUS returns: the frame given to :meth:`set_status`,
        or one built from the twin's state."""
        if self._status_frame is not None:
            return self._status_frame
        r = self.responder
        state = (P.ST_STREAMING if r.streaming else 0) | (P.ST_CONNECTED if self.connected else 0)
        return P.encode_status(
            fw_version=self.info.fw_version,
            battery_pct=self._battery_pct,
            imu_upper=P.IMU_SIMULATED,
            period_us=1000000 // max(1, r.rate_hz),
            guard_flex_cdeg=r.guard[0],
            guard_ext_cdeg=r.guard[1],
            guard_mode=r.guard[2],
            state=state,
            last_counter=r.last_counter,
            frames_sent=self.frames_notified,
            commands_rejected=r.commands_rejected,
        )

    def set_status(self, frame: bytes | None) -> None:
        """Fix the STATUS read value to ``frame`` (``None``: built from state)."""
        self._status_frame = None if frame is None else bytes(frame)

    async def set_battery(self, pct: int) -> None:
        """Change the battery level and notify it if subscribed."""
        if not (0 <= int(pct) <= 100):
            raise EmulatedRadioError("battery level must be 0..100")
        self._battery_pct = int(pct)
        if self._connection is not None and self.subscribed["battery"]:
            await self.device.notify_subscriber(self._connection, self.battery_char, bytes([self._battery_pct]))

    # -- notifications -------------------------------------------------------------
    async def _notify(self, char: gatt.Characteristic, key: str, frame: bytes) -> bool:
        frame = bytes(frame)
        conn = self._connection
        if conn is None or not self.subscribed[key]:
            return False
        if len(frame) > conn.att_mtu - 3:
            raise EmulatedRadioError(
                "frame of %d bytes does not fit one notification at ATT MTU %d" % (len(frame), conn.att_mtu)
            )
        await self.device.notify_subscriber(conn, char, frame)
        return True

    async def notify_stream(self, frame: bytes) -> bool:
        """Notify one frame on STREAM. Returns False (and counts it in
        ``frames_not_sent``) when no host is subscribed, as the firmware
        drops frames then. Raises :class:`EmulatedRadioError` if the frame
        is longer than the negotiated ATT MTU allows."""
        sent = await self._notify(self.stream_char, "stream", frame)
        if sent:
            self.frames_notified += 1
        else:
            self.frames_not_sent += 1
        return sent

    async def notify_status(self, frame: bytes) -> bool:
        """Notify one frame (STATUS, ACK or ERROR) on STATUS."""
        return await self._notify(self.status_char, "status", frame)

    async def stream_from(self, source: AsyncIterable[bytes] | Iterable[bytes]) -> int:
        """Notify every frame ``source`` yields, in order; returns how many
        were sent (frames with no subscriber are counted, not sent)."""
        sent = 0
        if hasattr(source, "__aiter__"):
            async for frame in source:  # type: ignore[union-attr]
                sent += await self.notify_stream(frame)
        else:
            for frame in source:  # type: ignore[union-attr]
                sent += await self.notify_stream(frame)
        return sent

    # -- commands --------------------------------------------------------------------
    def _on_command_write(self, _connection: Connection, value: bytes) -> None:
        # The stack answers the write at once; the twin handles the command
        # afterwards and notifies ACK/ERROR, as the firmware will.
        self.command_writes.append((time.monotonic(), bytes(value)))
        task = asyncio.get_running_loop().create_task(self._handle_command(bytes(value)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_command(self, frame: bytes) -> None:
        handler = self.on_command
        if handler is None:
            return
        try:
            response = handler(frame)
            if inspect.isawaitable(response):
                response = await response
        except Exception:  # noqa: BLE001 - a broken handler must not kill the stack
            logger.exception("on_command handler failed")
            return
        if response is None:
            return
        await self.notify_status(response)
        # GET_STATUS: the device answers ACK, then a STATUS frame.
        if len(response) == 13 and response[1] == P.T_ACK and struct.unpack_from("<B", response, 6)[0] == P.OP_GET_STATUS:
            await self.notify_status(self.status_frame())
