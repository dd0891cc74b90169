"""spinemon: watch a lifter's lower back with one or two IMUs.

Data flows one way: IMU -> packets (spinemon_protocol) -> samples
(spinemon.core.stream) -> angles (spinemon.core.fusion, spinemon.core.angles) -> events
(spinemon.core.detect) -> alerts (spinemon.core.alerts) and records (spinemon.io.recording).
"""

__version__ = "0.1.0"  # the one source of the host's version (pyproject.toml reads it)

#: the firmware this host version is built and tested with (firmware/device.py ``FW_VERSION``);
#: the wire format's own version is ``spinemon_protocol.PROTOCOL_VERSION``
FIRMWARE_VERSION = "0.5.0"
