"""Issue 27: the IMU FIFOs are read as each sample is due, so the guard
judges a sample within a few ms of the IMU taking it.

The app's IMU task is `poll_imu()` then a sleep of `next_read_ms(got)`;
these scripts run that loop on the fake clock (every sleep advances it), so
the timing is exact and repeatable under MicroPython and CPython."""

import pytest

from fw_helpers import PRELUDE, cpy, mpy, results

pytestmark = pytest.mark.micropython

LOOP = r"""
import device

def run_loop(rig, until_us, on_read=None):
    # the app's IMU task on the fake clock: read, then sleep as the device asks
    dev, ticks = rig.dev, rig.hw.ticks
    reads = 0
    while ticks.t_us < until_us:
        n = dev.poll_imu()
        reads += 1
        if on_read is not None:
            on_read(n)
        dev.haptics.update()
        ticks.advance_ms(dev.next_read_ms(n))
    return reads
"""

SCRIPT_BUZZ = r"""
# The guard armed (GUARD_ALWAYS, flexion limit 45 deg), the upper board bends
# to 60 deg again and again, each bend starting at another phase of the sample
# grid: from the first sample past the limit (its device time) to the motor.
fired = []   # (index, flags) of every sample the device framed
rig = Rig(fresh_store(CFG_DIR), upper_motion=Tilt([(0.0, 0.0), (1.0, 0.0)]), lower_motion=Tilt([(0.0, 0.0), (1.0, 0.0)]))
dev = rig.dev
dev.set_neutral(0, 0)   # both boards +X up the spine, still
dev.guard.set_thresholds(4500, -2000, sp.GUARD_ALWAYS)
dev.sampler.start()   # frames are built (not sent): add() sees every sample's flags
add = dev.sampler.add
def spy(idx, up, low, angle, flags):
    fired.append((idx, flags, angle))
    add(idx, up, low, angle, flags)
dev.sampler.add = spy
prof = [(0.0, 0.0), (0.5, 0.0)]
t = 0.5
BENDS = 12
for k in range(BENDS):
    t += 0.0013 * k   # another phase against the sample grid each time
    prof += [(t + 0.35, 60.0), (t + 0.8, 60.0), (t + 1.15, 0.0)]
    t += 2.35
    prof.append((t, 0.0))
t0 = rig.hw.ticks.t_us / 1e6
rig.hw.upper_model.motion = Tilt([(t0 + a, d) for a, d in prof])
run_loop(rig, rig.hw.ticks.t_us + int((t + 0.2) * 1e6))
s = dev.sampler
firsts = []
over = False
for idx, f, a in fired:
    o = bool(f & sp.SF_GUARD_FIRING)
    if o and not over:
        firsts.append(s.time_of(idx))
    over = o
motor = [on for on, off, duty in rig.hw.pwm.on_intervals()]
print("RESULT bends=%d" % len(firsts))
print("RESULT buzzes=%d" % dev.guard.alerts)
lat = []
for i in range(len(firsts)):
    later = [m for m in motor if m >= firsts[i]]
    lat.append(later[0] - firsts[i])
print("RESULT period=%d" % s.period_us)
print("RESULT latency_us=%s" % ",".join(str(x) for x in lat))
"""

SCRIPT_FOLLOW = r"""
# The IMUs' oscillators run 2 % slow against the ESP32's clock: the reads
# follow their phase. Every read after the first gets one sample, at most
# READ_RETRY_MS + READ_EARLY_US after the IMU took it.
rig = Rig(fresh_store(CFG_DIR))
dev = rig.dev
models = [rig.hw.upper_model, rig.hw.lower_model]
for m in models:
    m.period_us = m.period_us * 102 // 100
lags = []
per_read = []
def on_read(n):
    if n:
        m = models[0]
        lags.append(rig.hw.ticks.t_us - (m.t_next - m.period_us))   # since the newest sample was taken
        per_read.append(n)
start = rig.hw.ticks.t_us
reads = run_loop(rig, start + 3000000, on_read)
got = sum(per_read)
print("RESULT reads=%d" % reads)
print("RESULT samples=%d" % got)
print("RESULT max_lag_us=%d" % max(lags[2:]))
print("RESULT max_per_read=%d" % max(per_read[2:]))
print("RESULT imu_period_us=%d" % (dev.imu_period_us or 0))
print("RESULT true_period_us=%d" % models[0].period_us)
# an IMU that stops producing (a brown-out leaves it silent): the reads fall
# back to every READ_IDLE_MS, never a busy loop
def silent():
    return False
for m in models:
    m.producing = silent
run_loop(rig, rig.hw.ticks.t_us + 1000000)   # the stalls are found, the IMUs given up as lost
reads = run_loop(rig, rig.hw.ticks.t_us + 1000000)
print("RESULT silent_reads_per_s=%d" % reads)
print("RESULT idle=%d retry=%d" % (device.READ_IDLE_MS, device.READ_RETRY_MS))
"""


