"""``spinemon import``: other loggers' files -> recordings (:mod:`spinemon.app.csv_import`);
several files or a folder in parallel.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from spinemon.app import argtypes
from spinemon.app.csv_import import (
    SENSORS,
    SOURCE_KEYS,
    TABLE_SUFFIXES,
    CsvImportError,
    CsvUsageError,
    ImportResult,
    _run_pair,
    import_csv,
    parse_columns,
    parse_date,
    parse_where,
)
from spinemon.app.words import command, plural
from spinemon.core.calibration import CalibrationSettings
from spinemon.core.detect import PROFILES
from spinemon.core.pipeline import PipelineSettings
from spinemon.io.atomic import refuse_existing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spinemon import``."""
    parser.add_argument(
        "csv",
        nargs="+",
        metavar="FILE",
        help="a CSV/TSV file of IMU samples; several files or a folder (one recording each, in parallel); "
        "or the files of one recording: upper=F1 lower=F2 (one IMU each), acc=F1 gyr=F2 (one sensor type each)",
    )
    parser.add_argument(
        "--columns",
        default=None,
        help="KEY=COLUMN,... with keys t (seconds, a clock or a date-time; or t_s, t_ms, t_us, t_ns summed), ax, ay, az, gx, gy, gz "
        "(upper./lower. prefixes for two IMUs in one file), optional set, exercise; x, y, z for acc=/gyr= files; "
        "type, id (and upper=ID, lower=ID) for a long file. COLUMN is a header name or a position from 1. "
        "Default: the columns 'spinemon export' writes",
    )
    parser.add_argument(
        "--no-header",
        action="store_true",
        help="the file has no header row: columns go by position (found by itself when the first row is numbers)",
    )
    parser.add_argument(
        "--encoding",
        default=None,
        help="the file's text encoding (default: UTF-8, UTF-16 with a BOM, else Windows-1252)",
    )
    parser.add_argument(
        "--date",
        default=None,
        metavar="YYYY-MM-DD[THH:MM]",
        help="the session's date (and time), for `history`; default: the date in the file's time column, else today",
    )
    parser.add_argument(
        "--rate", type=float, default=None, metavar="HZ", help="sample rate (required without a time column)"
    )
    parser.add_argument(
        "--resample",
        type=float,
        default=None,
        metavar="HZ",
        help="resample onto an even grid at HZ (automatic when timestamps are irregular)",
    )
    parser.add_argument(
        "--acc-unit", default="m/s2", help="accelerometer unit: g, m/s2 or counts (default m/s2)"
    )
    parser.add_argument(
        "--acc-scale",
        default=None,
        metavar="N|auto",
        help="with --acc-unit counts: counts per g, or auto (from the magnitude at rest)",
    )
    parser.add_argument(
        "--gyr-unit", default="rad/s", help="gyroscope unit: dps, rad/s or counts (default rad/s)"
    )
    parser.add_argument(
        "--gyr-scale",
        default=None,
        metavar="N|auto",
        help="with --gyr-unit counts: counts per dps (131 for an MPU-6050 at 250 dps), or auto (from the accelerometer's tilt)",
    )
    parser.add_argument(
        "--axes",
        default=None,
        help="source axes as board x,y,z, a signed permutation, e.g. x,-z,y or --axes=-x,-y,z (default x,y,z)",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep only rows where COLUMN is VALUE (repeatable), e.g. one person of a combined file",
    )
    parser.add_argument(
        "--exercise",
        default="generic",
        choices=sorted(PROFILES),
        metavar="EXERCISE",
        help="exercise assumed where the file has no labels (default generic)",
    )
    argtypes.add_limit_argument(
        parser,
        "a limit override stored with the recording, e.g. curl.extension_deg=-10 (repeatable)",
    )
    argtypes.add_jobs_argument(parser, "files")
    parser.add_argument(
        "--out",
        default=None,
        help="recording to write (default: the file's name with .spinrec; must not exist, unless --force); with several files, a folder",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace recordings that exist already (default: refuse them)"
    )


def _split_sources(items: Sequence[str]) -> tuple[list[Path], dict[str, str] | None]:
    """Plain files (one recording each) or the named files of one recording."""
    named: dict[str, str] = {}
    plain: list[str] = []
    for it in items:
        key, sep, value = it.partition("=")
        if sep and key in SOURCE_KEYS and value:
            if key in named:
                raise CsvUsageError(f"{key}=FILE is given twice")
            named[key] = value
        else:
            plain.append(it)
    if named:
        if plain:
            raise CsvUsageError(
                "give either the named files of one recording (upper=F1 lower=F2, acc=F1 gyr=F2) or plain files, not both"
            )
        if set(named) == {"upper"} or set(named) == {"lower"}:
            raise CsvUsageError("two IMUs in two files: give exactly upper=FILE1 lower=FILE2")
        if ("upper" in named or "lower" in named) and (
            set(named) != set(SENSORS) and not all(k in SOURCE_KEYS for k in named)
        ):
            raise CsvUsageError("two IMUs in two files: give exactly upper=FILE1 lower=FILE2")
        order = {k: i for i, k in enumerate(SOURCE_KEYS)}
        return [], {k: named[k] for k in sorted(named, key=lambda k: order[k])}
    files: list[Path] = []
    for it in plain:
        p = Path(it)
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in TABLE_SUFFIXES and not f.name.startswith(".")
            )
            if not found:
                raise CsvImportError(
                    f"{p} is a directory with no CSV files ({', '.join(TABLE_SUFFIXES)}); give CSV files or a folder of them"
                )
            files += found
        else:
            files.append(p)
    return files, None


