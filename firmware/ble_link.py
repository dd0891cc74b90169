# BLE peripheral on MicroPython's built-in `bluetooth` module (no aioble).
# The radio (bluetooth.BLE()) and the UUID constructor (bluetooth.UUID) are
# injected: hal builds them on the board, tests pass a fake.
#
# GATT table (spinemon_protocol): spinemon service with stream (notify),
# command (write with response) and status (read + notify: STATUS, ACK,
# ERROR); Battery (0x180F/0x2A19 read+notify); Device Information (0x180A).
# The IRQ handler only records events; poll() does the work in the main loop.
#
# Security (docs/security.md): LE Secure Connections pairing with bonding.
# The spinemon characteristics carry the stack's "encrypted" flags, and on
# top of that (defence in depth) this module ignores COMMAND writes from, and
# sends nothing to, a connection that is not encrypted with a stored bond.
# New bonds are accepted only while pairing mode is open (button long-press,
# or the first PAIRING_AT_BOOT_MS after a boot with no bonds at all); the
# stack hands every key to store to us (_IRQ_SET_SECRET) and we refuse new
# ones outside pairing mode, then drop that connection. The first new bond
# closes pairing mode at once (in the IRQ, whatever the link does next). A
# stored bond is never evicted to make room, never replaced and never deleted
# from the radio, except by the bonded owner's own trusted link; only the
# button (forget_bonds) clears them. Bonds live in a small state file
# (BondStore); forget_bonds() clears it; only a wearable that never stored a
# bond (no bond file) opens pairing mode at boot: a corrupt or an emptied
# one does not.
#
# An untrusted link cannot keep a bonded owner out: while we hold a bond, a
# link that is not trusted is dropped after BONDED_GRACE_MS (pairing mode
# open: UNTRUSTED_GRACE_MS), and once it has had PROBATION_MS to encrypt, a
# new central takes its place (the untrusted one is dropped).
#
# One connection: while a central is connected (the owner), a second one is
# dropped at once and its coming and going change nothing about the first:
# the handle, MTU, encryption state and `disconnects` are the owner's only.

import binascii
import json

import spinemon_protocol as sp
from config_store import StateFile

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)
_FLAG_READ_ENCRYPTED = const(0x0200)
_FLAG_WRITE_ENCRYPTED = const(0x1000)

_IO_CAPABILITY_NO_INPUT_OUTPUT = const(3)  # no display, no keyboard: "Just Works"

# NimBLE's secret types (ble_store.h): our keys, the peer's keys, CCCD values
SEC_OUR = const(1)
SEC_PEER = const(2)
SEC_CCCD = const(3)

PAIRING_WINDOW_MS = const(60000)  # pairing mode after the button long-press
PAIRING_AT_BOOT_MS = const(60000)  # pairing mode after a boot with no bonds
UNTRUSTED_GRACE_MS = const(30000)  # a central that is not bonded+encrypted by then is dropped
BONDED_GRACE_MS = const(5000)  # the same once we hold a bond and pairing mode is closed: the owner re-encrypts within a second
PROBATION_MS = const(2000)  # an untrusted link this old gives way to a new central (it cannot keep the owner out)
MAX_SECRETS = const(24)

_ADV_TYPE_FLAGS = const(0x01)
_ADV_TYPE_UUID128_COMPLETE = const(0x07)
_ADV_TYPE_NAME = const(0x09)
_ADV_INTERVAL_US = const(100000)
_LOCAL_MTU = const(247)
_COMMAND_BUFFER = const(64)
_INBOX_MAX = const(8)
_ATT_OVERHEAD = const(3)


def _ad(t, payload):
    return bytes((len(payload) + 1, t)) + payload


def uuid128_le(s):
    """A 128-bit UUID string as the little-endian bytes used in advertising."""
    b = binascii.unhexlify(s.replace("-", ""))
    return bytes(reversed(b))


def advertising_payloads(name):
    """(adv_data, resp_data): flags + service UUID; the name in the scan response
    (flags 3 + UUID128 18 + name would overflow 31 bytes)."""
    adv = _ad(_ADV_TYPE_FLAGS, b"\x06") + _ad(_ADV_TYPE_UUID128_COMPLETE, uuid128_le(sp.SERVICE_UUID))
    resp = _ad(_ADV_TYPE_NAME, name.encode()[:29])
    return adv, resp


