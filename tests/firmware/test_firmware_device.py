"""Device scenarios under MicroPython: commands, guard, config, links."""

import pytest

from fw_helpers import PRELUDE, mpy

pytestmark = pytest.mark.micropython


# the guard scenarios' set-up, for these scripts only (the shared PRELUDE stays
# as small as test_fakes_memory's heap budget measures it)
GUARDED_RIG = r"""
def guarded_rig(motion, mode, flex_cdeg=3000, ext_cdeg=-2000):
    # connected and streaming, the upper sensor following `motion` (Tilt
    # keyframes), calibrated at rest after 0.5 s, the guard set to `mode`
    rig = Rig(fresh_store(CFG_DIR), upper_motion=Tilt(motion))
    rig.connect()
    rig.cmd(sp.OP_START)
    rig.run_ms(500)
    rig.cmd(sp.OP_CALIBRATE, (0,))
    rig.cmd(sp.OP_SET_GUARD, (flex_cdeg, ext_cdeg, mode))
    return rig
"""


def run(tmp_path, body):
    return mpy("CFG_DIR = %r\n" % str(tmp_path) + PRELUDE + GUARDED_RIG + body)


def test_start_stop_set_rate_haptic_sequence(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR))
rig.connect()
rig.run_ms(500)
assert rig.frames() == [], "nothing streams before START"
rig.cmd(sp.OP_START)
rig.run_ms(1000)
f1 = rig.frames()
assert len(f1) >= 10
assert all(f.mask == 3 and f.period_us == 9615 and f.count <= sp.max_samples_per_frame(3) for f in f1)
for a, b in zip(f1, f1[1:]):
    assert b.seq == a.seq + a.count, "contiguous"
# notifications stay <= ~20/s at 104 Hz with two IMUs
assert len(f1) <= 16, len(f1)
rig.cmd(sp.OP_SET_RATE, (200,))
ack = rig.replies()[-1]
assert ack.kind == sp.T_ACK and ack.opcode == sp.OP_SET_RATE and ack.value == 4808, ack.value
rig.run_ms(1000)
f2 = rig.frames()[len(f1):]
assert f2 and f2[-1].period_us == 4808
assert sum(f.count for f in f2 if f.period_us == 4808) >= 190
rig.cmd(sp.OP_HAPTIC, (3, 100, 50, 128))
t_cmd = rig.hw.ticks.t_us // 1000
rig.run_ms(600, step_ms=5)
on = rig.motor_on_ms()
assert len(on) == 3, on
assert on[0][0] == t_cmd and all(b - a == 100 for a, b in on), on
assert on[1][0] - on[0][0] == 150
assert rig.hw.pwm.duty_u16() == 0
assert rig.hw.pwm.history[1][1] == 128 * 257
# frames flag the motor while it ran
assert any(f.flags & sp.SF_MOTOR_ON for f in rig.frames())
rig.cmd(sp.OP_STOP)
n_stop = len(rig.frames())
rig.run_ms(500)
assert len(rig.frames()) == n_stop, "no frames after STOP"
kinds = [(r.kind, r.opcode) for r in rig.replies()]
assert kinds == [(sp.T_ACK, sp.OP_START), (sp.T_ACK, sp.OP_SET_RATE), (sp.T_ACK, sp.OP_HAPTIC), (sp.T_ACK, sp.OP_STOP)], kinds
# the rate was persisted
assert ConfigStore(CFG_DIR + "/config.json", CFG_DIR + "/boot.txt").load()["rate_hz"] == 200
# TIME_SYNC answers with device time; GET_STATUS answers ACK then STATUS
rig.cmd(sp.OP_TIME_SYNC)
assert rig.replies()[-1].value == sp.wrap32(rig.dev.clock.now_us())
rig.cmd(sp.OP_GET_STATUS)
ack, st = rig.replies()[-2:]
assert ack.kind == sp.T_ACK and st.kind == sp.T_STATUS
assert st.period_us == 4808 and st.imu_upper == sp.IMU_LSM6DSO and st.imu_lower == sp.IMU_LSM6DSO
assert st.frames_sent == len(rig.frames()) and st.boot_count == 1 and st.state & sp.ST_CONNECTED
assert st.battery_mv == 3900 and st.battery_pct == 66
print("ok")
""",
    )


def test_malformed_commands_get_error_and_change_nothing(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR))
rig.connect()
rig.run_ms(200)
def snapshot():
    d = rig.dev
    return (d.sampler.streaming, d.sampler.period_us, d.guard.flex_cdeg, d.guard.ext_cdeg, d.guard.mode, d.haptics.active, d.last_counter)
before = snapshot()
good = bytearray(sp.encode_command(7, sp.OP_SET_GUARD, (3000, -1000, 2)))
bad_crc = bytearray(good); bad_crc[-1] ^= 0xFF
cases = [
    (bytes(bad_crc), sp.E_CRC),
    (b"\x01\x03", sp.E_TRUNCATED),
    (b"\x02" + bytes(good[1:]), sp.E_CRC),
]
# well-formed frames with bad contents (CRC recomputed)
def sealed(body):
    c = sp.crc16(body)
    return bytes(body) + bytes((c & 0xFF, c >> 8))
cases.append((sealed(b"\x02\x03\x07\x00\x00\x00\x02"), sp.E_VERSION))
cases.append((sealed(b"\x01\x03\x07\x00\x00\x00\x99"), sp.E_OPCODE))
cases.append((sealed(b"\x01\x03\x07\x00\x00\x00\x04\x10\x27"), sp.E_RANGE))  # SET_RATE 10000 Hz
cases.append((sealed(b"\x01\x03\x07\x00\x00\x00\x04\x10"), sp.E_LENGTH))
cases.append((sealed(b"\x01\x01\x07\x00\x00\x00"), sp.E_TYPE))
for data, code in cases:
    rig.raw_cmd(data)
    e = rig.replies()[-1]
    assert e.kind == sp.T_ERROR and e.code == code, (data, e.kind, getattr(e, "code", None), code)
    assert snapshot() == before, "a bad command changed the device"
e = rig.replies()[4]
assert e.counter == 7 and e.opcode == 0x99, "errors name the command when it was readable"
rig.run_ms(200)
assert rig.frames() == [] and rig.hw.pwm.on_intervals() == []
rig.cmd(sp.OP_GET_STATUS)
assert rig.replies()[-1].commands_rejected == len(cases)
print("ok")
""",
    )


