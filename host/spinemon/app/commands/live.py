"""``spinemon live``: the command line of a live session (:mod:`spinemon.app.live`)."""

from __future__ import annotations

import asyncio
from typing import Any, TextIO

from spinemon.app import argtypes
from spinemon.app.live import LiveOptions, run
from spinemon.app.live_ui import LiveUI
from spinemon.app.view import ViewUsageError
from spinemon.core.detect import PROFILES
from spinemon.core.unilateral import parse_exercise


# ---------------------------------------------------------------------------
# command-line entry points (wired by spinemon.app.cli)
# ---------------------------------------------------------------------------
def add_source_arguments(parser: Any) -> None:
    """Which wearable: exactly one of --address/--name (BLE), --port (serial) or --sim."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--address", help="BLE address of the wearable")
    src.add_argument("--name", help="advertised BLE name of the wearable (e.g. spinemon-1A2B)")
    src.add_argument("--port", help="serial port or pyserial URL (e.g. /dev/ttyACM0, socket://host:port)")
    src.add_argument("--sim", action="store_true", help="the simulated wearer")


def add_arguments(parser: Any) -> None:
    """The ``spinemon live`` options, for an argparse (sub)parser."""
    add_source_arguments(parser)
    parser.add_argument(
        "--exercise",
        default="generic",
        type=argtypes.exercise_side,
        metavar="EXERCISE",
        help=f"exercise profile: {', '.join(PROFILES)} (default generic); a unilateral one may name the working side, e.g. 'lunge left' or split_squat:right",
    )
    parser.add_argument("--out", help="write the session recording here (must not exist, unless --resume)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an existing --out recording in a new segment (a new session, numbered on)",
    )
    parser.add_argument(
        "--speed",
        type=argtypes.live_speed,
        default=1.0,
        help="--sim only: play the simulated wearer this many times faster than real time (above 0)",
    )
    parser.add_argument("--seed", type=argtypes.seed, default=1, help="--sim only: simulated wearer seed")
    parser.add_argument("--no-rom", action="store_true", help="skip the range-of-motion part of calibration")
    parser.add_argument(
        "--profile",
        help="your profile file (stored calibration and limits; default $SPINEMON_PROFILE or ~/.spinemon/profile.json; --sim uses none unless given)",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="calibrate again (after re-attaching the sensors) instead of using the stored calibration",
    )
    parser.add_argument(
        "--limit",
        action="append",
        type=argtypes.limit_override,
        default=[],
        metavar="EXERCISE.LIMIT=VALUE",
        help="override a limit for this session, e.g. deadlift.flexion_share=0.55 (repeatable)",
    )
    parser.add_argument(
        "--view",
        action="store_true",
        help="serve a live page for a coach (angle trace against the limits, set/rep, alerts) on 127.0.0.1; its address, with a random token, is printed first (needs the 'view' extra: pip install -e '.[view]')",
    )
    parser.add_argument(
        "--view-port",
        type=argtypes.port,
        default=0,
        metavar="PORT",
        help="--view only: the page's port on 127.0.0.1 (default: a free one the OS chooses)",
    )


def options_from(ns: Any) -> LiveOptions:
    exercise, side = parse_exercise(getattr(ns, "exercise", None) or "generic")
    return LiveOptions(
        address=getattr(ns, "address", None),
        name=getattr(ns, "name", None),
        port=getattr(ns, "port", None),
        sim=bool(getattr(ns, "sim", False)),
        exercise=exercise,
        side=side,
        out=getattr(ns, "out", None),
        speed=getattr(ns, "speed", None) or 1.0,
        seed=getattr(ns, "seed", None) or 1,
        calibrate_rom=not getattr(ns, "no_rom", False),
        profile=getattr(ns, "profile", None),
        recalibrate=bool(getattr(ns, "recalibrate", False)),
        resume=bool(getattr(ns, "resume", False)),
        limits=tuple(getattr(ns, "limit", None) or ()),
        view=bool(getattr(ns, "view", False)),
        view_port=getattr(ns, "view_port", None) or 0,
    )


def main(ns: Any, stream: TextIO | None = None) -> int:
    """``spinemon live``: 0 when the stream ended or Ctrl-C stopped it, 1 on an error."""
    ui = LiveUI(stream)
    options = options_from(ns)  # ConfigError -> the CLI's one-line error
    if options.view:
        from spinemon.app.view import MISSING_AIOHTTP, have_aiohttp

        if not have_aiohttp():
            raise ViewUsageError(MISSING_AIOHTTP)  # a command-line error: exit 2, before anything runs
    try:
        asyncio.run(run(options, ui))
    except KeyboardInterrupt:
        return 0
    return 0
