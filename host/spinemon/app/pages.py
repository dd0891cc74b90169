"""The HTML pages of ``report`` and ``history`` (the season index), from templates.

The markup lives in ``spinemon/app/templates/*.html.j2`` (jinja2, the
optional ``report`` extra); this module only builds their context: plain
strings and numbers, tables as headings and cells, charts as data URIs with
the smallest text size each PNG records. jinja2 escapes every value
(autoescape), so no name in a recording can add markup to a page.

Without jinja2 the pages are not written: :func:`available` says so and the
commands print one line naming the extra; the CSV tables, the PNG charts and
the terminal summary do not need it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FONT_KEY", "MISSING_JINJA2", "available", "font_px_of", "plot", "render", "table"]

#: the PNG text key that holds a chart's smallest text in image pixels (spinemon.app.plotting.save writes it)
FONT_KEY = "spinemon-min-font-px"

MISSING_JINJA2 = "jinja2 is not installed (pip install 'spinemon[report]')"
TEMPLATES = Path(__file__).resolve().parent / "templates"

_env: Any = None


def available() -> bool:
    """Whether the pages can be written (jinja2 is importable)."""
    try:
        import jinja2  # noqa: F401
    except ImportError:
        return False
    return True


def render(name: str, **context: Any) -> str:
    """Template ``name`` (in :data:`TEMPLATES`) with ``context``; every value escaped."""
    global _env
    if _env is None:
        import jinja2

        _env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
    return _env.get_template(name).render(**context)


def table(
    rows: Sequence[dict],
    cols: Sequence[str],
    head: Callable[[str], str],
    text: Callable[[str, Any], str],
) -> dict:
    """A table's context: ``heads`` (names as a coach reads them) and ``rows``
    of (text, is a number) cells, numbers aligned right. ``text(column, value)``."""
    return {
        "heads": [head(str(c)) for c in cols],
        "rows": [
            [
                (
                    text(c, r.get(c)),
                    isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool),
                )
                for c in cols
            ]
            for r in rows
        ],
    }


def font_px_of(path: Path) -> float | None:
    """The smallest text of a chart's PNG, in image pixels (None: not recorded, or no PIL)."""
    try:
        from PIL import Image  # comes with matplotlib, which drew the chart

        with Image.open(path) as im:
            v = im.text.get(FONT_KEY)  # type: ignore[attr-defined]
    except (ImportError, OSError):
        return None
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


def _image(path: Path) -> dict:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    px = font_px_of(path)
    return {"uri": f"data:image/png;base64,{data}", "font_px": "" if px is None else f"{px:.2f}"}


def plot(wide: Path, narrow: Path | None, alt: str) -> dict:
    """A chart's context: the laptop-width PNG and, where drawn, its phone-width one."""
    return {"alt": alt, "wide": _image(wide), "narrow": _image(narrow) if narrow is not None else None}
