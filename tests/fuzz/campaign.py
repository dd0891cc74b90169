"""The fuzz campaign: ``python -m tests.fuzz.campaign`` from the repository root
(``make fuzz``). Not part of ``make test``; tests/protocol/test_fuzz_smoke.py runs a
short version of every target there.

Runs the seeded byte mutator (tests/fuzz/mutator.py) and hypothesis over the
seed corpus (tests/fuzz/corpus.py) against:

  protocol       spinemon_protocol.decode / decode_command (CPython)
  cobs_stream    cobs_decode and StreamDecoder.feed (CPython)
  frame_decoder  spinemon.core.stream.FrameDecoder.feed (CPython)
  recording      spinemon.io.recording.load on mutated files (CPython)
  pipeline       Pipeline.on_frame fed mutated *valid* frames (CPython)
  mpy_command    firmware Device.handle_command under MicroPython
  mpy_protocol   decode / decode_command / cobs_decode / StreamDecoder under MicroPython

Every input's outcome is counted (accepted, or rejected by reason); a crash is
an exception the target must not raise or a broken invariant (see
targets.py and mpy_target.py); a hang is an input taking more than 1 s (a
CPython input is also interrupted after HARD_TIMEOUT_S; the MicroPython
process has a watchdog per batch). Crashing inputs are saved under
tests/fuzz/crashes/<target>/ and replayed by tests/protocol/test_fuzz_smoke.py.
Prints a table and (unless --no-docs) rewrites the "## Fuzzing" section of
docs/reliability.md with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import signal
import sys
import tempfile
import time
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import corpus as corpus_mod
from . import mpy_target as mt
from . import targets as tg
from .mutator import Mutator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CRASH_DIR = HERE / "crashes"
DOCS = ROOT / "docs" / "reliability.md"
HANG_S = 1.0  # an input taking longer than this is a hang
HARD_TIMEOUT_S = 10.0  # a CPython input is interrupted after this long
MPY_BATCH = 2000
MPY_WATCHDOG_S = 120.0
MAX_SAVED_PER_SIGNATURE = 3

# default inputs per target and engine (mutator, hypothesis)
DEFAULT_COUNTS = {
    "protocol": (300_000, 10_000),
    "cobs_stream": (60_000, 3_000),
    "frame_decoder": (150_000, 2_000),
    "recording": (30_000, 2_000),
    "pipeline": (20_000, 0),
    "mpy_command": (500_000, 0),
    "mpy_protocol": (160_000, 0),
}
TARGET_TITLES = {
    "protocol": "spinemon_protocol.decode / decode_command (CPython)",
    "cobs_stream": "cobs_decode + StreamDecoder.feed (CPython)",
    "frame_decoder": "spinemon.core.stream.FrameDecoder.feed (CPython)",
    "recording": "spinemon.io.recording.load (CPython)",
    "pipeline": "Pipeline.on_frame, mutated valid frames (CPython)",
    "mpy_command": "firmware Device.handle_command (MicroPython)",
    "mpy_protocol": "protocol decoders (MicroPython)",
}


class Hang(Exception):
    pass


@dataclass
class Result:
    target: str
    engine: str
    inputs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    crashes: int = 0
    hangs: int = 0
    signatures: Counter = field(default_factory=Counter)
    saved: list[str] = field(default_factory=list)
    times_ns: array = field(default_factory=lambda: array("q"))
    wall_s: float = 0.0

    @property
    def max_ms(self) -> float:
        return max(self.times_ns) / 1e6 if self.times_ns else 0.0

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(np.frombuffer(self.times_ns, dtype=np.int64), 99)) / 1e6 if self.times_ns else 0.0

    @property
    def rejected(self) -> int:
        return sum(v for k, v in self.outcomes.items() if "rejected" in k or k.startswith("ERROR"))


class Campaign:
    def __init__(self, seed: int, crash_dir: Path | None, log: Callable[[str], None] = print) -> None:
        self.seed = seed
        self.crash_dir = crash_dir
        self.log = log
        self.corpus = corpus_mod.build()
        self.results: list[Result] = []

    # ---- crashes -----------------------------------------------------------------------
    def _crash(self, res: Result, data: bytes, signature: str, detail: str) -> None:
        res.crashes += 1
        res.signatures[signature] += 1
        if self.crash_dir is None or res.signatures[signature] > MAX_SAVED_PER_SIGNATURE:
            return
        d = self.crash_dir / res.target
        d.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha1(data).hexdigest()[:16]
        (d / f"{h}.bin").write_bytes(data)
        (d / f"{h}.txt").write_text(f"target: {res.target}\nengine: {res.engine}\nseed: {self.seed}\nsignature: {signature}\n\n{detail}\n")
        res.saved.append(str(d / f"{h}.bin"))

    @staticmethod
    def signature(e: BaseException) -> str:
        if isinstance(e, tg.Finding):
            return "Finding: " + str(e)[:80]
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        return f"{type(e).__name__} at {where}"

    # ---- CPython targets ------------------------------------------------------------------
    def run_cpython(self, key: str, engine: str, target: Any, inputs: Iterator[Any], as_bytes: Callable[[Any], bytes]) -> Result:
        res = Result(key, engine)
        perf = time.perf_counter_ns

        def on_alarm(signum, frame):
            raise Hang()

        old = signal.signal(signal.SIGALRM, on_alarm)
        t_start = time.monotonic()
        try:
            for item in inputs:
                self._one(res, target, item, as_bytes, perf)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        res.wall_s = time.monotonic() - t_start
        return res

    def _one(self, res: Result, target: Any, item: Any, as_bytes: Callable[[Any], bytes], perf=time.perf_counter_ns) -> None:
        res.inputs += 1
        signal.setitimer(signal.ITIMER_REAL, HARD_TIMEOUT_S)
        t0 = perf()
        try:
            outcome = target.run(item)
        except Hang:
            dt = perf() - t0
            res.times_ns.append(dt)
            res.hangs += 1
            self._crash(res, as_bytes(item), "hang", f"interrupted after {HARD_TIMEOUT_S} s")
            res.outcomes["HANG"] += 1
            return
        except Exception as e:  # a crash: anything the target must not raise
            signal.setitimer(signal.ITIMER_REAL, 0)
            res.times_ns.append(perf() - t0)
            sig = self.signature(e)
            self._crash(res, as_bytes(item), sig, "".join(traceback.format_exception(e)))
            res.outcomes["CRASH " + sig] += 1
            return
        dt = perf() - t0
        signal.setitimer(signal.ITIMER_REAL, 0)
        res.times_ns.append(dt)
        if dt > HANG_S * 1e9:
            res.hangs += 1
            self._crash(res, as_bytes(item), "hang", f"took {dt / 1e9:.2f} s")
        res.outcomes[outcome] += 1

    # ---- inputs from the mutator ----------------------------------------------------------------
    def mutator_inputs(self, key: str, n: int, m: Mutator, workdir: str) -> tuple[Any, Iterator[Any], Callable[[Any], bytes]]:
        c = self.corpus
        r = m.rng
        if key == "protocol":

            def gen():
                for _ in range(n):
                    yield m.frame_from(c.frames) if r.random() < 0.97 else bytes(r.randrange(256) for _ in range(r.randrange(300)))

            return tg.ProtocolTarget(), gen(), lambda x: x
        if key == "cobs_stream":

            def gen():
                for _ in range(n):
                    d = m.stream(c.streams, c.frames)
                    yield d, m.chunks(d)

            return tg.CobsStreamTarget(), gen(), lambda x: x[0]
        if key == "frame_decoder":

            def gen():
                i = 0
                for _ in range(n):
                    x = r.random()
                    if x < 0.5:  # the stream in order (the decoder's state advances)
                        f = c.samples[i % len(c.samples)]
                        i += 1
                    elif x < 0.9:
                        f = m.frame_from(c.samples)
                    else:
                        f = m.frame_from(c.frames)
                    yield f, r.choice((0.01, 0.02, 0.1, 2.0, 30.0, -1.0, 0.0))

            return tg.FrameDecoderTarget(), gen(), lambda x: x[0]
        if key == "recording":

            def gen():
                for _ in range(n):
                    o = r.choice(c.recordings)
                    yield o, m.recording(o, c.recordings, c.frames)

            return tg.RecordingTarget(workdir), gen(), lambda x: x[1]
        if key == "pipeline":
            from .valid_frames import mutate_valid

            def gen():
                for i in range(n):
                    yield mutate_valid(c.samples[i % len(c.samples)], r)

            return tg.PipelineTarget(c.samples), gen(), lambda x: x
        raise KeyError(key)

    # ---- inputs from hypothesis ------------------------------------------------------------------
    def run_hypothesis(self, key: str, n: int, workdir: str) -> Result:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import strategies as st

        from . import strategies as hs

        c = self.corpus
        if key == "protocol":
            target, strat, as_bytes = tg.ProtocolTarget(), hs.frames(c.frames), (lambda x: x)
        elif key == "cobs_stream":
            target, strat, as_bytes = tg.CobsStreamTarget(), hs.streams(c.streams), (lambda x: x[0])
        elif key == "frame_decoder":
            target, as_bytes = tg.FrameDecoderTarget(renew=50), (lambda x: x[0])
            strat = st.tuples(hs.frames(c.samples + c.frames[:20]), st.sampled_from((0.01, 0.02, 2.0, -1.0)))
        elif key == "recording":
            target, strat, as_bytes = tg.RecordingTarget(workdir), hs.recordings(c.recordings, c.frames), (lambda x: x[1])
        else:
            raise KeyError(key)
        res = Result(key, "hypothesis")

        def on_alarm(signum, frame):
            raise Hang()

        @settings(max_examples=n, database=None, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        @given(strat)
        def prop(item):
            self._one(res, target, item, as_bytes)

        old = signal.signal(signal.SIGALRM, on_alarm)
        t0 = time.monotonic()
        try:
            prop()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        res.wall_s = time.monotonic() - t0
        return res

    # ---- MicroPython targets ------------------------------------------------------------------
    def run_mpy(self, key: str, n: int, m: Mutator) -> Result:
        c = self.corpus
        r = m.rng
        res = Result(key, "mutator")
        if key == "mpy_command":
            model = mt.CommandModel()

            def item():
                k = mt.K_CMD_FORGET if r.random() < 0.6 else mt.K_CMD_KEEP
                return k, m.frame_from(c.commands if r.random() < 0.8 else c.frames)

            label = lambda k, o: mt.command_outcome_label(o)  # noqa: E731
            renew = (mt.K_NEW_DEVICE, b"")
        else:
            model = mt.ProtocolModel()

            def item():
                x = r.random()
                if x < 0.4:
                    return mt.K_DECODE, m.frame_from(c.frames)
                if x < 0.6:
                    return mt.K_DECODE_CMD, m.frame_from(c.commands if r.random() < 0.5 else c.frames)
                if x < 0.75:
                    return mt.K_COBS, m.stream(c.streams, c.frames).split(b"\x00", 1)[0]
                return mt.K_STREAM, r.choice(m.chunks(m.stream(c.streams, c.frames)) or [b""])

            label = mt.protocol_outcome_label
            renew = (mt.K_NEW_STREAM, b"")
        t0 = time.monotonic()
        srv = mt.MpyServer(MPY_WATCHDOG_S)
        done = 0
        try:
            while done < n:
                k = min(MPY_BATCH, n - done)
                items = [renew] + [item() for _ in range(k)]
                expect = [model.expect(kind, data) for kind, data in items]
                try:
                    answers = srv.batch(items)
                except mt.ServerFailed as e:
                    srv.kill()
                    self._isolate(res, key, items, e)
                    srv = mt.MpyServer(MPY_WATCHDOG_S)
                    model = mt.CommandModel() if key == "mpy_command" else mt.ProtocolModel()
                    done += k
                    res.inputs += k
                    continue
                for (kind, data), exp, (o, us) in zip(items[1:], expect[1:], answers[1:]):
                    res.inputs += 1
                    res.times_ns.append(us * 1000)
                    if us > HANG_S * 1e6:
                        res.hangs += 1
                        self._crash(res, bytes([kind]) + data, "hang", f"took {us / 1e6:.2f} s under MicroPython")
                    if o.startswith("X"):
                        self._crash(res, bytes([kind]) + data, "MicroPython " + o.split(":")[0], o)
                        res.outcomes["CRASH " + o.split(":")[0]] += 1
                    elif o not in exp:
                        sig = f"Finding: MicroPython answered {o.split(':')[0]}, CPython predicts {exp[0].split(':')[0]}"
                        self._crash(res, bytes([kind]) + data, sig, f"answer {o}, expected one of {exp}")
                        res.outcomes["CRASH mismatch"] += 1
                    else:
                        res.outcomes[label(kind, o)] += 1
                done += k
        finally:
            srv.close()
        res.wall_s = time.monotonic() - t0
        return res

    def _isolate(self, res: Result, key: str, items: list[tuple[int, bytes]], failure: mt.ServerFailed) -> None:
        """The server died or hung in a batch: replay it input by input."""
        with mt.MpyServer(min(MPY_WATCHDOG_S, 10.0)) as srv:
            for kind, data in items:
                try:
                    srv.batch([(kind, data)])
                except mt.ServerFailed as e:
                    srv.kill()
                    if e.what == "hung":
                        res.hangs += 1
                    self._crash(res, bytes([kind]) + data, f"MicroPython process {e.what}", str(e))
                    res.outcomes[f"CRASH process {e.what}"] += 1
                    return
        self._crash(res, b"".join(bytes([k]) + len(d).to_bytes(2, "little") + d for k, d in items), f"MicroPython process {failure.what} (batch only)", str(failure))
        res.outcomes[f"CRASH process {failure.what}"] += 1

    # ---- the whole campaign --------------------------------------------------------------------------
    def run(self, counts: dict[str, tuple[int, int]]) -> list[Result]:
        with tempfile.TemporaryDirectory(prefix="spinemon-fuzz-") as workdir:
            for i, (key, (n_mut, n_hyp)) in enumerate(counts.items()):
                if n_mut:
                    m = Mutator(self.seed * 1000 + i)
                    if key.startswith("mpy_"):
                        res = self.run_mpy(key, n_mut, m)
                    else:
                        target, inputs, as_bytes = self.mutator_inputs(key, n_mut, m, workdir)
                        res = self.run_cpython(key, "mutator", target, inputs, as_bytes)
                    self._done(res)
                if n_hyp:
                    self._done(self.run_hypothesis(key, n_hyp, workdir))
        return self.results

    def _done(self, res: Result) -> None:
        self.results.append(res)
        self.log(f"  {res.target:<14} {res.engine:<10} {res.inputs:>9,} inputs  {res.crashes} crashes  {res.hangs} hangs  {res.wall_s:7.1f} s")


# ---- report --------------------------------------------------------------------------------------------
def table(results: list[Result]) -> str:
    rows = ["| target | engine | inputs | accepted | rejected | crashes | hangs | max ms/input | p99 ms/input | time s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        acc = r.inputs - r.rejected - r.crashes
        rows.append(f"| {r.target} | {r.engine} | {r.inputs:,} | {acc:,} | {r.rejected:,} | {r.crashes} | {r.hangs} | {r.max_ms:.2f} | {r.p99_ms:.3f} | {r.wall_s:.1f} |")
    total = sum(r.inputs for r in results)
    rows.append(f"| **total** | | **{total:,}** | | | **{sum(r.crashes for r in results)}** | **{sum(r.hangs for r in results)}** | {max((r.max_ms for r in results), default=0):.2f} | | {sum(r.wall_s for r in results):.1f} |")
    return "\n".join(rows)


def outcome_lists(results: list[Result]) -> str:
    out = []
    for r in results:
        out.append(f"- **{r.target}** ({r.engine}, {TARGET_TITLES[r.target]}): " + ", ".join(f"{k} {v:,}" for k, v in sorted(r.outcomes.items(), key=lambda kv: -kv[1])))
    return "\n".join(out)


def crash_lists(results: list[Result]) -> str:
    lines = []
    for r in results:
        for sig, n in r.signatures.items():
            lines.append(f"- {r.target} ({r.engine}): `{sig}` x{n:,}")
    return "\n".join(lines) if lines else "- none"


def docs_section(results: list[Result], argv: list[str], seed: int, total_s: float) -> str:
    total = sum(r.inputs for r in results)
    mpy_cmd = sum(r.inputs for r in results if r.target == "mpy_command")
    cmd = "python -m tests.fuzz.campaign" + ("" if not argv else " " + " ".join(argv))
    return f"""## Fuzzing

