"""Bit-flip campaign: what one flipped bit anywhere in a recording costs.

Writes a recording through the live path (the simulated deadlift set of
``spinemon simulate --exercise deadlift --reps 3 --fault rounding@2 --seed 1``),
then flips one random bit of it at a time (seeded, uniform over every bit of
the file), loads the damaged copy and counts the records it lost: records of
the undamaged load that the damaged load lacks (matched in order), records it
loaded that were never written (false records), whether the file stayed
loadable, and whether ``corrupt_records`` says exactly how many were lost.
Also runs the format-1 fixture (tests/fixtures/recording-v1.spinrec) through
the same flips, for comparison.

    python -m tests.campaigns.bitflip [--flips 300] [--seed 1] [--file F ...] [--json]

Exit status 0 when no flip in a format-2 file cost more than the record it
hit (and a flip in MAGIC, the PAD or one header copy cost nothing).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
V1_FIXTURE = ROOT / "tests" / "fixtures" / "recording-v1.spinrec"


def write_sample(path: Path) -> Path:
    """The recording of ``spinemon simulate --exercise deadlift --reps 3
    --fault rounding@2 --seed 1`` (the same call the CLI makes)."""
    from spinemon.io import sim
    from spinemon.app.simrun import run_simulated

    run_simulated([sim.SetSpec("deadlift", 3, {2: "rounding"})], 1, out=path, sim_settings=sim.SimSettings(rate_hz=100.0, imus=("upper", "lower")), rom=True)
    return path


def regions(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, what) of the parts of an undamaged file: magic, each
    header copy, the PAD, records (format 1: magic, header, records)."""
    import struct

    # the byte layouts of docs/reliability.md (written out here, so that a
    # loader of an earlier version can be measured too)
    out = [(0, 16, "magic")]
    v1 = data.startswith(b"SPINEMON-REC\x00\x01\r\n")
    pos, i = 16, 0
    while pos < len(data):
        if v1:
            (length,) = struct.unpack_from("<I", data, pos + 3)
            end = pos + 15 + length + 4
            what = "header" if i == 0 else "record"
        else:
            (length,) = struct.unpack_from("<I", data, pos + 9)
            end = pos + 25 + length + 4
            what = {0: "header", 1: "pad", 2: "header copy"}.get(i, "record")
        out.append((pos, end, what))
        pos, i = end, i + 1
    return out


def _lost(full: list, got: list) -> tuple[int, int]:
    """(records of ``full`` missing from ``got``, records of ``got`` not in ``full``), matched in order."""
    i = matched = 0
    for r in got:
        j = i
        while j < len(full) and full[j] != r:
            j += 1
        if j == len(full):
            continue
        matched += 1
        i = j + 1
    return len(full) - matched, len(got) - matched


def run(path: Path, flips: int, seed: int) -> dict:
    from spinemon.io import recording as rec
    from spinemon.errors import RecordingError

    data = path.read_bytes()
    full = rec.load(path)
    full_rx = [r for r in full.records if r.kind == rec.KIND_RX]
    parts = regions(data)
    rng = random.Random(seed)
    by_cost: Counter = Counter()
    by_region: dict[str, Counter] = {}
    unloadable = false_records = miscounted = 0
    worst = (0, None)
    rx_lost_max = 0
    loads = getattr(rec, "loads", None)
    tmp = Path(tempfile.mkdtemp()) / "flip.spinrec"
    t0 = time.monotonic()
    for _ in range(flips):
        bit = rng.randrange(len(data) * 8)
        buf = bytearray(data)
        buf[bit // 8] ^= 1 << (bit % 8)
        where = next(w for a, b, w in parts if a <= bit // 8 < b)
        try:
            if loads is not None:
                got = loads(bytes(buf), path.name)
            else:  # a loader from before loads() existed
                tmp.write_bytes(bytes(buf))
                got = rec.load(tmp)
        except RecordingError:
            unloadable += 1
            cost, extra, rx_lost = len(full.records), 0, len(full_rx)
            by_cost["unloadable"] += 1
            by_region.setdefault(where, Counter())["unloadable"] += 1
        else:
            cost, extra = _lost(full.records, got.records)
            rx_lost = _lost(full_rx, [r for r in got.records if r.kind == rec.KIND_RX])[0]
            false_records += extra
            miscounted += got.corrupt_records != cost
            key = str(cost) if cost <= 1 else ">1"
            by_cost[key] += 1
            by_region.setdefault(where, Counter())[key] += 1
        rx_lost_max = max(rx_lost_max, rx_lost)
        if cost > worst[0]:
            worst = (cost, {"bit": bit, "byte": bit // 8, "region": where})
    fmt = getattr(full.segments[0], "format", 1)
    return {
        "file": str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else path.name,
        "format": fmt,
        "bytes": len(data),
        "records": len(full.records),
        "rx_frames": len(full_rx),
        "flips": flips,
        "seed": seed,
        "by_cost": dict(by_cost),
        "by_region": {k: dict(v) for k, v in sorted(by_region.items())},
        "unloadable": unloadable,
        "max_records_lost": worst[0],
        "worst": worst[1],
        "max_frames_lost": rx_lost_max,
        "false_records": false_records,
        "corrupt_count_wrong": miscounted,
        "seconds": round(time.monotonic() - t0, 1),
    }


def ok(res: dict) -> bool:
    """A format-2 file: no flip cost more than one record, none made it
    unloadable or loaded a false record, every count was exact, and flips
    outside the records (magic, header copies, PAD) cost nothing."""
    if res["format"] != 2:
        return True
    free = {"magic", "header", "pad", "header copy"}
    return (
        res["max_records_lost"] <= 1
        and res["unloadable"] == 0
        and res["false_records"] == 0
        and res["corrupt_count_wrong"] == 0
        and all(set(c) <= {"0"} for w, c in res["by_region"].items() if w in free)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.campaigns.bitflip", description=__doc__.split("\n\n")[0])
    ap.add_argument("--flips", type=int, default=300, help="random single-bit flips per file (default 300)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--file", type=Path, action="append", help="recordings to damage (default: a fresh simulated one and the format-1 fixture)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    files = args.file
    if not files:
        d = Path(tempfile.mkdtemp())
        files = [write_sample(d / "deadlift-3-rounding@2-seed1.spinrec"), V1_FIXTURE]
    results = [run(f, args.flips, args.seed) for f in files]
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        for r in results:
            print(
                f"{r['file']} (format {r['format']}, {r['bytes']:,} bytes, {r['records']} records, {r['rx_frames']} frames): "
                f"{r['flips']} flips (seed {r['seed']}) -> records lost per flip {r['by_cost']}; "
                f"max {r['max_records_lost']} records / {r['max_frames_lost']} frames; unloadable {r['unloadable']}; "
                f"false records {r['false_records']}; corrupt_records wrong {r['corrupt_count_wrong']}; {r['seconds']} s"
            )
            for where, c in r["by_region"].items():
                print(f"    {where:12s} {dict(c)}")
    return 0 if all(ok(r) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
