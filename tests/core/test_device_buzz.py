"""One buzz per fault: the wearable's guard flags the frame it buzzed in, and
the host's alert for the same excursion is recorded without a second HAPTIC.
DeviceBuzzWatch's state, sample by sample, for any split of the stream."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import spinemon_protocol as proto
from spinemon.core.detect import Limits
from spinemon.core.device_buzz import DeviceBuzzWatch

LIM = Limits(flexion_deg=30.0, extension_deg=-15.0)
H = 3.0


def reference(flags, flexion):
    """The rule in words, one sample at a time: a flagged sample opens, a sample inside the limits by the hysteresis closes."""
    out, state = [], False
    for f, x in zip(flags, flexion):
        inside = -15.0 + H < x < 30.0 - H
        if inside:
            state = False
        if f & proto.SF_GUARD_BUZZED:
            state = True
        out.append(state)
    return out


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(st.tuples(st.sampled_from([0, 0, 0, proto.SF_GUARD_BUZZED, proto.SF_FIFO_OVERFLOW]), st.sampled_from([0.0, 10.0, 28.5, 29.0, 35.0, -13.0, -20.0])), min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=8),
)
def test_the_state_after_every_sample_matches_the_rule_for_any_split(samples, cuts):
    flags = np.array([f for f, _ in samples], dtype=np.uint8)
    flexion = np.array([x for _, x in samples])
    want = reference(flags, flexion)
    w = DeviceBuzzWatch()
    got = []
    bounds = sorted({0, len(flags), *[c for c in cuts if 0 < c < len(flags)]})
    for a, b in zip(bounds[:-1], bounds[1:]):
        got += [w.as_of(flags[a:b], flexion[a:b], j, LIM, H) for j in range(b - a)]
        w.update(flags[a:b], flexion[a:b], LIM, H)
    assert got == want
    assert w.open == want[-1]


def test_a_limit_that_is_off_never_closes_the_excursion_on_its_side():
    w = DeviceBuzzWatch()
    one_side = Limits(flexion_deg=30.0, extension_deg=None)
    flags = np.array([proto.SF_GUARD_BUZZED, 0, 0], dtype=np.uint8)
    assert w.as_of(flags, np.array([35.0, -40.0, 10.0]), 2, one_side, H) is False  # back inside: closed
    assert w.as_of(flags, np.array([35.0, 29.0, 28.0]), 2, one_side, H) is True  # never inside by the hysteresis


RUN_LIMITS = [LIM, Limits(flexion_deg=25.0, extension_deg=-20.0), Limits(flexion_deg=30.0, extension_deg=None), Limits(None, None)]


@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(st.tuples(st.sampled_from([0, 0, proto.SF_GUARD_BUZZED]), st.sampled_from([0.0, 10.0, 24.0, 28.5, 35.0, -13.0, -18.0, -25.0])), min_size=1, max_size=60),
    runs=st.lists(st.tuples(st.integers(1, 59), st.integers(0, len(RUN_LIMITS) - 1)), max_size=6),
)
def test_a_block_of_runs_with_their_own_limits_is_the_state_run_by_run(samples, runs):
    """inside() over runs, each with its limits, then state_at/advance: the
    same state after every sample as as_of/update run by run."""
    flags = np.array([f for f, _ in samples], dtype=np.uint8)
    flexion = np.array([x for _, x in samples])
    n = len(flags)
    pick = dict(runs)
    starts = sorted({0, *(a for a, _ in runs if a < n)})
    plan = [(a, b, RUN_LIMITS[pick.get(a, 0)]) for a, b in zip(starts, [*starts[1:], n])]
    ref, want = DeviceBuzzWatch(), []
    for a, b, lim in plan:
        want += [ref.as_of(flags[a:b], flexion[a:b], j, lim, H) for j in range(b - a)]
        ref.update(flags[a:b], flexion[a:b], lim, H)
    w = DeviceBuzzWatch()
    inside = DeviceBuzzWatch.inside(flexion, [(b, lim) for _, b, lim in plan], H)
    assert [w.state_at(flags, inside, j) for j in range(n)] == want
    w.advance(flags, inside)
    assert w.open == ref.open == want[-1]
