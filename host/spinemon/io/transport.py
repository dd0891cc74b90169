"""Transports: how frames reach the host and commands reach the wearable.

One async interface, several implementations; the live session does not know
which one it has:

- :class:`SimTransport`: the simulated wearer (``spinemon.io.sim``), paced in
  real time (or faster), with a simulated haptic motor that obeys HAPTIC
  commands and the counter rules.

BLE (bleak, ``spinemon.io.ble``) and serial (pyserial, any ``serial_for_url``
URL, ``spinemon.io.serial_link``) transports implement the same interface on
top of :class:`LinkTransport` (connection supervision, reconnect with
backoff, the setup hook, command/ACK matching).
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import spinemon_protocol as proto
from spinemon.errors import (
    CommandError,
    CommandTimeoutError,
    ConfigError,
    DisconnectedError,
    SpinemonError,
    TransportError,
)


@dataclass(frozen=True)
class Received:
    """A frame as it arrived, with the host time it arrived."""

    frame: bytes
    t_host: float


@dataclass(frozen=True)
class Label:
    """The lifter starts a set of ``exercise`` (set numbers from 1); for
    unilateral work, ``side`` is the working side when the lifter named it."""

    set: int
    exercise: str
    side: str | None = None

    def as_dict(self) -> dict:
        d = {"type": "label", "set": self.set, "exercise": self.exercise}
        if self.side is not None:  # only when named: labels of other lifts stay as they were
            d["side"] = self.side
        return d


class Transport(abc.ABC):
    """Async link to one wearable.

    Besides connect/items/send/close, every transport answers for the
    abilities a link may or may not have, so callers ask, never probe:
    :attr:`connected`, :attr:`stats`, :attr:`pending`,
    :attr:`can_request_status` with :meth:`request_status`, and
    :meth:`read_status`."""

    #: called with "connected", "disconnected", "reconnecting", "closed"
    on_state: Callable[[str], None] | None = None
    #: the session's setup hook, awaited after every (re)connect before the
    #: link counts as "connected" (re-read STATUS, resume the counter, guard, START)
    on_connected: Callable[[Transport], Awaitable[None]] | None = None
    #: the link's counters (connects, commands, frames); None: this transport keeps none
    stats: LinkStats | None = None
    #: :meth:`request_status` can ask the wearable for a fresh STATUS (GET_STATUS)
    can_request_status: bool = False

    @property
    def connected(self) -> bool:
        """Up and set up. A transport without a link state of its own (a
        simulator) is up for as long as it exists."""
        return True

    @property
    def pending(self) -> int:
        """Commands sent and not answered yet (0 where nothing waits for answers)."""
        return 0

    async def request_status(self, counter, timeout: float | None = None) -> proto.Status:
        """A fresh STATUS asked for with GET_STATUS (numbered by ``counter``);
        only where :attr:`can_request_status`."""
        raise TransportError(f"{type(self).__name__} cannot ask the wearable for STATUS")

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

    async def read_status(self, counter=None, timeout: float = 2.0) -> proto.Status | None:
        """The wearable's current STATUS, or None if this transport cannot
        tell. ``counter`` (a ``spinemon.core.alerts.CommandCounter``) numbers a
        GET_STATUS command where reading needs one (serial)."""
        return None

    def announce(self, label: Label) -> None:
        """The lifter's own input (a new set, an exercise): delivered by
        :meth:`items` in order with the frames, so it is recorded and replayed
        exactly where it happened."""
        raise NotImplementedError(f"{type(self).__name__} does not take the lifter's labels")

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
    accepted: list[int] = field(default_factory=list)  # opcodes, in order

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
        self.accepted.append(cmd.opcode)
        if cmd.opcode == proto.OP_HAPTIC:
            self.haptics.append((t_host, cmd.args))
        return proto.encode_ack(cmd.counter, cmd.opcode)


class SimTransport(Transport):
    """Plays a simulated session's frames at ``speed`` x real time
    (``speed=0``: as fast as possible, with host times taken from the
    simulated send times so recordings stay deterministic)."""

    def __init__(
        self,
        frames: Sequence[tuple[bytes, float]],
        labels: Sequence[tuple[float, Label]] = (),
        speed: float = 1.0,
    ) -> None:
        self._frames = frames
        self._labels = sorted(labels, key=lambda x: x[0])
        self.speed = speed
        self.motor = SimulatedMotor()
        self._announced: list[Label] = []
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
        if self.on_connected is not None:
            await asyncio.wait_for(self.on_connected(self), timeout)
        self._state("connected")

    async def read_status(self, counter=None, timeout: float = 2.0) -> proto.Status:
        """A STATUS as the simulated wearable would report it."""
        m = self.motor
        return proto.decode(
            proto.encode_status(
                imu_upper=proto.IMU_SIMULATED,
                last_counter=m.last_counter,
                state=proto.ST_CONNECTED | proto.ST_STREAMING,
            )
        )

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
            while self._announced:
                yield self._announced.pop(0)
            if self.speed > 0:
                delay = self.host_time(t_send) - time.time()
                await asyncio.sleep(
                    max(0.0, delay)
                )  # yields even when behind: other tasks (e.g. commands) run
                t_rx = time.time()
            else:
                t_rx = t_send
                self._clock_now = t_send
                await asyncio.sleep(0)
            yield Received(frame, t_rx)
        self._state("closed")

    def announce(self, label: Label) -> None:
        self._announced.append(label)

    async def send(self, frame: bytes, timeout: float = 2.0) -> float:
        if not self._connected:
            raise DisconnectedError("the simulated wearable is not connected")
        t = self.now()
        self.motor.handle(frame, t)
        return t

    async def close(self) -> None:
        self._connected = False


# ---------------------------------------------------------------------------
# Real links (BLE, serial): connection supervision and command/ACK matching.
# Added for issue 5; SimTransport above does not use any of this.
# ---------------------------------------------------------------------------

#: set (to the transport) while that transport runs its on_connected hook, so
#: the hook may send commands before the link is announced as "connected"
_IN_SETUP: contextvars.ContextVar[object | None] = contextvars.ContextVar("spinemon_link_setup", default=None)


def in_setup(transport: object) -> bool:
    """True while ``transport`` runs its setup hook (in the hook's own task)."""
    return _IN_SETUP.get() is transport


class _End:
    """Queue sentinel: items() stops (closed) or raises ``error``."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


@dataclass(frozen=True)
class LinkOptions:
    """How a real link connects, reconnects and waits (seconds).

    The first connect tries ``connect_attempts`` times; after a lost link the
    transport retries for ever (until :meth:`LinkTransport.close`), waiting
    ``backoff_initial_s`` after the first failed attempt, growing by
    ``backoff_factor`` up to ``backoff_max_s``.
    """

    connect_timeout_s: float = 10.0
    connect_attempts: int = 3
    backoff_initial_s: float = 0.5
    backoff_factor: float = 2.0
    backoff_max_s: float = 8.0
    reconnect: bool = True
    command_timeout_s: float = 2.0
    setup_timeout_s: float = 10.0
    rx_queue_frames: int = 20000

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "command_timeout_s", "setup_timeout_s", "backoff_max_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 < v <= 3600.0):
                raise ConfigError(f"{name} must be in (0, 3600] s, not {v!r}")
        if not (
            isinstance(self.backoff_initial_s, (int, float))
            and 0.0 <= self.backoff_initial_s <= self.backoff_max_s
        ):
            raise ConfigError("backoff_initial_s must be in 0 .. backoff_max_s")
        if not (isinstance(self.backoff_factor, (int, float)) and 1.0 <= self.backoff_factor <= 10.0):
            raise ConfigError("backoff_factor must be in 1 .. 10")
        if (
            isinstance(self.connect_attempts, bool)
            or not isinstance(self.connect_attempts, int)
            or self.connect_attempts < 1
        ):
            raise ConfigError("connect_attempts must be an integer >= 1")
        if (
            isinstance(self.rx_queue_frames, bool)
            or not isinstance(self.rx_queue_frames, int)
            or self.rx_queue_frames < 16
        ):
            raise ConfigError("rx_queue_frames must be an integer >= 16")

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failed attempt (from 1)."""
        return min(self.backoff_max_s, self.backoff_initial_s * self.backoff_factor ** max(0, failures - 1))


@dataclass
class LinkStats:
    """What a real link did (a test or the live display can ask why)."""

    connects: int = 0  # successful (re)connects, setup included
    disconnects: int = 0  # links lost after they were up
    connect_failures: int = 0  # failed attempts (connect or setup)
    frames_in: int = 0  # frames handed to items()
    rx_overflow: int = 0  # frames dropped because nobody consumed items()
    commands_sent: int = 0
    commands_acked: int = 0
    commands_refused: int = 0  # answered with ERROR
    commands_timed_out: int = 0
    unmatched_answers: int = 0  # ACK/ERROR for no waiting command (late, or after a timeout)
    framing_errors: int = 0  # serial only: COBS garbage skipped
    last_error: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class LinkTransport(Transport):
    """Base of the transports to a real wearable (BLE, serial).

    Subclasses implement ``_open`` (bring the link up and start calling
    ``_frame_in`` for every frame that arrives), ``_write`` (one COMMAND
    frame out) and ``_shutdown`` (tear the link down quietly); they call
    ``_link_lost`` when the link drops. This class does the rest:

    - connect with retries and exponential backoff; after a lost link,
      reconnect in the background for ever (``items()`` does not end);
    - after each (re)connect, await :attr:`on_connected` (the session's
      setup hook: STATUS, counter, guard, START) before announcing
      ``"connected"``; commands sent from that hook go out, any other
      command while the link is not ready fails at once with
      :class:`DisconnectedError` (the firmware guard covers that time);
    - :meth:`send` waits for the ACK/ERROR whose counter matches:
      ERROR -> :class:`CommandError` (``.code``), none in time ->
      :class:`CommandTimeoutError`;
    - ``items()`` yields every frame as received (SAMPLES, STATUS, ACK,
      ERROR) with its host arrival time, so the recording holds them all.
    """

    stats: LinkStats
    can_request_status = True

    def __init__(self, options: LinkOptions | None = None) -> None:
        if options is not None and not isinstance(options, LinkOptions):
            raise ConfigError("options must be a LinkOptions")
        self.options = options or LinkOptions()
        self.stats = LinkStats()
        self.state = "idle"
        self.last_status: proto.Status | None = None
        self.status_frames_seen = 0
        self._queue: asyncio.Queue | None = None
        self._pending: dict[int, tuple[int, asyncio.Future]] = {}
        self._link_up = False  # the link itself is up (maybe still in setup)
        self._ready = False  # up and set up: "connected"
        self._closing = False
        self._lost: asyncio.Event | None = None
        self._supervisor: asyncio.Task | None = None
        self._write_lock: asyncio.Lock | None = None

    # -- subclass interface ---------------------------------------------------
    @abc.abstractmethod
    async def _open(self, timeout: float) -> None:
        """Bring the link up within ``timeout``; raise TransportError if not."""

    @abc.abstractmethod
    async def _write(self, frame: bytes) -> None:
        """Send one COMMAND frame; raise TransportError if the link fails."""

    @abc.abstractmethod
    async def _shutdown(self) -> None:
        """Tear the link down; never raises, returns within a few seconds."""

    def _frame_in(self, frame: bytes, t_host: float | None = None) -> None:
        """A frame arrived: answer a waiting command, keep STATUS, queue it."""
        t = time.time() if t_host is None else t_host
        frame = bytes(frame)
        if len(frame) >= proto.MIN_FRAME and frame[1] in (proto.T_ACK, proto.T_ERROR, proto.T_STATUS):
            try:
                obj = proto.decode(frame)
            except proto.ProtocolError:
                obj = None  # the stream decoder counts it
            if isinstance(obj, proto.Status):
                self.last_status = obj
                self.status_frames_seen += 1
            elif obj is not None:
                self._answer(obj)
        q = self._queue
        if q is None:
            return
        try:
            q.put_nowait(Received(frame, t))
            self.stats.frames_in += 1
        except asyncio.QueueFull:
            self.stats.rx_overflow += 1

    def _answer(self, obj) -> None:
        entry = self._pending.get(obj.counter)
        if (
            entry is None
            and isinstance(obj, proto.Error)
            and obj.counter == 0
            and obj.opcode == 0
            and len(self._pending) == 1
        ):
            entry = next(iter(self._pending.values()))  # unreadable command: only one can be meant
        elif entry is not None and entry[0] != obj.opcode:
            entry = None
        if entry is None or entry[1].done():
            self.stats.unmatched_answers += 1
            return
        entry[1].set_result(obj)

    def _link_lost(self, reason: str = "link lost") -> None:
        """The link dropped (called by subclasses, from any callback)."""
        if not self._link_up:
            return
        self._link_up = False
        was_ready, self._ready = self._ready, False
        self.stats.disconnects += 1
        self.stats.last_error = reason
        self._fail_pending(DisconnectedError(f"the wearable disconnected: {reason}"))
        if self._lost is not None:
            self._lost.set()
        if was_ready:
            self._set_state("disconnected")

    # -- public API ------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Up and set up (the state is "connected")."""
        return self._ready

    @property
    def pending(self) -> int:
        """Commands sent and waiting for their ACK/ERROR."""
        return len(self._pending)

    def _set_state(self, state: str) -> None:
        self.state = state
        self._state(state)

    def _fail_pending(self, exc: BaseException) -> None:
        for _, fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: nobody may be waiting any more

    async def connect(self, timeout: float | None = None) -> None:
        """Connect (``connect_attempts`` tries with backoff, each within
        ``timeout`` or ``options.connect_timeout_s``), run the setup hook,
        then keep the link up in the background until :meth:`close`."""
        if self._supervisor is not None:
            return
        if self._closing:
            raise TransportError("this transport was closed")
        timeout = self.options.connect_timeout_s if timeout is None else float(timeout)
        self._queue = asyncio.Queue(self.options.rx_queue_frames)
        self._lost = asyncio.Event()
        self._write_lock = asyncio.Lock()
        failures = 0
        while True:
            try:
                await self._attempt(timeout)
                break
            except (SpinemonError, TimeoutError, OSError) as e:
                failures += 1
                self.stats.connect_failures += 1
                self.stats.last_error = str(e) or type(e).__name__
                if failures >= self.options.connect_attempts:
                    if isinstance(e, TransportError):
                        raise
                    raise TransportError(
                        f"could not connect after {failures} attempts: {self.stats.last_error}"
                    ) from e
                await asyncio.sleep(self.options.backoff(failures))
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _attempt(self, timeout: float) -> None:
        assert self._lost is not None
        self._lost.clear()
        try:
            await asyncio.wait_for(self._open(timeout), timeout)
        except BaseException:
            await self._shutdown()
            raise
        self._link_up = True
        try:
            if self.on_connected is not None:
                token = _IN_SETUP.set(self)
                try:
                    await asyncio.wait_for(self.on_connected(self), self.options.setup_timeout_s)
                finally:
                    _IN_SETUP.reset(token)
            if self._lost.is_set() or not self._link_up:
                raise DisconnectedError("the link dropped during setup")
        except BaseException:
            self._link_up = False
            await self._shutdown()
            raise
        self._ready = True
        self.stats.connects += 1
        self._set_state("connected")

    async def _supervise(self) -> None:
        assert self._lost is not None and self._queue is not None
        while not self._closing:
            await self._lost.wait()
            if self._closing:
                return
            await self._shutdown()
            if not self.options.reconnect:
                self._end(
                    DisconnectedError(
                        f"the wearable disconnected ({self.stats.last_error}); reconnect is off"
                    )
                )
                return
            self._set_state("reconnecting")
            failures = 0
            while not self._closing:
                try:
                    await self._attempt(self.options.connect_timeout_s)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    failures += 1
                    self.stats.connect_failures += 1
                    self.stats.last_error = str(e) or type(e).__name__
                    await asyncio.sleep(self.options.backoff(failures))

    def _end(self, error: BaseException | None = None) -> None:
        if self._queue is None:
            return
        while True:
            try:
                self._queue.put_nowait(_End(error))
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()  # make room: the end must get through
                self.stats.rx_overflow += 1

    def announce(self, label: Label) -> None:
        if self._queue is None:
            raise DisconnectedError("not connected; call connect() first")
        try:
            self._queue.put_nowait(label)
        except asyncio.QueueFull:
            self.stats.rx_overflow += 1

    async def items(self) -> AsyncIterator[Received | Label]:
        if self._queue is None:
            raise DisconnectedError("not connected; call connect() first")
        q = self._queue
        while True:
            item = await q.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    async def send(self, frame: bytes, timeout: float | None = None) -> float:
        """Send one COMMAND frame and wait for its ACK; returns the host
        time it left. Raises DisconnectedError (link not ready),
        CommandError (ERROR answer, ``.code``) or CommandTimeoutError."""
        timeout = self.options.command_timeout_s if timeout is None else float(timeout)
        if not (self._ready or (self._link_up and _IN_SETUP.get() is self)):
            raise DisconnectedError(f"the wearable is not connected (state: {self.state})")
        try:
            cmd = proto.decode_command(frame)
        except proto.ProtocolError as e:
            raise CommandError(f"not a valid COMMAND frame: {e}", code=e.code) from None
        name = proto.OPCODE_NAMES.get(cmd.opcode, str(cmd.opcode))
        if cmd.counter in self._pending:
            raise CommandError(f"a command with counter {cmd.counter} is already waiting for its answer")
        fut = asyncio.get_running_loop().create_future()
        self._pending[cmd.counter] = (cmd.opcode, fut)
        self.stats.commands_sent += 1
        assert self._write_lock is not None
        try:
            async with asyncio.timeout(timeout):
                async with self._write_lock:
                    t_sent = time.time()
                    await self._write(bytes(frame))
                answer = await fut
        except TimeoutError:
            self.stats.commands_timed_out += 1
            raise CommandTimeoutError(
                f"no answer to {name} (counter {cmd.counter}) within {timeout:.3g} s"
            ) from None
        finally:
            self._pending.pop(cmd.counter, None)
        if isinstance(answer, proto.Error):
            self.stats.commands_refused += 1
            reason = proto.ERROR_NAMES.get(answer.code, "unknown")
            raise CommandError(
                f"the wearable refused {name} (counter {cmd.counter}): {reason}", code=answer.code
            )
        self.stats.commands_acked += 1
        return t_sent

    async def request_status(self, counter, timeout: float | None = None) -> proto.Status:
        """Ask for a fresh STATUS with GET_STATUS (numbered by ``counter``, a
        :class:`~spinemon.core.alerts.CommandCounter`) and wait for it; the frame
        also goes to ``items()``. Unlike a read of the STATUS characteristic
        (refreshed once a second) this holds the counters as of now."""
        timeout = self.options.command_timeout_s if timeout is None else float(timeout)
        seen = self.status_frames_seen
        await self.send(proto.encode_command(counter.next(), proto.OP_GET_STATUS), timeout)
        return await self._status_after(seen, timeout)

    async def _status_after(self, seen: int, timeout: float) -> proto.Status:
        """The STATUS frame that follows a GET_STATUS's ACK (``seen``: the
        count of STATUS frames before the command)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.status_frames_seen == seen:
            if loop.time() > deadline:
                raise CommandTimeoutError(
                    f"GET_STATUS was acknowledged but no STATUS came within {timeout:.3g} s"
                )
            await asyncio.sleep(0.002)
        assert self.last_status is not None
        return self.last_status

    async def close(self) -> None:
        """Disconnect for good; ``items()`` ends. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        self._ready = False
        self._link_up = False
        sup, self._supervisor = self._supervisor, None
        if sup is not None:
            sup.cancel()
            try:
                await asyncio.wait_for(sup, 5.0)
            except (asyncio.CancelledError, TimeoutError):
                pass
            except Exception:
                pass
        self._fail_pending(DisconnectedError("the transport was closed"))
        await self._shutdown()
        self._end()
        self._set_state("closed")
