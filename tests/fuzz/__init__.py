"""The spinemon fuzz campaign (issue 8): a seeded byte mutator and hypothesis
over valid frames and recordings, run against the protocol decoder, the host
stream decoder, the recording loader and the firmware's command path under
MicroPython. ``python -m tests.fuzz.campaign --help`` (from the repository
root) runs it; tests/protocol/test_fuzz_smoke.py runs a short version in ``make test``.
"""
