"""One version source for the host, the firmware's version stated beside it (issue 25)."""

from __future__ import annotations

import ast
import re
from importlib.metadata import version
from pathlib import Path

import spinemon

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_version_is_the_packages_one():
    # pyproject.toml reads spinemon.__version__ (dynamic): the installed metadata agrees
    assert version("spinemon") == spinemon.__version__
    assert "version =" not in (ROOT / "pyproject.toml").read_text().split("[project]")[1].split("[")[0]


def test_the_firmware_version_beside_the_host_is_the_firmwares_own():
    tree = ast.parse((ROOT / "firmware" / "device.py").read_text())
    fw = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "FW_VERSION" for t in n.targets)
    )
    assert ".".join(map(str, fw)) == spinemon.FIRMWARE_VERSION


def test_the_changelog_names_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(spinemon.__version__)}\]", text, re.M)
    assert "## [Unreleased]" in text
