"""Real loggers' files -> a spinemon recording (``spinemon import``).

One job: read a table of IMU samples as another logger wrote it, fix what can
be fixed with one note per fix, refuse what cannot with one line that says
what to do, and write a normal recording (real SAMPLES frames, int16 with
ranges chosen to fit the data, RX records with synthetic host times, label
records from set/exercise columns, header ``source`` = ``"import"``, the
header's host time = the session's own date when the file gives one).

The file is streamed (read row by row with the standard library's ``csv``
module; only the mapped columns are kept, as floats), so memory follows the
samples kept, not the file's text. What a file may look like (each fix is
reported in :attr:`ImportResult.notes`; the formats of real loggers are listed
in docs/import.md):

- any encoding: UTF-8 (with or without a BOM), UTF-16 with a BOM, else
  Windows-1252/Latin-1 (a ``°`` in a header), or ``encoding=`` named;
- metadata lines before the column header (``Acquisition frequency: 100 Hz``),
  an Excel ``sep=`` line, unit rows under the header (``CAL``, ``m/(s^2)``),
  quoted header names, a nameless first column of row numbers (R's
  ``write.csv``), ``NA`` in unused columns; tab, comma, semicolon, bar or
  space delimiters (found from the data rows), decimal commas, blank lines,
  trailing delimiters, extra columns, a cut-off last row;
- no header row at all: columns are named by position (``ax=2``, from 1);
- several people or sets in one file: ``where=[("subject", "3")]``;
- time as seconds (``t``), split across columns (``t_s``, ``t_ms``, ``t_us``,
  ``t_ns``, summed), clock times (``12:00:00.125``), dates and times (ISO 8601
  ``2026-12-06T10:15:30.125Z``, ``06.12.2026 10:15:30,125``) or Unix times:
  a date becomes the session's date (``history`` files it in its week);
  a time in whole seconds (many rows per second) gets its rate from the row
  count; rows out of order are sorted, repeats dropped, irregular timestamps
  resampled;
- the accelerometer in g, m/s^2 or raw counts (``acc_scale`` N or auto), the
  gyroscope in dps, rad/s or raw counts (``gyr_scale`` N counts per dps or
  auto: from the accelerometer's tilt while the sensor turns). Units are
  checked: |a| at rest must be 1 g, and the gyroscope must turn as fast as the
  accelerometer tilts;
- single glitched cells (a 1e6 among normal values, ``inf``, an empty cell)
  are replaced from their neighbours and counted; a logger whose first seconds
  read a fraction of the rest (its range still settling) has them dropped;
- two IMUs in two files (``upper=F1 lower=F2``), accelerometer and gyroscope
  in two files (``acc=F1 gyr=F2``: phone apps), or a long ("tidy") file with
  one row per reading and sensor type/id columns, pivoted into upper/lower.

The package's parts, in the order a file goes through them: ``columns``
(the mapping and shared constants), ``table`` (reading the file, streamed),
``units`` (scales, glitches, resampling), ``series`` (the files' samples on
one time line), ``importer`` (:func:`import_csv`), ``batch`` (many files in
parallel). The names below are the public ones, as before the split.
"""

# the names the package's users import (``__all__``), and the ones the
# export and import commands take from it (importable here as before the split)
from spinemon.app.csv_import.batch import TABLE_SUFFIXES as TABLE_SUFFIXES
from spinemon.app.csv_import.batch import _run_pair as _run_pair
from spinemon.app.csv_import.batch import import_one_row as import_one_row
from spinemon.app.csv_import.columns import AXES as AXES
from spinemon.app.csv_import.columns import SENSORS as SENSORS
from spinemon.app.csv_import.columns import (
    ColumnMapping,
    default_mapping,
    parse_axes,
    parse_columns,
    parse_date,
    parse_where,
)
from spinemon.app.csv_import.columns import _sample_column as _sample_column
from spinemon.app.csv_import.importer import import_csv
from spinemon.app.csv_import.series import SOURCE_KEYS as SOURCE_KEYS
from spinemon.app.csv_import.series import ImportResult
from spinemon.errors import CsvImportError, CsvUsageError

__all__ = [
    "ColumnMapping",
    "CsvImportError",
    "CsvUsageError",
    "ImportResult",
    "default_mapping",
    "import_csv",
    "parse_axes",
    "parse_columns",
    "parse_date",
    "parse_where",
]
