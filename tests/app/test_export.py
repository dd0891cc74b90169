"""spinemon export / import: samples CSV, events CSV, CSV -> recording, round trip."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
import pytest

import spinemon_protocol as proto
from spinemon.io import sim
from spinemon.errors import ConfigError, RecordingError, SpinemonError
from spinemon.app.export import CsvImportError, export_csv, import_csv, parse_axes, parse_columns, sample_columns, trace_recording
from spinemon.app.commands.export import add_arguments as add_export_arguments
from spinemon.app.commands.export import main as export_main
from spinemon.app.commands.csv_import import add_arguments as add_import_arguments
from spinemon.app.commands.csv_import import main as import_main
from spinemon.io.recording import load
from spinemon.io.atomic import ExistingOutputError
from spinemon.app.commands import UsageError
from spinemon.app.replay import replay
from spinemon.app.simrun import run_simulated
from spinemon.core.stream import G, FrameDecoder

PERIOD = 0.01  # the simulated wearer streams at 100 Hz


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A short labelled two-set session with one faulty rep in each set."""
    d = tmp_path_factory.mktemp("export")
    path = d / "s.spinrec"
    sets = [sim.SetSpec("deadlift", 3, {2: "rounding"}), sim.SetSpec("overhead_press", 3, {3: "arching"}, rest_s=2.0)]
    run_simulated(sets, 3, out=path)
    rec = load(path)
    trace = trace_recording(rec)
    out = d / "s.csv"
    exp = export_csv(trace, out)
    return {"dir": d, "path": path, "rec": rec, "trace": trace, "export": exp, "csv": out}


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _events(path):
    return [e.as_dict() for e in replay(load(path)).events]


