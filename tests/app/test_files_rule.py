"""Files: nothing overwritten or left half-written, no tracebacks, exit 2 for
command-line mistakes; and the newcomer's path (issue 26).

- one overwrite rule (:func:`spinemon.io.atomic.refuse_existing`) for every
  command, ``--force`` to replace;
- ``export --csv`` whole or not at all on a full disk (ENOSPC injected
  through the writer's file object); a report folder whole or not at all
  (:func:`spinemon.io.atomic.atomic_dir`);
- ``export --parquet exports/`` makes the folder; an unwritable place fails
  before the replay, ``calibrate --profile`` before the guided calibration;
- a report of a file whose name is not UTF-8;
- the plural helper, commands quoted for the shell, ``spinemon`` on PATH,
  install hints for wheel and editable installs, ``replay --exercise`` on
  labelled sets, ``make demo``'s extras, the config file, shell completion.

Most run in process on one small simulated recording made once.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemon.app import words
from spinemon.app.cli import main
from spinemon.errors import ConfigError
from spinemon.io.atomic import ExistingOutputError, atomic_dir, refuse_existing

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rec(tmp_path_factory) -> Path:
    """A short labelled deadlift set with one rounded rep (two IMUs)."""
    from spinemon.app.simrun import run_simulated
    from spinemon.io import sim

    d = tmp_path_factory.mktemp("files-rule")
    path = d / "dl.spinrec"
    run_simulated([sim.SetSpec("deadlift", 3, {2: "rounding"})], 3, out=path)
    return path


def _copy(rec: Path, d: Path, name: str = "dl.spinrec") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    shutil.copy(rec, p)
    return p


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _no_temporaries(d: Path) -> None:
    left = [p.name for p in d.iterdir() if p.name.startswith(".")]
    assert not left, left


# -- the rule ---------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["absent", "file", "empty-dir", "full-dir"])
@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("folder", [False, True])
def test_refuse_existing_is_one_rule(tmp_path, state, force, folder):
    p = tmp_path / "out"
    if state == "file":
        p.write_text("old")
    elif state in ("empty-dir", "full-dir"):
        p.mkdir()
        if state == "full-dir":
            (p / "report.html").write_text("old")
    kind_clash = (state == "file" and folder) or (state in ("empty-dir", "full-dir") and not folder)
    refused = kind_clash or (not force and state in ("file", "full-dir"))
    if refused:
        with pytest.raises(ExistingOutputError) as e:
            refuse_existing(p, force, flag="--out", folder=folder)
        assert e.value.usage  # a command-line mistake: exit 2
        assert "\n" not in str(e.value)
        if not kind_clash:
            assert "--force" in str(e.value)
    else:
        assert refuse_existing(p, force, flag="--out", folder=folder) == p
    assert state == "absent" or p.exists()  # the rule never removes anything itself


@pytest.mark.parametrize("fail_after", [0, 1, 2])
@pytest.mark.parametrize("old", [False, True])
def test_atomic_dir_is_whole_or_not_at_all(tmp_path, fail_after, old):
    out = tmp_path / "report"
    if old:
        out.mkdir()
        (out / "old.txt").write_text("old")

    def fill(d: Path) -> None:
        for i in range(3):
            if i == fail_after:
                raise OSError(errno.ENOSPC, "No space left on device")
            (d / f"f{i}.txt").write_text("new")

    with pytest.raises(OSError):
        atomic_dir(out, fill)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"] if old else not out.exists()
    _no_temporaries(tmp_path)
    atomic_dir(out, lambda d: (d / "new.txt").write_text("new"))
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    _no_temporaries(tmp_path)


# -- export -----------------------------------------------------------------------------------
class _FullDisk(io.StringIO):
    """A text file object that takes ``room`` characters, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, s: str) -> int:
        if self.tell() + len(s) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(s)


