"""Nothing lost (issue 8): crash-safe segmented recordings, disk full,
device drop counters next to the host's gap accounting, wrap-arounds and a
wearable that restarts mid-session. The long parts (200 SIGKILLs, a 2-hour
session) are campaigns: python -m tests.campaigns.kill / .long_session."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess

import numpy as np
import pytest

import spinemon_protocol as P
from spinemon.io import sim
from spinemon.core.calibration import CalibrationSettings
from spinemon.errors import RecordingError
from spinemon.io.device_link import LinkSetup
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.io.recording import KIND_RX, RecordingWriter, load, segment_paths
from spinemon.core.device_status import DeviceAccounting
from spinemon.app.session import header_for, run_live
from spinemon.app.replay import replay
from spinemon.io.transport import SimTransport, Transport


def pipeline():
    return Pipeline(PipelineSettings(exercise="deadlift", calibration=CalibrationSettings(rom=False)))


def short_session(**kw):
    return sim.simulate([sim.SetSpec("deadlift", 3, {2: "rounding"}, rest_s=1.0)], seed=5, rom=False, settings=sim.SimSettings(**kw))


def live(frames, rec=None, **kw):
    async def main():
        t = SimTransport(frames, speed=0)
        await t.connect()
        return await run_live(t, pl, rec, **kw)

    pl = pipeline()
    return asyncio.run(main()), pl


# ------------------------------------------------------------------ segments
def test_a_resumed_session_writes_a_new_segment_and_loads_as_one(tmp_path):
    p = tmp_path / "s.spinrec"
    acks = []
    with RecordingWriter(p, {"source": "t"}, on_written=lambda n, off: acks.append((n, off))) as w:
        for i in range(5):
            w.frame_in(bytes([1, i]), 10.0 + i)
    assert acks[-1] == (6, p.stat().st_size)  # header + 5 frames, the file ends where the ack says
    first = p.read_bytes()
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(p, {})
    with RecordingWriter(p, {"source": "t"}, resume=True) as w2:
        assert w2.segment == 2 and w2.path.name == "s.spinrec.seg2"
        w2.frame_in(b"\x01\x09", 20.0)
    assert p.read_bytes() == first  # never reopened for writing
    assert segment_paths(p) == [p, tmp_path / "s.spinrec.seg2"]
    rec = load(p)
    assert [s.count for s in rec.segments] == [6, 2]
    assert [f for _, f in rec.frames_in()] == [bytes([1, i]) for i in range(5)] + [b"\x01\x09"]
    assert rec.segments[1].header["session_id"] == rec.header["session_id"] and rec.segments[1].header["segment"] == 2
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # the header-first temporary file is gone


def test_replay_treats_each_segment_as_the_session_it_was(tmp_path):
    """A stream recorded as two live sessions (the second resumed into the same
    recording, with a fresh pipeline as live --resume has) replays as those two
    sessions, each equal to its own live run, never as one merged session."""
    s = short_session()
    frames = list(zip(s.frames, s.frame_times.tolist()))
    half = len(frames) // 2
    p = tmp_path / "r.spinrec"
    pl = pipeline()
    first, _ = live(frames[:half], RecordingWriter(p, header_for(pl.settings, "sim")))
    second, _ = live(frames[half:], RecordingWriter(p, header_for(pl.settings, "sim"), resume=True))
    again = replay(load(p))
    assert again.summary["segments"] == 2 and again.frames == len(frames)
    assert [seg.events for seg in again.segments] == [[e.as_dict() for e in r.events] for r in (first, second)]
    assert again.matches_live is True
    assert [(e.kind, e.t_start) for e in again.events] == [(e.kind, e.t_start) for r in (first, second) for e in r.events]
    assert [seg.t_offset for seg in again.segments] == [0.0, 0.0]  # the device clock went on: one time line as it is
    assert again.stats["lost_samples"] == 0


# ------------------------------------------------------------------ disk full / read-only
def test_too_little_free_space_is_a_clear_error_before_the_session_starts(tmp_path):
    with pytest.raises(RecordingError, match="MB free") as e:
        RecordingWriter(tmp_path / "x.spinrec", {}, min_free_bytes=1 << 62)
    assert "choose another --out" in str(e.value)
    assert os.listdir(tmp_path) == []


def _tiny_tmpfs(path):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
def test_disk_full_mid_session_stops_recording_cleanly_and_monitoring_goes_on(tmp_path, how, monkeypatch):
    s = short_session()
    frames = list(zip(s.frames, s.frame_times.tolist()))
    d = tmp_path / "disk"
    mounted = how == "tmpfs" and _tiny_tmpfs(d)
    if how == "tmpfs" and not mounted:
        pytest.skip("cannot mount a tmpfs here (the injected case covers ENOSPC)")
    if how == "injected":
        d.mkdir()
    try:
        p = d / "full.spinrec"
        rec = RecordingWriter(p, header_for(pipeline().settings, "sim"), min_free_bytes=0)
        if how == "injected":
            real = rec._f.write
            budget = {"n": 100}

            def write(data):
                budget["n"] -= 1
                if budget["n"] < 0:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real(data)

            monkeypatch.setattr(rec, "_f", type("F", (), {"write": staticmethod(write), "fileno": rec._f.fileno, "close": rec._f.close, "closed": property(lambda self: real.__self__.closed)})())
        messages = []
        result, pl = live(frames, rec, on_recording_error=messages.append)
        whole, _ = live(frames)
        assert len(messages) == 1 and "disk is full" in messages[0]
        assert result.summary["recording_error"] == messages[0]
        assert [e.as_dict() for e in result.events] == [e.as_dict() for e in whole.events]  # monitoring went on
        loaded = load(p)  # what was written stays loadable, cut at a record boundary
        assert not loaded.truncated and loaded.corrupt_records == 0
        n_rx = sum(1 for r in loaded.records if r.kind == KIND_RX)
        assert 0 < n_rx < len(frames)
        assert [r.payload for r in loaded.records if r.kind == KIND_RX] == [f for f, _ in frames[:n_rx]]
    finally:
        if mounted:
            subprocess.run(["umount", str(d)], check=False)


# ------------------------------------------------------------------ device counters
def status(boot, uptime, dropped=0, fifo=0, state=P.ST_STREAMING):
    return P.encode_status(boot_count=boot, uptime_ms=uptime, samples_dropped=dropped, samples_lost_fifo=fifo, state=state)


def test_device_accounting_keeps_the_latest_counters_of_every_boot():
    acc = DeviceAccounting()
    assert not acc.on_items([P.decode(status(4, 1000, dropped=8))])
    assert not acc.on_items([P.decode(status(4, 900, dropped=3))])  # older STATUS of the same boot: ignored
    assert not acc.on_items([P.decode(status(4, 2000, dropped=16, fifo=2))])
    assert acc.on_items([P.decode(status(5, 100, dropped=0))])  # a new boot: the device restarted
    assert acc.on_items([P.decode(P.encode_ack(7, P.OP_HAPTIC))]) is False  # not a STATUS: not taken
    acc.on_items([P.decode(status(5, 3000, dropped=24))])
    assert acc.restarts == 1 and acc.samples_lost == 16 + 2 + 24 and acc.status_frames == 5
    d = acc.as_dict(host_lost_samples=45)
    assert d["samples_lost_device"] == 42 and d["samples_lost_link"] == 3 and d["boots"] == [4, 5]


def _with_statuses():
    """A short session with STATUS frames among its frames: two of boot 1, then boot 2 (a restart)."""
    s = sim.simulate([sim.SetSpec("deadlift", 1, rest_s=0.5)], seed=5, rom=False)
    frames = list(zip(s.frames, s.frame_times.tolist()))
    k = len(frames) // 2
    sts = [(status(1, 1000, dropped=2), frames[0][1]), (status(1, 5000, dropped=7, fifo=1), frames[k][1]),
           (status(2, 200, dropped=3), frames[-1][1])]
    return frames[:1] + sts[:1] + frames[1:k] + sts[1:2] + frames[k:] + sts[2:], [f for f, _ in sts]


def _counting_decodes(monkeypatch):
    """proto.decode counted per frame type (every caller looks it up on the module)."""
    calls: dict[int, int] = {}
    real = P.decode

    def decode(frame):
        calls[frame[1]] = calls.get(frame[1], 0) + 1
        return real(frame)

    monkeypatch.setattr(P, "decode", decode)
    return calls


def test_each_status_frame_is_decoded_once_and_the_device_counters_are_as_before(tmp_path, monkeypatch):
    """DeviceAccounting takes the STATUS the pipeline's decoder decoded (it
    used to decode each one a second time): live, replay frame by frame and
    replay in long blocks each decode a STATUS once, and the counters are
    those of taking each STATUS in order."""
    items, sts = _with_statuses()
    ref = DeviceAccounting()
    for f in sts:
        ref.on_status(P.decode(f))
    p = tmp_path / "st.spinrec"
    calls = _counting_decodes(monkeypatch)
    result, pl = live(items, RecordingWriter(p, header_for(pl_settings(), "sim")))
    assert calls[P.T_STATUS] == len(sts)
    want = ref.as_dict(pl.decoder.stats.lost_samples)
    assert result.summary["device"] == want and want["restarts"] == 1 and want["samples_lost_device"] == 7 + 1 + 3
    rec = load(p)
    assert len(rec.meta_of("device_restart")) == 1
    for how in ({}, {"on_frame": lambda *a: None}):  # in long blocks; frame by frame
        calls.clear()
        again = replay(rec, **how)
        assert calls[P.T_STATUS] == len(sts), how
        assert again.summary["device"] == want, how


# ------------------------------------------------------------------ wrap-arounds
def test_sequence_and_clock_wrap_inside_a_session_lose_nothing():
    rate = 200
    s = short_session(rate_hz=rate, seq_start=2**32 - 1500, time_start_us=2**32 - 4_000_000)
    frames = list(zip(s.frames, s.frame_times.tolist()))
    raw = [P.decode(f) for f, _ in frames]
    assert raw[0].seq > raw[-1].seq and raw[0].t_us > raw[-1].t_us  # both wrapped
    pl = pipeline()
    seqs, ts = [], []
    for f, t in frames:
        for blk in pl.decoder.feed(f, t):
            seqs.append(blk.seq)
            ts.append(blk.t)
    seq, t = np.concatenate(seqs), np.concatenate(ts)
    st = pl.decoder.stats
    assert st.lost_samples == 0 and st.duplicate_samples == 0 and st.restarts == 0
    assert seq[0] == 2**32 - 1500 and np.all(np.diff(seq) == 1) and seq[-1] > 2**32
    assert np.allclose(np.diff(t), 1.0 / rate) and t[-1] > 2**32 / 1e6


# ------------------------------------------------------------------ brown-out
def test_a_wearable_that_restarts_mid_set_continues_the_same_recording(tmp_path):
    """Boot 1 streams, browns out, boot 2 starts again from seq 0 and clock 0:
    one recording, the sample index and time continue, the restart is
    noticed from STATUS (boot counter) and from the clock, and recorded."""
    a = short_session(seq_start=50_000, time_start_us=600_000_000)
    b = short_session()
    fa = list(zip(a.frames, a.frame_times.tolist()))
    t_gap = fa[-1][1] + 2.0  # 2 s without frames while it reboots
    fb = [(f, t + t_gap - b.frame_times[0]) for f, t in zip(b.frames, b.frame_times.tolist())]
    items = [(status(1, 60_000), fa[0][1])] + fa + [(status(2, 300), t_gap - 0.1)] + fb
    p = tmp_path / "brownout.spinrec"
    restarts = []
    result, pl = live(items, RecordingWriter(p, header_for(pl_settings(), "sim")), on_device_restart=restarts.append)
    st = pl.decoder.stats
    assert restarts == [2] and st.restarts == 1 and st.lost_samples == 0
    assert st.samples == sum(P.decode(f).count for f in a.frames + b.frames)  # every sample of both boots, once
    rec = load(p)
    assert len(rec.segments) == 1 and len(rec.meta_of("device_restart")) == 1
    assert result.summary["device"]["restarts"] == 1
    again = replay(rec)
    assert again.stats["restarts"] == 1 and again.stats["samples"] == st.samples


def pl_settings():
    return pipeline().settings


class FakeLink(Transport):
    """request_status answers from a script; every command is logged."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.sent = []

    can_request_status = True

    async def connect(self, timeout=10.0):
        pass

    def items(self):
        raise NotImplementedError

    async def close(self):
        pass

    async def send(self, frame, timeout=2.0):
        self.sent.append(P.OPCODE_NAMES[P.decode(frame).opcode])
        return 0.0

    async def read_status(self, counter=None, timeout=2.0):
        return P.decode(self.statuses.pop(0))

    async def request_status(self, counter, timeout=None):
        self.sent.append("GET_STATUS")
        return P.decode(self.statuses.pop(0))


