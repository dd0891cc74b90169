"""``spinemon demo``: a simulated workout through the live path, alerts printed as they fire."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from spinemon.app import argtypes
from spinemon.app.commands import EXIT_OK
from spinemon.app.commands.replay import EVENT_HEADER, _event_row
from spinemon.app.words import command, path_hint, plural, shown_path
from spinemon.errors import ConfigError
from spinemon.io.atomic import atomic_write_text, refuse_existing


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


# -- commands -----------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=argtypes.seed, default=1, help="simulation seed (default 1)")
    parser.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    parser.add_argument(
        "--force", action="store_true", help="replace the recording and summary of an earlier demo in --out"
    )
    parser.add_argument(
        "--speed",
        type=argtypes.speed,
        default=4.0,
        help="playback speed, x real time (default 4; 0 = as fast as possible)",
    )


def main(args: argparse.Namespace) -> int:
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
    force = bool(getattr(args, "force", False))
    refuse_existing(rec_path, force, flag="--out")  # the one overwrite rule (make demo passes --force)
    refuse_existing(out_dir / "summary.json", force, flag="--out")
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
        overwrite=force,
    )
    res, session = run.result, run.session
    wall = time.monotonic() - t0
    print()
    print(
        f"Session: {session.duration_s:.0f} s simulated in {wall:.1f} s; {plural(res.frames, 'frame')}, "
        f"{plural(res.stats['lost_samples'], 'sample')} lost, {plural(res.stats['bad_frames'], 'bad frame')}."
    )
    print(f"Events ({len(res.events)}):")
    print(EVENT_HEADER)
    for ev in res.events:
        print(_event_row(ev.as_dict()))
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
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    print(f"Recording: {shown_path(rec_path)}   Summary: {shown_path(out_dir / 'summary.json')}")
    print(f"Replay it: {command('spinemon', 'replay', rec_path)}")
    hint = path_hint()
    if hint is not None:
        print(hint)
    return EXIT_OK
