"""The pain journal's store: log back pain (0-10) around sessions.

Storage is one append-only JSON-lines file per user (default
``~/.spinemon/journal.jsonl``; ``$SPINEMON_HOME/journal.jsonl`` when
``SPINEMON_HOME`` is set; ``--journal PATH`` wins over both). Each line is one
:class:`Entry`. Every append is one ``write`` followed by ``fsync``; a torn
last line (power loss mid-write) is skipped and counted on load, never a
crash, and the next append starts on a fresh line.

An entry may link a session recording. The link stores a snapshot of the
recording (start time, exercises, events per kind per exercise, reps per
exercise), read with :func:`spinemon.io.recording.load` from the recording's
closing summary or, for a recording without one, by
:func:`spinemon.app.replay.replay`. The journal therefore still works after the
recording is moved or deleted.

What came before higher pain is :mod:`spinemon.app.pain_analysis`, the red
flags :mod:`spinemon.app.red_flags`, the command :mod:`spinemon.app.commands.journal`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from spinemon.app.session_summary import Summary
from spinemon.errors import ConfigError, JournalError, RecordingError, SpinemonError
from spinemon.io.home import spinemon_home

__all__ = [
    "PHASES",
    "Entry",
    "Journal",
    "JournalError",
    "LoadReport",
    "SessionLink",
    "default_journal_path",
    "parse_time",
    "session_link",
    "validate_pain",
    "validate_phase",
]

JOURNAL_VERSION = 1
PHASES = ("before", "during", "after", "other")
PAIN_MIN, PAIN_MAX = 0, 10
#: an unlinked "before" entry this close before a session's first linked entry counts as that session's pain before
PAIR_BEFORE_WINDOW = timedelta(hours=12)
FUTURE_TOLERANCE = timedelta(hours=24)


# ---------------------------------------------------------------------------
# entries
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionLink:
    """A snapshot of a session recording, taken when the entry was added.

    ``events`` maps event kind -> exercise -> count; ``reps`` maps exercise
    -> rep count; ``events_from`` is ``"summary"`` (the recording's closing
    summary) or ``"replay"`` (detection was re-run: no summary, or a resumed
    recording, whose sessions are joined as replay joins them)."""

    path: str
    start: str | None = None
    source: str | None = None
    exercises: tuple[str, ...] = ()
    events: dict[str, dict[str, int]] = field(default_factory=dict)
    reps: dict[str, int] = field(default_factory=dict)
    events_from: str = "summary"
    truncated: bool = False

    @property
    def patterns(self) -> set[tuple[str, str]]:
        """(kind, exercise) pairs with at least one event."""
        return {(k, ex) for k, per in self.events.items() for ex, n in per.items() if n > 0}

    @property
    def n_events(self) -> int:
        return sum(n for per in self.events.values() for n in per.values())

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "start": self.start,
            "source": self.source,
            "exercises": list(self.exercises),
            "events": {k: dict(v) for k, v in self.events.items()},
            "reps": dict(self.reps),
            "events_from": self.events_from,
            "truncated": self.truncated,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SessionLink:
        if not isinstance(d, dict) or not isinstance(d.get("path"), str):
            raise ValueError("session link needs a path")
        events = {
            str(k): {str(ex): int(n) for ex, n in per.items()} for k, per in (d.get("events") or {}).items()
        }
        reps = {str(ex): int(n) for ex, n in (d.get("reps") or {}).items()}
        return cls(
            path=d["path"],
            start=d.get("start"),
            source=d.get("source"),
            exercises=tuple(str(x) for x in d.get("exercises") or ()),
            events=events,
            reps=reps,
            events_from=str(d.get("events_from", "summary")),
            truncated=bool(d.get("truncated", False)),
        )


@dataclass(frozen=True)
class Entry:
    """One journal line: pain 0-10 at ``time`` (UTC), in ``phase``, with a note and an optional session link."""

    time: datetime
    pain: int
    phase: str = "other"
    note: str = ""
    session: SessionLink | None = None

    def as_dict(self) -> dict:
        d: dict[str, Any] = {
            "v": JOURNAL_VERSION,
            "time": format_time(self.time),
            "pain": self.pain,
            "phase": self.phase,
            "note": self.note,
        }
        if self.session is not None:
            d["session"] = self.session.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Entry:
        """Validate one stored line (raises ValueError / SpinemonError on anything wrong)."""
        if not isinstance(d, dict):
            raise ValueError("not an object")
        t = parse_time(d["time"])
        pain = validate_pain(d["pain"])
        phase = validate_phase(d.get("phase", "other"))
        note = d.get("note", "")
        if not isinstance(note, str):
            raise ValueError("note is not text")
        sess = SessionLink.from_dict(d["session"]) if d.get("session") is not None else None
        return cls(t, pain, phase, note, sess)


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | datetime) -> datetime:
    """An ISO 8601 time -> an aware UTC datetime. A time without an offset is
    taken as local time (what a person types). Raises :class:`ConfigError`."""
    if isinstance(text, datetime):
        t = text
    else:
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(
                f"time {text!r} is not an ISO 8601 time, e.g. 2024-05-01T18:30 or 2024-05-01T18:30:00Z"
            )
        try:
            t = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ConfigError(
                f"time {text!r} is not an ISO 8601 time, e.g. 2024-05-01T18:30 or 2024-05-01T18:30:00Z"
            ) from None
    if t.tzinfo is None:
        t = t.astimezone()  # local time
    return t.astimezone(UTC)


def validate_pain(value: Any) -> int:
    """Pain as a whole number 0 (none) .. 10 (worst imaginable); raises :class:`ConfigError`."""
    msg = f"pain must be a whole number from {PAIN_MIN} (no pain) to {PAIN_MAX} (worst imaginable), got {value!r}"
    if isinstance(value, bool):
        raise ConfigError(msg)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigError(msg) from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(msg)
        value = int(value)
    if not isinstance(value, int) or not PAIN_MIN <= value <= PAIN_MAX:
        raise ConfigError(msg)
    return value


def validate_phase(value: Any) -> str:
    if value not in PHASES:
        raise ConfigError(f"phase must be one of {', '.join(PHASES)}, got {value!r}")
    return value


# ---------------------------------------------------------------------------
# session links
# ---------------------------------------------------------------------------
def session_link(path: str | os.PathLike) -> SessionLink:
    """Read a recording and snapshot what the journal needs. Raises
    :class:`~spinemon.errors.RecordingError` (missing file, not a recording)."""
    from spinemon.io.recording import KIND_META, Record, load

    p = Path(path)
    try:
        rec = load(p)
    except RecordingError as e:
        raise RecordingError(f"cannot link session: {e}") from None
    start = None
    header_records = [
        r for r in rec.pieces_in() if isinstance(r, Record) and r.kind == KIND_META
    ]  # runs stay columns
    if header_records:
        try:
            start = format_time(datetime.fromtimestamp(header_records[0].t_host, UTC))
        except (OverflowError, OSError, ValueError):
            start = None
    summaries = rec.meta_of("summary")
    if len(rec.segments) > 1:
        # a resumed recording (live --resume): one live session per segment; the
        # joined replay has them all (each as it ran live), not just the last one's summary
        from spinemon.app.replay import replay

        summary = replay(rec).session
        events_from = "replay"
    elif summaries and isinstance(summaries[-1].get("events"), list):
        summary = Summary.from_dict(summaries[-1])  # the recording's closing summary
        events_from = "summary"
    else:
        from spinemon.app.replay import replay

        summary = replay(rec).session
        events_from = "replay"
    default_ex = str((rec.header.get("settings") or {}).get("exercise") or "generic")
    exercises: list[str] = []

    def add_ex(ex: Any) -> None:
        if isinstance(ex, str) and ex and ex not in exercises:
            exercises.append(ex)

    for s in summary.sets:
        add_ex(s.exercise)
    for m in rec.meta_of("label"):
        add_ex(m.get("exercise"))
    events: dict[str, dict[str, int]] = {}
    for ev in summary.events:
        if not isinstance(ev.kind, str) or not ev.has("kind"):
            continue
        ex = ev.exercise or default_ex
        add_ex(ex)
        per = events.setdefault(ev.kind, {})
        per[ex] = per.get(ex, 0) + 1
    reps: dict[str, int] = {}
    for r in summary.reps:
        ex = r.exercise or default_ex
        reps[ex] = reps.get(ex, 0) + 1
    for ex in reps:
        add_ex(ex)
    if not exercises:
        exercises.append(default_ex)
    return SessionLink(
        path=str(p.resolve()),
        start=start,
        source=rec.header.get("source"),
        exercises=tuple(exercises),
        events=events,
        reps=reps,
        events_from=events_from,
        truncated=rec.truncated,
    )


# ---------------------------------------------------------------------------
# the file
# ---------------------------------------------------------------------------
def default_journal_path(env: Mapping[str, str] | None = None) -> Path:
    """``$SPINEMON_HOME/journal.jsonl`` if set, else ``~/.spinemon/journal.jsonl``."""
    return spinemon_home(env) / "journal.jsonl"


@dataclass
class LoadReport:
    """What :meth:`Journal.load` found: good entries and the lines it skipped (1-based)."""

    entries: list[Entry]
    skipped_lines: list[int] = field(default_factory=list)
    torn_last_line: bool = False
    exists: bool = True


class Journal:
    """One user's append-only journal file."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_journal_path()

    def load(self) -> LoadReport:
        """All readable entries in time order. A missing file is an empty
        journal; an unreadable line is skipped and counted, never a crash."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return LoadReport([], exists=False)
        except IsADirectoryError:
            raise JournalError(f"journal {self.path} is a directory; give a file with --journal") from None
        except OSError as e:
            raise JournalError(f"cannot read journal {self.path}: {e.strerror}") from None
        lines = data.split(b"\n")
        ends_clean = data.endswith(b"\n") or not data
        if lines and lines[-1] == b"":
            lines.pop()
        entries: list[Entry] = []
        skipped: list[int] = []
        torn = False
        for i, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                entries.append(Entry.from_dict(json.loads(raw.decode("utf-8"))))
            except (
                ValueError,
                KeyError,
                TypeError,
                SpinemonError,
            ):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                skipped.append(i)
                if i == len(lines) and not ends_clean:
                    torn = True
        entries.sort(key=lambda e: e.time)
        return LoadReport(entries, skipped, torn)

    def append(self, entry: Entry) -> None:
        """Write one entry as one line, flushed and fsynced. If the file ends
        in a torn line, a newline is written first so the new entry stays whole."""
        parent = self.path.parent
        if not parent.exists():
            if parent == default_journal_path().parent:
                try:
                    parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise JournalError(f"cannot create {parent}: {e.strerror}") from None
            else:
                raise JournalError(
                    f"directory {parent} does not exist; create it first or choose another --journal"
                )
        if self.path.is_dir():
            raise JournalError(f"journal {self.path} is a directory; give a file with --journal")
        line = (
            json.dumps(entry.as_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
                "utf-8"
            )
            + b"\n"
        )
        try:
            with open(self.path, "a+b") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = b"\n" + line
                    f.seek(0, os.SEEK_END)
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise JournalError(f"cannot write journal {self.path}: {e.strerror}") from None

    def add(
        self,
        pain: Any,
        phase: str | None = None,
        note: str = "",
        session: str | os.PathLike | None = None,
        at: str | datetime | None = None,
        *,
        now: datetime | None = None,
    ) -> Entry:
        """Validate, link the session (if any) and append. ``phase`` defaults to
        ``after`` with a session and ``other`` without. Raises a
        :class:`SpinemonError` subclass for any bad value."""
        pain = validate_pain(pain)
        if phase is None:
            phase = "after" if session is not None else "other"
        phase = validate_phase(phase)
        if not isinstance(note, str):
            raise ConfigError("note must be text")
        now = (now or datetime.now(UTC)).astimezone(UTC)
        t = parse_time(at) if at is not None else now
        if t > now + FUTURE_TOLERANCE:
            raise ConfigError(f"time {format_time(t)} is in the future; log pain you have felt")
        link = session_link(session) if session is not None else None
        entry = Entry(t, pain, phase, note.strip(), link)
        self.append(entry)
        return entry
