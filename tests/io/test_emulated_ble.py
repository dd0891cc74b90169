"""The emulated BLE radio: bleak (our Bumble backends) <-> real Bumble stack <-> twin.

Every test runs its coroutine under asyncio.run with an overall timeout, so
nothing can hang (pytest-asyncio is not used).
"""

import asyncio
import random
import statistics

import bleak
import pytest
from bleak.exc import BleakError
from bumble.device import AdvertisingParameters

import spinemon_protocol as P
from tests.support.emulated_ble import (
    BumbleClient,
    BumbleScanner,
    CommandResponder,
    EmulatedBleError,
    EmulatedConnectTimeout,
    EmulatedGATTError,
    EmulatedRadio,
    EmulatedRadioError,
    LinkFaults,
    TwinInfo,
    TwinPeripheral,
    timed_frames,
)
from spinemon.errors import SpinemonError, TransportError


def run(coro, timeout=10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout=5.0):
    async def _poll():
        while not predicate():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(_poll(), timeout)


def samples_frame(seq, mask=P.SENSOR_UPPER | P.SENSOR_LOWER, count=None):
    """A valid SAMPLES frame; count=None fills the frame to MAX_FRAME."""
    if count is None:
        count = P.max_samples_per_frame(mask)
    vals = [(seq * 7 + i) % 2000 - 1000 for i in range(count * P.values_per_sample(mask))]
    return P.encode_samples(seq, seq * 10000, 10000, mask, P.ranges_byte(8, 1000), 0, count, P.pack_values(vals))


async def connect(radio, twin, **kwargs):
    client = bleak.BleakClient(twin.address, backend=BumbleClient, radio=radio, timeout=5.0, **kwargs)
    await client.connect()
    return client


async def subscribe(client, twin, char="stream"):
    """Subscribe the client to the twin's stream or status characteristic;
    returns the Receiver once the twin has seen the CCCD write."""
    rx = Receiver()
    await client.start_notify(P.STREAM_CHAR_UUID if char == "stream" else P.STATUS_CHAR_UUID, rx)
    await twin.wait_subscribed(char)
    return rx


class Receiver:
    """Collects notifications with loop-clock arrival times."""

    def __init__(self):
        self.frames = []
        self.times = []
        self.changed = asyncio.Event()

    def __call__(self, _char, data):
        self.times.append(asyncio.get_running_loop().time())
        self.frames.append(bytes(data))
        self.changed.set()

    async def wait_for(self, n, timeout=5.0):
        async def _wait():
            while len(self.frames) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), timeout)


# ---- scanning ------------------------------------------------------------------
def test_scanner_finds_twin_by_service_uuid_with_name_and_rssi():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio, TwinInfo(suffix="A1B2"))
            decoy = await radio.add_device("decoy")
            await decoy.create_advertising_set(
                advertising_parameters=AdvertisingParameters(primary_advertising_interval_min=20, primary_advertising_interval_max=20),
                advertising_data=bytes([2, 0x01, 0x06, 6, 0x09]) + b"decoy",
            )

            found = await bleak.BleakScanner.discover(
                timeout=0.3, service_uuids=[P.SERVICE_UUID], return_adv=True, backend=BumbleScanner, radio=radio
            )
            assert list(found) == [twin.address]
            device, adv = found[twin.address]
            assert device.name == "spinemon-A1B2" == adv.local_name
            assert adv.service_uuids == [P.SERVICE_UUID]
            assert isinstance(adv.rssi, int) and -127 <= adv.rssi <= 20

            everything = await bleak.BleakScanner.discover(timeout=0.3, return_adv=True, backend=BumbleScanner, radio=radio)
            assert {twin.address, str(decoy.random_address)} <= set(everything)
            assert everything[str(decoy.random_address)][1].local_name == "decoy"

            by_filter = await bleak.BleakScanner.find_device_by_filter(
                lambda d, ad: P.SERVICE_UUID in ad.service_uuids, timeout=1.0, backend=BumbleScanner, radio=radio
            )
            assert by_filter is not None and by_filter.address == twin.address

    run(main())


