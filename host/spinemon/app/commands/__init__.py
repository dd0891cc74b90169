"""The ``spinemon`` commands: each module here is one command's command line
(``add_arguments``) and entry point (``main``), beside the code it runs (the
way pyserial's ``serial/tools`` sits beside its core). :mod:`spinemon.app.cli`
builds the parser from them and maps errors to exit statuses.

Exit statuses shared by every command: 0 done, 1 an error, 2 a bad command line.
"""

from __future__ import annotations

# a bad command line found by a command (exit 2); the message is the whole line
from spinemon.errors import UsageError

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "UsageError"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
