# On-device guard: a small complementary filter per IMU (gravity direction,
# pure float math, no numpy) and the threshold logic that fires the motor by
# itself. Conventions: docs/architecture.md (sagittal = atan2(uz, ux) of the
# gravity-up vector, flexion positive; lumbar = upper - lower sagittal).
#
# Settings have the host's semantics (spinemon.fusion.FusionSettings):
#   tau_acc_s           time constant of the accelerometer correction, s
#                       (first-order here; the host uses a 2nd-order Butterworth)
#   acc_rejection_m_s2  how far |a| may depart from g before trust drops:
#                       beyond it the correction weight is (threshold/deviation)^2
# On the ESP32 MicroPython floats are single precision; the filter
# renormalises every sample, so that is enough for a guard (not for science).

import math

from spinemon_protocol import ANGLE_NONE, GUARD_ALWAYS, GUARD_OFF, GUARD_WHEN_LINK_DOWN, SENSOR_LOWER, SENSOR_UPPER

G = 9.80665
_RAD_TO_CDEG = 18000.0 / math.pi


class GravityFilter:
    """Gravity-up unit vector u in the sensor frame. Exposes why it did what
    it did: `acc_used` (the last sample corrected u), `rejected` (count of
    samples whose accelerometer was ignored), `initialized`."""

    def __init__(self, tau_s=1.0, acc_rejection=2.0):
        self.tau_s = tau_s
        self.acc_rejection = acc_rejection
        self.reset()

    def reset(self):
        self.ux = 1.0
        self.uy = 0.0
        self.uz = 0.0
        self.initialized = False
        self.acc_used = False
        self.acc_weight = 0.0
        self.rejected = 0

    def update(self, ax, ay, az, gx, gy, gz, dt):
        """One sample: accel in m/s^2, gyro in rad/s, dt in s."""
        an = math.sqrt(ax * ax + ay * ay + az * az)
        if not self.initialized:
            if an > 0.5 * G:
                self.ux = ax / an
                self.uy = ay / an
                self.uz = az / an
                self.initialized = True
                self.acc_used = True
            return
        ux = self.ux
        uy = self.uy
        uz = self.uz
        # gyro prediction: du/dt = u x w (gravity is fixed in the world)
        nx = ux + dt * (uy * gz - uz * gy)
        ny = uy + dt * (uz * gx - ux * gz)
        nz = uz + dt * (ux * gy - uy * gx)
        if an > 0.0:
            k = dt / (self.tau_s + dt)
            dev = abs(an - G)
            self.acc_used = dev <= self.acc_rejection
            if not self.acc_used:
                self.rejected += 1
                w = self.acc_rejection / dev
                k *= w * w
            self.acc_weight = k
            nx += k * (ax / an - nx)
            ny += k * (ay / an - ny)
            nz += k * (az / an - nz)
        n = math.sqrt(nx * nx + ny * ny + nz * nz)
        if n > 0.0:
            self.ux = nx / n
            self.uy = ny / n
            self.uz = nz / n

    def sagittal_rad(self):
        return math.atan2(self.uz, self.ux)


class Crossing:
    """One threshold (one side) and the confirmation rule the host's detector
    uses (spinemon.detect.DetectorSettings): a crossing counts once it has
    been past the threshold for `hold_ms`, or sooner when it goes in fast:
    the time needed is hold_ms * ref_rate / rate, never fewer than
    `floor_samples` sample periods after the first sample past, where rate
    is how fast the excursion goes deeper from that first sample and
    ref_rate = hysteresis / hold_ms (so: confirmed once one hysteresis band
    deeper than the first sample past; a glitch that jumps and sits has rate
    0 and needs the whole hold). A crossing ends when the value is back
    inside by `hysteresis`. Values are "badness": larger is worse, so the
    extension side is fed the negated angle. Sample counts, not the clock,
    time it (one poll reads several samples at once)."""

    def __init__(self, hysteresis, hold_ms, floor_samples):
        self.hysteresis = hysteresis
        self.hold_ms = hold_ms
        self.floor_samples = floor_samples
        self.start_from = None  # badness of the crossing's first sample past; None: no crossing
        self.n = 0  # samples since that one
        self.confirmed = False

    def reset(self):
        self.start_from = None
        self.confirmed = False

    def quick(self, b, dt_ms):
        """Confirmed early at this sample: at least `floor_samples` after the
        first one past, and past it for hold_ms * ref_rate / rate, where rate
        is how fast the excursion went deeper since that first sample."""
        if self.n < self.floor_samples:
            return False
        elapsed = self.n * dt_ms
        rate = (b - self.start_from) / elapsed  # per ms
        return rate > 0 and elapsed * rate >= self.hysteresis  # elapsed >= hold_ms * (hysteresis / hold_ms) / rate

    def update(self, b, limit, dt_ms):
        """One sample's badness against `limit` (> 0). Returns True while a
        confirmed crossing is in progress."""
        if self.start_from is None:
            if b <= limit:
                return False
            self.start_from = b
            self.n = 0
        else:
            self.n += 1
        if b < limit - self.hysteresis:
            self.reset()
            return False
        if not self.confirmed and (self.n * dt_ms >= self.hold_ms or self.quick(b, dt_ms)):
            self.confirmed = True
        return self.confirmed


