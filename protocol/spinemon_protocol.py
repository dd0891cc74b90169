# spinemon wire protocol, version 1.
#
# ONE module, shared by the firmware (MicroPython) and the host (CPython).
# Keep to the subset both run: no typing, no dataclasses, no f-strings with
# format specs MicroPython lacks, no int.to_bytes keywords, struct only.
# MicroPython's struct silently truncates out-of-range integers where CPython
# raises, so every encoder clamps (or wraps, for counters) explicitly.
#
# Byte-exact tables: docs/protocol.md.

import struct

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


PROTOCOL_VERSION = const(1)

# ---- frame types -----------------------------------------------------------
T_SAMPLES = const(0x01)  # device -> host
T_STATUS = const(0x02)  # device -> host
T_COMMAND = const(0x03)  # host -> device
T_ACK = const(0x04)  # device -> host
T_ERROR = const(0x05)  # device -> host

FRAME_NAMES = {
    T_SAMPLES: "SAMPLES",
    T_STATUS: "STATUS",
    T_COMMAND: "COMMAND",
    T_ACK: "ACK",
    T_ERROR: "ERROR",
}

# ---- sizes -----------------------------------------------------------------
HEADER_SIZE = const(2)  # version, type
CRC_SIZE = const(2)
MAX_FRAME = const(244)  # one BLE notification at ATT MTU 247
ATT_MTU = const(247)
MIN_FRAME = const(4)  # header + CRC, empty payload

# ---- SAMPLES ---------------------------------------------------------------
# header after version/type: seq u32, t_us u32, period_us u16, mask u8,
# ranges u8, count u8, flags u8
_SAMPLES_HDR = "<BBIIHBBBB"
SAMPLES_HEADER_SIZE = const(16)
SENSOR_UPPER = const(0x01)  # T12/L1
SENSOR_LOWER = const(0x02)  # sacrum
AXES_PER_IMU = const(6)  # ax ay az gx gy gz, int16 each
ANGLE_NONE = const(-32768)  # device angle not available
# SAMPLES flags
SF_GUARD_ARMED = const(0x01)  # the on-device guard is watching
SF_GUARD_FIRING = const(0x02)  # the guard is past a threshold now
SF_MOTOR_ON = const(0x04)
SF_FIFO_OVERFLOW = const(0x08)  # samples were lost in the IMU FIFO before this frame
SF_QUEUE_DROP = const(0x10)  # frames were dropped from the send queue before this frame
SF_LINK_GUARD = const(0x20)  # the device considers the host link down
SF_GUARD_BUZZED = const(
    0x40
)  # the guard confirmed a crossing and started the motor on a sample of this frame
SF_SENSOR_LOST = const(0x80)  # an IMU the device booted with is lost: the frame carries the ones left (mask)

# ---- STATUS ----------------------------------------------------------------
_STATUS_FMT = "<BBBBBHBBBBHBhhBBHIIIIHIHHHIBHBB"
STATUS_PAYLOAD_SIZE = const(57)  # 61-byte frame: still one notification at ATT MTU 64
# firmware before 0.4 sent STATUS without the fault fields (imu_lost,
# i2c_errors, imu_resyncs, faults): still decoded (those fields None)
_STATUS_FMT_52 = "<BBBBBHBBBBHBhhBBHIIIIHIHHHI"
STATUS_PAYLOAD_SIZE_52 = const(52)
# firmware before 0.2 sent STATUS without heap_free: still decoded (heap_free None)
_STATUS_FMT_48 = "<BBBBBHBBBBHBhhBBHIIIIHIHHH"
STATUS_PAYLOAD_SIZE_48 = const(48)
IMU_NONE = const(0)
IMU_MPU6050 = const(1)
IMU_MPU6500 = const(2)
IMU_LSM6DSO = const(3)
IMU_LSM6DSOX = const(4)
IMU_SIMULATED = const(0xFE)
IMU_NAMES = {
    IMU_NONE: "none",
    IMU_MPU6050: "MPU-6050",
    IMU_MPU6500: "MPU-6500",
    IMU_LSM6DSO: "LSM6DSO",
    IMU_LSM6DSOX: "LSM6DSOX",
    IMU_SIMULATED: "simulated",
}
# STATUS state flags
ST_STREAMING = const(0x01)
ST_CONNECTED = const(0x02)
ST_CONFIG_DEFAULTS = const(0x04)  # stored config was missing or corrupt
ST_GUARD_ACTIVE = const(0x08)
ST_BONDED = const(0x10)
ST_PAIRING = const(0x20)
ST_SERIAL = const(0x40)
ST_SENSOR_LOST = const(0x80)  # an IMU the device booted with does not answer (STATUS imu_lost says which)
# STATUS faults byte
FAULT_WATCHDOG_RESET = const(0x01)  # the last reset was the watchdog's (the firmware hung)
FAULT_SAVE_FAILED = const(0x02)  # a settings save failed since boot (flash full or failing)
FAULT_BOOT_RETRIES_SHIFT = const(4)  # bits 4-6: failed boot attempts before this one (0..7)
# machine.reset_cause() codes (ESP32 port): the watchdog's
RESET_WATCHDOG = const(3)


