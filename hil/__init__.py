"""spinemon hardware-in-the-loop bench.

``python -m hil run [--port URL] [--scenario NAME ...]`` runs scenarios
(``hil/scenarios/*.toml``) against a device under test on a pyserial URL: a
real board (``/dev/ttyUSB0``, ``rfc2217://host:port``) or the simulated board
``mpsim://`` (the real firmware under MicroPython on a pseudo-terminal), which
importing this package registers with pyserial. See docs/hil.md.
"""

import serial

if "hil.urlhandler" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("hil.urlhandler")

SIM_URL = "mpsim://"
