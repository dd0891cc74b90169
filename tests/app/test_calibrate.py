"""`spinemon calibrate`: guided calibration (neutral rejected on movement,
range of motion, each sensor's heading from the bend) stored in the profile."""

import argparse
import io
import json

import numpy as np
import pytest

from spinemon.app import calibrate
from spinemon.app.commands import calibrate as calibrate_command
from spinemon.io import sim
from spinemon.core.calibration import CalibrationSettings, Calibrator
from spinemon.errors import CalibrationError, ConfigError
from spinemon.core.pipeline import Pipeline
from spinemon.core.stream import G
from spinemon.io.profile_store import ProfileError, UserProfile, load_profile, parse_limit_override, save_profile
from spinemon.core.stream import SampleBlock


@pytest.mark.parametrize("yaw", [0.0, 45.0, -90.0])
def test_heading_and_range_of_motion_from_the_bends(yaw):
    session = sim.simulate([], 3, sim.SimSettings(mount_yaw_deg=yaw))
    out = calibrate.calibrate_frames(zip(session.frames, session.frame_times))
    cal = out.calibration
    assert cal.alignment["upper"]["heading_deg"] == pytest.approx(yaw, abs=8.0)
    assert cal.alignment["lower"]["heading_deg"] == pytest.approx(-0.6 * yaw, abs=8.0)
    truth = session.calibration
    assert cal.rom.flexion_deg == pytest.approx(truth.rom_flexion_deg, abs=4.0)
    assert cal.rom.extension_deg == pytest.approx(truth.rom_extension_deg, abs=4.0)
    # the completed mounting maps the true body axes: sensor -> body ~ the truth, up to the small misalignment
    for s in ("upper", "lower"):
        err = cal.mounting[s].rotation @ session.imus[s].body_from_sensor.T  # identity if perfect
        assert np.degrees(np.arccos(np.clip((np.trace(err) - 1) / 2, -1, 1))) < 8.0


def _block(session, a, b):
    t = session.t[a:b]
    return SampleBlock(
        seq=session.seq[a:b], t=t,
        acc={s: session.imus[s].acc[a:b] for s in session.imus}, gyr={s: session.imus[s].gyr[a:b] for s in session.imus},
        device_angle_deg=np.full(b - a, np.nan), flags=np.zeros(b - a, dtype=np.uint8), rate_hz=100.0,
    )


def test_neutral_is_rejected_and_repeated_when_the_wearer_moves():
    session = sim.simulate([], 5)
    bend = int(np.argmax(session.lumbar_flexion_deg))  # in the forward bend: moving
    c = Calibrator(CalibrationSettings(neutral_s=2.5, provisional_after_s=30.0))  # the still-stretch rule alone
    assert c.update_neutral(_block(session, 0, 150)) is None  # 1.5 s still: not enough yet
    assert c.update_neutral(_block(session, bend - 200, bend - 170)) is None  # bending: start again
    assert c.update_neutral(_block(session, 30, 180)) is None  # 1.5 s: still not enough after the restart
    assert c.attempts == 2
    cal = c.update_neutral(_block(session, 180, 290))
    assert cal is not None and c.phase == "rom"


def test_a_stream_that_ends_early_is_a_calibration_error():
    session = sim.simulate([], 5)
    with pytest.raises(CalibrationError, match="stand tall"):
        calibrate.calibrate_frames(list(zip(session.frames, session.frame_times))[:8])  # 0.64 s: less than the 1 s neutral
    with pytest.raises(CalibrationError, match="range-of-motion"):
        calibrate.calibrate_frames(list(zip(session.frames, session.frame_times))[:200])


