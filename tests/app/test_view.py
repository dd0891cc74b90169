"""`spinemon live --view` without a browser: the token check, the binding to
127.0.0.1, the feed's JSON messages from a real pipeline, decimation, the
bounded queues that keep a slow or dead page from delaying the live loop,
and the command-line errors."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import require_extra
from spinemon.io import sim
from spinemon.app import view
from spinemon.app.live import LiveOptions, run
from spinemon.app.live_ui import LiveUI
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.app.view import Subscriber, ViewFeed
from spinemon.app.view_server import ViewServer


def _aiohttp():
    require_extra("aiohttp", "view")
    import aiohttp

    return aiohttp


def arun(coro, timeout=30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---------------------------------------------------------------------------
# the server: token, binding
# ---------------------------------------------------------------------------
def test_the_page_needs_the_token_and_the_server_listens_on_127_0_0_1_only():
    aiohttp = _aiohttp()

    async def go():
        server = ViewServer(ViewFeed())
        url = await server.start()
        try:
            assert url == f"http://127.0.0.1:{server.port}/?t={server.token}" and server.port > 0
            assert len(server.token) >= 32 and server.token != ViewServer(ViewFeed()).token  # random per session
            hosts = {a[0] for a in server._runner.addresses}
            assert hosts == {"127.0.0.1"}, hosts  # not 0.0.0.0, not another interface
            base = f"http://127.0.0.1:{server.port}"
            got = {}
            async with aiohttp.ClientSession() as http:
                for name, path in {"page": f"/?t={server.token}", "none": "/", "empty": "/?t=", "wrong": f"/?t={server.token[:-1]}{'y' if server.token.endswith('x') else 'x'}",
                                   "other-param": f"/?token={server.token}", "ws-none": "/ws", "ws-wrong": "/ws?t=nope", "unknown": f"/nope?t={server.token}"}.items():
                    async with http.get(base + path) as r:
                        got[name] = (r.status, await r.text())
                async with http.ws_connect(f"ws://127.0.0.1:{server.port}/ws?t={server.token}") as ws:
                    hello = json.loads((await ws.receive(timeout=5)).data)
            return got, hello, server.port
        finally:
            await server.stop()

    got, hello, port = arun(go())
    assert got["page"][0] == 200 and "<canvas" in got["page"][1] and "new WebSocket" in got["page"][1]
    for name in ("none", "empty", "wrong", "other-param", "ws-none", "ws-wrong"):
        assert got[name][0] == 403, (name, got[name])
        assert "<canvas" not in got[name][1]
    assert got["unknown"][0] == 404
    assert hello["type"] == "hello" and hello["trace"] == [] and hello["alerts"] == []
    with pytest.raises(OSError):  # stopped: nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_the_page_is_one_self_contained_file():
    html = view.page_html()
    for outside in ("<script src", "<link", "@import", "url(", "https://", "http://"):
        assert outside not in html, outside  # works offline: nothing fetched from anywhere
    assert "<canvas" in html and "<style>" in html and "<script>" in html


def test_a_port_in_use_is_a_command_line_error():
    _aiohttp()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(view.ViewUsageError, match=rf"--view-port {port}: cannot listen on 127\.0\.0\.1:{port} \(Address already in use\)"):
            arun(ViewServer(ViewFeed(), port).start())
    finally:
        taken.close()


def test_view_without_aiohttp_exits_2_with_the_install_line():
    code = "import sys; sys.modules['aiohttp'] = None\nfrom spinemon.app.cli import main\nsys.exit(main(['live', '--sim', '--view']))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert "pip install -e '.[view]'" in r.stderr


# ---------------------------------------------------------------------------
# the feed: what the messages say, from a real pipeline
# ---------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _feed_a_session(feed: ViewFeed, clock: Clock, speed: float = 1.0):
    """A simulated deadlift set through a Pipeline frame by frame, the feed
    called as run_live calls it; host time = device time / speed."""
    s = sim.simulate([sim.SetSpec("deadlift", 5, {3: "rounding"}, rest_s=3.0)], seed=1)
    pl = Pipeline(PipelineSettings(exercise="deadlift"))
    samples, alerts = [], []
    feed.context_seen = []  # (set, rep) of the detector's context after each frame
    for frame, t_host in zip(s.frames, s.frame_times.tolist()):
        clock.t = t_host / speed
        res = pl.on_frame(frame, t_host)
        for a in res.alerts:
            alerts.append(a)
            feed.peaks_at_alert = getattr(feed, "peaks_at_alert", []) + [a.event.peak_deg]  # the event's peak grows on after its alert
            feed.on_alert(a)
        if res.angles is not None and res.t is not None:
            samples += list(zip(res.t.tolist(), res.angles.flexion_deg.tolist()))
        feed.on_frame(res, pl)
        feed.context_seen.append((pl.detector.context.get("set"), pl.detector.context.get("rep")))
    return pl, samples, alerts


def test_feed_messages_carry_the_pipelines_own_angles_state_and_alerts():
    clock = Clock()
    feed = ViewFeed(clock=clock, wall=lambda: 1_700_000_000.0, queue_limit=100_000)
    sub = feed.subscribe()
    pl, samples, alerts = _feed_a_session(feed, clock)
    late = feed.subscribe()  # a page that connects now
    feed.end()
    msgs = [json.loads(text) for _, text in sub.items]
    assert msgs[-1]["type"] == "end"
    assert msgs[0]["type"] == "hello"
    updates = [m for m in msgs if m["type"] == "update"]
    sent_alerts = [m for m in msgs if m["type"] == "alert"]
    # every point is a sample the pipeline computed, thinned to one per 20 ms of device time, in order
    by_t = dict(samples)
    points = [p for m in updates for p in m["points"]]
    assert len(points) > 1000
    assert all(abs(by_t[min(by_t, key=lambda t: abs(t - p[0]))] - p[1]) < 0.006 for p in points[::97])
    gaps = np.diff([p[0] for p in points])
    assert gaps.min() >= 0.02 - 1e-9 and gaps.max() < 0.05
    assert [m["n"] for m in updates] == list(range(1, len(updates) + 1))
    assert all(m["t"] == m["points"][-1][0] for m in updates)
    # the state is the pipeline's: limits, exercise, set/rep (the rep stays up between reps)
    last = updates[-1]["state"]
    assert last["phase"] == pl.phase == "monitoring" and last["exercise"] == "deadlift"
    assert last["flexion_limit_deg"] == round(pl.limits.flexion_deg, 2) and last["extension_limit_deg"] == round(pl.limits.extension_deg, 2)
    reps_seen = [m["state"]["rep"] for m in updates if m["state"]["rep"] is not None]
    in_context = {r for s_, r in feed.context_seen if s_ is not None and r is not None}
    assert reps_seen == sorted(reps_seen) and set(reps_seen) == in_context and max(in_context) == len(pl.summary()["reps"]) == 5
    assert last["set"] == 1 and last["rep"] == 5  # after the last rep: it stays up
    assert {m["state"]["set"] for m in updates if m["state"]["rep"] is not None} == {1}
    # the alerts as they happened: kind, words, device time, set/rep, host wall time
    assert len(alerts) == 1 and len(sent_alerts) == 1
    a, m = alerts[0], sent_alerts[0]
    assert (m["kind"], m["t"], m["set"], m["rep"], m["peak_deg"], m["limit_deg"]) == (
        a.event.kind, round(a.t_trigger_device, 3), a.event.set, a.event.rep, round(feed.peaks_at_alert[0], 2), round(a.event.limit_deg, 2))
    assert m["words"] == "rounded" and m["wall"] == 1_700_000_000.0 and m["buzzed_by"] == a.buzzed_by
    assert updates[-1]["state"]["alerts"] == 1
    # a page that connects late gets the last 20 s and the alerts so far, then what was not published yet, once
    late_msgs = [json.loads(text) for _, text in late.items]
    hello = late_msgs[0]
    # the alert's peak when confirmed, then its excursion's own peak when it ended: the number the
    # trace and replay show (the event's peak), not the one at the buzz
    peaks = [x for x in msgs if x["type"] == "alert_peak"]
    assert peaks == [{"type": "alert_peak", "id": m["id"], "peak_deg": round(a.event.peak_deg, 2)}]
    assert round(a.event.peak_deg, 2) > m["peak_deg"]  # this fault went on deeper after the buzz
    assert hello["type"] == "hello" and hello["alerts"] == [{**m, "peak_final_deg": peaks[0]["peak_deg"]}]
    assert hello["label"] == "lumbar flexion"
    late_points = hello["trace"] + [p for u in late_msgs[1:] if u["type"] == "update" for p in u["points"]]
    assert 19.9 <= late_points[-1][0] - late_points[0][0] <= 20.0
    assert late_points == points[-len(late_points):]  # no point twice, none missing
    assert samples[-1][0] - points[-1][0] < 0.02  # the end published the last points


@pytest.mark.parametrize("speed", [1.0, 4.0, 40.0])
def test_updates_are_decimated_to_25_a_second_of_host_time(speed):
    clock = Clock()
    feed = ViewFeed(clock=clock, queue_limit=100_000)
    sub = feed.subscribe()
    _feed_a_session(feed, clock, speed)
    times = []
    for kind, text in sub.items:
        if kind == "update":
            times.append(json.loads(text)["t"] / speed)  # host time of the update's last sample
    span = times[-1] - times[0]
    rate = (len(times) - 1) / span
    frames_per_s = 12.5 * speed  # the simulated wearer: 8 samples at 100 Hz a frame
    assert rate <= 25.0 + 1e-6, rate
    assert rate >= min(frames_per_s, 25.0) * 0.95, rate  # every frame when they come slower than 25/s


# ---------------------------------------------------------------------------
# a slow or dead page never holds the live loop up
# ---------------------------------------------------------------------------
def test_a_full_queue_drops_the_oldest_update_and_keeps_the_alerts():
    sub = Subscriber(limit=5)
    sub.put("hello", "h")
    for i in range(100):
        sub.put("update", f"u{i}")
        if i in (10, 60):
            sub.put("alert", f"a{i}")
    assert [t for _, t in sub.items] == ["a10", "a60", "u97", "u98", "u99"]
    assert sub.dropped == 98  # hello + 97 updates, nothing else
    only_alerts = Subscriber(limit=2)
    for i in range(4):
        only_alerts.put("alert", f"a{i}")
    assert [t for _, t in only_alerts.items] == ["a2", "a3"] and only_alerts.dropped == 2


def test_publishing_never_waits_for_a_page_that_does_not_read():
    clock = Clock()
    feed = ViewFeed(clock=clock, queue_limit=50)
    stuck = [feed.subscribe() for _ in range(3)]  # nobody takes from these
    t0 = time.perf_counter()
    _, _, alerts = _feed_a_session(feed, clock, speed=1.0)
    spent = time.perf_counter() - t0
    for sub in stuck:
        # hello, updates, the alert and its alert_peak (the excursion's end)
        assert len(sub.items) == 50 and sub.dropped == 1 + feed.updates + 2 * len(alerts) - 50 > 400
        assert sum(k == "alert" for k, _ in sub.items) == len(alerts) == 1
    assert spent < 20  # the whole session's frames, the pipeline included (about 1 s here)


async def _stalled_client(port: int, token: str) -> socket.socket:
    """A page that opens the WebSocket, then never reads again (a frozen browser)."""
    loop = asyncio.get_running_loop()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    await loop.sock_connect(s, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(s, f"GET /ws?t={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    assert (await loop.sock_recv(s, 12)) == b"HTTP/1.1 101"
    return s


@pytest.mark.realtime
def test_a_frozen_page_does_not_delay_the_alerts_of_a_live_session(monkeypatch):
    _aiohttp()
    stalled, queues = [], []
    original = ViewServer.start

    async def start(self):
        self.heartbeat_s = 60.0  # the server would close a page that answers no ping after 5 s; keep this one frozen
        self.feed.queue_limit = 10  # (50 by default) full within this short session once the link is
        url = await original(self)
        subscribe = self.feed.subscribe

        def keep():
            sub = subscribe()
            queues.append(sub)
            return sub

        self.feed.subscribe = keep
        stalled.append(await _stalled_client(self.port, self.token))
        return url

    monkeypatch.setattr(ViewServer, "start", start)

    async def go(with_view: bool, speed: float):
        ui = LiveUI(io.StringIO())
        result = await run(LiveOptions(sim=True, exercise="generic", speed=speed, calibrate_rom=False, view=with_view), ui)
        return result, ui

    try:
        plain, _ = arun(go(False, 200))
        viewed, ui = arun(go(True, 20))  # the demo workout in 6 s: its updates overflow the frozen page's link and queue
    finally:
        for s in stalled:
            s.close()
    assert len(stalled) == 1 and len(queues) == 1
    assert "Live view for a coach: http://127.0.0.1:" in ui.lines[0]
    assert len(queues[0].items) <= queues[0].limit and queues[0].dropped > 0  # its sender stalled; the queue dropped, never grew
    # the same alerts at the same samples, each sent as soon as it was confirmed
    assert [(a.event.kind, a.t_trigger_device) for a in viewed.alerts] == [(a.event.kind, a.t_trigger_device) for a in plain.alerts] != []
    delays = [a.t_sent_host - a.t_rx_host for a in viewed.alerts]
    assert max(delays) < 0.25, delays
    assert viewed.frames == plain.frames


def test_a_page_that_answers_no_ping_is_let_go():
    _aiohttp()

    async def go():
        feed = ViewFeed()
        server = ViewServer(feed, heartbeat_s=0.4)
        await server.start()
        try:
            frozen = await _stalled_client(server.port, server.token)
            t0 = time.monotonic()
            while not feed.subscribers:  # the handshake is done; the page is subscribed
                await asyncio.sleep(0.01)
            while feed.subscribers:
                assert time.monotonic() - t0 < 5, "a frozen page was kept"
                await asyncio.sleep(0.05)
            frozen.close()
            return time.monotonic() - t0
        finally:
            await server.stop()

    assert arun(go()) >= 0.4  # after the heartbeat, not at once
