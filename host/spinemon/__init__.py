"""spinemon: watch a lifter's lower back with one or two IMUs.

Data flows one way: IMU -> packets (spinemon_protocol) -> samples
(spinemon.core.stream) -> angles (spinemon.core.fusion, spinemon.core.angles) -> events
(spinemon.core.detect) -> alerts (spinemon.core.alerts) and records (spinemon.io.recording).
"""

__version__ = "0.1.0"
