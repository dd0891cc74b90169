"""Every stage of the chain gives the same output for any split of its input
(issue 13), tested stage by stage.

How: a session runs through the product's :class:`Pipeline` once; a spy
on one stage records every call the pipeline made to it (its inputs,
snapshotted). The same calls are then made on a fresh stage with each
``update`` cut at random samples (hypothesis draws the cuts), and the
stage's output sample by sample, its records and its final state must be
the same as in the uncut run. The calls between updates (a label, a new
neutral, the start of a piece) stay where the pipeline made them.

The whole chain under random splits is tests/core/test_split_invariance.py; the
fusion core, angles, detector, reps, drift and clock have their own split
tests beside their modules. Sessions: simulated (a range-of-motion sweep,
labelled and unlabelled sets, faults, one IMU, a hold) and a real walk
(gait-l5, Voisard et al., IPOL, GNU AGPL 3.0; credit in README.md).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from spinemon.core.alerts import AlertPolicy
from spinemon.core.angles import AngleStage, LumbarAngles
from spinemon.core.calibration import Calibration, CalibrationSettings
from spinemon.core.drift import DriftMonitor
from spinemon.core.gravity import Fused, GravityStage
from spinemon.core.intake import Intake
from spinemon.core.phases import PHASE_MONITOR, SessionPhases
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.core.segment import Segmenter, Segments
from spinemon.core.stage import Stage
from spinemon.core.stream import SampleBlock
from spinemon.core.watch import LimitWatch

from test_split_invariance import import_gait, items_of, sessions  # noqa: F401  (the simulated sessions fixture)

SPLIT = settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate], suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ---------------------------------------------------------------------------
# recording what the pipeline asked of a stage
# ---------------------------------------------------------------------------
def spy(stage, methods):
    """Wrap ``methods`` of ``stage``: each call is logged as (name, args snapshot)."""
    log = []
    for name in methods:
        real = getattr(stage, name)

        def wrapped(*args, _real=real, _name=name, **kw):
            log.append((_name, copy.deepcopy(args), copy.deepcopy(kw)))
            return _real(*args, **kw)

        setattr(stage, name, wrapped)
    return log


def run_pipeline(rec, ps: PipelineSettings, stage_name: str, methods) -> tuple[Pipeline, list]:
    """The recording through the product's pipeline in one block per label
    stretch (labels where they came); returns it and the spied calls."""
    p = Pipeline(ps)
    log = spy(getattr(p, stage_name), methods)
    pending: list = []

    def flush():
        if pending:
            block = SampleBlock.concatenate([b for b, _ in pending])
            p.on_block(block, np.concatenate([np.full(len(b), t) for b, t in pending]))
            pending.clear()

    for it in items_of(rec, p.decoder):
        if it[0] == "label":
            flush()
            p.on_label(it[1])
        else:
            _, block, t_host = it
            if pending and (block.sensors != pending[-1][0].sensors or block.rate_hz != pending[-1][0].rate_hz or block.t[0] <= pending[-1][0].t[-1]):
                flush()
            pending.append((block, t_host))
    flush()
    p.finish()
    return p, log


def cut_points(n: int, cuts: set[int]) -> list[tuple[int, int]]:
    """[0, n) cut after each sample count in ``cuts`` (relative to this call)."""
    edges = sorted({0, n, *(c for c in cuts if 0 < c < n)})
    return list(zip(edges[:-1], edges[1:]))


def _slice(x, a, b):
    if isinstance(x, (Fused, LumbarAngles, SampleBlock)):
        return x.slice(a, b)
    if isinstance(x, np.ndarray) and x.ndim >= 1:
        return x[a:b]
    return x  # a calibration, settings, offsets: the same for each piece


def replay_calls(stage, log, sizes, cuts: set[int]):
    """Make the logged calls on ``stage``; each call named in ``sizes``
    (name -> how many samples its input has) is cut at the global sample
    counts in ``cuts``. Returns [(name, global start, output)] per call made."""
    out = []
    seen = 0
    for name, args, kw in log:
        if name not in sizes:
            out.append((name, seen, getattr(stage, name)(*copy.deepcopy(args), **copy.deepcopy(kw))))
            continue
        n = sizes[name](args)
        for a, b in cut_points(n, {c - seen for c in cuts}):
            out.append((name, seen + a, getattr(stage, name)(*(_slice(x, a, b) for x in copy.deepcopy(args)), **kw)))
        seen += n
    return out


def gait_session(gait_dir, tmp_path, trial=0):
    """A real walk imported with `spinemon import`, watched as a curl with tight limits, also between sets."""
    rec = import_gait(gait_dir, tmp_path, trial)
    # tight limits, so that walking gives the detector something to find (a curl's swing, a few degrees of lean)
    tight = {"curl": {"swing_deg_s": 30.0, "flexion_deg": 6.0, "extension_deg": -6.0}}
    return rec, replace(PipelineSettings.from_dict(rec.header["settings"]), exercise="curl", monitor_between_sets=True, limit_overrides=tight)


@pytest.fixture(scope="module")
def real_walk(gait_dir, tmp_path_factory):
    return gait_session(gait_dir, tmp_path_factory.mktemp("gait"))


def draw_cuts(data, n: int) -> set[int]:
    cuts = set(data.draw(st.lists(st.integers(1, n), max_size=30)))
    if data.draw(st.booleans()):
        cuts |= set(range(1, n, data.draw(st.integers(1, 40))))  # many small blocks
    return cuts


def pick(data, sessions, real_walk):
    """A simulated session, or the real walk watched everywhere ("real-walk")
    or only inside sets ("real-walk-between": the walk is all between sets, so
    what would have fired goes to the shadow detector)."""
    name = data.draw(st.sampled_from(sorted(sessions) + ["real-walk", "real-walk-between"]))
    if name == "real-walk-between":
        return name, real_walk[0], replace(real_walk[1], monitor_between_sets=False)
    return (name, *(real_walk if name == "real-walk" else sessions[name]))


# ---------------------------------------------------------------------------
# intake
# ---------------------------------------------------------------------------
def _intake_output(calls):
    t = [o.t for name, _, o in calls if name == "update" and o is not None]
    return np.concatenate(t) if t else np.empty(0)


def _block(t0: float, n: int, rate: float, sensors=("upper", "lower")) -> SampleBlock:
    rng = np.random.default_rng(int(t0 * 10) + n)
    acc = {s: rng.normal(0, 0.1, (n, 3)) + [9.81, 0, 0] for s in sensors}
    gyr = {s: rng.normal(0, 0.01, (n, 3)) for s in sensors}
    return SampleBlock(seq=np.arange(n, dtype=np.int64), t=t0 + np.arange(n) / rate, acc=acc, gyr=gyr,
                       device_angle_deg=np.full(n, np.nan), flags=np.zeros(n, dtype=np.uint8), rate_hz=rate)


@SPLIT
@given(data=st.data())
def test_intake_gives_the_same_samples_counts_and_layout_for_any_split(data):
    """Out-of-range rates and frames without the upper IMU are counted and
    skipped, layout changes recorded, and a clock that steps back shifted:
    the same for any cut of each block."""
    stream = [_block(0.0, 40, 104.0), _block(0.4, 10, 0.5), _block(0.5, 30, 104.0, ("lower",)), _block(0.8, 30, 104.0, ("upper",)),
              _block(0.7, 25, 104.0, ("upper",)), _block(1.2, 50, 52.0)]  # the fifth steps back in time
    log = [("update", (b,), {}) for b in stream]
    whole = replay_calls(Intake(), log, {}, set())
    cut = Intake()
    got = replay_calls(cut, log, {"update": lambda a: len(a[0])}, draw_cuts(data, sum(map(len, stream))))
    ref = Intake()
    replay_calls(ref, log, {}, set())
    assert np.array_equal(_intake_output(got), _intake_output(whole))
    assert cut.skipped_samples == ref.skipped_samples == {"rate out of range": 10, "upper sensor missing": 30}
    assert cut.layout_changes == ref.layout_changes and [c["sensors"] for c in ref.layout_changes] == ["lower", "upper", "upper+lower"]  # the 0.5 Hz frame is skipped before its layout counts
    assert cut.clock.backsteps == ref.clock.backsteps == 1


def test_intake_names_the_sensors_that_left():
    it = Intake()
    it.update(_block(0.0, 5, 104.0))
    assert it.gone == ()
    it.update(_block(0.1, 5, 104.0, ("upper",)))
    assert it.gone == ("lower",)
    it.update(_block(0.2, 5, 104.0, ("upper",)))
    assert it.gone == ()


# ---------------------------------------------------------------------------
# fusion stage
# ---------------------------------------------------------------------------
def _fused_out(calls):
    parts = [o for name, _, o in calls if name == "update"]
    sensors = sorted({s for p in parts for s in p.gravity})
    return {s: np.concatenate([p.gravity[s] for p in parts if s in p.gravity]) for s in sensors}, {s: np.concatenate([p.gyr[s] for p in parts if s in p.gyr]) for s in sensors}


@SPLIT
@given(data=st.data())
def test_the_fusion_stage_gives_the_same_gravity_for_any_split(sessions, real_walk, data):
    """Gravity and debiased gyros, through a new neutral (filters restarted)
    and sensors leaving, as the pipeline called the stage."""
    name, rec, ps = pick(data, sessions, real_walk)
    _, log = run_pipeline(rec, ps, "gravity", ["update", "restart_from", "forget"])
    assert any(c[0] == "restart_from" for c in log), "the session found a neutral"
    sizes = {"update": lambda a: len(a[0])}
    n = sum(len(a[0]) for c, a, _ in log if c == "update")
    whole = _fused_out(replay_calls(GravityStage(ps.fusion), log, sizes, set()))
    cut = _fused_out(replay_calls(GravityStage(ps.fusion), log, sizes, draw_cuts(data, n)))
    for w, c in zip(whole, cut):
        assert w.keys() == c.keys()
        for s in w:
            assert np.array_equal(w[s], c[s]), (name, s)


# ---------------------------------------------------------------------------
# calibration phases
# ---------------------------------------------------------------------------
def _phases_run(block: SampleBlock, cal_settings: CalibrationSettings, fusion, cuts: set[int], data=None):
    """Neutral from the raw samples, the range sweep from the fused ones (the
    fusion stage restarted at the neutral, as the pipeline does), each cut at
    ``cuts``. With ``data``: at each cut the phases' state is taken and the
    run goes on from ``restore(state)``, into a fresh stage or into the same
    one after it looked at the next piece (thrown away)."""
    ph = SessionPhases(cal_settings)
    grav = GravityStage(fusion)
    steps = []
    i, n = 0, len(block)
    bounds = sorted({n, *(c for c in cuts if 0 < c < n)})
    for end in bounds:
        if data is not None and i > 0:
            st = ph.state()
            if data.draw(st_bool, label="fresh stage"):
                ph = SessionPhases(cal_settings)
            else:
                ph.find_neutral(block.slice(i, end))  # runs on, then rolls back
            ph.restore(st)
        while i < end:
            piece = block.slice(i, end)
            used, found = ph.find_neutral(piece)
            piece = piece.slice(0, used)
            phase = ph.phase
            fused = grav.update(piece, ph.gyro_offset)
            if found is not None:
                steps.append(("neutral", i + used - 1, found.source, np.round(found.mounting["upper"].rotation, 12).tolist()))
                ph.account(phase, piece)
                ph.neutral_found(found)
                grav.restart_from(found, block.rate_hz)
            elif phase == "calibrating-range":
                m = ph.update_range(fused)
                ph.account(phase, piece.slice(0, m))
                ph.account(ph.phase, piece.slice(m))
                if ph.phase == PHASE_MONITOR:
                    steps.append(("range", i + m - 1, None if ph.calibration.rom is None else (ph.calibration.rom.flexion_deg, ph.calibration.rom.extension_deg)))
            else:
                ph.account(phase, piece)
            i += used
    return steps, ph.time_s, ph.monitoring()


def _one_stream(rec) -> SampleBlock:
    blocks = [it[1] for it in items_of(rec) if it[0] == "samples"]
    first = blocks[0]
    same = [b for b in blocks if b.sensors == first.sensors and b.rate_hz == first.rate_hz]
    return SampleBlock.concatenate(same)


@SPLIT
@given(data=st.data())
def test_calibration_steps_end_at_the_same_sample_for_any_split(sessions, real_walk, data):
    """Neutral, the range-of-motion sweep's end and the time in each phase."""
    name, rec, ps = pick(data, sessions, real_walk)
    block = _one_stream(rec)
    whole = _phases_run(block, ps.calibration, ps.fusion, set())
    assert whole[0] and whole[0][0][0] == "neutral", name
    assert _phases_run(block, ps.calibration, ps.fusion, draw_cuts(data, len(block))) == whole


