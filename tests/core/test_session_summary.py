"""The typed session summary (spinemon.app.session_summary): taken in from a
dict and given back as the same dict, key for key and in order, whatever the
dict holds; read by attribute; a resumed recording joined section by section."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from spinemon.app.results import SessionResult
from spinemon.app.session_summary import (
    DeviceCounts,
    EventRow,
    HeldBack,
    Monitoring,
    RepRow,
    Row,
    Summary,
)

#: every key a summary or one of its rows names, so drawn dicts hit the typed fields
NAMES = sorted(
    {n for cls in (Summary, EventRow, RepRow, Monitoring, HeldBack, DeviceCounts) for n in cls.field_names()}
    | {"t", "kind", "unknown_section"}
)

scalars = st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False, width=32) | st.text(max_size=4)
keys = st.sampled_from(NAMES) | st.text(max_size=3)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
#: summaries with rows that fit (lists of objects) as often as ones that do not
rows = st.lists(st.dictionaries(keys, json_values, max_size=5), max_size=3)
summaries = st.dictionaries(keys, rows | json_values, max_size=8)


@settings(max_examples=60, deadline=None)
@given(summaries)
def test_any_dict_comes_back_the_same(d):
    """The JSON boundary loses nothing and invents nothing: same keys, same
    order, same values, the same text once dumped."""
    back = Summary.from_dict(d).as_dict()
    assert back == d
    assert json.dumps(back) == json.dumps(d)


def test_rows_are_read_by_attribute():
    d = {
        "type": "summary",
        "events": [{"kind": "over_flexion", "t_start": 1.5, "t_end": None, "t_alert": 1.6, "set": 1, "rep": 2}],
        "reps": [{"type": "rep", "set": 1, "rep": 2, "peak_flexion_deg": 31.5}],
        "monitoring": {"calibration": "done", "duration_s": 10.0, "monitored_s": 8.0, "not_monitored": {"x": 2.0}},
        "held_back": {"seconds": {"walking": 1.0}, "faults": {}},
        "device": None,
    }
    s = Summary.from_dict(d)
    assert s.events[0].kind == "over_flexion" and s.events[0].t_end is None and s.events[0].rep == 2
    assert s.reps[0].peak_flexion_deg == 31.5
    assert s.monitoring.calibration == "done" and s.held_back.seconds == {"walking": 1.0}
    assert s.device is None and s.sets == () and not s.has("sets")
    assert s.reps[0].pelvis_share is None and "pelvis_share" not in s.reps[0].as_dict()  # one sensor: not invented


def test_a_row_that_does_not_fit_is_kept_as_it_was():
    d = {"events": "damaged", "monitoring": [1, 2], "reps": [{"rep": 1}, 7]}
    s = Summary.from_dict(d)
    assert s.events == () and s.reps == () and s.monitoring == Monitoring()  # readers see nothing
    assert s.as_dict() == d


def test_joining_segments_moves_rows_and_adds_counts():
    ev = EventRow.from_dict({"kind": "k", "t_start": 1.0, "t_end": None, "t_alert": 2.0, "set": 1})
    moved = ev.moved(10.0, 3, 2)
    assert (moved.t_start, moved.t_end, moved.t_alert, moved.set, moved.segment) == (11.0, None, 12.0, 4, 2)
    assert list(moved.as_dict()) == ["kind", "t_start", "t_end", "t_alert", "set", "segment"]
    check = Row.from_dict({"set": 2, "t": 5.0, "drift_deg": {"upper": 1.0}}).moved(1.0, 2, 2)
    assert check.as_dict() == {"set": 4, "t": 6.0, "drift_deg": {"upper": 1.0}, "segment": 2}
    m = Monitoring.joined(
        [
            Monitoring(calibration="done", duration_s=5.0, monitored_s=4.0, not_monitored={"a": 1.0}),
            Monitoring(calibration="provisional", duration_s=3.0, monitored_s=3.0, not_monitored={"a": 0.5}),
        ]
    )
    assert m.as_dict() == {"calibration": "provisional", "duration_s": 8.0, "monitored_s": 7.0, "not_monitored": {"a": 1.5}}
    h = HeldBack.joined([HeldBack(seconds={"walking": 1.0}, faults={"walking": 1}), HeldBack(faults={"walking": 2})])
    assert h.as_dict() == {"seconds": {"walking": 1.0}, "faults": {"walking": 3}}
    dev = DeviceCounts.joined(
        [
            DeviceCounts.from_dict({"status_frames": 2, "boots": [1], "samples_dropped": 3, "heap_free_min": 900}),
            DeviceCounts.from_dict({"status_frames": 1, "boots": [2], "samples_dropped": 1, "heap_free_min": None}),
        ]
    )
    assert dev.as_dict() == {"status_frames": 3, "boots": [1, 2], "samples_dropped": 4, "heap_free_min": 900}


def test_a_session_result_keeps_the_summary_typed():
    d = {"type": "summary", "sets": [{"type": "set", "set": 1, "reps": 3}], "frames": 4}
    res = SessionResult([], [], {}, None, "lumbar flexion", 4, 0, d)
    assert isinstance(res.session, Summary) and res.session.sets[0].reps == 3
    assert res.summary == d and res.summary is not d  # the dict form is made on the way out
    res.summary = {"type": "summary", "frames": 5}
    assert res.session.frames == 5 and res.session.sets == ()
