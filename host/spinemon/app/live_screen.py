"""Drawing ``spinemon live``'s status on a terminal (what is said is
:class:`spinemon.app.live_ui.LiveUI`'s).

:func:`fit_status` fits the status line's parts to a terminal's width,
dropping or shortening what matters least first, so a refresh never wraps
and the alert lines above it stay on screen. :class:`RichScreen` draws it
with rich (the ``screen`` extra): a region at the bottom of the terminal
holding the status line and the last alert pinned under it, every other
line printed above it; rich drives POSIX terminals and Windows consoles
alike. Without rich, ``LiveUI`` draws one plain line (carriage return and
an ANSI erase).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TextIO

__all__ = ["RichScreen", "fit_status", "have_rich"]


def fit_status(parts: list[tuple[str, str]], width: int) -> str:
    """The status line in at most ``width`` characters: the parts that matter
    least go first (the lateral bend and twist, the link counters, the limit's
    bar, the exercise's name, the last alert's words), so the angle, the zone
    or why the limits are not watched, the set and rep and the alert count
    stay; only what is still too long is cut (ending in ``~``)."""
    steps: list[tuple[str, Callable[[str], str | None]]] = [
        ("side", lambda t: None),
        ("lost", lambda t: None if t == "lost 0.00% bad 0" else t),  # a perfect link: nothing to say
        ("room", lambda t: t[t.index("room") :] if "room" in t else t),
        ("link", lambda t: None if t == "connected" else t),
        ("alerts", lambda t: t.split(" (last")[0]),
        ("lost", lambda t: None),
        ("set", lambda t: " ".join(t.split()[:4])),  # set N rep M, without the exercise
        ("angle", lambda t: t.replace("lumbar flexion", "flex").replace("single-sensor inclination", "incl")),
        ("room", lambda t: None),
        (
            "set",
            lambda t: re.sub(
                r"set (\d+)(?: rep (\d+))?", lambda m: f"s{m[1]}" + (f" r{m[2]}" if m[2] else ""), t
            ),
        ),
        ("set", lambda t: None),
    ]
    line = " | ".join(t for _, t in parts)
    for key, short in steps:
        if len(line) <= width:
            return line
        kept: list[tuple[str, str]] = []
        for k, t in parts:
            shown = short(t) if k == key else t
            if shown is not None:
                kept.append((k, shown))
        parts = kept
        line = " | ".join(t for _, t in parts)
    return line if len(line) <= width else line[: max(0, width - 1)] + "~"


def have_rich() -> bool:
    """rich (the ``screen`` extra) draws the live screen when installed."""
    try:
        import rich.live  # noqa: F401
    except ImportError:
        return False
    return True


class RichScreen:
    """The live screen drawn by rich (the ``screen`` extra): a region at the
    bottom of the terminal holding the status line and, under it, the last
    alert (kept in view however many lines scroll above it); every other
    line is printed above the region. rich measures the terminal (also a
    resized one) and drives Windows consoles as well as POSIX terminals."""

    def __init__(self, stream: TextIO, width: int | None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(
            file=stream,
            force_terminal=True,
            width=width,
            highlight=False,
            markup=False,
            emoji=False,
        )
        self.live = Live(
            console=self.console,
            auto_refresh=False,
            transient=True,  # the region goes when the session ends; the summary lines follow
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.started = False

    @property
    def width(self) -> int:
        return int(self.console.width)

    def line(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(text), soft_wrap=True)  # above the live region, which is drawn again

    def draw(self, status: str, pinned: str | None) -> None:
        from rich.console import Group
        from rich.text import Text

        rows = [Text(status, no_wrap=True, overflow="ellipsis")]
        if pinned:
            rows.append(Text(pinned, style="bold red", no_wrap=True, overflow="ellipsis"))
        if not self.started:
            self.live.start()
            self.started = True
        self.live.update(Group(*rows), refresh=True)

    def stop(self) -> None:
        if self.started:
            self.live.stop()
            self.started = False
