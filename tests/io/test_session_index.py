"""The session index (issue 27): per-recording facts kept in SQLite between
runs of ``spinemon history``, recomputed when the recording or the analysis
changes, never corrupted by concurrent runs, rebuilt when damaged."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from spinemon.app import cli, history
from spinemon.app.simrun import run_simulated
from spinemon.io import session_index as si
from spinemon.io import sim

FACTS = {"recording": "x", "exercises": {"deadlift": {"reps": 5, "peaks": [31.5, 33.0]}}, "one_sensor": False}


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    """Never touch the real ~/.spinemon: the index and the journal live in a fresh home."""
    home = tmp_path_factory.mktemp("spinemon-home")
    monkeypatch.setenv("SPINEMON_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    """Three short simulated sessions (deadlifts, one with a rounded rep)."""
    d = tmp_path_factory.mktemp("index-season")
    for seed, faults in enumerate(({2: "rounding"}, {}, {}), 21):
        run_simulated([sim.SetSpec("deadlift", 3, faults)], seed, out=d / f"s{seed}.spinrec", rom=False)
    return d


def recording(path, body: bytes = b"") -> None:
    path.write_bytes(b"SPINREC-header-" + bytes(range(256)) * 4 + body)


# ---------------------------------------------------------------------------
# the module on its own
# ---------------------------------------------------------------------------
def test_an_entry_is_found_only_for_the_same_recording_and_analysis(tmp_path):
    rec = tmp_path / "a.spinrec"
    recording(rec, b"records")
    a = si.analysis_key("facts", {"exercise": None})
    with si.SessionIndex(tmp_path / "index.sqlite") as idx:
        ident = si.identify(rec)
        assert idx.get(rec, ident, a) is None
        assert idx.put(rec, ident, a, FACTS)
        assert idx.get(rec, si.identify(rec), a) == FACTS
        # another analysis: a new spinemon (its code), other settings, another kind of facts
        assert idx.get(rec, ident, si.analysis_key("facts", {"exercise": None}, code="other code")) is None
        assert idx.get(rec, ident, si.analysis_key("facts", {"exercise": "squat"})) is None
        assert idx.get(rec, ident, si.analysis_key("other facts", {"exercise": None})) is None
        # the same recording under another name is another entry
        assert idx.get(tmp_path / "b.spinrec", ident, a) is None

        st = rec.stat()
        # appended to (size)
        with open(rec, "ab") as f:
            f.write(b"more")
        assert idx.get(rec, si.identify(rec), a) is None
        # same size, same bytes, touched (mtime)
        recording(rec, b"records")
        os.utime(rec, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert idx.get(rec, si.identify(rec), a) == FACTS
        os.utime(rec, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        assert idx.get(rec, si.identify(rec), a) is None
        # same size and mtime, the header rewritten (its start time, say)
        data = bytearray(rec.read_bytes())
        data[3] ^= 0x01
        rec.write_bytes(bytes(data))
        os.utime(rec, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert si.identify(rec).files == ident.files and idx.get(rec, si.identify(rec), a) is None
        # a segment written since (spinemon live --resume)
        recording(rec, b"records")
        os.utime(rec, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert idx.get(rec, si.identify(rec), a) == FACTS
        (tmp_path / "a.spinrec.seg2").write_bytes(b"segment 2")
        assert idx.get(rec, si.identify(rec), a) is None


def test_the_analysis_key_follows_the_code():
    assert si.analysis_key("k") == si.analysis_key("k", {})
    assert si.analysis_key("k", code="a") != si.analysis_key("k", code="b")
    assert len(si.code_hash()) == 64


def test_a_damaged_index_is_moved_aside_and_rebuilt(tmp_path):
    path = tmp_path / "index.sqlite"
    rec = tmp_path / "a.spinrec"
    recording(rec)
    a = si.analysis_key("facts")
    with si.SessionIndex(path) as idx:
        idx.put(rec, si.identify(rec), a, FACTS)
    # a bad disk block in the middle of the database file
    data = bytearray(path.read_bytes())
    assert len(data) >= 8192
    data[4096:8192] = b"\xa5" * 4096
    path.write_bytes(bytes(data))
    with si.SessionIndex(path) as idx:
        assert idx.enabled and idx.rebuilt
        assert len(idx.notes) == 1 and "damaged" in idx.notes[0] and "rebuilt" in idx.notes[0]
        assert idx.get(rec, si.identify(rec), a) is None  # never trusted
        idx.put(rec, si.identify(rec), a, FACTS)
        assert idx.get(rec, si.identify(rec), a) == FACTS
    assert (tmp_path / "index.sqlite.damaged").read_bytes() == bytes(data)  # kept aside, not silently lost
    # not a database at all; a database of something else
    for junk in (b"this is not a database" * 100, None):
        path.unlink()
        if junk is None:
            db = sqlite3.connect(path)
            db.execute("CREATE TABLE other (x)")
            db.commit()
            db.close()
        else:
            path.write_bytes(junk)
        with si.SessionIndex(path) as idx:
            assert idx.enabled and idx.rebuilt and len(idx) == 0, idx.notes
    # healthy: opened as it is
    with si.SessionIndex(path) as idx:
        assert not idx.rebuilt and idx.notes == []


def test_an_entry_whose_facts_do_not_parse_is_a_miss(tmp_path):
    path = tmp_path / "index.sqlite"
    rec = tmp_path / "a.spinrec"
    recording(rec)
    a = si.analysis_key("facts")
    with si.SessionIndex(path) as idx:
        idx.put(rec, si.identify(rec), a, FACTS)
    db = sqlite3.connect(path)
    db.execute("UPDATE facts SET facts = ?", ('{"cut off',))
    db.commit()
    db.close()
    with si.SessionIndex(path) as idx:
        assert idx.get(rec, si.identify(rec), a) is None


def test_an_index_that_cannot_be_written_is_a_note(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    idx = si.SessionIndex(tmp_path / "file" / "index.sqlite")
    assert not idx.enabled and len(idx.notes) == 1 and "cannot be used" in idx.notes[0]
    assert idx.get(tmp_path, si.Identity((), ""), "a") is None and idx.put(tmp_path, si.Identity((), ""), "a", {}) is False


WRITER = textwrap.dedent(
    """
    import sys
    from spinemon.io import session_index as si
    path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ident = si.Identity((("x", 1, 2),), "h")
    with si.SessionIndex(path) as idx:
        assert idx.enabled, idx.notes
        for i in range(n):
            assert idx.put("/rec/%s-%d.spinrec" % (who, i), ident, "a", {"who": who, "i": i, "pad": "x" * 500})
    """
)


def test_two_processes_writing_at_once_lose_nothing_and_corrupt_nothing(tmp_path):
    path = tmp_path / "index.sqlite"
    n = 150
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, str(n)], stderr=subprocess.PIPE)
        for who in ("a", "b")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    ident = si.Identity((("x", 1, 2),), "h")
    with si.SessionIndex(path) as idx:
        assert not idx.rebuilt and len(idx) == 2 * n
        for who in ("a", "b"):
            for i in range(n):
                assert idx.get(f"/rec/{who}-{i}.spinrec", ident, "a")["i"] == i


# ---------------------------------------------------------------------------
# spinemon history with it
# ---------------------------------------------------------------------------
def history_json(d, monkeypatch) -> tuple[dict, list[str], str]:
    """``history --json`` in this process (--jobs 1), counting the replays it makes."""
    replayed: list[str] = []
    real = history.session_facts

    def counted(path: str) -> dict:
        replayed.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(history, "session_facts", counted)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["history", str(d), "--json", "--jobs", "1", "--journal", os.devnull])
    assert rc == 0, err.getvalue()
    return json.loads(out.getvalue()), replayed, err.getvalue()


def test_a_second_history_over_an_unchanged_season_replays_nothing(season, tmp_path, monkeypatch, _home):
    d = tmp_path / "season"
    d.mkdir()
    for f in season.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    first, replayed, _ = history_json(d, monkeypatch)
    assert sorted(replayed) == ["s21.spinrec", "s22.spinrec", "s23.spinrec"]
    assert first["index"] == {"replayed": 3, "from_index": 0}
    assert (_home / "index.sqlite").exists()

    second, replayed, err = history_json(d, monkeypatch)
    assert replayed == []
    assert second["index"] == {"replayed": 0, "from_index": 3}
    assert "3 of 3 recording(s) from the session index" in err
    for doc in (first, second):
        doc.pop("index")
    assert second == first  # the same history, without a replay

    # one new session costs one replay; a changed one too
    (d / "s24.spinrec").write_bytes((season / "s21.spinrec").read_bytes())
    with open(d / "s22.spinrec", "ab") as f:
        f.write(b"\0" * 10)  # a torn tail: a changed file
    third, replayed, _ = history_json(d, monkeypatch)
    assert sorted(replayed) == ["s22.spinrec", "s24.spinrec"]
    assert third["index"] == {"replayed": 2, "from_index": 2}

    # the index damaged: everything replayed, said, and the next run is quick again
    (_home / "index.sqlite").write_bytes(b"\0" * 4096)
    fourth, replayed, err = history_json(d, monkeypatch)
    assert len(replayed) == 4 and "damaged" in err and "rebuilt" in err
    _, replayed, _ = history_json(d, monkeypatch)
    assert replayed == []


def test_facts_a_report_computed_fill_the_index(season, tmp_path, monkeypatch):
    """`spinemon report` of a folder hands its per-recording facts to
    history.store_facts (identities taken before the replays); a history
    afterwards replays none of them. A recording changed after its identity
    was taken is stored under the old identity, so it is replayed again."""
    d = tmp_path / "two"
    d.mkdir()
    paths = []
    for name in ("s21.spinrec", "s22.spinrec"):
        (d / name).write_bytes((season / name).read_bytes())
        paths.append(d / name)
    idents = history.identities(paths)
    facts = [history.session_facts(str(p)) for p in paths]
    with open(paths[1], "ab") as f:
        f.write(b"\0" * 8)  # changed after the identity was taken
    notes: list[str] = []
    history.store_facts([(p, i, f) for p, i, f in zip(paths, idents, facts)], notes)
    assert notes == []
    _, replayed, _ = history_json(d, monkeypatch)
    assert replayed == ["s22.spinrec"]


def test_a_new_index_in_a_folder_that_does_not_exist_yet(tmp_path):
    path = tmp_path / "no" / "such" / "home" / "index.sqlite"
    for _ in range(2):  # made, then opened as it is
        with si.SessionIndex(path) as idx:
            assert idx.enabled and not idx.rebuilt and idx.notes == []


def test_settings_in_another_order_are_the_same_analysis():
    assert si.analysis_key("k", {"a": 1, "b": [2]}, code="c") == si.analysis_key("k", {"b": [2], "a": 1}, code="c")


def test_an_index_that_fails_its_integrity_check_is_rebuilt(tmp_path):
    """Readable, the right schema, but quick_check finds a row that breaks a
    constraint (what a torn write of a page can leave): not trusted."""
    path = tmp_path / "index.sqlite"
    with si.SessionIndex(path):
        pass
    db = sqlite3.connect(path)
    db.executescript(
        "DROP TABLE facts; CREATE TABLE facts (path TEXT, analysis TEXT, files TEXT, head TEXT, facts TEXT, PRIMARY KEY (path, analysis));"
        "INSERT INTO facts VALUES ('/r', 'a', '[]', 'h', NULL);"
    )
    db.execute("PRAGMA writable_schema = ON")
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'facts'").fetchone()[0]
    db.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'facts'", (sql.replace("facts TEXT", "facts TEXT NOT NULL"),))
    db.commit()
    db.close()
    assert sqlite3.connect(path).execute("PRAGMA quick_check").fetchone()[0] != "ok"
    with si.SessionIndex(path) as idx:
        assert idx.rebuilt and "quick_check" in idx.notes[0] and len(idx) == 0


def test_a_damaged_index_takes_its_journal_files_aside_too(tmp_path):
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"junk" * 1024)
    wal = tmp_path / "index.sqlite-wal"
    wal.write_bytes(b"an old write-ahead log" * 100)
    with si.SessionIndex(path) as idx:
        assert idx.rebuilt and idx.enabled
    assert (tmp_path / "index.sqlite.damaged-wal").read_bytes() == b"an old write-ahead log" * 100


def test_a_table_gone_under_a_running_index_is_a_miss_and_a_note(tmp_path):
    path = tmp_path / "index.sqlite"
    rec = tmp_path / "a.spinrec"
    recording(rec)
    ident = si.identify(rec)
    with si.SessionIndex(path) as idx:
        idx.put(rec, ident, "a", FACTS)
        other = sqlite3.connect(path)
        other.execute("DROP TABLE facts")
        other.commit()
        other.close()
        assert idx.get(rec, ident, "a") is None
        assert idx.put(rec, ident, "a", FACTS) is False
        assert len(idx.notes) == 1 and "could not be written" in idx.notes[0] and not idx.enabled


def test_a_locked_index_is_never_taken_for_a_damaged_one(tmp_path, monkeypatch):
    path = tmp_path / "index.sqlite"
    with si.SessionIndex(path):
        pass
    monkeypatch.setattr(si, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        idx = si.SessionIndex(path)
        assert not idx.enabled and "cannot be used" in idx.notes[0] and "locked" in idx.notes[0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not (tmp_path / "index.sqlite.damaged").exists()
    with si.SessionIndex(path) as idx:
        assert idx.enabled and not idx.rebuilt


def test_any_change_of_the_source_is_a_new_analysis(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "core" / "angles.py").write_text("def f():\n    return 1\n")
    a = si.source_hash(pkg, "0.1.0")
    assert si.source_hash(pkg, "0.1.0") == a
    assert si.source_hash(pkg, "0.2.0") != a  # a new version
    (pkg / "core" / "angles.py").write_text("def f():\n    return 2\n")
    b = si.source_hash(pkg, "0.1.0")
    assert b != a  # an edit deep in the package
    (pkg / "core" / "new.py").write_text("")
    assert si.source_hash(pkg, "0.1.0") != b  # a new module


def test_an_index_of_another_schema_is_rebuilt(tmp_path):
    """A newer (or older) spinemon's index: its facts are not this one's."""
    path = tmp_path / "index.sqlite"
    rec = tmp_path / "a.spinrec"
    recording(rec)
    with si.SessionIndex(path) as idx:
        idx.put(rec, si.identify(rec), "a", FACTS)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {si.SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with si.SessionIndex(path) as idx:
        assert idx.rebuilt and "schema" in idx.notes[0] and idx.get(rec, si.identify(rec), "a") is None
