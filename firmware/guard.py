# On-device guard: the host's gravity filter per IMU (pure float math, no
# numpy) and the threshold logic that fires the motor by itself. Conventions:
# docs/architecture.md (sagittal = atan2(uz, ux) of the gravity-up vector,
# flexion positive; lumbar = upper - lower sagittal).
#
# GravityFilter is the host's filter (spinemon.core.fusion_kernel.step_python,
# one sample at a time, with the host's default FusionSettings), so the
# wearable's angle is the host's angle and the guard crosses a limit on the
# same sample the host does (issue 27: a filter of its own, a first-order
# correction with a 1 s constant, lagged or led the host's by up to a degree
# after each bend and crossed a sample later in about a third of them). A
# test holds the two equal (tests/firmware/test_guard_filter.py).
#   fusion_tau_acc_s    time constant of the accelerometer low-pass
#                       (second-order Butterworth in the gyro-integrated frame)
#   fusion_acc_rejection_m_s2 0: every accelerometer sample counts (the host's
#                       default); else a trust weight (threshold/deviation)^2
#                       once the mean square deviation of |a| from g passes it
# On the ESP32 MicroPython floats are single precision (docs/hardware.md).

import math

from spinemon_protocol import ANGLE_NONE, GUARD_ALWAYS, GUARD_OFF, GUARD_WHEN_LINK_DOWN, SENSOR_LOWER, SENSOR_UPPER

G = 9.80665
_RAD_TO_CDEG = 18000.0 / math.pi
# the host's FusionSettings defaults (spinemon.core.fusion_settings) that the
# wearable cannot be told: rest detection, gyro bias, trust-weight smoothing
_REST_GYR2 = math.radians(2.0) ** 2  # (rad/s)^2: a rest candidate turns slower than 2 deg/s
_REST_ACC2 = 0.5**2  # (m/s^2)^2: and | |a| - g | is under 0.5 m/s^2
_REST_MIN_S = 1.5
_TAU_BIAS_S = 5.0
_REJ_TAU_S = 3.0
_CHUNK = 16  # samples; the low-pass output, trust weight and bias are latched at chunk ends
_TAYLOR_MAX = 1e-2