def test_stale_and_repeated_counters_are_refused(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR))
rig.connect()
b = rig.counter  # the floor the device drew at the host's resync
rig.cmd(sp.OP_START, counter=b + 100)
rig.cmd(sp.OP_STOP, counter=b + 100)     # repeated
rig.cmd(sp.OP_STOP, counter=b + 50)      # older
rig.cmd(sp.OP_HAPTIC, (1, 100, 0, 255), counter=b + 99)
r = rig.replies()
assert r[0].kind == sp.T_ACK
for e in r[1:]:
    assert e.kind == sp.T_ERROR and e.code == sp.E_STALE, e.kind
assert rig.dev.sampler.streaming, "the stale STOP did nothing"
assert rig.hw.pwm.on_intervals() == [], "the stale HAPTIC did nothing"
rig.cmd(sp.OP_STOP, counter=b + 101)
assert rig.replies()[-1].kind == sp.T_ACK and not rig.dev.sampler.streaming
# a new connection does NOT start a new counter session: a write recorded on
# an earlier connection and replayed on a new one is refused
rig.r.central_disconnect(); rig.dev.step()
rig.connect(resync=False)
rig.cmd(sp.OP_GET_STATUS, counter=b + 1)
e = rig.replies()[-1]
assert e.kind == sp.T_ERROR and e.code == sp.E_STALE, e.kind
rig.cmd(sp.OP_GET_STATUS, counter=b + 102)
assert rig.replies()[-2].kind == sp.T_ACK
print("ok")
""",
    )


def test_counter_wraps_modulo_2_32_in_steps_inside_the_window(tmp_path):
    run(
        tmp_path,
        r"""
