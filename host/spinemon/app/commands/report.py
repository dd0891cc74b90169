"""``spinemon report FILE|DIR``: plots and tables of recorded sessions (:mod:`spinemon.app.report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spinemon.app import argtypes
from spinemon.app.export import trace_recording
from spinemon.app.plotting import plot, pyplot
from spinemon.app.report import format_tables, report_row, write_report
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
        "--jobs",
        type=argtypes.count,
        default=None,
        metavar="N",
        help="worker processes for several recordings (default: all cores)",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH",
        help="pain journal for the History section of several recordings (default $SPINEMON_HOME/journal.jsonl or ~/.spinemon/journal.jsonl)",
    )


def _main_many(args: argparse.Namespace) -> int:
    import html
    import sys

    from spinemon.app import history, season

    paths = season.expand(args.file)
    out = Path(args.out) if args.out else Path("season-report")
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    entries, info = history.load_journal(getattr(args, "journal", None), notes)
    idents = history.identities(
        paths
    )  # before the replays: a file changed meanwhile is not stored as unchanged
    rows = season.run_many(report_row, paths, str(out), jobs=args.jobs, progress=sys.stderr)
    history.store_facts(
        [(p, idents[i], r.get("history")) for i, (p, r) in enumerate(zip(paths, rows))], notes
    )
    print(season.format_rows(rows))
    facts = [r.pop("history") for r in rows if r.get("history")]
    history_html = ""
    if facts:
        doc = history.build(facts, entries, info)
        png = None
        plt = pyplot()
        if plt is not None:
            png = plot(doc, out / "history.png", plt)
        history_html = history.html_section(doc, png)
        for n in notes:
            print(f"note: {n}")
    cols = [c for c in season.ROW_COLUMNS if c != "recording"]
    body = "".join(
        "<tr><td>"
        + (f'<a href="{html.escape(r["report"])}">' if r.get("report") else "")
        + html.escape(Path(r["recording"]).name)
        + ("</a>" if r.get("report") else "")
        + "</td>"
        + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in cols)
        + "</tr>"
        for r in rows
    )
    page = out / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>spinemon: sessions</title><style>body{font-family:sans-serif;margin:1em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}.scroll{overflow-x:auto;max-width:100%}"
        "img{max-width:100%;height:auto}.verdict{background:#f6f6f0;border-left:5px solid #486;padding:.6em 1em .6em 2em}</style></head><body>"
        "<h1>Sessions</h1>"
        + history_html
        + "<h2>Recordings</h2><div class='scroll'><table><tr><th>recording</th>"
        + "".join(f"<th>{c}</th>" for c in cols)
        + "</tr>"
        + body
        + "</table></div></body></html>\n",
        encoding="utf-8",
    )
    print(f"wrote {page} ({len(rows)} recordings)")
    return 1 if any(r.get("error") for r in rows) else 0


def main(args: argparse.Namespace) -> int:
    """``spinemon report FILE [--out DIR]`` (or several files / a folder)."""
    files = list(args.file) if isinstance(args.file, (list, tuple)) else [args.file]
    if len(files) > 1 or Path(files[0]).is_dir():
        return _main_many(args)
    src = Path(files[0])
    out = Path(args.out) if args.out else src.with_name(src.stem + "-report")
    trace = trace_recording(load(src))
    res = write_report(trace, out)
    print(format_tables(res.tables))
    if res.plots_skipped:
        print(f"note: {res.plots_skipped}")
    print(
        f"wrote {res.html} ({len(res.plots)} plots), {', '.join(p.name for p in res.csv.values())} in {res.out_dir}"
    )
    return 0
