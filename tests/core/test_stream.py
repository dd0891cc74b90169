"""Frames -> samples: scaling, unwrapping, and counting everything bad."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import spinemon_protocol as P
from spinemon.core.stream import G, FrameDecoder, FrameRun

RANGES = P.ranges_byte(8, 1000)


def frame(seq, t_us, count=4, mask=3, period=10000, base=0, angle=P.ANGLE_NONE, flags=0):
    per = P.values_per_sample(mask)
    vals = []
    for i in range(count):
        row = [(base + i + k) % 1000 for k in range(per - 1)] + [angle]
        vals += row
    return P.encode_samples(seq, t_us, period, mask, RANGES, flags, count, P.pack_values(vals))


def test_scaling_to_si_units():
    vals = [4096, 0, -4096, 3277, 0, 0, 4096, 0, 0, 0, 0, -3277, 1234]
    f = P.encode_samples(0, 0, 10000, 3, RANGES, 0, 1, P.pack_values(vals))
    (blk,) = FrameDecoder().feed(f)
    assert blk.acc["upper"][0] == pytest.approx([G, 0, -G])  # 4096 counts at +-8 g = 1 g
    assert blk.gyr["upper"][0, 0] == pytest.approx(math.radians(3277 * 1000 / 32768))
    assert blk.gyr["lower"][0, 2] == pytest.approx(-math.radians(3277 * 1000 / 32768))
    assert blk.device_angle_deg[0] == pytest.approx(12.34)
    assert blk.rate_hz == pytest.approx(100.0)


def test_gaps_duplicates_and_bad_frames_are_counted_and_skipped():
    d = FrameDecoder()
    out = []
    good = [frame(4 * i, 40000 * i) for i in range(10)]
    stream = [good[0], good[1], good[1], good[3], b"\x00\x01garbage", good[4][:-1] + bytes([good[4][-1] ^ 1]), good[4], good[5]]
    for f in stream:
        out += d.feed(f)
    s = d.stats
    assert s.duplicate_frames == 1
    assert s.gaps == 1 and s.lost_samples == 4  # frame 2 never arrived
    assert s.rejected == {"bad_crc": 2}
    seq = np.concatenate([b.seq for b in out])
    assert list(seq) == list(range(0, 8)) + list(range(12, 24))


def test_partial_overlap_keeps_only_new_samples():
    d = FrameDecoder()
    d.feed(frame(0, 0, count=4))
    (blk,) = d.feed(frame(2, 20000, count=4))
    assert list(blk.seq) == [4, 5]
    assert d.stats.duplicate_samples == 2


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 0xFFFFFFFF), t_start=st.integers(0, 0xFFFFFFFF), n=st.integers(2, 40))
def test_sequence_and_clock_wrap_around(start, t_start, n):
    d = FrameDecoder()
    seqs, ts = [], []
    for i in range(n):
        for b in d.feed(frame((start + 8 * i) & 0xFFFFFFFF, (t_start + 80000 * i) & 0xFFFFFFFF, count=8)):
            seqs.append(b.seq)
            ts.append(b.t)
    seq = np.concatenate(seqs)
    t = np.concatenate(ts)
    assert np.all(np.diff(seq) == 1)
    assert np.allclose(np.diff(t), 0.01)
    assert d.stats.lost_samples == 0 and d.stats.restarts == 0


def test_device_restart_is_counted_and_stream_continues():
    d = FrameDecoder()
    d.feed(frame(500000, 5_000_000_000 % 2**32))
    (blk,) = d.feed(frame(0, 0))  # reboot: counters start again
    assert d.stats.restarts == 1
    assert blk.seq[0] == 500004  # the host's index keeps going
    assert d.stats.lost_samples == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    d = FrameDecoder()
    d.feed(data)
    assert d.stats.frames + d.stats.bad_frames == 1


def test_reboot_soon_after_boot_is_a_restart_not_duplicates():
    # the device rebooted 2 s after its previous boot: sequence numbers go back a
    # little, but the host clock says these are new samples
    d = FrameDecoder()
    for i in range(50):
        d.feed(frame(4 * i, 40000 * i), t_host=100.0 + 0.04 * i)
    (blk,) = d.feed(frame(0, 0), t_host=102.5)
    assert d.stats.restarts == 1 and d.stats.duplicate_frames == 0
    assert blk.seq[0] == 200
    # a genuinely late duplicate keeps the old clock relation
    assert d.feed(frame(0, 0), t_host=102.55) == []
    assert d.stats.duplicate_frames == 1


def status(boot):
    return P.encode_status(boot_count=boot)


def test_status_boot_counter_settles_restart_versus_resent_frames():
    # after a long link loss the wearable re-sends its last frames (same boot):
    # they arrive late, but STATUS says "same boot", so they are duplicates
    d = FrameDecoder()
    d.feed(status(7), t_host=99.0)
    for i in range(50):
        d.feed(frame(4 * i, 40000 * i), t_host=100.0 + 0.04 * i)
    d.feed(status(7), t_host=105.0)
    out = []
    for i in range(46, 53):  # 4 re-sent frames, then new ones
        out += d.feed(frame(4 * i, 40000 * i), t_host=105.1 + 0.01 * i)
    assert d.stats.restarts == 0
    assert d.stats.duplicate_frames == 4
    assert [int(b.seq[0]) for b in out] == [200, 204, 208]
    # a new boot counter: the next frame restarts the stream, even a small step back
    d.feed(status(8), t_host=106.0)
    (blk,) = d.feed(frame(0, 0), t_host=106.1)
    assert d.stats.restarts == 1 and blk.seq[0] == 212
    (blk,) = d.feed(frame(4, 40000), t_host=106.14)
    assert blk.seq[0] == 216 and d.stats.restarts == 1


def test_first_status_mid_stream_judges_by_uptime():
    d = FrameDecoder()
    for i in range(50):
        d.feed(frame(4 * i, 40000 * i), t_host=100.0 + 0.04 * i)  # device time up to 1.96 s
    d.feed(P.encode_status(boot_count=3, uptime_ms=6000), t_host=106.0)  # same boot, 6 s up
    assert d.feed(frame(4 * 45, 40000 * 45), t_host=106.1) == []  # a late re-sent frame
    assert d.stats.restarts == 0 and d.stats.duplicate_frames == 1
    d2 = FrameDecoder()
    for i in range(50):
        d2.feed(frame(4 * i, 40000 * i), t_host=100.0 + 0.04 * i)
    d2.feed(P.encode_status(boot_count=1, uptime_ms=300), t_host=106.0)  # up for 0.3 s: rebooted
    (blk,) = d2.feed(frame(0, 0), t_host=106.1)
    assert d2.stats.restarts == 1 and blk.seq[0] == 200


@pytest.mark.parametrize("with_host_times", [False, True])
def test_a_restart_whose_boot_count_repeated_keeps_every_sample(with_host_times):
    # issue 12: a torn boot counter gave the same boot count twice; the host took
    # the new boot's samples (sequence number and device clock from 0 again) for
    # re-sent duplicates of the old boot and threw 10,000 of 10,000 away. Both
    # boots here follow the very same device timeline (the clock counts from
    # boot): only "further back than any re-send" tells them apart.
    d = FrameDecoder()
    th = (lambda t: 1000.0 + t) if with_host_times else (lambda t: None)
    d.feed(status(1), t_host=th(0.0))
    for i in range(2500):  # the old boot: 20,000 samples at 100 Hz, 8 per frame
        d.feed(frame(8 * i, 10000 * (8 * i + 1), count=8), t_host=th(0.08 * i))
    d.feed(status(1), t_host=th(205.0))  # after the reset: the boot count repeated
    kept = 0
    for i in range(1250):  # the new boot: 10,000 samples
        for b in d.feed(frame(8 * i, 10000 * (8 * i + 1), count=8), t_host=th(205.1 + 0.08 * i)):
            kept += len(b)
    assert kept == 10_000
    assert d.stats.restarts == 1 and d.stats.duplicate_samples == 0 and d.stats.lost_samples == 0
    assert d.stats.samples == 30_000


def test_a_re_sent_ring_is_still_duplicates_when_the_boot_count_is_the_same():
    # the other side of the rule: frames re-sent after a reconnect lie on a
    # remembered frame's timeline and are dropped, however late they come
    d = FrameDecoder()
    d.feed(status(4), t_host=0.0)
    for i in range(100):
        d.feed(frame(8 * i, 10000 * (8 * i + 1), count=8), t_host=0.08 * i)
    d.feed(status(4), t_host=30.0)
    out = []
    for i in range(84, 110):  # the last 16 frames again, then new ones
        out += d.feed(frame(8 * i, 10000 * (8 * i + 1), count=8), t_host=30.1 + 0.01 * i)
    assert d.stats.restarts == 0 and d.stats.duplicate_frames == 16
    assert [int(b.seq[0]) for b in out] == [8 * i for i in range(100, 110)]


def test_the_same_sequence_number_at_another_device_time_is_a_new_boot():
    d = FrameDecoder()
    d.feed(status(2))
    for i in range(40):
        d.feed(frame(8 * i, 10000 * (8 * i + 1), count=8))
    d.feed(status(2))
    # seq 300 was in a remembered frame, but at another device time
    (blk,) = d.feed(frame(300, 777_777, count=8))
    assert d.stats.restarts == 1 and len(blk) == 8 and blk.seq[0] == 320


def test_a_step_forward_in_sequence_but_back_in_device_time_is_a_restart():
    d = FrameDecoder()
    d.feed(status(5))
    for i in range(40):
        d.feed(frame(8 * i, 5_000_000 + 10000 * 8 * i, count=8))
    d.feed(status(5))
    (blk,) = d.feed(frame(400, 100_000, count=8))  # seq ahead (a gap?), clock 5 s earlier
    assert d.stats.restarts == 1 and d.stats.lost_samples == 0 and blk.seq[0] == 320
    # a real gap keeps its clock relation
    d2 = FrameDecoder()
    for i in range(40):
        d2.feed(frame(8 * i, 5_000_000 + 10000 * 8 * i, count=8))
    d2.feed(frame(400, 5_000_000 + 10000 * 400, count=8))
    assert d2.stats.restarts == 0 and d2.stats.lost_samples == 80


def _flatten(items):
    """Every sample the decoder gave, in order, per field (blocks of any size)."""
    from spinemon.core.stream import SampleBlock

    blocks = [(b, th) for b, th in items if isinstance(b, SampleBlock) and len(b)]
    out = {"seq": [], "t": [], "flags": [], "angle": [], "t_host": [], "layout": []}
    for b, th in blocks:
        out["seq"] += b.seq.tolist()
        out["t"] += b.t.tolist()
        out["flags"] += b.flags.tolist()
        out["angle"] += [repr(x) for x in b.device_angle_deg.tolist()]
        out["t_host"] += th.tolist()
        out["layout"] += [(b.sensors, b.rate_hz)] * len(b)
        for s in ("upper", "lower"):
            out.setdefault(s, [])
            if s in b.acc:
                out[s] += np.hstack([b.acc[s], b.gyr[s]]).tolist()
    return out


@st.composite
def frame_scripts(draw):
    """A stream as links and wearables make it: in order, gaps, re-sent frames,
    partial overlaps, restarts, STATUS with the same or another boot, a
    sensor or rate change, corrupted bytes, a device clock stepping back a little."""
    seq, t, mask, period, boot = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), 3, 10000, 1
    fixed_count = draw(st.one_of(st.none(), st.integers(1, 6)))  # one count for every frame: long in-order chains (replay's bulk path)
    sent, frames = [], []
    for _ in range(draw(st.integers(1, 40))):
        step = draw(st.sampled_from(["next"] * 6 + ["gap", "resend", "overlap", "restart", "status", "layout", "period", "corrupt", "clock_back"]))
        count = fixed_count or draw(st.integers(1, 6))
        if step == "gap":
            k = draw(st.integers(1, 20))
            seq, t = (seq + k) & 0xFFFFFFFF, (t + k * period) & 0xFFFFFFFF
        elif step == "resend" and sent:
            frames.append(draw(st.sampled_from(sent)))
            continue
        elif step == "overlap":
            k = draw(st.integers(1, 3))
            seq, t = (seq - k) & 0xFFFFFFFF, (t - k * period) & 0xFFFFFFFF
        elif step == "restart":
            seq, t = 0, draw(st.integers(0, 10**6))
            if draw(st.booleans()):
                boot += 1
                frames.append(status(boot))
        elif step == "status":
            frames.append(status(boot))
            continue
        elif step == "layout":
            mask = 1 if mask == 3 else 3
        elif step == "clock_back":  # the next frame in sequence, stamped inside the last one's time
            t = (t - draw(st.integers(1, 2)) * period) & 0xFFFFFFFF
        elif step == "period":
            period = 20000 if period == 10000 else 10000
        f = frame(seq, t, count=count, mask=mask, period=period, base=len(frames), flags=draw(st.sampled_from([0, 0, P.SF_FIFO_OVERFLOW])))
        if step == "corrupt":
            i = draw(st.integers(0, len(f) - 1))
            f = f[:i] + bytes([f[i] ^ 0x40]) + f[i + 1 :]
        else:
            sent.append(f)
            seq, t = (seq + count) & 0xFFFFFFFF, (t + count * period) & 0xFFFFFFFF
        frames.append(f)
    hosts = [100.0 + 0.05 * i + (5.0 if draw(st.booleans()) and i % 7 == 6 else 0.0) for i in range(len(frames))]
    hosts = [max(hosts[: i + 1]) for i in range(len(hosts))]
    return frames, hosts


def _feed_as_runs(dec, frames, hosts, max_samples, pad):
    """Frames through ``feed_run`` wherever two or more in a row have one
    length (laid out in one buffer, ``pad`` filler bytes before each, as a
    recording keeps them), the others through ``feed_many``."""
    got, i = [], 0
    while i < len(frames):
        j = i + 1
        while j < len(frames) and len(frames[j]) == len(frames[i]):
            j += 1
        if j - i > 1:
            length = len(frames[i])
            buf = b"".join(b"\xd3" * pad + f for f in frames[i:j])
            got += dec.feed_run(FrameRun(buf, pad, pad + length, length, j - i), hosts[i:j], max_samples)
        else:
            got += dec.feed_many(frames[i:j], hosts[i:j], max_samples)
        i = j
    return got


@settings(max_examples=200, deadline=None)
@given(
    script=frame_scripts(),
    cuts=st.lists(st.integers(1, 12), min_size=1, max_size=20),
    max_samples=st.integers(1, 40),
    pad=st.integers(0, 29),
)
def test_feed_many_decides_and_counts_as_frame_by_frame(script, cuts, max_samples, pad):
    """Replay decodes many frames at once (a list of frames, or a recording's
    run of equal-length frames in its buffer); it must see the same samples
    and keep the same counts as the live path's frame-by-frame decoding."""
    frames, hosts = script
    one = FrameDecoder()
    items = []
    for f, th in zip(frames, hosts):
        items += [(x, np.full(len(x), th)) if hasattr(x, "seq") else (x, None) for x in one.feed(f, th)]
    import spinemon.core.stream as stream

    many, runs = FrameDecoder(), FrameDecoder()
    got, got_runs, i, k = [], [], 0, 0
    rows_crc_min = stream._ROWS_CRC_MIN
    stream._ROWS_CRC_MIN = 1 if pad % 2 else 1 << 30  # a run's CRC-16s all at once, or one frame at a time
    try:
        while i < len(frames):
            n = cuts[k % len(cuts)]
            got += many.feed_many(frames[i : i + n], hosts[i : i + n], max_samples)
            got_runs += _feed_as_runs(runs, frames[i : i + n], hosts[i : i + n], max_samples, pad)
            i, k = i + n, k + 1
    finally:
        stream._ROWS_CRC_MIN = rows_crc_min
    keys = ("_next_seq", "_seq_base", "_last_raw_seq", "_t_base", "_last_raw_t", "_next_t_us", "_offset", "_status_verdict", "_layout")
    for dec, out in ((many, got), (runs, got_runs)):
        assert dec.stats.as_dict() == one.stats.as_dict()
        assert _flatten(out) == _flatten(items)
        assert [getattr(dec, k) for k in keys] == [getattr(one, k) for k in keys]
        assert list(dec._history) == list(one._history)
    others = lambda xs: [type(x).__name__ for x, _ in xs if not hasattr(x, "seq")]  # noqa: E731
    for out in (got, got_runs):
        assert all(len(b) <= max_samples + 6 for b, _ in out if hasattr(b, "seq"))  # a run closes once it holds max_samples
        for b, _ in out:  # a block never holds device time standing still or going back (the pipeline cuts there)
            assert not hasattr(b, "seq") or np.all(np.diff(b.t) > 0)
        assert others(out) == others(items)