# a floor just below the wrap, from flash (boot adds COUNTER_SAVE_EVERY)
store = fresh_store(CFG_DIR)
assert store.save_counter(0xFFFFFFF0 - 64)
rig = Rig(store)
rig.connect(resync=False)
assert rig.dev.last_counter == 0xFFFFFFF0
for c, kind in ((0xFFFFFFFF, sp.T_ACK), (0x10, sp.T_ACK), (0x08, sp.T_ERROR), (0x10 + sp.COUNTER_WINDOW, sp.T_ACK)):
    rig.cmd(sp.OP_TIME_SYNC, counter=c)
    assert rig.replies()[-1].kind == kind, (c, rig.replies()[-1].kind)
assert rig.dev.last_counter == 0x10 + sp.COUNTER_WINDOW
print("ok")
""",
    )


def test_guard_fires_when_link_down_silent_when_connected_unless_always(tmp_path):
    run(
        tmp_path,
        r"""
# upper sensor rounds forward 0 -> 60 deg and back, twice; lower stays still
rep = [(0, 0), (2, 0), (3, 60), (4, 60), (5, 0), (7, 0), (8, 60), (9, 60), (10, 0), (30, 0)]
def rig_with(mode, connected):
    rig = guarded_rig(rep, mode)
    assert [x.kind for x in rig.replies()] == [sp.T_ACK] * 3
    if not connected:
        rig.r.central_disconnect()
    return rig

# 1. link down, GUARD_WHEN_LINK_DOWN: one buzz per bad rep, once the crossing is confirmed
rig = rig_with(sp.GUARD_WHEN_LINK_DOWN, connected=False)
rig.run_ms(11000)
on = rig.motor_on_ms()
assert len(on) == 4, on             # 2 reps x 2 pulses
assert rig.dev.guard.alerts == 2
# crossing 30 deg: upper tilt reaches 30 deg at t = 2.5 s (+ start offset of the fake clock);
# at 60 deg/s the confirmation needs 3 deg (the hysteresis) past the first sample past: 50 ms
for rep_start_s, (t_on, _) in zip((2.5, 7.5), (on[0], on[2])):
    delay = t_on - rep_start_s * 1000
    assert 50 <= delay <= 50 + 30, delay  # + one IMU read interval (10 ms) + one sample
# 2. connected and streaming, the host's heartbeat (TIME_SYNC every 0.5 s)
#    arriving: the host is watching, the device stays silent
rig = rig_with(sp.GUARD_WHEN_LINK_DOWN, connected=True)
for _ in range(22):
    rig.cmd(sp.OP_TIME_SYNC)
    rig.run_ms(500)
assert rig.motor_on_ms() == [] and rig.dev.guard.alerts == 0
fr = rig.frames()
assert any(f.flags & sp.SF_GUARD_FIRING for f in fr), "frames still say it is past the threshold"
assert not any(f.flags & sp.SF_GUARD_ARMED for f in fr)
angles = []
for f in fr:
    v = f.values()
    angles += [v[i] for i in range(sp.values_per_sample(3) - 1, len(v), sp.values_per_sample(3))]
assert max(angles) > 5900 and max(angles) <= 6000, max(angles)
# 2b. still connected, but the host went silent (app crashed): the guard takes over
rig2 = rig_with(sp.GUARD_WHEN_LINK_DOWN, connected=True)
rig2.run_ms(11000)
assert rig2.dev.guard.alerts == 2, rig2.dev.guard.alerts
# 3. connected but GUARD_ALWAYS: fires
rig = rig_with(sp.GUARD_ALWAYS, connected=True)
rig.run_ms(11000)
assert rig.dev.guard.alerts == 2 and len(rig.motor_on_ms()) == 4
# 4. GUARD_OFF never fires, link down or not
rig = rig_with(sp.GUARD_OFF, connected=False)
rig.run_ms(11000)
assert rig.dev.guard.alerts == 0 and rig.motor_on_ms() == []
print("ok")
""",
    )


def test_angle_none_before_calibration_and_guard_not_armed(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR), upper_motion=Tilt([(0, 0), (1, 70), (5, 70)]))
rig.connect()
rig.cmd(sp.OP_START)
rig.r.central_disconnect()
rig.run_ms(3000)
assert rig.dev.guard.alerts == 0
rig.connect()
rig.run_ms(300)
n = len(rig.frames())
rig.cmd(sp.OP_START)  # the host resumes the stream on the new connection
rig.run_ms(300)
fr = rig.frames()
assert len(fr) > n, "queued frames go out after the reconnect's START"
v = fr[-1].values()
assert v[12] == sp.ANGLE_NONE and v[25] == sp.ANGLE_NONE
rig.cmd(sp.OP_CALIBRATE, (0,))
rig.run_ms(2000)  # drain the backlog queued while disconnected
v = rig.frames()[-1].values()
assert abs(v[-1]) < 50, v[-1]
print("ok")
""",
    )


