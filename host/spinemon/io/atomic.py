"""Whole-file writes that no reader or other writer ever sees half done.

:func:`atomic_write` writes to a temporary file with a unique name in the
destination's own folder (``tempfile.mkstemp``: two writers, in one process
or many, never share one), flushes and fsyncs it, then ``os.replace``\\ s it
over the destination (atomic on POSIX and Windows) and fsyncs the folder. A
reader opens either the old file or the new one, whole; a writer that fails
leaves the old file as it was and removes its temporary file. With two
writers the last rename wins, whole.

:func:`refuse_existing` is the one overwrite rule of every command that
writes a file or a folder: an existing output is refused (a command-line
mistake, exit 2) unless the command's documented ``--force`` is given.
:func:`atomic_dir` fills a whole folder (a report) the same way: in a
temporary folder beside it, renamed into place when it is complete.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from spinemon.errors import ConfigError, ExistingOutputError

__all__ = [
    "ExistingOutputError",
    "atomic_dir",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "cannot_write",
    "check_writable",
    "refuse_existing",
]

T = TypeVar("T")


def _why(e: OSError) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "the disk is full"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "no permission to write there"
    return e.strerror or str(e)


def _shown(path: str | os.PathLike) -> str:
    return os.fsencode(path).decode("utf-8", "replace")


def cannot_write(path: str | os.PathLike, e: OSError) -> str:
    """One line for a write that failed: ``cannot write PATH (the disk is full); nothing was written ...``."""
    return f"cannot write {_shown(path)} ({_why(e)}); nothing was written under that name: free some space or choose another place"


def refuse_existing(
    path: str | os.PathLike,
    force: bool,
    hint: str | None = None,
    *,
    flag: str = "--out",
    folder: bool = False,
) -> Path:
    """The one overwrite rule: ``path`` (an output file, or with ``folder`` an
    output folder) must not exist yet, unless ``force``. An empty folder counts
    as new. Raises :class:`ExistingOutputError` (one line naming ``flag`` and
    ``--force``; ``hint``, when given, says what to do instead); returns
    ``path`` as a :class:`Path`.

    A folder where a file is to be written (or a file where a folder is) is
    refused even with ``force``: ``--force`` replaces a file by a file and a
    folder's files by a report's, never one kind by the other."""
    p = Path(path)
    shown = f"{flag} {_shown(p)}" if flag else _shown(p)
    if p.is_dir():
        if not folder:
            raise ExistingOutputError(
                f"{shown} is a folder; give a file name (e.g. {_shown(p / 'out')}), or another {flag}"
            )
        if not force and any(p.iterdir()):
            raise ExistingOutputError(
                f"{shown} already exists and holds files; choose another {flag}, or pass --force to replace its contents"
            )
        return p
    if p.exists() or p.is_symlink():
        if folder:
            raise ExistingOutputError(f"{shown} is a file, not a folder; choose another {flag}")
        if not force:
            raise ExistingOutputError(
                f"{_shown(p)} already exists; {hint or f'choose another {flag}, or pass --force to replace it'}"
            )
    return p


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """``write(tmp_name)`` fills a unique temporary file beside ``path``;
    then it is fsynced and renamed over ``path``. OSError (and whatever
    ``write`` raises) leaves ``path`` untouched and no temporary file."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # the mode a plain open() gives (mkstemp makes it 0600)
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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(folder: str | os.PathLike, *, flag: str = "--out") -> None:
    """Fail now, before a long job, if a file cannot be created in ``folder``
    (read-only, no permission, full): a real probe file is created and removed
    (``os.access`` is not enough: root passes it on a read-only mount)."""
    d = Path(folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=".spinemon-probe.", dir=d)
    except OSError as e:
        raise ConfigError(f"cannot write in {_shown(d)} ({_why(e)}); choose another {flag}") from None
    os.close(fd)
    os.unlink(probe)


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


def atomic_dir(path: str | os.PathLike, fill: Callable[[Path], T]) -> T:
    """``fill(tmp_dir)`` writes a whole folder's files into a new temporary
    folder beside ``path``; then ``path`` is replaced by it (an existing
    folder is moved aside first and removed after). A ``fill`` that fails
    (a full disk, a bad name, an interrupt) leaves ``path`` as it was and no
    temporary folder. Returns what ``fill`` returned (paths in it name the
    temporary folder: map them with ``path / p.name``)."""
    p = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent))
    old: Path | None = None
    try:
        result = fill(tmp)
        if p.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".old", dir=p.parent))
            os.replace(p, old / p.name)
        os.replace(tmp, p)
    except BaseException:
        if old is not None and not p.exists():
            os.replace(old / p.name, p)  # put the old folder back
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(p.parent)
    return result
