"""Protocol v1 (protocol/spinemon_protocol.py) under CPython.

Round trips for every frame type, error detection (bit flips, truncation,
structured garbage with a valid CRC), fuzzing that only ProtocolError ever
escapes, COBS stream framing and resynchronisation, CRC agreement between the
C and the pure-Python implementation, explicit clamping and counter wrap, frame
size limits, and the worked hex examples in docs/protocol.md.

The strategies defined here are reused by tests/protocol/test_protocol_micropython.py.
"""

from __future__ import annotations

import ast
import binascii
import re
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spinemon_protocol as P
from spinemon.errors import ProtocolError, SpinemonError

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

STREAMS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

U8 = (0, 0xFF)
U16 = (0, 0xFFFF)
U32 = (0, 0xFFFFFFFF)
I16 = (-0x8000, 0x7FFF)

# STATUS field -> (lo, hi) of its wire type, written from the spec (docs/protocol.md),
# independently of the module's format string.
STATUS_RANGES = {
    "fw_major": U8,
    "fw_minor": U8,
    "fw_patch": U8,
    "battery_mv": U16,
    "battery_pct": U8,
    "imu_upper": U8,
    "imu_lower": U8,
    "ranges": U8,
    "period_us": (1, 0xFFFF),
    "samples_per_frame": U8,
    "guard_flex_cdeg": I16,
    "guard_ext_cdeg": I16,
    "guard_mode": U8,
    "state": U8,
    "boot_count": U16,
    "uptime_ms": U32,
    "last_counter": U32,
    "frames_sent": U32,
    "samples_dropped": U32,
    "fifo_overflows": U16,
    "samples_lost_fifo": U32,
    "frames_dropped": U16,
    "commands_rejected": U16,
    "guard_alerts": U16,
    "heap_free": U32,
    "imu_lost": (0, 3),
    "i2c_errors": U16,
    "imu_resyncs": U8,
    "faults": U8,
}
FAULT_FIELDS = ("imu_lost", "i2c_errors", "imu_resyncs", "faults")
STATUS_WRAPS = {"uptime_ms", "last_counter", "frames_sent"}  # counters wrap, the rest clamp

# wire type of each argument format character
ARG_TYPE_RANGES = {"B": U8, "H": U16, "h": I16}


def clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


# ---- strategies --------------------------------------------------------------
u8 = st.integers(*U8)
u16 = st.integers(*U16)
u32 = st.integers(*U32)
i16 = st.integers(*I16)
big = st.integers(-(2**40), 2**40)  # far outside every wire type
valid_ranges = st.builds(lambda a, g: a | (g << 4), st.integers(0, 3), st.integers(0, 4))


@st.composite
def samples_kwargs(draw, mask=None, values=i16, fields_in_range=True):
    """Arguments of encode_samples (with `values` instead of the packed block)."""
    if mask is None:
        mask = draw(st.sampled_from([1, 2, 3]))
    count = draw(st.integers(1, P.max_samples_per_frame(mask)))
    n = count * P.values_per_sample(mask)
    field = (lambda lo, hi: st.integers(lo, hi)) if fields_in_range else (lambda lo, hi: big)
    return {
        "seq": draw(field(*U32)),
        "t_us": draw(field(*U32)),
        "period_us": draw(field(1, 0xFFFF)),
        "mask": mask,
        "ranges": draw(valid_ranges),
        "flags": draw(field(*U8)),
        "count": count,
        "values": draw(st.lists(values, min_size=n, max_size=n)),
    }


def status_kwargs(fields_in_range=True):
    return st.fixed_dictionaries(
        {name: (st.integers(*r) if fields_in_range else big) for name, r in STATUS_RANGES.items()}
    )


@st.composite
def command_kwargs(draw, in_range=True):
    opcode = draw(st.sampled_from(sorted(P.OPCODE_ARGS)))
    limits = P.OPCODE_LIMITS[opcode]
    if in_range:
        args = tuple(draw(st.integers(lo, hi)) for lo, hi in limits)
        counter = draw(u32)
    else:
        args = tuple(draw(st.one_of(big, st.integers(lo, hi))) for lo, hi in limits)
        counter = draw(big)
    return {"counter": counter, "opcode": opcode, "args": args}


def ack_kwargs(in_range=True):
    w = (lambda r: st.integers(*r)) if in_range else (lambda r: big)
    return st.fixed_dictionaries({"counter": w(U32), "opcode": w(U8), "value": w(U32)})


def error_kwargs(in_range=True):
    w = (lambda r: st.integers(*r)) if in_range else (lambda r: big)
    return st.fixed_dictionaries({"counter": w(U32), "opcode": w(U8), "code": w(U8)})


# ---- encoding helpers ----------------------------------------------------------
def encode_samples_kw(kw: dict) -> bytes:
    args = dict(kw)
    args["block"] = P.pack_values(args.pop("values"))
    return P.encode_samples(**args)


def encode_status_kw(kw: dict) -> bytes:
    args = dict(kw)
    args["fw_version"] = (args.pop("fw_major"), args.pop("fw_minor"), args.pop("fw_patch"))
    return P.encode_status(**args)


ENCODERS = {
    "samples": encode_samples_kw,
    "status": encode_status_kw,
    "command": lambda kw: P.encode_command(**kw),
    "ack": lambda kw: P.encode_ack(**kw),
    "error": lambda kw: P.encode_error(**kw),
}