SCRIPT_HOLDUP = r"""
# Other work holds the IMU task up now and then (a flash write, the radio):
# the read after the hold-up is late, the ones after it are on time again.
rig = Rig(fresh_store(CFG_DIR))
dev, ticks = rig.dev, rig.hw.ticks
m = rig.hw.upper_model
lags = []   # per read with data: since the newest sample was taken (us)
reads = 0
holdups = 0
while ticks.t_us < 3000000:
    n = dev.poll_imu()
    reads += 1
    if n:
        lags.append(ticks.t_us - (m.t_next - m.period_us))
    wait = dev.next_read_ms(n)
    if reads % 97 == 0:
        wait += 6   # held up 6 ms
        holdups += 1
    ticks.advance_ms(wait)
print("RESULT lags=%s" % ",".join(str(x) for x in lags))
print("RESULT holdups=%d" % holdups)
"""


SCRIPT_CLOCKS = r"""
# IMU oscillators from 3 % fast to 3 % slow against the ESP32's clock, each
# with hold-ups: per clock, the reads' lag behind the newest sample (except
# the read right after a hold-up), and reads per sample.
for err in (-3, -2, -1, 0, 1, 2, 3):
    rig = Rig(fresh_store(CFG_DIR))
    dev, ticks = rig.dev, rig.hw.ticks
    models = [rig.hw.upper_model, rig.hw.lower_model]
    for m in models:
        m.period_us = m.period_us * (100 + err) // 100
    m = models[0]
    lags = []
    reads = got = 0
    held = False
    end = ticks.t_us + 2500000
    while ticks.t_us < end:
        n = dev.poll_imu()
        reads += 1
        got += n
        if n and reads > 20 and not held:
            lags.append(ticks.t_us - (m.t_next - m.period_us))
        held = reads % 61 == 0
        ticks.advance_ms(dev.next_read_ms(n) + (4 if held else 0))
    print("RESULT clock%d=%d,%d,%d" % (err, max(lags), reads, got))
"""


def check_buzz(out: dict) -> None:
    lat = [int(x) for x in out["latency_us"].split(",")]
    period = int(out["period"])
    assert int(out["bends"]) == 12 and int(out["buzzes"]) == 12, out
    # the confirmation takes two sample periods (the quick rule's floor, for
    # these fast bends); the read that judges the confirming sample comes at
    # most READ_RETRY_MS + READ_EARLY_US (1.5 ms) after it was taken (a 20 ms
    # poll added up to 20 ms here)
    for x in lat:
        assert 2 * period <= x <= 2 * period + 2000, lat


def check_follow(out: dict) -> None:
    assert int(out["max_per_read"]) == 1, out
    assert int(out["max_lag_us"]) <= 2000, out
    # about one read per sample plus the retries while the phase is found:
    # at most two reads per sample (3 s at 104 Hz x 0.98)
    samples = int(out["samples"])
    assert 300 <= samples <= 310 and int(out["reads"]) <= 2 * samples, out
    # silent IMUs: every READ_IDLE_MS (20 ms), not every READ_RETRY_MS
    assert int(out["silent_reads_per_s"]) <= 1000 // 20 + 12, out
    # the IMU's own period is learnt (it keeps the estimate of when a sample is due from slipping)
    assert abs(int(out["imu_period_us"]) - int(out["true_period_us"])) <= int(out["true_period_us"]) // 200, out


def test_after_a_held_up_read_the_next_samples_are_read_on_time(tmp_path):
    """Reads a fixed period apart caught up on a late one by the period's
    last fraction of a ms per sample (6 ms late: the next ten or so late
    too); reads timed from when the next sample is due are on time at once."""
    out = results(mpy("CFG_DIR = %r\n" % str(tmp_path / "c") + PRELUDE + SCRIPT_HOLDUP))
    lags = [int(x) for x in out["lags"].split(",")][5:]
    assert len(lags) > 250
    held = [x for x in lags if x > 2000]
    # only the read right after each hold-up is late (reads a period apart: 30 late reads after 4 hold-ups)
    assert 3 <= int(out["holdups"]) and len(held) <= int(out["holdups"]), (held, out["holdups"])
    assert max(lags) < 8000, lags


@pytest.mark.parametrize("runner", [mpy, cpy], ids=["micropython", "cpython"])
def test_the_guard_buzzes_within_a_few_ms_of_the_confirming_sample(tmp_path, runner):
    check_buzz(results(runner("CFG_DIR = %r\n" % str(tmp_path / "c") + PRELUDE + LOOP + SCRIPT_BUZZ)))


def test_the_reads_follow_an_imu_clock_that_runs_off_the_nominal_rate(tmp_path):
    check_follow(results(mpy("CFG_DIR = %r\n" % str(tmp_path / "c") + PRELUDE + LOOP + SCRIPT_FOLLOW)))


def test_the_reads_keep_up_with_imu_clocks_off_either_way(tmp_path):
    """Whichever way the IMU's oscillator is off (a few % fast or slow) and
    with the loop held up now and then, every read but the one right after a
    hold-up comes within 2 ms of the sample it takes, and the reads stay
    under two per sample (an estimate that slipped late would read ever
    later; one that slipped early, ever more often)."""
    out = results(mpy("CFG_DIR = %r\n" % str(tmp_path / "c") + PRELUDE + SCRIPT_CLOCKS))
    for err in (-3, -2, -1, 0, 1, 2, 3):
        lag, reads, got = (int(x) for x in out["clock%d" % err].split(","))
        assert got > 230 and lag <= 2000 and reads <= 2 * got, (err, lag, reads, got)