# ---- connection, MTU, discovery -----------------------------------------------------
def test_connect_negotiates_mtu_and_discovers_the_gatt_table():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            async with bleak.BleakClient(twin.address, backend=BumbleClient, radio=radio, timeout=5.0) as client:
                assert client.is_connected
                assert client.mtu_size == 247 == twin.mtu
                svc = client.services.get_service(P.SERVICE_UUID)
                props = {c.uuid: sorted(c.properties) for c in svc.characteristics}
                assert props == {
                    P.STREAM_CHAR_UUID: ["notify"],
                    P.COMMAND_CHAR_UUID: ["write"],
                    P.STATUS_CHAR_UUID: ["notify", "read"],
                }
                for uuid in (P.STREAM_CHAR_UUID, P.STATUS_CHAR_UUID):
                    cccd = client.services.get_characteristic(uuid).get_descriptor("2902")
                    assert cccd is not None
                battery = client.services.get_service("180f")
                assert sorted(battery.get_characteristic("2a19").properties) == ["notify", "read"]
                assert (await client.read_gatt_char("2a19"))[0] == 87
                assert (await client.read_gatt_char("2a29")).decode() == "spinemon project"
                assert (await client.read_gatt_char("2a24")).decode() == "spinemon twin"
                assert (await client.read_gatt_char("2a26")).decode() == "0.1.0"
                assert client.services.get_characteristic(P.STREAM_CHAR_UUID).max_write_without_response_size == 244

                # a full 244-byte frame (MAX_FRAME) needs the MTU exchange to arrive whole
                rx = await subscribe(client, twin, "stream")
                frame = bytes(random.Random(5).randrange(256) for _ in range(P.MAX_FRAME))
                assert len(frame) == 244
                assert await twin.notify_stream(frame)
                full = samples_frame(1)  # the largest SAMPLES frame for two IMUs
                assert await twin.notify_stream(full)
                await rx.wait_for(2)
                assert rx.frames == [frame, full]
                assert P.decode(rx.frames[1]).seq == 1
                with pytest.raises(EmulatedRadioError):
                    await twin.notify_stream(frame + b"\x00")
            assert not client.is_connected
            await twin.wait_disconnected()

    run(main())


def test_without_mtu_exchange_a_full_frame_does_not_fit():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin, mtu=23)
            assert client.mtu_size == 23
            await client.start_notify(P.STREAM_CHAR_UUID, Receiver())
            await twin.wait_subscribed("stream")
            with pytest.raises(EmulatedRadioError, match="MTU 23"):
                await twin.notify_stream(samples_frame(1))
            await client.disconnect()

    run(main())


def test_read_status_and_receive_samples_in_order():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin)
            status = P.decode(await client.read_gatt_char(P.STATUS_CHAR_UUID))
            assert isinstance(status, P.Status)
            assert status.fw_version == (0, 1, 0) and status.battery_pct == 87
            assert status.state & P.ST_CONNECTED

            fixed = P.encode_status(battery_pct=12, boot_count=3)
            twin.set_status(fixed)
            assert bytes(await client.read_gatt_char(P.STATUS_CHAR_UUID)) == fixed

            # no subscriber yet: the twin drops, like the firmware
            assert not await twin.notify_stream(samples_frame(0))
            assert twin.frames_not_sent == 1

            rx = await subscribe(client, twin, "stream")
            frames = [samples_frame(seq, count=3) for seq in range(100, 160)]
            sent = await twin.stream_from(timed_frames(frames, [i * 0.001 for i in range(len(frames))]))
            assert sent == 60
            await rx.wait_for(60)
            assert rx.frames == frames
            assert [P.decode(f).seq for f in rx.frames] == list(range(100, 160))

            # stop_notify writes the CCCD: the twin sees the unsubscription
            await client.stop_notify(P.STREAM_CHAR_UUID)
            assert not twin.subscribed["stream"]
            assert not await twin.notify_stream(frames[0])
            await client.disconnect()

    run(main())


