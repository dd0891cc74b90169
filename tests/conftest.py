import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the repository root: test and bench support (tests.support.emulated_ble, tests.bench) and hil/
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BROAD_DIR = SHARED_DATA / "broad"
GAIT_DIR = SHARED_DATA / "gait-l5"


def pytest_addoption(parser):
    parser.addoption("--hil-port", default=None, help="serial URL of a real spinemon board for hil-marked tests")


def _shared(folder: Path) -> Path:
    """A folder of ../shared/data: skipped when absent, except under CI=true, where it must be there."""
    if not (folder / "README.md").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real recordings missing at {folder}: under CI=true these tests must run, not skip")
        pytest.skip(f"real recordings not found at {folder}")
    return folder


def require_extra(module: str, extra: str) -> None:
    """An optional extra's module the test needs: skipped without it, except
    under CI=true, where the test extra installs it and the test must run."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{module} is part of the test extra: under CI=true this test must run, not skip")
        pytest.skip(f"{module} not installed (pip install -e '.[{extra}]')")


def require_numba() -> None:
    """The compiled kernels (fusion, reps) need numba (the `fast` extra)."""
    require_extra("numba", "fast")


@pytest.fixture(scope="session")
def broad_dir() -> Path:
    """The BROAD recordings (Laidig et al. 2021, CC BY 4.0)."""
    return _shared(BROAD_DIR)


@pytest.fixture(scope="session")
def gait_dir() -> Path:
    """The gait-l5 recordings (Voisard et al., IPOL, GNU AGPL 3.0)."""
    return _shared(GAIT_DIR)


@pytest.fixture(scope="session")
def _private_roots(tmp_path_factory):
    """One folder per worker for the tests' private homes, numbered by a counter
    (``tmp_path_factory.mktemp`` lists its whole base folder on every call:
    three calls per test grew to seconds of CPU per worker)."""
    import itertools

    return tmp_path_factory.mktemp("private"), itertools.count()


@pytest.fixture(autouse=True)
def _private_profile(_private_roots, monkeypatch):
    """Every test gets its own user profile and spinemon folder: the suite never reads or writes ~/.spinemon."""
    root, counter = _private_roots
    mine = root / str(next(counter))
    mine.mkdir()
    (mine / "profile").mkdir()
    monkeypatch.setenv("SPINEMON_PROFILE", str(mine / "profile" / "profile.json"))
    # and its own spinemon folder: `live` without --out records into SPINEMON_HOME/sessions, never ~/.spinemon
    (mine / "spinemon-home").mkdir()
    monkeypatch.setenv("SPINEMON_HOME", str(mine / "spinemon-home"))
    # nor a config file of the user's (spinemon.app.config): none, unless a test writes one here
    (mine / "config").mkdir()
    monkeypatch.setenv("SPINEMON_CONFIG", str(mine / "config" / "config.toml"))


# ---- where the suite's time goes (SPINEMON_TEST_TIMES=FILE) ---------------------------------
# Each test's wall time, the worker's own CPU time and its waited-for children's (MicroPython,
# `spinemon` subprocesses), one tab-separated line per test appended to FILE: a test whose wall
# time is far above its CPU time waits on the clock (a paced link, the firmware in real time) and
# belongs in the real-time lane (marker `realtime`, see tests/lanes.py).
_TIMES = os.environ.get("SPINEMON_TEST_TIMES")
if _TIMES:
    import resource
    import time as _time

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0, p0 = _time.perf_counter(), _time.process_time()
        yield
        t1, p1 = _time.perf_counter(), _time.process_time()
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        with open(_TIMES, "a", encoding="utf-8") as f:
            f.write(f"{item.nodeid}\t{t1 - t0:.3f}\t{p1 - p0:.3f}\t{children:.3f}\n")
