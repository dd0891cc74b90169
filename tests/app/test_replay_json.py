"""`spinemon replay --json` keeps its shape (issue 25: the summary got a type).

The summary is typed inside the program (`spinemon.core.session_summary`) and
turned into a dict only at the recording and JSON boundary. What users and
scripts read, `replay --json`, must not change with that: the keys, their
order and the kind of every value are pinned here against
`tests/fixtures/replay-json-shapes.json`, written by the code *before* the
summary was typed, for old recordings (format 1, one resumed in two
segments) and for simulated sessions that reach every section (sets, reps,
holds, sides, held-back faults, one sensor). Values are not pinned (rep and
calibration rules may change them); their kinds are. Keys are only ever
appended: one sensor's ``stats`` gained ``lean_baseline`` and ``lean_notes``
(issue 22 item 4, the lifter's usual lean).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from spinemon.app import cli
from spinemon.app.simrun import run_simulated
from spinemon.io import sim

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHAPES = FIXTURES / "replay-json-shapes.json"


def shape(v: Any) -> Any:
    """The keys (in order) and the kind of every value; a list's distinct
    element shapes in the order they first appear."""
    if isinstance(v, dict):
        return {"{}": [[k, shape(x)] for k, x in v.items()]}
    if isinstance(v, list):
        out: list = []
        for x in v:
            s = shape(x)
            if s not in out:
                out.append(s)
        return {"[]": out}
    return "null" if v is None else type(v).__name__


def simulated(folder: Path) -> dict[str, Path]:
    """Small sessions that reach every summary section (about 2 s)."""
    mixed = [
        sim.SetSpec("deadlift", 3, {2: "rounding"}, rest_s=9.0, walk_during_rest=True, plate_pickup="rounded"),
        sim.SetSpec("lunge", 4, side="alternate", asymmetry_deg=6.0, rest_s=3.0),
        sim.SetSpec("plank", 1, hold_s=6.0, rest_s=2.0),
    ]
    one = [sim.SetSpec("squat", 3, {3: "rounding"}, rest_s=2.0)]
    paths = {"mixed": folder / "mixed.spinrec", "one-sensor": folder / "one.spinrec"}
    run_simulated(mixed, 7, out=paths["mixed"])
    run_simulated(one, 8, out=paths["one-sensor"], sim_settings=sim.SimSettings(imus=("upper",)))
    return paths


def recordings(folder: Path) -> dict[str, Path]:
    paths = {"recording-v1": FIXTURES / "recording-v1.spinrec"}
    for name in ("segmented-v1.spinrec", "segmented-v1.spinrec.seg2"):  # replay finds the segment beside it
        shutil.copy(FIXTURES / name, folder / name)
    paths["segmented-v1"] = folder / "segmented-v1.spinrec"
    return {**paths, **simulated(folder)}


def replay_json(path: Path) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["replay", "--json", str(path)]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("replay-json")
    return {name: replay_json(p) for name, p in recordings(folder).items()}


def test_replay_json_keeps_its_keys_and_kinds(outputs):
    pinned = json.loads(SHAPES.read_text())
    assert sorted(outputs) == sorted(pinned)
    for name, text in outputs.items():
        assert shape(json.loads(text)) == pinned[name], f"replay --json of {name} changed shape"


def test_the_sessions_reach_every_section(outputs):
    """The pin means something only if the sections it pins are filled."""
    mixed = json.loads(outputs["mixed"])
    assert mixed["sets"] and mixed["reps"] and mixed["events"] and mixed["sides"]
    assert mixed["held_back"]["faults"], "a rounded plate pickup while walking is a held-back fault"
    assert len(json.loads(outputs["segmented-v1"])["stats"]["segments"]) == 2
    assert json.loads(outputs["one-sensor"])["stats"]["angle"] != "lumbar flexion"


def test_the_shape_check_sees_a_change():
    a = {"sets": [{"set": 1, "reps": 3}], "stats": {"t": 1.5, "x": None}}
    assert shape(a) != shape({"stats": {"t": 1.5, "x": None}, "sets": [{"set": 1, "reps": 3}]})  # order
    assert shape(a) != shape({"sets": [{"set": 1, "reps": 3.0}], "stats": {"t": 1.5, "x": None}})  # kind
    assert shape(a) != shape({"sets": [{"set": 1}], "stats": {"t": 1.5, "x": None}})  # a key gone


if __name__ == "__main__":  # write the pinned shapes (only when the output is meant to change)
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        got = {name: shape(json.loads(replay_json(p))) for name, p in recordings(Path(d)).items()}
    SHAPES.write_text(json.dumps(got, indent=1) + "\n")
    print(f"wrote {SHAPES}", file=sys.stderr)
