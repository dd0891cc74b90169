"""The lifter's profile: a small JSON file (default ``~/.spinemon/profile.json``).

It keeps the last calibration (mountings incl. each sensor's heading, range
of motion) so that ``spinemon live`` can skip calibration until the sensors
are re-attached, and the lifter's own limit overrides per exercise::

    {
      "version": 1,
      "calibration": {... Calibration.as_dict() ...},
      "calibrated_at": "2024-05-01T18:03:11",
      "device": "ble:spinemon-1A2B",
      "limit_overrides": {"deadlift": {"flexion_share": 0.55}, "curl": {"swing_deg_s": 80}}
    }

The path can be overridden with ``--profile PATH`` or the environment
variable ``SPINEMON_PROFILE``. Writes are atomic (:mod:`spinemon.io.atomic`: a
unique temporary file, fsync, rename): two writers never tear the file and a
reader never sees half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from spinemon.core.calibration import Calibration
from spinemon.core.detect import PROFILES, profile
from spinemon.errors import CalibrationError, ConfigError, ProfileError
from spinemon.io.atomic import atomic_write_text

__all__ = [
    "DEFAULT_PATH",
    "ProfileError",
    "UserProfile",
    "load_profile",
    "parse_limit_override",
    "profile_path",
    "save_profile",
]

DEFAULT_PATH = Path("~/.spinemon/profile.json")
VERSION = 1


@dataclass
class UserProfile:
    """What is remembered about one lifter."""

    calibration: Calibration | None = None
    calibrated_at: str | None = None  # local ISO time of the calibration
    device: str | None = None  # the wearable it was calibrated on (source string)
    limit_overrides: dict = field(default_factory=dict)  # {exercise: {limit: value}}

    def with_calibration(
        self, cal: Calibration, device: str | None = None, when: float | None = None
    ) -> UserProfile:
        """A copy holding a new calibration (the sensors were (re-)attached)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() if when is None else when))
        return replace(self, calibration=cal, calibrated_at=stamp, device=device)

    def forget_calibration(self) -> UserProfile:
        """A copy without calibration (the sensors were re-attached: calibrate again)."""
        return replace(self, calibration=None, calibrated_at=None, device=None)

    def with_overrides(self, overrides: dict) -> UserProfile:
        """A copy with ``overrides`` merged in (``{exercise: {limit: value}}``); checked."""
        merged = {ex: dict(v) for ex, v in self.limit_overrides.items()}
        for ex, lims in overrides.items():
            merged.setdefault(ex, {}).update(lims)
        _check_overrides(merged)
        return replace(self, limit_overrides=merged)

    def pipeline_settings(self, base, *, recalibrate: bool = False):
        """``base`` (a :class:`~spinemon.core.pipeline.PipelineSettings`) with this
        profile's limit overrides (the base's own overrides win) and, unless
        ``recalibrate``, its stored calibration (the pipeline then starts
        monitoring at once)."""
        merged = {ex: dict(v) for ex, v in self.limit_overrides.items()}
        for ex, lims in (base.limit_overrides or {}).items():
            merged.setdefault(ex, {}).update(lims)
        stored = None if (recalibrate or self.calibration is None) else self.calibration.as_dict()
        return replace(
            base,
            limit_overrides=merged,
            stored_calibration=stored if stored is not None else base.stored_calibration,
        )

    def as_dict(self) -> dict:
        return {
            "version": VERSION,
            "calibration": None if self.calibration is None else self.calibration.as_dict(),
            "calibrated_at": self.calibrated_at,
            "device": self.device,
            "limit_overrides": self.limit_overrides,
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "profile") -> UserProfile:
        if not isinstance(d, dict):
            raise ProfileError(f"{source}: not a JSON object")
        v = d.get("version", VERSION)
        if v != VERSION:
            raise ProfileError(f"{source}: version {v!r} is not supported (expected {VERSION})")
        cal = None
        if d.get("calibration") is not None:
            try:
                cal = Calibration.from_dict(d["calibration"])
            except CalibrationError as e:
                raise ProfileError(f"{source}: {e}") from None
        overrides = d.get("limit_overrides") or {}
        try:
            _check_overrides(overrides)
        except ConfigError as e:
            raise ProfileError(f"{source}: {e}") from None
        for k in ("calibrated_at", "device"):
            if d.get(k) is not None and not isinstance(d[k], str):
                raise ProfileError(f"{source}: {k} must be a string")
        return cls(cal, d.get("calibrated_at"), d.get("device"), overrides)


