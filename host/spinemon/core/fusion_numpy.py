"""The chunked numpy engine of the fusion filter (see :mod:`spinemon.core.fusion`,
"Chunks"): segments of 2,048 chunks of 16 samples laid out as (16, 2048)
arrays, so each numpy call advances all chunks by one sample. It runs blocks
of 64 samples or more when the ``"numpy"`` engine is chosen (or numba is not
installed); the per-sample kernel (:mod:`spinemon.core.fusion_kernel`) is the
second, independent implementation the tests hold it to (1e-9)."""

from __future__ import annotations

import math

import numpy as np

from spinemon.core.fusion_settings import _L, _TAYLOR_MAX, _Coefficients

# ---------------------------------------------------------------- quaternions


_SHORT_SCAN = 24  # up to this many quaternions, a plain loop beats the vectorised scan


def _quat_scan_short(dq: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """The same prefix product for a few quaternions (small streaming blocks, chunk totals)."""
    out = np.empty_like(dq)
    aw, ax, ay, az = (float(v) for v in q0)
    for i, (bw, bx, by, bz) in enumerate(dq.T.tolist()):
        aw, ax, ay, az = (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        )
        out[:, i] = (aw, ax, ay, az)
    return out


_SCAN_CHUNK = 8  # samples per chunk in the vectorised scan


def _quat_scan(dq: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """Inclusive prefix product ``P_k = q0 * dq_0 * ... * dq_k`` for dq of shape (4, N).

    Chunked scan: split into C chunks of L = 8 consecutive samples, scan inside
    all chunks at once (L - 1 steps, each a handful of numpy calls on C-long
    contiguous arrays), prefix the chunk totals (recursively, down to a short
    loop over at most 24 totals), then combine. Python iterations grow as
    O(log N), never per sample.
    """
    n = dq.shape[1]
    if n <= _SHORT_SCAN:
        return _quat_scan_short(dq, q0)
    length = _SCAN_CHUNK
    chunks = -(-n // length)
    pad = chunks * length - n
    if pad:
        ident = np.zeros((4, pad))
        ident[0] = 1.0
        dq = np.concatenate([dq, ident], axis=1)
    # (4, L, C) layout: position-in-chunk major, so each step reads contiguous lanes
    d = np.ascontiguousarray(dq.reshape(4, chunks, length).transpose(0, 2, 1))
    q = np.empty_like(d)
    q[:, 0] = d[:, 0]
    t = np.empty(chunks)
    for i in range(1, length):
        aw, ax, ay, az = q[:, i - 1]
        bw, bx, by, bz = d[:, i]
        ow, ox, oy, oz = q[:, i]
        np.multiply(aw, bw, out=ow)
        ow -= np.multiply(ax, bx, out=t)
        ow -= np.multiply(ay, by, out=t)
        ow -= np.multiply(az, bz, out=t)
        np.multiply(aw, bx, out=ox)
        ox += np.multiply(ax, bw, out=t)
        ox += np.multiply(ay, bz, out=t)
        ox -= np.multiply(az, by, out=t)
        np.multiply(aw, by, out=oy)
        oy -= np.multiply(ax, bz, out=t)
        oy += np.multiply(ay, bw, out=t)
        oy += np.multiply(az, bx, out=t)
        np.multiply(aw, bz, out=oz)
        oz += np.multiply(ax, by, out=t)
        oz -= np.multiply(ay, bx, out=t)
        oz += np.multiply(az, bw, out=t)
    # exclusive prefix of the chunk totals, starting from q0
    incl = _quat_scan(q[:, -1], q0)
    starts = np.concatenate([q0[:, None], incl[:, :-1]], axis=1)
    # combine: P = start_of_chunk * Q, written back in time order
    out = np.empty((4, chunks, length))
    ew, ex, ey, ez = starts[:, None, :]
    qw, qx, qy, qz = q
    tt = np.empty((length, chunks))
    for comp, terms in enumerate(
        (
            ((ew, qw, 1), (ex, qx, -1), (ey, qy, -1), (ez, qz, -1)),
            ((ew, qx, 1), (ex, qw, 1), (ey, qz, 1), (ez, qy, -1)),
            ((ew, qy, 1), (ex, qz, -1), (ey, qw, 1), (ez, qx, 1)),
            ((ew, qz, 1), (ex, qy, 1), (ey, qx, -1), (ez, qw, 1)),
        )
    ):
        acc = np.multiply(terms[0][0], terms[0][1])
        for e_c, q_c, sign in terms[1:]:
            np.multiply(e_c, q_c, out=tt)
            if sign > 0:
                acc += tt
            else:
                acc -= tt
        out[comp] = acc.T
    return out.reshape(4, chunks * length)[:, :n]


def _delta_quats(omega: np.ndarray, half_dt: float) -> np.ndarray:
    """(4, N) rotation quaternions for body rates omega (N, 3) over one sample."""
    hx = omega[:, 0] * half_dt
    hy = omega[:, 1] * half_dt
    hz = omega[:, 2] * half_dt
    h2 = hx * hx + hy * hy + hz * hz  # (theta/2)^2
    # cos(t) and sin(t)/t by Taylor series, exact to < 1e-16 for t < 0.02 rad
    # (7 deg/sample); larger angles take the exact route.
    c = 1.0 - h2 * (0.5 - h2 * (1.0 / 24.0 - h2 * (1.0 / 720.0)))
    s = 1.0 - h2 * (1.0 / 6.0 - h2 * (1.0 / 120.0 - h2 * (1.0 / 5040.0)))
    big = h2 > 4e-4
    if big.any():
        t = np.sqrt(h2[big])
        c[big] = np.cos(t)
        s[big] = np.sin(t) / t
    return np.stack([c, s * hx, s * hy, s * hz])


def _rotation_rows(p: np.ndarray):
    """Rotation matrix entries of (4, N) quaternions, scaled by |p|^2 (homogeneous form)."""
    w, x, y, z = p
    ww, xx, yy, zz = w * w, x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    r00 = ww + xx - yy - zz
    r11 = ww - xx + yy - zz
    r22 = ww - xx - yy + zz
    r01 = 2.0 * (xy - wz)
    r10 = 2.0 * (xy + wz)
    r02 = 2.0 * (xz + wy)
    r20 = 2.0 * (xz - wy)
    r12 = 2.0 * (yz - wx)
    r21 = 2.0 * (yz + wx)
    return (r00, r01, r02), (r10, r11, r12), (r20, r21, r22)


# ---------------------------------------------------------------- chunk-parallel building blocks
#
# The batch path works on segments of S = L * C samples laid out as (L, C)
# arrays: column c holds the L consecutive samples of chunk c, so that one
# numpy call on a row advances all C chunks by one sample. Element-wise work
# is layout-blind; the two sequential parts (the quaternion prefix product and
# the IIR filters) run L steps down the rows, then stitch the chunks together
# with a short recurrence over the C chunk ends.

_SEGMENT_CHUNKS = 2048  # chunks per internal segment (S = 32768 samples)
_SMALL = 64  # blocks shorter than this take the per-sample path (plain floats)
_SHORT_TOTALS = 128  # chunk totals up to this many are chained by a plain loop


class _ChunkIIR:
    """State and output of ``scipy.signal.lfilter(b, a)`` at chunk ends, chunk-parallel.

    Exact reformulation: with the lfilter state ``s`` (transposed direct form II,
    length p) at the start of a chunk of L inputs x, the state at its end is
    ``A s + K x`` and the output at its last sample ``o . s + t . x``. The
    chunk-start states follow ``s_{c+1} = A s_c + K x_c``: a recurrence over
    the C chunks that decouples in A's eigenbasis into p first-order (complex)
    recurrences, one ``lfilter`` call on C values each.
    """

    def __init__(self, b: np.ndarray, a: np.ndarray, length: int) -> None:
        from scipy import signal  # batch path only (see _acc_iir)

        p = len(a) - 1
        eye = np.eye(length)
        drive = np.empty((p + 1, length))  # rows: K (state), then t (last output)
        for j in range(length):
            y, zf = signal.lfilter(b, a, eye[j], zi=np.zeros(p))
            drive[:p, j] = zf
            drive[p, j] = y[-1]
        a_l = np.empty((p, p))
        o = np.empty(p)
        for i in range(p):
            zi = np.zeros(p)
            zi[i] = 1.0
            y, a_l[:, i] = signal.lfilter(b, a, np.zeros(length), zi=zi)
            o[i] = y[-1]
        lam, v = np.linalg.eig(a_l)
        self.p = p
        self.a_l = a_l
        self.obs_inv = None
        if p == 2:
            obs = np.array([o, o @ a_l])
            if np.linalg.cond(obs) < 1e6:
                self.obs_inv = np.linalg.inv(obs)
        self.drive = drive
        self.o = o
        self.lam = lam.astype(complex)
        self.v = v.astype(complex)
        self.v_inv = np.linalg.inv(self.v)

    def run(self, kx: np.ndarray, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chunk-end outputs from the per-chunk drives.

        Args:
            kx: (m, p + 1, C): ``self.drive @ x_c`` for m signals and C chunks
                (rows 0..p-1 drive the state, row p is the zero-state output).
            zi: (m, p) states before the first chunk.

        Returns:
            y_end (m, C), the output at the last sample of each chunk, and the
            states after the last chunk (m, p).
        """
        from scipy import signal

        m, _, c = kx.shape
        p = self.p
        if p == 1:  # real pole: the states themselves
            lam = self.lam[0].real
            ends, _ = signal.lfilter([1.0], [1.0, -lam], kx[:, 0, :], axis=-1, zi=lam * zi)
            s0 = np.empty((m, c))
            s0[:, 0] = zi[:, 0]
            s0[:, 1:] = ends[:, :-1]
            y_end = kx[:, 1, :] + self.o[0] * s0
            return y_end, ends[:, -1:].copy()
        if p == 2 and self.obs_inv is not None and c > 2:
            # the chunk-end outputs z_c = o . s_c obey z_{c+2} = tr z_{c+1} - det z_c + drive
            # (Cayley-Hamilton); one scalar recurrence per signal, then the final state
            # from the last two outputs (observability matrix [o; o A], well conditioned)
            a_l, o = self.a_l, self.o
            tr = a_l[0, 0] + a_l[1, 1]
            det = a_l[0, 0] * a_l[1, 1] - a_l[0, 1] * a_l[1, 0]
            pa = o @ (a_l - tr * np.eye(2))
            f0, f1 = kx[:, 0, :], kx[:, 1, :]
            z = np.empty((m, c + 1))  # o . s at chunk starts 0..C-1, then after the last chunk
            s1 = zi @ a_l.T + kx[:, :2, 0]  # state after chunk 0
            z[:, 0] = zi @ o
            z[:, 1] = s1 @ o
            drive = o[0] * f0[:, 1:]
            drive += o[1] * f1[:, 1:]
            drive += pa[0] * f0[:, :-1]
            drive += pa[1] * f1[:, :-1]
            zf = np.stack([tr * z[:, 1] - det * z[:, 0], -det * z[:, 1]], axis=-1)
            z[:, 2:], _ = signal.lfilter([1.0], [1.0, -tr, det], drive, axis=-1, zi=zf)
            y_end = kx[:, 2, :] + z[:, :-1]
            # state before the last chunk from its output and the next: [o; o A] s = [z, z' - o . f]
            rhs = np.stack([z[:, c - 1], z[:, c] - kx[:, :2, c - 1] @ o], axis=-1)
            s_last = rhs @ self.obs_inv.T
            return y_end, s_last @ a_l.T + kx[:, :2, c - 1]
        if p == 2:  # each state component obeys s_{c+2} = tr s_{c+1} - det s_c + drive (Cayley-Hamilton)
            a_l = self.a_l
            tr = a_l[0, 0] + a_l[1, 1]
            det = a_l[0, 0] * a_l[1, 1] - a_l[0, 1] * a_l[1, 0]
            f0, f1 = kx[:, 0, :], kx[:, 1, :]
            s = np.empty((m, 2, c + 1))  # states at chunk starts, then the final one
            s[:, :, 0] = zi
            s[:, 0, 1] = a_l[0, 0] * zi[:, 0] + a_l[0, 1] * zi[:, 1] + f0[:, 0]
            s[:, 1, 1] = a_l[1, 0] * zi[:, 0] + a_l[1, 1] * zi[:, 1] + f1[:, 0]
            if c > 1:
                drive = np.empty((m, 2, c - 1))
                drive[:, 0] = f0[:, 1:]
                drive[:, 0] += (a_l[0, 0] - tr) * f0[:, :-1]
                drive[:, 0] += a_l[0, 1] * f1[:, :-1]
                drive[:, 1] = f1[:, 1:]
                drive[:, 1] += a_l[1, 0] * f0[:, :-1]
                drive[:, 1] += (a_l[1, 1] - tr) * f1[:, :-1]
                s1, s0 = s[:, :, 1], s[:, :, 0]
                z = np.stack(
                    [tr * s1 - det * s0, -det * s1], axis=-1
                )  # lfilter state for y_-1 = s_1, y_-2 = s_0
                s[:, :, 2:], _ = signal.lfilter([1.0], [1.0, -tr, det], drive, axis=-1, zi=z)
            y_end = kx[:, 2, :] + self.o[0] * s[:, 0, :-1]
            y_end += self.o[1] * s[:, 1, :-1]
            return y_end, s[:, :, -1].copy()
        f = np.einsum("ij,mjc->mic", self.v_inv, kx[:, :p, :])  # modal drive
        mz = zi.astype(complex) @ self.v_inv.T  # (m, p) modal start states
        starts = np.empty((m, p, c), dtype=complex)
        last = np.empty((m, p), dtype=complex)
        for i, lam in enumerate(self.lam):
            ends, _ = signal.lfilter([1.0], [1.0, -lam], f[:, i, :], axis=-1, zi=(lam * mz[:, i])[:, None])
            starts[:, i, 0] = mz[:, i]
            starts[:, i, 1:] = ends[:, :-1]
            last[:, i] = ends[:, -1]
        s = np.einsum("ij,mjc->mic", self.v, starts).real  # (m, p, C) states at chunk starts
        y_end = kx[:, p, :] + np.einsum("j,mjc->mc", self.o, s)
        return y_end, (last @ self.v.T).real


def _acc_iir(co: _Coefficients) -> _ChunkIIR:
    """The accelerometer low-pass as a chunk-parallel filter, built on first use
    for these coefficients (kept in ``co.batch_filters``: the coefficients are
    cached per rate and settings)."""
    f = co.batch_filters.get("acc")
    if f is None:
        f = co.batch_filters["acc"] = _ChunkIIR(co.acc_b, co.acc_a, _L)
    return f


def _rej_iir(co: _Coefficients) -> _ChunkIIR:
    """The trust weight's mean square of ``|a| - g`` (first order), likewise."""
    f = co.batch_filters.get("rej")
    if f is None:
        f = co.batch_filters["rej"] = _ChunkIIR(np.array([co.rej_k]), np.array([1.0, co.rej_k - 1.0]), _L)
    return f


def _cscan_short(d1, d2, q1, q2):
    """Prefix product of a few quaternions in complex pair form (plain Python)."""
    o1 = []
    o2 = []
    for b1, b2 in zip(d1.tolist(), d2.tolist()):
        q1, q2 = q1 * b1 - q2 * b2.conjugate(), q1 * b2 + q2 * b1.conjugate()
        o1.append(q1)
        o2.append(q2)
    return np.array(o1, dtype=complex), np.array(o2, dtype=complex)


def _cscan_1d(d1, d2, q1, q2):
    """Inclusive prefix product ``q0 * d_0 * ... * d_k`` of time-ordered complex-pair quaternions."""
    n = len(d1)
    if n <= _SHORT_TOTALS:
        return _cscan_short(d1, d2, q1, q2)
    chunks = -(-n // _L)
    pad = chunks * _L - n
    if pad:
        d1 = np.concatenate([d1, np.ones(pad, dtype=complex)])
        d2 = np.concatenate([d2, np.zeros(pad, dtype=complex)])
    l1, l2 = _chunk_products(
        np.ascontiguousarray(d1.reshape(chunks, _L).T), np.ascontiguousarray(d2.reshape(chunks, _L).T)
    )
    s1, s2 = _chunk_starts(l1[-1], l2[-1], q1, q2)
    p1, p2 = _qmul_pair(s1, s2, l1, l2)
    return p1.T.reshape(-1)[:n], p2.T.reshape(-1)[:n]


def _qmul_pair(a1, a2, b1, b2):
    """Hamilton product in complex pair form: ``(a1 b1 - a2 conj(b2), a1 b2 + a2 conj(b1))``."""
    return a1 * b1 - a2 * np.conjugate(b2), a1 * b2 + a2 * np.conjugate(b1)


def _chunk_products(d1, d2, ws: _Work | None = None):
    """In-chunk prefix products ``Q_l = d_0 ... d_l`` for (L, C) complex-pair quaternions.

    A quaternion ``w + x i + y j + z k`` is the pair ``(w + x i, y + z i)``;
    the Hamilton product then takes six complex numpy calls instead of 28 real
    ones. Row l of the result is the product of the first l + 1 rows.
    """
    ws = ws or _Work()
    length, chunks = d1.shape
    q1 = ws("q1", d1.shape, complex)
    q2 = ws("q2", d1.shape, complex)
    q1[0] = d1[0]
    q2[0] = d2[0]
    c1 = np.conjugate(d1[1:], out=ws("c1", (length - 1, chunks), complex))
    c2 = np.conjugate(d2[1:], out=ws("c2", (length - 1, chunks), complex))
    t = ws("ct", (chunks,), complex)
    for i in range(1, length):
        a1, a2 = q1[i - 1], q2[i - 1]
        o1, o2 = q1[i], q2[i]
        np.multiply(a1, d1[i], out=o1)
        o1 -= np.multiply(a2, c2[i - 1], out=t)
        np.multiply(a1, d2[i], out=o2)
        o2 += np.multiply(a2, c1[i - 1], out=t)
    return q1, q2


def _chunk_starts(t1, t2, q1, q2):
    """Orientation at the start of each chunk: ``q0`` times the totals of all earlier chunks."""
    e1, e2 = _cscan_1d(t1, t2, q1, q2)
    s1 = np.empty(len(t1) + 1, dtype=complex)
    s2 = np.empty(len(t1) + 1, dtype=complex)
    s1[0], s2[0] = q1, q2
    s1[1:], s2[1:] = e1, e2
    return s1[:-1], s2[:-1]  # the last total is the end state; callers that need it read e1/e2


class _Work:
    """Reusable scratch arrays for the chunked path (fresh large arrays cost page faults)."""

    def __init__(self) -> None:
        self._bufs: dict = {}

    def __call__(self, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
        buf = self._bufs.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[name] = np.empty(shape, dtype=dtype)
        return buf


def _lc(a: np.ndarray, chunks: int, out: np.ndarray) -> np.ndarray:
    """(S, 3) time-ordered samples -> (3, L, C) chunk layout, into ``out``."""
    for i in range(3):
        np.copyto(out[i], a[:, i].reshape(chunks, _L).T)
    return out


def _rotation_pair(p1, p2, ws: _Work | None = None, key: str = "r"):
    """Rotation matrix entries of unit complex-pair quaternions (homogeneous form except r00).

    With ``p1 = w + x i`` and ``p2 = y + z i``: ``p1^2``, ``p2^2``, ``2 p1 p2``
    and ``2 p1 conj(p2)`` hold all the products the matrix needs, in their
    real and imaginary parts (some entries are returned as views).
    """
    ws = ws or _Work()
    shape = p1.shape
    c = ws(key + "c", shape, complex)
    a = ws(key + "a", shape, complex)
    b = ws(key + "b", shape, complex)
    s1 = ws(key + "s1", shape, complex)
    s2 = ws(key + "s2", shape, complex)
    f = ws(key + "f", shape[:-1] + (2 * shape[-1],))
    d = ws(key + "d", shape)
    r11 = ws(key + "11", shape)
    r22 = ws(key + "22", shape)
    r12 = ws(key + "12", shape)
    r21 = ws(key + "21", shape)
    r20 = ws(key + "20", shape)
    np.square(p1.view(np.float64), out=f)
    np.add(f[..., 0::2], f[..., 1::2], out=d)  # w^2 + x^2
    d += d
    d -= 1.0  # w^2 + x^2 - y^2 - z^2 for unit p (products of unit quaternions: |p| = 1 to ~1e-15)
    np.add(p1, p1, out=b)
    np.multiply(b, p2, out=a)  # 2(wy - xz) + 2(wz + xy) i
    np.conjugate(p2, out=c)
    b *= c  # 2(wy + xz) + 2(xy - wz) i
    np.multiply(p1, p1, out=s1)  # w^2 - x^2 + 2wx i
    np.multiply(p2, p2, out=s2)  # y^2 - z^2 + 2yz i
    np.add(s1.real, s2.real, out=r11)
    np.subtract(s1.real, s2.real, out=r22)
    np.subtract(s2.imag, s1.imag, out=r12)
    np.add(s2.imag, s1.imag, out=r21)
    np.negative(a.real, out=r20)
    return (
        (d, b.imag, b.real),
        (a.imag, r11, r12),
        (r20, r21, r22),
    )


def _mat_vec(r, v, out, tmp):
    """out_i = sum_j r[i][j] v_j for 3x3 entries r (broadcasting arrays) and 3 arrays v."""
    for i in range(3):
        o = np.multiply(r[i][0], v[0], out=out[i])
        o += np.multiply(r[i][1], v[1], out=tmp)
        o += np.multiply(r[i][2], v[2], out=tmp)
    return out


def _mat_t_vec(r, v, out, tmp):
    """out_i = sum_j r[j][i] v_j (the transpose)."""
    for i in range(3):
        o = np.multiply(r[0][i], v[0], out=out[i])
        o += np.multiply(r[1][i], v[1], out=tmp)
        o += np.multiply(r[2][i], v[2], out=tmp)
    return out


def _step_chunked(acc, gyr, co, state, out_u, out_rest, out_w, out_bias, ws: _Work) -> None:
    """Fuse one chunk-aligned segment (length a multiple of L, starting at a chunk end).

    Writes the outputs (the flags ``out_rest``, ``out_w``, ``out_bias`` may be
    None) and updates ``state``. Layout: (L, C) arrays, column c = the L
    consecutive samples of chunk c, so each numpy call advances all chunks.
    """
    n = acc.shape[0]
    chunks = n // _L
    lc = (_L, chunks)
    a = _lc(acc, chunks, ws("a", (3,) + lc))
    g = _lc(gyr, chunks, ws("g", (3,) + lc))
    ax, ay, az = a
    gx, gy, gz = g
    tmp = ws("tmp", lc)
    w2 = ws("w2", lc)

    # accelerometer magnitude: trust weight and rest condition share it
    dev2 = np.multiply(ax, ax, out=ws("dev2", lc))
    dev2 += np.multiply(ay, ay, out=tmp)
    dev2 += np.multiply(az, az, out=tmp)
    np.sqrt(dev2, out=dev2)
    dev2 -= co.g
    dev2 *= dev2  # (|a| - g)^2
    rej_iir = _rej_iir(co)
    ms_end, _ = rej_iir.run((rej_iir.drive @ dev2)[None], np.array([[(1.0 - co.rej_k) * state.acc_dev_ms]]))
    ms_end = ms_end[0]
    w_end = np.ones(chunks) if co.rej2 == math.inf else co.rej2 / np.maximum(ms_end, co.rej2)
    weight = np.empty(chunks)  # latched: chunk c uses the weight at the end of chunk c - 1
    weight[0] = state.acc_weight
    weight[1:] = w_end[:-1]

    # 1. rest (time order): gyro and |a| near 1 g, held for rest_min_n samples in a row
    np.multiply(gx, gx, out=w2)
    w2 += np.multiply(gy, gy, out=tmp)
    w2 += np.multiply(gz, gz, out=tmp)
    cand_lc = np.less(w2, co.rest_gyr_th2, out=ws("cand", lc, bool))
    cand_lc &= np.less(dev2, co.rest_acc_th2, out=ws("cand2", lc, bool))
    cand = ws("cand_t", (chunks, _L), bool)
    np.copyto(cand, cand_lc.T)
    cand = cand.reshape(-1)
    if out_rest is None:
        out_rest = ws("rest", (n,), bool)
    run0 = min(state.rest_run, co.rest_min_n)  # longer runs behave alike
    if not cand.any():
        out_rest[:] = False
        run_end = 0
    elif cand.all():
        np.greater_equal(np.arange(run0 + 1, run0 + n + 1, dtype=np.int32), co.rest_min_n, out=out_rest)
        run_end = state.rest_run + n
    else:
        idx = np.arange(n, dtype=np.int32)
        last_break = np.where(cand, np.int32(-1 - run0), idx)
        np.maximum.accumulate(last_break, out=last_break)
        run_len = np.subtract(idx, last_break, out=last_break)
        np.greater_equal(run_len, co.rest_min_n, out=out_rest)
        run_end = int(run_len[-1])
    rest = out_rest

    # 2. gyro bias: at each chunk end the live estimate learns from the chunk's rest samples
    #    (running mean, then IIR); integration uses the estimate latched at the previous chunk end
    m = int(np.count_nonzero(rest))
    bias_c = np.empty((3, chunks))
    bias_c[:, 0] = state.bias_held
    if m == 0:
        bias_c[:, 1:] = state.bias[:, None]
    else:
        rest_lc = tmp
        np.copyto(rest_lc, rest.reshape(chunks, _L).T)  # as 0.0 / 1.0
        n_rest = co.ones_l @ rest_lc
        rsum = np.einsum("ilc,lc->ic", g, rest_lc)
        ends = _bias_at_chunk_ends(rsum, n_rest, state.bias, state.bias_count, co)
        bias_c[:, 1:] = ends[:, :-1]
        state.bias = ends[:, -1].copy()
        state.bias_count += m
    state.bias_held = state.bias.copy()
    for i in range(3):
        g[i] -= bias_c[i]
    if out_bias is not None:  # flags: per-sample bias and weight
        for i in range(3):
            np.copyto(out_bias[:, i].reshape(chunks, _L), bias_c[i][:, None])
        np.copyto(out_w.reshape(chunks, _L), weight[:, None])

    # 3. strapdown integration: in-chunk products, then chunk starts (omega = g now)
    w2 = np.multiply(gx, gx, out=w2)  # |omega|^2; (theta/2)^2 = hd2 |omega|^2
    w2 += np.multiply(gy, gy, out=tmp)
    w2 += np.multiply(gz, gz, out=tmp)
    hd2 = co.half_dt * co.half_dt
    # cos(t) and sin(t)/t * dt/2 by Taylor series in t^2 = hd2 |omega|^2 (coefficients
    # scaled by powers of hd2), exact to < 1e-16 for t < 0.1 rad; larger t exactly
    cs = np.multiply(w2, hd2**4 / 40320.0, out=dev2)
    cs -= hd2**3 / 720.0
    cs *= w2
    cs += hd2**2 / 24.0
    cs *= w2
    cs -= 0.5 * hd2
    cs *= w2
    cs += 1.0
    h = co.half_dt
    sn = np.multiply(w2, h * hd2**4 / 362880.0, out=tmp)
    sn -= h * hd2**3 / 5040.0
    sn *= w2
    sn += h * hd2**2 / 120.0
    sn *= w2
    sn -= h * hd2 / 6.0
    sn *= w2
    sn += h
    if float(w2.max()) * hd2 > _TAYLOR_MAX:
        big = w2 * hd2 > _TAYLOR_MAX
        t = np.sqrt(w2[big] * hd2)
        cs[big] = np.cos(t)
        sn[big] = np.sin(t) / t * h
    d1 = ws("d1", lc, complex)
    d2 = ws("d2", lc, complex)
    d1.real = cs
    np.multiply(sn, gx, out=d1.imag)
    np.multiply(sn, gy, out=d2.real)
    np.multiply(sn, gz, out=d2.imag)
    q1, q2 = _chunk_products(d1, d2, ws)
    q0 = state.quat
    e1, e2 = _cscan_1d(q1[-1], q2[-1], complex(q0[0], q0[1]), complex(q0[2], q0[3]))
    s1 = np.empty(chunks, dtype=complex)
    s2 = np.empty(chunks, dtype=complex)
    s1[0], s2[0] = complex(q0[0], q0[1]), complex(q0[2], q0[3])
    s1[1:], s2[1:] = e1[:-1], e2[:-1]
    rq = _rotation_pair(q1, q2, ws, "rq")  # in-chunk: sensor at sample l -> frame at the chunk start
    rs = _rotation_pair(s1, s2)  # per chunk: frame at the chunk start -> I

    # 4. accelerometer in I, weighted, low-passed (state exact at chunk ends); back to the sensor frame.
    #    The weight is constant over a chunk, so it scales the per-chunk drives.
    v = _mat_vec(rq, a, g, tmp)  # g is free now
    acc_iir = _acc_iir(co)
    kv = acc_iir.drive @ v  # (3, p + 1, C): per-chunk drives, in the chunk-start frames
    kv *= weight
    rs = np.array(rs)  # (3, 3, C)
    kx = np.einsum("ijc,jrc->irc", rs, kv)
    y_end, zf = acc_iir.run(kx, state.acc_lp_zi.T)
    hl = np.empty((3, chunks))  # latched low-pass output per chunk, frame I
    hl[:, 0] = state.acc_lp_out
    hl[:, 1:] = y_end[:, :-1]
    hs = np.einsum("jic,jc->ic", rs, hl)
    # |Rq^T hs| = |q|^2 |hs| and the in-chunk products q are unit to ~1e-15: normalise per chunk
    norm = np.sqrt(np.einsum("ic,ic->c", hs, hs))
    ok_c = norm > 1e-150
    if ok_c.all():
        hs /= norm
    else:
        hs[:, ok_c] /= norm[ok_c]
    u = _mat_t_vec(rq, hs, a, tmp)
    for i in range(3):
        np.copyto(out_u[:, i].reshape(chunks, _L), u[i].T)
    if not ok_c.all():  # degenerate (h decayed to 0): hold the last good direction
        ok = np.repeat(ok_c, _L)
        idx = np.arange(n)
        last = np.maximum.accumulate(np.where(ok, idx, -1))
        held = np.concatenate([state.gravity[None, :], out_u])
        out_u[:] = held[last + 1]

    w_, x_, y_, z_ = e1[-1].real, e1[-1].imag, e2[-1].real, e2[-1].imag
    nq = math.sqrt(w_ * w_ + x_ * x_ + y_ * y_ + z_ * z_)
    state.samples += n
    state.quat = np.array([w_ / nq, x_ / nq, y_ / nq, z_ / nq])
    state.acc_lp_zi = zf.T.copy()
    state.acc_lp_out = y_end[:, -1].copy()
    state.gravity = out_u[-1].copy()
    state.acc_dev_ms = float(ms_end[-1])
    state.acc_weight = float(w_end[-1])
    state.rest_run = run_end


def _bias_at_chunk_ends(
    rsum: np.ndarray, n_rest: np.ndarray, bias: np.ndarray, count: int, co: _Coefficients
) -> np.ndarray:
    """The live gyro-bias estimate at each chunk end (3, C).

    Chunk c brings ``n_c`` rest samples summing to ``rsum_c``. While fewer than
    ``bias_mean_n`` rest samples have been seen before the chunk, the estimate
    is their running mean; after that ``b <- D b + (1 - D) rsum_c / n_c`` with
    ``D = (1 - alpha)^n_c`` (the per-sample IIR for n_c equal samples).
    """
    chunks = len(n_rest)
    out = np.empty((3, chunks))
    k_after = count + np.cumsum(n_rest)
    k_before = k_after - n_rest
    c_m = int(np.searchsorted(k_before, co.bias_mean_n - 0.5, side="left"))  # running-mean chunks
    b = bias
    if c_m:
        total = np.cumsum(rsum[:, :c_m], axis=1)
        total += (count * bias)[:, None]
        k = k_after[:c_m]
        np.divide(total, np.maximum(k, 1), out=out[:, :c_m])
        if k[0] == 0:  # no rest sample yet: keep the initial estimate
            out[:, :c_m][:, k == 0] = bias[:, None]
        b = out[:, c_m - 1]
    if c_m == chunks:
        return out
    d = 1.0 - co.bias_alpha
    n = n_rest[c_m:]
    dn = co.bias_keep_pow.take(n.astype(np.intp))  # d ** n
    e = rsum[:, c_m:] * ((1.0 - dn) / np.maximum(n, 1))  # b_c = D_c b_{c-1} + e_c
    # closed form per block: b_j = P_j (b_s + sum_{i<=j} e_i / P_i), P = cumulative product of D;
    # blocks hold at most 8/alpha rest samples, so 1/P stays below e^8 (< 1e-12 relative error)
    limit = max(float(_L), 8.0 / co.bias_alpha)
    log_d = math.log(d)
    cum_n = np.cumsum(n)
    start = 0
    chunks = len(n)
    while start < chunks:
        base = cum_n[start - 1] if start else 0
        stop = int(np.searchsorted(cum_n, base + limit, side="right"))
        stop = max(stop, start + 1)
        p = np.exp((cum_n[start:stop] - base) * log_d)
        seg = np.divide(e[:, start:stop], p)
        np.cumsum(seg, axis=1, out=seg)
        seg += b[:, None]
        seg *= p
        out[:, c_m + start : c_m + stop] = seg
        b = seg[:, -1]
        start = stop
    return out
