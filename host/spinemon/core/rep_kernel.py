"""The per-sample arithmetic of rep segmentation, as one compiled loop.

:class:`spinemon.core.reps.RepSegmenter` is a state machine over leaky
integrators whose resets depend on the state (the reference posture follows
the body only between reps, the residual gyro bias is learnt only while idle,
walking resets everything): numpy cannot express it as whole-array passes.
This module holds that loop over plain float/int state arrays, with no
Python objects in it, so numba can compile it (``pip install
'spinemon[fast]'``); without numba the very same function runs as Python.
Both give the same numbers (``tests/core/test_reps.py`` runs both on the same
data and compares them bit for bit).

The loop does the numeric part of one sample -- bias, stillness, walking,
excursion, running peaks, the idle/rep/settling states -- and writes what the
segmenter's bookkeeping (candidates waiting, runs, sets, rejects) needs into
an *event log* and a few per-sample arrays. The bookkeeping never feeds back
into these numbers, so it can run after the loop, in Python, event by event.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "MAX_EVENTS_PER_SAMPLE",
    "N_EVENT_FIELDS",
    "advance",
    "advance_python",
    "compiled",
    "new_state",
    "reset_motion",
    "warm_up",
]

# -- float state slots (F) ---------------------------------------------------
WQ = 0  # smoothed |gyro| (residual bias removed), deg/s
WW = 1  # smoothed off-sagittal rate^2, (deg/s)^2
BU = 2  # residual gyro bias, upper (3), deg/s
BL = 5  # residual gyro bias, lower (3)
VU = 8  # excursion rotation vector, upper (3), deg
VL = 11  # excursion rotation vector, lower (3)
SU_M = 14  # stillness of the upper gyro: exponential mean (3)
SU_VAR = 17  # ... and variance
SL_M = 18  # stillness of the lower gyro (3)
SL_VAR = 21
STILL_SINCE = 22  # NaN = None
QUIET_SINCE = 23
WALK_SINCE = 24
T_WALK_LAST = 25
T_LAST = 26
T_FIRST = 27
T_REST = 28  # last sample at the reference posture
T_START = 29
T_TURN = 30
T_EMIN = 31
E_MIN = 32
ST_FMAX = 33  # running peaks of the motion (reset with the reference)
ST_FMIN = 34
ST_WY = 35
ST_LAT = 36  # NaN = none yet
ST_TW = 37
ST_TRUNK = 38
ST_EMAX = 39
EXCURSION = 40
E_START = 41  # the excursion where the rep in progress began (0 from the reference; a valley between reps back to back)
RGU = 42  # gravity mode: the reference posture's gravity direction, upper (3; NaN = take the next sample's)
RGL = 45  # ... lower (3)
PGU = 48  # gravity mode: the previous sample's gravity direction, upper (3; NaN = none yet)
PGL = 51  # ... lower (3)
FL_REF = 54  # gravity mode: the lumbar angle at the reference posture (NaN = take the next sample's)
FL_PREV = 55  # the last sample's lumbar angle (NaN = none yet)
ON_GRAVITY = 56  # 1.0 while the excursion is the gravity one (the gyro bias not learnt yet), else 0.0
# the tilt bias (rules 3): per sensor, a small Mahony filter in the body frame -- its
# gravity direction (3) and gyro bias (3), learnt from the accelerometer's disagreement
MGU = 57  # upper gravity estimate (3; NaN = start from the next accelerometer sample)
MBU = 60  # upper tilt bias (3), deg/s
MGL = 63  # lower gravity estimate (3)
MBL = 66  # lower tilt bias (3)
T_TILT = 69  # seconds of data (not walking) the tilt bias has learnt from
# rules 4: the tilt filter runs in each sensor's own frame (a new neutral or heading turns
# nothing there), and in gravity mode a small lift's excursion is measured on its gravity
MFL_PREV = 70  # the last sample's lumbar angle from the tilt filters' gravity (NaN = none yet)
# rules 6: is a still stretch still? The accelerometer directions (each sensor's frame, low-passed
# over ``still_tau_s``) at its start and now: a steady slow turn moves them, a bias does not
AU0 = 71  # upper, at the start of the still stretch (3)
AL0 = 74  # lower (3)
ALU = 77  # upper, now (3; NaN = start from the next sample)
ALL = 80  # lower (3)
T_ACC0 = 83  # when AU0/AL0 were taken (NaN: not yet in this stretch; taken once the low-pass has settled)
# rules 8: where the excursion last stood still (``rest_away``): the rotation vectors there
# (upper 3, lower 3) and when (NaN: start afresh)
VAU = 92
VAL = 95
T_ANCHOR = 98
# rules 8: where the excursion first went over to the tilt filter's bias (GYRO_MODE 2), and that bias
T_MODE2 = 85  # (NaN: not yet)
MB2U = 86  # upper (3, its frame)
MB2L = 89  # lower (3)
N_FLOAT = 99

# -- int state slots (I) -------------------------------------------------------
STATE = 0  # IDLE / REP / SETTLE
WALKING = 1
BIAS_N = 2
SU_N = 3
SL_N = 4
REFRAME = 5  # set by the caller: the lumbar angle was re-expressed (a new neutral or heading) before the next sample
GYRO_MODE = 6  # gravity mode allowed: 1 once the residual gyro bias is learnt (the excursion is the integrated gyro from then on);
# 2 once only the tilt bias is (rules 3): the integrated gyro about the axes across the spine
BIAS_OK = 7  # rules 6: a still stretch whose accelerometers did not turn confirmed the still bias
N_INT = 8

IDLE, REP, SETTLE = 0, 1, 2

# -- parameters (P) ----------------------------------------------------------------
(
    P_RATE, P_MAX_GAP, P_A_QUIET, P_A_WALK, P_LEAK, P_A_BIAS, P_A_BIAS_FAST, P_A_STILL,
    P_QUIET, P_STILL_STD2, P_STILL_MAX2, P_QUIET2, P_STILL_MIN, P_STILL_LONG, P_WALK,
    P_WALK_MIN, P_WALK_RELEASE, P_REST_QUIET, P_EXIT_FRACTION, P_STUCK, P_SETTLE,
    P_WARMUP_N, P_WARMUP_TIMEOUT, P_ARM_AFTER_WALK, P_ENTER, P_MAX_REP, P_EXIT_RELATIVE, P_A_TILT,
    P_TILT_KP, P_TILT_KI, P_TILT_LEARNT_S, P_TILT_CLIP, P_BIAS_TOL, P_STILL_TAU, P_REST_AWAY,
    P_BIAS_IDLE,
) = range(36)  # fmt: skip
N_PARAM = 36

# -- events ------------------------------------------------------------------------
#: phase 0 (hole in the stream): reject the motion in progress (t0, t1, emax)
EV_GAP_REJECT = 1
#: phase 1: walking began with a motion in progress: reject it (t0, t1, emax)
EV_WALK_REJECT = 2
#: phase 1: walking began (onset, t)
EV_WALK = 3
#: phase 3: a rep took too long (t0, t1, emax)
EV_TOO_LONG = 4
#: phase 3: stuck away from the reference (t0, t1, emax)
EV_STUCK = 5
#: phase 3: a candidate ended (t_start, t_end, fmax, fmin, wy, lat, tw, trunk, emax, after_walk)
EV_CANDIDATE = 6
#: the bookkeeping (waiting candidates accepted, runs closed) happens between phases 1 and 3
PHASE = (0, 0, 1, 1, 3, 3, 3)
N_EVENT_FIELDS = 11
MAX_EVENTS_PER_SAMPLE = 3  # gap reject + walk reject + walk, or gap reject + one of phase 3


def new_state() -> tuple[np.ndarray, np.ndarray]:
    """Fresh (float, int) state: nothing seen, no bias, idle."""
    F = np.zeros(N_FLOAT)
    F[[STILL_SINCE, QUIET_SINCE, WALK_SINCE, T_WALK_LAST, T_LAST, T_FIRST]] = math.nan
    F[PGU : PGL + 3] = math.nan
    F[FL_PREV] = math.nan
    F[MFL_PREV] = math.nan
    F[MGU : MGU + 3] = math.nan
    F[MGL : MGL + 3] = math.nan
    F[AU0 : T_ACC0 + 1] = math.nan
    F[T_MODE2] = math.nan
    I = np.zeros(N_INT, dtype=np.int64)
    reset_motion(F, I, math.nan)
    return F, I


def reset_motion(F: np.ndarray, I: np.ndarray, t: float) -> None:
    """Back to idle with the reference at the body now (``t``; NaN = unknown)."""
    I[STATE] = IDLE
    for j in range(3):
        F[VU + j] = 0.0
        F[VL + j] = 0.0
    _reset_stats(F)
    for j in range(3):
        F[VAU + j] = 0.0
        F[VAL + j] = 0.0
    F[T_ANCHOR] = t
    F[T_REST] = t
    F[T_START] = t
    F[T_TURN] = t
    F[T_EMIN] = t
    F[E_MIN] = 0.0
    F[E_START] = 0.0
    for j in range(3):
        F[RGU + j] = math.nan
        F[RGL + j] = math.nan
    F[FL_REF] = math.nan


def _reset_stats(F: np.ndarray) -> None:
    F[ST_FMAX] = -math.inf
    F[ST_FMIN] = math.inf
    F[ST_WY] = 0.0
    F[ST_LAT] = math.nan
    F[ST_TW] = math.nan
    F[ST_TRUNK] = math.nan
    F[ST_EMAX] = 0.0


def _stillness(F, I, m, v, nslot, g0, g1, g2, b0, b1, b2, P) -> int:
    """0: moving; 1: steady; 2: steady and within ``quiet_deg_s`` of the bias estimate ``b``."""
    a = P[P_A_STILL]
    if I[nslot] == 0:
        F[m] = g0
        F[m + 1] = g1
        F[m + 2] = g2
    I[nslot] += 1
    d0 = g0 - F[m]
    d1 = g1 - F[m + 1]
    d2 = g2 - F[m + 2]
    F[m] += a * d0
    F[m + 1] += a * d1
    F[m + 2] += a * d2
    F[v] += a * ((1.0 - a) * (d0 * d0 + d1 * d1 + d2 * d2) - F[v])
    m0, m1, m2 = F[m], F[m + 1], F[m + 2]
    if F[v] >= P[P_STILL_STD2] or m0 * m0 + m1 * m1 + m2 * m2 >= P[P_STILL_MAX2]:
        return 0
    e0, e1, e2 = m0 - b0, m1 - b1, m2 - b2
    return 2 if e0 * e0 + e1 * e1 + e2 * e2 < P[P_QUIET2] else 1


def _event(ev_i, ev_code, ev_f, ne, i, code, a, b, c) -> int:
    ev_i[ne] = i
    ev_code[ne] = code
    ev_f[ne, 0] = a
    ev_f[ne, 1] = b
    ev_f[ne, 2] = c
    return ne + 1


def _candidate(F, P, ev_i, ev_code, ev_f, ne, i, t_end) -> int:
    ev_i[ne] = i
    ev_code[ne] = EV_CANDIDATE
    ev_f[ne, 0] = F[T_START]
    ev_f[ne, 1] = t_end
    ev_f[ne, 2] = F[ST_FMAX]
    ev_f[ne, 3] = F[ST_FMIN]
    ev_f[ne, 4] = F[ST_WY]
    ev_f[ne, 5] = F[ST_LAT]
    ev_f[ne, 6] = F[ST_TW]
    ev_f[ne, 7] = F[ST_TRUNK]
    ev_f[ne, 8] = F[ST_EMAX]
    # it began straight after walking (handling gear, not a lift from a stance)
    ev_f[ne, 9] = (
        0.0 if math.isnan(F[T_WALK_LAST]) or F[T_START] - F[T_WALK_LAST] >= P[P_ARM_AFTER_WALK] else 1.0
    )
    # it was measured on the gravity excursion (the gyro bias not learnt yet)
    ev_f[ne, 10] = F[ON_GRAVITY]
    return ne + 1


def _angle_deg(a0, a1, a2, b0, b1, b2) -> float:
    """Angle between two unit vectors, deg (atan2 of cross and dot: exact near 0)."""
    x0 = a1 * b2 - a2 * b1
    x1 = a2 * b0 - a0 * b2
    x2 = a0 * b1 - a1 * b0
    return math.degrees(math.atan2(math.sqrt(x0 * x0 + x1 * x1 + x2 * x2), a0 * b0 + a1 * b1 + a2 * b2))


def _toward(F, r, g0, g1, g2, k) -> None:
    """Reference direction ``F[r:r+3]`` moved toward ``g`` (keeping ``k`` of the way it was), unit length."""
    a0 = k * F[r] + (1.0 - k) * g0
    a1 = k * F[r + 1] + (1.0 - k) * g1
    a2 = k * F[r + 2] + (1.0 - k) * g2
    n = math.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
    F[r] = a0 / n
    F[r + 1] = a1 / n
    F[r + 2] = a2 / n


def _tilt_bias(F, g, b, w0, w1, w2, a0, a1, a2, dt, P) -> None:
    """One sample of the tilt-bias filter of one sensor (body frame): its
    gravity direction ``F[g:g+3]`` turned by the gyro ``w`` (deg/s) less the
    bias ``F[b:b+3]`` and pulled toward the accelerometer ``a`` (rate
    ``P_TILT_KP``); the pull that persists is the bias (``P_TILT_KI``). Only
    the bias across gravity is seen; along it (the spine, standing) it stays."""
    n = math.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
    if n == 0.0:
        return
    a0, a1, a2 = a0 / n, a1 / n, a2 / n
    if math.isnan(F[g]):
        F[g], F[g + 1], F[g + 2] = a0, a1, a2
        return
    g0, g1, g2 = F[g], F[g + 1], F[g + 2]
    # e = a x g: the turn that takes the estimate to the accelerometer (rad)
    e0 = a1 * g2 - a2 * g1
    e1 = a2 * g0 - a0 * g2
    e2 = a0 * g1 - a1 * g0
    # a bias builds a disagreement of at most its size over the pull's time
    # constant; beyond ``P_TILT_CLIP`` (rad) it is linear acceleration (a rep's jolt): clipped
    en = math.sqrt(e0 * e0 + e1 * e1 + e2 * e2)
    if en > P[P_TILT_CLIP]:
        k = P[P_TILT_CLIP] / en
        e0, e1, e2 = e0 * k, e1 * k, e2 * k
    kp, ki = P[P_TILT_KP], P[P_TILT_KI]
    F[b] -= ki * e0 * dt * 57.29577951308232
    F[b + 1] -= ki * e1 * dt * 57.29577951308232
    F[b + 2] -= ki * e2 * dt * 57.29577951308232
    r = 0.017453292519943295
    o0 = (w0 - F[b]) * r + kp * e0
    o1 = (w1 - F[b + 1]) * r + kp * e1
    o2 = (w2 - F[b + 2]) * r + kp * e2
    # dg/dt = g x w (a direction fixed in the world, seen from the turning body)
    h0 = g0 + (g1 * o2 - g2 * o1) * dt
    h1 = g1 + (g2 * o0 - g0 * o2) * dt
    h2 = g2 + (g0 * o1 - g1 * o0) * dt
    m = math.sqrt(h0 * h0 + h1 * h1 + h2 * h2)
    F[g], F[g + 1], F[g + 2] = h0 / m, h1 / m, h2 / m


def _to_sensor(rot, k, v0, v1, v2):
    """A body-frame vector in sensor ``k``'s frame (``rot[k:k+3]``: its body_from_sensor rotation; ``R^T v``)."""
    return (
        rot[k, 0] * v0 + rot[k + 1, 0] * v1 + rot[k + 2, 0] * v2,
        rot[k, 1] * v0 + rot[k + 1, 1] * v1 + rot[k + 2, 1] * v2,
        rot[k, 2] * v0 + rot[k + 1, 2] * v1 + rot[k + 2, 2] * v2,
    )


