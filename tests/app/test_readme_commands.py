"""The README's commands all work as written (issue 26).

Every ``spinemon ...`` line of README.md's ``sh`` code blocks is run, in the
order the README gives them, in a fresh folder (with ``HOME`` and
``SPINEMON_HOME`` there too), exactly as written: split as a shell splits it,
``~`` expanded, comments dropped. The input files the README names but does
not make (a logger's ``walk.txt``, ``all.csv``, ``thorax.csv``/``pelvis.csv``,
the recordings under ``~/lifting``) are made first, in the shape the command
expects. Commands that cannot run here are named, with the reason, in
:data:`NOT_HERE`; a README command that is neither run nor named fails the
test, so a new one cannot slip by.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

#: commands that do not run here, with the reason (a README line starting ``spinemon <word>``)
NOT_HERE = {
    "live": "needs a wearable, or a simulated session that runs in real time (minutes); covered by tests/app/test_live.py",
    "scan": "needs a Bluetooth adapter",
    "calibrate": "needs a wearable; covered by tests/app/test_calibrate.py",
    "demo": "make demo runs it; covered by tests/app/test_cli.py",
}


def readme_commands(text: str) -> list[str]:
    """The ``spinemon`` command lines of the README's sh blocks, continuation lines joined."""
    out: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        pending = ""
        for line in block.splitlines():
            line = pending + line
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1] + " "
                continue
            pending = ""
            if line.lstrip().startswith("spinemon "):
                out.append(line.strip())
    return out


def _argv(line: str, home: Path) -> list[str]:
    words = shlex.split(line, comments=True)
    return [str(home / w[2:]) if w.startswith("~/") else (str(home) if w == "~" else w) for w in words]


# -- the inputs the README names but does not make ------------------------------------------
RATE = 100.0


def _bends(seconds: float = 12.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time, accelerometer (m/s^2) and gyroscope (rad/s) of a sensor on the back: 3 s
    standing, then slow forward bends (board +X up the spine, +Z away from the skin)."""
    t = np.arange(int(seconds * RATE)) / RATE
    theta = np.where(t < 3.0, 0.0, np.radians(40.0) * np.sin(np.pi * (t - 3.0) / 3.0) ** 2)
    g = 9.80665
    acc = np.stack([g * np.cos(theta), np.zeros_like(t), -g * np.sin(theta)], axis=1)
    acc += np.random.default_rng(1).normal(0.0, 0.02, acc.shape)
    gyr = np.stack([np.zeros_like(t), np.gradient(theta, t), np.zeros_like(t)], axis=1)
    return t, acc, gyr


def _make_inputs(d: Path) -> None:
    t, acc, gyr = _bends()
    rows = np.hstack([acc, gyr])
    # a logger that states its rate above the header and names its columns Acc_X ... Gyr_Z
    with open(d / "walk.txt", "w") as f:
        f.write("Acquisition frequency: 100 Hz\nAcc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z\n")
        for r in rows:
            f.write(",".join(f"{v:.6f}" for v in r) + "\n")
    # several subjects in one file: whole seconds + milliseconds, raw accelerometer counts, deg/s
    with open(d / "all.csv", "w") as f:
        f.write("subject,sec,ms,x,y,z,gx,gy,gz\n")
        for subject in (3, 4):
            for ti, a, g in zip(t, acc, gyr):
                sec, ms = int(ti), round((ti - int(ti)) * 1000)
                counts = np.round(a / 9.80665 * 16384).astype(int)
                dps = np.degrees(g)
                f.write(f"{subject},{sec},{ms},{counts[0]},{counts[1]},{counts[2]},{dps[0]:.4f},{dps[1]:.4f},{dps[2]:.4f}\n")
    # a logger whose board axes point the other way (--axes)
    with open(d / "log.csv", "w") as f:
        f.write("t,ax,ay,az,gx,gy,gz\n")
        for ti, a, g in zip(t, acc, gyr):
            f.write(f"{ti:.3f}," + ",".join(f"{v:.6f}" for v in (-a[0], -a[1], a[2], -g[0], -g[1], g[2])) + "\n")
    # two IMUs, one file each, on one clock
    for name, share in (("thorax.csv", 1.0), ("pelvis.csv", 0.4)):
        _, acc2, gyr2 = _bends()
        if share != 1.0:
            th = np.arcsin(np.clip(-acc2[:, 2] / 9.80665, -1, 1)) * share
            acc2 = np.stack([9.80665 * np.cos(th), np.zeros_like(th), -9.80665 * np.sin(th)], axis=1)
            gyr2 = gyr2 * share
        with open(d / name, "w") as f:
            f.write("time,ax,ay,az,gx,gy,gz\n")
            for ti, a, g in zip(t, acc2, gyr2):
                f.write(f"{ti:.3f}," + ",".join(f"{v:.6f}" for v in (*a, *g)) + "\n")


def test_the_readme_shows_the_commands_this_test_runs() -> None:
    cmds = readme_commands(README.read_text(encoding="utf-8"))
    words = {shlex.split(c, comments=True)[1] for c in cmds}
    assert {"simulate", "replay", "report", "export", "import", "journal", "history"} <= words, words


def test_every_readme_command_works_as_written(tmp_path, monkeypatch, capsys) -> None:
    """Each runnable README command exits 0 with no traceback (about 20 commands,
    in process: the suite's one check that the README a newcomer reads is true)."""
    from spinemon.app.cli import main

    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    _make_inputs(work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SPINEMON_HOME", str(home / ".spinemon"))
    monkeypatch.delenv("SPINEMON_PROFILE", raising=False)
    ran: list[str] = []
    skipped: list[str] = []
    for line in readme_commands(README.read_text(encoding="utf-8")):
        argv = _argv(line, home)
        if argv[1] in NOT_HERE:
            skipped.append(line)
            continue
        assert "..." not in argv, f"a README command with a placeholder cannot be run as written: {line}"
        if argv[1] == "history":  # the folder of your recordings: the ones the README made so far
            lifting = home / "lifting"
            lifting.mkdir(exist_ok=True)
            for rec in work.glob("*.spinrec"):
                if not (lifting / rec.name).exists():
                    shutil.copy(rec, lifting / rec.name)
        code = main(argv[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{line}\nexit {code}\n--- stderr ---\n{err[-2000:]}\n--- stdout ---\n{out[-1500:]}"
        assert "Traceback" not in err, f"{line}\n{err}"
        ran.append(line)
    assert len(ran) >= 15, ran
    assert all(shlex.split(s)[1] in NOT_HERE for s in skipped)
    # what the README says they write is there
    assert (work / "dl-report" / "report.html").exists()
    assert (work / "exports" / "dl.parquet").exists() and (work / "dl.csv").exists()
    assert (work / "weeks.png").exists()
    assert os.path.exists(home / ".spinemon" / "journal.jsonl")
