"""Value types for the command line: a bad value is a command-line error (exit
2, one line naming the flag and what it accepts), caught by argparse before
anything runs."""

from __future__ import annotations

import argparse
import math

__all__ = ["count", "seed", "speed", "live_speed", "rate_hz", "pain", "limit_override"]


def _number(text: str, kind=float):
    try:
        v = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def count(text: str) -> int:
    """A count of things (reps, sets, jobs): a whole number, at least 1."""
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1")
    return v


def seed(text: str) -> int:
    v = _number(text, int)
    if not 0 <= v <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is a whole number 0 .. 4294967295")
    return v


def speed(text: str) -> float:
    """Playback speed of a simulated session: 0 = as fast as possible, else up to 1000x real time."""
    v = _number(text)
    if not 0 <= v <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: speed is 0 (as fast as possible) .. 1000")
    return v


def live_speed(text: str) -> float:
    """Speed of the simulated wearer in `live --sim`: above 0 (a live session runs in time), up to 10000x."""
    v = _number(text)
    if not 0 < v <= 10000:
        raise argparse.ArgumentTypeError(f"{text!r}: speed is above 0 (x real time) .. 10000; a live session cannot run 'as fast as possible'")
    return v


def rate_hz(text: str) -> float:
    v = _number(text)
    if not 25 <= v <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: the sample rate is 25 .. 1000 Hz")
    return v


def pain(text: str) -> int:
    v = _number(text, int)
    if not 0 <= v <= 10:
        raise argparse.ArgumentTypeError(f"{text!r}: pain is a whole number 0 (none) .. 10 (worst imaginable)")
    return v


def limit_override(text: str) -> str:
    """``EXERCISE.LIMIT=VALUE``, checked now (the text is kept: the callers parse it)."""
    from spinemon.errors import ConfigError
    from spinemon.profile_store import parse_limit_override

    try:
        parse_limit_override(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text
