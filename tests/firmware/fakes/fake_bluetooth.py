# A fake of MicroPython's `bluetooth` module: BLE (the singleton radio) and
# UUID, with the real method names, arguments and IRQ event tuples:
#   _IRQ_CENTRAL_CONNECT=1 (conn_handle, addr_type, addr)
#   _IRQ_CENTRAL_DISCONNECT=2 (conn_handle, addr_type, addr)
#   _IRQ_GATTS_WRITE=3 (conn_handle, attr_handle)
#   _IRQ_MTU_EXCHANGED=21 (conn_handle, mtu)
# It records advertising, the registered GATT table, values and notifications;
# a test (or, later, a socket bridge to an emulated central) drives it with
# central_connect / central_write / exchange_mtu / central_disconnect, which
# call the registered IRQ handler like the real stack does.

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_MTU_EXCHANGED = 21

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020

ENOTCONN = 107
ENOMEM = 12


class UUID:
    def __init__(self, value):
        if isinstance(value, int):
            self.value = value
        else:
            self.value = str(value).lower()

    def __eq__(self, other):
        return isinstance(other, UUID) and self.value == other.value

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        if isinstance(self.value, int):
            return "UUID(0x%04x)" % self.value
        return "UUID('%s')" % self.value


class BLE:
    def __init__(self, clock=None, mac=b"\x24\x6f\x28\xa1\xb2\xc3"):
        self.clock = clock
        self._active = False
        self._irq = None
        self._config = {"mac": (0, mac), "gap_name": "MPY ESP32", "mtu": 23, "rxbuf": 0}
        self.adv = None  # (interval_us, adv_data, resp_data, connectable) or None
        self.adv_history = []
        self.services = None  # what gatts_register_services got
        self.chars = {}  # value handle -> (uuid, flags)
        self.values = {}  # value handle -> bytes
        self.buffers = {}  # value handle -> (len, append)
        self.notifications = []  # (t_us, conn, handle, bytes)
        self.connections = {}  # conn -> mtu
        self.congested = False  # gatts_notify raises OSError(ENOMEM) while True
        self.remote_mtu = 517
        self._next_handle = 1

    # ---- real API ------------------------------------------------------------------
    def active(self, *args):
        if args:
            self._active = bool(args[0])
        return self._active

    def config(self, *args, **kw):
        if args:
            return self._config[args[0]]
        for k in kw:
            self._config[k] = kw[k]
        return None

    def irq(self, handler):
        self._irq = handler

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        self._need_active()
        if interval_us is None:
            self.adv = None
        else:
            self.adv = (interval_us, bytes(adv_data or b""), bytes(resp_data or b""), connectable)
            if len(self.adv[1]) > 31 or len(self.adv[2]) > 31:
                raise OSError(22)  # EINVAL: legacy advertising payload over 31 bytes
        self.adv_history.append(self.adv)

    def gatts_register_services(self, services_definition):
        self._need_active()
        self.services = services_definition
        out = []
        for svc in services_definition:
            self._next_handle += 1  # service declaration
            hs = []
            for ch in svc[1]:
                uuid, flags = ch[0], ch[1]
                self._next_handle += 1  # characteristic declaration
                vh = self._next_handle
                self._next_handle += 1
                if flags & (FLAG_NOTIFY | FLAG_INDICATE):
                    self._next_handle += 1  # CCCD
                self.chars[vh] = (uuid, flags)
                self.values[vh] = b""
                self.buffers[vh] = (20, False)
                hs.append(vh)
            out.append(tuple(hs))
        return tuple(out)

    def gatts_read(self, value_handle):
        return self.values[value_handle]

    def gatts_write(self, value_handle, data, send_update=False):
        self.values[value_handle] = bytes(data)
        if send_update:
            for conn in self.connections:
                self.gatts_notify(conn, value_handle)

    def gatts_notify(self, conn_handle, value_handle, data=None):
        if conn_handle not in self.connections:
            raise OSError(ENOTCONN)
        if self.congested:
            raise OSError(ENOMEM)
        payload = bytes(self.values[value_handle] if data is None else data)
        limit = self.connections[conn_handle] - 3
        self.notifications.append((self._now(), conn_handle, value_handle, payload[:limit]))

    def gatts_set_buffer(self, value_handle, length, append=False):
        self.buffers[value_handle] = (length, append)

    def gap_disconnect(self, conn_handle):
        if conn_handle not in self.connections:
            return False
        self.central_disconnect(conn_handle)
        return True

    # ---- test / bridge side ------------------------------------------------------------
    def _need_active(self):
        if not self._active:
            raise OSError(19)

    def _now(self):
        return self.clock.t_us if self.clock is not None else 0

    def _emit(self, event, data):
        if self._irq is not None:
            self._irq(event, data)

    def central_connect(self, conn=64, addr=b"\x11\x22\x33\x44\x55\x66"):
        self.connections[conn] = 23
        self.adv = None  # a connection stops advertising
        self._emit(_IRQ_CENTRAL_CONNECT, (conn, 0, memoryview(addr)))

    def central_disconnect(self, conn=64, addr=b"\x11\x22\x33\x44\x55\x66"):
        self.connections.pop(conn, None)
        self._emit(_IRQ_CENTRAL_DISCONNECT, (conn, 0, memoryview(addr)))

    def exchange_mtu(self, conn=64, mtu=None):
        m = min(self._config.get("mtu", 23), self.remote_mtu if mtu is None else mtu)
        self.connections[conn] = m
        self._emit(_IRQ_MTU_EXCHANGED, (conn, m))

    def central_write(self, handle, data, conn=64):
        length, append = self.buffers.get(handle, (20, False))
        data = bytes(data)[:length]
        self.values[handle] = (self.values.get(handle, b"") + data) if append else data
        self._emit(_IRQ_GATTS_WRITE, (conn, handle))

    def handle_of(self, uuid):
        for h in self.chars:
            if self.chars[h][0] == uuid:
                return h
        return None

    def notified(self, handle):
        return [n[3] for n in self.notifications if n[2] == handle]