def any_frame_case(in_range=True):
    """(kind, kwargs) for any frame type."""
    return st.one_of(
        st.tuples(st.just("samples"), samples_kwargs(fields_in_range=in_range, values=i16 if in_range else big)),
        st.tuples(st.just("status"), status_kwargs(in_range)),
        st.tuples(st.just("command"), command_kwargs(in_range)),
        st.tuples(st.just("ack"), ack_kwargs(in_range)),
        st.tuples(st.just("error"), error_kwargs(in_range)),
    )


any_frame = any_frame_case().map(lambda c: ENCODERS[c[0]](c[1]))


def seal(body: bytes) -> bytes:
    """Append a valid CRC to version..payload (for structured garbage)."""
    c = binascii.crc_hqx(bytes(body), 0xFFFF)
    return bytes(body) + bytes((c & 0xFF, c >> 8))


def decode_error(frame, fn=P.decode) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        fn(frame)
    return info.value


# ---- round trips ----------------------------------------------------------------
@pytest.mark.parametrize("mask", [1, 2, 3])
@FAST
@given(data=st.data())
def test_samples_round_trip(mask, data):
    kw = data.draw(samples_kwargs(mask=mask))
    frame = encode_samples_kw(kw)
    assert len(frame) == P.SAMPLES_HEADER_SIZE + kw["count"] * P.sample_size(mask) + P.CRC_SIZE
    s = P.decode(frame)
    assert isinstance(s, P.Samples) and s.kind == P.T_SAMPLES
    for name in ("seq", "t_us", "period_us", "mask", "ranges", "flags", "count"):
        assert getattr(s, name) == kw[name], name
    assert list(s.values()) == kw["values"]


@FAST
@given(kw=status_kwargs())
def test_status_round_trip(kw):
    frame = encode_status_kw(kw)
    assert len(frame) == P.HEADER_SIZE + P.STATUS_PAYLOAD_SIZE + P.CRC_SIZE == 61
    s = P.decode(frame)
    assert isinstance(s, P.Status) and s.kind == P.T_STATUS
    assert s.as_dict() == kw
    assert s.fw_version == (kw["fw_major"], kw["fw_minor"], kw["fw_patch"])


@FAST
@given(kw=status_kwargs())
def test_a_status_from_firmware_before_heap_free_still_decodes(kw):
    """Firmware 0.1 sent a 48-byte STATUS payload (no heap_free): a host
    still reads every field of it, and heap_free is None (not reported)."""
    frame = encode_status_kw(kw)
    old = seal(frame[: P.HEADER_SIZE + P.STATUS_PAYLOAD_SIZE_48])
    assert len(old) == 52
    s = P.decode(old)
    want = dict(kw, heap_free=None, **{k: None for k in FAULT_FIELDS})
    assert s.as_dict() == want
    for n in (51, 53, 55, 57, 59, 60, 62, 64):  # any other length is refused
        body = (frame + bytes(8))[: n - P.CRC_SIZE]
        assert decode_error(seal(body)).code == P.E_LENGTH


@FAST
@given(kw=status_kwargs())
def test_a_status_from_firmware_before_the_fault_fields_still_decodes(kw):
    """Firmware 0.2/0.3 sent a 52-byte STATUS payload (heap_free, no fault
    fields): every field it has is read, the fault fields are None."""
    frame = encode_status_kw(kw)
    old = seal(frame[: P.HEADER_SIZE + P.STATUS_PAYLOAD_SIZE_52])
    assert len(old) == 56
    st = P.decode(old)
    assert st.as_dict() == dict(kw, **{k: None for k in FAULT_FIELDS})
    assert st.watchdog_reset is None and st.save_failed is None and st.boot_retries is None


def test_the_faults_byte_spells_out():
    for wd in (False, True):
        for sf in (False, True):
            for n in range(9):
                st = P.decode(P.encode_status(faults=P.fault_bits(wd, sf, n)))
                assert (st.watchdog_reset, st.save_failed, st.boot_retries) == (wd, sf, min(n, 7))


@pytest.mark.parametrize("opcode", sorted(P.OPCODE_ARGS), ids=lambda op: P.OPCODE_NAMES[op])
@FAST
@given(data=st.data())
def test_command_round_trip_every_opcode(opcode, data):
    args = tuple(data.draw(st.integers(lo, hi)) for lo, hi in P.OPCODE_LIMITS[opcode])
    counter = data.draw(u32)
    frame = P.encode_command(counter, opcode, args)
    assert len(frame) == P.COMMAND_HEADER_SIZE + struct.calcsize(P.OPCODE_ARGS[opcode]) + P.CRC_SIZE
    for fn in (P.decode, P.decode_command):
        c = fn(frame)
        assert isinstance(c, P.Command) and c.kind == P.T_COMMAND
        assert (c.counter, c.opcode, tuple(c.args)) == (counter, opcode, args)


@FAST
@given(kw=ack_kwargs())
def test_ack_round_trip(kw):
    frame = P.encode_ack(**kw)
    assert len(frame) == 13
    a = P.decode(frame)
    assert isinstance(a, P.Ack) and (a.counter, a.opcode, a.value) == (kw["counter"], kw["opcode"], kw["value"])


