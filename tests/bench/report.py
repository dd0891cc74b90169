"""Collects benchmark sections: markdown for docs/performance.md, JSON for bench-results/."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PERFORMANCE_MD = ROOT / "docs" / "performance.md"
RESULTS_DIR = ROOT / "bench-results"

_HEADER = "# Performance\n\nMeasured numbers only; each section says how to reproduce it.\n"


class Report:
    """Markdown sections (keyed by their ``## heading``) and JSON documents, written at the end."""

    def __init__(self) -> None:
        self.sections: dict[str, str] = {}
        self.results: dict[str, dict] = {}

    def section(self, heading: str, body: str) -> None:
        """Add (or replace) the section ``## heading`` with ``body`` (markdown); also printed."""
        self.sections[heading] = body.strip() + "\n"
        print(f"\n## {heading}\n\n{body.strip()}\n", flush=True)

    def json(self, name: str, data: dict) -> None:
        """Write ``bench-results/<name>.json`` at the end."""
        self.results[name] = data

    def write(self, markdown: Path = PERFORMANCE_MD, results_dir: Path = RESULTS_DIR) -> None:
        """Replace this report's sections in docs/performance.md, keeping everyone else's."""
        text = markdown.read_text() if markdown.exists() else _HEADER
        for heading, body in self.sections.items():
            block = f"## {heading}\n\n{body}"
            pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
            if pattern.search(text):
                text = pattern.sub(lambda _m: block + "\n", text, count=1)
            else:
                text = text.rstrip("\n") + "\n\n" + block
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text.rstrip("\n") + "\n")
        results_dir.mkdir(parents=True, exist_ok=True)
        for name, data in self.results.items():
            (results_dir / f"{name}.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
