"""``spinemon replay FILE [--json]``: re-run detection on a recording and list what it found
(several recordings or a folder: one table, replayed in parallel).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spinemon.app import argtypes
from spinemon.app.commands import EXIT_ERROR, EXIT_OK, UsageError
from spinemon.app.words import plural
from spinemon.core.detect import PROFILES


def _event_row(e: dict) -> str:
    t_end = "open" if e["t_end"] is None else f"{e['t_end']:.2f}"
    rep = "-" if e.get("rep") is None else e["rep"]
    st = "-" if e.get("set") is None else e["set"]
    return f"  {e['kind']:<15} {e['t_start']:9.2f} {t_end:>9} {e['peak_deg']:+8.1f} {st!s:>4} {rep!s:>4}  {e.get('exercise') or ''}"


EVENT_HEADER = f"  {'kind':<15} {'t_start':>9} {'t_end':>9} {'peak':>8} {'set':>4} {'rep':>4}  exercise"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="+",
        metavar="FILE",
        help="a .spinrec recording; several, or a folder of them, give one table (replayed in parallel)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON: {events: [...], reps: [...], sets: [...], stats: {...}} (several recordings: {recordings: [...]})",
    )
    argtypes.add_jobs_argument(parser, "recordings")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on a truncated recording instead of loading up to its last complete record",
    )
    parser.add_argument(
        "--exercise",
        default=None,
        type=argtypes.exercise_side,
        metavar="EXERCISE",
        help=f"replay as this exercise (a what-if on the same data; default: as recorded): the sets the lifter labelled and the unlabelled ones alike; {', '.join(sorted(PROFILES))}; a unilateral one may name the side, e.g. 'lunge left'",
    )
    argtypes.add_limit_argument(
        parser,
        "override a limit for this replay, e.g. deadlift.flexion_share=0.55 (repeatable)",
    )


def main(args: argparse.Namespace) -> int:
    from spinemon.app.replay import labelled_exercises, replay, replay_settings
    from spinemon.app.verdict import event_words
    from spinemon.io.recording import load

    files = list(args.file)
    if len(files) > 1 or Path(files[0]).is_dir():
        return _replay_many(args)
    args.file = files[0]
    rec = load(args.file, strict=args.strict)
    labelled = labelled_exercises(rec)
    # --exercise is applied to the labelled sets too (a what-if on the same data), and said so
    res = replay(
        rec,
        replay_settings(rec, args.exercise, args.limit),
        label_exercise=args.exercise if args.exercise and labelled else None,
    )
    summ = res.session
    # the summary's events: a resumed recording's with sets numbered on, each with its segment
    events = [e.as_dict() for e in summ.events] if summ.has("events") else [e.as_dict() for e in res.events]
    stats = dict(res.stats)
    stats.update(truncated=rec.truncated, corrupt_records=rec.corrupt_records, angle=res.angle_label)
    stats["recording_notes"] = list(rec.notes)
    if args.exercise and labelled:
        stats["exercise_override"] = {"exercise": args.exercise, "labelled_as": labelled}
    stats.update(summ.monitoring.as_dict())
    # each segment (one live session each, `live --resume`) against what its own live session reported
    stats["matches_live"] = res.matches_live
    stats["live_comparison"] = res.live_comparison
    segments = [s.as_dict() for s in res.segments]  # each with its own matches_live and live_comparison
    if len(segments) > 1:
        stats["segments"] = segments
    # one sensor: the lifter's usual forward lean the session was judged with (live records it), or the norm
    from spinemon.app import lean_history

    lean_found = lean_history.from_header(rec.header)
    if res.angle_label != "lumbar flexion":
        from spinemon.core.pipeline import PipelineSettings

        settings_now = PipelineSettings.from_dict(rec.header.get("settings", {}))
        stats["lean_baseline"] = {ex: b.as_dict() for ex, b in lean_found.items()}
        stats["lean_notes"] = lean_history.lines(
            lean_found, args.exercise or settings_now.exercise, settings_now.limit_overrides
        )
    if args.json:
        out: dict[str, Any] = {
            "events": events,
            "reps": [r.as_dict() for r in summ.reps],
            "sets": [s.as_dict() for s in summ.sets],
            "stats": stats,
        }
        out["sides"] = list(summ.side_comparisons)  # unilateral work: left against right, per exercise
        # what held the limits back (seconds and faults past a limit with no buzz, by reason), and the rep candidates not counted
        out["held_back"] = summ.held_back.as_dict()
        out["rejected_reps"] = [r.as_dict() for r in summ.rejected_reps]
        # what the lifter was told at the time (a stale calibration, a sensor lost)
        out["notices"] = [n.as_dict() for n in summ.notices]
        # timed holds (plank, bird dog, ...): how long each was held, each fault named as that hold's fault
        out["holds"] = [
            {
                **h,
                "faults": [
                    {**f, "what": event_words(str(f.get("kind")), h.get("exercise"))}
                    for f in h.get("faults") or []
                ],
            }
            for h in (x.as_dict() for x in summ.holds)
        ]
        json.dump(out, sys.stdout, indent=2)
        print()
        return EXIT_OK
    print(
        f"{args.file}: {plural(res.frames, 'frame')}, {plural(stats['samples'], 'sample')}, angle = {res.angle_label}"
    )
    if len(segments) > 1:
        print(
            f"  {len(segments)} sessions in this recording (live --resume), each replayed as recorded, with its own calibration; sets numbered on:"
        )
        for seg in segments:
            sets = seg["sets"]
            where = (
                "no sets"
                if not sets
                else f"set {sets[0]}"
                if len(sets) == 1
                else f"sets {sets[0]}-{sets[-1]}"
            )
            moved = (
                f", its clock began again: times from {seg['t_offset_s']:.2f} s" if seg["t_offset_s"] else ""
            )
            live = (
                "no live summary"
                if seg["live_comparison"] is None
                else f"same as its live session: {seg['live_comparison']}"
            )
            n_ev = seg["events"]
            print(
                f"    {seg['segment']}. {seg['file']}: {seg['duration_s']:.1f} s, calibration {seg['calibration']}, {where}, {n_ev} event{'s' if n_ev != 1 else ''}{moved}; {live}"
            )
    if args.exercise and labelled:
        print(
            f"  note: every set replayed as {args.exercise.replace(':', ' ')} (--exercise), "
            f"though the lifter labelled {plural(len(labelled), 'exercise')} ({', '.join(labelled)})"
        )
    if rec.truncated:
        print("  note: the recording was cut off mid-record; loaded up to its last complete record")
    if rec.corrupt_records:
        print(f"  note: {plural(rec.corrupt_records, 'corrupt record')} skipped")
    for note in rec.notes:
        print(f"  note: {note}")
    print(
        f"  lost samples {stats['lost_samples']}, bad frames {stats['bad_frames']}, duplicates {stats['duplicate_frames']}"
    )
    print("  " + summ.monitoring.line())
    for why in summ.limits_off.values():
        print(f"  limit off: {why}")
    for line in stats.get("lean_notes", []):
        print(f"  {line}")
    for n in summ.notices:
        print(f"  at {n.t:.2f} s: {n.text}")
    held = summ.held_back
    for why, secs in held.seconds.items():
        n_held = held.faults.get(why, 0)
        faults = f"; {plural(n_held, 'fault')} past a limit held back (no buzz)" if n_held else ""
        print(f"  limits held back {secs:.1f} s: {why}{faults}")
    for part in res.segments:
        cal = None if part.result is None else part.result.calibration
        if cal and cal.rom:
            which = f" (session {part.index})" if len(segments) > 1 else ""
            print(f"  range of motion{which}: {cal.rom.flexion_deg:+.1f} / {cal.rom.extension_deg:+.1f} deg")
    for h in (x.as_dict() for x in summ.holds):
        faults = "; ".join(
            f"{event_words(str(f.get('kind')), h.get('exercise'))} at {f['t_alert']:.2f} s"
            if isinstance(f.get("t_alert"), (int, float))
            else event_words(str(f.get("kind")), h.get("exercise"))
            for f in h.get("faults") or []
        )
        lasted = f"{h['duration_s']:.1f} s" if isinstance(h.get("duration_s"), (int, float)) else "not ended"
        print(
            f"  hold {h.get('hold')} of set {h.get('set')}, {h.get('exercise')}: {lasted}; {faults or 'clean'}"
        )
    print(f"Events ({len(events)}):")
    print(EVENT_HEADER)
    for e in events:
        print(_event_row(e))
    if stats["live_comparison"] is not None:
        each = " (each session)" if len(segments) > 1 else ""
        print(f"  same as the live session{each}: {stats['live_comparison']}")
    return EXIT_OK


def _replay_many(args: argparse.Namespace) -> int:
    """``spinemon replay A B ... | DIR``: every recording through replay, in parallel, one table."""
    from spinemon.app import season

    if args.strict:
        raise UsageError(
            "spinemon replay: error: --strict takes one recording (see 'spinemon replay --help')"
        )
    paths = season.expand(args.file)
    rows = season.run_many(
        season.replay_row,
        paths,
        args.exercise,
        tuple(args.limit),
        jobs=args.jobs,
        progress=sys.stderr if sys.stderr.isatty() or len(paths) > 1 else None,
    )
    if args.json:
        json.dump({"recordings": rows}, sys.stdout, indent=2)
        print()
    else:
        print(season.format_rows(rows))
    return EXIT_ERROR if any(r.get("error") for r in rows) else EXIT_OK
