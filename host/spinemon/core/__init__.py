"""The stages: frames in, angles, events and alerts out (no I/O here).

In the order data flows through them (each one module, one job, its own
state, and an ``update(block)`` that gives the same output for any split of
its input; tests/core/test_stages.py, tests/core/test_split_invariance.py):

=================  ==========================================================
``stream``         decode: frames -> :class:`~spinemon.core.stream.SampleBlock` (SI units, device time)
``intake``         the samples the chain can use; layout changes; a clock that never goes back
``gravity``        fusion: each sensor's gravity direction (the filter core: ``fusion``, ``fusion_kernel``)
``phases``         calibration steps: neutral (before fusion), range of motion (after); ``calibration``
``angles``         lumbar flexion, lateral bend, twist (:class:`~spinemon.core.angles.AngleStage`)
``segment``        sets, reps (``reps``, ``rep_kernel``), holds (``holds``), warm-up bends; sides (``unilateral``)
``watch``          limits (``limits``, profiles in ``detect``), events, the shadow detector, alerts (``alerts``, ``device_buzz``)
``drift``          standing gravity before each set, against the calibrated one
``summary``        the session summary from the stages' state
``pipeline``       wires the stages; live and replay both run it
=================  ==========================================================
"""
