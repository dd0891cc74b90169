"""``spinemon export FILE --csv|--parquet``: a recording as tables (:mod:`spinemon.app.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spinemon.app.export import _pyarrow, export_csv, export_parquet, parquet_paths, trace_recording
from spinemon.errors import ConfigError
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
        help="write the samples as Parquet (typed columns, the recording's settings in the metadata) to FILE, or to "
        "DIR/<recording>.parquet, and the events beside it as <name>-events.parquet "
        "(default: next to the recording; needs pip install -e '.[parquet]')",
    )


def main(args: argparse.Namespace) -> int:
    """``spinemon export FILE [--csv [OUT]] [--parquet [DIR_OR_FILE]]``."""
    parquet = getattr(args, "parquet", None)
    if args.csv is None and parquet is None:
        raise ConfigError("choose an output format: --csv [OUT] or --parquet [DIR_OR_FILE]")
    if parquet is not None:
        _pyarrow()  # before the replay: say at once what is missing
    src = Path(args.file)
    outs: list[Path] = []
    if args.csv is not None:
        outs.append(Path(args.csv) if args.csv else src.with_suffix(".csv"))
    if parquet is not None:
        outs += parquet_paths(src, parquet)
    for out in outs:
        if out.resolve() == src.resolve():
            raise ConfigError(f"{out} is the recording itself; choose another OUT")
    trace = trace_recording(load(src))
    if args.csv is not None:
        res = export_csv(trace, outs[0])
        print(
            f"wrote {res.samples_csv}: {res.rows} samples, {len(res.columns)} columns ({trace.result.angle_label})"
        )
        print(f"wrote {res.events_csv}: {res.events} events")
    if parquet is not None:
        pres = export_parquet(trace, *outs[-2:])
        print(
            f"wrote {pres.samples}: {pres.rows} samples, {len(pres.columns)} columns ({trace.result.angle_label})"
        )
        print(f"wrote {pres.events}: {pres.n_events} events")
    return 0
