"""Whole-file writes that no reader or other writer ever sees half done.

:func:`atomic_write` writes to a temporary file with a unique name in the
destination's own folder (``tempfile.mkstemp``: two writers, in one process
or many, never share one), flushes and fsyncs it, then ``os.replace``\\ s it
over the destination (atomic on POSIX and Windows) and fsyncs the folder. A
reader opens either the old file or the new one, whole; a writer that fails
leaves the old file as it was and removes its temporary file. With two
writers the last rename wins, whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from spinemon.errors import ExistingOutputError

__all__ = [
    "ExistingOutputError",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "refuse_existing",
]


def refuse_existing(path: str | os.PathLike, force: bool, hint: str | None = None) -> None:
    """The one overwrite rule of every command: an existing ``path`` is
    refused (:class:`ExistingOutputError`, one line, exit 2) unless ``force``
    (the command's documented ``--force``, or ``live --resume``, which
    continues a recording and never replaces it). ``hint`` says what to do."""
    if not force and os.path.lexists(path):
        raise ExistingOutputError(
            f"{path} already exists; {hint or 'choose another name, or pass --force to replace it'}"
        )


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """``write(tmp_name)`` fills a unique temporary file beside ``path``;
    then it is fsynced and renamed over ``path``. OSError (and whatever
    ``write`` raises) leaves ``path`` untouched and no temporary file."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(p.parent)
    return p


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """``data`` as the whole of ``path`` (see :func:`atomic_write`)."""

    def fill(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, fill)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """``text`` as the whole of ``path`` (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def fsync_dir(directory: Path) -> None:
    """Make a new directory entry (a rename, a new file) durable, where the platform allows opening a folder."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
