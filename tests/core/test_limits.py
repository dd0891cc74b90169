"""The limits in force (spinemon.core.limits.LimitPlan): profile x range of
motion, the set's creep limit, and what one sensor turns off."""

import pytest

from spinemon.core.detect import RangeOfMotion, profile
from spinemon.core.limits import LimitPlan


def test_profile_scaled_by_the_range_then_the_creep_limit_of_the_set():
    rom = RangeOfMotion(flexion_deg=60.0, extension_deg=-30.0)
    plan = LimitPlan()
    base = plan.limits("deadlift", rom, False)
    assert base == profile("deadlift").limits(rom) and base.creep_deg is None
    plan.first_rep("deadlift", 1, 12.0)
    creep = profile("deadlift").creep_deg
    assert plan.limits("deadlift", rom, False).creep_deg == pytest.approx(12.0 + creep)
    assert not plan.reps_of_set(1)  # still set 1
    assert plan.reps_of_set(2) and plan.limits("deadlift", rom, False).creep_deg is None  # the next set waits for its first rep
    plan.first_rep("deadlift", 2, base.flexion_deg)  # creep beyond the hard limit: the hard limit comes first
    assert plan.limits("deadlift", rom, False).creep_deg is None
    plan.first_rep("deadlift", 3, 10.0)
    plan.new_label()
    assert plan.limits("deadlift", rom, False).creep_deg is None


def test_one_sensor_turns_off_what_it_cannot_watch_and_says_why():
    plan = LimitPlan()
    lim = plan.limits("deadlift", None, True)
    assert plan.off and all(isinstance(v, str) and v for v in plan.off.values())
    assert "twist_deg" in plan.off and lim.twist_deg is None
    plan.limits("deadlift", None, False)
    assert plan.off == {}


def test_overrides_reach_the_limits():
    plan = LimitPlan({"curl": {"extension_deg": -10.0}})
    assert plan.limits("curl", None, False).extension_deg == -10.0
