"""The pain journal: add/list/summary on a temp journal linked to simulated
sessions, red-flag detection (with negations), torn-file tolerance, and clear
errors for bad input."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from spinemon.app import journal as jr
from spinemon.app import pain_analysis as pa
from spinemon.app import red_flags as rf
from spinemon.app.commands import journal as jc
from spinemon.io import sim
from spinemon.errors import ConfigError, RecordingError, SpinemonError
from spinemon.io.recording import load
from spinemon.app.simrun import run_simulated

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=timezone.utc)  # a Monday


# -- fixtures --------------------------------------------------------------------
@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    """Three short simulated sessions through the live path: a rounded deadlift
    rep, a clean deadlift set, and an arched overhead press rep."""
    d = tmp_path_factory.mktemp("recs")
    specs = {
        "rounded_dl": [sim.SetSpec("deadlift", 3, {2: "rounding"}, rest_s=2.0)],
        "clean_dl": [sim.SetSpec("deadlift", 3, rest_s=2.0)],
        "arched_ohp": [sim.SetSpec("overhead_press", 3, {2: "arching"}, rest_s=2.0)],
    }
    out = {}
    for name, sets in specs.items():
        p = d / f"{name}.spinrec"
        run = run_simulated(sets, 3, out=p)
        out[name] = p
        out[name + "_events"] = [(e.kind, e.exercise) for e in run.result.events]
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spinemon journal")
    jc.add_arguments(p)
    return p


def run(journal_path: Path, *argv: str, now: datetime = NOW) -> str:
    """`spinemon journal ARGV --journal PATH`, output as text."""
    ns = parser().parse_args([*argv, "--journal", str(journal_path)])
    buf = io.StringIO()
    assert jc.main(ns, buf, now=now) == 0
    return buf.getvalue()


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_simulated_sessions_have_the_expected_events(recordings):
    # (other event kinds may fire too as detection grows; the journal handles any kind)
    assert recordings["rounded_dl_events"].count(("over_flexion", "deadlift")) == 1
    assert not [e for e in recordings["clean_dl_events"] if e[0] in ("over_flexion", "over_extension")]
    assert recordings["arched_ohp_events"].count(("over_extension", "overhead_press")) == 1
    assert ("over_flexion", "deadlift") not in recordings["arched_ohp_events"]


# -- add / list / summary end to end -----------------------------------------------
# (weeks before NOW, recording, pain before (unlinked, 1 h earlier), pain after)
PLAN = [
    (8.0, "rounded_dl", 2, 6),
    (7.0, "clean_dl", 2, 3),
    (6.0, "rounded_dl", 3, 7),
    (5.0, "clean_dl", 2, 2),
    (4.0, "rounded_dl", 2, 6),
    (3.0, "clean_dl", 3, 3),
    (2.0, "arched_ohp", 2, 4),
    (1.0, "rounded_dl", 2, 7),
    (0.5, "clean_dl", 2, 2),
]


@pytest.fixture
def filled(tmp_path, recordings) -> Path:
    """A journal over eight weeks; each session is its own recording file (a
    copy), with pain logged one hour before (not linked: the recording does
    not exist yet) and after (linked)."""
    j = tmp_path / "journal.jsonl"
    for i, (weeks_ago, name, before, after) in enumerate(PLAN):
        rec = tmp_path / f"s{i}-{name}.spinrec"
        shutil.copy(recordings[name], rec)
        t = NOW - timedelta(weeks=weeks_ago)
        run(j, "add", "--pain", str(before), "--phase", "before", "--at", iso(t - timedelta(hours=1)), "--note", "warm-up felt fine")
        out = run(j, "add", "--pain", str(after), "--session", str(rec), "--at", iso(t))
        assert f"logged pain {after}/10 after" in out and rec.name in out
        assert "STOP TRAINING" not in out
    return j


def test_add_stores_entries_with_session_snapshot(filled, tmp_path, recordings):
    lines = filled.read_text().splitlines()
    assert len(lines) == 2 * len(PLAN)
    first_after = json.loads(lines[1])
    assert first_after["pain"] == 6 and first_after["phase"] == "after"
    assert first_after["time"] == iso(NOW - timedelta(weeks=8))
    s = first_after["session"]
    assert Path(s["path"]) == (tmp_path / "s0-rounded_dl.spinrec").resolve()
    assert s["exercises"] == ["deadlift"]
    assert s["events"]["over_flexion"] == {"deadlift": 1}
    assert sum(n for per in s["events"].values() for n in per.values()) == len(recordings["rounded_dl_events"])
    assert s["reps"] == {"deadlift": 3}
    assert s["events_from"] == "summary" and s["truncated"] is False
    assert s["source"] == "sim" and s["start"].endswith("Z")
    assert json.loads(lines[0])["phase"] == "before" and "session" not in json.loads(lines[0])


def test_summary_shows_the_pattern_that_came_before_higher_pain(filled):
    doc = json.loads(run(filled, "summary", "--json"))
    assert doc["entries"] == 2 * len(PLAN) and doc["sessions"] == len(PLAN)
    assert doc["sessions_with_pain_after"] == len(PLAN)
    assert doc["sessions_with_change"] == len(PLAN)  # every unlinked "before" paired with its session
    pats = {(p["kind"], p["exercise"]): p for p in doc["patterns"]}
    assert {("over_flexion", "deadlift"), ("over_extension", "overhead_press")} <= set(pats)
    assert ("over_extension", "deadlift") not in pats

    rnd = pats[("over_flexion", "deadlift")]
    assert rnd["name"] == "rounding in deadlifts"
    with_ = [p for p in PLAN if p[1] == "rounded_dl"]
    without = [p for p in PLAN if p[1] != "rounded_dl"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert rnd["with"]["sessions"] == len(with_) and rnd["without"]["sessions"] == len(without)
    assert rnd["with"]["mean_pain_after"] == pytest.approx(mean([p[3] for p in with_]), abs=0.01)
    assert rnd["without"]["mean_pain_after"] == pytest.approx(mean([p[3] for p in without]), abs=0.01)
    assert rnd["with"]["mean_change"] == pytest.approx(mean([p[3] - p[2] for p in with_]), abs=0.01)
    assert rnd["without"]["mean_change"] == pytest.approx(mean([p[3] - p[2] for p in without]), abs=0.01)
    assert rnd["enough_data"] is True
    assert rnd["difference_pain_after"] == pytest.approx(mean([p[3] for p in with_]) - mean([p[3] for p in without]), abs=0.02)
    assert rnd["events"] == len(with_)

    arch = pats[("over_extension", "overhead_press")]
    assert arch["name"] == "arching overhead"
    assert arch["with"]["sessions"] == 1 and arch["enough_data"] is False and arch["difference_pain_after"] is None
    # patterns with a difference sort first, the largest first
    assert doc["patterns"][0]["difference_pain_after"] == rnd["difference_pain_after"]

    exs = {r["exercise"]: r for r in doc["exercises"]}
    assert set(exs) == {"deadlift", "overhead_press"}
    assert exs["deadlift"]["with"]["sessions"] == 8 and exs["deadlift"]["without"]["sessions"] == 1
    assert exs["deadlift"]["enough_data"] is False  # only one session without deadlifts

    # pain by ISO week, checked against the plan
    weeks = {w["monday"]: w for w in doc["weeks"]}
    assert sum(w["entries"] for w in doc["weeks"]) == 2 * len(PLAN)
    assert sum(w["sessions"] for w in doc["weeks"]) == len(PLAN)
    t = NOW - timedelta(weeks=8)
    w8 = weeks[(t.date() - timedelta(days=t.weekday())).isoformat()]
    assert w8["entries"] == 2 and w8["mean_before"] == 2 and w8["mean_after"] == 6 and w8["max_pain"] == 6
    assert doc["red_flags"] == []
    assert "not cause" in doc["caveat"]


def test_summary_text_is_honest_about_association_and_data(filled):
    out = run(filled, "summary")
    assert "rounding in deadlifts" in out
    assert "came before higher pain" in out and "not proof of cause" in out
    assert "arching overhead" in out and "too little data" in out
    assert "n=4" in out and "n=5" in out  # counts shown
    assert "By week:" in out and "STOP TRAINING" not in out


def test_summary_window_in_weeks(filled):
    doc = json.loads(run(filled, "summary", "--weeks", "2", "--json"))
    # sessions 1.0 and 0.5 weeks ago (the one exactly 2 weeks ago had its "before" 1 h earlier: outside)
    assert doc["window"]["weeks"] == 2
    assert doc["sessions"] == 3 and doc["entries"] == 5
    assert all(not p["enough_data"] for p in doc["patterns"])
    assert "too little data" in run(filled, "summary", "--weeks", "2")


def test_list_text_and_json(filled):
    out = run(filled, "list")
    rows = [l for l in out.splitlines() if l.startswith("2025-")]
    assert len(rows) == 2 * len(PLAN)
    assert rows == sorted(rows)
    assert "s0-rounded_dl.spinrec" in out
    doc = json.loads(run(filled, "list", "--weeks", "1", "--json"))
    # the session exactly a week ago is in; its "before" an hour earlier is not
    assert [e["pain"] for e in doc["entries"]] == [7, 2, 2]
    assert doc["skipped_lines"] == [] and doc["red_flags"] == []


def test_before_entry_pairs_only_when_close_to_the_session(tmp_path, recordings):
    j = tmp_path / "j.jsonl"
    t = NOW - timedelta(days=3)
    run(j, "add", "--pain", "1", "--phase", "before", "--at", iso(t - timedelta(hours=20)))
    run(j, "add", "--pain", "5", "--session", str(recordings["clean_dl"]), "--at", iso(t))
    s = pa.sessions_from(jr.Journal(j).load().entries)
    assert len(s) == 1 and s[0].pain_before is None and s[0].change is None
    run(j, "add", "--pain", "4", "--phase", "before", "--at", iso(t - timedelta(hours=2)))
    s = pa.sessions_from(jr.Journal(j).load().entries)
    assert s[0].pain_before == 4 and s[0].change == 1 and s[0].before_paired
    # a linked "before" entry wins over an unlinked one
    run(j, "add", "--pain", "3", "--phase", "before", "--session", str(recordings["clean_dl"]), "--at", iso(t - timedelta(minutes=30)))
    s = pa.sessions_from(jr.Journal(j).load().entries)
    assert s[0].pain_before == 3 and not s[0].before_paired


def test_session_without_summary_is_replayed(tmp_path, recordings):
    src = recordings["rounded_dl"]
    torn = tmp_path / "torn.spinrec"
    torn.write_bytes(src.read_bytes()[:-20])  # the closing summary record is cut off
    assert load(torn).meta_of("summary") == []
    full, cut = jr.session_link(src), jr.session_link(torn)
    assert full.events_from == "summary" and cut.events_from == "replay"
    assert cut.truncated is True
    assert cut.events == full.events and full.events["over_flexion"] == {"deadlift": 1}
    assert cut.exercises == full.exercises == ("deadlift",)


def test_empty_journal(tmp_path):
    j = tmp_path / "none.jsonl"
    assert "no journal entries" in run(j, "list")
    out = run(j, "summary")
    assert "0 entries" in out and "No sessions linked yet" in out


def test_default_path_from_env_and_override(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEMON_HOME", str(tmp_path / "home"))
    assert jr.default_journal_path() == tmp_path / "home" / "journal.jsonl"
    ns = parser().parse_args(["add", "--pain", "3", "--at", iso(NOW)])
    assert jc.main(ns, io.StringIO(), now=NOW) == 0
    assert (tmp_path / "home" / "journal.jsonl").exists()  # SPINEMON_HOME created on first add
    monkeypatch.delenv("SPINEMON_HOME")
    assert jr.default_journal_path({}) == Path.home() / ".spinemon" / "journal.jsonl"
    other = tmp_path / "other.jsonl"
    run(other, "add", "--pain", "4", "--at", iso(NOW))
    assert len(other.read_text().splitlines()) == 1


# -- red flags ------------------------------------------------------------------------
POSITIVE = [
    ("numbness in my left foot", "numbness"),
    ("NUMBNESS IN BOTH FEET", "numbness"),
    ("toes went numb during squats", "numbness"),
    ("pins and needles in my toes", "numbness"),
    ("some tingling in the right calf", "numbness"),
    ("I can't feel my toes properly", "numbness"),
    ("no back pain today, numbness in my foot though", "numbness"),
    ("not much pain but numbness in foot", "numbness"),
    ("not sure if it's numbness", "numbness"),
    ("legs feel weak", "weakness"),
    ("my left leg keeps giving way on the stairs", "weakness"),
    ("weakness in right leg", "weakness"),
    ("some weakness since Tuesday", "weakness"),
    ("can't lift my foot properly", "weakness"),
    ("tripping over my toes", "weakness"),
    ("no numbness but my legs feel weak", "weakness"),
    ("knee buckled walking to the car", "weakness"),
    ("pain shooting down my left leg", "radiating_pain"),
    ("pain radiating down the back of my thigh", "radiating_pain"),
    ("it spreads into both legs", "radiating_pain"),
    ("burning pain down into my calf", "radiating_pain"),
    ("sciatica flared up again", "radiating_pain"),
    ("Pain goes all the way down to my foot", "radiating_pain"),
    ("pain has been getting worse for two weeks", "worsening"),
    ("getting worse for more than a week", "worsening"),
    ("for the past 3 weeks it keeps getting worse", "worsening"),
    ("pain getting worse for 12 days", "worsening"),
    ("worsening over the last month", "worsening"),
    ("worse for weeks now", "worsening"),
    ("for two weeks now it has been getting worse", "worsening"),
    ("lost control of my bladder", "bladder_bowel"),
    ("couldn't hold my bladder", "bladder_bowel"),
    ("I can\u2019t control my bowels", "bladder_bowel"),
    ("wet myself during the set", "bladder_bowel"),
    ("incontinence since last night", "bladder_bowel"),
    ("I have trouble peeing since yesterday", "bladder_bowel"),
    ("loss of bowel control this morning", "bladder_bowel"),
    ("numbness in my groin", "saddle_numbness"),
    ("saddle numbness", "saddle_numbness"),
    ("numb bum after the session", "saddle_numbness"),
    ("can't feel when I wipe", "saddle_numbness"),
    ("tingling around my genitals", "saddle_numbness"),
    ("inner thighs feel numb", "saddle_numbness"),
]

NEGATIVE = [
    "no numbness",
    "No numbness or tingling",
    "not numb at all",
    "without any tingling",
    "no numbness, tingling or weakness",
    "I don't have numbness",
    "Didn't notice any weakness",
    "no tingling and no weakness",
    "no pain radiating down my legs",
    "pain does not spread down my legs",
    "pain doesn't go down my legs",
    "never had sciatica",
    "no sciatica",
    "No loss of bladder or bowel control",
    "no bladder problems",
    "bladder fine, no numbness in groin",
    "not getting worse for two weeks, actually better",
    "worse for 3 days after the meet",
    "pain in my back for weeks, not worse",
    "pain getting worse over the last week",  # a week is not yet "more than a week or two"
    "great session, felt strong",
    "weak lockout on the last deadlift",
    "tight hamstrings, legs sore from squats",
    "Pain goes into my buttock",
    "back a bit stiff, rounding felt on rep 4",
    "",
]


@pytest.mark.parametrize("text,category", POSITIVE)
def test_red_flag_phrasings(text, category):
    flags = rf.red_flags_in_text(text)
    assert [f.category for f in flags] == [category], (text, flags)
    assert flags[0].urgent == (category in ("bladder_bowel", "saddle_numbness"))
    assert flags[0].evidence.lower() in text.lower().replace("\u2019", "'")


@pytest.mark.parametrize("text", NEGATIVE)
def test_negated_or_harmless_notes_do_not_flag(text):
    assert rf.red_flags_in_text(text) == []


def test_several_flags_in_one_note():
    flags = rf.red_flags_in_text("Pain shooting down my leg; left foot numb. Also can't hold my bladder.")
    assert {f.category for f in flags} == {"radiating_pain", "numbness", "bladder_bowel"}
    assert rf.red_flags_in_text("no numbness, but now tingling in my foot")[0].category == "numbness"


def test_add_prints_doctor_message(tmp_path):
    j = tmp_path / "j.jsonl"
    out = run(j, "add", "--pain", "4", "--note", "numbness in left foot after squats", "--at", iso(NOW))
    assert "STOP TRAINING AND SEE A DOCTOR" in out and "numbness or tingling" in out
    assert "URGENT" not in out
    out = run(j, "add", "--pain", "2", "--note", "no numbness today", "--at", iso(NOW))
    assert "STOP TRAINING" not in out
    # the entry is stored whatever the note says; list still shows the flag
    assert "[!]" in run(j, "list") and "STOP TRAINING" in run(j, "list")


def test_add_prints_urgent_message(tmp_path):
    out = run(tmp_path / "j.jsonl", "add", "--pain", "6", "--note", "Numb around my groin and lost bladder control", "--at", iso(NOW))
    assert "URGENT" in out and "SEEK URGENT MEDICAL CARE NOW" in out
    assert "loss of bladder or bowel control" in out and "saddle area" in out


def entries(pains_by_day: dict[int, int]) -> list[jr.Entry]:
    t0 = NOW - timedelta(days=40)
    return [jr.Entry(t0 + timedelta(days=d, hours=8), p) for d, p in pains_by_day.items()]


@pytest.mark.parametrize(
    "pains,worsening",
    [
        ({0: 2, 3: 3, 6: 4, 9: 5, 12: 6}, True),  # rising for 12 days
        ({0: 1, 2: 2, 5: 2, 8: 3, 11: 4, 14: 5, 17: 6, 20: 7}, True),  # rising for three weeks
        ({0: 2, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8}, False),  # steep but only 5 days: not yet "a week or two"
        ({0: 4, 3: 4, 6: 5, 9: 4, 12: 4}, False),  # flat
        ({0: 2, 3: 4, 6: 6, 9: 4, 12: 2}, False),  # rose, then recovered
        ({0: 6, 4: 5, 8: 4, 12: 3}, False),  # improving
        ({0: 3, 12: 6}, False),  # two points are not a trend
        ({0: 2, 3: 3, 5: 2, 7: 4, 9: 3, 11: 4, 13: 5}, True),  # noisy but rising
    ],
)
def test_worsening_trend_rule(pains, worsening):
    trend = rf.worsening_trend(entries(pains))
    assert (trend is not None) == worsening
    if worsening:
        assert trend.days >= rf.WORSENING_MIN_DAYS and trend.last_pain > trend.first_pain


def test_worsening_uses_daily_means():
    # before/after pairs on the same day must not look like a rising trend
    es = []
    for d in range(0, 15, 2):
        t = NOW - timedelta(days=20 - d)
        es += [jr.Entry(t, 2, "before"), jr.Entry(t + timedelta(hours=2), 5, "after")]
    assert rf.worsening_trend(es) is None


def test_add_warns_when_pain_keeps_worsening(tmp_path):
    j = tmp_path / "j.jsonl"
    for day, pain in [(0, 2), (3, 3), (6, 4), (9, 5)]:
        out = run(j, "add", "--pain", str(pain), "--at", iso(NOW - timedelta(days=12 - day)))
        assert "STOP TRAINING" not in out  # not yet 10 days
    out = run(j, "add", "--pain", "6", "--at", iso(NOW))
    assert "STOP TRAINING AND SEE A DOCTOR" in out and "kept getting worse" in out
    doc = json.loads(run(j, "summary", "--json"))
    assert [f["category"] for f in doc["red_flags"]] == ["worsening"]
    assert "STOP TRAINING" in run(j, "summary")


# -- crash tolerance ----------------------------------------------------------------------
def test_torn_last_line_is_skipped_and_counted(tmp_path):
    j = tmp_path / "j.jsonl"
    for p in (1, 2, 3):
        run(j, "add", "--pain", str(p), "--at", iso(NOW - timedelta(days=p)))
    good = j.read_bytes()
    with open(j, "ab") as f:
        f.write(b'{"v":1,"time":"2025-03-02T10:00:00Z","pai')  # power loss mid-write
    rep = jr.Journal(j).load()
    assert len(rep.entries) == 3 and rep.skipped_lines == [4] and rep.torn_last_line
    out = run(j, "list")
    assert "skipped 1 unreadable line" in out and "cut off mid-write" in out
    # the next entry starts on a fresh line and is whole
    run(j, "add", "--pain", "7", "--at", iso(NOW))
    rep = jr.Journal(j).load()
    assert [e.pain for e in rep.entries] == [3, 2, 1, 7]
    assert rep.skipped_lines == [4] and not rep.torn_last_line
    assert j.read_bytes().startswith(good)


def test_garbage_lines_never_crash(tmp_path):
    j = tmp_path / "j.jsonl"
    run(j, "add", "--pain", "3", "--at", iso(NOW))
    with open(j, "ab") as f:
        f.write(b"not json at all\n")
        f.write(b"\xff\xfe\x00 binary\n")
        f.write(b'{"v":1,"time":"2025-03-01T10:00:00Z","pain":99,"phase":"after"}\n')  # out of range
        f.write(b'{"v":1,"time":"yesterday","pain":3}\n')
        f.write(b"[1, 2, 3]\n\n")
        f.write(b'{"v":1,"time":"2025-03-01T10:00:00Z","pain":4,"phase":"before","note":"ok"}\n')
    rep = jr.Journal(j).load()
    assert [e.pain for e in rep.entries] == [4, 3]
    assert rep.skipped_lines == [2, 3, 4, 5, 6] and not rep.torn_last_line
    assert "skipped 5 unreadable lines" in run(j, "summary")


# -- validation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv,error,needle",
    [
        (["--pain", "3", "--phase", "lunch"], ConfigError, "phase must be one of before, during, after, other, got 'lunch'"),
        (["--pain", "3", "--session", "/nonexistent/s.spinrec"], RecordingError, "cannot link session: /nonexistent/s.spinrec: no such file"),
        (["--pain", "3", "--at", "2099-01-01T00:00:00Z"], ConfigError, "in the future"),
    ],
)
def test_bad_input_gives_clear_errors(tmp_path, argv, error, needle):
    j = tmp_path / "j.jsonl"
    ns = parser().parse_args(["add", *argv, "--journal", str(j)])
    with pytest.raises(error) as ei:
        jc.main(ns, io.StringIO(), now=NOW)
    assert isinstance(ei.value, SpinemonError)
    assert needle in str(ei.value)
    assert not j.exists()  # nothing written


def test_a_bad_time_is_a_command_line_mistake(tmp_path, capsys):
    """``--at`` is checked by the parser: exit 2, one line naming the flag, nothing written."""
    j = tmp_path / "j.jsonl"
    with pytest.raises(SystemExit) as ei:
        parser().parse_args(["add", "--pain", "3", "--at", "last tuesday", "--journal", str(j)])
    assert ei.value.code == 2
    assert "--at" in capsys.readouterr().err
    assert not j.exists()


@pytest.mark.parametrize("pain,needle", [(11, "pain must be a whole number from 0 (no pain) to 10"), (-1, "got -1"), (3.5, "whole number"), ("lots", "got 'lots'")])
def test_a_bad_pain_value_is_refused_by_the_journal(tmp_path, pain, needle):
    j = tmp_path / "j.jsonl"
    with pytest.raises(ConfigError) as ei:
        jr.Journal(j).add(pain, now=NOW)
    assert needle in str(ei.value)
    assert not j.exists()


@pytest.mark.parametrize("text", ["11", "-1", "3.5", "lots"])
def test_a_bad_pain_value_on_the_command_line_is_a_usage_error(text):
    with pytest.raises(SystemExit) as ei:
        parser().parse_args(["add", "--pain", text])
    assert ei.value.code == 2


def test_session_that_is_not_a_recording(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(RecordingError, match="not a spinemon recording"):
        jr.Journal(tmp_path / "j.jsonl").add(3, session=f, now=NOW)


def test_bad_journal_paths(tmp_path):
    with pytest.raises(jr.JournalError, match="does not exist"):
        jr.Journal(tmp_path / "missing" / "j.jsonl").add(3, now=NOW)
    with pytest.raises(jr.JournalError, match="is a directory"):
        jr.Journal(tmp_path).load()
    with pytest.raises(jr.JournalError, match="is a directory"):
        jr.Journal(tmp_path).add(3, now=NOW)


def test_command_line_shape():
    p = parser()
    with pytest.raises(SystemExit):
        p.parse_args(["summary", "--weeks", "0"])
    with pytest.raises(SystemExit):
        p.parse_args([])  # an action is required
    ns = p.parse_args(["add", "--pain", "3"])
    assert ns.phase is None and ns.session is None and ns.at is None
    with pytest.raises(ConfigError, match="--weeks"):
        pa.summarize([], weeks=0)


def test_phase_default_and_naive_time_is_local(tmp_path, recordings):
    j = jr.Journal(tmp_path / "j.jsonl")
    assert j.add(3, now=NOW, at=iso(NOW)).phase == "other"
    assert j.add(3, session=recordings["clean_dl"], at=iso(NOW), now=NOW).phase == "after"
    naive = datetime(2025, 2, 1, 18, 30)
    assert j.add(2, at="2025-02-01T18:30", now=NOW).time == naive.astimezone().astimezone(timezone.utc)


def test_pattern_names():
    assert pa.pattern_name("over_flexion", "deadlift") == "rounding in deadlifts"
    assert pa.pattern_name("over_extension", "overhead_press") == "arching overhead"
    assert pa.pattern_name("over_extension", "squat") == "arching in squats"
    assert pa.pattern_name("twist", "curl") == "twisting in curls"
    assert pa.pattern_name("lateral_bend", "generic") == "side bending in unlabelled lifting"
    assert pa.pattern_name("some_new_kind", "bird_dog") == "some new kind in bird dogs"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_red_flag_scan_never_crashes(text):
    for f in rf.red_flags_in_text(text):
        assert f.category in rf.FLAG_DESCRIPTIONS


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_loading_any_bytes_never_crashes(tmp_path_factory, data):
    j = tmp_path_factory.mktemp("fuzz") / "j.jsonl"
    j.write_bytes(b'{"v":1,"time":"2025-03-01T10:00:00Z","pain":4,"phase":"before","note":"ok"}\n' + data)
    rep = jr.Journal(j).load()
    assert rep.entries and rep.entries[0].pain == 4
    pa.summarize(rep.entries, now=NOW)
