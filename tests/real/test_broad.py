"""Accuracy on the BROAD recordings (Laidig, Caruso, Cereatti, Seel, Data 6(7):72, 2021; CC BY 4.0).

The judge is VQF on the same data (computed here); the benchmark (python -m tests.bench fusion) reports the figures.
"""


import numpy as np
import pytest
import vqf
from conftest import require_numba

from tests.support import broad
from spinemon.core import fusion
from spinemon.core.fusion import GravityFilter, gravity

pytestmark = pytest.mark.broad


def test_reference_matches_accelerometer_at_rest(broad_dir):
    trial = broad.load_trial(broad_dir / "10_undisturbed_slow_translation_A.mat")
    ref = trial.reference_up
    rest = ~trial.movement & np.isfinite(ref).all(axis=1)
    err = broad.tilt_error_deg(trial.acc[rest], ref[rest])
    assert np.sqrt(np.mean(err**2)) < 1.0


TRIALS = [
    "01_undisturbed_slow_rotation_A",
    "06_undisturbed_fast_rotation_A",
    "10_undisturbed_slow_translation_A",
    "15_undisturbed_fast_translation_A",
    "18_undisturbed_fast_translation_with_breaks_B",
    "21_undisturbed_fast_combined",
    "24_disturbed_tapping_A",
    "26_disturbed_phone_vibration_A",
    "28_disturbed_stationary_magnet_A",
]


def vqf_up(trial) -> np.ndarray:
    """VQF's 6D estimate (Laidig & Seel 2023, default settings) as the up direction in the sensor frame."""
    out = vqf.VQF(1.0 / trial.rate).updateBatch(np.ascontiguousarray(trial.gyr), np.ascontiguousarray(trial.acc))
    return broad.up_from_quat(out["quat6D"])


def test_every_shared_trial_is_listed(broad_dir):
    assert sorted(p.stem for p in broad.list_trials(broad_dir)) == TRIALS


@pytest.mark.parametrize("name", TRIALS)
def test_causal_tilt_within_vqf_and_never_flips(broad_dir, name):
    """Every BROAD trial: RMSE within 1.25x of VQF's on the same data, and no sample off by more than 15 deg."""
    trial = broad.load_trial(broad_dir / f"{name}.mat")
    u = gravity(trial.acc, trial.gyr, trial.rate)
    assert np.isfinite(u).all()
    ours = broad.tilt_rmse_deg(trial, u)
    theirs = broad.tilt_rmse_deg(trial, vqf_up(trial))
    assert ours <= 1.25 * theirs, f"{name}: {ours:.2f} deg vs VQF {theirs:.2f} deg"
    ref = trial.reference_up
    finite = np.isfinite(ref).all(axis=1)
    worst = broad.tilt_error_deg(u[finite], ref[finite]).max()
    assert worst < 15.0, f"{name}: worst sample {worst:.1f} deg"


def test_streaming_frames_equal_batch_on_the_shaking_trial(broad_dir):
    """The trial that used to flip, fed as 8-sample frames (live): same estimate as the batch."""
    trial = broad.load_trial(broad_dir / "18_undisturbed_fast_translation_with_breaks_B.mat")
    f = GravityFilter(trial.rate)
    stream = np.concatenate([f.update(trial.acc[i : i + 8], trial.gyr[i : i + 8]) for i in range(0, len(trial.acc), 8)])
    assert np.abs(stream - gravity(trial.acc, trial.gyr, trial.rate)).max() < 1e-9


@pytest.mark.parametrize("name", TRIALS)
def test_compiled_kernel_equals_the_numpy_path_on_every_trial(broad_dir, name):
    """vqf-style, two implementations on the same recorded data: the per-sample
    kernel compiled by numba against the chunked numpy path, batch and as the
    live 8-sample frames (gravity, rest flags, bias, final state)."""
    require_numba()
    trial = broad.load_trial(broad_dir / f"{name}.mat")
    out = {}
    for engine in fusion.ENGINES:
        assert fusion.engine(engine) == engine
        batch = fusion.run(trial.acc, trial.gyr, trial.rate, engine=engine)
        f = GravityFilter(trial.rate, engine=engine)
        frames = np.concatenate([f.update(trial.acc[i : i + 8], trial.gyr[i : i + 8]) for i in range(0, len(trial.acc), 8)])
        out[engine] = (batch, frames)
    (cb, cf), (nb, nf) = out["compiled"], out["numpy"]
    assert np.abs(cb.gravity - nb.gravity).max() < 1e-9
    assert np.array_equal(cb.rest, nb.rest)
    assert np.abs(cb.bias - nb.bias).max() < 1e-12
    assert np.abs(cb.state.quat - nb.state.quat).max() < 1e-9
    assert np.array_equal(cb.gravity, cf)  # compiled: one per-sample loop whatever the split, bit for bit
    assert np.abs(nf - nb.gravity).max() < 1e-9


def test_loader_errors(tmp_path):
    with pytest.raises(broad.BroadError):
        broad.list_trials(tmp_path / "missing")
    bad = tmp_path / "x.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(broad.BroadError):
        broad.load_trial(bad)
