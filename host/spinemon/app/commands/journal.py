"""``spinemon journal add|list|summary|...``: the pain journal's command line
(:mod:`spinemon.app.journal`, :mod:`spinemon.app.red_flags`, :mod:`spinemon.app.pain_analysis`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from spinemon.app import argtypes
from spinemon.app.journal import PHASES, Journal, JournalError, LoadReport, format_time
from spinemon.app.pain_analysis import format_summary, summarize
from spinemon.app.red_flags import red_flag_message, red_flags, red_flags_in_text, trend_flag
from spinemon.app.words import plural
from spinemon.errors import ConfigError


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def _weeks(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of weeks") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("weeks must be at least 1")
    return v


def _at(text: str) -> datetime:
    """``--at``: an ISO 8601 time, checked on the command line (a bad one is exit 2)."""
    from spinemon.app.journal import parse_time

    try:
        return parse_time(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _note(text: str) -> str:
    """``--note``: text; bytes that are not valid in the terminal's encoding
    (kept by Python as surrogates) are a command-line error, not a traceback."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = os.fsencode(text[e.start : e.end])
        raise argparse.ArgumentTypeError(
            f"the note holds bytes that are not text in this terminal's encoding ({bad!r}); type it again as plain text"
        ) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``spinemon journal add|list|summary`` for an argparse (sub)parser."""
    sub = parser.add_subparsers(
        dest="journal_command", metavar="ACTION", parser_class=type(parser), required=True
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--journal",
        metavar="PATH",
        help="journal file (default $SPINEMON_HOME/journal.jsonl or ~/.spinemon/journal.jsonl)",
    )

    a = sub.add_parser(
        "add",
        parents=[common],
        help="log back pain 0-10",
        description="Log back pain (0 none .. 10 worst imaginable) with an optional note and session recording.",
    )
    a.add_argument(
        "--pain",
        required=True,
        type=argtypes.pain,
        metavar="N",
        help="pain 0 (none) .. 10 (worst imaginable)",
    )
    a.add_argument(
        "--phase",
        metavar="|".join(PHASES),
        help="when: before, during or after a session, or other (default: after with --session, else other)",
    )
    a.add_argument("--note", default="", type=_note, help="a note (symptoms, what you did)")
    a.add_argument("--session", metavar="FILE", help="link a session recording (.spinrec)")
    a.add_argument(
        "--at",
        type=_at,
        metavar="ISO",
        help="when the pain was felt, ISO 8601 (default now; no offset = local time)",
    )

    ls = sub.add_parser(
        "list",
        parents=[common],
        help="list journal entries",
        description="List journal entries, oldest first.",
    )
    ls.add_argument("--weeks", type=_weeks, help="only the last N weeks")
    ls.add_argument("--json", action="store_true", help="print JSON")

    sm = sub.add_parser(
        "summary",
        parents=[common],
        help="what came before higher pain",
        description="Which exercises and flagged patterns came before higher pain, and pain by week.",
    )
    sm.add_argument("--weeks", type=_weeks, help="only the last N weeks")
    sm.add_argument("--json", action="store_true", help="print JSON")


def _journal_of(args: argparse.Namespace) -> Journal:
    return Journal(getattr(args, "journal", None) or None)


def _load_notes(rep: LoadReport, journal: Journal) -> list[str]:
    notes = []
    if rep.skipped_lines:
        torn = " (the last line was cut off mid-write)" if rep.torn_last_line else ""
        notes.append(
            f"note: skipped {plural(len(rep.skipped_lines), 'unreadable line')} in {journal.path}{torn}: line(s) {', '.join(map(str, rep.skipped_lines[:10]))}"
        )
    return notes


def main(args: argparse.Namespace, stream: TextIO | None = None, *, now: datetime | None = None) -> int:
    """``spinemon journal ...``: 0 on success; raises :class:`SpinemonError` subclasses for bad input."""
    out = stream or sys.stdout
    journal = _journal_of(args)
    existing = journal.load()
    if (
        existing.skipped_lines
        and not existing.entries
        and not (existing.torn_last_line and len(existing.skipped_lines) == 1)
    ):
        # a non-empty file with not one readable entry is not a journal: never append to it
        raise JournalError(
            f"{journal.path} has no readable journal entries ({plural(len(existing.skipped_lines), 'unreadable line')}); "
            "check that --journal points at a spinemon journal (.jsonl), or choose a new path"
        )
    cmd = getattr(args, "journal_command", None)
    if cmd == "add":
        entry = journal.add(args.pain, args.phase, args.note or "", args.session, args.at, now=now)
        where = ""
        if entry.session is not None:
            s = entry.session
            where = f", session {Path(s.path).name} ({', '.join(s.exercises)}; {plural(s.n_events, 'flagged event')})"
        print(
            f"logged pain {entry.pain}/10 {entry.phase} at {format_time(entry.time)}{where} -> {journal.path}",
            file=out,
        )
        rep = journal.load()
        flags = red_flags_in_text(entry.note, entry.time)
        trend = trend_flag(rep.entries)
        if trend is not None:
            flags.append(trend)
        msg = red_flag_message(flags)
        if msg:
            print(msg, file=out)
        return 0
    if cmd == "list":
        rep = journal.load()
        now_ = (now or datetime.now(UTC)).astimezone(UTC)
        entries = [
            e for e in rep.entries if args.weeks is None or e.time >= now_ - timedelta(weeks=args.weeks)
        ]
        flags = red_flags(entries)
        if getattr(args, "json", False):
            doc = {
                "journal": str(journal.path),
                "entries": [e.as_dict() for e in entries],
                "skipped_lines": rep.skipped_lines,
                "torn_last_line": rep.torn_last_line,
                "red_flags": [f.as_dict() for f in flags],
            }
            print(json.dumps(doc, indent=2, ensure_ascii=False), file=out)
            return 0
        for n in _load_notes(rep, journal):
            print(n, file=out)
        if not entries:
            print(
                f"no journal entries{'' if args.weeks is None else f' in the last {args.weeks} week(s)'} in {journal.path}",
                file=out,
            )
        else:
            print(f"{'time (UTC)':<20} {'pain':>4}  {'phase':<6}  {'session':<24} note", file=out)
            for e in entries:
                sess = "" if e.session is None else Path(e.session.path).name
                flag = " [!]" if red_flags_in_text(e.note) else ""
                print(
                    f"{format_time(e.time):<20} {e.pain:>4}  {e.phase:<6}  {sess[:24]:<24} {e.note}{flag}",
                    file=out,
                )
        msg = red_flag_message(flags)
        if msg:
            print(msg, file=out)
        return 0
    if cmd == "summary":
        rep = journal.load()
        summ = summarize(rep.entries, weeks=args.weeks, now=now)
        summ["journal"] = str(journal.path)
        summ["skipped_lines"] = rep.skipped_lines
        summ["torn_last_line"] = rep.torn_last_line
        if getattr(args, "json", False):
            print(json.dumps(summ, indent=2, ensure_ascii=False), file=out)
            return 0
        for n in _load_notes(rep, journal):
            print(n, file=out)
        print(format_summary(summ), file=out)
        return 0
    raise ConfigError("no journal action given: use add, list or summary (see 'spinemon journal --help')")
