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

from dataclasses import replace

from spinemon.core.calibration import Calibration, CalibrationSettings, Calibrator, drift_deg, rezero
from spinemon.core.gravity import Fused
from spinemon.core.stage import StageState, plain_value
from spinemon.core.stream import SampleBlock

__all__ = ["PHASE_MONITOR", "PHASE_NEUTRAL", "PHASE_ROM", "SessionPhases"]

PHASE_NEUTRAL = "calibrating-neutral"
PHASE_ROM = "calibrating-range"
PHASE_MONITOR = "monitoring"

#: the phases' own fields in their state (the calibrator, calibration and check give their own)
_STATE = ("phase", "_samples", "last_step_still", "_check_limit", "check_result", "stale_found")

_WHY_NOT_MONITORED = {
    PHASE_NEUTRAL: "waiting for a still stretch to set neutral",
    PHASE_ROM: "range-of-motion calibration",
}


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
        #: the last calibration step came from a still stretch (the wearer stands at it now)
        self.last_step_still = False
        self._check: Calibrator | None = None  # the stored calibration's check against the first standing
        self._check_limit = 5.0
        #: the stored calibration checked against this session's first standing:
        #: {"t", "from", "drift_deg": {sensor: deg}, "stale"}; None until checked
        self.check_result: dict | None = None
        self.stale_found: dict | None = (
            None  # {"t", "text"}: a stale calibration re-zeroed, to be told (taken by the pipeline)
        )

    def state(self) -> StageState:
        """The phases' state as a value (:class:`~spinemon.core.stage.Stage`):
        the calibrator's, the calibration in force (copied; whether it is the
        calibrator's own result, which the range sweep completes in place),
        the stored calibration's check, and the samples counted per phase."""
        check = self._check
        return {
            "calibrator": self.calibrator.state(),
            "calibration": None if self.calibration is None else self.calibration.copy(),
            "is_result": self.calibration is not None and self.calibration is self.calibrator.result,
            "_check": None if check is None else check.state(),
            **{k: plain_value(getattr(self, k)) for k in _STATE},
        }

    def restore(self, state: StageState) -> None:
        """Go on from ``state`` (see :meth:`state`)."""
        self.calibrator.restore(state["calibrator"])
        if state["is_result"]:
            self.calibration = self.calibrator.result
        else:
            cal = state["calibration"]
            self.calibration = None if cal is None else cal.copy()
        if state["_check"] is None:
            self._check = None
        else:
            self._check = Calibrator(replace(self.calibrator.settings, rom=False))
            self._check.restore(state["_check"])
        for k in _STATE:
            setattr(self, k, plain_value(state[k]))

    @property
    def gyro_offset(self) -> dict:
        """The zero-rate offsets to remove before fusion (none before neutral)."""
        return {} if self.calibration is None else self.calibration.gyro_offset

    def check_stored(self, limit_deg: float) -> None:
        """Check the stored calibration against this session's first standing
        (a still stretch, or the most upright quiet moment within
        ``provisional_after_s``): a sensor whose standing gravity is more than
        ``limit_deg`` off sits differently (re-attached): neutral is re-zeroed
        there, the range of motion kept."""
        self._check = Calibrator(replace(self.calibrator.settings, rom=False))
        self._check_limit = limit_deg

    @property
    def searching_neutral(self) -> bool:
        """A still stretch is being looked for: before the first neutral, or to replace a provisional one."""
        if self._check is not None:
            return True
        if self.phase == PHASE_NEUTRAL:
            return self.calibration is None
        return (
            self.phase == PHASE_MONITOR and self.calibrator.phase == "provisional"
        )  # the calibrator keeps looking after a provisional neutral

    def find_neutral(self, block: SampleBlock) -> tuple[int, Calibration | None]:
        """How many samples of ``block`` come before the next step, and the
        neutral found at the last of them (None: the whole block, no neutral)."""
        if not self.searching_neutral:
            return len(block), None
        if self._check is not None:
            return self._check_standing(block)
        found = self.calibrator.update_neutral(block)
        if found is None:
            return len(block), None
        self.last_step_still = found.source == "still"
        assert self.calibrator.stopped_at is not None  # set with every neutral found
        return self.calibrator.stopped_at + 1, found

    def _check_standing(self, block: SampleBlock) -> tuple[int, Calibration | None]:
        check = self._check
        assert check is not None and self.calibration is not None
        found = check.update_neutral(block)
        if found is None:
            return len(block), None
        i = check.stopped_at
        assert i is not None  # set with every neutral found
        self._check = None
        stored = self.calibration
        drift = {
            s: round(drift_deg(stored.mounting[s], found.mounting[s].neutral_up()), 2)
            for s in found.mounting
            if s in stored.mounting
        }
        worst = max(drift.values(), default=0.0)
        t = float(block.t[i])
        self.check_result = {
            "t": round(t, 4),
            "from": found.source,
            "drift_deg": drift,
            "stale": worst > self._check_limit,
        }
        if worst <= self._check_limit:
            return len(block), None
        mounting = {
            s: rezero(m, found.mounting[s].neutral_up()) if s in found.mounting else m
            for s, m in stored.mounting.items()
        }
        new = Calibration(
            mounting, found.t_neutral, stored.rom, stored.t_rom, {}, dict(stored.gyro_offset), "stored"
        )
        worst_s = max(drift, key=lambda s: drift[s])
        self.stale_found = {
            "t": t,
            "text": f"the sensors sit differently from the stored calibration ({worst_s} off by {worst:.0f} deg): neutral re-zeroed from this standing, range of motion kept; run 'spinemon calibrate' to redo it",
        }
        self.last_step_still = found.source == "still"
        return i + 1, new

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
    def calibration_state(self) -> str:
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
            "calibration": self.calibration_state,
            **({"stored_check": self.check_result} if self.check_result is not None else {}),
            "duration_s": round(sum(time_s.values()), 3),
            "monitored_s": round(time_s.get(PHASE_MONITOR, 0.0), 3),
            "not_monitored": {
                _WHY_NOT_MONITORED[k]: round(v, 3) for k, v in time_s.items() if k != PHASE_MONITOR and v > 0
            },
        }