@FAST
@given(kw=error_kwargs())
def test_error_round_trip(kw):
    frame = P.encode_error(**kw)
    assert len(frame) == 10
    e = P.decode(frame)
    assert isinstance(e, P.Error) and (e.counter, e.opcode, e.code) == (kw["counter"], kw["opcode"], kw["code"])


def test_every_frame_starts_with_version_and_type():
    frames = {
        P.T_SAMPLES: P.encode_samples(0, 0, 10000, 1, 0, 0, 1, P.pack_values([0] * 7)),
        P.T_STATUS: P.encode_status(),
        P.T_COMMAND: P.encode_command(1, P.OP_START),
        P.T_ACK: P.encode_ack(1, P.OP_START),
        P.T_ERROR: P.encode_error(1, P.OP_START, P.E_STALE),
    }
    for ftype, frame in frames.items():
        assert frame[0] == P.PROTOCOL_VERSION == 1
        assert frame[1] == ftype
        assert P.check_frame(frame) == ftype
        # CRC-16 little-endian over version..payload
        assert frame[-2:] == struct.pack("<H", binascii.crc_hqx(frame[:-2], 0xFFFF))
        assert P.decode(frame).kind == ftype


# ---- error detection -------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(frame=any_frame)
def test_every_single_bit_flip_is_rejected_as_bad_crc(frame):
    buf = bytearray(frame)
    for i in range(len(buf)):
        for bit in range(8):
            buf[i] ^= 1 << bit
            try:
                P.decode(buf)
            except ProtocolError as e:
                assert e.code == P.E_CRC, (i, bit, e.reason)
            else:
                raise AssertionError("bit flip at byte %d bit %d was accepted" % (i, bit))
            buf[i] ^= 1 << bit
    P.decode(buf)  # restored: still valid


@settings(max_examples=60, deadline=None)
@given(frame=any_frame)
def test_every_truncation_is_rejected(frame):
    for k in range(len(frame)):
        e = decode_error(frame[:k])
        if k < P.MIN_FRAME:
            assert e.code == P.E_TRUNCATED


def test_truncated_prefix_with_accidentally_valid_crc_is_still_rejected():
    # Re-seal every prefix of each frame type: the CRC is right, the length is not.
    frames = [
        P.encode_samples(5, 6, 10000, 3, 0x21, 0, 2, P.pack_values(range(26))),
        P.encode_status(fw_version=(1, 2, 3)),
        P.encode_command(9, P.OP_HAPTIC, (2, 100, 100, 200)),
        P.encode_ack(9, P.OP_HAPTIC, 1),
        P.encode_error(9, P.OP_HAPTIC, P.E_RANGE),
    ]
    for frame in frames:
        body = frame[:-2]
        for k in range(P.HEADER_SIZE, len(body)):
            if frame[1] == P.T_STATUS and k == P.HEADER_SIZE + P.STATUS_PAYLOAD_SIZE_48:
                assert P.decode(seal(body[:k])).heap_free is None  # an older firmware's STATUS
                continue
            if frame[1] == P.T_STATUS and k == P.HEADER_SIZE + P.STATUS_PAYLOAD_SIZE_52:
                assert P.decode(seal(body[:k])).imu_lost is None  # an older firmware's STATUS
                continue
            e = decode_error(seal(body[:k]))
            assert e.code in (P.E_TRUNCATED, P.E_LENGTH), (frame[1], k, e.reason)


def test_oversized_frame_is_rejected_as_bad_length():
    body = bytes([P.PROTOCOL_VERSION, P.T_STATUS]) + bytes(P.MAX_FRAME)
    assert decode_error(seal(body)).code == P.E_LENGTH


# ---- fuzzing: only ProtocolError escapes ------------------------------------------
DECODED_TYPES = (P.Samples, P.Status, P.Command, P.Ack, P.Error)


def only_protocol_error(fn, data):
    try:
        return fn(data)
    except ProtocolError as e:
        assert e.code in P.ERROR_NAMES, e.code
        assert isinstance(e, SpinemonError)
        return e


@MANY
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash_decoders(data):
    for fn in (P.decode, P.decode_command):
        r = only_protocol_error(fn, data)
        assert isinstance(r, (ProtocolError,) + DECODED_TYPES)
    r = only_protocol_error(P.cobs_decode, data)
    assert isinstance(r, (ProtocolError, bytes))
    dec = P.StreamDecoder()
    out = dec.feed(data)
    assert all(isinstance(f, bytes) for f in out)


@MANY
@given(
    version=st.one_of(st.just(P.PROTOCOL_VERSION), u8),
    ftype=st.one_of(st.sampled_from(sorted(P.FRAME_NAMES)), u8),
    payload=st.binary(max_size=250),
)
def test_garbage_with_valid_crc_never_crashes_and_gets_the_right_code(version, ftype, payload):
    frame = seal(bytes([version, ftype]) + payload)
    for fn in (P.decode, P.decode_command):
        r = only_protocol_error(fn, frame)
        if len(frame) > P.MAX_FRAME:
            assert isinstance(r, ProtocolError) and r.code == P.E_LENGTH
        elif version != P.PROTOCOL_VERSION:
            assert isinstance(r, ProtocolError) and r.code == P.E_VERSION
        elif ftype not in P.FRAME_NAMES or (fn is P.decode_command and ftype != P.T_COMMAND):
            assert isinstance(r, ProtocolError) and r.code == P.E_TYPE
        elif not isinstance(r, ProtocolError):
            assert r.kind == ftype