def _perp_gap(F, rot, k, b, m, g, tilt_sensor) -> float:
    """How far (deg/s) the still-learnt bias ``F[b:b+3]`` (body frame) is from
    the tilt filter's bias ``F[m:m+3]`` across that filter's gravity
    ``F[g:g+3]`` (the part the accelerometer sees; along gravity it sees none).
    ``tilt_sensor``: the filter runs in sensor ``k``'s frame (rules 4)."""
    b0, b1, b2 = F[b], F[b + 1], F[b + 2]
    if tilt_sensor:
        b0, b1, b2 = _to_sensor(rot, k, b0, b1, b2)
    d0, d1, d2 = b0 - F[m], b1 - F[m + 1], b2 - F[m + 2]
    g0, g1, g2 = F[g], F[g + 1], F[g + 2]
    a = d0 * g0 + d1 * g1 + d2 * g2
    d0, d1, d2 = d0 - a * g0, d1 - a * g1, d2 - a * g2
    return math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)


def _bias_trusted(F, I, P, rot, has_gl, tilt_on, tilt_sensor, tilt_learnt) -> bool:
    """The residual bias learnt on still stretches may be used for the
    excursion (``GYRO_MODE`` 1). Without the check (``P_BIAS_TOL`` 0): once
    it has ``warmup_s`` of data. With it (rules 6): the stillness test cannot
    tell a steady slow turn (the slow start of a curl) from a bias, so the
    estimate is provisional until a still stretch whose accelerometers did
    not turn confirms it (``BIAS_OK``), and once the tilt filter, which the
    accelerometer checks in motion too, has learnt, only while the two agree
    across gravity within ``P_BIAS_TOL``. (No tilt filter, ``tilt_on`` 0: no check.)"""
    if I[BIAS_N] < P[P_WARMUP_N]:
        return False
    tol = P[P_BIAS_TOL]
    if tol <= 0.0 or not tilt_on:
        return True
    if not tilt_learnt:
        return I[BIAS_OK] != 0
    if math.isnan(F[MGU]) or (has_gl and math.isnan(F[MGL])):
        return False
    if _perp_gap(F, rot, 0, BU, MBU, MGU, tilt_sensor) > tol:
        return False
    return not has_gl or _perp_gap(F, rot, 3, BL, MBL, MGL, tilt_sensor) <= tol