def fault_bits(watchdog_reset=False, save_failed=False, boot_retries=0):
    """The STATUS `faults` byte."""
    b = clamp(boot_retries, 0, 7) << FAULT_BOOT_RETRIES_SHIFT
    if watchdog_reset:
        b |= FAULT_WATCHDOG_RESET
    if save_failed:
        b |= FAULT_SAVE_FAILED
    return b


BATTERY_UNKNOWN = const(255)

# ---- host heartbeat ---------------------------------------------------------
# While streaming, the host sends a COMMAND (TIME_SYNC when it has nothing else
# to say) at least every HEARTBEAT_MS; the device treats the host as gone
# (GUARD_WHEN_LINK_DOWN takes over) after HOST_SILENCE_MS without an accepted
# COMMAND, even while a BLE connection or a serial line is still up.
HEARTBEAT_MS = const(250)
HOST_SILENCE_MS = const(1000)

# ---- command counter window (docs/protocol.md section 8) ----------------------
# Over BLE a COMMAND is accepted only if its counter is 1..COUNTER_WINDOW ahead
# of the last accepted one. 2^16: far more counters than a host can use up
# without one reaching the device between two STATUS reads (over 4 h of
# heartbeats), and small against the 2^31 of serial-number arithmetic, so the
# floor cannot be walked round to a recorded counter in a few big jumps.
COUNTER_WINDOW = const(65536)

# ---- guard modes -----------------------------------------------------------
GUARD_OFF = const(0)
GUARD_WHEN_LINK_DOWN = const(1)
GUARD_ALWAYS = const(2)

# ---- COMMAND opcodes and their argument formats ------------------------------
OP_HAPTIC = const(0x01)  # pulses u8, on_ms u16, off_ms u16, strength u8; ACK value HAPTIC_*
OP_START = const(0x02)
OP_STOP = const(0x03)
OP_SET_RATE = const(0x04)  # rate_hz u16
OP_SET_GUARD = const(0x05)  # flex_cdeg i16, ext_cdeg i16, mode u8
OP_TIME_SYNC = const(0x06)  # ACK value = device time (us, u32)
OP_CALIBRATE = const(0x07)  # what u8 (0 = neutral)
OP_GET_STATUS = const(0x08)  # the device answers ACK, then a STATUS frame
OP_SET_NEUTRAL = const(0x09)  # offset_upper_cdeg i16, offset_lower_cdeg i16: the host's neutral for the guard
# OP_HAPTIC's ACK value: played, or not played because the on-device guard
# already buzzed for the excursion the wearer is in now (one buzz per fault;
# firmware before 0.3 always answers 0)
HAPTIC_PLAYED = const(0)
HAPTIC_SKIPPED_GUARD_BUZZED = const(1)

