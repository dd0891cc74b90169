"""The lifter's usual lean from history (issue 22 item 4): simulated one-sensor
squat sessions kept in a temporary session index, then `live` and `replay`."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace

import pytest

from spinemon.app import cli, lean_history
from spinemon.app.history import facts_from, store_facts
from spinemon.app.live import LiveOptions, run
from spinemon.app.live_ui import LiveUI
from spinemon.app.replay import replay
from spinemon.app.simrun import run_simulated
from spinemon.core.calibration import CalibrationSettings
from spinemon.core.detect import FORWARD_LEAN, PROFILES
from spinemon.core.lean_baseline import lean_baseline
from spinemon.core.pipeline import PipelineSettings
from spinemon.io import sim
from spinemon.io.recording import load
from spinemon.io.session_index import SessionIndex, default_path, identify
from spinemon.io.transport import SimTransport

NO_ROM = PipelineSettings(exercise="squat", calibration=CalibrationSettings(rom=False))
ONE = sim.SimSettings(stand_s=0, imus=("upper",), rate_hz=50.0)


def squats(seed, faults=None, out=None, settings=NO_ROM):
    return run_simulated(
        [sim.SetSpec("squat", 5, faults or {})], seed, out=out, sim_settings=ONE, settings=settings, rom=False, labels=False
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Three short one-sensor squat sessions and their facts, as `history` keeps them."""
    d = tmp_path_factory.mktemp("lean-history")
    out = []
    for seed in range(3):
        p = d / f"squat{seed}.spinrec"
        squats(seed, out=p)
        rec = load(p)
        out.append((p, identify(p), facts_from(rec, replay(rec), p)))
    return out


def into_index(history):
    store_facts(history, notes := [])
    assert notes == []


def test_the_baseline_comes_from_the_history_in_the_index(history):
    into_index(history)
    with SessionIndex(default_path()) as idx:
        facts = idx.latest_facts()
    assert len(facts) == 3 and all(f["one_sensor"] for f in facts)
    found = lean_history.baselines(facts)
    b = found["squat"]
    sessions = [f["exercises"]["squat"]["lean_peaks"] for _, _, f in history]
    assert (b.sessions, b.reps) == (3, 15) and [len(s) for s in sessions] == [5, 5, 5]
    assert b.limit_deg == lean_baseline("squat", sessions, PROFILES["squat"].lean_deg).limit_deg
    assert set(found) == {"squat"}  # no deadlift history: no deadlift baseline
    # the recording being replayed, and sessions after it, are not its own history
    assert lean_history.baselines(facts, exclude=history[0][0]) == {}
    assert lean_history.baselines(facts, before="2000-01-01T00:00:00Z") == {}


def test_a_session_leaning_more_than_usual_is_flagged_as_lean_and_one_at_usual_lean_is_not(history):
    found = lean_history.baselines([f for _, _, f in history])
    settings = lean_history.apply(NO_ROM, found)
    lean = squats(9, {3: "forward_lean"}, settings=settings)
    assert [(a.event.kind, a.event.rep) for a in lean.result.alerts] == [(FORWARD_LEAN, 3)]
    assert lean.result.summary["limits"]["lean_deg"] == pytest.approx(found["squat"].limit_deg, abs=0.01)
    usual = squats(3, settings=settings)
    assert usual.result.alerts == []


def test_a_lifter_with_a_steady_usual_is_told_of_lean_the_norm_lets_pass():
    """A lifter whose squats peak at 40 +- 1 deg: this session's deeper-leaning
    reps (52-58 deg, under the 65 deg norm) are flagged; without history, none."""
    steady = [[39.0, 40.0, 41.0, 40.0, 40.0]] * 3
    b = lean_baseline("squat", steady, PROFILES["squat"].lean_deg)
    assert b.limit_deg == 50.0
    plain = squats(0)
    peaks = {r.rep: r.peak_flexion_deg for r in plain.result.session.reps}  # the sensor's inclination
    assert plain.result.alerts == [] and max(peaks.values()) < PROFILES["squat"].lean_deg
    judged = squats(0, settings=lean_history.apply(NO_ROM, {"squat": b}))
    flagged = {a.event.rep for a in judged.result.alerts if a.event.kind == FORWARD_LEAN}
    assert flagged and flagged == {r for r, p in peaks.items() if p > b.limit_deg}


