"""The simulated wearer: frames as the firmware sends them, and ground truth
that agrees with the host's own definitions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import spinemon_protocol as proto
from spinemon.errors import ConfigError, SpinemonError
from spinemon.io.sim import (
    CHUNK,
    G,
    SetSpec,
    SimSettings,
    Wearer,
    demo_workout,
    iter_frames,
    simulate,
)

# every exercise with every fault it can show, clean reps around the faulty ones
ALL_FAULTS = [
    SetSpec("deadlift", 6, {2: "rounding", 5: "twisting"}, rest_s=3.0),
    SetSpec("squat", 6, {3: "rounding", 6: "twisting"}, rest_s=3.0),
    SetSpec("overhead_press", 6, {2: "arching", 4: "twisting"}, rest_s=3.0),
    SetSpec("curl", 6, {3: "hip_swing", 5: "twisting"}, rest_s=6.0, walk_during_rest=True),
    SetSpec("deadlift", 3, {3: "rounding"}, rest_s=2.0),
]


@pytest.fixture(scope="module")
def demo():
    return simulate(demo_workout(), seed=11)


@pytest.fixture(scope="module")
def faults_sessions():
    return [simulate(ALL_FAULTS, seed=s) for s in (1, 2, 3)]


def decode_all(frames):
    out = [proto.decode(f) for f in frames]
    assert all(isinstance(d, proto.Samples) for d in out)
    return out


def unwrap_u32(values):
    v = np.asarray(values, dtype=np.int64)
    d = np.diff(v) % (1 << 32)
    return np.concatenate([[v[0]], v[0] + np.cumsum(d)])


# ---- determinism -------------------------------------------------------------
def test_same_seed_gives_byte_identical_frames(demo):
    again = simulate(demo_workout(), seed=11)
    assert again.frames == demo.frames
    np.testing.assert_array_equal(again.frame_times, demo.frame_times)
    other = simulate(demo_workout(), seed=12)
    assert other.frames != demo.frames


def test_streaming_frames_equal_simulate_frames(demo):
    assert demo.n_samples > 2 * CHUNK  # the session crosses chunk boundaries
    streamed = list(iter_frames(demo_workout(), seed=11))
    assert [f for f, _ in streamed] == demo.frames
    np.testing.assert_allclose([t for _, t in streamed], demo.frame_times)


# ---- frames ------------------------------------------------------------------
def test_frames_decode_to_the_encoded_samples(demo):
    s = demo.settings
    dec = decode_all(demo.frames)
    spf = proto.max_samples_per_frame(3)
    assert all(d.mask == 3 and d.period_us == 10000 and d.ranges == proto.ranges_byte(8, 1000) for d in dec)
    assert all(d.count == spf for d in dec[:-1]) and 1 <= dec[-1].count <= spf
    assert all(len(f) <= proto.MAX_FRAME for f in demo.frames)
    vals = np.array([v for d in dec for v in d.values()], dtype=np.int64).reshape(-1, 13)
    assert len(vals) == demo.n_samples
    up, lo = demo.imus["upper"], demo.imus["lower"]
    np.testing.assert_array_equal(vals[:, 0:3], up.acc_raw)
    np.testing.assert_array_equal(vals[:, 3:6], up.gyr_raw)
    np.testing.assert_array_equal(vals[:, 6:9], lo.acc_raw)
    np.testing.assert_array_equal(vals[:, 9:12], lo.gyr_raw)
    assert (vals[:, 12] == proto.ANGLE_NONE).all()
    acc_lsb = proto.accel_fs_g(dec[0].ranges) * G / 32768
    gyr_lsb = proto.gyro_fs_dps(dec[0].ranges) * math.pi / 180 / 32768
    for imu, off in ((up, 0), (lo, 6)):
        assert np.abs(vals[:, off : off + 3] * acc_lsb - imu.acc).max() <= 0.5 * acc_lsb + 1e-12
        assert np.abs(vals[:, off + 3 : off + 6] * gyr_lsb - imu.gyr).max() <= 0.5 * gyr_lsb + 1e-12
    assert s.accel_lsb == pytest.approx(acc_lsb) and s.gyro_lsb == pytest.approx(gyr_lsb)


def test_frames_are_packed_exactly_as_the_firmware_packs_them(demo):
    for f in demo.frames[::97] + demo.frames[-1:]:
        d = proto.decode(f)
        rebuilt = proto.encode_samples(d.seq, d.t_us, d.period_us, d.mask, d.ranges, d.flags, d.count, proto.pack_values(d.values()))
        assert rebuilt == f


def test_seq_and_time_are_continuous(demo):
    dec = decode_all(demo.frames)
    seq = np.array([d.seq for d in dec])
    t_us = np.array([d.t_us for d in dec])
    count = np.array([d.count for d in dec])
    assert seq[0] == 0 and t_us[0] == 0
    np.testing.assert_array_equal(np.diff(seq), count[:-1])
    np.testing.assert_array_equal(np.diff(t_us), count[:-1] * 10000)
    np.testing.assert_array_equal(demo.seq[seq], seq)
    np.testing.assert_allclose(demo.t[seq], t_us / 1e6)
    # each frame leaves after its last sample, in order
    last_t = demo.t[seq + count - 1]
    delay = demo.frame_times - last_t
    assert (delay > 0).all() and (delay < 0.05).all()
    assert (np.diff(demo.frame_times) > 0).all()


def test_counters_wrap_around_u32():
    settings = SimSettings(time_start_us=2**32 - 1_234_567, seq_start=2**32 - 40)
    s = simulate([SetSpec("squat", 1)], seed=5, settings=settings, rom=False)
    dec = decode_all(s.frames)
    seq = np.array([d.seq for d in dec])
    t_us = np.array([d.t_us for d in dec])
    assert seq[0] == 2**32 - 40 and t_us[0] == 2**32 - 1_234_567
    assert (np.diff(seq) < 0).any() and (np.diff(t_us) < 0).any()  # both wrapped
    assert seq.max() < 2**32 and t_us.max() < 2**32
    np.testing.assert_array_equal(unwrap_u32(seq), s.seq[np.arange(len(dec)) * 8])
    np.testing.assert_allclose(unwrap_u32(t_us) / 1e6, s.t[np.arange(len(dec)) * 8])
    assert s.t[-1] > 2**32 / 1e6 and s.seq[-1] > 2**32
    assert s.reps[0].t_start > settings.time_start_us / 1e6


def test_other_sample_rates_keep_integer_microsecond_periods():
    s = simulate([SetSpec("curl", 2)], seed=6, settings=SimSettings(rate_hz=104.0), rom=False)
    dec = decode_all(s.frames)
    assert {d.period_us for d in dec} == {9615}
    t_us = np.array([d.t_us for d in dec])
    np.testing.assert_array_equal(np.diff(t_us), [d.count * 9615 for d in dec[:-1]])
    np.testing.assert_allclose(np.diff(s.t), 9615e-6)
    assert s.reps[-1].t_end <= s.t[-1]


def test_single_imu_mode():
    settings = SimSettings(imus=("upper",))
    s = simulate([SetSpec("deadlift", 2, {2: "rounding"})], seed=3, settings=settings)
    assert set(s.imus) == {"upper"}
    dec = decode_all(s.frames)
    assert all(d.mask == 1 for d in dec)
    assert dec[0].count == proto.max_samples_per_frame(1) == 16
    vals = np.array([v for d in dec for v in d.values()]).reshape(-1, 7)
    np.testing.assert_array_equal(vals[:, :3], s.imus["upper"].acc_raw)
    np.testing.assert_array_equal(vals[:, 3:6], s.imus["upper"].gyr_raw)
    # the upper sensor's signals do not depend on which sensors are encoded
    both = simulate([SetSpec("deadlift", 2, {2: "rounding"})], seed=3)
    np.testing.assert_array_equal(both.imus["upper"].acc_raw, s.imus["upper"].acc_raw)
    np.testing.assert_array_equal(both.lumbar_flexion_deg, s.lumbar_flexion_deg)


# ---- sensor physics ------------------------------------------------------------
def test_at_rest_accelerometer_reads_g_and_gyro_reads_bias(demo):
    a, b = demo.calibration.neutral
    i = (demo.t >= a) & (demo.t < b)
    for imu in demo.imus.values():
        norm = np.linalg.norm(imu.acc[i], axis=1)
        assert norm.mean() == pytest.approx(G, abs=0.01)
        assert norm.std() < 0.1
        np.testing.assert_allclose(imu.gyr[i].mean(axis=0), imu.gyro_bias, atol=0.002)
        assert np.abs(imu.gyro_bias).max() <= math.radians(1.0)
        # at rest the accelerometer points along the true gravity direction
        np.testing.assert_allclose(imu.acc_true[i], G * imu.gravity[i], atol=1e-6)
    # standing tall the lower sensor reads its sacral pitch as sagittal inclination
    g_lo = demo.imus["lower"].gravity[i].mean(axis=0)
    assert 10 < math.degrees(math.atan2(g_lo[2], g_lo[0])) < 30
    np.testing.assert_allclose(demo.lumbar_flexion_deg[i], 0.0, atol=1e-9)


def test_linear_acceleration_bursts_happen_during_reps_only(demo):
    norm_dev = np.abs(np.linalg.norm(demo.imus["upper"].acc_true, axis=1) - G)
    a, b = demo.calibration.neutral
    assert norm_dev[(demo.t >= a) & (demo.t < b)].max() < 1e-6
    for rep in demo.reps[:5]:  # deadlift: pull and lockout
        i = (demo.t >= rep.t_start) & (demo.t <= rep.t_end)
        assert norm_dev[i].max() > 1.5
    quiet = SimSettings(bursts=False)
    q = simulate(demo_workout()[:1], seed=11, settings=quiet)
    # without bursts only the (smaller) kinematic acceleration is left
    assert np.abs(np.linalg.norm(q.imus["lower"].acc_true, axis=1) - G).max() < 3.0


def integrate(gyr, dt):
    """Orientation relative to the start after each sample: R_k = R_{k-1} exp(w_k dt)."""
    out, r = [], Rotation.identity()
    for w in gyr:
        r = r * Rotation.from_rotvec(w * dt)
        out.append(r)
    return Rotation.concatenate(out)


@pytest.mark.parametrize("rep_index", [3, 7, 14, 19])
def test_integrating_the_gyro_reproduces_the_orientation(demo, rep_index):
    rep = demo.reps[rep_index]
    k0, k1 = np.searchsorted(demo.t, [rep.t_start, rep.t_end])
    dt = demo.settings.period_us / 1e6
    for imu in demo.imus.values():
        q = Rotation.from_quat(imu.orientation)
        truth = q[k0].inv() * q[k0 + 1 : k1 + 1]  # orientation change since the rep began
        assert np.degrees(truth.magnitude()).max() > 3  # the rep moved this sensor
        clean = integrate(imu.gyr_true[k0 + 1 : k1 + 1], dt)
        assert np.degrees((clean.inv() * truth).magnitude()).max() < 0.01
        # what the host gets: decoded raw counts, with the known bias taken off
        decoded = integrate(imu.gyr_raw[k0 + 1 : k1 + 1] * demo.settings.gyro_lsb - imu.gyro_bias, dt)
        assert np.degrees((decoded.inv() * truth).magnitude()).max() < 1.0


# ---- ground truth ----------------------------------------------------------------
def sagittal(u):
    return np.degrees(np.arctan2(u[:, 2], u[:, 0]))


def test_truth_flexion_is_upper_minus_lower_sagittal_from_gravity(faults_sessions):
    s = faults_sessions[0]
    sag = {}
    for name, imu in s.imus.items():
        u_body = imu.gravity @ imu.body_from_sensor.T  # v_B = R_bs v_S
        np.testing.assert_allclose(np.linalg.norm(u_body, axis=1), 1.0, atol=1e-12)
        sag[name] = sagittal(u_body)
    np.testing.assert_allclose(sag["upper"], s.upper_sagittal_deg, atol=1e-9)
    np.testing.assert_allclose(sag["lower"], s.lower_sagittal_deg, atol=1e-9)
    np.testing.assert_allclose(sag["upper"] - sag["lower"], s.lumbar_flexion_deg, atol=1e-9)
    # without twist the truth follows the input curve; with twist they part
    twisted = np.abs(s.inputs["lumbar_twist_input_deg"]) > 10
    diff = np.abs(s.lumbar_flexion_deg - s.inputs["lumbar_flexion_input_deg"])
    assert diff[~twisted].max() < 1.0
    assert diff[twisted].max() > 1.0


def minimal_rotation_onto_x(u):
    """The smallest rotation taking unit vector u onto +X (the host's neutral calibration)."""
    x = np.array([1.0, 0.0, 0.0])
    axis = np.cross(u, x)
    angle = math.atan2(np.linalg.norm(axis), u @ x)
    return Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()


def test_still_accelerometer_gives_the_truth_angles_after_neutral_calibration(demo):
    """Read the angles as the host would -- accelerometer only, mounting from the
    standing pose -- at the holds of the range-of-motion sweep."""
    cal = demo.calibration
    neutral = (demo.t >= cal.neutral[0]) & (demo.t < cal.neutral[1])
    sag = {}
    for name, imu in demo.imus.items():
        g = imu.acc[neutral].mean(axis=0)
        m = minimal_rotation_onto_x(g / np.linalg.norm(g))
        sag[name] = sagittal(imu.acc @ m.T)
    measured = sag["upper"] - sag["lower"]
    for target in (cal.rom_flexion_deg, cal.rom_extension_deg):
        k = np.nonzero(np.abs(demo.lumbar_flexion_deg - target) < 1e-6)[0]
        hold = slice(k[0], k[-1] + 1)  # the slow sweep holds here
        assert k[-1] - k[0] > 50
        assert np.ptp(demo.lumbar_flexion_deg[hold]) < 0.5
        assert np.abs(measured[hold] - demo.lumbar_flexion_deg[hold]).max() < 1.5


def test_mounting_is_a_few_degrees_off_nominal_and_sacrum_is_tilted(demo):
    nominal_lower = Rotation.from_euler("y", demo.wearer.sacrum_tilt_deg, degrees=True)
    assert 15 <= demo.wearer.sacrum_tilt_deg <= 25
    off_up = Rotation.from_matrix(demo.imus["upper"].body_from_sensor).magnitude()
    off_lo = (nominal_lower.inv() * Rotation.from_matrix(demo.imus["lower"].body_from_sensor)).magnitude()
    for off in (off_up, off_lo):
        assert 1.0 <= math.degrees(off) <= 4.0 + 1e-9


def test_calibration_phase_reaches_the_wearers_range(demo):
    cal, w = demo.calibration, demo.wearer
    assert cal.neutral[1] - cal.neutral[0] >= 3.0
    assert 55 <= w.rom_flexion_deg <= 65 and -30 <= w.rom_extension_deg <= -20
    assert cal.rom_flexion_deg == pytest.approx(w.rom_flexion_deg, abs=0.5)
    assert cal.rom_extension_deg == pytest.approx(w.rom_extension_deg, abs=0.5)
    i = (demo.t >= cal.standing_after[0]) & (demo.t <= cal.standing_after[1])
    assert np.abs(demo.lumbar_flexion_deg[i]).max() < 1e-9
    assert demo.reps[0].t_start > cal.standing_after[1]


def test_faulty_reps_stand_clear_of_clean_reps(faults_sessions):
    for s in faults_sessions:
        rom_f, rom_e = s.calibration.rom_flexion_deg, s.calibration.rom_extension_deg
        for ex in ("deadlift", "squat", "overhead_press", "curl"):
            reps = [r for r in s.reps if r.exercise == ex]
            clean = [r for r in reps if r.fault is None]
            assert len(clean) >= 3
            # a detector with limits at 50-60 % of the range flags faults and nothing else
            for r in clean:
                assert r.peak_flexion_deg < 0.4 * rom_f
                assert r.peak_extension_deg > 0.4 * rom_e
                assert abs(r.peak_twist_deg) < 6.0
                assert abs(r.peak_lateral_deg) < 8.0
            for r in reps:
                if r.fault == "rounding":
                    assert r.peak_flexion_deg > 0.62 * rom_f
                    assert r.peak_flexion_deg > max(c.peak_flexion_deg for c in clean) + 15
                elif r.fault in ("arching", "hip_swing"):
                    assert r.peak_extension_deg < 0.65 * rom_e
                    assert r.peak_extension_deg < min(c.peak_extension_deg for c in clean) - 8
                elif r.fault == "twisting":
                    assert 18 <= abs(r.peak_twist_deg) <= 31
                    assert r.peak_flexion_deg < 0.4 * rom_f and r.peak_extension_deg > 0.4 * rom_e
        assert {r.fault for r in s.reps} == {None, "rounding", "arching", "hip_swing", "twisting"}


def test_hip_swing_is_fast(faults_sessions):
    s = faults_sessions[0]
    rate = np.abs(np.gradient(s.upper_sagittal_deg, s.t))
    peak = {}
    for r in s.reps:
        if r.exercise == "curl" and r.fault in (None, "hip_swing"):
            i = (s.t >= r.t_start) & (s.t <= r.t_end)
            peak.setdefault(r.fault, []).append(rate[i].max())
    assert min(peak["hip_swing"]) > 60 and max(peak[None]) < 20


def test_walking_and_plate_loading_between_sets_stay_clean():
    sets = [SetSpec("squat", 2, rest_s=12.0, walk_during_rest=True), SetSpec("curl", 1)]
    s = simulate(sets, seed=8, rom=False)
    a, b = s.sets[0].t_end + 1.5, s.sets[1].t_start
    i = (s.t > a) & (s.t < b)
    assert b - a > 10
    acc_dev = np.abs(np.linalg.norm(s.imus["lower"].acc_true[i], axis=1) - G)
    assert acc_dev.max() > 2.0  # foot strikes
    assert np.ptp(s.inputs["pelvis_yaw_deg"][i]) > 170  # turned round
    assert s.inputs["pelvis_pitch_deg"][i].max() > 45  # bent down for a plate...
    assert np.abs(s.lumbar_flexion_deg[i]).max() < 15  # ...with a neutral spine
    assert np.abs(s.twist_deg[i]).max() < 10 and np.abs(s.lateral_bend_deg[i]).max() < 10
    assert np.degrees(np.linalg.norm(s.imus["upper"].gyr_true[i], axis=1)).max() > 20


def test_reps_and_sets_are_labelled(demo):
    specs = demo_workout()
    assert [(r.set, r.rep) for r in demo.reps] == [(i, j) for i, s in enumerate(specs, 1) for j in range(1, s.reps + 1)]
    assert [(r.set, r.rep, r.fault) for r in demo.reps if r.fault] == [(1, 4, "rounding"), (2, 3, "arching"), (4, 5, "hip_swing")]
    for st in demo.sets:
        mine = [r for r in demo.reps if r.set == st.set]
        assert st.t_start == mine[0].t_start and st.t_end == mine[-1].t_end
        assert all(2.0 <= r.t_end - r.t_start <= 4.0 for r in mine)
    assert all(a.t_end < b.t_start for a, b in zip(demo.reps, demo.reps[1:]))
    assert 60 <= demo.duration_s <= 130


def test_metadata_is_json(demo):
    meta = json.loads(json.dumps(demo.metadata()))
    assert meta["seed"] == 11 and meta["mask"] == 3 and meta["period_us"] == 10000
    assert meta["n_frames"] == len(demo.frames)
    assert [r["fault"] for r in meta["reps"]].count("rounding") == 1
    assert meta["set_specs"][0] == {"exercise": "deadlift", "reps": 5, "faults": [[4, "rounding"]], "rest_s": 5.0, "walk_during_rest": False}
    assert meta["settings"]["imus"] == ["upper", "lower"]


def test_wearer_can_be_given_explicitly():
    w = Wearer.from_seed(4)
    assert Wearer.from_seed(4) == w and Wearer.from_seed(5) != w
    s = simulate([SetSpec("curl", 1)], seed=9, wearer=w, rom=False)
    assert s.wearer is w
    np.testing.assert_allclose(s.imus["lower"].body_from_sensor, w.body_from_sensor("lower"))


# ---- bad input ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: SetSpec("bench_press", 5),
        lambda: SetSpec("curl", 0),
        lambda: SetSpec("curl", 5, {6: "hip_swing"}),
        lambda: SetSpec("curl", 5, {2: "rounding"}),
        lambda: SetSpec("squat", 5, {2: "slouching"}),
        lambda: SetSpec("squat", 5, rest_s=-1),
        lambda: SimSettings(imus=()),
        lambda: SimSettings(imus=("upper", "upper")),
        lambda: SimSettings(imus=("middle",)),
        lambda: SimSettings(rate_hz=10),
        lambda: SimSettings(accel_fs_g=3),
        lambda: SimSettings(time_start_us=2**32),
        lambda: SimSettings(gyro_noise=-0.1),
        lambda: simulate([SetSpec("curl", 1)], seed=-1),
        lambda: simulate([("curl", 1)], seed=1),
    ],
)
def test_bad_input_raises_config_error(make):
    with pytest.raises(ConfigError) as e:
        make()
    assert isinstance(e.value, SpinemonError)
