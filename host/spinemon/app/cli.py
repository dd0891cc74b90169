"""The `spinemon` command line.

Every command has ``--help``. Errors print one line (what went wrong and
what to do) and exit non-zero: 2 for a bad command line, 1 for anything else.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from spinemon import __version__
from spinemon.app import argtypes
from spinemon.errors import ConfigError, SpinemonError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line gives one line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


# -- helpers -------------------------------------------------------------------
def _fault(text: str) -> tuple[str, int]:
    m = re.fullmatch(r"([a-z_]+)@(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid fault {text!r}: use KIND@REP, e.g. rounding@4")
    return m.group(1), int(m.group(2))


def _fmt_alert(alert, label: str) -> str:
    ev = alert.event
    where = []
    if ev.set is not None:
        where.append(f"set {ev.set}")
    if ev.exercise:
        where.append(ev.exercise)
    if ev.rep is not None:
        where.append(f"rep {ev.rep}")
    kind = ev.kind.replace("_", "-").upper()
    return f"[{ev.t_alert:8.2f} s] ALERT {kind:<15} {label} {ev.peak_deg:+6.1f} deg (limit {ev.limit_deg:+.1f})  {' '.join(where)}"


def _event_row(e: dict) -> str:
    t_end = "open" if e["t_end"] is None else f"{e['t_end']:.2f}"
    rep = "-" if e.get("rep") is None else e["rep"]
    st = "-" if e.get("set") is None else e["set"]
    return f"  {e['kind']:<15} {e['t_start']:9.2f} {t_end:>9} {e['peak_deg']:+8.1f} {st!s:>4} {rep!s:>4}  {e.get('exercise') or ''}"


EVENT_HEADER = f"  {'kind':<15} {'t_start':>9} {'t_end':>9} {'peak':>8} {'set':>4} {'rep':>4}  exercise"


# -- commands -----------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from spinemon.app.simrun import run_simulated
    from spinemon.io import sim

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a folder; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the folder {out_dir} ({e.strerror}); choose another --out"
        ) from None
    rec_path = out_dir / f"demo-seed{args.seed}.spinrec"
    if rec_path.exists():
        rec_path.unlink()  # the demo owns its output folder
    sets = sim.demo_workout()
    print(f"spinemon demo: a simulated lifter (seed {args.seed}) wears two IMUs (T12/L1 and sacrum).")
    print(
        f"Workout: {', '.join(f'{s.exercise} x{s.reps}' for s in sets)}; playing at {args.speed:g}x real time."
    )
    print("Calibrating: stand tall and still ...", flush=True)
    t0 = time.monotonic()

    def on_calibrated(cal) -> None:
        if cal.rom is None and cal.t_rom is None:
            print(
                f"  neutral posture captured ({cal.t_neutral[1] - cal.t_neutral[0]:.1f} s still). Now bend slowly forward, then back ...",
                flush=True,
            )
        elif cal.rom is not None:
            print(
                f"  range of motion: flexion {cal.rom.flexion_deg:+.1f} deg, extension {cal.rom.extension_deg:+.1f} deg. Monitoring.",
                flush=True,
            )
        else:
            print("  range of motion not captured; using default limits. Monitoring.", flush=True)

    label = "lumbar flexion"
    run = run_simulated(
        sets,
        args.seed,
        out=rec_path,
        speed=args.speed,
        on_alert=lambda a: print(_fmt_alert(a, label), flush=True),
        on_calibrated=on_calibrated,
    )
    res, session = run.result, run.session
    wall = time.monotonic() - t0
    print()
    print(
        f"Session: {session.duration_s:.0f} s simulated in {wall:.1f} s; {res.frames} frames, "
        f"{res.stats['lost_samples']} samples lost, {res.stats['bad_frames']} bad frames."
    )
    print(f"Events ({len(res.events)}):")
    print(EVENT_HEADER)
    for e in res.events:
        print(_event_row(e.as_dict()))
    # the simulator knows the truth: show how detection did
    print("Simulated faults vs alerts:")
    hits = 0
    faulty = [r for r in session.reps if r.fault]
    for r in faulty:
        flagged = any(e.t_start <= r.t_end and (e.t_end is None or e.t_end >= r.t_start) for e in res.events)
        hits += flagged
        print(
            f"  set {r.set} {r.exercise:<15} rep {r.rep}: {r.fault:<10} {'flagged' if flagged else 'MISSED'}"
        )
    clean = [r for r in session.reps if not r.fault]
    false = sum(
        any(e.t_start <= r.t_end and (e.t_end is None or e.t_end >= r.t_start) for e in res.events)
        for r in clean
    )
    print(f"  {hits}/{len(faulty)} faulty reps flagged; {false}/{len(clean)} clean reps flagged.")
    print(f"  haptic commands received by the wearable: {len(run.transport.motor.haptics)}")
    summary = {
        "events": [e.as_dict() for e in res.events],
        "stats": res.stats,
        "faulty_reps_flagged": hits,
        "faulty_reps": len(faulty),
        "clean_reps_flagged": false,
        "clean_reps": len(clean),
        "recording": str(rec_path),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Recording: {rec_path}   Summary: {out_dir / 'summary.json'}")
    print(f"Replay it: spinemon replay {rec_path}")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from spinemon.app.simrun import run_simulated
    from spinemon.io import sim

    faults = {}
    for kind, rep in args.fault or []:
        if rep in faults:
            raise UsageError(
                f"spinemon simulate: error: rep {rep} has two faults (see 'spinemon simulate --help')"
            )
        faults[rep] = kind
    unilateral = args.exercise in sim.UNILATERAL_EXERCISES
    if not unilateral and (args.side is not None or args.asymmetry or args.unnamed_side):
        raise UsageError(
            f"spinemon simulate: error: --side, --unnamed-side and --asymmetry go with the unilateral lifts ({', '.join(sim.UNILATERAL_EXERCISES)}), not {args.exercise} (see 'spinemon simulate --help')"
        )
    extra = (
        {"side": args.side, "name_side": not args.unnamed_side, "asymmetry_deg": args.asymmetry}
        if unilateral
        else {}
    )
    spec = sim.SetSpec(args.exercise, args.reps, faults, **extra)
    imus = ("upper", "lower") if args.imus == 2 else ("upper",)
    settings = sim.SimSettings(rate_hz=args.rate, imus=imus)
    out = Path(args.out)
    run = run_simulated(
        [spec] * args.sets if args.sets > 1 else [spec],
        args.seed,
        out=out,
        sim_settings=settings,
        rom=not args.no_rom,
    )
    res = run.result
    print(f"wrote {out}: {res.frames} frames, {run.session.duration_s:.1f} s, {len(res.events)} events")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from spinemon.app.session import replay, replay_settings
    from spinemon.io.recording import load

    files = list(args.file)
    if len(files) > 1 or Path(files[0]).is_dir():
        return _replay_many(args)
    args.file = files[0]
    rec = load(args.file, strict=args.strict)
    res = replay(rec, replay_settings(rec, args.exercise, args.limit))
    events = res.summary.get(
        "events", [e.as_dict() for e in res.events]
    )  # a resumed recording: sets numbered on, each with its segment
    stats = dict(res.stats)
    stats.update(truncated=rec.truncated, corrupt_records=rec.corrupt_records, angle=res.angle_label)
    stats["recording_notes"] = list(rec.notes)
    stats.update(res.summary["monitoring"])
    # each segment (one live session each, `live --resume`) against what its own live session reported
    stats["matches_live"] = res.matches_live
    stats["live_comparison"] = res.live_comparison
    segments = [s.as_dict() for s in res.segments]  # each with its own matches_live and live_comparison
    if len(segments) > 1:
        stats["segments"] = segments
    if args.json:
        out = {
            "events": events,
            "reps": res.summary.get("reps", []),
            "sets": res.summary.get("sets", []),
            "stats": stats,
        }
        out["sides"] = res.summary.get(
            "side_comparisons", []
        )  # unilateral work: left against right, per exercise
        # what held the limits back (seconds and faults past a limit with no buzz, by reason), and the rep candidates not counted
        out["held_back"] = res.summary.get("held_back", {"seconds": {}, "faults": {}})
        out["rejected_reps"] = res.summary.get("rejected_reps", [])
        out["notices"] = res.summary.get(
            "notices", []
        )  # what the lifter was told at the time (a stale calibration, a sensor lost)
        json.dump(out, sys.stdout, indent=2)
        print()
        return EXIT_OK
    print(f"{args.file}: {res.frames} frames, {stats['samples']} samples, angle = {res.angle_label}")
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
    if rec.truncated:
        print("  note: the recording was cut off mid-record; loaded up to its last complete record")
    if rec.corrupt_records:
        print(f"  note: {rec.corrupt_records} corrupt record(s) skipped")
    for note in rec.notes:
        print(f"  note: {note}")
    print(
        f"  lost samples {stats['lost_samples']}, bad frames {stats['bad_frames']}, duplicates {stats['duplicate_frames']}"
    )
    from spinemon.app.session import monitoring_line

    print("  " + monitoring_line(stats))
    for why in res.summary.get("limits_off", {}).values():
        print(f"  limit off: {why}")
    for n in res.summary.get("notices", []):
        print(f"  at {n['t']:.2f} s: {n['text']}")
    held = res.summary.get("held_back", {})
    for why, secs in held.get("seconds", {}).items():
        n_held = held.get("faults", {}).get(why, 0)
        faults = (
            f"; {n_held} fault{'s' if n_held != 1 else ''} past a limit held back (no buzz)" if n_held else ""
        )
        print(f"  limits held back {secs:.1f} s: {why}{faults}")
    for seg in res.segments:
        cal = seg.result.calibration
        if cal and cal.rom:
            which = f" (session {seg.index})" if len(segments) > 1 else ""
            print(f"  range of motion{which}: {cal.rom.flexion_deg:+.1f} / {cal.rom.extension_deg:+.1f} deg")
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


def cmd_history(args: argparse.Namespace) -> int:
    from spinemon.app import history

    return history.main(args)


def cmd_live(args: argparse.Namespace) -> int:
    from spinemon.app import live

    return live.main(args)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from spinemon.app import calibrate

    return calibrate.main(args)


def cmd_scan(args: argparse.Namespace) -> int:
    from spinemon.app import live

    return live.scan_main(args)


# -- parser -------------------------------------------------------------------------
def _module(name: str):
    """``spinemon.app.<name>``, imported when a command needs it."""
    import importlib

    return importlib.import_module(f"spinemon.app.{name}")


def _simulate_arguments(s: argparse.ArgumentParser) -> None:
    from spinemon.io.sim import EXERCISES as _SIM_LIFTS
    from spinemon.io.sim import HOLD_EXERCISES as _SIM_HOLDS
    from spinemon.io.sim import SET_SIDES

    s.add_argument(
        "--exercise",
        required=True,
        choices=list(_SIM_LIFTS + _SIM_HOLDS),
        help="the exercise the simulated wearer can do (row, bench and generic have no motion model yet)",
    )
    s.add_argument(
        "--side",
        choices=list(SET_SIDES),
        default=None,
        help="unilateral lifts: the working side of every rep, or alternate (rep 1 left, rep 2 right, ...; the default)",
    )
    s.add_argument(
        "--unnamed-side",
        action="store_true",
        help="unilateral lifts: the lifter does not name the side when marking the set (spinemon finds it from the motion)",
    )
    s.add_argument(
        "--asymmetry",
        type=argtypes.asymmetry_deg,
        default=0.0,
        metavar="DEG",
        help="unilateral lifts: left reps bend and twist DEG more toward their side than right reps (negative: the right side more)",
    )
    s.add_argument("--reps", type=argtypes.count, default=5, help="reps per set (default 5)")
    s.add_argument("--sets", type=argtypes.count, default=1, help="number of sets (default 1)")
    s.add_argument(
        "--fault",
        type=_fault,
        action="append",
        metavar="KIND@REP",
        help="a faulty rep, e.g. rounding@4 (reps count from 1); repeatable. Kinds: rounding, arching, hip_swing, twisting",
    )
    s.add_argument("--seed", type=argtypes.seed, default=1, help="simulation seed (default 1)")
    s.add_argument("--imus", type=int, choices=[1, 2], default=2, help="number of IMUs (default 2)")
    s.add_argument("--rate", type=argtypes.rate_hz, default=100.0, help="sample rate, Hz (default 100)")
    s.add_argument("--no-rom", action="store_true", help="skip the range-of-motion calibration")
    s.add_argument("--out", required=True, help="recording file to write (must not exist)")


def _replay_arguments(r: argparse.ArgumentParser) -> None:
    from spinemon.core.detect import PROFILES

    r.add_argument(
        "file",
        nargs="+",
        metavar="FILE",
        help="a .spinrec recording; several, or a folder of them, give one table (replayed in parallel)",
    )
    r.add_argument(
        "--json",
        action="store_true",
        help="print JSON: {events: [...], reps: [...], sets: [...], stats: {...}} (several recordings: {recordings: [...]})",
    )
    r.add_argument(
        "--jobs",
        type=argtypes.count,
        default=None,
        metavar="N",
        help="worker processes for several recordings (default: all cores)",
    )
    r.add_argument(
        "--strict",
        action="store_true",
        help="fail on a truncated recording instead of loading up to its last complete record",
    )
    r.add_argument(
        "--exercise",
        default=None,
        type=argtypes.exercise_side,
        metavar="EXERCISE",
        help=f"exercise assumed where the recording has no labels (default: as recorded): {', '.join(sorted(PROFILES))}; a unilateral one may name the side, e.g. 'lunge left'",
    )
    r.add_argument(
        "--limit",
        action="append",
        type=argtypes.limit_override,
        default=[],
        metavar="EXERCISE.LIMIT=VALUE",
        help="override a limit for this replay, e.g. deadlift.flexion_share=0.55 (repeatable)",
    )


class _LazySubParsers(argparse._SubParsersAction):
    """Subcommands whose arguments are added only when the command is used
    (``later``): ``spinemon --help`` and ``spinemon replay --help`` never
    import what the other commands need (issue 27: start-up time)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.builders: dict[str, list] = {}
        self.lazy = True

    def later(self, parser: argparse.ArgumentParser, build) -> None:
        """``build(parser)`` adds the command's arguments: now, or when the command is parsed."""
        if not self.lazy:
            build(parser)
            return
        name = next(k for k, v in self._name_parser_map.items() if v is parser)
        self.builders.setdefault(name, []).append(build)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        name = values[0] if values else None
        for build in self.builders.pop(name, []):
            build(self._name_parser_map[name])
        super().__call__(parser, namespace, values, option_string)