@STREAMS
@given(frame=any_frame, chunks=st.lists(st.binary(max_size=40), max_size=8))
def test_stream_decoder_never_raises(frame, chunks):
    dec = P.StreamDecoder()
    for c in chunks:
        for f in dec.feed(c):
            only_protocol_error(P.decode, f)
        assert len(dec.buf) <= dec.max_encoded
    assert dec.feed(P.DELIMITER + P.stream_frame(frame))[-1:] == [frame]


@FAST
@given(data=st.data(), version=u8.filter(lambda v: v != P.PROTOCOL_VERSION))
def test_wrong_version_with_valid_crc_is_e_version(data, version):
    frame = data.draw(any_frame)
    e = decode_error(seal(bytes([version]) + frame[1:-2]))
    assert e.code == P.E_VERSION and e.reason == "wrong_version"


@FAST
@given(data=st.data(), ftype=u8.filter(lambda t: t not in P.FRAME_NAMES))
def test_unknown_type_with_valid_crc_is_e_type(data, ftype):
    frame = data.draw(any_frame)
    e = decode_error(seal(frame[:1] + bytes([ftype]) + frame[2:-2]))
    assert e.code == P.E_TYPE and e.reason == "unknown_type"


@FAST
@given(frame=any_frame.filter(lambda f: f[1] != P.T_COMMAND))
def test_device_rejects_non_command_frames_as_e_type(frame):
    assert decode_error(frame, P.decode_command).code == P.E_TYPE


@FAST
@given(frame=any_frame, delta=st.integers(-250, 250).filter(lambda d: d != 0))
def test_valid_header_with_wrong_length_is_rejected(frame, delta):
    body = frame[:-2]
    if delta < 0:
        body = body[: max(P.HEADER_SIZE, len(body) + delta)]
    else:
        body = body + bytes(range(1, delta + 1))
    new = seal(body)
    ftype = frame[1]
    if ftype == P.T_STATUS and len(new) == P.HEADER_SIZE + P.STATUS_PAYLOAD_SIZE_48 + P.CRC_SIZE:
        assert P.decode(new).heap_free is None  # the length of an older firmware's STATUS
        return
    if ftype == P.T_STATUS and len(new) == P.HEADER_SIZE + P.STATUS_PAYLOAD_SIZE_52 + P.CRC_SIZE:
        assert P.decode(new).imu_lost is None  # the length of an older firmware's STATUS
        return
    e = decode_error(new)
    if len(new) > P.MAX_FRAME:
        assert e.code == P.E_LENGTH
    elif ftype == P.T_SAMPLES and len(new) < P.SAMPLES_HEADER_SIZE + P.CRC_SIZE:
        assert e.code == P.E_TRUNCATED
    elif ftype == P.T_COMMAND and len(new) < P.COMMAND_HEADER_SIZE + P.CRC_SIZE:
        assert e.code == P.E_TRUNCATED
    else:
        assert e.code == P.E_LENGTH, e.reason


@pytest.mark.parametrize(
    "field,offset,value",
    [
        ("mask", 12, 0),
        ("mask", 12, 4),
        ("mask", 12, 0xFF),
        ("ranges", 13, 0x04),  # accel code bits 2-3 must be 0
        ("ranges", 13, 0x50),  # gyro code 5: no such range
        ("count", 14, 0),
        ("period_us", 10, 0),
    ],
)
def test_samples_header_out_of_range_is_e_range(field, offset, value):
    frame = bytearray(P.encode_samples(1, 2, 10000, 1, 0x42, 0, 1, P.pack_values([1] * 7)))
    if field == "period_us":
        frame[offset : offset + 2] = struct.pack("<H", value)
    else:
        frame[offset] = value
    assert decode_error(seal(frame[:-2])).code == P.E_RANGE


@FAST
@given(counter=u32, opcode=u8.filter(lambda op: op not in P.OPCODE_ARGS), tail=st.binary(max_size=8))
def test_unknown_opcode_is_e_opcode_with_counter_and_opcode(counter, opcode, tail):
    frame = seal(struct.pack("<BBIB", P.PROTOCOL_VERSION, P.T_COMMAND, counter, opcode) + tail)
    for fn in (P.decode, P.decode_command):
        e = decode_error(frame, fn)
        assert (e.code, e.counter, e.opcode) == (P.E_OPCODE, counter, opcode)
    with pytest.raises(ProtocolError) as info:
        P.encode_command(counter, opcode, ())
    assert info.value.code == P.E_OPCODE


@st.composite
def out_of_range_command(draw):
    """A COMMAND whose wire bytes hold one argument outside its accepted range."""
    opcode = draw(st.sampled_from([op for op, lim in P.OPCODE_LIMITS.items() if lim]))
    fmt = P.OPCODE_ARGS[opcode]
    limits = P.OPCODE_LIMITS[opcode]
    args = [draw(st.integers(lo, hi)) for lo, hi in limits]
    i = draw(st.integers(0, len(args) - 1))
    tlo, thi = ARG_TYPE_RANGES[fmt[1 + i]]
    lo, hi = limits[i]
    outside = []
    if tlo < lo:
        outside.append(st.integers(tlo, lo - 1))
    if hi < thi:
        outside.append(st.integers(hi + 1, thi))
    args[i] = draw(st.one_of(*outside))
    counter = draw(u32)
    body = struct.pack("<BBIB", P.PROTOCOL_VERSION, P.T_COMMAND, counter, opcode) + struct.pack(fmt, *args)
    return counter, opcode, tuple(args), seal(body)


