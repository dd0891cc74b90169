"""Progress over weeks (issue 14): `spinemon history [DIR]` groups every
recording's replay by exercise and ISO week, with the pain journal beside it.

The season: four weeks of simulated deadlifts (and some squats), rounded reps
in the early weeks and none later, dated through the recording header (its
start time) and, for one recording without a real start time, the file's
modification time. Every weekly figure is checked against what each
recording's own ``replay --json`` reports, computed here independently.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import statistics
from datetime import datetime, timezone

import pytest

from spinemon.app import cli
from spinemon.io import sim
from spinemon.io.recording import header_block, load
from spinemon.app.simrun import run_simulated

HINGES = ("deadlift", "squat", "row")


@pytest.fixture(autouse=True)
def _no_user_journal(tmp_path_factory, monkeypatch):
    """Never read the real ~/.spinemon/journal.jsonl."""
    monkeypatch.setenv("SPINEMON_HOME", str(tmp_path_factory.mktemp("spinemon-home")))


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def set_header_time(path, t: float) -> None:
    """Give a recording another start time: rewrite its header record (both copies, CRCs and all)."""
    head = load(path).records[0]
    data = path.read_bytes()
    old = header_block(head.payload, head.t_host)
    assert data.startswith(old)
    path.write_bytes(header_block(head.payload, t) + data[len(old):])


# (name, start time UTC or None = no real start time in the header, then dated by mtime, sets)
SEASON = [
    ("w1a", "2024-01-02T18:00:00", [("deadlift", {2: "rounding", 4: "rounding"})]),
    ("w1b", "2024-01-04T18:00:00", [("deadlift", {3: "rounding"}), ("squat", {2: "rounding"})]),
    ("w2a", "2024-01-09T18:00:00", [("deadlift", {4: "rounding"})]),
    ("w3a", "2024-01-16T18:00:00", [("deadlift", {}), ("squat", {})]),
    ("w3b", "2024-01-18T18:00:00", [("deadlift", {})]),
    ("w4a", None, [("deadlift", {})]),  # the host clock was not set: mtime 2024-01-24
]
W4_MTIME = "2024-01-24T18:00:00"


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    d = tmp_path_factory.mktemp("history-season")
    when = {}
    for seed, (name, start, sets) in enumerate(SEASON, 11):
        path = d / f"{name}.spinrec"
        run_simulated([sim.SetSpec(ex, 5 if ex == "deadlift" else 4, faults) for ex, faults in sets], seed, out=path, rom=False)
        if start is not None:
            set_header_time(path, utc(start))
            when[path] = start
        else:
            set_header_time(path, 0.0)  # 1970: a clock that was never set
            os.utime(path, (utc(W4_MTIME), utc(W4_MTIME)))
            when[path] = W4_MTIME
    journal = d / "journal.jsonl"
    for argv in (
        ["--pain", "6", "--session", str(d / "w1a.spinrec"), "--at", "2024-01-02T20:00:00Z"],
        ["--pain", "5", "--session", str(d / "w1b.spinrec"), "--at", "2024-01-04T20:00:00Z"],
        ["--pain", "3", "--at", "2024-01-10T08:00:00Z", "--note", "stiff in the morning"],
        ["--pain", "2", "--session", str(d / "w3a.spinrec"), "--at", "2024-01-16T20:00:00Z"],
        ["--pain", "1", "--at", "2024-02-01T08:00:00Z"],  # a week without a session
    ):
        rc, out, err = run(["journal", "add", "--journal", str(journal), *argv])
        assert rc == 0, err
    return d, journal, when


def iso_week(text: str) -> str:
    y, w, _ = datetime.fromisoformat(text).isocalendar()
    return f"{y}-W{w:02d}"


def expected_from_replays(when: dict) -> dict:
    """Per (exercise, week), from each recording's own `replay --json` (no history code involved)."""
    rows: dict = {}
    for path, start in when.items():
        rc, out, _ = run(["replay", str(path), "--json"])
        assert rc == 0
        one = json.loads(out)
        exercises = {r["exercise"] for r in one["reps"]} | {s["exercise"] for s in one["sets"]} | {e["exercise"] for e in one["events"]}
        for ex in exercises:
            g = rows.setdefault((ex, iso_week(start)), {"sessions": 0, "sets": 0, "reps": 0, "alerts": 0, "peaks": [], "creeps": [], "shares": [], "files": []})
            g["sessions"] += 1
            g["files"].append(path.name)
            g["sets"] += sum(1 for s in one["sets"] if s["exercise"] == ex)
            reps = [r for r in one["reps"] if r["exercise"] == ex]
            g["reps"] += len(reps)
            g["peaks"] += [r["peak_flexion_deg"] for r in reps]
            if ex in HINGES:
                g["shares"] += [r["pelvis_share"] for r in reps if r.get("pelvis_share") is not None]
            for s in (s for s in one["sets"] if s["exercise"] == ex):
                mine = sorted((r for r in reps if r["set"] == s["set"]), key=lambda r: r["rep"])
                if len(mine) >= 2:
                    g["creeps"].append(mine[-1]["peak_flexion_deg"] - mine[0]["peak_flexion_deg"])
            g["alerts"] += sum(1 for e in one["events"] if e["exercise"] == ex and e["t_alert"] is not None)
    return rows