@SPLIT
@given(data=st.data())
def test_calibration_state_restored_at_any_sample_goes_on_as_if_it_never_stopped(sessions, real_walk, data):
    """The calibration phases (the calibrator's still stretch, windows and
    range sweep, the calibration in force) stopped at any sample and restored."""
    name, rec, ps = pick(data, sessions, real_walk)
    block = _one_stream(rec)
    whole = _phases_run(block, ps.calibration, ps.fusion, set())
    assert _phases_run(block, ps.calibration, ps.fusion, draw_cuts(data, len(block)), data) == whole, name


def test_the_range_sweep_is_found_in_the_simulated_session_with_one(sessions):
    rec, ps = sessions["deadlift-rom"]
    steps, time_s, mon = _phases_run(_one_stream(rec), ps.calibration, ps.fusion, set())
    assert [s[0] for s in steps] == ["neutral", "range"] and steps[1][2] is not None
    assert set(time_s) == {"calibrating-neutral", "calibrating-range", "monitoring"} and mon["calibration"] == "done"


def test_a_stored_calibration_monitors_from_the_first_sample(sessions):
    """A saved profile without a range (ROM on in the settings): nothing to
    wait for, so the first block is monitored however long it is."""
    rec, ps = sessions["deadlift-rom"]
    live = Pipeline(ps)
    for it in items_of(rec, live.decoder):
        if it[0] == "samples":
            live.on_block(it[1], it[2])
    cal = Calibration.from_dict({**live.calibration.as_dict(), "rom": None, "t_rom": None})
    stored = replace(ps, stored_calibration=cal.as_dict())
    block = _one_stream(rec)
    out = {}
    for how, size in (("frames", 8), ("one block", len(block))):
        p = Pipeline(stored)
        for a in range(0, len(block), size):
            p.on_block(block.slice(a, a + size), 0.0)
        out[how] = p.monitoring()
    assert out["frames"] == out["one block"]
    assert out["frames"]["monitored_s"] == out["frames"]["duration_s"] > 30 and out["frames"]["calibration"] == "stored"