def build_parser(lazy: bool = False) -> argparse.ArgumentParser:
    """The command line. ``lazy``: each command's arguments are added when
    that command is parsed (what ``spinemon`` does); else all at once."""
    p = _Parser(
        prog="spinemon",
        description="Watch a lifter's lower back: calibrate, lift, feel the buzz; replay sessions.",
    )
    p.add_argument("--version", action="version", version=f"spinemon {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, action=_LazySubParsers)
    sub.lazy = lazy

    d = sub.add_parser(
        "demo",
        help="run a simulated workout through the live path (no hardware)",
        description="A simulated lifter does a short workout; alerts print as they fire; writes a recording and a summary.",
    )
    d.add_argument("--seed", type=argtypes.seed, default=1, help="simulation seed (default 1)")
    d.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    d.add_argument(
        "--speed",
        type=argtypes.speed,
        default=4.0,
        help="playback speed, x real time (default 4; 0 = as fast as possible)",
    )
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "simulate",
        help="write a recording of a simulated set",
        description="Simulate sets of one exercise and write a recording (through the live path).",
    )
    sub.later(s, _simulate_arguments)
    s.set_defaults(func=cmd_simulate)

    lv = sub.add_parser(
        "live",
        help="connect to the wearable, calibrate, and watch your lifts",
        description="Connect (BLE by --address/--name, USB serial by --port, or --sim), calibrate with guided prompts, then monitor: a status line, alerts as they fire. Ctrl-C ends the session and closes the recording.",
    )
    sub.later(lv, lambda q: _module("live").add_arguments(q))
    lv.set_defaults(func=cmd_live)

    sc = sub.add_parser(
        "scan",
        help="list spinemon wearables in BLE range",
        description="Scan for wearables advertising the spinemon service.",
    )
    sc.add_argument("--timeout", type=float, default=5.0, help="seconds to scan (default 5)")
    sc.add_argument(
        "--battery", action="store_true", help="connect to each device briefly to read its battery level"
    )
    sc.set_defaults(func=cmd_scan)

    cb = sub.add_parser(
        "calibrate",
        help="guided calibration: neutral posture, range of motion, sensor alignment; saved to your profile",
        description="Stand tall and still, then bend slowly forward and backward. Finds each sensor's mounting (also a sensor stuck on crooked) and your range of motion, and stores them in your profile for later sessions.",
    )
    sub.later(cb, lambda q: _module("calibrate").add_arguments(q))
    cb.set_defaults(func=cmd_calibrate)

    rp = sub.add_parser(
        "report",
        help="plots and tables of a recorded session (PNG, CSV, HTML)",
        description="Re-run a recording through the live path and write a PNG per set, a session overview, per-set and per-rep tables (terminal and CSV), and an HTML page that embeds them (opens offline). Plots need the 'report' extra (matplotlib).",
    )
    sub.later(rp, lambda q: _module("report").add_arguments(q))
    rp.set_defaults(func=lambda a: _module("report").main(a))

    ex = sub.add_parser(
        "export",
        help="export a recording as CSV or Parquet (samples with angles and events)",
        description="Write one row per sample (device time, raw SI values, lumbar angles, set/rep, active events) and an events table, "
        "as CSV (--csv) and/or as typed Parquet for pandas, polars or DuckDB (--parquet; the 'parquet' extra, pyarrow).",
    )
    sub.later(ex, lambda q: _module("export").add_export_arguments(q))
    ex.set_defaults(func=lambda a: _module("export").export_main(a))

    im = sub.add_parser(
        "import",
        help="turn a CSV from another logger into a spinemon recording",
        description="Map CSV columns, units and axes onto the spinemon convention and write a normal recording that replay and report accept.",
    )
    sub.later(im, lambda q: _module("csv_import").add_import_arguments(q))
    im.set_defaults(func=lambda a: _module("csv_import").import_main(a))

    j = sub.add_parser(
        "journal",
        help="pain journal: log back pain, see what came before higher pain",
        description="Log back pain (0-10) before, during and after sessions, link entries to recordings, and see which exercises and flagged patterns came before higher pain. Warns clearly about red-flag symptoms.",
    )
    sub.later(j, lambda q: _module("journal").add_arguments(q))
    j.set_defaults(func=lambda a: _module("journal").main(a))

    h = sub.add_parser(
        "history",
        help="progress over weeks: reps, alerts per 100 reps, peak flexion, creep per exercise and week, with the pain journal",
        description="Replay every recording in DIR (in parallel) and show per exercise and ISO week: sessions, sets, reps, alerts per 100 reps, "
        "peak flexion at the bottom of the rep, creep over a set, the hips' share of the lean, and the pain journal beside it.",
    )
    sub.later(h, lambda q: _module("history").add_arguments(q))
    h.set_defaults(func=cmd_history)

    r = sub.add_parser(
        "replay",
        help="re-run detection on a recording",
        description="Decode a recording through the live code path and list the events.",
    )
    sub.later(r, _replay_arguments)
    r.set_defaults(func=cmd_replay)
    return p


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    """``--axes -x,-y,z`` -> ``--axes=-x,-y,z``: argparse would read ``-x,-y,z`` as an option."""
    out: list[str] = []
    it = iter(argv)
    for tok in it:
        if tok in ("--axes",):
            nxt = next(it, None)
            out.append(tok if nxt is None else f"{tok}={nxt}")
        else:
            out.append(tok)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``spinemon ...``: the command's exit status; a reader that stops early
    (``spinemon replay --json | head``) ends it quietly (:mod:`spinemon.app.closed_stdout`)."""
    from spinemon.app.closed_stdout import exit_status_of

    return exit_status_of(lambda: _run(argv))


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser(lazy=True)
    args = None
    try:
        args = parser.parse_args(_join_dash_values(sys.argv[1:] if argv is None else argv))
        if not getattr(args, "command", None):
            raise UsageError("spinemon: error: no command given (see 'spinemon --help')")
        return args.func(args)
    except UsageError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    except SpinemonError as e:
        if getattr(e, "usage", False):  # a bad command line found after parsing (a path that does not exist)
            prog = f"spinemon {getattr(args, 'command', '')}".rstrip()
            print(f"{prog}: error: {e} (see '{prog} --help')", file=sys.stderr)
            return EXIT_USAGE
        print(f"spinemon: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("spinemon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # the reader of our output went away: closed_stdout ends the command quietly (exit 141)
    except Exception as e:
        import traceback

        from spinemon.app.season import write_traceback

        what = f"{type(e).__name__}: {e}"
        where = write_traceback(" ".join(sys.argv[1:] if argv is None else argv), traceback.format_exc())
        saved = (
            f"traceback in {where}"
            if where is not None
            else "traceback not saved (no log folder could be written)"
        )
        print(f"spinemon: unexpected error ({what[:200]}); {saved}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