@pytest.fixture(scope="module")
def history_json(season):
    d, journal, _ = season
    rc, out, err = run(["history", str(d), "--journal", str(journal), "--json", "--jobs", "2"])
    assert rc == 0, err
    assert "Traceback" not in err
    return json.loads(out)


def test_weekly_figures_match_each_recordings_replay(season, history_json):
    _, _, when = season
    want = expected_from_replays(when)
    got = {(r["exercise"], r["week"]): r for r in history_json["rows"]}
    assert set(got) == set(want)
    assert set(want) == {("deadlift", w) for w in ("2024-W01", "2024-W02", "2024-W03", "2024-W04")} | {("squat", "2024-W01"), ("squat", "2024-W03")}
    for key, w in want.items():
        r = got[key]
        assert (r["sessions"], r["sets"], r["reps"], r["alerts"]) == (w["sessions"], w["sets"], w["reps"], w["alerts"]), key
        assert sorted(r["recordings"]) == sorted(w["files"])
        assert r["alerts_per_100_reps"] == pytest.approx(100 * w["alerts"] / w["reps"], abs=0.01)
        assert r["peak_flexion_deg"] == pytest.approx(statistics.median(w["peaks"]), abs=0.01)
        assert r["creep_deg"] == pytest.approx(statistics.mean(w["creeps"]), abs=0.01)
        assert r["pelvis_share"] == pytest.approx(statistics.mean(w["shares"]), abs=0.001)
    # the simulated season really improves: rounded reps buzzed early, none later
    assert want[("deadlift", "2024-W01")]["alerts"] >= 2 and want[("deadlift", "2024-W04")]["alerts"] == 0


def test_dates_come_from_the_header_or_the_file_time_and_say_which(history_json):
    by_name = {os.path.basename(s["recording"]): s for s in history_json["sessions"]}
    assert by_name["w1a.spinrec"]["date_from"] == "header" and by_name["w1a.spinrec"]["time"] == "2024-01-02T18:00:00Z"
    assert by_name["w4a.spinrec"]["date_from"] == "mtime" and by_name["w4a.spinrec"]["time"] == "2024-01-24T18:00:00Z"
    assert "not a real date" in by_name["w4a.spinrec"]["date_note"]
    assert history_json["dates"] == {"header": 5, "mtime": 1}
    assert next(r for r in history_json["rows"] if r["week"] == "2024-W04")["dated_by"] == {"header": 0, "mtime": 1}


