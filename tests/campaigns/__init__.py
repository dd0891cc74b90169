"""Long reliability campaigns (not part of `make test`; see docs/reliability.md).

    python -m tests.campaigns.kill           # SIGKILL the recorder at 200 random moments
    python -m tests.campaigns.long_session   # 2 h, 2 IMUs at 200 Hz through the live path
"""
