"""The same driver, guard and sampler code under MicroPython and CPython, on
the same fake inputs: byte-identical frames, equal guard angles."""

import pytest

import spinemon_protocol as sp
from fw_helpers import PRELUDE, cpy, mpy, results

pytestmark = pytest.mark.micropython

SCRIPT = r"""
import math
import config_store
config_store._random_u32 = lambda: 0x5EED0000  # the same "fresh" counter floor in both interpreters
rep = [(0, 0), (1, 0), (2, 50), (2.5, 50), (3.5, -25), (4, 0), (9, 0)]
def lower(t):
    # pelvis tilts a little with a wobble on another axis, plus a jerk that
    # the acceleration rejection must ignore
    th = math.radians(10 * math.sin(t))
    a = (9.80665 * math.cos(th), 0.3 * math.sin(3 * t), 9.80665 * math.sin(th))
    if 2.0 < t < 2.2:
        a = (a[0] * 1.6, a[1], a[2])
    return a, (0.05 * math.cos(3 * t), math.radians(10 * math.cos(t)), 0.02)
for chip in ("lsm6dso", "mpu6050"):
    rig = Rig(fresh_store(CFG_DIR), chip=chip, upper_motion=Tilt(rep), lower_motion=lower)
    rig.connect()
    rig.cmd(sp.OP_START)
    rig.run_ms(500)
    rig.cmd(sp.OP_CALIBRATE, (0,))
    rig.cmd(sp.OP_SET_GUARD, (3000, -1500, sp.GUARD_ALWAYS))
    g = rig.dev.guard
    ups = []
    orig = g.update
    def spy(up, low, now_ms, link_down):
        r = orig(up, low, now_ms, link_down)
        ups.append(repr(g.upper.sagittal_rad()) + "," + repr(g.lower.sagittal_rad()))
        return r
    g.update = spy
    for _ in range(80):
        rig.run_ms(100)
    frames = rig.r.notified(rig.h_stream) + rig.r.notified(rig.h_status)
    print("RESULT %s_frames=%s" % (chip, ";".join("".join("%02x" % b for b in f) for f in frames)))
    print("RESULT %s_angles=%s" % (chip, ";".join(ups)))
    print("RESULT %s_alerts=%d" % (chip, g.alerts))
    print("RESULT %s_motor=%r" % (chip, rig.motor_on_ms()))
"""


def heap_apart(frames: list[str]) -> tuple[list[str], list]:
    """The frames with each STATUS's heap_free zeroed (the one field that
    is the interpreter's, not the firmware's), and the heap_free values."""
    out, heap = [], []
    for h in frames:
        b = bytes.fromhex(h)
        if b[1] == sp.T_STATUS:
            st = sp.decode(b).as_dict()
            heap.append(st.pop("heap_free"))
            fw = (st.pop("fw_major"), st.pop("fw_minor"), st.pop("fw_patch"))
            b = sp.encode_status(fw_version=fw, heap_free=0, **st)
        out.append(b.hex())
    return out, heap


def test_micropython_and_cpython_agree(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "c").mkdir()
    m = results(mpy("CFG_DIR = %r\n" % str(tmp_path / "m") + PRELUDE + SCRIPT))
    c = results(cpy("CFG_DIR = %r\n" % str(tmp_path / "c") + PRELUDE + SCRIPT))
    for chip in ("lsm6dso", "mpu6050"):
        mf = m[chip + "_frames"].split(";")
        cf = c[chip + "_frames"].split(";")
        assert len(mf) > 50
        mf, m_heap = heap_apart(mf)
        cf, c_heap = heap_apart(cf)
        assert mf == cf, f"{chip}: frames differ between interpreters"
        # STATUS reports MicroPython's free heap (gc.mem_free); CPython has none to report
        assert m_heap and all(10_000 < h < 64 * 1024 * 1024 for h in m_heap), m_heap
        assert set(c_heap) == {0}
        ma = [tuple(map(float, x.split(","))) for x in m[chip + "_angles"].split(";")]
        ca = [tuple(map(float, x.split(","))) for x in c[chip + "_angles"].split(";")]
        assert len(ma) == len(ca) > 500
        worst = max(max(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(ma, ca))
        assert worst < 1e-9, worst
        assert m[chip + "_alerts"] == c[chip + "_alerts"] != "0"
        assert m[chip + "_motor"] == c[chip + "_motor"]


def test_the_guards_confirmation_matches_the_host_detectors(tmp_path):
    """guard.Crossing (firmware) and spinemon.core.detect.EventDetector (host)
    confirm the same crossings at the same sample: one rule on both sides,
    so the wearable never buzzes on what the host would not call a fault."""
    import numpy as np

    from spinemon.core.detect import DetectorSettings, EventDetector, Limits

    DT = 1.0 / 128  # 128 Hz: sample times exact in binary, so no hold ends a rounding error away from a sample
    rng = np.random.default_rng(7)
    signals = []
    for rate in (10.0, 30.0, 45.0, 80.0, 170.0, 400.0):  # deg/s through 30 deg, then back down fast
        x = np.concatenate([np.linspace(0, 29.0, 30), 29.0 + rate * DT * np.arange(1, 40)])
        signals.append(np.concatenate([x[x < 42.0], np.linspace(42.0, 0.0, 5), np.zeros(20)]))
    glitch = np.zeros(60)
    glitch[20:27] = 45.0  # jumps and sits for 55 ms: shorter than the hold, so never (rate 0)
    signals.append(glitch)
    signals.append(np.concatenate([np.zeros(10), 30.0 + rng.normal(0.0, 1.0, 200), np.zeros(10)]))  # noise hovering at the limit
    cdeg = [[int(round(v * 100)) for v in s] for s in signals]
    script = "from guard import Crossing\nfor sig in %r:\n" % cdeg + r"""
    c = Crossing(300, 80, 2)
    first = -1
    for i in range(len(sig)):
        if c.update(sig[i], 3000, 7.8125) and first < 0:
            first = i
    print("RESULT n%d=%d" % (len(sig), first))
"""
    out = mpy(script)
    device = [int(line.split("=")[1]) for line in out.splitlines() if line.startswith("RESULT")]
    host = []
    for sig in cdeg:
        x = np.asarray(sig, dtype=float) / 100.0
        det = EventDetector(Limits(30.0, None), DetectorSettings())
        n = len(x)
        det.update(np.arange(n) * DT, np.arange(n), x, np.zeros(n), np.zeros(n))
        host.append(det.events[0].seq_alert if det.events else -1)
    assert device == host
    assert host[0] > host[3] > host[5] > 0 and host[6] == -1  # slow > fast > the floor; the 55 ms glitch: never
