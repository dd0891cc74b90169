"""Every CLI command, given a missing, empty, truncated, corrupt or foreign
file, or bad flags, exits non-zero with ONE line on stderr that says what is
wrong and gives a hint (``--help`` or a suggestion), and prints nothing on
stdout for a usage error (issue 8).

Table-driven: add rows to CASES for a new command. ``test_every_command_has_bad_input_rows``
reads ``spinemon --help`` and fails for a command without a row.

Each row runs the CLI in its own process, as ``python -m spinemon.app.cli`` does
(``runpy`` with ``__main__``), with its own exit status, stdout and stderr
files. To keep the suite fast, one helper process imports the heavy modules
once and forks a child per row (a few at a time);
``test_forked_runs_match_real_subprocesses`` checks that a forked run and a
real ``python -m spinemon.app.cli`` subprocess give the same exit status and stderr.
Every run gets SPINEMON_HOME in a temporary folder, so nothing touches ~.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

MAGIC = b"SPINEMON-REC\x00\x01\r\n"
HINT = re.compile(r"--help|e\.g\.|\b(choose|use|create|record one|delete|check|try|run|give|pass|must be)\b", re.IGNORECASE)
USAGE = 2  # argparse / bad command line (spinemon.app.cli.EXIT_USAGE)
ERROR = 1  # anything else (spinemon.app.cli.EXIT_ERROR)
WORKERS = 3


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # FILE:<name> is replaced by the path of that fixture file
    exit: int  # USAGE or ERROR
    says: str  # regex: what is wrong, as the one line must say it
    xfail: str | None = None  # a known failure, reported to the lead (strict: a fix makes it pass, then drop this)

    @property
    def usage(self) -> bool:
        return self.exit == USAGE


CASES = [
    # -- no command / unknown command ------------------------------------------------------
    Case("top-no-command", (), USAGE, r"no command given"),
    Case("top-unknown-command", ("bogus",), USAGE, r"invalid choice: 'bogus'"),
    Case("top-bad-flag", ("--bogus",), USAGE, r"unrecognized arguments: --bogus|no command"),
    # -- replay: files ------------------------------------------------------------------------
    Case("replay-missing-file", ("replay", "FILE:missing.spinrec"), ERROR, r"missing\.spinrec.*no such file"),
    Case("replay-empty-file", ("replay", "FILE:empty.spinrec"), ERROR, r"empty"),
    Case("replay-truncated-magic", ("replay", "FILE:cut-magic.spinrec"), ERROR, r"cut off"),
    Case("replay-truncated-header", ("replay", "FILE:cut-header.spinrec"), ERROR, r"header|cut off|truncated"),
    Case("replay-corrupt", ("replay", "FILE:corrupt.spinrec"), ERROR, r"header|corrupt"),
    Case("replay-foreign-text", ("replay", "FILE:notes.txt"), ERROR, r"not a spinemon recording"),
    Case("replay-foreign-png", ("replay", "FILE:picture.png"), ERROR, r"not a spinemon recording"),
    Case("replay-directory", ("replay", "FILE:a-directory"), ERROR, r"holds no \.spinrec recordings"),
    Case("replay-strict-truncated", ("replay", "--strict", "FILE:cut-tail.spinrec"), ERROR, r"ends mid-record|truncated|cut off"),
    # -- replay: flags -------------------------------------------------------------------------
    Case("replay-no-file", ("replay",), USAGE, r"required: file"),
    Case("replay-bad-flag", ("replay", "FILE:empty.spinrec", "--bogus"), USAGE, r"unrecognized arguments: --bogus"),
    # -- report / export: a recording in ------------------------------------------------------
    *[
        Case(f"{cmd}-{what}", (cmd, f"FILE:{name}", *extra), ERROR, says)
        for cmd, extra in (("report", ()), ("export", ("--csv",)))
        for what, name, says in (
            ("missing-file", "missing.spinrec", r"no such file"),
            ("empty-file", "empty.spinrec", r"empty"),
            ("foreign-file", "picture.png", r"not a spinemon recording"),
            ("directory", "a-directory", r"is a directory|holds no \.spinrec recordings"),
        )
    ],
    Case("report-corrupt", ("report", "FILE:corrupt.spinrec"), ERROR, r"header|corrupt"),
    Case("export-corrupt", ("export", "FILE:corrupt.spinrec", "--csv"), ERROR, r"header|corrupt"),
    Case("report-no-file", ("report",), USAGE, r"required: FILE"),
    Case("export-bad-flag", ("export", "FILE:empty.spinrec", "--bogus"), USAGE, r"unrecognized arguments: --bogus"),
    # -- import: a CSV in ---------------------------------------------------------------------------
    Case("import-missing-file", ("import", "FILE:missing.csv"), ERROR, r"no such file|not found|does not exist"),
    Case("import-empty-file", ("import", "FILE:empty.spinrec"), ERROR, r"empty|no header|no rows"),
    Case("import-foreign-file", ("import", "FILE:picture.png"), ERROR, r"csv|column|header|not"),
    Case("import-directory", ("import", "FILE:a-directory"), ERROR, r"directory"),
    Case("import-bad-rate", ("import", "FILE:notes.txt", "--rate", "fast"), USAGE, r"--rate"),
    Case("import-no-file", ("import",), USAGE, r"required: FILE"),
    # -- demo -------------------------------------------------------------------------------------
    Case("demo-negative-seed", ("demo", "--seed", "-1"), USAGE, r"--seed.*0 \.\. 4294967295"),
    Case("demo-bad-speed", ("demo", "--speed", "fast"), USAGE, r"--speed.*not a number"),
    Case("demo-bad-flag", ("demo", "--bogus"), USAGE, r"unrecognized arguments: --bogus"),
    Case(
        "demo-out-is-a-file",
        ("demo", "--out", "FILE:notes.txt"),
        ERROR,
        r"notes\.txt.*(exists|not a directory|folder)",
    ),
    # -- simulate ---------------------------------------------------------------------------------
    Case("simulate-no-exercise", ("simulate", "--out", "FILE:new.spinrec"), USAGE, r"required: --exercise"),
    Case("simulate-unknown-exercise", ("simulate", "--exercise", "squash", "--out", "FILE:new.spinrec"), USAGE, r"invalid choice: 'squash'"),
    Case("simulate-bad-fault", ("simulate", "--exercise", "deadlift", "--fault", "rounding", "--out", "FILE:new.spinrec"), USAGE, r"invalid fault"),
    Case("simulate-zero-reps", ("simulate", "--exercise", "curl", "--reps", "0", "--out", "FILE:new.spinrec"), USAGE, r"--reps.*1 \.\. 100"),
    Case("simulate-too-many-reps", ("simulate", "--exercise", "curl", "--reps", "100000", "--out", "FILE:new.spinrec"), USAGE, r"--reps.*1 \.\. 100"),
    Case("simulate-zero-sets", ("simulate", "--exercise", "curl", "--sets", "0", "--out", "FILE:new.spinrec"), USAGE, r"--sets.*at least 1"),
    Case("simulate-bad-rate", ("simulate", "--exercise", "curl", "--rate", "0", "--out", "FILE:new.spinrec"), USAGE, r"--rate.*20 \.\. 1000 Hz"),
    # -- the one overwrite rule: an existing output is a command-line mistake (exit 2) unless --force ------
    Case("simulate-out-exists", ("simulate", "--exercise", "curl", "--out", "FILE:notes.txt"), USAGE, r"already exists.*--force"),
    Case("export-csv-exists", ("export", "FILE:whole.spinrec", "--csv", "FILE:notes.txt"), USAGE, r"notes\.txt already exists.*--force"),
    Case("export-parquet-exists", ("export", "FILE:whole.spinrec", "--parquet", "FILE:old.parquet"), USAGE, r"old\.parquet already exists.*--force"),
    Case("export-csv-is-a-folder", ("export", "FILE:whole.spinrec", "--csv", "FILE:a-directory"), USAGE, r"a-directory is a folder"),
    Case("report-out-has-files", ("report", "FILE:whole.spinrec", "--out", "FILE:full-dir"), USAGE, r"full-dir already exists and holds files.*--force"),
    Case("history-png-exists", ("history", "FILE:whole.spinrec", "--png", "FILE:picture.png"), USAGE, r"picture\.png already exists.*--force"),
    Case("import-out-exists", ("import", "FILE:notes.txt", "--out", "FILE:whole.spinrec"), USAGE, r"whole\.spinrec already exists.*--force"),
    Case("live-force-and-resume", ("live", "--sim", "--out", "FILE:whole.spinrec", "--force", "--resume"), USAGE, r"--force.*--resume"),
    # -- more command-line mistakes that exit 2 (issue 26) ----------------------------------------------
    Case("export-no-format", ("export", "FILE:whole.spinrec"), USAGE, r"choose an output format"),
    Case("import-two-files-one-recording", ("import", "FILE:notes.txt", "FILE:old.parquet", "--out", "FILE:new.spinrec"), USAGE, r"several files give several recordings"),
    Case("import-one-file-twice", ("import", "FILE:notes.txt", "FILE:notes.txt"), USAGE, r"two files would both be written"),
    # two files imported again: their recordings exist (each was a failed row and exit 1 before issue 26)
    Case("import-two-files-again", ("import", "FILE:walk-a.csv", "FILE:walk-b.csv"), USAGE, r"walk-a\.spinrec already exists.*--force"),
    Case("journal-add-undecodable-note", ("journal", "add", "--pain", "3", "--note", "\udcff"), USAGE, r"--note.*not text"),
    Case("simulate-out-no-dir", ("simulate", "--exercise", "curl", "--out", "FILE:no-such-dir/x.spinrec"), ERROR, r"does not exist"),
    # -- live ---------------------------------------------------------------------------------------
    Case("live-no-source", ("live",), USAGE, r"one of the arguments --address --name --port --sim is required"),
    Case("live-bad-speed", ("live", "--sim", "--speed", "fast"), USAGE, r"--speed"),
    Case("live-existing-out", ("live", "--sim", "--out", "FILE:empty.spinrec"), USAGE, r"already exists.*--resume.*--force"),
    Case("live-negative-speed", ("live", "--sim", "--speed", "-1", "--out", "FILE:new.spinrec"), USAGE, r"--speed.*above 0"),
    Case("live-unknown-exercise", ("live", "--sim", "--exercise", "bogus"), USAGE, r"invalid choice: 'bogus'"),
    # -- unilateral work: a side goes with the one-sided lifts only ------------------------------
    Case("live-unknown-unilateral", ("live", "--sim", "--exercise", "lunges left"), USAGE, r"invalid choice: 'lunges left'"),
    Case("live-side-on-bilateral", ("live", "--sim", "--exercise", "squat:left"), USAGE, r"squat is done with both sides"),
    Case("simulate-unknown-unilateral", ("simulate", "--exercise", "single_leg_dl", "--out", "FILE:new.spinrec"), USAGE, r"invalid choice: 'single_leg_dl'"),
    Case("simulate-side-on-bilateral", ("simulate", "--exercise", "squat", "--side", "left", "--out", "FILE:new.spinrec"), USAGE, r"--side.*go with the unilateral lifts"),
    Case("simulate-bad-side", ("simulate", "--exercise", "lunge", "--side", "up", "--out", "FILE:new.spinrec"), USAGE, r"--side: invalid choice: 'up'"),
    Case("simulate-bad-asymmetry", ("simulate", "--exercise", "lunge", "--asymmetry", "45", "--out", "FILE:new.spinrec"), USAGE, r"--asymmetry.*-20 \.\. 20 deg"),
    Case("live-out-foreign", ("live", "--sim", "--out", "FILE:notes.txt"), USAGE, r"already exists|not a spinemon recording"),
    Case(
        "live-missing-port",
        ("live", "--port", "FILE:no-such-tty"),
        ERROR,
        r"cannot open",
    ),
    # -- history ---------------------------------------------------------------------------------
    Case("history-missing-dir", ("history", "FILE:no-such-dir"), USAGE, r"no-such-dir does not exist"),
    Case("history-empty-dir", ("history", "FILE:a-directory"), ERROR, r"is empty"),
    Case("history-foreign-file", ("history", "FILE:notes.txt"), ERROR, r"the recording could not be read.*not a spinemon recording"),
    Case("history-corrupt", ("history", "FILE:corrupt.spinrec"), ERROR, r"could not be read|could be read"),
    Case("history-missing-journal", ("history", "FILE:whole.spinrec", "--journal", "FILE:missing.jsonl"), USAGE, r"--journal .*does not exist"),
    Case("history-journal-directory", ("history", "FILE:whole.spinrec", "--journal", "FILE:a-directory"), ERROR, r"is a directory"),
    Case("history-png-no-folder", ("history", "FILE:whole.spinrec", "--png", "FILE:no-such-dir/h.png"), USAGE, r"--png .*does not exist"),
    Case("history-bad-jobs", ("history", "--jobs", "0"), USAGE, r"--jobs"),
    Case("report-bad-jobs", ("report", "x.spinrec", "--jobs", "0"), USAGE, r"--jobs"),
    Case("history-bad-flag", ("history", "--bogus"), USAGE, r"unrecognized arguments: --bogus"),
    # -- journal --------------------------------------------------------------------------------
    Case("journal-no-action", ("journal",), USAGE, r"required: ACTION"),
    Case("journal-add-no-pain", ("journal", "add"), USAGE, r"required: --pain"),
    Case("journal-add-pain-out-of-range", ("journal", "add", "--pain", "11"), USAGE, r"--pain.*0 \(none\) \.\. 10"),
    Case("journal-add-bad-time", ("journal", "add", "--pain", "3", "--at", "yesterday"), USAGE, r"--at.*yesterday"),
    Case("journal-add-missing-session", ("journal", "add", "--pain", "3", "--session", "FILE:missing.spinrec"), ERROR, r"no such file"),
    Case("journal-add-foreign-session", ("journal", "add", "--pain", "3", "--session", "FILE:notes.txt"), ERROR, r"not a spinemon recording"),
    Case("journal-add-no-dir", ("journal", "add", "--pain", "3", "--journal", "FILE:no-such-dir/j.jsonl"), ERROR, r"does not exist"),
    Case("journal-list-bad-weeks", ("journal", "list", "--weeks", "-1"), USAGE, r"--weeks"),
    Case("journal-summary-directory", ("journal", "summary", "--journal", "FILE:a-directory"), ERROR, r"is a directory"),
    Case(
        "journal-list-foreign-file",
        ("journal", "list", "--journal", "FILE:picture.png"),
        ERROR,
        r"not a .*journal|unreadable",
    ),
    # -- calibrate ------------------------------------------------------------------------------------
    Case("calibrate-no-source", ("calibrate",), USAGE, r"one of the arguments --address --name --port --sim is required"),
    Case("calibrate-bad-flag", ("calibrate", "--sim", "--bogus"), USAGE, r"unrecognized arguments: --bogus"),
    Case("calibrate-foreign-profile", ("calibrate", "--sim", "--profile", "FILE:picture.png"), ERROR, r"profile|picture\.png"),
    Case("calibrate-bad-limit", ("calibrate", "--sim", "--limit", "deadlift.flexion_share"), USAGE, r"limit|flexion_share"),
    Case("live-bad-limit", ("live", "--sim", "--limit", "nope"), USAGE, r"--limit.*EXERCISE\.LIMIT=VALUE"),
    Case("live-zero-speed", ("live", "--sim", "--speed", "0"), USAGE, r"--speed.*above 0"),
    Case("live-view-port-word", ("live", "--sim", "--view", "--view-port", "web"), USAGE, r"--view-port.*not a whole number"),
    Case("live-view-port-zero", ("live", "--sim", "--view", "--view-port", "0"), USAGE, r"--view-port.*1 \.\. 65535"),
    Case("live-view-port-big", ("live", "--sim", "--view", "--view-port", "70000"), USAGE, r"--view-port.*1 \.\. 65535"),
    Case("live-view-port-no-view", ("live", "--sim", "--view-port", "8080"), USAGE, r"--view-port needs --view"),
    # -- scan ----------------------------------------------------------------------------------------
    Case("scan-bad-timeout", ("scan", "--timeout", "soon"), USAGE, r"--timeout"),
    Case("scan-negative-timeout", ("scan", "--timeout", "-1"), USAGE, r"--timeout.*above 0"),
    Case("scan-bad-flag", ("scan", "--bogus"), USAGE, r"unrecognized arguments: --bogus"),
    # -- config and completion -------------------------------------------------------------------
    Case("config-bad-flag", ("config", "--bogus"), USAGE, r"unrecognized arguments: --bogus"),
    Case("completion-unknown-shell", ("completion", "fish"), USAGE, r"invalid choice: 'fish'"),
    Case("completion-no-shell", ("completion",), USAGE, r"required: shell"),
]


def _make_files(d: Path) -> None:
    (d / "empty.spinrec").write_bytes(b"")
    (d / "cut-magic.spinrec").write_bytes(MAGIC[:9])
    # a real header record cut in half
    (d / "cut-header.spinrec").write_bytes(MAGIC + b"\xa5\x5a\x03\x40\x00\x00\x00" + b"\x00" * 8 + b'{"type":"header"')
    (d / "corrupt.spinrec").write_bytes(MAGIC + bytes(range(256)) * 4)
    (d / "notes.txt").write_text("shopping list: chalk, belt\n")
    (d / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40))
    (d / "a-directory").mkdir()
    (d / "full-dir").mkdir()
    (d / "full-dir" / "report.html").write_text("<p>an earlier report</p>")
    (d / "old.parquet").write_bytes(b"PAR1 an earlier export PAR1")
    for name in ("walk-a", "walk-b"):
        (d / f"{name}.csv").write_text("t,ax,ay,az,gx,gy,gz\n0,0,0,9.8,0,0,0\n")
        (d / f"{name}.spinrec").write_bytes(b"an earlier import")
    # a valid recording cut mid-record: loads without --strict, fails with it
    env = dict(os.environ)
    subprocess.run(
        [sys.executable, "-c", _WRITE_RECORDING, str(d / "whole.spinrec")], check=True, env=env, capture_output=True, timeout=60
    )
    data = (d / "whole.spinrec").read_bytes()
    (d / "cut-tail.spinrec").write_bytes(data[: len(data) - 7])


_WRITE_RECORDING = """
import sys
from spinemon.io.recording import RecordingWriter
with RecordingWriter(sys.argv[1], {"source": "test"}) as w:
    w.frame_in(b"\\x01\\x02\\x03\\x04", 1.0)
    w.frame_in(b"\\x01\\x02\\x03\\x04\\x05", 2.0)
