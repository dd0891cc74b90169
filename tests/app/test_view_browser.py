"""The coach's live view in a real browser (Debian's chromium, headless),
driven over the DevTools protocol, against `spinemon live --sim --view` run
the way the CLI runs it (its parser, then `live.run`). After a few seconds the
page has drawn the trace, shows the set, rep and the session's alert, got at
least 10 updates a second, reconnects when its link drops, and nothing
overflows sideways at 390 or 1280 px. `.ci/run` installs chromium; under
CI=true this test never skips."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import time

import pytest

from conftest import require_extra
from test_report_browser import _chromium

from spinemon.app import cli, live, view_server
from spinemon.app.commands import live as live_command
from spinemon.app.live_ui import LiveUI


def _aiohttp():
    require_extra("aiohttp", "view")
    import aiohttp

    return aiohttp


class DevTools:
    """The smallest DevTools-protocol client: one page, commands by id."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0

    async def call(self, method: str, **params) -> dict:
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=10)
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg["result"]

    async def js(self, expr: str):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")


# what the test reads from the page: its own counters, the DOM, the canvas pixels
PROBE = """(function () {
  if (!window.spinemonView || document.readyState !== 'complete') return null;
  var S = window.spinemonView, now = performance.now(), de = document.documentElement;
  var c = document.getElementById('trace'), px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, blue = 0, red = 0;
  for (var i = 0; i < px.length; i += 4) {
    if (px[i] < 70 && px[i + 1] > 70 && px[i + 1] < 120 && px[i + 2] > 160) blue++;
    if (px[i] > 170 && px[i + 1] < 70 && px[i + 2] < 70) red++;
  }
  var recent = (S.arrivals || []).filter(function (t) { return now - t <= 3000; });
  var wide = Array.prototype.slice.call(document.querySelectorAll('main *')).filter(function (e) { return e.getBoundingClientRect().right > de.clientWidth + 1; }).length;
  return JSON.stringify({messages: S.messages, updates: S.updates, hellos: S.hellos, connects: S.connects, drawn: S.drawn, blue: blue, red: red,
    span_ms: S.arrivals && S.arrivals.length ? now - S.arrivals[0] : 0, recent: recent.length,
    set: document.getElementById('set').textContent, rep: document.getElementById('rep').textContent,
    exercise: document.getElementById('exercise').textContent, angle: document.getElementById('angle').textContent,
    side: document.getElementById('side').textContent, twist: document.getElementById('twist').textContent,
    sideLim: document.getElementById('side-lim').textContent, legend: document.getElementById('legend').textContent,
    link: document.getElementById('link').dataset.state, messagesAttr: document.body.dataset.messages,
    alerts: Array.prototype.map.call(document.querySelectorAll('#alerts li'), function (li) { return {kind: li.dataset.kind, text: li.innerText}; }),
    scrollWidth: de.scrollWidth, clientWidth: de.clientWidth, wide: wide});
})()"""


