"""The real firmware, under MicroPython, as the emulated radio's peripheral.

:class:`FirmwareBridge` starts the firmware (``main.build_device`` +
``app.App`` with fake IMUs, ``tests/firmware/fakes/bridge_board.py``) in a
MicroPython unix-port subprocess whose ``bluetooth`` module is
``bluetooth_bridge`` (a ``fake_bluetooth.BLE`` whose outward calls go over a
Unix socket), and puts a :class:`~tests.support.emulated_ble.twin.TwinPeripheral`
on the air for it::

    firmware:  gatts_register_services  ->  checked against the twin's table
               gap_advertise            ->  twin advertises (name from the firmware)
               gatts_notify(stream)     ->  twin.notify_stream
               gatts_notify(status)     ->  twin.notify_status (ACK, ERROR, STATUS)
               gatts_write(status)      ->  twin.set_status (the STATUS read value)
               gatts_write(battery)     ->  twin.set_battery
               gap_disconnect           ->  twin.disconnect
               motor PWM duty           ->  :attr:`FirmwareBridge.motor`
    host:      central connects         ->  _IRQ_CENTRAL_CONNECT
               ATT MTU exchanged        ->  _IRQ_MTU_EXCHANGED
               COMMAND written          ->  _IRQ_GATTS_WRITE (value readable by gatts_read)
               disconnection            ->  _IRQ_CENTRAL_DISCONNECT
               link encrypted (pairing) ->  _IRQ_ENCRYPTION_UPDATE
               Bumble key store get/set ->  _IRQ_GET_SECRET / _IRQ_SET_SECRET
                                            (the firmware's answer is the store's)
    firmware:  config(bond, le_secure, mitm, io) -> the twin's pairing config;
               *_ENCRYPTED flags        ->  the twin's attribute permissions

Every message from the firmware that carries a device time (its own
``clock.Clock``, the clock of the SAMPLES timestamps) also gives a bound on
the offset between that clock and the host's loop clock; :meth:`FirmwareBridge.device_to_host`
uses the tightest one (the smallest observed socket delay, tens of
microseconds), so latencies can be split into device, link and host parts.

Use inside a running loop, with a radio::

    async with EmulatedRadio(LinkFaults(connection_interval_s=0.015)) as radio:
        async with await FirmwareBridge.start(radio, FirmwareOptions(micropython=exe, path=dirs)) as fw:
            async with BleakClient(fw.twin.address, backend=BumbleClient, radio=radio) as client:
                ...
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import json

from bumble import att, gatt
from bumble.core import UUID
from bumble.device import Connection
from bumble.keys import KeyStore, PairingKeys

import spinemon_protocol as P

from .backend import bleak_uuid
from .link import EmulatedRadio, EmulatedRadioError
from .twin import TwinInfo, TwinPeripheral, TwinSecurity

__all__ = [
    "BridgeError",
    "FirmwareOptions",
    "MotorChange",
    "DeviceNotification",
    "IrqDelivery",
    "FirmwareBridge",
    "firmware_gatt_table",
    "twin_gatt_table",
]

# Message numbers: the same as tests/firmware/fakes/bluetooth_bridge.py.
BRIDGE_VERSION = 2
M_HELLO = 0x01
M_REGISTER = 0x02
M_ADVERTISE = 0x03
M_VALUE = 0x04
M_NOTIFY = 0x05
M_DISCONNECT = 0x06
M_MOTOR = 0x07
M_LOG = 0x08
M_IRQ_DONE = 0x09
M_BYE = 0x0A
M_SECURITY = 0x0B
M_SECRET = 0x0C
M_PAIR = 0x0D
H_CONNECT = 0x81
H_DISCONNECT = 0x82
H_MTU = 0x83
H_WRITE = 0x84
H_STOP = 0x85
H_HARNESS = 0x86
H_ENCRYPTION = 0x87
H_GET_SECRET = 0x88
H_SET_SECRET = 0x89

SEC_PEER = 2  # NimBLE's secret type for a peer's keys
# MicroPython characteristic flags that ask the stack for a secure link
FLAGS_READ_SECURE = 0x0200 | 0x0400  # _FLAG_READ_ENCRYPTED | _FLAG_READ_AUTHENTICATED
FLAGS_WRITE_SECURE = 0x1000 | 0x2000  # _FLAG_WRITE_ENCRYPTED | _FLAG_WRITE_AUTHENTICATED

IRQ_NAMES = {
    1: "central_connect",
    2: "central_disconnect",
    3: "gatts_write",
    21: "mtu_exchanged",
    28: "encryption_update",
    29: "get_secret",
    30: "set_secret",
}
SENSORS = {"upper": 0, "lower": 1}

_STANDARD_SERVICES = {UUID.from_16_bits(0x1800), UUID.from_16_bits(0x1801)}  # GAP, GATT: the stack's own


class BridgeError(EmulatedRadioError):
    """The firmware process or the bridge to it failed: it did not start, it
    exited, or its GATT table is not the one the protocol module defines."""


@dataclasses.dataclass(frozen=True)
class FirmwareOptions:
    """How to run the firmware.

    Attributes:
        micropython: path of the MicroPython unix-port interpreter.
        path: MICROPYPATH directories, in order: the protocol module's,
            ``firmware/`` and ``tests/firmware/fakes/``.
        chip: fake IMU model, ``"lsm6dso"`` or ``"mpu6050"``.
        two_imus: upper and lower IMU (else upper only).
        heap_mb: MicroPython heap size.
        max_run_s: the firmware stops by itself after this long (a safety net).
        start_timeout_s: time allowed for boot, GATT registration and advertising.
    """

    micropython: str
    path: tuple[Path, ...]
    chip: str = "lsm6dso"
    two_imus: bool = True
    heap_mb: int = 8
    max_run_s: float = 120.0
    start_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.micropython or not Path(self.micropython).exists():
            raise BridgeError("micropython interpreter not found: %r" % (self.micropython,))
        object.__setattr__(self, "path", tuple(Path(p) for p in self.path))
        if not self.path:
            raise BridgeError("path must name the protocol, firmware and fakes directories")
        if self.chip not in ("lsm6dso", "mpu6050"):
            raise BridgeError("chip must be 'lsm6dso' or 'mpu6050'")
        if not (1 <= self.heap_mb <= 256):
            raise BridgeError("heap_mb must be 1..256")
        if not (1.0 <= self.max_run_s <= 3600.0):
            raise BridgeError("max_run_s must be 1..3600 s")
        if not (0.5 <= self.start_timeout_s <= 120.0):
            raise BridgeError("start_timeout_s must be 0.5..120 s")


@dataclasses.dataclass(frozen=True)
class MotorChange:
    """The firmware set the motor PWM duty (0 = off) at device time ``t_dev``
    (s); the host heard of it at loop time ``t_host``."""

    t_dev: float
    duty: int
    t_host: float


@dataclasses.dataclass(frozen=True)
class DeviceNotification:
    """The firmware called gatts_notify at device time ``t_dev`` (s) on
    characteristic ``char`` ("stream", "status", ...); ``t_host`` is when the
    bridge got it (loop time), ``sent`` whether the twin notified it (False:
    no subscriber)."""

    t_dev: float
    t_host: float
    char: str
    data: bytes
    sent: bool


@dataclasses.dataclass(frozen=True)
class IrqDelivery:
    """An IRQ (``event`` name) the firmware's handler returned from at device time ``t_dev``."""

    t_dev: float
    t_host: float
    event: str
    handle: int