def test_the_journal_sits_beside_the_right_week(history_json):
    got = {(r["exercise"], r["week"]): r["journal"] for r in history_json["rows"]}
    w1 = got[("deadlift", "2024-W01")]
    assert (w1["entries"], w1["mean_pain"], w1["max_pain"]) == (2, 5.5, 6)
    assert sorted((x["recording"], x["pain"]) for x in w1["linked"]) == [("w1a.spinrec", 6), ("w1b.spinrec", 5)]
    assert [(x["recording"], x["pain"]) for x in got[("squat", "2024-W01")]["linked"]] == [("w1b.spinrec", 5)]
    w2 = got[("deadlift", "2024-W02")]
    assert (w2["entries"], w2["mean_pain"], w2["max_pain"], w2["linked"]) == (1, 3.0, 3, [])
    assert [x["recording"] for x in got[("squat", "2024-W03")]["linked"]] == ["w3a.spinrec"]
    assert got[("deadlift", "2024-W04")]["entries"] == 0
    weeks = {w["week"]: w for w in history_json["weeks"]}
    assert weeks["2024-W05"]["sessions"] == 0 and weeks["2024-W05"]["journal"]["entries"] == 1
    assert history_json["journal"]["entries"] == 5


def test_the_table_and_the_verdict_in_words(season):
    d, journal, _ = season
    rc, out, err = run(["history", str(d), "--journal", str(journal), "--jobs", "1"])
    assert rc == 0, err
    lines = out.splitlines()
    head = lines[0]
    # the most important columns, within 80 columns (off a terminal); the key under the table says what they are
    for col in ("exercise", "week", "reps", "alerts/100", "peak", "limit", "pain", "sess", "alerts", "creep"):
        assert col in head.split()
    assert all(len(ln) <= 80 for ln in lines), max(lines, key=len)
    assert "alerts/100: alerts per 100 reps; peak: median of each rep's peak" in " ".join(out.split())
    table = [ln for ln in lines[1:lines.index("")] if not ln.startswith(("(not shown", " "))]
    assert [ln.split()[:2] for ln in table] == [["deadlift", f"2024-W0{i}"] for i in range(1, 5)] + [["squat", "2024-W01"], ["squat", "2024-W03"], ["(no", "session)"]]
    words = " ".join(out.split())  # the verdict is wrapped at 80 columns
    verdict = words[words.index("deadlift: alerts"):]
    assert "alerts per 100 reps fell from" in verdict and "to 0 over 4 weeks" in verdict and "peak flexion at the bottom" in verdict
    assert "1 from the file's modification time (w4a.spinrec" in words


def test_png_chart_is_written(season, tmp_path):
    d, journal, _ = season
    png = tmp_path / "history.png"
    rc, out, err = run(["history", str(d), "--journal", str(journal), "--png", str(png), "--jobs", "1"])
    assert rc == 0, err
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert f"wrote {png}" in out


def test_png_without_matplotlib_says_what_to_install(season, tmp_path, monkeypatch):
    import sys

    d, journal, _ = season
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    rc, out, err = run(["history", str(d), "--journal", str(journal), "--png", str(tmp_path / "h.png")])
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and "pip install -e '.[report]'" in err
    assert not (tmp_path / "h.png").exists()


def test_report_of_a_folder_has_a_history_section(season, tmp_path):
    d, journal, _ = season
    out = tmp_path / "season-report"
    rc, text, err = run(["report", str(d / "w1a.spinrec"), str(d / "w4a.spinrec"), "--out", str(out), "--journal", str(journal), "--jobs", "1"])
    assert rc == 0, err
    index = (out / "index.html").read_text()
    assert '<section id="history"><h2>History</h2>' in index
    assert "deadlift: alerts per 100 reps fell from" in index and "over 4 weeks" in index
    assert 'src="data:image/png;base64,' in index and (out / "history.png").exists()
    assert 'href="w1a/report.html"' in index  # the per-recording table is still there