# ---------------------------------------------------------------------------
# angles
# ---------------------------------------------------------------------------
@SPLIT
@given(data=st.data())
def test_the_angle_stage_gives_the_same_angles_for_any_split(sessions, real_walk, data):
    """Through every restart the pipeline made (new neutral, the range's heading, a layout change)."""
    name, rec, ps = pick(data, sessions, real_walk)
    _, log = run_pipeline(rec, ps, "angles", ["update", "restart", "follow_layout"])
    sizes = {"update": lambda a: len(a[0])}
    n = sum(len(a[0]) for c, a, _ in log if c == "update")

    def out(calls):
        return np.concatenate([np.vstack([o.flexion_deg, o.lateral_deg, o.twist_deg]) for c, _, o in calls if c == "update"], axis=1)

    assert np.array_equal(out(replay_calls(AngleStage(ps.twist_leak_tau_s), log, sizes, draw_cuts(data, n))), out(replay_calls(AngleStage(ps.twist_leak_tau_s), log, sizes, set())))


# ---------------------------------------------------------------------------
# segmentation
# ---------------------------------------------------------------------------
def _segmenter(ps: PipelineSettings) -> Segmenter:
    return Segmenter(ps.exercise, limit_overrides=ps.limit_overrides, monitor_between_sets=ps.monitor_between_sets, warmup_share=ps.warmup_share)