def test_calibrate_without_data_is_bad_state(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR))
rig.connect()
rig.cmd(sp.OP_CALIBRATE, (0,))   # no sample has been read yet
e = rig.replies()[-1]
assert e.kind == sp.T_ERROR and e.code == sp.E_STATE
assert not rig.dev.guard.calibrated
print("ok")
""",
    )


def test_corrupt_config_falls_back_to_defaults_and_says_so(tmp_path):
    run(
        tmp_path,
        r"""
from config_store import DEFAULTS
for text in ('{"rate_hz": 200, ', '{"rate_hz": "fast"}', '{"guard_mode": 7}', '[1, 2]', '\x00\xff'):
    store = fresh_store(CFG_DIR, text)
    rig = Rig(store)
    assert rig.dev.cfg == DEFAULTS, text
    rig.connect()
    rig.cmd(sp.OP_GET_STATUS)
    st = rig.replies()[-1]
    assert st.kind == sp.T_STATUS and st.state & sp.ST_CONFIG_DEFAULTS, text
    assert st.period_us == 9615 and st.guard_flex_cdeg == DEFAULTS["guard_flex_cdeg"]
# a valid config with a setting changed by a command survives a reboot, without the flag
store = fresh_store(CFG_DIR)
rig = Rig(store)
rig.connect()
rig.cmd(sp.OP_SET_GUARD, (2500, -1500, sp.GUARD_ALWAYS))
rig2 = Rig(ConfigStore(CFG_DIR + "/config.json", CFG_DIR + "/boot.txt"))
rig2.connect()
rig2.counter = rig2.dev.last_counter  # the saved counter survives the reboot: continue past it
rig2.cmd(sp.OP_GET_STATUS)
st = rig2.replies()[-1]
assert not st.state & sp.ST_CONFIG_DEFAULTS
assert (st.guard_flex_cdeg, st.guard_ext_cdeg, st.guard_mode) == (2500, -1500, sp.GUARD_ALWAYS)
assert st.boot_count == 2, st.boot_count
print("ok")
""",
    )


def test_ble_advertising_gatt_mtu_and_readvertise(tmp_path):
    run(
        tmp_path,
        r"""
from ble_link import uuid128_le
rig = Rig(fresh_store(CFG_DIR))
r = rig.r
U = rig.hw.uuid
interval, adv, resp, connectable = r.adv
assert connectable and uuid128_le(sp.SERVICE_UUID) in adv and len(adv) <= 31
assert b"spinemon-B2C3" in resp
assert r.config("gap_name") == "spinemon-B2C3"
# GATT table
svc_uuids = [s[0] for s in r.services]
assert svc_uuids == [U(sp.SERVICE_UUID), U(0x180F), U(0x180A)]
flags = dict((c[0], c[1]) for c in r.services[0][1])
assert flags[U(sp.STREAM_CHAR_UUID)] & 0x10 and flags[U(sp.COMMAND_CHAR_UUID)] & 0x08
assert flags[U(sp.STATUS_CHAR_UUID)] & 0x12 == 0x12
assert r.gatts_read(r.handle_of(U(0x2A26))) == b"0.5.0"
assert r.gatts_read(r.handle_of(U(0x2A19))) == bytes((66,))
assert r.buffers[rig.h_cmd][0] >= 20
# without an MTU exchange (23) frames are cut to 1 sample/frame? no: they do not fit -> smaller frames
r.central_connect()
rig.dev.step()
assert r.adv is None
r.exchange_mtu(mtu=100)
rig.dev.step()
rig.resync()
assert rig.dev.sampler.spf == (97 - 18) // 26
rig.cmd(sp.OP_START)
rig.run_ms(1000)
fr = r.notified(rig.h_stream)
assert fr and max(len(f) for f in fr) <= 97
assert all(sp.decode(f).count == 3 for f in fr)
# status characteristic is readable (periodic STATUS)
assert sp.decode(r.gatts_read(rig.h_status)).kind == sp.T_STATUS
# disconnect -> advertising again
r.central_disconnect()
rig.run_ms(50)
assert r.adv is not None and r.adv[3]
print("ok")
""",
    )


def test_slow_link_drops_oldest_frames_and_counts(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR))
rig.connect()
rig.cmd(sp.OP_START)
rig.run_ms(500)
n0 = len(rig.frames())
rig.r.congested = True          # the stack refuses notifications
rig.run_ms(5000)
assert len(rig.frames()) == n0
rig.r.congested = False
rig.run_ms(2000)
fr = rig.frames()
d = rig.dev
assert d.queue.frames_dropped > 0
dropped_flag = [f for f in fr if f.flags & sp.SF_QUEUE_DROP]
assert len(dropped_flag) >= 1
# the sequence gap equals the dropped samples
gap = 0
for a, b in zip(fr, fr[1:]):
    gap += b.seq - (a.seq + a.count)
assert gap == d.queue.samples_dropped, (gap, d.queue.samples_dropped)
rig.cmd(sp.OP_GET_STATUS)
st = rig.replies()[-1]
assert st.frames_dropped == d.queue.frames_dropped and st.samples_dropped == d.queue.samples_dropped
assert st.samples_lost_fifo == 0
print("ok")
""",
    )


