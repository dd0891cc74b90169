"""``spinemon live``: the command line of a live session (:mod:`spinemon.app.live`)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from typing import Any, TextIO

from spinemon.app import argtypes
from spinemon.app.commands import UsageError
from spinemon.app.live import LiveOptions, run
from spinemon.app.live_ui import LiveUI
from spinemon.app.view import ViewUsageError
from spinemon.core.detect import PROFILES
from spinemon.core.unilateral import parse_exercise
from spinemon.io.home import default_recording


# ---------------------------------------------------------------------------
# command-line entry points (wired by spinemon.app.cli)
# ---------------------------------------------------------------------------
def add_source_arguments(parser: Any) -> None:
    """Which wearable: exactly one of --address/--name (BLE), --port (serial) or --sim."""
    # not required by argparse: the config file may name the wearable (spinemon.app.config.apply_to says
    # "one of the arguments --address --name --port --sim is required" when it does not)
    src = parser.add_mutually_exclusive_group(required=False)
    src.add_argument("--address", help="BLE address of the wearable")
    src.add_argument("--name", help="advertised BLE name of the wearable (e.g. spinemon-1A2B)")
    src.add_argument("--port", help="serial port or pyserial URL (e.g. /dev/ttyACM0, socket://host:port)")
    src.add_argument("--sim", action="store_true", help="the simulated wearer")


def add_arguments(parser: Any) -> None:
    """The ``spinemon live`` options, for an argparse (sub)parser."""
    add_source_arguments(parser)
    parser.add_argument(
        "--exercise",
        default=None,
        type=argtypes.exercise_side,
        metavar="EXERCISE",
        help=f"exercise profile: {', '.join(PROFILES)} (default: the config file's exercise, else generic); a unilateral one may name the working side, e.g. 'lunge left' or split_squat:right",
    )
    parser.add_argument(
        "--out",
        help="write the session recording here (must not exist, unless --resume or --force); default: a new "
        "file in the config file's out_dir, else in the sessions folder of your spinemon directory "
        "($SPINEMON_HOME or ~/.spinemon: sessions/, sim-sessions/ for --sim)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out recording (and its later segments) instead of refusing it",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="do not record this session (by default every session is)"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="a plain one-line screen (carriage return and ANSI erase) even when rich, the 'screen' extra, is installed",
    )
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
        help="your profile file (stored calibration and limits; default $SPINEMON_PROFILE or ~/.spinemon/profile.json; "
        "--sim: the one 'spinemon calibrate --sim' wrote (~/.spinemon/sim-profile.json), if there is one)",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="calibrate again (after re-attaching the sensors) instead of using the stored calibration",
    )
    argtypes.add_limit_argument(
        parser,
        "override a limit for this session, e.g. deadlift.flexion_share=0.55 (repeatable)",
    )
    parser.add_argument(
        "--view",
        action="store_true",
        help="serve a live page for a coach (angle trace against the limits, set/rep, alerts) on 127.0.0.1; its address, with a random token, is printed first (needs the 'view' extra, aiohttp)",
    )
    parser.add_argument(
        "--view-port",
        type=argtypes.port,
        default=0,
        metavar="PORT",
        help="--view only: the page's port (default: a free one the OS chooses)",
    )
    parser.add_argument(
        "--view-lan",
        action="store_true",
        help="--view only: serve the page to the local network too (a coach's phone on the same Wi-Fi), not only to "
        "this computer; its link carries a random token, but anyone on the network who has the link can watch, "
        "and the page is plain HTTP (a warning is printed)",
    )


def sim_profile(given: str | None) -> str | None:
    """The profile of a simulated session: the one given, else where
    ``spinemon calibrate --sim`` stores its calibration (``$SPINEMON_PROFILE``,
    else ``sim-profile.json`` beside the real profile), when that file exists;
    else none (the simulated wearer calibrates first, as a new lifter does)."""
    if given is not None:
        return given
    from spinemon.io.profile_store import profile_path

    path = profile_path(None)
    if not os.environ.get("SPINEMON_PROFILE"):
        path = path.with_name(
            "sim-profile.json"
        )  # the simulated wearer's calibration never replaces the real one
    return str(path) if path.exists() else None


def options_from(ns: Any) -> LiveOptions:
    exercise, side = parse_exercise(getattr(ns, "exercise", None) or "generic")
    sim_on = bool(getattr(ns, "sim", False))
    profile = getattr(ns, "profile", None)
    if sim_on:
        profile = sim_profile(profile)
    out = getattr(ns, "out", None)
    no_record = bool(getattr(ns, "no_record", False))
    if out is not None and no_record:
        raise UsageError(
            "spinemon live: error: --out and --no-record exclude each other (see 'spinemon live --help')"
        )
    if getattr(ns, "resume", False) and out is None:
        raise UsageError(
            "spinemon live: error: --resume needs --out FILE, the recording to continue (see 'spinemon live --help')"
        )
    return LiveOptions(
        address=getattr(ns, "address", None),
        name=getattr(ns, "name", None),
        port=getattr(ns, "port", None),
        sim=sim_on,
        exercise=exercise,
        side=side,
        out=out,
        speed=getattr(ns, "speed", None) or 1.0,
        seed=getattr(ns, "seed", None) or 1,
        calibrate_rom=not getattr(ns, "no_rom", False),
        profile=profile,
        recalibrate=bool(getattr(ns, "recalibrate", False)),
        resume=bool(getattr(ns, "resume", False)),
        force=bool(getattr(ns, "force", False)),
        limits=tuple(getattr(ns, "limit", None) or ()),
        view=bool(getattr(ns, "view", False)),
        view_port=getattr(ns, "view_port", None) or 0,
        view_lan=bool(getattr(ns, "view_lan", False)),
        announce_recording=True,
    )


def main(ns: Any, stream: TextIO | None = None) -> int:
    """``spinemon live``: 0 when the stream ended or Ctrl-C stopped it, 1 on an error."""
    ui = LiveUI(stream, screen="plain" if getattr(ns, "plain", False) else "auto")
    options = options_from(ns)  # ConfigError -> the CLI's one-line error
    if options.view:
        from spinemon.app.view import MISSING_AIOHTTP, have_aiohttp

        if not have_aiohttp():
            raise ViewUsageError(MISSING_AIOHTTP)  # a command-line error: exit 2, before anything runs
    if options.out is None and not getattr(ns, "no_record", False):
        # every session is recorded: by default into the sessions folder, said on the screen's first lines
        options = replace(options, out=str(default_recording(options.exercise, options.sim)))
    try:
        asyncio.run(run(options, ui))
    except KeyboardInterrupt:
        return 0
    return 0
