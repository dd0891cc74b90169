"""Mutation check of the recording code: hand-made mutants of the loader's
and the writer's checks, each run against the recording tests.

Every mutant is one source edit of host/spinemon/io/recording.py (each removes
or weakens one check the format relies on, or brings back a bug that was
fixed). For each, a copy of the host package with the edit applied is put
first on PYTHONPATH and the focused tests run (stopping at the first
failure); a mutant is *killed* when a test fails, *survives* when all pass.

    python -m tests.campaigns.mutants [--jobs 2] [--only ID ...] [--list]   # make mutate-recording

Exit status 0 when every mutant was killed (and the unmutated copy passed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "host" / "spinemon" / "io" / "recording.py"

#: the tests run against each mutant, fastest killers first
TESTS = [
    "tests/io/test_recording.py",
    "tests/io/test_recording_v1.py",
    "tests/system/test_reliability.py",
    "tests/protocol/test_fuzz_smoke.py",
    "tests/app/test_cli.py::test_truncated_recording_replays_with_a_note",
    "tests/app/test_cli.py::test_a_damaged_recording_replays_with_notes_saying_what_was_repaired",
    "tests/app/test_cli.py::test_a_format_1_recording_replays_from_the_command_line",
]
DESELECT = "not mpy_ and not micropython"

# (id, what the mutant does, the source text, what it becomes); the text must occur exactly once
MUTANTS: list[tuple[str, str, str, str]] = [
    # ---- format 2: record checks
    ("no-header-crc", "the header CRC-32 is not checked on the record path",
     "                mark == MARK\n                and hcrc == crc32(view[pos : pos + head])\n                and kind in known\n",
     "                mark == MARK\n                and kind in known\n"),
    ("no-header-crc-scan", "the header CRC-32 is not checked when resynchronising",
     "        mark != MARK\n        or hcrc != zlib.crc32(data[pos : pos + _HEAD.size])\n        or kind",
     "        mark != MARK\n        or kind"),
    ("no-record-crc", "the record CRC-32 is not checked",
     "elif unpack_crc(data, body + length)[0] == crc32(view[pos : body + length]):",
     "elif True:"),
    ("columnar-no-header-crc", "the columnar path does not check its records' header CRC-32s",
     "            ok = hcrc == heads[\"hcrc\"][:m]\n",
     "            ok = hcrc == hcrc\n"),
    ("columnar-no-record-crc", "the columnar path does not check its records' CRC-32s",
     "            ok = crcs == residue\n",
     "            ok = crcs == crcs\n"),
    ("no-kind-check", "a record of an unknown kind is taken",
     "                and kind in known\n                and length <= max_payload\n",
     "                and length <= max_payload\n"),
    ("past-eof-is-a-cut", "a length past the end means a cut at once (the issue-12 bug)",
     "            if end > n:\n                torn = True\n",
     "            if end > n:\n                out.truncated = True\n                break\n"),
    ("no-resync", "a damaged record loses the rest of the file",
     "            nxt = _next_header(data, pos + 1)\n        if nxt < 0:  # nothing valid after pos",
     "            nxt = -1\n        if nxt < 0:  # nothing valid after pos"),
    ("trust-length", "after a damaged payload, always jump by the length (no check of the next header)",
     "if h is not None and not torn and (end == n or _header_at(data, end) is not None):",
     "if h is not None and not torn:"),
    ("scan-through-payload", "after a damaged payload, scan from the next byte (never jump by the length)",
     "if h is not None and not torn and (end == n or _header_at(data, end) is not None):",
     "if False:"),
    ("no-fold", "the header's copy is not folded into it",
     "seq == prev and view[pos:end] == view[last[0] : last[1]]\n",
     "False\n"),
    ("fold-by-number", "a record with the number of the one before is folded whatever it holds",
     "seq == prev and view[pos:end] == view[last[0] : last[1]]\n",
     "seq == prev\n"),
    ("count-stretch-as-one", "a damaged stretch counts as one lost record",
     "out.lost += seq - prev - 1",
     "out.lost += min(1, seq - prev - 1)"),
    ("no-zero-tail", "zeros at the end are corruption, not a cut",
     "if torn or (z - pos < HEAD_SIZE if h is None else z <= end - _CRC.size):",
     "if torn or n - pos < HEAD_SIZE:"),
    ("zero-tail-too-lenient", "a last record whose CRC ends in zero bytes counts as cut",
     "if torn or (z - pos < HEAD_SIZE if h is None else z <= end - _CRC.size):",
     "if torn or (z - pos < HEAD_SIZE if h is None else z < end):"),
    ("pad-is-a-record", "PAD records are loaded as records",
     "                if kind != KIND_PAD:\n",
     "                if True:\n"),
    # ---- format 2: header
    ("header-any-format", "a header of another format stands in for this one",
     "                if h.get(\"format\") == fmt:\n",
     "                if True:\n"),
    ("header-first-record-only", "only the first record may be the header",
     "for i, r in enumerate(first[:8]):",
     "for i, r in enumerate(first[:1]):"),
    ("keep-forged-record-zero", "records numbered 0 before the header are kept",
     "            records = parsed.records = _cut_pieces(records, at, parsed.count - at)\n            parsed.count -= at\n",
     "            pass\n"),
    ("magic-decides", "the magic decides the format, not the first record",
     "    if _header_at(data, m) is not None:\n        fmt = 2\n",
     "    if False:\n        fmt = 2\n"),
    ("no-magic-repair-v2", "a damaged magic loses a format-2 file",
     "        first = _next_header(data, 0)\n        if first >= 0:",
     "        first = -1\n        if first >= 0:"),
    ("no-magic-repair-v1", "a damaged magic loses a format-1 file",
     "        first = _next_v1(data, 0)\n        if first >= 0:",
     "        first = -1\n        if first >= 0:"),
    # ---- format 1
    ("v1-past-eof-is-a-cut", "format 1: a length past the end means a cut at once (the old bug)",
     "        nxt = _next_v1(data, pos + 1)\n        if nxt < 0:",
     "        nxt = -1 if torn else _next_v1(data, pos + 1)\n        if nxt < 0:"),
    ("v1-no-crc", "format 1: the CRC-32 is not checked",
     "    return end if crc == zlib.crc32(view[body : body + length], zlib.crc32(view[pos + 2 : body])) else -1",
     "    return end"),
    ("v1-no-resync", "format 1: a damaged record loses the rest",
     "        nxt = _next_v1(data, pos + 1)\n        if nxt < 0:",
     "        nxt = -1\n        if nxt < 0:"),
    # ---- segments
    ("bad-segment-loses-all", "an unreadable segment makes the whole recording unloadable",
     "            first_error = first_error or e\n            unreadable.append((q, str(e)))\n            continue\n",
     "            raise\n"),
    ("stray-segment-stops", "a segment of another session stops the loading (the old behaviour)",
     "            unreadable.append((q, f\"{q} belongs to another session\"))\n            continue\n",
     "            break\n"),
    ("no-strict", "--strict does not refuse a cut recording",
     "        if strict and parsed.truncated:",
     "        if False:"),
    # ---- writer
    ("one-header-copy", "the writer writes the header once",
     "    return MAGIC + rec + pad + rec\n",
     "    return MAGIC + rec\n"),
    ("copy-in-the-same-block", "the header's copy follows the header at once (one bad block loses both)",
     "    copy_at = -(-(used + RECORD_OVERHEAD) // BLOCK) * BLOCK\n",
     "    copy_at = used + RECORD_OVERHEAD\n"),
    ("header-not-synced", "the header block is not fsync'ed before the file appears",
     "            self._write_raw(block, sync=True)\n",
     "            self._write_raw(block, sync=False)\n"),
    ("no-record-numbers", "every record gets the same number",
     "        self._seq += 1\n",
     "        pass\n"),
]


def mutate(source: str, old: str, new: str) -> str:
    if source.count(old) != 1:
        raise ValueError(f"mutant text occurs {source.count(old)} times in recording.py (expected once): {old[:60]!r}")
    return source.replace(old, new)


def run_one(mid: str, source: str, workdir: Path, timeout: float) -> dict:
    """Run the tests against ``source`` as recording.py: killed (a test failed) or survived."""
    pkg = workdir / mid / "host"
    shutil.copytree(ROOT / "host" / "spinemon", pkg / "spinemon", ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "spinemon" / "io" / "recording.py").write_text(source)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(pkg), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # the copy must be what the tests import
    probe = subprocess.run([sys.executable, "-c", "import spinemon.io.recording as r; print(r.__file__)"], env=env, cwd=ROOT, capture_output=True, text=True)
    if Path(probe.stdout.strip()).resolve() != (pkg / "spinemon" / "io" / "recording.py").resolve():
        raise RuntimeError(f"{mid}: the tests would not import the mutant ({probe.stdout.strip() or probe.stderr.strip()})")
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-k", DESELECT, *TESTS]
    try:
        r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        rc, out = r.returncode, r.stdout
    except subprocess.TimeoutExpired:
        rc, out = -1, "timeout"
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in out.splitlines() if line.startswith("FAILED ") or line.startswith("ERROR ")]
    return {"id": mid, "killed": rc != 0, "rc": rc, "by": failed[:1], "seconds": round(time.monotonic() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.campaigns.mutants", description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", action="append", help="run only this mutant (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant run")
    args = ap.parse_args(argv)
    source = SOURCE.read_text()
    chosen = [m for m in MUTANTS if not args.only or m[0] in args.only]
    if args.list:
        for mid, what, _, _ in chosen:
            print(f"{mid:28s} {what}")
        return 0
    sources = {mid: mutate(source, old, new) for mid, _, old, new in chosen}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spinemon-mutants-") as d:
        work = Path(d)
        base = run_one("unmutated", source, work, args.timeout)
        if base["killed"]:
            print(f"the unmutated code fails the tests ({base['by']}); fix that first")
            return 2
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            results = list(ex.map(lambda m: run_one(m[0], sources[m[0]], work, args.timeout), chosen))
    killed = sum(r["killed"] for r in results)
    what = {m[0]: m[1] for m in MUTANTS}
    for r in results:
        state = "killed " if r["killed"] else "SURVIVED"
        by = f" by {r['by'][0]}" if r["by"] else ("" if not r["killed"] else f" (rc {r['rc']})")
        print(f"{state} {r['id']:28s} {what[r['id']]}{by} [{r['seconds']} s]")
    print(f"\nmutation score: {killed}/{len(results)} mutants killed ({100.0 * killed / max(1, len(results)):.0f} %), {time.monotonic() - t0:.0f} s")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
