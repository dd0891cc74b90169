"""Host state writes never tear (issue 23, finding 9).

Two processes save the profile over and over while a third loads it: every
load reads a whole profile (one the writers wrote, never torn JSON), no save
fails, and no temporary file is left behind. The profile writer used one
fixed temporary name (``profile.json.tmp``): two writers renamed each
other's half-written file and failed with "No such file or directory".
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from spinemon.core.calibration import Calibration
from spinemon.io.atomic import atomic_write, atomic_write_text
from spinemon.io.profile_store import ProfileError, UserProfile, load_profile, save_profile

RUN_S = 2.5


def _profile(writer: int, k: int) -> UserProfile:
    # limit overrides that say who wrote them and when, padded so that a write takes more than one syscall's worth
    over = {"deadlift": {"flexion_share": 0.3 + 0.01 * (k % 40)}, "squat": {"flexion_share": 0.5}}
    for ex in ("row", "bench", "curl", "overhead_press", "plank", "lunge", "split_squat", "glute_bridge"):
        over.setdefault(ex, {})
    return UserProfile(limit_overrides=over, device=f"writer-{writer}-{k}" + "x" * 20000)


def _writer(path: str, writer: int, stop_at: float, q) -> None:
    fails, k = 0, 0
    while time.monotonic() < stop_at:
        try:
            save_profile(_profile(writer, k), path)
        except ProfileError:
            fails += 1
        k += 1
    q.put(("writer", writer, k, fails))


def _reader(path: str, stop_at: float, q) -> None:
    loads, torn, bad = 0, 0, []
    while time.monotonic() < stop_at:
        try:
            prof = load_profile(path)
        except ProfileError as e:
            torn += 1
            bad.append(str(e)[:120])
            continue
        loads += 1
        if prof.device is not None and not (prof.device.startswith("writer-") and prof.device.endswith("x" * 20000)):
            torn += 1
    q.put(("reader", loads, torn, bad[:3]))


def test_two_writers_and_a_reader_never_tear_the_profile(tmp_path):
    path = str(tmp_path / "profile.json")
    save_profile(_profile(9, 0), path)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    stop_at = time.monotonic() + RUN_S + 3.0  # spawned interpreters take a moment to start
    procs = [ctx.Process(target=_writer, args=(path, w, stop_at, q)) for w in (1, 2)] + [ctx.Process(target=_reader, args=(path, stop_at, q))]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    writers = [r for r in results if r[0] == "writer"]
    (reader,) = [r for r in results if r[0] == "reader"]
    print(f"writes {[w[2] for w in writers]}, failed {[w[3] for w in writers]}; loads {reader[1]}, torn {reader[2]}")
    assert all(w[2] > 20 for w in writers)  # they did overlap for a while
    assert reader[1] > 100
    assert [w[3] for w in writers] == [0, 0]
    assert reader[2] == 0, reader[3]
    assert sorted(os.listdir(tmp_path)) == ["profile.json"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "state.json"
    atomic_write_text(p, "old")

    def boom(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(p, boom)
    assert p.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["state.json"]


def test_a_profile_that_cannot_be_written_is_one_clear_error(tmp_path):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(ProfileError, match="cannot write profile"):
            save_profile(UserProfile(), tmp_path / "ro" / "profile.json")
        assert os.listdir(tmp_path / "ro") == []
    finally:
        os.chmod(tmp_path / "ro", 0o700)
