"""The `spinemon` command line.

Every command has ``--help``. Errors print one line (what went wrong and
what to do) and exit non-zero: 2 for a bad command line, 1 for anything else.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, cast

from spinemon import __version__
from spinemon.app.commands import EXIT_ERROR, EXIT_USAGE, UsageError
from spinemon.errors import SpinemonError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gives one line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


#: the commands in --help order: (name, module in spinemon.app.commands, add_parser keywords)
COMMANDS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "demo",
        "demo",
        {
            "help": "run a simulated workout through the live path (no hardware)",
            "description": "A simulated lifter does a short workout; alerts print as they fire; writes a recording and a summary.",
        },
    ),
    (
        "simulate",
        "simulate",
        {
            "help": "write a recording of a simulated set",
            "description": "Simulate sets of one exercise and write a recording (through the live path).",
        },
    ),
    (
        "live",
        "live",
        {
            "help": "connect to the wearable, calibrate, and watch your lifts",
            "description": "Connect (BLE by --address/--name, USB serial by --port, or --sim), calibrate with guided prompts, then monitor: a status line fitted to the terminal, alerts as they fire. Every session is recorded (--out FILE, else a new file in the sessions folder of ~/.spinemon, said on screen; --no-record: none). Ctrl-C ends the session, closes the recording and prints its summary.",
        },
    ),
    (
        "scan",
        "scan",
        {
            "help": "list spinemon wearables in BLE range",
            "description": "Scan for wearables advertising the spinemon service.",
        },
    ),
    (
        "calibrate",
        "calibrate",
        {
            "help": "guided calibration: neutral posture, range of motion, sensor alignment; saved to your profile",
            "description": "Stand tall and still, then bend slowly forward and backward. Finds each sensor's mounting (also a sensor stuck on crooked) and your range of motion, and stores them in your profile for later sessions.",
        },
    ),
    (
        "report",
        "report",
        {
            "help": "plots and tables of a recorded session (PNG, CSV, HTML)",
            "description": "Re-run a recording through the live path and write a PNG per set, a session overview, per-set and per-rep tables (terminal and CSV), and an HTML page that embeds them (opens offline). Plots need the 'report' extra (matplotlib).",
        },
    ),
    (
        "export",
        "export",
        {
            "help": "export a recording as CSV or Parquet (samples with angles and events)",
            "description": "Write one row per sample (device time, raw SI values, lumbar angles, set/rep, active events) and an events table, "
            "as CSV (--csv) and/or as typed Parquet for pandas, polars or DuckDB (--parquet; the 'parquet' extra, pyarrow).",
        },
    ),
    (
        "import",
        "csv_import",
        {
            "help": "turn a CSV from another logger into a spinemon recording",
            "description": "Map CSV columns, units and axes onto the spinemon convention and write a normal recording that replay and report accept.",
        },
    ),
    (
        "journal",
        "journal",
        {
            "help": "pain journal: log back pain, see what came before higher pain",
            "description": "Log back pain (0-10) before, during and after sessions, link entries to recordings, and see which exercises and flagged patterns came before higher pain. Warns clearly about red-flag symptoms.",
        },
    ),
    (
        "history",
        "history",
        {
            "help": "progress over weeks: reps, alerts per 100 reps, peak flexion, creep per exercise and week, with the pain journal",
            "description": "Replay every recording in DIR (in parallel) and show per exercise and ISO week: sessions, sets, reps, alerts per 100 reps, "
            "peak flexion at the bottom of the rep, creep over a set, the hips' share of the lean, and the pain journal beside it.",
        },
    ),
    (
        "replay",
        "replay",
        {
            "help": "re-run detection on a recording",
            "description": "Decode a recording through the live code path and list the events.",
        },
    ),
    (
        "config",
        "config",
        {
            "help": "show where your config file is and what it sets (default wearable, exercise, recordings folder)",
            "description": "spinemon reads defaults from config.toml in your spinemon folder ($SPINEMON_HOME or ~/.spinemon): "
            "the wearable, the exercise, and the folder live records into and history reads. A flag always wins.",
        },
    ),
    (
        "completion",
        "completion",
        {
            "help": "print a shell completion script (bash or zsh)",
            "description": "Print a completion script for bash or zsh, generated from spinemon's own command line. "
            'Load it with: eval "$(spinemon completion bash)" (in ~/.bashrc), or the same with zsh in ~/.zshrc.',
        },
    ),
)


class _LazySubParsers(argparse._SubParsersAction):
    """Subcommands whose module is imported, and whose arguments are added,
    only when the command is parsed (issue 27, start-up): ``spinemon --help``
    and ``spinemon replay --help`` never import what the other commands need."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.modules: dict[str, str] = {}  # command -> module not imported yet

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        name = values[0] if values else None
        module = self.modules.pop(name, None) if isinstance(name, str) else None
        if isinstance(name, str) and module is not None:
            _add_command(self._name_parser_map[name], module)
        super().__call__(parser, namespace, values, option_string)


