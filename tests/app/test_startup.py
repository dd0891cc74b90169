"""Start-up (issue 27): the command line imports only what the command used
needs. ``spinemon --help`` imports neither numpy nor scipy, ``spinemon replay
--help`` no scipy and none of the other commands' modules; every command's
arguments are the same as when the whole parser is built at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spinemon.app import cli

PROBE = """
import contextlib, io, sys
from spinemon.app import cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        cli.main(sys.argv[1:])
    except SystemExit:
        pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"numpy", "scipy", "bleak", "serial", "matplotlib"})
app = sorted(m for m in sys.modules if m.startswith("spinemon.app.") and m not in ("spinemon.app.cli", "spinemon.app.argtypes", "spinemon.app.closed_stdout"))
print(",".join(heavy) + "|" + ",".join(app))
"""


def imported(*argv: str) -> tuple[list[str], list[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60, check=True).stdout
    heavy, app = out.strip().split("|")
    return [h for h in heavy.split(",") if h], [a for a in app.split(",") if a]


def test_help_imports_only_what_it_shows():
    assert imported("--help") == ([], ["spinemon.app.commands"])
    heavy, app = imported("replay", "--help")
    # the exercise names come from spinemon.core.detect (numpy); no other command, none of the replay code
    assert heavy == ["numpy"] and "spinemon.app.commands.replay" in app
    assert not [m for m in app if m.startswith("spinemon.app.commands.") and m != "spinemon.app.commands.replay"]
    assert not {"spinemon.app.replay", "spinemon.app.session", "spinemon.app.plotting", "spinemon.app.live"} & set(app)
    heavy, app = imported("journal", "--help")
    assert "spinemon.app.commands.journal" in app
    assert not [m for m in app if m.startswith("spinemon.app.commands.") and m != "spinemon.app.commands.journal"]


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "a.spinrec", "--json", "--exercise", "lunge left", "--limit", "deadlift.flexion_share=0.55"],
        ["simulate", "--exercise", "deadlift", "--reps", "3", "--fault", "rounding@2", "--out", "x.spinrec"],
        ["live", "--sim", "--exercise", "squat", "--speed", "4", "--no-rom"],
        ["history", "d", "--jobs", "1", "--json"],
        ["report", "a.spinrec", "--out", "r"],
        ["export", "a.spinrec", "--csv", "a.csv"],
    ],
)
def test_a_lazy_parser_parses_as_the_whole_one(argv):
    whole = vars(cli.build_parser().parse_args(argv))
    lazy = vars(cli.build_parser(lazy=True).parse_args(argv))
    for d in (whole, lazy):
        d.pop("func")  # the same command; lambdas differ by identity
    assert lazy == whole