# ---- commands ---------------------------------------------------------------------------
def test_command_write_gets_ack_and_stale_counter_gets_error():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin)
            rx = await subscribe(client, twin, "status")
            loop = asyncio.get_running_loop()

            t_write = loop.time()
            await client.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(10, P.OP_HAPTIC, (2, 150, 100, 200)), response=True)
            await rx.wait_for(1)
            ack = P.decode(rx.frames[0])
            assert isinstance(ack, P.Ack) and (ack.counter, ack.opcode) == (10, P.OP_HAPTIC)
            (haptic,) = twin.responder.haptics
            assert (haptic.counter, haptic.pulses, haptic.on_ms, haptic.off_ms, haptic.strength) == (10, 2, 150, 100, 200)
            assert t_write <= haptic.arrived_s <= rx.times[0]

            for stale in (10, 9):  # repeated, then older
                await client.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(stale, P.OP_HAPTIC, (1, 100, 0, 10)), response=True)
            await rx.wait_for(3)
            for f, counter in zip(rx.frames[1:3], (10, 9)):
                err = P.decode(f)
                assert isinstance(err, P.Error)
                assert (err.counter, err.opcode, err.code) == (counter, P.OP_HAPTIC, P.E_STALE)
            assert len(twin.responder.haptics) == 1

            bad = bytearray(P.encode_command(11, P.OP_START))
            bad[-1] ^= 0xFF
            await client.write_gatt_char(P.COMMAND_CHAR_UUID, bytes(bad), response=True)
            await rx.wait_for(4)
            assert P.decode(rx.frames[3]).code == P.E_CRC

            await client.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(11, P.OP_GET_STATUS), response=True)
            await rx.wait_for(6)
            ack, status = P.decode(rx.frames[4]), P.decode(rx.frames[5])
            assert isinstance(ack, P.Ack) and ack.opcode == P.OP_GET_STATUS
            assert isinstance(status, P.Status) and status.last_counter == 11 and status.commands_rejected == 3
            await client.disconnect()

    run(main())


def test_command_responder_rules():
    now = [100.0]
    assert P.decode(CommandResponder()(P.encode_command(0, P.OP_START))).code == P.E_STALE  # boot: last_counter 0
    r = CommandResponder(clock=lambda: now[0], last_counter=0xFFFFFFF0)
    assert isinstance(P.decode(r(P.encode_command(0xFFFFFFFF, P.OP_START))), P.Ack)
    assert r.streaming
    assert isinstance(P.decode(r(P.encode_command(0, P.OP_STOP))), P.Ack)  # wraps around
    assert not r.streaming
    assert P.decode(r(P.encode_command(0x80000000, P.OP_STOP))).code == P.E_STALE  # half the space away
    out_of_range = bytearray(P.encode_command(1, P.OP_SET_RATE, (100,)))
    out_of_range[7:9] = (5).to_bytes(2, "little")
    crc = P.crc16(bytes(out_of_range[:-2]))
    out_of_range[-2:] = bytes([crc & 0xFF, crc >> 8])
    err = P.decode(r(bytes(out_of_range)))
    assert (err.counter, err.opcode, err.code) == (1, P.OP_SET_RATE, P.E_RANGE)
    assert r.rate_hz == 100  # unchanged
    now[0] = 101.25
    ack = P.decode(r(P.encode_command(2, P.OP_TIME_SYNC)))
    assert (ack.counter, ack.opcode, ack.value) == (2, P.OP_TIME_SYNC, 1250000)
    assert P.decode(r(b"\x01\x03")).code == P.E_TRUNCATED
    assert isinstance(P.decode(r(P.encode_command(3, P.OP_HAPTIC, (3, 200, 100, 255)))), P.Ack)
    assert [(h.arrived_s, h.counter, h.pulses) for h in r.haptics] == [(101.25, 3, 3)]
    assert [c.accepted for c in r.commands] == [True, True, False, False, True, False, True]
    assert r.last_counter == 3 and r.commands_rejected == 3


