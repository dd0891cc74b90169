"""The `spinemon live` engine: guided calibration, live display, alerts,
recording, Ctrl-C; over the simulated wearer and over the emulated BLE radio."""

import argparse
import asyncio
import io
import re

import pytest

import spinemon_protocol as proto

import spinemon_protocol as P
from spinemon.io import sim
from spinemon.core.detect import Limits
from tests.support.emulated_ble import BumbleClient, EmulatedRadio, TwinInfo, TwinPeripheral
from spinemon.errors import ConfigError
from spinemon.app.live_ui import LiveUI, PROMPT_NEUTRAL, PROMPT_ROM
from spinemon.app.live import LiveOptions, make_transport, run
from spinemon.app.commands.live import add_arguments, main
from spinemon.io.device_link import guard_args
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.io.recording import load
from spinemon.app.replay import recorded_events, replay
from spinemon.io.transport import SimTransport


def arun(coro, timeout=30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def parse(argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


def test_sim_session_end_to_end_prompts_alerts_and_recording(tmp_path):
    out = tmp_path / "session.rec"
    stream = io.StringIO()
    rc = main(parse(["--sim", "--speed", "2000", "--out", str(out)]), stream)
    assert rc == 0
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text  # not a TTY: plain lines

    # guided calibration, in order
    i_neutral = lines.index(">> " + PROMPT_NEUTRAL)
    i_rom = lines.index(">> " + PROMPT_ROM)
    i_done = next(i for i, line in enumerate(lines) if line.startswith(">> Calibration done: range of motion"))
    assert i_neutral < i_rom < i_done

    # the recording: loadable, replays to the events the live session reported
    rec = load(out)
    live_events = recorded_events(rec)
    again = replay(rec)
    assert [e.as_dict() for e in again.events] == live_events
    # one ALERT line per alert, after calibration, all delivered; the demo workout's 3 faults
    alert_lines = [i for i, line in enumerate(lines) if line.startswith("!! ALERT")]
    assert len(alert_lines) == len(rec.meta_of("alert")) == 3
    assert all(i > i_done for i in alert_lines)
    assert all("buzz sent" in lines[i] for i in alert_lines)
    assert "over-flexion" in lines[alert_lines[0]] and "set 1" in lines[alert_lines[0]]
    # the status line: angle label, zone, set, alerts, link quality and state
    status = [line for line in lines if line.startswith("lumbar flexion")]
    assert status and all(" | " in s and s.endswith("| connected") and "lost 0.00% bad 0" in s for s in status)
    assert any(re.search(r"set 4( rep \d+)? curl", s) for s in status)
    assert lines[-2].startswith("Session ended.") and str(out) in lines[-2]
    assert re.search(r"Session ended\. \d+ sets?, \d+ reps?, 3 alerts", lines[-2]), lines[-2]
    # the status line shows the limit and the room left, and the rep number stays up between reps
    assert any(re.search(r"\| limit [+-]\d+ \[[#.]{10}\] room [+-]\d+ \|", st) for st in status)
    reps_shown = [m.group(1) for st in status for m in [re.search(r"set \d+ rep (\d+)", st)] if m]
    assert len(reps_shown) > len(set(reps_shown))  # on more lines than there are reps
    assert lines[-1].strip().startswith("monitored ") and "(calibration: done)" in lines[-1]


def test_sim_commands_reach_the_simulated_motor():
    async def main_():
        options = LiveOptions(sim=True, speed=5000, exercise="deadlift")
        transport = make_transport(options)
        assert isinstance(transport, SimTransport)
        pipeline = Pipeline(PipelineSettings(exercise="deadlift"))
        limits_before = pipeline.limits
        result = await run(options, LiveUI(io.StringIO()), transport=transport, pipeline=pipeline)
        return result, transport, pipeline, limits_before

    result, transport, pipeline, limits_before = arun(main_())
    # every command the session numbered reached the motor and was accepted:
    # SET_GUARD + START at connect, SET_NEUTRAL once the host has its neutral
    # (the wearable's guard measures from the same posture), SET_GUARD again once
    # the range of motion changed the limits and monitoring began (the guard armed
    # with those limits from then on: the limits are watched on every monitored
    # sample, not from the set's start), then the alerts
    assert pipeline.limits != limits_before
    assert transport.motor.rejected == []
    # (plus the heartbeat: TIME_SYNC every HEARTBEAT_MS while connected)
    assert transport.motor.last_counter == pipeline.alert_policy.counter.next() - 1 == len(transport.motor.accepted)
    assert [op for op in transport.motor.accepted if op != proto.OP_TIME_SYNC] == (
        [proto.OP_SET_GUARD, proto.OP_START, proto.OP_SET_NEUTRAL, proto.OP_SET_GUARD] + [proto.OP_HAPTIC] * len(result.alerts)
    )
    assert [args for _, args in transport.motor.haptics] == [a.pattern.args() for a in result.alerts]
    assert len(result.alerts) == 1 and result.alerts[0].event.kind == "over_flexion"  # sim_sets_for: rounding on rep 3


def test_cancelled_session_leaves_a_loadable_recording(tmp_path):
    out = tmp_path / "cancelled.rec"
    stream = io.StringIO()

    async def main_():
        ui = LiveUI(stream)
        task = asyncio.create_task(run(LiveOptions(sim=True, speed=40, out=str(out)), ui))
        while not any(line.startswith(">> Calibration done") for line in ui.lines):  # well into the session
            await asyncio.sleep(0.02)
        task.cancel()  # what Ctrl-C does to asyncio.run's main task
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main_())
    rec = load(out)
    assert rec.records[0].meta["type"] == "header"
    summary = rec.meta_of("summary")
    assert len(summary) == 1 and summary[0]["calibrated"]
    again = replay(rec)
    assert again.frames == summary[0]["frames"] > 100
    assert [e.as_dict() for e in again.events] == summary[0]["events"]
    # Ctrl-C, the way a real session ends, prints the same summary as a session that ends by itself
    lines = stream.getvalue().splitlines()
    stopped = [line for line in lines if line.startswith("Stopped (Ctrl-C).")]
    assert len(stopped) == 1 and lines[-2] == stopped[0], lines[-3:]
    n_sets, n_reps = len(summary[0]["sets"]), len(summary[0]["reps"])
    assert re.match(rf"Stopped \(Ctrl-C\)\. {n_sets} sets?, {n_reps} reps?, {len(rec.meta_of('alert'))} alerts?", stopped[0]), stopped[0]
    assert f"Recording: {out}" in stopped[0]
    assert lines[-1].strip().startswith("monitored ")


def test_tty_display_refreshes_in_place():
    stream = io.StringIO()
    arun(run(LiveOptions(sim=True, speed=5000, exercise="squat", calibrate_rom=False), LiveUI(stream, tty=True, refresh_s=0.0, screen="plain")))
    text = stream.getvalue()
    assert "\r\x1b[2K" in text
    # status refreshes do not end in newlines; prompts and alerts do
    refreshes = text.count("\r\x1b[2K")
    assert refreshes > 50 and text.count("\n") < 20


def test_zone_and_guard_arguments():
    lim = Limits(30.0, -20.0)
    assert [LiveUI.zone(a, lim) for a in (0.0, 25.0, 31.0, -17.0, -21.0, float("nan"))] == ["ok", "near limit", "past limit", "near limit", "past limit", "-"]
    assert guard_args(lim, P.GUARD_WHEN_LINK_DOWN) == (3000, -2000, P.GUARD_WHEN_LINK_DOWN)
    assert guard_args(Limits(None, -200.0), P.GUARD_ALWAYS) == (9000, -9000, P.GUARD_ALWAYS)


def test_bad_options_give_clear_errors():
    for kw in ({}, dict(sim=True, port="loop://"), dict(sim=True, exercise="bench_press"), dict(sim=True, speed=0)):
        with pytest.raises(ConfigError):
            LiveOptions(**kw)
    # the CLI turns these into one line on stderr (tests/app/test_cli.py)
    with pytest.raises(ConfigError, match="unknown exercise"):
        main(argparse.Namespace(sim=True, exercise="nope", address=None, name=None, port=None, out=None), io.StringIO())


@pytest.mark.realtime
def test_live_over_the_emulated_ble_radio(tmp_path):
    session = sim.simulate([sim.SetSpec("deadlift", 3, {2: "rounding"}, rest_s=1.0)], seed=4, rom=False)
    out = tmp_path / "ble.rec"

    async def main_():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio, TwinInfo(suffix="11VE"))
            options = LiveOptions(
                address=twin.address, exercise="deadlift", out=str(out), calibrate_rom=False, connect_timeout_s=3.0, ble_backend=BumbleClient, ble_kwargs={"radio": radio}
            )
            ui = LiveUI(io.StringIO())
            task = asyncio.create_task(run(options, ui))
            await twin.wait_subscribed("stream")
            times = [t / 10.0 for t in session.frame_times - session.frame_times[0]]
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for frame, t in zip(session.frames, times):
                await asyncio.sleep(max(0.0, t0 + t - loop.time()))
                await twin.notify_stream(frame)
            await asyncio.sleep(0.2)
            task.cancel()  # a BLE stream never ends by itself: Ctrl-C
            with pytest.raises(asyncio.CancelledError):
                await task
            return ui, twin

    ui, twin = arun(main_())
    assert any(line.startswith("!! ALERT over-flexion") and "buzz sent" in line for line in ui.lines)
    ops = [c.opcode for c in twin.responder.commands]
    assert ops[:2] == [P.OP_SET_GUARD, P.OP_START] and ops.count(P.OP_HAPTIC) == 1
    rec = load(out)
    assert rec.meta_of("device_status")[0]["imu_upper"] == P.IMU_SIMULATED
    assert [e.as_dict() for e in replay(rec).events] == rec.meta_of("summary")[0]["events"]


