"""BleTransport over the emulated radio: the real bleak API, a real Bluetooth
stack (Bumble) and a twin wearable fed by the simulated wearer.

Every test runs its coroutine under asyncio.run with an overall timeout.
"""

import asyncio
import time

import numpy as np
import pytest

import spinemon_protocol as P
from spinemon.io import sim
from spinemon.core.alerts import PATTERNS
from spinemon.io.ble import BleOptions, BleTransport, FoundDevice, scan
from spinemon.core.calibration import CalibrationSettings
from tests.support.emulated_ble import BumbleClient, BumbleScanner, CommandResponder, EmulatedRadio, LinkFaults, TwinInfo, TwinPeripheral
from spinemon.errors import CommandError, CommandTimeoutError, ConfigError, DisconnectedError, TransportError
from spinemon.io.device_link import guard_args, LinkSetup
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.io.recording import KIND_RX, RecordingWriter, load
from spinemon.app.session import header_for, run_live
from spinemon.app.replay import replay

# waits on the wall clock: `make test` runs it in the real-time lane (tests/lanes.py)
pytestmark = pytest.mark.realtime


def run(coro, timeout=30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


FAST = BleOptions(connect_timeout_s=3.0, connect_attempts=2, backoff_initial_s=0.05, backoff_max_s=0.4, command_timeout_s=2.0)


def workout():
    """One deadlift set, rounding on reps 2 and 5 (no ROM sweep: ~29 s of device time)."""
    return sim.simulate([sim.SetSpec("deadlift", 6, {2: "rounding", 5: "rounding"}, rest_s=2.0)], seed=7, rom=False)


def deadlift_pipeline():
    return Pipeline(PipelineSettings(exercise="deadlift", calibration=CalibrationSettings(rom=False)))


class Feeder:
    """Notifies the simulated session's frames from the twin at `speed` x
    their send times; logs (twin clock, seq, count, notified) for each, and
    runs `before(i)` (fault injection) before frame i."""

    def __init__(self, twin, session, speed, before=None):
        self.twin, self.session, self.speed, self.before = twin, session, speed, before
        self.log = []

    async def __call__(self):
        await self.twin.wait_subscribed("stream", timeout=10.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        rel = self.session.frame_times - self.session.frame_times[0]
        for i, frame in enumerate(self.session.frames):
            delay = start + rel[i] / self.speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.before is not None:
                self.before(i)
            t = time.monotonic()
            ok = await self.twin.notify_stream(frame)
            d = P.decode(frame)
            self.log.append((t, d.seq, d.count, ok))


async def live_session(radio, twin, session, speed, tmp_path, before=None, states=None):
    """BleTransport + LinkSetup + Pipeline + run_live, recording to a file, until the feed ends."""
    pipeline = deadlift_pipeline()
    transport = BleTransport(twin.address, options=FAST, backend=BumbleClient, radio=radio)
    setup = LinkSetup(pipeline)
    transport.on_connected = setup
    if states is not None:
        transport.on_state = lambda s: states.append((time.monotonic(), s))
    path = tmp_path / "live.rec"
    recorder = RecordingWriter(path, header_for(pipeline.settings, "ble:test"))
    await transport.connect()
    feeder = Feeder(twin, session, speed, before)

    async def feed_then_close():
        await feeder()
        await asyncio.sleep(0.3)  # let the last frames and answers arrive
        await transport.close()

    feed = asyncio.create_task(feed_then_close())
    result = await run_live(transport, pipeline, recorder)
    await feed
    return result, transport, setup, feeder, path


def assert_alerts_match_faulty_reps(result, session):
    faulty = [r for r in session.reps if r.fault]
    for a in result.alerts:
        assert any(r.t_start <= a.t_trigger_device <= r.t_end for r in faulty), f"alert at {a.t_trigger_device:.2f} s outside every faulty rep"
    for r in faulty:
        n = sum(r.t_start <= a.t_trigger_device <= r.t_end for a in result.alerts)
        assert n == 1, f"faulty rep {r.rep} got {n} alerts"
    clean = [r for r in session.reps if not r.fault]
    for r in clean:
        assert not any(r.t_start <= a.t_trigger_device <= r.t_end for a in result.alerts)


def received_seqs(path):
    seqs = []
    for rec in load(path).records:
        if rec.kind == KIND_RX and rec.payload[1] == P.T_SAMPLES:
            seqs.append(P.decode(rec.payload).seq)
    return seqs


def expected_lost(feeder_log, seqs_received):
    """Samples in frames the twin's source produced but the host never got."""
    got = set(seqs_received)
    return sum(count for _, seq, count, _ in feeder_log if seq not in got)


# ---------------------------------------------------------------------------------------
def test_end_to_end_alerts_reach_the_twin_and_dropped_notifications_are_counted_exactly(tmp_path):
    session = workout()
    dropped = 3

    async def main():
        async with EmulatedRadio(LinkFaults(connection_interval_s=0.015, pdus_per_event=4)) as radio:
            twin = await TwinPeripheral.create(radio, TwinInfo(suffix="E2E0"))

            def before(i):
                if i == 40:  # calibration: no command is in flight
                    radio.drop_next_notifications(dropped)

            result, transport, setup, feeder, path = await live_session(radio, twin, session, 8.0, tmp_path, before)
            stream_handle = twin.stream_char.handle
            return result, transport, setup, feeder, path, twin, radio.stats, stream_handle

    result, transport, setup, feeder, path, twin, link, stream_handle = run(main())

    assert transport.mtu == 247
    # every faulty rep alerted exactly once, nothing on clean reps
    assert len(result.alerts) == 2
    assert_alerts_match_faulty_reps(result, session)
    # the HAPTIC commands reached the twin, with the alerts' counters and patterns
    assert [(h.counter, (h.pulses, h.on_ms, h.off_ms, h.strength)) for h in twin.responder.haptics] == [
        (a.counter, PATTERNS["over_flexion"].args()) for a in result.alerts
    ]
    assert all(a.t_sent_host is not None for a in result.alerts) and result.send_failures == 0
    # the setup hook ran once: SET_GUARD (link-down mode, the pipeline's limits), START, then the alerts
    ops = [c.opcode for c in twin.responder.commands]
    assert ops == [P.OP_SET_GUARD, P.OP_START, P.OP_HAPTIC, P.OP_HAPTIC]
    assert all(c.accepted for c in twin.responder.commands)
    assert twin.responder.guard[2] == P.GUARD_WHEN_LINK_DOWN and twin.responder.streaming
    assert setup.runs == 1 and setup.status is not None
    # dropped notifications: exactly the stream frames the link threw away
    assert [h for h, _ in link.dropped_notifications] == [stream_handle] * dropped
    seqs = received_seqs(path)
    assert len(seqs) == len(session.frames) - dropped
    spf = session.settings.samples_per_frame
    assert result.stats["lost_samples"] == dropped * spf == expected_lost(feeder.log, seqs)
    assert result.stats["gaps"] == 1 and result.stats["bad_frames"] == 0
    assert result.stats["ack_frames"] == 4 and result.stats["status_frames"] == 1
    assert transport.stats.commands_acked == 4 and transport.stats.commands_timed_out == 0
    # the recording replays to the same events
    again = replay(load(path))
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in result.events]
    assert len(again.alerts) == len(result.alerts)


def test_forced_disconnect_mid_set_reconnects_counts_the_gap_and_keeps_alerting(tmp_path):
    session = workout()
    drop_at = int(np.searchsorted(session.frame_times, 12.0))  # after rep 3, before the faulty rep 5
    states = []
    t_drop = []

    async def main():
        async with EmulatedRadio(LinkFaults(connection_interval_s=0.015, pdus_per_event=4)) as radio:
            twin = await TwinPeripheral.create(radio, TwinInfo(suffix="D15C"))

            def before(i):
                if i == drop_at:
                    t_drop.append(time.monotonic())
                    assert radio.drop_connection(twin.device, side="lost")

            out = await live_session(radio, twin, session, 6.0, tmp_path, before, states)
            return (*out, twin)

    result, transport, setup, feeder, path, twin = run(main(), timeout=40.0)

    names = [s for _, s in states]
    assert names == ["connected", "disconnected", "reconnecting", "connected", "closed"]
    t_reconnected = states[3][0]
    assert transport.stats.connects == 2 and transport.stats.disconnects == 1
    # the setup hook ran again after the reconnect: the host's neutral (calibrated by
    # then), SET_GUARD and START re-sent
    ops = [P.OPCODE_NAMES[c.opcode] for c in twin.responder.commands]
    assert ops == ["SET_GUARD", "START", "HAPTIC", "SET_NEUTRAL", "SET_GUARD", "START", "HAPTIC"]
    from spinemon.io.device_link import neutral_args

    assert twin.responder.neutral == neutral_args(result.calibration) is not None
    assert all(c.accepted for c in twin.responder.commands) and setup.runs == 2
    counters = [c.counter for c in twin.responder.commands]
    assert counters == sorted(counters)
    # both faulty reps alerted; the second after the reconnect, and it reached the twin
    assert_alerts_match_faulty_reps(result, session)
    assert len(twin.responder.haptics) == 2
    assert twin.responder.haptics[1].arrived_s > t_reconnected > t_drop[0]
    # the gap is exactly the samples of the frames that never arrived
    seqs = received_seqs(path)
    lost = expected_lost(feeder.log, seqs)
    missing = [seq for _, seq, _, _ in feeder.log if seq not in set(seqs)]
    assert lost > 0 and result.stats["lost_samples"] == lost
    assert result.stats["gaps"] == 1
    spf = session.settings.samples_per_frame
    assert missing == list(range(missing[0], missing[0] + spf * len(missing), spf))  # one contiguous run
    assert sum(not ok for *_, ok in feeder.log) >= len(missing) - 2  # mostly dropped by the twin while unsubscribed
    # the recording is valid: it loads, and replay reproduces the events and the gap
    rec = load(path)
    assert rec.records[0].meta["type"] == "header"
    again = replay(rec)
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in result.events]
    assert again.stats["lost_samples"] == lost