class BondStore:
    """The stack's secrets (sec_type, key) -> value, opaque bytes, in a small
    state file (config_store.StateFile: two slots, generation, CRC-32, written
    through a temporary file renamed over the older slot). `state` after
    load: "ok", "missing" (a new wearable) or "corrupt" (no slot holds a valid
    copy: the bonds are unreadable, and that is NOT taken for "no bonds" -
    the pairing window does not open at boot, only the button opens it).
    `path=None`: memory only."""

    def __init__(self, path="/bonds.json"):
        self.path = path
        self.file = StateFile(path, legacy=True) if path is not None else None
        self.items = []  # [sec_type, key bytes, value bytes], oldest first
        self.dirty = False
        self.problem = None
        self.state = "missing"
        self.load()

    def load(self):
        self.items = []
        if self.file is None:
            return
        raw = self.file.load()
        self.state = self.file.state
        if raw is None:
            if self.state == "corrupt":
                self.problem = "bond store corrupt: bonds unreadable; pair again with the button"
            return
        items = []
        try:
            for t, k, v in json.loads(raw):
                items.append([int(t), binascii.unhexlify(k), binascii.unhexlify(v)])
        except (ValueError, TypeError):
            self.state = "corrupt"
            self.problem = "bond store corrupt: bonds unreadable; pair again with the button"
            return
        self.items = items
        if self.file.problem:
            self.problem = "bond store: " + self.file.problem

    def save(self):
        """Write the store if it changed; returns False if the flash write failed."""
        if not self.dirty or self.file is None:
            self.dirty = False
            return True
        out = []
        for t, k, v in self.items:
            out.append([t, binascii.hexlify(k).decode(), binascii.hexlify(v).decode()])
        try:
            self.file.save(json.dumps(out))
        except OSError:
            self.problem = "could not write the bond store"
            return False
        self.state = "ok"
        self.dirty = False
        return True

    def _find(self, sec_type, key):
        for i in range(len(self.items)):
            it = self.items[i]
            if it[0] == sec_type and it[1] == key:
                return i
        return -1

    def get(self, sec_type, index, key):
        if key is None:
            n = 0
            for it in self.items:
                if it[0] == sec_type:
                    if n == index:
                        return it[2]
                    n += 1
            return None
        i = self._find(sec_type, bytes(key))
        return self.items[i][2] if i >= 0 else None

    def has(self, sec_type, key):
        return self._find(sec_type, bytes(key)) >= 0

    def set(self, sec_type, key, value):
        key = bytes(key)
        i = self._find(sec_type, key)
        if value is None:
            if i >= 0:
                self.items.pop(i)
                self.dirty = True
            return True
        if i >= 0:
            self.items.pop(i)
        elif len(self.items) >= MAX_SECRETS:
            return False  # full: a stored bond is never evicted for a new one (the button frees the store)
        self.items.append([sec_type, key, bytes(value)])
        self.dirty = True
        return True

    def bonds(self):
        """How many peers we hold keys for."""
        n = 0
        for it in self.items:
            if it[0] == SEC_PEER:
                n += 1
        return n

    def clear(self):
        """Forget every key: an empty store is written (a valid "no bonds")."""
        self.items = []
        self.dirty = True
        if not self.save() and self.file is not None:
            self.file.clear()  # the keys must go even if the write failed
            self.dirty = False


