"""The full chain over BLE (issue 5):

    real firmware under MicroPython (fake IMUs, the wearer bends forward)
      -> bluetooth_bridge (Unix socket) -> twin peripheral on the emulated radio (Bumble)
      -> bleak (BumbleClient) -> spinemon.core.pipeline.Pipeline (calibration, detection)
      -> alert COMMAND(HAPTIC) written back -> _IRQ_GATTS_WRITE in the firmware
      -> firmware haptics -> motor PWM (reported with the firmware's clock).

Everything is bounded (asyncio.wait_for around each wait and the whole
test; the firmware process is stopped, or killed, in finally).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import struct
from pathlib import Path

import bleak
import pytest

import spinemon_protocol as P
from mpy_runner import FIRMWARE_DIR, PROTOCOL_DIR, ROOT, micropython_binary, require
from spinemon.core.alerts import BUZZED_BY_DEVICE, PATTERNS, AlertPolicy, CommandCounter
from spinemon.core.angles import Mounting
from spinemon.core.calibration import Calibration, CalibrationSettings
from spinemon.io.device_link import guard_args, neutral_args
from spinemon.core.detect import OVER_FLEXION
from tests.support.emulated_ble import BumbleClient, EmulatedRadio, LinkFaults
from tests.support.emulated_ble.firmware_bridge import BridgeError, FirmwareBridge, FirmwareOptions
from spinemon.errors import SpinemonError
from spinemon.core.pipeline import PHASE_MONITOR, Pipeline, PipelineSettings

# waits on the wall clock: `make test` runs it in the real-time lane (tests/lanes.py)
pytestmark = pytest.mark.realtime

FAKES_DIR = ROOT / "tests" / "firmware" / "fakes"
FULL_DUTY = 255 * 257  # strength 255 -> PWM duty (firmware/haptics.py)

# The wearer, once the host has calibrated: still 0.5 s, then BENDS forward
# bends of the upper board to 60 deg (the lower board stays put, so the lumbar
# angle is 60 deg; the "generic" limit is 0.7 * 55 = 38.5 deg). A bend every
# 2.35 s: from coming back inside the limit to the next crossing takes 1.6 s,
# past the refractory period (1.5 s) both the host's detector and the
# wearable's guard count faults with, so each bend is a fault of its own.
BENDS = int(os.environ.get("SPINEMON_FULL_CHAIN_BENDS", "8"))  # more for a better latency figure
RAMP_S, HOLD_S, REST_S, PEAK_DEG = 0.35, 0.45, 1.2, 60.0


def bend_profile(n: int) -> list[tuple[float, float]]:
    pts = [(0.0, 0.0), (0.5, 0.0)]
    t = 0.5
    for _ in range(n):
        pts += [(t + RAMP_S, PEAK_DEG), (t + RAMP_S + HOLD_S, PEAK_DEG), (t + 2 * RAMP_S + HOLD_S, 0.0)]
        t += 2 * RAMP_S + HOLD_S + REST_S
        pts.append((t, 0.0))
    return pts


def options(**kw) -> FirmwareOptions:
    args = {"micropython": require(micropython_binary(), "micropython"), "path": (PROTOCOL_DIR, FIRMWARE_DIR, FAKES_DIR)}
    args.update(kw)
    return FirmwareOptions(**args)


class Inbox:
    """Notifications with loop-clock arrival times, for one characteristic."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
        self.all: list[tuple[bytes, float]] = []

    def __call__(self, _char, data) -> None:
        item = (bytes(data), asyncio.get_running_loop().time())
        self.all.append(item)
        self.queue.put_nowait(item)

    async def next(self, timeout: float = 2.0) -> tuple[bytes, float]:
        return await asyncio.wait_for(self.queue.get(), timeout)


async def command(client, status: Inbox, counter: int, op: int, args=()) -> P.Ack:
    """Write one COMMAND and wait for its ACK on STATUS."""
    await asyncio.wait_for(client.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(counter, op, args), response=True), 5.0)
    while True:
        frame, _ = await status.next(3.0)
        obj = P.decode(frame)
        if isinstance(obj, P.Error):
            raise AssertionError("the firmware refused %s: %s" % (P.OPCODE_NAMES[op], P.ERROR_NAMES.get(obj.code)))
        if isinstance(obj, P.Ack) and obj.counter == counter:
            assert obj.opcode == op
            return obj


