"""Seed corpus: valid inputs the mutator starts from.

Every frame type from the encoders (edge values included), SAMPLES frames from
the simulated wearer (one and two IMUs, several rates), a COMMAND for every
opcode at its limits, COBS byte streams of those frames, and small recordings
written through the live path by ``spinemon.app.simrun.run_simulated``.
Deterministic: the same call gives the same bytes.
"""

from __future__ import annotations

import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import spinemon_protocol as sp


def command_frames() -> list[bytes]:
    """A COMMAND for every opcode: each argument at its low limit, its high
    limit and (for two-argument-or-more opcodes) a middle value."""
    out = []
    counter = 1
    for op in sorted(sp.OPCODE_ARGS):
        limits = sp.OPCODE_LIMITS[op]
        choices = [tuple(lo for lo, _ in limits), tuple(hi for _, hi in limits), tuple((lo + hi) // 2 for lo, hi in limits)]
        for args in choices:
            out.append(sp.encode_command(counter, op, args))
            counter += 1
    out.append(sp.encode_command(0xFFFFFFFF, sp.OP_TIME_SYNC))
    out.append(sp.encode_command(0, sp.OP_GET_STATUS))
    return list(dict.fromkeys(out))


def encoder_frames() -> list[bytes]:
    """Every frame type from the encoders, with edge values."""
    out = []
    for mask in (1, 2, 3):
        per = sp.values_per_sample(mask)
        for count in (1, 2, sp.max_samples_per_frame(mask)):
            vals = [((i * 7919) % 65536) - 32768 for i in range(per * count)]
            vals[-1] = sp.ANGLE_NONE
            out.append(sp.encode_samples(count * 1000, 0xFFFFFF00 + count, 10000, mask, sp.ranges_byte(4, 2000), sp.SF_GUARD_ARMED, count, sp.pack_values(vals)))
    out.append(sp.encode_samples(0xFFFFFFFF, 0xFFFFFFFF, 1, 1, sp.ranges_byte(16, 125), 0xFF, 1, sp.pack_values([0] * 7)))
    out.append(sp.encode_status())
    out.append(
        sp.encode_status(fw_version=(1, 2, 3), battery_mv=3900, battery_pct=66, imu_upper=sp.IMU_LSM6DSO, imu_lower=sp.IMU_MPU6050,
                         ranges=0x41, period_us=10000, samples_per_frame=9, guard_flex_cdeg=4500, guard_ext_cdeg=-2000,
                         guard_mode=sp.GUARD_WHEN_LINK_DOWN, state=0x7F, boot_count=7, uptime_ms=123456, last_counter=99,
                         frames_sent=1000, samples_dropped=3, samples_lost_fifo=4, fifo_overflows=1, frames_dropped=2,
                         commands_rejected=5, guard_alerts=6)
    )
    for op in sorted(sp.OPCODE_ARGS):
        out.append(sp.encode_ack(op * 11, op, 0xDEADBEEF if op == sp.OP_TIME_SYNC else 0))
    for code in sorted(sp.ERROR_NAMES):
        out.append(sp.encode_error(code * 13, sp.OP_HAPTIC, code))
    return out + command_frames()


def sim_frames(max_per_session: int = 40) -> list[bytes]:
    """SAMPLES frames from the simulated wearer (two IMUs at 100 Hz, one IMU
    at 50 Hz and at 1 kHz)."""
    from spinemon.io import sim

    out = []
    for seed, settings in ((1, sim.SimSettings()), (2, sim.SimSettings(imus=("upper",), rate_hz=50.0)), (3, sim.SimSettings(rate_hz=1000.0))):
        s = sim.simulate([sim.SetSpec("deadlift", 1, {1: "rounding"}, rest_s=0.0)], seed, settings, calibration=False, rom=False)
        step = max(1, len(s.frames) // max_per_session)
        out.extend(s.frames[::step][:max_per_session])
    return out


def stream_chunks(frames: list[bytes], n: int = 60) -> list[bytes]:
    """Byte streams as a serial line carries them: 1..5 COBS frames each."""
    out = []
    for i in range(n):
        k = 1 + i % 5
        out.append(b"".join(sp.stream_frame(frames[(i * 7 + j) % len(frames)]) for j in range(k)))
    return out


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def recordings() -> list[bytes]:
    """Small valid recordings written through the live path (and a couple cut
    at a record boundary, which are valid recordings too), plus the two files
    of the format-1 fixture tests/fixtures/segmented-v1.spinrec (so the
    format-1 loader is fuzzed too)."""
    from spinemon.io import recording, sim
    from spinemon.app.simrun import run_simulated

    runs = (
        ([sim.SetSpec("curl", 1, rest_s=0.0)], 3, sim.SimSettings()),
        ([sim.SetSpec("deadlift", 2, {2: "rounding"}, rest_s=0.0)], 4, sim.SimSettings(imus=("upper",), rate_hz=50.0)),
    )
    out = []
    with tempfile.TemporaryDirectory() as d:
        for i, (sets, seed, settings) in enumerate(runs):
            p = Path(d) / f"r{i}.spinrec"
            run_simulated(sets, seed, out=p, sim_settings=settings, rom=False)
            data = p.read_bytes()
            out.append(data)
            ends = [b for _, b in record_spans(data)]
            out.append(data[: ends[min(12, len(ends) - 1)]])
        assert recording.MAGIC == out[0][: len(recording.MAGIC)]
    for name in ("segmented-v1.spinrec", "segmented-v1.spinrec.seg2"):
        out.append((FIXTURES / name).read_bytes())
    return out


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) offsets in the file of every record of a VALID recording
    of either format (format 2: the PAD and the header's copy included)."""
    from spinemon.io import recording

    if data.startswith(recording.MAGIC_V1):
        head, length_at = recording._HEAD_V1.size, 3
    else:
        head, length_at = recording.HEAD_SIZE, 9
    pos = len(recording.MAGIC)
    spans = []
    while pos + head <= len(data):
        (length,) = struct.unpack_from("<I", data, pos + length_at)
        end = pos + head + length + 4
        if end > len(data):
            break
        spans.append((pos, end))
        pos = end
    return spans


def record_ends(data: bytes) -> list[int]:
    """End offsets (in the file) of the records of a VALID recording."""
    return [b for _, b in record_spans(data)]


@dataclass
class Corpus:
    frames: list[bytes]  # every frame type
    commands: list[bytes]  # COMMAND frames only
    samples: list[bytes]  # SAMPLES frames (simulated wearer, in stream order per session)
    streams: list[bytes]  # COBS byte streams
    recordings: list[bytes]  # whole recording files


def build(sim_frames_per_session: int = 40) -> Corpus:
    enc = encoder_frames()
    simf = sim_frames(sim_frames_per_session)
    frames = enc + simf
    return Corpus(frames=frames, commands=command_frames(), samples=simf, streams=stream_chunks(frames), recordings=recordings())