def _follow(F, r, a0, a1, a2, a) -> None:
    """Direction ``F[r:r+3]`` low-passed toward the accelerometer ``a`` (coefficient ``a``; NaN: start there)."""
    n = math.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
    if n == 0.0:
        return
    if math.isnan(F[r]):
        F[r], F[r + 1], F[r + 2] = a0 / n, a1 / n, a2 / n
    else:
        _toward(F, r, a0 / n, a1 / n, a2 / n, 1.0 - a)


def _settled(I, P) -> bool:
    """The accelerometers' low-pass has had ``still_tau_s`` of samples (a running mean until then)."""
    return I[SU_N] * P[P_A_STILL] >= 1.0


def _turned_deg(F, r0, r) -> float:
    """The angle (deg) between directions ``F[r0:r0+3]`` and ``F[r:r+3]`` (inf: either unknown)."""
    if math.isnan(F[r0]) or math.isnan(F[r]):
        return math.inf
    return _angle_deg(F[r0], F[r0 + 1], F[r0 + 2], F[r], F[r + 1], F[r + 2])


def _sagittal(rot, k, g0, g1, g2) -> float:
    """Sagittal inclination (deg, ``atan2(uz, ux)`` in the body frame) of sensor ``k``'s gravity ``g`` (its own frame)."""
    x = rot[k, 0] * g0 + rot[k, 1] * g1 + rot[k, 2] * g2
    z = rot[k + 2, 0] * g0 + rot[k + 2, 1] * g1 + rot[k + 2, 2] * g2
    return math.degrees(math.atan2(z, x))


