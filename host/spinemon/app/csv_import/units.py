"""Units and checks of imported samples: the accelerometer's and the
gyroscope's scale (named, or found from 1 g at rest and from the
accelerometer's tilt while the sensor turns), a settling start, single
glitched cells, and resampling onto a regular time base.

Part of :mod:`spinemon.app.csv_import` (its module docstring: what files look like).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from spinemon.app.csv_import.columns import ACC_UNITS, GYR_SENSITIVITIES, GYR_UNITS, _show
from spinemon.app.words import plural
from spinemon.core.stream import G
from spinemon.errors import CsvImportError, CsvUsageError


def _unit(name: str, table: dict, what: str) -> float | None:
    try:
        return table[name.strip().lower()]
    except KeyError:
        names = [k for k in table if "^" not in k and "_" not in k and k != "ms2"]
        raise CsvUsageError(f"unknown {what} unit {name!r}; use {' or '.join(names)}") from None


def _windows(x: np.ndarray, n_win: int) -> np.ndarray:
    n_win = max(2, min(n_win, len(x)))
    k = len(x) // n_win
    return x[: k * n_win].reshape(k, n_win) if k else x[None, :]


def _rest_magnitude(acc: np.ndarray, n_win: int) -> float:
    """|a| at rest, in the file's units: the median magnitude over the quieter half of the
    one-second windows. (The quietest tenth alone was fooled by a logger whose first seconds
    read a quarter of the scale: a quarter of the signal has a quarter of the noise.)"""
    mag = np.linalg.norm(acc, axis=1)
    mag = mag[np.isfinite(mag)]
    if len(mag) == 0:
        return 0.0
    win = _windows(mag, n_win)
    if len(win) < 2:
        return float(np.median(mag))
    spread = win.std(axis=1) / np.maximum(np.median(win, axis=1), 1e-12)
    quiet = spread <= np.median(spread)
    return float(np.median(np.median(win[quiet], axis=1)))


def _settling(acc: np.ndarray, rate: float, rest: float) -> int:
    """Rows at the start whose magnitude reads a fraction (or a multiple) of the rest of the
    file: a logger whose range is still being set. 0 when there are none."""
    mag = np.linalg.norm(acc, axis=1)
    n = len(mag)
    w = max(5, int(rate // 4))
    if n < 8 * w or not rest > 0:
        return 0
    k = n // w
    med = np.median(mag[: k * w].reshape(k, w), axis=1) / rest
    off = (med < 0.7) | (med > 1.45)
    if not off[0]:
        return 0
    j = int(np.argmin(off)) if not off.all() else k
    if j == k or j * w > n // 2:  # most of the file: not a settling start (a wrong unit, said elsewhere)
        return 0
    # the first row of the first good stretch of 5 rows
    start = max(0, (j - 1) * w)
    r = mag[start : (j + 1) * w] / rest
    good = (r > 0.7) & (r < 1.45)
    for i in range(len(r) - 4):
        if good[i : i + 5].all():
            return start + i
    return j * w


def _acc_scale(path: Path, unit: str, scale: str | float | None, raw_rest: float, notes: list[str]) -> float:
    """Multiplier from the file's accelerometer unit to m/s^2."""
    factor = _unit(unit, ACC_UNITS, "accelerometer")
    if factor is not None:
        if scale is not None:
            raise CsvUsageError(
                "--acc-scale is for --acc-unit counts; leave it out with --acc-unit g or m/s2"
            )
        return factor
    if scale is None:
        raise CsvUsageError("--acc-unit counts needs --acc-scale N (counts per g) or --acc-scale auto")
    if isinstance(scale, str) and scale.strip().lower() == "auto":
        if not raw_rest > 0:
            raise CsvImportError(
                f"{path}: the accelerometer reads zero at rest; --acc-scale auto cannot work (give --acc-scale N)"
            )
        notes.append(f"accelerometer scale from the magnitude at rest: {raw_rest:.4g} counts per g")
        return G / raw_rest
    n = _positive(scale, "--acc-scale", "counts per g")
    return G / n


def _positive(scale, flag: str, what: str) -> float:
    try:
        n = float(scale)
    except (TypeError, ValueError):
        raise CsvUsageError(f"{flag} {_show(str(scale))}: give {what} (a number > 0) or auto") from None
    if not (math.isfinite(n) and n > 0):
        raise CsvUsageError(f"{flag} {_show(str(scale))}: give {what} (a number > 0) or auto")
    return n


def _tilt_ratio(acc_si: np.ndarray, gyr: np.ndarray, rate: float) -> tuple[float, int]:
    """How fast the gyroscope says the sensor turns (in its units, about the axes across
    gravity) over how fast the accelerometer's gravity direction tilts (rad/s), on the
    quasi-static samples that tilt; (ratio, samples used). 1 for a gyroscope in rad/s."""
    n = len(acc_si)
    w = max(3, int(round(rate / 10)))
    if n < 4 * w:
        return math.nan, 0
    kern = np.ones(w) / w
    a = np.stack([np.convolve(acc_si[:, k], kern, mode="same") for k in range(3)], axis=1)
    g = np.stack([np.convolve(gyr[:, k], kern, mode="same") for k in range(3)], axis=1)
    mag = np.linalg.norm(a, axis=1)
    u = a / np.maximum(mag, 1e-9)[:, None]
    du = np.gradient(u, 1.0 / rate, axis=0)
    tilt = np.linalg.norm(du, axis=1)
    perp = g - np.sum(g * u, axis=1)[:, None] * u
    turn = np.linalg.norm(perp, axis=1)
    ok = (np.abs(mag / G - 1.0) < 0.05) & (tilt > 0.15) & (tilt < 6.0) & np.isfinite(turn)
    ok[: 2 * w] = False
    ok[-2 * w :] = False
    used = int(ok.sum())
    if used < max(10, int(rate / 2)):
        return math.nan, used
    return float(np.median(turn[ok] / tilt[ok])), used


