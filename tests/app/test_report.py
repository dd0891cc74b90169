"""spinemon report: per-set and overview PNGs, CSV tables, one offline HTML page."""

from __future__ import annotations

import argparse
import base64
import copy
import csv
import json
import re
import struct
import sys
from pathlib import Path

import pytest

from spinemon.io import sim
from spinemon.errors import RecordingError
from spinemon.app.export import trace_recording
from spinemon.io.recording import load
from spinemon.app.report import build_tables, format_tables, MISSING_MATPLOTLIB, render_html, write_report
from spinemon.app.commands.report import add_arguments, main
from spinemon.app.simrun import run_simulated

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    path = d / "s.spinrec"
    sets = [sim.SetSpec("deadlift", 3, {2: "rounding"}), sim.SetSpec("curl", 4, {3: "hip_swing"}, rest_s=2.0)]
    run_simulated(sets, 2, out=path)
    return {"dir": d, "path": path, "trace": trace_recording(load(path))}


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _args(*argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args([str(a) for a in argv])


def test_report_writes_plots_csv_and_offline_html(session, capsys):
    out = session["dir"] / "rep"
    assert main(_args(session["path"], "--out", out)) == 0
    summ = session["trace"].summary
    sets, reps = summ["sets"], summ["reps"]
    assert len(sets) == 2 and len(reps) >= 6
    # one PNG per set, the per-rep peaks against the limit, and an overview: small figures of real content
    pngs = sorted(out.glob("*.png"))
    wide = [p for p in pngs if not p.stem.endswith("-narrow")]
    assert [p.name for p in wide] == ["overview.png", "reps.png"] + [f"set-{s['set']}.png" for s in sets]
    # each chart also at phone width (a 3.9 in figure at 150 dpi), for a page read on a phone
    assert sorted(p.name for p in pngs if p not in wide) == sorted(p.stem + "-narrow.png" for p in wide)
    for p in pngs:
        data = p.read_bytes()
        w, h = _png_size(data)
        if p in wide:
            assert 600 <= w <= 1100 and 300 <= h <= 500, (p.name, w, h)
        else:
            assert 450 <= w <= 800 and 450 <= h <= 1100, (p.name, w, h)
        assert len(data) > 20_000  # a curve, bands, labels: not an empty canvas
    # CSV: one row per rep, the pipeline's reps in order, every metric present
    rep_rows = _rows(out / "reps.csv")
    assert [(int(r["set"]), int(r["rep"])) for r in rep_rows] == [(r["set"], r["rep"]) for r in reps]
    for row, r in zip(rep_rows, reps):
        assert float(row["peak_flexion_deg"]) == r["peak_flexion_deg"]
        assert row["exercise"] == r["exercise"]
    set_rows = _rows(out / "sets.csv")
    assert [int(r["set"]) for r in set_rows] == [s["set"] for s in sets]
    assert [int(r["reps"]) for r in set_rows] == [sum(1 for r in reps if r["set"] == s["set"]) for s in sets]
    ev_rows = _rows(out / "events.csv")
    assert [(r["kind"], float(r["t_start"])) for r in ev_rows] == [(e["kind"], e["t_start"]) for e in summ["events"]]
    # the faulty reps carry their events in the rep table
    for e in summ["events"]:
        row = next(r for r in rep_rows if int(r["set"]) == e["set"] and int(r["rep"]) == e["rep"])
        assert e["kind"] in row["events"].split(";")
    # HTML: every PNG embedded as a data URI, the tables inline, nothing fetched from elsewhere
    page = (out / "report.html").read_text()
    uris = re.findall(r'(?:src|srcset)="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == len(pngs)
    assert {base64.b64decode(u) for u in uris} == {p.read_bytes() for p in pngs}
    assert "<table>" in page and page.count("<tr>") >= len(reps) + len(sets) + 2
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(script|link|iframe)\b", page) and "url(" not in page
    # terminal: the tables
    text = capsys.readouterr().out
    assert "Sets (2):" in text and f"Reps ({len(reps)}):" in text and "report.html" in text
    assert "matplotlib" not in text


def test_unknown_set_fields_event_kinds_and_sections_appear_without_code_changes(session):
    trace = copy.copy(session["trace"])
    result = copy.copy(trace.result)
    summ = copy.deepcopy(trace.summary)
    summ["sets"][0]["hold_time_s"] = 31.5
    summ["sets"][1]["warmup_quality"] = "cold"
    rep = summ["reps"][0]
    summ["events"].append({"kind": "mystery_wobble", "t_start": rep["t_start"], "t_end": rep["t_end"], "t_alert": rep["t_start"] + 0.1,
                           "peak_deg": 9.5, "limit_deg": 5.0, "set": rep["set"], "rep": rep["rep"], "exercise": rep["exercise"], "wobble_hz": 3.0})
    summ["future_section"] = [{"name": "core hold", "seconds": 30}]
    result.summary = summ
    trace.result = result
    out = session["dir"] / "generic"
    res = write_report(trace, out)
    assert len(res.plots) == 8  # drawing an unknown kind works (4 charts, each at laptop and phone width)
    sets = _rows(out / "sets.csv")
    assert sets[0]["hold_time_s"] == "31.5" and sets[1]["warmup_quality"] == "cold"
    ev = _rows(out / "events.csv")
    assert ev[-1]["kind"] == "mystery_wobble" and ev[-1]["wobble_hz"] == "3.0"
    reps = _rows(out / "reps.csv")
    assert "mystery_wobble" in reps[0]["events"]
    page = (out / "report.html").read_text()
    # shown with readable names (underscores to spaces, units in brackets)
    for needle in ("hold time (s)", "31.50", "warmup quality", "cold", "mystery_wobble", "wobble hz", "future section", "core hold"):
        assert needle in page
    text = format_tables(build_tables(trace))
    assert "hold_time_s" in text and "mystery_wobble" in text and "future_section: 1" in text


def test_without_matplotlib_the_tables_are_still_written(session, monkeypatch, capsys):
    # simulate the missing extra: importing matplotlib fails
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    out = session["dir"] / "noplot"
    assert main(_args(session["path"], "--out", out)) == 0
    text = capsys.readouterr().out
    notes = [line for line in text.splitlines() if "matplotlib" in line]
    assert len(notes) == 1 and " ".join(text.split()).count(" ".join(f"note: {MISSING_MATPLOTLIB}".split())) == 1  # wrapped at 80 columns
    assert not list(out.glob("*.png"))
    assert len(_rows(out / "reps.csv")) == len(session["trace"].summary["reps"])
    page = (out / "report.html").read_text()
    assert "<img" not in page and "<table>" in page and "matplotlib is not installed" in page


def test_default_output_folder_and_errors(session, tmp_path):
    assert main(_args(session["path"])) == 0
    assert (session["dir"] / "s-report" / "report.html").exists()
    with pytest.raises(RecordingError, match="no such file"):
        main(_args(tmp_path / "missing.spinrec"))
    junk = tmp_path / "junk.spinrec"
    junk.write_bytes(b"not a recording")
    with pytest.raises(RecordingError, match="not a spinemon recording"):
        main(_args(junk))


def test_the_verdict_is_what_a_coach_reads_first(session):
    """In words, at the top: the faulty reps by number and by how far, the clean ones, creep."""
    tables = build_tables(session["trace"])
    summ = session["trace"].summary
    lines = tables.verdict
    for st in summ["sets"]:
        line = next(v for v in lines if v.startswith(f"Set {st['set']}, {st['exercise']}:"))
        bad = sorted({e["rep"] for e in summ["events"] if e["set"] == st["set"] and e["kind"] != "spine_creep"})
        for k in bad:
            assert re.search(rf"rep {k} (rounded|arched|arched the lower back|twisted|bent sideways|swung|swung the weight|leaned back \(hip swing\)) \d+ deg(/s)? past your limit", line), line
        clean = [r["rep"] for r in summ["reps"] if r["set"] == st["set"] and r["rep"] not in bad]
        if bad and clean:
            assert "clean" in line
    # the hinge in one number, per rep (two sensors): the hips' share of the trunk's lean
    hinge = [r for r in summ["reps"] if r["exercise"] in ("deadlift", "squat")]
    assert hinge and all(r["pelvis_share"] is not None and 0.0 <= r["pelvis_share"] <= 1.0 for r in hinge)
    page = render_html(tables, {})
    assert page.index('id="verdict"') < page.index("<details>")  # verdict first, details folded away
    assert "peak_sagittal_velocity_deg_s" not in page and "range_moves_before" not in page  # readable names only


def typed(cls, rows):
    """Hand-made rows as the verdict takes them (the summary's typed rows)."""
    return [cls.from_dict(r) for r in rows]


def test_verdict_words_on_hand_made_sets():
    from spinemon.app.session_summary import EventRow, RepRow, SetRow
    from spinemon.app.verdict import clean_ranges, pelvis_share, set_verdict

    assert clean_ranges([5, 1, 2, 3]) == "1-3 and 5" and clean_ranges([2]) == "2" and clean_ranges([1, 3, 4, 6]) == "1, 3-4 and 6"
    reps = [{"set": 1, "rep": k, "peak_flexion_deg": f, "peak_trunk_deg": 60.0} for k, f in ((1, 10.0), (2, 12.0), (3, 14.0), (4, 38.0), (5, 14.0))]
    events = [{"set": 1, "rep": 4, "kind": "over_flexion", "peak_deg": 38.0, "limit_deg": 29.0}]
    line = set_verdict(SetRow.from_dict({"set": 1, "exercise": "deadlift"}), typed(RepRow, reps), typed(EventRow, events))
    assert line.startswith("Set 1, deadlift: rep 4 rounded 9 deg past your limit; reps 1-3 and 5 clean; flexion crept 4 deg over the set")
    assert pelvis_share(reps[0]) == pytest.approx(50 / 60) and pelvis_share({"peak_trunk_deg": 5.0, "peak_flexion_deg": 1.0}) is None
    # the hips' share falls over the set: the coach's cue
    falling = [dict(r, peak_flexion_deg=f) for r, f in zip(reps, (8.0, 15.0, 22.0, 30.0, 35.0))]
    assert "cue: push the hips back" in set_verdict(SetRow.from_dict({"set": 1, "exercise": "deadlift"}), typed(RepRow, falling), [])
    assert "hips did" not in set_verdict(SetRow.from_dict({"set": 1, "exercise": "deadlift"}), typed(RepRow, reps), [], one_sensor=True)


def test_a_curl_lean_back_is_called_a_hip_swing():
    from spinemon.app.session_summary import EventRow, RepRow, SetRow
    from spinemon.app.verdict import event_words, set_verdict

    assert event_words("over_extension", "curl") == "leaned back (hip swing)"
    assert event_words("over_extension", "deadlift") == "arched"
    line = set_verdict(SetRow.from_dict({"set": 2, "exercise": "curl"}), typed(RepRow, [{"set": 2, "rep": 1}, {"set": 2, "rep": 2}]),
                       typed(EventRow, [{"set": 2, "rep": 2, "kind": "over_extension", "peak_deg": -19.0, "limit_deg": -11.0}]))
    assert line == "Set 2, curl: rep 2 leaned back (hip swing) 8 deg past your limit; rep 1 clean."


def test_the_sensors_own_checks_read_as_sentences(session):
    """Drift checks, the mounting heading and the wearable's own counts are
    said in words, in the terminal and the HTML, never dumped as fields."""
    from spinemon.app.report import sensor_checks

    tables = build_tables(session["trace"])
    checks = sensor_checks(tables.other)
    assert any(c.startswith("Before set 1: standing still") and "in place" in c for c in checks)
    assert any(c.startswith("Sensor heading on the back") and "upper" in c for c in checks)
    text = format_tables(tables)
    page = render_html(tables, {})
    for out in (text, page):
        assert "Sensor checks" in out and "heading_deg" not in out and "drift_checks" not in out and "bend_deg" not in out
    moved = sensor_checks({"drift_checks": [{"set": 3, "drift_deg": {"upper": 9.04}, "flagged": True, "rezeroed": False}],
                           "device": {"restarts": 1, "samples_lost_device": 0, "heap_free_min": 40960, "guard_alerts": 2}})
    assert moved == [
        "Before set 3: standing still, the sensors were upper 9.0 deg from where calibration found them: moved: re-attach the sensors and calibrate again.",
        "The wearable: restarted 1 time, 0 samples lost on the wearable, its own guard buzzed 2 times, free memory never below 40 KB.",
    ]


# ------------------------------------------------------------------ typed rows, the same files
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "report-golden.json"


def report_outputs(folder: Path, monkeypatch) -> dict:
    """What `spinemon report` writes for a small simulated session (a rounded
    deadlift, a plank hold, alternating lunges with one side bending more):
    its CSV files, the verdict, the terminal text and the page (no charts),
    with the wall clock pinned to a fixed time in UTC."""
    import time

    from spinemon.app import report as report_mod

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(report_mod, "clock_of", lambda trace: 1_700_000_000.0)
    p = folder / "s.spinrec"
    sets = [sim.SetSpec("deadlift", 2, {2: "rounding"}, rest_s=1.0), sim.SetSpec("plank", 1, {}, rest_s=1.0, hold_s=5.0),
            sim.SetSpec("lunge", 2, {}, rest_s=1.0, side="alternate", asymmetry_deg=8.0)]
    run_simulated(sets, 3, out=p, rom=False, sim_settings=sim.SimSettings(rate_hz=50.0))
    res = write_report(trace_recording(load(p)), folder / "rep", plots=False)
    out: dict = {f.name: f.read_text() for f in sorted((folder / "rep").glob("*.csv"))}
    out["verdict"] = res.tables.verdict
    out["terminal"] = format_tables(res.tables, 200)
    out["html"] = report_mod.render_html(res.tables, {}, None)
    return out


def test_the_report_files_are_as_before_the_rows_were_typed(tmp_path, monkeypatch):
    """The CSV files, verdict, terminal tables and page of a small simulated
    session are byte for byte those written before the report's rows became
    frozen dataclasses (tests/fixtures/report-golden.json, made then)."""
    import time

    pytest.importorskip("jinja2")
    try:
        got = report_outputs(tmp_path, monkeypatch)
    finally:
        monkeypatch.undo()
        time.tzset()  # the process's own time zone back for the tests after this one
    want = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == want[k], k
    assert "holds.csv" in got and "rounded" in got["events.csv"] and "left reps bend" in " ".join(got["verdict"])
