"""The session index: per-recording facts kept between runs (issue 27).

``spinemon history`` replays every recording it shows; over a season that is
minutes each time, though at most one session is new. The index keeps what a
replay found (the facts ``history`` and the report's index need) in an SQLite
database (the standard library's ``sqlite3``) in the user's spinemon
directory (``$SPINEMON_HOME/index.sqlite`` or ``~/.spinemon/index.sqlite``).

An entry counts only for the same recording and the same analysis:

* the recording's identity: for the file and each of its segments
  (``FILE.seg2``, ...) the name, size and modification time (ns), and a
  SHA-256 of the file's first :data:`HEAD_BYTES` (the header, kept twice,
  and the first records); any change recomputes it;
* the analysis: a hash of the spinemon package's source (every ``.py`` file
  under ``spinemon/``, so a new version or any edit of the code recomputes
  it), the kind of facts, and the settings the caller analyses with.

Concurrent runs never corrupt it: the database is in WAL mode, every write
is one short transaction, and a writer that finds the database busy waits
(:data:`BUSY_TIMEOUT_S`). A damaged index is never trusted: one that fails
SQLite's ``quick_check``, is not a database, or has another schema is moved
aside to ``index.sqlite.damaged`` (the one damaged before it is replaced)
and rebuilt from the recordings, with a note. An entry whose stored facts do
not parse is a miss. An index that cannot be opened or written (a read-only
home) is a note: everything is replayed, as without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spinemon.io.home import spinemon_home

__all__ = [
    "BUSY_TIMEOUT_S",
    "HEAD_BYTES",
    "SCHEMA_VERSION",
    "Identity",
    "SessionIndex",
    "analysis_key",
    "code_hash",
    "default_path",
    "identify",
    "source_hash",
]

SCHEMA_VERSION = 1
HEAD_BYTES = 65536
BUSY_TIMEOUT_S = 30.0
INDEX_NAME = "index.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    path TEXT NOT NULL,
    analysis TEXT NOT NULL,
    files TEXT NOT NULL,
    head TEXT NOT NULL,
    facts TEXT NOT NULL,
    PRIMARY KEY (path, analysis)
)
"""


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """``$SPINEMON_HOME/index.sqlite`` if set, else ``~/.spinemon/index.sqlite``."""
    return spinemon_home(env) / INDEX_NAME


@dataclass(frozen=True)
class Identity:
    """What makes a recording the same one: ``files`` is ``(name, size,
    mtime_ns)`` of the file and each segment, ``head`` the SHA-256 (hex) of
    the file's first :data:`HEAD_BYTES`."""

    files: tuple[tuple[str, int, int], ...]
    head: str

    def files_text(self) -> str:
        return json.dumps([list(f) for f in self.files])


def identify(path: str | os.PathLike) -> Identity:
    """The identity of the recording at ``path`` (with its segments). Raises OSError if it cannot be read."""
    from spinemon.io.recording import segment_paths

    p = Path(path)
    files = []
    for q in segment_paths(p) or [p]:
        st = q.stat()
        files.append((q.name, int(st.st_size), int(st.st_mtime_ns)))
    with open(p, "rb") as f:
        head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
    return Identity(tuple(files), head)


_CODE_HASH: str | None = None


def code_hash() -> str:
    """SHA-256 over the spinemon package's source files (names and bytes),
    computed once per process: any change of the code is a new analysis."""
    global _CODE_HASH
    if _CODE_HASH is None:
        import spinemon

        _CODE_HASH = source_hash(Path(spinemon.__file__).resolve().parent, spinemon.__version__)
    return _CODE_HASH