def test_live_view_in_a_real_browser(tmp_path, monkeypatch):
    exe = _chromium()
    aiohttp = _aiohttp()
    servers: list[view_server.ViewServer] = []
    start = view_server.ViewServer.start

    async def keep(self):  # the test's handle on the server the session starts (to cut the page's link)
        servers.append(self)
        return await start(self)

    monkeypatch.setattr(view_server.ViewServer, "start", keep)
    args = cli.build_parser().parse_args(["live", "--sim", "--view", "--exercise", "deadlift", "--speed", "4", "--no-rom"])
    assert args.func is live_command.main
    ui = LiveUI(io.StringIO())

    async def main():
        session = asyncio.create_task(live.run(live_command.options_from(args), ui))
        while not any("Live view for a coach:" in line for line in ui.lines):
            assert not session.done(), ui.lines
            await asyncio.sleep(0.02)
        said = next(line for line in ui.lines if "Live view for a coach:" in line)
        url = re.search(r"(http://127\.0\.0\.1:\d+/\?t=\S+)", said).group(1)
        profile = tmp_path / "chromium"
        browser = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
                                    f"--user-data-dir={profile}", "--window-size=1280,900", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = profile / "DevToolsActivePort"
            t0 = time.monotonic()
            while not (port_file.exists() and port_file.read_text().strip()):
                assert time.monotonic() - t0 < 15, "chromium did not open its DevTools port"
                await asyncio.sleep(0.05)
            cdp_port = int(port_file.read_text().split()[0])
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{cdp_port}/json/list") as r:
                    page = next(t for t in await r.json() if t["type"] == "page")
                async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    dt = DevTools(ws)
                    seen = None
                    t0 = time.monotonic()
                    while time.monotonic() - t0 < 20:  # until the session's alert is on the page and 3 s of updates came
                        p = json.loads(await dt.js(PROBE) or "{}")  # {} until the page has loaded
                        if p.get("alerts") and p["span_ms"] >= 3000:
                            seen = p
                            break
                        await asyncio.sleep(0.2)
                    assert seen is not None, (p, ui.lines[-5:])
                    for ws_page in list(servers[0]._sockets):  # the link drops: the page must come back by itself
                        await ws_page.close()
                    t1 = time.monotonic()
                    while True:
                        back = json.loads(await dt.js(PROBE))
                        if back["connects"] >= 2 and back["hellos"] >= 2 and back["updates"] > seen["updates"]:
                            break
                        assert time.monotonic() - t1 < 5 and not session.done(), back
                        await asyncio.sleep(0.1)
                    layout = {}
                    for width in (390, 1280):
                        await dt.call("Emulation.setDeviceMetricsOverride", width=width, height=844, deviceScaleFactor=1, mobile=width < 500)
                        await asyncio.sleep(0.3)
                        layout[width] = json.loads(await dt.js(PROBE))
            result = await asyncio.wait_for(session, 30)
            return seen, back, layout, result
        finally:
            browser.terminate()
            browser.wait(10)
            if not session.done():
                session.cancel()

    seen, back, layout, result = asyncio.run(main())
    # the trace is drawn: the points of the last 20 s in the path, its blue line on the canvas
    assert seen["drawn"] >= 100 and seen["blue"] >= 200, seen
    # set, rep and exercise as the session has them; the alert the session raised, with its time and kind
    assert seen["exercise"] == "deadlift" and seen["set"] == "1" and seen["rep"].isdigit() and int(seen["rep"]) >= 1, seen
    # lateral bend and twist beside the flexion, with their limit; the legend says what grey (not watched) means
    assert re.fullmatch(r"[+\u2212]\d+\.\d\u00b0", seen["side"]) and re.fullmatch(r"[+\u2212]\d+\.\d\u00b0", seen["twist"]), seen
    assert seen["sideLim"] == "limit \u00b115.0\u00b0" and "not watched" in seen["legend"] and "no alert" in seen["legend"], seen
    ours = result.alerts[0].event
    first = seen["alerts"][-1]  # the list shows the newest first
    assert first["kind"] == ours.kind, (first, ours)
    assert re.search(r"\d\d:\d\d:\d\d", first["text"]) and ours.kind.replace("_", "-") in first["text"], first
    assert f"set {ours.set}" in first["text"] and f"rep {ours.rep}" in first["text"], first
    # at least 10 updates a second over the last 3 s, as the page received them (the feed publishes up to 25)
    rate = seen["recent"] / 3.0
    print(f"live view: {rate:.1f} updates/s in the page over 3 s, {seen['updates']} updates in {seen['span_ms'] / 1000:.1f} s")
    assert rate >= 10, seen
    assert int(seen["messagesAttr"]) == seen["messages"]
    # no horizontal overflow on a phone or a laptop
    for width, p in layout.items():
        assert p["clientWidth"] == width and p["scrollWidth"] <= p["clientWidth"] and p["wide"] == 0, (width, p)
