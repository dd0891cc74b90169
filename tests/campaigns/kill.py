"""Kill campaign: SIGKILL the live recorder at random moments.

Each run starts a child process that plays a simulated session through the
live path (``SimTransport`` -> ``session.run_live`` -> ``RecordingWriter``)
into a recording shared by a group of runs (``resume=True``: every run after
the first writes a new segment). After every record reached the operating
system the child writes an acknowledgement ``(segment, records, offset)`` to
a pipe. The parent kills the child with SIGKILL at a random moment, reads the
last acknowledgement, and checks:

- the recording (all its segments) loads;
- the acknowledged segment holds at least the acknowledged records, byte for
  byte up to the acknowledged offset, and its RX records are the simulated
  frames in order;
- earlier segments were not touched (their bytes are unchanged);
- replay runs over the whole recording as one session.

    python -m tests.campaigns.kill [--kills 200] [--group 10] [--seed 1] [--jobs 2]

Exit status 0 when every check held for every kill.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ACK = struct.Struct("<IQQ")  # segment, records written, file offset after them
SPEED = 25.0  # x real time: a ~25 s session is recorded in about one second


def sim_frames() -> list[tuple[bytes, float]]:
    """The simulated session the children play: (frame, send time)."""
    from spinemon.io import sim

    sets = [sim.SetSpec("deadlift", 4, {2: "rounding"}, rest_s=2.0)]
    session = sim.simulate(sets, seed=3, rom=False)
    return list(zip(session.frames, session.frame_times.tolist()))


def save_frames(path: Path, frames: list[tuple[bytes, float]]) -> None:
    import pickle

    path.write_bytes(pickle.dumps(frames))


def load_frames(path: str) -> list[tuple[bytes, float]]:
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)


# ---------------------------------------------------------------------------- child
def child(out: str, ack_fd: int, frames_path: str) -> None:
    import asyncio

    from spinemon.core.calibration import CalibrationSettings
    from spinemon.core.pipeline import Pipeline, PipelineSettings
    from spinemon.io.recording import RecordingWriter
    from spinemon.app.session import header_for, run_live
    from spinemon.io.transport import SimTransport

    frames = load_frames(frames_path)
    pipeline = Pipeline(PipelineSettings(exercise="deadlift", calibration=CalibrationSettings(rom=False)))
    box = {"segment": 0}

    def ack(records: int, offset: int) -> None:
        os.write(ack_fd, ACK.pack(box["segment"], records, offset))

    # the segment number is known once the writer picked its file; the first
    # ack (the header) comes from inside __init__, so learn it beforehand
    from spinemon.io.recording import segment_paths

    box["segment"] = len(segment_paths(out)) + 1
    recorder = RecordingWriter(out, header_for(pipeline.settings, "sim:kill-campaign"), resume=True, on_written=ack)
    assert recorder.segment == box["segment"]
    transport = SimTransport(frames, speed=SPEED)

    async def main():
        await transport.connect()
        await run_live(transport, pipeline, recorder)

    asyncio.run(main())


# ---------------------------------------------------------------------------- parent
def _segment_digest(path: Path, upto: int) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(upto)).hexdigest()


def one_kill(out: Path, delay: float, expected_frames: list[bytes], earlier: dict, from_start: bool = False, frames_path: str = "", do_replay: bool = True) -> dict:
    """One run killed ``delay`` s after its first acknowledgement (or, with
    ``from_start``, after it was spawned: start-up and header creation)."""
    from spinemon.io.recording import KIND_RX, load, segment_paths
    from spinemon.app.replay import replay

    r, w = os.pipe()
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.campaigns.kill", "--child", str(out), str(w), frames_path],
        pass_fds=(w,),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(w)
    os.set_blocking(r, False)
    buf = bytearray()
    t_first = time.monotonic() if from_start else None
    deadline = time.monotonic() + 60.0
    killed_at = None
    while True:
        try:
            chunk = os.read(r, 65536)
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk
            if t_first is None:
                t_first = time.monotonic()
        elif chunk == b"":
            break  # the child ended (or was killed) and the pipe is drained
        now = time.monotonic()
        if t_first is not None and killed_at is None and now - t_first >= delay:
            proc.send_signal(signal.SIGKILL)
            killed_at = now
        if now > deadline:
            proc.kill()
            raise RuntimeError("the child did not start")
        if chunk is None:
            time.sleep(0.001)
    os.close(r)
    rc = proc.wait()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    n = len(buf) // ACK.size
    res = {"delay_s": round(delay, 3), "from_start": from_start, "rc": rc, "acks": n, "ok": False}
    if killed_at is None:
        res["note"] = "finished before the kill"
    if rc not in (0, -signal.SIGKILL):
        res["error"] = f"child failed with {rc}: {err[-2000:]}"
        return res
    if n == 0:
        # killed before its header was on disk: nothing acknowledged, and
        # no segment file may appear without a header (what exists must load)
        res["note"] = "killed before the header was acknowledged"
        if segment_paths(out):
            rec = load(out)
            res["segments"] = len(rec.segments)
        res["ok"] = True
        return res
    seg, records, offset = ACK.unpack_from(buf, (n - 1) * ACK.size)
    rec = load(out)  # RecordingError here fails the campaign
    segs = rec.segments
    res.update(segment=seg, acked_records=records, acked_offset=offset, segments=len(segs))
    problems = []
    if len(segs) < seg:
        problems.append(f"segment {seg} acknowledged but only {len(segs)} segments load")
    else:
        s = segs[seg - 1]
        size = s.path.stat().st_size
        if s.count < records:
            problems.append(f"segment {seg}: {s.count} records loaded, {records} acknowledged")
        if size < offset:
            problems.append(f"segment {seg}: file has {size} bytes, {offset} acknowledged")
        rx = [r.payload for r in rec.records[s.first : s.first + s.count] if r.kind == KIND_RX]
        if rx != expected_frames[: len(rx)]:
            problems.append(f"segment {seg}: RX records differ from the frames played")
        earlier[seg] = (s.path, offset, _segment_digest(s.path, offset))
    for k, (path, off, digest) in earlier.items():
        if k != seg and _segment_digest(path, off) != digest:
            problems.append(f"segment {k} changed after a later run")
    if do_replay:
        try:
            rp = replay(rec)
            res["replay_frames"] = rp.frames
            if rp.frames != sum(1 for r in rec.records if r.kind == KIND_RX):
                problems.append("replay did not walk every RX record of every segment")
        except Exception as e:  # noqa: BLE001 - any failure is a finding
            problems.append(f"replay failed: {e!r}")
    res["problems"] = problems
    res["ok"] = not problems
    return res


def campaign(kills: int, group: int, seed: int, jobs: int, workdir: Path) -> dict:
    frames = sim_frames()
    frames_path = workdir / "frames.pickle"
    save_frames(frames_path, frames)
    expected = [f for f, _ in frames]
    duration = (frames[-1][1] - frames[0][1]) / SPEED
    rng = random.Random(seed)
    groups = [list(range(g, min(kills, g + group))) for g in range(0, kills, group)]
    # one kill in 8 lands in start-up / header creation, the rest during the session
    from_start = [rng.random() < 0.125 for _ in range(kills)]
    delays = [rng.uniform(0.0, 2.5) if fs else rng.uniform(0.0, duration * 1.05) for fs in from_start]
    results: list[dict | None] = [None] * kills

    def run_group(gi: int) -> None:
        out = workdir / f"group{gi:03d}.spinrec"
        earlier: dict = {}
        for k in groups[gi]:
            try:
                results[k] = one_kill(out, delays[k], expected, earlier, from_start[k], str(frames_path), do_replay=(k == groups[gi][-1]))
            except Exception as e:  # noqa: BLE001
                results[k] = {"delay_s": delays[k], "ok": False, "error": repr(e)}
            results[k]["kill"] = k + 1
            r = results[k]
            print(f"kill {k + 1:3d}/{kills}: after {r['delay_s']:.3f} s, segment {r.get('segment', '-')}, "
                  f"{r.get('acked_records', 0)} records acknowledged, {'ok' if r['ok'] else 'FAILED ' + str(r.get('problems') or r.get('error'))}",
                  flush=True)

    t0 = time.monotonic()
    with ThreadPoolExecutor(jobs) as ex:
        list(ex.map(run_group, range(len(groups))))
    done = [r for r in results if r is not None]
    failed = [r for r in done if not r["ok"]]
    summary = {
        "kills": len(done),
        "failed": len(failed),
        "killed_mid_session": sum(1 for r in done if "note" not in r),
        "killed_before_header": sum(1 for r in done if r.get("note") == "killed before the header was acknowledged"),
        "finished_before_kill": sum(1 for r in done if r.get("note") == "finished before the kill"),
        "replays": sum(1 for r in done if "replay_frames" in r),
        "records_acknowledged_total": sum(r.get("acked_records", 0) for r in done),
        "max_segments": max((r.get("segments", 0) for r in done), default=0),
        "seconds": round(time.monotonic() - t0, 1),
        "failures": failed[:10],
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.campaigns.kill", description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=3, metavar=("OUT", "ACK_FD", "FRAMES"), help=argparse.SUPPRESS)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--group", type=int, default=10, help="runs (segments) per recording")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dir", help="work directory (default: a temporary one)")
    ap.add_argument("--json", help="write the summary here")
    ns = ap.parse_args(argv)
    if ns.child:
        child(ns.child[0], int(ns.child[1]), ns.child[2])
        return 0
    with tempfile.TemporaryDirectory(prefix="spinemon-kill-") as tmp:
        work = Path(ns.dir) if ns.dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        summary = campaign(ns.kills, ns.group, ns.seed, ns.jobs, work)
    print(json.dumps(summary, indent=2))
    if ns.json:
        Path(ns.json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
