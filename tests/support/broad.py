"""Loader and tilt-error metric for the BROAD recordings.

BROAD - Berlin Robust Orientation Estimation Assessment Dataset:
D. Laidig, M. Caruso, A. Cereatti, T. Seel, "BROAD - A Benchmark for Robust
Inertial Orientation Estimation", Data 6(7):72, 2021, doi:10.3390/data6070072.
Licence CC BY 4.0: credit the authors wherever results on this data are shown.

The project keeps a subset in ``../shared/data/broad`` (see its README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinemon.errors import SpinemonError

__all__ = [
    "CREDIT",
    "DEFAULT_DIR",
    "BroadError",
    "BroadTrial",
    "list_trials",
    "load_trial",
    "load_trials",
    "tilt_error_deg",
    "tilt_rmse_deg",
    "up_from_quat",
]

CREDIT = (
    'BROAD dataset: D. Laidig, M. Caruso, A. Cereatti, T. Seel, "BROAD - A Benchmark for Robust '
    'Inertial Orientation Estimation", Data 6(7):72, 2021, doi:10.3390/data6070072 (CC BY 4.0)'
)

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "broad"
"""Where the project keeps the BROAD subset (``<repo>/../shared/data/broad``)."""


class BroadError(SpinemonError):
    """A BROAD file is missing or does not hold the expected arrays."""


@dataclass(frozen=True)
class BroadTrial:
    """One BROAD trial (IMU samples and the optical reference).

    Attributes:
        name: file stem, e.g. ``"01_undisturbed_slow_rotation_A"``.
        rate: sample rate, Hz.
        acc: (N, 3) accelerometer, m/s^2.
        gyr: (N, 3) gyroscope, rad/s.
        opt_quat: (N, 4) reference orientation w, x, y, z (sensor -> ENU); NaN where markers were hidden.
        movement: (N,) bool, True in movement phases.
    """

    name: str
    rate: float
    acc: np.ndarray
    gyr: np.ndarray
    opt_quat: np.ndarray
    movement: np.ndarray

    @property
    def reference_up(self) -> np.ndarray:
        """(N, 3) reference gravity direction (up) in the sensor frame; NaN rows where opt_quat is missing."""
        return up_from_quat(self.opt_quat)


def list_trials(directory: str | Path = DEFAULT_DIR) -> list[Path]:
    """The .mat files of the BROAD subset, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BroadError(f"BROAD directory not found: {directory}")
    return sorted(directory.glob("*.mat"))


def load_trial(path: str | Path) -> BroadTrial:
    """Load one BROAD .mat file."""
    from scipy.io import loadmat  # scipy.io is only needed here
    from scipy.io.matlab import MatReadError

    path = Path(path)
    try:
        d = loadmat(path, squeeze_me=True)
    except (OSError, ValueError, MatReadError) as exc:
        raise BroadError(f"cannot read BROAD file {path}: {exc}") from None
    try:
        acc = np.ascontiguousarray(d["imu_acc"], dtype=np.float64)
        gyr = np.ascontiguousarray(d["imu_gyr"], dtype=np.float64)
        quat = np.ascontiguousarray(d["opt_quat"], dtype=np.float64)
        movement = np.asarray(d["movement"]).astype(bool)
        rate = float(d["sampling_rate"])
    except KeyError as exc:
        raise BroadError(f"{path} is not a BROAD trial: missing {exc}") from None
    n = acc.shape[0]
    if acc.shape != (n, 3) or gyr.shape != (n, 3) or quat.shape != (n, 4) or movement.shape != (n,):
        raise BroadError(f"{path}: inconsistent array shapes")
    return BroadTrial(path.stem, rate, acc, gyr, quat, movement)


def load_trials(directory: str | Path = DEFAULT_DIR) -> list[BroadTrial]:
    """All trials of the BROAD subset in ``directory``."""
    return [load_trial(p) for p in list_trials(directory)]


def up_from_quat(quat: np.ndarray) -> np.ndarray:
    """Up direction (world +Z) expressed in the sensor frame, for sensor->world quaternions (N, 4) w, x, y, z."""
    q = np.asarray(quat, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    up = np.stack([2.0 * (x * z - w * y), 2.0 * (y * z + w * x), w * w - x * x - y * y + z * z], axis=-1)
    return up / np.linalg.norm(up, axis=-1, keepdims=True)


def tilt_error_deg(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Angle (deg) between estimated and reference gravity directions, per sample (any lengths)."""
    e = np.asarray(estimate, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    cross = np.linalg.norm(np.cross(e, r), axis=-1)
    dot = np.einsum("...i,...i->...", e, r)
    return np.degrees(np.arctan2(cross, dot))


def tilt_rmse_deg(trial: BroadTrial, estimate_up: np.ndarray) -> float:
    """Inclination RMSE (deg) over the movement phases where the reference is finite."""
    ref = trial.reference_up
    mask = trial.movement & np.isfinite(ref).all(axis=1)
    if not mask.any():
        raise BroadError(f"{trial.name}: no movement samples with a reference")
    err = tilt_error_deg(np.asarray(estimate_up)[mask], ref[mask])
    return float(np.sqrt(np.mean(err * err)))
