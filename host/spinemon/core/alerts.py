"""Events -> haptic COMMAND frames.

Each confirmed event becomes one HAPTIC command with a pattern per kind.
:class:`Alert` keeps the times that matter for latency: the device time of
the sample past the limit that confirmed the event, and the host time the
command left (filled in by whoever sends it).

One buzz per fault: while a set is on the wearable's own guard watches the
host's flexion/extension limits and buzzes at once (docs/architecture.md,
"Alert path"). When the frames show that it buzzed in the excursion the host
has just confirmed (``SF_GUARD_BUZZED``), the host's alert is still made and
recorded but carries no command (``buzzed_by == "device"``): the lifter has
felt this fault already.
"""

from __future__ import annotations

from dataclasses import dataclass

import spinemon_protocol as proto
from spinemon.core.detect import (
    FORWARD_LEAN,
    LATERAL_BEND,
    OVER_EXTENSION,
    OVER_FLEXION,
    SPINE_CREEP,
    SWING,
    TWIST,
    Event,
)
from spinemon.errors import ConfigError


@dataclass(frozen=True)
class HapticPattern:
    """``pulses`` buzzes of ``on_ms`` separated by ``off_ms``; strength 1..255."""

    pulses: int = 3
    on_ms: int = 150
    off_ms: int = 100
    strength: int = 255

    def __post_init__(self) -> None:
        for (lo, hi), v, name in zip(
            proto.OPCODE_LIMITS[proto.OP_HAPTIC],
            (self.pulses, self.on_ms, self.off_ms, self.strength),
            ("pulses", "on_ms", "off_ms", "strength"),
        ):
            if not lo <= v <= hi:
                raise ConfigError(f"haptic {name}={v} is outside {lo}..{hi}")

    @property
    def duration_ms(self) -> int:
        return self.pulses * self.on_ms + (self.pulses - 1) * self.off_ms

    def args(self) -> tuple[int, int, int, int]:
        return (self.pulses, self.on_ms, self.off_ms, self.strength)


#: a distinct feel per fault: rounding = three short, arching = two long,
#: swinging = two quick; spine creep (fatigue, before any hard limit) is a
#: gentle nudge: one soft, long buzz
PATTERNS: dict[str, HapticPattern] = {
    OVER_FLEXION: HapticPattern(3, 150, 100, 255),
    OVER_EXTENSION: HapticPattern(2, 300, 150, 255),
    TWIST: HapticPattern(4, 80, 80, 200),
    LATERAL_BEND: HapticPattern(4, 80, 80, 200),
    SWING: HapticPattern(2, 80, 60, 200),
    SPINE_CREEP: HapticPattern(1, 400, 0, 110),
    # one sensor's forward lean feels like rounding: the cue is the same (chest up)
    FORWARD_LEAN: HapticPattern(3, 150, 100, 255),
}


class CommandCounter:
    """Monotonic u32 COMMAND counter. Start it past the device's last
    accepted counter (STATUS ``last_counter``) so the device never sees a
    stale one."""

    def __init__(self, start: int = 1) -> None:
        self._next = start & 0xFFFFFFFF or 1

    def resume_after(self, last_counter: int) -> None:
        """Continue past the device's ``last_counter``: keep our own counter
        while it is ahead of it by less than the device's window
        (``COUNTER_WINDOW``; a STATUS read a moment ago may lag commands sent
        since), otherwise continue from ``last_counter + 1`` (we are behind,
        or the device drew a fresh floor after losing its own)."""
        ahead = (self._next - 1 - last_counter) & 0xFFFFFFFF
        if ahead >= proto.COUNTER_WINDOW:
            self._next = (last_counter + 1) & 0xFFFFFFFF

    def next(self) -> int:
        c = self._next
        self._next = (c + 1) & 0xFFFFFFFF or 1
        return c


#: who buzzed for an alert
BUZZED_BY_HOST = "host"  # the host's HAPTIC command
BUZZED_BY_DEVICE = "device"  # the wearable's guard, before the host confirmed: no command


@dataclass
class Alert:
    event: Event
    pattern: HapticPattern
    counter: int | None  # None: no command (the device buzzed)
    command: bytes | None  # the COMMAND frame to send; None when the device buzzed already
    t_trigger_device: float  # device time (s) of the sample that confirmed the event
    t_rx_host: float  # host time the frame carrying that sample arrived
    t_sent_host: float | None = None  # host time the command left; set by the sender
    buzzed_by: str = BUZZED_BY_HOST

    def as_dict(self) -> dict:
        return {
            "type": "alert",
            "kind": self.event.kind,
            "counter": self.counter,
            "pattern": list(self.pattern.args()),
            "t_trigger_device": round(self.t_trigger_device, 6),
            "t_rx_host": self.t_rx_host,
            "t_sent_host": self.t_sent_host,
            "peak_deg_at_alert": round(self.event.peak_deg, 2),
            "set": self.event.set,
            "rep": self.event.rep,
            "buzzed_by": self.buzzed_by,
        }


class AlertPolicy:
    """Makes the COMMAND for each confirmed event."""

    def __init__(
        self,
        counter: CommandCounter | None = None,
        patterns: dict[str, HapticPattern] | None = None,
        enabled: bool = True,
    ) -> None:
        self.counter = counter or CommandCounter()
        self.patterns = dict(PATTERNS if patterns is None else patterns)
        self.enabled = enabled

    def alert_for(self, event: Event, t_rx_host: float, device_buzzed: bool = False) -> Alert | None:
        """The alert for a confirmed event; ``device_buzzed``: the wearable's
        guard buzzed for it already, so the alert carries no command."""
        if not self.enabled:
            return None
        pattern = self.patterns.get(event.kind)
        if pattern is None:
            return None
        assert event.t_alert is not None, "an alert is for a confirmed event"
        if device_buzzed:
            return Alert(
                event, pattern, None, None, float(event.t_alert), t_rx_host, buzzed_by=BUZZED_BY_DEVICE
            )
        c = self.counter.next()
        frame = proto.encode_command(c, proto.OP_HAPTIC, pattern.args())
        return Alert(event, pattern, c, frame, float(event.t_alert), t_rx_host)