def _uuid(text: str) -> UUID:
    return UUID.from_16_bits(int(text, 16)) if len(text) == 4 else UUID(text)


def _parse_table(p: bytes) -> list[tuple[UUID, list[tuple[UUID, int, int]]]]:
    """M_REGISTER payload -> [(service uuid, [(char uuid, flags, value handle)])]."""
    out = []
    i = 1
    for _ in range(p[0]):
        n = p[i]
        svc = _uuid(p[i + 1 : i + 1 + n].decode())
        i += 1 + n
        chars = []
        count = p[i]
        i += 1
        for _ in range(count):
            n = p[i]
            cu = _uuid(p[i + 1 : i + 1 + n].decode())
            i += 1 + n
            flags, handle = struct.unpack_from("<HH", p, i)
            i += 4
            chars.append((cu, flags, handle))
        out.append((svc, chars))
    return out


def firmware_gatt_table(table) -> set[tuple[str, str, int, bool, bool]]:
    """(service, characteristic, properties, read/subscribe needs encryption,
    write needs encryption) of a registered table, UUIDs spelled as bleak
    does (128-bit, lower case)."""
    return {
        (bleak_uuid(s), bleak_uuid(c), int(f) & 0xFF, bool(f & FLAGS_READ_SECURE), bool(f & FLAGS_WRITE_SECURE))
        for s, chars in table
        for c, f, _ in chars
    }


