"""``python -m tests.bench [section ...]``: run benchmark sections, update docs/performance.md.

Throughput figures are single-threaded: before numpy is imported, BLAS/OpenMP
thread pools are limited to one thread, so every filter in the comparison runs
on one core. (The process is not pinned: on a shared machine a pinned process
can land on the busy core.)
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402

from tests.bench.report import Report  # noqa: E402

#: Section modules in tests.bench, run in this order; each has ``run(report, quick)``.
#: A listed module that does not exist (yet) is skipped, so a new section is one new file
#: (e.g. ``latency.py``) plus its name here.
SECTIONS = ["fusion", "realdata", "replay", "scale", "history_index", "startup", "lifting", "harsh", "latency", "fullchain", "targets"]


def available_sections() -> list[str]:
    """The sections of :data:`SECTIONS` whose module exists."""
    return [name for name in SECTIONS if importlib.util.find_spec(f"tests.bench.{name}") is not None]


def main(argv: list[str] | None = None) -> int:
    known = available_sections()
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("sections", nargs="*", default=known, help=f"sections to run (default: {' '.join(known)})")
    parser.add_argument("--quick", action="store_true", help="smaller streams, for a smoke test")
    parser.add_argument("--no-write", action="store_true", help="print only; do not touch docs/ or bench-results/")
    args = parser.parse_args(argv)
    for name in args.sections:
        if name not in known:
            parser.error(f"unknown section {name!r}; known: {', '.join(known)}")
    print(f"spinemon bench: BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}, load average {os.getloadavg()[0]:.2f}", flush=True)
    report = Report()
    for name in args.sections:
        importlib.import_module(f"tests.bench.{name}").run(report, quick=args.quick)
    if not args.no_write:
        report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
