"""What the lifter types at the terminal while ``spinemon live`` draws its screen.

The live screen redraws its status line in place (carriage return), so the
terminal's own echo of typed keys would land inside that line and garble it.
:class:`TypedLine` therefore takes the keys over as a full-screen terminal
program does: echo and the terminal's line editing are off (termios) while
it runs, the keys are gathered here into lines (Backspace and Ctrl-U edit,
Enter ends a line) and the line being typed (:attr:`TypedLine.pending`) is
for the screen to show. Ctrl-C still interrupts (signals stay on);
:meth:`TypedLine.stop` puts the terminal back as it was.
"""

from __future__ import annotations

import codecs
import os
import termios

__all__ = ["TypedLine"]

_ENTER = "\r\n"
_ERASE_CHAR = "\x7f\b"
_ERASE_LINE = "\x15"  # Ctrl-U
_ESC = "\x1b"


class TypedLine:
    """Keys read from the terminal ``fd`` with echo and line editing off
    between :meth:`start` and :meth:`stop` (also a context manager)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = ""  # typed since the last Enter, not yet a line
        self._saved: list | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._escape = ""  # inside an escape sequence (an arrow key, ...): dropped
        self._after_cr = False

    def start(self) -> None:
        """Echo and line editing off; signals (Ctrl-C) stay on."""
        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[3] &= ~(termios.ECHO | termios.ICANON)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)

    def stop(self) -> None:
        """The terminal as it was before :meth:`start`."""
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)
            self._saved = None

    def __enter__(self) -> TypedLine:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def read(self) -> list[str] | None:
        """The lines completed by the keys waiting on ``fd`` (call when it is
        readable); None at the end of input."""
        data = os.read(self.fd, 1024)
        if not data:
            return None
        return self.feed(self._decoder.decode(data))

    def feed(self, text: str) -> list[str]:
        """Typed characters -> the lines they complete (``pending`` keeps the rest)."""
        lines = []
        for ch in text:
            after_cr, self._after_cr = self._after_cr, ch == "\r"
            if self._escape:  # an arrow or function key (ESC [ ... letter or ~), or Alt + a key: no text
                self._escape += ch
                if (len(self._escape) == 2 and ch != "[") or (
                    len(self._escape) > 2 and (ch.isalpha() or ch == "~")
                ):
                    self._escape = ""
                continue
            if ch == _ESC:
                self._escape = ch
            elif ch in _ENTER:
                if ch == "\n" and after_cr:
                    continue  # CR LF is one Enter
                lines.append(self.pending)
                self.pending = ""
            elif ch in _ERASE_CHAR:
                self.pending = self.pending[:-1]
            elif ch == _ERASE_LINE:
                self.pending = ""
            elif ch.isprintable():
                self.pending += ch
        return lines
