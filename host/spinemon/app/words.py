"""Words for people: counts with the right plural (``1 event``, ``2 events``)
and commands to copy that a shell reads back as written (a path with spaces
quoted), used by every command's output."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["command", "path_hint", "plural", "program", "shown_path"]

#: nouns whose plural is not noun + "s"
_IRREGULAR = {
    "entry": "entries",
    "this": "these",
    "was": "were",
    "is": "are",
    "has": "have",
}


def plural(n: int | float, noun: str, many: str | None = None) -> str:
    """``n`` and ``noun`` as words: ``plural(1, "rep")`` -> ``"1 rep"``,
    ``plural(3, "rep")`` -> ``"3 reps"``, ``plural(0, "alert")`` -> ``"0 alerts"``.
    ``many``: the plural when it is not ``noun`` + s (``entry`` -> ``entries``
    is known). A noun of several words takes the plural on its last one
    (``"damaged record"`` -> ``"damaged records"``)."""
    return f"{n} {noun if n == 1 else (many or _plural_of(noun))}"


def _plural_of(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR:
        word = _IRREGULAR[last]
    elif last.endswith(("s", "x", "ch", "sh")):
        word = last + "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def shown_path(path: str | os.PathLike) -> str:
    """A path as text that any terminal or UTF-8 file can hold: a file name
    that is not valid UTF-8 (bytes kept by Python as surrogates) shows its
    bad bytes as U+FFFD instead of failing to print."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "replace")


def command(*argv: str | os.PathLike) -> str:
    """A command line to copy: each word quoted for a POSIX shell only where it
    needs it (``spinemon replay 'my day.spinrec'``); ``spinemon`` as the first
    word is what a new shell runs (:func:`program`)."""
    words = [shown_path(a) for a in argv]
    if words and words[0] == "spinemon":
        words[0] = program()
    return shlex.join(words)


def _this_script() -> Path | None:
    """The ``spinemon`` script that runs now (``.venv/bin/spinemon``), or the
    one beside this interpreter (``python -m spinemon.app.cli``), if any."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name in ("spinemon", "spinemon.exe") and argv0.exists():
        return argv0
    for name in ("spinemon", "spinemon.exe"):
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return beside
    return None


def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def program() -> str:
    """What to type for ``spinemon`` in a new shell: ``spinemon`` when that
    name on PATH is this installation, else the path of this one's script
    (``.venv/bin/spinemon``: a fresh shell has no venv active)."""
    me = _this_script()
    on_path = shutil.which("spinemon")
    if me is None or (on_path is not None and _same(on_path, me)):
        return "spinemon"
    return str(me)


def path_hint() -> str | None:
    """One line for when ``spinemon`` is not on PATH (after ``make demo``):
    how to get it there, or None when typing ``spinemon`` works already."""
    prog = program()
    if prog == "spinemon":
        return None
    activate = Path(prog).parent / "activate"
    how = (
        f"run '. {shlex.quote(str(activate))}' once in your shell"
        if activate.exists()
        else "add its folder to PATH"
    )
    return f"note: 'spinemon' is not on your PATH: type {shlex.quote(prog)}, or {how} to type just 'spinemon'"
