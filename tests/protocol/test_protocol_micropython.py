"""The SAME protocol module under the real MicroPython interpreter.

The device runs protocol/spinemon_protocol.py under MicroPython, whose struct
silently truncates out-of-range integers where CPython raises. These tests
draw a batch of inputs with hypothesis on CPython, push the whole batch
through ONE MicroPython process (tests/mpy_runner.py, which fails the test if
MicroPython fails), and require byte-identical frames, identical decode
results and error codes, and identical stream decoding.

The plumbing that turns a case into a call and a decoded frame into a line of
text (SHARED_SRC) is executed by both interpreters, so only the protocol
module itself is being compared.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import mpy_runner
import spinemon_protocol as P
from test_protocol import any_frame, any_frame_case, big, out_of_range_command, seal, u8, u32

pytestmark = pytest.mark.micropython

BATCH = 400

# Runs under CPython (exec) and MicroPython (prepended to each script).
SHARED_SRC = r"""
import binascii
import spinemon_protocol as P


def hx(b):
    return binascii.hexlify(b).decode()


def encode_case(kind, kw):
    if kind == "samples":
        return P.encode_samples(kw["seq"], kw["t_us"], kw["period_us"], kw["mask"], kw["ranges"],
                                kw["flags"], kw["count"], P.pack_values(kw["values"]))
    if kind == "status":
        d = {}
        for k in kw:
            if k not in ("fw_major", "fw_minor", "fw_patch"):
                d[k] = kw[k]
        return P.encode_status((kw["fw_major"], kw["fw_minor"], kw["fw_patch"]), **d)
    if kind == "command":
        return P.encode_command(kw["counter"], kw["opcode"], kw["args"])
    if kind == "ack":
        return P.encode_ack(kw["counter"], kw["opcode"], kw["value"])
    if kind == "error":
        return P.encode_error(kw["counter"], kw["opcode"], kw["code"])
    if kind == "pack":
        return bytes(P.pack_values(kw["values"]))
    raise ValueError(kind)


def encode_line(kind, kw):
    try:
        return hx(encode_case(kind, kw))
    except P.ProtocolError as e:
        return "X %d" % e.code


def canon(obj):
    k = obj.kind
    if k == P.T_SAMPLES:
        return "S %d %d %d %d %d %d %d %s" % (obj.seq, obj.t_us, obj.period_us, obj.mask, obj.ranges,
                                              obj.count, obj.flags, hx(obj.block))
    if k == P.T_STATUS:
        return "T " + " ".join([str(getattr(obj, n)) for n in P.STATUS_FIELDS])
    if k == P.T_COMMAND:
        return "C %d %d %s" % (obj.counter, obj.opcode, " ".join([str(a) for a in obj.args]))
    if k == P.T_ACK:
        return "A %d %d %d" % (obj.counter, obj.opcode, obj.value)
    if k == P.T_ERROR:
        return "E %d %d %d" % (obj.counter, obj.opcode, obj.code)
    raise ValueError(k)


def decode_line(frame):
    out = []
    for fn in (P.decode, P.decode_command):
        try:
            out.append(canon(fn(frame)))
        except P.ProtocolError as e:
            out.append("X %d %s %s" % (e.code, e.counter, e.opcode))
    return " | ".join(out) + " | crc %d" % P.crc16(frame)


def cobs_line(data):
    enc = P.cobs_encode(data)
    try:
        dec = hx(P.cobs_decode(data))
    except P.ProtocolError as e:
        dec = "X %d" % e.code
    return hx(enc) + " " + dec + " " + hx(P.cobs_decode(enc))


def stream_line(stream, cuts, max_encoded):
    dec = P.StreamDecoder(max_encoded)
    out = []
    prev = 0
    biggest = 0
    for c in cuts + [len(stream)]:
        for f in dec.feed(stream[prev:c]):
            out.append(hx(f))
        prev = c
        biggest = max(biggest, len(dec.buf))
    return "%d %d %s" % (dec.framing_errors, biggest, ",".join(out))