def test_profile_round_trip_and_bad_files(tmp_path):
    assert load_profile(tmp_path / "none.json") == UserProfile()
    session = sim.simulate([], 7)
    cal = calibrate.calibrate_frames(zip(session.frames, session.frame_times)).calibration
    prof = UserProfile().with_calibration(cal, device="sim").with_overrides(parse_limit_override("deadlift.flexion_share=0.55"))
    path = save_profile(prof, tmp_path / "p" / "profile.json")
    back = load_profile(path)
    assert back.calibration.as_dict() == cal.as_dict() and back.limit_overrides == {"deadlift": {"flexion_share": 0.55}}
    # the stored calibration is reused: monitoring at once, limits from the stored ROM and overrides
    from spinemon.core.pipeline import PipelineSettings

    p = Pipeline(back.pipeline_settings(PipelineSettings(exercise="deadlift")))
    assert p.phase == "monitoring" and p.limits.flexion_deg == pytest.approx(0.55 * cal.rom.flexion_deg)
    assert Pipeline(back.pipeline_settings(PipelineSettings(), recalibrate=True)).phase == "calibrating-neutral"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profile(bad)
    bad.write_text(json.dumps({"version": 1, "limit_overrides": {"squat": {"flexion_share": "lots"}}}))
    with pytest.raises(ProfileError, match="flexion_share"):
        load_profile(bad)
    for text in ("deadlift=3", "zumba.flexion_share=0.5", "squat.flexion_share=abc", "squat.nope=1"):
        with pytest.raises(ConfigError):
            parse_limit_override(text)
    assert parse_limit_override("curl.swing_deg_s=none") == {"curl": {"swing_deg_s": None}}


def _ns(*argv):
    parser = argparse.ArgumentParser()
    calibrate_command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_calibrate_command_writes_the_profile(tmp_path, monkeypatch):
    path = tmp_path / "profile.json"
    monkeypatch.setenv("SPINEMON_PROFILE", str(path))
    out = io.StringIO()
    assert calibrate_command.main(_ns("--sim", "--speed", "0", "--mount-yaw", "70", "--limit", "squat.flexion_share=0.45"), out) == 0
    text = out.getvalue()
    assert "Stand tall and still" in text and "range of motion" in text and "upper sensor: turned +" in text
    prof = load_profile(path)
    assert prof.device == "sim" and prof.calibration.alignment["upper"]["heading_deg"] == pytest.approx(70.0, abs=8.0)
    assert prof.limit_overrides == {"squat": {"flexion_share": 0.45}}
    with pytest.raises(SystemExit):  # a command-line error, caught by argparse
        _ns("--sim", "--speed", "0", "--limit", "squat.flexion_share=9")
    path.write_text("[]")
    with pytest.raises(ProfileError):
        calibrate_command.main(_ns("--sim", "--speed", "0"), io.StringIO())


# -- calibration is never a silent gate (issue 11, part 2) --------------------------
def _recording(tmp_path, name, segments, rate=50.0, offset_dps=(0.0, 0.0, 0.0), rom=False):
    """A one-IMU recording through `spinemon import`: segments of ("still", s) or ("sway", s)."""
    from spinemon.app import cli as _cli

    rng = np.random.default_rng(1)
    parts_a, parts_g = [], []
    for kind, dur in segments:
        n = int(dur * rate)
        tt = np.arange(n) / rate
        if kind == "still":
            ang = np.zeros(n)
        else:  # never still: a 0.7 Hz sway of +-15 deg (shifting, fidgeting)
            ang = np.radians(15.0) * np.sin(2 * np.pi * 0.7 * tt)
        w = np.gradient(ang, tt) if n > 1 else np.zeros(n)
        parts_a.append(np.stack([G * np.cos(ang), np.zeros(n), G * np.sin(ang)], axis=1))
        parts_g.append(np.stack([np.zeros(n), w, np.zeros(n)], axis=1))
    acc = np.concatenate(parts_a) + rng.normal(0, 0.03, (sum(len(a) for a in parts_a), 3))
    gyr = np.concatenate(parts_g) + np.radians(offset_dps) + rng.normal(0, 0.004, acc.shape)
    t = np.arange(len(acc)) / rate
    f = tmp_path / f"{name}.csv"
    f.write_text("t,ax,ay,az,gx,gy,gz\n" + "\n".join(",".join(f"{v:.6f}" for v in (t[i], *acc[i], *gyr[i])) for i in range(len(t))) + "\n")
    out = tmp_path / f"{name}.spinrec"
    assert _cli.main(["import", str(f), "--columns", "t=t,ax=ax,ay=ay,az=az,gx=gx,gy=gy,gz=gz", "--out", str(out)]) == 0
    return out


