"""Timed holds (plank, bird dog, dead bug, glute bridge): from settling
into the lying or horizontal posture to getting up. One job: given the
upper sensor's tilt away from standing, say per sample whether a hold is
running, and keep the holds with their faults."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from spinemon.core.stage import StageState, fields_of, set_fields


@dataclass
class Hold:
    """One timed hold (plank, bird dog, ...): from settling into the posture
    to getting up. The faults confirmed during it are the pipeline's
    (``Pipeline.hold_faults``, by :attr:`key`)."""

    exercise: str
    set: int | None
    hold: int  # number within the set, from 1
    t_start: float
    t_end: float | None = None

    @property
    def key(self) -> tuple[str, int | None, int, float]:
        """What names this hold for good (its end may still move)."""
        return (self.exercise, self.set, self.hold, self.t_start)

    @property
    def duration_s(self) -> float:
        return float("nan") if self.t_end is None else self.t_end - self.t_start

    def as_dict(self, faults: Sequence[Any] = ()) -> dict:
        """The hold with ``faults``: the events confirmed during it."""
        return {
            "type": "hold",
            "exercise": self.exercise,
            "set": self.set,
            "hold": self.hold,
            "t_start": round(self.t_start, 4),
            "t_end": None if self.t_end is None else round(self.t_end, 4),
            "duration_s": None if self.t_end is None else round(self.duration_s, 3),
            "faults": [
                {
                    "kind": e.kind,
                    "t_alert": None if e.t_alert is None else round(e.t_alert, 4),
                    "peak_deg": round(e.peak_deg, 2),
                }
                for e in faults
            ],
        }


class HoldTimer:
    """Times holds from the upper sensor's tilt away from standing (deg):
    a hold starts once the trunk has been past ``enter_deg`` (lying or on all
    fours) for ``settle_s`` and the trunk is quiet (below ``quiet_deg_s``);
    it ends when the tilt falls below ``exit_deg`` (getting up). Holds shorter
    than ``min_s`` are dropped. Sample by sample (block-split invariant)."""

    def __init__(
        self,
        enter_deg: float = 55.0,
        exit_deg: float = 45.0,
        settle_s: float = 1.0,
        quiet_deg_s: float = 10.0,
        min_s: float = 3.0,
    ) -> None:
        self.enter_deg, self.exit_deg, self.settle_s, self.quiet_deg_s, self.min_s = (
            enter_deg,
            exit_deg,
            settle_s,
            quiet_deg_s,
            min_s,
        )
        self.holds: list[Hold] = []
        self.current: Hold | None = None
        self._down_since: float | None = None
        self.exercise: str | None = None
        self.set: int | None = None
        self._ref = 0.0  # held tilt, smoothed (time constant 3 s)
        self._last_ok = 0.0  # last time the tilt was near the held posture
        self._a = 0.0033

    #: what :meth:`state` carries besides the holds (the thresholds are settings)
    _STATE_FIELDS = ("exercise", "set", "_down_since", "_ref", "_last_ok", "_a")

    def state(self) -> StageState:
        """The timer's state as a value (:class:`spinemon.core.stage.Stage`)."""
        out = fields_of(self, self._STATE_FIELDS)
        out["holds"] = [replace(h) for h in self.holds]
        out["current"] = None if self.current is None else self.holds.index(self.current)
        return out

    def restore(self, state: StageState) -> None:
        """Go on from :meth:`state`."""
        set_fields(self, state, self._STATE_FIELDS)
        self.holds = [replace(h) for h in state["holds"]]
        self.current = None if state["current"] is None else self.holds[state["current"]]

    def hold_at(self, t: float) -> Hold | None:
        """The last hold that began at or before ``t`` (where a fault alerted at ``t`` is listed)."""
        for h in reversed(self.holds):
            if h.t_start <= t:
                return h
        return None

    def start(self, exercise: str, set_number: int | None, t: float) -> None:
        self.stop(t)
        self.exercise, self.set = exercise, set_number

    def stop(self, t: float) -> None:
        if self.current is not None:
            self._close(self._last_ok)
        self.exercise = None
        self._down_since = None

    def _close(self, t: float) -> None:
        h = self.current
        self.current = None
        if h is None:
            return
        h.t_end = t
        if h.duration_s < self.min_s:
            self.holds.remove(h)

    def update(
        self, t: np.ndarray, tilt_deg: np.ndarray, rate_deg_s: np.ndarray, rate_hz: float
    ) -> np.ndarray:
        """Returns per sample: a hold is running. The end is dated back to
        the last sample near the held posture (``ref`` = its tilt, smoothed),
        so getting up does not count as holding."""
        on = np.zeros(len(t), dtype=bool)
        if self.exercise is None:
            return on
        for i in range(len(t)):
            ti, tilt = float(t[i]), float(tilt_deg[i])
            if self.current is not None:
                if tilt < self.exit_deg:
                    self._close(self._last_ok)
                    self._down_since = None
                else:
                    self._ref += self._a * (tilt - self._ref)
                    if tilt >= self._ref - 4.0:
                        self._last_ok = ti
                    on[i] = True
                continue
            if tilt > self.enter_deg:
                if self._down_since is None:
                    self._down_since = ti
                if ti - self._down_since >= self.settle_s and float(rate_deg_s[i]) < self.quiet_deg_s:
                    n = 1 + sum(1 for h in self.holds if h.set == self.set and h.exercise == self.exercise)
                    self.current = Hold(self.exercise, self.set, n, ti)
                    self.holds.append(self.current)
                    self._ref, self._last_ok = tilt, ti
                    self._a = 1.0 - math.exp(-1.0 / (rate_hz * 3.0))
                    on[i] = True
            else:
                self._down_since = None
        return on
