"""One bad recording costs its own row only (issue 23, finding 8).

Three poison recordings with valid CRCs: a label ``{"set": "1; DROP"}``
(ValueError in replay), ``{"set": 10**30}`` (OverflowError), and a header
whose ``settings`` is ``"nope"`` (AttributeError). ``history DIR``,
``replay DIR`` and ``report DIR`` (in this process and in worker processes)
keep the good file's results, name each bad file in one line on stderr that
says where its traceback went, and write the traceback there. A single
recording gets the same one line, never a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spinemon.app import cli
from spinemon.app.simrun import run_simulated
from spinemon.io import sim
from spinemon.io.recording import KIND_META, KIND_RX, KIND_TX, RecordingWriter, load

POISON = {"drop": "ValueError", "huge": "OverflowError", "nope": "AttributeError"}


def _rewrite(rec, path: Path, header: dict | None = None, label: dict | None = None) -> None:
    with RecordingWriter(path, header or rec.header) as w:
        for r in rec.records:
            if r.kind == KIND_RX:
                w.frame_in(r.payload, r.t_host)
            elif r.kind == KIND_TX:
                w.frame_out(r.payload, r.t_host)
            elif r.kind == KIND_META:
                m = r.meta
                if label and m.get("type") == "label":
                    m = {**m, **label}
                w.meta(m, r.t_host)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("poison")
    run_simulated([sim.SetSpec("deadlift", 3, {2: "rounding"})], 1, out=d / "good.spinrec", rom=False)
    rec = load(d / "good.spinrec")
    _rewrite(rec, d / "drop.spinrec", label={"set": "1; DROP"})
    _rewrite(rec, d / "huge.spinrec", label={"set": 10**30})
    _rewrite(rec, d / "nope.spinrec", header={**rec.header, "settings": "nope"})
    return d


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEMON_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _check_err(err: str, folder: Path, home: Path) -> None:
    assert "Traceback" not in err
    for name, exc in POISON.items():
        lines = [ln for ln in err.splitlines() if f"{name}.spinrec" in ln and exc in ln and "traceback in" in ln]
        assert lines, f"no line names {name}.spinrec:\n{err}"
        log = Path(re.search(r"traceback in (\S+\.log)", lines[0]).group(1))
        assert log.parent == home / "logs"
        text = log.read_text()
        assert str(folder / f"{name}.spinrec") in text and "Traceback (most recent call last)" in text and exc in text


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_replay_of_a_folder_keeps_the_good_row(folder, home, capsys, jobs):
    assert cli.main(["replay", str(folder), "--json", "--jobs", jobs]) == 1
    out, err = capsys.readouterr()
    rows = {Path(r["recording"]).stem: r for r in json.loads(out)["recordings"]}
    assert rows["good"]["error"] is None and rows["good"]["events"] == 1 and rows["good"]["matches_live"] is True
    for name, exc in POISON.items():
        assert exc in rows[name]["error"]
    _check_err(err, folder, home)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_history_of_a_folder_keeps_the_good_session(folder, home, capsys, jobs):
    assert cli.main(["history", str(folder), "--json", "--jobs", jobs]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert [Path(s["recording"]).name for s in doc["sessions"]] == ["good.spinrec"]
    _check_err(err, folder, home)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_report_of_a_folder_writes_the_good_report(folder, home, tmp_path, capsys, jobs):
    out = tmp_path / "rep"
    assert cli.main(["report", str(folder), "--out", str(out), "--jobs", jobs]) == 1
    text, err = capsys.readouterr()
    assert (out / "good" / "report.html").exists() and (out / "index.html").exists()
    assert 'href="good/report.html"' in (out / "index.html").read_text()
    for name in POISON:
        assert not (out / name / "report.html").exists()
    _check_err(err, folder, home)


@pytest.mark.parametrize("name", sorted(POISON))
def test_one_poison_recording_gives_one_line_not_a_traceback(folder, home, capsys, name):
    assert cli.main(["replay", str(folder / f"{name}.spinrec")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert POISON[name] in err and "traceback in" in err
    log = Path(re.search(r"traceback in (\S+\.log)", err).group(1))
    assert "Traceback (most recent call last)" in log.read_text()
