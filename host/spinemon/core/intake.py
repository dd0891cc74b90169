"""Intake: the samples the chain can use, on a clock that never goes back.

The first stage after decoding. A valid frame the chain cannot follow is
counted by reason and skipped (:attr:`Intake.skipped_samples`), and the
session goes on:

* a sample rate outside ``MIN_RATE_HZ..MAX_RATE_HZ`` (nothing can fuse it);
* no upper IMU in the frame (it was not detected at a reboot): no angle can
  be formed without it.

A change of sensors or rate mid-session (a reboot without the lower IMU,
SET_RATE) is recorded in :attr:`Intake.layout_changes`; :attr:`Intake.gone`
names the sensors that left the stream at the last change, so the fusion
stage restarts a sensor that comes back from its first sample. Device time
is made monotonic (:class:`~spinemon.core.stream.MonotonicClock`).

Sample by sample: any split of the stream gives the same blocks out (the
layout is a property of a frame, and the clock carries its state).
"""

from __future__ import annotations

from spinemon.core.stage import StageState, fields_of, set_fields
from spinemon.core.stream import MonotonicClock, SampleBlock

__all__ = ["MAX_RATE_HZ", "MIN_RATE_HZ", "Intake"]

#: sample rates the chain can fuse (a valid frame outside them is counted and skipped)
MIN_RATE_HZ = 1.0
MAX_RATE_HZ = 10000.0


class Intake:
    """See the module. ``update(block)`` returns the block on the monotonic
    clock, or None when the chain cannot use it (counted)."""

    def __init__(self) -> None:
        self.clock = MonotonicClock()  # clock.backsteps: how often device time tried to go back
        #: samples that could not be used, by reason
        self.skipped_samples: dict[str, int] = {}
        #: layout changes mid-session: {t, sensors, rate_hz} each
        self.layout_changes: list[dict] = []
        #: sensors that left the stream at the last update (empty if none)
        self.gone: tuple[str, ...] = ()
        self._layout: tuple | None = None

    def state(self) -> StageState:
        """The counts, the layout and the clock's shift as a value (:class:`spinemon.core.stage.Stage`)."""
        out = fields_of(self, ("skipped_samples", "layout_changes", "gone", "_layout"))
        out["clock"] = fields_of(self.clock, ("shift_s", "backsteps", "t_last"))
        return out

    def restore(self, state: StageState) -> None:
        """Go on from :meth:`state`."""
        set_fields(self, state, ("skipped_samples", "layout_changes", "gone", "_layout"))
        set_fields(self.clock, state["clock"], ("shift_s", "backsteps", "t_last"))

    @property
    def t_last(self) -> float | None:
        """Time of the last sample passed on (None before the first)."""
        return self.clock.t_last

    def _skip(self, why: str, n: int) -> None:
        self.skipped_samples[why] = self.skipped_samples.get(why, 0) + n

    def update(self, block: SampleBlock) -> SampleBlock | None:
        self.gone = ()
        if not (MIN_RATE_HZ <= block.rate_hz <= MAX_RATE_HZ):
            self._skip("rate out of range", len(block))
            return None
        key = (block.sensors, round(block.rate_hz, 6))
        if self._layout is not None and key != self._layout:
            self.layout_changes.append(
                {
                    "t": round(float(block.t[0]), 4) if len(block) else None,
                    "sensors": "+".join(block.sensors),
                    "rate_hz": round(block.rate_hz, 3),
                }
            )
            self.gone = tuple(s for s in self._layout[0] if s not in block.sensors)
        self._layout = key
        if "upper" not in block.sensors:
            self._skip("upper sensor missing", len(block))
            return None
        block = self.clock.update(block)
        return block if len(block) else None