def _segments_out(calls, seg: Segmenter):
    """Per sample: armed, hold running, and the set/rep in progress; the records with the sample they became known at."""
    armed, hold, ctx, recs = [], [], [], []
    cur = None
    for name, start, o in calls:
        if name != "update":
            continue
        assert isinstance(o, Segments)
        armed.append(o.armed)
        hold.append(np.zeros(o.n, dtype=bool) if o.hold_on is None else o.hold_on)
        for i in range(o.n):
            cur = o.context_at.get(i, cur)
            ctx.append(cur)
        recs += [(start + i, r.as_dict()) for i, rs in sorted(o.records_at.items()) for r in rs]
    return (np.concatenate(armed).tolist() if armed else [], np.concatenate(hold).tolist() if hold else [], ctx, recs,
            [h.as_dict() for h in seg.holds.holds], seg.warmup.times)


@SPLIT
@given(data=st.data())
def test_segmentation_gives_the_same_sets_reps_and_holds_for_any_split(sessions, real_walk, data):
    name, rec, ps = pick(data, sessions, real_walk)
    _, log = run_pipeline(rec, ps, "segmenter", ["update", "on_label"])
    sizes = {"update": lambda a: len(a[0])}
    n = sum(len(a[0]) for c, a, _ in log if c == "update")
    a, b = _segmenter(ps), _segmenter(ps)
    whole = _segments_out(replay_calls(a, log, sizes, set()), a)
    cut = _segments_out(replay_calls(b, log, sizes, draw_cuts(data, n)), b)
    assert cut == whole, name
    assert whole[3] or whole[4] or name.startswith("real-walk"), "the session found reps or holds"


