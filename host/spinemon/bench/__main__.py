"""``python -m spinemon.bench [section ...]``: run benchmark sections, update docs/performance.md."""

from __future__ import annotations

import argparse
import importlib

from spinemon.bench.report import Report

SECTIONS = ["fusion"]  # modules in spinemon.bench with run(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spinemon.bench", description=__doc__)
    parser.add_argument("sections", nargs="*", default=SECTIONS, help=f"sections to run (default: {' '.join(SECTIONS)})")
    parser.add_argument("--quick", action="store_true", help="smaller streams, for a smoke test")
    parser.add_argument("--no-write", action="store_true", help="print only; do not touch docs/ or bench-results/")
    args = parser.parse_args(argv)
    report = Report()
    for name in args.sections:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        importlib.import_module(f"spinemon.bench.{name}").run(report, quick=args.quick)
    if not args.no_write:
        report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
