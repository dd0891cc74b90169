# Motion-script player for the simulated HIL bench (MicroPython and CPython).
#
# A motion script (a dict, parsed from a hil/scenarios/*.toml file by the
# bench and passed to the board as JSON) describes what a motion rig would do
# to the two IMUs, in world time t (s):
#   pelvis_deg  [[t, deg], ...]  sagittal inclination of the pelvis (lower segment)
#   lumbar_deg  [[t, deg], ...]  lumbar angle; the thorax (upper segment) is
#                                inclined pelvis + lumbar (flexion positive)
#   mount_upper_deg, mount_lower_deg  constant sensor tilt on its segment
#                                (the sacrum sensor sits inclined)
#   noise_acc_m_s2, noise_gyr_rad_s   white noise standard deviations
#   bias_gyr_upper, bias_gyr_lower    constant gyro bias, rad/s (x, y, z)
#   lin_acc  [[t0, t1, amp_m_s2, hz], ...]  vertical (world) acceleration
#                                amp * sin(2 pi hz (t - t0)) inside [t0, t1]
#   seed                           noise seed
# Keyframes are joined by straight lines (the host's np.interp gives the same
# truth); before the first / after the last keyframe the angle is held.
# The IMU reads specific force (g + a_vertical) along gravity-up and the
# segment's rotation rate about its Y axis (du/dt = u x w, see fake_i2c.Tilt).

import math
import random

G = 9.80665


def interp(keys, t):
    """Piecewise-linear value and slope of [[t, v], ...] at t."""
    if t <= keys[0][0]:
        return keys[0][1], 0.0
    for i in range(1, len(keys)):
        t1, v1 = keys[i]
        if t <= t1:
            t0, v0 = keys[i - 1]
            if t1 <= t0:
                return v1, 0.0
            rate = (v1 - v0) / (t1 - t0)
            return v0 + rate * (t - t0), rate
    return keys[-1][1], 0.0


def vertical_acc(spec, t):
    a = 0.0
    for seg in spec.get("lin_acc", ()):
        t0, t1, amp, hz = seg[0], seg[1], seg[2], seg[3]
        if t0 <= t <= t1:
            a += amp * math.sin(2.0 * math.pi * hz * (t - t0))
    return a


class SegmentMotion:
    """motion(t) -> ((ax, ay, az) m/s^2, (gx, gy, gz) rad/s) for one IMU
    ("upper" or "lower"), the callable fake_i2c's IMU models expect.
    `t_offset_s` shifts the script: a DUT that reboots keeps world time."""

    def __init__(self, spec, segment, t_offset_s=0.0):
        self.spec = spec
        self.segment = segment
        self.t_offset_s = t_offset_s
        self.pelvis = spec.get("pelvis_deg") or [[0.0, 0.0]]
        self.lumbar = spec.get("lumbar_deg") or [[0.0, 0.0]]
        self.mount = spec.get("mount_%s_deg" % segment, 0.0)
        self.noise_acc = spec.get("noise_acc_m_s2", 0.0)
        self.noise_gyr = spec.get("noise_gyr_rad_s", 0.0)
        self.bias = spec.get("bias_gyr_%s" % segment) or [0.0, 0.0, 0.0]
        self.rng = random
        random.seed(int(spec.get("seed", 1)) + (0 if segment == "upper" else 7919))
        self._spare = None

    def _gauss(self):
        # Box-Muller (MicroPython's random has no gauss())
        if self._spare is not None:
            g = self._spare
            self._spare = None
            return g
        u1 = self.rng.random()
        u2 = self.rng.random()
        if u1 < 1e-12:
            u1 = 1e-12
        r = math.sqrt(-2.0 * math.log(u1))
        self._spare = r * math.sin(2.0 * math.pi * u2)
        return r * math.cos(2.0 * math.pi * u2)

    def tilt(self, t):
        """Sensor sagittal tilt (deg) and its rate (deg/s) at world time t."""
        p, pr = interp(self.pelvis, t)
        if self.segment == "upper":
            lu, lr = interp(self.lumbar, t)
            return p + lu + self.mount, pr + lr
        return p + self.mount, pr

    def __call__(self, t):
        t = t + self.t_offset_s
        deg, rate = self.tilt(t)
        th = math.radians(deg)
        f = G + vertical_acc(self.spec, t)
        na = self.noise_acc
        ng = self.noise_gyr
        b = self.bias
        acc = (f * math.cos(th), 0.0, f * math.sin(th))
        gyr = (b[0], math.radians(rate) + b[1], b[2])
        if na > 0.0:
            acc = (acc[0] + na * self._gauss(), acc[1] + na * self._gauss(), acc[2] + na * self._gauss())
        if ng > 0.0:
            gyr = (gyr[0] + ng * self._gauss(), gyr[1] + ng * self._gauss(), gyr[2] + ng * self._gauss())
        return acc, gyr