"""


def _argv(case: Case, d: Path) -> list[str]:
    return [str(d / a[5:]) if a.startswith("FILE:") else a for a in case.argv]


_FORK_RUNNER = r"""
import json, os, runpy, sys, time, traceback
for m in ("numpy", "scipy", "spinemon", "spinemon.errors", "spinemon.io.recording", "spinemon.io.sim", "spinemon.app.simrun",
          "spinemon.app.session", "spinemon.app.live", "spinemon.app.journal"):
    try:
        __import__(m)
    except Exception:
        pass
assert "spinemon.app.cli" not in sys.modules  # run fresh as __main__ in each child, like python -m
jobs = json.load(sys.stdin)
codes, running, todo = {}, {}, list(range(len(jobs)))
while todo or running:
    while todo and len(running) < int(os.environ["RUNNER_WORKERS"]):
        i = todo.pop(0)
        job = jobs[i]
        sys.stdout.flush(); sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(job["cwd"])
                os.dup2(os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
                os.dup2(os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
                sys.argv = ["spinemon"] + job["argv"]
                try:
                    runpy.run_module("spinemon.app.cli", run_name="__main__", alter_sys=True)
                    code = 0
                except SystemExit as e:
                    if e.code is None or isinstance(e.code, int):
                        code = e.code or 0
                    else:
                        print(e.code, file=sys.stderr)
                except BaseException:
                    traceback.print_exc()
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
        running[pid] = (i, time.monotonic())
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid == 0:
        for p, (i, t0) in list(running.items()):
            if time.monotonic() - t0 > 60:
                os.kill(p, 9)
        time.sleep(0.005)
        continue
    i, _ = running.pop(pid)
    codes[i] = os.waitstatus_to_exitcode(status)
json.dump([codes[i] for i in range(len(jobs))], sys.stdout)
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SPINEMON_HOME=str(home), OPENBLAS_NUM_THREADS="1", RUNNER_WORKERS=str(WORKERS), PYTHONWARNINGS="ignore::RuntimeWarning:runpy")
    return env


def _run_forked(argvs: list[list[str]], cwd: Path, home: Path, logs: Path) -> list[Run]:
    jobs = [{"argv": a, "cwd": str(cwd), "out": str(logs / f"{i}.out"), "err": str(logs / f"{i}.err")} for i, a in enumerate(argvs)]
    proc = subprocess.run([sys.executable, "-c", _FORK_RUNNER], input=json.dumps(jobs), capture_output=True, text=True, env=_env(home), timeout=300)
    assert proc.returncode == 0, proc.stderr
    codes = json.loads(proc.stdout)
    return [Run(c, Path(j["out"]).read_text(), Path(j["err"]).read_text()) for c, j in zip(codes, jobs)]


def _run_real(argv: list[str], cwd: Path, home: Path) -> Run:
    p = subprocess.run([sys.executable, "-m", "spinemon.app.cli", *argv], capture_output=True, text=True, cwd=cwd, env=_env(home), timeout=120)
    return Run(p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("cli-bad-input")
    _make_files(d)
    work = tmp_path_factory.mktemp("cli-cwd")  # demo's default output folder etc. land here, not in the repo
    home = tmp_path_factory.mktemp("cli-home")
    return d, work, home


@pytest.fixture(scope="module")
def results(setup, tmp_path_factory) -> dict[str, Run]:
    d, work, home = setup
    runs = _run_forked([_argv(c, d) for c in CASES], work, home, tmp_path_factory.mktemp("cli-logs"))
    return {c.id: r for c, r in zip(CASES, runs)}


def _params() -> list:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []) for c in CASES]


