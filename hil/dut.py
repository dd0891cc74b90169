"""The device under test: a spinemon board behind a pyserial URL.

:class:`Dut` speaks the USB-serial protocol (COBS frames, 0x00 delimiter) to
a real board (``/dev/ttyUSB0``, ``rfc2217://...``) or to the simulated board
(``mpsim://``, :mod:`hil.urlhandler.protocol_mpsim`) through the same code.
It numbers commands, waits for their ACK/ERROR with a timeout, resynchronises
(GET_STATUS on demand, stepping past a stale counter), resets the board
(simulated: restart the firmware process; real: the DevKit's EN line via RTS)
and injects faults on the line for the corruption scenarios.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import serial

import hil  # noqa: F401  (registers mpsim://)
import spinemon_protocol as sp
from spinemon.core.alerts import CommandCounter
from spinemon.errors import CommandError, CommandTimeoutError, TransportError

BAUDRATE = 115200
READ_CHUNK = 4096


@dataclass
class LineFaults:
    """What the bench injected, to compare with what the receivers counted."""

    rx_frames_corrupted: int = 0  # SAMPLES frames with one bit flipped before the host decoder
    rx_samples_corrupted: int = 0  # samples inside those frames
    tx_commands_corrupted: int = 0  # commands sent with one bit flipped

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def flip_one_data_bit(segment: bytes) -> bytes:
    """Flip one bit of a COBS-encoded segment in a data byte (never a COBS
    code byte, never making a 0x00), so the decoded frame differs from the
    sent one in exactly one bit: the CRC must catch it."""
    codes = set()
    i = 0
    while i < len(segment):
        codes.add(i)
        i += segment[i] if segment[i] else 1
    data = [j for j in range(len(segment)) if j not in codes]
    if not data:
        raise ValueError("segment has no data byte")
    j = data[len(data) // 2]
    b = segment[j]
    mask = 0x10 if b ^ 0x10 else 0x20
    out = bytearray(segment)
    out[j] = b ^ mask
    return bytes(out)


HEARTBEAT_S = sp.HEARTBEAT_MS / 1000.0


class Dut:
    """One board on one serial URL. Not thread-safe.

    ``poll(timeout)`` returns ``[(frame, t_host), ...]`` (COBS-decoded frames,
    not yet checked) with the host's monotonic receive time.
    """

    def __init__(self, url: str, *, open_timeout: float = 2.0) -> None:
        self.url = url
        try:
            self.port = serial.serial_for_url(url, baudrate=BAUDRATE, timeout=0.01, write_timeout=1.0)
        except ValueError as e:
            raise TransportError(f"bad port URL {url!r}: {e}") from None
        except serial.SerialException as e:
            raise TransportError(f"cannot open {url}: {e}") from None
        self.simulated = hasattr(self.port, "reset_dut")
        self.decoder = sp.StreamDecoder()
        self.faults = LineFaults()
        self._rx = bytearray()
        self._backlog: deque[tuple[bytes, float]] = deque()
        self.counter = CommandCounter()  # shared with the host's AlertPolicy: one numbering per link
        self._corrupt_rx_left = 0
        self.link_paused = False
        self.heartbeat_s = HEARTBEAT_S  # TIME_SYNC this often: the firmware's guard takes over when the host falls silent
        self._last_tx = 0.0
        self.bytes_in = 0
        self.last_status: sp.Status | None = None

    # -- bytes in ----------------------------------------------------------------
    def _read(self, timeout: float) -> list[tuple[bytes, float]]:
        if self.link_paused:
            time.sleep(timeout)
            return []
        self.port.timeout = timeout
        try:
            data = self.port.read(READ_CHUNK)
            if self.port.in_waiting:
                data += self.port.read(self.port.in_waiting)
        except serial.SerialException as e:
            raise TransportError(f"{self.url}: read failed: {e}") from None
        t = time.monotonic()
        if not data:
            return []
        self.bytes_in += len(data)
        self._rx.extend(data)
        out = []
        while True:
            k = self._rx.find(b"\x00")
            if k < 0:
                break
            seg = bytes(self._rx[:k])
            del self._rx[: k + 1]
            if self._corrupt_rx_left and seg:
                seg = self._maybe_corrupt(seg)
            for frame in self.decoder.feed(seg + b"\x00"):
                out.append((frame, t))
        return out

    def _maybe_corrupt(self, seg: bytes) -> bytes:
        try:
            frame = sp.cobs_decode(seg)
            obj = sp.decode(frame)
        except sp.ProtocolError:
            return seg
        if obj.kind != sp.T_SAMPLES:
            return seg
        self._corrupt_rx_left -= 1
        self.faults.rx_frames_corrupted += 1
        self.faults.rx_samples_corrupted += obj.count
        return flip_one_data_bit(seg)

    def poll(self, timeout: float = 0.01) -> list[tuple[bytes, float]]:
        self.heartbeat()
        if self._backlog:
            out = list(self._backlog)
            self._backlog.clear()
            return out
        return self._read(timeout)

    # -- bytes out -------------------------------------------------------------
    def _write(self, data: bytes) -> float:
        if self.link_paused:
            raise TransportError("link is down (paused by the bench)")
        try:
            self.port.write(data)
            self.port.flush()
        except serial.SerialException as e:
            raise TransportError(f"{self.url}: write failed: {e}") from None
        self._last_tx = time.monotonic()
        return self._last_tx

    def heartbeat(self) -> None:
        """Send TIME_SYNC when nothing went out for ``heartbeat_s`` (its ACK is
        an ordinary frame for poll()). Silent while the bench holds the link down."""
        if self.heartbeat_s and not self.link_paused and time.monotonic() - self._last_tx >= self.heartbeat_s:
            self.send(sp.OP_TIME_SYNC)

    def next_counter(self) -> int:
        return self.counter.next()

    def send_frame(self, frame: bytes) -> float:
        """Send a ready COMMAND frame (e.g. an alert's); returns the host send time."""
        return self._write(sp.stream_frame(frame))

    def send(self, opcode: int, args: tuple = ()) -> tuple[int, float]:
        c = self.next_counter()
        return c, self.send_frame(sp.encode_command(c, opcode, args))

    def send_corrupted(self, opcode: int = sp.OP_GET_STATUS, args: tuple = ()) -> int:
        """A command with one bit of its counter flipped after the CRC was computed."""
        c = self.next_counter()
        frame = bytearray(sp.encode_command(c, opcode, args))
        frame[2] ^= 0x04
        self._write(sp.stream_frame(bytes(frame)))
        self.faults.tx_commands_corrupted += 1
        return c

    def command(self, opcode: int, args: tuple = (), timeout: float = 1.0):
        """Send one command and wait for its ACK (returned) or ERROR
        (:class:`CommandError`). Frames arriving meanwhile are kept for poll().
        For GET_STATUS the STATUS frame that follows the ACK is awaited too."""
        counter, _ = self.send(opcode, args)
        deadline = time.monotonic() + timeout
        ack = None
        while time.monotonic() < deadline:
            result = None
            error = None
            for frame, t in self._read(0.01):
                # every frame of the batch is kept for poll(), also those after the answer
                self._backlog.append((frame, t))
                if result is not None or error is not None:
                    continue
                try:
                    obj = sp.decode(frame)
                except sp.ProtocolError:
                    continue
                if ack is None and obj.kind in (sp.T_ACK, sp.T_ERROR) and obj.counter == counter:
                    if obj.kind == sp.T_ERROR:
                        error = CommandError(
                            f"{sp.OPCODE_NAMES.get(opcode, opcode)} refused: {sp.ERROR_NAMES.get(obj.code, obj.code)}", obj.code
                        )
                        continue
                    ack = obj
                    if opcode != sp.OP_GET_STATUS:
                        result = ack
                    continue
                if ack is not None and obj.kind == sp.T_STATUS:
                    self.last_status = obj
                    result = obj
            if error is not None:
                raise error
            if result is not None:
                return result
        raise CommandTimeoutError(f"{sp.OPCODE_NAMES.get(opcode, opcode)}: no answer from {self.url} within {timeout:.1f} s")

    # -- session control ----------------------------------------------------------
    def resync(self, timeout: float = 5.0) -> sp.Status:
        """Find the board and take its STATUS: flush a half-received frame at
        the board (lone 0x00), then GET_STATUS; a stale counter (the board
        remembers a newer one) is stepped past in quarter turns of the u32
        space. Continues numbering after STATUS.last_counter."""
        deadline = time.monotonic() + timeout
        last_err: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self._write(b"\x00")
                st = self.command(sp.OP_GET_STATUS, timeout=min(0.5, max(0.05, deadline - time.monotonic())))
            except CommandError as e:
                last_err = e
                if e.code == sp.E_STALE:
                    c = self.counter.next()
                    self.counter.resume_after((c + 0x3FFFFFFF) & 0xFFFFFFFF)
                continue
            except TransportError as e:  # (timeouts included) the board may be booting
                last_err = e
                continue
            self.counter.resume_after(st.last_counter)
            return st
        raise TransportError(f"no STATUS from {self.url} within {timeout:.1f} s ({last_err})")

    def reset(self) -> None:
        """Reset the board. Simulated: restart the firmware process. Real
        ESP32 DevKit (auto-reset circuit: RTS -> EN, DTR -> IO0): hold EN low
        100 ms with IO0 high, so it boots the firmware, not the ROM loader."""
        self._rx.clear()
        self._backlog.clear()
        if self.simulated:
            self.port.reset_dut()
            return
        try:
            self.port.dtr = False
            self.port.rts = True
            time.sleep(0.1)
            self.port.rts = False
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"{self.url}: cannot toggle RTS/DTR to reset the board: {e}") from None

    @property
    def motor_events(self) -> list | None:
        """The motor duty log (simulated board), or None where no motor input is wired."""
        return list(self.port.motor_events) if self.simulated else None

    @property
    def dut_log(self) -> list[str]:
        return list(self.port.dut_log) if self.simulated else []

    def close(self) -> None:
        try:
            if self.port.is_open:
                try:
                    if not self.link_paused:
                        self.send(sp.OP_STOP)
                except TransportError:
                    pass
                self.port.close()
        except serial.SerialException:
            pass

    def __enter__(self) -> "Dut":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
