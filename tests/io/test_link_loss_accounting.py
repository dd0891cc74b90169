"""Issue 8: the host's gap accounting matches the firmware's counters exactly
across a BLE link loss.

The real firmware (MicroPython, fake IMUs) on the emulated radio, driven by
bleak: stream, lose the link mid-stream (``radio.drop_connection(...,
side="lost")``: what was in the air is gone), reconnect, resubscribe, START
again with the next counter, stream, STOP, read the final STATUS. The rule
(docs/protocol.md, "After a reconnect"): the stream waits for START on a new
connection; START re-sends the last ``RESEND_FRAMES`` frames the radio took,
and the host drops the ones it already has by sequence number. So every
sample the host misses is one the device counted as not delivered:

    FrameDecoder.lost_samples == STATUS.samples_dropped + STATUS.samples_lost_fifo

Everything is bounded (asyncio.wait_for around each wait and the whole test;
the firmware process is stopped, or killed, in finally).
"""

from __future__ import annotations

import asyncio
import struct

import bleak
import pytest

import spinemon_protocol as P
from mpy_runner import FIRMWARE_DIR, PROTOCOL_DIR, ROOT, micropython_binary, require
from tests.support.emulated_ble import BumbleClient, EmulatedRadio, LinkFaults
from tests.support.emulated_ble.firmware_bridge import FirmwareBridge, FirmwareOptions
from spinemon.core.stream import FrameDecoder

# waits on the wall clock: `make test` runs it in the real-time lane (tests/lanes.py)
pytestmark = pytest.mark.realtime

FAKES_DIR = ROOT / "tests" / "firmware" / "fakes"
RESEND_FRAMES = 16  # firmware/device.py RESEND_FRAMES (read from the source below)
RATE_HZ = 200  # two IMUs: 8 samples per frame, 25 frames/s; the 32-frame queue holds 1.28 s
# 15 ms connection events and 50 ms more in the air: a frame or two is always in flight
FAULTS = LinkFaults(connection_interval_s=0.015, extra_delay_s=0.05)
# reconnecting (scan, connect, re-encrypt, discover, subscribe) takes many round
# trips: on the slow link alone that outlasts the queue, so it runs on a quick one
RECONNECT_FAULTS = LinkFaults(connection_interval_s=0.0075)


def _firmware_constant(name: str) -> int:
    for line in (FIRMWARE_DIR / "device.py").read_text().splitlines():
        if line.startswith(name + " = "):
            return int(line.split("=", 1)[1].split("#")[0])
    raise AssertionError("%s not found in firmware/device.py" % name)


def options() -> FirmwareOptions:
    return FirmwareOptions(micropython=require(micropython_binary(), "micropython"), path=(PROTOCOL_DIR, FIRMWARE_DIR, FAKES_DIR), max_run_s=60.0)