def _assert_same_events(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert (x["kind"], x["set"], x["rep"], x["exercise"]) == (y["kind"], y["set"], y["rep"], y["exercise"])
        for k in ("t_start", "t_alert", "t_end"):
            assert abs(x[k] - y[k]) <= PERIOD + 1e-9, (k, x, y)
        assert abs(x["peak_deg"] - y["peak_deg"]) <= 0.5


# -- trace ----------------------------------------------------------------------
def test_trace_is_the_replay_path(session):
    """The per-sample trace runs the same walk as session.replay: same events, same summary."""
    trace, rec = session["trace"], session["rec"]
    rep = replay(rec)
    assert [e.as_dict() for e in trace.result.events] == [e.as_dict() for e in rep.events]
    assert trace.summary == rep.summary
    s = trace.samples
    assert len(s) == rep.stats["samples"]
    assert np.all(np.diff(s.seq) == 1)
    # angles exist from calibration on, and match what the detector saw at each alert
    assert np.isnan(s.flexion_deg[0]) and not np.isnan(s.flexion_deg[-1])
    for e in rep.events:
        if e.kind not in ("over_flexion", "over_extension"):
            continue
        i = int(np.searchsorted(s.t, e.t_start - 1e-9))
        past = s.flexion_deg[i] - e.limit_deg if e.kind == "over_flexion" else e.limit_deg - s.flexion_deg[i]
        assert past > 0  # the event starts at the first sample past the limit
    assert [lab["exercise"] for _, lab in trace.labels] == ["deadlift", "overhead_press"]


# -- export -----------------------------------------------------------------------
def test_export_columns_rows_and_event_columns(session):
    trace, exp = session["trace"], session["export"]
    rows = _rows(session["csv"])
    assert list(rows[0]) == sample_columns(("upper", "lower")) == exp.columns
    assert len(rows) == len(trace.samples) == exp.rows
    # SI values as decoded
    s = trace.samples
    for i in (0, len(rows) // 2, len(rows) - 1):
        assert float(rows[i]["t_s"]) == pytest.approx(s.t[i], abs=1e-6)
        assert int(rows[i]["seq"]) == s.seq[i]
        assert float(rows[i]["lower.az_m_s2"]) == pytest.approx(s.acc["lower"][i, 2], rel=1e-7)
        assert float(rows[i]["upper.gy_rad_s"]) == pytest.approx(s.gyr["upper"][i, 1], rel=1e-7, abs=1e-12)
    assert rows[0]["flexion_deg"] == ""  # calibrating: no angle yet
    assert float(rows[-1]["flexion_deg"]) == pytest.approx(s.flexion_deg[-1], abs=1e-3)
    # event columns: active over [t_start, t_end], alert marked once
    events = trace.summary["events"]
    for e in events:
        active = [float(r["t_s"]) for r in rows if e["kind"] in r["events"].split(";")]
        assert min(active) == pytest.approx(e["t_start"], abs=1e-6)
        assert max(active) == pytest.approx(e["t_end"], abs=1e-6)
    fired = sorted((k, round(float(r["t_s"]), 4)) for r in rows for k in r["alerts"].split(";") if k)
    assert fired == sorted((e["kind"], e["t_alert"]) for e in events if e["t_alert"] is not None)
    # set/rep/exercise: every rep's samples carry its numbers, labelled sets say so
    for r in trace.summary["reps"]:
        inside = [x for x in rows if r["t_start"] <= float(x["t_s"]) <= r["t_end"]]
        assert inside and all(x["rep"] == str(r["rep"]) and x["set"] == str(r["set"]) for x in inside)
        assert all(x["exercise"] == r["exercise"] and x["labelled"] == "1" for x in inside)
    assert rows[0]["set"] == "" and rows[0]["labelled"] == "0"


def test_events_csv_matches_the_summary(session):
    rows = _rows(session["export"].events_csv)
    events = session["trace"].summary["events"]
    assert len(rows) == len(events) >= 2
    for r, e in zip(rows, events):
        assert r["kind"] == e["kind"] and int(r["set"]) == e["set"] and int(r["rep"]) == e["rep"]
        assert float(r["peak_deg"]) == e["peak_deg"] and float(r["t_alert"]) == e["t_alert"]


# -- round trip ---------------------------------------------------------------------
def test_round_trip_export_import_replay_gives_the_same_events(session):
    out = session["dir"] / "roundtrip.spinrec"
    res = import_csv(session["csv"], out)
    assert res.samples == len(session["trace"].samples) and res.labels == 2
    rec = load(out)
    assert rec.header["source"] == "import" and rec.header["import"]["columns"]["upper.ax"] == "upper.ax_m_s2"
    _assert_same_events(session["trace"].summary["events"], _events(out))
    again = replay(rec).summary
    assert [(r["set"], r["rep"], r["exercise"]) for r in again["reps"]] == [(r["set"], r["rep"], r["exercise"]) for r in session["trace"].summary["reps"]]


def _decoded(path):
    dec = FrameDecoder()
    blocks = [b for _, f in load(path).frames_in() for b in dec.feed(f)]
    return blocks


def _phone_csv(session, path, *, delim=";"):
    """The session as a phone app might log it: g and deg/s, other axes, ms-free seconds."""
    s = session["trace"].samples
    m = parse_axes("x,-z,y")  # board = m @ source  ->  source = m.T @ board
    cols = ["time"]
    for pre in ("U", "L"):
        cols += [f"{pre}accX", f"{pre}accY", f"{pre}accZ", f"{pre}gyroX", f"{pre}gyroY", f"{pre}gyroZ"]
    cols += ["Set", "Exercise", "Labelled"]
    exp = _rows(session["csv"])
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delim)
        w.writerow(cols)
        for i in range(len(s)):
            row = [f"{s.t[i]:.6f}"]
            for sen in ("upper", "lower"):
                a = m.T @ s.acc[sen][i] / G
                g = np.degrees(m.T @ s.gyr[sen][i])
                row += [repr(float(x)) for x in a] + [repr(float(x)) for x in g]
            row += [exp[i]["set"], exp[i]["exercise"], exp[i]["labelled"]]
            w.writerow(row)
    spec = "t=time," + ",".join(
        f"{sen}.{k}={pre}{c}" for sen, pre in (("upper", "U"), ("lower", "L")) for k, c in
        (("ax", "accX"), ("ay", "accY"), ("az", "accZ"), ("gx", "gyroX"), ("gy", "gyroY"), ("gz", "gyroZ")))
    return spec + ",set=Set,exercise=Exercise,labelled=Labelled"


def test_import_maps_columns_units_and_axes(session):
    src = session["dir"] / "phone.csv"
    spec = _phone_csv(session, src)
    out = session["dir"] / "phone.spinrec"
    res = import_csv(src, out, columns=spec, acc_unit="g", gyr_unit="dps", axes="x,-z,y")
    assert res.rate_hz == pytest.approx(100.0)
    # the samples come back in the board frame, SI, within one LSB of the chosen range
    s = session["trace"].samples
    blocks = _decoded(out)
    acc = np.concatenate([b.acc["lower"] for b in blocks])
    gyr = np.concatenate([b.gyr["upper"] for b in blocks])
    t = np.concatenate([b.t for b in blocks])
    assert len(t) == len(s)
    assert np.max(np.abs(acc - s.acc["lower"])) <= res.acc_fs_g * G / 32768
    assert np.max(np.abs(gyr - s.gyr["upper"])) <= math.radians(res.gyr_fs_dps) / 32768
    assert np.allclose(t, s.t, atol=1e-6)
    _assert_same_events(session["trace"].summary["events"], _events(out))


def test_one_imu_with_fixed_rate_and_no_time_column(tmp_path):
    rng = np.random.default_rng(1)
    n = 700
    path = tmp_path / "one.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ax", "ay", "az", "wx", "wy", "wz"])
        for i in range(n):
            w.writerow([1.0 + 0.0002 * rng.standard_normal(), 0.0, 0.0, 0.0, 0.0, 0.5])
    out = tmp_path / "one.spinrec"
    res = import_csv(path, out, columns="ax=ax,ay=ay,az=az,gx=wx,gy=wy,gz=wz", rate_hz=50, acc_unit="g", gyr_unit="dps")
    frames = [proto.decode(f) for _, f in load(out).frames_in()]
    assert {f.mask for f in frames} == {proto.SENSOR_UPPER} and {f.period_us for f in frames} == {20000}
    assert sum(f.count for f in frames) == n == res.samples and res.frames == math.ceil(n / 8)
    assert [f.seq for f in frames] == list(range(0, n, 8))
    blocks = _decoded(out)
    t = np.concatenate([b.t for b in blocks])
    assert np.allclose(t, np.arange(n) / 50.0)
    assert np.allclose(np.concatenate([b.acc["upper"] for b in blocks])[:, 0], G, atol=0.02)
    assert np.allclose(np.concatenate([b.gyr["upper"] for b in blocks])[:, 2], math.radians(0.5), atol=1e-4)
    assert res.acc_fs_g == 2 and res.gyr_fs_dps == 125
    r = replay(load(out))
    assert r.angle_label == "single-sensor inclination" and r.frames == res.frames


