"""What a lifter sees in `spinemon live` (issue 26, "Live"): the status line
fits an 80- or 100-column terminal, alert numbers are right and the live peak
is the one replay shows, every session is recorded somewhere said on screen,
a failed connect leaves no empty recording, the coach's page on the local
network is opt-in with a warning, and `calibrate --sim` agrees with
`live --sim`. Each drives the product's own path (the CLI or `live.run`
against the simulated wearer)."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemon.app import cli
from spinemon.app.live import LiveOptions, run
from spinemon.app.live_screen import fit_status
from spinemon.app.live_ui import LiveUI
from spinemon.app.replay import replay
from spinemon.core.alerts import Alert, HapticPattern
from spinemon.core.detect import Event
from spinemon.io import sim
from spinemon.io.recording import load
from spinemon.io.transport import SimTransport


def arun(coro, timeout=60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _transport(exercise: str, fault: str, seed: int, speed: float = 5000.0) -> SimTransport:
    s = sim.simulate([sim.SetSpec(exercise, 3, {2: fault}, rest_s=1.0)], seed=seed, rom=False)
    return SimTransport(list(zip(s.frames, s.frame_times.tolist())), [], speed=speed)


# ---------------------------------------------------------------------------
# the status line fits the terminal
# ---------------------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.parametrize("width", [80, 100])
def test_the_rich_screen_fits_the_terminal_and_pins_the_last_alert(width, tmp_path):
    from conftest import require_extra

    require_extra("rich", "screen")
    stream = io.StringIO()
    ui = LiveUI(stream, tty=True, refresh_s=0.0, width=width)  # rich installed: the default screen
    assert ui.rich is not None
    options = LiveOptions(sim=True, exercise="deadlift", calibrate_rom=False, out=str(tmp_path / "s.spinrec"))
    arun(run(options, ui, transport=_transport("deadlift", "rounding", 4)))
    shown = [row for row in re.split(r"[\r\n]", ANSI.sub("", stream.getvalue())) if row]
    status = [row for row in shown if re.match(r"(lumbar flexion|flex) +[+-]\d+\.\d deg \| ", row)]
    pinned = [row for row in shown if row.startswith("!! last alert")]
    assert len(status) > 20 and max(len(r) for r in status) <= width - 1, max(status, key=len)
    assert pinned and max(len(r) for r in pinned) <= width  # cut by rich (an ellipsis), never wrapped
    # once the alert came, every redraw of the region shows it under the status line
    i_alert = next(i for i, row in enumerate(shown) if row.startswith("!! ALERT over-flexion"))
    later = shown[i_alert:]
    redraws = [i for i, row in enumerate(later[:-1]) if row in status]
    with_alert = [i for i in redraws if later[i + 1].startswith("!! last alert")]
    assert len(redraws) > 5 and len(with_alert) >= len(redraws) - 1  # (the one redrawn as the alert line printed)
    assert any("peaked at" in row for row in pinned)  # the excursion's final peak replaces the one at the buzz
    assert shown[-2].startswith("Session ended.")  # the region is gone; the summary follows as plain lines


@pytest.mark.parametrize("width", [80, 100])
def test_the_status_line_fits_the_terminal_and_keeps_what_matters(width, tmp_path):
    stream = io.StringIO()
    ui = LiveUI(stream, tty=True, refresh_s=0.0, width=width, screen="plain")
    options = LiveOptions(sim=True, exercise="deadlift", calibrate_rom=False, out=str(tmp_path / "s.spinrec"))
    arun(run(options, ui, transport=_transport("deadlift", "rounding", 4)))
    text = stream.getvalue()
    # every in-place refresh: "\r\x1b[2K" then the status line, ended by the next refresh or a line of its own
    # (a clear followed by a line ending in "\n" is a line of its own: a prompt, an alert)
    drawn = [seg for seg in text.split("\r\x1b[2K")[1:] if seg and "\n" not in seg]
    assert len(drawn) > 20
    assert max(len(d) for d in drawn) <= width - 1, max(drawn, key=len)  # never wraps: a refresh never scrolls
    monitored = [d for d in drawn if "alerts" in d and ("ok" in d or "limit" in d)]
    assert monitored and all(re.match(r"(lumbar flexion|flex) +[+-]\d+\.\d deg \| ", d) for d in monitored)
    assert all(re.search(r"\| alerts \d+", d) for d in monitored)
    # the alert line stays above the status line: after it, only whole lines and in-place refreshes
    alert = [line for line in ui.lines if line.startswith("!! ALERT over-flexion")]
    assert len(alert) == 1
    after = text.split(alert[0] + "\n", 1)[1]
    assert after.count("\n") == len(ui.lines) - ui.lines.index(alert[0]) - 1
    assert any("alerts 1" in d for d in drawn)


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(20, 200),
    angle=st.floats(-90, 90),
    reason=st.sampled_from(["ok", "near limit", "not watched: walking", "calibrating: no alerts"]),
    exercise=st.sampled_from(["deadlift", "single_leg_deadlift", "overhead_press"]),
    typing=st.text(alphabet="abcdefghijklmnopqrstuvwxyz _", max_size=40),
)
def test_any_status_line_fits_any_width(width, angle, reason, exercise, typing):
    parts = [
        ("angle", f"lumbar flexion {angle:+6.1f} deg"),
        ("zone", reason),
        ("room", "limit +40 [#####.....] room +20"),
        ("side", "side -12 twist +7"),
        ("set", f"set 12 rep 10 {exercise}"),
        ("alerts", "alerts 3 (last: over-flexion set 12 rep 9 (deadlift))"),
        ("lost", "lost 1.25% bad 3"),
        ("link", "reconnecting"),
    ]
    assert len(fit_status(parts, width)) <= width
    ui = LiveUI(io.StringIO(), tty=True, width=width + 1, screen="plain")
    ui.typing = typing
    assert len(ui.screen_line(parts)) <= max(20, width)
    if width >= 60:  # what matters stays whole: the angle, why it is (not) watched, the alert count
        line = fit_status(parts, width)
        assert f"{angle:+6.1f} deg" in line and reason in line and "alerts 3" in line


# ---------------------------------------------------------------------------
# alert numbers
# ---------------------------------------------------------------------------
def test_a_left_bend_past_its_limit_reads_as_past_the_left_limit():
    ui = LiveUI(io.StringIO())
    ev = Event("lateral_bend", 10.0, 15.0, -17.8, t_alert=10.1, set=1, rep=2, exercise="deadlift")
    ui.on_alert(Alert(ev, HapticPattern(3, 100, 100), 1, b"", 10.1, 0.0, t_sent_host=0.1))
    assert "-17.8 deg when confirmed, limit -15.0, 2.8 past" in ui.lines[-1], ui.lines[-1]
    # the report's verdict counts the same way
    from spinemon.app.verdict import _past

    assert _past("lateral_bend", -17.8, 15.0) == " 3 deg past your limit"


def test_live_alert_numbers_and_peaks_are_the_ones_replay_shows(tmp_path):
    """A twist to the left in a curl (-21.9 deg against 15), a rounded deadlift
    rep that goes on deeper after its buzz: the screen's numbers and replay's agree."""
    for exercise, fault, seed in (("curl", "twisting", 1), ("deadlift", "rounding", 4)):
        out = tmp_path / f"{exercise}.spinrec"
        ui = LiveUI(io.StringIO())
        options = LiveOptions(sim=True, exercise=exercise, calibrate_rom=False, out=str(out))
        arun(run(options, ui, transport=_transport(exercise, fault, seed)))
        events = [e for e in replay(load(out)).events if e.held_back is None]
        alerts = [line for line in ui.lines if line.startswith("!! ALERT")]
        peaked = [line for line in ui.lines if " peaked at " in line]
        assert len(events) == len(alerts) == len(peaked) == 1, ui.lines
        ev = events[0]
        limit = (1 if ev.peak_deg >= 0 else -1) * abs(ev.limit_deg)
        past = abs(ev.peak_deg) - abs(ev.limit_deg)
        assert f"peaked at {ev.peak_deg:+.1f} deg, {past:.1f} past the limit {limit:+.1f}" in peaked[0], (peaked, ev)
        confirmed = float(re.search(r": ([+-]\d+\.\d) deg when confirmed, limit ([+-]\d+\.\d), (\d+\.\d) past", alerts[0]).group(1))
        m = re.search(r"when confirmed, limit ([+-]\d+\.\d), (\d+\.\d) past", alerts[0])
        assert float(m.group(1)) == round(limit, 1) and float(m.group(2)) == pytest.approx(abs(confirmed) - abs(ev.limit_deg), abs=0.051)
        if exercise == "curl":
            assert ev.kind == "twist" and ev.peak_deg < -15.0 and past < 10.0  # left: a few deg past -15, not 30+ past +15


# ---------------------------------------------------------------------------
# every session is recorded; a failed connect leaves nothing behind
# ---------------------------------------------------------------------------
def test_without_out_the_session_is_recorded_in_the_sessions_folder_said_on_screen(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPINEMON_HOME", str(tmp_path / "home"))
    rc = cli.main(["live", "--sim", "--speed", "5000", "--exercise", "squat", "--no-rom"])
    out = capsys.readouterr().out
    assert rc == 0
    made = sorted((tmp_path / "home" / "sim-sessions").glob("*.spinrec"))
    assert len(made) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_squat\.spinrec", made[0].name)
    assert f">> Recording to {made[0]}" in out.splitlines()[:3]
    assert f"Recording: {made[0]}" in out
    assert load(made[0]).meta_of("summary")[0]["frames"] > 100
    # --no-record: said, and nothing written
    rc = cli.main(["live", "--sim", "--speed", "5000", "--exercise", "squat", "--no-rom", "--no-record"])
    out = capsys.readouterr().out
    assert rc == 0 and ">> Not recording this session (--no-record)." in out
    assert len(list((tmp_path / "home" / "sim-sessions").glob("*.spinrec"))) == 1
    # what cannot go together: one line each, exit 2
    assert cli.main(["live", "--sim", "--resume"]) == 2
    assert cli.main(["live", "--sim", "--out", str(tmp_path / "x.spinrec"), "--no-record"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--resume needs --out" in err[0] and "exclude each other" in err[1]


@pytest.mark.realtime
def test_no_adapter_leaves_no_recording_and_the_retry_and_resume_work(tmp_path, monkeypatch, capsys):
    """`live --name X --out today.spinrec` on a laptop without Bluetooth: the
    same command can be run again, and --resume adds no empty segment."""
    import bleak
    from bleak.exc import BleakError

    async def no_adapter(*a, **k):
        raise BleakError("No Bluetooth adapters found.")

    monkeypatch.setattr(bleak.BleakScanner, "find_device_by_filter", no_adapter)
    monkeypatch.chdir(tmp_path)
    argv = ["live", "--name", "spinemon-1A2B", "--exercise", "deadlift", "--out", "today.spinrec"]
    for _ in range(2):  # the retry gets the same clear error, not "already exists"
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("spinemon: error: no Bluetooth adapter could be used") and err.count("\n") == 1, err
        assert list(tmp_path.iterdir()) == []  # no 0-frame file, no stray temporary file
    # a real recording, then --resume with no adapter: no empty .seg2
    assert cli.main(["live", "--sim", "--speed", "5000", "--exercise", "squat", "--no-rom", "--out", "today.spinrec"]) == 0
    capsys.readouterr()
    assert cli.main(argv + ["--resume"]) == 1
    assert "no Bluetooth adapter" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["today.spinrec"]
    # an existing --out without --resume: a command-line mistake, one line, exit 2
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "today.spinrec already exists" in err and "--resume" in err and err.count("\n") == 1


# ---------------------------------------------------------------------------
# the coach's phone on the local network: opt-in, with the token and a warning
# ---------------------------------------------------------------------------
def test_view_lan_listens_on_the_network_with_the_token_and_says_so(tmp_path):
    from conftest import require_extra

    require_extra("aiohttp", "view")
    import aiohttp

    from spinemon.app.view import ViewFeed
    from spinemon.app.view_server import ViewServer, lan_address

    async def server_side():
        server = ViewServer(ViewFeed(), lan=True)
        url = await server.start()
        try:
            hosts = {a[0] for a in server._runner.addresses}
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{server.port}/") as r:
                    refused = r.status
                async with http.get(f"http://127.0.0.1:{server.port}/?t={server.token}") as r:
                    page = r.status
            return url, hosts, refused, page, server
        finally:
            await server.stop()

    url, hosts, refused, page, server = arun(server_side())
    assert hosts == {"0.0.0.0"} and refused == 403 and page == 200
    assert url == f"http://{lan_address()}:{server.port}/?t={server.token}" and not lan_address().startswith("127.")

    ui = LiveUI(io.StringIO())
    options = LiveOptions(sim=True, exercise="squat", calibrate_rom=False, view=True, view_lan=True)
    arun(run(options, ui, transport=_transport("squat", "rounding", 4)))
    shown = [line for line in ui.lines if line.startswith(">> Live view for a coach: http://")]
    assert len(shown) == 1 and "?t=" in shown[0] and "127.0.0.1" not in shown[0] and "on this network" in shown[0]
    warn = ui.lines[ui.lines.index(shown[0]) + 1]
    assert warn.startswith("!! WARNING") and "anyone" in warn and "not encrypted" in warn
    # without --view-lan: this computer only, and --view-lan alone is a command-line mistake
    assert cli.main(["live", "--sim", "--view-lan", "--no-record"]) == 2


def test_the_page_shows_side_angles_and_why_a_stretch_is_not_watched():
    """The feed's points carry lateral bend, twist and why the limits were not
    watched (calibration bends, walking); the page draws them."""
    from spinemon.app.view import ViewFeed, page_html
    from spinemon.core.pipeline import Pipeline, PipelineSettings

    s = sim.simulate([sim.SetSpec("curl", 3, {2: "twisting"}, rest_s=1.0)], seed=1, rom=True)
    pl = Pipeline(PipelineSettings(exercise="curl"))
    feed = ViewFeed(queue_limit=100_000)
    sub = feed.subscribe()
    side = {}
    for frame, t in zip(s.frames, s.frame_times.tolist()):
        res = pl.on_frame(frame, t)
        if res.angles is not None and res.t is not None:
            side.update({round(float(ti), 3): (a, b) for ti, a, b in zip(res.t, res.angles.lateral_deg, res.angles.twist_deg)})
        feed.on_frame(res, pl)
    feed.end()
    import json

    msgs = [json.loads(text) for _, text in sub.items]
    points = [p for m in msgs if m["type"] == "update" for p in m["points"]]
    assert all(len(p) == 5 for p in points)
    for p in points[::53]:
        lat, tw = side[p[0]]
        assert p[2] == round(float(lat), 1) and p[3] == round(float(tw), 1)
    notes = {p[4] for p in points}
    assert "calibrating" in notes and 0 in notes  # the calibration bends are marked; monitored samples are not
    last = msgs[-1]["state"]
    assert last["twist_limit_deg"] == 15.0 and last["lateral_limit_deg"] == 15.0 and last["twist_deg"] is not None
    html = page_html()
    for needed in ('id="side"', 'id="twist"', "not watched", "calibration", "alert_peak", "p[4]"):
        assert needed in html, needed


# ---------------------------------------------------------------------------
# the newcomer path: calibrate, then live, on the simulated wearer
# ---------------------------------------------------------------------------
def test_calibrate_sim_is_used_by_live_sim_and_a_good_calibration_says_no_stopped(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SPINEMON_PROFILE")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SPINEMON_HOME", str(tmp_path / ".spinemon"))
    assert cli.main(["calibrate", "--sim", "--speed", "0"]) == 0
    out = capsys.readouterr().out
    assert "Stopped" not in out and "Session ended" not in out
    stored = Path(tmp_path / ".spinemon" / "sim-profile.json")
    assert stored.exists() and f"Saved to {stored}. 'spinemon live --sim' uses it" in out
    assert cli.main(["live", "--sim", "--speed", "5000", "--exercise", "deadlift", "--no-record"]) == 0
    out = capsys.readouterr().out
    assert f">> Using the calibration stored in {stored}" in out
    assert ">> Now bend slowly forward" not in out  # not calibrated again


def test_fault_help_lists_every_kind_the_simulator_takes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in sim.FAULTS:
        assert kind in text, kind
    assert "creep@3" in text
