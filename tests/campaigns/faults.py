"""Fault campaign (issue 23): hardware faults injected at random times in
every firmware state, into the real firmware under MicroPython with the
fakes that fail like hardware (tests/firmware/fakes).

Each injection builds a fresh wearable (fake board, two LSM6DSO following
the *same* bending motion, so every pair must hold equal values), brings it
to a state, runs it a random 0..1 s, injects one fault and watches 3 s of
device time (10 ms steps, as the app's loops run). Invariants, checked on
every injection:

- the main loop never dies: no exception out of Device.step() (a "crash");
- the guard goes on with what is left: the longest stretch without a guard
  update carrying the upper sensor (not counting the time the upper one is
  declared lost, when the "sensor lost" pattern plays instead) is measured;
- the fault is reported within 1 s: the first host-visible sign (a SAMPLES
  frame flagged SF_FIFO_OVERFLOW / SF_SENSOR_LOST, a STATUS notified or
  readable with the fault's counter or imu_lost, an ERROR storage_failed);
- no two IMUs' samples are paired out of step: every two-sensor sample's
  upper and lower values are equal;
- the heap stays flat (a soak per kind: the fault injected again and again
  for 60 s on one wearable, gc.mem_alloc() before and after);
- a fault at boot is retried (main.boot_device);
- a save that fails is NAKed with E_STORAGE, never ACKed;
- an answer the radio refused (ENOMEM) is delivered once the radio takes it.

    python -m tests.campaigns.faults [--per-kind 12] [--seed 1]

Exit status 0 when every invariant held. Prints a markdown table (the one
in docs/reliability.md, "Hardware faults").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "firmware"))

KINDS = (
    "i2c_timeout",  # one ETIMEDOUT (upper or lower)
    "i2c_eio",  # one EIO
    "i2c_nack",  # one NACK (ENODEV)
    "midread_timeout",  # a FIFO burst cut by a timeout after the chip clocked it out
    "unplug_lower",  # the lower IMU leaves the bus, back after 0.5..2.5 s (browned out)
    "unplug_upper",
    "brownout",  # one IMU resets to its power-on registers
    "zeros",  # one IMU returns all 0x00 for 0.3..2 s
    "ff",  # one IMU returns all 0xFF for 0.3..2 s
    "stuck_bus",  # every transaction times out for 0.1..1.5 s
    "fifo_overflow",  # the loop stalls 3..6 s: both FIFOs overflow
    "full_flash",  # a save while the flash is full
    "notify_enomem",  # the radio refuses notifications for 50..500 ms around a command
    "disconnect_storm",  # 5..15 drops and reconnects within 2 s
    "boot_fault",  # I2C errors at boot
)
STATES = ("idle", "stream", "stream_guard", "link_down", "set_rate", "command")

BODY = r"""
import gc
import random
import fault_fs
import config_store
from fake_i2c import ETIMEDOUT, EIO, ENODEV
import fake_board

BEND = Tilt([(0, 0), (1, 35), (2, 0), (3, -15), (4, 0), (5, 35), (6, 0), (7, -15), (8, 0), (9, 35), (10, 0), (1e6, 0)])
FAULT_FLAGS = sp.SF_FIFO_OVERFLOW | sp.SF_SENSOR_LOST

def rint(a, b):
    return a + random.getrandbits(16) % (b - a + 1)

def pick(xs):
    return xs[random.getrandbits(16) % len(xs)]

class Watch:
    # the guard's updates with the upper sensor (device ms of each poll)
    def __init__(self, dev):
        self.dev = dev
        self.last = None
        self.gap = 0
        self.t0 = None
        g = dev.guard
        real = g.update
        w = self
        def update(up, low, now_ms, link_down):
            if up is not None:
                w.seen(now_ms)
            return real(up, low, now_ms, link_down)
        g.update = update

    def seen(self, now_ms):
        if self.t0 is not None and self.last is not None and now_ms - self.last > self.gap:
            self.gap = now_ms - self.last
        self.last = now_ms

    def tick(self, now_ms):
        if self.dev.sampler.lost & sp.SENSOR_UPPER:
            self.last = now_ms  # lost: the pattern stands in, not counted
        elif self.t0 is not None and self.last is not None and now_ms - self.last > self.gap:
            self.gap = now_ms - self.last

def base_status(rig):
    return sp.decode(rig.dev.status_frame())

def faulty(st, base):
    return (st.imu_lost or st.i2c_errors > base.i2c_errors or (st.save_failed and not base.save_failed)
            or st.imu_resyncs > base.imu_resyncs or st.fifo_overflows > base.fifo_overflows)

