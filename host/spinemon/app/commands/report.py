"""``spinemon report FILE|DIR``: plots and tables of recorded sessions (:mod:`spinemon.app.report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spinemon.app import argtypes
from spinemon.app.export import trace_recording
from spinemon.app.plotting import plot, pyplot
from spinemon.app.report import format_tables, report_row, write_report
from spinemon.app.words import plural, shown_path
from spinemon.errors import ConfigError
from spinemon.io.atomic import atomic_dir, check_writable, refuse_existing
from spinemon.io.recording import load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spinemon report``."""
    parser.add_argument(
        "file",
        nargs="+",
        metavar="FILE",
        help="a .spinrec recording; several, or a folder of them, give a report each and an index",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: <recording>-report next to the recording; several: season-report)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the files of an --out folder that exists and is not empty (default: refuse it)",
    )
    parser.add_argument(
        "--lifter",
        metavar="NAME",
        help="the lifter's name, shown in the report's title (default: the name the recording holds, if any)",
    )
    argtypes.add_jobs_argument(parser, "recordings")
    parser.add_argument(
        "--journal",
        metavar="PATH",
        help="pain journal for the History section of several recordings (default $SPINEMON_HOME/journal.jsonl or ~/.spinemon/journal.jsonl)",
    )


def _main_many(args: argparse.Namespace) -> int:
    from spinemon.app import season

    paths = season.expand(args.file)
    out = _out_folder(Path(args.out) if args.out else Path("season-report"), args)
    # the folder appears whole when every report in it is written (atomic_dir), never half done
    return atomic_dir(out, lambda tmp: _write_many(args, paths, tmp, out))


def _out_folder(out: Path, args: argparse.Namespace) -> Path:
    """``--out`` checked before anything runs: new or empty, or replaced with ``--force``; its parent writable."""
    refuse_existing(out, bool(getattr(args, "force", False)), flag="--out", folder=True)
    if not out.parent.is_dir():
        raise ConfigError(
            f"directory {shown_path(out.parent)} does not exist; create it first, or choose another --out"
        )
    check_writable(out.parent, flag="--out")
    return out


def _write_many(args: argparse.Namespace, paths: list[Path], out: Path, final: Path) -> int:
    import sys

    from spinemon.app import history, pages, season
    from spinemon.app.plotting import NARROW

    notes: list[str] = []
    entries, info = history.load_journal(getattr(args, "journal", None), notes)
    lifter = getattr(args, "lifter", None)
    idents = history.identities(
        paths
    )  # before the replays: a file changed meanwhile is not stored as unchanged
    rows = season.run_many(report_row, paths, str(out), lifter, jobs=args.jobs, progress=sys.stderr)
    history.store_facts(
        [(p, idents[i], r.get("history")) for i, (p, r) in enumerate(zip(paths, rows))], notes
    )
    print(season.format_rows(rows))
    facts = [r.pop("history") for r in rows if r.get("history")]
    section: dict = {}
    if facts:
        doc = history.build(facts, entries, info)
        png = narrow = None
        plt = pyplot()
        if plt is not None:
            png = plot(doc, out / "history.png", plt)
            narrow = plot(doc, out / "history-narrow.png", plt, NARROW)
        section = history.section_context(doc, png, narrow)
        for n in notes:
            print(f"note: {n}")
    if not pages.available():
        print(f"note: index.html not written: {pages.MISSING_JINJA2}")
        return 1 if any(r.get("error") for r in rows) else 0
    cols = [c for c in season.ROW_COLUMNS if c != "recording"]
    page = out / "index.html"
    page.write_text(
        pages.render(
            "index.html.j2",
            lifter=lifter,
            has_history=bool(section),
            **section,
            heads=["recording", *cols],
            rows=[
                {
                    "name": Path(r["recording"]).name,
                    "report": r.get("report"),
                    "cells": ["" if r.get(c) is None else str(r.get(c)) for c in cols],
                }
                for r in rows
            ],
        ),
        encoding="utf-8",
    )
    print(f"wrote {shown_path(final / page.name)} ({plural(len(rows), 'recording')})")
    return 1 if any(r.get("error") for r in rows) else 0


def main(args: argparse.Namespace) -> int:
    """``spinemon report FILE [--out DIR]`` (or several files / a folder)."""
    files = list(args.file) if isinstance(args.file, (list, tuple)) else [args.file]
    if len(files) > 1 or Path(files[0]).is_dir():
        return _main_many(args)
    from spinemon.app.progress import Progress
    from spinemon.app.tables import wrap

    src = Path(files[0])
    out = _out_folder(Path(args.out) if args.out else src.with_name(src.stem + "-report"), args)
    rec = load(src)
    lifter = getattr(args, "lifter", None)
    with Progress(f"report {src.name}") as bar:
        trace = trace_recording(rec, on_progress=bar.update)
        # written into a temporary folder beside it and renamed into place: whole or not at all
        res = atomic_dir(out, lambda tmp: write_report(trace, tmp, lifter=lifter, progress=bar.step))
    print(format_tables(res.tables))
    if res.plots_skipped:
        print("\n".join(wrap(f"note: {res.plots_skipped}", None, "", "  ")))
    n = len(res.plots)
    page = f"{shown_path(out / res.html.name)} ({plural(n, 'plot')}), " if res.html is not None else ""
    print(
        "\n".join(
            wrap(
                f"wrote {page}{', '.join(p.name for p in res.csv.values())} in {shown_path(out)}",
                None,
                "",
                "  ",
            )
        )
    )
    return 0
