"""spinemon import on files as real loggers write them (issue 11, part 5).

Each test writes the kind of file a logger produces, runs the product's own
``spinemon import`` command line (``cli.main``), and checks the recording it
wrote by decoding it, plus the one note per fix.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinemon.app import cli
from spinemon.app.csv_import import CsvImportError, import_csv
from spinemon.io.recording import load
from spinemon.core.stream import G, FrameDecoder

GAIT_COLUMNS = "ax=Acc_X,ay=Acc_Y,az=Acc_Z,gx=Gyr_X,gy=Gyr_Y,gz=Gyr_Z"


def _samples(path):
    """All samples of a recording: (t, acc, gyr) per sensor, via the live decoder."""
    dec = FrameDecoder()
    blocks = [b for _, f in load(path).frames_in() for b in dec.feed(f)]
    t = np.concatenate([b.t for b in blocks])
    acc = {s: np.concatenate([b.acc[s] for b in blocks]) for s in blocks[0].sensors}
    gyr = {s: np.concatenate([b.gyr[s] for b in blocks]) for s in blocks[0].sensors}
    return t, acc, gyr, dec.stats


def _motion(n=400, rate=100.0, seed=0):
    """Standing still then a slow sway: acc in m/s^2 (about 1 g), gyro in rad/s."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    ang = 0.3 * np.sin(2 * np.pi * 0.5 * t) * (t > 1.5)
    acc = np.stack([G * np.cos(ang), np.zeros(n), G * np.sin(ang)], axis=1) + rng.normal(0, 0.02, (n, 3))
    gyr = np.stack([np.zeros(n), np.gradient(ang, t), np.zeros(n)], axis=1) + rng.normal(0, 0.002, (n, 3))
    return t, acc, gyr


