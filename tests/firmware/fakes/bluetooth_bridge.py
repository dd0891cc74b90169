# A stand-in for MicroPython's `bluetooth` module whose radio is on the other
# side of a local socket: the host's emulated BLE (Bumble) twin peripheral
# (tests.support.emulated_ble.firmware_bridge.FirmwareBridge).
#
# It is fake_bluetooth.BLE (same API, IRQ tuples, handle numbering, value
# buffers) with every outward call forwarded over the socket:
#   gap_advertise, gatts_register_services, gatts_write, gatts_notify,
#   gap_disconnect
# and the central's actions coming back as IRQs (delivered from an asyncio
# task, between the app's tasks, as the real stack's scheduled IRQs are):
#   connect -> _IRQ_CENTRAL_CONNECT, disconnect -> _IRQ_CENTRAL_DISCONNECT,
#   MTU exchange -> _IRQ_MTU_EXCHANGED, command write -> _IRQ_GATTS_WRITE.
# Security: the firmware's config(bond=, le_secure=, mitm=, io=) goes to the
# twin (M_SECURITY), which pairs through Bumble's Security Manager; the link's
# encryption changes come back as _IRQ_ENCRYPTION_UPDATE, and the twin's key
# store is the firmware's own: Bumble's key look-ups and updates arrive as
# _IRQ_GET_SECRET / _IRQ_SET_SECRET, and the handler's answer goes back
# (M_SECRET) - so the firmware's bond policy decides, as on NimBLE.
#
# Messages both ways: u16 length (of type + payload, little-endian), u8 type,
# payload. Device times are the firmware's own clock (clock.Clock.now_us,
# u64). The host side keeps a copy of the message numbers;
# tests/system/test_full_chain.py checks that the two copies agree.

import select
import struct

from fake_bluetooth import BLE as _FakeBLE
from fake_bluetooth import UUID  # noqa: F401  (bluetooth.UUID)
from fake_bluetooth import (  # noqa: F401
    FLAG_INDICATE,
    FLAG_NOTIFY,
    FLAG_READ,
    FLAG_WRITE,
    FLAG_WRITE_NO_RESPONSE,
    ENOTCONN,
)

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


BRIDGE_VERSION = const(2)

# firmware -> host
M_HELLO = const(0x01)  # version u8, t_dev u64
M_REGISTER = const(0x02)  # services (see _table)
M_ADVERTISE = const(0x03)  # t_dev u64, interval_us u32 (0 = stop), connectable u8, adv (u8 len), resp (u8 len)
M_VALUE = const(0x04)  # handle u16, value (rest): gatts_write of a local value
M_NOTIFY = const(0x05)  # t_dev u64, conn u16, handle u16, data (rest)
M_DISCONNECT = const(0x06)  # conn u16: gap_disconnect
M_MOTOR = const(0x07)  # t_dev u64, duty u16: the motor PWM changed
M_LOG = const(0x08)  # text (rest)
M_IRQ_DONE = const(0x09)  # t_dev u64, event u8, conn u16, handle u16: an IRQ was delivered
M_BYE = const(0x0A)  # t_dev u64: the firmware stopped
M_SECURITY = const(0x0B)  # bond u8, le_secure u8, mitm u8, io u8: config() of the Security Manager
M_SECRET = const(0x0C)  # req u16, ok u8, value (rest): the answer to H_GET_SECRET / H_SET_SECRET
M_PAIR = const(0x0D)  # conn u16: gap_pair

# host -> firmware
H_CONNECT = const(0x81)  # conn u16, addr_type u8, addr 6 bytes
H_DISCONNECT = const(0x82)  # conn u16, addr_type u8, addr 6 bytes
H_MTU = const(0x83)  # conn u16, mtu u16
H_WRITE = const(0x84)  # conn u16, handle u16, data (rest)
H_STOP = const(0x85)  # end the run
H_HARNESS = const(0x86)  # not BLE: handed to BLE.on_harness(payload) (e.g. the wearer's motion)
H_ENCRYPTION = const(0x87)  # conn u16, encrypted u8, authenticated u8, bonded u8, key_size u8
H_GET_SECRET = const(0x88)  # req u16, sec_type u8, index u16 (0xFFFF: by key), key (rest)
H_SET_SECRET = const(0x89)  # req u16, sec_type u8, delete u8, key (u8 len), value (rest)