def test_time_gaps_become_lost_samples_and_wall_clock_times_are_rebased(tmp_path):
    path = tmp_path / "gap.csv"
    times = [1.7e9 + i * 0.01 for i in range(50)] + [1.7e9 + i * 0.01 for i in range(53, 100)]
    with open(path, "w") as f:
        f.write("ts,ax,ay,az,gx,gy,gz\n")
        for t in times:
            f.write(f"{t:.3f},9.81,0,0,0,0,0\n")
    res = import_csv(path, tmp_path / "gap.spinrec", columns="t=ts,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz")
    assert res.t_offset_s == pytest.approx(1.7e9) and res.rate_hz == pytest.approx(100.0)
    dec = FrameDecoder()
    blocks = [b for _, f in load(tmp_path / "gap.spinrec").frames_in() for b in dec.feed(f)]
    assert dec.stats.lost_samples == 3 and dec.stats.gaps == 1
    assert blocks[0].t[0] == 0.0


# -- errors --------------------------------------------------------------------------
def _write(path, text):
    path.write_text(text)
    return path


GOOD = "time,ax,ay,az,gx,gy,gz\n0.00,9.8,0,0,0,0,0\n0.01,9.8,0,0,0,0,0\n0.02,9.8,0,0,0,0,0\n"
SPEC = "t=time,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz"