def _add_command(sp: argparse.ArgumentParser, module: str) -> None:
    command = importlib.import_module(f"spinemon.app.commands.{module}")
    command.add_arguments(sp)
    sp.set_defaults(func=command.main)


def build_parser(lazy: bool = False) -> argparse.ArgumentParser:
    """The command line. ``lazy``: each command's module is imported and its
    arguments added when that command is parsed (what ``spinemon`` does);
    else all at once."""
    p = _Parser(
        prog="spinemon",
        description="Watch a lifter's lower back: calibrate, lift, feel the buzz; replay sessions.",
    )
    p.add_argument("--version", action="version", version=f"spinemon {__version__}")
    sub = cast(
        _LazySubParsers,
        p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, action=_LazySubParsers),
    )
    for name, module, texts in COMMANDS:
        sp = sub.add_parser(name, **texts)
        if lazy:
            sub.modules[name] = module
        else:
            _add_command(sp, module)
    return p


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    """``--axes -x,-y,z`` -> ``--axes=-x,-y,z``: argparse would read ``-x,-y,z`` as an option."""
    out: list[str] = []
    it = iter(argv)
    for tok in it:
        if tok in ("--axes",):
            nxt = next(it, None)
            out.append(tok if nxt is None else f"{tok}={nxt}")
        else:
            out.append(tok)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``spinemon ...``: the command's exit status; a reader that stops early
    (``spinemon replay --json | head``) ends it quietly (:mod:`spinemon.app.closed_stdout`)."""
    from spinemon.app.closed_stdout import exit_status_of

    return exit_status_of(lambda: _run(argv))


def _printable_output() -> None:
    """A file name that is not valid UTF-8 (kept by Python as surrogates) prints
    with its bad bytes escaped, never as a UnicodeEncodeError mid-command."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def _run(argv: Sequence[str] | None) -> int:
    _printable_output()
    parser = build_parser(lazy=True)
    args = None
    try:
        args = parser.parse_args(_join_dash_values(sys.argv[1:] if argv is None else argv))
        if not getattr(args, "command", None):
            raise UsageError("spinemon: error: no command given (see 'spinemon --help')")
        from spinemon.app.config import apply_to

        for note in apply_to(args):  # the config file's defaults, where the command line gave none
            print(f"spinemon: using {note}", file=sys.stderr)
        return args.func(args)
    except UsageError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    except SpinemonError as e:
        if getattr(e, "usage", False):  # a bad command line found after parsing (a path that does not exist)
            prog = f"spinemon {getattr(args, 'command', '')}".rstrip()
            print(f"{prog}: error: {e} (see '{prog} --help')", file=sys.stderr)
            return EXIT_USAGE
        print(f"spinemon: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("spinemon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # the reader of our output went away: closed_stdout ends the command quietly (exit 141)
    except Exception as e:
        import traceback

        from spinemon.app.season import write_traceback

        what = f"{type(e).__name__}: {e}"
        where = write_traceback(" ".join(sys.argv[1:] if argv is None else argv), traceback.format_exc())
        saved = (
            f"traceback in {where}"
            if where is not None
            else "traceback not saved (no log folder could be written)"
        )
        print(f"spinemon: unexpected error ({what[:200]}); {saved}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
