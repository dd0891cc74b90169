"""Many recordings at once (a season of training): replay or report each, in
parallel across cores, with progress, into one table.

One job: fan a per-recording function out over worker processes and collect
one row per recording. A recording that cannot be read gives a row with its
error; the others go on (nothing is lost because one file is bad). That holds
for any exception, not only the ones spinemon expects: the file is named in
one line on stderr, its row carries the error, and the traceback goes to a
log file (``$SPINEMON_HOME/logs/`` or ``~/.spinemon/logs/``; the system's
temporary folder if neither can be written) whose path the line gives.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TextIO

from spinemon.errors import ConfigError, SpinemonError
from spinemon.io.home import spinemon_home

__all__ = ["ROW_COLUMNS", "expand", "format_rows", "log_dir", "replay_row", "run_many", "write_traceback"]

ROW_COLUMNS = (
    "recording",
    "duration_s",
    "monitored_s",
    "calibration",
    "sets",
    "reps",
    "events",
    "alerts",
    "matches_live",
    "error",
)


def expand(items: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given, folders as their ``*.spinrec`` files (sorted, recursive); duplicates once."""
    out: list[Path] = []
    seen: set[Path] = set()
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.rglob("*.spinrec"))
            if not found:
                raise ConfigError(f"{p} holds no .spinrec recordings; give recordings or a folder of them")
        else:
            found = [p]
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def replay_row(path: str, exercise: str | None = None, limits: Sequence[str] = ()) -> dict:
    """Replay one recording (the product's replay path) and summarise it as one row."""
    from spinemon.app.replay import replay, replay_settings
    from spinemon.io.recording import load

    row: dict = {"recording": str(path)}
    try:
        rec = load(path)
        res = replay(rec, replay_settings(rec, exercise, limits))
    except SpinemonError as e:
        row["error"] = str(e)
        return row
    summ = res.session
    m = summ.monitoring
    row.update(
        duration_s=m.duration_s,
        monitored_s=m.monitored_s,
        calibration=m.calibration,
        sets=len(summ.sets),
        reps=len(summ.reps),
        events=len(res.events),
        alerts=sum(1 for e in res.events if e.t_alert is not None),
        matches_live=res.matches_live,  # each segment (live --resume) against its own live session
        error=None,
    )
    return row


_TRACEBACK = "_traceback"  # a row's key for the traceback of an unexpected error (taken out before the row is returned)


def _guarded(fn: Callable[..., dict], path: str, *args) -> dict:
    """``fn(path, *args)``; any exception becomes the file's own row (with its traceback, for the log)."""
    try:
        return fn(path, *args)
    except Exception as e:
        return _failed_row(path, e, traceback.format_exc())


def _failed_row(path: str, e: BaseException, tb: str) -> dict:
    what = f"{type(e).__name__}: {e}"
    if len(what) > 200:
        what = what[:197] + "..."
    return {"recording": str(path), "error": f"unexpected error ({what})", _TRACEBACK: tb}


def log_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where batch commands write the tracebacks of unexpected errors: ``$SPINEMON_HOME/logs`` or ``~/.spinemon/logs``."""
    return spinemon_home(env) / "logs"


class _ErrorLog:
    """One log file per batch run, created at its first traceback."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def _open(self):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for d in (log_dir(), Path(tempfile.gettempdir())):
            try:
                d.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(prefix=f"spinemon-error-{stamp}-", suffix=".log", dir=d)
                self.path = Path(name)
                return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")
            except OSError:
                continue
        return None

    def write(self, path: str, tb: str) -> Path | None:
        f = (
            open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115 (closed below)
            if self.path is not None
            else self._open()
        )
        if f is None:
            return None
        with f:
            f.write(f"== {path}\n{tb}\n")
        return self.path


def write_traceback(what: str, tb: str) -> Path | None:
    """``tb`` to a new log file (see :func:`log_dir`); its path, or None if none could be written."""
    try:
        return _ErrorLog().write(what, tb)
    except OSError:
        return None


def _settle(row: dict, log: _ErrorLog) -> dict:
    """A row of an unexpected error: its traceback to the log, one line on stderr naming the file and the log."""
    tb = row.pop(_TRACEBACK, None)
    if tb is None:
        return row
    try:
        where = log.write(row["recording"], tb)
    except OSError:
        where = None
    row["error"] += (
        f"; traceback in {where}"
        if where is not None
        else "; traceback not saved (no log folder could be written)"
    )
    print(f"error: {row['recording']}: {row['error']}", file=sys.stderr)
    return row


def run_many(
    fn: Callable[..., dict],
    paths: Sequence[Path],
    *args,
    jobs: int | None = None,
    progress: TextIO | None = sys.stderr,
) -> list[dict]:
    """``fn(str(path), *args)`` for every path, in ``jobs`` worker processes
    (default: all cores; 1 runs in this process), rows in the order of
    ``paths``. Progress (``[k/n] name``, elapsed) goes to ``progress``.
    Any exception in one file (or its worker process dying) costs that
    file's row only: see the module docstring."""
    log = _ErrorLog()
    n = len(paths)
    jobs = max(1, min(jobs or os.cpu_count() or 1, n))
    rows: list[dict | None] = [None] * n
    t0 = time.monotonic()

    tty = progress is not None and getattr(progress, "isatty", lambda: False)()

    def tick(k: int, path: Path) -> None:
        if progress is not None:
            text = f"[{k}/{n}] {path.name:<40.40} {time.monotonic() - t0:6.1f} s"
            progress.write(
                "\r" + text if tty else text + "\n"
            )  # a bar in place on a terminal, lines in a log
            progress.flush()

    if jobs == 1:
        for i, p in enumerate(paths):
            rows[i] = _settle(_guarded(fn, str(p), *args), log)
            tick(i + 1, p)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_guarded, fn, str(p), *args): i for i, p in enumerate(paths)}
            for k, fut in enumerate(as_completed(futures), 1):
                i = futures[fut]
                try:
                    row = fut.result()
                except Exception as e:
                    row = _failed_row(str(paths[i]), e, "".join(traceback.format_exception(e)))
                rows[i] = _settle(row, log)
                tick(k, paths[i])
    if tty and n and progress is not None:
        progress.write("\n")
        progress.flush()
    return [r for r in rows if r is not None]


def format_rows(rows: Sequence[dict], columns: Sequence[str] = ROW_COLUMNS) -> str:
    """One plain-text table, a row per recording, and a total line."""

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:.1f}"
        return str(v)

    cols = [c for c in columns if c != "error" or any(r.get("error") for r in rows)]
    table = [[cell(Path(r["recording"]).name if c == "recording" else r.get(c)) for c in cols] for r in rows]
    ok = [r for r in rows if not r.get("error")]
    total = {
        c: sum(r.get(c) or 0 for r in ok)
        for c in ("duration_s", "monitored_s", "sets", "reps", "events", "alerts")
    }
    table.append([cell(total.get(c)) if c in total else ("total" if c == "recording" else "") for c in cols])
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines)
