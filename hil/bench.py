"""Run several scenarios: in parallel processes on the simulated bench (each
scenario gets its own simulated board), one after another on a real board."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from hil.runner import ScenarioResult, run_scenario
from hil.scenario import Scenario, load


def _run_named(name: str, port: str | None, rig: bool | None) -> ScenarioResult:
    return run_scenario(load(name), port, rig=rig)


def run_bench(scenarios: list[Scenario], port: str | None = None, *, jobs: int = 3, rig: bool | None = None) -> list[ScenarioResult]:
    """Results in the order given. A real port runs one scenario at a time
    (one board); the simulated bench runs up to ``jobs`` at once."""
    if port is not None and not port.lower().startswith("mpsim://"):
        jobs = 1
    if jobs <= 1 or len(scenarios) <= 1:
        return [run_scenario(s, port, rig=rig) for s in scenarios]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(scenarios)), mp_context=ctx) as ex:
        futs = [ex.submit(_run_named, s.name, port, rig) if s.path is None or s.path.parent.name == "scenarios" else ex.submit(run_scenario, s, port, rig=rig) for s in scenarios]
        return [f.result() for f in futs]