def one(kind, state, res):
    rig = Rig(fresh_store(CFG_DIR), upper_motion=BEND, lower_motion=BEND)
    rig.connect(mtu=247)
    if state != "idle":
        rig.cmd(sp.OP_START)
    rig.run_ms(400)
    rig.cmd(sp.OP_CALIBRATE, (0,))
    if state in ("stream_guard", "set_rate", "command"):
        rig.cmd(sp.OP_SET_GUARD, (3000, -2000, sp.GUARD_ALWAYS))
    if state == "link_down":
        rig.cmd(sp.OP_SET_GUARD, (3000, -2000, sp.GUARD_WHEN_LINK_DOWN))
        rig.r.central_disconnect()
    watch = Watch(rig.dev)
    rig.run_ms(rint(0, 100) * 10)
    hw = rig.hw
    i2c = hw.i2c
    base = base_status(rig)
    n_notes = len(rig.r.notifications)
    n_replies = len(rig.replies())
    t0 = hw.ticks.t_us
    watch.t0 = t0 // 1000
    addr = pick((0x6A, 0x6B))
    clear_at = None
    expect_report = True
    full = None
    sent = []
    stall_ms = 0
    if kind == "i2c_timeout":
        i2c.fail(addr, 1, ETIMEDOUT, after=rint(0, 3))
    elif kind == "i2c_eio":
        i2c.fail(addr, 1, EIO, after=rint(0, 3))
    elif kind == "i2c_nack":
        i2c.fail(addr, 1, ENODEV, after=rint(0, 3))
    elif kind == "midread_timeout":
        i2c.fail(addr, 1, ETIMEDOUT, after=1)
    elif kind == "unplug_lower":
        i2c.unplug(0x6B); clear_at = rint(50, 250) * 10
    elif kind == "unplug_upper":
        i2c.unplug(0x6A); clear_at = rint(50, 250) * 10
    elif kind == "brownout":
        i2c.brownout(addr)
    elif kind == "zeros":
        i2c.garbage(addr, 0x00); clear_at = rint(30, 200) * 10
    elif kind == "ff":
        i2c.garbage(addr, 0xFF); clear_at = rint(30, 200) * 10
    elif kind == "stuck_bus":
        i2c.stick(True); clear_at = rint(10, 150) * 10
    elif kind == "fifo_overflow":
        stall_ms = rint(300, 600) * 10
        hw.ticks.advance_ms(stall_ms)  # the loop did not run: both FIFOs overflowed
        t0 = hw.ticks.t_us  # the loop runs again from here
        watch.t0 = t0 // 1000
        watch.last = t0 // 1000  # the stalled loop itself is not the firmware's blind time
    elif kind == "full_flash":
        full = fault_fs.FullFS()
        fault_fs.install(config_store, full)
    elif kind == "notify_enomem":
        rig.r.congested = True; clear_at = rint(5, 50) * 10
        expect_report = False
    elif kind == "disconnect_storm":
        expect_report = False
    if state == "set_rate":
        rig.cmd(sp.OP_SET_RATE, (pick((52, 104, 208)),))
        sent.append(sp.OP_SET_RATE)
    elif state == "command" or kind in ("full_flash", "notify_enomem"):
        op, args = pick(((sp.OP_CALIBRATE, (0,)), (sp.OP_SET_GUARD, (3000, -2000, 2)), (sp.OP_SET_NEUTRAL, (0, 0)), (sp.OP_HAPTIC, (1, 50, 0, 100))))
        if state == "link_down":
            op, args = None, None
        if op is not None:
            rig.cmd(op, args)
            sent.append(op)
    storm = rint(5, 15) if kind == "disconnect_storm" else 0
    report_us = None
    status_at = 0
    for step in range(300):
        hw.ticks.advance_ms(10)
        now_ms = (hw.ticks.t_us - t0) // 1000
        if clear_at is not None and now_ms >= clear_at:
            i2c.clear_faults()
            rig.r.congested = False
            clear_at = None
        if storm and step % 10 == 5:
            storm -= 1
            if rig.r.connections:
                rig.r.central_disconnect()
            else:
                rig.r.central_connect(); rig.r.exchange_mtu(mtu=247)
        if storm == 0 and kind == "disconnect_storm" and step % 10 == 5:
            if not rig.r.connections:
                rig.r.central_connect(); rig.r.exchange_mtu(mtu=247)
                rig.dev.step()
                rig.resync()
                if state != "idle":
                    rig.cmd(sp.OP_START)
            storm = -1
        try:
            rig.dev.step()
        except Exception as e:
            res["crashes"] += 1
            res["crash_msgs"].append("%s/%s: %r" % (kind, state, e))
        watch.tick(hw.ticks.t_us // 1000)
        if report_us is None and expect_report and step % 5 == 4:
            v = rig.r.gatts_read(rig.h_status)
            if v and faulty(sp.decode(v), base):
                report_us = hw.ticks.t_us - t0
    if full is not None:
        fault_fs.uninstall(config_store)
    # host-visible signs after t0, in order
    notes = rig.r.notifications[n_notes:]
    for tn, conn, h, data in notes:
        f = sp.decode(data)
        t = tn - t0
        if f.kind == sp.T_SAMPLES:
            res["frames"] += 1
            if f.flags & FAULT_FLAGS and (report_us is None or t < report_us):
                report_us = t
            if f.mask == 3:
                v = f.values()
                for k in range(f.count):
                    res["pairs"] += 1
                    if v[k * 13 : k * 13 + 6] != v[k * 13 + 6 : k * 13 + 12]:
                        res["out_of_step"] += 1
        elif f.kind == sp.T_STATUS:
            if faulty(f, base) and (report_us is None or t < report_us):
                report_us = t
        elif f.kind == sp.T_ERROR and f.code == sp.E_STORAGE:
            if report_us is None or t < report_us:
                report_us = t
    answers = [r for r in rig.replies()[n_replies:] if r.kind in (sp.T_ACK, sp.T_ERROR)]
    for op in sent:
        got = [r for r in answers if r.opcode == op]
        if kind == "full_flash" and op in (sp.OP_CALIBRATE, sp.OP_SET_GUARD, sp.OP_SET_NEUTRAL, sp.OP_SET_RATE):
            res["saves"] += 1
            if len(got) != 1 or got[0].kind != sp.T_ERROR or got[0].code != sp.E_STORAGE:
                res["saves_acked"] += 1
                res["crash_msgs"].append("save answered %r" % [(r.kind, getattr(r, "code", 0)) for r in got])
        elif state != "link_down" and kind != "disconnect_storm":
            res["answers"] += 1
            if len(got) != 1:
                res["answers_lost"] += 1
                res["crash_msgs"].append("%s/%s: op %d answered %d times" % (kind, state, op, len(got)))
    if kind == "full_flash" and not sent:
        expect_report = False
    if expect_report:
        if report_us is None:
            # a transient fault the firmware never noticed (e.g. an error
            # on a write that landed) is not a report missing unless it counted one
            st = base_status(rig)
            if faulty(st, base):
                res["unreported"] += 1
                res["crash_msgs"].append("%s/%s: counted but never reported" % (kind, state))
        else:
            res["report_ms"].append(report_us // 1000)
    res["guard_gap_ms"].append(watch.gap - stall_ms if watch.gap > stall_ms else watch.gap)
    res["n"] += 1
    del rig
    gc.collect()

def boot_one(res):
    hw = fake_board.make_hardware()
    n = rint(1, 8)
    hw.i2c.fail(0x6A, n, pick((ETIMEDOUT, EIO, ENODEV)))
    hw.i2c.fail(0x6B, n, pick((ETIMEDOUT, EIO, ENODEV)))
    try:
        dev = main.boot_device(hw, fresh_store(CFG_DIR), log=None)
        ok = dev.lower is not None and dev.ble is not None
    except Exception as e:
        ok = False
        res["crash_msgs"].append("boot: %r" % e)
    res["n"] += 1
    res["boots_ok" if ok else "boots_failed"] += 1

def soak(kind):
    # one wearable, the fault again and again for 60 s: the heap stays flat
    rig = Rig(fresh_store(CFG_DIR), upper_motion=BEND, lower_motion=BEND)
    rig.connect(mtu=247)
    rig.cmd(sp.OP_START)
    i2c = rig.hw.i2c
    def burst(s):
        if kind in ("i2c_timeout", "midread_timeout"):
            i2c.fail(0x6B, 1, ETIMEDOUT, after=1)
        elif kind == "unplug_lower":
            if s % 4 == 0: i2c.unplug(0x6B)
            elif s % 4 == 2: i2c.replug(0x6B)
        elif kind == "brownout":
            i2c.brownout(0x6A)
        elif kind == "stuck_bus":
            i2c.stick(s % 2 == 0)
    alloc = []
    for s in range(60):
        burst(s)
        for k in range(100):
            rig.hw.ticks.advance_ms(10)
            rig.dev.step()
        rig.r.notifications.clear()
        gc.collect()
        alloc.append(gc.mem_alloc())
    return alloc[9], alloc[-1]

def campaign(kinds, states, per_kind, seed):
    random.seed(seed)
    out = {}
    for kind in kinds:
        res = {"n": 0, "crashes": 0, "crash_msgs": [], "frames": 0, "pairs": 0, "out_of_step": 0, "report_ms": [],
               "guard_gap_ms": [], "saves": 0, "saves_acked": 0, "answers": 0, "answers_lost": 0, "unreported": 0,
               "boots_ok": 0, "boots_failed": 0, "states": {}}
        for i in range(per_kind):
            if kind == "boot_fault":
                boot_one(res)
                continue
            state = states[i % len(states)]
            res["states"][state] = res["states"].get(state, 0) + 1
            one(kind, state, res)
        print("RESULT %s=%s" % (kind, json.dumps(res)))
"""

SOAK_KINDS = ("midread_timeout", "unplug_lower", "brownout", "stuck_bus")


def run(per_kind: int = 12, seed: int = 1, kinds=KINDS, soak: bool = True, timeout: float = 3600.0) -> dict:
    import mpy_runner
    from fw_helpers import PATH, PRELUDE, results

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        script = "CFG_DIR = %r\n" % d + PRELUDE + BODY
        script += "import json\ncampaign(%r, %r, %d, %d)\n" % (tuple(kinds), STATES, per_kind, seed)
        if soak:
            for k in SOAK_KINDS:
                script += "a, b = soak(%r)\nprint('RESULT soak_%s=%%d,%%d' %% (a, b))\n" % (k, k)
        t = time.monotonic()
        proc = mpy_runner.run(script, path=PATH, timeout=timeout, check=False)
        wall = time.monotonic() - t
    if proc.returncode != 0:
        raise SystemExit("the campaign's MicroPython process failed:\n" + proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:])
    raw = results(proc.stdout.decode())
    out = {"kinds": {}, "soak": {}, "wall_s": wall}
    for k, v in raw.items():
        if k.startswith("soak_"):
            a, b = v.split(",")
            out["soak"][k[5:]] = (int(a), int(b))
        else:
            out["kinds"][k] = json.loads(v)
    return out


def violations(out: dict) -> list[str]:
    bad = []
    for kind, r in out["kinds"].items():
        for key in ("crashes", "out_of_step", "saves_acked", "answers_lost", "unreported", "boots_failed"):
            if r[key]:
                bad.append(f"{kind}: {key} {r[key]} ({r['crash_msgs'][:3]})")
        if r["report_ms"] and max(r["report_ms"]) > 1000:
            bad.append(f"{kind}: reported after {max(r['report_ms'])} ms")
    for kind, (a, b) in out["soak"].items():
        if b - a > 4096:
            bad.append(f"soak {kind}: heap grew {b - a} bytes")
    return bad


def table(out: dict) -> str:
    lines = [
        "| fault | injected | states | firmware crashes | pairs checked | out of step | reported (max ms) | longest without a guard, ms | other |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    tot = {"n": 0, "crashes": 0, "pairs": 0, "out_of_step": 0}
    for kind in KINDS:
        r = out["kinds"].get(kind)
        if r is None:
            continue
        for k in tot:
            tot[k] += r[k]
        rep = f"{len(r['report_ms'])} ({max(r['report_ms'])})" if r["report_ms"] else "-"
        gap = max(r["guard_gap_ms"]) if r["guard_gap_ms"] else "-"
        other = []
        if r["saves"]:
            other.append(f"{r['saves']} saves NAKed E_STORAGE, {r['saves_acked']} ACKed")
        if r["answers"]:
            other.append(f"{r['answers'] - r['answers_lost']}/{r['answers']} answers delivered once")
        if kind == "boot_fault":
            other.append(f"{r['boots_ok']} boots retried and up, {r['boots_failed']} failed")
        states = ", ".join(f"{s} {n}" for s, n in sorted(r["states"].items())) or "boot"
        lines.append(f"| {kind} | {r['n']} | {states} | {r['crashes']} | {r['pairs']} | {r['out_of_step']} | {rep} | {gap} | {'; '.join(other)} |")
    lines.append(f"| **total** | **{tot['n']}** | | **{tot['crashes']}** | {tot['pairs']} | **{tot['out_of_step']}** | | | |")
    soak = ", ".join(f"{k} {b - a:+d} B" for k, (a, b) in out["soak"].items())
    return "\n".join(lines) + (f"\n\nHeap over a 60 s soak per fault (gc.mem_alloc at 10 s and 60 s): {soak}." if soak else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.per_kind < 1:
        ap.error("--per-kind must be at least 1")
    out = run(a.per_kind, a.seed)
    if a.json:
        print(json.dumps(out, indent=1))
    print(table(out))
    print(f"\n{sum(r['n'] for r in out['kinds'].values())} injections, {out['wall_s']:.0f} s wall")
    bad = violations(out)
    for b in bad:
        print("VIOLATION", b)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
