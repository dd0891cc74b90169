"""Run one scenario against one DUT and judge it.

The bench is an ordinary host: it resynchronises with the board, sets the
guard and the rate, starts the stream and feeds every frame to the host
pipeline (:class:`spinemon.core.pipeline.Pipeline`: fusion, angles, detection,
alerts), sending each alert to the board as it happens. On the side it keeps
what it needs to judge: every sample's device time, the host's and the
device's angle, the motor log, the faults it injected. Truth is the
scenario's commanded motion (:class:`hil.scenario.Truth`), in world time:
device time of the current boot plus the boot's offset (a board that
reboots restarts its clock, the rig does not).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

import spinemon_protocol as sp
from hil.dut import Dut
from hil.scenario import Scenario
from spinemon.core.alerts import AlertPolicy, CommandCounter
from spinemon.core.calibration import CalibrationSettings
from spinemon.core.detect import OVER_EXTENSION, OVER_FLEXION
from spinemon.errors import SpinemonError, TransportError
from spinemon.io.device_link import guard_args, neutral_args
from spinemon.core.pipeline import Pipeline, PipelineSettings
from spinemon.core.stream import FrameDecoder, SampleBlock

NEUTRAL_S = 1.0  # host neutral calibration window (the scenarios stand >= 2.5 s first)
BOOT_TIMEOUT_S = 10.0
STALL_TIMEOUT_S = 5.0  # no sample for this long (outside a link loss) = the DUT stopped


@dataclass
class ScenarioResult:
    """Everything one run measured; ``as_dict`` is the JSON report entry."""

    name: str
    port: str
    status: str = "fail"  # pass | fail | skip | error
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    firmware: str | None = None
    host_angle_error: dict | None = None  # mean, max, n (deg)
    device_angle_error: dict | None = None
    latencies_s: list[float] = field(default_factory=list)
    guard_latencies_s: list[float] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    stream: dict = field(default_factory=dict)
    injected: dict = field(default_factory=dict)
    device_status: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    wall_s: float = 0.0

    @staticmethod
    def _stats(x: list[float]) -> dict | None:
        if not x:
            return None
        a = np.asarray(x)
        return {"n": len(a), "median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max())}

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["latency_s"] = self._stats(self.latencies_s)
        d["guard_latency_s"] = self._stats(self.guard_latencies_s)
        return d


def _err_stats(err: np.ndarray) -> dict | None:
    err = err[np.isfinite(err)]
    if not len(err):
        return None
    a = np.abs(err)
    return {"mean": float(a.mean()), "max": float(a.max()), "n": int(len(a))}


class _Session:
    """State of one run (one scenario, one DUT)."""

    def __init__(self, scn: Scenario, dut: Dut, result: ScenarioResult) -> None:
        self.scn = scn
        self.dut = dut
        self.res = result
        self.truth = scn.truth
        self.counter = CommandCounter()
        dut.counter = self.counter
        self.settings = PipelineSettings(exercise=scn.exercise, calibration=CalibrationSettings(neutral_s=NEUTRAL_S, rom=False))
        self.pipeline = Pipeline(self.settings, alerts=AlertPolicy(counter=self.counter))
        lim = self.pipeline.limits  # what SET_GUARD sends and the host checks (no range-of-motion sweep: the profile's)
        self.flex_limit = lim.flexion_deg
        self.ext_limit = lim.extension_deg
        self.boot = 0
        self.offsets_s = [0.0]
        self.decoder = FrameDecoder()  # the bench's own view, per boot (device angle, flags, periods)
        self.naive = FrameDecoder()  # one decoder across resets, as a host that misses the reset would have
        self.decoder_stats: list[dict] = []
        self.pipeline_stats: list[dict] = []
        # per boot lists of arrays
        self.samples: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []  # boot, t, device angle, flags
        self.host_angles: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.periods: list[tuple[int, float, int]] = []  # boot, t first, period_us (on change)
        self.t_latest: float | None = None  # device time of the newest sample (this boot)
        self.t_device_cal: float | None = None  # device time the host's neutral was sent to the device
        self.neutral_sent: tuple[int, int] | None = None
        self.errors_crc = 0
        self.alert_log: list[tuple[int, object]] = []
        self.signs: list[tuple[float, str]] = []  # (world time, what) a fault the host saw: STATUS, ERROR storage_failed
        self.link_losses: list[float] = []  # world times link_loss actions began
        self.wall_last_sample = time.monotonic()

    # -- time ------------------------------------------------------------------
    def world(self, boot: int, t: np.ndarray | float) -> np.ndarray | float:
        return t + self.offsets_s[boot]

    @property
    def world_now(self) -> float | None:
        return None if self.t_latest is None else self.world(self.boot, self.t_latest)

    # -- frames ---------------------------------------------------------------------
    def handle(self, frames: list[tuple[bytes, float]]) -> None:
        for frame, t_host in frames:
            self.naive.feed(frame)
            t_boot = None  # this boot's device times of the frame's samples
            for item in self.decoder.feed(frame):
                if isinstance(item, SampleBlock):
                    t_boot = item.t
                    self.samples.append((self.boot, item.t, item.device_angle_deg, item.flags))
                    p = int(round(1e6 / item.rate_hz))
                    if not self.periods or self.periods[-1][0] != self.boot or self.periods[-1][2] != p:
                        self.periods.append((self.boot, float(item.t[0]), p))
                    self.t_latest = float(item.t[-1])
                    self.wall_last_sample = time.monotonic()
                elif item.kind == sp.T_ERROR and item.code == sp.E_CRC:
                    self.errors_crc += 1
                elif item.kind == sp.T_STATUS and self.world_now is not None:
                    if item.imu_lost or item.i2c_errors or item.save_failed or item.imu_resyncs:
                        self.signs.append((self.world_now, "status"))
                elif item.kind == sp.T_ERROR and item.code == sp.E_STORAGE and self.world_now is not None:
                    self.signs.append((self.world_now, "storage_failed"))
            res = self.pipeline.on_frame(frame, t_host)
            if res.angles is not None and res.t is not None and len(res.t):
                # the pipeline's time runs on across a reset (one session);
                # the truth is looked up in this boot's device time
                t = t_boot[-len(res.t):] if t_boot is not None and len(t_boot) >= len(res.t) else res.t
                self.host_angles.append((self.boot, t, res.angles.flexion_deg))
            if res.calibrated is not None and self.neutral_sent is None:
                # as `spinemon live`'s LinkSetup does: the host's neutral goes to
                # the device (SET_NEUTRAL), so its guard measures from the same posture
                self._push_neutral(wait=False)
                self.t_device_cal = self.t_latest
            for alert in res.alerts:
                try:
                    if alert.command is not None:  # None: the board's guard buzzed for it already (SF_GUARD_BUZZED)
                        alert.t_sent_host = self.dut.send_frame(alert.command)
                except TransportError:
                    alert.t_sent_host = None
                self.alert_log.append((self.boot, alert))

    def pump(self, timeout: float = 0.01) -> None:
        self.handle(self.dut.poll(timeout))

    # -- actions ----------------------------------------------------------------------
    def act(self, action) -> None:
        dut = self.dut
        kind = action.kind
        p = action.params
        if kind == "link_loss":
            if self.world_now is not None:
                self.link_losses.append(self.world_now)
            dut.link_paused = True
            t_end = time.monotonic() + float(p["duration_s"])
            while time.monotonic() < t_end:
                time.sleep(0.02)
            dut.link_paused = False
            self.wall_last_sample = time.monotonic()
        elif kind == "corrupt_rx":
            dut._corrupt_rx_left += int(p["frames"])
        elif kind == "corrupt_tx":
            for _ in range(int(p["commands"])):
                dut.send_corrupted()
                self.pump(0.02)
        elif kind == "reset":
            self.reset_and_resync()
        elif kind == "resave_guard":
            try:
                dut.command(sp.OP_SET_GUARD, guard_args(self.pipeline.limits, self.scn.guard_mode))
                answer = "ack"
            except SpinemonError as e:
                answer = str(getattr(e, "reason", None) or e)
                if self.world_now is not None and "storage" in answer:
                    self.signs.append((self.world_now, "storage_failed"))
            self.res.extra.setdefault("resaves", []).append({"at": self.world_now, "answer": answer})
        elif kind == "set_rate":
            ack = dut.command(sp.OP_SET_RATE, (int(p["rate_hz"]),))
            self.res.extra.setdefault("rate_changes", []).append(
                {"rate_hz": int(p["rate_hz"]), "ack_period_us": ack.value, "boot": self.boot, "after_t": self.t_latest}
            )

    def reset_and_resync(self) -> None:
        dut = self.dut
        before = dut.last_status
        t0 = time.monotonic()
        self.pipeline_stats.append(self.pipeline.decoder.stats.as_dict())
        self.decoder_stats.append(self.decoder.stats.as_dict())
        dut.reset()
        st = dut.resync(timeout=BOOT_TIMEOUT_S)
        self.boot += 1
        offs = getattr(dut.port, "boot_offsets_us", None)
        self.offsets_s.append(offs[self.boot] / 1e6 if offs and len(offs) > self.boot else 0.0)
        # Resynchronise: the pipeline keeps its decoder, which sees the board's
        # sequence number and clock start again (a restart, from the host/device
        # clock offset) and keeps the session's sample index and time going; the
        # same calibration and filters (the wearer did not move).
        self.decoder = FrameDecoder()
        self.t_latest = None
        self._configure()
        dut.command(sp.OP_START)
        while self.t_latest is None and time.monotonic() - t0 < BOOT_TIMEOUT_S:
            self.pump(0.02)
        self.res.extra["reset"] = {
            "boot_count_before": None if before is None else before.boot_count,
            "boot_count_after": st.boot_count,
            "resync_s": time.monotonic() - t0,
            "first_sample_after_reset": self.t_latest is not None,
        }

    def _push_neutral(self, wait: bool) -> None:
        args = neutral_args(self.pipeline.calibration)
        if args is None:
            return
        if wait:
            self.dut.command(sp.OP_SET_NEUTRAL, args)
        else:
            self.dut.send(sp.OP_SET_NEUTRAL, args)
        self.neutral_sent = args

    def _configure(self) -> None:
        # the commands `spinemon live`'s LinkSetup sends after every (re)connect,
        # built by the same functions: SET_NEUTRAL (once calibrated), SET_GUARD, SET_RATE
        self._push_neutral(wait=True)
        self.dut.command(sp.OP_SET_GUARD, guard_args(self.pipeline.limits, self.scn.guard_mode))
        ack = self.dut.command(sp.OP_SET_RATE, (self.scn.rate_hz,))
        return ack.value


def run_scenario(scn: Scenario, port: str | None = None, *, rig: bool | None = None) -> ScenarioResult:
    """Run one scenario. ``port`` None = the simulated board (``mpsim://``).
    On a real port a scenario that moves the sensors needs a motion rig;
    without one (``rig`` False) it is skipped."""
    url = port or (f"mpsim://?scenario={scn.name}" if scn.path is None or scn.path.parent.name == "scenarios" else f"mpsim://?script={scn.path}")
    res = ScenarioResult(scn.name, url)
    simulated = url.lower().startswith("mpsim://")
    has_rig = simulated if rig is None else rig
    if scn.needs_rig and not has_rig:
        res.status = "skip"
        res.notes.append("needs a motion rig (the sensors must move); none is attached")
        return res
    if scn.faults and not simulated and not rig:
        res.status = "skip"
        res.notes.append("injects hardware faults only on the simulated board; by hand: " + (scn.by_hand or "see the scenario"))
        return res
    t_wall0 = time.monotonic()
    try:
        with Dut(url) as dut:
            s = _Session(scn, dut, res)
            try:
                _drive(s)
            finally:
                res.extra["dut_log_tail"] = dut.dut_log[-8:]
            _judge(s)
    except SpinemonError as e:
        res.status = "error"
        res.failures.append(f"{type(e).__name__}: {e}")
    res.wall_s = time.monotonic() - t_wall0
    return res


def _drive(s: _Session) -> None:
    scn, dut, res = s.scn, s.dut, s.res
    st = dut.resync(timeout=BOOT_TIMEOUT_S)
    res.firmware = "%d.%d.%d" % st.fw_version
    res.extra["status_start"] = st.as_dict()
    period = s._configure()
    res.extra["period_us"] = period
    dut.command(sp.OP_START)
    pending = list(scn.actions)
    while True:
        s.pump(0.01)
        now = s.world_now
        if now is not None and now >= scn.duration_s:
            break
        if time.monotonic() - s.wall_last_sample > STALL_TIMEOUT_S:
            raise TransportError(f"no samples for {STALL_TIMEOUT_S:.0f} s (device time {s.t_latest})")
        while pending and now is not None and now >= pending[0].at_s:
            s.act(pending.pop(0))
    dut.command(sp.OP_STOP)
    # drain what is on the line, then the final counters
    t_end = time.monotonic() + 0.2
    while time.monotonic() < t_end:
        s.pump(0.02)
    final = dut.command(sp.OP_GET_STATUS)
    s.handle(dut.poll(0.0))
    res.device_status = final.as_dict()


def _first_crossing(t: np.ndarray, truth: np.ndarray, kind: str, limit: float, t_until: float) -> float | None:
    """Device time of the first sample past the limit in the excursion that
    was under way at t_until."""
    past = truth > limit if kind == OVER_FLEXION else truth < limit
    idx = np.flatnonzero(t <= t_until)
    if not len(idx) or not past[idx[-1]]:
        return None
    inside = np.flatnonzero(~past[: idx[-1] + 1])
    k = inside[-1] + 1 if len(inside) else 0
    return float(t[k])


def _motor_on_edges(events: list, boot: int) -> np.ndarray:
    out = []
    prev = 0
    for e in events:
        if e.boot != boot:
            continue
        if e.duty and not prev:
            out.append(e.t_us / 1e6)
        prev = e.duty
    return np.asarray(out)


def _judge(s: _Session) -> None:
    scn, res, dut = s.scn, s.res, s.dut
    exp = scn.expect
    fails = res.failures
    truth = s.truth

    # -- stream counters ---------------------------------------------------------
    pstats = s.pipeline_stats + [s.pipeline.decoder.stats.as_dict()]
    lost = sum(p["lost_samples"] for p in pstats)
    bad = sum(p["bad_frames"] for p in pstats)
    rejected: dict[str, int] = {}
    for p in pstats:
        for k, v in p["rejected"].items():
            rejected[k] = rejected.get(k, 0) + v
    samples = sum(p["samples"] for p in pstats)
    res.stream = {
        "frames": sum(p["frames"] for p in pstats),
        "samples": samples,
        "lost_samples": lost,
        "bad_frames": bad,
        "rejected": rejected,
        "framing_errors": dut.decoder.framing_errors,
        "duplicate_samples": sum(p["duplicate_samples"] for p in pstats),
        "error_frames_crc": s.errors_crc,
        "naive_decoder_restarts": s.naive.stats.restarts,
        "naive_decoder_duplicate_samples": s.naive.stats.duplicate_samples,
    }
    res.injected = dut.faults.as_dict()
    if samples == 0:
        fails.append("no samples received")
        res.status = "fail"
        return

    # -- angle accuracy ------------------------------------------------------------
    if scn.needs_rig:
        herr = [a - truth.lumbar_deg(s.world(b, t)) for b, t, a in s.host_angles]
        res.host_angle_error = _err_stats(np.concatenate(herr)) if herr else None
        derr = []
        for b, t, a, _ in s.samples:
            if s.t_device_cal is not None and b == 0:
                keep = t > s.t_device_cal + 0.2  # the SET_NEUTRAL reached the device by then
            else:
                keep = np.ones(len(t), dtype=bool) if s.t_device_cal is not None else np.zeros(len(t), dtype=bool)
            derr.append((a - truth.lumbar_deg(s.world(b, t)))[keep])
        res.device_angle_error = _err_stats(np.concatenate(derr)) if derr else None
        for key, stat, which in (
            ("host_angle_mean_deg", "mean", "host"),
            ("host_angle_max_deg", "max", "host"),
            ("device_angle_mean_deg", "mean", "device"),
            ("device_angle_max_deg", "max", "device"),
        ):
            if key in exp:
                st = res.host_angle_error if which == "host" else res.device_angle_error
                if st is None:
                    fails.append(f"no {which} angles to compare with the commanded motion")
                elif st[stat] > exp[key]:
                    fails.append(f"{which} angle error {stat} {st[stat]:.2f} deg > {exp[key]} deg")

    # -- alerts and latency ----------------------------------------------------------
    motor = dut.motor_events
    kinds = []
    by_boot_samples = {}
    for b, t, _, _ in s.samples:
        by_boot_samples.setdefault(b, []).append(t)
    for b, alert in s.alert_log:
        ev = alert.event
        kinds.append(ev.kind)
        limit = s.flex_limit if ev.kind == OVER_FLEXION else s.ext_limit
        entry = {"kind": ev.kind, "boot": b, "t_alert_device": ev.t_alert, "peak_deg": round(ev.peak_deg, 2), "limit_deg": limit}
        if ev.kind in (OVER_FLEXION, OVER_EXTENSION) and b in by_boot_samples:
            t = np.concatenate(by_boot_samples[b])
            t_cross = _first_crossing(t, truth.lumbar_deg(s.world(b, t)), ev.kind, limit, ev.t_alert)
            entry["t_cross_device"] = t_cross
            entry["t_cross_world"] = None if t_cross is None else t_cross + s.offsets_s[b]
            if t_cross is not None and motor is not None:
                edges = _motor_on_edges(motor, b)
                after = edges[edges >= t_cross]
                if len(after):
                    lat = float(after[0] - t_cross)
                    entry["latency_s"] = lat
                    res.latencies_s.append(lat)
                else:
                    fails.append(f"{ev.kind} alert at {ev.t_alert:.2f} s: the motor never came on")
        res.alerts.append(entry)
    if "host_alerts" in exp and kinds != list(exp["host_alerts"]):
        fails.append(f"host alerts {kinds} != expected {list(exp['host_alerts'])}")
    for i, w in enumerate(exp.get("alert_windows", [])):
        if i < len(res.alerts):
            tw = res.alerts[i].get("t_cross_world")
            if tw is None or not w[0] <= tw <= w[1]:
                fails.append(f"alert {i + 1} crossed at world time {tw} s, outside {w}")
    if "latency_max_s" in exp:
        if motor is None:
            res.notes.append("no motor input wired: latency not measured")
        for lat in res.latencies_s:
            if lat > exp["latency_max_s"]:
                fails.append(f"alert latency {lat * 1000:.0f} ms > {exp['latency_max_s'] * 1000:.0f} ms")

    # -- the device guard ----------------------------------------------------------------
    for w in exp.get("guard_fires", []):
        if motor is None:
            res.notes.append("no motor input wired: guard not checked")
            break
        fired = None
        for b in range(s.boot + 1):
            edges = _motor_on_edges(motor, b) + s.offsets_s[b]
            inside = edges[(edges >= w[0]) & (edges <= w[1])]
            if len(inside):
                fired = float(inside[0])
                tt = np.arange(w[0], w[1], 0.001)
                lt = truth.lumbar_deg(tt)
                past = np.flatnonzero((lt > s.flex_limit) | (lt < s.ext_limit))
                if len(past):
                    lat = fired - float(tt[past[0]])
                    res.guard_latencies_s.append(lat)
                    if "latency_max_s" in exp and lat > exp["latency_max_s"]:
                        fails.append(f"guard latency {lat * 1000:.0f} ms > {exp['latency_max_s'] * 1000:.0f} ms")
                break
        if fired is None:
            fails.append(f"the device guard did not buzz between {w[0]} and {w[1]} s (world time)")
    res.extra["guard_alerts_device"] = res.device_status.get("guard_alerts")

    # -- counters --------------------------------------------------------------------------
    inj = dut.faults
    lost_natural = lost - inj.rx_samples_corrupted
    if "frames_lost_max" in exp and lost_natural > exp["frames_lost_max"]:
        fails.append(f"{lost_natural} samples lost on the line (allowed {exp['frames_lost_max']})")
    if inj.rx_frames_corrupted:
        seen = bad + dut.decoder.framing_errors
        if seen != inj.rx_frames_corrupted:
            fails.append(f"{inj.rx_frames_corrupted} frames corrupted, but the host counted {seen} bad")
        if rejected.get("bad_crc", 0) != inj.rx_frames_corrupted:
            fails.append(f"CRC rejected {rejected.get('bad_crc', 0)} of {inj.rx_frames_corrupted} one-bit-corrupted frames")
        if lost != inj.rx_samples_corrupted:
            fails.append(f"host counted {lost} lost samples, {inj.rx_samples_corrupted} were in corrupted frames")
    if inj.tx_commands_corrupted:
        st0 = res.extra.get("status_start", {})
        delta = res.device_status.get("commands_rejected", 0) - st0.get("commands_rejected", 0)
        if delta != inj.tx_commands_corrupted:
            fails.append(f"device rejected {delta} commands, {inj.tx_commands_corrupted} were corrupted")
        if s.errors_crc != inj.tx_commands_corrupted:
            fails.append(f"{s.errors_crc} ERROR(bad_crc) answers for {inj.tx_commands_corrupted} corrupted commands")

    # -- reset ---------------------------------------------------------------------------------
    r = res.extra.get("reset")
    if any(a.kind == "reset" for a in scn.actions):
        if r is None:
            fails.append("the reset did not happen")
        else:
            if r["boot_count_before"] is not None and r["boot_count_after"] != r["boot_count_before"] + 1:
                fails.append(f"boot count {r['boot_count_before']} -> {r['boot_count_after']} after one reset")
            if not r["first_sample_after_reset"]:
                fails.append("no samples after the reset")
            if "resync_max_s" in exp and r["resync_s"] > exp["resync_max_s"]:
                fails.append(f"resynchronised after {r['resync_s']:.2f} s > {exp['resync_max_s']} s")
        if s.naive.stats.restarts == 0:
            res.notes.append(
                "a single FrameDecoder across the reset did not detect the restart "
                f"(it took {s.naive.stats.duplicate_samples} new samples for duplicates)"
            )

    # -- rate change ----------------------------------------------------------------------------
    changes = res.extra.get("rate_changes", [])
    for i, ch in enumerate(changes):
        nxt = changes[i + 1]["after_t"] if i + 1 < len(changes) and changes[i + 1]["boot"] == ch["boot"] else math.inf
        later = [p for b, t0, p in s.periods if b == ch["boot"] and ch["after_t"] is not None and ch["after_t"] < t0 <= nxt]
        if not later:
            fails.append(f"no frames after SET_RATE {ch['rate_hz']}")
        elif later[-1] != ch["ack_period_us"]:
            fails.append(f"SET_RATE {ch['rate_hz']}: ACK said {ch['ack_period_us']} us, frames carry {later[-1]} us")
    res.extra["periods_us"] = [p for _, _, p in s.periods]

    # -- hardware faults and link losses: time to report, time without a guard -----------
    _judge_faults(s, fails)

    res.status = "fail" if fails else "pass"


FAULT_FLAGS = sp.SF_FIFO_OVERFLOW | sp.SF_SENSOR_LOST
REPORT_WINDOW_S = 3.0


def _judge_faults(s: _Session, fails: list[str]) -> None:
    """For each fault the simulated board injected (its FAULT side-channel
    lines) and each link loss: when the host first saw it (a SAMPLES frame
    flagged SF_FIFO_OVERFLOW / SF_SENSOR_LOST, or SF_LINK_GUARD for a link
    loss; a STATUS with a fault field; an ERROR storage_failed) and the
    longest stretch after it with no device angle (the guard blind: samples
    lost at the sensors or carrying no angle; gaps the send queue or the link
    made do not count, the guard ran on those samples)."""
    scn, res, dut = s.scn, s.res, s.dut
    events = []
    port_events = getattr(dut.port, "fault_events", None) or []
    for boot, t_us, kind, state in port_events:
        if state == "on" and boot < len(s.offsets_s):
            events.append((kind, s.world(boot, t_us / 1e6)))
    for t in s.link_losses:
        events.append(("link_loss", t))
    if not events:
        return
    if s.samples:
        t_all = np.concatenate([s.world(b, t) for b, t, a, f in s.samples])
        a_all = np.concatenate([a for b, t, a, f in s.samples])
        f_all = np.concatenate([f for b, t, a, f in s.samples]).astype(np.int64)
        order = np.argsort(t_all, kind="stable")
        t_all, a_all, f_all = t_all[order], a_all[order], f_all[order]
    else:
        t_all = a_all = f_all = np.zeros(0)
    out = []
    for kind, t0 in events:
        flag = sp.SF_LINK_GUARD if kind == "link_loss" else FAULT_FLAGS
        w = (t_all >= t0) & (t_all <= t0 + REPORT_WINDOW_S)
        cand = [float(t) for t in t_all[w & ((f_all & flag) != 0)][:1]]
        if kind != "link_loss":
            cand += [t for t, what in s.signs if t0 <= t <= t0 + REPORT_WINDOW_S][:1]
        reported = min(cand) - t0 if cand else None
        # the guard blind: from t0, the longest stretch between samples with an angle
        seen = t_all >= t0 - 0.05
        tt, aa, ff = t_all[seen], a_all[seen], f_all[seen]
        ok = np.isfinite(aa)
        times = tt[ok]
        gaps = [times[0] - t0] if len(times) else [scn.duration_s - t0]
        if len(times) > 1:
            d = np.diff(times)
            # a gap the send queue made is not blind time (flag on the sample after it)
            nxt = ff[ok][1:]
            d = np.where((nxt & sp.SF_QUEUE_DROP) != 0, 0.0, d)
            gaps.append(float(d.max()))
        blind = max(0.0, float(max(gaps)))
        out.append({"fault": kind, "at_s": round(t0, 3), "reported_after_s": None if reported is None else round(max(0.0, reported), 3), "no_guard_s": round(blind, 3)})
    res.extra["faults"] = out
    exp = scn.expect
    for f in out:
        if "report_max_s" in exp:
            if f["reported_after_s"] is None:
                fails.append(f"{f['fault']} at {f['at_s']} s: never reported to the host")
            elif f["reported_after_s"] > exp["report_max_s"]:
                fails.append(f"{f['fault']} at {f['at_s']} s: reported after {f['reported_after_s']} s > {exp['report_max_s']} s")
        if "no_guard_max_s" in exp and f["no_guard_s"] > exp["no_guard_max_s"]:
            fails.append(f"{f['fault']} at {f['at_s']} s: the guard had no angle for {f['no_guard_s']} s > {exp['no_guard_max_s']} s")
    if "storage_errors" in exp:
        n = sum(1 for r in res.extra.get("resaves", []) if "storage" in r["answer"])
        if n != exp["storage_errors"]:
            fails.append(f"{n} saves answered storage_failed, expected {exp['storage_errors']}")