def firmware_requires_encryption(table) -> bool:
    """Does any registered characteristic carry an encrypted/authenticated flag?"""
    return any(f & (FLAGS_READ_SECURE | FLAGS_WRITE_SECURE) for _s, chars in table for _c, f, _h in chars)


def twin_gatt_table(twin: TwinPeripheral) -> set[tuple[str, str, int, bool, bool]]:
    """The same tuples for the twin's own (protocol-constant) GATT table:
    reading it, or subscribing to it (its CCCD), needs encryption; writing it does."""
    A = att.Attribute
    attrs = twin.device.gatt_server.attributes
    cccd = UUID.from_16_bits(0x2902)
    out = set()
    for a in attrs:
        if isinstance(a, gatt.Service) and a.uuid not in _STANDARD_SERVICES:
            for c in a.characteristics:
                read = bool(c.permissions & (A.READ_REQUIRES_ENCRYPTION | A.READ_REQUIRES_AUTHENTICATION))
                i = attrs.index(c)
                for d in attrs[i + 1 : i + 3]:
                    if isinstance(d, gatt.Descriptor) and d.type == cccd and d.permissions & A.WRITE_REQUIRES_ENCRYPTION:
                        read = True
                write = bool(c.permissions & (A.WRITE_REQUIRES_ENCRYPTION | A.WRITE_REQUIRES_AUTHENTICATION))
                out.add((bleak_uuid(a.uuid), bleak_uuid(c.uuid), int(c.properties), read, write))
    return out


class FirmwareKeyStore(KeyStore):
    """The twin's Bumble key store, kept by the firmware: every look-up and
    update is an _IRQ_GET_SECRET / _IRQ_SET_SECRET in the firmware, whose
    answer (its bond policy) is final. Values are the Bumble PairingKeys as
    JSON, opaque to the firmware, under secret type SEC_PEER and the peer
    address as key. ``refused`` counts updates the firmware would not store;
    ``served`` holds the peers whose keys the firmware handed out."""

    def __init__(self, bridge: FirmwareBridge, timeout_s: float = 2.0) -> None:
        self.bridge = bridge
        self.timeout_s = timeout_s
        self.refused = 0
        self.served: set[str] = set()

    @staticmethod
    def _key(name: str) -> bytes:
        """The firmware's key for a peer: its address without Bumble's type
        qualifier (Bumble stores a bond under "ADDR/P" and looks it up, when
        the peer re-encrypts, under the address it connected with)."""
        return name.split("/")[0].encode()

    async def get(self, name: str) -> PairingKeys | None:
        value = await self.bridge.secret_get(SEC_PEER, self._key(name), self.timeout_s)
        if value is None:
            return None
        try:
            keys = PairingKeys.from_dict(json.loads(value.decode())["keys"])
        except (ValueError, KeyError, TypeError) as e:
            raise BridgeError("the firmware returned a bond that is not ours: %r" % value[:40]) from e
        self.served.add(name)
        return keys

    async def update(self, name: str, keys: PairingKeys) -> None:
        value = json.dumps({"name": name, "keys": keys.to_dict()}).encode()
        if not await self.bridge.secret_set(SEC_PEER, self._key(name), value, self.timeout_s):
            self.refused += 1
            raise BridgeError("the firmware refused to store a bond with %s (not in pairing mode)" % name)

    async def delete(self, name: str) -> None:
        await self.bridge.secret_set(SEC_PEER, self._key(name), None, self.timeout_s)

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        out = []
        for i in range(64):
            value = await self.bridge.secret_get(SEC_PEER, None, self.timeout_s, index=i)
            if value is None:
                break
            try:
                d = json.loads(value.decode())
                out.append((d["name"], PairingKeys.from_dict(d["keys"])))
            except (ValueError, KeyError, TypeError):
                continue
        return out