def test_command_ack_error_timeout_and_disconnected_paths():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            transport = BleTransport(twin.address, options=FAST, backend=BumbleClient, radio=radio)
            with pytest.raises(DisconnectedError):
                await transport.send(P.encode_command(1, P.OP_START))  # not connected yet
            await transport.connect()
            assert transport.connected and transport.mtu == 247
            t0 = time.time()
            t_sent = await transport.send(P.encode_command(5, P.OP_HAPTIC, (1, 100, 0, 200)))
            assert t0 <= t_sent <= time.time()
            assert [h.counter for h in twin.responder.haptics] == [5]

            with pytest.raises(CommandError) as e:  # a repeat: the device refuses it
                await transport.send(P.encode_command(5, P.OP_HAPTIC, (1, 100, 0, 200)))
            assert e.value.code == P.E_STALE and not isinstance(e.value, CommandTimeoutError)
            assert "stale_counter" in str(e.value)
            with pytest.raises(CommandError) as e:
                await transport.send(b"\x01\x03\x00")  # not a COMMAND frame: refused before sending
            assert e.value.code == P.E_TRUNCATED

            twin.on_command = lambda frame: None  # the device stays silent
            t = time.monotonic()
            with pytest.raises(CommandTimeoutError):
                await transport.send(P.encode_command(6, P.OP_START), timeout=0.2)
            assert 0.2 <= time.monotonic() - t < 1.0
            assert transport.stats.commands_timed_out == 1 and transport.stats.commands_refused == 1

            # an answer that comes after the timeout is counted, not mistaken for a later command's
            await twin.notify_status(P.encode_ack(6, P.OP_START))
            await asyncio.sleep(0.05)
            assert transport.stats.unmatched_answers == 1

            twin.on_command = twin.responder
            status = await transport.read_status()
            assert isinstance(status, P.Status) and status.last_counter == 5
            await transport.close()
            with pytest.raises(DisconnectedError):
                await transport.send(P.encode_command(7, P.OP_START))
            assert transport.state == "closed"

            # nobody at that address: the attempts fail with backoff, then a TransportError
            nobody = BleTransport("F0:00:00:00:99:99", options=BleOptions(connect_timeout_s=0.2, connect_attempts=2, backoff_initial_s=0.1), backend=BumbleClient, radio=radio)
            t = time.monotonic()
            with pytest.raises(TransportError):
                await nobody.connect()
            assert time.monotonic() - t >= 0.1 + 0.2
            assert nobody.stats.connect_failures == 2

    run(main())


