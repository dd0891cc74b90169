"""Run a simulated wearer through the live path (used by `demo` and `simulate`).

The simulated lifter announces each set one second before its first rep (as
a lifter would tap "next set: deadlift" in the app); the simulated wearable
streams its frames through :class:`~spinemon.io.transport.SimTransport` into
:func:`~spinemon.app.session.run_live`, which records them and sends alerts back
to the simulated motor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from spinemon.app.results import SessionResult
from spinemon.app.session import header_for, run_live
from spinemon.core.alerts import Alert
from spinemon.core.calibration import Calibration
from spinemon.core.pipeline import FrameResult, Pipeline, PipelineSettings
from spinemon.errors import ConfigError
from spinemon.io import sim
from spinemon.io.recording import RecordingWriter
from spinemon.io.transport import Label, SimTransport

LABEL_LEAD_S = 1.0


@dataclass
class SimulatedRun:
    session: sim.SimSession
    result: SessionResult
    transport: SimTransport
    recording: Path | None


def labels_for(session: sim.SimSession) -> list[tuple[float, Label]]:
    return [(st.t_start - LABEL_LEAD_S, Label(st.set, st.exercise, st.named_side)) for st in session.sets]


def run_simulated(
    sets: Sequence[sim.SetSpec],
    seed: int,
    *,
    out: Path | None = None,
    speed: float = 0.0,
    sim_settings: sim.SimSettings | None = None,
    settings: PipelineSettings | None = None,
    rom: bool = True,
    labels: bool = True,
    on_alert: Callable[[Alert], None] | None = None,
    on_frame: Callable[[FrameResult, Pipeline], None] | None = None,
    on_calibrated: Callable[[Calibration], None] | None = None,
    overwrite: bool = False,
    on_progress: Callable[[float, float], None] | None = None,
) -> SimulatedRun:
    """Simulate ``sets`` and run them through the live path; record to ``out``
    (``overwrite``: over an existing recording, ``--force``).
    ``on_progress(done, total)``: frames through the live path so far, of all (a progress bar)."""
    session = sim.simulate(sets, seed, sim_settings or sim.SimSettings(), calibration=True, rom=rom)
    if on_progress is not None:
        total, seen, inner = float(len(session.frames)), 0, on_frame

        def on_frame(res: FrameResult, p: Pipeline) -> None:
            nonlocal seen
            seen += 1
            if seen % 256 == 0:
                on_progress(float(seen), total)
            if inner is not None:
                inner(res, p)

    settings = settings or PipelineSettings()
    if not rom:
        settings = replace(settings, calibration=replace(settings.calibration, rom=False))
    transport = SimTransport(
        list(zip(session.frames, session.frame_times.tolist())),
        labels_for(session) if labels else [],
        speed=speed,
    )
    pipeline = Pipeline(settings)
    recorder = None
    if out is not None:
        recorder = RecordingWriter(
            out, header_for(settings, "sim", {"sim": session.metadata()}), overwrite=overwrite
        )

    async def main() -> SessionResult:
        await transport.connect()
        try:
            return await run_live(
                transport,
                pipeline,
                recorder,
                on_alert=on_alert,
                on_frame=on_frame,
                on_calibrated=on_calibrated,
            )
        finally:
            await transport.close()

    result = asyncio.run(main())
    return SimulatedRun(session, result, transport, out)


def sim_sets_for(exercise: str, side: str | None = None) -> list[sim.SetSpec]:
    """The simulated workout: the demo workout, or for one exercise a set of
    5 reps with its first typical fault on rep 3 (a unilateral lift: on
    ``side``, or a set on each side when none is named)."""
    if exercise == "generic":
        return sim.demo_workout()
    if exercise not in sim.EXERCISES:
        raise ConfigError(
            f"the simulated wearer cannot do {exercise!r}; choose one of {', '.join(sim.EXERCISES)}"
        )
    ex = cast("sim.Exercise", exercise)  # one of sim.EXERCISES (checked above)
    fault: dict[int, sim.Fault] = {3: sim.FAULTS_BY_EXERCISE[exercise][0]}
    if exercise in sim.UNILATERAL_EXERCISES:
        sides = [side] if side is not None else ["left", "right"]
        return [sim.SetSpec(ex, 5, fault if i == 0 else {}, rest_s=3.0, side=s) for i, s in enumerate(sides)]
    return [sim.SetSpec(ex, 5, fault, rest_s=3.0)]
