"""The folder layout shows the data flow (docs/architecture.md), and the
imports keep to it: the stages (spinemon.core) import nothing from the
transports and files (spinemon.io) or the commands (spinemon.app), io nothing
from app; nothing in the installed package imports test or bench support."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "host" / "spinemon"
ALLOWED = {
    "core": {"spinemon", "spinemon.errors", "spinemon.core"},
    "io": {"spinemon", "spinemon.errors", "spinemon.core", "spinemon.io"},
    "app": {"spinemon", "spinemon.errors", "spinemon.core", "spinemon.io", "spinemon.app"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports (absolute names; `from spinemon import x` gives spinemon.x)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            if node.module == "spinemon":
                out += [(node.lineno, f"spinemon.{a.name}") for a in node.names]
    return out


def _layer(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "spinemon":
        return None
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] in ("core", "io", "app", "errors") else "spinemon"


def test_the_package_is_core_io_and_app():
    subpackages = sorted(p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert subpackages == ["app", "core", "io"]
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert top == ["__init__.py", "errors.py"]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_follow_the_data_flow(layer):
    bad = []
    for path in sorted((PKG / layer).glob("*.py")):
        for line, name in _imports(path):
            if name.startswith("tests") or (name.startswith("hil") and path.name != "hil_launcher.py"):  # the launcher runs hil/ of a checkout
                bad.append(f"{path.name}:{line} imports {name} (test/bench support)")
            got = _layer(name)
            if got is not None and got not in ALLOWED[layer]:
                bad.append(f"{path.name}:{line} imports {name}")
    assert not bad, f"spinemon.{layer} reaches against the flow: " + "; ".join(bad)


def test_the_checker_sees_a_backward_import(tmp_path):
    """The rule above can fail: a stage importing the CLI is caught."""
    f = tmp_path / "stage.py"
    f.write_text("from spinemon.app import cli\nimport numpy\nfrom spinemon import errors\n")
    layers = [_layer(n) for _, n in _imports(f)]
    assert "spinemon.app" in layers and "spinemon.app" not in ALLOWED["core"]


#: the stages of spinemon.core in the order data flows through them (docs/architecture.md)
STAGES = ["stream", "intake", "gravity", "phases", "segment", "watch", "summary", "pipeline"]


def _stage_imports(path: Path) -> list[str]:
    return [n.split(".")[2] for _, n in _imports(path) if n.startswith("spinemon.core.") and n.split(".")[2] in STAGES]


def test_each_stage_imports_only_the_stages_before_it():
    """Data flows one way: a stage may use what upstream stages give it (a
    Fused block, a calibration step), never reach downstream; only the
    pipeline sees them all."""
    bad = []
    for k, stage in enumerate(STAGES):
        for other in _stage_imports(PKG / "core" / f"{stage}.py"):
            if STAGES.index(other) >= k:
                bad.append(f"{stage} imports {other}")
    assert not bad, "; ".join(bad)
    assert sorted(_stage_imports(PKG / "core" / "pipeline.py")) == sorted(set(STAGES) - {"pipeline"})
    # the helpers a stage wraps (fusion, calibration, reps, detect...) import no stage downstream of intake either
    for path in sorted((PKG / "core").glob("*.py")):
        if path.stem not in STAGES:
            assert not [s for s in _stage_imports(path) if s != "stream"], f"{path.name} imports a stage"
