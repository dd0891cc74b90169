"""spinemon: watch a lifter's lower back with one or two IMUs.

Data flows one way: IMU -> packets (spinemon_protocol) -> samples
(spinemon.stream) -> angles (spinemon.fusion, spinemon.angles) -> events
(spinemon.detect) -> alerts (spinemon.alerts) and records (spinemon.recording).
"""

__version__ = "0.1.0"
