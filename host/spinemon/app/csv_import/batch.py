"""Several files imported in parallel (``spinemon import`` on a folder or
many files): one worker's file and its row.

Part of :mod:`spinemon.app.csv_import` (its module docstring: what files look like).
"""

from __future__ import annotations

from spinemon.app.csv_import.importer import import_csv
from spinemon.errors import SpinemonError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".log")


def import_one_row(path: str, out: str, opts: dict) -> dict:
    """One file of a batch (runs in a worker process): its row, or its error."""
    row: dict = {"recording": out, "file": path}
    try:
        res = import_csv(path, out, **opts)
    except SpinemonError as e:
        row["error"] = str(e)
        return row
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {e}"
        return row
    row.update(
        samples=res.samples,
        rows=res.rows,
        rate_hz=round(res.rate_hz, 3),
        notes=len(res.notes),
        error=None,
        kept=f"{100.0 * res.samples / max(res.rows, 1):.1f}%",
    )
    return row


def _run_pair(pair: str, opts: dict) -> dict:
    f, o = pair.split("\x00")
    return import_one_row(f, o, opts)
