"""Many sessions at once (issue 13): `spinemon replay` and `spinemon report` take
several recordings or a folder, run them across worker processes, and print
one table; a bad file costs its own row only."""

from __future__ import annotations

import json

import pytest

from spinemon.app import cli
from spinemon.io import sim
from spinemon.app.simrun import run_simulated


@pytest.fixture(scope="module")
def season_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("season")
    (d / "week1").mkdir()
    for seed, fault in ((1, {2: "rounding"}), (2, {}), (3, {3: "rounding"})):
        run_simulated([sim.SetSpec("deadlift", 3, fault)], seed, out=d / "week1" / f"s{seed}.spinrec", rom=False)
    (d / "week1" / "broken.spinrec").write_bytes(b"not a recording")
    return d


def test_replay_of_a_folder_is_one_table_in_parallel(season_dir, capsys):
    rc = cli.main(["replay", str(season_dir), "--jobs", "2"])
    out, err = capsys.readouterr()
    assert rc == 1  # one file is broken: said in its row, the others are replayed
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["recording", "duration_s", "monitored_s", "calibration"]
    names = [ln.split()[0] for ln in lines[1:]]
    assert names == ["broken.spinrec", "s1.spinrec", "s2.spinrec", "s3.spinrec", "total"]
    assert "not a spinemon recording" in out
    assert "[4/4]" in err  # progress


def test_replay_json_of_several_matches_replaying_each(season_dir, capsys):
    files = sorted(str(p) for p in (season_dir / "week1").glob("s*.spinrec"))
    assert cli.main(["replay", *files, "--json", "--jobs", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)["recordings"]
    for f, row in zip(files, rows):
        assert cli.main(["replay", f, "--json"]) == 0
        one = json.loads(capsys.readouterr().out)
        assert row["recording"] == f and row["events"] == len(one["events"]) and row["reps"] == len(one["reps"])
        assert row["matches_live"] is True and row["calibration"] == one["stats"]["calibration"]
    assert [r["events"] for r in rows] == [1, 0, 1]


def test_report_of_a_folder_writes_each_report_and_an_index(season_dir, tmp_path, capsys):
    out = tmp_path / "season-report"
    assert cli.main(["report", str(season_dir / "week1" / "s1.spinrec"), str(season_dir / "week1" / "s2.spinrec"), "--out", str(out), "--jobs", "1"]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and (out / "s1" / "report.html").exists() and (out / "s2" / "report.html").exists()
    index = (out / "index.html").read_text()
    assert 'href="s1/report.html"' in index and 'href="s2/report.html"' in index


def test_an_empty_folder_says_what_to_give(tmp_path, capsys):
    assert cli.main(["replay", str(tmp_path)]) == 1
    assert "holds no .spinrec recordings" in capsys.readouterr().err
