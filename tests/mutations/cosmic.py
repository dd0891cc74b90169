"""A broader mutation score with cosmic-ray (part of `make mutate`, not of
`make test`): the firmware's persistence (config_store.py), BLE security
(ble_link.py) and command-counter code (device.py: boot, handle_command,
_resync_counter, _save_counter) mutated one change at a time, each mutant
run against the firmware's MicroPython tests; and the host's persistence
code (spinemon/io/session_index.py, issue 27) in a copy of the package,
each mutant run against tests/io/test_session_index.py.

cosmic-ray mutates files in place, so it works on a temporary copy of
firmware/ that the tests are pointed at (SPINEMON_FIRMWARE_DIR,
tests/mpy_runner.py); the checkout is never touched.

Operators: the ones that change behaviour one decision at a time (negated
conditions, and/or swapped, True/False, comparison flipped to its
opposite, + and - swapped, exception handlers changed, loops skipped, ...);
cosmic-ray's NumberReplacer (every constant +-1: hundreds of mutants in
buffer sizes and UUID text) and the other cross-operator replacements
(a + b -> a ** b, ...) are left out. Of the mutants left (about 460), a
seeded random sample of --per-file (default 35) per file is run, to keep a
run near half an hour on 2 shared cores; --all runs every one.

    .venv/bin/python -m tests.mutations.cosmic [--report FILE] [--per-file N | --all] [--seed S] [--only FILE:Class.method]...
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"

# file -> functions/methods to mutate (None: the whole file)
SCOPE = {
    "config_store.py": None,
    "ble_link.py": {
        "BondStore.load",
        "BondStore.save",
        "BondStore.clear",
        "BondStore.set",
        "BleLink.start",
        "BleLink.pairing",
        "BleLink.forget_bonds",
        "BleLink.trusted",
        "BleLink._pairing_conn",
        "BleLink._owner_of",
        "BleLink._refuse_link",
        "BleLink._irq",
        "BleLink.poll",
        "BleLink.can_send",
        "BleLink.send_stream",
        "BleLink.send_status",
    },
    "device.py": {
        "Device.boot",
        "Device.handle_command",
        "Device._resync_counter",
        "Device._save_counter",
        "Device.pump_links",
        # issue 23: hardware faults
        "Device._follow_faults",
        "Device._send_answers",
        "Device.save_config",
        "Device.poll_imu",
    },
    # issue 23: the sampler's fault handling (resync, stall, lost and back)
    "sampler.py": {"Sampler.read", "Sampler.resync", "Sampler._start_imus", "Sampler._probe_lost", "Sampler.hold_fifos", "Sampler._layout"},
}

# comparison flipped to its opposite, and the other single-decision operators
OPERATORS = {
    "core/AddNot",
    "core/ReplaceUnaryOperator_Delete_Not",
    "core/ReplaceAndWithOr",
    "core/ReplaceOrWithAnd",
    "core/ReplaceTrueWithFalse",
    "core/ReplaceFalseWithTrue",
    "core/ExceptionReplacer",
    "core/ZeroIterationForLoop",
    "core/ReplaceBreakWithContinue",
    "core/ReplaceContinueWithBreak",
    "core/RemoveDecorator",
    "core/ReplaceBinaryOperator_Add_Sub",
    "core/ReplaceBinaryOperator_Sub_Add",
    "core/ReplaceComparisonOperator_Eq_NotEq",
    "core/ReplaceComparisonOperator_NotEq_Eq",
    "core/ReplaceComparisonOperator_Lt_GtE",
    "core/ReplaceComparisonOperator_LtE_Gt",
    "core/ReplaceComparisonOperator_Gt_LtE",
    "core/ReplaceComparisonOperator_GtE_Lt",
    "core/ReplaceComparisonOperator_Lt_LtE",
    "core/ReplaceComparisonOperator_LtE_Lt",
    "core/ReplaceComparisonOperator_Gt_GtE",
    "core/ReplaceComparisonOperator_GtE_Gt",
    "core/ReplaceComparisonOperator_Is_IsNot",
    "core/ReplaceComparisonOperator_IsNot_Is",
    "core/ReplaceComparisonOperator_In_NotIn",
    "core/ReplaceComparisonOperator_NotIn_In",
}

TESTS = [
    "tests/system/test_security.py",
    "tests/firmware/test_firmware_persistence.py",
    "tests/firmware/test_firmware_device.py",
    "tests/firmware/test_firmware_faults.py",
]

# host persistence code (issue 27: the session index), mutated in a copy of
# the spinemon package that the tests import first (PYTHONPATH), run against
# its own tests
HOST = ROOT / "host"
HOST_SCOPE = {
    "session_index.py": None,
}
HOST_FILES = {"session_index.py": "spinemon/io/session_index.py"}
HOST_TESTS = ["tests/io/test_session_index.py"]


def _ranges(path: Path, names: set[str]) -> list[tuple[int, int]]:
    """Line ranges of the named functions (Class.method)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and f"{node.name}.{fn.name}" in names:
                    out.append((fn.lineno, fn.end_lineno))
        elif isinstance(node, ast.FunctionDef) and node.name in names:
            out.append((node.lineno, node.end_lineno))
    missing = names - {f"{c.name}.{f.name}" for c in tree.body if isinstance(c, ast.ClassDef) for f in c.body if isinstance(f, ast.FunctionDef)}
    if missing:
        raise SystemExit(f"{path.name}: no such functions {sorted(missing)}; update SCOPE")
    return out


