"""Which limits are in force: one small stage beside the detector.

The exercise's profile (with the lifter's overrides) scaled by the calibrated
range of motion; the set's spine-creep limit (its first rep's peak flexion
plus the profile's ``creep_deg``, until another set's reps begin: creep is
measured against each set's own start); and, with one sensor, the limits it
cannot watch turned off (:attr:`LimitPlan.off`: limit name -> why).
"""

from __future__ import annotations

from dataclasses import replace

from spinemon.core.detect import Limits, RangeOfMotion, one_sensor_limits, profile
from spinemon.core.stage import StageState, fields_of, set_fields

_STATE = ("creep_limit_deg", "creep_set", "off")

__all__ = ["LimitPlan"]


class LimitPlan:
    """The limits for the detector, from what the pipeline has learnt (see the module)."""

    def __init__(self, overrides: dict | None = None, *, lean: bool = True) -> None:
        self.overrides = overrides
        self.lean = lean  # one sensor watches forward lean (False: recordings made before it did)
        self.creep_limit_deg: float | None = None  # flexion that counts as spine creep in this set
        self.creep_set: int | None = None  # the set whose first rep set it
        self.off: dict[str, str] = {}  # limits one sensor cannot watch, and why

    def state(self) -> StageState:
        """The creep limit in force and the limits one sensor turned off, as a value."""
        return fields_of(self, _STATE)

    def restore(self, state: StageState) -> None:
        set_fields(self, state, _STATE)

    def limits(self, exercise: str, rom: RangeOfMotion | None, single_sensor: bool | None) -> Limits:
        """The limits now; also refreshes :attr:`off`."""
        p = profile(exercise, self.overrides)
        lim = p.limits(rom) if rom is not None else p.limits()
        creep = self.creep_limit_deg
        if creep is not None and lim.flexion_deg is not None and creep >= lim.flexion_deg:
            creep = None  # the hard limit comes first anyway
        lim = replace(lim, creep_deg=creep)
        if single_sensor:
            lim, self.off = one_sensor_limits(exercise, lim if self.lean else replace(lim, lean_deg=None))
            if not self.lean:
                self.off.pop("lean_deg", None)
        else:
            lim = replace(lim, lean_deg=None)  # two sensors judge the lumbar angle itself
            self.off = {}
        return lim

    def first_rep(self, exercise: str, set_number: int | None, peak_flexion_deg: float) -> None:
        """A set's first rep: its peak flexion plus the profile's creep allowance is the set's creep limit."""
        creep = profile(exercise, self.overrides).creep_deg
        self.creep_set = set_number
        self.creep_limit_deg = None if creep is None else peak_flexion_deg + creep

    def reps_of_set(self, set_number: int | None) -> bool:
        """Reps of ``set_number`` are counted now; True if that ended the creep limit of another set."""
        if self.creep_set is not None and set_number != self.creep_set and self.creep_limit_deg is not None:
            self.creep_limit_deg = None  # a new set: wait for its first rep
            return True
        return False

    def new_label(self) -> None:
        """The lifter named a set: no creep limit until its first rep."""
        self.creep_limit_deg = None