class GravityFilter:
    """Gravity-up unit vector (ux, uy, uz) in the sensor frame: the host's
    filter (strapdown quaternion, accelerometer low-passed in the integrated
    frame, gyro bias learnt at rest). `initialized` once an accelerometer
    sample of at least 0.1 g came; `rest` whether the last sample was rest."""

    def __init__(self, tau_s=3.0, acc_rejection=0.0):
        self.tau_s = tau_s
        self.acc_rejection = acc_rejection
        self._dt = None
        self.reset()

    def reset(self):
        self.ux = 1.0
        self.uy = 0.0
        self.uz = 0.0
        self.initialized = False
        self.rest = False

    def _coefficients(self, dt):
        """The host's coefficients for this sample period
        (spinemon.core.fusion_settings._coefficients)."""
        self._dt = dt
        rate = 1.0 / dt
        fc = math.sqrt(2.0) / (2.0 * math.pi * self.tau_s)
        if fc > 0.45 * rate:
            fc = 0.45 * rate  # the host refuses such a setting; the config store's range keeps it out
        k = math.tan(math.pi * fc / rate)
        k2 = k * k
        norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k2)
        b0 = k2 * norm
        a1 = 2.0 * (k2 - 1.0) * norm
        a2 = (1.0 - math.sqrt(2.0) * k + k2) * norm
        # scipy.signal.lfilter_zi for a unit step: solve [[1 + a1, -1], [a2, 1]] zi = b[1:] - a[1:] b0
        r0 = 2.0 * b0 - a1 * b0
        r1 = b0 - a2 * b0
        self.zi0 = (r0 + r1) / (1.0 + a1 + a2)
        self.zi1 = r1 - a2 * self.zi0
        rej_k = 1.0 - math.exp(-dt / _REJ_TAU_S)
        rej2 = self.acc_rejection * self.acc_rejection if self.acc_rejection > 0.0 else -1.0
        # everything update() reads, unpacked into locals in one go (MicroPython: locals are fast, attributes are not)
        self._co = (b0, 2.0 * b0, b0, a1, a2, 0.5 * dt, rej_k, 1.0 - rej_k, rej2, max(1, int(round(_REST_MIN_S * rate))))
        self.bias_keep = 1.0 - (1.0 - math.exp(-dt / _TAU_BIAS_S))
        self.bias_mean_n = max(1, int(round(_TAU_BIAS_S * rate)))

    def _start(self, ax, ay, az, an):
        """At rest, gravity along this sample (spinemon.core.fusion_settings.FusionState.from_gravity)."""
        ux = ax / an
        uy = ay / an
        uz = az / an
        self.ux = ux
        self.uy = uy
        self.uz = uz
        z0 = self.zi0 * G
        z1 = self.zi1 * G
        # quaternion; low-pass state z0, z1; its output latched at the last chunk end; mean square
        # deviation of |a|; trust weight; rest run; held bias; position in the chunk
        self._st = (1.0, 0.0, 0.0, 0.0, z0 * ux, z0 * uy, z0 * uz, z1 * ux, z1 * uy, z1 * uz, G * ux, G * uy, G * uz, 0.0, 1.0, 0, 0.0, 0.0, 0.0, 0)
        self.bx = self.by = self.bz = 0.0  # live bias estimate
        self.sx = self.sy = self.sz = 0.0  # rest gyro sums in the open chunk
        self.nr = 0
        self.count = 0  # rest samples that fed the bias estimate
        self.initialized = True

    def update(self, ax, ay, az, gx, gy, gz, dt):
        """One sample: accel in m/s^2, gyro in rad/s, dt in s."""
        if dt != self._dt:
            self._coefficients(dt)
        if not self.initialized:
            an = math.sqrt(ax * ax + ay * ay + az * az)
            if an > 0.1 * G:
                self._start(ax, ay, az, an)
            else:
                return
        b0, b1, b2, a1, a2, hdt, rej_k, rej_keep, rej2, rest_min_n = self._co
        qw, qx, qy, qz, z0x, z0y, z0z, z1x, z1y, z1z, lx, ly, lz, ms, w, run, hbx, hby, hbz, phase = self._st
        sqrt = math.sqrt
        dev = sqrt(ax * ax + ay * ay + az * az) - G
        dev2 = dev * dev
        ms = rej_k * dev2 + rej_keep * ms
        if gx * gx + gy * gy + gz * gz < _REST_GYR2 and dev2 < _REST_ACC2:
            run += 1
        else:
            run = 0
        rest = self.rest = run >= rest_min_n
        if rest:
            self.sx += gx
            self.sy += gy
            self.sz += gz
            self.nr += 1
        ox = gx - hbx
        oy = gy - hby
        oz = gz - hbz
        # rotation over one sample
        h2 = (ox * ox + oy * oy + oz * oz) * hdt * hdt
        if h2 > _TAYLOR_MAX:
            t = sqrt(h2)
            c = math.cos(t)
            s = math.sin(t) / t * hdt
        else:
            c = 1.0 + h2 * (-0.5 + h2 * (1.0 / 24.0 + h2 * (-1.0 / 720.0 + h2 * (1.0 / 40320.0))))
            s = (1.0 + h2 * (-1.0 / 6.0 + h2 * (1.0 / 120.0 + h2 * (-1.0 / 5040.0 + h2 * (1.0 / 362880.0))))) * hdt
        dx = s * ox
        dy = s * oy
        dz = s * oz
        qw, qx, qy, qz = (
            qw * c - qx * dx - qy * dy - qz * dz,
            qw * dx + qx * c + qy * dz - qz * dy,
            qw * dy - qx * dz + qy * c + qz * dx,
            qw * dz + qx * dy - qy * dx + qz * c,
        )
        ww = qw * qw
        xx = qx * qx
        yy = qy * qy
        zz = qz * qz
        r00 = ww + xx - yy - zz
        r11 = ww - xx + yy - zz
        r22 = ww - xx - yy + zz
        xy = 2.0 * qx * qy
        xz = 2.0 * qx * qz
        yz = 2.0 * qy * qz
        wx = 2.0 * qw * qx
        wy = 2.0 * qw * qy
        wz = 2.0 * qw * qz
        r01 = xy - wz
        r10 = xy + wz
        r02 = xz + wy
        r20 = xz - wy
        r12 = yz - wx
        r21 = yz + wx
        ax *= w
        ay *= w
        az *= w
        ix = r00 * ax + r01 * ay + r02 * az
        iy = r10 * ax + r11 * ay + r12 * az
        iz = r20 * ax + r21 * ay + r22 * az
        # second-order low-pass, transposed direct form II (as scipy.signal.lfilter)
        hx = b0 * ix + z0x
        z0x = b1 * ix - a1 * hx + z1x
        z1x = b2 * ix - a2 * hx
        hy = b0 * iy + z0y
        z0y = b1 * iy - a1 * hy + z1y
        z1y = b2 * iy - a2 * hy
        hz = b0 * iz + z0z
        z0z = b1 * iz - a1 * hz + z1z
        z1z = b2 * iz - a2 * hz
        # the sensor-frame direction uses the output latched at the last chunk end
        vx = r00 * lx + r10 * ly + r20 * lz
        vy = r01 * lx + r11 * ly + r21 * lz
        vz = r02 * lx + r12 * ly + r22 * lz
        n = sqrt(vx * vx + vy * vy + vz * vz)
        if n > 0.0:
            self.ux = vx / n
            self.uy = vy / n
            self.uz = vz / n
        if phase == _CHUNK - 1:  # chunk end: latch output, weight and bias; renormalise the quaternion
            phase = 0
            n = sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
            qw /= n
            qx /= n
            qy /= n
            qz /= n
            lx = hx
            ly = hy
            lz = hz
            w = rej2 / ms if 0.0 < rej2 < ms else 1.0
            hbx, hby, hbz = self._learn_bias()
        else:
            phase += 1
        self._st = (qw, qx, qy, qz, z0x, z0y, z0z, z1x, z1y, z1z, lx, ly, lz, ms, w, run, hbx, hby, hbz, phase)

    def _learn_bias(self):
        """At a chunk end: the rest samples of the chunk feed the bias
        estimate (a running mean, then an IIR); returns the bias to use."""
        nr = self.nr
        if nr:
            count = self.count
            if count < self.bias_mean_n:
                c1 = count + nr
                self.bx = (count * self.bx + self.sx) / c1
                self.by = (count * self.by + self.sy) / c1
                self.bz = (count * self.bz + self.sz) / c1
            else:
                dn = self.bias_keep**nr
                en = (1.0 - dn) / nr
                self.bx = dn * self.bx + en * self.sx
                self.by = dn * self.by + en * self.sy
                self.bz = dn * self.bz + en * self.sz
            self.count = count + nr
            self.sx = self.sy = self.sz = 0.0
            self.nr = 0
        return self.bx, self.by, self.bz

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

    def __init__(self, two_imus, tau_s=3.0, acc_rejection=0.0, hysteresis_cdeg=300, refractory_ms=1500, hold_ms=80, floor_samples=2):
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
