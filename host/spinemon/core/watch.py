"""The detection stage: the limits in force, the events past them, the alerts.

Piece by piece (:meth:`LimitWatch.begin_piece` and :meth:`LimitWatch.update`;
the segmentation stage cuts the pieces where a rep or set became known, so
everything below changes at its own sample and any split of the stream gives
the same events and alerts), or a run of pieces at once with the same result
(:meth:`LimitWatch.update_pieces`: each piece's limits and set and rep, the
checks over the whole run):

* **Limits** (:class:`~spinemon.core.limits.LimitPlan`): the exercise's
  profile scaled by the calibrated range of motion, the set's spine-creep
  limit once its first rep is known, and with one sensor the limits it
  cannot watch turned off. They follow the label, the calibration
  (:meth:`LimitWatch.follow`) and the records (:meth:`LimitWatch.begin_piece`).
* **Events** (:class:`~spinemon.core.detect.EventDetector`) on the armed
  samples; what would have fired on the others (between sets: walking,
  plate loading, sitting) goes to :attr:`LimitWatch.shadow`, kept for the
  summary and never sent.
* **Alerts** (:class:`~spinemon.core.alerts.AlertPolicy`): one per confirmed
  event, with no HAPTIC when the wearable's own guard buzzed for that
  excursion already (:class:`~spinemon.core.device_buzz.DeviceBuzzWatch`):
  one fault, one buzz.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from spinemon.core.alerts import Alert, AlertPolicy
from spinemon.core.angles import LumbarAngles, twist_biases_known
from spinemon.core.calibration import Calibration
from spinemon.core.detect import (
    LATERAL_BEND,
    OVER_EXTENSION,
    OVER_FLEXION,
    TWIST,
    DetectorSettings,
    Event,
    EventDetector,
    Limits,
    RangeOfMotion,
)
from spinemon.core.device_buzz import DeviceBuzzWatch
from spinemon.core.gravity import Fused
from spinemon.core.limits import LimitPlan
from spinemon.core.reps import RepRecord
from spinemon.core.segment import (
    HELD_ARCH_BAND,
    HELD_ARCH_HEADING,
    HELD_ARCH_PRESS_HEADING,
    HELD_BACK,
    HELD_LATERAL_HEADING,
    HELD_SWING_HEADING,
    HELD_TWIST_AXIS,
    HELD_TWIST_BIAS,
    Piece,
)
from spinemon.core.stage import StageState, fields_of, set_fields

__all__ = [
    "DEVICE_GUARDED_KINDS",
    "HIDDEN_ARCH_LIFTS",
    "HIDDEN_ARCH_PRESSES",
    "HIDDEN_HEADING_DEG",
    "LATERAL_NEEDS_HEADING",
    "LimitWatch",
    "Watched",
    "hidden_extension",
]

#: the limits the host pushes to the wearable's own guard (SET_GUARD)
DEVICE_GUARDED_KINDS = (OVER_FLEXION, OVER_EXTENSION)

#: lifts whose lateral-bend limit waits for each sensor's heading about the
#: spine (rules 3): their clean rep tips the pelvis 8-20 deg, which a sensor
#: stuck on crooked leaks into lateral bend, and their own bends cannot tell
#: the heading (the one-sided stance bends the trunk sideways in step with
#: the tilt: the heading finder would read that as the heading)
LATERAL_NEEDS_HEADING = ("lunge", "split_squat")

#: rules 7: the largest error of an unknown heading about the spine the
#: hidden-arch check allows for (the lean heading finder's own bound,
#: ``LeanHeadingFinder.max_heading_deg``)
HIDDEN_HEADING_DEG = 45.0

#: rules 8: presses whose arch the hidden-arch check also watches while a
#: sensor's heading about the spine is unknown, with the reason told: a
#: crooked sensor reads part of the arch as lateral bend, and a single-arm
#: press's lean toward the loaded side partly as flexion (rules 5's lean
#: heading tells it after a rep on each side); an overhead press has no lift
#: that tells it (its trunk bends 5-8 deg: too little, and sway reads as heading)
HIDDEN_ARCH_PRESSES = {"overhead_press": HELD_ARCH_PRESS_HEADING, "single_arm_press": HELD_ARCH_HEADING}

#: rules 8 (curls): lifts whose own motion tells no sensor's heading about the
#: spine (no bend of the trunk, no one-sided lean) and whose fault is a lean
#: back, a curl's hip swing: a sensor turned about the spine reads the lean
#: back partly as a side bend, so the same check runs for them, with the reason
HIDDEN_ARCH_LIFTS = {"curl": HELD_SWING_HEADING}


def hidden_extension(u: np.ndarray, max_deg: float = HIDDEN_HEADING_DEG, toward: float = -1.0) -> np.ndarray:
    """Per sample (deg, >= 0), how much further toward extension
    (``toward=-1``; flexion: ``+1``) the sagittal inclination ``atan2(uz, ux)``
    of the body-frame gravity ``u`` (n, 3) could lie if the sensor's heading
    about the spine (body X) were off by up to ``max_deg``: the inclination
    turned by every ``b`` within it, ``(uy, uz) -> Rx(b) (uy, uz)``, whose
    ``uz = r sin(b + th)`` (``r = hypot(uy, uz)``, ``th = atan2(uz, uy)``) is
    extreme at an end of the range or where ``b + th = -+90 deg``."""
    u = np.atleast_2d(np.asarray(u, dtype=float))
    r, th = np.hypot(u[:, 1], u[:, 2]), np.arctan2(u[:, 2], u[:, 1])
    big = math.radians(max_deg)
    cands = [r * np.sin(th - big), r * np.sin(th + big)]
    b = (toward * math.pi / 2 - th + math.pi) % (2 * math.pi) - math.pi  # where uz is extreme
    cands.append(np.where(np.abs(b) <= big, toward * r, toward * -np.inf))
    uz = np.min(cands, axis=0) if toward < 0 else np.max(cands, axis=0)
    return toward * (np.degrees(np.arctan2(uz, u[:, 0])) - np.degrees(np.arctan2(u[:, 2], u[:, 0])))


#: the watch's own fields in its state (the rest: settings, and the parts that give their own)
_STATE = (
    "exercise",
    "labelled_set",
    "rom",
    "single_sensor",
    "reps_set",
    "_limit_held_samples",
    "heading_band",
)

_SIGNAL = {LATERAL_BEND: 1, TWIST: 2}  # the detector's signal each one-limit hold covers


@dataclass
class Watched:
    """What one piece gave."""

    alerts: list[Alert] = field(default_factory=list)
    finished: list[Event] = field(default_factory=list)  # events that ended
    hold_faults: list[Event] = field(default_factory=list)  # events alerted while a hold ran
    #: faults past a limit that were held back (not armed), each with its
    #: reason (``Event.held_back``): told to the lifter at that moment, never silent
    held_back: list[Event] = field(default_factory=list)


#: rules 8: the twist is measured about neutral's vertical; worn as told (+X up
#: the spine, a few degrees off), the upper sensor at T12/L1 reads its standing
#: gravity within about 20 deg of its +X (the thoracolumbar junction stands
#: within 10-15 deg of vertical). Past 30 deg, neutral was taken bent over (a
#: single-arm row's hinged hold as the first still stretch: 52 deg, harsh
#: bench seed 15) and the twist's axis lies that far from the spine: a
#: one-sided rep's 6-9 deg of lateral bend then reads as sin 30 x 8 = 4 deg or
#: more of twist, a quarter of the 15 deg limit, so the twist is held back
#: (named) until an upright neutral is set
TWIST_AXIS_TILT_DEG = 30.0


def twist_axis_tilt_deg(calibration: Calibration) -> float:
    """How far (deg) the upper sensor's neutral vertical (the body X the twist
    is measured about) lies from the sensor's own +X (up the spine as worn)."""
    m = calibration.mounting.get("upper")
    if m is None:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(m.rotation[0, 0])))))