def test_serial_link_streams_cobs_frames_and_takes_commands(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR), link="serial", ble=False, serial=True, two=False, chip="mpu6050")
port = rig.hw.port
dec = sp.StreamDecoder()
def send(op, args=(), counter=None):
    rig.counter += 1
    port.feed(sp.stream_frame(sp.encode_command(rig.counter if counter is None else counter, op, args)))
send(sp.OP_START)
port.feed(b"garbage\x00")   # not COBS: counted and skipped, resynchronises at the delimiter
bad = bytearray(sp.encode_command(99, sp.OP_STOP)); bad[-1] ^= 1
port.feed(sp.stream_frame(bytes(bad)))  # a frame with a bad CRC: ERROR
rig.run_ms(1000)
send(sp.OP_HAPTIC, (2, 50, 50, 255))
rig.run_ms(300)
send(sp.OP_STOP)
rig.run_ms(100)
out = [sp.decode(f) for f in dec.feed(port.take_tx())]
acks = [f for f in out if f.kind == sp.T_ACK]
errs = [f for f in out if f.kind == sp.T_ERROR]
samples = [f for f in out if f.kind == sp.T_SAMPLES]
assert [a.opcode for a in acks] == [sp.OP_START, sp.OP_HAPTIC, sp.OP_STOP]
assert len(errs) == 1 and errs[0].code == sp.E_CRC
assert rig.dev.serial.framing_errors == 1
assert samples and all(f.mask == 1 and f.period_us == 10000 for f in samples)
assert sum(f.count for f in samples) >= 125
assert len(rig.motor_on_ms()) == 2
print("ok")
""",
    )


def test_button_press_calibrates(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR), upper_motion=Tilt([(0, 10), (10, 10)]), two=False)
rig.run_ms(300)
assert not rig.dev.guard.calibrated
rig.hw.button.value(0)
rig.run_ms(200)
rig.hw.button.value(1)
rig.run_ms(100)
assert rig.dev.guard.calibrated and len(rig.motor_on_ms()) == 1
assert abs(rig.dev.guard.angle_cdeg) < 20
print("ok")
""",
    )


