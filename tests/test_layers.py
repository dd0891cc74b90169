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


def _against_the_flow(layer: str, pkg: Path = PKG) -> list[str]:
    """Every import in ``pkg/layer`` (any depth, lazy ones too) that reaches against the flow."""
    bad = []
    for path in sorted((pkg / layer).rglob("*.py")):
        for line, name in _imports(path):
            if name.split(".")[0] in ("tests", "hil", "conftest"):  # spinemon-hil runs hil/ of a checkout by its path
                bad.append(f"{path.name}:{line} imports {name} (test/bench support)")
            got = _layer(name)
            if got is not None and got not in ALLOWED[layer]:
                bad.append(f"{path.name}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_follow_the_data_flow(layer):
    bad = _against_the_flow(layer)
    assert not bad, f"spinemon.{layer} reaches against the flow: " + "; ".join(bad)


def test_the_checker_sees_a_backward_import(tmp_path):
    """The rule above can fail: a stage importing the CLI is caught."""
    f = tmp_path / "stage.py"
    f.write_text("from spinemon.app import cli\nimport numpy\nfrom spinemon import errors\n")
    layers = [_layer(n) for _, n in _imports(f)]
    assert "spinemon.app" in layers and "spinemon.app" not in ALLOWED["core"]


@pytest.mark.parametrize(
    ("layer", "text"),
    [
        ("app", "def main():\n    from hil.__main__ import main\n"),  # app -> the bench, even lazily
        ("io", "from spinemon.app.live import LiveOptions\n"),
        ("core", "import spinemon.io.recording\n"),
        ("core", "from spinemon.app import cli\n"),
    ],
)
def test_the_checker_sees_an_arrow_up(tmp_path, layer, text):
    """Each kind of arrow up is caught by the same check the package passes."""
    pkg = tmp_path / "spinemon"
    for sub in ALLOWED:
        (pkg / sub).mkdir(parents=True)
    (pkg / layer / "ok.py").write_text("import numpy\nfrom spinemon.errors import SpinemonError\n")
    assert _against_the_flow(layer, pkg) == []
    (pkg / layer / "bad.py").write_text(text)
    assert [b.split(":")[0] for b in _against_the_flow(layer, pkg)] == ["bad.py"]


# ---------------------------------------------------------------------------
# no circles: a module of the package never imports itself back through others
# ---------------------------------------------------------------------------
def _module_name(path: Path, pkg: Path) -> str:
    parts = list(path.relative_to(pkg.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(pkg: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports, anywhere in the file (a
    lazy import inside a function is an arrow too); ``from a import b``
    counts as ``a.b`` when that is a module, else as ``a``."""
    files = {_module_name(p, pkg): p for p in pkg.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module for a in node.names]
            for n in names:
                while n and n not in files:
                    n = n.rpartition(".")[0]
                if n and n != mod and n != pkg.name:
                    deps.add(n)
        graph[mod] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_circle_among_the_modules():
    """report <-> history was one; a circle makes two modules one job in two files."""
    assert _cycles(_import_graph(PKG)) == []


def test_the_circle_check_sees_a_circle(tmp_path):
    pkg = tmp_path / "spinemon"
    (pkg / "app").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "app" / "__init__.py").write_text("")
    (pkg / "app" / "report.py").write_text("from spinemon.app.history import build\n")
    (pkg / "app" / "history.py").write_text("def plot():\n    from spinemon.app import report\n")
    (pkg / "app" / "cli.py").write_text("from spinemon.app import report\n")
    assert _cycles(_import_graph(pkg)) == [["spinemon.app.history", "spinemon.app.report"]]


# ---------------------------------------------------------------------------
# one job per module in app/
# ---------------------------------------------------------------------------
#: app modules allowed past APP_MODULE_LINES, each with its one job; a module
#: that grows past it without an entry here fails (split it along its seams)
APP_MODULE_LINES = 450
LONG_APP_MODULES = {
    "csv_import/table.py": "an imported table read, streamed: its encoding, layout (metadata, header, units rows, delimiter, decimal mark), time formats",
    "csv_import/series.py": "the imported files' samples as series on one time line (upper/lower, acc/gyr, long files pivoted; the time base fixed)",
    "report.py": "one session's report: tables, verdict, terminal and HTML page",
    "export.py": "a recording -> the per-sample trace, as CSV or Parquet",
    "history.py": "weeks of sessions: the facts per exercise and week, their text and HTML",
    "plotting.py": "every matplotlib figure (report and history)",
    "red_flags.py": "red-flag symptoms in journal text (patterns, negation) and the worsening trend",
    "session_summary.py": "the session summary's types and their way to and from dicts",
}


def test_long_app_modules_have_one_named_job():
    long = {p.relative_to(PKG / "app").as_posix(): n for p in (PKG / "app").rglob("*.py") if (n := len(p.read_text().splitlines())) > APP_MODULE_LINES}
    assert sorted(long) == sorted(LONG_APP_MODULES), f"app modules over {APP_MODULE_LINES} lines: {long}"


def test_command_lines_live_in_app_commands():
    """A command's parser and entry point sit in spinemon.app.commands, one
    module per command, never mixed into the code the command runs."""
    bad = []
    for path in sorted((PKG / "app").glob("*.py")):
        tree = ast.parse(path.read_text())
        defs = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if path.name not in ("cli.py", "hil_launcher.py") and defs & {"add_arguments", "main"}:
            bad.append(path.name)
    assert not bad, f"command entry points outside app/commands: {bad}"
    for path in sorted((PKG / "app" / "commands").glob("*.py")):
        if path.name != "__init__.py":
            defs = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
            assert {"add_arguments", "main"} <= defs, path.name


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