def _session(exe: str, scope: dict, kind: str, args) -> tuple[list, dict[str, int], float]:
    """One cosmic-ray session over ``scope`` (firmware files, or host files
    with kind "host"): mutants sampled, run, their results returned."""
    with tempfile.TemporaryDirectory(prefix="spinemon-cosmic-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ)
        if kind == "host":
            shutil.copytree(HOST / "spinemon", tmp / "host" / "spinemon", ignore=shutil.ignore_patterns("__pycache__"))
            files = {f: tmp / "host" / HOST_FILES[f] for f in scope}
            tests = HOST_TESTS
            env["PYTHONPATH"] = os.pathsep.join([str(tmp / "host"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            marker: list[str] = []
        else:
            fw = tmp / "firmware"
            shutil.copytree(FIRMWARE, fw, ignore=shutil.ignore_patterns("__pycache__"))
            files = {f: fw / f for f in scope}
            tests = TESTS
            env["SPINEMON_FIRMWARE_DIR"] = str(fw)
            marker = ["-m", "micropython"]
        modules = [str(files[f]) for f in scope]
        test_cmd = " ".join([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *marker, *tests])
        cfg = tmp / "cosmic-ray.toml"
        cfg.write_text(
            "[cosmic-ray]\n"
            f"module-path = {json.dumps(modules)}\n"
            f"timeout = {args.timeout}\n"
            "excluded-modules = []\n"
            f"test-command = {json.dumps(test_cmd)}\n"
            "[cosmic-ray.distributor]\n"
            'name = "local"\n'
        )
        db = tmp / "session.sqlite"
        # the unmutated copy must pass, or no mutant can be judged
        base = subprocess.run(test_cmd.split(), cwd=ROOT, env=env, capture_output=True, text=True)
        if base.returncode != 0:
            print(base.stdout[-3000:])
            raise SystemExit(f"the tests fail on the unmutated {kind} copy")
        subprocess.run([exe, "init", str(cfg), str(db)], check=True, cwd=ROOT, env=env)
        con = sqlite3.connect(db)
        eligible: dict[str, list[str]] = {}
        for job, mod, op, row in con.execute("select job_id, module_path, operator_name, start_pos_row from mutation_specs order by module_path, start_pos_row, start_pos_col, operator_name, occurrence"):
            name = Path(mod).name
            names = scope[name]
            ok_op = op in OPERATORS
            ok_line = names is None or any(a <= row <= b for a, b in _ranges(files[name], names))
            if ok_op and ok_line:
                eligible.setdefault(name, []).append(job)
        rng = random.Random(args.seed)
        keep = []
        for name in sorted(eligible):
            jobs = eligible[name]
            keep += jobs if args.all or len(jobs) <= args.per_file else rng.sample(jobs, args.per_file)
        population = {k: len(v) for k, v in eligible.items()}
        con.execute("create temp table keep (job_id varchar primary key)")
        con.executemany("insert into keep values (?)", [(j,) for j in keep])
        con.execute("delete from mutation_specs where job_id not in (select job_id from keep)")
        con.execute("delete from work_items where job_id not in (select job_id from keep)")
        con.commit()
        con.close()
        print(f"{len(keep)} {kind} mutants to run, of {sum(population.values())} eligible {population}", flush=True)
        t0 = time.monotonic()
        subprocess.run([exe, "exec", str(cfg), str(db)], check=True, cwd=ROOT, env=env)
        wall = time.monotonic() - t0
        con = sqlite3.connect(db)
        rows = con.execute(
            "select s.module_path, s.operator_name, s.start_pos_row, s.definition_name, r.worker_outcome, r.test_outcome, r.diff "
            "from mutation_specs s join work_results r on s.job_id = r.job_id"
        ).fetchall()
        con.close()
        if args.report:
            shutil.copy(db, args.report.with_suffix(f".{kind}.sqlite"))  # the whole session, for cr-report
    return rows, population, wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, default=None, help="write the survivors and the score (JSON) here")
    ap.add_argument("--timeout", type=float, default=180.0, help="per mutant, s")
    ap.add_argument("--per-file", type=int, default=35, help="mutants sampled per file (seeded)")
    ap.add_argument("--all", action="store_true", help="run every mutant, no sample")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", nargs="+", choices=sorted(SCOPE) + sorted(HOST_SCOPE), default=None, help="mutate these files only (default: all in scope)")
    ap.add_argument("--only", action="append", default=[], metavar="FILE:Class.method",
                    help="mutate only these functions (repeatable), e.g. ble_link.py:BleLink._owner_of: a targeted run of new code")
    args = ap.parse_args(argv)
    every = {**SCOPE, **HOST_SCOPE}
    scope = {f: every[f] for f in (args.files or every)}
    if args.only:
        scope = {}
        for item in args.only:
            f, _, fn = item.partition(":")
            if f not in every or not fn:
                raise SystemExit(f"--only {item!r}: give FILE:Class.method with FILE one of {', '.join(every)}")
            scope.setdefault(f, set()).add(fn)
    exe = shutil.which("cosmic-ray", path=str(Path(sys.executable).parent))
    if exe is None:
        raise SystemExit("cosmic-ray is not installed: pip install -e '.[mutate]' (make mutate does)")
    fw_scope = {f: v for f, v in scope.items() if f in SCOPE}
    host_scope = {f: v for f, v in scope.items() if f in HOST_SCOPE}
    rows: list = []
    population: dict[str, int] = {}
    wall = 0.0
    if fw_scope:
        r, pop, w = _session(exe, fw_scope, "firmware", args)
        rows += r
        population.update(pop)
        wall += w
    if host_scope:
        r, pop, w = _session(exe, host_scope, "host", args)
        rows += r
        population.update(pop)
        wall += w
    per: dict[str, dict[str, int]] = {}
    survivors = []
    for mod, op, row, fn, worker, test, diff in rows:
        worker, test = (worker or "").lower(), (test or "").lower()  # cosmic-ray stores NORMAL / KILLED / SURVIVED
        name = Path(mod).name
        d = per.setdefault(name, {"mutants": 0, "killed": 0, "survived": 0, "incompetent": 0, "other": 0})
        d["mutants"] += 1
        if worker != "normal":
            d["other"] += 1  # timeout or abnormal end: reported apart, not counted as killed
        elif test == "killed":
            d["killed"] += 1
        elif test == "survived":
            d["survived"] += 1
            survivors.append({"file": name, "line": row, "function": fn, "operator": op, "diff": diff})
        else:
            d["incompetent"] += 1
    total = {k: sum(d[k] for d in per.values()) for k in ("mutants", "killed", "survived", "incompetent", "other")}
    judged = total["killed"] + total["survived"]
    score = total["killed"] / judged if judged else 0.0
    print(f"\n{'file':18s} {'mutants':>8s} {'killed':>7s} {'survived':>9s} {'other':>6s} {'score':>6s}")
    for name, d in sorted(per.items()):
        j = d["killed"] + d["survived"]
        print(f"{name:18s} {d['mutants']:8d} {d['killed']:7d} {d['survived']:9d} {d['other'] + d['incompetent']:6d} {(d['killed'] / j if j else 0):6.1%}")
    print(f"{'total':18s} {total['mutants']:8d} {total['killed']:7d} {total['survived']:9d} {total['other'] + total['incompetent']:6d} {score:6.1%}   ({wall:.0f} s)")
    for s in survivors:
        print(f"  survived: {s['file']}:{s['line']} {s['function']} {s['operator']}")
    if args.report:
        args.report.write_text(json.dumps({"per_file": per, "eligible": population, "total": total, "score": score, "wall_s": wall, "seed": args.seed, "survivors": survivors}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