def _options(args: argparse.Namespace) -> dict:
    from spinemon.io.profile_store import merge_limit_overrides

    overrides = merge_limit_overrides(args.limit)
    # a spinemon export (no --columns) keeps spinemon's guided calibration (neutral, then the
    # range-of-motion bends); another logger's session had no such sweep: neutral only, default range
    settings = PipelineSettings(
        exercise=args.exercise,
        limit_overrides=overrides,
        calibration=CalibrationSettings(rom=args.columns is None),
    )
    if args.columns is not None:
        parse_columns(args.columns)  # a bad --columns is one usage error, not one per file
    if args.date:
        parse_date(args.date)
    return {
        "columns": args.columns,
        "rate_hz": args.rate,
        "acc_unit": args.acc_unit,
        "acc_scale": args.acc_scale,
        "gyr_unit": args.gyr_unit,
        "gyr_scale": args.gyr_scale,
        "axes": args.axes,
        "where": parse_where(args.where),
        "resample_hz": args.resample,
        "settings": settings,
        "encoding": args.encoding,
        "no_header": args.no_header,
        "date": args.date,
        "overwrite": bool(getattr(args, "force", False)),
    }


def _print_result(res: ImportResult) -> None:
    print(
        f"wrote {res.path}: {plural(res.samples, 'sample')} in {plural(res.frames, 'frame')} at {res.rate_hz:g} Hz, "
        f"ranges {res.acc_fs_g} g / {res.gyr_fs_dps} dps, {plural(res.labels, 'set label')}"
    )
    for note in res.notes:
        print(f"  note: {note}")


def _import_many(files: list[Path], args: argparse.Namespace, opts: dict) -> int:
    import sys

    from spinemon.app import season

    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise CsvUsageError(
                f"--out {out_dir}: several files give several recordings; --out must be a folder"
            )
        if out_dir.suffix == ".spinrec":
            raise CsvUsageError(
                f"--out {out_dir}: several files give several recordings; --out must be a folder, not a .spinrec name"
            )
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CsvUsageError(f"--out {out_dir}: cannot create the folder ({e.strerror})") from None
    outs = [
        (out_dir / f.with_suffix(".spinrec").name) if out_dir else f.with_suffix(".spinrec") for f in files
    ]
    if len(set(outs)) != len(outs):
        dup = next(o for o in outs if outs.count(o) > 1)
        raise CsvUsageError(f"two files would both be written to {dup}; import them in separate commands")
    for o in outs:  # the one overwrite rule, for every file before any runs
        refuse_existing(o, opts["overwrite"])
    pairs = [f"{f}\x00{o}" for f, o in zip(files, outs)]

    rows = season.run_many(_run_pair, [Path(p) for p in pairs], opts, jobs=args.jobs, progress=sys.stderr)
    ok = [r for r in rows if not r.get("error")]
    for r in rows:
        if r.get("error"):
            print(f"{r['file']}: error: {r['error']}")
        else:
            print(
                f"{r['file']} -> {r['recording']}: {plural(r['samples'], 'sample')} of {plural(r['rows'], 'row')} ({r['kept']}) at {r['rate_hz']:g} Hz, {plural(r['notes'], 'note')}"
            )
    print(
        f"imported {len(ok)} of {plural(len(rows), 'file')}"
        + (f"; {len(rows) - len(ok)} failed (named above)" if len(ok) < len(rows) else "")
    )
    return 0 if len(ok) == len(rows) else 1


def main(args: argparse.Namespace) -> int:
    """``spinemon import FILE ...``, ``spinemon import DIR``, ``spinemon import upper=F1 lower=F2 ...``."""
    files, sources = _split_sources(args.csv)
    opts = _options(args)
    if sources is None and (len(files) > 1 or Path(args.csv[0]).is_dir()):
        return _import_many(files, args, opts)
    first = Path(next(iter(sources.values()))) if sources else files[0]
    out = Path(args.out) if args.out else first.with_suffix(".spinrec")
    if out.is_dir():
        out = out / first.with_suffix(".spinrec").name
    if out.resolve() != first.resolve():  # the file itself: reading it says what it is
        refuse_existing(out, opts["overwrite"])
    res = import_csv(None if sources else files[0], out, sources=sources, **opts)
    _print_result(res)
    print(
        f"Replay it: {command('spinemon', 'replay', res.path)}   Report: {command('spinemon', 'report', res.path)}"
    )
    return 0
