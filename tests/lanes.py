"""`make test`: the suite in two lanes, side by side on the machine's cores.

Most tests are CPU work: they run on ``-n 2`` workers (pytest-xdist), niced,
so they take whatever CPU is free. The tests marked ``realtime`` wait on the
wall clock (the firmware under MicroPython paced in real time, a link that
delivers frames at the wearable's rate, ACK timeouts): they spend most of
their time asleep, so on a worker of their own beside the two they cost
little CPU and save their whole sleeping time. They run one at a time, at
normal priority, so their deadlines (a guard's 0.1 s, a frame every 80 ms)
are met although the CPU lane keeps both cores busy.

The real-time lane's output is printed after the CPU lane's; the exit
status is the first failing lane's (pytest's own codes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def environment() -> dict[str, str]:
    """The lanes' environment: bytecode cached (in .venv/pycache, out of the
    source tree). With PYTHONDONTWRITEBYTECODE set, as some shells and CI
    images do, every pytest process would compile and assertion-rewrite
    each test module again (~6 s of CPU per process to collect), and every
    `spinemon` subprocess a test starts would compile the package again."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(ROOT / ".venv" / "pycache"))
    return env


def warm_numba_cache() -> None:
    """Compile the numba kernels once, into numba's on-disk cache, before the
    lanes start: on a fresh clone every worker (and every `spinemon`
    subprocess a test starts) would otherwise compile them at the same time
    (~8 s of CPU each). Nothing without numba (the `fast` extra)."""
    code = "from spinemon.core import angles, fusion_kernel, rep_kernel; fusion_kernel.warm_up(); rep_kernel.warm_up(); angles.warm_up()"
    subprocess.call([sys.executable, "-c", code], cwd=ROOT, env=environment())


def main(argv: list[str]) -> int:
    extra = list(argv)
    warm_numba_cache()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        env = environment()
        realtime = subprocess.Popen(
            [*PYTEST, "-m", "realtime", *extra], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        nice = ["nice", "-n", "10"] if os.name == "posix" else []
        try:
            cpu = subprocess.call([*nice, *PYTEST, "-n", "2", "--dist", "loadfile", "-m", "not realtime", *extra], cwd=ROOT, env=env)
        finally:
            rt = realtime.wait()
        log.seek(0)
        print("\n==== the real-time lane (tests marked realtime, one at a time) ====", flush=True)
        sys.stdout.write(log.read())
    print(f"\nCPU lane: exit {cpu}; real-time lane: exit {rt}", flush=True)
    if extra:  # a selection (-k, a path) may leave one lane with nothing to run: pytest's 5, not a failure
        cpu, rt = (0 if cpu == 5 else cpu), (0 if rt == 5 else rt)
    return cpu or rt


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
