# A fake of MicroPython's `bluetooth` module: BLE (the singleton radio) and
# UUID, with the real method names, arguments and IRQ event tuples:
#   _IRQ_CENTRAL_CONNECT=1 (conn_handle, addr_type, addr)
#   _IRQ_CENTRAL_DISCONNECT=2 (conn_handle, addr_type, addr)
#   _IRQ_GATTS_WRITE=3 (conn_handle, attr_handle)
#   _IRQ_MTU_EXCHANGED=21 (conn_handle, mtu)
#   _IRQ_ENCRYPTION_UPDATE=28 (conn_handle, encrypted, authenticated, bonded, key_size)
#   _IRQ_GET_SECRET=29 (sec_type, index, key) -> value or None
#   _IRQ_SET_SECRET=30 (sec_type, key, value) -> True/False (value None: delete)
# It records advertising, the registered GATT table, values and notifications;
# a test (or, later, a socket bridge to an emulated central) drives it with
# central_connect / central_write / exchange_mtu / central_disconnect, which
# call the registered IRQ handler like the real stack does.
#
# Security, as NimBLE does it: a characteristic flagged *_ENCRYPTED refuses
# a central's read/write on an unencrypted link (ATT error 0x0F, no IRQ);
# central_pair() runs an LE Secure Connections pairing with bonding from the
# central's side: a central that already holds a bond re-encrypts (the stack
# asks the app for the stored key with _IRQ_GET_SECRET), a new one pairs and
# the stack hands both key sets to the app with _IRQ_SET_SECRET, then
# _IRQ_ENCRYPTION_UPDATE. A refused SET_SECRET does not stop the link from
# being encrypted (the app must drop it), as on NimBLE. central_connect()
# pairs by default (what bleak's pair=True does); pass pair=False for a
# stranger that does not.

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_MTU_EXCHANGED = 21
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30
_IRQ_PASSKEY_ACTION = 31

SEC_OUR = 1
SEC_PEER = 2

ATT_INSUFFICIENT_AUTHENTICATION = 0x05
ATT_INSUFFICIENT_ENCRYPTION = 0x0F

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020
FLAG_READ_ENCRYPTED = 0x0200
FLAG_READ_AUTHENTICATED = 0x0400
FLAG_WRITE_ENCRYPTED = 0x1000
FLAG_WRITE_AUTHENTICATED = 0x2000

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
        self.security = {}  # conn -> (encrypted, authenticated, bonded, key_size)
        self.peers = {}  # conn -> addr
        self.central_keys = {}  # what each central (by addr) holds after bonding
        self.pair_requests = []  # conns the app asked to secure (gap_pair)
        self.store_results = []  # (sec_type, ok) of every SET_SECRET the stack made
        self._pairings = 0

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

    def gap_pair(self, conn_handle):
        if conn_handle not in self.connections:
            raise OSError(ENOTCONN)
        self.pair_requests.append(conn_handle)

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
            return self._irq(event, data)
        return None

    def central_connect(self, conn=64, addr=b"\x11\x22\x33\x44\x55\x66", pair=True):
        self.connections[conn] = 23
        self.peers[conn] = bytes(addr)
        self.security[conn] = (False, False, False, 0)
        self.adv = None  # a connection stops advertising
        self._emit(_IRQ_CENTRAL_CONNECT, (conn, 0, memoryview(addr)))
        if pair and conn in self.connections:
            self.central_pair(conn)

    def central_disconnect(self, conn=64, addr=b"\x11\x22\x33\x44\x55\x66"):
        self.connections.pop(conn, None)
        self.security.pop(conn, None)
        self.peers.pop(conn, None)
        self._emit(_IRQ_CENTRAL_DISCONNECT, (conn, 0, memoryview(addr)))

    def is_encrypted(self, conn=64):
        s = self.security.get(conn)
        return bool(s and s[0])

    def central_pair(self, conn=64, bond=True):
        """The central secures the link (LE Secure Connections, Just Works).
        Returns True if the link ended up encrypted."""
        if conn not in self.connections:
            raise OSError(ENOTCONN)
        addr = self.peers.get(conn, b"\x00" * 6)
        key = b"\x00" + addr  # NimBLE keys secrets by the peer's address
        held = self.central_keys.get(addr)
        if held is not None:
            value = self._emit(_IRQ_GET_SECRET, (SEC_PEER, 0, memoryview(key)))
            if value is None or bytes(value) != held:
                return False  # LTK request negative reply: encryption fails, key missing
            self.security[conn] = (True, False, True, 16)
        else:
            self._pairings += 1
            ours = bytes((0xA0, self._pairings & 0xFF)) + addr
            theirs = bytes((0xB0, self._pairings & 0xFF)) + addr
            bonded = False
            if bond:
                ok1 = self._emit(_IRQ_SET_SECRET, (SEC_OUR, memoryview(key), memoryview(ours)))
                ok2 = self._emit(_IRQ_SET_SECRET, (SEC_PEER, memoryview(key), memoryview(theirs)))
                self.store_results.append((SEC_OUR, bool(ok1)))
                self.store_results.append((SEC_PEER, bool(ok2)))
                self.central_keys[addr] = theirs  # the central keeps its half either way
                bonded = True
            self.security[conn] = (True, False, bonded, 16)
        if conn in self.connections:
            s = self.security[conn]
            self._emit(_IRQ_ENCRYPTION_UPDATE, (conn, s[0], s[1], s[2], s[3]))
        return self.is_encrypted(conn)

    def _refusal(self, conn, flags, enc_flag, auth_flag):
        s = self.security.get(conn, (False, False, False, 0))
        if flags & enc_flag and not s[0]:
            return ATT_INSUFFICIENT_ENCRYPTION
        if flags & auth_flag and not s[1]:
            return ATT_INSUFFICIENT_AUTHENTICATION
        return 0

    def central_read(self, handle, conn=64):
        """(att_error, value): what a central's read returns (0 = success)."""
        flags = self.chars[handle][1]
        if not flags & FLAG_READ:
            return (0x02, b"")  # read not permitted
        err = self._refusal(conn, flags, FLAG_READ_ENCRYPTED, FLAG_READ_AUTHENTICATED)
        return (err, b"") if err else (0, self.values[handle])

    def exchange_mtu(self, conn=64, mtu=None):
        m = min(self._config.get("mtu", 23), self.remote_mtu if mtu is None else mtu)
        self.connections[conn] = m
        self._emit(_IRQ_MTU_EXCHANGED, (conn, m))

    def central_write(self, handle, data, conn=64, enforce=True):
        """A central's write; returns the ATT error (0 = written, IRQ raised).
        enforce=False: a stack that lets the write through regardless."""
        if enforce and handle in self.chars:
            err = self._refusal(conn, self.chars[handle][1], FLAG_WRITE_ENCRYPTED, FLAG_WRITE_AUTHENTICATED)
            if err:
                return err
        length, append = self.buffers.get(handle, (20, False))
        data = bytes(data)[:length]
        self.values[handle] = (self.values.get(handle, b"") + data) if append else data
        self._emit(_IRQ_GATTS_WRITE, (conn, handle))
        return 0

    def handle_of(self, uuid):
        for h in self.chars:
            if self.chars[h][0] == uuid:
                return h
        return None

    def notified(self, handle):
        return [n[3] for n in self.notifications if n[2] == handle]
