"""Rep segmentation's per-sample loop compiled (numba) and as plain Python:
the same numbers, bit for bit, on the same data (as vqf tests its C++ and
Python implementations against each other). On simulated sessions with
faults, walking and unlabelled sets, and on real walks (gait-l5, Voisard et
al., IPOL, GNU AGPL 3.0; credit in README.md)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import require_numba
from spinemon.core import rep_kernel, reps
from spinemon.io import sim
from spinemon.core.pipeline import PipelineSettings
from spinemon.io.recording import load
from spinemon.app.replay import replay
from spinemon.app.simrun import run_simulated


@pytest.fixture(autouse=True)
def _needs_compiled():
    require_numba()


def _replay_with(rec, settings, advance, monkeypatch):
    """Replay with the segmenter's loop swapped; returns everything it found, rejects included."""
    monkeypatch.setattr(reps.K, "advance", advance)
    found = []
    real_init = reps.RepSegmenter.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        found.append(self)

    monkeypatch.setattr(reps.RepSegmenter, "__init__", init)
    r = replay(rec, settings)
    r.summary["device"] = None
    rejected = [(c.t_start, c.t_end, c.peak_excursion_deg, c.reason) for seg in found for c in seg.rejected]
    return json.dumps(r.summary, sort_keys=True, default=str), rejected, [seg._F.copy() for seg in found]


def _compare(rec, settings, monkeypatch):
    compiled = _replay_with(rec, settings, rep_kernel.advance, monkeypatch)
    python = _replay_with(rec, settings, rep_kernel.advance_python, monkeypatch)
    assert compiled[0] == python[0]
    assert compiled[1] == python[1]
    assert len(compiled[2]) == len(python[2])
    for a, b in zip(compiled[2], python[2]):
        assert np.array_equal(a, b, equal_nan=True)  # the state itself, to the last bit
    return json.loads(compiled[0]), compiled[1]


def test_compiled_and_python_loops_agree_on_simulated_sessions(tmp_path, monkeypatch):
    path = tmp_path / "s.spinrec"
    sets = [
        sim.SetSpec("deadlift", 5, {3: "rounding"}, rest_s=20.0, walk_during_rest=True),
        sim.SetSpec("squat", 4, {2: "creep"}),
        sim.SetSpec("overhead_press", 5, {4: "arching"}),
    ]
    run_simulated(sets, 5, out=path, rom=False, labels=False)
    rec = load(path)
    summary, rejected = _compare(rec, PipelineSettings.from_dict(rec.header["settings"]), monkeypatch)
    assert len(summary["reps"]) >= 12  # reps were found: the loop was exercised, not just idle
    assert any(r[3] == "walking" for r in rejected)  # walking between sets vetoed a candidate: that branch ran too


@pytest.mark.parametrize("trial", [3, 30])
def test_compiled_and_python_loops_agree_on_real_walks(gait_dir, tmp_path, monkeypatch, trial):
    from spinemon.app import cli

    files = sorted(gait_dir.glob("*_lb.txt"))
    assert len(files) > trial
    path = tmp_path / "gait.spinrec"
    cols = "ax=Acc_X,ay=Acc_Y,az=Acc_Z,gx=Gyr_X,gy=Gyr_Y,gz=Gyr_Z"
    assert cli.main(["import", str(files[trial]), "--columns", cols, "--out", str(path)]) == 0
    rec = load(path)
    s = replace(PipelineSettings.from_dict(rec.header["settings"]), exercise="curl", monitor_between_sets=True)
    summary, rejected = _compare(rec, s, monkeypatch)
    assert rejected  # the walk made candidates the rules threw out: the branches ran
    assert summary["reps"] == []