class Host:
    """One central's view: a stream decoder fed as frames arrive, and the
    STATUS characteristic's notifications."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.timed = FrameDecoder()  # fed with receive times, as spinemon.core.pipeline does
        self.received: list[tuple[int, int]] = []  # (seq, count) of every SAMPLES frame as received
        self.status: asyncio.Queue[bytes] = asyncio.Queue()
        self.t_last_frame = 0.0

    def on_stream(self, _char, data) -> None:
        frame = bytes(data)
        seq, count = struct.unpack_from("<I", frame, 2)[0], frame[14]
        self.received.append((seq, count))
        self.t_last_frame = asyncio.get_running_loop().time()
        self.decoder.feed(frame)
        self.timed.feed(frame, self.t_last_frame)

    def on_status(self, _char, data) -> None:
        self.status.put_nowait(bytes(data))
        # the live transport hands STATUS/ACK frames to the pipeline too, in order
        self.timed.feed(bytes(data), asyncio.get_running_loop().time())

    async def subscribe(self, client) -> None:
        await asyncio.wait_for(client.start_notify(P.STREAM_CHAR_UUID, self.on_stream), 5.0)
        await asyncio.wait_for(client.start_notify(P.STATUS_CHAR_UUID, self.on_status), 5.0)

    async def command(self, client, counter: int, op: int, args=()) -> list:
        """Write one COMMAND; its ACK and what came with it (a STATUS for GET_STATUS)."""
        await asyncio.wait_for(client.write_gatt_char(P.COMMAND_CHAR_UUID, P.encode_command(counter, op, args), response=True), 5.0)
        got = []
        while True:
            obj = P.decode(await asyncio.wait_for(self.status.get(), 3.0))
            if isinstance(obj, P.Error) and obj.counter == counter:
                raise AssertionError("the firmware refused %s: %s" % (P.OPCODE_NAMES[op], P.ERROR_NAMES.get(obj.code)))
            got.append(obj)
            if isinstance(obj, P.Ack) and obj.counter == counter:
                if op != P.OP_GET_STATUS:
                    return got
            if isinstance(obj, P.Status) and any(isinstance(a, P.Ack) and a.counter == counter for a in got):
                return got

    async def wait_samples(self, n: int, timeout: float) -> None:
        async def _wait() -> None:
            while self.decoder.stats.samples < n:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(_wait(), timeout)

    async def wait_quiet(self, quiet_s: float, timeout: float) -> None:
        loop = asyncio.get_running_loop()

        async def _wait() -> None:
            while loop.time() - self.t_last_frame < quiet_s:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(_wait(), timeout)


async def link_loss_session(down_s: float) -> dict:
    """Stream ~1 s at RATE_HZ, lose the link for ``down_s`` (plus the time to
    reconnect), resume, stream ~1.5 s, STOP; the host's and the device's counts."""
    async with EmulatedRadio(FAULTS) as radio:
        fw = await FirmwareBridge.start(radio, options())
        try:
            host = Host()
            async with bleak.BleakClient(fw.twin.address, backend=BumbleClient, radio=radio, timeout=5.0, pair=True) as client:
                await host.subscribe(client)
                # a new wearable has no counter floor: GET_STATUS first, continue from its last_counter
                counter = next(o for o in await host.command(client, 1, P.OP_GET_STATUS) if isinstance(o, P.Status)).last_counter
                for op, args in ((P.OP_SET_GUARD, (4500, -2000, P.GUARD_OFF)), (P.OP_SET_RATE, (RATE_HZ,)), (P.OP_START, ())):
                    counter += 1
                    await host.command(client, counter, op, args)
                await host.wait_samples(RATE_HZ, 5.0)  # ~1 s of stream
                received_before = len(host.received)
                notified_before = sum(1 for n in fw.notifications if n.char == "stream")
                assert radio.drop_connection(fw.twin.device, side="lost")
                await fw.wait_until(lambda: any(i.event == "central_disconnect" for i in fw.irqs), 3.0)
                at_drop = sum(1 for n in fw.notifications if n.char == "stream")
            radio.set_faults(RECONNECT_FAULTS)
            t_down = asyncio.get_running_loop().time()
            await asyncio.sleep(down_s)
            # the seqs the firmware handed over before it knew, that never arrived
            got_seq = {s for s, _ in host.received}
            in_flight = [struct.unpack_from("<I", n.data, 2)[0] for n in fw.notifications if n.char == "stream"]
            in_flight = [s for s in in_flight[:at_drop] if s not in got_seq]
            received_at_reconnect = len(host.received)

            async with bleak.BleakClient(fw.twin.address, backend=BumbleClient, radio=radio, timeout=5.0, pair=True) as client:
                await host.subscribe(client)
                outage_s = asyncio.get_running_loop().time() - t_down
                st = next(o for o in await host.command(client, counter + 1, P.OP_GET_STATUS) if isinstance(o, P.Status))
                assert st.state & P.ST_STREAMING and st.last_counter == P.wrap32(counter + 1)
                counter = st.last_counter
                await asyncio.sleep(0.2)
                assert len(host.received) == received_at_reconnect, "no stream frame before the host's START"
                counter += 1
                await host.command(client, counter, P.OP_START)
                await host.wait_samples(host.decoder.stats.samples + int(1.5 * RATE_HZ), 6.0)
                counter += 1
                await host.command(client, counter, P.OP_STOP)
                await host.wait_quiet(0.3, 5.0)  # STOP's last batch arrived
                counter += 1
                final = next(o for o in await host.command(client, counter, P.OP_GET_STATUS) if isinstance(o, P.Status))
                await asyncio.wait_for(client.stop_notify(P.STREAM_CHAR_UUID), 5.0)
        finally:
            await fw.close()
        assert fw.returncode == 0 and fw.ended_cleanly, "".join(fw.output_tail)
        assert fw.errors == []
    return {
        "host": host,
        "status": final,
        "in_flight": in_flight,
        "outage_s": outage_s,
        "received_before": received_before,
        "notified_before": notified_before,
    }


def run(down_s: float) -> dict:
    return asyncio.run(asyncio.wait_for(link_loss_session(down_s), 18.0))


def test_the_resend_ring_size_is_what_the_firmware_uses():
    assert _firmware_constant("RESEND_FRAMES") == RESEND_FRAMES


def test_a_long_link_loss_host_lost_samples_equal_the_device_drop_counters_exactly(record_property):
    res = run(down_s=2.0)
    st: P.Status = res["status"]
    stats = res["host"].decoder.stats
    record_property("long_loss_host_lost_samples", stats.lost_samples)
    record_property("long_loss_device_samples_dropped", st.samples_dropped)
    record_property("long_loss_duplicate_samples", stats.duplicate_samples)
    record_property("long_loss_frames_lost_in_flight", len(res["in_flight"]))
    record_property("long_loss_outage_s", round(res["outage_s"], 2))
    print(
        "\nlong loss (%.2f s): host lost %d, device dropped %d (+%d FIFO) in %d frames; duplicates removed %d samples; %d frames lost in flight, recovered"
        % (res["outage_s"], stats.lost_samples, st.samples_dropped, st.samples_lost_fifo, st.frames_dropped, stats.duplicate_samples, len(res["in_flight"]))
    )
    # the decoder fed receive times and the STATUS frames, as the pipeline is: the
    # STATUS read after the reconnect has the same boot counter, so the late,
    # re-sent ring is duplicates, not a device restart
    timed = res["host"].timed.stats
    record_property("long_loss_timed_decoder_restarts", timed.restarts)
    assert timed.restarts == 0
    assert timed.lost_samples == stats.lost_samples and timed.duplicate_samples == stats.duplicate_samples
    assert st.samples_dropped > 0 and st.frames_dropped > 0, "the queue overflowed while the link was down"
    assert stats.bad_frames == 0 and stats.restarts == 0
    assert stats.lost_samples == st.samples_dropped + st.samples_lost_fifo
    assert stats.duplicate_samples > 0 and stats.duplicate_samples <= RESEND_FRAMES * st.samples_per_frame
    # every frame lost in the air came back with the ring
    got = {s for s, _ in res["host"].received}
    assert all(s in got for s in res["in_flight"])


def test_a_short_link_loss_loses_nothing_on_either_side(record_property):
    res = run(down_s=0.1)
    st: P.Status = res["status"]
    stats = res["host"].decoder.stats
    record_property("short_loss_duplicate_samples", stats.duplicate_samples)
    record_property("short_loss_frames_lost_in_flight", len(res["in_flight"]))
    record_property("short_loss_outage_s", round(res["outage_s"], 2))
    print("\nshort loss (%.2f s): duplicates removed %d samples; %d frames lost in flight, recovered" % (res["outage_s"], stats.duplicate_samples, len(res["in_flight"])))
    assert st.samples_dropped == 0 and st.samples_lost_fifo == 0 and st.frames_dropped == 0
    assert stats.lost_samples == 0 and stats.bad_frames == 0
    assert stats.duplicate_samples > 0
    got = {s for s, _ in res["host"].received}
    assert all(s in got for s in res["in_flight"])