def live_one_sensor(tmp_path, faults):
    session = sim.simulate([sim.SetSpec("squat", 5, faults)], 9, ONE, calibration=True, rom=False)
    transport = SimTransport(list(zip(session.frames, session.frame_times.tolist())), [], speed=10000)
    stream = io.StringIO()
    out = tmp_path / "live.spinrec"
    opts = LiveOptions(sim=True, exercise="squat", out=str(out), calibrate_rom=False, speed=10000)
    res = asyncio.run(asyncio.wait_for(run(opts, LiveUI(stream), transport=transport), 30))
    return res, stream.getvalue(), out


def test_live_says_where_the_lean_limit_comes_from_and_records_it(history, tmp_path, capsys):
    into_index(history)
    res, screen, out = live_one_sensor(tmp_path, {3: "forward_lean"})
    said = [line for line in screen.splitlines() if "forward lean" in line and "usual" in line]
    assert len(said) == 1 and "last 3 one-sensor squat sessions (15 reps)" in said[0]
    assert "lean (one sensor), not lumbar rounding" in said[0] and "it buzzes" in said[0]
    assert [(a.event.kind, a.event.rep) for a in res.alerts] == [(FORWARD_LEAN, 3)]
    rec = load(out)
    assert rec.header[lean_history.HEADER_KEY]["squat"]["sessions"] == 3
    assert cli.main(["replay", str(out)]) == 0
    text = capsys.readouterr().out
    assert "last 3 one-sensor squat sessions" in text and "lean (one sensor), not lumbar rounding" in text
    assert cli.main(["replay", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert stats["lean_baseline"]["squat"]["reps"] == 15 and stats["lean_notes"] == [
        "with one sensor, " + lean_history.from_header(rec.header)["squat"].describe() + "; it buzzes like any limit"
    ]


def test_no_history_the_norm_and_it_is_said(tmp_path, capsys):
    res, screen, out = live_one_sensor(tmp_path, {3: "forward_lean"})
    assert "squat: forward lean judged against the exercise's norm only (65 deg): no usual rep of yours yet" in screen
    assert res.summary["limits"]["lean_deg"] == PROFILES["squat"].lean_deg
    assert [(a.event.kind, a.event.rep) for a in res.alerts] == [(FORWARD_LEAN, 3)]
    assert lean_history.HEADER_KEY in load(out).header
    assert cli.main(["replay", str(out)]) == 0
    assert "judged against the exercise's norm only" in capsys.readouterr().out



def live_screen(frames: list[tuple[bytes, float]], out) -> list[str]:
    transport = SimTransport(frames, [], speed=10000)
    ui = LiveUI(io.StringIO())
    opts = LiveOptions(sim=True, exercise="squat", out=str(out), calibrate_rom=False, speed=10000)
    asyncio.run(asyncio.wait_for(run(opts, ui, transport=transport), 30))
    return ui.lines


def test_the_lean_line_is_said_only_where_one_sensor_is_streamed(tmp_path):
    """Two sensors: the lumbar limits apply and lean is not judged, so no
    lean line; the lower sensor gone mid-session: said from that moment."""
    two = sim.simulate([sim.SetSpec("squat", 1)], 2, sim.SimSettings(rate_hz=50.0), calibration=True, rom=False)
    frames = list(zip(two.frames, two.frame_times.tolist()))
    assert not [line for line in live_screen(frames, tmp_path / "two.spinrec") if "forward lean" in line]
    one = sim.simulate([sim.SetSpec("squat", 1)], 2, replace(ONE, seq_start=int(two.seq[-1]) + 1,
                       time_start_us=int(round(two.t[-1] * 1e6)) + 20_000), calibration=True, rom=False)
    t_lost = float(two.frame_times[-1])
    frames += [(f, t_lost + t) for f, t in zip(one.frames, one.frame_times.tolist())]
    lines = live_screen(frames, tmp_path / "lost.spinrec")
    said = [i for i, line in enumerate(lines) if "forward lean judged against the exercise's norm only" in line]
    assert len(said) == 1 and lines[said[0]].startswith(">> with one sensor, squat")
    assert any("Calibration done" in line for line in lines[: said[0]])  # not before the sensor was lost

def test_damaged_or_older_facts_and_headers_are_left_out_never_a_traceback(history):
    good = [f for _, _, f in history]
    bad = [
        {"one_sensor": True, "time": "2026-01-01T00:00:00Z", "exercises": ["squat"]},
        {"one_sensor": True, "time": "2026-01-01T00:00:00Z", "exercises": {"squat": "x"}},
        {"one_sensor": True, "time": "2026-01-01T00:00:00Z", "exercises": {"squat": {"reps": 5}}},  # history-facts-1
        {"one_sensor": True, "time": "2026-01-01T00:00:00Z", "exercises": {"squat": {"lean_peaks": [float("nan"), True, "9"]}}},
        {"one_sensor": True, "time": None, "exercises": {"squat": {"lean_peaks": [90.0] * 20}}},
        {"one_sensor": False, "time": "2026-01-01T00:00:00Z", "exercises": {"squat": {"lean_peaks": [90.0] * 20}}},
        {"error": "cannot read"},
    ]
    assert lean_history.baselines(good + bad) == lean_history.baselines(good)
    assert lean_history.baselines(bad) == {}
    b = lean_history.baselines(good)["squat"].as_dict()
    head = {lean_history.HEADER_KEY: {"squat": {**b, "limit_deg": "50"}, "lunge": "x", "deadlift": {"usual_deg": 1.0}}}
    assert lean_history.from_header(head) == {}
    assert lean_history.from_header({lean_history.HEADER_KEY: ["squat"]}) == {}
    assert lean_history.from_header({lean_history.HEADER_KEY: {"squat": b}})["squat"].reps == 15


def test_without_history_a_hinge_says_its_lean_is_not_judged():
    (line,) = lean_history.lines({}, "deadlift")
    assert "deadlift: forward lean is not judged" in line and "needs 3 one-sensor deadlift sessions" in line
    assert lean_history.lines({}, "curl") == []  # lean back is a curl's fault, not this


def test_a_live_session_joins_the_history_by_itself(tmp_path):
    """A session recorded by `live` (here from a serial wearable) goes into the
    session index as `history` would put it, so the usual lean grows with
    every session; the simulated wearer's do not (they are not the lifter's)."""
    session = sim.simulate([sim.SetSpec("squat", 5)], 9, ONE, calibration=True, rom=False)
    frames = list(zip(session.frames, session.frame_times.tolist()))
    for source, kept in ((dict(sim=True), False), (dict(port="/dev/ttyUSB-test"), True)):
        out = tmp_path / f"{'port' if kept else 'sim'}.spinrec"
        transport = SimTransport(frames, [], speed=10000)
        opts = LiveOptions(exercise="squat", out=str(out), calibrate_rom=False, speed=10000, **source)
        asyncio.run(asyncio.wait_for(run(opts, LiveUI(io.StringIO()), transport=transport), 30))
        with SessionIndex(default_path()) as idx:
            facts = {f["resolved"]: f for f in idx.latest_facts()}
        assert (str(out.resolve()) in facts) is kept
    mine = facts[str((tmp_path / "port.spinrec").resolve())]
    assert mine["one_sensor"] and len(mine["exercises"]["squat"]["lean_peaks"]) == 5