class Guard:
    """Lumbar angle (or single-sensor inclination) from one or two filters,
    zeroed by calibrate(), compared with the thresholds the host set.

    angle reported as int16 centidegrees; ANGLE_NONE until calibrate() (the
    uncalibrated angle of a sacrum sensor is off by its mounting tilt, so the
    guard neither reports nor fires before a neutral calibration).
    Thresholds: flex_cdeg > 0 fires above it, ext_cdeg < 0 fires below it; a
    threshold of 0 is disabled. A crossing fires once confirmed (Crossing:
    the host detector's rule, so the device buzzes on what the host would
    call a fault, no sooner). One excursion gives one buzz, as the host
    counts events (spinemon.detect): after firing, the guard re-arms once the
    angle has been back inside the thresholds by `hysteresis_cdeg` for
    `refractory_ms` (the host's refractory_s, 1.5 s); past a threshold again
    sooner, it is the same excursion. `buzzed_excursion`:
    the guard fired in the excursion in progress (cleared once back inside
    by the hysteresis); the device does not play a host buzz meanwhile.

    A lost sensor (set_lost, the sampler's `lost` mask): with the lower one
    lost the guard falls back to the upper sensor's own inclination, and
    keeps only the limit one sensor can judge (the extension side: leaning
    back, as the host's one-sensor mode keeps it; the flexion limit is off,
    a hip hinge alone would pass it); with the upper one lost it has no
    angle and is not armed (the device plays the "sensor lost" pattern).
    """

    def __init__(self, two_imus, tau_s=1.0, acc_rejection=2.0, hysteresis_cdeg=300, refractory_ms=1500, hold_ms=80, floor_samples=2):
        self.two_imus = two_imus
        self.upper = GravityFilter(tau_s, acc_rejection)
        self.lower = GravityFilter(tau_s, acc_rejection) if two_imus else None
        self.hysteresis_cdeg = hysteresis_cdeg
        self.refractory_ms = refractory_ms
        self.flexion = Crossing(hysteresis_cdeg, hold_ms, floor_samples)
        self.extension = Crossing(hysteresis_cdeg, hold_ms, floor_samples)
        self.flex_cdeg = 0
        self.ext_cdeg = 0
        self.mode = GUARD_OFF
        self.calibrated = False
        self.offset_upper = 0.0
        self.offset_lower = 0.0
        self.latched = False  # fired (or the host buzzed) in this excursion, waiting to re-arm
        self.released_ms = None  # when the angle came back inside while latched
        self.last_fire_ms = None
        self.buzzed_excursion = False
        self.alerts = 0
        self.angle_cdeg = ANGLE_NONE
        self.over = False  # past a threshold now
        self.armed = False
        self.lost = 0  # sensor mask of the IMUs lost now
        self.set_scales(4, 2000, 10000)

    def set_scales(self, accel_fs_g, gyro_fs_dps, period_us):
        self.acc_scale = accel_fs_g * G / 32768.0
        self.gyr_scale = gyro_fs_dps * math.pi / 180.0 / 32768.0
        self.dt = period_us / 1000000.0
        self.dt_ms = period_us / 1000.0

    def set_thresholds(self, flex_cdeg, ext_cdeg, mode):
        self.flex_cdeg = flex_cdeg
        self.ext_cdeg = ext_cdeg
        self.mode = mode

    def set_calibration(self, offset_upper, offset_lower):
        self.offset_upper = offset_upper
        self.offset_lower = offset_lower
        self.calibrated = True
        self.flexion.reset()
        self.extension.reset()

    def set_lost(self, mask):
        """The IMUs lost now (sensor mask). A sensor that comes back starts
        its filter afresh (it missed the motion meanwhile)."""
        was = self.lost
        self.lost = mask
        if was & SENSOR_UPPER and not mask & SENSOR_UPPER:
            self.upper.reset()
        if self.lower is not None and was & SENSOR_LOWER and not mask & SENSOR_LOWER:
            self.lower.reset()
        if mask != was:
            self.flexion.reset()
            self.extension.reset()

    def single_fallback(self):
        """Two sensors fitted, the lower one lost: the upper one alone."""
        return self.lower is not None and bool(self.lost & SENSOR_LOWER)

    def ready(self):
        if self.lost & SENSOR_UPPER:
            return False
        return self.upper.initialized and (self.lower is None or self.single_fallback() or self.lower.initialized)

    def calibrate(self):
        """Neutral: zero the angle at the current orientation. Returns False
        (nothing changed) if the filters have no data yet, or a sensor is
        lost (its neutral cannot be taken)."""
        if not self.ready() or self.lost:
            return False
        self.set_calibration(self.upper.sagittal_rad(), self.lower.sagittal_rad() if self.lower else 0.0)
        self.latched = False
        return True

    def is_armed(self, link_down):
        if not self.calibrated or (self.flex_cdeg == 0 and self.ext_cdeg == 0) or self.lost & SENSOR_UPPER:
            return False
        if self.mode == GUARD_ALWAYS:
            return True
        return self.mode == GUARD_WHEN_LINK_DOWN and link_down

    def host_buzzed(self, now_ms):
        """The host's buzz is playing: if the wearer is past a threshold, it is
        this excursion's buzz, so the guard does not fire for it too."""
        if self.over:
            self.latched = True
            self.released_ms = None

    def update(self, up, low, now_ms, link_down):
        """One sample (protocol int16 tuples; `low` None with one IMU).
        Returns True if the guard fires on this sample."""
        s = self.acc_scale
        w = self.gyr_scale
        dt = self.dt
        if up is not None:
            self.upper.update(up[0] * s, up[1] * s, up[2] * s, up[3] * w, up[4] * w, up[5] * w, dt)
        if self.lower is not None and low is not None:
            self.lower.update(low[0] * s, low[1] * s, low[2] * s, low[3] * w, low[4] * w, low[5] * w, dt)
        self.armed = self.is_armed(link_down)
        single = self.single_fallback()
        if up is None or not self.calibrated or not self.ready():
            self.angle_cdeg = ANGLE_NONE
            self.over = False
            return False
        a = self.upper.sagittal_rad() - self.offset_upper
        if self.lower is not None and not single:
            a -= self.lower.sagittal_rad() - self.offset_lower
        # wrap to (-pi, pi]
        if a > math.pi:
            a -= 2.0 * math.pi
        elif a <= -math.pi:
            a += 2.0 * math.pi
        c = int(math.floor(a * _RAD_TO_CDEG + 0.5))
        if c < -32767:
            c = -32767
        elif c > 32767:
            c = 32767
        self.angle_cdeg = c
        flex = 0 if single else self.flex_cdeg  # one sensor cannot tell a hinge from a rounded back
        ext = self.ext_cdeg
        self.over = (flex > 0 and c > flex) or (ext < 0 and c < ext)
        confirmed = False
        if flex > 0:
            confirmed = self.flexion.update(c, flex, self.dt_ms)
        if ext < 0:
            confirmed = self.extension.update(-c, -ext, self.dt_ms) or confirmed
        inside = (flex <= 0 or c < flex - self.hysteresis_cdeg) and (ext >= 0 or c > ext + self.hysteresis_cdeg)
        if inside:
            self.buzzed_excursion = False
        if self.latched:
            if self.released_ms is None:
                if inside:
                    self.released_ms = now_ms
            elif self.over:
                self.released_ms = None  # back past a threshold within the refractory period: the same excursion
            elif now_ms - self.released_ms >= self.refractory_ms:
                self.latched = False
            return False
        if confirmed and self.armed:
            self.latched = True
            self.released_ms = None
            self.buzzed_excursion = True
            self.last_fire_ms = now_ms
            self.alerts += 1
            return True
        return False