def _ad_field(data: bytes, ad_type: int) -> bytes | None:
    i = 0
    while i + 1 < len(data):
        n = data[i]
        if n == 0 or i + 1 + n > len(data):
            return None
        if data[i + 1] == ad_type:
            return data[i + 2 : i + 1 + n]
        i += 1 + n
    return None


class FirmwareBridge:
    """The firmware process and its twin. Create with ``await FirmwareBridge.start(radio, options)``.

    Inspectable: ``twin``, ``table`` (the firmware's registered GATT table),
    ``motor`` (:class:`MotorChange` log), ``notifications``
    (:class:`DeviceNotification` log), ``irqs`` (:class:`IrqDelivery` log),
    ``advertise_log``, ``log_lines`` (the firmware's log), ``output_tail`` (its stdout + stderr), ``errors`` (bridge
    problems that did not stop it, e.g. a frame too long for the MTU),
    ``returncode`` once the process ended.
    """

    def __init__(self, radio: EmulatedRadio, options: FirmwareOptions) -> None:
        self.radio = radio
        self.options = options
        self.twin: TwinPeripheral | None = None
        self.table: list[tuple[UUID, list[tuple[UUID, int, int]]]] = []
        self.handles: dict[int, str] = {}  # value handle -> characteristic name
        self.values: dict[int, bytes] = {}
        self.advertising: tuple[int, bytes, bytes] | None = None  # interval_us, adv, resp
        self.advertise_log: list[tuple[float, int]] = []  # (t_dev, interval_us; 0 = stopped)
        self.motor: list[MotorChange] = []
        self.notifications: list[DeviceNotification] = []
        self.irqs: list[IrqDelivery] = []
        self.log_lines: list[str] = []
        self.output_tail: collections.deque[str] = collections.deque(maxlen=200)
        self.errors: list[str] = []
        self.hello: tuple[int, float] | None = None
        self.returncode: int | None = None
        self._offset: float | None = None  # min(t_host - t_dev)
        self._dir = tempfile.mkdtemp(prefix="spinemon-bridge-")
        self._sock_path = os.path.join(self._dir, "bridge.sock")
        self._server: asyncio.AbstractServer | None = None
        self._client: asyncio.Future | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task] = []
        self._changed = asyncio.Event()
        self._closed = False
        self._bye = False
        self._conn: Connection | None = None
        self.security_config: tuple[int, int, int, int] | None = None  # bond, le_secure, mitm, io from config()
        self.pair_requests: list[int] = []  # gap_pair calls (conn handles)
        self.keystore: FirmwareKeyStore | None = None
        self._secret_req = 0
        self._secret_wait: dict[int, asyncio.Future] = {}

    # -- lifetime -------------------------------------------------------------------------
    @classmethod
    async def start(cls, radio: EmulatedRadio, options: FirmwareOptions) -> FirmwareBridge:
        """Start the firmware, wait until it registered its GATT table and
        advertises, and put its twin on ``radio``. Raises :class:`BridgeError`."""
        self = cls(radio, options)
        try:
            await asyncio.wait_for(self._start(), options.start_timeout_s)
        except BaseException as e:
            await self.close()
            if isinstance(e, TimeoutError):
                raise BridgeError("the firmware did not boot and advertise within %.3g s%s" % (options.start_timeout_s, self._output_note())) from None
            raise
        return self

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._client = loop.create_future()

        def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._client is not None and not self._client.done():
                self._client.set_result((reader, writer))
            else:
                writer.close()

        self._server = await asyncio.start_unix_server(on_client, self._sock_path)
        o = self.options
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join(str(p) for p in o.path) + os.pathsep + ".frozen"
        script = "import bridge_board; bridge_board.run(%r, %r, max_ms=%d, two=%r, chip=%r)" % (
            self._sock_path,
            self._dir,
            int(o.max_run_s * 1000),
            bool(o.two_imus),
            o.chip,
        )
        self._proc = await asyncio.create_subprocess_exec(
            o.micropython,
            "-X",
            "heapsize=%dM" % o.heap_mb,
            "-c",
            script,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,  # MicroPython prints tracebacks on stdout
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        output_task = loop.create_task(self._drain_output())
        self._tasks.append(output_task)
        exited = loop.create_task(self._proc.wait())
        done, _ = await asyncio.wait({self._client, exited}, return_when=asyncio.FIRST_COMPLETED)
        if self._client not in done:
            await asyncio.wait({output_task}, timeout=1.0)  # its last words
            raise BridgeError("the firmware exited with %s before connecting%s" % (self._proc.returncode, self._output_note()))
        exited.cancel()
        self._reader, self._writer = self._client.result()
        self._tasks.append(loop.create_task(self._read_loop()))
        await self.wait_until(lambda: self.hello is not None and bool(self.table) and self.advertising is not None, o.start_timeout_s)
        await self._make_twin()

    async def _make_twin(self) -> None:
        interval_us, _adv, resp = self.advertising  # type: ignore[misc]
        name = (_ad_field(resp, 0x09) or _ad_field(_adv, 0x09) or b"").decode("utf-8", "replace")
        prefix = P.DEVICE_NAME_PREFIX + "-"
        if not name.startswith(prefix):
            raise BridgeError("the firmware advertises the name %r, not %s<suffix>" % (name, prefix))
        texts = {k: self.values.get(self._handle_of(k), b"").decode("utf-8", "replace") for k in ("manufacturer", "model", "firmware_revision")}
        battery = self.values.get(self._handle_of("battery"), b"\x00")
        info = TwinInfo(
            suffix=name[len(prefix) :],
            manufacturer=texts["manufacturer"],
            model=texts["model"],
            firmware_revision=texts["firmware_revision"],
            battery_pct=min(100, battery[0] if battery else 0),
            advertising_interval_ms=min(10240.0, max(20.0, interval_us / 1000.0)),
        )
        bond, le_secure, mitm, io = self.security_config or (0, 0, 0, 3)
        security = TwinSecurity(
            require_encryption=firmware_requires_encryption(self.table), bonding=bool(bond), le_secure=bool(le_secure), mitm=bool(mitm), io_capability=io if io <= 4 else 3
        )
        twin = await TwinPeripheral.create(self.radio, info, advertise=False, security=security)
        self.keystore = FirmwareKeyStore(self)
        twin.device.keystore = self.keystore
        ours, theirs = firmware_gatt_table(self.table), twin_gatt_table(twin)
        if ours != theirs:
            raise BridgeError(
                "the firmware's GATT table differs from the protocol's: only in firmware %s; only in twin %s"
                % (sorted(ours - theirs), sorted(theirs - ours))
            )
        status = self.values.get(self._handle_of("status"))
        if status:
            twin.set_status(status)  # the firmware's STATUS value so far
        twin.on_command = self._forward_command
        twin.device.on(twin.device.EVENT_CONNECTION, self._on_connection)
        self.twin = twin
        if self.advertising is not None:
            await twin.start_advertising()

    async def stop(self, timeout: float = 5.0) -> int | None:
        """Ask the firmware to stop (it switches the motor off) and wait for
        the process to end; kill it if it does not. Returns its exit status."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self._send(H_STOP)
            try:
                await asyncio.wait_for(self._proc.wait(), timeout)
            except TimeoutError:
                self.errors.append("the firmware did not stop within %.3g s; killed" % timeout)
                self._kill()
                await asyncio.wait_for(self._proc.wait(), 5.0)
        self.returncode = self._proc.returncode
        return self.returncode

    def _kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            try:
                self._proc.kill()
            except ProcessLookupError:
                pass

    async def close(self) -> None:
        """Stop the firmware (killing it if needed), take its twin off the air
        and free everything. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._proc is not None:
                try:
                    await self.stop(timeout=3.0)
                except Exception:  # noqa: BLE001 - teardown must finish
                    self._kill()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=1.0)  # the last messages and output
            if self.twin is not None:
                try:
                    if self.twin.connected:
                        await self.twin.disconnect()  # the firmware is gone, so is its link
                    await self.twin.stop_advertising()
                except Exception:  # noqa: BLE001 - best effort
                    pass
        finally:
            self._kill()
            if self._writer is not None:
                self._writer.close()
            if self._server is not None:
                self._server.close()
            for t in self._tasks:
                t.cancel()
            for t in self._tasks:
                try:
                    await asyncio.wait_for(t, 1.0)
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
            shutil.rmtree(self._dir, ignore_errors=True)

    async def __aenter__(self) -> FirmwareBridge:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def ended_cleanly(self) -> bool:
        """The firmware said goodbye (its app stopped and the motor is off)."""
        return self._bye

    # -- harness ----------------------------------------------------------------------------
    def play_motion(self, sensor: str, profile: Sequence[tuple[float, float]]) -> None:
        """The wearer moves: the ``sensor``'s board tilts (about its Y axis,
        flexion positive) through the piecewise-linear ``profile`` of
        ``(seconds from now, degrees)`` points, starting when the firmware
        gets this message."""
        if sensor not in SENSORS:
            raise BridgeError("sensor must be 'upper' or 'lower'")
        pts = [(float(t), float(d)) for t, d in profile]
        if not pts or len(pts) > 1000 or any(b[0] < a[0] for a, b in zip(pts, pts[1:])):
            raise BridgeError("profile must be 1..1000 points with non-decreasing times")
        payload = struct.pack("<BH", SENSORS[sensor], len(pts)) + b"".join(struct.pack("<ff", t, d) for t, d in pts)
        self._send(H_HARNESS, payload)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` holds (checked after every message from
        the firmware). Raises :class:`BridgeError` if the firmware ends first
        and :class:`TimeoutError` after ``timeout`` seconds."""

        async def _wait() -> None:
            while not predicate():
                if self._proc is not None and self._proc.returncode is not None and self._reader is not None and self._reader.at_eof():
                    raise BridgeError("the firmware exited with %s%s" % (self._proc.returncode, self._output_note()))
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.1)
                except TimeoutError:
                    pass

        await asyncio.wait_for(_wait(), timeout)

    # -- clocks -------------------------------------------------------------------------------
    @property
    def clock_offset_s(self) -> float:
        """host loop time - device time, from the least-delayed message so far."""
        if self._offset is None:
            raise BridgeError("no timed message from the firmware yet")
        return self._offset

    def device_to_host(self, t_dev: float) -> float:
        """A device time (s) on the host's loop clock."""
        return t_dev + self.clock_offset_s

    def host_to_device(self, t_host: float) -> float:
        """A host loop time (s) on the firmware's clock."""
        return t_host - self.clock_offset_s

    def motor_intervals(self) -> list[tuple[float, float | None, int]]:
        """[(t_on, t_off or None, duty)] in device seconds, from :attr:`motor`."""
        out: list[tuple[float, float | None, int]] = []
        start: MotorChange | None = None
        for m in self.motor:
            if start is not None and m.duty != start.duty:
                out.append((start.t_dev, m.t_dev, start.duty))
                start = None
            if m.duty and start is None:
                start = m
        if start is not None:
            out.append((start.t_dev, None, start.duty))
        return out

    # -- firmware -> host ---------------------------------------------------------------------
    def _handle_of(self, name: str) -> int:
        for h, n in self.handles.items():
            if n == name:
                return h
        return -1

    def _stamp(self, t_dev_us: int, t_host: float) -> float:
        t_dev = t_dev_us / 1e6
        off = t_host - t_dev
        if self._offset is None or off < self._offset:
            self._offset = off
        return t_dev

    def _output_note(self) -> str:
        tail = "".join(list(self.output_tail)[-30:])
        return ("\n--- firmware output ---\n" + tail) if tail else ""

    async def _drain_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            line = await self._proc.stdout.readline()
            if not line:
                return
            self.output_tail.append(line.decode("utf-8", "replace"))

    async def _read_loop(self) -> None:
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = await self._reader.readexactly(3)
                t_host = loop.time()
                n, kind = struct.unpack("<HB", head)
                payload = await self._reader.readexactly(n - 1) if n > 1 else b""
                try:
                    await self._on_message(kind, payload, t_host)
                except EmulatedRadioError as e:
                    self.errors.append(str(e))
                self._changed.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._changed.set()

    async def _on_message(self, kind: int, p: bytes, t_host: float) -> None:
        if kind == M_NOTIFY:
            t_us, _conn, handle = struct.unpack_from("<QHH", p, 0)
            t_dev = self._stamp(t_us, t_host)
            data = p[12:]
            char = self.handles.get(handle, "handle %d" % handle)
            sent = False
            if self.twin is not None:
                if char == "stream":
                    sent = await self.twin.notify_stream(data)
                elif char == "status":
                    sent = await self.twin.notify_status(data)
                elif char == "battery":
                    await self.twin.set_battery(min(100, data[0] if data else 0))
                    sent = True
            self.notifications.append(DeviceNotification(t_dev, t_host, char, data, sent))
        elif kind == M_MOTOR:
            t_us, duty = struct.unpack_from("<QH", p, 0)
            self.motor.append(MotorChange(self._stamp(t_us, t_host), duty, t_host))
        elif kind == M_IRQ_DONE:
            t_us, event, _conn, handle = struct.unpack_from("<QBHH", p, 0)
            self.irqs.append(IrqDelivery(self._stamp(t_us, t_host), t_host, IRQ_NAMES.get(event, str(event)), handle))
        elif kind == M_VALUE:
            (handle,) = struct.unpack_from("<H", p, 0)
            value = p[2:]
            self.values[handle] = value
            name = self.handles.get(handle)
            if self.twin is not None:
                if name == "status":
                    self.twin.set_status(value)
                elif name == "battery" and value:
                    await self.twin.set_battery(min(100, value[0]))
        elif kind == M_ADVERTISE:
            t_us, interval, _connectable = struct.unpack_from("<QIB", p, 0)
            self.advertise_log.append((self._stamp(t_us, t_host), interval))
            n = p[13]
            adv = p[14 : 14 + n]
            resp = p[15 + n : 15 + n + p[14 + n]]
            self.advertising = (interval, adv, resp) if interval else None
            if self.twin is not None:
                if interval:
                    await self.twin.start_advertising()
                else:
                    await self.twin.stop_advertising()
        elif kind == M_REGISTER:
            self.table = _parse_table(p)
            self.handles = {}
            names = {
                UUID(P.STREAM_CHAR_UUID): "stream",
                UUID(P.COMMAND_CHAR_UUID): "command",
                UUID(P.STATUS_CHAR_UUID): "status",
                UUID.from_16_bits(P.BATTERY_LEVEL_UUID16): "battery",
                UUID.from_16_bits(P.MANUFACTURER_NAME_UUID16): "manufacturer",
                UUID.from_16_bits(P.MODEL_NUMBER_UUID16): "model",
                UUID.from_16_bits(P.FIRMWARE_REVISION_UUID16): "firmware_revision",
            }
            for _svc, chars in self.table:
                for cu, _flags, handle in chars:
                    self.handles[handle] = names.get(cu, str(cu))
        elif kind == M_DISCONNECT:
            if self.twin is not None:
                await self.twin.disconnect()
        elif kind == M_LOG:
            self.log_lines.append(p.decode("utf-8", "replace"))
        elif kind == M_HELLO:
            version, t_us = struct.unpack_from("<BQ", p, 0)
            if version != BRIDGE_VERSION:
                raise BridgeError("bridge version %d on the firmware side, %d here" % (version, BRIDGE_VERSION))
            self.hello = (version, self._stamp(t_us, t_host))
        elif kind == M_SECRET:
            req, ok = struct.unpack_from("<HB", p, 0)
            fut = self._secret_wait.pop(req, None)
            if fut is not None and not fut.done():
                fut.set_result((bool(ok), bytes(p[3:])))
        elif kind == M_SECURITY:
            self.security_config = (p[0], p[1], p[2], p[3])
        elif kind == M_PAIR:
            self.pair_requests.append(struct.unpack_from("<H", p, 0)[0])
        elif kind == M_BYE:
            self._stamp(struct.unpack_from("<Q", p, 0)[0], t_host)
            self._bye = True
        else:
            self.errors.append("unknown message 0x%02x from the firmware" % kind)

    # -- host -> firmware ------------------------------------------------------------------------
    def _send(self, kind: int, payload: bytes = b"") -> None:
        if self._writer is None or self._writer.is_closing():
            raise BridgeError("the bridge to the firmware is closed")
        self._writer.write(struct.pack("<HB", len(payload) + 1, kind) + payload)

    async def _secret(self, kind: int, payload: bytes, timeout: float) -> tuple[bool, bytes]:
        self._secret_req = (self._secret_req + 1) & 0xFFFF
        req = self._secret_req
        fut = asyncio.get_running_loop().create_future()
        self._secret_wait[req] = fut
        try:
            self._send(kind, struct.pack("<H", req) + payload)
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise BridgeError("the firmware did not answer a key store request within %.3g s" % timeout) from None
        finally:
            self._secret_wait.pop(req, None)

    async def secret_get(self, sec_type: int, key: bytes | None, timeout: float = 2.0, index: int = 0) -> bytes | None:
        """_IRQ_GET_SECRET in the firmware: the stored value, or None."""
        payload = struct.pack("<BH", sec_type, 0xFFFF if key is not None else index) + (key or b"")
        ok, value = await self._secret(H_GET_SECRET, payload, timeout)
        return value if ok else None

    async def secret_set(self, sec_type: int, key: bytes, value: bytes | None, timeout: float = 2.0) -> bool:
        """_IRQ_SET_SECRET in the firmware (value None: delete); its answer."""
        if len(key) > 255:
            raise BridgeError("secret keys are at most 255 bytes")
        payload = struct.pack("<BBB", sec_type, 1 if value is None else 0, len(key)) + key + (value or b"")
        ok, _ = await self._secret(H_SET_SECRET, payload, timeout)
        return ok

    def _send_encryption(self, connection: Connection, bonded: bool) -> None:
        if self._conn is connection and self._writer is not None and not self._writer.is_closing():
            enc = 1 if connection.encryption else 0
            auth = 1 if (enc and connection.authenticated and self.security_config and self.security_config[2]) else 0
            self._send(H_ENCRYPTION, struct.pack("<HBBBB", connection.handle, enc, auth, 1 if (enc and bonded) else 0, connection.encryption_key_size or 0))

    @staticmethod
    def _peer(connection: Connection) -> bytes:
        a = connection.peer_address
        return struct.pack("<HB", connection.handle, 1 if a.is_random else 0) + bytes(a.address_bytes)

    def _on_connection(self, connection: Connection) -> None:
        self._conn = connection
        peer = self._peer(connection)
        self._send(H_CONNECT, peer)

        def on_mtu() -> None:
            if self._conn is connection and self._writer is not None and not self._writer.is_closing():
                self._send(H_MTU, struct.pack("<HH", connection.handle, connection.att_mtu))

        def on_disconnection(_reason: int) -> None:
            if self._conn is connection:
                self._conn = None
            if self._writer is not None and not self._writer.is_closing():
                self._send(H_DISCONNECT, peer)

        pairing = {"active": False}

        def on_pairing_start() -> None:
            pairing["active"] = True

        def on_pairing(_keys) -> None:
            # NimBLE reports the encryption once the keys are handed to the
            # app (SET_SECRET); Bumble encrypts first, so it is held until now.
            pairing["active"] = False
            bonding = self.security_config is not None and bool(self.security_config[0])
            self._send_encryption(connection, bonded=bonding)

        def on_pairing_failure(_reason) -> None:
            pairing["active"] = False

        def on_encryption_change() -> None:
            if pairing["active"]:
                return
            ks = self.keystore
            bonded = ks is not None and str(connection.peer_address) in ks.served
            self._send_encryption(connection, bonded=bonded)

        connection.on(connection.EVENT_CONNECTION_ATT_MTU_UPDATE, on_mtu)
        connection.on(connection.EVENT_DISCONNECTION, on_disconnection)
        connection.on(connection.EVENT_PAIRING_START, on_pairing_start)
        connection.on(connection.EVENT_PAIRING, on_pairing)
        connection.on(connection.EVENT_PAIRING_FAILURE, on_pairing_failure)
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, on_encryption_change)

    def _forward_command(self, frame: bytes) -> None:
        """The twin got a COMMAND write: the firmware gets _IRQ_GATTS_WRITE
        and answers by itself (ACK/ERROR notified on STATUS)."""
        conn = self._conn
        if conn is None:
            return None
        self._send(H_WRITE, struct.pack("<HH", conn.handle, self._handle_of("command")) + bytes(frame))
        return None
