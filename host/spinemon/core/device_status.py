"""The wearable's own counters, from its STATUS frames.

:class:`DeviceAccounting` keeps the drop counters every STATUS reports (per
boot, since they start at 0 on each), next to the host's gap accounting: the
``device`` section of a session's summary. It takes the STATUS frames the
stream decoder (``core.stream.FrameDecoder``) decoded: each frame is decoded once.
"""

from __future__ import annotations

from collections.abc import Iterable

import spinemon_protocol as proto

#: STATUS counters of samples the wearable itself lost (never sent)
DEVICE_LOSS_FIELDS = ("samples_dropped", "samples_lost_fifo")


DEVICE_COUNTER_FIELDS = (
    "samples_dropped",
    "samples_lost_fifo",
    "fifo_overflows",
    "frames_dropped",
    "frames_sent",
    "commands_rejected",
    "guard_alerts",
)


class DeviceAccounting:
    """The wearable's own drop counters (from every STATUS the session saw),
    next to the host's gap accounting.

    The device's counters start at 0 on every boot, so they are kept per
    ``boot_count`` (the latest STATUS of each boot wins) and summed.
    ``restarts`` counts boots after the first one seen: a brown-out or a
    reset of the wearable mid-session.
    """

    def __init__(self) -> None:
        self.boots: dict[int, dict] = {}
        self.order: list[int] = []
        self.status_frames = 0
        #: the least free MicroPython heap any STATUS reported (bytes; None:
        #: the firmware does not report it): a wearable running low on memory shows here
        self.heap_free_min: int | None = None

    def on_status(self, status: proto.Status) -> bool:
        """Take one STATUS; True if it came from a boot not seen before
        (after the first): the wearable restarted."""
        self.status_frames += 1
        heap = getattr(status, "heap_free", None)
        if heap:  # 0 / None: not known
            self.heap_free_min = (
                int(heap) if self.heap_free_min is None else min(self.heap_free_min, int(heap))
            )
        b = int(status.boot_count)
        new = b not in self.boots
        cur = self.boots.get(b)
        if cur is None or status.uptime_ms >= cur["uptime_ms"]:
            self.boots[b] = {k: int(getattr(status, k)) for k in DEVICE_COUNTER_FIELDS + ("uptime_ms",)}
        if new:
            self.order.append(b)
        return new and len(self.order) > 1

    def on_items(self, items: Iterable[object]) -> bool:
        """The items the stream decoder gave for one frame (or many: see
        ``FrameDecoder.feed``/``feed_many``): each STATUS among them is taken
        (see :meth:`on_status`), as decoded once by the decoder. True if one
        came from a boot not seen before (after the first)."""
        restarted = False
        for item in items:
            if isinstance(item, proto.Status):
                restarted = self.on_status(item) or restarted
        return restarted

    @property
    def restarts(self) -> int:
        return max(0, len(self.order) - 1)

    def totals(self) -> dict:
        return {k: sum(v[k] for v in self.boots.values()) for k in DEVICE_COUNTER_FIELDS}

    @property
    def samples_lost(self) -> int:
        """Samples the wearable lost itself: dropped from its send queue or lost in an IMU FIFO."""
        t = self.totals()
        return sum(t[k] for k in DEVICE_LOSS_FIELDS)

    def as_dict(self, host_lost_samples: int | None = None) -> dict:
        d = {
            "status_frames": self.status_frames,
            "boots": list(self.order),
            "restarts": self.restarts,
            **self.totals(),
        }
        d["samples_lost_device"] = self.samples_lost
        d["heap_free_min"] = self.heap_free_min
        if host_lost_samples is not None:
            # what the host missed that the wearable did send: lost on the link
            d["host_lost_samples"] = host_lost_samples
            d["samples_lost_link"] = host_lost_samples - self.samples_lost
        return d
