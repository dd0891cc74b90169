"""The fusion stage: each sensor's gravity direction, sample by sample.

One :class:`~spinemon.core.fusion.GravityFilter` per sensor, run over each
block after the calibration's gyro zero-rate offsets are removed. Its output
(:class:`Fused`) carries the offset-free block, each sensor's gravity
direction and the gyros with each filter's own bias removed too; downstream
stages (calibration's range of motion, angles, segmentation, the drift
check) read only that.

What the stage follows on its own:

* a sensor that left the stream (:meth:`GravityStage.forget`) is restarted
  from its first sample when it comes back;
* a new sample rate (SET_RATE) carries each filter's gravity direction and
  bias over to a filter at the new rate;
* a new neutral (:meth:`GravityStage.restart_from`) restarts each filter from
  the neutral gravity direction with no bias of its own (the offset found at
  neutral is removed upstream from then on); with rules 5 a still stretch that
  replaces a provisional neutral restarts the filters that have not learnt
  their bias at rest from the neutral gravity, with a bias given (the rep
  counter's, learnt in motion).

Exact under any split of the stream: the filters are (see
tests/core/test_fusion.py), and every change above happens between samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from spinemon.core.calibration import Calibration
from spinemon.core.fusion import FusionResult, FusionSettings, FusionState, GravityFilter
from spinemon.core.stage import StageState
from spinemon.core.stream import SampleBlock

__all__ = ["BIAS_LEARNT_S", "Fused", "GravityStage"]

#: a filter's gyro bias counts as learnt once this much of its input was rest
#: (s; rest itself needs ``FusionSettings.rest_min_s`` of quiet first): the
#: bias is then the mean of that many samples, a few hundredths of a deg/s
#: off with gyro noise, where an unlearnt one is off by up to the sensor's
#: zero-rate offset (1-2 deg/s), which the twist integrates
BIAS_LEARNT_S = 0.5


@dataclass(frozen=True)
class Fused:
    """One block through the fusion stage."""

    block: SampleBlock  # the samples with the calibration's gyro offsets removed
    gravity: dict[str, np.ndarray]  # (n, 3) unit gravity direction per sensor, sensor frame
    gyr: dict[str, np.ndarray]  # (n, 3) rad/s, each filter's bias removed too
    #: (n,) bool per sensor: its filter has learnt its gyro bias (``BIAS_LEARNT_S``
    #: of rest since it started); empty: not told
    bias_learnt: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # read-only: the stages after fusion share one rotation of them to
        # the body frame (angles.Mounting.to_body); nobody changes them
        for arrays in (self.gravity, self.gyr):
            for a in arrays.values():
                if isinstance(a, np.ndarray):
                    a.setflags(write=False)

    def __len__(self) -> int:
        return len(self.block)

    def slice(self, start: int, stop: int | None = None) -> Fused:
        if start == 0 and (stop is None or stop >= len(self)):
            return self
        return Fused(
            self.block.slice(start, stop),
            {s: g[start:stop] for s, g in self.gravity.items()},
            {s: g[start:stop] for s, g in self.gyr.items()},
            {s: g[start:stop] for s, g in self.bias_learnt.items()},
        )


class GravityStage:
    """See the module. Exposed state: ``filters`` (sensor -> filter),
    ``last`` (sensor -> the last block's detailed filter output: rest flags,
    accelerometer trust, bias, so a test can ask why). ``engine``: the
    fusion engine of every filter (``"compiled"`` or ``"numpy"``, see
    :func:`spinemon.core.fusion.engine`)."""

    def __init__(self, settings: FusionSettings, engine: str = "compiled") -> None:
        self.settings = settings
        self.engine = engine
        self.filters: dict[str, GravityFilter] = {}
        self.last: dict[str, FusionResult] = {}
        #: rest samples each filter has learnt its bias from since it (re)started
        self.rest_samples: dict[str, int] = {}

    def state(self) -> StageState:
        """Each sensor's filter (its rate and :class:`FusionState`, copied), the
        rest samples each has learnt its bias from and the last block's output,
        as a value (:class:`spinemon.core.stage.Stage`)."""
        return {
            "filters": {
                s: (f.rate, None if f.state is None else f.state.copy()) for s, f in self.filters.items()
            },
            "last": dict(self.last),
            "rest_samples": dict(self.rest_samples),
        }

    def restore(self, state: StageState) -> None:
        """Go on from :meth:`state`."""
        self.filters = {
            s: GravityFilter(rate, self.settings, st, engine=self.engine)
            for s, (rate, st) in state["filters"].items()
        }
        self.last = dict(state["last"])
        self.rest_samples = dict(state["rest_samples"])

    def forget(self, sensors: tuple[str, ...]) -> None:
        """These sensors left the stream: restart each from its first sample if it comes back."""
        for s in sensors:
            self.filters.pop(s, None)
            self.rest_samples.pop(s, None)

    def restart_from(
        self,
        calibration: Calibration,
        rate: float,
        bias: dict[str, np.ndarray] | None = None,
    ) -> list[str]:
        """A new neutral: each calibrated sensor's filter starts again from the
        neutral gravity direction, with no bias of its own. With ``bias``
        (rules 5, a still stretch that replaces a provisional neutral: rad/s
        per sensor, the filter's input frame), only the filters in it that
        have not learnt their bias at rest restart, with that bias (not
        counted as learnt: their first rest replaces it) and the rest run
        under way. Returns the sensors restarted."""
        out = []
        for s, m in calibration.mounting.items():
            f = self.filters.get(s)
            if f is None:
                continue
            b = np.zeros(3)
            if bias is not None:
                if (
                    s not in bias
                    or self.rest_samples.get(s, 0)
                    or (f.state is not None and f.state.bias_count)
                ):
                    continue
                b = np.asarray(bias[s], dtype=np.float64)
            state = FusionState.from_gravity(m.neutral_up(), rate, self.settings, bias=b)
            if bias is not None and f.state is not None:
                state.rest_run = f.state.rest_run  # the gravity starts again, the sensor's rest goes on
            self.filters[s] = GravityFilter(rate, self.settings, state, engine=self.engine)
            self.rest_samples[s] = 0
            out.append(s)
        return out

    def _follow_rate(self, sensor: str, rate: float) -> None:
        old = self.filters[sensor]
        state = None
        if old.state is not None:
            state = FusionState.from_gravity(old.state.gravity, rate, self.settings, bias=old.bias)
        self.filters[sensor] = GravityFilter(rate, self.settings, state, engine=self.engine)

    def update(self, block: SampleBlock, gyro_offset: dict[str, np.ndarray] | None = None) -> Fused:
        """Fuse one block; ``gyro_offset``: the calibration's zero-rate offset per sensor (rad/s)."""
        if gyro_offset and len(block):
            block = replace(
                block, gyr={s: (g - gyro_offset[s] if s in gyro_offset else g) for s, g in block.gyr.items()}
            )
        for s in block.sensors:
            f = self.filters.get(s)
            if f is None:
                self.filters[s] = GravityFilter(block.rate_hz, self.settings, engine=self.engine)
                self.rest_samples[s] = 0
            elif abs(f.rate - block.rate_hz) > 1e-6 * block.rate_hz:
                self._follow_rate(s, block.rate_hz)
        self.last = {s: self.filters[s].update_detailed(block.acc[s], block.gyr[s]) for s in block.sensors}
        learnt = {}
        need = math.ceil(BIAS_LEARNT_S * block.rate_hz)
        for s, r in self.last.items():
            count = self.rest_samples.get(s, 0) + np.cumsum(r.rest, dtype=np.int64)
            learnt[s] = count >= need
            if len(count):
                self.rest_samples[s] = int(count[-1])
        return Fused(
            block,
            {s: r.gravity for s, r in self.last.items()},
            {s: block.gyr[s] - r.bias for s, r in self.last.items()},
            learnt,
        )