def test_scan_connect_by_name_and_setup_resumes_the_device_counter():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio, TwinInfo(suffix="5CA2", battery_pct=64))
            twin.responder = CommandResponder(last_counter=1000)  # the device accepted counter 1000 earlier
            twin.on_command = twin.responder

            found = await scan(0.3, backend=BumbleScanner, radio=radio)
            assert found == [FoundDevice("spinemon-5CA2", twin.address, found[0].rssi, None)]
            assert isinstance(found[0].rssi, int) and -127 <= found[0].rssi <= 20
            with_battery = await scan(0.3, read_battery=True, backend=BumbleScanner, client_backend=BumbleClient, radio=radio)
            assert with_battery[0].battery_pct == 64
            with pytest.raises(ConfigError):
                await scan(0.3, read_battery=True, backend=BumbleScanner, radio=radio)

            pipeline = deadlift_pipeline()
            transport = BleTransport(name="spinemon-5CA2", options=FAST, backend=BumbleClient, scanner_backend=BumbleScanner, radio=radio)
            setup = LinkSetup(pipeline)
            transport.on_connected = setup
            await transport.connect()
            assert transport.address == twin.address
            cmds = [(c.counter, c.opcode) for c in twin.responder.commands]
            assert cmds == [(1001, P.OP_SET_GUARD), (1002, P.OP_START)]
            assert twin.responder.guard == guard_args(pipeline.limits, P.GUARD_WHEN_LINK_DOWN)
            assert pipeline.alert_policy.counter.next() == 1003  # alerts continue past the device's counter
            assert await transport.read_battery() == 64
            await transport.close()

            wrong = BleTransport(
                name="spinemon-NONE",
                options=BleOptions(scan_timeout_s=0.3, connect_attempts=1),
                backend=BumbleClient,
                scanner_backend=BumbleScanner,
                radio=radio,
            )
            with pytest.raises(TransportError, match="no wearable named"):
                await wrong.connect()

    run(main())


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError):
        BleTransport()
    with pytest.raises(ConfigError):
        BleTransport("AA:BB:CC:DD:EE:FF", name="spinemon-0001")
    with pytest.raises(ConfigError):
        BleOptions(gatt_timeout_s=0)
    with pytest.raises(ConfigError):
        BleOptions(connect_attempts=0)
    with pytest.raises(ConfigError):
        BleOptions(backoff_initial_s=10.0, backoff_max_s=1.0)
    assert [BleOptions(backoff_initial_s=0.5, backoff_max_s=3.0).backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_transport_pairs_with_a_wearable_that_requires_encryption():
    """The wearable serves samples and takes commands only over an encrypted,
    bonded link: BleTransport pairs by default; without pairing the setup fails."""
    from tests.support.emulated_ble.twin import TwinSecurity

    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio, TwinInfo(suffix="5EC0"), security=TwinSecurity(require_encryption=True))
            refused = BleTransport(twin.address, options=BleOptions(**{**FAST.__dict__, "pair": False, "connect_attempts": 1}), backend=BumbleClient, radio=radio)
            with pytest.raises(TransportError):
                await refused.connect()
            await refused.close()
            transport = BleTransport(twin.address, options=FAST, backend=BumbleClient, radio=radio)
            await transport.connect()
            assert twin.encrypted
            await transport.send(P.encode_command(9, P.OP_HAPTIC, (1, 100, 0, 200)))
            assert [h.counter for h in twin.responder.haptics] == [9]
            await transport.close()

    run(main())


def test_no_adapter_says_what_is_missing_and_what_to_do():
    from bleak.exc import BleakError

    from spinemon.io.ble import _scan_error

    for exc in (FileNotFoundError(2, "No such file or directory"), BleakError("No Bluetooth adapters found."), BleakError("org.bluez.Error.NotReady")):
        msg = str(_scan_error(exc, "BLE scan"))
        assert msg.startswith("no Bluetooth adapter could be used") and "--port" in msg and "--sim" in msg, msg
    other = str(_scan_error(BleakError("device disconnected"), "BLE scan"))
    assert other == "BLE scan failed: device disconnected"
