"""Benchmarks: ``python -m tests.bench`` (needs the optional extra ``bench``).

Each section is a module with ``run(report, quick)`` listed in
``tests.bench.__main__.SECTIONS``; :class:`Report` collects the markdown
for docs/performance.md and the JSON for bench-results/.
"""

from tests.bench.report import Report

__all__ = ["Report"]
