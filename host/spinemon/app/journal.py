"""The pain journal: log back pain (0-10) around sessions and see what came before higher pain.

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
:func:`spinemon.app.session.replay`. The journal therefore still works after the
recording is moved or deleted.

:func:`summarize` compares pain after sessions that had a pattern (an event
kind in an exercise, e.g. over-flexion in deadlifts = "rounding in
deadlifts") with pain after sessions that did not, and shows pain by week.
That is an association in one person's journal, never proof of cause; the
output says so and says when there is too little data.

:func:`red_flags_in_text` and :func:`worsening_trend` look for the symptoms
that mean "stop training and see a doctor" (numbness, weakness, pain spreading
down the legs, pain worsening for more than about two weeks) and the ones
that mean "seek urgent care" (loss of bladder or bowel control, numbness in
the saddle area). spinemon is a training aid, not a medical device: these
checks are a safety net with simple phrase matching, not a diagnosis.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from spinemon.app import argtypes
from spinemon.errors import ConfigError, RecordingError, SpinemonError

__all__ = [
    "PHASES",
    "Entry",
    "Journal",
    "JournalError",
    "LoadReport",
    "RedFlag",
    "SessionLink",
    "add_arguments",
    "default_journal_path",
    "format_summary",
    "main",
    "parse_time",
    "pattern_name",
    "red_flag_message",
    "red_flags",
    "red_flags_in_text",
    "session_link",
    "summarize",
    "trend_flag",
    "validate_pain",
    "validate_phase",
    "worsening_trend",
]

JOURNAL_VERSION = 1
PHASES = ("before", "during", "after", "other")
PAIN_MIN, PAIN_MAX = 0, 10
#: an unlinked "before" entry this close before a session's first linked entry counts as that session's pain before
PAIR_BEFORE_WINDOW = timedelta(hours=12)
#: fewer sessions than this in either group: "too little data"
MIN_SESSIONS_PER_GROUP = 3
#: the worsening rule: rising over at least this many days ...
WORSENING_MIN_DAYS = 10.0
#: ... by at least this many points (fitted), mostly monotonically (Kendall tau)
WORSENING_MIN_RISE = 2.0
WORSENING_MIN_TAU = 0.6
WORSENING_SPANS_DAYS = (14, 21, 28)
FUTURE_TOLERANCE = timedelta(hours=24)

KIND_NAMES = {
    "over_flexion": "rounding",
    "over_extension": "arching",
    "twist": "twisting",
    "lateral_bend": "side bending",
    "swing": "swinging",
    "spine_creep": "flexion creeping up",
    "forward_lean": "leaning too far forward",
}
EXERCISE_PLURALS = {
    "deadlift": "deadlifts",
    "squat": "squats",
    "overhead_press": "overhead presses",
    "curl": "curls",
    "single_leg_deadlift": "single-leg deadlifts",
    "lunge": "lunges",
    "split_squat": "split squats",
    "single_arm_press": "single-arm presses",
    "single_arm_row": "single-arm rows",
    "generic": "unlabelled lifting",
    "unlabelled": "unlabelled lifting",
}


class JournalError(SpinemonError):
    """The journal file cannot be read or written, or a journal value is bad."""


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
    from spinemon.io.recording import KIND_META, load

    p = Path(path)
    try:
        rec = load(p)
    except RecordingError as e:
        raise RecordingError(f"cannot link session: {e}") from None
    start = None
    header_records = [r for r in rec.records if r.kind == KIND_META]
    if header_records:
        try:
            start = format_time(datetime.fromtimestamp(header_records[0].t_host, UTC))
        except (OverflowError, OSError, ValueError):
            start = None
    summaries = rec.meta_of("summary")
    if len(rec.segments) > 1:
        # a resumed recording (live --resume): one live session per segment; the
        # joined replay has them all (each as it ran live), not just the last one's summary
        from spinemon.app.session import replay

        summary = replay(rec).summary
        events_from = "replay"
    elif summaries and isinstance(summaries[-1].get("events"), list):
        summary = summaries[-1]
        events_from = "summary"
    else:
        from spinemon.app.session import replay

        summary = replay(rec).summary
        events_from = "replay"
    default_ex = str((rec.header.get("settings") or {}).get("exercise") or "generic")
    exercises: list[str] = []

    def add_ex(ex: Any) -> None:
        if isinstance(ex, str) and ex and ex not in exercises:
            exercises.append(ex)

    for s in summary.get("sets") or []:
        if isinstance(s, dict):
            add_ex(s.get("exercise"))
    for m in rec.meta_of("label"):
        add_ex(m.get("exercise"))
    events: dict[str, dict[str, int]] = {}
    for e in summary.get("events") or []:
        if not isinstance(e, dict) or not isinstance(e.get("kind"), str):
            continue
        ex = e.get("exercise") or default_ex
        add_ex(ex)
        per = events.setdefault(e["kind"], {})
        per[ex] = per.get(ex, 0) + 1
    reps: dict[str, int] = {}
    for r in summary.get("reps") or []:
        if isinstance(r, dict):
            ex = r.get("exercise") or default_ex
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
def default_journal_path(env: dict[str, str] | None = None) -> Path:
    """``$SPINEMON_HOME/journal.jsonl`` if set, else ``~/.spinemon/journal.jsonl``."""
    env = os.environ if env is None else env
    home = env.get("SPINEMON_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".spinemon"
    return base / "journal.jsonl"


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


# ---------------------------------------------------------------------------
# red flags
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RedFlag:
    """A reason to stop training and see a doctor (``urgent``: seek urgent care now)."""

    category: str
    urgent: bool
    evidence: str
    time: datetime | None = None

    def as_dict(self) -> dict:
        return {
            "category": self.category,
            "urgent": self.urgent,
            "evidence": self.evidence,
            "time": None if self.time is None else format_time(self.time),
            "description": FLAG_DESCRIPTIONS[self.category],
        }


FLAG_DESCRIPTIONS = {
    "bladder_bowel": "loss of bladder or bowel control",
    "saddle_numbness": "numbness around the groin, genitals, buttocks or inner thighs (saddle area)",
    "numbness": "numbness or tingling",
    "weakness": "weakness",
    "radiating_pain": "pain spreading down the legs",
    "worsening": "pain that has kept getting worse for more than a week or two",
}
URGENT_CATEGORIES = {"bladder_bowel", "saddle_numbness"}

_LEG = r"(?:legs?|thighs?|calf|calves|knees?|foot|feet|toes?|shins?|hamstrings?|ankles?|heels?)"
_DET = r"(?:(?:my|the|both|one|left|right|each|his|her|a|of)\s+)*"
_SADDLE = (
    r"(?:groin|genitals?|genital area|crotch|perineum|anus|bum|buttocks?|bottom|inner thighs?|private parts|"
    r"saddle(?: area)?|back passage|between (?:my|the) legs)"
)
_BLADDER = r"(?:bladder|bowels?|pee|urine|wee|poo|stool|toilet)"
_SYMPTOM_PATTERNS: dict[str, list[str]] = {
    "bladder_bowel": [
        r"(?:loss|lost|losing|lose|no)\s+(?:of\s+)?(?:my\s+)?(?:bladder|bowel)s?(?:\s+(?:or|and|/)\s+(?:bladder|bowel)s?)?\s+control",
        r"(?:loss|lost|losing|lose)\s+(?:of\s+)?control\s+(?:of|over)\s+(?:my\s+)?(?:bladder|bowels?)",
        r"(?:can'?t|cannot|could\s?n'?t|unable\s+to|trouble|difficulty|problems?|struggl\w*)\s+(?:to\s+|with\s+)?(?:control|controlling|hold|holding)\s+(?:in\s+)?(?:my\s+)?"
        + _BLADDER,
        r"(?:can'?t|cannot|could\s?n'?t|unable\s+to|trouble|difficulty|struggl\w*)\s+(?:to\s+)?(?:pee|peeing|urinate|urinating|wee|pass\s+urine|passing\s+urine|empty\s+my\s+bladder|start\s+peeing)\b",
        r"(?:bladder|bowel)s?\s+(?:control\s+)?(?:problems?|issues?|trouble|accidents?|leak\w*|incontinence|dysfunction)",
        r"incontinen(?:t|ce)",
        r"(?:wet|peed|pissed|pooed|pooped|soiled|shat)\s+(?:myself|my\s+pants|the\s+bed)",
        r"urinary\s+retention|retention\s+of\s+urine",
        r"leak\w*\s+(?:urine|pee|stool)",
    ],
    "saddle_numbness": [
        r"saddle\s+(?:area\s+)?(?:numb\w*|an(?:a)?esthesia|tingl\w*)",
        r"(?:numb\w*|tingl\w*|pins\s+and\s+needles|no\s+feeling|loss\s+of\s+feeling|lost\s+feeling)\s+(?:in\s+|around\s+|of\s+|on\s+)?"
        + _DET
        + _SADDLE,
        _SADDLE
        + r"\s+(?:is\s+|are\s+|feels?\s+|felt\s+|feeling\s+|went\s+|goes\s+|going\s+|has\s+gone\s+)?(?:numb\w*|tingl\w*|dead)",
        r"(?:can'?t|cannot|could\s?n'?t)\s+feel\s+(?:my\s+)?(?:groin|genitals|crotch|bum|bottom|anus|private\s+parts|when\s+i\s+(?:wipe|pee))",
    ],
    "numbness": [
        r"numb(?:ness|ed|ing)?\b",
        r"tingl(?:e|es|ing|y)\b",
        r"pins\s+and\s+needles",
        r"(?:lost|loss\s+of|no|reduced|less)\s+(?:feeling|sensation)\s+(?:in|on)\b",
        r"(?:can'?t|cannot|could\s?n'?t)\s+feel\s+" + _DET + _LEG,
    ],
    "weakness": [
        r"weakness\b",
        r"weak\w*\s+(?:in\s+)?" + _DET + _LEG,
        _LEG
        + r"\s+(?:(?:is|are|feels?|felt|feeling|went|go|goes|going|getting|gets|got|keeps?|kept|been|have|has|started|starting|to|so|very|really)\s+)*"
        r"(?:weak\w*|giving\s+(?:way|out)|gave\s+(?:way|out)|buckl\w*|collaps\w*)",
        r"foot\s+drop|drop\s+foot|drag\w*\s+(?:my\s+)?(?:foot|leg)",
        r"(?:can'?t|cannot|could\s?n'?t|unable\s+to|trouble|difficulty)\s+(?:to\s+)?(?:lift|raise|move|flex|point|stand\s+on|walk\s+on)\s+"
        + _DET
        + r"(?:foot|feet|toes?|heels?|legs?|ankles?)",
        r"trip\w*\s+over\s+(?:my\s+)?(?:own\s+)?(?:foot|feet|toes)",
    ],
    "radiating_pain": [
        r"(?:radiat\w*|spread\w*|shoot\w*|travel\w*|go|goes|going|went|gone|runs?|running|ran|moves?|moving|moved|extend\w*)\s+(?:all\s+the\s+way\s+)?"
        r"(?:down|into|to|through|along)(?:\s+(?:to|into))?\s+(?:the\s+back\s+of\s+)?" + _DET + _LEG,
        r"(?:pain|ache|aching|burning|shooting|electric\w*(?:\s+shocks?)?|zing\w*|zaps?)(?:\s+(?!(?:no|not|never|without|nor)\b)\w+){0,3}?\s+(?:down|into)\s+(?:the\s+back\s+of\s+)?"
        + _DET
        + _LEG,
        r"sciatic(?:a)?\b",
    ],
    "worsening": [
        r"(?:worse|worsening|worsened|increasing|building|escalating|more\s+and\s+more\s+pain)\b(?:(?!\bnot\b|\bno\b|n't\b|\bnever\b|\bbut\b)[^.;!?\n]){0,40}?\b"
        r"(?:for|over|since|in)\s+(?:the\s+)?(?:(?:last|past)\s+)?(?P<q1>more\s+than\s+|over\s+|about\s+|almost\s+|nearly\s+|around\s+)?"
        r"(?:(?P<n1>a|an|one|two|three|four|five|six|several|many|few|a\s+few|a\s+couple\s+of|couple\s+of|\d+)\s+)?(?P<u1>days?|weeks?|wks?|months?)\b",
        r"(?:for|over|since)\s+(?:the\s+)?(?:(?:last|past)\s+)?(?P<q2>more\s+than\s+|over\s+|about\s+|almost\s+|nearly\s+|around\s+)?"
        r"(?:(?P<n2>a|an|one|two|three|four|five|six|several|many|few|a\s+few|a\s+couple\s+of|couple\s+of|\d+)\s+)?(?P<u2>days?|weeks?|wks?|months?)\b"
        r"(?:(?!\bnot\b|\bno\b|n't\b|\bnever\b|\bbut\b)[^.;!?\n]){0,30}?\b(?:worse|worsening|worsened|getting\s+worse|increasing)",
    ],
}
_COMPILED = {cat: [re.compile(p, re.IGNORECASE) for p in pats] for cat, pats in _SYMPTOM_PATTERNS.items()}
_NEGATION = re.compile(
    r"\b(?:no|not|never|without|none|nor|neither|denies|deny|denied|zero|free\s+of|absence\s+of)\b|n't\b",
    re.IGNORECASE,
)
_BOUNDARY = re.compile(
    r"[.;:!?\n()]|\b(?:but|however|although|though|yet|except|apart\s+from|other\s+than|whereas|while)\b",
    re.IGNORECASE,
)
_FILLER = {
    "any",
    "more",
    "longer",
    "real",
    "new",
    "further",
    "sign",
    "signs",
    "of",
    "feel",
    "feeling",
    "felt",
    "feelings",
    "have",
    "has",
    "had",
    "got",
    "get",
    "getting",
    "experience",
    "experienced",
    "experiencing",
    "noticed",
    "notice",
    "notices",
    "i",
    "i've",
    "ive",
    "my",
    "the",
    "a",
    "in",
    "at",
    "all",
    "symptoms",
    "symptom",
    "obvious",
    "significant",
    "is",
    "are",
    "was",
    "were",
    "there",
    "there's",
    "been",
    "pain",
    "back",
    "ache",
    "aches",
    "lower",
    "low",
    "it",
    "it's",
    "does",
    "do",
    "did",
    "that",
    "this",
    "sort",
    "kind",
    "bit",
    "whatsoever",
    "today",
    "anymore",
}
_CONNECTORS = {"or", "and", "nor", "/", "&", "either"}
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "several": 3,
    "many": 3,
    "few": 3,
    "a few": 3,
    "a couple of": 2,
    "couple of": 2,
}
_UNIT_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "wk": 7, "wks": 7, "month": 30, "months": 30}


def _normalise(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")


def _worsening_days(m: re.Match) -> tuple[float, bool]:
    g = m.groupdict()
    q = g.get("q1") or g.get("q2") or ""
    n = re.sub(r"\s+", " ", (g.get("n1") or g.get("n2") or "").lower())
    u = (g.get("u1") or g.get("u2") or "").lower()
    if not n:  # "for weeks", "over the last month"
        count = 2.0 if u.endswith("s") else 1.0
    else:
        count = float(n) if n.isdigit() else float(_NUMBERS.get(n, 1))
    return count * _UNIT_DAYS.get(u, 7), bool(q.strip().lower().startswith(("more", "over")))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _negated(text: str, start: int, all_spans: list[tuple[int, int]]) -> bool:
    """True when a negation cue governs the phrase starting at ``start``:
    "no X", "not X", "without any X", "no X, Y or Z", "doesn't have X" —
    within the same clause and with only filler words or other symptoms
    (joined by commas/or/and) in between."""
    clause_start = 0
    for b in _BOUNDARY.finditer(text, 0, start):
        clause_start = b.end()
    prefix = text[clause_start:start]
    cues = list(_NEGATION.finditer(prefix))
    if not cues:
        return False
    gap_start = clause_start + cues[-1].end()
    # replace other symptom phrases inside the gap by a SYM token
    pieces, pos = [], gap_start
    for s, e in all_spans:
        if s >= gap_start and e <= start:
            pieces.append(text[pos:s])
            pieces.append(" SYM ")
            pos = e
    pieces.append(text[pos:start])
    gap = "".join(pieces).lower()
    tokens = re.findall(r"SYM|sym|,|[a-z']+|[/&]", gap)
    fillers = 0
    prev = None
    for tok in tokens:
        if tok in ("SYM", "sym"):
            pass
        elif tok == ",":
            if prev not in ("SYM", "sym"):
                return False  # "no back pain today, numbness ..." is not a negated list
        elif tok in _CONNECTORS:
            pass
        elif tok in _FILLER:
            fillers += 1
        else:
            return False
        prev = tok
    return fillers <= 5


def red_flags_in_text(text: str, time: datetime | None = None) -> list[RedFlag]:
    """Red-flag symptoms mentioned (and not negated) in ``text``. Case-insensitive;
    handles "no X", "not X", "without X", "never X", "X-n't" and negated lists
    ("no numbness, tingling or weakness"). A doubtful phrasing flags (a false
    alarm is cheaper than a missed one)."""
    if not text:
        return []
    text = _normalise(text)
    found: dict[str, list[tuple[int, int, re.Match]]] = {}
    for cat, pats in _COMPILED.items():
        for p in pats:
            for m in p.finditer(text):
                found.setdefault(cat, []).append((m.start(), m.end(), m))
    all_spans = _merge([(s, e) for hits in found.values() for s, e, _ in hits])
    flags: list[RedFlag] = []
    urgent_spans: list[tuple[int, int]] = []
    for cat in ("bladder_bowel", "saddle_numbness", "numbness", "weakness", "radiating_pain", "worsening"):
        hits = found.get(cat, [])
        if not hits:
            continue
        merged = _merge([(s, e) for s, e, _ in hits])
        for s, e in merged:
            if cat not in URGENT_CATEGORIES and any(us <= s < ue or s <= us < e for us, ue in urgent_spans):
                continue  # already covered by an urgent flag ("numbness in my groin")
            if _negated(text, s, all_spans):
                continue
            if cat == "worsening":
                ms = [m for hs, he, m in hits if s <= hs < e]
                if not any(
                    (d >= WORSENING_MIN_DAYS) or (more and d >= 7) for d, more in map(_worsening_days, ms)
                ):
                    continue
            if cat in URGENT_CATEGORIES:
                urgent_spans.append((s, e))
            flags.append(RedFlag(cat, cat in URGENT_CATEGORIES, text[s:e].strip(), time))
            break  # one flag per category per text is enough
    return flags


def _kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    conc = disc = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            s = (x[j] - x[i]) * (y[j] - y[i])
            if s > 0:
                conc += 1
            elif s < 0:
                disc += 1
    pairs = n * (n - 1) / 2
    return 0.0 if pairs == 0 else (conc - disc) / pairs


@dataclass(frozen=True)
class Trend:
    """A rising pain trend: daily mean pain from ``start`` to ``end``."""

    start: date
    end: date
    days: float
    first_pain: float
    last_pain: float
    rise: float
    tau: float
    points: int


def worsening_trend(entries: Sequence[Entry], *, min_days: float = WORSENING_MIN_DAYS) -> Trend | None:
    """A pain trend still rising at the latest entry for at least ``min_days``.

    Pain is averaged per UTC day. For the last 14, 21 and 28 days before the
    latest day: if at least 3 days have entries, the first of them is at
    least ``min_days`` back, the least-squares rise over the span is at least
    ``WORSENING_MIN_RISE`` points, the rise is mostly monotonic (Kendall tau >=
    ``WORSENING_MIN_TAU``) and the latest day is worse than the first, pain
    has been worsening."""
    if not entries:
        return None
    per_day: dict[date, list[int]] = {}
    for e in entries:
        per_day.setdefault(e.time.astimezone(UTC).date(), []).append(e.pain)
    days = sorted(per_day)
    last = days[-1]
    for span in WORSENING_SPANS_DAYS:
        window = [d for d in days if (last - d).days <= span]
        if len(window) < 3 or (last - window[0]).days < min_days:
            continue
        x = [float((d - window[0]).days) for d in window]
        y = [sum(per_day[d]) / len(per_day[d]) for d in window]
        mx, my = sum(x) / len(x), sum(y) / len(y)
        sxx = sum((a - mx) ** 2 for a in x)
        slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx if sxx > 0 else 0.0
        rise = slope * (x[-1] - x[0])
        tau = _kendall_tau(x, y)
        if rise >= WORSENING_MIN_RISE and tau >= WORSENING_MIN_TAU and y[-1] > y[0]:
            return Trend(window[0], last, x[-1] - x[0], y[0], y[-1], rise, tau, len(window))
    return None


def trend_flag(entries: Sequence[Entry]) -> RedFlag | None:
    """The worsening-trend rule as a :class:`RedFlag` (``None`` when pain is not worsening)."""
    trend = worsening_trend(entries)
    if trend is None:
        return None
    return RedFlag(
        "worsening",
        False,
        f"pain rose from {trend.first_pain:.1f} to {trend.last_pain:.1f} over {trend.days:.0f} days "
        f"({trend.start.isoformat()} .. {trend.end.isoformat()}, {trend.points} days with entries)",
        datetime.combine(trend.end, datetime.min.time(), UTC),
    )


def red_flags(entries: Sequence[Entry]) -> list[RedFlag]:
    """Red flags in the notes of ``entries`` plus the worsening-trend rule over them."""
    flags = [f for e in entries for f in red_flags_in_text(e.note, e.time)]
    trend = trend_flag(entries)
    if trend is not None:
        flags.append(trend)
    return flags


def red_flag_message(flags: Sequence[RedFlag]) -> str:
    """A prominent block of text for ``flags`` ("" when there are none)."""
    if not flags:
        return ""
    bar = "!" * 72
    lines = [bar]
    if any(f.urgent for f in flags):
        lines += [
            "!! URGENT: STOP TRAINING AND SEEK URGENT MEDICAL CARE NOW",
            "!! (emergency department or your emergency number).",
            "!! Loss of bladder or bowel control, or numbness around the groin,",
            "!! genitals or buttocks, can mean a nerve emergency in the lower",
            "!! back that needs treatment within hours.",
        ]
    else:
        lines += [
            "!! STOP TRAINING AND SEE A DOCTOR",
            "!! Your journal mentions a warning sign that needs a medical",
            "!! assessment before you load your back again.",
        ]
    lines.append("!! Found:")
    seen = set()
    for f in flags:
        key = (f.category, f.evidence)
        if key in seen:
            continue
        seen.add(key)
        when = "" if f.time is None else f" ({format_time(f.time)[:10]})"
        lines.append(f'!!  - {FLAG_DESCRIPTIONS[f.category]}: "{f.evidence}"{when}')
    lines += ["!! spinemon is a training aid, not a medical device.", bar]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------
def pattern_name(kind: str, exercise: str) -> str:
    """Plain words for an event kind in an exercise, e.g. "rounding in deadlifts", "arching overhead"."""
    if kind == "over_extension" and exercise == "overhead_press":
        return "arching overhead"
    what = KIND_NAMES.get(kind, kind.replace("_", " "))
    return f"{what} in {EXERCISE_PLURALS.get(exercise, exercise.replace('_', ' ') + 's')}"


def exercise_name(exercise: str) -> str:
    return EXERCISE_PLURALS.get(exercise, exercise.replace("_", " ") + "s")


@dataclass
class SessionPain:
    """One linked session with the pain logged around it."""

    path: str
    time: datetime
    link: SessionLink
    before: list[int] = field(default_factory=list)
    during: list[int] = field(default_factory=list)
    after: list[int] = field(default_factory=list)
    before_paired: bool = False

    @property
    def pain_before(self) -> float | None:
        return _mean(self.before)

    @property
    def pain_after(self) -> float | None:
        return _mean(self.after)

    @property
    def change(self) -> float | None:
        b, a = self.pain_before, self.pain_after
        return None if a is None or b is None else a - b


def _mean(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def sessions_from(entries: Sequence[Entry]) -> list[SessionPain]:
    """Group linked entries by recording; pair each session with the latest
    unlinked ``before`` entry up to 12 h before its first linked entry when it
    has no linked ``before`` entry (the recording does not exist yet when
    pain before is logged)."""
    by_path: dict[str, SessionPain] = {}
    for e in entries:
        if e.session is None:
            continue
        sp = by_path.get(e.session.path)
        if sp is None:
            sp = by_path[e.session.path] = SessionPain(e.session.path, e.time, e.session)
        sp.time = min(sp.time, e.time)
        getattr(sp, e.phase if e.phase in ("before", "during", "after") else "during").append(e.pain)
    sessions = sorted(by_path.values(), key=lambda s: s.time)
    used: set[int] = set()
    unlinked_before = [(i, e) for i, e in enumerate(entries) if e.session is None and e.phase == "before"]
    for sp in sessions:
        if sp.before:
            continue
        cands = [
            (i, e)
            for i, e in unlinked_before
            if i not in used and sp.time - PAIR_BEFORE_WINDOW <= e.time <= sp.time
        ]
        if cands:
            i, e = max(cands, key=lambda ie: ie[1].time)
            used.add(i)
            sp.before.append(e.pain)
            sp.before_paired = True
    return sessions


def _group(sessions: Sequence[SessionPain]) -> dict:
    after = [s.pain_after for s in sessions if s.pain_after is not None]
    change = [s.change for s in sessions if s.change is not None]
    return {
        "sessions": len(sessions),
        "with_pain_after": len(after),
        "mean_pain_after": _round(_mean(after)),
        "with_change": len(change),
        "mean_change": _round(_mean(change)),
    }


def _compare(name: str, key: dict, with_: list[SessionPain], without: list[SessionPain]) -> dict:
    gw, go = _group(with_), _group(without)
    enough = (
        gw["with_pain_after"] >= MIN_SESSIONS_PER_GROUP and go["with_pain_after"] >= MIN_SESSIONS_PER_GROUP
    )
    enough_change = (
        gw["with_change"] >= MIN_SESSIONS_PER_GROUP and go["with_change"] >= MIN_SESSIONS_PER_GROUP
    )
    diff = gw["mean_pain_after"] - go["mean_pain_after"] if enough else None
    diff_change = gw["mean_change"] - go["mean_change"] if enough_change else None
    return {
        "name": name,
        **key,
        "with": gw,
        "without": go,
        "enough_data": enough,
        "difference_pain_after": _round(diff),
        "difference_change": _round(diff_change),
    }


def summarize(entries: Sequence[Entry], *, weeks: int | None = None, now: datetime | None = None) -> dict:
    """The journal summary as a JSON-ready dict.

    Over the window (the last ``weeks`` weeks, or everything): per exercise
    and per pattern (event kind x exercise), pain after sessions that had it
    vs sessions that did not (mean pain after; mean change after - before
    where both were logged; counts), a difference only when each group has at
    least ``MIN_SESSIONS_PER_GROUP`` sessions; pain by ISO week; red flags."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if weeks is not None and weeks <= 0:
        raise ConfigError(f"--weeks must be a positive whole number, got {weeks}")
    since = now - timedelta(weeks=weeks) if weeks is not None else None
    window = [e for e in entries if since is None or e.time >= since]
    sessions = sessions_from(window)
    exercises = sorted({ex for s in sessions for ex in s.link.exercises})
    patterns = sorted({p for s in sessions for p in s.link.patterns}, key=lambda p: (p[1], p[0]))
    ex_rows = [
        _compare(
            exercise_name(ex),
            {"exercise": ex},
            [s for s in sessions if ex in s.link.exercises],
            [s for s in sessions if ex not in s.link.exercises],
        )
        for ex in exercises
    ]
    pat_rows = []
    for kind, ex in patterns:
        with_ = [s for s in sessions if (kind, ex) in s.link.patterns]
        row = _compare(
            pattern_name(kind, ex),
            {"kind": kind, "exercise": ex},
            with_,
            [s for s in sessions if (kind, ex) not in s.link.patterns],
        )
        row["events"] = sum(s.link.events.get(kind, {}).get(ex, 0) for s in with_)
        pat_rows.append(row)
    pat_rows.sort(
        key=lambda r: (r["difference_pain_after"] is None, -(r["difference_pain_after"] or 0.0), r["name"])
    )
    weeks_rows = []
    by_week: dict[date, list[Entry]] = {}
    for e in window:
        d = e.time.date()
        by_week.setdefault(d - timedelta(days=d.weekday()), []).append(e)
    for monday in sorted(by_week):
        es = by_week[monday]
        iso = monday.isocalendar()
        weeks_rows.append(
            {
                "week": f"{iso[0]}-W{iso[1]:02d}",
                "monday": monday.isoformat(),
                "entries": len(es),
                "mean_pain": _round(_mean(e.pain for e in es)),
                "max_pain": max(e.pain for e in es),
                "mean_before": _round(_mean(e.pain for e in es if e.phase == "before")),
                "mean_after": _round(_mean(e.pain for e in es if e.phase == "after")),
                "sessions": sum(
                    1 for s in sessions if s.time.date() - timedelta(days=s.time.weekday()) == monday
                ),
            }
        )
    flags = red_flags(window)
    return {
        "window": {
            "weeks": weeks,
            "since": None if since is None else format_time(since),
            "until": format_time(now),
        },
        "entries": len(window),
        "sessions": len(sessions),
        "sessions_with_pain_after": sum(1 for s in sessions if s.pain_after is not None),
        "sessions_with_change": sum(1 for s in sessions if s.change is not None),
        "min_sessions_per_group": MIN_SESSIONS_PER_GROUP,
        "exercises": ex_rows,
        "patterns": pat_rows,
        "weeks": weeks_rows,
        "red_flags": [f.as_dict() for f in flags],
        "caveat": "Association, not cause: a pattern that came before higher pain in your journal did not necessarily cause it.",
    }


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.1f}" if signed else f"{x:.1f}"


