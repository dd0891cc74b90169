"""`spinemon live` on a terminal: typed keys are not echoed into the status
line (echo off while the screen runs, restored after, Ctrl-C too); what is
being typed is drawn on the status line, and Enter still marks a set."""

import asyncio
import io
import os
import pty
import termios

import pytest

from spinemon.io import sim
from spinemon.app.live import LiveOptions, run
from spinemon.app.live_ui import LiveUI
from spinemon.io.recording import load
from spinemon.io.transport import SimTransport
from spinemon.app.typed_line import TypedLine


def test_typed_line_gathers_keys_into_lines():
    typed = TypedLine(-1)  # feed() needs no terminal
    assert typed.feed("plx\x7fa") == [] and typed.pending == "pla"
    assert typed.feed("\x1b[Dnk\r\n") == ["plank"] and typed.pending == ""  # an arrow key is no text; CR LF is one Enter
    assert typed.feed("squat\x15row\n\r") == ["row", ""]  # Ctrl-U erases the line; LF then CR: two Enters


def _echo_read(master: int) -> bytes:
    """What the terminal would show of the keys: the pty's echo of them."""
    os.set_blocking(master, False)
    try:
        return os.read(master, 4096)
    except BlockingIOError:
        return b""


@pytest.mark.parametrize("ending", ["enter", "ctrl-c"])
def test_live_on_a_terminal_draws_the_typed_keys_and_does_not_echo_them(tmp_path, ending):
    session = sim.simulate([sim.SetSpec("deadlift", 2)], seed=3)
    frames = list(zip(session.frames, session.frame_times.tolist()))
    master, slave = pty.openpty()
    keys = os.fdopen(slave, "r")
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ECHO  # a terminal echoes keys unless told not to
    screen = io.StringIO()
    # the plain screen, wide: the whole status line fits (fitting and the rich screen: test_live_screen.py)
    ui = LiveUI(screen, tty=True, width=120, screen="plain")
    seen = {}
    out = tmp_path / "s.spinrec"

    async def lifter(transport, live):
        while transport._t0_host == 0.0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        os.write(master, b"pla")
        await asyncio.sleep(0.2)
        seen["lflag"] = termios.tcgetattr(slave)[3]
        seen["screen"] = screen.getvalue()
        if ending == "enter":
            os.write(master, b"nk\r")
        else:
            live.cancel()  # what Ctrl-C does to the session (asyncio.run cancels it)

    async def main_():
        transport = SimTransport(frames, labels=(), speed=20.0)
        live = asyncio.ensure_future(run(LiveOptions(sim=True, exercise="deadlift", out=str(out)), ui, transport=transport, keys=keys))
        helper = asyncio.create_task(lifter(transport, live))
        try:
            return await live
        finally:
            helper.cancel()

    try:
        if ending == "enter":
            asyncio.run(asyncio.wait_for(main_(), 30))
        else:
            with pytest.raises(asyncio.CancelledError):
                asyncio.run(asyncio.wait_for(main_(), 30))
        after = termios.tcgetattr(slave)
        echoed = _echo_read(master)
    finally:
        keys.close()
        os.close(master)

    assert not seen["lflag"] & termios.ECHO and not seen["lflag"] & termios.ICANON  # while the screen ran
    assert after == before  # and the terminal as it was afterwards
    assert b"pla" not in echoed  # the terminal never echoed the keys
    assert seen["screen"].endswith(" | > pla")  # the status line shows what is being typed
    drawn = seen["screen"].rsplit("\r\x1b[2K", 1)[1]
    assert drawn.startswith("lumbar flexion") and drawn.count("pla") == 1
    if ending == "enter":
        assert "-- set 1: plank" in ui.lines  # Enter and an exercise name still mark a set
        assert [(m["set"], m["exercise"]) for m in load(out).meta_of("label")] == [(1, "plank")]
