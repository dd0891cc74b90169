"""The user's config file: defaults for the command line, so a lifter types
``spinemon live`` instead of ``spinemon live --name spinemon-1A2B --exercise deadlift``.

It lives in the user's spinemon folder (``$SPINEMON_HOME/config.toml``, else
``~/.spinemon/config.toml``; ``$SPINEMON_CONFIG`` names another file), is TOML (read with the standard library's
:mod:`tomllib`), and is optional: without it every default is the built-in one.
``spinemon config`` shows where it is looked for and what it sets::

    # ~/.spinemon/config.toml
    exercise = "deadlift"          # live's --exercise when none is given
    out_dir = "~/lifting"          # where live records without --out; history's folder without DIR

    [wearable]                     # live's and calibrate's wearable without --address/--name/--port/--sim
    name = "spinemon-1A2B"         # or address = "AA:BB:CC:DD:EE:FF", or port = "/dev/ttyACM0"

A flag on the command line always wins over the file. A file that cannot be
read, is not TOML, or holds a key or value spinemon does not know is one
line naming the file and the key (exit 1), never silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinemon.errors import ConfigError
from spinemon.io.home import new_recording, spinemon_home

__all__ = ["TEMPLATE", "UserConfig", "apply_to", "config_path", "load_config", "spinemon_home"]

WEARABLE_KEYS = ("address", "name", "port")

TEMPLATE = """\
# spinemon's defaults (a flag on the command line wins); every line is optional
exercise = "deadlift"          # live's --exercise when none is given
out_dir = "~/lifting"          # where live records without --out; history's folder without DIR

[wearable]                     # live's and calibrate's wearable without --address/--name/--port/--sim
name = "spinemon-1A2B"         # or address = "AA:BB:CC:DD:EE:FF", or port = "/dev/ttyACM0"
"""


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the config file is looked for: ``$SPINEMON_CONFIG``, else
    ``config.toml`` in the spinemon folder (:func:`spinemon_home`)."""
    given = (os.environ if env is None else env).get("SPINEMON_CONFIG")
    return Path(given).expanduser() if given else spinemon_home(env) / "config.toml"


@dataclass(frozen=True)
class UserConfig:
    """What the config file sets (None: not set, the built-in default holds)."""

    path: Path
    exists: bool = False
    wearable: dict[str, str] = field(default_factory=dict)  # one of address / name / port
    exercise: str | None = None
    out_dir: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "exists": self.exists,
            "wearable": dict(self.wearable),
            "exercise": self.exercise,
            "out_dir": None if self.out_dir is None else str(self.out_dir),
        }


def _bad(path: Path, what: str) -> ConfigError:
    return ConfigError(f"config file {path}: {what}; fix it (see 'spinemon config') or move it away")


def load_config(path: str | os.PathLike | None = None) -> UserConfig:
    """The config file at ``path`` (default :func:`config_path`); an absent
    file is an empty config. Raises :class:`ConfigError` (one line) for a file
    that cannot be read or holds what spinemon does not know."""
    p = Path(path) if path is not None else config_path()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return UserConfig(p)
    except IsADirectoryError:
        raise _bad(p, "is a folder, not a file") from None
    except OSError as e:
        raise _bad(p, f"cannot be read ({e.strerror or e})") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad(p, "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise _bad(p, f"is not valid TOML ({e})") from None
    unknown = sorted(set(doc) - {"wearable", "exercise", "out_dir"})
    if unknown:
        raise _bad(p, f"unknown key {unknown[0]!r} (known: exercise, out_dir, [wearable])")
    wearable = doc.get("wearable", {})
    if not isinstance(wearable, dict):
        raise _bad(p, '[wearable] must be a table: [wearable] then name = "..."')
    bad_keys = sorted(set(wearable) - set(WEARABLE_KEYS))
    if bad_keys:
        raise _bad(p, f"unknown key wearable.{bad_keys[0]} (known: {', '.join(WEARABLE_KEYS)})")
    if len(wearable) > 1:
        raise _bad(
            p, f"[wearable] sets {' and '.join(sorted(wearable))}: give one of {', '.join(WEARABLE_KEYS)}"
        )
    for k, v in wearable.items():
        if not isinstance(v, str) or not v.strip():
            raise _bad(p, f"wearable.{k} must be a non-empty string")
    exercise = doc.get("exercise")
    if exercise is not None:
        if not isinstance(exercise, str):
            raise _bad(p, 'exercise must be a string, e.g. exercise = "deadlift"')
        from spinemon.core.unilateral import parse_exercise

        try:
            name, side = parse_exercise(exercise)
        except ConfigError as e:
            raise _bad(p, f"exercise {exercise!r}: {e}") from None
        exercise = name if side is None else f"{name}:{side}"
    out_dir = doc.get("out_dir")
    if out_dir is not None:
        if not isinstance(out_dir, str) or not out_dir.strip():
            raise _bad(p, 'out_dir must be a folder name, e.g. out_dir = "~/lifting"')
        out_dir = Path(out_dir).expanduser()
    return UserConfig(p, True, {k: v.strip() for k, v in wearable.items()}, exercise, out_dir)


def apply_to(args: Any, config: UserConfig | None = None) -> list[str]:
    """Fill what the command line left out from the config file, in place on
    the parsed ``args``; returns one note per default taken (for the screen).
    A flag given on the command line always wins."""
    command = getattr(args, "command", None)
    if command not in ("live", "calibrate", "history"):
        return []
    cfg = config if config is not None else load_config()
    notes: list[str] = []
    if command in ("live", "calibrate"):
        given = any(getattr(args, k, None) for k in WEARABLE_KEYS) or getattr(args, "sim", False)
        if not given:
            if not cfg.wearable:
                raise _no_source(command, cfg)
            ((key, value),) = cfg.wearable.items()
            setattr(args, key, value)
            notes.append(f"wearable {key} {value} (from {cfg.path})")
    if command == "live":
        if getattr(args, "exercise", None) is None and cfg.exercise is not None:
            args.exercise = cfg.exercise
            notes.append(f"exercise {cfg.exercise} (from {cfg.path})")
        if (
            getattr(args, "out", None) is None
            and cfg.out_dir is not None
            and not getattr(args, "no_record", False)
            and not getattr(args, "sim", False)  # the simulated wearer's sessions stay in sim-sessions/
        ):
            args.out = str(
                new_recording(
                    cfg.out_dir,
                    args.exercise or "generic",
                    fix=f"fix out_dir in {config_path()} or pass --out",
                )
            )
            notes.append(f"recording into {cfg.out_dir} (out_dir in {cfg.path})")
    if command == "history" and not getattr(args, "path", None) and cfg.out_dir is not None:
        args.path = [str(cfg.out_dir)]
        notes.append(f"recordings in {cfg.out_dir} (out_dir in {cfg.path})")
    return notes


def _no_source(command: str, cfg: UserConfig) -> Exception:
    from spinemon.app.commands import UsageError

    return UsageError(
        f"spinemon {command}: error: one of the arguments --address --name --port --sim is required "
        f"(or set your wearable in {cfg.path}, see 'spinemon config') (see 'spinemon {command} --help')"
    )
