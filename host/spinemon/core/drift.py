"""Sensor drift between sets, and the warm-up before a set: two small stages
that watch the stream beside the rep counter.

- :class:`DriftMonitor` remembers still, upright standing stretches (at least
  ``min_standing_s`` long) and, when a set starts, compares the last one
  before it (within ``look_back_s``) with the calibrated neutral: a strap
  that slid shows as standing gravity off the calibrated direction.
  Past ``limit_deg`` the check is flagged and, with ``rezero``, the mounting
  is re-zeroed there.
- :class:`WarmupBends` counts bends through the range (rising crossings of a
  share of the flexion range, re-armed ``re_arm_deg`` below it).

Both keep their running state sample by sample (sums added one after
another, crossings carried across blocks), so any split of the stream gives
the same result (tests/core/test_drift.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from spinemon.core.angles import Mounting
from spinemon.core.calibration import CalibrationSettings, drift_deg, rezero, still_mask
from spinemon.core.stage import StageState, fields_of, set_fields
from spinemon.core.stream import SampleBlock

__all__ = ["DriftMonitor", "Standing", "WarmupBends"]

UPRIGHT_DEG = 25.0  # standing means the upper sensor within this of upright (not lying, not bent over)


@dataclass
class Standing:
    """A still, upright stretch: its first and last sample time and the mean
    gravity direction per sensor (sensor frame)."""

    t0: float
    t1: float
    mean: dict[str, np.ndarray]


@dataclass
class _Run:
    t0: float
    t1: float = float("nan")
    n: int = 0
    sums: dict[str, np.ndarray] = field(default_factory=dict)

    def standing(self) -> Standing:
        return Standing(self.t0, self.t1, {s: v / self.n for s, v in self.sums.items()})


class DriftMonitor:
    """Standing stretches and the drift check before each set (see the module)."""

    def __init__(
        self,
        still: CalibrationSettings,
        limit_deg: float,
        rezero_on_drift: bool = False,
        *,
        min_standing_s: float = 1.0,
        look_back_s: float = 60.0,
        keep: int = 8,
    ) -> None:
        self.still = still
        self.limit_deg = limit_deg
        self.rezero_on_drift = rezero_on_drift
        self.min_standing_s = min_standing_s
        self.look_back_s = look_back_s
        self.keep = keep
        self.standing: list[Standing] = []  # the last `keep` closed stretches
        self.checks: list[dict] = []  # one per set checked, in order
        self._run: _Run | None = None
        self._checked: set = set()

    def state(self) -> StageState:
        """The standing stretches, the checks and the open stretch as a value
        (:class:`spinemon.core.stage.Stage`)."""
        out = fields_of(self, ("standing", "checks", "_checked"))
        r = self._run
        out["_run"] = None if r is None else replace(r, sums=dict(r.sums))
        return out

    def restore(self, state: StageState) -> None:
        """Go on from :meth:`state`."""
        set_fields(self, state, ("standing", "checks", "_checked"))
        r = state["_run"]
        self._run = None if r is None else replace(r, sums=dict(r.sums))

    def checked(self, set_number: int) -> bool:
        return set_number in self._checked

    def standing_mask(
        self, block: SampleBlock, gravity: dict[str, np.ndarray], upper: Mounting
    ) -> np.ndarray:
        """Per sample: still and upright (what a standing stretch is made of);
        sample by sample, so a piece of a block's mask is the piece's own."""
        still = still_mask(block, self.still)
        still &= upper.to_body(gravity["upper"])[:, 0] > np.cos(np.radians(UPRIGHT_DEG))
        return still

    def update(
        self,
        block: SampleBlock,
        gravity: dict[str, np.ndarray],
        upper: Mounting,
        standing: np.ndarray | None = None,
    ) -> None:
        """One block with each sensor's fused gravity direction; ``upper`` the
        upper sensor's mounting (what says upright). ``standing``: the
        block's :meth:`standing_mask` if the caller has it already (cut from
        a longer block's)."""
        still = self.standing_mask(block, gravity, upper) if standing is None else standing
        run = self._run
        if run is not None and set(run.sums) != set(block.sensors):
            self._close(run)  # the sensors changed: a new stretch
            run = None
        # each stretch of still samples extends the open run (sums added sample
        # after sample, as a running sum: the same for any split of the stream)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], still.astype(np.int8), [0]))))
        pos = 0
        sensors = block.sensors
        for a, b in zip(edges[0::2].tolist(), edges[1::2].tolist()):
            if a > pos and run is not None:  # moving samples before this stretch end the run
                self._close(run)
                run = None
            if run is None:
                run = _Run(float(block.t[a]), sums={s: np.zeros(3) for s in sensors})
            run.n += b - a
            run.t1 = float(block.t[b - 1])
            # the sums so far, then the stretch's rows, every sensor side by side:
            # one running sum down the columns (each column on its own, in order)
            buf = np.empty((b - a + 1, 3 * len(sensors)))
            for k, s in enumerate(sensors):
                buf[0, 3 * k : 3 * k + 3] = run.sums[s]
                buf[1:, 3 * k : 3 * k + 3] = gravity[s][a:b]
            total = np.add.accumulate(buf, axis=0)[-1]
            for k, s in enumerate(sensors):
                run.sums[s] = total[3 * k : 3 * k + 3].copy()
            pos = b
        if pos < len(block) and run is not None:
            self._close(run)
            run = None
        self._run = run

    def finish(self) -> None:
        """The stream ended: an open stretch closes."""
        if self._run is not None:
            self._close(self._run)
            self._run = None

    def _long_enough(self, run: _Run) -> bool:
        return run.n > 0 and run.t1 - run.t0 >= self.min_standing_s

    def _close(self, run: _Run) -> None:
        if self._long_enough(run):
            self.standing.append(run.standing())
            del self.standing[: -self.keep]

    def last_before(self, t_set: float) -> Standing | None:
        """The last standing stretch (the open one too, once long enough) that
        ended by ``t_set`` and at most ``look_back_s`` before it."""
        cands = list(self.standing)
        if self._run is not None and self._long_enough(self._run):
            cands.append(self._run.standing())
        cands = [c for c in cands if c.t1 <= t_set + 1e-9 and t_set - c.t1 <= self.look_back_s]
        return cands[-1] if cands else None

    def check(self, set_number: int, t_set: float, mounting: dict[str, Mounting]) -> dict | None:
        """The drift check for a set starting at ``t_set`` (once per set);
        None when already done or no standing came before it. With
        ``rezero_on_drift`` a flagged sensor's entry in ``mounting`` is
        replaced by the re-zeroed one (``check["rezeroed"]``)."""
        if set_number in self._checked:
            return None
        last = self.last_before(t_set)
        if last is None:
            return None
        self._checked.add(set_number)
        drift = {s: round(drift_deg(mounting[s], u), 2) for s, u in last.mean.items() if s in mounting}
        flagged = any(v > self.limit_deg for v in drift.values())
        check = {
            "set": set_number,
            "t": round(last.t1, 4),
            "drift_deg": drift,
            "flagged": flagged,
            "rezeroed": False,
        }
        if flagged and self.rezero_on_drift:
            for s in drift:
                mounting[s] = rezero(mounting[s], last.mean[s])
            check["rezeroed"] = True
        self.checks.append(check)
        return check