"""

MPY_READ_INPUT = r"""
import sys, json
cases = json.loads(sys.stdin.read())
"""


def cpython_shared() -> dict:
    ns: dict = {}
    exec(SHARED_SRC, ns)
    return ns


def run_mpy(body: str, payload) -> list[str]:
    """Run SHARED_SRC + reading `payload` (JSON on stdin) + `body` under
    MicroPython; return its stdout lines."""
    proc = mpy_runner.run(SHARED_SRC + MPY_READ_INPUT + body, stdin=json.dumps(payload).encode(), timeout=120)
    return proc.stdout.decode().splitlines()


def collect(strategy, n: int) -> list:
    """Draw `n` examples from a hypothesis strategy (generation phase only)."""
    out: list = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(x):
        out.append(x)

    draw()
    return out


def assert_same_lines(inputs: list, cpython: list[str], micropython: list[str]) -> None:
    assert len(micropython) == len(cpython), "MicroPython printed %d lines for %d inputs" % (len(micropython), len(cpython))
    for i, (c, m) in enumerate(zip(cpython, micropython)):
        assert m == c, "input %d differs:\n  input       %r\n  CPython     %s\n  MicroPython %s" % (i, inputs[i], c, m)


# ---- invalid encoder calls: both interpreters must refuse them with the same code --------
@st.composite
def bad_encoder_case(draw):
    which = draw(st.sampled_from(["mask", "count", "opcode", "nargs"]))
    if which == "mask":
        mask = draw(st.sampled_from([0, 4, 8, 12]))
        return ["samples", {"seq": 0, "t_us": 0, "period_us": 1000, "mask": mask, "ranges": 0, "flags": 0,
                            "count": 1, "values": [0] * 7}]  # fmt: skip
    if which == "count":
        mask = draw(st.sampled_from([1, 2, 3]))
        count = draw(st.one_of(st.integers(-5, 0), st.integers(P.max_samples_per_frame(mask) + 1, 300)))
        n = max(count, 0) * P.values_per_sample(mask)
        return ["samples", {"seq": 0, "t_us": 0, "period_us": 1000, "mask": mask, "ranges": 0, "flags": 0,
                            "count": count, "values": [1] * n}]  # fmt: skip
    if which == "opcode":
        op = draw(u8.filter(lambda o: o not in P.OPCODE_ARGS))
        return ["command", {"counter": draw(u32), "opcode": op, "args": []}]
    op = draw(st.sampled_from(sorted(P.OPCODE_ARGS)))
    n = len(P.OPCODE_LIMITS[op]) + draw(st.sampled_from([-1, 1, 2]))
    return ["command", {"counter": 1, "opcode": op, "args": [0] * max(n, 0)}]


def as_json_case(case):
    kind, kw = case
    kw = dict(kw)
    if "args" in kw:
        kw["args"] = list(kw["args"])
    return [kind, kw]


encoder_case = st.one_of(
    any_frame_case(in_range=True),
    any_frame_case(in_range=False),
    any_frame_case(in_range=False),
    st.tuples(st.just("pack"), st.fixed_dictionaries({"values": st.lists(big, max_size=40)})),
    bad_encoder_case(),
).map(as_json_case)


def test_encoders_are_byte_identical_under_micropython():
    cases = collect(encoder_case, BATCH)
    ns = cpython_shared()
    expected = [ns["encode_line"](kind, kw) for kind, kw in cases]
    # the batch really contains out-of-range values and refused calls
    assert any(line.startswith("X ") for line in expected)
    assert any(abs(v) > 2**32 for _, kw in cases for v in kw.values() if isinstance(v, int))
    got = run_mpy("for kind, kw in cases:\n    print(encode_line(kind, kw))\n", cases)
    assert_same_lines(cases, expected, got)


# ---- decoding: the device decodes host frames exactly like the host ---------------------
@st.composite
def frame_to_decode(draw):
    """Valid frames of every type, and the ways they go wrong on a link."""
    frame = draw(any_frame)
    how = draw(st.sampled_from(["valid", "valid", "flip", "truncate", "reseal_header", "reseal_length",
                                "bad_command", "unknown_opcode", "random", "random_sealed"]))  # fmt: skip
    if how == "valid":
        return frame
    if how == "flip":
        i = draw(st.integers(0, 8 * len(frame) - 1))
        b = bytearray(frame)
        b[i // 8] ^= 1 << (i % 8)
        return bytes(b)
    if how == "truncate":
        return frame[: draw(st.integers(0, len(frame) - 1))]
    if how == "reseal_header":
        return seal(bytes([draw(u8), draw(u8)]) + frame[2:-2])
    if how == "reseal_length":
        k = draw(st.integers(2, len(frame) + 20))
        return seal((frame[:-2] + bytes(range(7, 27)))[:k])
    if how == "bad_command":
        return draw(out_of_range_command())[3]
    if how == "unknown_opcode":
        op = draw(u8.filter(lambda o: o not in P.OPCODE_ARGS))
        return seal(bytes([1, P.T_COMMAND]) + draw(st.binary(min_size=4, max_size=4)) + bytes([op]))
    data = draw(st.binary(max_size=260))
    return seal(data) if how == "random_sealed" else data


def test_decoder_under_micropython_matches_cpython():
    frames = collect(frame_to_decode(), BATCH)
    # valid host COMMANDs for every opcode, including the extremes of every range
    for op, limits in sorted(P.OPCODE_LIMITS.items()):
        frames.append(P.encode_command(0xFFFFFFFF, op, tuple(lo for lo, _ in limits)))
        frames.append(P.encode_command(0, op, tuple(hi for _, hi in limits)))
    # and one frame per way a COMMAND can be refused, whatever the random batch drew
    unknown = min(o for o in range(256) if o not in P.OPCODE_ARGS)
    frames.append(seal(bytes([1, P.T_COMMAND]) + bytes(4) + bytes([unknown])))
    ns = cpython_shared()
    expected = [ns["decode_line"](f) for f in frames]
    codes = {int(part.split()[1]) for line in expected for part in line.split(" | ") if part.startswith("X ")}
    assert {P.E_CRC, P.E_TRUNCATED, P.E_VERSION, P.E_TYPE, P.E_LENGTH, P.E_OPCODE, P.E_RANGE} <= codes
    assert any(line.startswith("C ") for line in expected)
    got = run_mpy(
        "for h in cases:\n    print(decode_line(binascii.unhexlify(h)))\n",
        [f.hex() for f in frames],
    )
    assert_same_lines(frames, expected, got)


# ---- COBS and the stream decoder -----------------------------------------------------------
@st.composite
def stream_case(draw):
    garbage = draw(st.binary(max_size=300))
    frames = draw(st.lists(any_frame, min_size=0, max_size=5))
    tail = draw(st.binary(max_size=20))
    stream = garbage + P.DELIMITER + b"".join(P.stream_frame(f) for f in frames) + tail
    cuts = sorted(set(draw(st.lists(st.integers(0, len(stream)), max_size=10))))
    max_encoded = draw(st.sampled_from([P.MAX_ENCODED, P.MAX_ENCODED, 40]))
    return [stream.hex(), cuts, max_encoded]


def test_cobs_and_stream_decoder_under_micropython_match_cpython():
    blobs = collect(st.binary(max_size=600), 150)
    blobs += [bytes(range(1, 256)) * 2, bytes(600), b"\x05\x01\x02"]
    # runs of non-zero bytes around the 254-byte COBS block limit
    blobs += [b"\x11" * n + b"\x00" + b"\x22" * m for n in range(251, 257) for m in (0, 253, 254)]
    streams = collect(stream_case(), 150)
    # a long run without delimiters: buffering must stay bounded on the device too
    noise = bytes((i % 255) + 1 for i in range(5000))
    frame = P.stream_frame(P.encode_ack(7, P.OP_STOP))
    streams.append([(noise + P.DELIMITER + frame).hex(), list(range(0, 5000, 333)), P.MAX_ENCODED])
    ns = cpython_shared()
    expected = [ns["cobs_line"](b) for b in blobs]
    expected += [ns["stream_line"](bytes.fromhex(s), cuts, m) for s, cuts, m in streams]
    assert expected[-1].startswith("1 ")  # the noise run was counted once
    assert all(int(line.split()[1]) <= P.MAX_ENCODED for line in expected[len(blobs) :])
    body = (
        "blobs, streams = cases\n"
        "for h in blobs:\n    print(cobs_line(binascii.unhexlify(h)))\n"
        "for h, cuts, m in streams:\n    print(stream_line(binascii.unhexlify(h), cuts, m))\n"
    )
    got = run_mpy(body, [[b.hex() for b in blobs], streams])
    assert_same_lines(blobs + streams, expected, got)


# ---- the device's own view of the module -------------------------------------------------------
def test_micropython_uses_the_pure_crc_and_sees_the_same_constants():
    rng = random.Random(1234)
    blobs = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))) for _ in range(50)]
    body = (
        "assert P.crc16 is P.crc16_py\n"
        "assert P.crc16(b'123456789') == 0x29B1\n"
        "print(P.PROTOCOL_VERSION, P.MAX_FRAME, P.MAX_ENCODED, P.SAMPLES_HEADER_SIZE, P.STATUS_PAYLOAD_SIZE,"
        " P.max_samples_per_frame(1), P.max_samples_per_frame(2), P.max_samples_per_frame(3))\n"
        "print(P.counter_is_newer(0, 0xFFFFFFFF), P.counter_is_newer(0xFFFFFFFF, 0), P.counter_is_newer(5, 5),"
        " P.counter_is_newer(0x80000000, 0))\n"
        "for h in cases:\n    print(P.crc16(binascii.unhexlify(h)))\n"
    )
    got = run_mpy(body, [b.hex() for b in blobs])
    expected = [
        "1 244 300 16 57 16 16 8",
        "True False False False",
    ] + [str(P.crc16(b)) for b in blobs]
    assert got == expected


def test_mpy_cross_compiles_the_protocol_module(tmp_path):
    exe = mpy_runner.require(mpy_runner.mpy_cross_binary(), "mpy-cross")
    out = tmp_path / "spinemon_protocol.mpy"
    proc = subprocess.run(
        [exe, "-o", str(out), str(mpy_runner.PROTOCOL_DIR / "spinemon_protocol.py")],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    data = out.read_bytes()
    assert data[:1] == b"M" and len(data) > 1000  # .mpy header
    # the compiled module (what gets frozen/copied to the device) loads and works
    frame = P.encode_command(9, P.OP_HAPTIC, (2, 100, 50, 255))
    script = (
        "import spinemon_protocol as P\n"
        "assert P.__file__.endswith('.mpy'), P.__file__\n"
        "print(P.encode_command(9, P.OP_HAPTIC, (2, 100, 50, 255)).hex())\n"
    )
    got = mpy_runner.run(script, path=[tmp_path]).stdout.decode().split()
    assert got == [frame.hex()]
