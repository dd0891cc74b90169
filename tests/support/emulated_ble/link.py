"""The emulated radio: Bumble controllers on one in-process link, with faults.

An :class:`EmulatedRadio` owns a :class:`FaultyLink` (a Bumble ``LocalLink``
that can delay, pace and drop what it carries) and a central Bumble
:class:`~bumble.device.Device` with its own :class:`~bumble.controller.Controller`.
The bleak backends in :mod:`tests.support.emulated_ble.backend` drive that central;
peripherals (for example :class:`~tests.support.emulated_ble.twin.TwinPeripheral`)
get their own controller on the same link via :meth:`EmulatedRadio.add_device`.

Everything runs inside the caller's asyncio loop; nothing here starts threads.

Fault model (see :class:`LinkFaults`), applied to every L2CAP PDU the link
carries between two controllers, per direction, in order:

* ``extra_delay_s``: fixed latency added to every PDU.
* ``connection_interval_s``: PDUs only leave at connection events on a fixed
  grid (``k * interval`` after the faults were set), at most
  ``pdus_per_event`` per direction per event. A connection event the event
  loop reaches late is skipped rather than bunched with the next one, so two
  events are never delivered closer than one interval apart (loop clock).
* ``drop_probability`` / :meth:`FaultyLink.drop_next_notifications`: ATT
  Handle Value Notifications are discarded (seeded RNG, or an explicit
  count). Nothing else is ever dropped: real BLE retransmits lost packets at
  the link layer, and a notification that the sender's stack queued but that
  never reached the peer's host is what a lost notification looks like from
  above.
* :meth:`EmulatedRadio.drop_connection`: the connection is dropped from one
  side (that controller sends LL_TERMINATE_IND) or lost on both (supervision
  timeout: both hosts get a disconnection event and nothing is sent).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
import random
import struct
from collections.abc import Callable
from typing import Any, Literal

from bumble import core, hci, ll
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from spinemon.errors import TransportError

__all__ = [
    "EmulatedRadioError",
    "LinkFaults",
    "LinkStats",
    "FaultyLink",
    "EmulatedRadio",
    "ATT_CID",
    "ATT_HANDLE_VALUE_NTF",
]

logger = logging.getLogger(__name__)

ATT_CID = 0x0004
ATT_HANDLE_VALUE_NTF = 0x1B
HCI_CONNECTION_TIMEOUT = 0x08  # supervision timeout: the link was lost
HCI_REMOTE_USER_TERMINATED = 0x13

CENTRAL_ADDRESS = "C0:00:00:00:00:01"


class EmulatedRadioError(TransportError):
    """Misuse of the emulated radio or twin (bad fault settings, a frame that
    does not fit the negotiated MTU, no radio given to a backend, ...)."""


@dataclasses.dataclass(frozen=True)
class LinkFaults:
    """Fault injection settings for the emulated link, in physical units.

    Attributes:
        connection_interval_s: BLE connection interval (e.g. 0.0075, 0.015,
            0.030), or ``None`` for no pacing (PDUs leave as soon as they are
            sent, after ``extra_delay_s``).
        pdus_per_event: how many PDUs each direction may carry per connection
            event (a real controller manages a few per event).
        extra_delay_s: fixed latency added to every PDU, both directions.
        drop_probability: chance that each ATT notification is discarded.
        seed: seed of the drop RNG (same seed, same drops).
    """

    connection_interval_s: float | None = None
    pdus_per_event: int = 1
    extra_delay_s: float = 0.0
    drop_probability: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        ci = self.connection_interval_s
        if ci is not None and not (0.0075 <= ci <= 4.0):
            raise EmulatedRadioError("connection_interval_s must be in 7.5 ms .. 4 s (BLE limits) or None")
        if not isinstance(self.pdus_per_event, int) or self.pdus_per_event < 1:
            raise EmulatedRadioError("pdus_per_event must be an integer >= 1")
        if not (0.0 <= self.extra_delay_s <= 10.0):
            raise EmulatedRadioError("extra_delay_s must be in 0 .. 10 s")
        if not (0.0 <= self.drop_probability <= 1.0):
            raise EmulatedRadioError("drop_probability must be in 0 .. 1")


@dataclasses.dataclass
class LinkStats:
    """What the link did, so a test can ask why something went missing.

    ``dropped_notifications`` holds ``(attribute_handle, index)`` of every
    discarded notification, ``index`` counting all notifications the link saw
    (from 0, over the radio's lifetime).
    """

    pdus_sent: int = 0
    pdus_delivered: int = 0
    notifications_seen: int = 0
    notifications_dropped: int = 0
    dropped_notifications: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    pdus_flushed_by_disconnect: int = 0
    connection_events: int = 0  # batches delivered (one per event when paced)


def att_notification_handle(pdu: bytes) -> int | None:
    """The attribute handle if ``pdu`` (a whole L2CAP B-frame) is an ATT
    Handle Value Notification, else ``None``."""
    if len(pdu) < 7:
        return None
    _length, cid = struct.unpack_from("<HH", pdu, 0)
    if cid != ATT_CID or pdu[4] != ATT_HANDLE_VALUE_NTF:
        return None
    return struct.unpack_from("<H", pdu, 5)[0]


class _Direction:
    """The ordered queue of PDUs from one controller to one peer address.

    Pacing rule (connection interval I, N PDUs per event): a connection event
    happens at the first point of the grid ``anchor + k*I`` (within I/4) at
    or after the head PDU is ready, and never less than I after the previous
    event actually fired on the loop clock. So a late event is late (or
    skipped), never bunched with the next one.
    """

    def __init__(self, link: FaultyLink, sender: Controller, destination: hci.Address) -> None:
        self.link = link
        self.sender = sender
        self.destination = destination
        self.queue: collections.deque[tuple[float, Callable[[], None]]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.last_fire: float | None = None
        self.last_ready = 0.0

    def push(self, deliver: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        ready = max(loop.time() + self.link.faults.extra_delay_s, self.last_ready)
        self.last_ready = ready
        self.queue.append((ready, deliver))
        if self.timer is None:
            self.timer = loop.call_at(self._release_time(), self._fire)

    def flush(self) -> int:
        n = len(self.queue)
        self.queue.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        return n

    def _release_time(self) -> float:
        ready = self.queue[0][0]
        interval = self.link.faults.connection_interval_s
        if interval is None:
            return ready
        candidate = ready if self.last_fire is None else max(ready, self.last_fire + interval)
        anchor = self.link.anchor
        k = math.ceil((candidate - 0.25 * interval - anchor) / interval)
        return max(anchor + k * interval, candidate)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = None
        if not self.queue:
            return
        now = loop.time()
        when = self._release_time()
        if when > now:  # faults changed since this timer was set
            self.timer = loop.call_at(when, self._fire)
            return
        paced = self.link.faults.connection_interval_s is not None
        budget = self.link.faults.pdus_per_event if paced else len(self.queue)
        sent = 0
        while self.queue and sent < budget and self.queue[0][0] <= now:
            _, deliver = self.queue.popleft()
            deliver()
            sent += 1
        if sent:
            self.last_fire = now
            self.link.stats.connection_events += 1
        if self.queue:
            self.timer = loop.call_at(self._release_time(), self._fire)


class EmulatedController(Controller):
    """Bumble's emulated controller, plus what the radio needs from it:
    LE Create Connection Cancel really cancels (Bumble 0.0.236 answers
    success but keeps the attempt pending, so a timed-out connect hangs and
    blocks every later connect). Per the spec (Vol 4, Part E, 7.8.13) the
    cancelled attempt ends with an LE Connection Complete event carrying
    status Unknown Connection Identifier."""

    def on_hci_le_create_connection_cancel_command(self, _command):
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        event = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # after the Command Complete that our return value becomes
        asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


class FaultyLink(LocalLink):
    """A Bumble ``LocalLink`` whose LE ACL traffic passes through the fault
    hooks of :class:`LinkFaults`. Advertising and LL control PDUs are not
    delayed (they are not part of the data connection)."""

    def __init__(self, faults: LinkFaults | None = None) -> None:
        super().__init__()
        self.stats = LinkStats()
        self._directions: dict[tuple[int, str], _Direction] = {}
        self._drop_next = 0
        self.faults = faults or LinkFaults()
        self._out_of_range: dict[Controller, float] = {}  # controller -> loop time it is heard again

    def out_of_range(self, controller: Controller, until: float) -> None:
        """Nothing ``controller`` advertises is heard until loop time ``until`` (it cannot be connected to)."""
        self._out_of_range[controller] = until

    def send_advertising_pdu(self, sender_controller: Controller, packet) -> None:
        until = self._out_of_range.get(sender_controller)
        if until is not None and asyncio.get_running_loop().time() < until:
            return
        super().send_advertising_pdu(sender_controller, packet)

    @property
    def faults(self) -> LinkFaults:
        return self._faults

    @faults.setter
    def faults(self, faults: LinkFaults) -> None:
        if not isinstance(faults, LinkFaults):
            raise EmulatedRadioError("faults must be a LinkFaults")
        self._faults = faults
        self._rng = random.Random(faults.seed)
        try:
            self.anchor = asyncio.get_running_loop().time()
        except RuntimeError:
            self.anchor = 0.0

    def drop_next_notifications(self, count: int) -> None:
        """Discard the next ``count`` ATT notifications the link carries."""
        if not isinstance(count, int) or count < 0:
            raise EmulatedRadioError("count must be an integer >= 0")
        self._drop_next += count

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: core.PhysicalTransport,
        data: bytes,
    ) -> None:
        if transport != core.PhysicalTransport.LE:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        self.stats.pdus_sent += 1
        handle = att_notification_handle(data)
        if handle is not None:
            index = self.stats.notifications_seen
            self.stats.notifications_seen += 1
            drop = False
            if self._drop_next > 0:
                self._drop_next -= 1
                drop = True
            elif self._faults.drop_probability > 0.0 and self._rng.random() < self._faults.drop_probability:
                drop = True
            if drop:
                self.stats.notifications_dropped += 1
                self.stats.dropped_notifications.append((handle, index))
                return
        source_address = sender_controller.random_address

        def deliver() -> None:
            destination = self.find_le_controller(destination_address)
            if destination is None:
                return
            self.stats.pdus_delivered += 1
            destination.on_link_acl_data(source_address, transport, data)

        key = (id(sender_controller), str(destination_address))
        direction = self._directions.get(key)
        if direction is None:
            direction = self._directions[key] = _Direction(self, sender_controller, destination_address)
        direction.push(deliver)

    def flush_between(self, a: Controller, b: Controller) -> None:
        """Forget PDUs in flight between two controllers (the link is gone)."""
        for key, d in list(self._directions.items()):
            if (d.sender is a and self._is_address_of(b, d.destination)) or (
                d.sender is b and self._is_address_of(a, d.destination)
            ):
                self.stats.pdus_flushed_by_disconnect += d.flush()
                del self._directions[key]

    @staticmethod
    def _is_address_of(c: Controller, address: hci.Address) -> bool:
        return address in (c.random_address, c.public_address)


class EmulatedRadio:
    """An in-process BLE world: one central (used by the bleak backends) and
    any number of peripherals, on a :class:`FaultyLink`.

    Use inside a running asyncio loop::

        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = BleakClient(twin.address, backend=BumbleClient, radio=radio)
    """

    def __init__(self, faults: LinkFaults | None = None) -> None:
        self.link = FaultyLink(faults)
        self._central: Device | None = None
        self._central_controller: Controller | None = None
        self._devices: list[tuple[Device, Controller]] = []
        self._next_address = 1
        self._scan_users = 0
        self._scan_lock = asyncio.Lock()
        self.connect_lock = asyncio.Lock()
        self._timers: list[asyncio.TimerHandle] = []
        self._closed = False
        self.names_seen: dict[str, str] = {}  # address -> last advertised local name

    # -- lifetime ---------------------------------------------------------
    async def start(self) -> EmulatedRadio:
        """Create and power on the central. Idempotent."""
        if self._central is None:
            if self._closed:
                raise EmulatedRadioError("this radio was closed")
            controller = EmulatedController("central", link=self.link, public_address=CENTRAL_ADDRESS)
            device = Device(name="spinemon-host", address=hci.Address(CENTRAL_ADDRESS), host=Host(controller, AsyncPipeSink(controller)))
            await asyncio.wait_for(device.power_on(), 5.0)
            self._central, self._central_controller = device, controller
        return self

    async def close(self) -> None:
        """Cancel scheduled faults and power everything off."""
        self._closed = True
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        devices = list(self._devices)
        if self._central is not None:
            devices.append((self._central, self._central_controller))
        for device, _ in devices:
            try:
                await asyncio.wait_for(device.power_off(), 2.0)
            except Exception:  # noqa: BLE001 - best effort teardown
                logger.debug("power_off failed", exc_info=True)
        for _, controller in devices:
            if controller in self.link.controllers:
                self.link.remove_controller(controller)

    async def __aenter__(self) -> EmulatedRadio:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def central(self) -> Device:
        """The central Bumble device (the host's 'adapter')."""
        if self._central is None:
            raise EmulatedRadioError("radio not started: use 'async with EmulatedRadio()' or 'await radio.start()'")
        return self._central

    # -- peripherals ---------------------------------------------------------
    def new_address(self) -> str:
        """A fresh random static address for a peripheral."""
        n = self._next_address
        self._next_address += 1
        return "F0:00:00:00:%02X:%02X" % ((n >> 8) & 0xFF, n & 0xFF)

    async def add_device(self, name: str, address: str | None = None) -> Device:
        """A powered-on Bumble device with its own controller on this link.
        Add GATT services before advertising."""
        await self.start()
        address = address or self.new_address()
        controller = EmulatedController(name, link=self.link, public_address=address)
        device = Device(name=name, address=hci.Address(address), host=Host(controller, AsyncPipeSink(controller)))
        await asyncio.wait_for(device.power_on(), 5.0)
        self._devices.append((device, controller))
        return device

    def controller_of(self, device: Device) -> Controller:
        if device is self._central:
            assert self._central_controller is not None
            return self._central_controller
        for d, c in self._devices:
            if d is device:
                return c
        raise EmulatedRadioError("device is not on this radio")

    # -- faults ----------------------------------------------------------------
    @property
    def faults(self) -> LinkFaults:
        return self.link.faults

    def set_faults(self, faults: LinkFaults) -> None:
        """Change the fault settings now (pacing grid restarts now)."""
        self.link.faults = faults

    @property
    def stats(self) -> LinkStats:
        return self.link.stats

    def drop_next_notifications(self, count: int) -> None:
        self.link.drop_next_notifications(count)

    def drop_connection(
        self,
        peripheral: Device,
        side: Literal["lost", "central", "peripheral"] = "lost",
        reason: int | None = None,
    ) -> bool:
        """Drop the LE connection between the central and ``peripheral`` now.

        ``side="lost"``: the link is lost (both hosts see reason 0x08,
        connection timeout, nothing is sent over the air). ``"central"`` or
        ``"peripheral"``: that controller terminates the connection (sends
        LL_TERMINATE_IND, default reason 0x13) without its host asking, as a
        controller does on a fatal error. Returns False if not connected.
        """
        if side not in ("lost", "central", "peripheral"):
            raise EmulatedRadioError("side must be 'lost', 'central' or 'peripheral'")
        central_c = self.controller_of(self.central)
        periph_c = self.controller_of(peripheral)
        c_conn = self._find_connection(central_c, periph_c)
        p_conn = self._find_connection(periph_c, central_c)
        if c_conn is None and p_conn is None:
            return False
        self.link.flush_between(central_c, periph_c)
        if side == "lost":
            r = HCI_CONNECTION_TIMEOUT if reason is None else reason
            if c_conn is not None:
                central_c.on_le_disconnected(c_conn, r)
            if p_conn is not None:
                periph_c.on_le_disconnected(p_conn, r)
        else:
            r = HCI_REMOTE_USER_TERMINATED if reason is None else reason
            controller, conn = (central_c, c_conn) if side == "central" else (periph_c, p_conn)
            if conn is None:
                return False
            conn.send_ll_control_pdu(ll.TerminateInd(r))
            controller.on_le_disconnected(conn, r)
        return True

    def out_of_range(self, peripheral: Device, seconds: float) -> bool:
        """The wearer walks out of range: the link is lost now (as
        :meth:`drop_connection` ``side="lost"``) and ``peripheral`` cannot be
        heard or connected to for ``seconds``; then it is back. Returns
        whether a connection was dropped."""
        if not (0.0 < seconds <= 3600.0):
            raise EmulatedRadioError("seconds must be in (0, 3600]")
        self.link.out_of_range(self.controller_of(peripheral), asyncio.get_running_loop().time() + seconds)
        return self.drop_connection(peripheral, "lost")

    def drop_connection_after(
        self,
        delay_s: float,
        peripheral: Device,
        side: Literal["lost", "central", "peripheral"] = "lost",
        reason: int | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule :meth:`drop_connection` ``delay_s`` from now (cancellable)."""
        if not (0.0 <= delay_s <= 3600.0):
            raise EmulatedRadioError("delay_s must be in 0 .. 3600 s")
        handle = asyncio.get_running_loop().call_later(delay_s, self.drop_connection, peripheral, side, reason)
        self._timers.append(handle)
        return handle

    @staticmethod
    def _find_connection(owner: Controller, peer: Controller):
        for address in (peer.random_address, peer.public_address):
            conn = owner.le_connections.get(address)
            if conn is not None:
                return conn
        return None

    # -- scanning (shared by scanners) -------------------------------------------
    async def acquire_scan(self, active: bool = True) -> None:
        async with self._scan_lock:
            self._scan_users += 1
            if self._scan_users == 1:
                await asyncio.wait_for(self.central.start_scanning(active=active, filter_duplicates=False), 5.0)

    async def release_scan(self) -> None:
        async with self._scan_lock:
            if self._scan_users == 0:
                return
            self._scan_users -= 1
            if self._scan_users == 0 and self._central is not None and not self._closed:
                await asyncio.wait_for(self.central.stop_scanning(), 5.0)
