"""The coach's report in a real browser (Debian's chromium, headless): the
verdict is there, every chart loads, and nothing overflows sideways on a
phone (390 px) or a laptop (1280 px). `.ci/run` installs chromium; under
CI=true this test never skips."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from spinemon.io import sim
from spinemon.app.export import trace_recording
from spinemon.io.recording import load
from spinemon.app.report import write_report
from spinemon.app.simrun import run_simulated


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium); under CI=true this test must run")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return exe


WRAPPER = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="{src}" style="width:{width}px;height:900px;border:0"></iframe><pre id="out">pending</pre>
<script>
document.getElementById('f').onload = function () {{
  var d = this.contentDocument, de = d.documentElement, v = d.getElementById('verdict');
  var imgs = Array.prototype.slice.call(d.images);
  var wide = Array.prototype.slice.call(d.querySelectorAll('body > *')).filter(function (e) {{ return e.getBoundingClientRect().right > de.clientWidth + 1; }}).length;
  // each chart's smallest text as shown: its size in the PNG (recorded in the page) x the shown / natural width
  var fonts = imgs.map(function (i) {{
    var pic = i.parentElement, src = pic && pic.tagName === 'PICTURE' ? pic.querySelector('source') : null;
    var narrow = !!(src && i.currentSrc === src.getAttribute('srcset'));
    var px = parseFloat((narrow ? src : i).getAttribute('data-min-font-px'));
    return {{narrow: narrow, px: px, shown: i.clientWidth, natural: i.naturalWidth, effective: px * i.clientWidth / i.naturalWidth}};
  }});
  var h1 = d.querySelector('h1');
  document.getElementById('out').textContent = 'RESULT ' + JSON.stringify({{
    scrollWidth: de.scrollWidth, clientWidth: de.clientWidth, wide: wide, verdict: v ? v.innerText : null,
    title: h1 ? h1.innerText : null, fonts: fonts,
    images: imgs.length, loaded: imgs.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length}});
}};
</script></body></html>"""


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    sets = [sim.SetSpec("deadlift", 5, {4: "rounding"}, rest_s=6.0), sim.SetSpec("overhead_press", 4, {2: "arching"}, rest_s=6.0),
            # unilateral work: the "Left and right" section and its table must fit too
            sim.SetSpec("split_squat", 6, side="alternate", name_side=False, asymmetry_deg=6.0)]
    run_simulated(sets, 3, out=d / "s.spinrec")
    res = write_report(trace_recording(load(d / "s.spinrec")), d / "report", lifter="Ana")
    assert res.plots_skipped is None, res.plots_skipped
    return res


@pytest.mark.parametrize("width", [390, 1280])
def test_report_layout_in_a_real_browser(report_page, tmp_path, width):
    exe = _chromium()
    wrapper = tmp_path / f"wrap{width}.html"
    wrapper.write_text(WRAPPER.format(src=report_page.html.resolve().as_uri(), width=width))
    out = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--virtual-time-budget=10000",
         f"--window-size={width + 20},1000", "--dump-dom", wrapper.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    m = re.search(r"RESULT (\{.*\})", out.stdout)
    assert m, f"no result from chromium (rc {out.returncode}): {out.stderr[-500:]}"
    r = json.loads(m.group(1))
    assert r["scrollWidth"] <= r["clientWidth"], r  # no horizontal overflow of the page
    assert r["wide"] == 0, r
    assert r["images"] >= 4 and r["loaded"] == r["images"], r  # reps chart, 2 sets, overview
    assert r["verdict"] and "Set 1, deadlift: rep 4 rounded" in r["verdict"] and "Set 2, overhead_press: rep 2 arched" in r["verdict"], r["verdict"]
    assert "Set 3, split_squat:" in r["verdict"] and "left reps bend" in r["verdict"], r["verdict"]
    # the session's date and clock times in the title, and the lifter's name
    assert re.fullmatch(r"Ana: \w{3} \d{1,2} \w{3} \d{4}, \d\d:\d\d-\d\d:\d\d \(UTC[+-]\d\d:\d\d\)", r["title"]), r["title"]
    # every chart's text readable where it is shown: 11 px or more on a phone as on a laptop
    # (on a phone, the narrow version of each chart is the one shown)
    assert r["fonts"] and all(f["narrow"] == (width < 600) for f in r["fonts"]), r["fonts"]
    assert all(f["effective"] >= 11.0 for f in r["fonts"]), r["fonts"]