@pytest.mark.realtime
def test_heartbeat_keeps_the_wearable_informed_while_connected():
    async def main_():
        options = LiveOptions(sim=True, speed=15, exercise="deadlift")
        transport = make_transport(options)
        t0 = asyncio.get_running_loop().time()
        await run(options, LiveUI(io.StringIO()), transport=transport)
        return transport, asyncio.get_running_loop().time() - t0

    transport, wall = arun(main_())
    syncs = transport.motor.accepted.count(proto.OP_TIME_SYNC)
    # one every HEARTBEAT_MS (minus start-up), never silent as long as HOST_SILENCE_MS
    assert syncs >= int(wall / (proto.HOST_SILENCE_MS / 1000.0)) >= 1
    assert syncs <= wall / (proto.HEARTBEAT_MS / 1000.0) + 1
    assert transport.motor.rejected == []


def test_enter_marks_a_set_and_the_first_rep_is_watched_either_way(tmp_path):
    """A real link brings no set labels: the lifter presses Enter before a set.
    The mark is recorded, so replay agrees. Without it the rounded FIRST rep
    alerts too (a rep begun from a stance is watched before its set is
    recognised); the mark only numbers the set from the start."""
    import os

    session = sim.simulate([sim.SetSpec("deadlift", 3, {1: "rounding"})], seed=3)
    frames = list(zip(session.frames, session.frame_times.tolist()))
    first = session.sets[0].t_start

    async def main_(mark: bool, out):
        transport = SimTransport(frames, labels=(), speed=20.0)  # no labels, like BLE/serial
        r, w = os.pipe()
        keys = os.fdopen(r, "r", buffering=1)
        writer = os.fdopen(w, "w", buffering=1)

        async def lifter():
            while transport._t0_host == 0.0:
                await asyncio.sleep(0.01)
            await asyncio.sleep(max(0.0, transport.host_time(first - 1.0) - __import__("time").time()))
            if mark:
                writer.write("\n")
                writer.flush()

        task = asyncio.create_task(lifter())
        try:
            options = LiveOptions(sim=True, exercise="deadlift", out=str(out))
            result = await run(options, LiveUI(io.StringIO()), transport=transport, keys=keys)
        finally:
            task.cancel()
            writer.close()
            keys.close()
        return result

    marked = arun(main_(True, tmp_path / "marked.spinrec"))
    kinds = [(e.kind, e.set, e.rep) for e in marked.events]
    assert ("over_flexion", 1, 1) in kinds
    rec = load(tmp_path / "marked.spinrec")
    assert [m["set"] for m in rec.meta_of("label")] == [1]
    assert [e.as_dict() for e in replay(rec).events] == [e.as_dict() for e in marked.events]
    unmarked = arun(main_(False, tmp_path / "unmarked.spinrec"))
    rep1 = session.reps[0]
    assert any(e.kind == "over_flexion" and rep1.t_start - 0.3 <= e.t_start <= rep1.t_end for e in unmarked.events)
    assert [(e.kind, e.set, e.rep) for e in unmarked.events if e.kind == "over_flexion"][0][1:] == (1, 1)