@FAST
@given(case=out_of_range_command())
def test_out_of_range_command_args_are_e_range_with_counter_and_opcode(case):
    counter, opcode, args, frame = case
    for fn in (P.decode, P.decode_command):
        e = decode_error(frame, fn)
        assert (e.code, e.counter, e.opcode) == (P.E_RANGE, counter, opcode)
    # the encoder clamps instead: what it sends is always accepted
    c = P.decode_command(P.encode_command(counter, opcode, args))
    assert tuple(c.args) == tuple(clamp(a, lo, hi) for a, (lo, hi) in zip(args, P.OPCODE_LIMITS[opcode]))


def test_command_with_wrong_argument_length_is_e_length_with_counter_and_opcode():
    good = P.encode_command(77, P.OP_SET_RATE, (100,))
    e = decode_error(seal(good[:-2] + b"\x01"), P.decode_command)
    assert (e.code, e.counter, e.opcode) == (P.E_LENGTH, 77, P.OP_SET_RATE)
    with pytest.raises(ProtocolError) as info:
        P.encode_command(77, P.OP_SET_RATE, (100, 1))
    assert info.value.code == P.E_LENGTH


def test_protocol_error_is_the_shared_root():
    assert issubclass(ProtocolError, SpinemonError)
    assert ProtocolError is P.ProtocolError and SpinemonError is P.SpinemonError
    e = P.ProtocolError(P.E_STALE, "old")
    assert e.reason == "stale_counter" and e.counter is None and e.opcode is None
    assert P.ProtocolError(200, "?").reason == "unknown"
    assert len(set(P.ERROR_NAMES.values())) == len(P.ERROR_NAMES)


# ---- COBS and the stream decoder -------------------------------------------------------
# runs of non-zero bytes around the 254-byte COBS block limit, joined by zeros
nonzero_runs = st.lists(
    st.builds(lambda n, b: bytes([b]) * n, st.integers(0, 300) | st.integers(250, 258), st.integers(1, 255)),
    max_size=5,
).map(b"\x00".join)


@MANY
@given(data=st.binary(max_size=1200) | nonzero_runs)
def test_cobs_round_trip_and_no_zero_bytes(data):
    enc = P.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + 1 + len(data) // 254
    assert P.cobs_decode(enc) == data


def test_cobs_known_vectors():
    # from the COBS paper / Wikipedia table
    vectors = [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
    ]
    for raw, enc in vectors:
        assert P.cobs_encode(raw) == enc
        assert P.cobs_decode(enc) == raw


@pytest.mark.parametrize("bad", [b"\x00", b"\x03\x11", b"\x02\x00", b"\x05\x01\x02\x00\x03", b"\xff\x01"])
def test_cobs_decode_rejects_bad_framing(bad):
    assert decode_error(bad, P.cobs_decode).code == P.E_FRAMING


@settings(max_examples=60, deadline=None)
@given(frame=any_frame)
def test_stream_frame_fits_max_encoded(frame):
    wire = P.stream_frame(frame)
    assert wire.endswith(P.DELIMITER) and wire.count(0) == 1
    assert len(wire) <= P.MAX_FRAME + 2  # COBS(244 bytes) + delimiter = 246
    assert len(wire) - 1 <= P.MAX_ENCODED


def count_garbage_segments(garbage: bytes) -> int:
    return sum(1 for part in garbage.split(P.DELIMITER) if part)


@STREAMS
@given(garbage=st.binary(max_size=600), frames=st.lists(any_frame, min_size=1, max_size=6))
def test_stream_decoder_resynchronises_after_garbage(garbage, frames):
    stream = garbage + P.DELIMITER + b"".join(P.stream_frame(f) for f in frames)
    dec = P.StreamDecoder()
    out = dec.feed(stream)
    assert out[len(out) - len(frames) :] == frames
    # every non-empty garbage segment is either an error or an (invalid) frame, never lost silently
    junk = out[: len(out) - len(frames)]
    assert len(junk) + dec.framing_errors == count_garbage_segments(garbage)
    for f in frames:
        P.decode(f)


def test_stream_decoder_counts_garbage_and_recovers_mid_frame():
    frames = [P.encode_ack(i, P.OP_START, i * 1000) for i in range(5)]
    wire = b"".join(P.stream_frame(f) for f in frames)
    dec = P.StreamDecoder()
    # the receiver starts listening in the middle of frame 0; then line noise
    out = dec.feed(wire[5:] + b"\x07\x01\x02" + P.DELIMITER + P.stream_frame(frames[4]))
    assert dec.framing_errors == 1  # "\x07\x01\x02": COBS block runs past the end
    bad = [f for f in out if f not in frames]
    assert len(bad) == 1 and decode_error(bad[0]).code in (P.E_CRC, P.E_TRUNCATED, P.E_LENGTH)
    assert [P.decode(f).counter for f in out if f in frames] == [1, 2, 3, 4, 4]