@pytest.mark.parametrize("case", _params())
def test_bad_input_gives_one_clear_line_and_a_hint(case: Case, results) -> None:
    proc = results[case.id]
    lines = proc.stderr.strip().splitlines()
    shown = f"exit {proc.returncode}\n--- stderr ---\n{proc.stderr[-2000:]}\n--- stdout ---\n{proc.stdout[-500:]}"
    assert proc.returncode == case.exit, shown
    assert len(lines) == 1, "stderr must be exactly one line\n" + shown
    line = lines[0]
    assert line.startswith("spinemon"), shown
    assert "Traceback" not in proc.stderr, shown
    assert re.search(case.says, line, re.IGNORECASE), f"the line does not say what is wrong ({case.says!r})\n" + shown
    assert HINT.search(line), "the line gives no hint (--help or what to do)\n" + shown
    if case.usage:
        assert proc.stdout == "", "a usage error prints nothing on stdout\n" + shown


def _commands_in_help() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "spinemon.app.cli", "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    section = out.split("positional arguments:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^    (\S+)", section, re.MULTILINE)


def test_every_command_has_bad_input_rows() -> None:
    commands = _commands_in_help()
    assert {"demo", "simulate", "replay", "live", "scan"} <= set(commands), commands  # the parse found the list
    covered = {c.argv[0] for c in CASES if c.argv}
    missing = [c for c in commands if c not in covered]
    assert not missing, f"commands without bad-input rows in tests/app/test_cli_bad_input.py CASES: {missing}"


def test_forked_runs_match_real_subprocesses(setup, results) -> None:
    """The fork runner is faithful: the same exit status, stdout and stderr as
    a real ``python -m spinemon.app.cli`` process, for a usage error, a file error
    and a traceback."""
    d, work, home = setup
    by_id = {c.id: c for c in CASES}
    for cid in ("top-unknown-command", "replay-foreign-text", "demo-out-is-a-file"):
        real = _run_real(_argv(by_id[cid], d), work, home)
        forked = results[cid]
        assert real.returncode == forked.returncode, cid
        assert real.stdout == forked.stdout, cid
        if "Traceback" in real.stderr:  # the frames above cli.main differ (runpy vs the -m launcher)
            assert real.stderr.strip().splitlines()[-1] == forked.stderr.strip().splitlines()[-1], cid
        else:
            assert real.stderr == forked.stderr, cid
