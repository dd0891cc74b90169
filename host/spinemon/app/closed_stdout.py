"""A command whose reader stops early (``spinemon replay --json | head -1``,
``python -m hil list | head -1``) ends quietly.

Python ignores SIGPIPE, so writing to a pipe nobody reads raises
:class:`BrokenPipeError`, in the middle of the command or, for output still
buffered, at interpreter exit ("Exception ignored ... BrokenPipeError").
:func:`exit_status_of` runs a command's main, flushes its output while it
can still catch the error and then points stdout at the null device, so
nothing is written or reported after it; the exit status is the one a shell
reports for a program stopped by SIGPIPE (``yes | head -1``): the output was
cut, which a script (``set -o pipefail``) should not take for success.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = ["EXIT_STDOUT_CLOSED", "exit_status_of"]

EXIT_STDOUT_CLOSED = 128 + 13  # 141: 128 + SIGPIPE, as the shell reports it


def exit_status_of(command: Callable[[], int]) -> int:
    """``command()``'s exit status, or :data:`EXIT_STDOUT_CLOSED` when its
    stdout was closed by the reader (then quietly: no traceback, no message)."""
    try:
        try:
            return command()
        finally:  # on SystemExit too (argparse's --help): what is still buffered fails here, not at interpreter exit
            sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_STDOUT_CLOSED


def _discard_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())  # the buffered rest goes nowhere at exit
    except (AttributeError, OSError, ValueError):  # a stdout without a file descriptor (replaced in-process)
        sys.stdout = os.fdopen(os.dup(devnull), "w")
    finally:
        os.close(devnull)
