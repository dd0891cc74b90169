"""Words for people: counts with the right plural (``1 event``, ``2 events``)
and commands to copy that a shell reads back as written (a path with spaces
quoted), used by every command's output."""

from __future__ import annotations

import os
import shlex

__all__ = ["command", "plural", "shown_path"]

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
    return os.fsencode(path).decode("utf-8", "replace")


def command(*argv: str | os.PathLike) -> str:
    """A command line to copy: each word quoted for a POSIX shell only where it
    needs it (``spinemon replay 'my day.spinrec'``)."""
    return shlex.join(shown_path(a) if not isinstance(a, str) else a for a in argv)
