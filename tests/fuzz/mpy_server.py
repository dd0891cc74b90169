# MicroPython source, NOT imported by CPython: tests/fuzz/mpy_target.py reads
# this file, puts the firmware test PRELUDE (tests/firmware/fw_helpers.py:
# Rig, fresh_store) and CFG_DIR in front of it, and runs it in ONE long-lived
# MicroPython process.
#
# stdin: batches  b"B" u32 n, then n times: u8 kind, u16 length, bytes
#        b"Q" ends the process.
# stdout per batch: one line per input "<outcome> <microseconds>", then "END".
# Kinds:
#   1 Device.handle_command(data, "serial") after forgetting the link's counter
#   2 Device.handle_command(data, "serial") with the link's counter kept (stale path)
#   3 sp.decode   4 sp.decode_command   5 sp.cobs_decode
#   6 StreamDecoder.feed on a long-lived decoder   8 new StreamDecoder
#   9 a new device (fresh config store, booted)
# Outcomes: "A<op>" ACK, "E<code>:<counter>:<opcode>" ERROR, "a<type>" decoded,
# "r<code>" ProtocolError, "F<frames>:<framing errors>:<crc16 of the frames>",
# "X<what>" a crash (exception) or a broken invariant.

import sys
import time


def read_exact(stream, n):
    b = stream.read(n)
    if b is None:
        b = b""
    while len(b) < n:
        more = stream.read(n - len(b))
        if not more:
            return None
        b += more
    return b


def new_rig():
    return Rig(fresh_store(CFG_DIR), link="serial", ble=False, serial=True, two=True)


def reencoded(obj):
    k = obj.kind
    if k == sp.T_SAMPLES:
        return sp.encode_samples(obj.seq, obj.t_us, obj.period_us, obj.mask, obj.ranges, obj.flags, obj.count, obj.block)
    if k == sp.T_COMMAND:
        return sp.encode_command(obj.counter, obj.opcode, obj.args)
    if k == sp.T_ACK:
        return sp.encode_ack(obj.counter, obj.opcode, obj.value)
    if k == sp.T_ERROR:
        return sp.encode_error(obj.counter, obj.opcode, obj.code)
    return None


def run_command(dev, data, forget):
    if forget:
        dev.link_counters.clear()
    before = dev.commands_rejected
    out = dev.handle_command(data, "serial")
    if type(out) is not list or not out:
        return "Xno-response"
    first = sp.decode(out[0])
    if first.kind == sp.T_ACK:
        if dev.commands_rejected != before:
            return "Xack-counted-as-rejected"
        if first.opcode == sp.OP_GET_STATUS:
            if len(out) != 2 or sp.decode(out[1]).kind != sp.T_STATUS:
                return "Xget-status-without-status"
        elif len(out) != 1:
            return "Xextra-frames"
        return "A%d" % first.opcode
    if first.kind == sp.T_ERROR:
        if len(out) != 1 or dev.commands_rejected != before + 1:
            return "Xerror-bookkeeping"
        return "E%d:%d:%d" % (first.code, first.counter, first.opcode)
    return "Xanswer-kind-%d" % first.kind


def run_decode(data, fn):
    try:
        obj = fn(data)
    except sp.ProtocolError as e:
        return "r%d" % e.code
    again = reencoded(obj)
    if again is not None and again != bytes(data):
        return "Xreencode"
    return "a%d" % obj.kind


def run_cobs(data):
    try:
        out = sp.cobs_decode(data)
    except sp.ProtocolError as e:
        return "r%d" % e.code
    return "a%d" % sp.crc16(out)


def run_stream(dec, data):
    out = dec.feed(data)
    c = 0xFFFF
    for f in out:
        c = sp.crc16(f, c)
    return "F%d:%d:%d" % (len(out), dec.framing_errors, c)


def serve():
    rd = sys.stdin.buffer
    rig = new_rig()
    dec = sp.StreamDecoder()
    ticks = time.ticks_us
    diff = time.ticks_diff
    while True:
        tag = read_exact(rd, 1)
        if tag is None or tag == b"Q":
            return
        n = int.from_bytes(read_exact(rd, 4), "little")
        lines = []
        for _ in range(n):
            head = read_exact(rd, 3)
            kind = head[0]
            data = read_exact(rd, head[1] | (head[2] << 8))
            t0 = ticks()
            try:
                if kind == 1 or kind == 2:
                    o = run_command(rig.dev, data, kind == 1)
                elif kind == 3:
                    o = run_decode(data, sp.decode)
                elif kind == 4:
                    o = run_decode(data, sp.decode_command)
                elif kind == 5:
                    o = run_cobs(data)
                elif kind == 6:
                    o = run_stream(dec, data)
                elif kind == 8:
                    dec = sp.StreamDecoder()
                    o = "new"
                elif kind == 9:
                    rig = new_rig()
                    o = "new"
                else:
                    o = "Xkind"
            except Exception as e:
                o = "X" + type(e).__name__ + ":" + str(e).replace(" ", "_").replace("\n", "_")[:120]
            lines.append("%s %d" % (o, diff(ticks(), t0)))
        lines.append("END\n")
        sys.stdout.write("\n".join(lines))


serve()