def _comparison_lines(row: dict, label: str) -> list[str]:
    w, o = row["with"], row["without"]
    lines = [f"  {row['name']}" + (f"  ({row['events']} flagged event(s))" if "events" in row else "")]
    lines.append(
        f"    pain after: {_fmt(w['mean_pain_after'])} with {label} (n={w['with_pain_after']}) vs "
        f"{_fmt(o['mean_pain_after'])} without (n={o['with_pain_after']})"
    )
    if w["with_change"] or o["with_change"]:
        lines.append(
            f"    change after-before: {_fmt(w['mean_change'], True)} with (n={w['with_change']}) vs "
            f"{_fmt(o['mean_change'], True)} without (n={o['with_change']})"
        )
    if not row["enough_data"]:
        lines.append(
            f"    too little data to compare (need at least {MIN_SESSIONS_PER_GROUP} sessions with pain logged after, in each group)"
        )
    else:
        d = row["difference_pain_after"]
        if d >= 1.0:
            lines.append(
                f"    -> came before higher pain: {d:+.1f} points after sessions with {label} (an association, not proof of cause)"
            )
        elif d <= -1.0:
            lines.append(
                f"    -> came before lower pain: {d:+.1f} points (an association, not proof of cause)"
            )
        else:
            lines.append(f"    -> no clear difference ({d:+.1f} points)")
    return lines