def source_hash(root: Path, version: str) -> str:
    """SHA-256 over ``version`` and every ``.py`` file under ``root`` (its path and bytes)."""
    h = hashlib.sha256(version.encode())
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def analysis_key(kind: str, settings: Mapping[str, Any] | None = None, code: str | None = None) -> str:
    """The analysis an entry was computed with: the kind of facts, the
    settings (JSON-able) and the code (:func:`code_hash` by default)."""
    doc = {"kind": kind, "settings": dict(settings or {}), "code": code if code is not None else code_hash()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


class SessionIndex:
    """The index at ``path`` (default :func:`default_path`). ``notes``: what
    the user should know (rebuilt, not usable), one line each. With
    ``enabled`` False (it could not be opened) :meth:`get` misses and
    :meth:`put` does nothing."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.notes: list[str] = []
        self.rebuilt = False
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open()
        except (OSError, sqlite3.Error) as e:
            self._db = None
            self.notes.append(
                f"the session index {self.path} cannot be used ({e}): every recording is replayed"
            )

    @property
    def enabled(self) -> bool:
        return self._db is not None

    # -- opening ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    @staticmethod
    def _prepare(db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")

    def _check(self, db: sqlite3.Connection) -> str | None:
        """Why the database cannot be trusted, or None."""
        row = db.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            return f"quick_check: {row[0] if row else 'no answer'}"
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 and not tables:
            return None  # new and empty
        if version != SCHEMA_VERSION or "facts" not in tables:
            return f"schema {version}, tables {sorted(tables)}; expected schema {SCHEMA_VERSION}"
        return None

    def _set_up(self, db: sqlite3.Connection) -> None:
        # one transaction (a failure raises; the connection is dropped, its
        # transaction with it)
        db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def _open(self) -> sqlite3.Connection:
        db = self._connect()
        try:
            self._prepare(db)
            problem = self._check(db)
        except sqlite3.OperationalError:
            # locked, read-only, cannot be opened, an I/O error: not damage
            # (never moved aside); the caller goes on without the index
            db.close()
            raise
        except sqlite3.DatabaseError as e:  # not a database, malformed
            problem = str(e)
        if problem is None:
            self._set_up(db)
            return db
        # aside before closing: SQLite removes a -wal and -shm on the last close
        self._move_aside(problem)
        db.close()
        db = self._connect()
        self._prepare(db)
        self._set_up(db)
        return db

    def _move_aside(self, problem: str) -> None:
        aside = self.path.with_name(self.path.name + ".damaged")
        for suffix in ("-wal", "-shm"):
            extra = self.path.with_name(self.path.name + suffix)
            try:
                os.replace(extra, aside.with_name(aside.name + suffix))
            except FileNotFoundError:
                pass
        os.replace(self.path, aside)
        self.rebuilt = True
        self.notes.append(
            f"the session index {self.path} was damaged ({problem}): moved to {aside.name} and rebuilt from the recordings"
        )

    # -- use ----------------------------------------------------------------
    @staticmethod
    def _key(path: str | os.PathLike) -> str:
        return str(Path(path).resolve())

    def get(self, path: str | os.PathLike, ident: Identity, analysis: str) -> dict | None:
        """The facts stored for this recording, identity and analysis, or None."""
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT files, head, facts FROM facts WHERE path = ? AND analysis = ?",
                (self._key(path), analysis),
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] != ident.files_text() or row[1] != ident.head:
            return None
        try:
            facts = json.loads(row[2])
        except ValueError:
            return None
        return facts if isinstance(facts, dict) else None

    def put(self, path: str | os.PathLike, ident: Identity, analysis: str, facts: Mapping[str, Any]) -> bool:
        """Store the facts of one recording (replacing what was stored for it
        under this analysis). False if the index could not be written."""
        if self._db is None:
            return False
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO facts (path, analysis, files, head, facts) VALUES (?, ?, ?, ?, ?)",
                (self._key(path), analysis, ident.files_text(), ident.head, json.dumps(facts)),
            )
        except sqlite3.Error as e:
            self.notes.append(f"the session index {self.path} could not be written ({e})")
            self.close()
            return False
        return True

    def latest_facts(self) -> list[dict]:
        """The facts of every recording in the index, whatever the analysis:
        per recording the entry stored last (for a lifter's history, e.g. the
        usual lean of :mod:`spinemon.core.lean_baseline`). Entries that do not
        parse are left out; empty if the index is not usable."""
        if self._db is None:
            return []
        try:
            rows = self._db.execute(
                "SELECT f.facts FROM facts f JOIN (SELECT path, MAX(rowid) AS r FROM facts GROUP BY path) m "
                "ON f.rowid = m.r"
            ).fetchall()
        except sqlite3.Error:
            return []
        out = []
        for (text,) in rows:
            try:
                facts = json.loads(text)
            except ValueError:
                continue
            if isinstance(facts, dict):
                out.append(facts)
        return out

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT COUNT(*) FROM facts").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> SessionIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