# ---------------------------------------------------------------------------
# detection and alerts
# ---------------------------------------------------------------------------
def _watch(ps: PipelineSettings) -> LimitWatch:
    return LimitWatch(ps.exercise, ps.detector, AlertPolicy(), limit_overrides=ps.limit_overrides)


_watch_runs: dict[str, tuple] = {}
_watch_piece_logs: dict[str, list] = {}


def _by_piece(log: list) -> tuple[list, list]:
    """The pipeline's calls to the watch (a run of pieces at once:
    ``update_pieces``, which calls ``begin_piece`` itself) as logged without
    those inner calls, and as the same calls piece by piece: ``begin_piece``
    and ``update`` for each piece."""
    as_made, by_piece = [], []
    inner = 0
    for entry in log:
        name, args, kw = entry
        if name == "begin_piece" and inner:
            inner -= 1  # made by update_pieces, not by the pipeline
            continue
        as_made.append(entry)
        if name != "update_pieces":
            by_piece.append(entry)
            continue
        fused, ang, cal, armed, hold_on, th, held, reasons, pieces, offset = args
        inner = len(pieces)
        for q in pieces:
            a, b = q.a - offset, q.b - offset
            by_piece.append(("begin_piece", (q.context, q.records), {}))
            by_piece.append(("update", tuple(_slice(x, a, b) for x in (fused, ang, cal, armed, hold_on, th, held, reasons)), {}))
    assert not inner
    return as_made, by_piece


def _watch_run(name: str, rec, ps: PipelineSettings) -> tuple[Pipeline, list]:
    """The pipeline and its calls to the watch piece by piece, once per
    session (the calls are replayed as copies); the calls as the pipeline
    made them are kept in ``_watch_piece_logs``."""
    if name not in _watch_runs:
        p, log = run_pipeline(rec, ps, "watch", ["update", "update_pieces", "begin_piece", "follow", "on_label"])
        _watch_piece_logs[name], by_piece = _by_piece(log)
        _watch_runs[name] = p, by_piece
    return _watch_runs[name]


def _watch_out(w: LimitWatch, calls) -> str:
    w.finish(float("nan"), [])
    alerts = [(x.event.kind, x.event.t_alert, x.event.seq_alert, x.t_rx_host, x.counter, x.buzzed_by) for x in w.alerts]
    faults = [[e.as_dict() for e in o.hold_faults] for c, _, o in calls if c == "update" and o.hold_faults]
    return json.dumps({"alerts": alerts, "events": [e.as_dict() for e in w.events], "shadow": [e.as_dict() for e in w.shadow.events],
                       "limits": w.limits.as_dict(), "faults": sum(faults, [])}, sort_keys=True, default=str)