def test_start_after_a_reconnect_resends_the_ring_and_the_gap_matches_the_drop_counters(tmp_path):
    run(
        tmp_path,
        r"""
from device import RESEND_FRAMES

def host_view(frames):
    # what the host's FrameDecoder does: gaps are lost, repeats are duplicates
    nxt = None; lost = 0; dup = 0
    for f in frames:
        if nxt is not None:
            d = f.seq - nxt
            if d > 0:
                lost += d
            elif d < 0:
                dup += min(-d, f.count)
                if -d >= f.count:
                    continue
        nxt = f.seq + f.count
    return lost, dup

def session(down_ms, lost_in_flight):
    rig = Rig(fresh_store(CFG_DIR))
    rig.connect()
    rig.cmd(sp.OP_START)
    rig.run_ms(2500)
    a = rig.frames()
    assert len(a) > RESEND_FRAMES
    rig.r.central_disconnect()
    rig.run_ms(down_ms)
    rig.connect()
    rig.run_ms(300)
    assert len(rig.frames()) == len(a), "no stream frame before the host's START"
    rig.cmd(sp.OP_START)
    rig.run_ms(4000)
    b = rig.frames()[len(a):]
    assert [f.seq for f in b[:RESEND_FRAMES]] == [f.seq for f in a[-RESEND_FRAMES:]], ([f.seq for f in b[:RESEND_FRAMES]], [f.seq for f in a[-RESEND_FRAMES:]])
    assert rig.dev.frames_resent == RESEND_FRAMES and rig.dev.resumes == 1, (rig.dev.frames_resent, rig.dev.resumes)
    assert rig.dev.frames_resent == RESEND_FRAMES and rig.dev.resumes == 1
    rig.cmd(sp.OP_STOP)
    rig.run_ms(500)
    b = rig.frames()[len(a):]
    # the host missed the last frames notified before the link dropped
    lost, dup = host_view(a[: len(a) - lost_in_flight] + b)
    st = sp.decode(rig.dev.status_frame())
    return lost, dup, st, rig

# a short loss: the queue holds everything, the ring covers the frames lost in flight
lost, dup, st, rig = session(1000, 3)
assert st.samples_dropped == 0 and st.samples_lost_fifo == 0
assert lost == 0 and dup > 0
# a long loss: the queue overflows; the host's gap is exactly what the device counted
lost, dup, st, rig = session(5000, 5)
assert st.samples_dropped > 0 and st.frames_dropped > 0
assert lost == st.samples_dropped + st.samples_lost_fifo, (lost, st.samples_dropped, st.samples_lost_fifo)
# START on a stopped device begins afresh: nothing re-sent
n = len(rig.frames())
rig.cmd(sp.OP_START)
rig.run_ms(1000)
assert rig.dev.frames_resent == RESEND_FRAMES and rig.frames()[n].seq > rig.frames()[n - 1].seq
print("ok")
""",
    )


def test_set_neutral_arms_the_guard_from_the_hosts_neutral_and_survives_a_reboot(tmp_path):
    """The host's calibration, not a button press or CALIBRATE, zeroes the guard
    (issue 12, defect 1): SET_NEUTRAL takes each sensor's sagittal angle at
    neutral; it is kept in flash, so a rebooted device guards at once."""
    run(
        tmp_path,
        r"""
# the upper board is mounted pitched 10 deg; the wearer rounds to 60 deg past that
rep = [(0, 10), (2, 10), (3, 70), (4, 70), (5, 10), (30, 10)]
level = Tilt([(0, 0), (30, 0)])  # the lower board, +X up
rig = Rig(fresh_store(CFG_DIR), upper_motion=Tilt(rep), lower_motion=level)
rig.connect()
rig.cmd(sp.OP_START)
rig.run_ms(300)
assert not rig.dev.guard.calibrated, "calibrated before any neutral"
rig.cmd(sp.OP_SET_NEUTRAL, (1000, 0))  # the host says: neutral is 10.00 deg upper, 0 lower
rig.cmd(sp.OP_SET_GUARD, (3000, -2000, sp.GUARD_WHEN_LINK_DOWN))
assert [x.kind for x in rig.replies()] == [sp.T_ACK] * 3, [(x.kind, getattr(x, "code", None)) for x in rig.replies()]
assert rig.dev.guard.calibrated, "SET_NEUTRAL did not calibrate"
rig.run_ms(200)
v = rig.frames()[-1].values()
assert abs(v[-1]) < 60, v[-1]  # 0 deg at the host's neutral (centidegrees)
rig.r.central_disconnect()
rig.run_ms(6000)
assert rig.dev.guard.alerts == 1, rig.dev.guard.alerts
# reboot: the neutral is in flash
cfg = ConfigStore(CFG_DIR + "/config.json", CFG_DIR + "/boot.txt").load()
assert cfg["calibrated"] and abs(cfg["offset_upper"] - 10.0 * 3.141592653589793 / 180.0) < 1e-6, cfg
rig2 = Rig(ConfigStore(CFG_DIR + "/config.json", CFG_DIR + "/boot.txt"), upper_motion=Tilt(rep), lower_motion=level)
assert rig2.dev.guard.calibrated, "the neutral was not restored at boot"
rig2.run_ms(6000)  # never connected: the guard watches from boot
assert rig2.dev.guard.alerts == 1, rig2.dev.guard.alerts
print("ok")
""",
    )