def _repair(x: np.ndarray, bad: np.ndarray) -> None:
    """Replace ``bad`` rows of one column by linear interpolation from the good ones (in place)."""
    good = ~bad
    if not good.any():
        return
    i = np.arange(len(x))
    x[bad] = np.interp(i[bad], i[good], x[good])


def _rare(x: np.ndarray) -> int:
    """How many bad cells of ``x`` (rows x axes) may be repaired from their
    neighbours: 1 in 1000 rows (at least 3), never more than 1 % of the values
    (a short file has none to spare)."""
    return min(max(3, len(x) // 1000), x.size // 100)


def _glitches(
    path: Path,
    what: str,
    cols: list[str],
    x: np.ndarray,
    bound: float,
    lines: np.ndarray,
    unit: str,
    notes: list[str],
    advice: str,
) -> None:
    """Single glitched cells (beyond ``bound``, or not finite): few are replaced from their
    neighbours with a note; many mean a wrong unit or column, refused with ``advice``."""
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isfinite(x) | (np.abs(x) > bound)
    count = int(bad.sum())
    if not count:
        return
    allowed = _rare(x)
    r, c = np.argwhere(bad)[0]
    where = f"line {int(lines[r])}, column {cols[c]!r}"
    val = x[r, c]
    shown = "empty" if not np.isfinite(val) and math.isnan(val) else f"{val:.3g} {unit}"
    if count > allowed:
        raise CsvImportError(
            f"{path}: {count} {what} values are beyond {bound:.4g} {unit} or missing (first at {where}: {shown}); too many to be glitches: {advice}"
        )
    for k in range(x.shape[1]):
        _repair(x[:, k], bad[:, k])
    notes.append(
        f"{plural(count, 'glitched ' + what + ' value')} (beyond {bound:.4g} {unit}, or empty; first at {where}: {shown}) replaced from their neighbours"
    )


def _gyr_hint(ratio: float) -> str:
    if 40 < ratio < 80:
        return "is the unit dps? (--gyr-unit dps)"
    if 1 / 80 < ratio < 1 / 40:
        return "is the unit rad/s? (--gyr-unit rad/s)"
    if ratio > 8:
        return "are these raw counts? (--gyr-unit counts --gyr-scale auto, or --gyr-scale N counts per dps, e.g. 131 for an MPU-6050 at 250 dps)"
    return "check --gyr-unit and the columns mapped to gx, gy, gz"


def _gyr_factor(
    path: Path, unit: str, scale, acc_si: np.ndarray, gyr_raw: np.ndarray, rate: float, notes: list[str]
) -> float:
    """Multiplier from the file's gyroscope unit to rad/s."""
    factor = _unit(unit, GYR_UNITS, "gyroscope")
    if factor is not None:
        if scale is not None:
            raise CsvUsageError(
                "--gyr-scale is for --gyr-unit counts; leave it out with --gyr-unit dps or rad/s"
            )
        return factor
    if scale is None:
        raise CsvUsageError(
            "--gyr-unit counts needs --gyr-scale N (counts per dps, e.g. 131 for an MPU-6050 at 250 dps) or --gyr-scale auto"
        )
    if isinstance(scale, str) and scale.strip().lower() == "auto":
        ratio, used = _tilt_ratio(acc_si, np.where(np.isfinite(gyr_raw), gyr_raw, 0.0), rate)
        if not math.isfinite(ratio) or ratio <= 0:
            raise CsvImportError(
                f"{path}: --gyr-scale auto needs the sensor to tilt for a while (found {used / rate:.1f} s); give --gyr-scale N (counts per dps)"
            )
        per_dps = ratio * math.pi / 180.0
        near = min(GYR_SENSITIVITIES, key=lambda s: abs(math.log(per_dps / s)))
        if abs(per_dps / near - 1.0) < 0.12:
            notes.append(
                f"gyroscope scale from the accelerometer's tilt: {per_dps:.4g} counts per dps, taken as the standard {near:g} (full scale {32768 / near:.0f} dps)"
            )
            per_dps = near
        else:
            notes.append(
                f"gyroscope scale from the accelerometer's tilt: {per_dps:.4g} counts per dps (no standard sensitivity within 12 %)"
            )
        return math.pi / 180.0 / per_dps
    return math.pi / 180.0 / _positive(scale, "--gyr-scale", "counts per dps")


def _resample(t: np.ndarray, values: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation onto an even grid from t[0]; grid points farther than 1.5 source
    intervals from any source row are left out (a gap stays a gap). Returns (t, values, source row)."""
    period = 1.0 / rate
    grid = t[0] + np.arange(int(math.floor((t[-1] - t[0]) / period + 1e-9)) + 1) * period
    j = np.clip(np.searchsorted(t, grid), 1, len(t) - 1)
    lo, hi = t[j - 1], t[j]
    span = np.where(hi > lo, hi - lo, 1.0)
    w = np.clip((grid - lo) / span, 0.0, 1.0)[:, None]
    out = values[j - 1] * (1.0 - w) + values[j] * w
    typical = float(np.median(np.diff(t))) if len(t) > 1 else period
    near = np.minimum(np.abs(grid - lo), np.abs(hi - grid)) <= 1.5 * max(typical, period)
    src = np.where(w[:, 0] < 0.5, j - 1, j)
    return grid[near], out[near], src[near]
