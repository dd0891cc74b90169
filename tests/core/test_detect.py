"""Event detection: hysteresis, minimum duration, refractory period, limits from calibration."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spinemon.core.detect import (
    OVER_EXTENSION,
    OVER_FLEXION,
    TWIST,
    DetectorSettings,
    EventDetector,
    Limits,
    RangeOfMotion,
    profile,
)
from spinemon.errors import ConfigError

RATE = 100.0


def run(signal, limits=Limits(30.0, -15.0, 20.0, None), blocks=None, twist=None, **kw):
    det = EventDetector(limits, DetectorSettings(**kw))
    n = len(signal)
    t = np.arange(n) / RATE
    seq = np.arange(n)
    tw = np.zeros(n) if twist is None else twist
    alerts = []
    cuts = [0] + (blocks or []) + [n]
    for a, b in zip(cuts[:-1], cuts[1:]):
        out = det.update(t[a:b], seq[a:b], signal[a:b], np.zeros(b - a), tw[a:b])
        alerts += out.alerts
    det.finish(t[-1])
    return det.events, alerts


def bump(n, at, width, peak):
    x = np.arange(n)
    return peak * np.exp(-0.5 * ((x - at) / width) ** 2)


def test_one_bad_rep_gives_one_alert_with_peak_and_times():
    sig = bump(600, 300, 30, 40.0)
    events, alerts = run(sig, quick_confirm=False)
    assert len(events) == 1 and alerts == events
    e = events[0]
    assert e.kind == OVER_FLEXION
    assert e.peak_deg == pytest.approx(40.0, abs=0.01)
    assert e.t_start < 3.0 < e.t_end
    assert e.t_alert == pytest.approx(e.t_start + 0.08, abs=0.011)


def ramp_through(limit, rate_deg_s, past_s, n=400, at=200):
    """Rises through `limit` at `rate_deg_s` (the first sample past at index
    `at`), stays past it for `past_s`, then drops back to 0."""
    t = np.arange(n) / RATE
    x = limit + 0.1 + rate_deg_s * (t - at / RATE)
    x = np.clip(x, 0.0, None)
    x[at + int(round(past_s * RATE)):] = 0.0
    return x


def test_quick_confirmation_fires_sooner_the_faster_the_crossing():
    """time needed = min_duration * ref_rate / rate, ref_rate = hysteresis /
    min_duration (37.5 deg/s): one hysteresis band (3 deg) deeper than the
    first sample past, never before two sample periods after it."""
    delays = {}
    for rate in (20.0, 45.0, 120.0, 600.0):  # none where 3 deg falls on a sample exactly
        events, _ = run(ramp_through(30.0, rate, 0.5))
        assert len(events) == 1, rate
        e = events[0]
        delays[rate] = e.t_alert - e.t_start
        expected = min(0.08, max(0.02, 3.0 / rate))  # hold * ref_rate / rate, bounded
        samples = np.ceil(expected * RATE - 1e-9) / RATE
        assert delays[rate] == pytest.approx(samples, abs=1e-9), (rate, delays[rate])
    assert delays[20.0] == pytest.approx(0.08)  # slower than the reference rate: the whole hold
    assert delays[600.0] == pytest.approx(0.02)  # the floor: two sample periods
    assert delays[20.0] > delays[45.0] > delays[120.0] > delays[600.0]
    # without the quick rule every one needs the whole minimum duration
    for rate in delays:
        e = run(ramp_through(30.0, rate, 0.5), quick_confirm=False)[0][0]
        assert e.t_alert - e.t_start == pytest.approx(0.08)


def test_a_brief_slow_crossing_is_not_an_event_and_a_glitch_that_sits_needs_the_whole_hold():
    # slow (10 deg/s) and over in 70 ms: less than the minimum duration, never 3 deg deeper
    assert run(ramp_through(30.0, 10.0, 0.07))[0] == []
    # a step 15 deg past the limit that sits there for 50 ms: it does not go deeper (rate 0)
    sig = np.zeros(300)
    sig[100:105] = 45.0
    assert run(sig)[0] == []
    # the same crossing at 150 deg/s, also over in 70 ms: a fast rounding, confirmed
    events, _ = run(ramp_through(30.0, 150.0, 0.07))
    assert len(events) == 1 and events[0].t_alert - events[0].t_start == pytest.approx(0.02)


def test_quick_confirmation_applies_to_extension_and_twist_not_to_swing():
    ext = run(-ramp_through(15.0, 150.0, 0.5))[0]
    assert [e.kind for e in ext] == [OVER_EXTENSION] and ext[0].t_alert - ext[0].t_start == pytest.approx(0.02)
    tw = run(np.zeros(400), twist=ramp_through(20.0, 150.0, 0.5))[0]
    assert [e.kind for e in tw] == [TWIST] and tw[0].t_alert - tw[0].t_start == pytest.approx(0.02)
    det = EventDetector(Limits(None, None, swing_deg_s=60.0), DetectorSettings())
    n = 400
    t = np.arange(n) / RATE
    rate_signal = ramp_through(60.0, 3000.0, 0.5)  # a swing rate rising fast: its own hold
    det.update(t, np.arange(n), np.zeros(n), np.zeros(n), np.zeros(n), rate_signal)
    assert det.events[0].t_alert - det.events[0].t_start == pytest.approx(0.08)


def test_extension_and_twist():
    n = 800
    events, _ = run(-bump(n, 200, 20, 25.0), twist=bump(n, 600, 20, 30.0))
    assert [e.kind for e in events] == [OVER_EXTENSION, TWIST]
    assert events[0].peak_deg == pytest.approx(-25.0, abs=0.01)


def test_short_spike_is_not_an_event():
    sig = np.zeros(300)
    sig[100:105] = 45.0  # 50 ms
    assert run(sig)[0] == []


def test_dithering_around_the_limit_gives_one_event():
    # noise around the limit: hysteresis keeps it one event
    rng = np.random.default_rng(0)
    sig = np.concatenate([np.zeros(100), 30.5 + rng.normal(0, 1.0, 300), np.zeros(100)])
    events, _ = run(sig)
    assert len(events) == 1


def test_refractory_merges_a_quick_second_crossing():
    sig = bump(1000, 300, 20, 40.0) + bump(1000, 400, 20, 42.0)  # 1 s apart
    assert len(run(sig)[0]) == 1
    assert len(run(sig, refractory_s=0.2)[0]) == 2
    far = bump(1000, 200, 20, 40.0) + bump(1000, 700, 20, 42.0)  # 5 s apart
    assert len(run(far)[0]) == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 999), max_size=20, unique=True), st.integers(0, 2**31))
def test_block_split_invariance(cuts, seed):
    rng = np.random.default_rng(seed)
    sig = np.zeros(1000)
    for c in rng.integers(50, 950, 4):
        sig += bump(1000, c, rng.uniform(5, 40), rng.uniform(-30, 50))
    ref, _ = run(sig)
    got, _ = run(sig, blocks=sorted(cuts))
    assert [e.as_dict() for e in got] == [e.as_dict() for e in ref]



#: limits a run may have: the hard limits, a creep limit under the hard one, a limit turned off
RUN_LIMITS = [
    Limits(30.0, -15.0, 20.0, 12.0, 80.0),
    Limits(30.0, -15.0, 20.0, 12.0, 80.0, creep_deg=22.0),
    Limits(25.0, -10.0, None, 12.0, None, creep_deg=18.0),
    Limits(None, -15.0, 20.0, None, 80.0),
    Limits(35.0, None, 15.0, 12.0, None, lean_deg=28.0),
]


def _out(det, outs):
    alerts = [(e.kind, e.t_alert, e.seq_alert) for o in outs for e in o.alerts]
    finished = [(e.kind, e.t_start, e.t_end) for o in outs for e in o.finished]
    return [e.as_dict() for e in det.events], alerts, finished, det.state()["watches"]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 599), st.integers(0, len(RUN_LIMITS) - 1), st.integers(0, 3)), max_size=12),
    st.integers(0, 2**31),
    st.lists(st.integers(1, 599), max_size=4),
)
def test_runs_with_their_own_limits_and_context_are_watched_as_run_by_run(runs, seed, blocks):
    """update_runs (a block cut into runs, each with its limits and the set
    and rep stamped on its events) gives what set_limits, context and update
    give run by run: the same events, alerts and finished events in the
    same order, and the same state after; for any split into blocks too."""
    n = 600
    rng = np.random.default_rng(seed)
    t, seq = np.arange(n) / RATE, np.arange(n)
    sig = [np.zeros(n) for _ in range(4)]
    for x, scale in zip(sig, (45.0, 20.0, 25.0, 120.0)):
        for c in rng.integers(20, 580, 5):
            x += bump(n, c, rng.uniform(3, 30), scale * rng.uniform(-1.2, 1.2))
    starts = sorted({0, *(a for a, _, _ in runs)})
    pick = {a: (k, c) for a, k, c in runs}
    plan = [(a, b, RUN_LIMITS[pick.get(a, (0, 0))[0]], {"set": 1, "rep": pick.get(a, (0, 0))[1], "exercise": "squat"}) for a, b in zip(starts, [*starts[1:], n])]
    ref = EventDetector(RUN_LIMITS[0])
    ref_outs = []
    for a, b, lim, ctx in plan:
        ref.set_limits(lim)
        ref.context = dict(ctx)
        ref_outs.append(ref.update(t[a:b], seq[a:b], *(x[a:b] for x in sig)))
    ref.finish(t[-1])
    det = EventDetector(RUN_LIMITS[0])
    outs = []
    cuts = sorted({0, n, *blocks})
    for a, b in zip(cuts[:-1], cuts[1:]):  # blocks cut anywhere, each with the runs inside it
        inside = [(min(r_b, b) - a, lim, ctx) for r_a, r_b, lim, ctx in plan if r_a < b and r_b > a]
        outs.append(det.update_runs(t[a:b], seq[a:b], tuple(x[a:b] for x in sig), inside))
    det.finish(t[-1])
    events, alerts, finished, state = _out(det, outs)
    want = _out(ref, ref_outs)
    assert (events, alerts, state) == (want[0], want[1], want[3])
    if len(cuts) == 2:  # (finished events are in time order within each block's call)
        assert finished == want[2]

def test_limits_follow_the_lifters_range_of_motion():
    small = profile("deadlift").limits(RangeOfMotion(40.0, -20.0))
    large = profile("deadlift").limits(RangeOfMotion(70.0, -30.0))
    assert small.flexion_deg == pytest.approx(20.0)
    assert large.flexion_deg == pytest.approx(35.0)
    assert large.extension_deg < small.extension_deg < 0
    # overhead work watches extension more tightly than hinges do
    rom = RangeOfMotion(60.0, -25.0)
    assert profile("overhead_press").limits(rom).extension_deg > profile("deadlift").limits(rom).extension_deg


def test_bad_profile_and_rom_are_refused():
    with pytest.raises(ConfigError, match="unknown exercise"):
        profile("zumba")
    with pytest.raises(ConfigError):
        RangeOfMotion(200.0, -20.0)
    with pytest.raises(ConfigError):
        DetectorSettings(hysteresis_deg=-1)
