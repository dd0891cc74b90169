"""Reports, round two (issue 26): a date, clock times and the lifter's name;
timed holds in the verdict, named by the hold's own fault; a damaged
recording says what was skipped; one sensor says what it could not judge;
terminal tables fit 80 columns; the rep chart's limit labels are clear of
the dashed lines."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from datetime import datetime

import pytest

from spinemon.app import cli
from spinemon.app.export import trace_recording
from spinemon.app.report import build_tables, format_tables, render_html, write_report
from spinemon.app.simrun import run_simulated
from spinemon.io import sim
from spinemon.io.recording import KIND_META, load


@pytest.fixture(autouse=True)
def _berlin_time(monkeypatch):
    """Clock times are local: pin the zone so the expected text is known."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    d = tmp_path_factory.mktemp("round2")
    specs = {
        "plank": ([sim.SetSpec("plank", 1, {1: "sag"}, hold_s=12.0)], ("upper", "lower")),
        "one": ([sim.SetSpec("deadlift", 3)], ("upper",)),
        # two sets with the same limits side by side: the first set's labels were struck through by the second's lines
        "two": ([sim.SetSpec("deadlift", 6, {2: "rounding"}, rest_s=3.0), sim.SetSpec("deadlift", 6, rest_s=3.0),
                 sim.SetSpec("overhead_press", 6, {2: "arching"})], ("upper", "lower")),
    }
    out = {}
    for name, (sets, imus) in specs.items():
        path = d / f"{name}.spinrec"
        run_simulated(sets, 4, out=path, sim_settings=sim.SimSettings(imus=imus))
        out[name] = path
    # a damaged copy: bytes flipped in the middle, the end cut off
    data = bytearray(out["two"].read_bytes())
    for k in range(len(data) // 3, 2 * len(data) // 3, 2500):
        data[k] ^= 0xFF
    out["damaged"] = d / "damaged.spinrec"
    out["damaged"].write_bytes(bytes(data[:-37]))
    return out


def _replay(argv: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(argv) == 0
    return buf.getvalue()


def test_the_report_has_the_date_the_clock_times_and_the_lifter(sessions, tmp_path):
    rec = load(sessions["two"])
    trace = trace_recording(rec)
    start = rec.records[0].t_host  # the header: written as the recording began (host clock)
    assert rec.records[0].kind == KIND_META
    tables = build_tables(trace, lifter="Ana")
    local = datetime.fromtimestamp(start).astimezone()
    assert tables.session["when"].startswith(f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}-")
    assert tables.session["when"].endswith(f"(UTC{local:%z}"[:-2] + ":" + f"{local:%z}"[-2:] + ")")
    # every event has its clock time, and it is the header's time plus the device seconds
    for e in tables.events:
        want = datetime.fromtimestamp(start + e.t_start - trace.samples.t[0]).strftime("%H:%M:%S")
        assert e.clock == want
    text = format_tables(tables, width=80)
    assert text.splitlines()[0] == f"Session two.spinrec (Ana): {tables.session['when']}"
    page = render_html(tables, {})
    assert f"<title>spinemon report: Ana: {tables.session['when']}</title>" in page
    assert "times of day in local time" in page
    # the name a recording holds is used when none is given; a given one wins
    trace.recording.header["lifter"] = "Bo"
    assert build_tables(trace).session["lifter"] == "Bo" and build_tables(trace, "Ana").session["lifter"] == "Ana"
    # a recording whose host clock was never set: no made-up date, and the page says times are device seconds
    trace.recording.records[0] = type(rec.records[0])(KIND_META, 12.0, rec.records[0].payload, seq=0)
    bare = build_tables(trace)
    assert bare.session["when"] is None and bare.clock is None
    assert "no wall-clock time in this recording" in format_tables(bare, width=80)
    assert "times in device seconds" in render_html(bare, {})


def test_a_plank_session_reads_as_holds_and_its_sag_as_a_sag(sessions):
    trace = trace_recording(load(sessions["plank"]))
    tables = build_tables(trace)
    holds = trace.summary["holds"]
    assert holds and not tables.sets
    verdict = tables.verdict
    assert not any("No sets" in v for v in verdict), verdict
    line = next(v for v in verdict if v.startswith("Set 1, plank:"))
    assert re.search(r"hold 1 sagged \(hips dropped\) \d+ deg past your limit, \d+ s in", line), line
    assert "over-extension" not in line and "arched" not in line
    assert [e.what for e in tables.events if e.exercise == "plank"] == ["sagged (hips dropped)"]
    text = format_tables(tables, width=80)
    assert "Holds (1):" in text and "Sets (0)" not in text and "No sets" not in text
    page = render_html(tables, {})
    holds_html = page[page.index('<section id="holds">'):]
    assert "sagged (hips dropped)" in holds_html[: holds_html.index("</section>")]
    # replay --json lists the holds, each fault with its name
    out = json.loads(_replay(["replay", "--json", str(sessions["plank"])]))
    assert [(h["set"], h["hold"], h["exercise"]) for h in out["holds"]] == [(h["set"], h["hold"], h["exercise"]) for h in holds]
    assert out["holds"][0]["duration_s"] > 5 and [f["what"] for f in out["holds"][0]["faults"]] == ["sagged (hips dropped)"]
    assert "sagged (hips dropped)" in _replay(["replay", str(sessions["plank"])])


def test_a_damaged_recording_says_what_was_skipped_as_replay_does(sessions, tmp_path):
    rec = load(sessions["damaged"])
    assert rec.corrupt_records > 0 and rec.truncated
    said = _replay(["replay", str(sessions["damaged"])])
    from spinemon.app.words import plural

    skipped = f"{plural(rec.corrupt_records, 'corrupt record')} skipped"
    assert skipped in said
    res = write_report(trace_recording(rec), tmp_path / "r", plots=False)
    text = " ".join(format_tables(res.tables, width=80).split())
    assert f"Damaged recording: {skipped}; cut off mid-record" in text
    page = res.html.read_text()
    assert skipped in page and 'class="note damage"' in page


def test_one_sensor_says_not_judged_and_why_not_clean(sessions):
    tables = build_tables(trace_recording(load(sessions["one"])))
    line = next(v for v in tables.verdict if v.startswith("Set 1, deadlift:"))
    assert "clean" not in line, line
    assert "not judged for rounding" in line and "one sensor cannot tell a hip hinge from a rounded back" in line


def test_one_sensor_verdict_on_hand_made_sets():
    from spinemon.app.session_summary import RepRow, SetRow
    from spinemon.app.verdict import set_verdict

    reps = [RepRow.from_dict({"set": 1, "rep": k}) for k in (1, 2, 3)]
    # a curl: one sensor watches the lean back; it cannot judge twisting, and says so beside "clean"
    curl = set_verdict(SetRow.from_dict({"set": 1, "exercise": "curl"}), reps, [], one_sensor=True)
    assert curl.startswith("Set 1, curl: all 3 reps clean; not judged for twisting"), curl
    # a squat with one sensor: the forward lean is judged, lumbar rounding is not
    squat = set_verdict(SetRow.from_dict({"set": 1, "exercise": "squat"}), reps, [], one_sensor=True)
    assert "clean" not in squat and "not judged for rounding, arching or twisting" in squat, squat
    # two sensors: clean is clean
    assert set_verdict(SetRow.from_dict({"set": 1, "exercise": "deadlift"}), reps, []) == "Set 1, deadlift: all 3 reps clean."


@pytest.mark.parametrize("name", ["plank", "one", "two", "damaged"])
def test_terminal_tables_fit_80_columns(sessions, name):
    text = format_tables(build_tables(trace_recording(load(sessions[name]))), width=80)
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, wide
    assert "Events (" in text


def test_the_rep_charts_limit_labels_are_clear_of_the_dashed_lines(sessions, tmp_path):
    """No dashed limit line runs through a limit's label (they were struck
    through by the next set's line), at laptop or phone width."""
    from spinemon.app import plotting

    plt = plotting.pyplot()
    if plt is None:
        pytest.skip("matplotlib is not installed")
    from matplotlib.text import Text

    trace = trace_recording(load(sessions["two"]))
    tables = build_tables(trace)
    drawn = {}
    real_save = plotting.save

    def keep(plt_, fig, path, dpi, **kw):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        ax = fig.axes[0]
        labels = [t.get_window_extent(r) for t in fig.findobj(Text)
                  if re.match(r"((flexion|extension) )?limit [+-]\d", t.get_text().strip()) and t.get_visible()]
        lines = []
        for ln in ax.get_lines():
            if ln.get_linestyle() == "--":
                xy = ax.transData.transform(list(zip(ln.get_xdata(), ln.get_ydata())))
                lines.append(xy)
        drawn[path.name] = (labels, lines)
        return real_save(plt_, fig, path, dpi, **kw)

    plotting.save = keep
    try:
        for style in (plotting.WIDE, plotting.NARROW):
            plotting.plot_reps(plt, trace, tables, tmp_path / f"reps-{style.narrow}.png", style)
    finally:
        plotting.save = real_save
    assert len(drawn) == 2
    for name, (labels, lines) in drawn.items():
        assert len(labels) == 6 and len(lines) == 6, name  # 3 sets x flexion and extension
        for box in labels:
            for (xa, ya), (xb, yb) in lines:
                y = (ya + yb) / 2  # a level line
                crosses = box.y0 < y < box.y1 and min(xa, xb) < box.x1 and max(xa, xb) > box.x0
                assert not crosses, (name, box, (xa, xb, y))


def test_without_jinja2_the_tables_and_charts_are_written_and_one_line_says_why(sessions, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "jinja2", None)  # the extra is not installed
    out = tmp_path / "r"
    assert cli.main(["report", str(sessions["plank"]), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert not (out / "report.html").exists() and (out / "holds.csv").exists()
    words = " ".join(text.split())  # the note is wrapped at 80 columns
    assert words.count("note: report.html not written: jinja2 is not installed (pip install 'spinemon[report]')") == 1
    assert "wrote report.html" not in words and "holds.csv" in words
