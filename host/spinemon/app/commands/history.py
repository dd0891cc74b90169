"""``spinemon history [DIR]``: progress over weeks, with the pain journal (:mod:`spinemon.app.history`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from spinemon.app import argtypes
from spinemon.app.history import (
    MISSING_MATPLOTLIB,
    UsageProblem,
    build,
    format_text,
    indexed_facts,
    load_journal,
)
from spinemon.app.words import plural
from spinemon.errors import ConfigError
from spinemon.io.atomic import check_writable, refuse_existing


# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="*",
        metavar="DIR",
        help="folders of .spinrec recordings (searched recursively) or recordings (default: the current folder)",
    )
    parser.add_argument("--json", action="store_true", help="print the same data as JSON")
    parser.add_argument(
        "--png",
        metavar="FILE",
        help="write a chart: per exercise, peak flexion per week against the limit, alerts per 100 reps as bars (needs the 'report' extra)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an existing --png file (default: refuse it)"
    )
    parser.add_argument(
        "--journal",
        metavar="PATH",
        help="pain journal (default $SPINEMON_HOME/journal.jsonl or ~/.spinemon/journal.jsonl)",
    )
    parser.add_argument(
        "--jobs", type=argtypes.count, default=None, metavar="N", help="worker processes (default: all cores)"
    )


def recordings(items: Sequence[str]) -> list[Path]:
    """The recordings to show: files as given, folders searched recursively (:func:`spinemon.app.season.expand`)."""
    from spinemon.app import season

    items = list(items) or ["."]
    for it in items:
        p = Path(it)
        if not p.exists():
            raise UsageProblem(f"{it} does not exist; give the folder that holds your recordings (.spinrec)")
        if p.is_dir() and not any(p.iterdir()):
            raise ConfigError(
                f"{p} is empty: no recordings to show; record sessions with 'spinemon live --out FILE.spinrec' or give the folder that holds them"
            )
    return season.expand(items)


def main(args: argparse.Namespace) -> int:
    """``spinemon history [DIR ...]``: 0 on success, 1 when a recording could not be read (the others are shown)."""
    if args.png:
        # only a chart needs the plotting module (and what it imports): a
        # history from the session index starts without the replay code
        from spinemon.app.plotting import pyplot

        png = Path(args.png)
        if png.is_dir():
            raise UsageProblem(f"--png {png} is a folder; give a file name, e.g. {png / 'history.png'}")
        if not png.parent.exists():
            raise UsageProblem(
                f"--png {png}: the folder {png.parent} does not exist; create it or choose another --png"
            )
        refuse_existing(png, bool(getattr(args, "force", False)), flag="--png")
        check_writable(png.parent, flag="--png")
        if pyplot() is None:
            raise ConfigError(MISSING_MATPLOTLIB)
    notes: list[str] = []
    entries, info = load_journal(args.journal, notes)
    paths = recordings(args.path)
    facts, replayed = indexed_facts(paths, args.jobs, notes)
    bad = [f for f in facts if f.get("error")]
    if len(bad) == len(facts):
        raise ConfigError(
            (
                f"the recording could not be read ({bad[0]['error']})"
                if len(facts) == 1
                else f"none of the {len(facts)} recordings could be read (first: {bad[0]['error']})"
            )
            + "; give a folder of recordings written by spinemon"
        )
    doc = build(facts, entries, info)
    for f in bad:
        notes.append(f"skipped {Path(f['recording']).name}: {f['error']}")
    for s in doc["sessions"]:
        if s["truncated"]:
            notes.append(
                f"{Path(s['recording']).name} was cut off mid-record: counted up to its last complete record"
            )
        if s["corrupt_records"]:
            notes.append(
                f"{Path(s['recording']).name}: {plural(s['corrupt_records'], 'damaged record')} skipped"
            )
    if bad:
        notes.append(
            f"{len(bad)} of {plural(len(facts), 'recording')} could not be read and are left out (listed above); the history shows the rest"
        )
    doc["index"] = {"replayed": replayed, "from_index": len(facts) - replayed}
    if replayed < len(facts):
        notes.append(
            f"{len(facts) - replayed} of {len(facts)} recording(s) from the session index (unchanged since replayed)"
        )
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    wrote = None
    if args.png:
        from spinemon.app.plotting import plot

        wrote = plot(doc, args.png)
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        print(format_text(doc))
    if wrote is not None:
        print(f"wrote {wrote}", file=sys.stderr if args.json else sys.stdout)
    return 1 if bad else 0