async def resync(client, status: Inbox) -> int:
    """A new wearable has no command-counter floor: GET_STATUS (any counter)
    makes it draw one; returns it (the STATUS last_counter)."""
    await command(client, status, 1, P.OP_GET_STATUS)
    while True:
        obj = P.decode((await status.next(3.0))[0])
        if isinstance(obj, P.Status):
            return obj.last_counter


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


async def full_chain(bends: int, faults: LinkFaults) -> dict:
    loop = asyncio.get_running_loop()
    async with EmulatedRadio(faults) as radio:
        fw = await FirmwareBridge.start(radio, options())
        try:
            async with bleak.BleakClient(fw.twin.address, backend=BumbleClient, radio=radio, timeout=5.0, pair=True) as client:
                assert client.mtu_size == 247
                stream, status = Inbox(), Inbox()
                await client.start_notify(P.STREAM_CHAR_UUID, stream)
                await client.start_notify(P.STATUS_CHAR_UUID, status)
                base = await resync(client, status)
                await command(client, status, P.wrap32(base + 1), P.OP_SET_GUARD, (4500, -2000, P.GUARD_OFF))  # only the host buzzes
                await command(client, status, P.wrap32(base + 2), P.OP_START)

                settings = PipelineSettings(exercise="generic", calibration=CalibrationSettings(rom=False))
                pipeline = Pipeline(settings, alerts=AlertPolicy(CommandCounter(start=P.wrap32(base + 10))))
                rx_by_seq: dict[int, float] = {}
                sent: list[tuple[float, float]] = []  # (host time the write started, ended)
                t_motion_dev = None
                t_end_dev = None
                profile = bend_profile(bends)
                while True:
                    frame, t_rx = await stream.next(2.0)
                    s = P.decode(frame)
                    rx_by_seq[s.seq] = t_rx
                    res = pipeline.on_frame(frame, t_rx)
                    if res.calibrated is not None and t_motion_dev is None:
                        assert pipeline.phase == PHASE_MONITOR
                        assert fw.motor == [], "the motor ran before any bend"
                        # the lifter starts a set (limits are watched inside sets, not between them)
                        pipeline.on_label({"set": 1, "exercise": "generic"})
                        assert pipeline.watching
                        # what spinemon live's LinkSetup sends then: the host's neutral, and its
                        # limits with the guard armed while the set is on
                        await command(client, status, P.wrap32(base + 3), P.OP_SET_NEUTRAL, neutral_args(pipeline.calibration))
                        await command(client, status, P.wrap32(base + 4), P.OP_SET_GUARD, guard_args(pipeline.limits, P.GUARD_ALWAYS))
                        fw.play_motion("upper", profile)
                        t_motion_dev = loop.time() - fw.clock_offset_s
                        t_end_dev = t_motion_dev + profile[-1][0] + 0.3
                    for alert in res.alerts:
                        if alert.command is None:
                            continue  # the wearable's guard buzzed for this fault already
                        t0 = loop.time()
                        await asyncio.wait_for(client.write_gatt_char(P.COMMAND_CHAR_UUID, alert.command, response=True), 5.0)
                        alert.t_sent_host = t0
                        sent.append((t0, loop.time()))
                    if t_end_dev is not None and res.t is not None and len(res.t) and res.t[-1] > t_end_dev:
                        break
                await fw.wait_until(lambda: fw.motor and fw.motor[-1].duty == 0, 3.0)
                acks = [P.decode(f) for f, _ in status.all]
                await client.stop_notify(P.STREAM_CHAR_UUID)
        finally:
            await fw.close()
        assert fw.returncode == 0 and fw.ended_cleanly, "".join(fw.output_tail)
        assert fw.errors == []
    return {
        "fw": fw,
        "pipeline": pipeline,
        "sent": sent,
        "rx_by_seq": rx_by_seq,
        "acks": acks,
        "t_motion_dev": t_motion_dev,
    }


SETUP_WRITES = 5  # GET_STATUS, SET_GUARD, START, SET_NEUTRAL, SET_GUARD: the HAPTIC writes follow
GUARD_PATTERN = (2, 0.200, 0.100)  # the firmware guard's (config_store DEFAULTS): pulses, on s, off s


