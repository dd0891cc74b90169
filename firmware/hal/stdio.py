# USB serial (the REPL's stdin/stdout) as a non-blocking byte port:
# read() -> bytes or None, write(bytes). Keyboard interrupt is disabled so a
# 0x03 byte in a frame does not stop the program (reset the board to get the
# REPL back).

import sys

import select

try:
    import micropython
except ImportError:  # CPython
    micropython = None


class StdioPort:
    def __init__(self, inp=None, out=None, max_read=512):
        self.inp = inp if inp is not None else sys.stdin.buffer
        self.out = out if out is not None else sys.stdout.buffer
        self.poller = select.poll()
        self.poller.register(self.inp, select.POLLIN)
        self.max_read = max_read
        self.eof = False
        self._raw = False

    def read(self, n=-1):
        if not self._raw:
            # only once the serial link is in use: the REPL keeps Ctrl-C otherwise
            self._raw = True
            if micropython is not None and hasattr(micropython, "kbd_intr"):
                micropython.kbd_intr(-1)
        return self._read()

    def _read(self):
        buf = bytearray()
        while len(buf) < self.max_read and not self.eof:
            ev = self.poller.poll(0)
            if not ev or not (ev[0][1] & select.POLLIN):
                break
            b = self.inp.read(1)
            if not b:
                self.eof = True
                break
            buf.extend(b)
        return bytes(buf) if buf else None

    def write(self, data):
        n = self.out.write(data)
        try:
            self.out.flush()
        except (AttributeError, OSError):
            pass
        return n
