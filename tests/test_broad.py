"""Accuracy on the BROAD recordings (Laidig, Caruso, Cereatti, Seel, Data 6(7):72, 2021; CC BY 4.0).

Loose bounds only: the benchmark (python -m spinemon.bench) reports the measured figures.
"""

import numpy as np
import pytest

from spinemon import broad
from spinemon.fusion import gravity

pytestmark = pytest.mark.broad


def test_reference_matches_accelerometer_at_rest(broad_dir):
    trial = broad.load_trial(broad_dir / "10_undisturbed_slow_translation_A.mat")
    ref = trial.reference_up
    rest = ~trial.movement & np.isfinite(ref).all(axis=1)
    err = broad.tilt_error_deg(trial.acc[rest], ref[rest])
    assert np.sqrt(np.mean(err**2)) < 1.0


@pytest.mark.parametrize(
    "name",
    ["06_undisturbed_fast_rotation_A", "21_undisturbed_fast_combined", "24_disturbed_tapping_A"],
)
def test_causal_tilt_rmse_on_broad(broad_dir, name):
    trial = broad.load_trial(broad_dir / f"{name}.mat")
    u = gravity(trial.acc, trial.gyr, trial.rate)
    assert np.isfinite(u).all()
    assert broad.tilt_rmse_deg(trial, u) < 2.0


def test_loader_errors(tmp_path):
    with pytest.raises(broad.BroadError):
        broad.list_trials(tmp_path / "missing")
    bad = tmp_path / "x.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(broad.BroadError):
        broad.load_trial(bad)
