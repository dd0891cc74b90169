"""A lifter's usual forward lean (issue 22 item 4): the rule, on peaks given by hand."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given, settings, strategies as st

from spinemon.core.lean_baseline import (
    FLOOR_DEG,
    K_SPREADS,
    LAST_SESSIONS,
    MIN_REPS,
    MIN_SESSIONS,
    LeanBaseline,
    lean_baseline,
    with_baselines,
)

SQUAT_NORM = 65.0


def test_too_little_history_gives_no_baseline():
    five = [40.0, 41.0, 42.0, 39.0, 40.5]
    assert lean_baseline("squat", [five, five], SQUAT_NORM) is None  # 2 sessions
    assert lean_baseline("squat", [five, five, five[:4]], SQUAT_NORM) is None  # 14 reps
    b = lean_baseline("squat", [five, five, five], SQUAT_NORM)
    assert b is not None and (b.sessions, b.reps) == (MIN_SESSIONS, MIN_REPS)


def test_median_and_robust_spread_and_the_floor():
    alike = [[40.0] * 5] * 3
    b = lean_baseline("squat", alike, SQUAT_NORM)
    assert b.usual_deg == 40.0 and b.spread_deg == 0.0
    assert b.personal_deg == 40.0 + FLOOR_DEG == b.limit_deg  # alike reps: the floor, not 0 deg of room
    spread = [[30.0, 35.0, 40.0, 45.0, 50.0]] * 3
    b = lean_baseline("squat", spread, SQUAT_NORM)
    assert b.usual_deg == 40.0 and b.spread_deg == pytest.approx(1.4826 * 5.0)
    assert b.personal_deg == pytest.approx(40.0 + K_SPREADS * 1.4826 * 5.0)
    # one wild rep in the history moves neither the median nor the spread much
    wild = [[30.0, 35.0, 40.0, 45.0, 50.0]] * 2 + [[30.0, 35.0, 40.0, 45.0, 110.0]]
    assert lean_baseline("squat", wild, SQUAT_NORM).personal_deg == pytest.approx(b.personal_deg)


def test_the_norm_caps_it_and_a_hinge_has_only_the_lifters_own():
    deep = [[58.0, 60.0, 62.0, 59.0, 61.0]] * 3
    b = lean_baseline("squat", deep, SQUAT_NORM)
    assert b.personal_deg > SQUAT_NORM and b.limit_deg == SQUAT_NORM
    assert "the exercise's norm, lower than your usual allows" in b.describe()
    d = lean_baseline("deadlift", deep, None)
    assert d.limit_deg == d.personal_deg and "this lift has no norm" in d.describe() and "from your usual rep" in d.describe()


def test_only_the_last_sessions_count_and_it_says_lean_and_where_it_comes_from():
    recent = [[40.0, 41.0, 39.0]] * LAST_SESSIONS
    old = [[80.0, 81.0, 79.0]] * 5
    b = lean_baseline("squat", recent + old, SQUAT_NORM)  # newest first
    assert b.sessions == LAST_SESSIONS and b.usual_deg == 40.0
    text = b.describe()
    assert "lean (one sensor), not lumbar rounding" in text and f"last {LAST_SESSIONS} one-sensor squat sessions" in text
    assert LeanBaseline.from_dict(b.as_dict()).limit_deg == pytest.approx(b.limit_deg, abs=0.01)


peaks = st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(st.lists(peaks, min_size=MIN_SESSIONS, max_size=6), st.floats(-20.0, 20.0), st.sampled_from([None, SQUAT_NORM]))
def test_every_history_gives_room_of_at_least_the_floor_and_moves_with_the_lifter(history, shift, norm):
    b = lean_baseline("squat", history, norm)
    n = sum(len(s) for s in history)
    if n < MIN_REPS:
        assert b is None
        return
    assert b.personal_deg >= b.usual_deg + FLOOR_DEG - 1e-9
    assert b.usual_deg == pytest.approx(statistics.median([p for s in history for p in s]))
    assert b.limit_deg == (b.personal_deg if norm is None else min(b.personal_deg, norm))
    moved = lean_baseline("squat", [[p + shift for p in s] for s in history], None)
    assert moved.personal_deg == pytest.approx(b.personal_deg + shift, abs=1e-6)  # a lifter who leans more by habit


def test_a_lean_limit_set_by_hand_wins():
    b = lean_baseline("squat", [[40.0] * 5] * 3, SQUAT_NORM)
    assert with_baselines({}, {"squat": b}) == {"squat": {"lean_deg": 50.0}}
    assert with_baselines({"squat": {"lean_deg": 55.0}}, {"squat": b})["squat"]["lean_deg"] == 55.0
    assert with_baselines({"squat": {"lean_deg": None}}, {"squat": b})["squat"]["lean_deg"] is None
    assert with_baselines({"curl": {"twist_deg": 10.0}}, {"squat": b})["curl"] == {"twist_deg": 10.0}