@STREAMS
@given(
    garbage=st.binary(max_size=300),
    frames=st.lists(any_frame, min_size=1, max_size=5),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_stream_decoder_is_independent_of_chunking(garbage, frames, cuts):
    stream = garbage + P.DELIMITER + b"".join(P.stream_frame(f) for f in frames)
    whole = P.StreamDecoder()
    expected = whole.feed(stream)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunked = P.StreamDecoder()
    got = []
    prev = 0
    for p in points + [len(stream)]:
        got.extend(chunked.feed(stream[prev:p]))
        prev = p
    assert got == expected
    assert chunked.framing_errors == whole.framing_errors
    assert got[len(got) - len(frames) :] == frames


def test_stream_decoder_buffer_is_bounded_without_delimiters():
    dec = P.StreamDecoder()
    noise = bytes((i % 255) + 1 for i in range(997))  # no 0x00 anywhere
    for _ in range(100):  # ~100 kB of noise
        assert dec.feed(noise) == []
        assert len(dec.buf) <= P.MAX_ENCODED
    frame = P.encode_ack(3, P.OP_STOP)
    assert dec.feed(P.DELIMITER + P.stream_frame(frame)) == [frame]
    assert dec.framing_errors == 1  # the whole run of noise counts once
    # also when the over-long run and its delimiter arrive in one chunk
    dec2 = P.StreamDecoder(max_encoded=50)
    assert dec2.feed(noise[:51] + P.DELIMITER + P.stream_frame(frame)) == [frame]
    assert dec2.framing_errors == 1


def test_stream_decoder_skips_empty_segments():
    frame = P.encode_ack(1, P.OP_STOP)
    dec = P.StreamDecoder()
    assert dec.feed(b"\x00\x00" + P.stream_frame(frame) + b"\x00") == [frame]
    assert dec.framing_errors == 0


# ---- CRC ---------------------------------------------------------------------
def test_crc_check_value():
    assert P.crc16(b"123456789") == 0x29B1
    assert P.crc16_py(b"123456789") == 0x29B1
    assert P.crc16(b"") == P.crc16_py(b"") == 0xFFFF


@MANY
@given(a=st.binary(max_size=300), b=st.binary(max_size=300))
def test_crc_c_and_pure_table_agree(a, b):
    assert P.crc16(a) == P.crc16_py(a) == binascii.crc_hqx(a, 0xFFFF)
    # chaining: the device may CRC a frame in pieces
    assert P.crc16_py(b, P.crc16_py(a)) == P.crc16(a + b) == P.crc16(b, P.crc16(a))
    assert P.crc16_py(memoryview(a)) == P.crc16(memoryview(a))


def test_crc_on_cpython_is_the_c_implementation():
    assert P.crc16 is not P.crc16_py
    assert P.crc16(bytes(range(256))) == binascii.crc_hqx(bytes(range(256)), 0xFFFF)


# ---- clamping and counters ------------------------------------------------------------
@MANY
@given(values=st.lists(big, max_size=50))
def test_pack_values_clamps_to_int16(values):
    packed = P.pack_values(values)
    assert len(packed) == 2 * len(values)
    assert list(P.unpack_values(packed)) == [clamp(v, *I16) for v in values]


@FAST
@given(kw=status_kwargs(fields_in_range=False))
def test_status_encoder_clamps_and_wraps_every_field(kw):
    got = P.decode(encode_status_kw(kw)).as_dict()
    for name, (lo, hi) in STATUS_RANGES.items():
        want = kw[name] % 2**32 if name in STATUS_WRAPS else clamp(kw[name], lo, hi)
        assert got[name] == want, name


@FAST
@given(kw=samples_kwargs(fields_in_range=False, values=big))
def test_samples_encoder_clamps_and_wraps(kw):
    s = P.decode(encode_samples_kw(kw))
    assert s.seq == kw["seq"] % 2**32
    assert s.t_us == kw["t_us"] % 2**32
    assert s.period_us == clamp(kw["period_us"], 1, 0xFFFF)
    assert s.flags == clamp(kw["flags"], *U8)
    assert list(s.values()) == [clamp(v, *I16) for v in kw["values"]]


@FAST
@given(kw=command_kwargs(in_range=False))
def test_command_encoder_clamps_args_and_wraps_counter(kw):
    c = P.decode_command(P.encode_command(**kw))
    assert c.counter == kw["counter"] % 2**32
    limits = P.OPCODE_LIMITS[kw["opcode"]]
    assert tuple(c.args) == tuple(clamp(a, lo, hi) for a, (lo, hi) in zip(kw["args"], limits))


@FAST
@given(ack=ack_kwargs(in_range=False), err=error_kwargs(in_range=False))
def test_ack_and_error_encoders_clamp_and_wrap(ack, err):
    a = P.decode(P.encode_ack(**ack))
    assert (a.counter, a.opcode, a.value) == (ack["counter"] % 2**32, clamp(ack["opcode"], *U8), ack["value"] % 2**32)
    e = P.decode(P.encode_error(**err))
    assert (e.counter, e.opcode, e.code) == (err["counter"] % 2**32, clamp(err["opcode"], *U8), clamp(err["code"], *U8))


def test_counter_wraps_modulo_2_32():
    assert P.decode(P.encode_ack(2**32 + 5, 1)).counter == 5
    assert P.decode(P.encode_ack(-1, 1)).counter == 0xFFFFFFFF
    assert P.wrap32(2**32) == 0 and P.wrap32(-1) == 2**32 - 1


def test_counter_is_newer_examples():
    assert P.counter_is_newer(1, 0)
    assert not P.counter_is_newer(0, 0)  # repeated
    assert not P.counter_is_newer(0, 1)  # stale
    assert P.counter_is_newer(0, 0xFFFFFFFF)  # wrap
    assert P.counter_is_newer(5, 0xFFFFFFF0)
    assert not P.counter_is_newer(0xFFFFFFF0, 5)
    assert P.counter_is_newer(0x7FFFFFFF, 0)
    assert not P.counter_is_newer(0x80000000, 0)  # exactly half way: ambiguous, refused
    assert not P.counter_is_newer(0, 0x80000000)


def test_counter_window_examples():
    W = P.COUNTER_WINDOW
    assert W == 2**16
    assert P.counter_in_window(1, 0) and P.counter_in_window(W, 0)
    assert not P.counter_in_window(W + 1, 0)  # too far ahead
    assert not P.counter_in_window(0, 0) and not P.counter_in_window(0, 1)
    assert P.counter_in_window(5, 0xFFFFFFF0)  # wrap
    assert not P.counter_in_window(0x7FFFFFFF, 0)  # newer, but far past the window


@MANY
@given(last=u32, d=st.integers(0, 2**32 - 1))
def test_counter_window_is_the_newer_rule_cut_at_the_window(last, d):
    c = (last + d) % 2**32
    assert P.counter_in_window(c, last) == (1 <= d <= P.COUNTER_WINDOW)
    if P.counter_in_window(c, last):
        assert P.counter_is_newer(c, last)


def test_host_counter_resumes_inside_the_device_window():
    from spinemon.core.alerts import CommandCounter

    c = CommandCounter(start=101)  # last used: 100
    c.resume_after(90)  # a STATUS read a moment ago lags: keep our own
    assert c.next() == 101
    c.resume_after(5000)  # behind the device: continue past it
    assert c.next() == 5001
    c = CommandCounter(start=10)
    c.resume_after(0xFFFFFFF0)  # just past the wrap we are 26 ahead: inside the window, kept
    assert c.next() == 10
    c = CommandCounter(start=0xFFFFFFF0)
    c.resume_after(20)  # behind, across the wrap
    assert c.next() == 21
    c = CommandCounter(start=7)
    c.resume_after(0x9ABCDEF0)  # a fresh random floor after a resync, "behind" in serial arithmetic
    assert c.next() == 0x9ABCDEF1
    c = CommandCounter(start=0x9ABCDEF0)
    c.resume_after(7)  # far ahead of the device, outside its window: its floor wins
    assert c.next() == 8


@MANY
@given(last=u32, d=st.integers(1, 2**31 - 1))
def test_counter_is_newer_serial_arithmetic(last, d):
    nxt = (last + d) % 2**32
    assert P.counter_is_newer(nxt, last)
    assert not P.counter_is_newer(last, nxt)
    assert not P.counter_is_newer(last, last)


# ---- ranges byte ------------------------------------------------------------------
@pytest.mark.parametrize("g_fs", [2, 4, 8, 16])
@pytest.mark.parametrize("dps", [125, 250, 500, 1000, 2000])
def test_ranges_byte_round_trip(g_fs, dps):
    r = P.ranges_byte(g_fs, dps)
    assert (P.accel_fs_g(r), P.gyro_fs_dps(r)) == (g_fs, dps)
    assert r & 0x0C == 0 and r >> 4 <= 4


@pytest.mark.parametrize("g_fs,dps", [(1, 250), (3, 250), (32, 250), (2, 100), (2, 4000)])
def test_ranges_byte_rejects_unsupported_ranges(g_fs, dps):
    with pytest.raises(ProtocolError) as info:
        P.ranges_byte(g_fs, dps)
    assert info.value.code == P.E_RANGE


# ---- frame size limits ------------------------------------------------------------
@pytest.mark.parametrize("mask,expected", [(1, 16), (2, 16), (3, 8)])
def test_max_samples_fill_one_ble_notification(mask, expected):
    n = P.max_samples_per_frame(mask)
    assert n == expected
    assert P.ATT_MTU - 3 == P.MAX_FRAME == 244
    vps = P.values_per_sample(mask)
    frame = P.encode_samples(0, 0, 10000, mask, 0, 0, n, P.pack_values([-1] * (n * vps)))
    assert len(frame) <= P.MAX_FRAME
    assert P.decode(frame).count == n
    # one more sample does not fit: the encoder refuses, and the frame would be too long
    assert P.SAMPLES_HEADER_SIZE + (n + 1) * P.sample_size(mask) + P.CRC_SIZE > P.MAX_FRAME
    with pytest.raises(ProtocolError) as info:
        P.encode_samples(0, 0, 10000, mask, 0, 0, n + 1, P.pack_values([-1] * ((n + 1) * vps)))
    assert info.value.code == P.E_RANGE


def test_samples_encoder_rejects_bad_arguments():
    with pytest.raises(ProtocolError) as info:
        P.encode_samples(0, 0, 10000, 0, 0, 0, 1, P.pack_values([0] * 7))
    assert info.value.code == P.E_RANGE
    with pytest.raises(ProtocolError) as info:
        P.encode_samples(0, 0, 10000, 1, 0, 0, 2, P.pack_values([0] * 7))
    assert info.value.code == P.E_LENGTH
    with pytest.raises(ProtocolError) as info:
        P.encode_samples(0, 0, 10000, 1, 0, 0, 0, b"")
    assert info.value.code == P.E_RANGE


@pytest.mark.parametrize("mask,ranges", [(5, 0x42), (1, 0x04), (1, 0x50), (2, 0xFF)])
def test_samples_encoder_refuses_what_the_decoder_rejects(mask, ranges):
    with pytest.raises(ProtocolError) as info:
        P.encode_samples(0, 0, 10000, mask, ranges, 0, 1, P.pack_values([0] * 7))
    assert info.value.code == P.E_RANGE


@pytest.mark.parametrize(
    "call",
    [
        lambda: P.pack_values([0.0, float("nan")]),
        lambda: P.encode_ack(1, P.OP_START, float("inf")),
        lambda: P.encode_command(1, P.OP_HAPTIC, (float("nan"), 100, 100, 100)),
        lambda: P.encode_status(battery_mv=float("-inf")),
    ],
    ids=["pack_values-nan", "ack-inf", "command-nan", "status-inf"],
)
def test_encoders_refuse_non_finite_numbers_with_protocol_error(call):
    with pytest.raises(ProtocolError) as info:
        call()
    assert info.value.code == P.E_RANGE


# ---- docs/protocol.md worked examples ------------------------------------------------
HEX_BLOCK = re.compile(r"^```hex\n(.*?)^```", re.S | re.M)
HEX_LINE = re.compile(r"^([0-9a-fA-F]{2}(?: [0-9a-fA-F]{2})*)(?:\s{2,}.*)?$")
DOC_CALLABLES = {"encode_samples", "encode_status", "encode_command", "encode_ack", "encode_error",
                 "pack_values", "ranges_byte", "stream_frame"}  # fmt: skip


def doc_eval(node: ast.AST):
    """Evaluate the small expression language of the doc examples: literals,
    upper-case protocol constants, `|`, and calls of a few protocol functions."""
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name) and node.func.id in DOC_CALLABLES, ast.dump(node.func)
        args = [doc_eval(a) for a in node.args]
        kwargs = {k.arg: doc_eval(k.value) for k in node.keywords}
        return getattr(P, node.func.id)(*args, **kwargs)
    if isinstance(node, ast.Name):
        assert node.id.isupper() and hasattr(P, node.id), node.id
        return getattr(P, node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return doc_eval(node.left) | doc_eval(node.right)
    if isinstance(node, (ast.Tuple, ast.List)):
        return [doc_eval(e) for e in node.elts]
    return ast.literal_eval(node)


def doc_examples() -> list[tuple[str, bytes]]:
    text = DOC.read_text()
    examples = []
    for block in HEX_BLOCK.findall(text):
        lines = [ln.rstrip() for ln in block.splitlines() if ln.strip()]
        assert lines and lines[0].startswith("# "), "a hex block starts with '# <encoder call>'"
        call = lines[0][2:].strip()
        data = bytearray()
        for ln in lines[1:]:
            if ln.startswith("#"):
                continue
            m = HEX_LINE.match(ln)
            assert m, "not a hex line: %r" % ln
            data.extend(bytes.fromhex(m.group(1)))
        examples.append((call, bytes(data)))
    return examples


def check_decoded_against_call(call: ast.Call, frame: bytes) -> None:
    """The frame decodes to the field values the call in the doc states."""
    kwargs = {k.arg: doc_eval(k.value) for k in call.keywords}
    name = call.func.id
    if name == "stream_frame":
        inner = doc_eval(call.args[0])
        dec = P.StreamDecoder()
        assert dec.feed(frame) == [inner] and dec.framing_errors == 0
        check_decoded_against_call(call.args[0], inner)
        return
    obj = P.decode(frame)
    kind = {"encode_samples": P.T_SAMPLES, "encode_status": P.T_STATUS, "encode_command": P.T_COMMAND,
            "encode_ack": P.T_ACK, "encode_error": P.T_ERROR}[name]  # fmt: skip
    assert obj.kind == kind
    assert not call.args, "doc examples use keyword arguments only"
    for key, want in kwargs.items():
        if key == "block":
            assert obj.block == bytes(want)
        elif key == "fw_version":
            assert list(obj.fw_version) == list(want)
        elif key == "args":
            assert list(obj.args) == list(want)
        else:
            assert getattr(obj, key) == want, key


def test_doc_hex_examples_match_the_encoder():
    examples = doc_examples()
    kinds = set()
    for call_src, data in examples:
        call = ast.parse(call_src, mode="eval").body
        assert isinstance(call, ast.Call), call_src
        assert doc_eval(call) == data, "docs/protocol.md example is stale: %s\nencoder gives %s" % (
            call_src,
            doc_eval(call).hex(" "),
        )
        check_decoded_against_call(call, data)
        if call.func.id != "stream_frame":
            kinds.add(data[1])
    assert kinds == set(P.FRAME_NAMES), "every frame type has a worked example"


def test_status_names_its_fields_in_the_order_of_STATUS_FIELDS():
    """Status declares each field by name (for the type checker); the names
    must stand in the wire order that STATUS_FIELDS gives."""
    names = P.STATUS_FIELDS
    st = P.Status(tuple(range(len(names))))
    assert [getattr(st, n) for n in names] == list(range(len(names)))