def buzzes_per_fault(run: dict) -> list[list[tuple[float, float | None, int]]]:
    """The motor's pulses grouped by fault: those from each event's start
    (less a sample period or two: the device's estimate may cross first) to
    the next event's."""
    events = run["pipeline"].events
    starts = [e.t_start - 0.03 for e in events] + [float("inf")]
    return [[iv for iv in run["fw"].motor_intervals() if starts[k] <= iv[0] < starts[k + 1]] for k in range(len(events))]


def device_crossings(fw: FirmwareBridge, pipeline: Pipeline) -> list[tuple[float, float]]:
    """The guard's crossings of the flexion limit, from the device angle each
    sample carries: (device time of its first sample past, of the sample it
    confirmed on), by the guard's own rule (firmware/guard.py Crossing)."""
    from tests.bench.false_alerts import _guard_module

    flex = guard_args(pipeline.limits, P.GUARD_ALWAYS)[0]
    crossing = _guard_module().Crossing(300, 80, 2)
    out, first, confirmed = [], None, False
    for n in fw.notifications:
        if n.char != "stream":
            continue
        f = P.decode(n.data)
        per = P.values_per_sample(f.mask)
        v = f.values()
        for i in range(f.count):
            angle = v[i * per + per - 1]
            t = (f.t_us + i * f.period_us) / 1e6
            if angle == P.ANGLE_NONE:
                continue
            was = crossing.start_from
            on = crossing.update(angle, flex, f.period_us / 1000.0)
            if was is None and crossing.start_from is not None:
                first, confirmed = t, False
            if on and not confirmed and first is not None:
                out.append((first, t))
                confirmed = True
    return out


def latency_breakdown(run: dict) -> list[dict]:
    """Per fault, in ms: from the first sample past the limit (the host's
    estimate) to the firmware's motor start, and who buzzed ("device": the
    guard on its own estimate; "host": the HAPTIC command). For host buzzes
    the legs: device batching, link, host, command write, firmware. Device
    times are the firmware clock; host times are mapped onto it with the
    bridge's clock offset."""
    fw: FirmwareBridge = run["fw"]
    pipeline: Pipeline = run["pipeline"]
    writes = [i for i in fw.irqs if i.event == "gatts_write"][SETUP_WRITES:]
    stream = []
    for n in fw.notifications:
        if n.char == "stream":
            seq, = struct.unpack_from("<I", n.data, 2)
            stream.append((seq, n.data[14], n.t_dev, n.data[15]))
    skipped = {x.counter for x in run["acks"] if isinstance(x, P.Ack) and x.opcode == P.OP_HAPTIC and x.value == P.HAPTIC_SKIPPED_GUARD_BUZZED}
    guard_samples = device_crossings(fw, pipeline)
    sent_alerts = [a for a in pipeline.alerts if a.command is not None]
    groups = buzzes_per_fault(run)
    out = []
    for ev, group in zip(pipeline.events, groups):
        alert = next(a for a in pipeline.alerts if a.event is ev)
        t_motor = group[0][0]
        played = alert.command is not None and alert.counter not in skipped
        row = {"by": "host" if played else "device", "total": t_motor - ev.t_start, "detect_hold": ev.t_alert - ev.t_start}
        if not played:
            # the guard's own estimate: its first sample past the limit against the host's,
            # and from the IMU taking the sample the guard confirmed on to the motor
            first, confirm = next((a, b) for a, b in guard_samples if a >= ev.t_start - 0.05)
            row.update(guard_lag=first - ev.t_start, guard_hold=confirm - first, read_to_motor=t_motor - confirm)
        if played:
            k = sent_alerts.index(alert)
            t_notify, frame_seq = next((t, seq) for seq, count, t, _f in stream if seq <= ev.seq_alert < seq + count)
            t_rx = fw.host_to_device(run["rx_by_seq"][frame_seq])
            t_sent = fw.host_to_device(run["sent"][k][0])
            t_irq = writes[k].t_dev
            row.update(
                device_batch=t_notify - ev.t_alert,
                link_up=t_rx - t_notify,
                host=t_sent - t_rx,
                command_write=t_irq - t_sent,
                firmware=t_motor - t_irq,
                confirm_to_motor=t_motor - ev.t_alert,
            )
        out.append(row)
    return [{k: (v if k == "by" else v * 1000.0) for k, v in row.items()} for row in out]