@settings(max_examples=200, deadline=None)
@given(script=frame_scripts())
def test_the_in_order_shortcut_decides_as_the_general_rules(script):
    """The decoder's shortcut for the frame it expects next must come to what
    its general rules decide: the same samples, counts and position after
    every frame of streams with gaps, re-sends, restarts, layout changes and
    clock steps."""
    frames, hosts = script
    fast, general = FrameDecoder(), FrameDecoder()
    general.fast_path = False
    for f, th in zip(frames, hosts):
        a, b = fast.feed(f, th), general.feed(f, th)
        assert _flatten([(x, np.full(len(x), th)) for x in a if hasattr(x, "seq")]) == _flatten([(x, np.full(len(x), th)) for x in b if hasattr(x, "seq")])
        assert fast.stats.as_dict() == general.stats.as_dict()
        keys = ("_next_seq", "_seq_base", "_last_raw_seq", "_t_base", "_last_raw_t", "_next_t_us", "_offset", "_status_verdict", "_layout")
        assert [getattr(fast, k) for k in keys] == [getattr(general, k) for k in keys]
        assert list(fast._history) == list(general._history)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 8), st.sampled_from([0.0, 0.0, 0.0, -0.05, -0.2, 0.3])), min_size=1, max_size=15),
    cuts=st.lists(st.integers(0, 120), max_size=6),
)
def test_the_clock_never_goes_back_and_any_split_gives_the_same_times(steps, cuts):
    """MonotonicClock: frames whose device time steps back (the decoder never
    puts a step back inside a block) are shifted to follow the last sample,
    each step counted once, whatever the other cuts."""
    from spinemon.core.stream import MonotonicClock, SampleBlock

    t, ts = 0.0, []
    for n, jump in steps:
        t += jump
        ts += [t + k * 0.01 for k in range(n)]
        t = ts[-1] + 0.01
    ts = np.array(ts)
    n = len(ts)
    back = [i for i in range(1, n) if ts[i] <= ts[i - 1]]

    def block(a, b):
        return SampleBlock(seq=np.arange(a, b), t=ts[a:b], acc={"upper": np.zeros((b - a, 3))}, gyr={"upper": np.zeros((b - a, 3))}, device_angle_deg=np.full(b - a, np.nan), flags=np.zeros(b - a, np.uint8), rate_hz=100.0)

    def run(bounds):
        clock = MonotonicClock()
        out = np.concatenate([clock.update(block(a, b)).t for a, b in zip(bounds[:-1], bounds[1:])])
        return clock, out

    ref_clock, ref = run(sorted({0, n, *back}))
    clock, got = run(sorted({0, n, *back, *[c for c in cuts if 0 < c < n]}))
    assert np.all(np.diff(ref) > 0)
    assert ref_clock.backsteps == len(back)
    assert np.array_equal(got, ref) and clock.backsteps == len(back)


