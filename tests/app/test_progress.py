"""Long single jobs show progress on a terminal, and nothing elsewhere (issue 26):
`report`, `export --csv` and `simulate` of a long session took 17-21 s in silence."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from spinemon.app.progress import Progress


def test_quiet_when_not_a_terminal():
    out = io.StringIO()  # a pipe or a log file: isatty() is False
    with Progress("report s.spinrec", out) as bar:
        bar.update(300, 1000)
        bar.step("charts")
    assert out.getvalue() == ""


def test_plain_line_without_rich(monkeypatch):
    monkeypatch.setitem(sys.modules, "rich.progress", None)  # the extra is not installed
    out = io.StringIO()
    with Progress("export s.spinrec", out, enabled=True) as bar:
        bar.update(450, 1000)
        bar.step("writing")
    text = out.getvalue()
    assert "\rexport s.spinrec:  45% (0 s)" in text and "\rexport s.spinrec: writing (0 s)" in text
    assert all(len(part) <= 79 for part in text.split("\r"))  # one line, redrawn in place, within 80 columns
    assert text.endswith("\r" + " " * 79 + "\r")  # cleared at the end: what the command prints next starts clean


def test_rich_bar_when_installed():
    pytest.importorskip("rich")
    out = io.StringIO()
    with Progress("simulate s.spinrec", out, enabled=True) as bar:
        bar.update(500, 1000)
    assert "simulate s.spinrec" in out.getvalue() and "50%" in out.getvalue()


def _run_on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run the command with stderr on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="80", TERM="xterm")
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_simulate_shows_progress_on_a_terminal_and_nothing_in_a_pipe(tmp_path, capsys):
    from spinemon.app import cli

    exe = Path(sys.executable).with_name("spinemon")
    if not exe.exists():
        pytest.skip("the spinemon command is not installed in this environment")
    argv = [str(exe), "simulate", "--exercise", "squat", "--reps", "2", "--no-rom"]
    rc, seen = _run_on_a_terminal(argv + ["--out", "a.spinrec"], tmp_path)
    assert rc == 0 and "simulate a.spinrec" in seen, seen
    capsys.readouterr()
    assert cli.main(argv[1:] + ["--out", str(tmp_path / "b.spinrec")]) == 0  # stderr captured: not a terminal
    assert capsys.readouterr().err == ""