_COMMAND_HDR = "<BBIB"
COMMAND_HEADER_SIZE = const(7)
OPCODE_ARGS = {
    OP_HAPTIC: "<BHHB",
    OP_START: "<",
    OP_STOP: "<",
    OP_SET_RATE: "<H",
    OP_SET_GUARD: "<hhB",
    OP_TIME_SYNC: "<",
    OP_CALIBRATE: "<B",
    OP_GET_STATUS: "<",
    OP_SET_NEUTRAL: "<hh",
}
OPCODE_NAMES = {
    OP_HAPTIC: "HAPTIC",
    OP_START: "START",
    OP_STOP: "STOP",
    OP_SET_RATE: "SET_RATE",
    OP_SET_GUARD: "SET_GUARD",
    OP_TIME_SYNC: "TIME_SYNC",
    OP_CALIBRATE: "CALIBRATE",
    OP_GET_STATUS: "GET_STATUS",
    OP_SET_NEUTRAL: "SET_NEUTRAL",
}
# accepted ranges of each argument (inclusive); anything else -> E_RANGE
OPCODE_LIMITS = {
    OP_HAPTIC: ((1, 10), (10, 2000), (0, 2000), (1, 255)),
    OP_START: (),
    OP_STOP: (),
    OP_SET_RATE: ((25, 1000),),
    OP_SET_GUARD: ((0, 9000), (-9000, 0), (0, 2)),
    OP_TIME_SYNC: (),
    OP_CALIBRATE: ((0, 0),),
    OP_GET_STATUS: (),
    OP_SET_NEUTRAL: ((-18000, 18000), (-18000, 18000)),
}

_ACK_FMT = "<BBIBI"
_ERROR_FMT = "<BBIBB"

# ---- error reasons: ProtocolError.code and the code of ERROR frames ----------
E_CRC = const(1)
E_TRUNCATED = const(2)
E_VERSION = const(3)
E_TYPE = const(4)
E_LENGTH = const(5)
E_OPCODE = const(6)
E_RANGE = const(7)
E_STALE = const(8)
E_FRAMING = const(9)
E_STATE = const(10)
E_STORAGE = const(11)  # the setting took effect but could not be saved to flash (lost at the next reboot)
ERROR_NAMES = {
    E_CRC: "bad_crc",
    E_TRUNCATED: "truncated",
    E_VERSION: "wrong_version",
    E_TYPE: "unknown_type",
    E_LENGTH: "bad_length",
    E_OPCODE: "unknown_opcode",
    E_RANGE: "out_of_range",
    E_STALE: "stale_counter",
    E_FRAMING: "bad_framing",
    E_STATE: "bad_state",
    E_STORAGE: "storage_failed",
}

# ---- BLE GATT table -----------------------------------------------------------
DEVICE_NAME_PREFIX = "spinemon"
SERVICE_UUID = "5e1f0001-7c3a-4d2b-9e8f-1a2b3c4d5e6f"
STREAM_CHAR_UUID = "5e1f0002-7c3a-4d2b-9e8f-1a2b3c4d5e6f"  # notify: SAMPLES
COMMAND_CHAR_UUID = "5e1f0003-7c3a-4d2b-9e8f-1a2b3c4d5e6f"  # write with response: COMMAND
STATUS_CHAR_UUID = "5e1f0004-7c3a-4d2b-9e8f-1a2b3c4d5e6f"  # read/notify: STATUS, ACK, ERROR
BATTERY_SERVICE_UUID16 = const(0x180F)
BATTERY_LEVEL_UUID16 = const(0x2A19)
DEVICE_INFO_SERVICE_UUID16 = const(0x180A)
MANUFACTURER_NAME_UUID16 = const(0x2A29)
MODEL_NUMBER_UUID16 = const(0x2A24)
FIRMWARE_REVISION_UUID16 = const(0x2A26)

# ---- COBS stream framing --------------------------------------------------------
DELIMITER = b"\x00"
MAX_ENCODED = const(300)  # COBS(244 bytes) is at most 245 (+ the delimiter); anything longer is garbage