def _check_overrides(overrides: object) -> None:
    if not isinstance(overrides, dict):
        raise ConfigError("limit_overrides must map exercise names to {limit: value}")
    for ex in overrides:
        profile(ex, overrides)  # unknown exercise / limit / bad value -> ConfigError


def profile_path(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$SPINEMON_PROFILE``, else ``~/.spinemon/profile.json``."""
    p = path if path is not None else os.environ.get("SPINEMON_PROFILE") or DEFAULT_PATH
    return Path(p).expanduser()


def load_profile(path: str | os.PathLike | None = None) -> UserProfile:
    """The stored profile; an empty one if the file does not exist.

    Raises:
        ProfileError: the file cannot be read, is not JSON, or holds bad values.
    """
    p = profile_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UserProfile()
    except UnicodeDecodeError:
        raise ProfileError(
            f"profile {p} is not a text (JSON) file; give a profile written by 'spinemon calibrate', or choose another --profile"
        ) from None
    except OSError as e:
        raise ProfileError(
            f"cannot read profile {p}: {e.strerror or e}; check --profile or $SPINEMON_PROFILE"
        ) from None
    try:
        d = json.loads(text)
    except ValueError as e:
        raise ProfileError(
            f"profile {p} is not valid JSON ({e}); give a profile written by 'spinemon calibrate', or choose another --profile"
        ) from None
    return UserProfile.from_dict(d, str(p))


def check_profile_writable(path: str | os.PathLike | None = None) -> Path:
    """Fail now (:class:`ProfileError`, one line) if the profile at ``path``
    could not be saved: its folder cannot be made or written (read-only, no
    permission). ``calibrate`` calls it before the guided calibration, so a
    lifter never stands and bends for a result that cannot be kept."""
    p = profile_path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=p.parent)
    except OSError as e:
        raise ProfileError(
            f"cannot write profile {p}: {e.strerror or e}; choose another --profile (nothing was calibrated yet)"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return p


def save_profile(prof: UserProfile, path: str | os.PathLike | None = None) -> Path:
    """Write the profile atomically; returns the path written."""
    p = profile_path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, json.dumps(prof.as_dict(), indent=2, sort_keys=True) + "\n")
    except OSError as e:
        raise ProfileError(f"cannot write profile {p}: {e.strerror or e}; choose another --profile") from None
    return p


def merge_limit_overrides(texts, base: dict | None = None) -> dict:
    """``base`` (``{exercise: {limit: value}}``, not changed) with every
    ``EXERCISE.LIMIT=VALUE`` of ``texts`` applied on top, in order."""
    out = {k: dict(v) for k, v in (base or {}).items()}
    for text in texts or ():
        for ex, lims in parse_limit_override(text).items():
            out.setdefault(ex, {}).update(lims)
    return out


def parse_limit_override(text: str) -> dict:
    """``"deadlift.flexion_share=0.55"`` -> ``{"deadlift": {"flexion_share": 0.55}}``
    (``none``/``off`` disables a limit). For ``--limit`` on the command line."""
    try:
        lhs, value = text.split("=", 1)
        ex, key = lhs.strip().split(".", 1)
    except ValueError:
        raise ConfigError(
            f"limit override {text!r} must look like EXERCISE.LIMIT=VALUE, e.g. deadlift.flexion_share=0.55"
        ) from None
    ex, key, value = ex.strip(), key.strip(), value.strip()
    if ex not in PROFILES:
        raise ConfigError(
            f"limit override {text!r}: unknown exercise {ex!r}; choose one of {', '.join(PROFILES)}"
        )
    if value.lower() in ("none", "off", "null"):
        v = None
    else:
        try:
            v = float(value)
        except ValueError:
            raise ConfigError(f"limit override {text!r}: {value!r} is not a number (or none)") from None
    out = {ex: {key: v}}
    profile(ex, out)  # checks the key and the value
    return out
