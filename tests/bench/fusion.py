"""Fusion benchmark: throughput on a 1,000,000-sample stream, streaming cost, replay time and memory, tilt accuracy on BROAD.

Comparison filters (VQF, imufusion, ahrs) come from the optional extra
``bench`` and are imported lazily; a missing one is reported as "not installed".
Everything runs in one process on the same data.
"""

from __future__ import annotations

import gc
import importlib
import os
import platform
import time

import numpy as np

from tests.support import broad
from tests.support.zero_phase import gravity_zero_phase
from spinemon.core import fusion

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

_REPLAY_CODE = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
from spinemon.core import fusion
from tests.bench.fusion import _stream


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1e3
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


n, rate = int(sys.argv[1]), float(sys.argv[2])
acc, gyr, _, source = _stream(n)
imus = {"upper": (acc, gyr), "lower": (np.ascontiguousarray(acc[::-1]), np.ascontiguousarray(gyr[::-1]))}
fusion.gravity(acc[:20000], gyr[:20000], rate)  # warm-up
try:  # hand the heap freed after loading the test data back to the OS (glibc)
    import ctypes
    ctypes.CDLL("libc.so.6").malloc_trim(0)
except (OSError, AttributeError):
    pass
try:  # reset the peak-RSS mark (Linux), so that loading the test data does not count
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
base = peak_rss_mb()
seconds = []
for _ in range(2):
    t0 = time.perf_counter()
    out = {name: fusion.gravity(a, g, rate) for name, (a, g) in imus.items()}
    seconds.append(time.perf_counter() - t0)
    del out
peak = peak_rss_mb()
t0 = time.perf_counter()
flags = {name: fusion.run(a, g, rate) for name, (a, g) in imus.items()}
seconds_run = time.perf_counter() - t0
del flags
tracemalloc.start()
out = {name: fusion.gravity(a, g, rate) for name, (a, g) in imus.items()}
_, traced = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps({"seconds": min(seconds), "seconds_with_flags": seconds_run, "traced_peak_mb": traced / 1e6,
                  "peak_rss_mb": peak, "rss_before_mb": base, "peak_reset": reset,
                  "inputs_mb": sum(a.nbytes + g.nbytes for a, g in imus.values()) / 1e6, "source": source}))
"""


def _replay(n: int, rate: float) -> dict:
    """A replay-sized job in a fresh process: 2 IMUs x n samples; time and peak memory."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    proc = subprocess.run([sys.executable, "-c", _REPLAY_CODE, str(n), str(rate)], capture_output=True, text=True, env=dict(os.environ), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"replay subprocess failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


ENGINE_ROWS = {
    "compiled": "spinemon batch `fusion.gravity` (default: per-sample kernel compiled by numba)",
    "numpy": "spinemon batch `fusion.gravity`, numpy engine (chunked; no numba)",
}