def _stats(capsys, path, *extra):
    import json

    from spinemon.app import cli as _cli

    capsys.readouterr()
    assert _cli.main(["replay", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)["stats"]


@pytest.mark.parametrize("offset", [(0.0, 0.0, 0.0), (13.0, -35.0, 20.0)])
def test_neutral_from_the_first_still_second_whatever_the_gyro_offset(tmp_path, capsys, offset):
    path = _recording(tmp_path, "still", [("still", 1.3), ("sway", 10.0)], offset_dps=offset)
    st = _stats(capsys, path)
    assert st["calibration"] == "done"
    assert st["duration_s"] - st["monitored_s"] <= 1.3
    from spinemon.io.recording import load
    from spinemon.app.replay import replay

    cal = replay(load(path)).calibration
    assert np.degrees(cal.gyro_offset["upper"]) == pytest.approx(offset, abs=0.3)
    assert cal.t_neutral[1] - cal.t_neutral[0] == pytest.approx(1.0, abs=0.05)


def test_no_still_stretch_gives_a_provisional_neutral_then_the_real_one(tmp_path, capsys):
    path = _recording(tmp_path, "fidget", [("sway", 12.0)])
    st = _stats(capsys, path)
    assert st["calibration"] == "provisional"
    # calibration never gates: a provisional neutral within 1.5 s (issue 22)
    assert st["monitored_s"] == pytest.approx(st["duration_s"] - 1.5, abs=0.05)
    assert st["not_monitored"] == {"waiting for a still stretch to set neutral": pytest.approx(1.5, abs=0.05)}
    later = _recording(tmp_path, "fidget-then-still", [("sway", 12.0), ("still", 2.0), ("sway", 4.0)])
    st = _stats(capsys, later)
    assert st["calibration"] == "done"  # the still stretch replaced the provisional neutral
    from spinemon.io.recording import load
    from spinemon.app.replay import replay

    cal = replay(load(later)).calibration
    assert cal.source == "still" and cal.t_neutral[0] >= 12.0


def test_too_short_to_calibrate_says_none_and_why(tmp_path, capsys):
    path = _recording(tmp_path, "short", [("sway", 1.2)])  # shorter than the 1.5 s a provisional neutral waits
    st = _stats(capsys, path)
    assert (st["calibration"], st["monitored_s"]) == ("none", 0.0)
    from spinemon.app import cli as _cli

    assert _cli.main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "calibration: NOT DONE" in out and "stand still for 1 s at the start" in out


def test_range_of_motion_is_optional_and_never_blocks_monitoring(tmp_path, capsys):
    """rom on (as `spinemon live` runs it) but the wearer goes straight to lifting: skipped after 5 s."""
    from spinemon.core.pipeline import PipelineSettings
    from spinemon.io.recording import load
    from spinemon.app.replay import replay

    path = _recording(tmp_path, "norom", [("still", 1.5), ("sway", 15.0)])
    res = replay(load(path), PipelineSettings(calibration=CalibrationSettings(rom=True)))
    m = res.summary["monitoring"]
    assert m["calibration"] == "done" and res.summary["phase"] == "monitoring"
    assert m["not_monitored"]["range-of-motion calibration"] == pytest.approx(5.0, abs=0.3)
    assert res.calibration.rom is None  # default range used
