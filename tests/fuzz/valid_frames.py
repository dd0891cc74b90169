"""Mutated *valid* SAMPLES frames: every field the wire format allows, CRC correct.

A valid frame must never end a session (issue 12): the pipeline and
``run_live`` are fed such frames (tests/fuzz/targets.py ``PipelineTarget``,
tests/system/test_layout_change.py). The changes are those a reboot, a firmware bug
or another build can produce: another sensor mask, period (rate), ranges,
count, sequence/clock jumps, flags, extreme sample values.
"""

from __future__ import annotations

import random

import numpy as np

import spinemon_protocol as sp

_FS = [(a, g) for a in (2, 4, 8, 16) for g in (125, 250, 500, 1000, 2000)]


def _ranges(r: random.Random) -> int:
    return sp.ranges_byte(*r.choice(_FS))


def mutate_valid(frame: bytes, r: random.Random) -> bytes:
    """A valid SAMPLES frame derived from ``frame`` (a SAMPLES frame) with one to three fields changed."""
    o = sp.decode(frame)
    mask, period, ranges, flags, seq, t_us = o.mask, o.period_us, o.ranges, o.flags, o.seq, o.t_us
    raw = np.frombuffer(o.block, dtype="<i2").reshape(o.count, sp.values_per_sample(o.mask)).astype(np.int64)
    for _ in range(r.randint(1, 3)):
        k = r.randrange(8)
        if k == 0:
            mask = r.choice((sp.SENSOR_UPPER, sp.SENSOR_LOWER, sp.SENSOR_UPPER | sp.SENSOR_LOWER))
        elif k == 1:
            period = r.choice((1, 2, 50, 99, 100, 1000, 2500, 5000, 10000, 20000, 40000, 65535, r.randint(1, 65535)))
        elif k == 2:
            ranges = _ranges(r)
        elif k == 3:
            flags = r.randrange(256)
        elif k == 4:
            seq = (seq + r.choice((-1, 1, -1000, 1000, 2**31, -(2**31), r.randrange(2**32)))) & 0xFFFFFFFF
        elif k == 5:
            t_us = (t_us + r.choice((-1, 1, -10**6, 10**6, 2**31, r.randrange(2**32)))) & 0xFFFFFFFF
        elif k == 6:
            raw = raw.copy()
            raw[r.randrange(raw.shape[0]), r.randrange(raw.shape[1])] = r.choice((-32768, 32767, 0, r.randint(-32768, 32767)))
        else:
            n = r.randint(1, raw.shape[0])
            raw = raw[:n]
    per = sp.values_per_sample(mask)
    n = min(raw.shape[0], sp.max_samples_per_frame(mask))
    if raw.shape[1] >= per:
        vals = np.concatenate([raw[:n, : per - 1], raw[:n, -1:]], axis=1)
    else:  # one IMU -> two: the lower reads what the upper read
        vals = np.concatenate([raw[:n, :6], raw[:n, :6], raw[:n, -1:]], axis=1)
    block = np.ascontiguousarray(vals.astype("<i2")).tobytes()
    return sp.encode_samples(seq, t_us, period, mask, ranges, flags, n, block)