The fuzz campaign (issue 8) feeds mutated frames, byte streams and recordings
to every parser that takes bytes from outside: the protocol decoder
(`spinemon_protocol.decode`, `decode_command`, `cobs_decode`,
`StreamDecoder.feed`) under CPython and under MicroPython, the host's
`spinemon.core.stream.FrameDecoder.feed`, `spinemon.io.recording.load`, and the
firmware's command path (`Device.handle_command` on the fake board, in one
long-lived MicroPython process fed batches over stdin).

**Reproduce** (from the repository root, one process, about {total_s / 60:.0f} min here):

    .venv/bin/python -m tests.fuzz.campaign          # make fuzz
    .venv/bin/python -m tests.fuzz.campaign --scale 0.01 --no-docs   # a quick run

`make test` runs a short version of each target (tests/protocol/test_fuzz_smoke.py) and
replays every saved crashing input in tests/fuzz/crashes/.

**Inputs.** A seeded mutator (`tests/fuzz/mutator.py`, seed {seed}) starts from a
corpus of valid inputs (`tests/fuzz/corpus.py`): every frame type from the
encoders, SAMPLES frames from the simulated wearer (`spinemon.io.sim.simulate`),
a COMMAND for every opcode at its limits, COBS streams of those frames, and
small recordings written through the live path
(`spinemon.app.simrun.run_simulated`) and the format-1 fixture
`tests/fixtures/segmented-v1.spinrec` (both files). Mutations: bit flips, bytes set to 0,
0xFF, 0x7F, 0x80, inserted/deleted/duplicated ranges, splices of two inputs,
truncation and extension, and field-aware changes (SAMPLES count with the
block resized to match, mask, ranges, period; COMMAND opcode with the
arguments resized, arguments at and just past their limits, counter);
85 % of mutated frames get their CRC re-sealed so that mutations reach past
the CRC check. Recordings get raw damage (the loader must resynchronise) or
one record changed and its CRC-32s re-sealed (payload, kind, lying length
field, record number, non-finite host time, hostile JSON in META records),
records dropped/duplicated/swapped, or are cut anywhere. Hypothesis
(`tests/fuzz/strategies.py`) adds its own byte-level edits of the same corpus.