def test_full_chain_forward_bend_buzzes_the_firmware_motor_once_per_fault(record_property):
    run = asyncio.run(asyncio.wait_for(full_chain(BENDS, LinkFaults(connection_interval_s=0.015)), 25.0 + 3.0 * BENDS))
    fw: FirmwareBridge = run["fw"]
    pipeline: Pipeline = run["pipeline"]

    # the host saw every bend, once each, and recorded one alert per bend
    stats = pipeline.decoder.stats
    assert stats.bad_frames == 0 and stats.lost_samples == 0
    assert pipeline.single_sensor is False
    assert [e.kind for e in pipeline.events] == [OVER_FLEXION] * BENDS
    assert len(pipeline.alerts) == BENDS
    pattern = PATTERNS[OVER_FLEXION]
    for a in pipeline.alerts:
        assert a.event.peak_deg > 50.0
        if a.command is not None:
            cmd = P.decode(a.command)
            assert cmd.opcode == P.OP_HAPTIC and cmd.args == pattern.args()
    sent = [a for a in pipeline.alerts if a.command is not None]
    assert len(sent) == len(run["sent"])
    haptic_acks = {x.counter: x.value for x in run["acks"] if isinstance(x, P.Ack) and x.opcode == P.OP_HAPTIC}
    assert set(haptic_acks) == {a.counter for a in sent}
    assert not [x for x in run["acks"] if isinstance(x, P.Error)]

    # one buzz per fault, never two: each bend has exactly one pattern, the guard's own
    # (2 x 200 ms) when the guard buzzed, the commanded one (3 x 150 ms) when the host did;
    # a host HAPTIC for a fault the guard buzzed is acknowledged as skipped
    rows = latency_breakdown(run)
    groups = buzzes_per_fault(run)
    assert run["t_motion_dev"] < pipeline.events[0].t_start
    for k, (row, pulses) in enumerate(zip(rows, groups)):
        alert = pipeline.alerts[k]
        if row["by"] == "device":
            assert len(pulses) == GUARD_PATTERN[0], (k, pulses)
            on_s = GUARD_PATTERN[1]
            assert alert.buzzed_by == BUZZED_BY_DEVICE or haptic_acks[alert.counter] == P.HAPTIC_SKIPPED_GUARD_BUZZED
        else:
            assert len(pulses) == pattern.pulses, (k, pulses)
            on_s = pattern.on_ms / 1000.0
            assert haptic_acks[alert.counter] == P.HAPTIC_PLAYED
        for i, (on, off, duty) in enumerate(pulses):
            assert duty == FULL_DUTY
            assert off is not None and on_s - 0.05 < off - on < on_s + 0.15, (k, pulses)
    device_buzzed = sum(r["by"] == "device" for r in rows)
    # the device marks its buzz: a frame flagged SF_GUARD_BUZZED per device-buzzed fault
    flagged = [n for n in fw.notifications if n.char == "stream" and n.data[15] & P.SF_GUARD_BUZZED]
    assert len(flagged) == device_buzzed

    # closed-loop latency (measured, not asserted): first sample past the limit -> motor on
    lines = ["closed-loop latency, %d faults (%d buzzed by the device's guard), 15 ms connection interval (ms): median / p95 / max" % (len(rows), device_buzzed)]
    keys = ["total", "detect_hold", "guard_lag", "guard_hold", "read_to_motor", "device_batch", "link_up", "host", "command_write", "firmware", "confirm_to_motor"]
    for key in keys:
        xs = [r[key] for r in rows if key in r]
        if not xs:
            continue
        lines.append("  %-17s %7.1f %7.1f %7.1f  (%d)" % (key, statistics.median(xs), percentile(xs, 0.95), max(xs), len(xs)))
        record_property("latency_%s_median_ms" % key, round(statistics.median(xs), 2))
        record_property("latency_%s_p95_ms" % key, round(percentile(xs, 0.95), 2))
        record_property("latency_%s_n" % key, len(xs))
    record_property("faults", len(rows))
    record_property("buzzed_by_device", device_buzzed)
    print("\n" + "\n".join(lines))
    for r in rows:
        # every leg moves forward in time; the host confirms no sooner than two
        # sample periods past the limit (the quick confirmation's floor)
        assert r["total"] > 0 and r["detect_hold"] >= 19, r
        if r["by"] == "host":
            assert r["command_write"] > 0 and r["device_batch"] >= 0
            assert 0 < r["firmware"] < 150, r  # the firmware starts the motor on its next link pass


