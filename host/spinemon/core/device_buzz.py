"""Has the wearable's own guard already buzzed for this excursion? One small
stage between the detector and the alerts, so one fault gets one buzz.

The guard buzzes once per excursion past a flexion/extension limit and flags
the frame it buzzed in (``SF_GUARD_BUZZED``; the flag covers its frame, a few
samples). An excursion ends when the angle is back inside the limits by the
detector's hysteresis. Per sample the state is: a flagged sample opens it, a
sample inside the limits closes it (a sample both flagged and inside leaves it
open); carried from block to block, so any split gives the same answer
(tests/core/test_device_buzz.py).
"""

from __future__ import annotations

import numpy as np

import spinemon_protocol as proto
from spinemon.core.detect import Limits

__all__ = ["DeviceBuzzWatch"]


class DeviceBuzzWatch:
    """See the module. ``open``: the guard buzzed since the angle was last inside."""

    def __init__(self) -> None:
        self.open = False

    def state(self) -> dict[str, bool]:
        return {"open": self.open}

    def restore(self, state: dict[str, bool]) -> None:
        self.open = bool(state["open"])

    @staticmethod
    def _inside(flexion: np.ndarray, limits: Limits, hysteresis_deg: float) -> np.ndarray:
        inside = np.ones(len(flexion), dtype=bool)
        if limits.flexion_deg is not None:
            inside &= flexion < limits.flexion_deg - hysteresis_deg
        if limits.extension_deg is not None:
            inside &= flexion > limits.extension_deg + hysteresis_deg
        return inside

    def as_of(
        self, flags: np.ndarray, flexion: np.ndarray, j: int, limits: Limits, hysteresis_deg: float
    ) -> bool:
        """The state after sample ``j`` of a block (flags, flexion of the block), from the state before it."""
        buzz = np.flatnonzero(flags[: j + 1] & proto.SF_GUARD_BUZZED)
        ins = np.flatnonzero(self._inside(flexion[: j + 1], limits, hysteresis_deg))
        if not len(buzz) and not len(ins):
            return self.open
        return bool(len(buzz) > 0 and (not len(ins) or buzz[-1] >= ins[-1]))

    def update(self, flags: np.ndarray, flexion: np.ndarray, limits: Limits, hysteresis_deg: float) -> None:
        """Move past the block."""
        if len(flags):
            self.open = self.as_of(flags, flexion, len(flags) - 1, limits, hysteresis_deg)
