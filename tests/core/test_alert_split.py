"""The split between the wearable's immediate buzz and the host's confirmed
alert (issue 13): while a set is on, `spinemon live` arms the wearable's
guard with the host's limits (GUARD_ALWAYS); a frame flagged
SF_GUARD_BUZZED in the excursion the host then confirms makes the host's
alert a record only (no HAPTIC: one buzz per fault)."""

from __future__ import annotations

import asyncio

import spinemon_protocol as P
from spinemon.io import sim
from spinemon.core.alerts import BUZZED_BY_DEVICE, BUZZED_BY_HOST
from spinemon.core.detect import OVER_FLEXION
from spinemon.io.device_link import guard_args, LinkSetup
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.app.session import run_live
from spinemon.io.transport import SimTransport

SETTINGS = PipelineSettings(exercise="deadlift")


def session():
    return sim.simulate([sim.SetSpec("deadlift", 4, {3: "rounding"}, rest_s=10.0, walk_during_rest=True), sim.SetSpec("deadlift", 3)], seed=4)


def host_only(s) -> Pipeline:
    p = Pipeline(SETTINGS)
    for f, t in zip(s.frames, s.frame_times.tolist()):
        p.on_frame(f, t)
    return p


def with_flag(frame: bytes, flag: int) -> bytes:
    f = P.decode(frame)
    return P.encode_samples(f.seq, f.t_us, f.period_us, f.mask, f.ranges, f.flags | flag, f.count, f.block)


def frame_holding(s, seq: int) -> int:
    for i, fr in enumerate(s.frames):
        f = P.decode(fr)
        if f.seq <= seq < f.seq + f.count:
            return i
    raise AssertionError(seq)


def test_a_device_buzz_in_the_excursion_makes_the_hosts_alert_a_record_without_a_command():
    s = session()
    base = host_only(s)
    rounding = [a for a in base.alerts if a.event.kind == OVER_FLEXION]
    assert len(rounding) == 1 and all(a.buzzed_by == BUZZED_BY_HOST and a.command is not None for a in base.alerts)
    ev = rounding[0].event
    # the guard confirmed a few samples before the host (its frame is flagged)
    k = frame_holding(s, ev.seq_alert - 2)
    frames = list(s.frames)
    frames[k] = with_flag(frames[k], P.SF_GUARD_BUZZED)
    transport = SimTransport(list(zip(frames, s.frame_times.tolist())), speed=0)
    pipeline = Pipeline(SETTINGS)

    async def main():
        await transport.connect()
        return await run_live(transport, pipeline)

    result = asyncio.run(main())
    assert [a.event.as_dict() for a in result.alerts] == [a.event.as_dict() for a in base.alerts]  # the same events, recorded
    device = [a for a in result.alerts if a.buzzed_by == BUZZED_BY_DEVICE]
    assert [a.event.t_start for a in device] == [ev.t_start]
    assert device[0].command is None and device[0].counter is None and device[0].t_sent_host is None
    assert device[0].as_dict()["buzzed_by"] == "device"
    # no HAPTIC for it: the wearable got one command per other alert
    assert len(transport.motor.haptics) == len(base.alerts) - 1


def test_a_device_buzz_in_an_earlier_excursion_does_not_cover_the_hosts_alert():
    s = session()
    base = host_only(s)
    ev = next(a.event for a in base.alerts if a.event.kind == OVER_FLEXION)
    # a buzz 3 s before the rounding rep: the angle was back inside the limits since
    t_flag = ev.t_start - 3.0
    k = next(i for i, fr in enumerate(s.frames) if P.decode(fr).t_us / 1e6 >= t_flag)
    frames = list(s.frames)
    frames[k] = with_flag(frames[k], P.SF_GUARD_BUZZED)
    p = Pipeline(SETTINGS)
    for f, t in zip(frames, s.frame_times.tolist()):
        p.on_frame(f, t)
    assert [a.buzzed_by for a in p.alerts] == [BUZZED_BY_HOST] * len(base.alerts)


class CommandLog:
    """A transport that takes commands and keeps them (update_guard only sends)."""

    connected = True

    def __init__(self) -> None:
        self.sent: list[P.Command] = []

    async def send(self, frame: bytes, timeout: float = 2.0) -> float:
        self.sent.append(P.decode_command(frame))
        return 0.0


