"""``spinemon live --view``: a live page for a coach, served on 127.0.0.1 (``--view-lan``: the local network).

::

    spinemon live --sim --view [--view-port PORT]
    -> >> Live view for a coach: http://127.0.0.1:PORT/?t=TOKEN

Two parts:

* :class:`ViewFeed` only observes what the live session computes already: it
  is called from ``run_live``'s ``on_frame`` and ``on_alert`` hooks (see
  :func:`spinemon.app.live.run`) and reads the frame's lumbar angles, the
  pipeline's phase, exercise, limits and set/rep context, and each alert. It
  adds nothing to the pipeline. It keeps the last ``window_s`` seconds of the
  trace (thinned to one point per ``point_step_s`` of device time) for a page
  that connects late, and turns the frames into at most ``rate_hz`` update
  messages a second (host time). Publishing never waits: every subscriber
  has a bounded queue, and when a slow or dead browser lets it fill, the
  oldest *update* is dropped (an alert is dropped only if the queue holds
  nothing else), so a browser can never delay the live loop or its alerts.
* :class:`~spinemon.app.view_server.ViewServer` (aiohttp, the ``view`` extra) serves the page
  (``view.html``: one file, inline JS/CSS, a <canvas>; works offline) and a
  WebSocket that pushes the feed's messages. It binds to 127.0.0.1 only, and
  every request must carry the session's random token (``?t=``, from
  :func:`secrets.token_urlsafe`); anything else gets 403.

Messages (JSON text, one per WebSocket message):

``hello``  on connect: ``label``, ``window_s``, ``trace`` ([[t, deg], ...] the last
           ``window_s`` s), ``alerts`` (so far), ``state``
``update`` ``n`` (update number), ``t`` (device time of the last sample),
           ``points`` (the new trace points: ``[t, flexion, lateral bend, twist,
           not_watched]``, the last 0 when the limits are watched, else why not:
           ``"calibrating"`` or a held-back reason such as ``"walking"``), ``state``
``alert``  ``id`` (0, 1, ...), ``kind``, ``words``, ``t`` (device s), ``wall`` (host time, epoch s),
           ``peak_deg`` (when confirmed), ``limit_deg``, ``set``, ``rep``, ``exercise``, ``buzzed_by``
``alert_peak`` ``id``, ``peak_deg``: the alerted excursion ended; its peak (as the trace and
           ``replay`` show it); the ``hello``'s alerts carry it as ``peak_final_deg``
``held_back`` a fault past a limit that did not buzz: ``kind``, ``peak_deg``, ``limit_deg``, ``why``
``notice`` what the lifter must know now: ``text``
``end``    the session ended

``state`` is ``phase``, ``exercise``, ``set``, ``rep`` (stays up between reps,
as on the status line), ``angle_deg``, ``flexion_limit_deg``,
``extension_limit_deg``, ``lateral_deg``, ``twist_deg``, ``lateral_limit_deg``,
``twist_limit_deg`` (limits None: off; the side limits hold both ways),
``held`` (why the limits are not watched now), ``alerts`` (count), ``link``.

With ``lan=True`` (``live --view --view-lan``) the server listens on every
interface (0.0.0.0), so a coach's phone on the same network can open it; the
address printed is this computer's address on the local network. The token
still guards every request; the command prints a plain warning that anyone
on the network with the link can watch and that the page is unencrypted HTTP.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable
from importlib import resources
from typing import Any

from spinemon.app.extras import install_hint
from spinemon.errors import ViewUsageError

__all__ = [
    "MISSING_AIOHTTP",
    "Subscriber",
    "ViewFeed",
    "ViewUsageError",
    "have_aiohttp",
    "page_html",
]

MISSING_AIOHTTP = f"--view needs aiohttp: {install_hint('view')}"


def have_aiohttp() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def page_html() -> str:
    """The page: one self-contained HTML file (inline script and style)."""
    return resources.files("spinemon.app").joinpath("view.html").read_text(encoding="utf-8")


def _num(v: float | None, nd: int = 2) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), nd)


class Subscriber:
    """One page's queue of messages (JSON text). Bounded: :meth:`put` never
    waits; when full it drops the oldest update (alerts are kept while
    anything else can go). ``dropped`` counts what was dropped."""

    def __init__(self, limit: int = 50) -> None:
        self.limit = limit
        self.items: deque[tuple[str, str]] = deque()  # (type, text)
        self.dropped = 0
        self.wake = asyncio.Event()

    def put(self, kind: str, text: str) -> None:
        if len(self.items) >= self.limit:
            for i, (k, _) in enumerate(self.items):
                if k != "alert":
                    del self.items[i]
                    break
            else:
                self.items.popleft()
            self.dropped += 1
        self.items.append((kind, text))
        self.wake.set()

    async def get(self) -> str:
        while not self.items:
            self.wake.clear()
            await self.wake.wait()
        return self.items.popleft()[1]


class ViewFeed:
    """What the page shows, from the live session's hooks (:meth:`on_frame`,
    :meth:`on_alert`, :meth:`on_state`, :meth:`end`). ``clock`` is the host's
    monotonic clock (tests pass their own); ``set_offset`` gives the sets of
    earlier sessions in a resumed recording (the screen numbers on)."""

    def __init__(
        self,
        *,
        rate_hz: float = 25.0,
        window_s: float = 20.0,
        point_step_s: float = 0.02,
        queue_limit: int = 50,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        set_offset: Callable[[], int] = lambda: 0,
    ) -> None:
        self.interval = 1.0 / rate_hz
        self.window_s = window_s
        self.point_step_s = point_step_s
        self.queue_limit = queue_limit
        self.clock = clock
        self.wall = wall
        self.set_offset = set_offset
        self.subscribers: set[Subscriber] = set()
        #: [t, flexion, lateral, twist, not_watched], the last window_s seconds
        self.trace: deque[list[Any]] = deque()
        self.alerts: list[dict] = []
        self.label = "lumbar flexion"
        self.state: dict[str, Any] = {
            "phase": None,
            "exercise": None,
            "set": None,
            "rep": None,
            "angle_deg": None,
            "flexion_limit_deg": None,
            "extension_limit_deg": None,
            "lateral_deg": None,
            "twist_deg": None,
            "lateral_limit_deg": None,
            "twist_limit_deg": None,
            "alerts": 0,
            "link": "connecting",
        }
        self.updates = 0
        self._pending: list[list[Any]] = []
        self._next_point_t = -math.inf
        self._due = -math.inf  # host time of the next update
        self._rep_set = None
        self._alert_ids: dict[int, int] = {}  # id(event) -> its alert's index, until the excursion ends

    # -- subscribers -------------------------------------------------------------------
    def subscribe(self) -> Subscriber:
        """A new page: its queue starts with the ``hello`` message."""
        sub = Subscriber(self.queue_limit)
        trace = list(self.trace)[
            : max(0, len(self.trace) - len(self._pending))
        ]  # the points not yet published come with the next update
        sub.put(
            "hello",
            json.dumps(
                {
                    "type": "hello",
                    "label": self.label,
                    "window_s": self.window_s,
                    "trace": trace,
                    "alerts": self.alerts,
                    "state": self.state,
                }
            ),
        )
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def _publish(self, kind: str, msg: dict) -> None:
        if not self.subscribers:
            return
        text = json.dumps(msg)
        for sub in self.subscribers:
            sub.put(kind, text)

    # -- hooks of the live session ---------------------------------------------------
    def on_frame(self, res, pipeline) -> None:
        """``run_live``'s ``on_frame``: take the frame's angles and the
        pipeline's state as they are; publish an update at most every
        ``1/rate_hz`` s of host time."""
        angles, t = res.angles, res.t
        if angles is not None and t is not None and len(t):
            self.label = angles.label
            deg, lat, tw = angles.flexion_deg, angles.lateral_deg, angles.twist_deg
            # why this frame's samples cannot buzz (0: they are watched): a red excursion in a
            # calibration bend or while walking is drawn grey on the page, with its reason
            if pipeline.phase != "monitoring":
                note: int | str = "calibrating"
            else:
                note = pipeline.held_reason or 0
            for i in range(len(t)):
                ti = float(t[i])
                if ti >= self._next_point_t and math.isfinite(deg[i]):
                    self._next_point_t = ti + self.point_step_s
                    p = [round(ti, 3), round(float(deg[i]), 2), _num(lat[i], 1), _num(tw[i], 1), note]
                    self._pending.append(p)
                    self.trace.append(p)
            while self.trace and self.trace[-1][0] - self.trace[0][0] > self.window_s:
                self.trace.popleft()
            self.state["lateral_deg"] = _num(lat[-1], 1)
            self.state["twist_deg"] = _num(tw[-1], 1)
        self._take_state(pipeline)
        for ev in res.finished:  # an alerted excursion ended: its peak, as the trace and replay show it
            idx = self._alert_ids.pop(id(ev), None)
            if idx is not None:
                self.alerts[idx]["peak_final_deg"] = _num(ev.peak_deg)
                self._publish("alert_peak", {"type": "alert_peak", "id": idx, "peak_deg": _num(ev.peak_deg)})
        for ev in res.held_back:  # a fault past a limit that did not buzz: shown at once, with why
            self._publish(
                "held_back",
                {
                    "type": "held_back",
                    "kind": ev.kind,
                    "t": _num(ev.t_alert, 3),
                    "wall": round(self.wall(), 3),
                    "peak_deg": _num(ev.peak_deg),
                    "limit_deg": _num(ev.limit_deg),
                    "why": ev.held_back,
                },
            )
        for text in res.notices:
            self._publish("notice", {"type": "notice", "text": text, "wall": round(self.wall(), 3)})
        now = self.clock()
        if self._pending and now >= self._due:
            # on the beat (``rate_hz`` a second when frames come faster); after a pause, one interval from now
            self._due = self._due + self.interval if now - self._due < self.interval else now + self.interval
            self._update()

    def _update(self) -> None:
        self.updates += 1
        self._publish(
            "update",
            {
                "type": "update",
                "n": self.updates,
                "t": self._pending[-1][0],
                "points": self._pending,
                "state": self.state,
            },
        )
        self._pending = []

    def _take_state(self, pipeline) -> None:
        ctx = pipeline.detector.context
        lim = pipeline.limits
        s = ctx.get("set")
        if s != self._rep_set:
            self._rep_set, self.state["rep"] = s, None
        if ctx.get("rep") is not None:
            self.state["rep"] = ctx["rep"]  # the rep stays up between reps, as on the status line
        self.state.update(
            phase=pipeline.phase,
            exercise=pipeline.exercise,
            set=None if s is None else s + self.set_offset(),
            angle_deg=_num(pipeline.last_angle_deg),
            flexion_limit_deg=_num(lim.flexion_deg),
            extension_limit_deg=_num(lim.extension_deg),
            lateral_limit_deg=_num(lim.lateral_deg),
            twist_limit_deg=_num(lim.twist_deg),
            held=pipeline.held_reason,  # why the limits are not watched now (None: they are)
        )
        if s is None:
            self.state["rep"] = None

    def on_alert(self, alert) -> None:
        """``run_live``'s ``on_alert``: the alert as it happened (published at once, not decimated)."""
        from spinemon.app.verdict import event_words

        ev = alert.event
        msg = {
            "type": "alert",
            "id": len(self.alerts),
            "kind": ev.kind,
            "words": event_words(ev.kind, ev.exercise),
            "t": _num(alert.t_trigger_device, 3),
            "wall": round(self.wall(), 3),
            "peak_deg": _num(ev.peak_deg),
            "limit_deg": _num(ev.limit_deg),
            "set": None if ev.set is None else ev.set + self.set_offset(),
            "rep": ev.rep,
            "exercise": ev.exercise,
            "buzzed_by": alert.buzzed_by,
        }
        self._alert_ids[id(ev)] = len(self.alerts)
        self.alerts.append(msg)
        self.state["alerts"] = len(self.alerts)
        self._publish("alert", msg)

    def on_state(self, state: str) -> None:
        """The link's state (connected, reconnecting, closed)."""
        self.state["link"] = state

    def end(self) -> None:
        """The session ended: the last points, then ``end``."""
        if self._pending:
            self._update()
        self._publish("end", {"type": "end", "state": self.state})