# -- bad input ------------------------------------------------------------------
def test_an_empty_folder_and_a_folder_without_recordings(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = run(["history", str(empty), "--journal", os.devnull])
    assert rc == 1 and out == "" and "is empty" in err and err.count("\n") == 1
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("squats felt good")
    rc, out, err = run(["history", str(other), "--journal", os.devnull])
    assert rc == 1 and "holds no .spinrec recordings" in err and err.count("\n") == 1


def test_a_path_or_journal_that_does_not_exist_is_a_command_line_error(season, tmp_path):
    d, _, _ = season
    rc, out, err = run(["history", str(tmp_path / "nope")])
    assert rc == 2 and "does not exist" in err and "spinemon history --help" in err and err.count("\n") == 1
    rc, out, err = run(["history", str(d), "--journal", str(tmp_path / "missing.jsonl")])
    assert rc == 2 and "--journal" in err and "does not exist" in err and err.count("\n") == 1
    rc, out, err = run(["history", str(d), "--png", str(tmp_path / "no" / "such" / "h.png")])
    assert rc == 2 and "does not exist" in err
    rc, out, err = run(["history", str(d), "--jobs", "0"])
    assert rc == 2


def test_no_journal_at_the_default_place_is_a_note(season, tmp_path, monkeypatch):
    d, _, _ = season
    monkeypatch.setenv("SPINEMON_HOME", str(tmp_path / "home"))
    rc, out, err = run(["history", str(d / "w1a.spinrec"), "--json"])
    assert rc == 0 and "Traceback" not in err
    assert "note: no pain journal at" in err and "spinemon journal add" in err
    doc = json.loads(out)
    assert doc["journal"]["exists"] is False and doc["rows"][0]["journal"]["entries"] == 0


def test_unreadable_and_truncated_recordings(season, tmp_path):
    d, journal, _ = season
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(d / "w1a.spinrec", mixed / "good.spinrec")
    data = (d / "w3b.spinrec").read_bytes()
    (mixed / "cut.spinrec").write_bytes(data[: len(data) - 3000])  # power lost mid-write
    (mixed / "broken.spinrec").write_bytes(b"not a recording")
    (mixed / "zero.spinrec").write_bytes(b"")
    rc, out, err = run(["history", str(mixed), "--journal", str(journal), "--json", "--jobs", "1"])
    assert rc == 1 and "Traceback" not in err
    doc = json.loads(out)
    assert sorted(os.path.basename(u["recording"]) for u in doc["unreadable"]) == ["broken.spinrec", "zero.spinrec"]
    assert "note: skipped broken.spinrec:" in err and "note: skipped zero.spinrec:" in err
    assert "cut.spinrec was cut off mid-record" in err and "could not be read and are left out" in err
    cut = next(s for s in doc["sessions"] if s["recording"].endswith("cut.spinrec"))
    assert cut["truncated"] is True
    # the cut recording counts up to its last complete record: what its own replay finds
    rc, one, _ = run(["replay", str(mixed / "cut.spinrec"), "--json"])
    one = json.loads(one)
    row = next(r for r in doc["rows"] if r["week"] == "2024-W03")
    assert row["reps"] == len(one["reps"]) > 0 and row["sessions"] == 1
    # nothing readable at all
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.spinrec").write_bytes(b"\x00" * 100)
    rc, out, err = run(["history", str(bad), "--journal", str(journal)])
    assert rc == 1 and out == "" and "the recording could not be read" in err and err.count("\n") == 1


# -- real recordings ----------------------------------------------------------------
def test_real_walking_in_history_gives_no_reps_and_no_alerts(gait_dir, tmp_path):
    """gait-l5 (C. Voisard et al., IPOL; GNU AGPL 3.0): standing, walking 10 m, turning, walking back."""
    cols = "ax=Acc_X,ay=Acc_Y,az=Acc_Z,gx=Gyr_X,gy=Gyr_Y,gz=Gyr_Z"
    trials = sorted(gait_dir.glob("*_lb.txt"))
    assert len(trials) == 38
    for f in trials:
        rc, _, err = run(["import", str(f), "--columns", cols, "--out", str(tmp_path / f"{f.stem}.spinrec")])
        assert rc == 0, err
    rc, out, err = run(["history", str(tmp_path), "--journal", os.devnull, "--json", "--jobs", "1"])
    assert rc == 0, err
    doc = json.loads(out)
    assert len(doc["sessions"]) == 38 and not doc["unreadable"]
    assert sum(r["sessions"] for r in doc["rows"]) == 38
    assert sum(r["reps"] for r in doc["rows"]) == 0 and sum(r["alerts"] for r in doc["rows"]) == 0
    assert all(r["one_sensor_sessions"] == r["sessions"] for r in doc["rows"])  # one IMU: no lumbar angle figures
    assert all(r["peak_flexion_deg"] is None and r["alerts_per_100_reps"] is None for r in doc["rows"])
