"""``spinemon config``: where the config file is looked for and what it sets (:mod:`spinemon.app.config`)."""

from __future__ import annotations

import argparse
import json

from spinemon.app.config import TEMPLATE, config_path, load_config
from spinemon.io.atomic import atomic_write_text, refuse_existing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the same as JSON")
    parser.add_argument(
        "--init",
        action="store_true",
        help="write a commented example config file where spinemon looks for it (refused if one exists, unless --force)",
    )
    parser.add_argument("--force", action="store_true", help="--init: replace an existing config file")


def main(args: argparse.Namespace) -> int:
    """``spinemon config [--json] [--init [--force]]``."""
    path = config_path()
    if getattr(args, "init", False):
        refuse_existing(path, bool(getattr(args, "force", False)), flag="config file")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, TEMPLATE)
        print(f"wrote {path}: edit it to set your wearable, exercise and recordings folder")
        return 0
    cfg = load_config(path)
    if getattr(args, "json", False):
        print(json.dumps(cfg.as_dict(), indent=2))
        return 0
    if not cfg.exists:
        print(f"config file: {path} (not there: the built-in defaults hold)")
        print("To set defaults, create it ('spinemon config --init' writes this example):")
        print()
        print(TEMPLATE.rstrip())
        return 0
    print(f"config file: {path}")
    wearable = " ".join(next(iter(cfg.wearable.items()), ()))
    print(
        f"  wearable: {wearable}   (live and calibrate without --address/--name/--port/--sim)"
        if wearable
        else "  wearable: not set (live and calibrate need --address, --name, --port or --sim)"
    )
    print(
        f"  exercise: {cfg.exercise}   (live without --exercise)"
        if cfg.exercise
        else "  exercise: not set (live: generic)"
    )
    print(
        f"  out_dir:  {cfg.out_dir}   (live records there without --out; history reads it without DIR)"
        if cfg.out_dir
        else "  out_dir:  not set (live: its own sessions folder; history: the current folder)"
    )
    return 0
