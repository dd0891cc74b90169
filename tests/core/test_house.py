"""House rules of issue 25 that a reader would otherwise have to grep for:
no stage is deep-copied, nothing probes a transport for what it can do, and
every exception class of the package is defined in spinemon/errors.py."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import spinemon
from spinemon import errors
from spinemon.io.transport import LinkTransport, SimTransport, Transport

PACKAGE = Path(spinemon.__file__).resolve().parent


def _sources(folder: Path = PACKAGE):
    return sorted(p for p in folder.rglob("*.py"))


def test_no_stage_is_deep_copied():
    """Stages give their state as a value (core/stage.py): no deepcopy in core/."""
    hits = [f"{p.relative_to(PACKAGE)}:{i}" for p in _sources(PACKAGE / "core") for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"\bdeepcopy\b|__deepcopy__", line)]
    assert hits == []


def test_nothing_probes_a_transport_for_its_abilities():
    """The abilities are declared on Transport; nobody asks getattr/hasattr of a transport."""
    probe = re.compile(r"\b(getattr|hasattr)\(\s*(self\.)?(transport|link|_transport)\b")
    hits = [f"{p.relative_to(PACKAGE)}:{i}" for p in _sources() for i, line in enumerate(p.read_text().splitlines(), 1) if probe.search(line)]
    assert hits == []
    for name in ("connected", "stats", "pending", "can_request_status", "request_status", "read_status"):
        assert hasattr(Transport, name), name
    assert LinkTransport.can_request_status and not SimTransport.can_request_status


def test_every_exception_class_of_the_package_is_defined_in_errors_py():
    """One error tree in one module: a class deriving from an exception is defined only in errors.py."""
    names = {n for n in dir(errors) if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), BaseException)}
    defined_elsewhere = []
    for p in _sources():
        if p.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(b, ast.Name) and (b.id in names or b.id.endswith(("Error", "Exception"))))
                or (isinstance(b, ast.Attribute) and b.attr.endswith(("Error", "Exception")))
                for b in node.bases
            ):
                defined_elsewhere.append(f"{p.relative_to(PACKAGE)}: {node.name}")
    assert defined_elsewhere == []
    assert all(issubclass(getattr(errors, n), errors.SpinemonError) for n in errors.__all__)


def test_the_old_public_error_names_still_import_from_where_they_were():
    old = {
        "spinemon.core.fusion": ["FusionInputError"],
        "spinemon.core.angles": ["AngleInputError"],
        "spinemon.core.reps": ["RepInputError"],
        "spinemon.io.profile_store": ["ProfileError"],
        "spinemon.app.cli": ["UsageError"],
        "spinemon.app.commands": ["UsageError"],
        "spinemon.app.history": ["UsageProblem"],
        "spinemon.app.csv_import": ["CsvImportError", "CsvUsageError"],
        "spinemon.app.view": ["ViewUsageError"],
        "spinemon.app.journal": ["JournalError"],
    }
    for module, names in old.items():
        m = importlib.import_module(module)
        for n in names:
            assert getattr(m, n) is getattr(errors, n), (module, n)
