"""The fusion core's filter, one sample at a time: the per-sample form of
:mod:`spinemon.core.fusion` (the chunked numpy path there is the other form).

:func:`step_python` is plain Python on flat sequences (lists, or numpy arrays
under numba): the state is one float vector (layout ``S_*`` below), the
coefficients another (``C_*``). Run as plain Python on lists it is the
streaming path for short blocks (8-sample frames) when numba is not
installed; :func:`step` runs it compiled by numba when numba is installed
(the optional extra ``fast``), and then :mod:`spinemon.core.fusion` sends every
block, long or short, through it. Either way the arithmetic is the same, one
sample after another, so any block split gives the same result.
"""

from __future__ import annotations

import math
from typing import Any

# state vector
S_Q = 0  # quaternion w, x, y, z (4)
S_ZI = 4  # low-pass state z0 x,y,z then z1 x,y,z (6)
S_LP = 10  # low-pass output latched at the last chunk end (3)
S_U = 13  # last gravity direction (3)
S_MS = 16  # low-passed squared deviation of |a| from g
S_W = 17  # trust weight latched at the last chunk end
S_RUN = 18  # consecutive rest candidates
S_BIAS = 19  # live bias estimate (3)
S_HELD = 22  # bias used until the next chunk end (3)
S_PART = 25  # rest gyro sums x, y, z and their count in the open chunk (4)
S_COUNT = 29  # rest samples that fed the bias estimate
S_PHASE = 30  # position of the next sample in its chunk, 0..L-1
N_STATE = 31

# coefficient vector
C_G = 0
C_REJ_K = 1
C_REJ2 = 2
C_TH_GYR2 = 3
C_TH_ACC2 = 4
C_REST_MIN_N = 5
C_HALF_DT = 6
C_BIAS_KEEP = 7  # 1 - bias_alpha
C_BIAS_MEAN_N = 8
C_B0 = 9
C_B1 = 10
C_B2 = 11
C_A1 = 12
C_A2 = 13
C_CHUNK = 14  # samples per chunk (L)
C_TAYLOR_MAX = 15
N_COEF = 16


