"""``spinemon simulate``: write a recording of simulated sets through the live path."""

from __future__ import annotations

import argparse
import re

from spinemon.app import argtypes
from spinemon.app.commands import EXIT_OK, UsageError
from spinemon.app.words import plural, shown_path
from spinemon.io.atomic import refuse_existing


# -- helpers -------------------------------------------------------------------
def _fault(text: str) -> tuple[str, int]:
    m = re.fullmatch(r"([a-z_]+)@(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid fault {text!r}: use KIND@REP, e.g. rounding@4")
    return m.group(1), int(m.group(2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from spinemon.io.sim import EXERCISES as _SIM_LIFTS
    from spinemon.io.sim import FAULTS_BY_EXERCISE as _SIM_FAULTS
    from spinemon.io.sim import HOLD_EXERCISES as _SIM_HOLDS
    from spinemon.io.sim import SET_SIDES

    parser.add_argument(
        "--exercise",
        required=True,
        choices=list(_SIM_LIFTS + _SIM_HOLDS),
        help="the exercise the simulated wearer can do (row, bench and generic have no motion model yet)",
    )
    parser.add_argument(
        "--side",
        choices=list(SET_SIDES),
        default=None,
        help="unilateral lifts: the working side of every rep, or alternate (rep 1 left, rep 2 right, ...; the default)",
    )
    parser.add_argument(
        "--unnamed-side",
        action="store_true",
        help="unilateral lifts: the lifter does not name the side when marking the set (spinemon finds it from the motion)",
    )
    parser.add_argument(
        "--asymmetry",
        type=argtypes.asymmetry_deg,
        default=0.0,
        metavar="DEG",
        help="unilateral lifts: left reps bend and twist DEG more toward their side than right reps (negative: the right side more)",
    )
    parser.add_argument("--reps", type=argtypes.reps, default=5, help="reps per set, 1 .. 100 (default 5)")
    parser.add_argument("--sets", type=argtypes.count, default=1, help="number of sets (default 1)")
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        metavar="KIND@REP",
        help="a faulty rep, e.g. rounding@4 or creep@3 (reps count from 1); repeatable. Kinds, by exercise: "
        + "; ".join(f"{ex} {', '.join(kinds)}" for ex, kinds in _SIM_FAULTS.items())
        + " (creep: fatigue, the rep rounds 15-18 deg more than the set's first rep, below the hard limit)",
    )
    parser.add_argument("--seed", type=argtypes.seed, default=1, help="simulation seed (default 1)")
    parser.add_argument("--imus", type=int, choices=[1, 2], default=2, help="number of IMUs (default 2)")
    parser.add_argument("--rate", type=argtypes.rate_hz, default=100.0, help="sample rate, Hz (default 100)")
    parser.add_argument("--no-rom", action="store_true", help="skip the range-of-motion calibration")
    parser.add_argument(
        "--out", required=True, help="recording file to write (must not exist, unless --force)"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --out recording")


def main(args: argparse.Namespace) -> int:
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
    from spinemon.app.progress import Progress

    force = bool(getattr(args, "force", False))
    out = refuse_existing(args.out, force)
    with Progress(f"simulate {out.name}") as bar:  # on a terminal only: a long session takes a while
        bar.step("making the motion")
        run = run_simulated(
            [spec] * args.sets if args.sets > 1 else [spec],
            args.seed,
            out=out,
            sim_settings=settings,
            rom=not args.no_rom,
            overwrite=force,
            on_progress=bar.update,
        )
    res = run.result
    print(
        f"wrote {shown_path(out)}: {plural(res.frames, 'frame')}, {run.session.duration_s:.1f} s, {plural(len(res.events), 'event')}"
    )
    return EXIT_OK
