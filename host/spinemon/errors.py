"""One exception hierarchy, rooted in :class:`SpinemonError`.

The root lives in the shared protocol module so that the firmware and the host
raise from the same tree; everything the host adds derives from it.
"""

from spinemon_protocol import ProtocolError, SpinemonError

__all__ = [
    "CalibrationError",
    "CommandError",
    "CommandTimeoutError",
    "ConfigError",
    "DisconnectedError",
    "ProtocolError",
    "RecordingError",
    "SpinemonError",
    "TransportError",
    "TruncatedRecordingError",
]


class RecordingError(SpinemonError):
    """A recording file is missing, unreadable or not a spinemon recording."""


class TruncatedRecordingError(RecordingError):
    """Raised only in strict mode: the recording ends mid-record."""


class CalibrationError(SpinemonError):
    """Calibration could not be completed (the wearer moved, no data, ...)."""


class ConfigError(SpinemonError):
    """A setting, profile or command-line value is out of range or unknown."""


class TransportError(SpinemonError):
    """The link to the wearable failed."""


class DisconnectedError(TransportError):
    """The wearable disconnected."""


class CommandError(TransportError):
    """The wearable answered a COMMAND with an ERROR frame."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class CommandTimeoutError(CommandError):
    """No ACK/ERROR came back in time."""