**What counts as a crash.** An exception other than the one each target may
raise (`ProtocolError`; `RecordingError`; none at all for `FrameDecoder.feed`,
`StreamDecoder.feed` and `Device.handle_command`), or a broken invariant:
accepted frames re-encode to the same bytes; `decode_command` agrees with
`decode`; `StreamDecoder` gives the same frames however the bytes are split;
a rejected frame changes only `FrameDecoder`'s rejection counters and every
SampleBlock is consistent; loaded records stand in the file where they say,
in order, **every undamaged record loads** (each record of the original that
lies wholly in the file's unchanged prefix or unchanged suffix), and a file
with an undamaged copy of its header always loads; the firmware answers every command with exactly the ACK/ERROR (code,
counter, opcode) that the protocol module and the counter rule predict, plus
STATUS for GET_STATUS, and counts rejections; the MicroPython decoders give
the CPython decoders' verdict on every input. A **hang** is an input taking
more than {HANG_S:g} s (CPython inputs are also interrupted after
{HARD_TIMEOUT_S:g} s; each MicroPython batch has a {MPY_WATCHDOG_S:g} s watchdog, and a
batch that kills or hangs the interpreter is replayed input by input).
Crashing inputs are saved to `tests/fuzz/crashes/<target>/` (with a .txt
saying why) and replayed by `tests/protocol/test_fuzz_smoke.py`.

**Figures** (the last full run: {time.strftime('%Y-%m-%d')}, Python {platform.python_version()},
{platform.machine()}, 2 shared cores; times per input include the target's
own checks, for MicroPython as measured inside the interpreter):
{total:,} inputs in total, {mpy_cmd:,} of them through the firmware's command path under MicroPython.

{table(results)}

Outcomes (accepted, or rejected by reason code):

{outcome_lists(results)}

Crashes and broken invariants by signature:

{crash_lists(results)}

Every crash signature has saved inputs in `tests/fuzz/crashes/<target>/`, replayed by
`tests/protocol/test_fuzz_smoke.py` (marked xfail(strict) while the bug is open). None is open.
Fixed: the `RecursionError` in `recording.load` (deeply nested JSON in a META record with a
valid CRC-32 is counted as a corrupt record) and a format-1 file with a byte of its magic
deleted refused as "not a spinemon recording" (now read from its first valid record).
"""


def write_docs(section: str, path: Path = DOCS) -> None:
    """Replace the "## Fuzzing" section of docs/reliability.md (or create it),
    leaving every other section as it is."""
    text = path.read_text() if path.exists() else "# Reliability\n\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == "## Fuzzing"), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + section + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
    path.write_text(new)


def parse_counts(scale: float, only: list[str] | None) -> dict[str, tuple[int, int]]:
    out = {}
    for k, (a, b) in DEFAULT_COUNTS.items():
        if only and k not in only:
            continue
        out[k] = (int(round(a * scale)), int(round(b * scale)))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.campaign", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1, help="mutator seed (default 1)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every target's input count (default 1: %s)" % ", ".join(f"{k} {a + b:,}" for k, (a, b) in DEFAULT_COUNTS.items()))
    p.add_argument("--target", action="append", choices=list(DEFAULT_COUNTS), help="run only this target (repeatable)")
    p.add_argument("--crash-dir", type=Path, default=CRASH_DIR, help=f"save crashing inputs here (default {CRASH_DIR.relative_to(ROOT)})")
    p.add_argument("--no-docs", action="store_true", help=f"do not rewrite the Fuzzing section of {DOCS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    print(f"spinemon fuzz campaign, seed {args.seed}")
    camp = Campaign(args.seed, args.crash_dir)
    results = camp.run(parse_counts(args.scale, args.target))
    total_s = time.monotonic() - t0
    print()
    print(table(results))
    print()
    print(outcome_lists(results))
    print()
    print("Crashes:")
    print(crash_lists(results))
    print(f"\ntotal {sum(r.inputs for r in results):,} inputs in {total_s:.0f} s")
    if not args.no_docs:
        write_docs(docs_section(results, argv, args.seed, total_s))
        print(f"wrote the Fuzzing section of {DOCS}")
    return 1 if any(r.crashes or r.hangs for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