class SpinemonError(Exception):
    """Root of every error spinemon raises (host and device)."""


class ProtocolError(SpinemonError):
    """Bytes that are not a valid frame. `code` is one of the E_* reasons;
    `counter` and `opcode` are set when a command was readable enough to
    answer with an ERROR frame."""

    def __init__(self, code, message, counter=None, opcode=None):
        super().__init__(message)
        self.code = code
        self.counter = counter
        self.opcode = opcode

    @property
    def reason(self):
        return ERROR_NAMES.get(self.code, "unknown")


# ---- CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout) ----
def _make_table():
    t = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t.append(c & 0xFFFF)
    return t


_CRC_TABLE = _make_table()


def crc16_py(data, crc=0xFFFF):
    """Table-driven CRC-16/CCITT-FALSE, pure Python (runs under MicroPython)."""
    t = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


try:
    from binascii import crc_hqx as _crc_hqx  # CPython: same CRC, in C

    def crc16(data, crc=0xFFFF):
        return _crc_hqx(data, crc)

except ImportError:  # MicroPython
    crc16 = crc16_py


# ---- helpers ---------------------------------------------------------------
def _int(v):
    try:
        return int(v)
    except (ValueError, OverflowError):  # NaN, infinity
        raise ProtocolError(E_RANGE, "not a finite number")


def clamp(v, lo, hi):
    v = _int(v)
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


def wrap32(v):
    return _int(v) & 0xFFFFFFFF


def _seal(body):
    """Append the CRC to a bytearray holding version..payload; return bytes."""
    c = crc16(body)
    body.append(c & 0xFF)
    body.append(c >> 8)
    return bytes(body)


def ranges_byte(accel_fs_g, gyro_fs_dps):
    """Encode full-scale ranges: low nibble accel (2<<n g), high nibble gyro (125<<n dps)."""
    a = {2: 0, 4: 1, 8: 2, 16: 3}.get(accel_fs_g)
    g = {125: 0, 250: 1, 500: 2, 1000: 3, 2000: 4}.get(gyro_fs_dps)
    if a is None or g is None:
        raise ProtocolError(E_RANGE, "unsupported full-scale range")
    return a | (g << 4)


def accel_fs_g(ranges):
    return 2 << (ranges & 0x03)


def gyro_fs_dps(ranges):
    return 125 << ((ranges >> 4) & 0x07)


def sample_size(mask):
    """Bytes per sample: 12 per IMU in the mask, plus the int16 device angle."""
    n = (mask & 1) + ((mask >> 1) & 1)
    return n * AXES_PER_IMU * 2 + 2


def values_per_sample(mask):
    return sample_size(mask) // 2


def max_samples_per_frame(mask):
    return (MAX_FRAME - SAMPLES_HEADER_SIZE - CRC_SIZE) // sample_size(mask)


def pack_values(values):
    """Pack a sequence of ints as little-endian int16, clamped to int16."""
    n = len(values)
    out = bytearray(2 * n)
    pi = struct.pack_into
    for i in range(n):
        v = _int(values[i])
        if v > 32767:
            v = 32767
        elif v < -32768:
            v = -32768
        pi("<h", out, 2 * i, v)
    return out


