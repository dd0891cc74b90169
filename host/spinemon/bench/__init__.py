"""Benchmarks: ``python -m spinemon.bench`` (needs the optional extra ``bench``).

Each section is a module with ``run(report, quick)`` listed in
``spinemon.bench.__main__.SECTIONS``; :class:`Report` collects the markdown
for docs/performance.md and the JSON for bench-results/.
"""

from spinemon.bench.report import Report

__all__ = ["Report"]
