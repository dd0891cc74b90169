"""A reader that stops early (`python -m hil list | head -1`) ends the
spinemon and bench command lines quietly: no traceback, no "Exception
ignored", exit status 141 (128 + SIGPIPE, as the shell reports `yes | head -1`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spinemon.app.closed_stdout import EXIT_STDOUT_CLOSED

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "hil list": ["-m", "hil", "list"],
    "spinemon replay": ["-m", "spinemon.app.cli", "replay", "tests/fixtures/recording-v1.spinrec"],
    "spinemon --help": ["-m", "spinemon.app.cli", "--help"],
}


def run(argv, stdout, buffered):
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("name", ["hil list", "spinemon replay"])
def test_a_closed_pipe_ends_the_command_quietly(name, buffered):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        done = run(COMMANDS[name], write_end, buffered)
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == EXIT_STDOUT_CLOSED


def test_help_into_a_closed_pipe_is_quiet():
    """argparse's --help ends in SystemExit: its buffered text must not fail at interpreter exit."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = run(COMMANDS["spinemon --help"], write_end, buffered=True)
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode == EXIT_STDOUT_CLOSED


@pytest.mark.parametrize("name", ["hil list", "spinemon replay"])
def test_an_open_pipe_gets_all_the_output_and_status_0(name):
    done = run(COMMANDS[name], subprocess.PIPE, buffered=True)
    assert done.returncode == 0 and done.stderr == "" and len(done.stdout.splitlines()) > 3