@pytest.mark.parametrize(
    "text,spec,kw,needle",
    [
        (GOOD, "t=time,ax=ax,ay=ay,az=accZ,gx=gx,gy=gy,gz=gz", {}, "column 'accZ' (for upper.az) is not in the header"),
        (GOOD.replace("0.01,9.8,0,0", "0.01,9.8,zero,0"), SPEC, {}, "row 3, column 'ay' (upper.ay): 'zero' is not a number"),
        (GOOD.replace("0.02,9.8,0,0,0,0,0", "0.02,9.8,0,0,0,0,"), SPEC, {}, "row 4, column 'gz'"),
        (GOOD.replace("0.01,9.8,0,0,0,0,0", "0.01,9.8,0,0"), SPEC, {}, "row 3 has no value in column 'gx'"),
        (GOOD.replace("9.8", "1.0"), SPEC, {}, "--acc-unit g"),
        (GOOD, SPEC, {"acc_unit": "g"}, "--acc-unit m/s2"),
        (GOOD.replace(",0,0,0\n", ",0,0,300\n"), SPEC, {}, "--gyr-unit dps"),
        (GOOD, SPEC, {"acc_unit": "furlongs"}, "unknown accelerometer unit 'furlongs'"),
        (GOOD, "ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", {}, "--rate HZ"),
        (GOOD, "t=time,ax=ax,ay=ay,az=az,gx=gx,gy=gy", {}, "lacks gz"),
        (GOOD, SPEC + ",mx=ax", {}, "unknown key 'mx'"),
        (GOOD, SPEC + ",ax=ay", {}, "'ax' is given twice"),
        (GOOD, "t=time,middle.ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", {}, "'upper.' or 'lower.'"),
        (GOOD, SPEC, {"axes": "x,y"}, "three signed source axes"),
        (GOOD, SPEC, {"axes": "x,x,z"}, "each of x, y, z must appear once"),
        (GOOD, SPEC, {"axes": "x,y,-z"}, "mirror image"),
        ("time,ax,ay,az,gx,gy,gz\n", SPEC, {}, "no data rows"),
        ("", SPEC, {}, "empty"),
        (GOOD.replace("gz\n", "gz,ex\n").replace(",0\n", ",0,zumba\n"), SPEC + ",exercise=ex", {}, "row 2, column 'ex' (exercise): unknown exercise 'zumba'"),
        (GOOD, None, {}, "not a spinemon export"),
    ],
)
def test_bad_csv_gives_one_clear_error(tmp_path, text, spec, kw, needle):
    src = _write(tmp_path / "in.csv", text)
    with pytest.raises(CsvImportError) as ei:
        import_csv(src, tmp_path / "out.spinrec", columns=spec, **kw)
    assert needle in str(ei.value)
    assert isinstance(ei.value, SpinemonError)
    assert not (tmp_path / "out.spinrec").exists()  # nothing half-written


def test_parse_axes_and_columns():
    m = parse_axes("x,-z,y")
    assert np.array_equal(m @ np.array([1.0, 2.0, 3.0]), [1.0, -3.0, 2.0])
    c = parse_columns("t=time, upper.ax=a1,upper.ay=a2,upper.az=a3,upper.gx=g1,upper.gy=g2,upper.gz=g3,"
                      "lower.ax=b1,lower.ay=b2,lower.az=b3,lower.gx=h1,lower.gy=h2,lower.gz=h3,set=S")
    assert c.time == "time" and c.imu["lower"]["gz"] == "h3" and c.set == "S" and list(c.imu) == ["upper", "lower"]