def _run(capsys, *argv):
    rc = cli.main(["import", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_metadata_lines_tabs_blank_lines_and_extra_columns(tmp_path, capsys):
    t, acc, gyr = _motion()
    lines = ["Logger v2.1", "Acquisition frequency: 100 Hz", "", "n\taccX\taccY\taccZ\tgyrX\tgyrY\tgyrZ\tspare"]
    for i in range(len(t)):
        lines.append("\t".join([str(i), *(f"{v:.6f}" for v in acc[i]), *(f"{v:.6f}" for v in gyr[i]), "x", "y"]))
        if i == 100:
            lines.append("")
    f = tmp_path / "log.txt"
    f.write_text("\n".join(lines) + "\n")
    out = tmp_path / "log.spinrec"
    rc, text, err = _run(capsys, f, "--columns", "ax=accX,ay=accY,az=accZ,gx=gyrX,gy=gyrY,gz=gyrZ", "--out", out)
    assert rc == 0, err
    assert "skipped 2 lines before the column header" in text
    assert "columns separated by tabs" in text
    assert "skipped 1 blank line" in text
    assert "more cells than the header" in text
    assert "sample rate 100 Hz as stated above the header" in text
    ts, a, g, stats = _samples(out)
    assert len(ts) == len(t) and stats.lost_samples == 0
    assert np.abs(a["upper"] - acc).max() < 2 * 2 * G / 32768 + 1e-6  # int16 at 2 g
    assert np.abs(g["upper"] - gyr).max() < 1e-3


def test_semicolons_and_a_cut_off_last_row(tmp_path, capsys):
    t, acc, gyr = _motion(200)
    rows = ["time;ax;ay;az;gx;gy;gz"] + [";".join(f"{v:.5f}" for v in (t[i], *acc[i], *gyr[i])) for i in range(len(t))]
    rows.append("2.00;9.8;0.0")  # the logger was switched off mid-row
    f = tmp_path / "semi.csv"
    f.write_text("\n".join(rows))
    rc, text, err = _run(capsys, f, "--columns", "t=time,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--out", tmp_path / "s.spinrec")
    assert rc == 0, err
    assert "semicolons" in text and "dropped the last row" in text
    assert len(_samples(tmp_path / "s.spinrec")[0]) == 200


def test_where_takes_one_person_out_of_a_combined_file(tmp_path, capsys):
    rows = ["subject,set,t,ax,ay,az,gx,gy,gz"]
    for subject, offset in (("1", 0.0), ("2", 0.5)):
        t, acc, gyr = _motion(300, seed=int(subject))
        for i in range(len(t)):
            rows.append(",".join([subject, "1", f"{t[i]:.3f}", *(f"{v + offset * (k == 1):.5f}" for k, v in enumerate(acc[i])), *(f"{v:.5f}" for v in gyr[i])]))
    f = tmp_path / "all.csv"
    f.write_text("\n".join(rows) + "\n")
    rc, text, err = _run(capsys, f, "--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--where", "subject=2", "--out", tmp_path / "two.spinrec")
    assert rc == 0, err
    assert "--where subject=2: kept 300 of 600 rows" in text
    _, a, _, _ = _samples(tmp_path / "two.spinrec")
    assert len(a["upper"]) == 300 and np.mean(a["upper"][:, 1]) == pytest.approx(0.5, abs=0.05)
    rc, _, err = _run(capsys, f, "--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--where", "subject=7", "--out", tmp_path / "none.spinrec")
    assert rc == 1 and "no rows have subject=7" in err and "the column holds: 1, 2" in err
    assert len(err.strip().splitlines()) == 1


def test_time_split_over_columns_is_summed(tmp_path, capsys):
    t, acc, gyr = _motion(250)
    us = np.rint(t * 1e6).astype(np.int64) + 1_000_000  # starts at 1 s
    rows = ["sec,msec,usec,ax,ay,az,gx,gy,gz"]
    for i in range(len(t)):
        s_, rem = divmod(int(us[i]), 1_000_000)
        ms, u = divmod(rem, 1000)
        rows.append(",".join([str(s_), str(ms), str(u), *(f"{v:.5f}" for v in acc[i]), *(f"{v:.5f}" for v in gyr[i])]))
    f = tmp_path / "split.csv"
    f.write_text("\n".join(rows) + "\n")
    rc, text, err = _run(capsys, f, "--columns", "t_s=sec,t_ms=msec,t_us=usec,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--out", tmp_path / "split.spinrec")
    assert rc == 0, err
    ts, _, _, stats = _samples(tmp_path / "split.spinrec")
    assert len(ts) == 250 and stats.lost_samples == 0
    assert ts[0] == pytest.approx(1.0) and np.diff(ts) == pytest.approx(0.01)


def test_unsorted_rows_duplicates_and_irregular_timestamps(tmp_path, capsys):
    rng = np.random.default_rng(3)
    n = 500
    t_true = np.arange(n) / 25.0  # 25 Hz, as a phone logger with host timestamps
    jitter = t_true + rng.uniform(-0.018, 0.018, n)  # irregular: +-18 ms at a 40 ms period
    jitter[0] = 0.0
    _, acc, gyr = _motion(n, rate=25.0)
    order = np.arange(n)
    order[[100, 101]] = order[[101, 100]]  # two rows out of order
    rows = ["t,ax,ay,az,gx,gy,gz"] + [",".join(f"{v:.5f}" for v in (jitter[i], *acc[i], *gyr[i])) for i in order]
    rows.insert(50, rows[50])  # one row repeated
    f = tmp_path / "phone.csv"
    f.write_text("\n".join(rows) + "\n")
    rc, text, err = _run(capsys, f, "--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--out", tmp_path / "p.spinrec")
    assert rc == 0, err
    assert "1 row(s) were out of time order: sorted" in text
    assert "1 row(s) repeat the timestamp" in text
    assert "irregular" in text and "resampled" in text
    ts, a, _, stats = _samples(tmp_path / "p.spinrec")
    assert np.diff(ts) == pytest.approx(0.04, abs=5e-5)  # the rate from the timestamps, within 0.1 %
    assert abs(len(ts) - n) <= 2
    # explicit --resample to 50 Hz
    rc, text, err = _run(capsys, f, "--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--resample", "50", "--out", tmp_path / "p50.spinrec")
    assert rc == 0, err and "resampled onto an even 50 Hz grid (--resample)" in text
    ts50 = _samples(tmp_path / "p50.spinrec")[0]
    assert np.diff(ts50) == pytest.approx(0.02, abs=1e-6) and abs(len(ts50) - 2 * n) <= 4


@pytest.mark.parametrize("per_g", [29.0, 190.0])
def test_raw_counts_with_a_scale_or_auto(tmp_path, capsys, per_g):
    t, acc, gyr = _motion(400)
    offset = np.radians([13.0, -35.0, 20.0])  # gyro zero-rate offsets as in the curl data set
    rows = ["t,ax,ay,az,gx,gy,gz"] + [",".join([f"{t[i]:.3f}", *(f"{round(v / G * per_g)}" for v in acc[i]), *(f"{v:.5f}" for v in gyr[i] + offset)]) for i in range(len(t))]
    f = tmp_path / "counts.csv"
    f.write_text("\n".join(rows) + "\n")
    spec = ("--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz")
    # read as m/s^2 the magnitude at rest is far from 1 g: refused, with the fix named
    rc, _, err = _run(capsys, f, *spec, "--out", tmp_path / "a.spinrec")
    assert rc == 1 and "--acc-unit counts --acc-scale auto" in err
    rc, text, err = _run(capsys, f, *spec, "--acc-unit", "counts", "--acc-scale", "auto", "--out", tmp_path / "b.spinrec")
    assert rc == 0, err
    assert f"{per_g:.4g} counts per g" in text
    _, a, _, _ = _samples(tmp_path / "b.spinrec")
    assert np.median(np.linalg.norm(a["upper"], axis=1)) == pytest.approx(G, rel=0.02)
    rc, _, err = _run(capsys, f, *spec, "--acc-unit", "counts", "--acc-scale", str(per_g), "--out", tmp_path / "c.spinrec")
    assert rc == 0, err
    rc, _, err = _run(capsys, f, *spec, "--acc-unit", "counts", "--out", tmp_path / "d.spinrec")
    assert rc == 2 and "--acc-scale" in err  # a command-line mistake: exit 2


def test_two_sensors_in_two_files_merged_on_time_and_on_index(tmp_path, capsys):
    t, acc, gyr = _motion(300)
    files = {}
    for s, shift, t0 in (("upper", 0.0, 0.0), ("lower", 1.0, 0.05)):
        rows = ["time,ax,ay,az,gx,gy,gz"] + [",".join(f"{v:.5f}" for v in (t[i] + t0, acc[i][0], acc[i][1] + shift, acc[i][2], *gyr[i])) for i in range(len(t))]
        files[s] = tmp_path / f"{s}.csv"
        files[s].write_text("\n".join(rows) + "\n")
    rc, text, err = _run(capsys, f"upper={files['upper']}", f"lower={files['lower']}", "--columns", "t=time,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--out", tmp_path / "two.spinrec")
    assert rc == 0, err
    assert "merged on time" in text
    _, a, _, _ = _samples(tmp_path / "two.spinrec")
    assert set(a) == {"upper", "lower"}
    assert np.mean(a["lower"][:, 1] - a["upper"][:, 1]) == pytest.approx(1.0, abs=0.05)
    rc, text, err = _run(capsys, f"upper={files['upper']}", f"lower={files['lower']}", "--columns", "ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--rate", "100", "--out", tmp_path / "idx.spinrec")
    assert rc == 0, err
    assert len(_samples(tmp_path / "idx.spinrec")[0]) == 300
    rc, _, err = _run(capsys, f"upper={files['upper']}", "--columns", "ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--rate", "100", "--out", tmp_path / "x.spinrec")
    assert rc == 2 and "upper=FILE1 lower=FILE2" in err  # a command-line mistake: exit 2


@pytest.mark.parametrize("form", [["--axes=-x,-y,z"], ["--axes", "-x,-y,z"]])
def test_axes_with_a_leading_minus_in_both_forms(tmp_path, capsys, form):
    t, acc, gyr = _motion(200)
    rows = ["t,ax,ay,az,gx,gy,gz"] + [",".join(f"{v:.5f}" for v in (t[i], *acc[i], *gyr[i])) for i in range(len(t))]
    f = tmp_path / "ax.csv"
    f.write_text("\n".join(rows) + "\n")
    rc, _, err = _run(capsys, f, "--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", *form, "--out", tmp_path / "ax.spinrec")
    assert rc == 0, err
    _, a, _, _ = _samples(tmp_path / "ax.spinrec")
    assert np.median(a["upper"][:, 0]) == pytest.approx(-G, rel=0.05)


def test_exercise_and_limit_on_import_and_on_replay(tmp_path, capsys):
    t, acc, gyr = _motion(300)
    rows = ["t,ax,ay,az,gx,gy,gz"] + [",".join(f"{v:.5f}" for v in (t[i], *acc[i], *gyr[i])) for i in range(len(t))]
    f = tmp_path / "ex.csv"
    f.write_text("\n".join(rows) + "\n")
    out = tmp_path / "ex.spinrec"
    rc, _, err = _run(capsys, f, "--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--exercise", "curl", "--limit", "curl.extension_deg=-8", "--out", out)
    assert rc == 0, err
    settings = load(out).header["settings"]
    assert settings["exercise"] == "curl" and settings["limit_overrides"] == {"curl": {"extension_deg": -8.0}}
    assert cli.main(["replay", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert stats["calibration"] == "done"
    assert cli.main(["replay", str(out), "--json", "--exercise", "deadlift", "--limit", "deadlift.flexion_deg=30"]) == 0
    capsys.readouterr()
    assert cli.main(["replay", str(out), "--limit", "deadlift.nonsense=3"]) == 2  # a command-line error
    assert "unknown limit" in capsys.readouterr().err


def test_a_wrong_unit_never_passes_silently(tmp_path):
    t, acc, gyr = _motion(300)
    for scale, needle in ((1 / G, "--acc-unit g"), (G, "--acc-unit m/s2"), (3.0, "raw counts")):
        f = tmp_path / f"u{scale:.3f}.csv"
        f.write_text("t,ax,ay,az,gx,gy,gz\n" + "\n".join(",".join(f"{v:.5f}" for v in (t[i], *(acc[i] * scale), *gyr[i])) for i in range(len(t))) + "\n")
        with pytest.raises(CsvImportError, match=needle.replace("/", "/")):
            import_csv(f, tmp_path / f"u{scale:.3f}.spinrec", columns="t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz")


def test_the_real_gait_file_imports_as_it_comes(gait_dir, tmp_path, capsys):
    """A real logger's file (Xsens, gait-l5; Voisard et al., IPOL, AGPL 3.0): metadata line, tabs, rate above the header."""
    out = tmp_path / "1-1.spinrec"
    rc, text, err = _run(capsys, gait_dir / "1-1_lb.txt", "--columns", GAIT_COLUMNS, "--out", out)
    assert rc == 0, err
    assert "skipped 1 line before the column header" in text and "columns separated by tabs" in text
    rows = sum(1 for _ in open(gait_dir / "1-1_lb.txt")) - 2
    ts, a, _, stats = _samples(out)
    assert len(ts) == rows and stats.lost_samples == 0
    assert np.median(np.linalg.norm(a["upper"], axis=1)) == pytest.approx(G, rel=0.05)  # walking included


def test_report_of_an_import_labelled_from_its_first_row(tmp_path, capsys):
    """A set label in the first row (before calibration could finish) used to crash `report` (NaN axis limits)."""
    t, acc, gyr = _motion(1500)
    rows = ["t,ax,ay,az,gx,gy,gz,set,exercise"] + [",".join([*(f"{v:.5f}" for v in (t[i], *acc[i], *gyr[i])), "1", "deadlift"]) for i in range(len(t))]
    f = tmp_path / "lab.csv"
    f.write_text("\n".join(rows) + "\n")
    out = tmp_path / "lab.spinrec"
    rc, text, err = _run(capsys, f, "--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz,set=set,exercise=exercise", "--out", out)
    assert rc == 0 and "1 set label" in text, err
    assert cli.main(["report", str(out), "--out", str(tmp_path / "rep")]) == 0
    assert "monitored" in capsys.readouterr().out
    assert (tmp_path / "rep" / "report.html").exists()
