"""History, round two (issue 26): the chart's alert bars on one scale across
panels, presses and curls plotted as extension against the extension limit,
the title clear of the legend, and the terminal table within 80 columns."""

from __future__ import annotations

import pytest

from spinemon.app import history, pages, plotting


def _facts(name: str, when: str, ex: str, reps: int, alerts: int, peaks, ext_peaks, flex_lim, ext_lim) -> dict:
    return {
        "recording": f"/x/{name}.spinrec",
        "resolved": f"/x/{name}.spinrec",
        "error": None,
        "time": when,
        "date_from": "header",
        "date_note": None,
        "truncated": False,
        "corrupt_records": 0,
        "one_sensor": False,
        "exercises": {
            ex: {
                "sets": 1,
                "reps": reps,
                "alerts": alerts,
                "events": alerts,
                "peaks": list(peaks),
                "ext_peaks": list(ext_peaks),
                "creeps": [],
                "shares": [],
                "flexion_limit_deg": flex_lim,
                "extension_limit_deg": ext_lim,
            }
        },
    }


@pytest.fixture(scope="module")
def doc():
    facts = [
        # deadlift: 20 alerts per 100 reps; overhead press: 100 per 100 reps, and its peaks are arches
        _facts("a", "2024-01-02T18:00:00Z", "deadlift", 10, 2, [20.0, 24.0, 22.0], [-1.0, -2.0, -1.5], 29.0, -16.0),
        _facts("b", "2024-01-09T18:00:00Z", "deadlift", 10, 2, [21.0, 23.0, 25.0], [-1.0, -2.0, -1.5], 29.0, -16.0),
        _facts("c", "2024-01-02T18:00:00Z", "overhead_press", 4, 4, [1.0, 0.5, 0.8, 0.2], [-18.0, -9.0, -20.0, -16.0], 28.0, -13.5),
        _facts("d", "2024-01-09T18:00:00Z", "curl", 5, 0, [2.0, 1.0], [-6.0, -8.0], 28.0, -12.0),
    ]
    return history.build(facts)


def test_presses_and_curls_are_watched_in_extension(doc):
    rows = {(r["exercise"], r["week"]): r for r in doc["rows"]}
    ohp = rows[("overhead_press", "2024-W01")]
    assert ohp["watched"] == "extension" and ohp["peak_deg"] == -17.0 and ohp["limit_deg"] == -13.5
    assert rows[("curl", "2024-W02")]["watched"] == "extension" and rows[("curl", "2024-W02")]["limit_deg"] == -12.0
    dl = rows[("deadlift", "2024-W01")]
    assert dl["watched"] == "flexion" and dl["peak_deg"] == 22.0 and dl["limit_deg"] == 29.0
    assert dl["peak_flexion_deg"] == 22.0  # the old field is still there for scripts
    assert any(v.startswith("overhead press:") and "peak extension at the bottom -17 deg" in v for v in doc["verdict"])


def _drawn(doc, tmp_path, style=None):
    """The figure as drawn, looked at just before it is saved."""
    plt = plotting.pyplot()
    if plt is None:
        pytest.skip("matplotlib is not installed")
    seen = {}
    real = plotting.save

    def look(plt_, fig, path, dpi, **kw):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        seen["title"] = fig._suptitle.get_window_extent(r)
        seen["legends"] = [lg.get_window_extent(r) for lg in fig.legends] + [
            ax.get_legend().get_window_extent(r) for ax in fig.axes if ax.get_legend() is not None
        ]
        seen["axes"] = [ax for ax in fig.axes]
        seen["boxes"] = [ax.get_tightbbox(r) for ax in fig.axes]
        return real(plt_, fig, path, dpi, **kw)

    plotting.save = look
    try:
        plotting.plot(doc, tmp_path / "h.png", plt, style)
    finally:
        plotting.save = real
    return seen


@pytest.mark.parametrize("narrow", [False, True])
def test_the_chart_one_alert_scale_extension_panels_and_a_title_clear_of_the_legend(doc, tmp_path, narrow):
    seen = _drawn(doc, tmp_path, plotting.NARROW if narrow else plotting.WIDE)
    axes = seen["axes"]
    main = [ax for ax in axes if ax.get_ylabel().startswith("lumbar")]
    twins = [ax for ax in axes if ax.get_ylabel().startswith("alerts")]
    assert len(main) == len(twins) == 3  # curl, deadlift, overhead press
    # one scale for the alert bars: 100 per 100 reps stands five times as high as 20
    assert len({tuple(ax.get_ylim()) for ax in twins}) == 1
    heights = {ax.get_title(loc="left"): [p.get_height() for p in ax2.patches] for ax, ax2 in zip(main, twins)}
    assert heights["overhead press"] == [100.0] and heights["deadlift"] == [20.0, 20.0]
    # presses and curls: extension against the extension limit
    by_name = {ax.get_title(loc="left"): ax for ax in main}
    for name, lim in (("overhead press", -13.5), ("curl", -12.0)):
        ax = by_name[name]
        assert ax.get_ylabel() == "lumbar extension (deg)"
        segs = [c.get_segments() for c in ax.collections]
        assert segs and all(s[0][0][1] == lim for s in segs)  # the limit lines sit at the extension limit
    assert [ln.get_ydata()[0] for ln in by_name["overhead press"].get_lines()] == [-17.0]
    assert by_name["deadlift"].get_ylabel() == "lumbar flexion (deg)"
    # the title, the legend and the panels do not overlap
    title = seen["title"]
    assert seen["legends"]
    for box in seen["legends"] + seen["boxes"]:
        assert not title.overlaps(box), (title, box)
    for lg in seen["legends"]:
        for box in seen["boxes"]:
            assert not lg.overlaps(box), (lg, box)
    # text readable where it is shown: the wide chart at its own width, the narrow one on a phone (~340 px)
    px = pages.font_px_of(tmp_path / "h.png")
    assert px is not None and px >= (11.0 if not narrow else 11.0 * 585 / 340), px


def test_the_history_table_fits_80_columns(doc):
    text = history.format_text(doc, width=80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    head = lines[0].split()
    assert head[:6] == ["exercise", "week", "reps", "alerts/100", "peak", "limit"]
    assert "(not shown for width:" not in text or "all in --json" in text