class WarmupBends:
    """Times of bends through the range: rising crossings of ``share`` of the
    flexion range, re-armed ``re_arm_deg`` below it (see the module)."""

    def __init__(self, share: float, re_arm_deg: float = 5.0) -> None:
        self.share = share
        self.re_arm_deg = re_arm_deg
        self.times: list[float] = []
        self._up = False

    def state(self) -> StageState:
        """The bends so far and whether one is under way, as a value (:class:`spinemon.core.stage.Stage`)."""
        return fields_of(self, ("times", "_up"))

    def restore(self, state: StageState) -> None:
        set_fields(self, state, ("times", "_up"))

    def update(self, t: np.ndarray, flexion_deg: np.ndarray, flexion_range_deg: float) -> None:
        hi = self.share * flexion_range_deg
        lo = hi - self.re_arm_deg
        # the state after each sample past either line is which line it is
        # past; a bend begins where it turns to "up" (no per-sample Python)
        above = flexion_deg > hi
        idx = np.flatnonzero(above | (flexion_deg < lo))
        if not len(idx):
            return
        state = above[idx]
        before = np.empty_like(state)
        before[0] = self._up
        before[1:] = state[:-1]
        self.times.extend(float(x) for x in t[idx[state & ~before]])
        self._up = bool(state[-1])

    def before(self, t: float) -> int:
        """Bends that began before ``t``."""
        return sum(1 for x in self.times if x < t)
