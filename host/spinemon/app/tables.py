"""Plain-text tables that fit the terminal (80 columns when it is not one).

Columns come in order of importance: a table takes them while they fit and
names the ones it left out (they are in the CSV, the HTML or ``--json``).
Plain text on purpose: scripts and tests read it, and it prints the same
with or without a terminal library installed.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["fit_table", "terminal_width", "wrap"]

#: never narrower than this, whatever the terminal says
MIN_WIDTH = 40


def terminal_width(default: int = 80) -> int:
    """Columns of the terminal on stdout; ``default`` when it is not one (a pipe, a file)."""
    return max(MIN_WIDTH, shutil.get_terminal_size((default, 24)).columns)


def fit_table(
    rows: Sequence[dict],
    cols: Sequence[str],
    cell: Callable[[str, Any], str],
    heads: dict[str, str] | None = None,
    width: int | None = None,
    indent: str = "  ",
    left: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """``rows`` as lines no wider than ``width``: the columns of ``cols`` (most
    important first) while they fit, the others left out. Columns empty in
    every row are left out too (not named). Returns (lines, the names of the
    columns left out for width). ``left``: columns aligned left (text)."""
    width = terminal_width() if width is None else width
    heads = heads or {}
    kept: list[tuple[str, str, list[str], int]] = []
    dropped: list[str] = []
    used = len(indent)
    for c in cols:
        texts = [cell(c, r.get(c)) for r in rows]
        if rows and all(t in ("-", "") for t in texts):
            continue
        head = heads.get(c, c)
        w = max([len(head)] + [len(t) for t in texts])
        extra = w + (2 if kept else 0)
        if used + extra > width:
            dropped.append(head)
            continue
        kept.append((c, head, texts, w))
        used += extra

    def line(vals: list[tuple[str, int, bool]]) -> str:
        return (indent + "  ".join(v.ljust(w) if lf else v.rjust(w) for v, w, lf in vals)).rstrip()

    out = [line([(h, w, c in left) for c, h, _, w in kept])]
    for i in range(len(rows)):
        out.append(line([(texts[i], w, c in left) for c, _, texts, w in kept]))
    return out, dropped


def wrap(text: str, width: int | None = None, indent: str = "  ", more: str = "    ") -> list[str]:
    """One paragraph as lines no wider than ``width`` (first line ``indent``, the rest ``more``)."""
    width = terminal_width() if width is None else width
    return textwrap.wrap(
        text, width=width, initial_indent=indent, subsequent_indent=more, break_on_hyphens=False
    ) or [indent.rstrip()]