class BleLink:
    """name: advertised/GAP name; min_interval_ms: pacing of stream notifications;
    bonds: the BondStore (a memory-only one if None); require_bond: refuse
    commands from and send nothing to a link without an encrypted bond (the
    default and what production firmware does)."""

    def __init__(self, radio, uuid, clock, name, fw_revision="0.0.0", model="spinemon-1", min_interval_ms=20, log=None, bonds=None, require_bond=True):
        self.radio = radio
        self.uuid = uuid
        self.clock = clock
        self.name = name
        self.fw_revision = fw_revision
        self.model = model
        self.min_interval_ms = min_interval_ms
        self.log = log
        self.bonds = bonds if bonds is not None else BondStore(None)
        self.require_bond = require_bond
        self.conn = None
        self.mtu = 23
        self.inbox = []
        self.advertising = False
        self.connects = 0
        self.disconnects = 0
        self.notify_errors = 0
        self.oversize_dropped = 0
        self.frames_sent = 0
        self._need_adv = False
        self._last_notify_ms = None
        self.mtu_changed = False
        # security state, so a test can ask why a link is (not) trusted
        self.security = {}  # conn -> (encrypted, authenticated, bonded, key_size)
        self.refused = []  # connections that tried to bond outside pairing mode
        self.writes_refused = 0  # COMMAND writes ignored: link not trusted
        self.bonds_refused = 0  # new keys refused outside pairing mode
        self.untrusted_dropped = 0  # connections dropped for not bonding in time
        self.passkey_actions = 0
        self.pairing_until_ms = None  # pairing mode open until this device time
        self._conn_since_ms = 0
        self._drop = []
        self._new_bond_conn = None
        self.others = []  # second centrals, refused while self.conn is connected
        self.seconds_refused = 0
        self._latest = None  # the most recent central to connect
        self.peer_keys = {}  # conn -> the stack's key of that central (address type + address)
        self.deletions_refused = 0  # bond deletions / replacements from the radio refused
        self.store_full = 0  # new keys refused because the store is full
        self.untrusted_replaced = 0  # untrusted links that gave way to a new central
        self._served = {}  # conn -> the key the stack looked up (GET_SECRET) while it was connected

    # ---- setup ---------------------------------------------------------------------
    def start(self):
        r = self.radio
        U = self.uuid
        r.active(True)
        r.config(gap_name=self.name)
        r.config(mtu=_LOCAL_MTU)
        r.config(bond=True, le_secure=True, mitm=False, io=_IO_CAPABILITY_NO_INPUT_OUTPUT)
        r.irq(self._irq)
        spinemon = (
            U(sp.SERVICE_UUID),
            (
                (U(sp.STREAM_CHAR_UUID), _FLAG_NOTIFY | _FLAG_READ_ENCRYPTED),
                (U(sp.COMMAND_CHAR_UUID), _FLAG_WRITE | _FLAG_WRITE_ENCRYPTED),
                (U(sp.STATUS_CHAR_UUID), _FLAG_READ | _FLAG_NOTIFY | _FLAG_READ_ENCRYPTED),
            ),
        )
        battery = (U(sp.BATTERY_SERVICE_UUID16), ((U(sp.BATTERY_LEVEL_UUID16), _FLAG_READ | _FLAG_NOTIFY),))
        dis = (
            U(sp.DEVICE_INFO_SERVICE_UUID16),
            (
                (U(sp.MANUFACTURER_NAME_UUID16), _FLAG_READ),
                (U(sp.MODEL_NUMBER_UUID16), _FLAG_READ),
                (U(sp.FIRMWARE_REVISION_UUID16), _FLAG_READ),
            ),
        )
        ((self.h_stream, self.h_command, self.h_status), (self.h_battery,), (h_man, h_model, h_fw)) = (
            r.gatts_register_services((spinemon, battery, dis))
        )
        r.gatts_set_buffer(self.h_command, _COMMAND_BUFFER)
        r.gatts_set_buffer(self.h_status, sp.MAX_FRAME)
        r.gatts_write(h_man, b"spinemon project")
        r.gatts_write(h_model, self.model.encode())
        r.gatts_write(h_fw, self.fw_revision.encode())
        r.gatts_write(self.h_battery, bytes((0,)))
        if self.bonds.problem:
            self._say(self.bonds.problem)
        if self.bonds.state == "missing":
            # a new wearable (it never stored a bond) can be set up; a corrupt
            # bond store is not "no bonds", nor is an emptied one (bonds
            # forgotten with the button): then only the button opens pairing mode
            self.enter_pairing_mode(PAIRING_AT_BOOT_MS)
        self._advertise()

    def _say(self, msg):
        if self.log:
            self.log("ble: " + msg)

    def _advertise(self):
        adv, resp = advertising_payloads(self.name)
        self.radio.gap_advertise(_ADV_INTERVAL_US, adv_data=adv, resp_data=resp, connectable=True)
        self.advertising = True
        self._need_adv = False

    # ---- pairing mode and bonds ----------------------------------------------------
    def enter_pairing_mode(self, duration_ms=PAIRING_WINDOW_MS):
        """Accept new bonds for the next duration_ms."""
        self.pairing_until_ms = self.clock.now_ms() + duration_ms
        self._say("pairing mode for %d s" % (duration_ms // 1000))

    def leave_pairing_mode(self):
        self.pairing_until_ms = None

    def pairing(self):
        """Is pairing mode open (new bonds accepted)?"""
        u = self.pairing_until_ms
        if u is None:
            return False
        if self.clock.now_ms() - u >= 0:
            self.pairing_until_ms = None
            return False
        return True

    def bonded(self):
        """Do we hold at least one bond?"""
        return self.bonds.bonds() > 0

    def forget_bonds(self):
        """Clear every stored key and drop the current connection: no host
        can reconnect until one pairs again (in pairing mode)."""
        self.bonds.clear()
        if self.conn is not None:
            self._drop.append(self.conn)
        self._say("bonds forgotten")

    def trusted(self, conn=None):
        """The link (default: the current one) is encrypted with a stored bond."""
        if conn is None:
            conn = self.conn
        if conn is None:
            return False
        if not self.require_bond:
            return True
        s = self.security.get(conn)
        return s is not None and bool(s[0]) and bool(s[2]) and conn not in self.refused

    def _owner_of(self, key):
        """The trusted connection whose central the stack's ``key`` belongs to
        (its address, or the key the stack looked up to encrypt it); None: no such link."""
        c = self.conn
        if c is None or c in self.others or not self.trusted(c):
            return None
        pk = self.peer_keys.get(c)
        if (pk is not None and bytes(key[: len(pk)]) == pk) or self._served.get(c) == bytes(key):
            return c
        return None

    def _refuse_link(self):
        c = self._pairing_conn()
        if c is not None and c not in self.refused:
            self.refused.append(c)
            self._drop.append(c)

    def _pairing_conn(self):
        if self._latest is not None and (self._latest == self.conn or self._latest in self.others):
            return self._latest
        return self.conn

    # ---- IRQ (keep it short: record, act later in poll) ------------------------------
    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            c = data[0]
            self.security.pop(c, None)
            self.peer_keys[c] = bytes((data[1],)) + bytes(data[2])
            self._latest = c
            self.advertising = False
            if (
                self.conn is not None
                and c != self.conn
                and self.require_bond
                and not self.trusted(self.conn)
                and self.bonded()
                and self.clock.now_ms() - self._conn_since_ms >= PROBATION_MS
            ):
                # the one connection is held by a link that did not encrypt
                # with a bond in time: it cannot keep the owner out; it goes
                old = self.conn
                self.untrusted_replaced += 1
                self.others.append(old)
                self._drop.append(old)
                self.conn = None
            if self.conn is not None and c != self.conn:
                # one connection: a second central is refused, and nothing
                # about the first one (its handle, MTU, timers) changes
                self.seconds_refused += 1
                self.others.append(c)
                self._drop.append(c)
                return None
            self.conn = c
            self.mtu = 23
            self.connects += 1
            self._need_adv = False
            self._conn_since_ms = self.clock.now_ms()
        elif event == _IRQ_CENTRAL_DISCONNECT:
            c = data[0]
            self.security.pop(c, None)
            self.peer_keys.pop(c, None)
            self._served.pop(c, None)
            if c in self.refused:
                self.refused.remove(c)
            if c in self.others:
                self.others.remove(c)  # a refused second central left: the owner is still here
                return None
            if c != self.conn:
                return None
            self.conn = None
            self.disconnects += 1
            self._need_adv = True
        elif event == _IRQ_GATTS_WRITE:
            conn, handle = data[0], data[1]
            if handle == self.h_command:
                if conn != self.conn or not self.trusted(conn):
                    self.writes_refused += 1  # the stack let it through; we do not
                    return
                if len(self.inbox) >= _INBOX_MAX:
                    self.inbox.pop(0)
                self.inbox.append(bytes(self.radio.gatts_read(handle)))
        elif event == _IRQ_MTU_EXCHANGED:
            if data[0] == self.conn:
                self.mtu = data[1]
                self.mtu_changed = True
        elif event == _IRQ_ENCRYPTION_UPDATE:
            conn, encrypted, authenticated, bonded, key_size = data
            self.security[conn] = (bool(encrypted), bool(authenticated), bool(bonded), key_size)
            if conn in self.refused:
                self._drop.append(conn)
        elif event == _IRQ_GET_SECRET:
            sec_type, index, key = data
            value = self.bonds.get(sec_type, index, None if key is None else bytes(key))
            if value is not None and key is not None and sec_type == SEC_PEER and self._latest is not None:
                self._served[self._latest] = bytes(key)  # the newest central asked to encrypt with this bond
            return value
        elif event == _IRQ_SET_SECRET:
            sec_type, key, value = data
            key = bytes(key)
            known = self.bonds.has(sec_type, key)
            if known and value is not None and self.bonds.get(sec_type, 0, key) == bytes(value):
                return True  # the same key stored again: nothing changes
            if known and self.require_bond and self._owner_of(key) is None:
                # deleting or replacing a stored bond from the radio (NimBLE
                # deletes the old bond when a known address pairs again):
                # only the bonded owner's own trusted link may; else the bond
                # stays, and a link that tried to replace it goes
                self.deletions_refused += 1
                if value is not None:
                    self._refuse_link()
                return False
            if value is None:
                return self.bonds.set(sec_type, key, None)
            rekey = self.require_bond and self._owner_of(key) is not None  # the owner re-pairing over its trusted link
            if sec_type in (SEC_OUR, SEC_PEER) and not known and not rekey and not self.pairing():
                # a new bond outside pairing mode: not stored, and that link
                # goes (the stack does not say which link is pairing: the
                # newest one is, the owner's unless a second central came)
                self.bonds_refused += 1
                self._refuse_link()
                return False
            if sec_type in (SEC_OUR, SEC_PEER) and not known and self.others:
                self.bonds_refused += 1  # no new bond while a second central is being dropped
                return False
            if not known and sec_type == SEC_CCCD and not self.trusted():
                return False  # subscriptions are kept for bonded, encrypted links only
            if not self.bonds.set(sec_type, key, bytes(value)):
                self.store_full += 1
                self._say("bond store full: hold the button 10 s to forget bonds")
                if sec_type in (SEC_OUR, SEC_PEER):
                    self._refuse_link()
                return False
            if sec_type == SEC_PEER and not known and not rekey:
                # one new bond per window: the window closes now, whatever the link does next
                self._new_bond_conn = self.conn
                self.leave_pairing_mode()
            return True
        elif event == _IRQ_PASSKEY_ACTION:
            self.passkey_actions += 1  # no display or keyboard: nothing to show or enter
        return None

    # ---- main-loop side ----------------------------------------------------------------
    def link_up(self):
        """A central is connected (trusted or not)."""
        return self.conn is not None

    def connected(self):
        """A trusted host is connected: the only kind we talk to."""
        return self.trusted()

    def max_payload(self):
        return self.mtu - _ATT_OVERHEAD

    def poll(self):
        """Drop links that must go, save new bonds, re-advertise after a
        disconnect; return the commands received (trusted links only)."""
        while self._drop:
            c = self._drop.pop(0)
            try:
                self.radio.gap_disconnect(c)
            except OSError:
                pass
        grace = BONDED_GRACE_MS if self.require_bond and self.bonded() and not self.pairing() else UNTRUSTED_GRACE_MS
        if self.conn is not None and not self.trusted() and self.clock.now_ms() - self._conn_since_ms >= grace:
            self.untrusted_dropped += 1
            self._conn_since_ms = self.clock.now_ms()
            try:
                self.radio.gap_disconnect(self.conn)
            except OSError:
                pass
        if self.bonds.dirty:
            self.bonds.save()
        if self._new_bond_conn is not None:
            self._new_bond_conn = None
            self._say("bonded")  # pairing mode closed at the bond itself (see _IRQ_SET_SECRET)
        if self._need_adv and self.conn is None:
            self._advertise()
        elif self.conn is not None and not self.advertising and self.require_bond and self.bonded() and not self.trusted():
            self._advertise()  # an untrusted link holds the connection: the owner must still find us
        elif self.advertising and self.conn is not None and self.trusted():
            self.radio.gap_advertise(None)  # the owner is in: one connection
            self.advertising = False
        if not self.inbox:
            return ()
        cmds = self.inbox
        self.inbox = []
        if not self.trusted():
            self.writes_refused += len(cmds)
            return ()
        return cmds

    def can_send(self):
        if not self.trusted():
            return False
        now = self.clock.now_ms()
        return self._last_notify_ms is None or now - self._last_notify_ms >= self.min_interval_ms

    def send_stream(self, frame):
        """Notify one SAMPLES frame. Returns "sent", "busy" (retry later: not
        connected or not trusted, paced, or the stack is congested) or
        "dropped" (does not fit the negotiated MTU)."""
        if not self.can_send():
            return "busy"
        if len(frame) > self.max_payload():
            self.oversize_dropped += 1
            return "dropped"
        try:
            self.radio.gatts_notify(self.conn, self.h_stream, frame)
        except OSError:
            self.notify_errors += 1
            return "busy"
        self._last_notify_ms = self.clock.now_ms()
        self.frames_sent += 1
        return "sent"

    def send_status(self, frame):
        """A STATUS/ACK/ERROR frame on the status characteristic (notified if
        a trusted host is connected). STATUS frames also become the readable
        value (the stack serves it to encrypted links only)."""
        if frame[1] == sp.T_STATUS:
            self.radio.gatts_write(self.h_status, frame)
        if not self.trusted():
            return False
        if len(frame) > self.max_payload():
            self.oversize_dropped += 1
            return False
        try:
            self.radio.gatts_notify(self.conn, self.h_status, frame)
        except OSError:
            self.notify_errors += 1
            return False
        return True

    def set_battery(self, pct):
        self.radio.gatts_write(self.h_battery, bytes((pct & 0xFF,)))

    def set_status_value(self, frame):
        self.radio.gatts_write(self.h_status, frame)