def test_the_link_setting_picks_the_links_even_when_both_are_fitted(tmp_path):
    run(
        tmp_path,
        r"""
rig = Rig(fresh_store(CFG_DIR), link="serial", serial=True)   # a radio is fitted too
assert rig.dev.serial is not None and rig.dev.ble is None and rig.r.adv is None
rig = Rig(fresh_store(CFG_DIR), link="ble", serial=True)      # a serial port is there too
assert rig.dev.ble is not None and rig.dev.serial is None
rig = Rig(fresh_store(CFG_DIR), link="both", serial=True)
assert rig.dev.ble is not None and rig.dev.serial is not None
print("ok")
""",
    )


def test_guard_confirms_fast_crossings_sooner_and_skips_brief_slow_ones(tmp_path):
    """The guard's confirmation (guard.Crossing, the host detector's rule):
    past the threshold for 80 ms, or sooner the faster the crossing goes in
    (one hysteresis band, 3 deg, deeper than its first sample past), never
    before two sample periods after it."""
    run(
        tmp_path,
        r"""
def fires(profile):
    rig = guarded_rig(profile, sp.GUARD_ALWAYS)
    rig.run_ms(6000)
    return rig.dev.guard.alerts, rig.motor_on_ms()
# slow (10 deg/s), past 30 deg for about 60 ms, 0.3 deg deep, then straight back
# below the release (30 - 3 deg): not confirmed
slow = [(0, 0), (2, 0), (4.97, 29.7), (5.0, 30.0), (5.03, 30.3), (5.06, 30.0), (5.08, 20.0), (6, 0), (9, 0)]
alerts, on = fires(slow)
assert alerts == 0 and on == [], (alerts, on)
# the same 60 ms past the threshold, but a fast rounding (300 deg/s up to 39 deg): confirmed
fast = [(0, 0), (2, 0), (5.0, 30.0), (5.03, 39.0), (5.06, 30.0), (5.1, 0), (9, 0)]
alerts, on = fires(fast)
assert alerts == 1 and len(on) == 2, (alerts, on)
delay = on[0][0] - 5000
assert 19 <= delay <= 19 + 20, delay  # two samples (9.6 ms each) + one IMU read interval and a sample
# slow and long: the whole 80 ms hold
held = [(0, 0), (2, 0), (5.0, 30.0), (5.5, 35.0), (6.0, 30.0), (6.5, 0), (9, 0)]
alerts, on = fires(held)
assert alerts == 1 and 80 <= on[0][0] - 5000 <= 80 + 20, on
print("ok")
""",
    )