def step_python(acc, gyr, co, st, out_u, out_rest, out_w, out_bias, flags):
    """Advance the filter over ``len(acc) // 3`` samples: ``acc``, ``gyr``
    flat x, y, z triples (m/s^2, rad/s); ``co`` the coefficients, ``st`` the
    state (updated in place); writes the gravity direction (flat triples),
    rest flag, trust weight and bias (flat triples) of each sample to the
    ``out_*`` sequences (only the gravity direction when ``flags`` is False:
    the others are then not touched and may be empty). The quaternion is renormalised at chunk ends (fixed
    stream positions, so any block split gives the same numbers)."""
    n = len(acc) // 3
    g_ = co[C_G]
    rej_k = co[C_REJ_K]
    rej_keep = 1.0 - rej_k
    rej2 = co[C_REJ2]
    th_g = co[C_TH_GYR2]
    th_a = co[C_TH_ACC2]
    min_n = co[C_REST_MIN_N]
    hdt = co[C_HALF_DT]
    hd2 = hdt * hdt
    keep = co[C_BIAS_KEEP]
    mean_n = co[C_BIAS_MEAN_N]
    b0 = co[C_B0]
    b1 = co[C_B1]
    b2 = co[C_B2]
    a1 = co[C_A1]
    a2 = co[C_A2]
    last_in_chunk = co[C_CHUNK] - 1.0
    taylor_max = co[C_TAYLOR_MAX]
    qw, qx, qy, qz = st[S_Q], st[S_Q + 1], st[S_Q + 2], st[S_Q + 3]
    z0x, z0y, z0z = st[S_ZI], st[S_ZI + 1], st[S_ZI + 2]
    z1x, z1y, z1z = st[S_ZI + 3], st[S_ZI + 4], st[S_ZI + 5]
    lx, ly, lz = st[S_LP], st[S_LP + 1], st[S_LP + 2]
    ux, uy, uz = st[S_U], st[S_U + 1], st[S_U + 2]
    ms = st[S_MS]
    w = st[S_W]
    run = st[S_RUN]
    bx, by, bz = st[S_BIAS], st[S_BIAS + 1], st[S_BIAS + 2]
    hbx, hby, hbz = st[S_HELD], st[S_HELD + 1], st[S_HELD + 2]
    sx, sy, sz, nr = st[S_PART], st[S_PART + 1], st[S_PART + 2], st[S_PART + 3]
    count = st[S_COUNT]
    phase = st[S_PHASE]
    sqrt = math.sqrt
    for i in range(n):
        j = 3 * i
        ax, ay, az = acc[j], acc[j + 1], acc[j + 2]
        gx, gy, gz = gyr[j], gyr[j + 1], gyr[j + 2]
        dev = sqrt(ax * ax + ay * ay + az * az) - g_
        dev2 = dev * dev
        ms = rej_k * dev2 + rej_keep * ms
        if gx * gx + gy * gy + gz * gz < th_g and dev2 < th_a:
            run += 1.0
        else:
            run = 0.0
        rest = run >= min_n
        if flags:
            out_rest[i] = rest
            out_w[i] = w
            out_bias[j] = hbx
            out_bias[j + 1] = hby
            out_bias[j + 2] = hbz
        ox, oy, oz = gx - hbx, gy - hby, gz - hbz
        if rest:
            sx += gx
            sy += gy
            sz += gz
            nr += 1.0
        # rotation over one sample
        h2 = (ox * ox + oy * oy + oz * oz) * hd2
        if h2 > taylor_max:
            t = sqrt(h2)
            c = math.cos(t)
            s = math.sin(t) / t * hdt
        else:
            c = 1.0 + h2 * (-0.5 + h2 * (1.0 / 24.0 + h2 * (-1.0 / 720.0 + h2 * (1.0 / 40320.0))))
            s = (
                1.0 + h2 * (-1.0 / 6.0 + h2 * (1.0 / 120.0 + h2 * (-1.0 / 5040.0 + h2 * (1.0 / 362880.0))))
            ) * hdt
        dx, dy, dz = s * ox, s * oy, s * oz
        qw, qx, qy, qz = (
            qw * c - qx * dx - qy * dy - qz * dz,
            qw * dx + qx * c + qy * dz - qz * dy,
            qw * dy - qx * dz + qy * c + qz * dx,
            qw * dz + qx * dy - qy * dx + qz * c,
        )
        ww, xx, yy, zz = qw * qw, qx * qx, qy * qy, qz * qz
        r00 = ww + xx - yy - zz
        r11 = ww - xx + yy - zz
        r22 = ww - xx - yy + zz
        xy, xz, yz = 2.0 * qx * qy, 2.0 * qx * qz, 2.0 * qy * qz
        wx, wy, wz = 2.0 * qw * qx, 2.0 * qw * qy, 2.0 * qw * qz
        r01, r10 = xy - wz, xy + wz
        r02, r20 = xz + wy, xz - wy
        r12, r21 = yz - wx, yz + wx
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
        nrm = sqrt(vx * vx + vy * vy + vz * vz)
        if nrm > 1e-150:
            ux, uy, uz = vx / nrm, vy / nrm, vz / nrm
        out_u[j] = ux
        out_u[j + 1] = uy
        out_u[j + 2] = uz
        if phase == last_in_chunk:  # chunk end: latch output, weight and bias; renormalise the quaternion
            phase = 0.0
            nq = sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
            qw, qx, qy, qz = qw / nq, qx / nq, qy / nq, qz / nq
            lx, ly, lz = hx, hy, hz
            w = rej2 / ms if ms > rej2 else 1.0
            if nr > 0.0:
                if count < mean_n:
                    c1 = count + nr
                    bx = (count * bx + sx) / c1
                    by = (count * by + sy) / c1
                    bz = (count * bz + sz) / c1
                else:
                    dn = keep**nr
                    en = (1.0 - dn) / nr
                    bx = dn * bx + en * sx
                    by = dn * by + en * sy
                    bz = dn * bz + en * sz
                count += nr
                sx = sy = sz = 0.0
                nr = 0.0
            hbx, hby, hbz = bx, by, bz
        else:
            phase += 1.0
    st[S_Q], st[S_Q + 1], st[S_Q + 2], st[S_Q + 3] = qw, qx, qy, qz
    st[S_ZI], st[S_ZI + 1], st[S_ZI + 2] = z0x, z0y, z0z
    st[S_ZI + 3], st[S_ZI + 4], st[S_ZI + 5] = z1x, z1y, z1z
    st[S_LP], st[S_LP + 1], st[S_LP + 2] = lx, ly, lz
    st[S_U], st[S_U + 1], st[S_U + 2] = ux, uy, uz
    st[S_MS] = ms
    st[S_W] = w
    st[S_RUN] = run
    st[S_BIAS], st[S_BIAS + 1], st[S_BIAS + 2] = bx, by, bz
    st[S_HELD], st[S_HELD + 1], st[S_HELD + 2] = hbx, hby, hbz
    st[S_PART], st[S_PART + 1], st[S_PART + 2], st[S_PART + 3] = sx, sy, sz, nr
    st[S_COUNT] = count
    st[S_PHASE] = phase


_compiled: Any = None  # None: not tried yet; False: numba missing; else the compiled step


def compiled_step():
    """:func:`step_python` compiled by numba (compiled, or loaded from numba's
    cache, at the first call; ~0.3 s from the cache); ``None`` when numba is
    not installed."""
    global _compiled
    if _compiled is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - exercised when numba is absent
            _compiled = False
        else:
            _compiled = numba.njit(cache=True, nogil=True)(step_python)
    return _compiled or None


def warm_up() -> None:
    """Compile (or load from numba's cache) now, on one sample of the types
    :mod:`spinemon.core.fusion` passes, so the first live frame does not wait
    for it; nothing without numba."""
    step = compiled_step()
    if step is None:
        return
    import numpy as np

    one = np.zeros(3)
    st = np.zeros(N_STATE)
    st[S_Q] = 1.0
    co = np.zeros(N_COEF)
    co[C_CHUNK] = 16.0
    step(one, one.copy(), co, st, np.zeros(3), np.zeros(1, dtype=np.bool_), np.zeros(1), np.zeros(3), True)