def test_profile_stores_the_calibration_and_the_next_session_reuses_it(tmp_path):
    prof = tmp_path / "profile.json"
    first_ui, second_ui = LiveUI(io.StringIO()), LiveUI(io.StringIO())
    first = arun(run(LiveOptions(sim=True, speed=5000, exercise="deadlift", profile=str(prof)), first_ui))
    assert prof.exists() and any("calibration saved to" in line for line in first_ui.lines)
    from spinemon.io.profile_store import load_profile

    stored = load_profile(prof).calibration
    assert stored is not None and stored.rom == first.calibration.rom
    opts = LiveOptions(sim=True, speed=5000, exercise="deadlift", profile=str(prof), limits=("deadlift.flexion_share=0.4",))
    result = arun(run(opts, second_ui))
    assert any("Using the calibration stored" in line for line in second_ui.lines)
    assert not any(line.startswith(">> Stand tall") for line in second_ui.lines)  # no calibration phase
    assert result.calibration.rom == stored.rom
    limit = result.summary["limits"]["flexion_deg"]
    assert limit == pytest.approx(0.4 * stored.rom.flexion_deg, abs=0.01)
    # a calibrated lifter just lifts: the same 5 reps as the first session, the rounded one is rep 3 of 5,
    # nothing before the first set counted or buzzed
    assert [(r["set"], r["rep"]) for r in result.summary["reps"]] == [(r["set"], r["rep"]) for r in first.summary["reps"]] == [(1, k) for k in range(1, 6)]
    assert all(a.event.set == 1 and a.event.rep is not None for a in result.alerts)
    assert (1, 3) in {(a.event.set, a.event.rep) for a in result.alerts}


