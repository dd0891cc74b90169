"""The twin's default answer to COMMAND frames (the device side of the rules).

:class:`CommandResponder` decodes a COMMAND with
:func:`spinemon_protocol.decode_command`, applies the counter rule
(:func:`spinemon_protocol.counter_is_newer`; a stale or repeated counter gets
ERROR ``E_STALE``), and answers ACK or ERROR. HAPTIC commands are recorded
with the time they arrived (``time.monotonic()``, the clock of the asyncio
loop), which later serves as the "motor start" timestamp for latency
measurements.
"""

from __future__ import annotations

import dataclasses
import time

import spinemon_protocol as P

__all__ = ["HapticRecord", "CommandRecord", "CommandResponder"]


@dataclasses.dataclass(frozen=True)
class HapticRecord:
    """One accepted HAPTIC command. ``arrived_s`` is ``time.monotonic()``."""

    arrived_s: float
    counter: int
    pulses: int
    on_ms: int
    off_ms: int
    strength: int


@dataclasses.dataclass(frozen=True)
class CommandRecord:
    """Every COMMAND write the responder saw, accepted or not."""

    arrived_s: float
    frame: bytes
    response: bytes
    accepted: bool
    counter: int | None
    opcode: int | None
    error_code: int | None


class CommandResponder:
    """Decode COMMAND frames and answer them like the firmware will.

    Attributes a test can inspect: ``last_counter`` (starts at
    ``last_counter``, 0 as after boot: STATUS reports it and a host continues
    from ``last_counter + 1``, docs/protocol.md section 8), ``commands``
    (every :class:`CommandRecord`), ``haptics`` (accepted HAPTIC commands),
    ``streaming`` (set by START/STOP), ``rate_hz``, ``guard`` and
    ``commands_rejected``.

    ``device_time_us`` returns the device clock (u32 microseconds) reported in
    the ACK of TIME_SYNC; by default microseconds since the responder was made.
    """

    def __init__(self, clock=time.monotonic, last_counter: int = 0) -> None:
        self._clock = clock
        self._t0 = clock()
        self.last_counter = P.wrap32(last_counter)
        self.commands: list[CommandRecord] = []
        self.haptics: list[HapticRecord] = []
        self.streaming = False
        self.rate_hz = 100
        self.guard = (0, 0, P.GUARD_OFF)
        self.calibrations = 0
        self.neutral: tuple | None = None  # the last SET_NEUTRAL (offset_upper_cdeg, offset_lower_cdeg)
        self.status_requests = 0
        self.commands_rejected = 0

    def device_time_us(self) -> int:
        return P.wrap32(int((self._clock() - self._t0) * 1e6))

    def __call__(self, frame: bytes) -> bytes:
        """Answer one COMMAND frame with an ACK or ERROR frame."""
        arrived = self._clock()
        frame = bytes(frame)
        try:
            cmd = P.decode_command(frame)
        except P.ProtocolError as e:
            return self._reject(arrived, frame, e.counter, e.opcode, e.code)
        if not P.counter_is_newer(cmd.counter, self.last_counter):
            return self._reject(arrived, frame, cmd.counter, cmd.opcode, P.E_STALE)
        self.last_counter = cmd.counter
        value = 0
        op, args = cmd.opcode, cmd.args
        if op == P.OP_HAPTIC:
            self.haptics.append(HapticRecord(arrived, cmd.counter, *args))
        elif op == P.OP_START:
            self.streaming = True
        elif op == P.OP_STOP:
            self.streaming = False
        elif op == P.OP_SET_RATE:
            self.rate_hz = args[0]
        elif op == P.OP_SET_GUARD:
            self.guard = tuple(args)
        elif op == P.OP_TIME_SYNC:
            value = self.device_time_us()
        elif op == P.OP_CALIBRATE:
            self.calibrations += 1
        elif op == P.OP_SET_NEUTRAL:
            self.neutral = tuple(args)
        elif op == P.OP_GET_STATUS:
            self.status_requests += 1
        response = P.encode_ack(cmd.counter, op, value)
        self.commands.append(CommandRecord(arrived, frame, response, True, cmd.counter, op, None))
        return response

    def _reject(self, arrived: float, frame: bytes, counter, opcode, code: int) -> bytes:
        self.commands_rejected += 1
        response = P.encode_error(counter or 0, opcode or 0, code)
        self.commands.append(CommandRecord(arrived, frame, response, False, counter, opcode, code))
        return response
