"""Transports: how frames reach the host and commands reach the wearable.

One async interface, several implementations; the live session does not know
which one it has:

- :class:`SimTransport`: the simulated wearer (``spinemon.sim``), paced in
  real time (or faster), with a simulated haptic motor that obeys HAPTIC
  commands and the counter rules.

BLE (bleak) and serial (pyserial, any ``serial_for_url`` URL) transports
implement the same interface.
"""

from __future__ import annotations

import abc
import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Sequence

import spinemon_protocol as proto
from spinemon.errors import DisconnectedError


@dataclass(frozen=True)
class Received:
    """A frame as it arrived, with the host time it arrived."""

    frame: bytes
    t_host: float


@dataclass(frozen=True)
class Label:
    """The lifter starts a set of ``exercise`` (set numbers from 1)."""

    set: int
    exercise: str

    def as_dict(self) -> dict:
        return {"type": "label", "set": self.set, "exercise": self.exercise}


class Transport(abc.ABC):
    """Async link to one wearable."""

    #: called with "connected", "disconnected", "reconnecting", "closed"
    on_state: Callable[[str], None] | None = None

    @abc.abstractmethod
    async def connect(self, timeout: float = 10.0) -> None: ...

    @abc.abstractmethod
    def items(self) -> AsyncIterator[Received | Label]:
        """Frames as they arrive (and, from a simulator, the lifter's labels)."""

    @abc.abstractmethod
    async def send(self, frame: bytes, timeout: float = 2.0) -> float:
        """Send one COMMAND frame; returns the host time it left."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    def _state(self, state: str) -> None:
        if self.on_state is not None:
            self.on_state(state)


@dataclass
class SimulatedMotor:
    """The simulated wearable's motor: obeys HAPTIC commands with the
    firmware's counter rules; records when each one arrived."""

    last_counter: int = 0
    haptics: list[tuple[float, tuple]] = field(default_factory=list)  # (host time, args)
    rejected: list[tuple[int, int]] = field(default_factory=list)  # (counter, error code)

    def handle(self, frame: bytes, t_host: float) -> bytes:
        try:
            cmd = proto.decode_command(frame)
        except proto.ProtocolError as e:
            self.rejected.append((e.counter or 0, e.code))
            return proto.encode_error(e.counter or 0, e.opcode or 0, e.code)
        if not proto.counter_is_newer(cmd.counter, self.last_counter):
            self.rejected.append((cmd.counter, proto.E_STALE))
            return proto.encode_error(cmd.counter, cmd.opcode, proto.E_STALE)
        self.last_counter = cmd.counter
        if cmd.opcode == proto.OP_HAPTIC:
            self.haptics.append((t_host, cmd.args))
        return proto.encode_ack(cmd.counter, cmd.opcode)


class SimTransport(Transport):
    """Plays a simulated session's frames at ``speed`` x real time
    (``speed=0``: as fast as possible, with host times taken from the
    simulated send times so recordings stay deterministic)."""

    def __init__(self, frames: Sequence[tuple[bytes, float]], labels: Sequence[tuple[float, Label]] = (), speed: float = 1.0) -> None:
        self._frames = frames
        self._labels = sorted(labels, key=lambda x: x[0])
        self.speed = speed
        self.motor = SimulatedMotor()
        self._connected = False
        self._t0_host = 0.0
        self._t0_dev = 0.0
        self._clock_now = 0.0

    def host_time(self, t_dev: float) -> float:
        """Host time at which device time ``t_dev`` is reached."""
        if self.speed <= 0:
            return t_dev
        return self._t0_host + (t_dev - self._t0_dev) / self.speed

    def now(self) -> float:
        return self._clock_now if self.speed <= 0 else time.time()

    async def connect(self, timeout: float = 10.0) -> None:
        self._connected = True
        self._state("connected")

    async def items(self) -> AsyncIterator[Received | Label]:
        if not self._connected:
            raise DisconnectedError("not connected; call connect() first")
        li = 0
        first = True
        for frame, t_send in self._frames:
            if first:
                self._t0_dev = t_send
                self._t0_host = time.time()
                first = False
            while li < len(self._labels) and self._labels[li][0] <= t_send:
                yield self._labels[li][1]
                li += 1
            if self.speed > 0:
                delay = self.host_time(t_send) - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                t_rx = time.time()
            else:
                t_rx = t_send
                self._clock_now = t_send
                await asyncio.sleep(0)
            yield Received(frame, t_rx)
        self._state("closed")

    async def send(self, frame: bytes, timeout: float = 2.0) -> float:
        if not self._connected:
            raise DisconnectedError("the simulated wearable is not connected")
        t = self.now()
        self.motor.handle(frame, t)
        return t

    async def close(self) -> None:
        self._connected = False