# -- command line ----------------------------------------------------------------------
def _parser(add):
    p = argparse.ArgumentParser()
    add(p)
    return p


def test_cli_export_and_import(session, capsys):
    d = session["dir"]
    out = d / "cli.csv"
    assert export_main(_parser(add_export_arguments).parse_args([str(session["path"]), "--csv", str(out)])) == 0
    assert (d / "cli-events.csv").exists() and len(_rows(out)) == len(session["trace"].samples)
    assert import_main(_parser(add_import_arguments).parse_args([str(out), "--out", str(d / "cli.spinrec")])) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "2 set labels" in text
    _assert_same_events(session["trace"].summary["events"], _events(d / "cli.spinrec"))
    # default OUT: next to the recording (the fixture wrote s.csv there already: replaced with --force)
    assert export_main(_parser(add_export_arguments).parse_args([str(session["path"]), "--csv", "--force"])) == 0
    assert (d / "s.csv").exists() and (d / "s-events.csv").exists()


def test_cli_errors(session, tmp_path):
    with pytest.raises(UsageError, match="--csv"):  # no format: a command-line mistake (exit 2)
        export_main(_parser(add_export_arguments).parse_args([str(session["path"])]))
    with pytest.raises(RecordingError, match="no such file"):
        export_main(_parser(add_export_arguments).parse_args([str(tmp_path / "nope.spinrec"), "--csv"]))
    with pytest.raises(ExistingOutputError, match="already exists"):
        import_main(_parser(add_import_arguments).parse_args([str(session["csv"]), "--out", str(session["path"])]))
    with pytest.raises(SystemExit) as e:  # a usage error: argparse lists the exercises
        import_main(_parser(add_import_arguments).parse_args([str(session["csv"]), "--exercise", "zumba"]))
    assert e.value.code == 2


# -- Parquet (the `parquet` extra) ---------------------------------------------------------
def _csv_float(text):
    return None if text == "" else float(text)


def _assert_parquet_matches_csv(csv_path, parquet_path, events_csv, events_parquet):
    """Read the Parquet back with pyarrow only and compare it with the CSV of the
    same recording, value for value (to the CSV's printed precision)."""
    import pyarrow.parquet as pq
    rows = _rows(csv_path)
    table = pq.read_table(parquet_path)
    assert table.column_names == list(rows[0])
    schema = {f.name: str(f.type) for f in table.schema}
    assert schema["t_s"] == schema["flexion_deg"] == schema["lateral_deg"] == schema["twist_deg"] == "double"
    assert schema["seq"] == schema["set"] == schema["rep"] == "int64"
    assert schema["exercise"] == "string" and schema["labelled"] == "bool"
    assert schema["events"] == schema["alerts"] == "list<element: string>"
    cols = table.to_pydict()
    assert len(rows) == table.num_rows > 0
    float_cols = [c for c in table.column_names if schema[c] == "double"]
    for i, r in enumerate(rows):
        assert float(r["t_s"]) == pytest.approx(cols["t_s"][i], abs=5e-7)
        assert int(r["seq"]) == cols["seq"][i]
        for c in float_cols:
            want, got = _csv_float(r[c]), cols[c][i]
            if want is None:
                assert got is None, (i, c)  # no angle yet: null, not NaN
            elif c.endswith("_deg"):
                assert got == pytest.approx(want, abs=5e-4), (i, c)
            elif c != "t_s":
                assert got == pytest.approx(want, rel=1e-7, abs=1e-12), (i, c)
        for c in ("set", "rep"):
            assert cols[c][i] == (int(r[c]) if r[c] else None), (i, c)
        assert cols["exercise"][i] == r["exercise"]
        assert cols["labelled"][i] is (r["labelled"] == "1")
        assert ";".join(cols["events"][i]) == r["events"] and ";".join(cols["alerts"][i]) == r["alerts"]
    ev_rows = _rows(events_csv)
    ev = pq.read_table(events_parquet)
    assert ev.column_names == list(ev_rows[0])
    ev_schema = {f.name: str(f.type) for f in ev.schema}
    assert ev_schema["kind"] == ev_schema["exercise"] == "string" and ev_schema["peak_deg"] == "double" and ev_schema["set"] == "int64"
    assert ev.to_pylist() == [
        {k: (None if v == "" else int(v) if ev_schema[k] == "int64" else float(v) if ev_schema[k] == "double" else v) for k, v in r.items()}
        for r in ev_rows
    ]
    return table, ev


