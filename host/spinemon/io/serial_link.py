"""USB serial transport: frames COBS-framed on a byte stream (pyserial).

Any :func:`serial.serial_for_url` URL works: a device path (``/dev/ttyACM0``,
``COM5``), ``socket://host:port`` (a bridge, or a test's fake device),
``loop://``. Every frame on the line is ``cobs_encode(frame) + b"\\x00"``
(``spinemon_protocol.stream_frame``); garbage between delimiters is counted
(``stats.framing_errors``) and skipped by ``spinemon_protocol.StreamDecoder``.
SAMPLES, STATUS, ACK and ERROR all arrive on the one stream.

pyserial blocks, so one reader thread per open port hands bytes to the
asyncio loop (``call_soon_threadsafe``); writes go through the loop's
default executor. Reconnecting, the setup hook and command/ACK matching
come from :class:`spinemon.io.transport.LinkTransport`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import serial

import spinemon_protocol as proto
from spinemon.errors import CommandError, CommandTimeoutError, ConfigError, DisconnectedError, TransportError
from spinemon.io.transport import LinkOptions, LinkTransport

__all__ = ["SerialTransport"]

_READ_POLL_S = 0.02  # reader thread wakes at least this often to notice close()
_WRITE_TIMEOUT_S = 1.0


class SerialTransport(LinkTransport):
    """The wearable on a serial line (USB CDC) or anything ``serial_for_url`` opens.

    ``serial_kwargs`` go to :func:`serial.serial_for_url` (e.g. ``rtscts``).
    """

    def __init__(
        self, url: str, *, baudrate: int = 115200, options: LinkOptions | None = None, **serial_kwargs: Any
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ConfigError("a serial port name or URL is required (e.g. /dev/ttyACM0, socket://host:port)")
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or not 300 <= baudrate <= 12_000_000:
            raise ConfigError(f"baudrate must be an integer 300..12000000, not {baudrate!r}")
        super().__init__(options)
        self.url = url
        self.baudrate = baudrate
        self._serial_kwargs = serial_kwargs
        self._port: serial.SerialBase | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._decoder = proto.StreamDecoder()
        self._framing_errors_before = 0  # from the decoders of earlier connections
        self.bytes_in = 0

    # -- link ------------------------------------------------------------------------
    async def _open(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()

        if self.url.lower().startswith("mpsim://"):
            _bench_handlers()

        def open_port() -> serial.SerialBase:
            return serial.serial_for_url(
                self.url,
                baudrate=self.baudrate,
                timeout=_READ_POLL_S,
                write_timeout=_WRITE_TIMEOUT_S,
                **self._serial_kwargs,
            )

        try:
            port = await asyncio.wait_for(loop.run_in_executor(None, open_port), timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            raise TransportError(
                f"cannot open {self.url}: {e}; check the cable and the port name (e.g. /dev/ttyACM0), or try --sim"
            ) from None
        self._framing_errors_before += self._decoder.framing_errors
        self._decoder = proto.StreamDecoder()
        self._port = port
        self._stop = threading.Event()
        self._reader = threading.Thread(
            target=self._read_loop,
            args=(port, self._stop, loop),
            name=f"spinemon-serial-{self.url}",
            daemon=True,
        )
        self._reader.start()
        try:
            # a lone delimiter ends whatever half frame the device may hold
            await self._write(proto.DELIMITER)
        except TransportError:
            await self._shutdown()
            raise

    def _read_loop(
        self, port: serial.SerialBase, stop: threading.Event, loop: asyncio.AbstractEventLoop
    ) -> None:
        while not stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except Exception as e:
                if not stop.is_set():
                    loop.call_soon_threadsafe(self._port_failed, port, f"read failed: {e}")
                return
            if data:
                loop.call_soon_threadsafe(self._bytes_in, port, data, time.time())

    def _bytes_in(self, port: serial.SerialBase, data: bytes, t_host: float) -> None:
        if port is not self._port:
            return  # late bytes from a port already closed
        self.bytes_in += len(data)
        for frame in self._decoder.feed(data):
            self._frame_in(frame, t_host)
        self.stats.framing_errors = self._framing_errors_before + self._decoder.framing_errors

    def _port_failed(self, port: serial.SerialBase, reason: str) -> None:
        if port is self._port:
            self._link_lost(reason)

    async def _write(self, frame: bytes) -> None:
        port = self._port
        if port is None:
            raise DisconnectedError("the serial port is not open")
        data = frame if frame == proto.DELIMITER else proto.stream_frame(frame)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(None, port.write, data), _WRITE_TIMEOUT_S + 1.0
            )
        except (serial.SerialException, OSError, TimeoutError) as e:
            self._port_failed(port, f"write failed: {e}")
            raise DisconnectedError(f"write to {self.url} failed: {e}") from None

    async def _shutdown(self) -> None:
        port, self._port = self._port, None
        reader, self._reader = self._reader, None
        self._stop.set()
        if reader is not None:
            await asyncio.get_running_loop().run_in_executor(None, reader.join, 2.0)
        if port is not None:
            try:
                port.close()
            except Exception:
                pass

    # -- STATUS ------------------------------------------------------------------------
    async def read_status(self, counter=None, timeout: float = 2.0) -> proto.Status | None:
        """Ask for STATUS with GET_STATUS (numbered by ``counter``, a
        :class:`~spinemon.core.alerts.CommandCounter`); without a counter, the
        last STATUS seen (or None).

        The device keeps the last counter of its serial link across host
        sessions, so the first GET_STATUS may be refused as stale; it is
        retried at most 3 times, each a quarter of the u32 counter space
        further on (one of 4 such probes is always newer than any
        ``last_counter``). The counter then continues after the accepted one.
        """
        if counter is None:
            return self.last_status
        first = counter.next()
        for k in range(4):
            c = (first + k * 0x40000000) & 0xFFFFFFFF or 1
            seen = self.status_frames_seen
            try:
                await self.send(proto.encode_command(c, proto.OP_GET_STATUS), timeout)
            except CommandTimeoutError:
                raise
            except CommandError as e:
                if e.code == proto.E_STALE:
                    continue
                raise
            counter.resume_after(c)
            return await self._status_after(seen, timeout)
        raise CommandError("the wearable refused GET_STATUS at every probed counter", code=proto.E_STALE)


def _bench_handlers() -> None:
    """``mpsim://`` (the real firmware under MicroPython, the bench's simulated
    board) is a pyserial URL handler of the source checkout's ``hil/`` (not
    installed with the package): put the checkout on the path so that the
    same ``--port`` opens a real board or the simulated one. Installed
    without a checkout, pyserial then says the protocol is not known."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]  # <checkout>/host/spinemon/io/serial_link.py
    if not (root / "hil" / "urlhandler").is_dir():
        return
    if str(root) not in sys.path:
        sys.path.append(str(root))
    if "hil.urlhandler" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(
            "hil.urlhandler"
        )  # pyserial imports protocol_mpsim from it when asked
