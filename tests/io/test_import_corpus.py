"""Every format of the import corpus (tests/import_corpus.py: real loggers' export formats,
written from their documentation, filled with simulated motion) imports with the one command
docs/import.md gives, and replays with at least 99 % of its samples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spinemon.app import cli
from tests.import_corpus import FORMATS

DOC = Path(__file__).resolve().parents[2] / "docs" / "import.md"


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_corpus_format_imports_and_replays(name, tmp_path, capsys):
    argv, rows = FORMATS[name](tmp_path)
    out = tmp_path / f"{name}.spinrec"
    rc = cli.main(["import", *argv, "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert cli.main(["replay", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert stats["samples"] >= 0.99 * rows, (stats["samples"], rows, cap.out)
    assert stats["lost_samples"] <= 0.01 * rows


@pytest.mark.parametrize("name", list(FORMATS))
def test_docs_give_the_command_of_every_format(name, tmp_path):
    """docs/import.md gives each format the very command this suite runs (file names without the folder)."""
    import shlex

    text = DOC.read_text()
    section = re.search(rf"<!-- corpus: {re.escape(name)} -->(.*?)(?=<!-- corpus:|\Z)", text, re.S)
    assert section, f"docs/import.md has no section for {name}"
    argv, _ = FORMATS[name](tmp_path)
    cmd = "spinemon import " + " ".join(shlex.quote(a.replace(f"{tmp_path}/", "")) for a in argv)
    assert cmd in section.group(1)