_EAGAIN = const(11)


def _uuid_text(u):
    v = u.value
    if isinstance(v, int):
        return "%04x" % v
    return v


def _table(services, handles):
    """M_REGISTER payload: u8 n_services; per service: u8 len + uuid text,
    u8 n_chars; per characteristic: u8 len + uuid text, u16 flags, u16 value handle."""
    out = bytearray((len(services),))
    for i in range(len(services)):
        svc = services[i]
        t = _uuid_text(svc[0]).encode()
        out.append(len(t))
        out.extend(t)
        out.append(len(svc[1]))
        for j in range(len(svc[1])):
            ch = svc[1][j]
            t = _uuid_text(ch[0]).encode()
            out.append(len(t))
            out.extend(t)
            out.extend(struct.pack("<HH", ch[1], handles[i][j]))
    return bytes(out)


class BLE(_FakeBLE):
    """bluetooth.BLE over a socket. `sock`: a connected stream socket (made
    non-blocking here); `clock`: the firmware's clock.Clock (device time of
    every message); `ticks`: the fake ticks source (fake_bluetooth's clock)."""

    def __init__(self, sock, clock, ticks=None, mac=b"\x24\x6f\x28\xa1\xb2\xc3"):
        _FakeBLE.__init__(self, ticks, mac)
        self.sock = sock
        self.device_clock = clock
        sock.setblocking(False)
        self._out_poll = select.poll()
        self._out_poll.register(sock, select.POLLOUT)
        self.on_harness = None  # callable(payload bytes) for H_HARNESS
        self.stopped = False
        self.eof = False
        self.irqs = 0
        self.messages_out = 0
        self._send(M_HELLO, struct.pack("<BQ", BRIDGE_VERSION, self._t()))

    # ---- socket ----------------------------------------------------------------
    def _t(self):
        return self.device_clock.now_us()

    def _send(self, kind, payload=b""):
        msg = struct.pack("<HB", len(payload) + 1, kind) + payload
        mv = memoryview(msg)
        off = 0
        while off < len(msg):
            try:
                n = self.sock.write(mv[off:])
            except OSError as e:
                if e.args[0] != _EAGAIN:
                    raise
                n = None
            if not n:
                self._out_poll.poll(100)  # wait until the socket takes more
                continue
            off += n
        self.messages_out += 1

    def log(self, text):
        self._send(M_LOG, str(text).encode())

    def report_motor(self, duty):
        self._send(M_MOTOR, struct.pack("<QH", self._t(), duty))

    def bye(self):
        self._send(M_BYE, struct.pack("<Q", self._t()))

    # ---- the real API, forwarded -------------------------------------------------
    def config(self, *args, **kw):
        r = _FakeBLE.config(self, *args, **kw)
        if not args and ("bond" in kw or "le_secure" in kw or "mitm" in kw or "io" in kw):
            c = self._config
            self._send(
                M_SECURITY,
                bytes((1 if c.get("bond") else 0, 1 if c.get("le_secure") else 0, 1 if c.get("mitm") else 0, int(c.get("io", 3)) & 0xFF)),
            )
        return r

    def gap_pair(self, conn_handle):
        _FakeBLE.gap_pair(self, conn_handle)
        self._send(M_PAIR, struct.pack("<H", conn_handle))

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        _FakeBLE.gap_advertise(self, interval_us, adv_data, resp_data=resp_data, connectable=connectable)
        if self.adv is None:
            payload = struct.pack("<QIB", self._t(), 0, 0) + b"\x00\x00"
        else:
            iv, adv, resp, conn = self.adv
            payload = struct.pack("<QIB", self._t(), iv, 1 if conn else 0)
            payload += bytes((len(adv),)) + adv + bytes((len(resp),)) + resp
        self._send(M_ADVERTISE, payload)

    def gatts_register_services(self, services_definition):
        handles = _FakeBLE.gatts_register_services(self, services_definition)
        self._send(M_REGISTER, _table(services_definition, handles))
        return handles

    def gatts_write(self, value_handle, data, send_update=False):
        self.values[value_handle] = bytes(data)
        self._send(M_VALUE, struct.pack("<H", value_handle) + bytes(data))
        if send_update:
            for conn in self.connections:
                self.gatts_notify(conn, value_handle)

    def gatts_notify(self, conn_handle, value_handle, data=None):
        if conn_handle not in self.connections:
            raise OSError(ENOTCONN)
        payload = bytes(self.values[value_handle] if data is None else data)
        payload = payload[: self.connections[conn_handle] - 3]  # the stack sends at most ATT_MTU - 3
        self._send(M_NOTIFY, struct.pack("<QHH", self._t(), conn_handle, value_handle) + payload)

    def gap_disconnect(self, conn_handle):
        if conn_handle not in self.connections:
            return False
        self._send(M_DISCONNECT, struct.pack("<H", conn_handle))
        return True  # the disconnect IRQ follows when the link is down

    # ---- the central's actions, as IRQs -----------------------------------------------
    def _irq_done(self, event, conn, handle=0):
        self.irqs += 1
        self._send(M_IRQ_DONE, struct.pack("<QBHH", self._t(), event, conn, handle))

    def _dispatch(self, kind, p):
        if kind == H_CONNECT:
            conn, _at = struct.unpack_from("<HB", p, 0)
            self.central_connect(conn, bytes(p[3:9]), pair=False)  # the twin's stack pairs
            self._irq_done(1, conn)
        elif kind == H_DISCONNECT:
            conn, _at = struct.unpack_from("<HB", p, 0)
            self.central_disconnect(conn, bytes(p[3:9]))
            self._irq_done(2, conn)
        elif kind == H_MTU:
            conn, mtu = struct.unpack_from("<HH", p, 0)
            self.exchange_mtu(conn, mtu)
            self._irq_done(21, conn)
        elif kind == H_WRITE:
            conn, handle = struct.unpack_from("<HH", p, 0)
            self.central_write(handle, bytes(p[4:]), conn)
            self._irq_done(3, conn, handle)
        elif kind == H_ENCRYPTION:
            conn, enc, auth, bonded, ks = struct.unpack_from("<HBBBB", p, 0)
            if conn in self.connections:
                self.security[conn] = (bool(enc), bool(auth), bool(bonded), ks)
                self._emit(28, (conn, bool(enc), bool(auth), bool(bonded), ks))
                self._irq_done(28, conn)
        elif kind == H_GET_SECRET:
            req, sec_type, index = struct.unpack_from("<HBH", p, 0)
            key = bytes(p[5:])
            value = self._emit(29, (sec_type, index, None if index != 0xFFFF else memoryview(key)))
            ok = value is not None
            self._send(M_SECRET, struct.pack("<HB", req, 1 if ok else 0) + (bytes(value) if ok else b""))
            self._irq_done(29, 0)
        elif kind == H_SET_SECRET:
            req, sec_type, delete, n = struct.unpack_from("<HBBB", p, 0)
            key = bytes(p[5 : 5 + n])
            value = None if delete else bytes(p[5 + n :])
            ok = self._emit(30, (sec_type, memoryview(key), None if value is None else memoryview(value)))
            self._send(M_SECRET, struct.pack("<HB", req, 1 if ok else 0))
            self._irq_done(30, 0)
        elif kind == H_STOP:
            self.stopped = True
        elif kind == H_HARNESS:
            if self.on_harness is not None:
                self.on_harness(bytes(p))

    async def serve(self):
        """Deliver the host's messages until H_STOP or the socket closes."""
        import asyncio

        reader = asyncio.StreamReader(self.sock)
        while not self.stopped:
            try:
                head = await reader.readexactly(3)
                n, kind = struct.unpack("<HB", head)
                payload = await reader.readexactly(n - 1) if n > 1 else b""
            except EOFError:
                self.eof = True
                return
            self._dispatch(kind, payload)