def test_custom_command_handler_can_answer_later_or_not_at_all():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            seen = []

            async def forward(frame):  # e.g. a bridge to the real firmware: it answers itself
                seen.append(frame)
                return None

            twin.on_command = forward
            client = await connect(radio, twin)
            rx = await subscribe(client, twin, "status")
            cmd = P.encode_command(1, P.OP_START)
            await client.write_gatt_char(P.COMMAND_CHAR_UUID, cmd, response=True)
            await asyncio.sleep(0.02)
            assert seen == [cmd] and rx.frames == []
            await twin.notify_status(P.encode_ack(1, P.OP_START))
            await rx.wait_for(1)
            assert isinstance(P.decode(rx.frames[0]), P.Ack)
            await client.disconnect()

    run(main())


# ---- fault injection ----------------------------------------------------------------------
@pytest.mark.parametrize("interval_s", [0.0075, 0.015, 0.030])
def test_pacing_spaces_notifications_by_the_connection_interval(interval_s):
    n = 12

    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin)
            rx = await subscribe(client, twin, "stream")
            radio.set_faults(LinkFaults(connection_interval_s=interval_s))
            events_before = radio.stats.connection_events
            for seq in range(n):  # back to back: the link must spread them out
                await twin.notify_stream(samples_frame(seq, count=2))
            await rx.wait_for(n)
            assert [P.decode(f).seq for f in rx.frames] == list(range(n))
            gaps = [b - a for a, b in zip(rx.times, rx.times[1:])]
            # The link releases one PDU per event and never two events closer
            # than one interval (loop clock); the receive side adds only a
            # few call_soon hops, hence the small allowances.
            assert rx.times[-1] - rx.times[0] >= (n - 1) * interval_s - 0.002
            assert statistics.median(gaps) >= 0.9 * interval_s
            assert radio.stats.connection_events - events_before == n
            await client.disconnect()

    run(main())


def test_pacing_with_several_pdus_per_event():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin)
            rx = await subscribe(client, twin, "stream")
            radio.set_faults(LinkFaults(connection_interval_s=0.015, pdus_per_event=4))
            events_before = radio.stats.connection_events
            for seq in range(12):
                await twin.notify_stream(samples_frame(seq, count=2))
            await rx.wait_for(12)
            assert radio.stats.connection_events - events_before == 3
            assert rx.times[-1] - rx.times[0] >= 2 * 0.015 - 0.002
            assert [P.decode(f).seq for f in rx.frames] == list(range(12))
            await client.disconnect()

    run(main())


def test_extra_delay_is_a_lower_bound_on_latency():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin)
            rx = await subscribe(client, twin, "stream")
            radio.set_faults(LinkFaults(extra_delay_s=0.04))
            loop = asyncio.get_running_loop()
            sent = []
            for seq in range(5):
                sent.append(loop.time())
                await twin.notify_stream(samples_frame(seq, count=1))
            await rx.wait_for(5)
            assert all(r - s >= 0.04 for s, r in zip(sent, rx.times))
            await client.disconnect()

    run(main())


def test_dropped_notifications_are_really_missing():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin)
            rx = await subscribe(client, twin, "stream")

            radio.drop_next_notifications(3)
            for seq in range(10):
                assert await twin.notify_stream(samples_frame(seq, count=1))
            await rx.wait_for(7)
            await asyncio.sleep(0.05)
            assert [P.decode(f).seq for f in rx.frames] == list(range(3, 10))
            stream_handle = client.services.get_characteristic(P.STREAM_CHAR_UUID).handle
            assert radio.stats.notifications_dropped == 3
            assert [h for h, _ in radio.stats.dropped_notifications] == [stream_handle] * 3
            await client.disconnect()

    run(main())


def test_random_drops_are_seeded_and_accounted_for():
    async def one_run(seed):
        async with EmulatedRadio(LinkFaults(drop_probability=0.3, seed=seed)) as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin)
            rx = await subscribe(client, twin, "stream")
            seen_before = radio.stats.notifications_seen
            dropped_before = radio.stats.notifications_dropped
            for seq in range(100):
                await twin.notify_stream(samples_frame(seq, count=1))
            await until(lambda: radio.stats.notifications_seen - seen_before == 100)  # all reached the link
            dropped = radio.stats.notifications_dropped - dropped_before
            await rx.wait_for(100 - dropped)
            await asyncio.sleep(0.05)
            got = [P.decode(f).seq for f in rx.frames]
            missing = sorted(set(range(100)) - set(got))
            indices = [i - seen_before for _, i in radio.stats.dropped_notifications if i >= seen_before]
            await client.disconnect()
            return got, missing, indices, dropped

    async def main():
        got, missing, indices, dropped = await one_run(seed=1)
        assert got == sorted(got) and len(got) == 100 - dropped
        assert missing == indices  # exactly the notifications the link says it dropped
        assert 15 <= dropped <= 45
        again = await one_run(seed=1)
        assert again[1] == missing
        other = await one_run(seed=2)
        assert other[1] != missing

    run(main(), timeout=20.0)


