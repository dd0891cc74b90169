"""The command line: each command works, and every bad input gives one line and a non-zero exit."""

import json
import subprocess
import sys

import pytest

from spinemon.app.cli import main


def spinemon(*args):
    """Run the installed console entry point in a subprocess (what a user runs)."""
    return subprocess.run([sys.executable, "-m", "spinemon.app.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands():
    r = spinemon("--help")
    assert r.returncode == 0
    for cmd in ("demo", "simulate", "replay", "live", "scan"):
        assert cmd in r.stdout
    for cmd in ("demo", "simulate", "replay", "live", "scan"):
        assert spinemon(cmd, "--help").returncode == 0


def test_demo_runs_the_workout_and_writes_recording_and_summary(tmp_path, capsys):
    assert main(["demo", "--speed", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ALERT OVER-FLEXION" in out and "ALERT OVER-EXTENSION" in out
    assert "3/3 faulty reps flagged; 0/18 clean reps flagged" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["faulty_reps_flagged"] == 3 and summary["clean_reps_flagged"] == 0
    assert (tmp_path / "demo-seed1.spinrec").exists()


def test_simulate_then_replay_json(tmp_path, capsys):
    f = tmp_path / "dl.spinrec"
    assert main(["simulate", "--exercise", "deadlift", "--reps", "5", "--fault", "rounding@4", "--seed", "1", "--out", str(f)]) == 0
    capsys.readouterr()
    assert main(["replay", str(f), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in doc["events"]] == ["over_flexion"]
    ev = doc["events"][0]
    assert set(ev) >= {"kind", "t_start", "t_end", "peak_deg", "set", "rep"}
    assert ev["set"] == 1
    assert doc["stats"]["matches_live"] is True
    assert doc["stats"]["bad_frames"] == 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["replay"], "the following arguments are required: FILE"),
        (["replay", "x.spinrec", "--bogus"], "unrecognized arguments: --bogus"),
        (["simulate", "--exercise", "zumba", "--out", "x"], "invalid choice: 'zumba'"),
        (["simulate", "--exercise", "deadlift", "--fault", "rounding4", "--out", "x"], "use KIND@REP"),
        (["demo", "--speed", "fast"], "not a number"),
        (["nonsense"], "invalid choice"),
        ([], "no command given"),
        (["live"], "one of the arguments --address --name --port --sim is required"),
        (["live", "--sim", "--port", "loop://"], "not allowed with argument"),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(args, needle):
    r = spinemon(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0] and "--help" in lines[0]
    assert r.stdout == ""


@pytest.mark.parametrize(
    "content,needle",
    [(None, "no such file"), (b"", "empty"), (b"PK\x03\x04 a zip file", "not a spinemon recording")],
)
def test_bad_files_exit_1_with_one_line(tmp_path, content, needle):
    f = tmp_path / "bad.spinrec"
    if content is not None:
        f.write_bytes(content)
    r = spinemon("replay", str(f))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_live_sim_runs_a_guided_session_end_to_end(tmp_path):
    out = tmp_path / "live.spinrec"
    r = spinemon("live", "--sim", "--speed", "200", "--exercise", "deadlift", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Stand tall and still" in r.stdout and "Calibration done" in r.stdout
    assert "ALERT over-flexion" in r.stdout
    rep = spinemon("replay", str(out), "--json")
    assert json.loads(rep.stdout)["stats"]["matches_live"] is True


def test_live_with_an_unknown_exercise_is_one_line(tmp_path):
    r = spinemon("live", "--sim", "--exercise", "zumba")
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert "invalid choice: 'zumba'" in line and "deadlift" in line and "--help" in line


def test_simulate_refuses_a_fault_outside_the_set_and_an_existing_file(tmp_path):
    r = spinemon("simulate", "--exercise", "deadlift", "--reps", "3", "--fault", "rounding@4", "--out", str(tmp_path / "a"))
    assert r.returncode == 1 and "not in 1..3" in r.stderr
    f = tmp_path / "b.spinrec"
    f.write_bytes(b"x")
    r = spinemon("simulate", "--exercise", "deadlift", "--out", str(f))
    assert r.returncode == 2 and "already exists" in r.stderr and "--force" in r.stderr  # a command-line mistake
    assert f.read_bytes() == b"x"


def test_truncated_recording_replays_with_a_note(tmp_path, capsys):
    f = tmp_path / "dl.spinrec"
    main(["simulate", "--exercise", "squat", "--reps", "3", "--fault", "rounding@2", "--out", str(f)])
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 7])
    capsys.readouterr()
    assert main(["replay", str(f)]) == 0
    assert "cut off mid-record" in capsys.readouterr().out
    assert main(["replay", str(f), "--strict"]) == 1


def test_a_damaged_recording_replays_with_notes_saying_what_was_repaired(tmp_path, capsys):
    from spinemon.io.recording import KIND_RX, load

    f = tmp_path / "dl.spinrec"
    main(["simulate", "--exercise", "deadlift", "--reps", "3", "--fault", "rounding@2", "--out", str(f)])
    whole = load(f)
    data = bytearray(f.read_bytes())
    data[whole.records[0].offset + 40] ^= 0x04  # the first header copy
    victim = [r for r in whole.records if r.kind == KIND_RX][-5]  # a frame long after the rounded rep
    data[victim.offset + 11] ^= 0x01  # its length field
    f.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["replay", str(f)]) == 0
    out = capsys.readouterr().out
    assert "1 corrupt record skipped" in out and "one copy of its header is damaged" in out
    assert f"{len([r for r in whole.records if r.kind == KIND_RX]) - 1} frames" in out
    assert main(["replay", str(f), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert stats["corrupt_records"] == 1 and not stats["truncated"] and len(stats["recording_notes"]) == 1


def test_a_format_1_recording_replays_from_the_command_line(capsys):
    from pathlib import Path

    f = Path(__file__).resolve().parents[1] / "fixtures" / "recording-v1.spinrec"
    assert main(["replay", str(f)]) == 0
    out = capsys.readouterr().out
    # recorded by an earlier spinemon: the same event, as it fired live; since then the
    # range-of-motion sweep starts at the sample after neutral and integrates the
    # gyro with its offset removed once (it was removed twice), so peak and limit moved a little
    assert "409 frames" in out and "note:" not in out
    assert "same as the live session: NO, but the same 1 event: peaks and limits within 0.0" in out, out