@SPLIT
@given(data=st.data())
def test_detection_gives_the_same_events_and_alerts_for_any_split(sessions, real_walk, data):
    """The pieces the segmenter cut stay where they were (each starts with
    what became known there); hypothesis cuts them further."""
    name, rec, ps = pick(data, sessions, real_walk)
    p, log = _watch_run(name, rec, ps)
    sizes = {"update": lambda a: len(a[0])}
    n = sum(len(a[0]) for c, a, _ in log if c == "update")
    a, b = _watch(ps), _watch(ps)
    whole = _watch_out(a, replay_calls(a, log, sizes, set()))
    cut = _watch_out(b, replay_calls(b, log, sizes, draw_cuts(data, n)))
    assert cut == whole, name
    got = json.loads(whole)
    if name in ("deadlift-rom", "press-one-imu", "real-walk", "real-walk-between"):  # the planks are clean; the squats round within the default range (no sweep)
        assert got["events"] or got["shadow"], f"{name}: the session gave the detector something to find"
    assert [e["kind"] for e in got["events"]] == [e.kind for e in p.events]
    if name == "real-walk-between":
        assert got["shadow"] and not got["events"], "the walk is between sets: nothing sent, the shadow saw it"


def test_a_run_of_pieces_at_once_is_the_same_as_piece_by_piece(sessions, real_walk):
    """``update_pieces`` (a run of pieces over one pass: the limits, set and
    rep in force per piece) gives what ``begin_piece`` and ``update`` give
    piece by piece: the same alerts, events, shadow events, limits and hold
    faults, in the same order."""
    for name in ("deadlift-rom", "squat-unlabelled", "press-one-imu", "real-walk"):
        rec, ps = real_walk if name == "real-walk" else sessions[name]
        _, by_piece = _watch_run(name, rec, ps)
        as_made = _watch_piece_logs[name]
        if name != "real-walk":  # (the walk is one piece: no rep, no set)
            assert any(c == "update_pieces" and len(a[8]) > 5 for c, a, _ in as_made), "runs of many pieces were watched"
        a, b = _watch(ps), _watch(ps)
        calls = replay_calls(b, as_made, {}, set())
        runs = [c for c in calls if c[0] == "update_pieces"]
        want = json.loads(_watch_out(a, replay_calls(a, by_piece, {}, set())))
        got = json.loads(_watch_out(b, [("update", s, o) for c, s, o in runs] + [c for c in calls if c[0] != "update_pieces"]))
        assert got == want, name
        assert want["events"] or want["shadow"] or name == "squat-unlabelled", name


# ---------------------------------------------------------------------------
# state() and restore(): stopping and going on changes nothing
# ---------------------------------------------------------------------------
def replay_restoring(make, log, sizes, cuts: set[int], data, slicer=None):
    """As :func:`replay_calls`, cut at ``cuts``; at each cut the stage's
    state is taken and the run goes on from ``restore(state)``: into a fresh
    stage, or (as the pipeline's re-zero does) into the same stage after it
    ran the next piece and that output was thrown away. Returns the calls'
    outputs and the stage the run ended with."""
    stage = make()
    out = []
    seen = 0
    for name, args, kw in log:
        if name not in sizes:
            out.append((name, seen, getattr(stage, name)(*copy.deepcopy(args), **copy.deepcopy(kw))))
            continue
        n = sizes[name](args)
        for a, b in cut_points(n, {c - seen for c in cuts}):
            piece = [(slicer or _slice)(x, a, b) for x in copy.deepcopy(args)]
            if seen + a in cuts:
                st = stage.state()
                if data.draw(st_bool, label="fresh stage"):
                    stage = make()
                else:
                    getattr(stage, name)(*copy.deepcopy(piece), **kw)  # runs on, then rolls back
                stage.restore(st)
            out.append((name, seen + a, getattr(stage, name)(*piece, **kw)))
        seen += n
    return out, stage


st_bool = st.booleans()


@SPLIT
@given(data=st.data())
def test_segmentation_state_restored_at_any_sample_goes_on_as_if_it_never_stopped(sessions, real_walk, data):
    """The segmenter, with its rep segmenter, hold timer and warm-up bends."""
    name, rec, ps = pick(data, sessions, real_walk)
    _, log = run_pipeline(rec, ps, "segmenter", ["update", "on_label"])
    sizes = {"update": lambda a: len(a[0])}
    n = sum(len(a[0]) for c, a, _ in log if c == "update")
    a = _segmenter(ps)
    whole = _segments_out(replay_calls(a, log, sizes, set()), a)
    calls, b = replay_restoring(lambda: _segmenter(ps), log, sizes, draw_cuts(data, n), data)
    assert _segments_out(calls, b) == whole, name
    assert b.reps is None or b.reps.rejected == a.reps.rejected