def test_link_setup_notices_a_restart_on_a_link_that_stays_up_and_sets_the_device_up_again():
    pl = pipeline()
    setup = LinkSetup(pl, rate_hz=200)
    link = FakeLink([status(7, 10_000), status(7, 12_000), status(8, 500, state=0)])

    async def main():
        await setup(link)  # connect: STATUS, SET_GUARD, SET_RATE (device at 100 Hz), START
        assert link.sent == ["SET_GUARD", "SET_RATE", "START"]
        await setup.poll_status(link)  # same boot, streaming: nothing to do
        assert link.sent[-1] == "GET_STATUS" and setup.device_restarts == 0
        await setup.poll_status(link)  # boot 8, not streaming: set up again
        assert setup.device_restarts == 1
        assert link.sent[-4:] == ["GET_STATUS", "SET_GUARD", "SET_RATE", "START"]

    asyncio.run(asyncio.wait_for(main(), 5.0))


# ------------------------------------------------------------------ bit flips (issue 12)
def test_bitflip_campaign_a_flip_costs_at_most_the_record_it_hits(tmp_path, capsys):
    """A short run of ``python -m tests.campaigns.bitflip`` (docs/reliability.md
    gives the full figures): a fresh format-2 recording of the simulated
    deadlift set, 150 random single-bit flips."""
    from campaigns import bitflip

    path = bitflip.write_sample(tmp_path / "dl.spinrec")
    res = bitflip.run(path, 150, seed=4)
    assert res["format"] == 2 and res["flips"] == 150
    assert bitflip.ok(res), res
    assert res["max_records_lost"] == 1 and res["by_cost"].get("1", 0) > 100  # flips in records do cost their record
    assert set(res["by_cost"]) <= {"0", "1"} and res["unloadable"] == 0
