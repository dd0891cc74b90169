"""spinemon import on the files of issue 24, each failure as it was seen (each test failed
before the streamed reader): R's write.csv, no header, gyro counts, long files, one column
mapped twice, a settling start, Latin-1, decimal commas, clock/ISO times and their date,
whole-second times, glitches, --date, several files, a huge cell, bounded memory."""

from __future__ import annotations

import json
import os
import tracemalloc
import warnings
from datetime import datetime, timezone

import numpy as np
import pytest

from spinemon.app import cli
from spinemon.app.csv_import import CsvImportError, import_csv
from spinemon.app.history import session_date
from spinemon.io.recording import load
from tests.import_corpus import G, motion

COLS = "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz"


def _run(capsys, *argv):
    rc = cli.main(["import", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _replayed(capsys, path) -> dict:
    assert cli.main(["replay", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["stats"]


def _plain(path, t, acc, gyr, fmt="{:.5f}", sep=",", header="t,ax,ay,az,gx,gy,gz"):
    lines = [header] if header else []
    lines += [sep.join(fmt.format(v) for v in (t[i], *acc[i], *gyr[i])) for i in range(len(t))]
    path.write_text("\n".join(lines) + "\n")


def test_r_write_csv_quoted_header_row_numbers_and_na(tmp_path, capsys):
    t, acc, gyr = motion()
    head = '"","user_name","raw_timestamp_part_1","new_window","ax","ay","az","gx","gy","gz","kurtosis_roll","max_yaw"'
    rows = [head] + [f'"{i + 1}","carlitos",{1323084232 + i // 100},"no",{acc[i,0]:.4f},{acc[i,1]:.4f},{acc[i,2]:.4f},{gyr[i,0]:.4f},{gyr[i,1]:.4f},{gyr[i,2]:.4f},NA,NA'
                     for i in range(len(t))]
    f = tmp_path / "pml.csv"
    f.write_text("\n".join(rows) + "\n")
    rc, text, err = _run(capsys, f, "--columns", "ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--rate", "100", "--out", tmp_path / "r.spinrec")
    assert rc == 0, err
    assert "called 'row'" in text
    assert _replayed(capsys, tmp_path / "r.spinrec")["samples"] == len(t)


def test_no_header_with_a_trailing_semicolon_by_position(tmp_path, capsys):
    t, acc, gyr = motion()
    f = tmp_path / "fall.txt"
    a = np.round(acc / G * 256).astype(int)
    g = np.round(np.degrees(gyr) * 14.375).astype(int)
    f.write_text("\n".join(";".join(str(v) for v in (*a[i], *g[i])) + ";" for i in range(len(t))) + "\n")
    argv = ["--rate", "100", "--acc-unit", "counts", "--acc-scale", "256", "--gyr-unit", "counts", "--gyr-scale", "14.375"]
    rc, _, err = _run(capsys, f, "--columns", "ax=1,ay=2,az=3,gx=4,gy=5,gz=6", *argv, "--out", tmp_path / "n.spinrec")
    assert rc == 0, err
    assert _replayed(capsys, tmp_path / "n.spinrec")["samples"] == len(t)
    rc, _, err = _run(capsys, f, "--columns", "ax=1,ay=2,az=3,gx=4,gy=5,gz=99", *argv, "--out", tmp_path / "m.spinrec")
    assert rc == 2 and "by position" in err and "\n" not in err.strip()


def test_gyro_counts_read_as_dps_are_refused_and_imported_as_counts(tmp_path, capsys):
    t, acc, gyr = motion()
    counts = np.round(np.degrees(gyr) * 131.0)
    f = tmp_path / "mpu.csv"
    _plain(f, t, acc, counts)
    rc, _, err = _run(capsys, f, "--columns", COLS, "--gyr-unit", "dps", "--out", tmp_path / "a.spinrec")
    assert rc == 1 and "raw counts" in err and "--gyr-unit counts" in err
    assert not (tmp_path / "a.spinrec").exists()
    for scale in ("131", "auto"):
        out = tmp_path / f"c{scale}.spinrec"
        rc, text, err = _run(capsys, f, "--columns", COLS, "--gyr-unit", "counts", "--gyr-scale", scale, "--out", out)
        assert rc == 0, err
        if scale == "auto":
            assert "taken as the standard 131" in text
        rec = load(out)
        assert rec.header["import"]["gyr_scale"] == scale


def test_long_file_two_sensors_pivoted(tmp_path, capsys):
    t, acc, gyr = motion()
    t2, acc2, gyr2 = motion(seed=5, t_shift=0.002)
    lines = ["time_ms;sample;x;y;z;sensor_type;sensor_id"]
    for i in range(len(t)):
        for sid, tt, a, g in (("3", t, acc, gyr), ("7", t2, acc2 + [0, 1.0, 0], gyr2)):
            lines.append(f"{tt[i] * 1000:.1f};{i};{a[i,0]:.5f};{a[i,1]:.5f};{a[i,2]:.5f};ACC;{sid}")
            lines.append(f"{tt[i] * 1000 + 1:.1f};{i};{g[i,0]:.5f};{g[i,1]:.5f};{g[i,2]:.5f};GYRO;{sid}")
    f = tmp_path / "long.csv"
    f.write_text("\n".join(lines) + "\n")
    out = tmp_path / "long.spinrec"
    rc, text, err = _run(capsys, f, "--columns", "t_ms=time_ms,x=x,y=y,z=z,type=sensor_type,id=sensor_id,upper=3,lower=7", "--out", out)
    assert rc == 0, err
    assert "pivoted into upper and lower" in text
    stats = _replayed(capsys, out)
    assert stats["samples"] >= 0.99 * len(t) and stats["angle"] == "lumbar flexion"


def test_one_column_mapped_twice_is_refused(tmp_path, capsys):
    t, acc, gyr = motion(seconds=5)
    f = tmp_path / "d.csv"
    _plain(f, t, acc, gyr)
    rc, _, err = _run(capsys, f, "--columns", "t=t,ax=ax,ay=ay,az=az,gx=ax,gy=gy,gz=gz", "--out", tmp_path / "d.spinrec")
    assert rc == 2 and "mapped to both ax and gx" in err
    assert not (tmp_path / "d.spinrec").exists()


def test_a_settling_start_at_a_quarter_scale_is_dropped_not_called_counts(tmp_path, capsys):
    t, acc, gyr = motion(seconds=20)
    k = 370
    acc[:k] *= 0.25
    gyr[:k] *= 0.25
    f = tmp_path / "tag.csv"
    _plain(f, t, acc, gyr)
    rc, text, err = _run(capsys, f, "--columns", COLS, "--out", tmp_path / "tag.spinrec")
    assert rc == 0, err
    assert "still settling" in text
    n = _replayed(capsys, tmp_path / "tag.spinrec")["samples"]
    assert len(t) - k - 30 <= n <= len(t) - k + 5


def test_latin1_header_and_decimal_commas(tmp_path, capsys):
    t, acc, gyr = motion()
    head = "Zeit [s];ax;ay;az;gx [°/s];gy [°/s];gz [°/s]"
    lines = [head] + [";".join(f"{v:.4f}".replace(".", ",") for v in (t[i], *acc[i], *np.degrees(gyr[i]))) for i in range(len(t))]
    f = tmp_path / "eu.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    rc, text, err = _run(capsys, f, "--columns", "t=Zeit [s],ax=ax,ay=ay,az=az,gx=gx [°/s],gy=gy [°/s],gz=gz [°/s]", "--gyr-unit", "dps", "--out", tmp_path / "eu.spinrec")
    assert rc == 0, err
    assert "Windows-1252" in text and "decimal commas" in text
    assert _replayed(capsys, tmp_path / "eu.spinrec")["samples"] == len(t)
    rc, _, err = _run(capsys, f, "--columns", "t=1,ax=2,ay=3,az=4,gx=5,gy=6,gz=7", "--encoding", "klingon", "--out", tmp_path / "k.spinrec")
    assert rc == 2 and "--encoding" in err


@pytest.mark.parametrize("style", ["clock", "iso"])
def test_clock_and_iso_times_and_their_date(tmp_path, capsys, style):
    t, acc, gyr = motion()
    start = datetime(2026, 12, 6, 10, 15, 30, 125000, tzinfo=timezone.utc)
    lines = ["time,ax,ay,az,gx,gy,gz"]
    for i in range(len(t)):
        w = datetime.fromtimestamp(start.timestamp() + t[i], timezone.utc)
        stamp = w.strftime("%H:%M:%S.") + f"{w.microsecond // 1000:03d}" if style == "clock" else w.strftime("%Y-%m-%dT%H:%M:%S.") + f"{w.microsecond // 1000:03d}Z"
        lines.append(",".join([stamp, *(f"{v:.5f}" for v in (*acc[i], *gyr[i]))]))
    f = tmp_path / "c.csv"
    f.write_text("\n".join(lines) + "\n")
    out = tmp_path / "c.spinrec"
    extra = ["--date", "2026-12-06"] if style == "clock" else []
    rc, text, err = _run(capsys, f, "--columns", "t=time,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", *extra, "--out", out)
    assert rc == 0, err
    assert _replayed(capsys, out)["samples"] == len(t)
    when, source, _ = session_date(load(out), out)
    assert source == "header" and when.startswith("2026-12-06")


def test_whole_second_times_keep_every_row(tmp_path, capsys):
    t, acc, gyr = motion(seconds=20)
    f = tmp_path / "s.csv"
    lines = ["t,ax,ay,az,gx,gy,gz"] + [",".join([str(int(1700000000 + t[i] + 0.37)), *(f"{v:.5f}" for v in (*acc[i], *gyr[i]))]) for i in range(len(t))]
    f.write_text("\n".join(lines) + "\n")
    rc, text, err = _run(capsys, f, "--columns", COLS, "--out", tmp_path / "s.spinrec")
    assert rc == 0, err
    assert "comes from the row count" in text and "at 100 Hz" in text
    assert _replayed(capsys, tmp_path / "s.spinrec")["samples"] >= 0.99 * len(t)


def test_a_glitched_cell_is_repaired_and_a_1e300_gives_one_short_line(tmp_path, capsys):
    t, acc, gyr = motion()
    gyr[700, 2] = 1e6
    f = tmp_path / "g.csv"
    _plain(f, t, acc, gyr, fmt="{:.6g}")
    rc, text, err = _run(capsys, f, "--columns", COLS, "--out", tmp_path / "g.spinrec")
    assert rc == 0, err
    assert "1 glitched gyroscope value" in text and "line 702" in text
    gyr[700, 2] = 1e300
    acc[100:400, 0] = 1e300  # far too many to be glitches
    f2 = tmp_path / "h.csv"
    _plain(f2, t, acc, gyr, fmt="{:.6g}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc, _, err = _run(capsys, f2, "--columns", COLS, "--out", tmp_path / "h.spinrec")
    assert rc == 1 and err.count("\n") == 1 and len(err) < 400, err


def test_date_option_files_the_session_in_its_week(tmp_path, capsys):
    t, acc, gyr = motion()
    f = tmp_path / "d.csv"
    _plain(f, t, acc, gyr)
    out = tmp_path / "d.spinrec"
    rc, _, err = _run(capsys, f, "--columns", COLS, "--date", "2025-03-14", "--out", out)
    assert rc == 0, err
    assert session_date(load(out), out)[0].startswith("2025-03-14")
    rc, _, err = _run(capsys, f, "--columns", COLS, "--date", "14/03/2025", "--out", tmp_path / "e.spinrec")
    assert rc == 2 and "--date" in err


def test_a_folder_of_files_one_recording_each(tmp_path, capsys):
    src = tmp_path / "trials"
    src.mkdir()
    for k in range(3):
        t, acc, gyr = motion(seconds=8, seed=k)
        _plain(src / f"trial{k}.csv", t, acc, gyr)
    (src / "broken.csv").write_text("t,ax\n1,2\n")
    rc, text, err = _run(capsys, src, "--columns", COLS, "--out", tmp_path / "recs", "--jobs", "2")
    assert rc == 1, err  # one file failed: named, the others written
    assert "imported 3 of 4 files" in text and "broken.csv: error:" in text
    assert sorted(p.name for p in (tmp_path / "recs").iterdir()) == ["trial0.spinrec", "trial1.spinrec", "trial2.spinrec"]
    assert "[4/4]" in err
    rc, _, err = _run(capsys, src / "trial0.csv", src / "trial1.csv", "--columns", COLS, "--out", tmp_path / "x.spinrec")
    assert rc == 2 and "folder" in err


def test_a_cell_over_128_kib_gives_one_line(tmp_path, capsys):
    f = tmp_path / "big.csv"
    f.write_text("t,ax,ay,az,gx,gy,gz\n" + "0," * 6 + "0\n" + '"' + "x" * 200_000 + '",1,2,3,4,5,6\n')
    rc, _, err = _run(capsys, f, "--columns", COLS, "--out", tmp_path / "big.spinrec")
    assert rc == 1 and "128 KiB" in err and err.count("\n") == 1
    assert not (tmp_path / "big.spinrec").exists()


def test_the_file_is_streamed_memory_follows_the_samples_not_the_text(tmp_path):
    """The same samples with short and with five times longer unused text
    columns: the peak memory of the import does not grow with the text (the
    old reader held the text several times over: a 30 MB CSV took 254 MB)."""
    t, acc, gyr = motion(rate=200.0, seconds=40)

    def peak_of(text: str, rows: int = len(t)) -> tuple[int, int]:
        f = tmp_path / f"long-{len(text)}-{rows}.csv"
        extra = ",".join([text] * 4)
        with open(f, "w") as fh:
            fh.write("t,ax,ay,az,gx,gy,gz,a,b,c,d\n")
            for i in range(rows):
                fh.write(f"{t[i]:.4f},{acc[i,0]:.6f},{acc[i,1]:.6f},{acc[i,2]:.6f},{gyr[i,0]:.6f},{gyr[i,1]:.6f},{gyr[i,2]:.6f},{extra}\n")
        tracemalloc.start()
        try:
            import_csv(f, f.with_suffix(".spinrec"), columns=COLS)
            return f.stat().st_size, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak_of("warm-up", rows=400)  # what the first import allocates once (caches, lazy imports) is not the file's
    long_size, long_peak = peak_of("somewhat-long-unused-text-column-value" * 5)
    short_size, short_peak = peak_of("somewhat-long-unused-text-column-value")
    print(f"files {short_size / 1e6:.1f} and {long_size / 1e6:.1f} MB, peak traced memory {short_peak / 1e6:.1f} and {long_peak / 1e6:.1f} MB")
    assert long_peak < 2 * long_size
    # 4x the text costs at most a tenth of the extra text: memory follows the samples
    assert long_peak - short_peak < 0.1 * (long_size - short_size)
