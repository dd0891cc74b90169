"""One exception hierarchy, rooted in :class:`SpinemonError`, in one module.

The root lives in the shared protocol module so that the firmware and the host
raise from the same tree; everything the host adds derives from it and is
defined here (the modules that raise them re-export their names)::

    SpinemonError
    ├── ProtocolError            a frame that cannot be decoded (spinemon_protocol)
    ├── ConfigError              a setting, profile or command-line value out of range or unknown
    │   ├── ProfileError         the profile file is unreadable or holds unusable values
    │   ├── UsageError           a bad command line (argparse's own): exit 2
    │   ├── UsageProblem         a bad command line found after parsing: exit 2
    │   ├── ExistingOutputError  an output exists and --force was not given: exit 2
    │   └── ViewUsageError       --view cannot run as asked: exit 2
    ├── CalibrationError         calibration could not be completed
    ├── RecordingError           a recording is missing, unreadable or not spinemon's
    │   └── TruncatedRecordingError
    ├── TransportError           the link to the wearable failed
    │   ├── DisconnectedError
    │   └── CommandError         the wearable answered ERROR
    │       └── CommandTimeoutError
    ├── FusionInputError         (also ValueError) bad arrays for the fusion core
    ├── AngleInputError          (also ValueError) bad arrays for the angle functions
    ├── RepInputError            (also ValueError) bad arrays for the rep segmenter
    ├── CsvImportError           a file that cannot be imported
    │   └── CsvUsageError        a bad import command line: exit 2
    └── JournalError             the journal cannot be read or written

An error whose class says ``usage = True`` is a command-line mistake: the
CLI prints it as one line and exits 2 (every other :class:`SpinemonError`: 1).
"""

from spinemon_protocol import ProtocolError, SpinemonError

__all__ = [
    "AngleInputError",
    "CalibrationError",
    "CommandError",
    "CommandTimeoutError",
    "ConfigError",
    "CsvImportError",
    "CsvUsageError",
    "DisconnectedError",
    "ExistingOutputError",
    "FusionInputError",
    "JournalError",
    "ProfileError",
    "ProtocolError",
    "RecordingError",
    "RepInputError",
    "SpinemonError",
    "TransportError",
    "TruncatedRecordingError",
    "UsageError",
    "UsageProblem",
    "ViewUsageError",
]


class RecordingError(SpinemonError):
    """A recording file is missing, unreadable or not a spinemon recording."""


class TruncatedRecordingError(RecordingError):
    """Raised only in strict mode: the recording ends mid-record."""


class CalibrationError(SpinemonError):
    """Calibration could not be completed (the wearer moved, no data, ...)."""


class ConfigError(SpinemonError):
    """A setting, profile or command-line value is out of range or unknown."""

    #: a command-line mistake (exit 2), not a failure of the command (exit 1)
    usage: bool = False


class ProfileError(ConfigError):
    """The profile file is unreadable, not JSON, or holds values spinemon cannot use."""


class UsageError(ConfigError):
    """A bad command line as argparse finds it; the message is the whole line
    (``spinemon replay: error: ... (see 'spinemon replay --help')``): exit 2."""

    usage = True


class UsageProblem(ConfigError):
    """A bad command line found after parsing (a path that does not exist, --journal missing): exit 2."""

    usage = True


class ExistingOutputError(UsageProblem):
    """An output named on the command line exists and ``--force`` (``live``:
    ``--resume``) was not given: a command-line mistake, exit 2 (the one
    overwrite rule, :func:`spinemon.io.atomic.refuse_existing`)."""


class ViewUsageError(ConfigError):
    """``--view`` cannot run as asked (aiohttp missing, the port taken, ``--view-port``
    without ``--view``): a command-line error, exit 2."""

    usage = True


class TransportError(SpinemonError):
    """The link to the wearable failed."""


class DisconnectedError(TransportError):
    """The wearable disconnected."""


class CommandError(TransportError):
    """The wearable answered a COMMAND with an ERROR frame."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class CommandTimeoutError(CommandError):
    """No ACK/ERROR came back in time."""


class FusionInputError(SpinemonError, ValueError):
    """Sample arrays given to the fusion core have the wrong shape or are not finite."""


class AngleInputError(SpinemonError, ValueError):
    """Arrays given to the angle functions have the wrong shape or are not finite."""


class RepInputError(SpinemonError, ValueError):
    """Arrays given to :meth:`RepSegmenter.update` have the wrong shape, are not finite, or go back in time."""


class CsvImportError(SpinemonError):
    """A file that cannot be imported: missing column, non-numeric cell,
    implausible unit, bad mapping. The message names the row and column."""

    usage: bool = False


class CsvUsageError(CsvImportError):
    """A bad command line (a --columns, --axes, --date or unit that cannot be
    right whatever the file holds): exit 2."""

    usage = True


class JournalError(SpinemonError):
    """The journal file cannot be read or written, or a journal value is bad."""
