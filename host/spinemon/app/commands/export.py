"""``spinemon export FILE --csv|--parquet``: a recording as tables (:mod:`spinemon.app.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spinemon.app.commands import UsageError
from spinemon.app.export import (
    _pyarrow,
    export_csv,
    export_parquet,
    parquet_folder,
    parquet_paths,
    trace_recording,
)
from spinemon.app.words import plural, shown_path
from spinemon.errors import ConfigError
from spinemon.io.atomic import check_writable, refuse_existing
from spinemon.io.recording import load


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spinemon export``."""
    parser.add_argument("file", help="a .spinrec recording")
    parser.add_argument(
        "--csv",
        nargs="?",
        const="",
        default=None,
        metavar="OUT",
        help="write the samples CSV to OUT (default: the recording's name with .csv) and the events to OUT-events.csv",
    )
    parser.add_argument(
        "--parquet",
        nargs="?",
        const="",
        default=None,
        metavar="DIR_OR_FILE",
        help="write the samples as Parquet (typed columns, the recording's settings in the metadata) to FILE.parquet, or to "
        "DIR/<recording>.parquet (DIR: a folder, or a name without .parquet; created if missing), and the events beside it "
        "as <name>-events.parquet (default: next to the recording; needs the 'parquet' extra, pyarrow)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace output files that exist already (default: refuse them)",
    )


def main(args: argparse.Namespace) -> int:
    """``spinemon export FILE [--csv [OUT]] [--parquet [DIR_OR_FILE]]``."""
    parquet = getattr(args, "parquet", None)
    force = bool(getattr(args, "force", False))
    if args.csv is None and parquet is None:
        raise UsageError(
            "spinemon export: error: choose an output format: --csv [OUT] or --parquet [DIR_OR_FILE] (see 'spinemon export --help')"
        )
    if parquet is not None:
        _pyarrow()  # before the replay: say at once what is missing
    src = Path(args.file)
    outs: list[tuple[Path, str]] = []
    if args.csv is not None:
        csv_out = Path(args.csv) if args.csv else src.with_suffix(".csv")
        outs += [(csv_out, "--csv"), (csv_out.with_name(csv_out.stem + "-events.csv"), "--csv")]
    made: Path | None = None
    if parquet is not None:
        outs += [(p, "--parquet") for p in parquet_paths(src, parquet)]
        folder = parquet_folder(parquet)
        made = folder if folder is not None and not folder.exists() else None
    for out, flag in outs:
        if out.resolve() == src.resolve():
            raise UsageError(
                f"spinemon export: error: {flag} {shown_path(out)} is the recording itself; choose another {flag} (see 'spinemon export --help')"
            )
        refuse_existing(out, force, flag=flag)
    rec = load(src)  # a bad recording is reported before any folder is made
    if made is not None:
        try:
            made.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(
                f"cannot create the folder {shown_path(made)} ({e.strerror}); choose another --parquet"
            ) from None
        print(f"created the folder {shown_path(made)}")
    for folder, flag in {out.parent: flag for out, flag in outs}.items():
        if not folder.is_dir():
            raise ConfigError(
                f"directory {shown_path(folder)} does not exist; create it first, or choose another {flag}"
            )
        check_writable(folder, flag=flag)  # before the replay, not after it
    from spinemon.app.progress import Progress

    with Progress(f"export {src.name}") as bar:  # on a terminal only: a long recording takes a while
        trace = trace_recording(rec, on_progress=bar.update)
        bar.step("writing")
        if args.csv is not None:
            res = export_csv(trace, outs[0][0])
        if parquet is not None:
            pres = export_parquet(trace, outs[-2][0], outs[-1][0])
    if args.csv is not None:
        print(
            f"wrote {shown_path(res.samples_csv)}: {plural(res.rows, 'sample')}, {plural(len(res.columns), 'column')} ({trace.result.angle_label})"
        )
        print(f"wrote {shown_path(res.events_csv)}: {plural(res.events, 'event')}")
    if parquet is not None:
        print(
            f"wrote {shown_path(pres.samples)}: {plural(pres.rows, 'sample')}, {plural(len(pres.columns), 'column')} ({trace.result.angle_label})"
        )
        print(f"wrote {shown_path(pres.events)}: {plural(pres.n_events, 'event')}")
    return 0
