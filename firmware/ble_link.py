# BLE peripheral on MicroPython's built-in `bluetooth` module (no aioble).
# The radio (bluetooth.BLE()) and the UUID constructor (bluetooth.UUID) are
# injected: hal builds them on the board, tests pass a fake.
#
# GATT table (spinemon_protocol): spinemon service with stream (notify),
# command (write with response) and status (read + notify: STATUS, ACK,
# ERROR); Battery (0x180F/0x2A19 read+notify); Device Information (0x180A).
# The IRQ handler only records events; poll() does the work in the main loop.

import binascii

import spinemon_protocol as sp

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)

_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)

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


class BleLink:
    """name: advertised/GAP name; min_interval_ms: pacing of stream notifications."""

    def __init__(self, radio, uuid, clock, name, fw_revision="0.0.0", model="spinemon-1", min_interval_ms=20, log=None):
        self.radio = radio
        self.uuid = uuid
        self.clock = clock
        self.name = name
        self.fw_revision = fw_revision
        self.model = model
        self.min_interval_ms = min_interval_ms
        self.log = log
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

    # ---- setup ---------------------------------------------------------------------
    def start(self):
        r = self.radio
        U = self.uuid
        r.active(True)
        r.config(gap_name=self.name)
        r.config(mtu=_LOCAL_MTU)
        r.irq(self._irq)
        spinemon = (
            U(sp.SERVICE_UUID),
            (
                (U(sp.STREAM_CHAR_UUID), _FLAG_NOTIFY),
                (U(sp.COMMAND_CHAR_UUID), _FLAG_WRITE),
                (U(sp.STATUS_CHAR_UUID), _FLAG_READ | _FLAG_NOTIFY),
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
        self._advertise()

    def _advertise(self):
        adv, resp = advertising_payloads(self.name)
        self.radio.gap_advertise(_ADV_INTERVAL_US, adv_data=adv, resp_data=resp, connectable=True)
        self.advertising = True
        self._need_adv = False

    # ---- IRQ (keep it short: record, act later in poll) ------------------------------
    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn = data[0]
            self.mtu = 23
            self.advertising = False
            self.connects += 1
            self._need_adv = False
        elif event == _IRQ_CENTRAL_DISCONNECT:
            if data[0] == self.conn:
                self.conn = None
            self.disconnects += 1
            self._need_adv = True
        elif event == _IRQ_GATTS_WRITE:
            conn, handle = data[0], data[1]
            if handle == self.h_command:
                if len(self.inbox) >= _INBOX_MAX:
                    self.inbox.pop(0)
                self.inbox.append(bytes(self.radio.gatts_read(handle)))
        elif event == _IRQ_MTU_EXCHANGED:
            self.mtu = data[1]
            self.mtu_changed = True

    # ---- main-loop side ----------------------------------------------------------------
    def connected(self):
        return self.conn is not None

    def max_payload(self):
        return self.mtu - _ATT_OVERHEAD

    def poll(self):
        """Re-advertise after a disconnect; return the commands received."""
        if self._need_adv and self.conn is None:
            self._advertise()
        if not self.inbox:
            return ()
        cmds = self.inbox
        self.inbox = []
        return cmds

    def can_send(self):
        if self.conn is None:
            return False
        now = self.clock.now_ms()
        return self._last_notify_ms is None or now - self._last_notify_ms >= self.min_interval_ms

    def send_stream(self, frame):
        """Notify one SAMPLES frame. Returns "sent", "busy" (retry later: not
        connected, paced, or the stack is congested) or "dropped" (does not
        fit the negotiated MTU)."""
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
        connected). STATUS frames also become the readable value."""
        if frame[1] == sp.T_STATUS:
            self.radio.gatts_write(self.h_status, frame)
        if self.conn is None:
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
