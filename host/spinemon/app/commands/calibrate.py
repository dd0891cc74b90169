"""``spinemon calibrate``: guided calibration saved to the profile (:mod:`spinemon.app.calibrate`)."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from typing import Any, TextIO

from spinemon.app import argtypes
from spinemon.app.calibrate import _sim_transport, describe, run_calibration
from spinemon.app.live import LiveOptions
from spinemon.errors import ConfigError
from spinemon.io.profile_store import (
    check_profile_writable,
    load_profile,
    merge_limit_overrides,
    profile_path,
    save_profile,
)


# ---------------------------------------------------------------------------
# command line (wired by spinemon.app.cli)
# ---------------------------------------------------------------------------
def add_arguments(parser: Any) -> None:
    """The ``spinemon calibrate`` options, for an argparse (sub)parser."""
    from spinemon.app.commands.live import add_source_arguments

    add_source_arguments(parser)
    parser.add_argument(
        "--profile", help="profile file (default $SPINEMON_PROFILE or ~/.spinemon/profile.json)"
    )
    parser.add_argument(
        "--no-rom",
        action="store_true",
        help="skip the range-of-motion bends (no heading check, default limits)",
    )
    argtypes.add_limit_argument(
        parser,
        "store a limit override, e.g. deadlift.flexion_share=0.55 (repeatable; 'none' disables)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="give up after this many seconds (default 120)"
    )
    parser.add_argument(
        "--speed",
        type=argtypes.speed,
        default=1.0,
        help="--sim only: this many times real time (0: as fast as possible)",
    )
    parser.add_argument("--seed", type=argtypes.seed, default=1, help="--sim only: simulated wearer seed")
    parser.add_argument(
        "--mount-yaw",
        type=float,
        default=0.0,
        help="--sim only: sensors stuck on turned this many degrees about the spine",
    )


def main(ns: Any, stream: TextIO | None = None) -> int:
    """``spinemon calibrate``: 0 when the profile was written. Bad input and a
    failed calibration raise SpinemonError subclasses (one line from the CLI)."""
    out = stream if stream is not None else sys.stdout
    overrides = merge_limit_overrides(getattr(ns, "limit", None))
    timeout = getattr(ns, "timeout", None) or 120.0
    if not 1.0 <= timeout <= 3600.0:
        raise ConfigError(f"--timeout must be 1..3600 s, not {timeout!r}")
    path = profile_path(getattr(ns, "profile", None))
    if (
        getattr(ns, "sim", False)
        and getattr(ns, "profile", None) is None
        and not os.environ.get("SPINEMON_PROFILE")
    ):
        # the simulated wearer's calibration never replaces the real one
        path = path.with_name("sim-profile.json")
    prof = load_profile(path)  # a broken profile is reported before the wearer starts
    check_profile_writable(path)  # and one that could not be saved (a read-only place): before, not after
    rom = not getattr(ns, "no_rom", False)
    options = LiveOptions(
        address=getattr(ns, "address", None),
        name=getattr(ns, "name", None),
        port=getattr(ns, "port", None),
        sim=bool(getattr(ns, "sim", False)),
        seed=getattr(ns, "seed", None) or 1,
        calibrate_rom=rom,
    )
    speed = getattr(ns, "speed", None)
    speed = 1.0 if speed is None else float(speed)
    if not 0.0 <= speed <= 10000.0:
        raise ConfigError(f"--speed must be 0..10000, not {speed!r}")
    transport = None
    if options.sim:
        yaw = float(getattr(ns, "mount_yaw", 0.0) or 0.0)
        if not -180.0 <= yaw <= 180.0:
            raise ConfigError(f"--mount-yaw must be -180..180 deg, not {yaw!r}")
        transport = _sim_transport(options.seed, speed, rom, yaw)
    try:
        outcome = asyncio.run(run_calibration(options, out, timeout_s=timeout, transport=transport))
    except KeyboardInterrupt:
        out.write("Calibration cancelled; profile unchanged.\n")
        return 1
    prof = prof.with_calibration(outcome.calibration, device=options.source)
    if overrides:
        prof = prof.with_overrides(overrides)
    written = save_profile(prof, path)
    for line in describe(outcome):
        out.write(line + "\n")
    if options.sim:
        # the same file `spinemon live --sim` looks for (spinemon.app.commands.live.sim_profile)
        using = "spinemon live --sim" + (
            "" if getattr(ns, "profile", None) is None else f" --profile {shlex.quote(str(written))}"
        )
        out.write(
            f"Saved to {written}. '{using}' uses it (the simulated lifter then starts calibrated); "
            "'spinemon live --sim --recalibrate' calibrates again.\n"
        )
    else:
        out.write(
            f"Saved to {written}. 'spinemon live' uses it until the sensors are re-attached (then run 'spinemon calibrate' again).\n"
        )
    return 0