def test_a_lost_sensor_is_carried_on_the_decoded_blocks():
    """Issue 23: firmware 0.4 flags SF_SENSOR_LOST on the frames it sends
    with the IMUs left when one is lost. The decoder carries it per sample
    (SampleBlock.sensor_lost), names the lost sensor (lost_sensors) and
    counts the frames (stats.flagged_sensor_lost), frame by frame and in
    feed_many alike; frames from older firmware (bit 7 never set) read as
    before."""
    two = [P.encode_samples(k * 4, (k * 4 + 1) * 10000, 10000, 3, 0x21, 0, 4, P.pack_values([0] * 52)) for k in range(3)]
    one = [
        P.encode_samples(12 + k * 4, (12 + k * 4 + 1) * 10000, 10000, 1, 0x21, P.SF_SENSOR_LOST, 4, P.pack_values([0] * 28))
        for k in range(3)
    ]
    back = [P.encode_samples(24, 250000, 10000, 3, 0x21, 0, 4, P.pack_values([0] * 52))]
    frames = two + one + back
    d = FrameDecoder()
    blocks = [b for f in frames for b in d.feed(f) if hasattr(b, "seq")]
    assert [b.lost_sensors for b in blocks] == [()] * 3 + [("lower",)] * 3 + [()]
    assert [bool(b.sensor_lost.all()) for b in blocks] == [False] * 3 + [True] * 3 + [False]
    assert d.stats.flagged_sensor_lost == 3
    d2 = FrameDecoder()
    many = [b for b, _ in d2.feed_many(frames, [None] * len(frames)) if hasattr(b, "seq")]
    lost = np.concatenate([b.sensor_lost for b in many])
    assert lost.tolist() == [False] * 12 + [True] * 12 + [False] * 4
    assert [b.lost_sensors for b in many] == [(), ("lower",), ()]
    assert d2.stats.flagged_sensor_lost == 3


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 9).flatmap(lambda n: st.lists(st.binary(min_size=n, max_size=n), min_size=1, max_size=6)))
def test_the_crc_of_many_rows_at_once_is_the_crc_of_each(rows):
    """The decoder checks a run's CRC-16s all at once, two bytes a step: the
    same value as the protocol's CRC-16 of each frame, for even and odd lengths."""
    from spinemon.core.stream import _crc16_rows

    arr = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), -1)
    assert _crc16_rows(arr).tolist() == [P.crc16(r) for r in rows]