def _throughput(report, quick: bool) -> dict:
    n = 100_000 if quick else N_STREAM
    acc, gyr, rate, source = _stream(n)
    repeats = 3 if quick else 7
    rows = {}

    def add(name, seconds, samples, note=""):
        rows[name] = {"samples": samples, "seconds": seconds, "samples_per_s": samples / seconds, "ns_per_sample": seconds / samples * 1e9, "note": note}

    engines = [e for e in fusion.ENGINES if e != "compiled" or _lib("numba") is not None]
    for engine in engines:  # warm-up (numba's compile or cache load, coefficients)
        fusion.gravity(acc[:50_000], gyr[:50_000], rate, engine=engine)
    fusion.run(acc[:50_000], gyr[:50_000], rate, engine=engines[0])
    vqf = _lib("vqf")
    # interleave ours and VQF so all see the same machine load; best of the repeats
    times: dict[str, list[float]] = {"run": [], "vqf": [], **{e: [] for e in engines}}
    for _ in range(repeats):
        for engine in engines:
            times[engine].append(_best_of(lambda: fusion.gravity(acc, gyr, rate, engine=engine), 1))  # noqa: B023
        if vqf is not None:
            times["vqf"].append(_best_of(lambda: vqf.VQF(1.0 / rate).updateBatch(gyr, acc), 1))
    for _ in range(max(2, repeats // 2)):
        times["run"].append(_best_of(lambda: fusion.run(acc, gyr, rate, engine=engines[0]), 1))
    for engine in engines:
        add(ENGINE_ROWS[engine], min(times[engine]), n, f"best of {repeats}")
    add("spinemon batch `fusion.run` (+ per-sample flags)", min(times["run"]), n, f"best of {len(times['run'])}")
    if vqf is not None:
        add("VQF updateBatch", min(times["vqf"]), n, f"best of {repeats}")
        add("BasicVQF updateBatch", _best_of(lambda: vqf.BasicVQF(1.0 / rate).updateBatch(gyr, acc), repeats), n, f"best of {repeats}")
    m = 50_000 if not quick else 10_000
    if _lib("imufusion") is not None:
        add("imufusion per sample (Python loop)", _best_of(lambda: _imufusion(acc[:m], gyr[:m], rate), 1), m, f"first {m} samples")
    if _lib("ahrs") is not None:
        k = m // 5
        add("ahrs Madgwick", _best_of(lambda: _madgwick(acc[:k], gyr[:k], rate), 1), k, f"first {k} samples")

    # streaming: per-frame cost with FRAME samples per frame, and agreement with the batch result
    frames = 20_000 if not quick else 2_000
    filt = fusion.GravityFilter(rate)
    cost = np.empty(frames)
    parts = []
    for i in range(frames):
        a = acc[i * FRAME : (i + 1) * FRAME]
        g = gyr[i * FRAME : (i + 1) * FRAME]
        t0 = time.perf_counter()
        parts.append(filt.update(a, g))
        cost[i] = time.perf_counter() - t0
    p50, p99 = np.percentile(cost, [50, 99]) * 1e6
    stream_diff = float(np.abs(np.concatenate(parts) - fusion.gravity(acc[: frames * FRAME], gyr[: frames * FRAME], rate)).max())
    add("spinemon streaming `GravityFilter.update`", float(cost.sum()), frames * FRAME, f"{FRAME} samples/frame")

    ours = rows[ENGINE_ROWS[engines[0]]]["seconds"]
    ratio = rows["VQF updateBatch"]["seconds"] / ours if vqf else None
    ratio_numpy = rows["VQF updateBatch"]["seconds"] / rows[ENGINE_ROWS["numpy"]]["seconds"] if vqf else None
    ratio_run = rows["VQF updateBatch"]["seconds"] / rows["spinemon batch `fusion.run` (+ per-sample flags)"]["seconds"] if vqf else None
    lines = [
        f"Stream: {n:,} samples ({source}, {rate:.1f} Hz), one process single-threaded (BLAS limited to one thread), "
        f"float64; {platform.processor() or platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}. "
        f"Best of {repeats} runs of `gravity` interleaved with {repeats} of VQF, so both see the same load "
        "(`run` timed afterwards); "
        f"the machine is shared with other jobs (1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
        "at the end of this run), so treat single figures as +-15 %.",
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
        (f"- Batch speed-up over VQF `updateBatch` (same stream, same process): **{ratio:.2f}x** for `gravity` "
         f"({engines[0]} engine), {ratio_run:.2f}x for `run` with flags, {ratio_numpy:.2f}x for the numpy engine (target >= 5x)"
         + (f"; **not met**: {100 * (5.0 / ratio - 1.0):.0f} % short for `gravity`." if ratio < 5.0 else ".")) if ratio else "- VQF not installed: no ratio.",
        f"- Streaming, {FRAME} samples per frame: p50 **{p50:.0f} us**, p99 **{p99:.0f} us** per frame and IMU "
        f"(target p99 < 200 us); max difference from the batch result over {frames * FRAME:,} samples: {stream_diff:.1e}.",
        "",
        "How, compiled engine (default with the `fast` extra; see `spinemon/core/fusion_kernel.py`): the per-sample "
        "filter in plain float arithmetic on flat x, y, z triples, compiled by numba; every block, long or short, "
        "goes through it, so batch and streaming are the same loop and agree bit for bit for any split.",
        "",
        "How, numpy engine (without numba; see `spinemon/core/fusion_numpy.py`): segments of 32,768 samples laid out as 16 x 2,048 (16 consecutive samples "
        "per chunk, one numpy call advances all chunks); quaternions as complex pairs (a Hamilton product is 6 complex "
        "numpy calls instead of 28 real ones); in-chunk prefix products, then the chunk starts from a short scan over "
        "chunk totals; the low-pass in the gyro frame I is evaluated exactly at chunk ends (impulse-response matrices "
        "times each chunk, then a recurrence over the 2,048 chunk ends), its output, the trust weight and the gyro bias "
        "are latched there and used for the next 16 samples; reusable scratch buffers (fresh large arrays cost page "
        "faults). Blocks shorter than 64 samples (streaming frames) run a plain-float per-sample implementation of the "
        "same filter; the tests compare the two to 1e-9.",
        "",
        "Tried and measured: segment sizes 8k-131k samples and chunk lengths 16 and 32 (32k x 16 best; smaller "
        "segments pay numpy's ~0.6 us per call, larger ones fall out of cache); `scipy.signal.lfilter` on "
        "every sample (~6 ns per sample and axis, replaced by the chunk-end evaluation); complex-modal chunk "
        "recurrences (complex `lfilter` is ~48 ns per element, replaced by a real second-order one); einsum for "
        "|a|^2 on (N, 3) (7.6 ns/sample, slower than three multiplies); writing the output through a strided "
        "view (slower than a transposed copy). The remaining cost is memory traffic: ~130 passes over 256-512 kB "
        "arrays per segment, plus ~380 numpy calls per segment.",
        "",
        "Reproduce: `.venv/bin/pip install -e '.[bench]' && .venv/bin/python -m tests.bench fusion`.",
    ]
    report.section("Fusion throughput", "\n".join(lines))

    # replay-sized job: 1 hour, 2 IMUs, 200 Hz = 1.44 M samples per IMU, fresh process
    n_replay = 1_440_000 if not quick else 144_000
    rep = _replay(n_replay, 200.0)
    rep_lines = [
        f"A 1-hour, 2-IMU, 200 Hz session: {n_replay:,} samples per IMU ({rep['source']} repeated, the second IMU "
        "time-reversed), fused in a fresh Python process with `fusion.gravity`, one after the other on one core. "
        "Peak RSS is the kernel's high-water mark (VmHWM), reset after the test data were loaded"
        + ("." if rep["peak_reset"] else " (reset not available here: the figure includes loading the data)."),
        "",
        "| measure | value | target |",
        "|---|---:|---:|",
        f"| wall time, 2 IMUs, `gravity` (best of 2) | {rep['seconds']:.2f} s | < 2 s |",
        f"| wall time, 2 IMUs, `run` (with per-sample flags) | {rep['seconds_with_flags']:.2f} s | |",
        f"| peak RSS of the process during the fusion (interpreter, numpy/scipy, inputs, outputs) | {rep['peak_rss_mb']:.0f} MB | < 400 MB |",
        f"| RSS before the fusion (interpreter, libraries, input arrays) | {rep['rss_before_mb']:.0f} MB | |",
        f"| of which input arrays | {rep['inputs_mb']:.0f} MB | |",
        f"| increase during the fusion (outputs, scratch) | {rep['peak_rss_mb'] - rep['rss_before_mb']:.0f} MB | |",
        f"| peak numpy allocation during the fusion (tracemalloc) | {rep['traced_peak_mb']:.0f} MB | |",
        "",
        "This is the fusion stage of a replay only (the full `spinemon replay` also decodes frames, computes "
        "angles and runs detection; those stages are measured in their own sections).",
        "",
        "Reproduce: `.venv/bin/python -m tests.bench fusion`.",
    ]
    report.section("Replay of a long session", "\n".join(rep_lines))
    return {
        "stream_samples": n,
        "source": source,
        "rate_hz": rate,
        "rows": rows,
        "ratio_vs_vqf_updateBatch": ratio,
        "ratio_run_vs_vqf_updateBatch": ratio_run,
        "ratio_numpy_engine_vs_vqf_updateBatch": ratio_numpy,
        "engine": engines[0],
        "streaming_frame_us": {"p50": p50, "p99": p99, "samples_per_frame": FRAME, "max_diff_vs_batch": stream_diff},
        "replay": {"samples_per_imu": n_replay, "imus": 2, "rate_hz": 200.0, **rep},
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
        "spinemon zero-phase (non-causal)": lambda a, g, r: gravity_zero_phase(a, g, r),
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
        ratios = {t.name: table["spinemon causal"][t.name] / table["VQF online 6D"][t.name] for t in trials
                  if table["spinemon causal"].get(t.name) and table["VQF online 6D"].get(t.name)}
        worst_t = max(ratios, key=ratios.get)
        lines.append(
            f"- Target (issue 11): every trial within 1.25x of VQF online's RMSE on that trial and no sample error above 15 deg "
            f"(checked in tests/real/test_broad.py with VQF computed there): worst ratio {ratios[worst_t]:.2f} ({worst_t}); "
            f"means {ours['mean']:.2f} vs {vqf['mean']:.2f} deg."
        )
    lines.append(
        f"- {len(trials)} trials (the subset in ../shared/data/broad). How the defaults were chosen, on principle and not "
        "per trial: the structure and constants are VQF's published ones (tau_acc 3 s, rest 2 deg/s and 0.5 m/s^2 for "
        "1.5 s); the accelerometer trust weight that earlier versions added on top (tuned on 8 of these trials) is off by "
        "default, because in the gyro-integrated frame linear acceleration integrates to a bounded velocity and the 3 s "
        "low-pass removes it, while scaling the low-pass input towards zero lets the Butterworth's undershoot carry the "
        "estimate through zero: with it, trial 18 (sustained 10 g shaking) flipped to ~177 deg error for seconds "
        "(RMSE 69.3 deg against VQF's 0.61). Nothing was tuned after that change; tests/core/test_fusion.py keeps a synthetic "
        "stress test (8 s at up to 10 g and 12 rad/s, then rest) that the old weighting fails."
    )
    lines.append(
        "- spinemon causal = what runs live (`fusion.gravity`, `GravityFilter`; the batch and streaming paths agree "
        "to 1e-9). spinemon zero-phase = `tests/support/zero_phase.py`, a separate function for replay analysis only; "
        "it never feeds live events."
    )
    lines.append("")
    lines.append("Reproduce: `.venv/bin/python -m tests.bench fusion`.")
    report.section("Fusion accuracy on BROAD", "\n".join(lines))
    return {"trials": [t.name for t in trials], "rmse_deg": table, "summary": summary}


def run(report, quick: bool = False) -> None:
    """Run the fusion benchmark and add its two sections to ``report``."""
    # throughput first, in a fresh process: measured ~30 % slower after the accuracy runs in the
    # same process (which allocate and free many arrays of assorted sizes)
    throughput = _throughput(report, quick)
    data = {"accuracy": _accuracy(report, quick), "throughput": throughput}
    report.json("fusion", data)
