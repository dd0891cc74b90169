"""The hardware-in-the-loop bench (hil/): the simulated bench runs every
scenario against the real firmware under MicroPython (through mpsim://, the
same code path as a real board on a serial port); the pieces it relies on are
tested on their own. Tests that need a real board are marked `hil` and run
only with --hil-port URL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
FAKES = ROOT / "tests" / "firmware" / "fakes"
if str(FAKES) not in sys.path:
    sys.path.append(str(FAKES))

import mpy_runner  # noqa: E402
import spinemon_protocol as sp  # noqa: E402

from hil.dut import Dut, flip_one_data_bit  # noqa: E402
from hil.scenario import Truth, load, parse, scenario_names  # noqa: E402
from spinemon.errors import ConfigError, SpinemonError, TransportError  # noqa: E402

# waits on the wall clock: `make test` runs it in the real-time lane (tests/lanes.py)
pytestmark = pytest.mark.realtime

# Known failures the bench found; strict, so a fix turns them into an error
# here and the marker must be removed.
KNOWN_FAILURES: dict[str, str] = {}


# ---- the simulated bench, every scenario ------------------------------------------
@pytest.fixture(scope="module")
def bench_results():
    if mpy_runner.micropython_binary() is None:
        mpy_runner.require(None, "micropython")
    from hil.bench import run_bench

    names = scenario_names()
    # each scenario runs in real time and needs ~0.15 of a core (the firmware sleeps until its next
    # sample is due): 4 at once keep the bench under one core beside the other test worker (with a
    # third worker on 2 cores, full_flash's guard missed its 0.1 s deadline)
    results = run_bench([load(n) for n in names], None, jobs=4)
    return {r.name: r for r in results}


@pytest.mark.micropython
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[n])) if n in KNOWN_FAILURES else n for n in scenario_names()],
)
def test_simulated_bench_scenario_passes(bench_results, name):
    r = bench_results[name]
    assert r.status == "pass", f"{name}: {r.failures}"


@pytest.mark.micropython
def test_bench_measures_what_it_reports(bench_results):
    for r in bench_results.values():
        assert r.firmware == "0.5.0"
        assert r.stream["samples"] > 300  # every scenario streamed for seconds
    # accuracy was measured against the commanded motion, on host and device
    st = bench_results["static_angles"]
    assert st.host_angle_error["n"] > 500 and st.device_angle_error["n"] > 500
    # each alert was felt on the motor (duty log), after the first sample past the limit
    dl = bench_results["deadlift_rounded_rep"]
    assert [a["kind"] for a in dl.alerts] == ["over_flexion"]
    assert 0.0 < dl.latencies_s[0] < 0.35
    assert 5.3 <= dl.alerts[0]["t_cross_world"] <= 6.4  # rep 2, the rounded one


@pytest.mark.micropython
def test_corruption_counters_match(bench_results):
    r = bench_results["corrupted_line"]
    inj = r.injected
    assert inj["rx_frames_corrupted"] == 6 and inj["tx_commands_corrupted"] == 3
    assert r.stream["rejected"] == {"bad_crc": 6}
    assert r.stream["lost_samples"] == inj["rx_samples_corrupted"] > 0
    assert r.stream["error_frames_crc"] == 3
    assert r.device_status["commands_rejected"] - r.extra["status_start"]["commands_rejected"] == 3


@pytest.mark.micropython
def test_reset_is_resynchronised(bench_results):
    r = bench_results["dut_reset"]
    rs = r.extra["reset"]
    assert rs["boot_count_after"] == rs["boot_count_before"] + 1
    assert rs["first_sample_after_reset"] and rs["resync_s"] < 3.0
    assert r.device_status["boot_count"] == rs["boot_count_after"]


@pytest.mark.micropython
def test_rate_change_acks_and_periods(bench_results):
    r = bench_results["rate_change"]
    acks = [c["ack_period_us"] for c in r.extra["rate_changes"]]
    assert acks == [19231, 4808]  # LSM6DSO: 52 and 208 Hz, the nearest ODRs
    assert r.extra["periods_us"] == [9615, 19231, 4808]
    assert r.device_angle_error["max"] < 5.0  # the device's own filter follows the rate


# ---- the pieces ----------------------------------------------------------------------
def test_motion_player_agrees_with_truth_cpython():
    from motion_script import SegmentMotion

    for name in scenario_names():
        m = load(name).motion
        truth = Truth(m)
        quiet = {k: v for k, v in m.items() if k not in ("noise_acc_m_s2", "noise_gyr_rad_s")}
        for seg in ("upper", "lower"):
            player = SegmentMotion(quiet, seg)
            for t in np.linspace(0, 12, 97):
                deg, _ = player.tilt(t)
                assert deg == pytest.approx(float(truth.sensor_tilt_deg(seg, t)), abs=1e-9)


@pytest.mark.micropython
def test_motion_player_agrees_with_truth_micropython():
    m = load("deadlift_rounded_rep").motion
    ts = [0.5 * i for i in range(21)]
    script = "import json\nfrom motion_script import SegmentMotion\nm = json.loads(%r)\n" % __import__("json").dumps(m)
    script += "u = SegmentMotion(m, 'upper'); l = SegmentMotion(m, 'lower')\n"
    script += "for t in %r:\n    print(u.tilt(t)[0], l.tilt(t)[0])\n" % ts
    out = mpy_runner.run(script, path=[FAKES]).stdout.decode().split()
    vals = np.array(out, dtype=float).reshape(-1, 2)
    truth = Truth(m)
    np.testing.assert_allclose(vals[:, 0], truth.sensor_tilt_deg("upper", np.array(ts)), atol=1e-6)
    np.testing.assert_allclose(vals[:, 1], truth.sensor_tilt_deg("lower", np.array(ts)), atol=1e-6)


def test_motion_player_physics():
    """Gravity along u = (cos, 0, sin) of the tilt, gyro y = tilt rate, noise and bias as asked."""
    from motion_script import G, SegmentMotion

    m = {"lumbar_deg": [[0, 0], [1, 30]], "mount_upper_deg": 5.0, "bias_gyr_upper": [0.01, 0.02, 0.03]}
    acc, gyr = SegmentMotion(m, "upper")(0.5)
    th = np.radians(20.0)
    assert acc == pytest.approx((G * np.cos(th), 0.0, G * np.sin(th)))
    assert gyr == pytest.approx((0.01, np.radians(30.0) + 0.02, 0.03))
    noisy = SegmentMotion({"noise_acc_m_s2": 0.5, "seed": 3}, "lower")
    ax = np.array([noisy(0.0)[0][1] for _ in range(4000)])
    assert abs(ax.mean()) < 0.05 and ax.std() == pytest.approx(0.5, rel=0.1)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=1, max_size=200))
def test_rx_corruption_is_exactly_one_bit_so_the_crc_must_catch_it(payload):
    frame = sp.encode_command(7, sp.OP_GET_STATUS)[:0] + bytes([1, 0x01]) + payload
    frame = frame + sp.crc16(frame).to_bytes(2, "little")
    seg = sp.cobs_encode(frame)
    bad = flip_one_data_bit(seg)
    assert 0 not in bad and len(bad) == len(seg)
    decoded = sp.cobs_decode(bad)
    diff = bytes(a ^ b for a, b in zip(decoded, frame))
    assert len(decoded) == len(frame) and sum(bin(x).count("1") for x in diff) == 1
    with pytest.raises(sp.ProtocolError) as e:
        sp.decode(decoded)
    assert e.value.code == sp.E_CRC


def test_scenarios_load_and_bad_scenarios_are_refused(tmp_path):
    for n in scenario_names():
        s = load(n)
        assert s.duration_s <= 12 and s.description
    with pytest.raises(ConfigError, match="unknown scenario"):
        load("no_such_scenario")
    base = {"duration_s": 5, "motion": {"lumbar_deg": [[0, 0], [1, 10]]}}
    for bad, msg in (
        ({**base, "actions": [{"at_s": 1, "action": "explode"}]}, "unknown action"),
        ({**base, "actions": [{"at_s": 9, "action": "reset"}]}, "at_s inside"),
        ({**base, "actions": [{"at_s": 1, "action": "set_rate"}]}, "takes rate_hz"),
        ({**base, "motion": {"lumbar_deg": [[1, 0], [0, 10]]}}, "non-decreasing"),
        ({**base, "motion": {"lumbar_deg": [[0, "x"]]}}, "pair"),
        ({**base, "motion": {"wobble": 1}}, "unknown key"),
        ({**base, "expect": {"vibes": 1}}, "unknown expect"),
        ({**base, "exercise": "yoga"}, "unknown exercise"),
        ({**base, "rate_hz": 5}, "rate_hz"),
        ({"motion": {}}, "duration_s"),
    ):
        with pytest.raises(ConfigError, match=msg):
            parse(bad, "bad")
    broken = tmp_path / "broken.toml"
    broken.write_text("duration_s = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path=broken)


def test_bad_urls_are_clear_errors():
    import serial

    import hil  # noqa: F401

    with pytest.raises(ValueError, match="does not know the parameter"):
        serial.serial_for_url("mpsim://?bogus=1")
    with pytest.raises(TransportError, match="bad port URL"):
        Dut("mpsim://?imus=3")
    with pytest.raises(TransportError, match="cannot open"):
        Dut("/dev/no-such-spinemon-port")
    assert issubclass(TransportError, SpinemonError)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hil", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args, msg",
    [
        (["run", "--bogus"], "unrecognized arguments"),
        (["run", "--port", "/dev/no-such-spinemon-port"], "cannot open port"),
        (["run", "--scenario", "nope"], "unknown scenario"),
        (["run", "--jobs", "0"], "--jobs"),
        ([], "required"),
    ],
)
def test_cli_bad_input_is_one_line_and_non_zero(args, msg):
    p = _cli(*args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0] and "Traceback" not in p.stderr


@pytest.mark.micropython
def test_cli_runs_one_scenario_and_writes_the_report(tmp_path):
    import json

    p = _cli("run", "--scenario", "corrupted_line", "--report", str(tmp_path / "r.json"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "corrupted_line" in p.stdout and "PASS" in p.stdout
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["passed"] == 1 and rep["scenarios"][0]["firmware"] == "0.5.0"


# ---- the bench from any directory (spinemon-hil) ------------------------------------------
def _hil_anywhere(cwd, *args):
    """``spinemon-hil ARGS`` run in ``cwd`` (outside the checkout), as a user would."""
    import os

    exe = Path(sys.executable).with_name("spinemon-hil")
    assert exe.exists(), "spinemon-hil is installed by pip install -e . (make setup)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing points at the checkout
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_spinemon_hil_lists_the_scenarios_from_another_directory(tmp_path):
    p = _hil_anywhere(tmp_path, "list")
    assert p.returncode == 0, p.stderr
    assert [line.split()[0] for line in p.stdout.splitlines()] == scenario_names()
    bad = _hil_anywhere(tmp_path, "run", "--scenario", "nope")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "unknown scenario" in bad.stderr


@pytest.mark.micropython
def test_spinemon_hil_runs_a_scenario_from_another_directory(tmp_path):
    """The firmware, the fakes and the scenario are found from the bench's own
    files; the report goes where the command was run."""
    import json

    if mpy_runner.micropython_binary() is None:
        mpy_runner.require(None, "micropython")
    p = _hil_anywhere(tmp_path, "run", "--scenario", "corrupted_line")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "corrupted_line" in p.stdout and "PASS" in p.stdout
    rep = json.loads((tmp_path / "hil-report.json").read_text())
    assert rep["passed"] == 1 and rep["scenarios"][0]["name"] == "corrupted_line"


def test_spinemon_hil_without_a_checkout_says_so(monkeypatch, capsys):
    from spinemon.app import hil_launcher

    monkeypatch.setattr(hil_launcher, "checkout_root", lambda: None)  # a wheel install: no hil/ beside it
    assert hil_launcher.main(["list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "source checkout" in err[0] and "pip install -e" in err[0]


# ---- a real board ----------------------------------------------------------------------
@pytest.fixture
def hil_port(request):
    port = request.config.getoption("--hil-port")
    if not port:
        pytest.skip("needs a real board: --hil-port URL")
    return port


@pytest.mark.hil
@pytest.mark.parametrize("name", ["corrupted_line", "dut_reset", "rate_change"])
def test_real_board_link_scenarios(hil_port, name):
    """Link-level scenarios on the board on --hil-port (no rig needed for
    corrupted_line; the others need a rig for their angle checks and are
    reported as skipped without one)."""
    from hil.runner import run_scenario

    r = run_scenario(load(name), hil_port, rig=False)
    assert r.status in ("pass", "skip"), r.failures