def test_a_resumed_session_replays_and_reports_as_two_sessions(tmp_path, capsys):
    """`live --out FILE` then `live --out FILE --resume` (the product's own path):
    replay and report treat the second segment as the session it was, with its
    own calibration (never reps), its sets numbered on, and each segment
    checked against what its own live session reported."""
    import csv
    import json

    from spinemon.app.cli import main as cli_main

    out = tmp_path / "today.spinrec"
    first, second = io.StringIO(), io.StringIO()
    assert main(parse(["--sim", "--speed", "2000", "--exercise", "deadlift", "--seed", "3", "--out", str(out)]), first) == 0
    assert main(parse(["--sim", "--speed", "2000", "--exercise", "squat", "--seed", "4", "--out", str(out), "--resume"]), second) == 0
    assert "continues it in segment 2" in second.getvalue()
    # the screen numbers the second session's sets on, as replay does (set 2, never a second "set 1")
    assert "set 1" in first.getvalue() and "set 2" in second.getvalue() and "set 1" not in second.getvalue()
    rec = load(out)
    assert [s.path.name for s in rec.segments] == ["today.spinrec", "today.spinrec.seg2"]
    assert [s.header["settings"]["exercise"] for s in rec.segments] == ["deadlift", "squat"]

    res = replay(rec)
    seg1, seg2 = res.segments
    # each segment on its own is exactly its live session
    assert seg1.matches_live is True and seg2.matches_live is True and res.matches_live is True
    assert seg2.live_events and seg2.events == seg2.live_events  # the squat session alerted too
    # the second session calibrated on its own: its calibration bends are not reps
    cal2 = seg2.result.calibration
    assert cal2 is not None and cal2.rom is not None and seg2.result.summary["monitoring"]["calibration"] == "done"
    cal2_end = cal2.t_rom[1] + seg2.t_offset
    joined_reps = res.summary["reps"]
    assert [(r["set"], r["exercise"]) for r in joined_reps] == [(1, "deadlift")] * 5 + [(2, "squat")] * 5
    assert all(r["t_start"] >= cal2_end for r in joined_reps if r["segment"] == 2)
    assert [(s["set"], s["segment"], s["exercise"]) for s in res.summary["sets"]] == [(1, 1, "deadlift"), (2, 2, "squat")]
    # the joined events are the live events of each segment, sets numbered on, one time line
    assert [(e["kind"], e["set"], e["rep"]) for e in res.summary["events"]] == (
        [(e["kind"], e["set"], e["rep"]) for e in seg1.live_events] + [(e["kind"], e["set"] + 1, e["rep"]) for e in seg2.live_events])
    assert seg2.t_offset > 0 and all(e["t_start"] > seg1.result.summary["monitoring"]["duration_s"] for e in res.summary["events"] if e["segment"] == 2)
    assert len(res.alerts) == len(rec.meta_of("alert"))  # no invented alerts
    # replay in long blocks (each segment through its own pipeline) gives what frame by frame gives
    by_frame = replay(rec, block_samples=1)
    assert all(by_frame.summary[k] == res.summary[k] for k in ("events", "reps", "sets", "segment_details"))

    # spinemon replay: each session said, "same as the live session: yes"
    assert cli_main(["replay", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 sessions in this recording" in text and "same as the live session (each session): yes" in text
    assert "1. today.spinrec:" in text and "2. today.spinrec.seg2:" in text and text.count("same as its live session: yes") == 2
    assert cli_main(["replay", str(out), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["stats"]["matches_live"] is True and [s["sets"] for s in js["stats"]["segments"]] == [[1], [2]]
    assert js["stats"]["live_comparison"] == "yes" and [s["live_comparison"] for s in js["stats"]["segments"]] == ["yes", "yes"]
    assert [(s["set"], s["segment"]) for s in js["sets"]] == [(1, 1), (2, 2)]

    # spinemon report: the sets table numbers on and says which session each set was
    assert cli_main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    text = capsys.readouterr().out
    assert "2 sessions (resumed with --resume)" in text
    with open(tmp_path / "report" / "sets.csv", newline="") as f:
        sets = list(csv.DictReader(f))
    assert [(r["set"], r["segment"], r["exercise"], r["reps"]) for r in sets] == [("1", "1", "deadlift", "5"), ("2", "2", "squat", "5")]

    # the pain journal links both sessions, not only the last one's summary
    from spinemon.app.journal import session_link

    link = session_link(out)
    assert link.reps == {"deadlift": 5, "squat": 5}
    assert sum(n for by_ex in link.events.values() for n in by_ex.values()) == len(seg1.live_events) + len(seg2.live_events)
