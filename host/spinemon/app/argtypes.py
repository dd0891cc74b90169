"""Value types for the command line: a bad value is a command-line error (exit
2, one line naming the flag and what it accepts), caught by argparse before
anything runs."""

from __future__ import annotations

import argparse
import math

__all__ = [
    "asymmetry_deg",
    "count",
    "exercise_side",
    "limit_override",
    "live_speed",
    "pain",
    "port",
    "rate_hz",
    "reps",
    "scan_timeout",
    "seed",
    "speed",
]


def _number(text: str, kind=float):
    try:
        v = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a {'whole number' if kind is int else 'number'}"
        ) from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def _ranged(kind, ok, message: str, doc: str):
    """A value type: ``kind`` (int or float) for which ``ok(v)`` holds, else
    ``'<text>': <message>``."""

    def parse(text: str):
        v = _number(text, kind)
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{text!r}: {message}")
        return v

    parse.__doc__ = doc
    return parse


count = _ranged(
    int,
    lambda v: v >= 1,
    "give at least 1",
    "A count of things (reps, sets, jobs): a whole number, at least 1.",
)
reps = _ranged(
    int,
    lambda v: 1 <= v <= 100,
    "reps per set are 1 .. 100",
    "Reps in one simulated set: a whole number, 1..100 (the simulated lifter's limit).",
)
scan_timeout = _ranged(
    float,
    lambda v: 0 < v <= 600,
    "a scan lasts above 0 .. 600 s",
    "How long to scan for wearables, s.",
)
seed = _ranged(
    int, lambda v: 0 <= v <= 2**32 - 1, "a seed is a whole number 0 .. 4294967295", "A random seed, u32."
)
speed = _ranged(
    float, lambda v: 0 <= v <= 1000, "speed is 0 (as fast as possible) .. 1000",
    "Playback speed of a simulated session: 0 = as fast as possible, else up to 1000x real time.",
)  # fmt: skip
live_speed = _ranged(
    float, lambda v: 0 < v <= 10000, "speed is above 0 (x real time) .. 10000; a live session cannot run 'as fast as possible'",
    "Speed of the simulated wearer in `live --sim`: above 0 (a live session runs in time), up to 10000x.",
)  # fmt: skip
rate_hz = _ranged(float, lambda v: 20 <= v <= 1000, "the sample rate is 20 .. 1000 Hz", "A sample rate, Hz.")
asymmetry_deg = _ranged(
    float,
    lambda v: -20 <= v <= 20,
    "the asymmetry is -20 .. 20 deg",
    "The simulated lifter's asymmetry between the sides, deg.",
)
pain = _ranged(
    int,
    lambda v: 0 <= v <= 10,
    "pain is a whole number 0 (none) .. 10 (worst imaginable)",
    "A pain score, 0..10.",
)
port = _ranged(
    int,
    lambda v: 1 <= v <= 65535,
    "a TCP port is a whole number 1 .. 65535",
    "A TCP port to listen on, 1..65535.",
)


def limit_override(text: str) -> str:
    """``EXERCISE.LIMIT=VALUE``, checked now (the text is kept: the callers parse it)."""
    from spinemon.errors import ConfigError
    from spinemon.io.profile_store import parse_limit_override

    try:
        parse_limit_override(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def exercise_side(text: str) -> str:
    """An exercise, with the working side for unilateral work: ``lunge``,
    ``"lunge left"``, ``split_squat:right``; kept as ``name`` or ``name:side``
    (:func:`spinemon.core.unilateral.parse_exercise` reads it back)."""
    from spinemon.core.detect import PROFILES
    from spinemon.core.unilateral import parse_exercise
    from spinemon.errors import ConfigError

    try:
        name, side = parse_exercise(text)
    except ConfigError as e:
        if str(e).startswith("unknown exercise"):
            raise argparse.ArgumentTypeError(
                f"invalid choice: {text!r} (choose from {', '.join(PROFILES)}; unilateral ones may name a side, e.g. 'lunge left')"
            ) from None
        raise argparse.ArgumentTypeError(str(e)) from None
    return name if side is None else f"{name}:{side}"


def add_jobs_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--jobs N``: worker processes for several ``what`` (default: all cores)."""
    parser.add_argument(
        "--jobs",
        type=count,
        default=None,
        metavar="N",
        help=f"worker processes for several {what} (default: all cores)",
    )


def add_limit_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--limit EXERCISE.LIMIT=VALUE`` (repeatable): ``what`` says where the override goes."""
    parser.add_argument(
        "--limit",
        action="append",
        type=limit_override,
        default=[],
        metavar="EXERCISE.LIMIT=VALUE",
        help=what,
    )
