import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BROAD_DIR = SHARED_DATA / "broad"


def pytest_addoption(parser):
    parser.addoption("--hil-port", default=None, help="serial URL of a real spinemon board for hil-marked tests")


@pytest.fixture
def broad_dir() -> Path:
    """The BROAD recordings; tests that need them skip when they are absent."""
    if not (BROAD_DIR / "README.md").exists():
        pytest.skip(f"BROAD data not found at {BROAD_DIR}")
    return BROAD_DIR