def test_link_setup_arms_the_wearables_guard_with_the_limits_while_a_set_is_on():
    s = session()
    pipeline = Pipeline(SETTINGS)
    setup = LinkSetup(pipeline)  # the session's guard mode: GUARD_WHEN_LINK_DOWN
    log = CommandLog()
    modes: list[tuple[float, int]] = []  # (device time, mode sent)
    watching: list[tuple[float, bool]] = []

    async def main():
        for f, t in zip(s.frames, s.frame_times.tolist()):
            res = pipeline.on_frame(f, t)
            if res.t is not None and len(res.t):
                watching.append((float(res.t[-1]), pipeline.watching))
            if setup.needs_update():
                n = len(log.sent)
                await setup.update_guard(log)
                modes.extend([(float(res.t[-1]) if res.t is not None and len(res.t) else t, c.args[2]) for c in log.sent[n:] if c.opcode == P.OP_SET_GUARD])

    asyncio.run(main())
    sent = [c.args for c in log.sent if c.opcode == P.OP_SET_GUARD]
    assert all(x != y for x, y in zip(sent, sent[1:])), sent  # sent on a change only
    assert modes[0][1] == P.GUARD_WHEN_LINK_DOWN
    # armed at the start of each set (the limits are watched on every monitored
    # sample but while walking; the simulated lifter does not press Enter), and
    # disarmed while the lifter walks between the sets
    def mode_at(t):
        return [m for tt, m in modes if tt <= t][-1]

    for st in s.sets:
        assert mode_at(st.t_start + 0.1) == P.GUARD_ALWAYS, (st.t_start, modes)
    t_end_1 = s.sets[0].t_end
    walks = [(a, b) for kind, a, b in s.activities if kind == "walk" and t_end_1 < a < s.sets[1].t_start]
    assert walks and any(walks[0][0] < t < s.sets[1].t_start and m == P.GUARD_WHEN_LINK_DOWN for t, m in modes), modes
    # armed before the rounding rep's alert, with the limits the host judges it by
    ev = next(e for e in pipeline.events if e.kind == OVER_FLEXION)
    t_armed = max(t for t, m in modes if m == P.GUARD_ALWAYS and t < ev.t_alert)
    assert ev.t_start - t_armed > 1.0
    last_always = next(c for c in reversed(log.sent) if c.opcode == P.OP_SET_GUARD and c.args[2] == P.GUARD_ALWAYS)
    assert last_always.args[:2] == guard_args(pipeline.limits, P.GUARD_ALWAYS)[:2]
    # the mode follows the pipeline's own notion of "limits watched now"
    checked = 0
    for t, m in modes[1:]:  # modes[0]: the first SET_GUARD, before any angle
        w = [x for tt, x in watching if tt <= t][-1]
        assert w == (m == P.GUARD_ALWAYS), (t, m)
        checked += 1
    assert checked >= 4


def test_a_session_with_the_guard_off_keeps_it_off_in_sets():
    pipeline = Pipeline(SETTINGS)
    setup = LinkSetup(pipeline, guard_mode=P.GUARD_OFF)
    s = session()
    for f, t in zip(s.frames, s.frame_times.tolist()):
        pipeline.on_frame(f, t)
        if pipeline.watching:
            break
    assert pipeline.watching and setup.guard_mode_now() == P.GUARD_OFF


def test_the_wearables_guard_armed_in_sets_buzzes_on_the_faults_and_nowhere_else_in_the_simulated_sessions():
    """firmware/guard.py (under CPython) on the raw samples of the simulated
    sessions the bench counts false alerts on, armed as spinemon live arms it
    (host neutral; host limits with GUARD_ALWAYS while the host watches)."""
    from tests.bench.false_alerts import FAULT_MARGIN_S, DeviceGuard, _settings, _sim_sessions

    for ex, _seed, s in _sim_sessions(quick=True):
        pipeline = Pipeline(_settings(ex, "quick"))
        device = DeviceGuard()
        for f, t in zip(s.frames, s.frame_times.tolist()):
            pipeline.on_frame(f, t)
            device.on_frame(f, pipeline)
        windows = [(r.t_start - FAULT_MARGIN_S, r.t_end + FAULT_MARGIN_S) for r in s.reps if r.fault]
        assert windows
        assert all(any(a <= t <= b for a, b in windows) for t in device.fires), (ex, device.fires, windows)
        assert all(sum(a <= t <= b for t in device.fires) == 1 for a, b in windows), (ex, device.fires, windows)  # one buzz per fault
        # and within a few samples of the host's own confirmation
        host = [a.t_trigger_device for a in pipeline.alerts if a.event.kind in ("over_flexion", "over_extension")]
        assert len(host) == len(device.fires) and all(abs(h - d) < 0.1 for h, d in zip(host, device.fires)), (ex, host, device.fires)


def test_recordings_made_before_the_quick_confirmation_replay_without_it():
    old = PipelineSettings.from_dict({"exercise": "deadlift", "detector": {"hysteresis_deg": 3.0, "min_duration_s": 0.08, "refractory_s": 1.5}})
    assert old.detector.quick_confirm is False
    assert PipelineSettings.from_dict(PipelineSettings().as_dict()).detector.quick_confirm is True
    assert PipelineSettings.from_dict({}).detector.quick_confirm is True  # no detector settings at all: today's defaults
