# The same frames over a byte stream (USB CDC or a UART), COBS-framed with a
# 0x00 delimiter (spinemon_protocol.stream_frame / StreamDecoder). The port is
# injected: read() -> bytes or None without blocking, write(bytes).
# SAMPLES, STATUS, ACK and ERROR all go on the one stream; commands come back
# on it.

import spinemon_protocol as sp


class SerialLink:
    def __init__(self, port):
        self.port = port
        self.decoder = sp.StreamDecoder()
        self.frames_sent = 0
        self.write_errors = 0

    def poll(self):
        """Commands (decoded COBS payloads) received since the last poll."""
        data = self.port.read()
        if not data:
            return ()
        return self.decoder.feed(data)

    def send(self, frame):
        try:
            self.port.write(sp.stream_frame(frame))
        except OSError:
            self.write_errors += 1
            return False
        self.frames_sent += 1
        return True

    @property
    def framing_errors(self):
        return self.decoder.framing_errors