def unpack_values(block):
    """Inverse of pack_values: a tuple of ints."""
    return struct.unpack("<%dh" % (len(block) // 2), block)


# ---- encoders --------------------------------------------------------------
def encode_samples(seq, t_us, period_us, mask, ranges, flags, count, block):
    """A SAMPLES frame. `block` is the packed int16 sample data (see
    pack_values): per sample, [ax ay az gx gy gz] of the upper IMU if in mask,
    then of the lower IMU if in mask, then the device angle in centidegrees."""
    mask = _int(mask)
    if mask not in (1, 2, 3):
        raise ProtocolError(E_RANGE, "sensor mask must be 1, 2 or 3")
    ranges = _int(ranges)
    if ranges < 0 or (ranges & 0x0C) or (ranges >> 4) > 4:
        raise ProtocolError(E_RANGE, "bad ranges byte")
    count = clamp(count, 0, 255)
    if count < 1 or count > max_samples_per_frame(mask):
        raise ProtocolError(E_RANGE, "sample count does not fit one frame")
    if len(block) != count * sample_size(mask):
        raise ProtocolError(E_LENGTH, "sample block length does not match count")
    body = bytearray(
        struct.pack(
            _SAMPLES_HDR,
            PROTOCOL_VERSION,
            T_SAMPLES,
            wrap32(seq),
            wrap32(t_us),
            clamp(period_us, 1, 0xFFFF),
            mask,
            ranges,
            count,
            clamp(flags, 0, 255),
        )
    )
    body.extend(block)
    return _seal(body)


def encode_status(
    fw_version=(0, 0, 0),
    battery_mv=0,
    battery_pct=BATTERY_UNKNOWN,
    imu_upper=IMU_NONE,
    imu_lower=IMU_NONE,
    ranges=0,
    period_us=10000,
    samples_per_frame=1,
    guard_flex_cdeg=0,
    guard_ext_cdeg=0,
    guard_mode=GUARD_OFF,
    state=0,
    boot_count=0,
    uptime_ms=0,
    last_counter=0,
    frames_sent=0,
    samples_dropped=0,
    samples_lost_fifo=0,
    fifo_overflows=0,
    frames_dropped=0,
    commands_rejected=0,
    guard_alerts=0,
    heap_free=0,
    imu_lost=0,
    i2c_errors=0,
    imu_resyncs=0,
    faults=0,
):
    """A STATUS frame (see Status for the fields)."""
    body = bytearray(
        struct.pack(
            _STATUS_FMT,
            PROTOCOL_VERSION,
            T_STATUS,
            clamp(fw_version[0], 0, 255),
            clamp(fw_version[1], 0, 255),
            clamp(fw_version[2], 0, 255),
            clamp(battery_mv, 0, 0xFFFF),
            clamp(battery_pct, 0, 255),
            clamp(imu_upper, 0, 255),
            clamp(imu_lower, 0, 255),
            clamp(ranges, 0, 255),
            clamp(period_us, 1, 0xFFFF),
            clamp(samples_per_frame, 0, 255),
            clamp(guard_flex_cdeg, -32768, 32767),
            clamp(guard_ext_cdeg, -32768, 32767),
            clamp(guard_mode, 0, 255),
            clamp(state, 0, 255),
            clamp(boot_count, 0, 0xFFFF),
            wrap32(uptime_ms),
            wrap32(last_counter),
            wrap32(frames_sent),
            clamp(samples_dropped, 0, 0xFFFFFFFF),
            clamp(fifo_overflows, 0, 0xFFFF),
            clamp(samples_lost_fifo, 0, 0xFFFFFFFF),
            clamp(frames_dropped, 0, 0xFFFF),
            clamp(commands_rejected, 0, 0xFFFF),
            clamp(guard_alerts, 0, 0xFFFF),
            clamp(heap_free, 0, 0xFFFFFFFF),
            clamp(imu_lost, 0, 3),
            clamp(i2c_errors, 0, 0xFFFF),
            clamp(imu_resyncs, 0, 255),
            clamp(faults, 0, 255),
        )
    )
    return _seal(body)


def encode_command(counter, opcode, args=()):
    """A COMMAND frame. Arguments are clamped to the opcode's accepted limits."""
    fmt = OPCODE_ARGS.get(opcode)
    if fmt is None:
        raise ProtocolError(E_OPCODE, "unknown opcode", counter, opcode)
    limits = OPCODE_LIMITS[opcode]
    if len(args) != len(limits):
        raise ProtocolError(E_LENGTH, "wrong number of arguments", counter, opcode)
    vals = []
    for i in range(len(args)):
        vals.append(clamp(args[i], limits[i][0], limits[i][1]))
    body = bytearray(struct.pack(_COMMAND_HDR, PROTOCOL_VERSION, T_COMMAND, wrap32(counter), opcode))
    body.extend(struct.pack(fmt, *vals))
    return _seal(body)


def encode_ack(counter, opcode, value=0):
    body = bytearray(
        struct.pack(_ACK_FMT, PROTOCOL_VERSION, T_ACK, wrap32(counter), clamp(opcode, 0, 255), wrap32(value))
    )
    return _seal(body)


def encode_error(counter, opcode, code):
    body = bytearray(
        struct.pack(
            _ERROR_FMT, PROTOCOL_VERSION, T_ERROR, wrap32(counter), clamp(opcode, 0, 255), clamp(code, 0, 255)
        )
    )
    return _seal(body)


# ---- decoded frames ------------------------------------------------------------
class Samples:
    kind = T_SAMPLES

    def __init__(self, seq, t_us, period_us, mask, ranges, count, flags, block):
        self.seq = seq
        self.t_us = t_us
        self.period_us = period_us
        self.mask = mask
        self.ranges = ranges
        self.count = count
        self.flags = flags
        self.block = block  # packed int16, count * sample_size(mask) bytes

    def values(self):
        return unpack_values(self.block)


STATUS_FIELDS = (
    "fw_major",
    "fw_minor",
    "fw_patch",
    "battery_mv",
    "battery_pct",
    "imu_upper",
    "imu_lower",
    "ranges",
    "period_us",
    "samples_per_frame",
    "guard_flex_cdeg",
    "guard_ext_cdeg",
    "guard_mode",
    "state",
    "boot_count",
    "uptime_ms",
    "last_counter",
    "frames_sent",
    "samples_dropped",
    "fifo_overflows",
    "samples_lost_fifo",
    "frames_dropped",
    "commands_rejected",
    "guard_alerts",
    "heap_free",
    "imu_lost",
    "i2c_errors",
    "imu_resyncs",
    "faults",
)
_STATUS_NONE_52 = (None, None, None, None)


class Status:
    kind = T_STATUS

    def __init__(self, values):
        # one name per field of STATUS_FIELDS, in its order (declared, so a type checker sees them)
        (
            self.fw_major,
            self.fw_minor,
            self.fw_patch,
            self.battery_mv,
            self.battery_pct,
            self.imu_upper,
            self.imu_lower,
            self.ranges,
            self.period_us,
            self.samples_per_frame,
            self.guard_flex_cdeg,
            self.guard_ext_cdeg,
            self.guard_mode,
            self.state,
            self.boot_count,
            self.uptime_ms,
            self.last_counter,
            self.frames_sent,
            self.samples_dropped,
            self.fifo_overflows,
            self.samples_lost_fifo,
            self.frames_dropped,
            self.commands_rejected,
            self.guard_alerts,
            self.heap_free,
            self.imu_lost,
            self.i2c_errors,
            self.imu_resyncs,
            self.faults,
        ) = values

    @property
    def fw_version(self):
        return (self.fw_major, self.fw_minor, self.fw_patch)

    # the `faults` byte, spelled out (None: firmware before 0.4)
    @property
    def watchdog_reset(self):
        return None if self.faults is None else bool(self.faults & FAULT_WATCHDOG_RESET)

    @property
    def save_failed(self):
        return None if self.faults is None else bool(self.faults & FAULT_SAVE_FAILED)

    @property
    def boot_retries(self):
        return None if self.faults is None else (self.faults >> FAULT_BOOT_RETRIES_SHIFT) & 7

    def as_dict(self):
        d = {}
        for name in STATUS_FIELDS:
            d[name] = getattr(self, name)
        return d


class Command:
    kind = T_COMMAND

    def __init__(self, counter, opcode, args):
        self.counter = counter
        self.opcode = opcode
        self.args = args


class Ack:
    kind = T_ACK

    def __init__(self, counter, opcode, value):
        self.counter = counter
        self.opcode = opcode
        self.value = value


class Error:
    kind = T_ERROR

    def __init__(self, counter, opcode, code):
        self.counter = counter
        self.opcode = opcode
        self.code = code


# ---- decoder ---------------------------------------------------------------
def check_frame(frame):
    """Check size, CRC and version; return the frame type. Raises ProtocolError."""
    n = len(frame)
    if n < MIN_FRAME:
        raise ProtocolError(E_TRUNCATED, "frame shorter than header and CRC")
    if n > MAX_FRAME:
        raise ProtocolError(E_LENGTH, "frame longer than one notification")
    if crc16(memoryview(frame)[: n - 2]) != (frame[n - 2] | (frame[n - 1] << 8)):
        raise ProtocolError(E_CRC, "CRC mismatch")
    if frame[0] != PROTOCOL_VERSION:
        raise ProtocolError(E_VERSION, "unsupported protocol version")
    return frame[1]


def decode(frame):
    """Decode one frame (bytes-like, CRC included) into Samples, Status,
    Command, Ack or Error. Raises ProtocolError, and nothing else, on bad bytes."""
    ftype = check_frame(frame)
    n = len(frame)
    if ftype == T_SAMPLES:
        if n < SAMPLES_HEADER_SIZE + CRC_SIZE:
            raise ProtocolError(E_TRUNCATED, "SAMPLES header truncated")
        _, _, seq, t_us, period, mask, ranges, count, flags = struct.unpack_from(_SAMPLES_HDR, frame, 0)
        if mask == 0 or mask > 3:
            raise ProtocolError(E_RANGE, "bad sensor mask")
        if count == 0 or period == 0:
            raise ProtocolError(E_RANGE, "empty SAMPLES frame")
        if (ranges & 0x0C) or ((ranges >> 4) > 4):
            raise ProtocolError(E_RANGE, "bad ranges byte")
        if n - SAMPLES_HEADER_SIZE - CRC_SIZE != count * sample_size(mask):
            raise ProtocolError(E_LENGTH, "SAMPLES length does not match count")
        block = bytes(memoryview(frame)[SAMPLES_HEADER_SIZE : n - CRC_SIZE])
        return Samples(seq, t_us, period, mask, ranges, count, flags, block)
    if ftype == T_STATUS:
        if n == HEADER_SIZE + STATUS_PAYLOAD_SIZE + CRC_SIZE:
            return Status(struct.unpack_from(_STATUS_FMT, frame, 0)[2:])
        if n == HEADER_SIZE + STATUS_PAYLOAD_SIZE_52 + CRC_SIZE:
            return Status(struct.unpack_from(_STATUS_FMT_52, frame, 0)[2:] + _STATUS_NONE_52)
        if n == HEADER_SIZE + STATUS_PAYLOAD_SIZE_48 + CRC_SIZE:
            return Status(struct.unpack_from(_STATUS_FMT_48, frame, 0)[2:] + (None,) + _STATUS_NONE_52)
        raise ProtocolError(E_LENGTH, "STATUS has the wrong length")
    if ftype == T_COMMAND:
        return decode_command_body(frame)
    if ftype == T_ACK:
        if n != 13:
            raise ProtocolError(E_LENGTH, "ACK has the wrong length")
        _, _, counter, opcode, value = struct.unpack_from(_ACK_FMT, frame, 0)
        return Ack(counter, opcode, value)
    if ftype == T_ERROR:
        if n != 10:
            raise ProtocolError(E_LENGTH, "ERROR has the wrong length")
        _, _, counter, opcode, code = struct.unpack_from(_ERROR_FMT, frame, 0)
        return Error(counter, opcode, code)
    raise ProtocolError(E_TYPE, "unknown frame type")


def decode_command_body(frame):
    n = len(frame)
    if n < COMMAND_HEADER_SIZE + CRC_SIZE:
        raise ProtocolError(E_TRUNCATED, "COMMAND header truncated")
    _, _, counter, opcode = struct.unpack_from(_COMMAND_HDR, frame, 0)
    fmt = OPCODE_ARGS.get(opcode)
    if fmt is None:
        raise ProtocolError(E_OPCODE, "unknown opcode", counter, opcode)
    if n - COMMAND_HEADER_SIZE - CRC_SIZE != struct.calcsize(fmt):
        raise ProtocolError(E_LENGTH, "COMMAND arguments have the wrong length", counter, opcode)
    args = struct.unpack_from(fmt, frame, COMMAND_HEADER_SIZE)
    limits = OPCODE_LIMITS[opcode]
    for i in range(len(args)):
        if args[i] < limits[i][0] or args[i] > limits[i][1]:
            raise ProtocolError(E_RANGE, "COMMAND argument out of range", counter, opcode)
    return Command(counter, opcode, args)


def decode_command(frame):
    """Decode a frame that must be a COMMAND (device side)."""
    ftype = check_frame(frame)
    if ftype != T_COMMAND:
        raise ProtocolError(E_TYPE, "not a COMMAND frame")
    return decode_command_body(frame)


def counter_is_newer(counter, last):
    """True if `counter` comes after `last` (u32, serial-number arithmetic)."""
    d = (counter - last) & 0xFFFFFFFF
    return 0 < d < 0x80000000


def counter_in_window(counter, last, window=COUNTER_WINDOW):
    """True if `counter` is 1..`window` ahead of `last` (u32, wrapping): the
    device's acceptance rule for BLE commands."""
    d = (counter - last) & 0xFFFFFFFF
    return 0 < d <= window


# ---- COBS over a byte stream ---------------------------------------------------
def cobs_encode(data):
    """COBS-encode `data` (no 0x00 in the result); append DELIMITER to send."""
    out = bytearray()
    code_pos = 0
    out.append(0)
    code = 1
    for b in data:
        if b == 0:
            out[code_pos] = code
            code_pos = len(out)
            out.append(0)
            code = 1
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_pos] = code
                code_pos = len(out)
                out.append(0)
                code = 1
    out[code_pos] = code
    return bytes(out)


def cobs_decode(data):
    """Inverse of cobs_encode (without the delimiter). Raises ProtocolError."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ProtocolError(E_FRAMING, "zero byte inside a COBS block")
        i += 1
        end = i + code - 1
        if end > n:
            raise ProtocolError(E_FRAMING, "COBS block runs past the end")
        for j in range(i, end):
            if data[j] == 0:
                raise ProtocolError(E_FRAMING, "zero byte inside a COBS block")
        out.extend(data[i:end])
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def stream_frame(frame):
    """One frame as it goes on a serial line: COBS, then the 0x00 delimiter."""
    return cobs_encode(frame) + DELIMITER


class StreamDecoder:
    """Split a byte stream into frames at 0x00 delimiters and COBS-decode them.
    Garbage between delimiters is counted in `framing_errors` and skipped, so a
    receiver resynchronises at the next delimiter. Frame contents are not
    checked here: pass what feed() returns to decode()."""

    def __init__(self, max_encoded=MAX_ENCODED):
        self.buf = bytearray()
        self.max_encoded = max_encoded
        self.framing_errors = 0
        self.overflowing = False

    def feed(self, data):
        data = bytes(data)
        out = []
        start = 0
        n = len(data)
        while start < n:
            idx = data.find(DELIMITER, start)
            if idx < 0:
                chunk = data[start:]
                if not self.overflowing:
                    if len(self.buf) + len(chunk) > self.max_encoded:
                        self.overflowing = True
                        self.buf = bytearray()
                    else:
                        self.buf.extend(chunk)
                break
            if self.overflowing:
                self.framing_errors += 1
                self.overflowing = False
            else:
                self.buf.extend(data[start:idx])
                if len(self.buf) > self.max_encoded:
                    self.framing_errors += 1
                elif len(self.buf):
                    try:
                        out.append(cobs_decode(self.buf))
                    except ProtocolError:
                        self.framing_errors += 1
            self.buf = bytearray()
            start = idx + 1
        return out
