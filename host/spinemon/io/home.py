"""The user's spinemon folder (``$SPINEMON_HOME`` or ``~/.spinemon``: the
journal, the session index, the config file and the error logs live there)
and the new recordings made in it: where ``live`` records when no ``--out`` is
given (``sessions/``, the simulated wearer's in ``sim-sessions/``) or in the
config file's ``out_dir``."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from spinemon.errors import ConfigError

__all__ = ["default_recording", "new_recording", "sessions_dir", "spinemon_home"]


def spinemon_home(env: Mapping[str, str] | None = None) -> Path:
    """The user's spinemon folder: ``$SPINEMON_HOME``, else ``~/.spinemon``."""
    home = (os.environ if env is None else env).get("SPINEMON_HOME")
    return Path(home).expanduser() if home else Path.home() / ".spinemon"


def sessions_dir(sim: bool = False) -> Path:
    """Where ``live`` records when no ``--out`` is given: ``sessions/`` in the
    user's spinemon folder; the simulated wearer's sessions in ``sim-sessions/``
    beside it (so ``history ~/.spinemon/sessions`` never counts them)."""
    return spinemon_home() / ("sim-sessions" if sim else "sessions")


def new_recording(folder: Path, exercise: str, now: float | None = None, *, fix: str) -> Path:
    """A new file in ``folder`` (made if missing) named by the local date and
    time and the exercise (``2026-12-07_18-30-05_deadlift.spinrec``); never an
    existing file (``-2``, ``-3``, ... appended).

    Raises:
        ConfigError: the folder cannot be made (exit 1: an environment
            failure); ``fix`` says what to do.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot make the folder {folder}: {e.strerror or e}; {fix}") from None
    stem = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(now)) + "_" + exercise.replace(":", "-")
    path = folder / f"{stem}.spinrec"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.spinrec"
        n += 1
    return path


def default_recording(exercise: str, sim: bool = False, now: float | None = None) -> Path:
    """A new file in :func:`sessions_dir` (see :func:`new_recording`)."""
    return new_recording(sessions_dir(sim), exercise, now, fix="pass --out FILE or set SPINEMON_HOME")