def test_a_run_of_frames_is_placed_from_its_rows_and_a_bad_crc_in_it_is_counted(monkeypatch):
    """``feed_run`` decodes only the frame that starts a chain on its own; a
    frame with a bad CRC-16 in the middle of a run is rejected and counted
    (as frame by frame) and the frames after it go on in a new chain."""
    import spinemon.core.stream as stream

    frames = [frame(4 * i, 40000 * i) for i in range(40)]
    frames[17] = frames[17][:-1] + bytes([frames[17][-1] ^ 1])
    buf = b"".join(b"\0" * 25 + f for f in frames)
    decoded = []
    real_decode = stream.proto.decode
    monkeypatch.setattr(stream.proto, "decode", lambda f: decoded.append(f) or real_decode(f))
    for rows_crc_min in (1, 1 << 30):  # the CRC-16s all at once, or one call each
        monkeypatch.setattr(stream, "_ROWS_CRC_MIN", rows_crc_min)
        decoded.clear()
        d = FrameDecoder()
        out = d.feed_run(FrameRun(buf, 25, 25 + len(frames[0]), len(frames[0]), len(frames)), [1.0 + i for i in range(40)])
        assert decoded == [frames[0], frames[17], frames[18]]  # the rest came from the rows
        assert d.stats.rejected == {"bad_crc": 1} and d.stats.gaps == 1 and d.stats.lost_samples == 4
        seq = np.concatenate([b.seq for b, _ in out])
        assert seq.tolist() == list(range(0, 68)) + list(range(72, 160))
