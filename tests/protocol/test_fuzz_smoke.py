"""A short run of every fuzz target (the full campaign is ``make fuzz``:
``python -m tests.fuzz.campaign``, see docs/reliability.md "## Fuzzing"), and
every saved crashing input in tests/fuzz/crashes/ replayed as a regression
test.

Each smoke run checks that the target saw its inputs, that nothing crashed or
hung (except KNOWN_BUGS, reported to the lead), and that the mutator reached
past the CRC: inputs were accepted AND rejected for several reasons.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz import campaign, mpy_target, targets
from spinemon.errors import RecordingError

CRASH_DIR = Path(__file__).resolve().parents[1] / "fuzz" / "crashes"

# crash signature prefix -> the bug, reported to the lead with a suggested fix
KNOWN_BUGS: dict[str, str] = {}

SMOKE = {
    "protocol": (3000, 150),
    "cobs_stream": (500, 40),
    "frame_decoder": (2000, 40),
    "recording": (300, 30),
    "pipeline": (1500, 0),
    "mpy_command": (6000, 0),
    "mpy_protocol": (2000, 0),
}


def _known(sig: str) -> bool:
    return any(sig.startswith(k) for k in KNOWN_BUGS)


@pytest.fixture(scope="module")
def smoke_results() -> dict[tuple[str, str], campaign.Result]:
    camp = campaign.Campaign(seed=7, crash_dir=None, log=lambda s: None)
    return {(r.target, r.engine): r for r in camp.run(SMOKE)}


def _cases():
    out = []
    for key, (n_mut, n_hyp) in SMOKE.items():
        marks = [pytest.mark.micropython] if key.startswith("mpy_") else []
        out.append(pytest.param(key, "mutator", n_mut, id=f"{key}-mutator", marks=marks))
        if n_hyp:
            out.append(pytest.param(key, "hypothesis", n_hyp, id=f"{key}-hypothesis"))
    return out


@pytest.mark.parametrize("key, engine, n", _cases())
def test_fuzz_target_smoke(key: str, engine: str, n: int, smoke_results) -> None:
    if key.startswith("mpy_") and not mpy_target.mpy_runner.micropython_binary():
        mpy_target.mpy_runner.require(None, "micropython")
    r = smoke_results[(key, engine)]
    assert r.inputs == n
    assert len(r.times_ns) == n  # every input timed
    unknown = {sig: k for sig, k in r.signatures.items() if not _known(sig)}
    assert not unknown, f"{key}: crashes {unknown}; outcomes {dict(r.outcomes)}"
    assert r.hangs == 0
    assert r.max_ms < campaign.HANG_S * 1000
    accepted = r.inputs - r.rejected - r.crashes
    if key == "pipeline":  # valid frames only: every one is taken and the session goes on
        assert r.rejected == 0 and accepted == n, dict(r.outcomes)
        assert r.outcomes["accepted:monitoring"] > n // 2, dict(r.outcomes)
        return
    assert accepted > 0 and r.rejected > 0, dict(r.outcomes)
    if engine == "mutator":
        assert len(r.outcomes) >= 4, dict(r.outcomes)  # several reasons: the mutations reach past the CRC


def test_mutated_frames_get_past_the_crc() -> None:
    """Most mutated frames are re-sealed: bad_crc is a minority outcome."""
    from fuzz import corpus
    from fuzz.mutator import Mutator

    frames = corpus.encoder_frames()
    m = Mutator(3)
    t = targets.ProtocolTarget()
    outcomes = [t.run(m.frame_from(frames)) for _ in range(3000)]
    assert outcomes.count("rejected:bad_crc") < 0.3 * len(outcomes)
    assert sum(o.startswith("accepted") for o in outcomes) > 0.1 * len(outcomes)
    reasons = {o for o in outcomes if o.startswith("rejected")}
    assert {"rejected:bad_length", "rejected:out_of_range", "rejected:unknown_opcode", "rejected:wrong_version"} <= reasons


def test_docs_section_is_replaced_not_duplicated(tmp_path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# Reliability\n\n## Nothing lost\n\nkeep me\n\n## Fuzzing\n\nold figures\n\n## Later\n\nkeep me too\n")
    campaign.write_docs("## Fuzzing\n\nnew figures\n", doc)
    text = doc.read_text()
    assert text.count("## Fuzzing") == 1 and "new figures" in text and "old figures" not in text
    assert "keep me\n" in text and "## Later\n\nkeep me too" in text


# ---- saved crashing inputs: regression tests -----------------------------------------------------
def _signature_of(path: Path) -> str:
    for line in path.with_suffix(".txt").read_text().splitlines():
        if line.startswith("signature: "):
            return line[len("signature: ") :]
    return ""


def _crash_files() -> list:
    out = []
    for p in sorted(CRASH_DIR.glob("*/*.bin")):
        sig = _signature_of(p)
        known = [v for k, v in KNOWN_BUGS.items() if sig.startswith(k)]
        marks = [pytest.mark.xfail(strict=True, reason=known[0])] if known else []
        out.append(pytest.param(p, id=f"{p.parent.name}/{p.stem}", marks=marks))
    return out


def _replay(target: str, data: bytes, tmp_path: Path) -> None:
    if target == "protocol":
        targets.ProtocolTarget().run(data)
    elif target == "cobs_stream":
        targets.CobsStreamTarget().run((data, [data[i : i + 1] for i in range(len(data))]))
    elif target == "frame_decoder":
        targets.FrameDecoderTarget().run((data, 0.01))
    elif target == "recording":
        p = tmp_path / "crash.spinrec"
        p.write_bytes(data)
        try:
            from spinemon.io.recording import load

            load(p)
        except RecordingError:
            pass
    elif target.startswith("mpy_"):
        kind, payload = data[0], data[1:]
        model = mpy_target.CommandModel() if target == "mpy_command" else mpy_target.ProtocolModel()
        want = model.expect(kind, payload)
        with mpy_target.MpyServer(30.0) as srv:
            ((o, us),) = srv.batch([(kind, payload)])
        assert not o.startswith("X") and o in want, (o, want)
    else:
        raise AssertionError(f"unknown target directory {target}")


@pytest.mark.parametrize("path", _crash_files())
def test_saved_crash_does_not_crash(path: Path, tmp_path: Path) -> None:
    _replay(path.parent.name, path.read_bytes(), tmp_path)