def _tilt_flexion(F, rot, has_gl) -> float:
    """The lumbar angle (upper - lower sagittal; one sensor: its own) on the tilt filters' gravity."""
    f = _sagittal(rot, 0, F[MGU], F[MGU + 1], F[MGU + 2])
    if has_gl:
        f -= _sagittal(rot, 3, F[MGL], F[MGL + 1], F[MGL + 2])
    return f


def advance_python(
    t,
    fl,
    gu,
    gl,
    trunk,
    lat,
    tw,
    has,
    F,
    I,
    P,
    state_mid,
    state_out,
    walking_out,
    stance_out,
    ev_i,
    ev_code,
    ev_f,
    ug,
    lg,
    ua,
    la,
    rot,
) -> int:
    """Run the samples of one block; returns the number of events logged.

    Args:
        t, fl: (n,) device time (s) and flexion (deg); gu, gl: (n, 3) body-frame
            gyros, deg/s (gl: any (n, 3) array when ``has[0]`` is 0);
            trunk, lat, tw: (n,) or any (n,) array when ``has[1..3]`` is 0.
        F, I, P: the float state, int state and parameters (updated in place).
        state_mid: out, the state at the bookkeeping point of each sample;
        state_out, walking_out, stance_out: out, after each sample (stance: a
            rep is in progress that did not begin right after walking).
        ev_i, ev_code, ev_f: out, the event log (sample, code, fields).
        ug, lg: (n, 3) unit gravity directions of the upper and lower sensors
            (each sensor's own frame), used when ``has[4]`` is set (gravity mode): the
            excursion is then the tilt away from the reference posture's
            gravity and "quiet" a low tilt rate -- no gyro bias enters, so
            reps are counted from the first sample, with no still start. Once
            the residual bias is learnt (``warmup_s`` of stillness), at the
            next reference posture, the excursion is the integrated gyro again
            (cleaner for the trunk's small sway in curls and presses).
        ua, la: (n, 3) accelerometers of the upper and lower sensors, body
            frame, used when ``has[5]`` is set (rules 3): a small Mahony
            filter per sensor learns the gyro bias across gravity from the
            accelerometer's disagreement with the integrated gyro, in motion
            too (``_tilt_bias``); once it has had ``P_TILT_LEARNT_S`` of data,
            no still moment having taught the whole bias, the excursion is the
            integrated gyro about the axes across the spine (``GYRO_MODE`` 2),
            so a small lift (a curl, a press) is measured on the gyro from its
            first seconds.
        rot: (6, 3) the upper (rows 0-2) and lower (rows 3-5) sensors'
            body_from_sensor rotations, used when ``has[6]`` is set as well
            (rules 4): the tilt filter then runs in each sensor's own frame
            (``R^T`` of the body-frame gyro and accelerometer), so a new
            neutral or heading neither restarts it nor turns its bias, and in
            gravity mode the excursion, and its lumbar angle, are measured on
            its gravity rather than the fusion's ``ug``/``lg``: the fusion
            learns its bias only at rest and trusts its gyro for 3 s, so before
            a still moment its gravity drifts by about bias x 3 s, more than a
            clean curl moves the trunk; the tilt filter's drift is the part of
            the bias it has not learnt yet, over its 1 s pull.
    """
    n = t.shape[0]
    has_gl = has[0] != 0
    has_trunk = has[1] != 0
    has_lat = has[2] != 0
    has_tw = has[3] != 0
    grav_allowed = has[4] != 0
    tilt_on = has[5] != 0
    tilt_sensor = tilt_on and has[6] != 0
    ne = 0
    for i in range(n):
        ti = t[i]
        t_last = F[T_LAST]
        # a hole in the stream resets the motion
        if not math.isnan(t_last) and ti - t_last > P[P_MAX_GAP]:
            if I[STATE] != IDLE:
                ne = _event(ev_i, ev_code, ev_f, ne, i, EV_GAP_REJECT, F[T_START], t_last, F[ST_EMAX])
            reset_motion(F, I, ti)
        if math.isnan(t_last):
            dt = 1.0 / P[P_RATE]
        else:
            dt = min(ti - t_last, P[P_MAX_GAP])
        if math.isnan(F[T_FIRST]):
            F[T_FIRST] = ti
        F[T_LAST] = ti

        # residual gyro bias: learnt while still, then removed
        r0, r1, r2 = gu[i, 0], gu[i, 1], gu[i, 2]
        c0, c1, c2 = r0 - F[BU], r1 - F[BU + 1], r2 - F[BU + 2]
        mag = math.sqrt(c0 * c0 + c1 * c1 + c2 * c2)
        l0 = l1 = l2 = cl0 = cl1 = cl2 = 0.0
        if has_gl:
            l0, l1, l2 = gl[i, 0], gl[i, 1], gl[i, 2]
            cl0, cl1, cl2 = l0 - F[BL], l1 - F[BL + 1], l2 - F[BL + 2]
            mag = max(mag, math.sqrt(cl0 * cl0 + cl1 * cl1 + cl2 * cl2))
        f_pre = math.nan  # (rules 4) the tilt filters' lumbar angle before this sample, in the new body frame
        if tilt_sensor:
            # each sensor's own frame: the body frame turning (a new neutral or heading) changes nothing there
            if I[REFRAME] != 0 and not math.isnan(F[MGU]) and (not has_gl or not math.isnan(F[MGL])):
                f_pre = _tilt_flexion(F, rot, has_gl)
            s0, s1, s2 = _to_sensor(rot, 0, r0, r1, r2)
            a0, a1, a2 = _to_sensor(rot, 0, ua[i, 0], ua[i, 1], ua[i, 2])
            _tilt_bias(F, MGU, MBU, s0, s1, s2, a0, a1, a2, dt, P)
            if has_gl:
                s0, s1, s2 = _to_sensor(rot, 3, l0, l1, l2)
                a0, a1, a2 = _to_sensor(rot, 3, la[i, 0], la[i, 1], la[i, 2])
                _tilt_bias(F, MGL, MBL, s0, s1, s2, a0, a1, a2, dt, P)
        elif tilt_on:
            # the body frame turned (a new neutral or heading): start again from the accelerometer
            if I[REFRAME] != 0:
                F[MGU] = math.nan
                F[MGL] = math.nan
            _tilt_bias(F, MGU, MBU, r0, r1, r2, ua[i, 0], ua[i, 1], ua[i, 2], dt, P)
            if has_gl:
                _tilt_bias(F, MGL, MBL, l0, l1, l2, la[i, 0], la[i, 1], la[i, 2], dt, P)
        check = tilt_on and P[P_BIAS_TOL] > 0.0
        if check:  # (rules 6) the accelerometers' directions, each sensor's frame, low-passed
            a0, a1, a2 = ua[i, 0], ua[i, 1], ua[i, 2]
            if tilt_sensor:
                a0, a1, a2 = _to_sensor(rot, 0, a0, a1, a2)
            k = max(1.0 / (I[SU_N] + 1.0), P[P_A_STILL])  # (a running mean at first, as the bias)
            _follow(F, ALU, a0, a1, a2, k)
            if has_gl:
                a0, a1, a2 = la[i, 0], la[i, 1], la[i, 2]
                if tilt_sensor:
                    a0, a1, a2 = _to_sensor(rot, 3, a0, a1, a2)
                _follow(F, ALL, a0, a1, a2, k)
        tilt = I[GYRO_MODE] == 2
        if tilt:  # across the spine: the tilt bias (along it none is known yet)
            if tilt_sensor:  # (the bias in the body frame: R b)
                b0, b1, b2 = F[MBU], F[MBU + 1], F[MBU + 2]
                c1 = r1 - (rot[1, 0] * b0 + rot[1, 1] * b1 + rot[1, 2] * b2)
                c2 = r2 - (rot[2, 0] * b0 + rot[2, 1] * b1 + rot[2, 2] * b2)
                if has_gl:
                    b0, b1, b2 = F[MBL], F[MBL + 1], F[MBL + 2]
                    cl1 = l1 - (rot[4, 0] * b0 + rot[4, 1] * b1 + rot[4, 2] * b2)
                    cl2 = l2 - (rot[5, 0] * b0 + rot[5, 1] * b1 + rot[5, 2] * b2)
            else:
                c1, c2 = r1 - F[MBU + 1], r2 - F[MBU + 2]
                if has_gl:
                    cl1, cl2 = l1 - F[MBL + 1], l2 - F[MBL + 2]
        q0 = q1 = q2 = p0 = p1 = p2 = 0.0
        grav = grav_allowed and I[GYRO_MODE] == 0
        F[ON_GRAVITY] = 1.0 if grav else 0.0
        if grav_allowed:  # quiet: the tilt rate (deg/s) of the gravity directions, bias-free,
            # low-passed first (P_A_TILT: a sample-to-sample difference is the fusion's jitter)
            q0, q1, q2 = ug[i, 0], ug[i, 1], ug[i, 2]
            a = P[P_A_TILT]
            gmag = mag
            mag = 0.0
            if math.isnan(F[PGU]):
                F[PGU], F[PGU + 1], F[PGU + 2] = q0, q1, q2
            else:
                o0, o1, o2 = F[PGU], F[PGU + 1], F[PGU + 2]
                _toward(F, PGU, q0, q1, q2, 1.0 - a)
                mag = _angle_deg(o0, o1, o2, F[PGU], F[PGU + 1], F[PGU + 2]) / dt
            if has_gl:
                p0, p1, p2 = lg[i, 0], lg[i, 1], lg[i, 2]
                if math.isnan(F[PGL]):
                    F[PGL], F[PGL + 1], F[PGL + 2] = p0, p1, p2
                else:
                    o0, o1, o2 = F[PGL], F[PGL + 1], F[PGL + 2]
                    _toward(F, PGL, p0, p1, p2, 1.0 - a)
                    mag = max(mag, _angle_deg(o0, o1, o2, F[PGL], F[PGL + 1], F[PGL + 2]) / dt)
            if I[GYRO_MODE] == 1:
                mag = gmag  # gyro mode: quiet from the bias-corrected gyro again
        F[WQ] += P[P_A_QUIET] * (mag - F[WQ])
        quiet = F[WQ] < P[P_QUIET]
        still = _stillness(F, I, SU_M, SU_VAR, SU_N, r0, r1, r2, F[BU], F[BU + 1], F[BU + 2], P)
        if has_gl:
            still = min(
                still, _stillness(F, I, SL_M, SL_VAR, SL_N, l0, l1, l2, F[BL], F[BL + 1], F[BL + 2], P)
            )
        if still:
            if math.isnan(F[STILL_SINCE]):
                F[STILL_SINCE] = ti
                F[T_ACC0] = math.nan
            if check and math.isnan(F[T_ACC0]) and _settled(I, P):
                F[T_ACC0] = (
                    ti  # the accelerometers' directions as the stretch began (or their low-pass settled)
                )
                for j in range(6):
                    F[AU0 + j] = F[ALU + j]  # (and AL0 from ALL)
            steady_s = ti - F[STILL_SINCE]
            near = still == 2 and steady_s >= P[P_STILL_MIN]
            # (gravity mode: the state is no guide yet -- a small lift's excursion is mostly sway)
            if (near and (I[STATE] == IDLE or grav)) or steady_s >= P[P_STILL_LONG]:
                I[BIAS_N] += 1
                a = max(1.0 / I[BIAS_N], P[P_A_BIAS] if near else P[P_A_BIAS_FAST])
                F[BU] += a * (r0 - F[BU])
                F[BU + 1] += a * (r1 - F[BU + 1])
                F[BU + 2] += a * (r2 - F[BU + 2])
                if has_gl:
                    F[BL] += a * (l0 - F[BL])
                    F[BL + 1] += a * (l1 - F[BL + 1])
                    F[BL + 2] += a * (l2 - F[BL + 2])
                # (rules 6) the stretch confirms the bias when its accelerometers turned less
                # than the tolerance allows over it: the gyro's steady mean was bias, not a turn
                if near and check and I[BIAS_OK] == 0:
                    # (the low-pass lags a turn by still_tau_s: that much of the stretch shows none of it)
                    span = ti - F[T_ACC0]
                    allowed = P[P_BIAS_TOL] * (span - P[P_STILL_TAU])
                    if (
                        span >= P[P_STILL_MIN]
                        and _turned_deg(F, AU0, ALU) <= allowed
                        and (not has_gl or _turned_deg(F, AL0, ALL) <= allowed)
                    ):
                        I[BIAS_OK] = 1
                        # what was learnt before (a turn taken for bias) gives way to this stretch's mean
                        e0, e1, e2 = F[BU] - F[SU_M], F[BU + 1] - F[SU_M + 1], F[BU + 2] - F[SU_M + 2]
                        far = e0 * e0 + e1 * e1 + e2 * e2 > P[P_BIAS_TOL] ** 2
                        if has_gl:
                            e0, e1, e2 = F[BL] - F[SL_M], F[BL + 1] - F[SL_M + 1], F[BL + 2] - F[SL_M + 2]
                            far = far or e0 * e0 + e1 * e1 + e2 * e2 > P[P_BIAS_TOL] ** 2
                        if far:
                            for j in range(3):
                                F[BU + j] = F[SU_M + j]
                                if has_gl:
                                    F[BL + j] = F[SL_M + j]
        else:
            F[STILL_SINCE] = math.nan

        # walking: RMS of off-sagittal rates (X up the spine, Z posterior)
        if has_gl:
            w0, w2 = cl0, cl2
        else:
            w0, w2 = c0, c2
        F[WW] += P[P_A_WALK] * (w0 * w0 + w2 * w2 - F[WW])
        rms = math.sqrt(F[WW])
        if rms > P[P_WALK]:
            if math.isnan(F[WALK_SINCE]):
                F[WALK_SINCE] = ti
            if I[WALKING] == 0 and ti - F[WALK_SINCE] >= P[P_WALK_MIN]:
                I[WALKING] = 1
                if I[STATE] != IDLE:
                    ne = _event(ev_i, ev_code, ev_f, ne, i, EV_WALK_REJECT, F[T_START], ti, F[ST_EMAX])
                ne = _event(ev_i, ev_code, ev_f, ne, i, EV_WALK, F[WALK_SINCE], ti, 0.0)
                reset_motion(F, I, ti)
        else:
            F[WALK_SINCE] = math.nan
            if I[WALKING] != 0 and rms < P[P_WALK_RELEASE]:
                I[WALKING] = 0
        state_mid[i] = I[STATE]  # (bookkeeping happens here)

        if I[WALKING] != 0:
            F[T_WALK_LAST] = ti
            reset_motion(F, I, ti)
            F[EXCURSION] = 0.0
            state_out[i] = IDLE
            walking_out[i] = True
            stance_out[i] = False
            continue

        if tilt_on:
            F[T_TILT] += dt
        # excursion
        if quiet:
            if math.isnan(F[QUIET_SINCE]):
                F[QUIET_SINCE] = ti
        else:
            F[QUIET_SINCE] = math.nan
        f = fl[i]
        # the lumbar angle the gravity excursion measures: the given one, or (rules 4) the tilt filters'
        fg = f
        mahony = tilt_sensor and not math.isnan(F[MGU]) and (not has_gl or not math.isnan(F[MGL]))
        if mahony:
            fg = _tilt_flexion(F, rot, has_gl)
        if grav:
            if mahony:  # the tilt filters' gravity: its bias across gravity is learnt as it goes
                q0, q1, q2 = F[MGU], F[MGU + 1], F[MGU + 2]
                p0, p1, p2 = (F[MGL], F[MGL + 1], F[MGL + 2]) if has_gl else (0.0, 0.0, 0.0)
            else:
                q0, q1, q2 = ug[i, 0], ug[i, 1], ug[i, 2]
                p0, p1, p2 = (lg[i, 0], lg[i, 1], lg[i, 2]) if has_gl else (0.0, 0.0, 0.0)
            if math.isnan(F[RGU]):
                F[RGU], F[RGU + 1], F[RGU + 2] = q0, q1, q2
                F[RGL], F[RGL + 1], F[RGL + 2] = p0, p1, p2
            if I[REFRAME] != 0 and not math.isnan(F[FL_REF]):
                # the angle was re-expressed, the body did not move
                if tilt_sensor:
                    if not math.isnan(f_pre) and not math.isnan(F[MFL_PREV]):
                        F[FL_REF] += f_pre - F[MFL_PREV]
                elif not math.isnan(F[FL_PREV]):
                    F[FL_REF] += f - F[FL_PREV]
            if math.isnan(F[FL_REF]):
                F[FL_REF] = fg
        I[REFRAME] = 0
        F[FL_PREV] = f
        F[MFL_PREV] = fg if mahony else math.nan
        # (rules 8) measured on the gyro with its bias known, the body is at rest where its
        # excursion moved less than P_REST_AWAY (a quarter of enter_deg) over rest_quiet_s, not
        # wherever it turns slower than quiet_deg_s: a small, slow curl does so all along, and
        # the reference followed it. Not until the tilt filter has had as long without walking
        # as it needs to learn: what it learnt from a walk's accelerations is off (gait-l5 6-2:
        # 0.9 deg/s), and the body settles into its stance after a walk as slowly as a small
        # curl (6-2: 0.3-0.6 deg in 2.5 s)
        away = (
            P[P_REST_AWAY] > 0.0
            and I[GYRO_MODE] != 0
            and (math.isnan(F[T_WALK_LAST]) or ti - F[T_WALK_LAST] >= P[P_TILT_LEARNT_S])
        )
        if away:
            moved = math.isnan(F[T_ANCHOR])
            if not moved:
                a0, a1, a2 = F[VU] - F[VAU], F[VU + 1] - F[VAU + 1], F[VU + 2] - F[VAU + 2]
                b0, b1, b2 = F[VL] - F[VAL], F[VL + 1] - F[VAL + 1], F[VL + 2] - F[VAL + 2]
                d = max(
                    a0 * a0 + a1 * a1 + a2 * a2,
                    b0 * b0 + b1 * b1 + b2 * b2,
                    (a0 - b0) ** 2 + (a1 - b1) ** 2 + (a2 - b2) ** 2,
                )
                moved = d >= P[P_REST_AWAY] * P[P_REST_AWAY]
            if moved:
                for j in range(3):
                    F[VAU + j] = F[VU + j]
                    F[VAL + j] = F[VL + j]
                F[T_ANCHOR] = ti
        if I[STATE] == IDLE:
            # at rest: the reference follows the body (and, in gravity mode, once the bias
            # is known -- it is learnt only while the gyro is steady -- the gyro takes over here)
            tilt_learnt = tilt_on and F[T_TILT] >= P[P_TILT_LEARNT_S]
            trusted = _bias_trusted(F, I, P, rot, has_gl, tilt_on, tilt_sensor, tilt_learnt)
            rest = quiet and ti - F[QUIET_SINCE] >= P[P_REST_QUIET]
            if away:
                rest = rest and ti - F[T_ANCHOR] >= P[P_REST_QUIET]
            if rest or (grav and (trusted or tilt_learnt)):
                for j in range(3):
                    F[VU + j] = 0.0
                    F[VL + j] = 0.0
                if grav:
                    F[RGU], F[RGU + 1], F[RGU + 2] = q0, q1, q2
                    F[RGL], F[RGL + 1], F[RGL + 2] = p0, p1, p2
                    F[FL_REF] = fg
                    if trusted:
                        I[GYRO_MODE] = 1  # the bias is known: from this reference on, the gyro
                    elif tilt_learnt:
                        I[GYRO_MODE] = 2  # the bias across the spine is: the gyro about those axes
                        if math.isnan(F[T_MODE2]):
                            F[T_MODE2] = ti
                            for j in range(3):
                                F[MB2U + j] = F[MBU + j]
                                F[MB2L + j] = F[MBL + j]
                elif tilt and trusted:
                    I[GYRO_MODE] = 1  # the whole bias is known now
                elif I[GYRO_MODE] == 1 and tilt_learnt and not trusted:
                    I[GYRO_MODE] = 2  # (rules 6) the still bias left the tilt filter's: back to its bias
                _reset_stats(F)
                F[T_REST] = ti
                F[E_START] = 0.0
                for j in range(3):
                    F[VAU + j] = 0.0
                    F[VAL + j] = 0.0
                F[T_ANCHOR] = ti
            else:
                # (rules 9) measured on the still bias, the check against the tilt filter's runs
                # on every idle sample, not only at rest: with rules 8 a still bias off by more
                # than the tolerance moves the excursion by itself, so the rest that would drop
                # it never comes (seed 35: 0.5 deg/s off per sensor, the body still)
                if P[P_BIAS_IDLE] > 0.0 and away and I[GYRO_MODE] == 1 and tilt_learnt and not trusted:
                    I[GYRO_MODE] = 2
                k = P[P_LEAK]
                for j in range(3):
                    F[VU + j] *= k
                    F[VL + j] *= k
                if grav:
                    _toward(F, RGU, q0, q1, q2, k)
                    if has_gl:
                        _toward(F, RGL, p0, p1, p2, k)
                    F[FL_REF] = k * F[FL_REF] + (1.0 - k) * fg
        if not tilt:
            F[VU] += c0 * dt
        F[VU + 1] += c1 * dt
        F[VU + 2] += c2 * dt
        u0, u1, u2 = F[VU], F[VU + 1], F[VU + 2]
        e = math.sqrt(u0 * u0 + u1 * u1 + u2 * u2)
        if has_gl:
            if not tilt:
                F[VL] += cl0 * dt
            F[VL + 1] += cl1 * dt
            F[VL + 2] += cl2 * dt
            v0, v1, v2 = F[VL], F[VL + 1], F[VL + 2]
            d0, d1, d2 = u0 - v0, u1 - v1, u2 - v2
            e = max(e, math.sqrt(v0 * v0 + v1 * v1 + v2 * v2), math.sqrt(d0 * d0 + d1 * d1 + d2 * d2))
        if grav:  # each sensor's tilt away from the reference posture (sensor frames: a new
            # neutral changes nothing here), and the lumbar angle's change (an arch moves it
            # more than either sensor tilts)
            e = max(_angle_deg(F[RGU], F[RGU + 1], F[RGU + 2], q0, q1, q2), abs(fg - F[FL_REF]))
            if has_gl:
                e = max(e, _angle_deg(F[RGL], F[RGL + 1], F[RGL + 2], p0, p1, p2))
        F[EXCURSION] = e

        # running peaks since the motion began
        if f > F[ST_FMAX]:
            F[ST_FMAX] = f
        if f < F[ST_FMIN]:
            F[ST_FMIN] = f
        if abs(c1) > F[ST_WY]:
            F[ST_WY] = abs(c1)
        if has_lat:
            x = lat[i]
            if math.isnan(F[ST_LAT]) or abs(x) > abs(F[ST_LAT]):
                F[ST_LAT] = x
        if has_tw:
            x = tw[i]
            if math.isnan(F[ST_TW]) or abs(x) > abs(F[ST_TW]):
                F[ST_TW] = x
        if has_trunk:
            x = trunk[i]
            if math.isnan(F[ST_TRUNK]) or x > F[ST_TRUNK]:
                F[ST_TRUNK] = x
        if e > F[ST_EMAX]:
            F[ST_EMAX] = e

        enter = P[P_ENTER]
        st = I[STATE]
        if st == IDLE:
            if e < F[E_START]:
                F[E_START] = e  # standing up out of a tilted top: the next rep starts from lower down
            if e < F[E_START] + 0.25 * enter:
                F[T_REST] = ti
            ready = (
                grav or tilt or I[BIAS_N] >= P[P_WARMUP_N] or ti - F[T_FIRST] >= P[P_WARMUP_TIMEOUT]
            )  # gravity mode needs no bias
            if e > enter + F[E_START] and ready:
                I[STATE] = REP
                F[T_START] = ti if math.isnan(F[T_REST]) else F[T_REST]
        elif st == REP:
            if ti - F[T_START] > P[P_MAX_REP]:
                ne = _event(ev_i, ev_code, ev_f, ne, i, EV_TOO_LONG, F[T_START], ti, F[ST_EMAX])
                reset_motion(F, I, ti)
            elif e < F[E_START] + P[P_EXIT_FRACTION] * (F[ST_EMAX] - F[E_START]):
                I[STATE] = SETTLE
                F[E_MIN] = e
                F[T_EMIN] = ti
                F[T_TURN] = ti
                if P[P_EXIT_RELATIVE] != 0.0 and quiet:
                    F[QUIET_SINCE] = (
                        ti  # the rest that ends it comes after the turn (a pause at the peak is no rest)
                    )
            elif quiet and ti - F[QUIET_SINCE] > P[P_STUCK]:
                ne = _event(ev_i, ev_code, ev_f, ne, i, EV_STUCK, F[T_START], ti, F[ST_EMAX])
                reset_motion(F, I, ti)
        else:  # settling back to the reference
            if quiet and ti - F[QUIET_SINCE] >= P[P_REST_QUIET]:
                ne = _candidate(F, P, ev_i, ev_code, ev_f, ne, i, F[QUIET_SINCE])
                reset_motion(F, I, ti)
            elif ti - F[T_TURN] > P[P_SETTLE]:
                # relative mode: it came back as far as it would (settle_s since its last new low): it ended there
                ne = _candidate(
                    F, P, ev_i, ev_code, ev_f, ne, i, F[T_EMIN] if P[P_EXIT_RELATIVE] != 0.0 else ti
                )
                reset_motion(F, I, ti)
            elif e > F[E_MIN] + max(0.5 * enter, 0.2 * (F[ST_EMAX] - F[E_START])):
                # rising again without a pause: the next rep starts here
                t_end = F[T_EMIN]
                ne = _candidate(F, P, ev_i, ev_code, ev_f, ne, i, t_end)
                I[STATE] = IDLE
                _reset_stats(F)
                F[T_REST] = t_end
                F[T_START] = t_end
                if P[P_EXIT_RELATIVE] != 0.0:
                    # the next rep starts from this valley: a top still tilted
                    # (pelvis and trunk between reps back to back) is its zero
                    F[E_START] = F[E_MIN]
            elif e < F[E_MIN]:
                F[E_MIN] = e
                F[T_EMIN] = ti
                if P[P_EXIT_RELATIVE] != 0.0:
                    F[T_TURN] = ti  # still coming back: settle_s counts from the lowest point
        state_out[i] = I[STATE]
        walking_out[i] = False
        stance_out[i] = I[STATE] != IDLE and (
            math.isnan(F[T_WALK_LAST]) or F[T_START] - F[T_WALK_LAST] >= P[P_ARM_AFTER_WALK]
        )
    return ne