def test_bridge_reports_a_firmware_that_cannot_start():
    async def main():
        async with EmulatedRadio() as radio:
            bad = options(path=(PROTOCOL_DIR, FAKES_DIR), start_timeout_s=5.0)  # no firmware/ on the path
            with pytest.raises(BridgeError, match="exited") as info:
                await FirmwareBridge.start(radio, bad)
            assert isinstance(info.value, SpinemonError)
            assert "ImportError" in str(info.value) or "No module" in str(info.value)

    asyncio.run(asyncio.wait_for(main(), 15.0))


def test_firmware_options_refuse_bad_values():
    with pytest.raises(BridgeError):
        FirmwareOptions(micropython="/nonexistent/micropython", path=(Path("."),))
    with pytest.raises(BridgeError):
        options(chip="bmi270")
    with pytest.raises(BridgeError):
        options(heap_mb=0)


def test_link_loss_reaches_the_firmware_whose_own_guard_then_buzzes_and_it_readvertises():
    """Disconnect -> _IRQ_CENTRAL_DISCONNECT: the firmware's guard (armed
    while the link is down) buzzes its own pattern on a bend, the firmware
    advertises again, and a new connection reads its STATUS (gatts_write of
    the status value -> the twin's read value) with the guard alert counted."""

    async def main():
        async with EmulatedRadio() as radio:
            fw = await FirmwareBridge.start(radio, options())
            try:
                async with bleak.BleakClient(fw.twin.address, backend=BumbleClient, radio=radio, timeout=5.0, pair=True) as client:
                    status = Inbox()
                    await client.start_notify(P.STATUS_CHAR_UUID, status)
                    base = await resync(client, status)
                    # what `spinemon live` sends once it has calibrated a wearer standing upright
                    # (the fake boards rest with gravity along +x): never CALIBRATE
                    neutral = neutral_args(Calibration({"upper": Mounting.from_neutral([1.0, 0.0, 0.0])}, (0.0, 1.0)))
                    assert neutral == (0, 0)
                    await command(client, status, P.wrap32(base + 1), P.OP_SET_NEUTRAL, neutral)
                    await command(client, status, P.wrap32(base + 2), P.OP_SET_GUARD, (4500, -2000, P.GUARD_WHEN_LINK_DOWN))
                    await command(client, status, P.wrap32(base + 3), P.OP_START)
                await fw.wait_until(lambda: any(i.event == "central_disconnect" for i in fw.irqs), 3.0)
                t_down = next(i.t_dev for i in fw.irqs if i.event == "central_disconnect")
                await fw.wait_until(lambda: any(t > t_down and iv > 0 for t, iv in fw.advertise_log), 3.0)  # advertising again
                assert fw.motor == []
                fw.play_motion("upper", [(0.0, 0.0), (0.2, 0.0), (0.5, 60.0), (1.5, 60.0), (1.8, 0.0)])
                await fw.wait_until(lambda: len(fw.motor_intervals()) >= 2 and fw.motor[-1].duty == 0, 5.0)
                guard = [(off - on, duty) for on, off, duty in fw.motor_intervals()]
                assert len(guard) == 2  # config_store DEFAULTS: 2 x 200 ms on, 100 ms off, strength 255
                for length, duty in guard:
                    assert duty == FULL_DUTY and 0.15 < length < 0.35

                async with bleak.BleakClient(fw.twin.address, backend=BumbleClient, radio=radio, timeout=5.0, pair=True) as client:
                    for _ in range(40):  # the STATUS value is refreshed every second
                        st = P.decode(bytes(await client.read_gatt_char(P.STATUS_CHAR_UUID)))
                        if st.guard_alerts == 1 and st.state & P.ST_CONNECTED:
                            break
                        await asyncio.sleep(0.1)
                    assert isinstance(st, P.Status) and st.guard_alerts == 1
                    assert st.state & P.ST_CONNECTED and st.state & P.ST_STREAMING
                    assert st.guard_mode == P.GUARD_WHEN_LINK_DOWN and st.last_counter == P.wrap32(base + 3)
                assert [i.event for i in fw.irqs].count("central_connect") == 2
            finally:
                await fw.close()
            assert fw.returncode == 0 and fw.ended_cleanly and fw.errors == []

    asyncio.run(asyncio.wait_for(main(), 25.0))


