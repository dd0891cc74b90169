"""Real walking and turning must never count as lifting (issue 11, part 3).

gait-l5: 38 trials of 19 people standing, walking 10 m, turning round and
walking back, one IMU on the lower back (L5), strapped on tilted (C. Voisard
et al., "A Reference Data Set for the Study of Healthy Subject Gait with
Inertial Measurements Units", IPOL; GNU AGPL 3.0). Each file goes through the
product's own path: ``spinemon import`` as the file comes, then replay.
"""

from __future__ import annotations

import json

import pytest

from spinemon.app import cli
from spinemon.core.detect import UNILATERAL_EXERCISES
from spinemon.core.pipeline import PipelineSettings
from spinemon.io.recording import load
from spinemon.app.replay import replay

COLUMNS = "ax=Acc_X,ay=Acc_Y,az=Acc_Z,gx=Gyr_X,gy=Gyr_Y,gz=Gyr_Z"


@pytest.fixture(scope="module")
def gait_recordings(tmp_path_factory, request):
    gait_dir = request.getfixturevalue("gait_dir")
    out_dir = tmp_path_factory.mktemp("gait")
    recs = {}
    for f in sorted(gait_dir.glob("*_lb.txt")):
        out = out_dir / f"{f.stem}.spinrec"
        assert cli.main(["import", str(f), "--columns", COLUMNS, "--out", str(out)]) == 0
        meta = json.loads((gait_dir / f"{f.stem[:-3]}.json").read_text())
        recs[f.stem] = (out, meta)
    assert len(recs) == 38
    return recs


def test_every_trial_calibrates_and_walking_gives_no_reps_and_no_alerts(gait_recordings, capsys):
    """``spinemon replay --json`` of each trial, as recorded (exercise generic)."""
    for name, (path, meta) in gait_recordings.items():
        capsys.readouterr()
        assert cli.main(["replay", str(path), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        stats = out["stats"]
        walk_starts_s = meta["TrialBoundaries"][0] / 100.0
        assert stats["calibration"] == "done", name
        # neutral comes from the standing before the walk; everything after it is monitored
        assert stats["duration_s"] - stats["monitored_s"] < walk_starts_s, (name, stats)
        assert (out["reps"], out["sets"], out["events"]) == ([], [], []), name


@pytest.mark.parametrize("exercise", ["deadlift", "curl", *UNILATERAL_EXERCISES])  # a hinge (squat, row alike), a lean-back lift (press alike), and the one-sided lifts
def test_walking_and_turning_give_no_reps_and_no_alerts_whatever_the_exercise(gait_recordings, exercise):
    """Walking is side to side, so the lunge's small rep threshold (5 deg)
    and the side rule must not turn steps into one-sided reps either."""
    reps = alerts = events = 0
    for name, (path, _) in gait_recordings.items():
        res = replay(load(path), PipelineSettings(exercise=exercise))
        reps += len(res.summary["reps"])
        alerts += len(res.alerts)
        events += len(res.events)
        assert res.summary["side_comparisons"] == [], name
    assert (reps, alerts, events) == (0, 0, 0)


def test_one_sensor_says_which_limits_are_off(gait_recordings, capsys):
    path, _ = gait_recordings["1-1_lb"]
    assert cli.main(["replay", str(path), "--exercise", "deadlift"]) == 0
    out = capsys.readouterr().out
    assert "limit off: lumbar flexion needs two sensors" in out
    assert "limit off: lumbar twist needs two sensors" in out