def test_parquet_and_csv_of_a_simulated_recording_agree(tmp_path, capsys):
    """`spinemon simulate`, then `spinemon export --csv --parquet DIR`: the two read back the same."""
    import json

    from spinemon.app.cli import main

    rec = tmp_path / "dl.spinrec"
    assert main(["simulate", "--exercise", "deadlift", "--reps", "4", "--fault", "rounding@3", "--sets", "2", "--out", str(rec)]) == 0
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", str(rec), "--csv", str(tmp_path / "dl.csv"), "--parquet", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out / 'dl.parquet'}" in text and f"wrote {out / 'dl-events.parquet'}" in text
    table, ev = _assert_parquet_matches_csv(tmp_path / "dl.csv", out / "dl.parquet", tmp_path / "dl-events.csv", out / "dl-events.parquet")
    assert ev.num_rows >= 2 and "over_flexion" in ev.column("kind").to_pylist()
    assert {x for x in table.column("rep").to_pylist() if x is not None} == {1, 2, 3, 4}
    assert table.column("set").null_count > 0  # before the first set: null, not 0
    # the recording's settings and source in the key-value metadata of both files
    header = load(rec).header
    for t, name in ((table, "samples"), (ev, "events")):
        meta = {k.decode(): v.decode() for k, v in t.schema.metadata.items()}
        assert meta["spinemon.table"] == name and meta["spinemon.io.recording"] == "dl.spinrec"
        assert meta["spinemon.source"] == header["source"] == "sim"
        assert json.loads(meta["spinemon.settings"]) == header["settings"]
        assert meta["spinemon.angle"] == "lumbar flexion"


def test_parquet_of_a_labelled_two_exercise_session(session, tmp_path):
    """The module's labelled session (two exercises, alerts in both sets), to a named file."""
    out = tmp_path / "named.parquet"
    assert export_main(_parser(add_export_arguments).parse_args([str(session["path"]), "--parquet", str(out)])) == 0
    table, ev = _assert_parquet_matches_csv(session["csv"], out, session["export"].events_csv, tmp_path / "named-events.parquet")
    assert set(table.column("exercise").to_pylist()) >= {"deadlift", "overhead_press"}
    assert ev.num_rows == len(session["trace"].summary["events"])


def test_parquet_paths():
    from spinemon.app.export import parquet_paths

    assert parquet_paths("a/s.spinrec", None) == (Path("a/s.parquet"), Path("a/s-events.parquet"))
    assert parquet_paths("a/s.spinrec", "b/x.parquet") == (Path("b/x.parquet"), Path("b/x-events.parquet"))
    # a folder that does not exist yet (a trailing / or no .parquet suffix) is the folder to make
    assert parquet_paths("a/s.spinrec", "no-such-dir/") == (Path("no-such-dir/s.parquet"), Path("no-such-dir/s-events.parquet"))
    assert parquet_paths("a/s.spinrec", "exports") == (Path("exports/s.parquet"), Path("exports/s-events.parquet"))


def test_parquet_without_pyarrow_names_the_extra(session, tmp_path, monkeypatch, capsys):
    import sys

    from spinemon.app.cli import main

    for mod in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    code = main(["export", str(session["path"]), "--parquet", str(tmp_path / "x.parquet")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "pip install -e '.[parquet]'" in err
    assert not list(tmp_path.iterdir())  # nothing written
