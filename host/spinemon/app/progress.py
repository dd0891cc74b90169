"""Progress of one long job (``report``, ``export --csv``, ``simulate``) on stderr.

With ``rich`` (the optional ``ui`` extra) a bar with the share done, the
time so far and the time left; without it one plain line rewritten in place
(``report s.spinrec: 45% (12 s)``). Nothing at all when stderr is not a
terminal (a pipe, a log file, a test): the output stays what scripts read.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any

__all__ = ["Progress"]

#: the plain line is redrawn at most this often (s)
PLAIN_EVERY_S = 0.2


class Progress:
    """``with Progress("report s.spinrec") as bar: ... bar.update(done, total) ... bar.step("charts")``."""

    def __init__(self, what: str, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.what = what
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            try:
                enabled = bool(self.stream.isatty())
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled
        self._rich: Any = None
        self._task: Any = None
        self._last = 0.0
        self._t0 = time.monotonic()
        self._drawn = False
        self._note = ""

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        try:
            from rich.console import Console
            from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress
        except ImportError:
            return self
        self._rich = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            console=Console(file=self.stream, force_terminal=True),
            transient=True,
        )
        self._rich.start()
        self._task = self._rich.add_task(self.what, total=None)
        return self

    def update(self, done: float, total: float) -> None:
        """``done`` of ``total`` units (frames, samples)."""
        if not self.enabled:
            return
        self._note = ""  # counting again: the stage said before is over
        if self._rich is not None:
            self._rich.update(self._task, description=self.what, completed=done, total=total or None)
            return
        now = time.monotonic()
        if now - self._last < PLAIN_EVERY_S:
            return
        self._last = now
        share = f"{100.0 * done / total:3.0f}%" if total else f"{done:.0f}"
        self._draw(f"{self.what}: {share} ({now - self._t0:.0f} s)")

    def step(self, name: str) -> None:
        """A later stage without a count of its own (``charts``): said beside the job's name."""
        if not self.enabled:
            return
        self._note = name
        if self._rich is not None:
            self._rich.update(self._task, description=f"{self.what}: {name}")
            return
        self._draw(f"{self.what}: {name} ({time.monotonic() - self._t0:.0f} s)")

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text[:79].ljust(79))
        self.stream.flush()
        self._drawn = True

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        elif self._drawn:  # clear the line: what the command prints next starts at its left edge
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
