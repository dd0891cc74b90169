"""The keys of ``spinemon live``: :class:`SetMarker` marks sets from the
keyboard while the session runs (Enter, an exercise name, a side), each
mark a :class:`~spinemon.io.transport.Label` announced through the
transport, so it is recorded and replayed in order with the frames. On a
terminal the keys are read with echo off (:mod:`spinemon.app.typed_line`,
termios: POSIX terminals only; elsewhere ``live`` says so and sets are found
from the motion alone).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from spinemon.core.detect import PROFILES
from spinemon.core.unilateral import parse_exercise
from spinemon.errors import ConfigError, SpinemonError
from spinemon.io.transport import Label, Transport

if TYPE_CHECKING:
    from spinemon.app.live_ui import LiveUI

__all__ = ["SetMarker"]


class SetMarker:
    """The lifter marks sets from the keyboard: Enter starts the next set of
    the current exercise; an exercise name then Enter switches exercise and
    starts a set; for unilateral work the side may follow the name
    (``lunge left``, ``lunge right``, ``left`` alone switches the side of the
    same exercise). Each mark is a :class:`Label` announced through the
    transport, so it is recorded and replayed in order with the frames.
    (Limits are watched inside sets; without marks, a set is recognised
    from its second rep on.)"""

    def __init__(self, transport: Transport, ui: LiveUI, exercise: str, side: str | None = None) -> None:
        self.transport = transport
        self.ui = ui
        self.exercise = exercise
        self.side = side
        self.next_set = 1
        self.labels: list[Label] = []

    def line(self, text: str) -> Label | None:
        typed = text.strip()
        if typed:
            if typed.lower() in ("left", "right", "l", "r"):  # the other side of the same exercise
                typed = f"{self.exercise} {typed}"
            try:
                name, side = parse_exercise(typed)
            except ConfigError as e:
                if not str(e).startswith("unknown exercise"):
                    self.ui.line(f"-- {e}")
                    return None
                self.ui.line(
                    f"-- unknown exercise {text.strip()!r}; type one of {', '.join(PROFILES)} (or just Enter for the next set)"
                )
                return None
            self.exercise, self.side = name, side
        label = Label(self.next_set, self.exercise, self.side)
        self.next_set += 1
        self.transport.announce(label)
        self.labels.append(label)
        self.ui.line(
            f"-- set {label.set + self.ui.set_offset}: {label.exercise}"
            + (f" ({label.side})" if label.side else "")
        )
        return label

    def _mark(self, text: str) -> None:
        try:
            self.line(text)
        except SpinemonError as e:
            self.ui.line(f"-- could not mark the set: {e}")

    def attach(self, stream: TextIO) -> Callable[[], None]:
        """Read lines from ``stream`` (a TTY's stdin) without blocking the
        session; returns a function that detaches. When both ``stream`` and
        the screen are a terminal, the keys are not echoed (the echo would
        land in the status line): the line being typed is shown on the status
        line instead, until detached (:class:`~spinemon.app.typed_line.TypedLine`)."""
        loop = asyncio.get_running_loop()
        fd = stream.fileno()
        if self.ui.tty and os.isatty(fd):
            return self._attach_terminal(loop, fd)

        def readable() -> None:
            text = stream.readline()
            if text == "":  # end of input: stop listening
                loop.remove_reader(fd)
                return
            self._mark(text)

        loop.add_reader(fd, readable)

        def detach() -> None:
            loop.remove_reader(fd)

        return detach

    def _attach_terminal(self, loop: asyncio.AbstractEventLoop, fd: int) -> Callable[[], None]:
        from spinemon.app.typed_line import TypedLine  # termios: POSIX terminals only

        typed = TypedLine(fd)
        typed.start()

        def readable() -> None:
            lines = typed.read()
            if lines is None:  # end of input: stop listening
                loop.remove_reader(fd)
                lines = []
            for text in lines:
                self.ui.show_typing("")
                self._mark(text)
            self.ui.show_typing(typed.pending)

        def detach() -> None:
            loop.remove_reader(fd)
            typed.stop()
            self.ui.show_typing("")

        try:
            loop.add_reader(fd, readable)
        except BaseException:
            typed.stop()
            raise
        return detach