def test_in_a_set_the_guard_buzzes_once_per_fault_flags_it_and_skips_the_hosts_haptic_for_it(tmp_path):
    """GUARD_ALWAYS with the host watching (what spinemon live sends while a
    set is on): the guard buzzes, the frame with that sample carries
    SF_GUARD_BUZZED, each poll's samples go out at once, and a HAPTIC that
    arrives while the wearer is still in that excursion is acknowledged as
    skipped (one buzz per fault); once back inside, a HAPTIC plays. A host
    buzz in an excursion the guard has not confirmed yet latches the guard:
    it does not buzz for it too."""
    run(
        tmp_path,
        r"""
rep = [(0, 0), (2, 0), (2.2, 60), (3, 60), (3.2, 0), (5, 0), (7, 0), (7.5, 33), (8.5, 33), (9, 0), (12, 0)]
rig = guarded_rig(rep, sp.GUARD_ALWAYS)
n0 = len(rig.frames())
def watch(ms):  # the host's heartbeat keeps the device's "host watching"
    for _ in range(ms // 100):
        rig.cmd(sp.OP_TIME_SYNC)
        rig.run_ms(100)
watch(2100)  # t = 2.6 s: the wearer is rounded, the guard has buzzed
g = rig.dev.guard
assert g.alerts == 1 and g.buzzed_excursion
on = rig.motor_on_ms()
assert 0 < on[0][0] - 2100 <= 19 + 20, on  # past 30 deg at 2.1 s; two samples + a read interval
fr = rig.frames()[n0:]
buzzed = [f for f in fr if f.flags & sp.SF_GUARD_BUZZED]
assert len(buzzed) == 1, [f.flags for f in fr]
fire_idx = buzzed[0].seq
# short frames: the poll's samples go out when nothing waits (polls every 10 ms here,
# notifications paced at 20 ms: two polls' worth), never a queue building up
assert all(f.flags & sp.SF_GUARD_ARMED and f.count <= 3 for f in fr[1:]), [f.count for f in fr]  # fr[0]: the batch begun before
assert not any(f.flags & sp.SF_QUEUE_DROP for f in fr) and len(rig.dev.queue) <= 1
# the host's HAPTIC for this fault: acknowledged, not played
rig.cmd(sp.OP_HAPTIC, (3, 150, 100, 255))
ack = rig.replies()[-1]
assert ack.kind == sp.T_ACK and ack.opcode == sp.OP_HAPTIC and ack.value == sp.HAPTIC_SKIPPED_GUARD_BUZZED, ack.value
watch(1000)
assert len(rig.motor_on_ms()) == 2, rig.motor_on_ms()  # the guard's own 2 pulses only
watch(1500)  # t = 5.1 s: back upright, inside the thresholds
assert not g.buzzed_excursion
rig.cmd(sp.OP_HAPTIC, (1, 50, 0, 255))
assert rig.replies()[-1].value == sp.HAPTIC_PLAYED
watch(300)
assert len(rig.motor_on_ms()) == 3
# slow second bend (66 deg/s to 33 deg): the host buzzes the moment the angle is past
# the threshold, before the guard has confirmed; the guard then stays quiet for it
for _ in range(300):
    rig.cmd(sp.OP_TIME_SYNC)
    rig.run_ms(10)
    if g.over:
        break
assert g.over and g.alerts == 1
rig.cmd(sp.OP_HAPTIC, (1, 50, 0, 255))
assert rig.replies()[-1].value == sp.HAPTIC_PLAYED
watch(2000)
assert g.alerts == 1 and len(rig.motor_on_ms()) == 4, (g.alerts, rig.motor_on_ms())
# the guard watching only while the link is down (between sets): full batches while the host watches
rig.cmd(sp.OP_SET_GUARD, (3000, -2000, sp.GUARD_WHEN_LINK_DOWN))
n1 = len(rig.frames())
watch(1000)
counts = [f.count for f in rig.frames()[n1:]]
assert counts and max(counts) == rig.dev.sampler.spf and not any(f.flags & sp.SF_GUARD_ARMED for f in rig.frames()[n1 + 1:]), counts
print("ok")
""",
    )


def test_guard_counts_excursions_as_the_host_counts_events(tmp_path):
    """Re-armed once the angle has been back inside the thresholds (by the
    hysteresis) for the host's refractory period, 1.5 s: a second crossing
    sooner is the same excursion, later it is a new fault and buzzes."""
    run(
        tmp_path,
        r"""
def buzzes(gap_s):
    # 0 -> 60 deg at 300 deg/s, held 0.5 s, back; again gap_s after coming back below 27 deg
    t_back = 3.0 + 0.2 * 33 / 60
    rep = [(0, 0), (2, 0), (2.2, 60), (2.8, 60), (3.0, 0)]
    t2 = t_back + gap_s - 0.2 * 30 / 60  # the second bend crosses 30 deg gap_s after the release
    rep += [(t2, 0), (t2 + 0.2, 60), (t2 + 0.8, 60), (t2 + 1.0, 0), (t2 + 4, 0)]
    rig = guarded_rig(rep, sp.GUARD_ALWAYS)
    rig.run_ms(int((t2 + 3) * 1000))
    return rig.dev.guard.alerts
assert buzzes(1.0) == 1
assert buzzes(2.0) == 2
print("ok")
""",
    )
