"""The calibration stage: which phase each sample belongs to, and where a
calibration step ends inside a block.

A session goes neutral -> range of motion -> monitoring (the range is
optional: ``CalibrationSettings.rom``). Neutral comes from a still stretch
of raw samples, so it is found before fusion (:meth:`SessionPhases.find_neutral`);
the range of motion is read from the fused gravity directions, so it is
found after (:meth:`SessionPhases.update_range`). With no still stretch by
``provisional_after_s``, a *provisional* neutral from the quietest stretch
starts monitoring, and a later still stretch replaces it (found while
monitoring, again before fusion).

Each step reports the sample that completed it; the caller runs the samples
up to it in the old phase and the rest in the new one, so any split of the
stream into blocks ends every phase at the same sample. Samples are counted
per phase and rate (:attr:`SessionPhases.time_s`): what was monitored, and
why the rest was not.

Exposed state: ``phase``, ``calibration``, ``calibrator`` (its own phase,
attempts, the range sweep's stage and peaks).
"""

from __future__ import annotations

from spinemon.core.calibration import Calibration, CalibrationSettings, Calibrator
from spinemon.core.gravity import Fused
from spinemon.core.stream import SampleBlock

__all__ = ["PHASE_MONITOR", "PHASE_NEUTRAL", "PHASE_ROM", "SessionPhases"]

PHASE_NEUTRAL = "calibrating-neutral"
PHASE_ROM = "calibrating-range"
PHASE_MONITOR = "monitoring"

_WHY_NOT_MONITORED = {PHASE_NEUTRAL: "waiting for a still stretch to set neutral", PHASE_ROM: "range-of-motion calibration"}


class SessionPhases:
    """See the module. ``given``: a calibration to start from (a saved
    profile); monitoring starts with the first sample."""

    def __init__(self, settings: CalibrationSettings, given: Calibration | None = None) -> None:
        self.calibrator = Calibrator(settings)
        self.calibration: Calibration | None = given
        self.given = given is not None
        self.phase = PHASE_NEUTRAL
        if given is not None:
            self.calibrator.phase = "done"
            self.phase = PHASE_MONITOR
        self._samples: dict[tuple[str, float], int] = {}  # (phase, rate) -> samples (see time_s)

    @property
    def gyro_offset(self) -> dict:
        """The zero-rate offsets to remove before fusion (none before neutral)."""
        return {} if self.calibration is None else self.calibration.gyro_offset

    @property
    def searching_neutral(self) -> bool:
        """A still stretch is being looked for: before the first neutral, or to replace a provisional one."""
        if self.phase == PHASE_NEUTRAL:
            return self.calibration is None
        return self.phase == PHASE_MONITOR and self.calibrator.phase == "provisional"  # the calibrator keeps looking after a provisional neutral

    def find_neutral(self, block: SampleBlock) -> tuple[int, Calibration | None]:
        """How many samples of ``block`` come before the next step, and the
        neutral found at the last of them (None: the whole block, no neutral)."""
        if not self.searching_neutral:
            return len(block), None
        found = self.calibrator.update_neutral(block)
        if found is None:
            return len(block), None
        return self.calibrator.stopped_at + 1, found

    def neutral_found(self, found: Calibration) -> None:
        """Neutral set (after its samples ran in the old phase): the range
        sweep comes next if wanted; a provisional neutral, or one replacing
        it, goes straight to monitoring."""
        self.calibration = found
        self.phase = PHASE_ROM if self.calibrator.phase == "rom" else PHASE_MONITOR

    def update_range(self, fused: Fused) -> int:
        """In the range-of-motion phase: how many samples of ``fused`` belong
        to it (all of them unless the sweep ends inside the block; then
        :attr:`phase` is monitoring for the rest). The calibration's mountings
        now carry each sensor's heading from the bend, and its range."""
        if self.phase != PHASE_ROM:
            return 0
        done = self.calibrator.update_rom(fused.block, fused.gravity)
        stop = self.calibrator.stopped_at
        if not done:
            return len(fused)
        self.phase = PHASE_MONITOR
        return len(fused) if stop is None else stop + 1

    def account(self, phase: str, block: SampleBlock) -> None:
        """Count ``block``'s samples in ``phase`` (counts, so the times do not depend on how the stream was cut)."""
        key = (phase, block.rate_hz)
        self._samples[key] = self._samples.get(key, 0) + len(block)

    @property
    def time_s(self) -> dict[str, float]:
        """Seconds of samples per phase (PHASE_NEUTRAL, PHASE_ROM, PHASE_MONITOR)."""
        out: dict[str, float] = {}
        for (phase, rate), count in sorted(self._samples.items()):
            out[phase] = out.get(phase, 0.0) + count / rate
        return out

    @property
    def state(self) -> str:
        """``done`` (found this session), ``stored`` (given: a saved profile),
        ``provisional`` (no still stretch: the quietest one) or ``none``."""
        if self.calibration is None:
            return "none"
        if self.given:
            return "stored"
        return "provisional" if self.calibration.source == "provisional" else "done"

    def monitoring(self) -> dict:
        """How much of the session was monitored, and why the rest was not."""
        time_s = self.time_s
        return {
            "calibration": self.state,
            "duration_s": round(sum(time_s.values()), 3),
            "monitored_s": round(time_s.get(PHASE_MONITOR, 0.0), 3),
            "not_monitored": {_WHY_NOT_MONITORED[k]: round(v, 3) for k, v in time_s.items() if k != PHASE_MONITOR and v > 0},
        }