@pytest.mark.parametrize("side", ["lost", "central", "peripheral", "twin-host"])
def test_forced_disconnect_fires_callback_and_reconnect_works(side):
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            dropped = asyncio.Event()
            calls = []

            def on_disconnect(c):
                calls.append(c)
                dropped.set()

            client = bleak.BleakClient(twin.address, on_disconnect, backend=BumbleClient, radio=radio, timeout=5.0)
            await client.connect()
            if side == "twin-host":
                await twin.disconnect()
            else:
                radio.drop_connection_after(0.02, twin.device, side=side)
            await asyncio.wait_for(dropped.wait(), 2.0)
            assert calls == [client]
            assert not client.is_connected
            await twin.wait_disconnected()
            with pytest.raises(BleakError):
                await client.read_gatt_char(P.STATUS_CHAR_UUID)

            await client.connect()  # the twin advertises again by itself
            assert client.is_connected and client.mtu_size == 247
            rx = await subscribe(client, twin, "stream")
            await twin.notify_stream(samples_frame(7))
            await rx.wait_for(1)
            assert P.decode(rx.frames[0]).seq == 7
            await client.disconnect()
            assert len(calls) == 2  # like bleak's BlueZ/WinRT backends: solicited too
            assert [e[0] for e in twin.connection_events] == ["connect", "disconnect", "connect", "disconnect"]

    run(main())


def test_link_drop_during_a_gatt_request_is_an_error_not_a_cancellation():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            client = await connect(radio, twin)
            radio.set_faults(LinkFaults(extra_delay_s=0.2))
            radio.drop_connection_after(0.05, twin.device)
            with pytest.raises(EmulatedBleError):
                await client.read_gatt_char(P.STATUS_CHAR_UUID)
            assert not client.is_connected

    run(main())


# ---- errors -----------------------------------------------------------------------------
def test_bad_use_gives_clear_errors():
    async def main():
        async with EmulatedRadio() as radio:
            twin = await TwinPeripheral.create(radio)
            with pytest.raises(EmulatedRadioError):
                bleak.BleakClient(twin.address, backend=BumbleClient)  # no radio anywhere
            nobody = bleak.BleakClient("F0:00:00:00:99:99", backend=BumbleClient, radio=radio, timeout=0.2)
            with pytest.raises(EmulatedConnectTimeout) as e:
                await nobody.connect()
            assert isinstance(e.value, TimeoutError) and isinstance(e.value, BleakError) and isinstance(e.value, SpinemonError)

            client = await connect(radio, twin)  # the radio still works after the failed attempt
            with pytest.raises(EmulatedGATTError) as e:
                await client.read_gatt_char(P.STREAM_CHAR_UUID)  # notify-only
            assert e.value.code == 0x02  # READ_NOT_PERMITTED
            assert isinstance(e.value, TransportError)
            await client.pair()  # LE Secure Connections, Just Works, bonded (issue 8)
            assert client._backend.encrypted and twin.encrypted
            await client.disconnect()
            with pytest.raises(BleakError):
                await client.write_gatt_char(P.COMMAND_CHAR_UUID, b"\x01", response=True)

    run(main())

    for bad in (
        dict(connection_interval_s=0.001),
        dict(pdus_per_event=0),
        dict(drop_probability=1.5),
        dict(extra_delay_s=-1.0),
    ):
        with pytest.raises(EmulatedRadioError):
            LinkFaults(**bad)
    with pytest.raises(EmulatedRadioError):
        TwinInfo(suffix="toolong")