@SPLIT
@given(data=st.data())
def test_angle_state_restored_at_any_sample_goes_on_as_if_it_never_stopped(sessions, real_walk, data):
    name, rec, ps = pick(data, sessions, real_walk)
    _, log = run_pipeline(rec, ps, "angles", ["update", "restart", "follow_layout"])
    sizes = {"update": lambda a: len(a[0])}
    n = sum(len(a[0]) for c, a, _ in log if c == "update")

    def out(calls):
        return np.concatenate([np.vstack([o.flexion_deg, o.lateral_deg, o.twist_deg]) for c, _, o in calls if c == "update"], axis=1)

    whole = out(replay_calls(AngleStage(ps.twist_leak_tau_s), log, sizes, set()))
    calls, _ = replay_restoring(lambda: AngleStage(ps.twist_leak_tau_s), log, sizes, draw_cuts(data, n), data)
    assert np.array_equal(out(calls), whole), name


_watch_logs: dict[str, tuple] = {}


@settings(SPLIT, max_examples=5)  # (each example replays a whole session's watch twice)
@given(data=st.data())
def test_watch_state_restored_at_any_sample_goes_on_as_if_it_never_stopped(sessions, real_walk, data):
    """The limit watch: its detectors' open events and candidates, the
    alerts (and their events), the creep limit, the device-buzz watch. The
    alert policy is shared, not restored (its command counter numbers on)."""
    name, rec, ps = pick(data, sessions, real_walk)
    sizes = {"update": lambda a: len(a[0])}
    if name not in _watch_logs:  # the uncut run, once per session
        log = _watch_run(name, rec, ps)[1]
        a = _watch(ps)
        _watch_logs[name] = log, json.loads(_watch_out(a, replay_calls(a, log, sizes, set()))), len(a.alerts)
    log, whole, n_alerts = _watch_logs[name]
    n = sum(len(a[0]) for c, a, _ in log if c == "update")
    policy = AlertPolicy()
    calls, b = replay_restoring(lambda: LimitWatch(ps.exercise, ps.detector, policy, limit_overrides=ps.limit_overrides), log, sizes, draw_cuts(data, n), data)
    got = json.loads(_watch_out(b, calls))
    counters = [x[4] for x in got["alerts"]]
    assert counters == sorted(set(counters)), "the commands are numbered on"
    for x in got["alerts"] + whole["alerts"]:
        x[4] = None  # (the counters of alerts run on and rolled back were drawn)
    assert got == whole, name
    assert len(b.alerts) == n_alerts and all(any(x.event is e for e in b.events) for x in b.alerts)  # each alert's event is the detector's own


def test_each_stages_state_holds_every_field_but_its_settings(sessions):
    """A field added to a stage and left out of state() would survive a
    rollback: every attribute is either in the state or a setting."""
    p, _ = run_pipeline(*sessions["deadlift-rom"], "segmenter", [])
    seg, plank = p.segmenter, run_pipeline(*sessions["plank"], "segmenter", [])[0].segmenter
    settings_of = {
        "Intake": {"clock"},  # its state is in the state's "clock"
        "GravityStage": {"settings", "engine"},
        "DriftMonitor": {"still", "limit_deg", "rezero_on_drift", "min_standing_s", "look_back_s", "keep"},
        "Segmenter": {"limit_overrides", "monitor_between_sets", "arming", "tilt_bias", "tilt_gravity", "bias_check", "no_still_start", "bias_idle"},
        "RepSegmenter": {"rate", "settings"},
        "HoldTimer": {"enter_deg", "exit_deg", "settle_s", "quiet_deg_s", "min_s"},
        "WarmupBends": {"share", "re_arm_deg"},
        "AngleStage": {"twist_leak_tau_s", "relative_twist", "twist_bias_known"},
        "SessionPhases": {"given"},
        "Calibrator": {"settings"},
        "LimitWatch": {"settings", "hold_unknown", "policy", "hidden_arch", "hidden_arch_presses", "hidden_swing", "twist_axis", "hidden_band"},
        "EventDetector": {"settings", "_watches"},  # the checks: in "watches"
        "LimitPlan": {"overrides", "lean"},
        "DeviceBuzzWatch": set(),
    }
    renamed = {"SessionPhases": {"is_result"}, "EventDetector": {"watches"}}
    stages = (seg, seg.reps, seg.holds, plank.holds, seg.warmup, p.angles, p.intake, p.gravity, p.drift,
              p.phases, p.phases.calibrator, p.watch, p.watch.detector, p.watch.shadow, p.watch.plan, p.watch.device_buzz)
    for stage in stages:
        kind = type(stage).__name__
        assert set(vars(stage)) | renamed.get(kind, set()) == set(stage.state()) | settings_of[kind], kind
        assert isinstance(stage, Stage), kind