def format_summary(s: dict) -> str:
    """The summary as text."""
    win = "all entries" if s["window"]["weeks"] is None else f"the last {s['window']['weeks']} week(s)"
    out = [
        f"Pain journal summary, {win}: {s['entries']} entries, {s['sessions']} linked sessions "
        f"({s['sessions_with_pain_after']} with pain logged after, {s['sessions_with_change']} with before and after)."
    ]
    msg = red_flag_message(
        [
            RedFlag(f["category"], f["urgent"], f["evidence"], parse_time(f["time"]) if f["time"] else None)
            for f in s["red_flags"]
        ]
    )
    if msg:
        out += ["", msg]
    if s["sessions"] == 0:
        out += [
            "",
            "No sessions linked yet: add pain after a session with 'spinemon journal add --pain N --session FILE'.",
        ]
    else:
        out += ["", "Exercises (pain after sessions that included it vs sessions that did not):"]
        for row in s["exercises"]:
            out += _comparison_lines(row, "it")
        out += [
            "",
            "Flagged patterns (pain after sessions where spinemon flagged it vs sessions where it did not):",
        ]
        if not s["patterns"]:
            out.append("  none: no linked session had a flagged event")
        for row in s["patterns"]:
            out += _comparison_lines(row, "it")
    if s["weeks"]:
        out += [
            "",
            "By week:",
            f"  {'week':<9} {'entries':>7} {'mean':>5} {'max':>4} {'before':>6} {'after':>6} {'sessions':>8}",
        ]
        for w in s["weeks"]:
            out.append(
                f"  {w['week']:<9} {w['entries']:>7} {_fmt(w['mean_pain']):>5} {w['max_pain']:>4} "
                f"{_fmt(w['mean_before']):>6} {_fmt(w['mean_after']):>6} {w['sessions']:>8}"
            )
    out += ["", s["caveat"]]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def _weeks(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of weeks") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("weeks must be at least 1")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``spinemon journal add|list|summary`` for an argparse (sub)parser."""
    sub = parser.add_subparsers(
        dest="journal_command", metavar="ACTION", parser_class=type(parser), required=True
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--journal",
        metavar="PATH",
        help="journal file (default $SPINEMON_HOME/journal.jsonl or ~/.spinemon/journal.jsonl)",
    )

    a = sub.add_parser(
        "add",
        parents=[common],
        help="log back pain 0-10",
        description="Log back pain (0 none .. 10 worst imaginable) with an optional note and session recording.",
    )
    a.add_argument(
        "--pain",
        required=True,
        type=argtypes.pain,
        metavar="N",
        help="pain 0 (none) .. 10 (worst imaginable)",
    )
    a.add_argument(
        "--phase",
        metavar="|".join(PHASES),
        help="when: before, during or after a session, or other (default: after with --session, else other)",
    )
    a.add_argument("--note", default="", help="a note (symptoms, what you did)")
    a.add_argument("--session", metavar="FILE", help="link a session recording (.spinrec)")
    a.add_argument(
        "--at", metavar="ISO", help="when the pain was felt, ISO 8601 (default now; no offset = local time)"
    )

    ls = sub.add_parser(
        "list",
        parents=[common],
        help="list journal entries",
        description="List journal entries, oldest first.",
    )
    ls.add_argument("--weeks", type=_weeks, help="only the last N weeks")
    ls.add_argument("--json", action="store_true", help="print JSON")

    sm = sub.add_parser(
        "summary",
        parents=[common],
        help="what came before higher pain",
        description="Which exercises and flagged patterns came before higher pain, and pain by week.",
    )
    sm.add_argument("--weeks", type=_weeks, help="only the last N weeks")
    sm.add_argument("--json", action="store_true", help="print JSON")


def _journal_of(args: argparse.Namespace) -> Journal:
    return Journal(getattr(args, "journal", None) or None)


def _load_notes(rep: LoadReport, journal: Journal) -> list[str]:
    notes = []
    if rep.skipped_lines:
        torn = " (the last line was cut off mid-write)" if rep.torn_last_line else ""
        notes.append(
            f"note: skipped {len(rep.skipped_lines)} unreadable line(s) in {journal.path}{torn}: line(s) {', '.join(map(str, rep.skipped_lines[:10]))}"
        )
    return notes


def main(args: argparse.Namespace, stream: TextIO | None = None, *, now: datetime | None = None) -> int:
    """``spinemon journal ...``: 0 on success; raises :class:`SpinemonError` subclasses for bad input."""
    out = stream or sys.stdout
    journal = _journal_of(args)
    existing = journal.load()
    if (
        existing.skipped_lines
        and not existing.entries
        and not (existing.torn_last_line and len(existing.skipped_lines) == 1)
    ):
        # a non-empty file with not one readable entry is not a journal: never append to it
        raise JournalError(
            f"{journal.path} has no readable journal entries ({len(existing.skipped_lines)} unreadable line(s)); "
            "check that --journal points at a spinemon journal (.jsonl), or choose a new path"
        )
    cmd = getattr(args, "journal_command", None)
    if cmd == "add":
        entry = journal.add(args.pain, args.phase, args.note or "", args.session, args.at, now=now)
        where = ""
        if entry.session is not None:
            s = entry.session
            where = f", session {Path(s.path).name} ({', '.join(s.exercises)}; {s.n_events} flagged event(s))"
        print(
            f"logged pain {entry.pain}/10 {entry.phase} at {format_time(entry.time)}{where} -> {journal.path}",
            file=out,
        )
        rep = journal.load()
        flags = red_flags_in_text(entry.note, entry.time)
        trend = trend_flag(rep.entries)
        if trend is not None:
            flags.append(trend)
        msg = red_flag_message(flags)
        if msg:
            print(msg, file=out)
        return 0
    if cmd == "list":
        rep = journal.load()
        now_ = (now or datetime.now(UTC)).astimezone(UTC)
        entries = [
            e for e in rep.entries if args.weeks is None or e.time >= now_ - timedelta(weeks=args.weeks)
        ]
        flags = red_flags(entries)
        if getattr(args, "json", False):
            doc = {
                "journal": str(journal.path),
                "entries": [e.as_dict() for e in entries],
                "skipped_lines": rep.skipped_lines,
                "torn_last_line": rep.torn_last_line,
                "red_flags": [f.as_dict() for f in flags],
            }
            print(json.dumps(doc, indent=2, ensure_ascii=False), file=out)
            return 0
        for n in _load_notes(rep, journal):
            print(n, file=out)
        if not entries:
            print(
                f"no journal entries{'' if args.weeks is None else f' in the last {args.weeks} week(s)'} in {journal.path}",
                file=out,
            )
        else:
            print(f"{'time (UTC)':<20} {'pain':>4}  {'phase':<6}  {'session':<24} note", file=out)
            for e in entries:
                sess = "" if e.session is None else Path(e.session.path).name
                flag = " [!]" if red_flags_in_text(e.note) else ""
                print(
                    f"{format_time(e.time):<20} {e.pain:>4}  {e.phase:<6}  {sess[:24]:<24} {e.note}{flag}",
                    file=out,
                )
        msg = red_flag_message(flags)
        if msg:
            print(msg, file=out)
        return 0
    if cmd == "summary":
        rep = journal.load()
        s = summarize(rep.entries, weeks=args.weeks, now=now)
        s["journal"] = str(journal.path)
        s["skipped_lines"] = rep.skipped_lines
        s["torn_last_line"] = rep.torn_last_line
        if getattr(args, "json", False):
            print(json.dumps(s, indent=2, ensure_ascii=False), file=out)
            return 0
        for n in _load_notes(rep, journal):
            print(n, file=out)
        print(format_summary(s), file=out)
        return 0
    raise ConfigError("no journal action given: use add, list or summary (see 'spinemon journal --help')")
