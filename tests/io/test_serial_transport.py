"""SerialTransport through real pyserial URLs: ``loop://`` and ``socket://``
to a fake wearable (an asyncio TCP server speaking COBS-framed frames with
the twin's CommandResponder)."""

import asyncio
import time

import pytest

import spinemon_protocol as P
from tests.support.emulated_ble import CommandResponder
from spinemon.errors import CommandError, CommandTimeoutError, ConfigError
from spinemon.io.device_link import guard_args, LinkSetup
from spinemon.core.pipeline import Pipeline
from spinemon.io.serial_link import SerialTransport
from spinemon.core.stream import FrameDecoder
from spinemon.io.transport import LinkOptions, Received

FAST = LinkOptions(connect_timeout_s=2.0, connect_attempts=2, backoff_initial_s=0.05, backoff_max_s=0.2, command_timeout_s=1.0)


def run(coro, timeout=20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def samples_frame(seq, count=4):
    mask = P.SENSOR_UPPER | P.SENSOR_LOWER
    vals = [(seq * 7 + i) % 2000 - 1000 for i in range(count * P.values_per_sample(mask))]
    return P.encode_samples(seq, seq * 10000, 10000, mask, P.ranges_byte(8, 1000), 0, count, P.pack_values(vals))


async def collect(transport, n, timeout=5.0):
    out = []

    async def _go():
        async for item in transport.items():
            out.append(item)
            if len(out) >= n:
                return

    await asyncio.wait_for(_go(), timeout)
    return out


class FakeWearable:
    """A TCP server that behaves like the firmware's serial link: COMMAND in
    (COBS), ACK/ERROR (+ STATUS after GET_STATUS) out; the test pushes
    frames and raw bytes with :meth:`push`."""

    def __init__(self, responder):
        self.responder = responder
        self.writer = None
        self.connections = 0
        self.connected = asyncio.Event()
        self.silent = False

    async def start(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self):
        return f"socket://127.0.0.1:{self.port}"

    async def _client(self, reader, writer):
        self.writer = writer
        self.connections += 1
        self.connected.set()
        decoder = P.StreamDecoder()
        try:
            while True:
                data = await reader.read(1024)
                if not data:
                    return
                for frame in decoder.feed(data):
                    if self.silent:
                        continue
                    answer = self.responder(frame)
                    writer.write(P.stream_frame(answer))
                    if answer[1] == P.T_ACK and P.decode(answer).opcode == P.OP_GET_STATUS:
                        writer.write(P.stream_frame(P.encode_status(last_counter=self.responder.last_counter, state=P.ST_SERIAL)))
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def push(self, data):
        self.writer.write(data)
        await self.writer.drain()

    async def hang_up(self):
        w, self.writer = self.writer, None
        self.connected.clear()
        w.close()

    async def close(self):
        if self.writer is not None:
            self.writer.close()
        self.server.close()
        await self.server.wait_closed()


def test_loop_url_commands_go_out_cobs_framed_and_come_back_whole():
    async def main():
        transport = SerialTransport("loop://", options=FAST)
        await transport.connect()
        cmd = P.encode_command(7, P.OP_HAPTIC, (1, 100, 0, 255))
        assert 0 in cmd  # COBS must carry the zero bytes
        with pytest.raises(CommandTimeoutError):  # nothing answers on a loop
            await transport.send(cmd, timeout=0.2)
        (item,) = await collect(transport, 1)
        assert isinstance(item, Received) and item.frame == cmd
        await transport.close()
        assert transport.stats.framing_errors == 0

    run(main())


def test_socket_device_frames_in_garbage_skipped_commands_acked_and_reconnect():
    async def main():
        # the device accepted counter 500 from an earlier host session: counter 1 is stale for it
        device = await FakeWearable(CommandResponder(last_counter=500)).start()
        pipeline = Pipeline()
        transport = SerialTransport(device.url, options=FAST)
        setup = LinkSetup(pipeline)
        transport.on_connected = setup
        states = []
        transport.on_state = states.append
        await transport.connect()

        # setup: GET_STATUS probed past the stale counter, then SET_GUARD, START
        cmds = [(c.counter, c.opcode, c.accepted) for c in device.responder.commands]
        probe = 1 + 0x40000000
        assert cmds == [(1, P.OP_GET_STATUS, False), (probe, P.OP_GET_STATUS, True), (probe + 1, P.OP_SET_GUARD, True), (probe + 2, P.OP_START, True)]
        assert setup.status.last_counter == probe and device.responder.guard == guard_args(pipeline.limits, P.GUARD_WHEN_LINK_DOWN)

        # frames in, with garbage on the line between them
        good = [samples_frame(100 + 4 * i) for i in range(20)]
        bad_crc = bytearray(samples_frame(999))
        bad_crc[20] ^= 0x01
        wire = b"".join(P.stream_frame(f) for f in good[:10])
        wire += b"\x07\x41\x42\x00"  # a COBS block that runs past the delimiter: framing error
        wire += bytes(range(1, 256)) * 2 + b"\x00"  # 510 bytes without a delimiter: too long, one framing error
        wire += P.stream_frame(bytes(bad_crc))  # valid COBS, bad CRC: passed on, rejected by the decoder
        wire += b"".join(P.stream_frame(f) for f in good[10:])
        for i in range(0, len(wire), 37):  # split anywhere
            await device.push(wire[i : i + 37])
        # items() so far: ERROR, ACK, STATUS (probe), ACK, ACK (setup), 20 + 1 frames
        items = await collect(transport, 5 + 21)
        frames = [i.frame for i in items]
        samples = [f for f in frames if f[1] == P.T_SAMPLES]
        assert samples[:10] == good[:10] and samples[11:] == good[10:] and samples[10] == bytes(bad_crc)
        assert transport.stats.framing_errors == 2
        dec = FrameDecoder()
        for f in frames:
            dec.feed(f)
        assert dec.stats.rejected == {"bad_crc": 1} and dec.stats.lost_samples == 0 and dec.stats.samples == 80
        assert dec.stats.ack_frames == 3 and dec.stats.error_frames == 1 and dec.stats.status_frames == 1
        assert all(0 < i.t_host <= time.time() for i in items)

        # commands out: a HAPTIC is acknowledged; a repeat is refused; silence times out
        c = pipeline.alert_policy.counter.next()
        await transport.send(P.encode_command(c, P.OP_HAPTIC, (3, 150, 100, 255)))
        assert [h.counter for h in device.responder.haptics] == [c]
        with pytest.raises(CommandError) as e:
            await transport.send(P.encode_command(c, P.OP_HAPTIC, (3, 150, 100, 255)))
        assert e.value.code == P.E_STALE
        device.silent = True
        with pytest.raises(CommandTimeoutError):
            await transport.send(P.encode_command(c + 1, P.OP_START), timeout=0.2)
        device.silent = False

        # the cable is pulled: the transport reconnects and runs the setup again
        await device.hang_up()
        await asyncio.wait_for(device.connected.wait(), 5.0)

        async def until_connected():
            while not transport.connected:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(until_connected(), 5.0)
        assert states == ["connected", "disconnected", "reconnecting", "connected"]
        assert setup.runs == 2 and device.connections == 2
        ops = [c.opcode for c in device.responder.commands if c.accepted]
        assert ops[-3:] == [P.OP_GET_STATUS, P.OP_SET_GUARD, P.OP_START]
        await device.push(P.stream_frame(samples_frame(500)))
        items = []
        async for item in transport.items():
            if item.frame[1] == P.T_SAMPLES:
                assert P.decode(item.frame).seq == 500
                break
        await transport.close()
        await device.close()
        assert states[-1] == "closed"

    run(main())


def test_bad_serial_arguments_and_unopenable_ports():
    with pytest.raises(ConfigError):
        SerialTransport("")
    with pytest.raises(ConfigError):
        SerialTransport("loop://", baudrate=7)
    with pytest.raises(ConfigError):
        LinkOptions(command_timeout_s=-1)

    async def main():
        transport = SerialTransport("/dev/does-not-exist-spinemon", options=LinkOptions(connect_attempts=2, backoff_initial_s=0.01))
        from spinemon.errors import TransportError

        with pytest.raises(TransportError, match="cannot open"):
            await transport.connect()
        assert transport.stats.connect_failures == 2

    run(main())