class LimitWatch:
    """See the module. Exposed state: ``limits``, ``plan`` (``plan.off``: the
    limits one sensor cannot watch, and why), ``detector`` (its ``context``:
    set, rep, exercise stamped on events), ``shadow``, ``alerts``."""

    def __init__(
        self,
        exercise: str,
        settings: DetectorSettings,
        alerts: AlertPolicy,
        *,
        limit_overrides: dict | None = None,
        lean: bool = True,
        hold_unknown: bool = False,
        hidden_arch: bool = False,
        hidden_arch_presses: bool = False,
        hidden_swing: bool = False,
        twist_axis: bool = False,
        hidden_band: bool = False,
    ) -> None:
        self.settings = settings
        #: rules 9: a lunge's heading found from its reps is off by up to its
        #: band (sensor -> deg, set by the pipeline from ``LeanHeadingFinder``):
        #: the hidden-arch check goes on with each such sensor turned by up to it
        self.hidden_band = hidden_band
        self.heading_band: dict[str, float] = {}
        #: rules 8: the same for :data:`HIDDEN_ARCH_LIFTS` (a curl's hip swing) while a heading is unknown
        self.hidden_swing = hidden_swing
        #: rules 8: the twist is held back (named) while neutral was taken bent
        #: over (:func:`twist_axis_tilt_deg` past :data:`TWIST_AXIS_TILT_DEG`)
        self.twist_axis = twist_axis
        #: rules 7: while a lunge's or split squat's heading is unknown (lateral
        #: bend held back), an arch that may be past the extension limit is told
        self.hidden_arch = hidden_arch
        #: rules 8: the same for :data:`HIDDEN_ARCH_PRESSES` while a sensor's heading is unknown
        self.hidden_arch_presses = hidden_arch_presses
        #: rules 3: a limit is held back (named) while what it needs is not
        #: known: the twist until each gyro's bias is, lateral bend in
        #: :data:`LATERAL_NEEDS_HEADING` until each sensor's heading is
        self.hold_unknown = hold_unknown
        self._limit_held_samples: dict[tuple[int, float], int] = {}  # (reason, rate) -> armed samples
        self.policy = alerts
        self.plan = LimitPlan(limit_overrides, lean=lean)
        self.exercise = exercise
        self.labelled_set: int | None = None
        self.rom: RangeOfMotion | None = None
        self.single_sensor: bool | None = None
        self.reps_set: int | None = None  # the set whose reps are counted, as of the last sample
        lim = self._limits()
        self.detector = EventDetector(lim, settings)
        self.detector.context.update(exercise=exercise)
        self.shadow = EventDetector(lim, settings)
        #: rules 7: the extension limit on the most extended flexion an unknown heading can hide
        self.hidden = EventDetector(lim, settings)
        self.device_buzz = DeviceBuzzWatch()
        self.alerts: list[Alert] = []

    @property
    def limits(self) -> Limits:
        return self.detector.limits

    def state(self) -> StageState:
        """The watch's state as a value (:class:`~spinemon.core.stage.Stage`):
        the detector's and the shadow's (their events copied), the alerts so
        far (each with the index of its event among the detector's), the
        creep limit, the label, calibration and layout it follows, and the
        held-limit counts. The alert policy is not in it: its command counter
        is the session's (shared with the command queue) and numbers on."""
        at = {id(e): i for i, e in enumerate(self.detector.events)}
        return {
            "detector": self.detector.state(),
            "shadow": self.shadow.state(),
            "hidden": self.hidden.state(),
            "alerts": [
                (at[id(a.event)], {f.name: getattr(a, f.name) for f in fields(a) if f.name != "event"})
                for a in self.alerts
            ],
            "plan": self.plan.state(),
            "device_buzz": self.device_buzz.state(),
            **fields_of(self, _STATE),
        }

    def restore(self, state: StageState) -> None:
        """Go on from ``state`` (see :meth:`state`)."""
        self.detector.restore(state["detector"])
        self.shadow.restore(state["shadow"])
        self.hidden.restore(state["hidden"])
        events = self.detector.events
        self.alerts = [Alert(events[i], **rest) for i, rest in state["alerts"]]
        self.plan.restore(state["plan"])
        self.device_buzz.restore(state["device_buzz"])
        set_fields(self, state, _STATE)

    @property
    def limit_held_s(self) -> dict[int, float]:
        """Seconds of armed samples one limit was held back, by reason code."""
        out: dict[int, float] = {}
        for (code, rate), k in sorted(self._limit_held_samples.items()):
            out[code] = out.get(code, 0.0) + k / rate
        return out

    def limit_held(self, fused: Fused, calibration: Calibration) -> dict[str, np.ndarray]:
        """Per sample, the limits held back on their own ({kind: (n,) bool}), rules 3:

        * the twist integrates the difference of the two gyros about the
          spine, so an unlearnt zero-rate offset (1-2 deg/s) drifts it past
          its limit within seconds: held until each sensor's offset was
          measured in a still stretch this session (a still neutral, or a
          stored calibration's) or its filter learnt its bias at rest;
        * lateral bend in :data:`LATERAL_NEEDS_HEADING` while a sensor in use
          has no heading (no range sweep, none stored, none found from a
          hinge or squat: ``Calibration.alignment``)."""
        return self._held(fused, calibration, ((len(fused), self.limits),))

    def _held(
        self, fused: Fused, calibration: Calibration, runs: Sequence[tuple[int, Limits]]
    ) -> dict[str, np.ndarray]:
        """:meth:`limit_held` for a block cut into runs, each with its limits
        (run ``k``: samples up to ``runs[k][0]``): a kind only where its limit is on."""
        out: dict[str, np.ndarray] = {}
        if not self.hold_unknown or self.single_sensor is None:
            return out
        n = len(fused)
        sensors = ("upper",) if self.single_sensor else ("upper", "lower")
        twist_on = _where_on(runs, "twist_deg")
        if not self.single_sensor and twist_on is not False:
            known = twist_biases_known(fused, calibration)
            if self._twist_code(calibration) == HELD_TWIST_AXIS:
                known = np.zeros(n, dtype=bool)
            if not known.all():
                mask = ~known if twist_on is True else ~known & twist_on
                if mask.any():
                    out[TWIST] = mask
        unknown = any("heading_deg" not in calibration.alignment.get(s, {}) for s in sensors)
        if self.exercise in LATERAL_NEEDS_HEADING and unknown:
            lateral_on = _where_on(runs, "lateral_deg")
            if lateral_on is True:
                out[LATERAL_BEND] = np.ones(n, dtype=bool)
            elif lateral_on is not False:
                out[LATERAL_BEND] = lateral_on
        return out

    def _twist_code(self, calibration: Calibration) -> int:
        """Why the twist is held back: neutral taken bent over (rules 8), else an unknown gyro bias."""
        if self.twist_axis and twist_axis_tilt_deg(calibration) > TWIST_AXIS_TILT_DEG:
            return HELD_TWIST_AXIS
        return HELD_TWIST_BIAS

    @property
    def events(self) -> list[Event]:
        return self.detector.events

    def _limits(self) -> Limits:
        return self.plan.limits(self.exercise, self.rom, self.single_sensor)

    def _refresh(self) -> None:
        lim = self._limits()
        self.detector.set_limits(lim)
        self.shadow.set_limits(lim)
        self.hidden.set_limits(lim)

    def follow(self, calibration: Calibration | None, single_sensor: bool | None) -> None:
        """The calibration (its range of motion scales the limits) or the sensor layout changed."""
        self.rom = None if calibration is None else calibration.range_of_motion
        self.single_sensor = single_sensor
        self._refresh()

    def on_label(self, exercise: str, set_number: int | None) -> None:
        """A labelled set starts: its exercise's limits, no creep limit until its first rep."""
        self.exercise = exercise
        self.labelled_set = set_number
        self.detector.context.update(set=set_number, exercise=exercise, rep=None)
        self.plan.new_label()
        self._refresh()

    def begin_piece(self, context: tuple | None, records: tuple) -> None:
        """At the start of a piece: the set and rep in progress from here on,
        and the records that became known here (a set's first rep sets its creep limit)."""
        if context is not None:
            cs, cr = context
            self.detector.context["rep"] = cr
            if self.labelled_set is None:  # no labels: sets found automatically
                self.detector.context["set"] = cs
            self.reps_set = cs
        for rec in records:
            if isinstance(rec, RepRecord) and rec.rep == 1:
                self.plan.first_rep(self.exercise, rec.set, rec.peak_flexion_deg)
                self._refresh()
        if self.plan.reps_of_set(self.reps_set):
            self._refresh()

    def update(
        self,
        fused: Fused,
        ang: LumbarAngles,
        calibration: Calibration,
        armed: np.ndarray,
        hold_on: np.ndarray | None,
        t_host: np.ndarray,
        held: np.ndarray | None = None,
        reasons: dict | None = None,
    ) -> Watched:
        """One piece: its fused samples, angles, armed and hold masks and host
        receive times; ``held``: per sample why the limits are not armed (a key
        of ``reasons``, 0 = armed), stamped on the faults held back."""
        n = len(fused)
        return self._update_runs(
            fused,
            ang,
            calibration,
            armed,
            hold_on,
            t_host,
            held,
            reasons,
            ((n, self.detector.limits, self.detector.context),),
            ((n, self.shadow.limits, self.detector.context),),
        )

    def update_pieces(
        self,
        fused: Fused,
        ang: LumbarAngles,
        calibration: Calibration,
        armed: np.ndarray,
        hold_on: np.ndarray | None,
        t_host: np.ndarray,
        held: np.ndarray | None,
        reasons: dict | None,
        pieces: Sequence[Piece],
        offset: int = 0,
    ) -> Watched:
        """Consecutive pieces at once: the same as :meth:`begin_piece` and
        :meth:`update` piece by piece (the same alerts, events and state, in
        the same order), with the limits and the set and rep in force per
        piece and the checks run over all of them together. Piece ``p``
        covers samples ``p.a - offset : p.b - offset`` of the arrays given,
        which the pieces cover from the first sample to the last."""
        det_runs: list[tuple[int, Limits, dict]] = []
        shadow_runs: list[tuple[int, Limits, dict]] = []
        ctx: dict = {}
        for p in pieces:
            self.begin_piece(p.context, p.records)
            if not det_runs or self.detector.context != ctx:
                ctx = dict(self.detector.context)
            det_runs.append((p.b - offset, self.detector.limits, ctx))
            shadow_runs.append((p.b - offset, self.shadow.limits, ctx))
        return self._update_runs(
            fused, ang, calibration, armed, hold_on, t_host, held, reasons, det_runs, shadow_runs
        )

    def _update_runs(
        self,
        fused: Fused,
        ang: LumbarAngles,
        calibration: Calibration,
        armed: np.ndarray,
        hold_on: np.ndarray | None,
        t_host: np.ndarray,
        held: np.ndarray | None,
        reasons: dict | None,
        det_runs: Sequence[tuple[int, Limits, dict]],
        shadow_runs: Sequence[tuple[int, Limits, dict]],
    ) -> Watched:
        """A block cut into runs (run ``k``: samples up to ``det_runs[k][0]``),
        each with the limits of the detector and the shadow and the context
        stamped on its events."""
        out = Watched()
        block = fused.block
        pitch_rate = np.degrees(calibration.mounting["upper"].to_body(fused.gyr["upper"])[:, 1])
        sig = (ang.flexion_deg, ang.lateral_deg, ang.twist_deg, pitch_rate)
        # one limit held back on its own (rules 3): its signal goes to the shadow where the rest is armed
        limit_runs = [(b, lim) for b, lim, _ in det_runs]
        own = self._held(fused, calibration, limit_runs)
        on = [armed] * len(sig)
        for kind, mask in own.items():
            on[_SIGNAL[kind]] = armed & ~mask
            code = self._twist_code(calibration) if kind == TWIST else HELD_LATERAL_HEADING
            key = (code, block.rate_hz)
            self._limit_held_samples[key] = self._limit_held_samples.get(key, 0) + int(
                np.count_nonzero(armed & mask)
            )
        armed_sig = [np.where(a, x, 0.0) for a, x in zip(on, sig)]
        found = self.detector.update_runs(
            block.t, block.seq, (armed_sig[0], armed_sig[1], armed_sig[2], armed_sig[3]), det_runs
        )
        # what would have fired outside sets/holds (not sent): the same samples, the other way round
        self.shadow.context.update(self.detector.context)
        held_sig = [np.where(a, 0.0, x) for a, x in zip(on, sig)]
        held_back = self.shadow.update_runs(
            block.t, block.seq, (held_sig[0], held_sig[1], held_sig[2], held_sig[3]), shadow_runs
        )
        for ev in held_back.alerts:
            assert ev.seq_alert is not None  # set when the event is confirmed
            j = min(int(np.searchsorted(block.seq, ev.seq_alert)), len(block) - 1)
            if held is not None and held[j]:
                ev.held_back = (reasons or {}).get(int(held[j]), "not armed")
            elif ev.kind in own and own[ev.kind][j]:
                code = self._twist_code(calibration) if ev.kind == TWIST else HELD_LATERAL_HEADING
                ev.held_back = (reasons or {}).get(code, "not armed")
            else:
                ev.held_back = "not armed"
            out.held_back.append(ev)
        if self.hidden_arch and self.exercise in LATERAL_NEEDS_HEADING and self.single_sensor is False:
            lat_held = own.get(LATERAL_BEND)
            hid: np.ndarray | None = armed & lat_held if lat_held is not None else None
            if self.hidden_band and self.heading_band:  # rules 9: the found heading's band
                hid = armed if hid is None else hid | armed
            self._hidden_arch(fused, ang, calibration, hid, det_runs, out)
        elif self._presses_hidden():
            unknown = any("heading_deg" not in calibration.alignment.get(s, {}) for s in ("upper", "lower"))
            self._hidden_arch(fused, ang, calibration, armed if unknown else None, det_runs, out)
        out.finished.extend(found.finished)
        hyst = self.settings.hysteresis_deg
        inside = None  # per sample: inside the limits by the hysteresis (the device buzz's state)
        for ev in found.alerts:
            assert ev.seq_alert is not None  # set when the event is confirmed
            j = min(int(np.searchsorted(block.seq, ev.seq_alert)), len(block) - 1)
            if hold_on is not None and hold_on[j]:
                out.hold_faults.append(ev)
            device_buzzed = False
            if ev.kind in DEVICE_GUARDED_KINDS:
                if inside is None:
                    inside = DeviceBuzzWatch.inside(sig[0], limit_runs, hyst)
                device_buzzed = self.device_buzz.state_at(block.flags, inside, j)
            alert = self.policy.alert_for(ev, float(t_host[j]), device_buzzed)
            if alert is not None:
                out.alerts.append(alert)
                self.alerts.append(alert)
        if inside is None:
            inside = DeviceBuzzWatch.inside(sig[0], limit_runs, hyst)
        self.device_buzz.advance(block.flags, inside)
        return out

    def _hidden_arch(
        self,
        fused: Fused,
        ang: LumbarAngles,
        calibration: Calibration,
        on: np.ndarray | None,
        runs: Sequence[tuple[int, Limits, dict]],
        out: Watched,
    ) -> None:
        """Rules 7: while a lunge's or split squat's heading is unknown (``on``:
        armed, lateral bend held back for it), the flexion as it could be: each
        sensor with no heading turned by up to :data:`HIDDEN_HEADING_DEG`
        toward an arch (the upper sensor's inclination more extended, the
        lower one's more flexed; the largest error the lean heading finder
        accepts). An over-extension past the limit there that the reading
        itself did not give (no event of the detector's or the shadow's
        overlaps it) is told when it ends, held back by name: an arch the
        unknown heading may hide, never a silent miss and never a buzz (most
        reps are clean and read within the limit). ``on`` None: nothing is
        held for the heading (an event open from before ends here)."""
        flex = ang.flexion_deg
        n = len(flex)
        could = np.zeros(n)
        if on is not None and on.any():
            shift = np.zeros(n)
            for s, toward in (("upper", -1.0), ("lower", 1.0)):
                if s not in fused.gravity:
                    continue
                if "heading_deg" not in calibration.alignment.get(s, {}):
                    shift += hidden_extension(
                        calibration.mounting[s].to_body(fused.gravity[s]), toward=toward
                    )
                elif self.hidden_band and s in self.heading_band:
                    shift += hidden_extension(
                        calibration.mounting[s].to_body(fused.gravity[s]),
                        max_deg=self.heading_band[s],
                        toward=toward,
                    )
            could = np.where(on, np.minimum(flex - shift, 0.0), 0.0)
        zero = np.zeros(n)
        self.hidden.context.update(self.detector.context)
        got = self.hidden.update_runs(fused.block.t, fused.block.seq, (could, zero, zero, zero), runs)
        self._tell_hidden(got.finished, out)

    def _presses_hidden(self) -> bool:
        """Rules 8: the hidden-arch check runs for a press, or a curl (two sensors)."""
        return self.single_sensor is False and (
            (self.hidden_arch_presses and self.exercise in HIDDEN_ARCH_PRESSES)
            or (self.hidden_swing and self.exercise in HIDDEN_ARCH_LIFTS)
        )

    def _tell_hidden(self, finished: list[Event], out: Watched | None) -> None:
        said = [*self.detector.events, *self.shadow.events]
        reason = (
            HIDDEN_ARCH_PRESSES.get(self.exercise, HELD_ARCH_HEADING)
            if self.hidden_arch_presses
            else HELD_ARCH_HEADING
        )
        if self.hidden_swing and self.exercise in HIDDEN_ARCH_LIFTS:
            reason = HIDDEN_ARCH_LIFTS[self.exercise]
        if self.hidden_band and len(self.heading_band) == 2 and reason == HELD_ARCH_HEADING:
            reason = HELD_ARCH_BAND  # rules 9: both headings found, each within its band
        for ev in finished:
            if ev.kind != OVER_EXTENSION or ev.t_alert is None:
                continue
            if any(e.kind == ev.kind and e.t_start <= ev.t_last and ev.t_start <= e.t_last for e in said):
                continue
            ev.held_back = HELD_BACK[reason]
            self.shadow.events.append(ev)
            if out is not None:
                out.held_back.append(ev)

    def finish(self, t_end: float, reps: list[RepRecord]) -> list[Event]:
        """Close open events; events that fired before their set/rep was
        known get the numbers of the rep they overlap. Returns all events."""
        self.detector.finish(t_end)
        self.shadow.finish(t_end)
        if self.hidden_arch or self.hidden_arch_presses or self.hidden_swing:
            self._tell_hidden(self.hidden.finish(t_end), None)
        for ev in self.events:
            if ev.rep is not None:
                continue
            end = ev.t_last
            for r in reps:
                if r.t_start <= end and r.t_end >= ev.t_start:
                    ev.rep = r.rep
                    if ev.set is None:
                        ev.set = r.set
                    break
        return self.events


def _where_on(runs: Sequence[tuple[int, Limits]], name: str) -> bool | np.ndarray:
    """Where limit ``name`` is on, over a block cut into runs: True or False
    when it is so in every run, else per sample."""
    if len(runs) == 1:
        return getattr(runs[0][1], name) is not None
    on = [getattr(lim, name) is not None for _, lim in runs]
    if all(on):
        return True
    if not any(on):
        return False
    bounds = [0, *(b for b, _ in runs)]
    return np.repeat(np.array(on), np.diff(bounds))