def test_a_firmware_whose_gatt_table_drifts_from_the_protocol_is_refused(tmp_path):
    source = (FIRMWARE_DIR / "ble_link.py").read_text()
    drifted = source.replace(
        "(U(sp.COMMAND_CHAR_UUID), _FLAG_WRITE | _FLAG_WRITE_ENCRYPTED)", "(U(sp.COMMAND_CHAR_UUID), _FLAG_WRITE | _FLAG_WRITE_ENCRYPTED | _FLAG_READ)"
    )
    assert drifted != source
    (tmp_path / "ble_link.py").write_text(drifted)

    async def main():
        async with EmulatedRadio() as radio:
            with pytest.raises(BridgeError, match="GATT table") as info:
                await FirmwareBridge.start(radio, options(path=(tmp_path, PROTOCOL_DIR, FIRMWARE_DIR, FAKES_DIR)))
            msg = str(info.value)
            # (service, characteristic, properties, read/subscribe needs encryption, write needs encryption)
            assert "only in firmware [('%s', '%s', 10, False, True)]" % (P.SERVICE_UUID, P.COMMAND_CHAR_UUID) in msg  # read | write
            assert "only in twin [('%s', '%s', 8, False, True)]" % (P.SERVICE_UUID, P.COMMAND_CHAR_UUID) in msg

    asyncio.run(asyncio.wait_for(main(), 15.0))


def test_both_ends_of_the_bridge_number_the_messages_alike(monkeypatch):
    import sys

    from tests.support.emulated_ble import firmware_bridge as host_side

    monkeypatch.syspath_prepend(str(FAKES_DIR))
    monkeypatch.delitem(sys.modules, "bluetooth_bridge", raising=False)
    import bluetooth_bridge as device_side  # CPython can import it too

    names = [n for n in dir(device_side) if n[:2] in ("M_", "H_") or n == "BRIDGE_VERSION"]
    assert len(names) == 23
    for n in names:
        assert getattr(host_side, n) == getattr(device_side, n), n


