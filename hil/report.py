"""The run report: JSON for machines, a table for people."""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

from hil.runner import ScenarioResult


def _f(x: float | None, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return fmt.format(x * scale)


def report_dict(results: list[ScenarioResult], port: str | None) -> dict:
    rows = [r.as_dict() for r in results]
    return {
        "type": "spinemon-hil-report",
        "version": 1,
        "created_unix": time.time(),
        "host": platform.node(),
        "port": port or "mpsim:// (simulated board)",
        "passed": sum(r.status == "pass" for r in results),
        "failed": sum(r.status in ("fail", "error") for r in results),
        "skipped": sum(r.status == "skip" for r in results),
        "scenarios": rows,
    }


def write_report(path: str | Path, results: list[ScenarioResult], port: str | None) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(report_dict(results, port), indent=2, default=str) + "\n")
    return p


def table(results: list[ScenarioResult]) -> str:
    head = (
        "scenario", "result", "host err mean/max deg", "dev err mean/max deg",
        "latency med/p95/max ms", "lost", "bad", "fw",
    )
    lines = []
    for r in results:
        d = r.as_dict()
        he, de = d["host_angle_error"] or {}, d["device_angle_error"] or {}
        lat = d["latency_s"] or d["guard_latency_s"] or {}
        kind = "" if d["latency_s"] or not d["guard_latency_s"] else " (guard)"
        s = d["stream"] or {}
        lines.append((
            r.name,
            r.status.upper(),
            f"{_f(he.get('mean'))} / {_f(he.get('max'))}",
            f"{_f(de.get('mean'))} / {_f(de.get('max'))}",
            f"{_f(lat.get('median'), 1000, '{:.0f}')} / {_f(lat.get('p95'), 1000, '{:.0f}')} / {_f(lat.get('max'), 1000, '{:.0f}')}{kind}",
            str(s.get("lost_samples", "-")),
            str(s.get("bad_frames", 0) + s.get("framing_errors", 0)) if s else "-",
            r.firmware or "-",
        ))
    widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
    for row in lines:
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    for r in results:
        for f in r.failures:
            out.append(f"  {r.name}: {f}")
        for n in r.notes:
            out.append(f"  {r.name} (note): {n}")
    return "\n".join(out)