def test_export_csv_onto_a_full_disk_leaves_nothing_partial(rec, tmp_path, monkeypatch, capsys):
    import spinemon.app.export as export

    real_open = open

    def full_open(path, mode="r", *args, **kw):
        if "w" in mode and str(path).endswith(".tmp"):
            return _FullDisk(20000)  # the samples CSV is ~100 KB: the disk fills mid-file
        return real_open(path, mode, *args, **kw)

    monkeypatch.setattr(export, "open", full_open, raising=False)
    d = tmp_path / "x"
    src = _copy(rec, d)
    assert main(["export", str(src), "--csv", str(d / "new.csv")]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "disk is full" in line and "nothing was written" in line
    assert not (d / "new.csv").exists() and not (d / "new-events.csv").exists()
    _no_temporaries(d)
    # --force over an earlier export: the old file stays whole
    (d / "old.csv").write_text("t_s,seq\n1,2\n")
    assert main(["export", str(src), "--csv", str(d / "old.csv"), "--force"]) == 1
    assert (d / "old.csv").read_text() == "t_s,seq\n1,2\n"
    _no_temporaries(d)


def test_export_refuses_an_existing_output_and_replaces_it_with_force(rec, tmp_path, capsys):
    d = tmp_path / "x"
    src = _copy(rec, d)
    (d / "out.csv").write_text("mine")
    assert main(["export", str(src), "--csv", str(d / "out.csv")]) == 2
    assert "--force" in _one_line(capsys.readouterr().err)
    assert (d / "out.csv").read_text() == "mine"
    assert main(["export", str(src), "--csv", str(d / "out.csv"), "--force"]) == 0
    assert (d / "out.csv").read_text().startswith("t_s,seq,")
    assert oct((d / "out.csv").stat().st_mode & 0o777) != oct(0o600)  # a plain file's mode, not mkstemp's
    assert main(["export", str(src)]) == 2  # no format: a command-line mistake
    assert "choose an output format" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("dest", ["exports/", "exports"])
def test_export_parquet_into_a_new_folder_makes_it(rec, tmp_path, monkeypatch, capsys, dest):
    pytest.importorskip("pyarrow")
    monkeypatch.chdir(tmp_path)
    src = _copy(rec, tmp_path / "in")
    assert main(["export", str(src), "--parquet", dest]) == 0
    out = capsys.readouterr().out
    assert "created the folder exports" in out
    assert (tmp_path / "exports" / "dl.parquet").exists() and (tmp_path / "exports" / "dl-events.parquet").exists()


def test_export_into_a_place_that_cannot_be_written_fails_before_the_replay(rec, tmp_path, monkeypatch, capsys):
    pytest.importorskip("pyarrow")
    import spinemon.app.commands.export as cmd
    import spinemon.io.atomic as atomic

    def no_replay(*a, **k):
        raise AssertionError("the recording was replayed before the output place was checked")

    def read_only(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cmd, "trace_recording", no_replay)
    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)  # what a read-only folder answers
    d = tmp_path / "ro"
    src = _copy(rec, d)
    assert main(["export", str(src), "--parquet", str(d) + "/"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "cannot write in" in line and "no permission" in line and "--parquet" in line
    assert sorted(p.name for p in d.iterdir()) == ["dl.spinrec"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into a read-only folder")
def test_export_parquet_into_a_read_only_folder_is_one_line(rec, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    src = _copy(rec, tmp_path / "in")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["export", str(src), "--parquet", str(ro) + "/"]) == 1
        assert "cannot write in" in _one_line(capsys.readouterr().err)
        assert not list(ro.iterdir())
    finally:
        ro.chmod(0o755)


# -- report -----------------------------------------------------------------------------------
def test_report_of_a_file_name_that_is_not_utf8(rec, tmp_path, capsys):
    name = os.fsdecode(b"bad\xff name.spinrec")  # the byte 0xff kept as a surrogate
    src = _copy(rec, tmp_path, name)
    assert main(["report", str(src)]) == 0
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    out_dir = tmp_path / os.fsdecode(b"bad\xff name-report")
    page = (out_dir / "report.html").read_bytes().decode("utf-8")  # whole, and UTF-8
    assert page.rstrip().endswith("</html>") and "\ufffd" in page
    _no_temporaries(tmp_path)


def test_a_report_that_fails_midway_leaves_no_half_written_folder(rec, tmp_path, monkeypatch, capsys):
    import spinemon.app.report as report

    src = _copy(rec, tmp_path)
    out = tmp_path / "dl-report"

    def disk_full(*a, **k):
        raise ConfigError("cannot write overview.png (the disk is full)")

    monkeypatch.setattr(report, "render_html", disk_full)
    assert main(["report", str(src)]) == 1
    _one_line(capsys.readouterr().err)
    assert not out.exists()
    _no_temporaries(tmp_path)
    out.mkdir()
    (out / "report.html").write_text("an earlier report")
    assert main(["report", str(src)]) == 2  # refused: it holds files
    assert "--force" in _one_line(capsys.readouterr().err)
    assert main(["report", str(src), "--force"]) == 1  # fails midway: the earlier report is kept whole
    assert [p.name for p in out.iterdir()] == ["report.html"]
    assert (out / "report.html").read_text() == "an earlier report"
    _no_temporaries(tmp_path)
    monkeypatch.undo()
    monkeypatch.setattr(report, "pyplot", lambda: None)  # tables only: the plots are not what is tested here
    assert main(["report", str(src), "--force"]) == 0
    assert "(0 plots)" in capsys.readouterr().out
    assert (out / "report.html").read_text() != "an earlier report"


# -- recordings: simulate, import, live ------------------------------------------------------------
def test_a_recording_replaced_with_force_takes_its_old_segments_with_it(tmp_path):
    from spinemon.io.recording import RecordingWriter, load, segment_paths

    p = tmp_path / "s.spinrec"
    for resume in (False, True):
        with RecordingWriter(p, {"source": "old"}, resume=resume) as w:
            w.frame_in(b"\x01\x02", 1.0)
    assert len(segment_paths(p)) == 2
    with pytest.raises(Exception, match="already exists"):
        RecordingWriter(p, {"source": "new"})
    with RecordingWriter(p, {"source": "new"}, overwrite=True) as w:
        w.frame_in(b"\x03", 1.0)
    assert segment_paths(p) == [p]
    assert load(p).header["source"] == "new"
    _no_temporaries(tmp_path)


def test_simulate_and_import_replace_only_with_force(rec, tmp_path, capsys):
    out = tmp_path / "s.spinrec"
    out.write_bytes(b"mine")
    args = ["simulate", "--exercise", "curl", "--reps", "1", "--no-rom", "--out", str(out)]
    assert main(args) == 2
    assert "--force" in _one_line(capsys.readouterr().err) and out.read_bytes() == b"mine"
    assert main([*args, "--force"]) == 0
    assert out.read_bytes().startswith(b"SPINEMON-REC")
    printed = capsys.readouterr().out
    assert "1 event," not in printed and not any(w in printed for w in (" 1 events", " 1 frames"))
    # import: a spinemon export back into a recording, over the one just written
    csv = tmp_path / "s.csv"
    assert main(["export", str(out), "--csv", str(csv)]) == 0
    assert main(["import", str(csv), "--out", str(out)]) == 2
    assert "--force" in _one_line(capsys.readouterr().err)
    assert main(["import", str(csv), "--out", str(out), "--force"]) == 0
    _no_temporaries(tmp_path)


def test_live_force_and_resume_exclude_each_other():
    from spinemon.app.live import LiveOptions

    with pytest.raises(ExistingOutputError, match="--force.*--resume"):
        LiveOptions(sim=True, out="x.spinrec", force=True, resume=True)
    assert LiveOptions(sim=True, out="x.spinrec", force=True).force


# -- calibrate ----------------------------------------------------------------------------------
def test_calibrate_into_a_place_that_cannot_be_written_fails_before_calibrating(tmp_path, monkeypatch, capsys):
    import spinemon.app.commands.calibrate as cmd

    def no_calibration(*a, **k):
        raise AssertionError("the guided calibration ran before the profile's place was checked")

    def read_only(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    import spinemon.io.profile_store as store

    monkeypatch.setattr(cmd, "run_calibration", no_calibration)
    monkeypatch.setattr(store.tempfile, "mkstemp", read_only)  # what a read-only folder answers
    assert main(["calibrate", "--sim", "--profile", str(tmp_path / "profile.json")]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "cannot write profile" in line and "nothing was calibrated" in line


# -- words ----------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["event", "rep", "plot", "entry", "match", "damaged record", "box"]))
def test_plural_says_one_thing_and_many_things(n, noun):
    text = words.plural(n, noun)
    assert text.startswith(f"{n} ")
    assert (text == f"1 {noun}") == (n == 1)
    assert text != f"{n} {noun}" or n == 1


def test_plural_words():
    assert [words.plural(1, "event"), words.plural(2, "entry"), words.plural(0, "match"), words.plural(3, "damaged record")] == [
        "1 event",
        "2 entries",
        "0 matches",
        "3 damaged records",
    ]


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30))
def test_a_suggested_command_reads_back_as_its_words(name):
    line = words.command("spinemon", "replay", name)
    assert shlex.split(line)[1:] == ["replay", name]


def test_spinemon_not_on_path_is_said_with_the_way_to_get_it(tmp_path, monkeypatch):
    venv_bin = tmp_path / "my venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "spinemon").write_text("#!/bin/sh\n")
    (venv_bin / "activate").write_text("")
    monkeypatch.setattr(sys, "argv", [str(venv_bin / "spinemon"), "demo"])
    monkeypatch.setattr(words.shutil, "which", lambda name: None)  # a fresh shell: no venv active
    assert words.program() == str(venv_bin / "spinemon")
    hint = words.path_hint()
    assert hint is not None and shlex.quote(str(venv_bin / "activate")) in hint
    assert shlex.split(words.command("spinemon", "replay", "a b.spinrec")) == [str(venv_bin / "spinemon"), "replay", "a b.spinrec"]
    monkeypatch.setattr(words.shutil, "which", lambda name: str(venv_bin / "spinemon"))  # activated
    assert words.program() == "spinemon" and words.path_hint() is None


def test_install_hints_fit_the_installation(monkeypatch):
    from spinemon.app import extras

    monkeypatch.setattr(extras, "editable_checkout", lambda: None)
    assert extras.install_hint("report") == "pip install 'spinemon[report]'"
    monkeypatch.setattr(extras, "editable_checkout", lambda: "/src/spinemon")
    assert extras.install_hint("parquet") == "pip install -e '.[parquet]' (in the checkout, /src/spinemon)"


def test_this_checkout_is_seen_as_editable():
    from spinemon.app import extras

    extras.editable_checkout.cache_clear()
    where = extras.editable_checkout()
    if where is None:
        pytest.skip("spinemon is not installed editable here")
    assert Path(where).resolve() == ROOT


# -- replay --exercise on labelled sets ---------------------------------------------------------------
def test_replay_exercise_applies_to_labelled_sets_and_says_so(rec, capsys):
    assert main(["replay", str(rec), "--json"]) == 0
    recorded = json.loads(capsys.readouterr().out)
    assert {e["exercise"] for e in recorded["events"]} == {"deadlift"}
    assert main(["replay", str(rec), "--exercise", "squat", "--json"]) == 0
    what_if = json.loads(capsys.readouterr().out)
    assert what_if["events"] and {e["exercise"] for e in what_if["events"]} == {"squat"}
    assert {s.get("exercise") for s in what_if["sets"]} == {"squat"}
    assert what_if["stats"]["exercise_override"] == {"exercise": "squat", "labelled_as": ["deadlift"]}
    assert main(["replay", str(rec), "--exercise", "squat"]) == 0
    assert "every set replayed as squat" in capsys.readouterr().out


# -- make demo --------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_demo_installs_only_the_runtime_and_report_extras(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    os.utime(tmp_path / ".venv" / "bin" / "python", (1, 1))
    os.utime(tmp_path / "pyproject.toml", (2, 2))
    plan = subprocess.run(["make", "-n", "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=30).stdout
    installs = [ln for ln in plan.splitlines() if "pip install" in ln and "-e" in ln]
    assert installs and all("'.[report]'" in ln and "test" not in ln for ln in installs), plan
    assert "spinemon demo --out demo-output --force" in plan


def test_demo_refuses_an_earlier_demo_without_force(tmp_path, capsys):
    (tmp_path / "demo-seed1.spinrec").write_bytes(b"an earlier demo")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "--force" in _one_line(capsys.readouterr().err)
    assert (tmp_path / "demo-seed1.spinrec").read_bytes() == b"an earlier demo"


# -- the config file -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,says",
    [
        ("bogus = 1\n", "unknown key 'bogus'"),
        ("exercise = \n", "not valid TOML"),
        ("exercise = \"zumba\"\n", "exercise 'zumba'"),
        ("[wearable]\nname = \"a\"\naddress = \"b\"\n", "give one of"),
        ("[wearable]\nmac = \"b\"\n", "wearable.mac"),
        ("out_dir = 3\n", "out_dir must be"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_key(tmp_path, text, says):
    from spinemon.app.config import load_config

    p = tmp_path / "config.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert says in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_the_config_file_fills_what_the_command_line_leaves_out(tmp_path, monkeypatch, capsys):
    from spinemon.app.cli import build_parser
    from spinemon.app.config import apply_to, load_config

    cfg_path = tmp_path / "config.toml"
    monkeypatch.setenv("SPINEMON_CONFIG", str(cfg_path))
    assert main(["live"]) == 2  # no wearable anywhere: a command-line mistake that names the config file
    assert str(cfg_path) in _one_line(capsys.readouterr().err)
    assert main(["config"]) == 0
    assert "not there" in capsys.readouterr().out
    assert main(["config", "--init"]) == 0
    capsys.readouterr()
    assert main(["config", "--init"]) == 2  # the one overwrite rule
    assert "--force" in _one_line(capsys.readouterr().err)
    cfg_path.write_text(
        f'exercise = "squat"\nout_dir = "{tmp_path / "lifting"}"\n[wearable]\nname = "spinemon-1A2B"\n'
    )
    cfg = load_config()
    args = build_parser().parse_args(["live"])
    notes = apply_to(args, cfg)
    assert (args.name, args.exercise) == ("spinemon-1A2B", "squat") and len(notes) == 3
    assert Path(args.out).parent == tmp_path / "lifting" and args.out.endswith("_squat.spinrec")
    args = build_parser().parse_args(["live", "--sim", "--exercise", "curl", "--out", "x.spinrec"])
    apply_to(args, cfg)  # the command line wins
    assert (args.name, args.sim, args.exercise, args.out) == (None, True, "curl", "x.spinrec")
    args = build_parser().parse_args(["history"])
    apply_to(args, cfg)
    assert args.path == [str(tmp_path / "lifting")]
    assert main(["config", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["wearable"] == {"name": "spinemon-1A2B"} and shown["exercise"] == "squat"


# -- shell completion -------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_is_generated_from_the_parser(tmp_path, capsys):
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "spinemon.bash"
    script.write_text(capsys.readouterr().out)

    def complete(*typed: str) -> list[str]:
        words_ = " ".join(shlex.quote(w) for w in ("spinemon", *typed))
        probe = f"source {shlex.quote(str(script))}; COMP_WORDS=({words_}); COMP_CWORD={len(typed)}; _spinemon; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert complete("rep") == ["report", "replay"]
    assert complete("comp") == ["completion"]
    assert set(complete("live", "--exercise", "dead")) == {"deadlift", "dead_bug"}
    assert complete("journal", "su") == ["summary"]
    assert "--pain" in complete("journal", "add", "--p")
    assert complete("export", "x.spinrec", "--for") == ["--force"]
    assert complete("completion", "z") == ["zsh"]
    assert main(["completion", "zsh"]) == 0
    assert "bashcompinit" in capsys.readouterr().out