@SPLIT
@given(data=st.data())
def test_intake_state_restored_at_any_sample_goes_on_as_if_it_never_stopped(data):
    stream = [_block(0.0, 40, 104.0), _block(0.4, 10, 0.5), _block(0.5, 30, 104.0, ("lower",)), _block(0.8, 30, 104.0, ("upper",)),
              _block(0.7, 25, 104.0, ("upper",)), _block(1.2, 50, 52.0)]
    log = [("update", (b,), {}) for b in stream]
    ref = Intake()
    whole = replay_calls(ref, log, {}, set())
    calls, got = replay_restoring(Intake, log, {"update": lambda a: len(a[0])}, draw_cuts(data, sum(map(len, stream))), data)
    assert np.array_equal(_intake_output(calls), _intake_output(whole))
    assert (got.skipped_samples, got.layout_changes, got.clock.backsteps, got.t_last) == (ref.skipped_samples, ref.layout_changes, ref.clock.backsteps, ref.t_last)


@SPLIT
@given(data=st.data())
def test_fusion_state_restored_at_any_sample_goes_on_as_if_it_never_stopped(sessions, real_walk, data):
    name, rec, ps = pick(data, sessions, real_walk)
    _, log = run_pipeline(rec, ps, "gravity", ["update", "restart_from", "forget"])
    sizes = {"update": lambda a: len(a[0])}
    n = sum(len(a[0]) for c, a, _ in log if c == "update")
    whole = _fused_out(replay_calls(GravityStage(ps.fusion), log, sizes, set()))
    calls, _ = replay_restoring(lambda: GravityStage(ps.fusion), log, sizes, draw_cuts(data, n), data)
    for w, c in zip(whole, _fused_out(calls)):
        assert w.keys() == c.keys()
        for s in w:
            assert np.array_equal(w[s], c[s]), (name, s)

    def learnt(calls):  # per sensor: the filter has learnt its bias (its rest samples carried in the state)
        parts = [o.bias_learnt for c, _, o in calls if c == "update"]
        return {s: np.concatenate([p[s] for p in parts if s in p]).tolist() for s in sorted({s for p in parts for s in p})}

    assert learnt(calls) == learnt(replay_calls(GravityStage(ps.fusion), log, sizes, set())), name


def _per_sample(x, a, b):
    """drift.update's arguments: the block and each sensor's gravity, cut; the mounting whole."""
    if isinstance(x, dict):
        return {k: v[a:b] for k, v in x.items()}
    return _slice(x, a, b)


@SPLIT
@given(data=st.data())
def test_drift_state_restored_at_any_sample_goes_on_as_if_it_never_stopped(sessions, real_walk, data):
    """The standing stretches (the open one too) and the checks before each set."""
    name, rec, ps = pick(data, sessions, real_walk)
    _, log = run_pipeline(rec, ps, "drift", ["update", "check", "finish"])
    sizes = {"update": lambda a: len(a[0])}
    n = sum(len(a[0]) for c, a, _ in log if c == "update")

    def make():
        return DriftMonitor(ps.calibration, ps.drift_limit_deg, ps.rezero_on_drift)

    def out(calls, d):
        return json.dumps({"checks": [o for c, _, o in calls if c == "check"], "all": d.checks,
                           "standing": [(x.t0, x.t1, {s: v.tolist() for s, v in x.mean.items()}) for x in d.standing]}, default=str)

    ref = make()
    whole = out(replay_calls(ref, log, sizes, set()), ref)
    calls, got = replay_restoring(make, log, sizes, draw_cuts(data, n), data, _per_sample)
    assert out(calls, got) == whole, name
    assert ref.standing or name == "press-one-imu", f"{name}: the session had standing stretches"
