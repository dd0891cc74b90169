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

from collections.abc import Sequence

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

    @classmethod
    def inside(
        cls, flexion: np.ndarray, runs: Sequence[tuple[int, Limits]], hysteresis_deg: float
    ) -> np.ndarray:
        """Per sample of a block cut into runs (run ``k``: samples up to
        ``runs[k][0]``, with limits ``runs[k][1]``): inside the limits by the hysteresis."""
        first = runs[0][1]
        if len(runs) == 1 or all(
            lim.flexion_deg == first.flexion_deg and lim.extension_deg == first.extension_deg
            for _, lim in runs
        ):
            return cls._inside(flexion, first, hysteresis_deg)
        parts, a = [], 0
        for b, lim in runs:
            parts.append(cls._inside(flexion[a:b], lim, hysteresis_deg))
            a = b
        return np.concatenate(parts)

    def state_at(self, flags: np.ndarray, inside: np.ndarray, j: int) -> bool:
        """The state after sample ``j`` of a block (its flags, and :meth:`inside`), from the state before it."""
        buzz = np.flatnonzero(flags[: j + 1] & proto.SF_GUARD_BUZZED)
        ins = np.flatnonzero(inside[: j + 1])
        if not len(buzz) and not len(ins):
            return self.open
        return bool(len(buzz) > 0 and (not len(ins) or buzz[-1] >= ins[-1]))

    def advance(self, flags: np.ndarray, inside: np.ndarray) -> None:
        """Move past the block (its flags, and :meth:`inside`)."""
        if len(flags):
            self.open = self.state_at(flags, inside, len(flags) - 1)

    def as_of(
        self, flags: np.ndarray, flexion: np.ndarray, j: int, limits: Limits, hysteresis_deg: float
    ) -> bool:
        """The state after sample ``j`` of a block (flags, flexion of the block), from the state before it."""
        return self.state_at(flags, self._inside(flexion[: j + 1], limits, hysteresis_deg), j)

    def update(self, flags: np.ndarray, flexion: np.ndarray, limits: Limits, hysteresis_deg: float) -> None:
        """Move past the block."""
        self.advance(flags, self._inside(flexion, limits, hysteresis_deg))