def test_spinemon_live_arms_the_wearables_own_guard_and_takes_over_after_a_dropped_link(tmp_path):
    """Issue 12, defect 1, on the product's own path: `spinemon live`'s code
    (``live.run``: its LinkSetup, BleTransport, reconnect) against the real
    firmware under MicroPython on the emulated radio. Nobody sends CALIBRATE:
    the host calibrates from the wearer standing still and pushes its neutral
    (SET_NEUTRAL) and limits (SET_GUARD); the link drops mid-set, the wearer
    rounds past the limit, and the wearable's own guard buzzes; the host
    reconnects, sets the device up again and counts the gap; a second bend
    gets one buzz (the guard armed in the set, or the host's)."""
    import io

    from spinemon.app.live import LiveOptions, run as live_run
    from spinemon.app.live_ui import LiveUI
    from spinemon.io.recording import load

    out = tmp_path / "live.spinrec"

    def device_angles(fw):
        angles = []
        for n in fw.notifications:
            if n.char == "stream":
                f = P.decode(n.data)
                v = f.values()
                per = P.values_per_sample(f.mask)
                angles += [v[i] for i in range(per - 1, len(v), per)]
        return angles

    async def main():
        async with EmulatedRadio(LinkFaults(connection_interval_s=0.015)) as radio:
            fw = await FirmwareBridge.start(radio, options())
            task = None
            try:
                opts = LiveOptions(
                    address=fw.twin.address, exercise="generic", out=str(out), calibrate_rom=False,
                    connect_timeout_s=5.0, ble_backend=BumbleClient, ble_kwargs={"radio": radio},
                )
                ui = LiveUI(io.StringIO())
                task = asyncio.create_task(live_run(opts, ui))
                # the host's neutral reaches the wearable: its frames carry a device angle
                await fw.wait_until(lambda: any(a != P.ANGLE_NONE for a in device_angles(fw)), 20.0)
                assert fw.motor == []
                assert abs(device_angles(fw)[-1]) < 150  # 0 deg at the host's neutral (centidegrees)
                # mid-set the link is lost; the wearer rounds to 60 deg (limit: 0.7 x 55 = 38.5 deg)
                assert radio.out_of_range(fw.twin.device, 4.0)  # the link is lost for 4 s
                fw.play_motion("upper", [(0.0, 0.0), (0.2, 0.0), (0.5, 60.0), (1.5, 60.0), (1.8, 0.0), (3.0, 0.0)])
                await fw.wait_until(lambda: len(fw.motor_intervals()) >= 2 and fw.motor[-1].duty == 0, 6.0)
                guard_buzz = list(fw.motor_intervals())
                # the host reconnects by itself and takes over: a second bend, in the set the host watches
                await fw.wait_until(lambda: [i.event for i in fw.irqs].count("central_connect") >= 2, 15.0)
                await asyncio.sleep(1.5)
                n_before = len(fw.motor_intervals())
                fw.play_motion("upper", [(0.0, 0.0), (0.2, 0.0), (0.5, 60.0), (1.5, 60.0), (1.8, 0.0), (3.0, 0.0)])
                await fw.wait_until(lambda: len(fw.motor_intervals()) > n_before, 8.0)
                await asyncio.sleep(1.0)  # the whole pattern (the guard's 0.5 s, the host's 0.65 s)
                await fw.wait_until(lambda: fw.motor[-1].duty == 0, 3.0)
                second_buzz = [iv for iv in fw.motor_intervals()[n_before:] if iv[1] is not None and iv[1] - iv[0] > 0.01]
            finally:
                if task is not None:
                    task.cancel()  # Ctrl-C
                    try:
                        await asyncio.wait_for(task, 10.0)
                    except asyncio.CancelledError:
                        pass
                await fw.close()
            return fw, guard_buzz, second_buzz, ui, None

    fw, guard_buzz, second_buzz, ui, result = asyncio.run(asyncio.wait_for(main(), 90.0))
    assert fw.errors == [], fw.errors
    # the wearable's own guard: its configured pattern (2 x 200 ms at full strength), while the link was down
    assert len(guard_buzz) == 2 and all(duty == FULL_DUTY and 0.15 < off - on < 0.35 for on, off, duty in guard_buzz), guard_buzz
    rec = load(out)
    alerts = rec.meta_of("alert")
    assert alerts, "the host alerted on the bend after the reconnect"
    summary = rec.meta_of("summary")[-1]
    # after the reconnect the host judged the bend and its HAPTIC ran: over-flexion, 3 x 150 ms
    assert [a["kind"] for a in alerts] == ["over_flexion"]
    # one buzz for it, never two: the bend is a rep begun from a stance, so the host
    # watches it and arms the wearable's guard with its limits (GUARD_ALWAYS); the guard
    # buzzes its own pattern (2 x 200 ms) if armed before the crossing confirmed, else the
    # host's HAPTIC plays (3 x 150 ms)
    by_guard = len(second_buzz) == 2
    if by_guard:
        assert all(0.15 < off - on < 0.35 for on, off, _ in second_buzz), second_buzz
    else:
        assert len(second_buzz) == PATTERNS["over_flexion"].pulses and all(0.1 < off - on < 0.2 for on, off, _ in second_buzz), second_buzz
    # the host counted the gap, and it agrees with the wearable's own drop counters
    stats, device = summary["stats"], summary["device"]
    assert stats["gaps"] >= 1 and stats["lost_samples"] > 0
    # the link-down buzz; plus the second bend's if the guard buzzed it and a STATUS came after
    assert device["guard_alerts"] in ((1, 2) if by_guard else (1,)), device["guard_alerts"]
    assert device["samples_lost_device"] + device["samples_lost_link"] == stats["lost_samples"]
    # the firmware's free heap (gc.mem_free under MicroPython), the least any STATUS reported
    assert device["heap_free_min"] is not None and 10_000 < device["heap_free_min"] <= options().heap_mb * 1024 * 1024
    assert ui.lines.count("-- link connected") == 2 and "-- link disconnected" in ui.lines
