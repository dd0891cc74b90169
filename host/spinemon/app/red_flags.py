"""Red flags in the pain journal: the symptoms that mean "stop and see a doctor".

:func:`red_flags_in_text` looks for them in an entry's note (numbness,
weakness, pain spreading down the legs; urgent: loss of bladder or bowel
control, numbness in the saddle area) with phrase patterns that skip negated
mentions ("no numbness"); :func:`worsening_trend` finds pain rising for more
than about two weeks (a Kendall tau over the entries). spinemon is a training
aid, not a medical device: these checks are a safety net with simple phrase
matching, not a diagnosis. :func:`red_flag_message` is the text the user sees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from spinemon.app.journal import Entry, format_time

#: the worsening rule: rising over at least this many days ...
WORSENING_MIN_DAYS = 10.0


#: ... by at least this many points (fitted), mostly monotonically (Kendall tau)
WORSENING_MIN_RISE = 2.0


WORSENING_MIN_TAU = 0.6


WORSENING_SPANS_DAYS = (14, 21, 28)


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