def _compile():
    """``advance_python`` compiled by numba, its helpers compiled with it (a
    copy of the function whose globals name the compiled helpers); the plain
    function when numba is not installed."""
    try:
        import numba
    except ImportError:  # pragma: no cover - exercised when numba is absent
        return advance_python
    import types

    jit = numba.njit(cache=True, nogil=True)
    g = dict(globals())
    for name in (
        "reset_motion",
        "_reset_stats",
        "_stillness",
        "_event",
        "_candidate",
        "_angle_deg",
        "_toward",
        "_tilt_bias",
        "_to_sensor",
        "_sagittal",
        "_tilt_flexion",
        "_perp_gap",
        "_bias_trusted",
        "_follow",
        "_turned_deg",
        "_settled",
    ):
        g[name] = jit(types.FunctionType(globals()[name].__code__, g, name))
    return jit(types.FunctionType(advance_python.__code__, g, "advance"))


_impl = None


def advance(*args) -> int:
    """:func:`advance_python`, compiled when numba is installed (compiled, or
    loaded from numba's cache, at the first call: :func:`warm_up`)."""
    global _impl
    if _impl is None:
        _impl = _compile()
    return _impl(*args)


def compiled() -> bool:
    """numba is installed: :func:`advance` runs compiled."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def warm_up() -> None:
    """Compile (or load from the cache) now, on one sample, so the first real
    block does not wait for it (~0.5 s; a live session calls this before the
    link comes up)."""
    if _impl is not None:
        return
    F, I = new_state()
    P = np.zeros(N_PARAM)
    P[P_RATE] = 100.0
    one = np.zeros(1)
    three = np.zeros((1, 3))
    small = np.zeros(1, dtype=np.int8)
    flag = np.zeros(1, dtype=np.bool_)
    cap = MAX_EVENTS_PER_SAMPLE + 1
    advance(one, one, three, three, one, one, one, np.zeros(7, dtype=np.int64), F, I, P, small, small.copy(), flag, flag.copy(),
            np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64), np.zeros((cap, N_EVENT_FIELDS)), three, three, three, three,
            np.zeros((6, 3)))  # fmt: skip
