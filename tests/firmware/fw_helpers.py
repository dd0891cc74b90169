"""Helpers for the firmware tests: run a script under MicroPython (and the
same script under CPython) with protocol/, firmware/ and the fakes on the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mpy_runner

FAKES = Path(__file__).resolve().parent / "fakes"
FAKE_MODULES = FAKES / "modules"
PATH = [mpy_runner.PROTOCOL_DIR, mpy_runner.FIRMWARE_DIR, FAKES]

# Common set-up for device scenarios. The script using it sets CFG_DIR first.
PRELUDE = r"""
import os
import spinemon_protocol as sp
from fake_board import make_hardware
from fake_i2c import Tilt, still
from config_store import ConfigStore
import main

def fresh_store(d, config_text=None):
    try:
        os.mkdir(d)
    except OSError:
        pass
    for f in os.listdir(d):  # every state file and slot (config_store.StateFile)
        try:
            os.remove(d + "/" + f)
        except OSError:
            pass
    if config_text is not None:
        with open(d + "/config.json", "w") as f:
            f.write(config_text)
    return ConfigStore(d + "/config.json", d + "/boot.txt")

class Rig:
    def __init__(self, store, link=None, **kw):
        self.hw = make_hardware(**kw)
        self.dev = main.build_device(self.hw, store, link=link)
        self.dev.boot()
        self.r = self.hw.radio
        self.counter = 0
        self._hidden_at = []  # (first index, count) of the helper's own resync replies
        if self.r is not None:
            U = self.hw.uuid
            self.h_stream = self.r.handle_of(U(sp.STREAM_CHAR_UUID))
            self.h_cmd = self.r.handle_of(U(sp.COMMAND_CHAR_UUID))
            self.h_status = self.r.handle_of(U(sp.STATUS_CHAR_UUID))

    def run_ms(self, ms, step_ms=10):
        for _ in range(ms // step_ms):
            self.hw.ticks.advance_ms(step_ms)
            self.dev.step()

    def connect(self, mtu=None, resync=True):
        self.r.central_connect()
        self.r.exchange_mtu(mtu=mtu)
        self.dev.step()
        if resync:
            self.resync()

    def resync(self):
        # What a host does on every connect (spinemon.io.device_link.LinkSetup): read
        # the STATUS value, continue past its last_counter, and GET_STATUS (the
        # device without a valid counter floor draws a fresh one then); continue
        # from that STATUS's last_counter. Its replies are not in replies().
        raw = self.r.gatts_read(self.h_status)
        if raw:
            last = sp.decode(raw).last_counter
            if self.counter == 0 or sp.counter_is_newer(last, self.counter):
                self.counter = last
        n = len(self.r.notified(self.h_status))
        self.counter += 1
        self.r.central_write(self.h_cmd, sp.encode_command(self.counter, sp.OP_GET_STATUS))
        self.dev.pump_links()
        got = [sp.decode(f) for f in self.r.notified(self.h_status)[n:]]
        self._hidden_at.append((n, len(got)))
        st = [g for g in got if g.kind == sp.T_STATUS]
        assert st, "no STATUS after GET_STATUS: %r" % [(g.kind, getattr(g, "code", None)) for g in got]
        self.counter = st[-1].last_counter
        return st[-1]

    def cmd(self, op, args=(), counter=None):
        if counter is None:
            self.counter += 1
            counter = self.counter
        self.r.central_write(self.h_cmd, sp.encode_command(counter, op, args))
        self.dev.pump_links()

    def raw_cmd(self, data):
        self.r.central_write(self.h_cmd, data)
        self.dev.pump_links()

    def frames(self):
        return [sp.decode(f) for f in self.r.notified(self.h_stream)]

    def replies(self):
        # STATUS/ACK/ERROR notifications, without the helper's resyncs
        fr = self.r.notified(self.h_status)
        skip = set()
        for start, k in self._hidden_at:
            for i in range(start, start + k):
                skip.add(i)
        return [sp.decode(fr[i]) for i in range(len(fr)) if i not in skip]

    def motor_on_ms(self):
        return [(a // 1000, None if b is None else b // 1000) for a, b, d in self.hw.pwm.on_intervals()]
"""


def mpy(script: str, **kw):
    """Run under MicroPython; returns stdout as text (a failure fails the test)."""
    return mpy_runner.run(script, path=PATH, **kw).stdout.decode()


def cpy(script: str, cwd: Path | None = None) -> str:
    """Run the same script under CPython (a subprocess, so the firmware's
    top-level module names never enter the pytest process)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in PATH)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, cwd=cwd, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"CPython exited with {proc.returncode}\n{proc.stdout.decode()[-3000:]}\n{proc.stderr.decode()[-3000:]}")
    return proc.stdout.decode()


def results(stdout: str) -> dict:
    """Lines 'RESULT name=value' printed by a script -> {name: value-string}."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            k, _, v = line[7:].partition("=")
            out[k] = v
    return out
