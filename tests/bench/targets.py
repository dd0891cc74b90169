"""Issue 27's targets at a glance: each figure measured in this run against
its target, as a ratio (<= 1 meets it). Run last: it reads what the other
sections of the same run recorded (a section not run shows "not run")."""

from __future__ import annotations


def run(report, quick: bool = False) -> dict:
    r = report.results
    rows = ["| target | measured | ratio to target | section |", "|---|---|---:|---|"]
    out: dict = {}

    def add(name: str, measured: str | None, ratio: float | None, section: str) -> None:
        out[name] = ratio
        rows.append(
            f"| {name} | {measured or 'not run'} | {'-' if ratio is None else f'**{ratio:.2f}**'} | {section} |"
        )

    rp = r.get("replay")
    add(
        "replay <= 2x VQF `updateBatch` (1-hour 2-IMU recording, same process)",
        None if rp is None else f"{rp['ratio_vqf']:.2f}x VQF",
        None if rp is None else rp["ratio_vqf"] / 2.0,
        "Replay at the speed of the data",
    )
    h = r.get("history_index")
    add(
        "second `history` over an unchanged season <= 10 % of the first",
        None if h is None else f"{100 * h['ratio_second_to_first']:.1f} % ({h['replayed'][1]} replayed)",
        None if h is None else h["ratio_to_target"],
        "History over a season: the session index",
    )
    s = r.get("startup")
    for cmd in ("spinemon --help", "spinemon replay --help"):
        ex = None if s is None else s["excess_s"][cmd]
        add(
            f"`{cmd}` <= 0.15 s above `import numpy`",
            None if ex is None else f"{ex:+.3f} s",
            None if ex is None else ex / 0.15,
            "Start-up",
        )
    fc = r.get("fullchain")
    p95 = None if fc is None else fc.get("latency_total_p95_ms")
    add(
        "first sample past the limit -> motor, p95 <= 30 ms (full chain)",
        None if p95 is None else f"{p95:.1f} ms",
        None if p95 is None else p95 / 30.0,
        "Closed-loop alert latency: firmware over emulated BLE",
    )
    report.section(
        "Issue 27 targets at a glance",
        "Measured in one `make bench` run on this 2-core machine (shared: the ratios compare figures taken in the same run; "
        "a negative start-up ratio means faster than importing numpy).\n\n"
        + "\n".join(rows)
        + "\n\nWhat issue 27 changed, per target:\n\n"
        "- **Replay**: the body-frame rotation of a fused block is computed once and shared by angles, segmenter, "
        "drift and watch (`gravity.Fused` read-only, `Mounting.to_body` cuts pieces from the block's rotation), and "
        "written column by column (~3x faster, the same bits); the drift monitor's warm-up bends without per-sample "
        "Python. Then: the replay hands the RX records between two other records to the decoder as one list and "
        "cuts blocks only at labels (an alert or notice record no longer cuts one: 46 `on_block` calls for the hour, "
        "was 63); the loader builds its `Record`s without the frozen dataclass's per-field `__setattr__` (about 0.6 us "
        "a record against 4.6); the chain's CRC-16 in one tight pass; the drift monitor's still-and-upright mask once "
        "per block, not per piece; a frame's few rows (at most 64) rotated directly, not looked up among the shared "
        "rotations. Results equal frame by frame (asserted in the replay section and tests/core/test_split_invariance.py). "
        "Then the columnar loader: runs of equal-length records, numbered on, are checked column by column (numpy "
        "over their headers, each record's two CRC-32 checks in one tight pass) and their `Record`s built in one "
        "loop; anything else goes record by record (a hypothesis test holds the two paths equal under damage). "
        "Parsing the hour: about 0.10 s of CPU against 0.115-0.12 (interleaved processes, best of 9, 3 times "
        "each); end to end, 0.81-0.91 s of CPU against 1.12-1.13 (interleaved best of 5), but the per-run ratios "
        "to VQF on this loaded machine (load 4 on 2 cores) overlap: 2.8-3.5x against 3.0-4.8x. What is left of the"
        " gap then, in CPU seconds of the hour: the parser ~0.10, of which ~0.065 was making the 46,800 `Record` "
        "objects, decode ~0.10. Then the column-wise replay of RX runs: the loader keeps each run of equal-length "
        "RX records as one `RecordRun` (the file's bytes, where it starts, its host times as one array; no `Record` "
        "until `Recording.records` is used), the header CRC-32s of a run computed at once from the bytes that "
        "differ between its records (exact: CRC-32 is affine over GF(2)) and each record's CRC-32 by its residue "
        "(one call a record); `FrameDecoder.feed_run` decodes a run from the file's bytes (headers, sequence, "
        "clock, flags and the CRC-16 of all its frames at once, two bytes a numpy step over the rows). In CPU "
        "seconds of the hour (old and new code in interleaved processes, best of 5, 3 rounds, load 5-7 on 2 "
        "cores): loading 0.034-0.037 against 0.16-0.17, a block replay 0.59-0.67 against 0.73-0.85, 2.4-3.0x "
        "VQF against 3.05-3.24x; peak memory 24 MB against 41. What is left of the gap, in CPU seconds: "
        "loading ~0.035, decode ~0.07, fusion ~0.07, angles ~0.09, segmenter ~0.14, drift and limit watch piece "
        "by piece ~0.22 (about 800 pieces, cut at every rep record and set/rep change: ~0.3 ms each of small "
        "numpy calls). "
        "Then the watch over a run of pieces: `LimitWatch.update_pieces` gives each piece its limits and set and "
        "rep, `EventDetector.update_runs` runs each limit check over the whole run in a few numpy passes (sample by "
        "sample only where something is past a limit), the device buzz's mask in one pass, `limit_held` per run, and "
        "the drift monitor up to each unlabelled set's start (its check) instead of per piece: 48 watch calls for the "
        "hour instead of 800, the same events, alerts, order and state (tested against piece by piece); a long "
        "block's body-frame rotation in one pass compiled by numba (the same operations per element: the same bits); "
        "the still mask's and the frontal inclination's norms column by column (a reduction over a last axis of 3 "
        "was ~5x slower; the same bits). Drift, still mask and limit watch of the hour: 0.063-0.068 s of CPU, was "
        "0.26-0.31; all the body-frame rotations 0.028-0.030, was 0.087-0.103; `Pipeline.on_block` in all "
        "0.32-0.41, was 0.69-0.74 (interleaved processes, best of 4, load 4-6); end to end, with the "
        "record-by-record loader still, 2.3-2.7x VQF against 3.3-4.3x (CPU, interleaved, best of 5, load 5-8). "
        "With both, on a quieter machine (load 1.5): a block replay 0.39 s of CPU against VQF's 0.22, 1.78x "
        "(best of 7; per run 1.63-1.95x). Where it goes (wall, best of 7): loading 0.034, decode 0.072, fusion "
        "0.043 (the stage 0.059), angles 0.045, the rep counter 0.089 (the segmenter 0.113), drift, still mask and "
        "limit watch 0.053, the summary 0.016.\n"
        "- **History**: the session index (`spinemon.io.session_index`, SQLite): an unchanged recording is not replayed.\n"
        "- **Start-up**: each command's module is imported only when that command is parsed (`cli._LazySubParsers`).\n"
        "- **The buzz**: the firmware reads the IMU FIFOs as each sample is due (`Device.next_read_ms`, timed from an "
        "estimate of when the next sample is due that every read corrects), not every 20 ms, and the wearable's guard "
        "measures with the host's own gravity filter (firmware 0.5), so it crosses a limit on the host's sample.",
    )
    report.json("targets", out)
    return out
