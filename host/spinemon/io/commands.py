"""Commands to the wearable, off the frame path.

The live loop must never wait on the radio: an ACK that is lost would stop
the frames (and the alerts after it) for as long as the send waits.
:class:`CommandQueue` takes commands from the loop without waiting and sends
them from background tasks, each attempt with a short timeout, retried:

- two lanes, each one command at a time: **haptic** (the alerts' HAPTIC
  commands) and **control** (SET_GUARD, SET_NEUTRAL, the heartbeat, STATUS
  requests). An alert never waits behind a control command whose ACK is lost.
- the command counter is taken when a command is written (not when it was
  queued), so commands reach the wearable in counter order whichever lane
  wrote them (the wearable refuses a counter that is not newer than the last
  one it accepted).
- a HAPTIC whose ACK did not come is sent again with the *same* counter (the
  wearer must not get two buzzes for one fault). If the wearable answers the
  retry "stale counter" and no newer command was written since the first
  attempt, the wearable had accepted the first one: the buzz was delivered
  and is not counted as failed. Control commands are idempotent: a retry
  takes a fresh counter.
- a command fails at once while the link is down (the wearable's own guard
  covers that time), and after its last attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import spinemon_protocol as proto
from spinemon.errors import CommandError, CommandTimeoutError, DisconnectedError, SpinemonError
from spinemon.io.transport import Transport

__all__ = ["CommandQueue", "CommandStats", "Sent"]

#: each attempt waits this long for its ACK (a BLE or serial round trip takes tens of ms)
ATTEMPT_TIMEOUT_S = 0.3
#: attempts per command (the first and the retries)
ATTEMPTS = 3


@dataclass
class CommandStats:
    """What the queue did (in the session summary as ``commands``)."""

    sent: int = 0  # commands that were delivered (ACK, or a HAPTIC's retry answered stale: see the module)
    attempts: int = 0  # writes, retries included
    retries: int = 0
    delivered_on_retry_stale: int = 0  # a HAPTIC whose ACK was lost, proven delivered by its retry
    failed: int = 0  # given up: refused, link down, or no answer to any attempt
    max_wait_s: float = 0.0  # longest time a command waited in its lane before its first write

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Sent:
    """The outcome of one queued command: ``t_sent`` (host time of the
    write that was acknowledged; None if it failed), ``frame`` (the frame
    as written, with the counter it went out with), ``error``."""

    opcode: int
    frame: bytes | None = None
    counter: int | None = None
    t_sent: float | None = None
    error: str | None = None
    attempts: int = 0
    t_queued: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.t_sent is not None


class _Job:
    def __init__(
        self,
        opcode: int,
        args: tuple,
        call: Callable[[], Awaitable] | None,
        done: Callable[[Sent], None] | None,
    ) -> None:
        self.result = Sent(opcode)
        self.args = args
        self.call = call
        self.done = done
        self.counter: int | None = None  # a counter taken before it was queued
        self.epoch = 0
        self.value = None  # what ``call`` returned
        self.exc: BaseException | None = None  # what ``call`` raised
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()


class CommandQueue:
    """See the module. ``transport``: a :class:`~spinemon.io.transport.Transport`;
    ``counter``: the session's :class:`~spinemon.core.alerts.CommandCounter`
    (the one the setup hook resumes after a reconnect)."""

    def __init__(
        self, transport, counter, *, attempt_timeout_s: float = ATTEMPT_TIMEOUT_S, attempts: int = ATTEMPTS
    ) -> None:
        self.transport = transport
        self.counter = counter
        self.attempt_timeout_s = float(attempt_timeout_s)
        self.attempts = max(1, int(attempts))
        self.stats = CommandStats()
        self._lanes: dict[str, deque[_Job]] = {"haptic": deque(), "control": deque()}
        self._wake: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._busy: set[str] = set()  # lanes whose worker is sending a command now
        self._writes = (
            0  # writes so far (any lane): a retry's "stale" proves delivery only if none came between
        )
        self._last_counter: int | None = None  # the last counter this queue wrote
        self._haptic_idle: asyncio.Event | None = (
            None  # clear while a HAPTIC waits for its answer: control writes wait
        )
        self._closed = False

    # -- what callers use ---------------------------------------------------------
    def submit(
        self,
        opcode: int,
        args: tuple = (),
        *,
        counter: int | None = None,
        done: Callable[[Sent], None] | None = None,
    ) -> asyncio.Future:
        """Queue a command without waiting (HAPTIC goes to the haptic lane,
        anything else to the control lane); ``done(Sent)`` is called when it
        was delivered or given up. Returns a future of the :class:`Sent`.
        ``counter``: one taken already (an alert's); kept if it is still
        newer than every counter written since, else a fresh one is taken."""
        job = _Job(opcode, tuple(args), None, done)
        job.counter, job.epoch = counter, _epoch(self.transport)
        return self._put("haptic" if opcode == proto.OP_HAPTIC else "control", job)

    async def send(self, opcode: int, args: tuple = ()) -> float:
        """Queue a command and wait for its outcome: the host time it left,
        or the :class:`SpinemonError` it failed with (for callers off the frame path)."""
        sent = await self.submit(opcode, args)
        if not sent.ok:
            raise _failure(sent)
        return sent.t_sent

    async def call(self, fn: Callable[[], Awaitable]):
        """Run ``fn()`` (a request that numbers its own command, e.g.
        ``transport.request_status(counter)``) in the control lane, so its
        counter, too, is taken in write order. Its result, or its exception."""
        job = _Job(proto.OP_GET_STATUS, (), fn, None)
        await self._put("control", job)
        if job.exc is not None:
            raise job.exc
        if job.result.error is not None:
            raise CommandError(job.result.error)
        return job.value

    def pending(self) -> int:
        return sum(len(q) for q in self._lanes.values()) + len(self._busy)

    async def drain(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) until every queued command is done; True if so."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.pending():
            if loop.time() >= end:
                return False
            await asyncio.sleep(0.005)
        return True

    async def close(self) -> None:
        """Stop the lanes; commands still queued fail (counted)."""
        self._closed = True
        for t in self._workers.values():
            t.cancel()
        for t in list(self._workers.values()):
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._workers.clear()
        for q in self._lanes.values():
            while q:
                self._finish(q.popleft(), error="the session ended before it was sent")

    # -- the lanes -------------------------------------------------------------------
    def _put(self, lane: str, job: _Job) -> asyncio.Future:
        if self._closed:
            self._finish(job, error="the command queue is closed")
            return job.future
        self._lanes[lane].append(job)
        if lane not in self._workers or self._workers[lane].done():
            self._wake[lane] = asyncio.Event()
            self._workers[lane] = asyncio.get_running_loop().create_task(self._run(lane))
        self._wake[lane].set()
        return job.future

    async def _run(self, lane: str) -> None:
        q = self._lanes[lane]
        while True:
            while not q:
                self._wake[lane].clear()
                await self._wake[lane].wait()
            job = q.popleft()
            self._busy.add(lane)
            idle = self._idle()
            try:
                self.stats.max_wait_s = max(self.stats.max_wait_s, time.monotonic() - job.result.t_queued)
                if lane == "haptic":
                    idle.clear()
                    try:
                        await self._send(job)
                    finally:
                        if not q:
                            idle.set()
                elif job.call is not None:
                    await idle.wait()
                    await self._call(job)
                else:
                    await self._send(job, idle)
            except asyncio.CancelledError:
                self._finish(job, error="the session ended before it was sent")
                raise
            except Exception as e:
                self._finish(job, error=f"{type(e).__name__}: {e}")
            finally:
                self._busy.discard(lane)

    async def _call(self, job: _Job) -> None:
        self._writes += 1
        nxt = getattr(self.counter, "_next", None)  # the counter the request is about to take
        self._last_counter = None if nxt is None else (nxt - 1) & 0xFFFFFFFF or None
        assert job.call is not None  # a call job (the control lane's request)
        try:
            job.value = await job.call()
        except Exception as e:
            job.exc = e
        if not job.future.done():
            job.future.set_result(job.result)

    def _idle(self) -> asyncio.Event:
        if self._haptic_idle is None:
            self._haptic_idle = asyncio.Event()
            self._haptic_idle.set()
        return self._haptic_idle

    async def _send(self, job: _Job, gate: asyncio.Event | None = None) -> None:
        r = job.result
        haptic = r.opcode == proto.OP_HAPTIC
        epoch = _epoch(self.transport)
        first_write = 0  # the write count after the first attempt
        t_first = None
        for attempt in range(1, self.attempts + 1):
            if gate is not None:
                await (
                    gate.wait()
                )  # no control write while a HAPTIC waits for its answer (its retry must prove delivery)
            if attempt == 1 or not haptic:  # a HAPTIC keeps its counter: one fault, one buzz
                c = job.counter if attempt == 1 else None
                if (
                    c is None
                    or job.epoch != epoch
                    or (self._last_counter is not None and not proto.counter_is_newer(c, self._last_counter))
                ):
                    c = self.counter.next()
                r.counter = self._last_counter = c
                r.frame = proto.encode_command(r.counter, r.opcode, job.args)
            if attempt > 1:
                self.stats.retries += 1
                if _epoch(self.transport) != epoch:
                    return self._finish(
                        job, error="the link was set up again while the command waited for its answer"
                    )
            r.attempts = attempt
            self.stats.attempts += 1
            self._writes += 1
            if attempt == 1:
                first_write, t_first = self._writes, time.time()
            try:
                r.t_sent = await self.transport.send(r.frame, timeout=self.attempt_timeout_s)
                self.stats.sent += 1
                return self._finish(job)
            except DisconnectedError as e:
                return self._finish(job, error=str(e))  # the wearable's guard covers a dead link
            except CommandTimeoutError as e:  # no answer in time: try again
                r.error = str(e)
            except CommandError as e:
                if (
                    haptic
                    and attempt > 1
                    and e.code == proto.E_STALE
                    and self._writes == first_write + attempt - 1
                ):
                    # nothing newer was written since the first attempt: the wearable accepted that one (its ACK was lost)
                    self.stats.sent += 1
                    self.stats.delivered_on_retry_stale += 1
                    r.t_sent = t_first
                    return self._finish(job)
                return self._finish(job, error=str(e))
            except SpinemonError as e:  # anything else the link raised: try again
                r.error = str(e)
        self._finish(job, error=r.error or "no answer")

    def _finish(self, job: _Job, error: str | None = None) -> None:
        r = job.result
        if error is not None:
            r.error = error
            r.t_sent = None
            self.stats.failed += 1
        else:
            r.error = None
        if job.done is not None:
            try:
                job.done(r)
            except Exception:
                pass
        if not job.future.done():
            job.future.set_result(r)


def _epoch(transport: Transport) -> int:
    """Changes whenever the link was set up again (a reconnect runs the setup
    hook, which resumes the counter: a retry after it proves nothing)."""
    return 0 if transport.stats is None else transport.stats.connects


def _failure(sent: Sent) -> SpinemonError:
    return CommandError(sent.error or "command failed")
